"""Where the per-study work runs: in this process, a process pool, or Dask.

All executors offer the same call, :meth:`Executor.imap_unordered`, which runs
``fn(item)`` for every item and yields ``(index, result, error)`` as results
arrive, keeping a bounded number of tasks in flight (a run over hundreds of
thousands of studies never queues them all at once).  ``error`` is None or a
one-line reason when the task could not complete (a worker process died, the
cluster lost the task); the functions given here catch their own exceptions,
so an error means the infrastructure failed, not the study.
"""

from __future__ import annotations

import concurrent.futures
import math
import multiprocessing
import operator
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from app.errors import UserError

__all__ = [
    "DaskExecutor",
    "Executor",
    "PoolExecutor",
    "SerialExecutor",
    "make_executor",
]

Result = tuple[int, Any, str | None]

#: Dask settings for the LocalCluster's workers: no statistical profiler (a stack
#: sample every 10 ms), no GIL contention monitor (a poll every 1 ms), slower
#: system and event-loop health checks.  Together they cost a worker process
#: about half a core on a busy machine; the batch's tasks need none of them.
LEAN_WORKER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.tick.interval": "500ms",
    "distributed.worker.memory.monitor-interval": "1s",
    # The scheduler hands every submitted task to a worker at once instead of
    # holding all but ~1 per thread back: a worker then starts its next task
    # when it finishes one, without a round trip to the scheduler (which cost
    # 11-15 ms per task on the loaded 2-core machine, 4-5 ms with this).
    "distributed.scheduler.worker-saturation": "inf",
    # Dask starts its workers with MALLOC_TRIM_THRESHOLD_=65536, which also turns off
    # glibc's dynamic mmap threshold: every array of more than 128 kB (a film, each
    # float copy of it) is then a fresh mmap, its pages faulted in and zeroed by the
    # kernel, and unmapped when freed.  That cost 5.5 ms of system time per study
    # (about +15 % CPU over the pool's workers, which keep glibc's defaults).
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}

#: Seconds of a Dask worker's time one task aims to carry.  Items are sent in
#: chunks of about this much work (measured on the finished chunks; never more
#: than a share of what is left, so the workers finish together), so the
#: cluster's own cost per task (scheduler, messages, result hand-over: 2-20 ms
#: of latency, about 5 ms of CPU in the scheduler's thread and as much in the
#: worker) is paid about once per second rather than once per study.  A Ctrl-C
#: loses at most the unfinished part of one chunk per worker.
DASK_CHUNK_SECONDS = 1.0

#: Upper bound on the workers of a LocalCluster or process pool on this machine.
MAX_LOCAL_WORKERS = max(1, os.cpu_count() or 1)


class Executor:
    """Base class: run tasks, yield ``(index, result, error)`` as they finish."""

    name = "executor"
    workers = 1

    def imap_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Result]:
        """Run ``fn`` on each item; yield ``(index, result, error)`` in completion order."""
        raise NotImplementedError

    def close(self) -> None:
        """Release processes and connections."""

    def abort(self) -> None:
        """Stop at once (Ctrl-C): drop queued tasks, end the workers without waiting."""
        self.close()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        """One line for the log: kind and number of workers."""
        return f"{self.name} ({self.workers} worker{'s' if self.workers != 1 else ''})"


class SerialExecutor(Executor):
    """Everything in this process, in order (API use, debugging, tests)."""

    name = "serial"

    def imap_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Result]:
        for index, item in enumerate(items):
            yield index, fn(item), None


