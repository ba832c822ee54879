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

__all__ = ["FORMATS", "ExportOutcome", "SessionReport", "write_export", "write_report", "write_reports"]

FORMATS = (".pdf", ".dcm", ".csv", ".json", ".png")


@dataclass(frozen=True)
class SessionReport:
    """A report still to be built from a session: what the viewer hands to its worker.

    Building the report (:func:`app.report_data.report_from_session`) hashes
    both image files and measures the landmarks again: 60-130 ms that stalled
    the window when done before the export started.  ``write_reports`` and
    ``write_export`` build it where they run (the worker process), then check
    that its safety warnings are acknowledged.

    Attributes
    ----------
    session : dict
        The session file's content (``Session.to_json()``).
    session_path : Path or None
        Where the session is saved (relative image paths, the report's source).
    image_paths : dict of str to str
        Each film's file by view (checked against the SHA-256 the session recorded).
    """

    session: dict[str, Any]
    session_path: Path | None = None
    image_paths: Mapping[str, str] | None = None

    def build(self) -> Any:
        """The :class:`app.report_data.ReportData`; raises UserError when a safety warning
        is not acknowledged."""
        from app.report_data import report_from_session
        from app.safety import require_acknowledged

        report = report_from_session(self.session, self.session_path, image_paths=self.image_paths)
        require_acknowledged(report.safety, report.safety_acknowledged)
        return report


def _built(report: Any) -> Any:
    return report.build() if isinstance(report, SessionReport) else report


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
    """:func:`write_report` for each path; ``checkpoint(fraction)`` between files (may raise to stop).

    ``report`` may be a :class:`SessionReport`, built here first.
    """
    report = _built(report)
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

    ``report`` may be a :class:`SessionReport`, built here first (a refusal,
    such as an unacknowledged safety warning, then raises UserError and
    nothing is written).

    Returns
    -------
    list of ExportOutcome
        One per path, in order.
    """
    report = _built(report)
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
