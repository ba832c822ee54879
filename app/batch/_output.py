"""The run's tables appear together: all from the previous run or all from this one.

Every table of a run is written into a staging folder (``RESULTS_DIR/.work/staging``)
first.  Only when all of them are complete on disk is a commit marker written,
and the tables are then renamed into the results folder one by one (a rename
needs no space, so a full disk can only stop the writing, before anything is
replaced).  If the process dies between the marker and the last rename, the
next run (or any call to :func:`finish_interrupted_swap`) completes the swap
from the marker; a staging folder without a marker is an unfinished run's and
is discarded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from app.atomic import atomic_write_text

__all__ = ["StagedTables", "finish_interrupted_swap"]

_MARKER = "COMMITTED"


def _staging(out_dir: Path) -> Path:
    return out_dir / ".work" / "staging"


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def finish_interrupted_swap(out_dir: Path) -> list[str]:
    """Complete a swap a killed run committed but did not finish; drop an uncommitted staging.

    Returns
    -------
    list of str
        The tables moved into place now (empty when there was nothing to finish).
    """
    staging = _staging(out_dir)
    marker = staging / _MARKER
    moved: list[str] = []
    if marker.is_file():
        names = [n for n in marker.read_text(encoding="utf-8").splitlines() if n]
        for name in names:
            if (staging / name).is_file():
                os.replace(staging / name, out_dir / name)
                moved.append(name)
        _fsync_dir(out_dir)
    if staging.exists():
        shutil.rmtree(staging, ignore_errors=True)
    return moved


class StagedTables:
    """Write a run's tables beside the results folder, then swap them in together.

    Parameters
    ----------
    out_dir : Path
        The results folder.

    Examples
    --------
    >>> tables = StagedTables(out_dir)            # doctest: +SKIP
    >>> write_csv(tables.path("results.csv"), rows, columns)   # doctest: +SKIP
    >>> tables.commit()                            # doctest: +SKIP
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        finish_interrupted_swap(self.out_dir)
        self.staging = _staging(self.out_dir)
        self.staging.mkdir(parents=True, exist_ok=True)
        self.names: list[str] = []

    def path(self, name: str) -> Path:
        """Where to write the table ``name`` (a file name in the results folder)."""
        if name not in self.names:
            self.names.append(name)
        return self.staging / name

    def commit(self) -> None:
        """Swap every staged table into the results folder (all written, else none)."""
        missing = [n for n in self.names if not (self.staging / n).is_file()]
        if missing:
            raise FileNotFoundError(f"staged table not written: {', '.join(missing)}")
        _fsync_dir(self.staging)
        atomic_write_text(self.staging / _MARKER, "\n".join(self.names) + "\n")
        finish_interrupted_swap(self.out_dir)

    def discard(self) -> None:
        """Drop what was staged (the results folder keeps the previous run's tables)."""
        shutil.rmtree(self.staging, ignore_errors=True)
