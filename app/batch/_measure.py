"""Measure every study of a run in one vectorised call of :func:`measure.segmental_motion`.

Landmarks of the N studies are stacked to ``(N, V, 4, 2)``, the spacing of each
film to ``(N, 2)`` (NaN rows for uncalibrated films) and the corner SDs to
``(N, V, 4)``.  Studies with another list of body labels (transitional anatomy)
form their own stack, so a run makes one call per distinct level list: one in
the usual case.  If the call rejects the stack (a study with a half-placed
body, coincident corners), the offending studies are found, recorded as
``measure:`` failures, and the rest measured in one call again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from app.batch._records import StudyOutcome

__all__ = ["RESULT_SCHEMA", "measure_studies"]

#: Columns of ``results.csv`` / ``results.parquet``, in order, with their types.
RESULT_SCHEMA: tuple[tuple[str, str], ...] = (
    ("patient_id", "string"),
    ("study_instance_uid", "string"),
    ("flexion_sop_instance_uid", "string"),
    ("extension_sop_instance_uid", "string"),
    ("flexion_file", "string"),
    ("extension_file", "string"),
    ("pairing", "string"),
    ("study_date", "string"),
    ("acquisition_date", "string"),
    ("segment", "string"),
    ("upper", "string"),
    ("lower", "string"),
    ("measured", "bool"),
    ("flexion_angle_deg", "float64"),
    ("extension_angle_deg", "float64"),
    ("flexion_translation_mm", "float64"),
    ("extension_translation_mm", "float64"),
    ("flexion_translation_pct", "float64"),
    ("extension_translation_pct", "float64"),
    ("angulation_deg", "float64"),
    ("translation_mm", "float64"),
    ("translation_pct", "float64"),
    ("angulation_sd_deg", "float64"),
    ("translation_sd_mm", "float64"),
    ("translation_sd_pct", "float64"),
    ("translation_unstable", "bool"),
    ("angulation_unstable", "bool"),
    ("unstable", "bool"),
    ("criterion", "string"),
    ("borderline", "bool"),
    ("verdict", "string"),
    ("translation_assessed", "bool"),
    ("safety", "string"),
    ("criteria", "string"),
    ("depth_ratio", "float64"),
    ("flexion_calibration_source", "string"),
    ("flexion_row_spacing_mm", "float64"),
    ("flexion_column_spacing_mm", "float64"),
    ("extension_calibration_source", "string"),
    ("extension_row_spacing_mm", "float64"),
    ("extension_column_spacing_mm", "float64"),
    ("landmark_method", "string"),
    ("flexion_fit_quality", "float64"),
    ("extension_fit_quality", "float64"),
    ("needs_review", "bool"),
    ("review_reasons", "string"),
    ("warnings", "string"),
)

_SEGMENT_FLOATS = (
    "flexion_angle_deg", "extension_angle_deg", "flexion_translation_mm",
    "extension_translation_mm", "flexion_translation_pct", "extension_translation_pct",
    "angulation_deg", "translation_mm", "translation_pct", "angulation_sd_deg",
    "translation_sd_mm", "translation_sd_pct",
)
_SEGMENT_BOOLS = (
    "translation_unstable", "angulation_unstable", "unstable", "borderline",
    "translation_assessed",
)


def _study_safety(outcome: StudyOutcome, angulation_deg, translation_pct) -> list[dict[str, str]]:
    """The study's safety warnings (JSON): the worker's film checks, no motion, spacing."""
    from app.safety import SafetyCheck, check_motion, check_spacing

    out = list(outcome.safety)
    same = {SafetyCheck.SAME_INSTANCE, SafetyCheck.SAME_PIXELS, SafetyCheck.NEAR_IDENTICAL}
    if not any(w.get("check") in same for w in out):
        out += [w.to_json() for w in check_motion(angulation_deg, translation_pct)]
    reasons = {role: _implausible(outcome, role) for role in ("flexion", "extension")}
    out += [w.to_json() for w in check_spacing(reasons)]
    return out


def _spacing(outcomes: Sequence[StudyOutcome], role: str) -> np.ndarray:
    """(N, 2) spacing; NaN (not used) where uncalibrated or implausible (issue 14 §1)."""
    rows = [getattr(o, f"{role}_spacing_mm") if not _implausible(o, role) else None for o in outcomes]
    return np.array([r if r else (np.nan, np.nan) for r in rows], dtype=float).reshape(-1, 2)


def _implausible(outcome: StudyOutcome, role: str) -> str | None:
    """Why the film's spacing gives implausible body depths or field of view (app.safety), or None."""
    from app.safety import image_shape_of, implausible_spacing

    spacing = getattr(outcome, f"{role}_spacing_mm")
    if not spacing:
        return None
    landmarks = np.asarray(getattr(outcome, f"{role}_landmarks"), dtype=float)
    shape = image_shape_of({"image_size": getattr(outcome, f"{role}_image_size", None)})
    return implausible_spacing(landmarks, spacing, shape)