class PoolExecutor(Executor):
    """A local process pool (``--workers N``).

    Processes start with ``forkserver`` so a pool created next to threads
    (pyarrow, Dask) is safe; each worker runs numpy's BLAS, OpenMP and OpenCV
    on one thread, so N workers use N cores without oversubscribing them.  If a worker process dies (out of memory, a
    crashing decoder), the tasks in flight are redone one at a time in a fresh
    pool: the task that kills its worker again is reported with an error, the
    others complete, and the run goes on.
    """

    name = "process pool"

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))
        self._context = multiprocessing.get_context("forkserver")
        # Imported once in the fork server, so every worker starts with them loaded.
        from app.batch._worker import WORKER_MODULES

        self._context.set_forkserver_preload(["app.batch._lifeline_forkserver", *WORKER_MODULES])
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            from app.batch._lifeline import PARENT_ENV
            from app.batch._worker import SINGLE_THREAD_ENV, worker_init

            # the fork server, and every worker, ends when this process ends (kill -9)
            _start_forkserver({**SINGLE_THREAD_ENV, PARENT_ENV: str(os.getpid())})
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=self._context, initializer=worker_init,
                initargs=(os.getpid(),),
            )
        return self._pool

    def imap_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Result]:
        window = 4 * self.workers
        pending: dict[concurrent.futures.Future, tuple[int, Any]] = {}
        iterator = enumerate(items)
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                try:
                    index, item = next(iterator)
                except StopIteration:
                    exhausted = True
                    break
                pending[self._ensure_pool().submit(fn, item)] = (index, item)
            if not pending:
                return
            try:
                done, _ = concurrent.futures.wait(
                    pending, return_when=concurrent.futures.FIRST_COMPLETED
                )
            except KeyboardInterrupt:
                # Keep what the workers finished, stop the rest now (not after the
                # studies in flight, which may take many seconds).
                finished = [
                    (index, future.result()) for future, (index, _) in pending.items()
                    if future.done() and not future.cancelled() and future.exception() is None
                ]
                self.abort()
                for index, result in finished:
                    yield index, result, None
                raise
            lost: list[tuple[int, Any]] = []
            for future in done:
                index, item = pending.pop(future)
                try:
                    result = future.result()
                except concurrent.futures.process.BrokenProcessPool:
                    lost.append((index, item))
                else:
                    yield index, result, None
            if lost:
                # A worker died and took every task in flight with it.  Redo them
                # one at a time in a fresh pool, so only the task that kills its
                # worker again is reported; the others complete normally.
                lost += list(pending.values())
                pending.clear()
                self.close()
                for index, item in sorted(lost, key=lambda pair: pair[0]):
                    yield self._isolated(fn, index, item)

    def _isolated(self, fn: Callable[[Any], Any], index: int, item: Any) -> Result:
        try:
            return index, self._ensure_pool().submit(fn, item).result(), None
        except concurrent.futures.process.BrokenProcessPool:
            self.close()
            return index, None, "worker: the worker process ended unexpectedly"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        if self._pool is None:
            return
        # ProcessPoolExecutor has no public way to end busy workers before Python 3.14
        # (terminate_workers); its process table is the documented-by-source fallback.
        processes = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=1.0)
        self._pool = None


def _start_forkserver(env: dict[str, str]) -> None:
    """Start the fork server (if not yet running) with ``env`` added to its environment.

    Worker processes fork from it, so they inherit the single-thread settings
    of numpy's BLAS, while this process keeps its own.
    """
    from multiprocessing import forkserver

    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        forkserver.ensure_running()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_DASK_LOGGERS = ("distributed", "tornado")
"""Loggers silenced when a Dask run is aborted (children set their own levels, hence all)."""


