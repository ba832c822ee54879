"""Write a report in the formats its file names ask for (.pdf, .dcm, .csv, .json, .png).

One entry point for the viewer's export (which runs it in the worker process,
:mod:`app.background`, so the window never waits for it) and for scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from app.errors import UserError

__all__ = ["FORMATS", "write_report", "write_reports", "write_session_reports"]

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


def write_session_reports(
    paths: Sequence[str | Path],
    session: dict[str, Any],
    session_path: str | Path | None = None,
    films: Mapping[str, Any] | None = None,
    *,
    image_paths: Mapping[str, str | Path] | None = None,
    sr_identity: Any = None,
    checkpoint: Callable[[float], None] | None = None,
) -> list[Path]:
    """Build the report of a session dict and write it in each format asked for.

    The viewer's export runs this whole in its worker process: building the
    report hashes both image files and measures the landmarks again (together
    60-130 ms that used to stall the window before the writing started).

    Parameters
    ----------
    paths : sequence of path
        One file per format (by suffix, :data:`FORMATS`).
    session : dict
        The session file's content (``Session.to_json()``).
    session_path : path, optional
        Where the session is saved (relative image paths and the report's source).
    films : mapping of str to Film, optional
        The loaded films by view (drawn in the PDF and PNG).
    image_paths : mapping of str to path, optional
        Each film's file (checked against the SHA-256 the session recorded).

    Raises
    ------
    UserError
        A safety warning of the session is not acknowledged (nothing is written),
        or an unknown format.
    """
    from app.report_data import report_from_session
    from app.safety import require_acknowledged

    report = report_from_session(session, session_path, image_paths=image_paths)
    require_acknowledged(report.safety, report.safety_acknowledged)
    if checkpoint is not None:
        checkpoint(0.0)
    return write_reports(paths, report, films, sr_identity=sr_identity, checkpoint=checkpoint)
