"""Run an automatic landmark method in a worker process, with progress and cancel.

The viewer must repaint while Track or Detect runs.  In a thread of the same
process the work's numpy code holds the GIL for tens of milliseconds at a time
(stalls of 60–110 ms measured under load); in a separate process the UI
thread never waits for it.  One worker process is kept for the session
(started on first use, or ahead with :meth:`WorkerProcess.warm_up`) and runs
one call at a time.

The called function must be importable (module level) and accept a
``checkpoint`` keyword (:data:`measure.Checkpoint`); its arguments and result
are pickled, so pass arrays rather than films.  Progress comes back through
shared memory; cancelling sets a shared flag that the function's next
checkpoint turns into :class:`measure.Cancelled`.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from measure import Cancelled

__all__ = ["WorkerProcess", "shared_worker"]

_shared: dict[str, Any] = {}
_SHARE_ABOVE_BYTES = 1 << 20  # larger arrays (films) go through shared memory, not a pickle
#: The worker's niceness: on a busy 2-core machine a CPU-bound worker at the UI's priority took
#: the UI thread's core for tens of milliseconds at a time (stalls of 50-70 ms with the UI idle).
_WORKER_NICENESS = 10


@dataclass(frozen=True)
class _SharedArray:
    """A large array passed to the worker by shared-memory name (pickling 20 MB holds the GIL ~50 ms)."""

    name: str
    shape: tuple[int, ...]
    dtype: str


def _to_shared(value: Any, blocks: list[shared_memory.SharedMemory]) -> Any:
    """``value`` with every large array in it (also inside dicts, lists, tuples and
    dataclasses such as a ``Film``) moved to a new shared-memory block."""
    if isinstance(value, np.ndarray):
        if value.nbytes <= _SHARE_ABOVE_BYTES or value.dtype.hasobject:
            return value
        block = shared_memory.SharedMemory(create=True, size=value.nbytes)
        blocks.append(block)
        np.copyto(np.ndarray(value.shape, value.dtype, buffer=block.buf), value)
        return _SharedArray(block.name, value.shape, value.dtype.str)
    return _map_arrays(value, lambda v: _to_shared(v, blocks))


def _from_shared(value: Any, blocks: list[shared_memory.SharedMemory], copy: bool = False) -> Any:
    """``value`` with each shared array mapped back (a view on the block, or a copy)."""
    if isinstance(value, _SharedArray):
        block = shared_memory.SharedMemory(name=value.name)
        blocks.append(block)
        view = np.ndarray(value.shape, np.dtype(value.dtype), buffer=block.buf)
        if not copy:
            return view
        out = view.copy()
        out.flags.writeable = False  # films are read-only
        del view
        return out
    return _map_arrays(value, lambda v: _from_shared(v, blocks, copy))


def _map_arrays(value: Any, func: Callable[[Any], Any]) -> Any:
    """Apply ``func`` to the items of containers and the fields of dataclass instances."""
    if isinstance(value, dict):
        return {k: func(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(func(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            if not f.init:
                continue
            old = getattr(value, f.name)
            if isinstance(old, (np.ndarray, _SharedArray, dict, list, tuple)) or dataclasses.is_dataclass(old):
                new = func(old)
                if new is not old:
                    changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value


def _release(blocks: list[shared_memory.SharedMemory], unlink: bool) -> None:
    for block in blocks:
        block.close()
        if unlink:
            block.unlink()


def _init_worker(fraction, cancel) -> None:
    """Worker process start-up: keep the shared progress and cancel flag; one BLAS thread;
    a lower CPU priority, so the viewer's UI thread wins the cores whenever it has work."""
    _shared["fraction"], _shared["cancel"] = fraction, cancel
    try:
        os.nice(_WORKER_NICENESS)
    except (AttributeError, OSError):  # pragma: no cover - not on this platform
        pass
    try:  # the machine's cores are shared with the UI: one thread per worker
        from threadpoolctl import threadpool_limits

        _shared["limits"] = threadpool_limits(1)
    except ImportError:  # pragma: no cover - optional
        pass
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass


def _checkpoint(fraction: float) -> None:
    if _shared["cancel"].is_set():
        raise Cancelled
    _shared["fraction"].value = float(fraction)


