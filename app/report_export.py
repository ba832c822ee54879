"""Write a report in the formats its file names ask for (.pdf, .dcm, .csv, .json, .png).

One entry point for the viewer's export (which runs it in the worker process,
:mod:`app.background`, so the window never waits for it) and for scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import UserError

__all__ = ["FORMATS", "ExportOutcome", "write_export", "write_report", "write_reports"]

FORMATS = (".pdf", ".dcm", ".csv", ".json", ".png")


def write_report(
    path: str | Path,
    report: Any,
    films: Mapping[str, Any] | None = None,
    *,
    sr_identity: Any = None,
    anonymise: bool = False,
) -> Path:
    """Write ``report`` (:class:`app.report_data.ReportData`) in the format of ``path``'s suffix.

    ``anonymise`` leaves the patient's name, ID and birth date out of the PDF and
    the SR (the CSV, JSON and PNG never hold them; text burned into the pixels
    of a film is not removed).

    Raises
    ------
    UserError
        An unknown suffix.
    """
    path = Path(path)
    films = dict(films or {})
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        from app.report_pdf import write_pdf

        return write_pdf(report, path, films=films or None, sr_identity=sr_identity, anonymise=anonymise)
    if suffix == ".dcm":
        from app.report_sr import write_sr

        return write_sr(report, path, anonymise=anonymise)
    if suffix == ".csv":
        from app.report_tables import write_csv

        return write_csv(report, path)
    if suffix == ".json":
        from app.report_tables import write_json

        return write_json(report, path)
    if suffix == ".png":
        from app.report_tables import write_png

        images = {v: f.display_image() for v, f in films.items()}
        return write_png(report, path, images=images or None)
    raise UserError(f"{path}: unknown report format (use {', '.join(FORMATS)})")


def write_reports(
    paths: Sequence[str | Path],
    report: Any,
    films: Mapping[str, Any] | None = None,
    *,
    sr_identity: Any = None,
    checkpoint: Callable[[float], None] | None = None,
    anonymise: bool = False,
) -> list[Path]:
    """:func:`write_report` for each path; ``checkpoint(fraction)`` between files (may raise to stop)."""
    written = []
    for k, path in enumerate(paths):
        if checkpoint is not None:
            checkpoint(k / len(paths))
        written.append(write_report(path, report, films, sr_identity=sr_identity, anonymise=anonymise))
    return written


@dataclass(frozen=True)
class ExportOutcome:
    """What became of one file of an export.

    Attributes
    ----------
    path : Path
    error : str
        ``""`` when written; else the one-line reason (the file is then absent
        or unchanged: every writer is atomic).
    """

    path: Path
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def write_export(
    paths: Sequence[str | Path],
    report: Any,
    films: Mapping[str, Any] | None = None,
    *,
    sr_identity: Any = None,
    checkpoint: Callable[[float], None] | None = None,
    anonymise: bool = False,
) -> list[ExportOutcome]:
    """Write every file of an export (the viewer's export dialog): one failure costs one file.

    Like :func:`write_reports`, but a file that cannot be written (disk full, no
    permission, an SR whose films are missing) is reported with its reason and
    the others are still written.  ``checkpoint`` may raise (cancel): the files
    not yet written are then skipped.

    Returns
    -------
    list of ExportOutcome
        One per path, in order.
    """
    outcomes = []
    for k, path in enumerate(paths):
        if checkpoint is not None:
            checkpoint(k / len(paths))
        try:
            write_report(path, report, films, sr_identity=sr_identity, anonymise=anonymise)
        except UserError as exc:
            outcomes.append(ExportOutcome(Path(path), str(exc)))
        except OSError as exc:
            outcomes.append(ExportOutcome(Path(path), exc.strerror or str(exc)))
        except ValueError as exc:  # e.g. a PNG without any film image
            outcomes.append(ExportOutcome(Path(path), str(exc)))
        else:
            outcomes.append(ExportOutcome(Path(path)))
    return outcomes
