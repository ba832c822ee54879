"""Measure a report's landmarks again and compare with the values it stores.

A session file or an SR carries both the corners of every vertebral body and
the per-segment values computed from them.  Either can be edited by hand or
damaged on the way, and a reader who trusts the numbers must know when the two
no longer agree.  :func:`measure_session` recomputes the rows from the corners,
the pixel spacing, the corners' SDs and the criteria exactly as the viewer
does; :func:`stored_value_differences` lists every stored value the landmarks
do not give.  The report (``report`` command, PDF, review mode) then says
:data:`STORED_VALUES_DIFFER`.

It also gives what the viewer showed beside the table (endplate depths that
differ between the films, criteria that could not be applied) and measures a
landmarks file that holds no results (``report LANDMARKS.json``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COMPARED_KEYS",
    "STORED_VALUES_DIFFER",
    "Remeasurement",
    "measure_session",
    "stored_value_differences",
]

STORED_VALUES_DIFFER = "This report's stored values differ from its landmarks"
"""The sentence every output shows when a stored value disagrees with the corners."""

COMPARED_KEYS: tuple[str, ...] = (
    "measured",
    "flexion_angle_deg",
    "extension_angle_deg",
    "flexion_translation_mm",
    "extension_translation_mm",
    "flexion_translation_pct",
    "extension_translation_pct",
    "translation_mm",
    "translation_pct",
    "angulation_deg",
    "translation_mm_ci95",
    "translation_pct_ci95",
    "angulation_deg_ci95",
    "translation_unstable",
    "angulation_unstable",
    "unstable",
    "criterion",
    "borderline",
    "translation_assessed",
    "thresholds",
    "rotation_centre",
    "depth_ratio",
)
"""Row keys compared with the recomputation (every value ``measure`` derives from
the corners).  A key the stored row lacks is a difference, except for keys an
older version did not write (``rotation_centre``, ``depth_ratio``,
``translation_assessed``)."""

_OPTIONAL_KEYS = frozenset({"rotation_centre", "depth_ratio", "translation_assessed"})

_REL_TOL = 1e-9
_ABS_TOL = 1e-9


@dataclass
class Remeasurement:
    """The rows the landmarks give, with what the viewer shows beside them.

    Attributes
    ----------
    rows : list of dict
        One row per segment in the format of ``results.segments``.
    warnings : list of str
        The measurement's warnings (endplate depth mismatch, criteria that need
        millimetres, ...), one sentence each.
    """

    rows: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


def _criteria(value: Any):
    import measure

    if value is None:
        return measure.get_criteria("default")
    if isinstance(value, str):
        return measure.get_criteria(value)
    return measure.Criteria.from_dict(value, name=str(value.get("name") or "custom"))


def measure_session(session: Mapping[str, Any]) -> Remeasurement | None:
    """Recompute the per-segment rows of a session (or landmarks file) from its corners.

    Parameters
    ----------
    session : mapping
        A session dict (``docs/session-format.md``) or a landmarks file
        (``docs/landmarks-format.md``): ``levels``, ``criteria``, and per film
        ``landmarks``, ``pixel_spacing_mm``, ``calibration_source``,
        ``placement`` and ``landmark_sd_mm``.

    Returns
    -------
    Remeasurement or None
        None when there is nothing to measure (one film, no landmarks) or the
        content cannot be measured (unknown criteria, malformed corners).
    """
    import measure
    from app.errors import InputFileError
    from app.landmarks_io import parse_landmarks
    from app.report_data import finding_of
    from app.safety import image_shape_of, implausible_spacing

    if not all(isinstance(session.get(v), Mapping) for v in ("flexion", "extension")):
        return None
    try:
        study = parse_landmarks(dict(session))
        criteria = _criteria(session.get("criteria"))
        if len(study.levels) < 2:
            return None
        flex, ext = study.flexion, study.extension
        # a spacing giving implausible body depths is not used (app.safety, as the viewer)
        sp_f, sp_e = (
            None if implausible_spacing(measure.usable_corners(f.corners), f.spacing_mm,
                                        image_shape_of(f.extra))
            else f.spacing_mm
            for f in (flex, ext)
        )
        motion = measure.segmental_motion(
            measure.usable_corners(flex.corners),
            measure.usable_corners(ext.corners),
            flexion_spacing_mm=sp_f,
            extension_spacing_mm=sp_e,
            criteria=criteria,
            levels=study.levels,
            **flex.uncertainty().motion_kwargs("flexion"),
            **ext.uncertainty().motion_kwargs("extension"),
        )
    except (InputFileError, ValueError, KeyError, TypeError):
        return None
    rows = motion.to_records()
    for row in rows:
        row["finding"] = finding_of(row)
    return Remeasurement(rows, [w[:1].upper() + w[1:] + "." for w in motion.warnings()])


def _same(stored: Any, recomputed: Any) -> bool:
    if isinstance(recomputed, bool) or isinstance(stored, bool):
        return stored is recomputed
    if recomputed is None:
        return stored is None
    if isinstance(recomputed, int | float):
        if not isinstance(stored, int | float) or isinstance(stored, bool):
            return False
        if math.isnan(float(stored)):
            return False
        return math.isclose(float(stored), float(recomputed), rel_tol=_REL_TOL, abs_tol=_ABS_TOL)
    if isinstance(recomputed, list):
        return (isinstance(stored, list) and len(stored) == len(recomputed)
                and all(_same(a, b) for a, b in zip(stored, recomputed, strict=True)))
    if isinstance(recomputed, dict):
        return (isinstance(stored, dict) and stored.keys() == recomputed.keys()
                and all(_same(stored[k], recomputed[k]) for k in recomputed))
    return stored == recomputed


def _show(value: Any) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return "none" if value is None else str(value)


def stored_value_differences(
    stored: Sequence[Mapping[str, Any]], recomputed: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Every way the stored rows disagree with the rows the landmarks give.

    Parameters
    ----------
    stored : sequence of mapping
        ``results.segments`` as saved (or read from an SR).
    recomputed : sequence of mapping
        :attr:`Remeasurement.rows` of the same session.

    Returns
    -------
    list of str
        One short sentence per difference (``"L4-L5 translation_mm: stored 9.5,
        the landmarks give 6.2"``); empty when they agree.  Segments missing,
        added, repeated or out of order are differences, as are NaN values, a
        changed finding, criterion or threshold.
    """
    from app.report_data import finding_of

    out: list[str] = []
    labels = [str(r.get("segment")) for r in stored]
    expected = [str(r.get("segment")) for r in recomputed]
    if labels != expected:
        missing = [s for s in expected if s not in labels]
        extra = [s for s in labels if s not in expected]
        repeated = sorted({s for s in labels if labels.count(s) > 1})
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if extra:
            parts.append("not in the landmarks " + ", ".join(extra))
        if repeated:
            parts.append("repeated " + ", ".join(repeated))
        if not parts:
            parts.append("in another order")
        out.append(f"segments stored {labels}, the landmarks give {expected} ("
                   + "; ".join(parts) + ")")
    by_label = {str(r.get("segment")): r for r in stored}
    for row in recomputed:
        label = str(row.get("segment"))
        saved = by_label.get(label)
        if saved is None:
            continue
        for key in COMPARED_KEYS:
            if key not in row:
                continue
            if key not in saved:
                if key not in _OPTIONAL_KEYS:
                    out.append(f"{label} {key}: not stored, the landmarks give {_show(row[key])}")
                continue
            if not _same(saved[key], row[key]):
                out.append(f"{label} {key}: stored {_show(saved[key])}, the landmarks give "
                           f"{_show(row[key])}")
        if finding_of(saved) != finding_of(row):
            out.append(f"{label} finding: stored {finding_of(saved)}, the landmarks give "
                       f"{finding_of(row)}")
    return out
