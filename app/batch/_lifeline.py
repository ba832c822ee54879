"""Worker processes end when the batch that started them dies.

A batch killed with ``kill -9`` (or the out-of-memory killer) cannot shut its
pool down: the fork server, the resource tracker and the workers would go on
for minutes holding memory and files.  Every helper process therefore watches
the batch process itself:

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` ends a process the moment the
  process that forked it ends (a worker forked by the fork server goes with it);
- a watchdog thread waits on the batch's pid (``pidfd_open``, else polling
  every 0.5 s) and ends this process when the batch is gone, whoever forked it.

The fork server itself gets the watchdog through a preloaded module
(``app.batch._lifeline_forkserver``): it reads the batch's pid from the
environment variable :data:`PARENT_ENV`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
import threading
import time

__all__ = ["PARENT_ENV", "end_with_parent"]

#: Environment variable holding the pid of the batch process (set for the fork server).
PARENT_ENV = "LUMBAR_INSTABILITY_BATCH_PID"
_PR_SET_PDEATHSIG = 1
_started: set[int] = set()
# A forked child has no watchdog thread (threads do not survive fork) and no
# death signal (cleared by fork): it must be able to set up its own.
os.register_at_fork(after_in_child=_started.clear)


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (cannot happen for our parent)
        return True
    return True


def _watch(pid: int) -> None:
    fd = None
    with contextlib.suppress(AttributeError, OSError):
        fd = os.pidfd_open(pid)  # Linux >= 5.3: readable once the process has ended
    if fd is not None:
        while True:
            readable, _, _ = select.select([fd], [], [], 5.0)
            if readable or not _alive(pid):
                break
    else:
        while _alive(pid):
            time.sleep(0.5)
    _kill_self()


def end_with_parent(pid: int | None = None) -> None:
    """End this process (SIGKILL) when process ``pid`` (default: the parent) ends.

    Safe to call more than once; does nothing when ``pid`` is this process.

    Parameters
    ----------
    pid : int, optional
        The batch process.  Without it, the process that started this one.
    """
    pid = os.getppid() if pid is None else int(pid)
    if pid == os.getpid() or pid in _started:
        return
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if not _alive(pid):  # the batch died before we got here
        _kill_self()
    _started.add(pid)
    threading.Thread(target=_watch, args=(pid,), name="lumbar-lifeline", daemon=True).start()
