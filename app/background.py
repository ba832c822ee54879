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

import multiprocessing as mp
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


@dataclass(frozen=True)
class _SharedArray:
    """A large array passed to the worker by shared-memory name (pickling 20 MB holds the GIL ~50 ms)."""

    name: str
    shape: tuple[int, ...]
    dtype: str


def _to_shared(value: Any, blocks: list[shared_memory.SharedMemory]) -> Any:
    if isinstance(value, np.ndarray) and value.nbytes > _SHARE_ABOVE_BYTES:
        block = shared_memory.SharedMemory(create=True, size=value.nbytes)
        blocks.append(block)
        np.copyto(np.ndarray(value.shape, value.dtype, buffer=block.buf), value)
        return _SharedArray(block.name, value.shape, value.dtype.str)
    return value


def _from_shared(value: Any, blocks: list[shared_memory.SharedMemory]) -> Any:
    if isinstance(value, _SharedArray):
        block = shared_memory.SharedMemory(name=value.name)
        blocks.append(block)
        return np.ndarray(value.shape, np.dtype(value.dtype), buffer=block.buf)
    return value


def _init_worker(fraction, cancel) -> None:
    """Worker process start-up: keep the shared progress and cancel flag; one BLAS thread."""
    _shared["fraction"], _shared["cancel"] = fraction, cancel
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
        args = tuple(_from_shared(a, blocks) for a in args)
        kwargs = {k: _from_shared(v, blocks) for k, v in kwargs.items()}
        return func(*args, checkpoint=_checkpoint, **kwargs)
    finally:
        del args, kwargs  # the views must go before their blocks close
        for block in blocks:
            block.close()


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
        poll_s: float = 0.02,
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
            args = tuple(_to_shared(a, blocks) for a in args)
            kwargs = {k: _to_shared(v, blocks) for k, v in kwargs.items()}
            future = self._pool().submit(_call, func, args, kwargs)
            return self._wait(future, checkpoint, poll_s)
        finally:
            for block in blocks:
                block.close()
                block.unlink()

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
