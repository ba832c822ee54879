"""Write a report in the formats its file names ask for (.pdf, .dcm, .csv, .json, .png).

One entry point for the viewer's export (which runs it in the worker process,
:mod:`app.background`, so the window never waits for it) and for scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from app.errors import UserError

__all__ = ["FORMATS", "write_report", "write_reports"]

FORMATS = (".pdf", ".dcm", ".csv", ".json", ".png")


def write_report(path: str | Path, report: Any, films: Mapping[str, Any] | None = None, *, sr_identity: Any = None) -> Path:
    """Write ``report`` (:class:`app.report_data.ReportData`) in the format of ``path``'s suffix.

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

        return write_pdf(report, path, films=films or None, sr_identity=sr_identity)
    if suffix == ".dcm":
        from app.report_sr import write_sr

        return write_sr(report, path)
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
) -> list[Path]:
    """:func:`write_report` for each path; ``checkpoint(fraction)`` between files (may raise to stop)."""
    written = []
    for k, path in enumerate(paths):
        if checkpoint is not None:
            checkpoint(k / len(paths))
        written.append(write_report(path, report, films, sr_identity=sr_identity))
    return written
