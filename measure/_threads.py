"""One thread for the small linear algebra and image operations of the landmark methods.

Tracking, refinement and the one-click path make thousands of small numpy
(BLAS) and OpenCV calls on arrays of a few thousand pixels.  With every
library starting one thread per core, a 2-core machine shared with other jobs
spends most of its time waking and synchronising threads: a ``dot`` of 20 000
numbers took 22 ms instead of 10 µs under a load average of 10 (tracking one
study: 40–50 s wall clock for 13 s of CPU).  Inside :func:`single_threaded`
both run on the calling thread; a batch gets its parallelism from running
studies side by side (``app.batch``), not from threads inside one
registration.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import cv2
from threadpoolctl import threadpool_limits

__all__ = ["single_threaded", "single_threaded_call"]

_F = TypeVar("_F", bound=Callable)


_lock = threading.Lock()
_active = 0  # blocks open in any thread of the process
_saved_cv2_threads = 1


@contextmanager
def single_threaded() -> Iterator[None]:
    """BLAS/OpenMP pools and OpenCV limited to one thread inside the block (restored after).

    Notes
    -----
    ``cv2.setNumThreads`` is process-wide: other threads calling OpenCV during
    the block run single-threaded too.  Blocks may overlap (a viewer worker
    thread and a batch thread): the first to enter saves OpenCV's setting and
    the last to leave restores it, so overlapping blocks never leave OpenCV
    at one thread (a saved "1" from another open block would).
    """
    global _active, _saved_cv2_threads
    with _lock:
        if _active == 0:
            _saved_cv2_threads = cv2.getNumThreads()
        _active += 1
        cv2.setNumThreads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                cv2.setNumThreads(_saved_cv2_threads)


def single_threaded_call(func: _F) -> _F:
    """Decorator: run ``func`` inside :func:`single_threaded`."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with single_threaded():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