class DaskExecutor(Executor):
    """Tasks on a Dask distributed cluster.

    Parameters
    ----------
    address : str
        ``tcp://HOST:PORT`` of a running scheduler, or ``local`` to start a
        LocalCluster bound to the loopback interface only.
    workers : int
        Workers of the LocalCluster (capped at the number of CPUs); ignored
        for a remote scheduler.
    processes : bool
        LocalCluster workers as processes (default) or threads.

    Notes
    -----
    The workers of a remote cluster must have this package installed and see
    the input folder under the same path (a shared file system); results come
    back to this process, which alone writes to the results folder.
    """

    name = "dask"

    def __init__(self, address: str, workers: int = 2, *, processes: bool = True) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise UserError(f"--scheduler: dask distributed is not installed ({exc})") from None
        self._cluster = None
        self._worker_pids: list[int] = []
        if address == "local":
            self.workers = max(1, min(int(workers), MAX_LOCAL_WORKERS))
            # Worker processes talk over TCP on the loopback interface only; thread
            # workers use the in-process transport (no socket at all).
            network = {"host": "127.0.0.1", "protocol": "tcp"} if processes else {}
            import dask

            with dask.config.set(LEAN_WORKER_CONFIG):  # handed to the workers at their start
                self._cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=processes,
                    dashboard_address=None,
                    silence_logs=40,
                    **network,
                )
            self.name = "dask LocalCluster"
            # results straight from the workers (on this machine), not relayed by the scheduler
            self._client = Client(self._cluster, direct_to_workers=True)
            from app.batch._worker import limit_threads, preload_modules

            # the workers import what the tasks use now, as the pool's fork server does,
            # not in the first studies of the run
            self._client.run(preload_modules)
            if processes:  # nanny-started workers already limit BLAS/OpenMP threads
                self._client.run(limit_threads)
                # our own worker processes, to end them at once on Ctrl-C
                self._worker_pids = list(self._client.run(os.getpid).values())
        else:
            if not address.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
                raise UserError(
                    f"--scheduler: {address!r} is not 'local' or an address like tcp://HOST:PORT"
                )
            try:
                self._client = Client(address, timeout="10s")
            except OSError as exc:
                raise UserError(f"--scheduler: cannot connect to {address}: {exc}") from None
            self.name = f"dask scheduler {address}"
            self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))

    def imap_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Result]:
        from distributed import as_completed

        window = 2 * max(self.workers, 1)  # chunks in flight: one running, one waiting per worker
        iterator = enumerate(items)
        sizer = _ChunkSizer(self.workers, operator.length_hint(items, 0))
        prefix = f"{getattr(fn, '__name__', 'task')}-chunk"
        indices_of: dict[str, list[int]] = {}
        live: dict[str, Any] = {}  # submitted, not yet yielded
        completed = as_completed(loop=self._client.loop, with_results=True, raise_errors=False)

        def submit() -> bool:
            chunk = list(islice(iterator, sizer.next_size()))
            if not chunk:
                return False
            future = self._client.submit(
                run_chunk, fn, [item for _, item in chunk], key=f"{prefix}-{uuid.uuid4().hex}"
            )
            indices_of[future.key] = [index for index, _ in chunk]
            live[future.key] = future
            completed.add(future)
            return True

        try:
            while len(live) < window and submit():
                pass
            for future, result in completed:
                live.pop(future.key, None)
                indices = indices_of.pop(future.key)
                if future.status == "finished":
                    outputs, seconds = result
                    sizer.observe(len(indices), seconds)
                else:  # lost task, killed worker: the cluster failed, not the studies
                    reason = ("worker: the task failed on the cluster "
                              f"({type(_exception_of(result)).__name__})")
                    outputs = [(None, reason)] * len(indices)
                future.release()
                submit()
                for index, (output, error) in zip(indices, outputs, strict=True):
                    yield index, output, error
        except KeyboardInterrupt:
            # Keep what the workers finished, then stop the cluster's work now.
            outstanding = [f for f in live.values() if f.status == "finished"]
            finished: list[tuple[int, Any]] = []
            if outstanding:
                try:
                    results = self._client.gather(outstanding, errors="skip", direct=True)
                    finished = [
                        (index, output)
                        for f, (outputs, _) in zip(outstanding, results, strict=False)
                        for index, (output, error) in zip(indices_of[f.key], outputs, strict=True)
                        if error is None
                    ]
                except Exception:  # the cluster is going away: keep what is journaled
                    finished = []
            self.abort()
            for index, result in finished:
                yield index, result, None
            raise

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def abort(self) -> None:
        # A deliberate teardown: the scheduler (in this process for a LocalCluster) and the
        # client log every connection the killed workers drop, with a traceback, on the
        # user's terminal. Nothing of it is news after "interrupted".
        import logging

        names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in _DASK_LOGGERS]
        for name in {*_DASK_LOGGERS, *names}:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        try:
            self._client.cancel(list(self._client.futures.values()), force=True)
        except Exception:  # already disconnected
            pass
        try:
            self._client.close(timeout=2)
        except Exception:
            pass
        if self._cluster is not None:
            # Busy workers do not stop for a close request before their task ends:
            # the LocalCluster's workers are this run's own processes, end them.
            import signal

            for pid in self._worker_pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                self._cluster.close(timeout=1)
            except Exception:  # the nannies time out on the killed workers: nothing to wait for
                pass


