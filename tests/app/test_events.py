"""The event system of the evented models (app.events)."""

import gc
import logging

import pytest

from app.events import EmitterGroup, Event, EventEmitter


def test_listeners_called_in_order_with_the_event():
    emitter = EventEmitter(source="model", type="landmarks")
    seen = []
    emitter.connect(lambda e: seen.append(("a", e.type, e.source, e.value, e.role)))
    emitter.connect(lambda e: seen.append(("b", e.value)))
    event = emitter(value=3, role="flexion")
    assert isinstance(event, Event)
    assert seen == [("a", "landmarks", "model", 3, "flexion"), ("b", 3)]


def test_blocker_silences_and_nests():
    emitter = EventEmitter(type="x")
    seen = []
    emitter.connect(seen.append)
    with emitter.blocker():
        with emitter.blocker():
            assert emitter() is None
        emitter()
        assert emitter.blocked
    emitter(value=1)
    assert [e.value for e in seen] == [1]


def test_disconnect_one_and_all():
    emitter = EventEmitter()
    a, b = [], []
    emitter.connect(a.append)
    emitter.connect(b.append)
    emitter.disconnect(a.append)
    emitter(value=1)
    assert (len(a), len(b)) == (0, 1)
    emitter.disconnect()
    emitter(value=2)
    assert len(b) == 1


def test_bound_method_is_weak():
    class Widget:
        def __init__(self):
            self.calls = 0

        def _on_change(self, event):
            self.calls += 1

    emitter = EventEmitter()
    widget = Widget()
    emitter.connect(widget._on_change)
    emitter()
    assert widget.calls == 1
    del widget
    gc.collect()
    assert emitter.callbacks == []
    emitter()  # no error from the dead listener


def test_failing_listener_does_not_stop_the_others(caplog):
    emitter = EventEmitter(type="results")
    seen = []

    def broken(event):
        raise RuntimeError("boom")

    emitter.connect(broken)
    emitter.connect(seen.append)
    with caplog.at_level(logging.ERROR, logger="app.events"):
        emitter()
    assert len(seen) == 1
    assert "results" in caplog.text


def test_group_attribute_access_and_connect_all():
    group = EmitterGroup(source="s", names=("a", "b"))
    seen = []
    group.connect(lambda e: seen.append(e.type))
    group.a()
    group.b()
    with group.blocker_all():
        group.a()
    assert seen == ["a", "b"]
    assert list(group) == ["a", "b"]
    with pytest.raises(AttributeError, match="no event named 'c'"):
        group.c  # noqa: B018


def test_connect_rejects_non_callable():
    with pytest.raises(TypeError, match="callback"):
        EventEmitter().connect(3)
