"""Measure how long the UI thread stops processing events, and say what ran then.

A :class:`StallProbe` runs a precise 5 ms ``QTimer`` on the UI thread and
records when each tick arrives: a gap between two ticks is a time the event
loop could not run (the window could not repaint, pan or take a key).  A
sampling thread records, every 2 ms, the Python stack of the UI thread
and how late the sampler itself woke up (it needs the GIL: a late sample means
another thread held the GIL, or the CPU was busy).  :meth:`StallProbe.stop`
returns a :class:`StallReport`: the longest gap, the 99th percentile of the
gaps and, for the worst gap, the project functions the UI thread was in.

Used by ``benchmarks/bench_viewer.py`` and the stall test
(``tests/ui/test_background.py``); in the viewer,
``LUMBAR_INSTABILITY_STALL_LOG=100`` logs every stall longer than 100 ms with
what ran (:func:`install_stall_log`).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer

__all__ = ["StallProbe", "StallReport", "install_stall_log"]

_ROOT = Path(__file__).resolve().parents[1]
_PROJECT = tuple(str(_ROOT / p) for p in ("ui", "app", "measure", "benchmarks", "tests"))
_SELF = str(Path(__file__).resolve())
_log = logging.getLogger(__name__)


def _where(code_file: str, name: str, line: int) -> str:
    try:
        short = str(Path(code_file).resolve().relative_to(_ROOT))
    except ValueError:
        short = Path(code_file).name
    return f"{short}:{line} {name}"


@dataclass
class _Sample:
    t: float
    late_s: float  # how much later than asked the sampler ran (GIL or CPU elsewhere)
    frames: tuple[tuple[str, str, int], ...]  # UI thread, innermost first: (file, function, line)


def _schedstat_reader(native_id: int):
    """A function returning the thread's cumulative run-queue wait (s), or None (not Linux)."""
    path = f"/proc/self/task/{native_id}/schedstat"
    try:
        with open(path) as handle:
            handle.read()
    except OSError:
        return None

    def read() -> float:
        with open(path) as handle:
            return int(handle.read().split()[1]) * 1e-9

    return read


def _summarise_stack(frames: Sequence[tuple[str, str, int]], loop_depth: int | None) -> str:
    """The innermost project frame and up to two project callers, or what the UI thread was in."""
    if not frames:
        return "(no Python frame)"
    if loop_depth is not None and len(frames) <= loop_depth:
        # only the event loop's caller on the stack: Qt's C++ work (layout, painting,
        # timers, image scaling) or waiting for the GIL
        return "Qt event loop (C++ work: layout/painting, or waiting for the GIL)"
    top_file, top_name, top_line = frames[0]
    inner = [f for f in frames if f[0].startswith(_PROJECT) and f[0] != _SELF]
    if not inner:
        return _where(*frames[0])
    chain = [_where(*f) for f in inner[:3]]
    where = chain[0]
    if inner[0] != frames[0]:
        where = f"{where} → {Path(top_file).name}:{top_line} {top_name}"
    return " ← ".join([where, *chain[1:]])


@dataclass
class StallReport:
    """Gaps of the event loop during one measured run.

    Attributes
    ----------
    gaps_s : ndarray of shape (n,)
        Time between consecutive ticks (the first from the start, the last to the stop), seconds.
    duration_s : float
        Whole measured time, seconds.
    worst_at_s : float
        Start of the longest gap, seconds after the start.
    worst_what : list of (str, int)
        For the longest gap: where the UI thread was, with the number of samples there.
    worst_samples : int
        Samples taken during the longest gap.
    worst_sampler_late_s : float
        Longest delay of the sampler within the longest gap (GIL held elsewhere or CPU busy).
    """

    gaps_s: np.ndarray
    duration_s: float
    worst_at_s: float = 0.0
    worst_what: list[tuple[str, int]] = field(default_factory=list)
    worst_samples: int = 0
    worst_sampler_late_s: float = 0.0
    ready_wait_s: np.ndarray | None = None

    @property
    def own_gaps_s(self) -> np.ndarray:
        """The gaps less the time the UI thread was ready but the OS gave it no CPU.

        On a shared machine other processes take the cores: that wait (read from
        Linux's per-thread ``schedstat``) is not work the viewer does on its UI
        thread.  What remains is the UI thread's own work, and its waits for the
        GIL or for I/O.  Equal to :attr:`gaps_s` where ``schedstat`` is missing.
        """
        if self.ready_wait_s is None:
            return self.gaps_s
        return np.maximum(self.gaps_s - np.minimum(self.ready_wait_s, self.gaps_s), 0.0)

    @property
    def longest_own_s(self) -> float:
        own = self.own_gaps_s
        return float(own.max()) if own.size else self.duration_s

    @property
    def worst_own_at_s(self) -> float:
        """Start of the longest own gap, seconds after the start."""
        own = self.own_gaps_s
        return float(np.concatenate([[0.0], np.cumsum(self.gaps_s)])[int(np.argmax(own))]) if own.size else 0.0

    @property
    def longest_s(self) -> float:
        return float(self.gaps_s.max()) if self.gaps_s.size else self.duration_s

    @property
    def p99_s(self) -> float:
        return float(np.percentile(self.gaps_s, 99)) if self.gaps_s.size else self.duration_s

    @property
    def ticks(self) -> int:
        return max(int(self.gaps_s.size) - 1, 0)

    def describe_worst(self, top: int = 3) -> str:
        """One line: what ran during the longest gap."""
        if not self.worst_samples:
            parts = ["no stack sample during the longest gap (sampler off, or it could not run)"]
        else:
            parts = [f"{what} ({n}/{self.worst_samples})" for what, n in self.worst_what[:top]]
        late = f"; sampler delayed up to {self.worst_sampler_late_s * 1000:.0f} ms" if self.worst_sampler_late_s > 0.003 else ""
        if self.ready_wait_s is not None and self.gaps_s.size:
            i = int(np.argmax(self.gaps_s))
            late += f"; UI thread waited {self.ready_wait_s[i] * 1000:.0f} ms for a CPU (other processes)"
        return "; ".join(parts) + late