def run_chunk(fn: Callable[[Any], Any], items: list[Any]) -> tuple[list[tuple[Any, str | None]], float]:
    """Run ``fn`` on each item of one Dask task, in order.

    Parameters
    ----------
    fn : callable
        The per-item function (catches its own exceptions; one that escapes
        costs its item, reported as a cluster failure, not the chunk).
    items : list

    Returns
    -------
    outputs : list of (result, error) tuples
        ``error`` is None or the one-line reason the item could not complete.
    seconds : float
        Wall time of the whole chunk in the worker (sizes the next chunks).
    """
    start = time.perf_counter()
    outputs: list[tuple[Any, str | None]] = []
    for item in items:
        try:
            outputs.append((fn(item), None))
        except Exception as exc:
            outputs.append((None, f"worker: the task failed on the cluster ({type(exc).__name__})"))
    return outputs, time.perf_counter() - start


def _exception_of(result: Any) -> BaseException:
    """The exception of a failed future as ``as_completed(..., raise_errors=False)`` gives it."""
    if isinstance(result, BaseException):
        return result
    if isinstance(result, tuple) and len(result) > 1 and isinstance(result[1], BaseException):
        return result[1]
    return RuntimeError(str(result))


class _ChunkSizer:
    """How many items the next Dask task carries.

    The first chunks are single items (nothing is known of their cost); then
    each chunk holds about :data:`DASK_CHUNK_SECONDS` of work at the mean cost
    per item seen so far, but never more than a ``1 / (2 * workers)`` share of
    the items not yet sent (guided self-scheduling: the chunks shrink towards
    the end, so no worker is left with a long chunk while the others idle).

    Parameters
    ----------
    workers : int
    total : int
        Number of items, 0 if unknown (then only the cost bound applies).
    """

    def __init__(self, workers: int, total: int) -> None:
        self.workers = max(1, workers)
        self.remaining = total if total > 0 else None
        self.items = 0
        self.seconds = 0.0

    def observe(self, items: int, seconds: float) -> None:
        """A chunk of ``items`` items took ``seconds`` in its worker."""
        self.items += items
        self.seconds += max(0.0, seconds)

    def next_size(self) -> int:
        """Items of the next chunk (at least 1)."""
        size = 1
        if self.items and self.seconds > 0:
            size = max(1, int(DASK_CHUNK_SECONDS * self.items / self.seconds))
        elif self.items:  # finished in no measurable time
            size = 64
        if self.remaining is not None:
            size = min(size, max(1, math.ceil(self.remaining / (2 * self.workers))))
            self.remaining = max(0, self.remaining - size)
        return size


def make_executor(workers: int = 1, scheduler: str | None = None) -> Executor:
    """The executor for the command-line options.

    Parameters
    ----------
    workers : int
        ``--workers``: size of the process pool (or of a LocalCluster).
        :class:`SerialExecutor` (everything in this process) is for the API
        and debugging.
    scheduler : str, optional
        ``--scheduler``: ``local`` or ``tcp://HOST:PORT`` for Dask.
    """
    if workers < 1:
        raise UserError(f"--workers: must be at least 1, got {workers}")
    if scheduler:
        return DaskExecutor(scheduler, workers)
    # Even one worker is a separate process: a decoder that crashes costs one
    # study, not the run, and the worker runs its libraries single-threaded.
    return PoolExecutor(min(workers, 4 * MAX_LOCAL_WORKERS))