def _call(func: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    _shared["fraction"].value = 0.0
    blocks: list[shared_memory.SharedMemory] = []
    try:
        args = _from_shared(args, blocks)
        kwargs = _from_shared(kwargs, blocks)
        result = func(*args, checkpoint=_checkpoint, **kwargs)
        # a large result (a decoded film) goes back through shared memory too: the caller
        # copies it out and unlinks the blocks, so they are closed here but not unlinked
        out_blocks: list[shared_memory.SharedMemory] = []
        try:
            shared = _to_shared(result, out_blocks)
        except BaseException:
            _release(out_blocks, unlink=True)
            raise
        for block in out_blocks:
            _unregister(block)
        _release(out_blocks, unlink=False)
        return shared
    finally:
        del args, kwargs  # the views must go before their blocks close
        _release(blocks, unlink=False)


def _unregister(block: shared_memory.SharedMemory) -> None:
    """The caller, not this process, unlinks the block: keep the resource tracker out of it."""
    try:
        from multiprocessing import resource_tracker

        resource_tracker.unregister(block._name, "shared_memory")  # type: ignore[attr-defined]
    except (ImportError, AttributeError, KeyError):  # pragma: no cover
        pass


def _nothing() -> None:
    return None


class WorkerProcess:
    """One worker process running one call at a time (see the module docstring)."""

    def __init__(self) -> None:
        self._context = mp.get_context("spawn")  # never fork a process that runs Qt threads
        self._fraction = self._context.Value("d", 0.0, lock=False)
        self._cancel = self._context.Event()
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=self._context,
                    initializer=_init_worker,
                    initargs=(self._fraction, self._cancel),
                )
            return self._executor

    def warm_up(self) -> Future:
        """Start the process now (imports take a second or two) so the first run is quick."""
        return self._pool().submit(_nothing)

    def call(
        self,
        func: Callable[..., Any],
        *args: Any,
        checkpoint: Callable[[float], None] | None = None,
        poll_s: float = 0.05,
        **kwargs: Any,
    ) -> Any:
        """``func(*args, checkpoint=..., **kwargs)`` in the worker; blocks the calling thread.

        ``checkpoint`` (of the caller) is called with the worker's progress every
        ``poll_s``; when it raises, the worker is told to stop at its next
        checkpoint and the exception is re-raised once it has.
        """
        self._cancel.clear()
        self._fraction.value = 0.0
        blocks: list[shared_memory.SharedMemory] = []
        try:
            args = _to_shared(args, blocks)
            kwargs = _to_shared(kwargs, blocks)
            future = self._pool().submit(_call, func, args, kwargs)
            return self._wait(future, checkpoint, poll_s)
        finally:
            _release(blocks, unlink=True)

    @staticmethod
    def _receive(value: Any) -> Any:
        """The worker's result with its shared arrays copied out and their blocks unlinked."""
        blocks: list[shared_memory.SharedMemory] = []
        try:
            return _from_shared(value, blocks, copy=True)
        finally:
            _release(blocks, unlink=True)

    def _wait(self, future: Future, checkpoint: Callable[[float], None] | None, poll_s: float) -> Any:
        stop: BaseException | None = None
        while True:
            try:
                return_value = future.result(timeout=poll_s)
            except TimeoutError:
                pass
            except Cancelled:
                raise stop if stop is not None else Cancelled from None
            else:
                return_value = self._receive(return_value)  # also when cancelled: frees the blocks
                if stop is not None:  # finished before it saw the flag: still cancelled
                    raise stop
                return return_value
            if checkpoint is not None and stop is None:
                try:
                    checkpoint(self._fraction.value)
                except BaseException as exc:
                    stop = exc
                    self._cancel.set()
            if stop is not None:
                time.sleep(poll_s)

    def shutdown(self) -> None:
        """Stop the worker process (a running call is told to cancel first)."""
        self._cancel.set()
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None


_SHARED_WORKER: WorkerProcess | None = None


def shared_worker() -> WorkerProcess:
    """The application's one worker process (created on first use)."""
    global _SHARED_WORKER
    if _SHARED_WORKER is None:
        _SHARED_WORKER = WorkerProcess()
    return _SHARED_WORKER