class StallProbe(QObject):
    """Ticks a 5 ms timer on the UI thread and samples the UI thread's stack (see the module docstring).

    Parameters
    ----------
    interval_ms : int
        Timer interval.
    sample_ms : float
        Sampling period of the stack sampler; 0 disables the sampler (gaps only).
    """

    def __init__(self, interval_ms: int = 5, sample_ms: float = 2.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.stamps: list[float] = []
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._sample_s = sample_ms / 1000.0
        self._samples: list[_Sample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ui_ident = threading.get_ident()
        self._ready_wait = _schedstat_reader(threading.get_native_id())
        self._tick_waits: list[float] = []
        self._wait_t0 = 0.0
        self._loop_depth: int | None = None
        self.t0 = 0.0

    def _tick(self) -> None:
        self.stamps.append(time.perf_counter())
        if self._ready_wait is not None:  # read here, on the UI thread: exact at each tick
            self._tick_waits.append(self._ready_wait())
        # the depth of the event loop's own Python frames (its caller): a sample no deeper
        # than this is the event loop itself (Qt's C++ work, or waiting for the GIL)
        depth, frame = 0, sys._getframe(1)
        while frame is not None:
            depth, frame = depth + 1, frame.f_back
        self._loop_depth = depth if self._loop_depth is None else min(depth, self._loop_depth)

    def _sample_loop(self) -> None:
        period = self._sample_s
        ident = self._ui_ident
        due = time.perf_counter() + period
        while not self._stop.is_set():
            time.sleep(max(due - time.perf_counter(), 0.0))
            now = time.perf_counter()
            frame = sys._current_frames().get(ident)
            stack = []
            while frame is not None and len(stack) < 60:
                code = frame.f_code
                stack.append((code.co_filename, code.co_name, frame.f_lineno))
                frame = frame.f_back
            del frame
            self._samples.append(_Sample(now, max(now - due, 0.0), tuple(stack)))
            due = max(due + period, now + period / 2)

    def start(self) -> None:
        """Start ticking (and sampling) now."""
        self.stamps.clear()
        self._tick_waits.clear()
        self._samples.clear()
        self._loop_depth = None
        self._stop.clear()
        self.t0 = time.perf_counter()
        self._wait_t0 = self._ready_wait() if self._ready_wait is not None else 0.0
        self._timer.start()
        if self._sample_s > 0:
            self._thread = threading.Thread(target=self._sample_loop, name="stall-probe", daemon=True)
            self._thread.start()

    def _ready_wait_in(self, n_ticks: int, wait_t1: float) -> np.ndarray | None:
        """Per gap (start, ticks, stop): how long the UI thread waited for a CPU, or None.

        The counter is read on the UI thread at the start, at each tick and at
        the stop, so each gap's wait is exact (Linux adds a wait to the counter
        when the thread gets the CPU back, that is before the tick that ends it).
        """
        if self._ready_wait is None:
            return None
        waits = np.array([self._wait_t0, *self._tick_waits[:n_ticks], wait_t1])
        return np.maximum(np.diff(waits), 0.0)

    def stop(self) -> StallReport:
        """Stop, and report the gaps of the run since :meth:`start`."""
        t1 = time.perf_counter()
        wait_t1 = self._ready_wait() if self._ready_wait is not None else 0.0
        self._timer.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        times = np.array([self.t0, *[s for s in self.stamps if s <= t1], t1])
        gaps = np.diff(times)
        report = StallReport(gaps_s=gaps, duration_s=t1 - self.t0)
        report.ready_wait_s = self._ready_wait_in(len(times) - 2, wait_t1)
        if gaps.size:
            i = int(np.argmax(gaps))
            a, b = times[i], times[i + 1]
            report.worst_at_s = float(a - self.t0)
            inside = [s for s in self._samples if a < s.t <= b]
            # a sample taken late stands for the time it waited: where the UI thread was then
            report.worst_samples = len(inside)
            report.worst_what = Counter(_summarise_stack(s.frames, self._loop_depth) for s in inside).most_common()
            # a sampler that could not run during the gap takes its next sample late, just after it
            report.worst_sampler_late_s = max(
                (s.late_s for s in self._samples if a < s.t <= b + 0.005), default=0.0
            )
        return report


def install_stall_log(window, threshold_ms: float) -> StallProbe:
    """Log (warning) every event-loop stall of ``window``'s thread above ``threshold_ms``.

    For diagnosis on a reader's machine (``LUMBAR_INSTABILITY_STALL_LOG=100``);
    the stamps are trimmed as they are checked, so it can run for a whole session.
    """
    probe = StallProbe(parent=window)

    def check() -> None:
        report = probe.stop()
        if report.longest_s * 1000 > threshold_ms:
            _log.warning(
                "UI stall of %.0f ms: %s", report.longest_s * 1000, report.describe_worst()
            )
        probe.start()

    check_timer = QTimer(window)
    check_timer.setInterval(2000)
    check_timer.timeout.connect(check)
    probe.start()
    check_timer.start()
    probe._check_timer = check_timer  # kept alive with the probe
    return probe
