"""Worker processes end when the batch process is killed (kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_BATCH = r"""
import sys, time
from app.batch import {executor}
pool = {make}
{start}
print("ready", flush=True)
time.sleep(600)
"""
_POOL = dict(executor="PoolExecutor", make="PoolExecutor(2)",
             start="futures = [pool._ensure_pool().submit(time.sleep, 300) for _ in range(2)]\n"
                   "time.sleep(1.0)")
_DASK = dict(executor="DaskExecutor", make="DaskExecutor('local', 2)",
             start="futures = [pool._client.submit(time.sleep, 300, pure=False) for _ in range(2)]\n"
                   "time.sleep(1.0)")


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        todo += children
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["pool", "dask"])
def test_workers_end_within_seconds_of_a_killed_batch(kind):
    script = _BATCH.format(**(_POOL if kind == "pool" else _DASK))
    batch = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    helpers: list[int] = []
    try:
        assert batch.stdout.readline().strip() == "ready"
        helpers = _descendants(batch.pid)
        assert len(helpers) >= 3  # fork server or nannies, and two busy workers
        os.kill(batch.pid, signal.SIGKILL)
        batch.wait(10)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(map(_running, helpers)):
            time.sleep(0.1)
        assert [pid for pid in helpers if _running(pid)] == []
    finally:
        for pid in [batch.pid, *helpers]:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        batch.wait(10)
