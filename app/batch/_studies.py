"""One row per study (``studies.csv`` / ``studies.parquet``) from the per-segment rows.

A study's row names its unstable and borderline levels, its *worst* segment
(the one whose value is furthest beyond, or closest to, its threshold: the
largest ratio ``|value| / threshold`` over the criteria in use), the largest
motion at any level, and its dates, so that patients followed over time can
be put in order (``days_since_first_study``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

__all__ = ["STUDY_SCHEMA", "dicom_date", "study_rows"]

#: Columns of ``studies.csv`` / ``studies.parquet``, in order, with their types.
STUDY_SCHEMA: tuple[tuple[str, str], ...] = (
    ("patient_id", "string"),
    ("study_instance_uid", "string"),
    ("study_date", "string"),
    ("acquisition_date", "string"),
    ("days_since_first_study", "int64"),
    ("flexion_sop_instance_uid", "string"),
    ("extension_sop_instance_uid", "string"),
    ("flexion_file", "string"),
    ("extension_file", "string"),
    ("pairing", "string"),
    ("landmark_method", "string"),
    ("criteria", "string"),
    ("flexion_calibration_source", "string"),
    ("extension_calibration_source", "string"),
    ("segments", "int64"),
    ("segments_measured", "int64"),
    ("unstable", "bool"),
    ("unstable_count", "int64"),
    ("unstable_levels", "string"),
    ("borderline_levels", "string"),
    ("worst_segment", "string"),
    ("worst_criterion", "string"),
    ("worst_threshold_ratio", "float64"),
    ("worst_translation_mm", "float64"),
    ("worst_translation_pct", "float64"),
    ("worst_angulation_deg", "float64"),
    ("max_abs_translation_mm", "float64"),
    ("max_abs_translation_pct", "float64"),
    ("max_abs_angulation_deg", "float64"),
    ("warnings", "string"),
)

_STUDY_COLUMNS = (
    "patient_id", "study_instance_uid", "study_date", "acquisition_date",
    "flexion_sop_instance_uid", "extension_sop_instance_uid", "flexion_file", "extension_file",
    "pairing", "landmark_method", "criteria", "flexion_calibration_source",
    "extension_calibration_source",
)  # fmt: skip
_KINDS = ("translation_mm", "translation_pct", "angulation_deg")


def dicom_date(text: str) -> date | None:
    """``YYYYMMDD…`` (a DICOM DA, or the start of a DT) as a date; None when not a date."""
    digits = (text or "").strip()[:8]
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _threshold_ratio(row: Mapping[str, Any], criteria) -> tuple[float, str]:
    """Largest ``|value| / threshold`` of a segment over the criteria in use, and which."""
    best, which = math.nan, ""
    for kind in _KINDS:
        threshold = criteria.threshold(kind, row["segment"])
        value = abs(_number(row.get(kind)))
        if not (math.isfinite(threshold) and math.isfinite(value)):
            continue
        ratio = value / threshold
        if not ratio <= best:  # also when best is NaN
            best, which = ratio, kind
    return best, which


def _max_abs(rows: Sequence[Mapping[str, Any]], key: str) -> float:
    values = [abs(_number(r.get(key))) for r in rows if r.get("measured")]
    values = [v for v in values if math.isfinite(v)]
    return max(values) if values else math.nan


def study_rows(
    rows: Sequence[Mapping[str, Any]], criteria: Any, days: Mapping[tuple[str, str], int] | None = None
) -> list[dict[str, Any]]:
    """Summarise the per-segment rows of ``results`` into one row per study.

    Parameters
    ----------
    rows : sequence of mapping
        ``results`` rows (keys of ``RESULT_SCHEMA``); the rows of one study are
        consecutive and share ``study_instance_uid`` and ``flexion_sop_instance_uid``.
    criteria : str or measure.Criteria
        The criteria the rows were measured with (for the worst segment).
    days : mapping, optional
        ``(study_instance_uid, flexion_sop_instance_uid)`` → day number (any
        origin, e.g. ``date.toordinal()``) of the study; gives
        ``days_since_first_study`` per patient.  Absent: from ``study_date``,
        else ``acquisition_date`` of the rows.

    Returns
    -------
    list of dict
        Keys of :data:`STUDY_SCHEMA`, in the order of the studies in ``rows``.
    """
    from measure import get_criteria

    spec = get_criteria(criteria)
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(
            (str(row.get("study_instance_uid", "")), str(row.get("flexion_sop_instance_uid", ""))),
            [],
        ).append(row)
    out = []
    day_of: dict[tuple[str, str], int | None] = {}
    for key, segments in groups.items():
        first = segments[0]
        study: dict[str, Any] = {name: first.get(name, "") for name in _STUDY_COLUMNS}
        measured = [s for s in segments if s.get("measured")]
        unstable = [s["segment"] for s in measured if s.get("unstable")]
        borderline = [s["segment"] for s in measured if s.get("borderline")]
        ratios = [(_threshold_ratio(s, spec), s) for s in measured]
        ratios = [(r, s) for r, s in ratios if math.isfinite(r[0])]
        study |= {
            "segments": len(segments),
            "segments_measured": len(measured),
            "unstable": bool(unstable),
            "unstable_count": len(unstable),
            "unstable_levels": ";".join(unstable),
            "borderline_levels": ";".join(borderline),
            "max_abs_translation_mm": _max_abs(segments, "translation_mm"),
            "max_abs_translation_pct": _max_abs(segments, "translation_pct"),
            "max_abs_angulation_deg": _max_abs(segments, "angulation_deg"),
            "warnings": first.get("warnings", ""),
        }
        if ratios:
            (ratio, kind), worst = max(ratios, key=lambda item: item[0][0])
            study |= {
                "worst_segment": worst["segment"],
                "worst_criterion": kind,
                "worst_threshold_ratio": ratio,
                "worst_translation_mm": _number(worst.get("translation_mm")),
                "worst_translation_pct": _number(worst.get("translation_pct")),
                "worst_angulation_deg": _number(worst.get("angulation_deg")),
            }
        else:
            study |= {"worst_segment": "", "worst_criterion": "", "worst_threshold_ratio": math.nan,
                      "worst_translation_mm": math.nan, "worst_translation_pct": math.nan,
                      "worst_angulation_deg": math.nan}
        if days is not None and key in days:
            day_of[key] = days[key]
        else:
            when = dicom_date(str(study["study_date"]).replace("-", "")) or dicom_date(
                str(study["acquisition_date"]).replace("-", "")
            )
            day_of[key] = when.toordinal() if when else None
        out.append(study)
    first_day: dict[str, int] = {}
    for key, study in zip(groups, out, strict=True):
        day = day_of[key]
        if day is not None:
            patient = str(study["patient_id"])
            first_day[patient] = min(first_day.get(patient, day), day)
    for key, study in zip(groups, out, strict=True):
        day = day_of[key]
        study["days_since_first_study"] = (
            None if day is None else day - first_day[str(study["patient_id"])]
        )
    return out
