"""A dependency-free progress bar on stderr with rate and ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (or ``M:SS`` under an hour); ``--:--`` when unknown."""
    if seconds != seconds or seconds == float("inf") or seconds < 0:
        return "--:--"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts finished items and shows ``label: done/total [bar] pct rate ETA``.

    On a terminal the line is redrawn in place (at most 10 times a second); on
    a pipe or log file a full line is printed every 10 % or 30 s, so logs of
    unattended runs stay short.

    Parameters
    ----------
    total : int
        Number of items.
    label : str
        What is counted (``studies``).
    stream : file, optional
        Where to draw; stderr by default.
    enabled : bool
        False draws nothing (``--quiet``).
    clock : callable, optional
        Time source in seconds (tests pass a fake clock).
    """

    def __init__(
        self,
        total: int,
        label: str = "studies",
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
        clock=time.monotonic,
    ) -> None:
        self.total = max(0, int(total))
        self.label = label
        self.done = 0
        self.failed = 0
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled and self.total > 0
        self._clock = clock
        self._start = clock()
        self._last_draw = -1.0
        self._last_decile = -1
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())

    @property
    def rate(self) -> float:
        """Items per second since the start (0 before the first one)."""
        elapsed = self._clock() - self._start
        return self.done / elapsed if elapsed > 0 and self.done else 0.0

    @property
    def eta_seconds(self) -> float:
        """Estimated seconds left (inf before the first item)."""
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else float("inf")

    def line(self, width: int = 24) -> str:
        """The progress line as text."""
        fraction = self.done / self.total if self.total else 1.0
        filled = round(fraction * width)
        bar = "=" * filled + (">" if filled < width else "") + " " * max(0, width - filled - 1)
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"{self.label}: {self.done}/{self.total}{failed} [{bar}] {100 * fraction:3.0f}% "
            f"{self.rate:.2f} {self.label}/s ETA {format_duration(self.eta_seconds)}"
        )

    def advance(self, n: int = 1, *, failed: bool = False) -> None:
        """Count ``n`` finished items (``failed`` counts them as failures too)."""
        self.done += n
        if failed:
            self.failed += n
        if not self._enabled:
            return
        now = self._clock()
        if self._tty:
            if now - self._last_draw >= 0.1 or self.done >= self.total:
                self._stream.write("\r" + self.line())
                self._stream.flush()
                self._last_draw = now
            return
        decile = (10 * self.done) // self.total
        if decile > self._last_decile or now - self._last_draw >= 30 or self.done >= self.total:
            self._stream.write(self.line() + "\n")
            self._stream.flush()
            self._last_draw = now
            self._last_decile = decile

    def close(self) -> None:
        """End the line on a terminal."""
        if self._enabled and self._tty:
            self._stream.write("\n")
            self._stream.flush()
        self._enabled = False
