"""A minimal event system for evented models, in the style of napari's.

A model owns an :class:`EmitterGroup`; each field it announces has an
:class:`EventEmitter` in the group (``model.events.landmarks``).  Listeners are
plain callables receiving one :class:`Event`; they know nothing of Qt, so the
same model serves the viewer, the reports and the batch pipeline.

Examples
--------
>>> events = EmitterGroup(source=None, names=("level",))
>>> seen = []
>>> _ = events.level.connect(lambda event: seen.append(event.value))
>>> _ = events.level(value=3)
>>> seen
[3]
>>> with events.level.blocker():
...     events.level(value=4)
>>> seen
[3]
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EmitterGroup", "Event", "EventEmitter"]

_log = logging.getLogger(__name__)

Callback = Callable[["Event"], Any]


@dataclass(frozen=True)
class Event:
    """One notification.

    Parameters
    ----------
    type : str
        The name of the emitter (the field that changed), e.g. ``"landmarks"``.
    source : object
        The model that emitted it.
    value : object
        The new value, or None when listeners should read it off the model.
    info : dict
        Extra keywords given to the emitter (e.g. ``role="flexion"``).
    """

    type: str
    source: Any = None
    value: Any = None
    info: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # ``event.role`` reads ``event.info["role"]``.
        info = object.__getattribute__(self, "info")
        try:
            return info[name]
        except KeyError:
            raise AttributeError(name) from None


class EventEmitter:
    """Calls its listeners, in connection order, each time it is called.

    A bound method is held by a weak reference, so connecting a widget's method
    does not keep a closed widget alive; other callables are held strongly.
    A listener that raises is logged and does not stop the others.
    """

    def __init__(self, source: Any = None, type: str = "") -> None:
        self.source = source
        self.type = type
        self._callbacks: list[Callable[[], Callback | None]] = []
        self._blocked = 0

    def connect(self, callback: Callback) -> Callback:
        """Add ``callback``; returns it (usable as a decorator)."""
        if not callable(callback):
            raise TypeError(f"callback: must be callable, got {type(callback).__name__}")
        if hasattr(callback, "__self__") and hasattr(callback, "__func__"):
            ref: Callable[[], Callback | None] = weakref.WeakMethod(callback)
        else:
            ref = _strong(callback)
        self._callbacks.append(ref)
        return callback

    def disconnect(self, callback: Callback | None = None) -> None:
        """Remove ``callback`` (every listener when None)."""
        if callback is None:
            self._callbacks.clear()
            return
        self._callbacks = [ref for ref in self._callbacks if ref() not in (None, callback)]

    @property
    def callbacks(self) -> list[Callback]:
        """The live listeners."""
        return [cb for cb in (ref() for ref in self._callbacks) if cb is not None]

    @contextlib.contextmanager
    def blocker(self) -> Iterator[None]:
        """Within the block, calling the emitter notifies nobody."""
        self._blocked += 1
        try:
            yield
        finally:
            self._blocked -= 1

    @property
    def blocked(self) -> bool:
        """True inside :meth:`blocker`."""
        return self._blocked > 0

    def __call__(self, value: Any = None, **info: Any) -> Event | None:
        """Emit an :class:`Event` with ``value`` and ``info``; returns it (None when blocked)."""
        if self._blocked:
            return None
        event = Event(type=self.type, source=self.source, value=value, info=info)
        dead = False
        for ref in list(self._callbacks):
            callback = ref()
            if callback is None:
                dead = True
                continue
            try:
                callback(event)
            except Exception:  # a broken listener must not break the model
                _log.exception("listener of %r failed", self.type)
        if dead:
            self._callbacks = [ref for ref in self._callbacks if ref() is not None]
        return event


class EmitterGroup:
    """A named set of :class:`EventEmitter`, read as attributes.

    Parameters
    ----------
    source : object
        The model the events come from.
    names : sequence of str
        One emitter per name.

    Notes
    -----
    ``group.connect(cb)`` listens to every emitter of the group.
    """

    def __init__(self, source: Any, names: tuple[str, ...] | list[str]) -> None:
        self._emitters: dict[str, EventEmitter] = {
            name: EventEmitter(source, name) for name in names
        }

    def __getattr__(self, name: str) -> EventEmitter:
        try:
            return self.__dict__["_emitters"][name]
        except KeyError:
            raise AttributeError(f"no event named {name!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._emitters)

    def connect(self, callback: Callback) -> Callback:
        """Listen to every emitter of the group."""
        for emitter in self._emitters.values():
            emitter.connect(callback)
        return callback

    def disconnect(self, callback: Callback | None = None) -> None:
        """Stop listening (every listener when ``callback`` is None)."""
        for emitter in self._emitters.values():
            emitter.disconnect(callback)

    @contextlib.contextmanager
    def blocker_all(self) -> Iterator[None]:
        """Block every emitter of the group within the block."""
        with contextlib.ExitStack() as stack:
            for emitter in self._emitters.values():
                stack.enter_context(emitter.blocker())
            yield


def _strong(callback: Callback) -> Callable[[], Callback]:
    return lambda: callback
