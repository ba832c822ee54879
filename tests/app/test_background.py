"""The worker process of the viewer (app.background): large arrays travel through shared
memory both ways (also inside containers and dataclasses such as a Film), nothing is left
in /dev/shm, the worker runs at a lower priority, and a film pair loads there exactly as
in this process (app.session.load_study)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np
import pytest

from app import background
from app.background import WorkerProcess, _from_shared, _to_shared
from app.session import LoadedStudy, load_study
from tests.ui.conftest import synthetic_image, synthetic_truth, write_synthetic_dicom


@dataclass(frozen=True, slots=True)
class _Holder:
    name: str
    pixels: np.ndarray
    small: np.ndarray


def _niceness(*, checkpoint) -> int:
    return os.nice(0)


def _echo_sum(payload, *, checkpoint):
    """Returns the payload and, computed in the worker, the sum of its big array."""
    checkpoint(0.5)
    return payload, float(payload["films"][1].pixels.sum(dtype=np.float64))


def _exists(name: str) -> bool:
    try:
        block = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return False
    block.close()
    return True


def _shared_names(value) -> list[str]:
    """Names of the shared-memory blocks a (shared) value refers to."""
    if isinstance(value, background._SharedArray):
        return [value.name]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _shared_names(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _shared_names(v)]
    if hasattr(value, "__dataclass_fields__"):
        return [n for f in value.__dataclass_fields__ for n in _shared_names(getattr(value, f))]
    return []


@pytest.fixture(scope="module")
def worker():
    w = WorkerProcess()
    yield w
    w.shutdown()


def test_nested_large_arrays_go_through_shared_memory_and_come_back_equal():
    rng = np.random.default_rng(4)
    big = rng.integers(0, 4096, (700, 600), dtype=np.uint16)  # 0.84 MB: below the threshold
    bigger = rng.integers(0, 4096, (1100, 900), dtype=np.uint16)  # 1.98 MB: shared
    value = {"films": [_Holder("a", big, np.arange(3.0)), _Holder("b", bigger, np.arange(2.0))], "n": 3}
    blocks: list = []
    shared = _to_shared(value, blocks)
    try:
        assert len(blocks) == 1  # only the array above 1 MiB
        assert shared["films"][0].pixels is big
        assert type(shared["films"][1].pixels).__name__ == "_SharedArray"
        back_blocks: list = []
        back = _from_shared(shared, back_blocks, copy=True)
        for b in back_blocks:
            b.close()
        np.testing.assert_array_equal(back["films"][1].pixels, bigger)
        assert not back["films"][1].pixels.flags.writeable
        assert back["films"][1].name == "b" and back["n"] == 3
    finally:
        for b in blocks:
            b.close()
            b.unlink()


def test_worker_round_trip_leaves_no_shared_memory(worker, monkeypatch):
    rng = np.random.default_rng(5)
    bigger = rng.integers(0, 4096, (1100, 900), dtype=np.uint16)
    payload = {"films": [_Holder("a", np.zeros((2, 2)), np.arange(1.0)), _Holder("b", bigger, np.arange(2.0))]}
    sent: list[str] = []
    received: list[str] = []
    original_to_shared, original_receive = background._to_shared, WorkerProcess._receive

    def to_shared(value, blocks):
        out = original_to_shared(value, blocks)
        sent.extend(_shared_names(out))
        return out

    def receive(value):
        received.extend(_shared_names(value))
        assert all(_exists(n) for n in received)  # still there for the copy
        return original_receive(value)

    monkeypatch.setattr(background, "_to_shared", to_shared)
    monkeypatch.setattr(WorkerProcess, "_receive", staticmethod(receive))
    back, total = worker.call(_echo_sum, payload)
    assert total == float(bigger.sum(dtype=np.float64))  # the worker saw the same pixels
    np.testing.assert_array_equal(back["films"][1].pixels, bigger)  # and sent them back
    assert len(set(sent)) == 1 and len(set(received)) == 1 and set(sent) != set(received)
    assert not any(_exists(n) for n in sent + received)  # both directions unlinked


def test_worker_runs_below_the_ui_priority(worker):
    assert worker.call(_niceness) >= os.nice(0) + 10 or worker.call(_niceness) == 19


def test_load_study_in_the_worker_equals_loading_here(worker, tmp_path):
    paths = []
    for view, shift in (("flexion", 10.0), ("extension", -5.0)):
        # 1200 x 1000 x 2 bytes = 2.4 MB: the pixels come back through shared memory
        image = synthetic_image(synthetic_truth(shift) * 3, shape=(1200, 1000))
        paths.append(str(write_synthetic_dicom(tmp_path / f"{view}.dcm", image, view)))
    (tmp_path / "notes.dcm").write_bytes(b"not a film")
    here = load_study([str(tmp_path)], display=True)
    there = worker.call(load_study, [str(tmp_path)], display=True)
    assert isinstance(there, LoadedStudy)
    assert there.paths == here.paths == {"flexion": paths[0], "extension": paths[1]}
    for role in ("flexion", "extension"):
        np.testing.assert_array_equal(there.films[role].pixels, here.films[role].pixels)
        np.testing.assert_array_equal(there.display[role], here.films[role].display_image())
        assert there.films[role].calibration == here.films[role].calibration
    assert len(there.errors) == 1 and there.errors[0].startswith(str(tmp_path / "notes.dcm"))
    assert there.film_checks == here.film_checks == []  # different pixels, same patient


def test_a_loaded_film_pickles_with_its_file_digest(tmp_path):
    """Films go to the worker and back: the lazy SHA-256 travels (computed or not) and stays checked."""
    import hashlib
    import pickle

    from app.dicom_io import load_film

    path = write_synthetic_dicom(tmp_path / "flexion.dcm", synthetic_image(synthetic_truth(0.0)), "flexion")
    film = load_film(str(path))
    lazy = pickle.loads(pickle.dumps(film))  # before the first use
    assert lazy.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert film.sha256 == lazy.sha256
    again = pickle.loads(pickle.dumps(film))  # after it: the value travels
    assert again.sha256 == film.sha256
    np.testing.assert_array_equal(again.pixels, film.pixels)