def _stack(outcomes: Sequence[StudyOutcome], role: str, what: str, shape: tuple) -> np.ndarray:
    return np.array([getattr(o, f"{role}_{what}") for o in outcomes], dtype=float).reshape(
        len(outcomes), *shape
    )


def _placement(outcomes: Sequence[StudyOutcome], role: str, n_bodies: int) -> np.ndarray:
    """(N, V, 4) placement method per corner ('' when unknown: a reader's clicks)."""
    out = np.full((len(outcomes), n_bodies, 4), "", dtype=object)
    for i, o in enumerate(outcomes):
        given = getattr(o, f"{role}_placement")
        if given:
            out[i] = np.asarray(given, dtype=object).reshape(n_bodies, 4)
    out[out == None] = ""  # noqa: E711 (elementwise on an object array)
    return out


def _call(outcomes: Sequence[StudyOutcome], levels: tuple[str, ...], criteria: Any):
    from measure import placement_uncertainty, segmental_motion

    n_bodies = len(levels)
    sd = {
        role: placement_uncertainty(_placement(outcomes, role, n_bodies),
                                    _stack(outcomes, role, "sd_mm", (n_bodies, 4)))
        for role in ("flexion", "extension")
    }  # fmt: skip
    return segmental_motion(
        _stack(outcomes, "flexion", "landmarks", (n_bodies, 4, 2)),
        _stack(outcomes, "extension", "landmarks", (n_bodies, 4, 2)),
        flexion_spacing_mm=_spacing(outcomes, "flexion"),
        extension_spacing_mm=_spacing(outcomes, "extension"),
        **sd["flexion"].motion_kwargs("flexion"),
        **sd["extension"].motion_kwargs("extension"),
        criteria=criteria,
        levels=levels,
        workers=1,
    )


def measure_studies(
    outcomes: Sequence[StudyOutcome], criteria: Any = "default", *, with_records: bool = False
) -> list[list[dict[str, Any]]]:
    """Measure the studies; per study, one dict per segment.

    Parameters
    ----------
    outcomes : sequence of StudyOutcome
        Successful worker outcomes (landmarks, spacing, SDs).
    criteria : str or measure.Criteria
        Criteria preset name or custom thresholds.
    with_records : bool
        Also put under ``"_record"`` the row of ``SegmentalMotion.to_records``
        (the ``measure --json`` row that reports and sessions store).

    Returns
    -------
    list of list of dict
        For each outcome, its segment rows (keys of :data:`RESULT_SCHEMA`
        from ``segment`` to ``depth_ratio`` plus ``flexion_fit_quality``,
        ``extension_fit_quality`` and ``warnings`` as a list).  A study the
        measurement rejects gets a single row ``{"failure": "measure: ..."}``.
    """
    out: list[list[dict[str, Any]]] = [[] for _ in outcomes]
    groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for index, outcome in enumerate(outcomes):
        groups[tuple(outcome.levels)].append(index)
    for levels, indices in groups.items():
        members = [outcomes[i] for i in indices]
        rejected = _find_rejected(members, levels, criteria) if members else {}
        for local, reason in rejected.items():
            out[indices[local]] = [{"failure": f"measure: {reason}"}]
        kept = [i for local, i in enumerate(indices) if local not in rejected]
        if not kept:
            continue
        motion = _call([outcomes[i] for i in kept], levels, criteria)
        rows = _rows(motion, [outcomes[i] for i in kept], criteria, with_records)
        for i, study_rows in zip(kept, rows, strict=True):
            out[i] = study_rows
    return out


