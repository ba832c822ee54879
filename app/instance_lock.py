"""Which viewer instances are running, by lock files holding their process id.

A viewer writes ``viewer.<pid>.lock`` in the state directory while it runs.
The "Recover unsaved work" offer is only made when no other live instance
holds a lock (its recovery file is that instance's current work, not a
crash's leftovers), and a second instance autosaves to a file of its own.
A lock whose process is gone (a crash) is ignored and removed.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.atomic import atomic_write_text

__all__ = ["InstanceLock", "other_instances"]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def other_instances(state_dir: str | os.PathLike[str]) -> list[int]:
    """Process ids of the other live viewers; stale locks are removed."""
    others = []
    for lock in Path(state_dir).glob("viewer.*.lock"):
        try:
            pid = int(lock.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            continue
        if pid == os.getpid():
            continue
        if _alive(pid):
            others.append(pid)
        else:
            lock.unlink(missing_ok=True)
    return sorted(others)


class InstanceLock:
    """This process's lock file in ``state_dir`` (released by :meth:`release`)."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.path = Path(state_dir) / f"viewer.{os.getpid()}.lock"
        atomic_write_text(self.path, f"{os.getpid()}\n")

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
