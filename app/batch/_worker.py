"""The work done for one study in a worker: decode, landmarks, calibration.

Runs in a process-pool or Dask worker; never raises.  Every problem becomes a
:class:`StudyOutcome` with ``ok=False`` and a ``"stage: reason"``.  Only
picklable plain records go in and out.  Measurement is not done here: the
parent stacks every study's landmarks and measures them in one vectorised call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.batch._records import FilmRecord, StudyOutcome, StudyPlan

__all__ = ["StudyTask", "process_study"]

ROLES = ("flexion", "extension")
NO_DETECTION = "landmarks: no landmarks and automatic detection unavailable"


@dataclass(frozen=True, slots=True)
class StudyTask:
    """Everything a worker needs for one study.

    Parameters
    ----------
    plan : StudyPlan
    root : str
        Absolute path of the input folder (film paths are relative to it).
    levels : tuple of str
        Body labels to detect when no landmarks are given.
    """

    plan: StudyPlan
    root: str
    levels: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5", "S1")


def _film_calibration(film: Any, record: FilmRecord) -> tuple[list[float] | None, str, str]:
    calibration = getattr(film, "calibration", None)
    if calibration is None:
        spacing = list(record.spacing_mm) if record.spacing_mm else None
        return spacing, record.calibration_source, record.calibration_detail
    spacing = calibration.spacing_mm
    source = getattr(calibration.source, "value", str(calibration.source))
    return (list(spacing) if spacing else None), source, str(getattr(calibration, "detail", ""))


def process_study(task: StudyTask) -> StudyOutcome:
    """Decode both films, take or detect their landmarks, read their calibration.

    Parameters
    ----------
    task : StudyTask

    Returns
    -------
    StudyOutcome
        ``ok=False`` with a reason on any failure; timing in ``decode_seconds``
        and ``total_seconds``.
    """
    start = time.perf_counter()
    plan = task.plan
    outcome = StudyOutcome(key=plan.key, ok=False)
    try:
        _process(task, outcome)
    except Exception as exc:  # a bug must cost one study, not the run
        outcome.ok = False
        outcome.reason = f"internal: {type(exc).__name__} while processing the study"
    outcome.total_seconds = time.perf_counter() - start
    return outcome


def _process(task: StudyTask, outcome: StudyOutcome) -> None:
    from app.dicom_io import load_film
    from app.errors import InputFileError

    plan = task.plan
    root = Path(task.root)
    records = {"flexion": plan.flexion, "extension": plan.extension}
    films: dict[str, Any] = {}
    tic = time.perf_counter()
    for role in ROLES:
        try:
            films[role] = load_film(root / records[role].path)
        except InputFileError as exc:
            outcome.reason = f"decode: {role} film: {exc.reason}"
            return
        except (OSError, ValueError, MemoryError) as exc:
            outcome.reason = f"decode: {role} film: {type(exc).__name__}: {exc}"
            return
    outcome.decode_seconds = time.perf_counter() - tic

    warnings = list(plan.warnings)
    for role in ROLES:
        spacing, source, detail = _film_calibration(films[role], records[role])
        setattr(outcome, f"{role}_spacing_mm", spacing)
        setattr(outcome, f"{role}_calibration_source", source)
        setattr(outcome, f"{role}_calibration_detail", detail)

    if plan.landmarks_path:
        ok = _given_landmarks(plan, records, outcome, warnings)
    else:
        ok = _detected_landmarks(task, films, outcome, warnings)
    if not ok:
        return
    outcome.warnings = warnings
    outcome.ok = True


def _given_landmarks(
    plan: StudyPlan, records: dict[str, FilmRecord], outcome: StudyOutcome, warnings: list[str]
) -> bool:
    from app.batch._landmark_files import read_given_landmarks

    try:
        given = read_given_landmarks(plan.landmarks_path, plan.landmarks_origin)
    except ValueError as exc:
        outcome.reason = f"landmarks: {exc}"
        return False
    for role in ROLES:
        named = given.sop_instance_uids[role]
        if named and named != records[role].sop_instance_uid:
            outcome.reason = (
                f"landmarks: {Path(plan.landmarks_path).name} gives the {role} landmarks of "
                "another film (SOP Instance UID differs)"
            )
            return False
    outcome.levels = list(given.levels)
    methods: set[str] = set()
    for role in ROLES:
        marks = given.landmarks[role]
        record = records[role]
        finite = marks[np.isfinite(marks).all(axis=-1)]
        if record.columns and record.rows and finite.size and (
            (finite < -0.5).any()
            or (finite[:, 0] > record.columns - 0.5).any()
            or (finite[:, 1] > record.rows - 0.5).any()
        ):
            warnings.append(f"{role}: some landmarks lie outside the image")
        setattr(outcome, f"{role}_landmarks", marks.tolist())
        setattr(outcome, f"{role}_sd_mm", given.sd_mm[role].tolist())
        setattr(outcome, f"{role}_placement", given.corner_placement[role])
        setattr(outcome, f"{role}_fit_quality", [float("nan")] * len(given.levels))
        methods.update(given.placement[role])
        if given.calibration[role] is not None:
            spacing, source, detail = given.calibration[role]
            setattr(outcome, f"{role}_spacing_mm", list(spacing))
            setattr(outcome, f"{role}_calibration_source", source)
            setattr(outcome, f"{role}_calibration_detail", detail)
    origin = plan.landmarks_origin or "file"
    outcome.landmark_method = f"given:{origin}" + (f" ({'+'.join(sorted(methods))})"
                                                   if methods else "")
    return True


def _detected_landmarks(
    task: StudyTask, films: dict[str, Any], outcome: StudyOutcome, warnings: list[str]
) -> bool:
    try:
        from app import autolandmarks
    except ImportError:
        outcome.reason = NO_DETECTION
        return False
    detect = getattr(autolandmarks, "detect_study", None)
    if detect is None:
        outcome.reason = NO_DETECTION
        return False
    result = detect(films["flexion"], films["extension"], levels=task.levels)
    if not result:
        outcome.reason = f"landmarks: detection failed: {getattr(result, 'reason', 'no reason')}"
        return False
    outcome.levels = list(getattr(result, "levels", task.levels))
    for role in ROLES:
        film = getattr(result, role)
        marks = np.asarray(film.landmarks, dtype=float)
        setattr(outcome, f"{role}_landmarks", marks.tolist())
        sd = np.asarray(getattr(film, "sd_mm", np.full(marks.shape[:-1], np.nan)), dtype=float)
        setattr(outcome, f"{role}_sd_mm", sd.tolist())
        quality = np.asarray(getattr(film, "fit_quality", np.full(marks.shape[0], np.nan)))
        setattr(outcome, f"{role}_fit_quality", quality.astype(float).tolist())
        warnings.extend(f"{role}: {w}" for w in getattr(film, "warnings", ()))
    outcome.landmark_method = str(getattr(result, "method", "detected"))
    return True