def _find_rejected(
    members: Sequence[StudyOutcome], levels: tuple[str, ...], criteria: Any
) -> dict[int, str]:
    """Studies the vectorised call rejects (empty in the normal case: one trial call)."""
    try:
        _call(members, levels, criteria)
        return {}
    except ValueError:
        pass
    rejected = {}
    for local, outcome in enumerate(members):  # failure path only: isolate the bad studies
        try:
            _call([outcome], levels, criteria)
        except ValueError as exc:
            rejected[local] = str(exc).replace("study 0, ", "").replace("study 0 ", "")
    return rejected


def _rows(
    motion, outcomes: Sequence[StudyOutcome], criteria: Any, with_records: bool = False
) -> list[list[dict[str, Any]]]:
    n_studies, n_segments = motion.angulation_deg.shape
    columns: dict[str, list] = {}
    for name in _SEGMENT_FLOATS:
        values = np.asarray(getattr(motion, name), dtype=float)
        columns[name] = np.where(np.isfinite(values), values, np.nan).tolist()
    for name in _SEGMENT_BOOLS:
        columns[name] = np.asarray(getattr(motion, name), dtype=bool).tolist()
    columns["measured"] = motion.measured.tolist()
    columns["criterion"] = motion.criterion.tolist()
    # the one verdict rule (measure.segment_verdict), as its key
    from measure import Verdict

    keys = np.array([v.key for v in sorted(Verdict)])  # index = the verdict's code
    columns["verdict"] = keys[motion.verdict].tolist()
    columns["depth_ratio"] = motion.depth_ratio[:, 1:].tolist()
    # Fit quality of a segment: the poorer of its two bodies.
    quality = {}
    for role in ("flexion", "extension"):
        per_body = _stack(outcomes, role, "fit_quality", (n_segments + 1,))
        quality[role] = np.fmin(per_body[:, :-1], per_body[:, 1:]).tolist()
    needs_warning = (
        ~(motion.flexion_calibrated & motion.extension_calibrated)
        | (motion.measured & ~motion.translation_assessed).any(axis=-1)
        | motion.depth_mismatch.any(axis=-1)
    )
    warnings = [motion.warnings(i) if flag else [] for i, flag in enumerate(needs_warning)]
    safety = [_study_safety(outcome, motion.angulation_deg[i], motion.translation_pct[i])
              for i, outcome in enumerate(outcomes)]
    result = []
    for i in range(n_studies):
        records = motion.to_records(i) if with_records else None
        rows = []
        for k in range(n_segments):
            row = {name: columns[name][i][k] for name in columns}
            row["segment"] = motion.segments[k]
            row["upper"] = motion.levels[k]
            row["lower"] = motion.levels[k + 1]
            row["criterion"] = row["criterion"] if row["measured"] else "not measured"
            row["criteria"] = motion.criteria.name
            row["flexion_fit_quality"] = quality["flexion"][i][k]
            row["extension_fit_quality"] = quality["extension"][i][k]
            row["warnings"] = [f"SAFETY: {w['message']}" for w in safety[i]] + warnings[i]
            row["safety"] = ";".join(dict.fromkeys(w["check"] for w in safety[i]))
            row["_safety"] = safety[i]
            if records is not None:
                row["_record"] = records[k]
            rows.append(row)
        result.append(rows)
    return result
