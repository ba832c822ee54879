"""Per-study reports (``--pdf``, ``--sr``) through the report modules of issue #6.

The parent builds, per measured study, the same session dict the viewer saves
(``docs/architecture.md``, "The session file") with the batch's landmarks,
calibration and result rows; a worker turns it into a PDF and/or a DICOM SR
with ``app.report_pdf`` / ``app.report_sr``.  Reports are written next to the
tables, under ``RESULTS_DIR/reports/``; a report that already exists is not
redone on a rerun.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import __version__
from app.batch._records import StudyOutcome, StudyPlan

__all__ = ["ReportTask", "session_dict", "write_reports"]

CORNERS = ("AS", "PS", "PI", "AI")


def _film_entry(plan: StudyPlan, outcome: StudyOutcome, role: str, root: Path) -> dict[str, Any]:
    record = getattr(plan, role)
    levels = outcome.levels
    marks = getattr(outcome, f"{role}_landmarks")
    sds = getattr(outcome, f"{role}_sd_mm") or [[math.nan] * 4 for _ in levels]
    placement = getattr(outcome, f"{role}_placement") or [[""] * 4 for _ in levels]

    def finite(value) -> bool:
        return isinstance(value, int | float) and math.isfinite(value)

    landmarks, placements, sd_map = {}, {}, {}
    for v, level in enumerate(levels):
        corners = {c: [float(marks[v][k][0]), float(marks[v][k][1])]
                   for k, c in enumerate(CORNERS) if finite(marks[v][k][0]) and finite(marks[v][k][1])}
        if corners:
            landmarks[level] = corners
            placements[level] = {c: placement[v][k] for k, c in enumerate(CORNERS)
                                 if c in corners and placement[v][k]}
            sd_map[level] = {c: float(sds[v][k]) for k, c in enumerate(CORNERS)
                             if c in corners and finite(sds[v][k])}
    spacing = getattr(outcome, f"{role}_spacing_mm")
    # the decoded film's size (the header's in older journals): the report's field-of-view
    # check of the spacing needs it (issue 14 §1)
    size = getattr(outcome, f"{role}_image_size", None) or (
        [record.rows, record.columns] if record.rows and record.columns else None)
    return {
        "pixel_spacing_mm": list(spacing) if spacing else None,
        "calibration_source": getattr(outcome, f"{role}_calibration_source"),
        "calibration_detail": getattr(outcome, f"{role}_calibration_detail"),
        "manual_calibration": None,
        "image": {
            "path": str(root / record.path),
            "sop_instance_uid": record.sop_instance_uid,
            "series_instance_uid": record.series_instance_uid,
            "study_instance_uid": record.study_instance_uid,
        },
        "landmarks": landmarks,
        "placement": placements,
        "landmark_sd_mm": sd_map,
        **({"image_size": [int(size[0]), int(size[1])]} if size else {}),
    }


def session_dict(
    plan: StudyPlan, outcome: StudyOutcome, records: list[dict[str, Any]], criteria: str,
    root: Path,
) -> dict[str, Any]:
    """The session dict of one measured study (what the viewer would have saved)."""
    return {
        "format": "lumbar-instability-session",
        "format_version": 1,
        "software_version": __version__,
        "levels": list(outcome.levels),
        "criteria": criteria,
        "flexion": _film_entry(plan, outcome, "flexion", root),
        "extension": _film_entry(plan, outcome, "extension", root),
        "results": {"segments": records},
    }


@dataclass(frozen=True, slots=True)
class ReportTask:
    """One study's reports: the session dict and where to write."""

    session: dict
    pdf_path: str = ""
    sr_path: str = ""


def write_reports(task: ReportTask) -> str:
    """Write the PDF and/or SR of one study (runs in a worker); returns '' or a failure reason."""
    from app.errors import UserError
    from app.report_data import report_from_session

    try:
        # the image paths are the films this run found in INPUT_DIR, not read from a file
        report = report_from_session(task.session, verify_images=False, trust_paths=True)
        if task.sr_path:
            from app.report_sr import write_sr

            write_sr(report, task.sr_path)
        if task.pdf_path:
            try:
                from app.report_pdf import write_pdf
            except ImportError:
                return "report: PDF reports are not available in this installation"
            write_pdf(report, task.pdf_path)
    except UserError as exc:
        return f"report: {exc}"
    except OSError as exc:
        return f"report: cannot write: {exc.strerror or exc}"
    except Exception as exc:  # one study's report must not stop the run
        return f"report: {type(exc).__name__} while writing the report"
    return ""
