"""The work done for one study in a worker: decode, landmarks, calibration.

Runs in a process-pool or Dask worker; never raises.  Every problem becomes a
:class:`StudyOutcome` with ``ok=False`` and a ``"stage: reason"``.  Only
picklable plain records go in and out.  Measurement is not done here: the
parent stacks every study's landmarks and measures them in one vectorised call.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.batch._records import FilmRecord, StudyOutcome, StudyPlan

__all__ = [
    "WORKER_MODULES",
    "StudyTask",
    "limit_threads",
    "preload_modules",
    "process_study",
    "single_threaded",
    "worker_init",
]

#: Environment that keeps numpy's BLAS / OpenMP to one thread in a worker process
#: (read when those libraries load).  Several single-threaded workers use the
#: cores better than several multi-threaded ones competing for them.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                     "MKL_NUM_THREADS": "1"}

#: Modules the batch's tasks use, imported when a worker starts (in the process
#: pool's fork server; in each LocalCluster worker) rather than in its first task:
#: 2-8 s of imports (scipy, OpenCV, pydicom, the session) would otherwise land in
#: the first studies of a run.
WORKER_MODULES = (
    "app.batch._worker",
    "app.batch._scan",
    "app.batch._landmark_files",
    "app.dicom_io",
    "app.landmarks_io",
    "app.safety",
    "app.session",
    "app.autolandmarks",
    "measure",
)

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


def limit_threads() -> None:
    """Make OpenCV run single-threaded in this (worker) process."""
    try:
        import cv2
    except ImportError:  # pragma: no cover - opencv is a dependency
        return
    cv2.setNumThreads(1)


def preload_modules() -> list[str]:
    """Import :data:`WORKER_MODULES` in this (worker) process; returns their names."""
    import importlib

    return [importlib.import_module(name).__name__ for name in WORKER_MODULES]


def worker_init(parent_pid: int | None = None) -> None:
    """Process-pool initializer: single-threaded OpenCV, Ctrl-C left to the parent,
    and the end of this worker when the batch process ``parent_pid`` ends.

    The parent decides what an interrupt means (keep what is finished, stop the
    workers); a worker that also caught the terminal's SIGINT would die in the
    middle of a study and be reported as a failure.  A batch killed with
    ``kill -9`` cannot stop its workers: they watch it (``app.batch._lifeline``).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads()
    if parent_pid is not None:
        from app.batch._lifeline import end_with_parent

        end_with_parent(parent_pid)


_controller: Any = None  # threadpoolctl.ThreadpoolController of this process, built once


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run one task with numpy's BLAS/OpenMP and OpenCV on one thread, then restore them.

    Set in the task itself, not only when a worker starts: a worker of any
    cluster (``tcp://``, a LocalCluster, a process pool, this very process)
    then computes with the same thread count, hence the same floating-point
    results, and an API caller's own thread settings come back afterwards.
    """
    global _controller
    import cv2
    from threadpoolctl import ThreadpoolController

    import measure  # noqa: F401  (loads scipy's and numpy's BLAS before they are listed)

    if _controller is None:
        _controller = ThreadpoolController()
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with _controller.limit(limits=1):
            yield
    finally:
        cv2.setNumThreads(previous)


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
        with single_threaded():
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
    from app.safety import check_films
    from app.session import identity_mismatch

    flex, ext = films["flexion"], films["extension"]
    outcome.safety = [w.to_json() for w in check_films(flex, ext, mismatch=identity_mismatch(flex, ext))]

    warnings = list(plan.warnings)
    for role in ROLES:
        spacing, source, detail = _film_calibration(films[role], records[role])
        setattr(outcome, f"{role}_spacing_mm", spacing)
        setattr(outcome, f"{role}_calibration_source", source)
        setattr(outcome, f"{role}_calibration_detail", detail)
        setattr(outcome, f"{role}_image_size", [int(films[role].rows), int(films[role].columns)])

    if plan.landmarks_path:
        ok = _given_landmarks(plan, records, films, outcome, warnings)
    else:
        ok = _detected_landmarks(task, films, outcome, warnings)
    if not ok:
        return
    outcome.warnings = warnings
    outcome.ok = True


def _given_landmarks(
    plan: StudyPlan,
    records: dict[str, FilmRecord],
    films: dict[str, Any],
    outcome: StudyOutcome,
    warnings: list[str],
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
    facing = None
    for role in ROLES:  # clicks inside the bodies: complete that film (one-click path)
        if given.clicks.get(role) and not np.isfinite(given.landmarks[role]).any():
            facing = _complete_from_clicks(given, role, films, outcome, warnings, facing)
            if facing is None:
                return False
    empty = [r for r in ROLES if not np.isfinite(given.landmarks[r]).any()]
    if len(empty) == 2:
        outcome.reason = f"landmarks: {Path(plan.landmarks_path).name} has no corners"
        return False
    if empty:  # outlined on one film only: carry the bodies to the other (measurement.md §7)
        return _track_other_film(given, empty[0], films, outcome, warnings)
    return True


def _complete_from_clicks(
    given: Any, role: str, films: dict[str, Any], outcome: StudyOutcome, warnings: list[str],
    facing: str | None,
) -> str | None:
    """Corners of one film from the clicks inside its bodies; returns the facing used, None on failure.

    The second film of a study is completed with the first one's facing, so
    the two films cannot disagree.
    """
    from app.autolandmarks import complete_film

    done = complete_film(films[role], given.clicks[role], levels=given.levels, facing=facing)
    if not done:
        outcome.reason = f"landmarks: the {role} clicks could not be completed: {done.reason}"
        return None
    given.landmarks[role] = np.asarray(done.corners, dtype=float)
    setattr(outcome, f"{role}_landmarks", given.landmarks[role].tolist())
    sd = np.where(np.isfinite(done.sd_mm), done.sd_mm, given.sd_mm[role])
    setattr(outcome, f"{role}_sd_mm", np.asarray(sd, dtype=float).tolist())
    setattr(outcome, f"{role}_placement",
            [[str(m) for m in body] for body in np.asarray(done.placement).tolist()])
    setattr(outcome, f"{role}_fit_quality", np.asarray(done.quality, dtype=float).tolist())
    warnings.extend(f"{role} film: {level} not placed: {why}" for level, why in done.failures.items())
    warnings.extend(f"{role} film: {level} not refined: {why}"
                    for level, why in done.details["unrefined"].items())
    if not done.details["facing_evidence"].get("sure", True):
        warnings.append(f"{role} film: facing {done.details['facing']} from the anatomy is unsure: check it")
    outcome.landmark_method += f"+clicks:{role}"
    return str(done.details["facing"])


def _track_other_film(
    given: Any, target: str, films: dict[str, Any], outcome: StudyOutcome, warnings: list[str]
) -> bool:
    source = "extension" if target == "flexion" else "flexion"
    try:
        from app.autolandmarks import track_checked
    except ImportError:
        outcome.reason = f"landmarks: no landmarks on the {target} film and tracking unavailable"
        return False
    # guarded: a body that tracking and a detection on the target film put on different
    # vertebrae is left unplaced; labels that disagree between the films need review
    tracked = track_checked(films[source], given.landmarks[source], films[target],
                            levels=given.levels, target_name=target)
    if not tracked:
        outcome.reason = (f"landmarks: no landmarks on the {target} film and tracking from the "
                          f"{source} film failed: {getattr(tracked, 'reason', 'no reason')}")
        return False
    setattr(outcome, f"{target}_landmarks", np.asarray(tracked.corners, dtype=float).tolist())
    setattr(outcome, f"{target}_sd_mm", np.asarray(tracked.sd_mm, dtype=float).tolist())
    setattr(outcome, f"{target}_placement",
            [[str(m) for m in body] for body in np.asarray(tracked.placement).tolist()])
    setattr(outcome, f"{target}_fit_quality", np.asarray(tracked.quality, dtype=float).tolist())
    warnings.extend(f"{target} film: {level} not placed: {why}"
                    for level, why in tracked.failures.items())
    if tracked.details.get("needs_review"):
        outcome.needs_review = True
        outcome.review_reasons = list(dict.fromkeys(
            [*outcome.review_reasons, *tracked.details["review_reasons"]]))
    outcome.landmark_method += f"+tracked:{target}"
    return True


def _detected_landmarks(
    task: StudyTask, films: dict[str, Any], outcome: StudyOutcome, warnings: list[str]
) -> bool:
    """Detect the bodies on one film and track them onto the other (app.autolandmarks).

    ``detect_study`` detects both films; where one film is refused or unsure and
    its partner is sure, it has already tracked the partner's bodies onto it
    (guarded), and that pair is used as is.  Otherwise the flexion film's
    detection is the source if found, else the extension film's, and the bodies
    are tracked onto the other film, guarded by its detection.  Bodies that could not be
    placed stay NaN (their segments are "not measured") with the reason in the
    warnings.
    """
    try:
        import measure
        from app.autolandmarks import detect_study, track_checked

        measure.detect_vertebrae  # noqa: B018 - the detector itself may be missing
    except (ImportError, AttributeError):
        outcome.reason = NO_DETECTION
        return False
    levels = tuple(task.levels)
    reasons = []
    try:
        both = dict(zip(ROLES, detect_study(films["flexion"], films["extension"], levels=levels), strict=True))
    except ImportError:
        outcome.reason = NO_DETECTION
        return False
    helped = [role for role in ROLES if both[role] and both[role].details.get("tracked_from")]
    if helped:
        # detect_study already carried the sure (or only) film's bodies onto its partner,
        # guarded by the partner's own detection: used as is (no second tracking)
        target = helped[0]
        source = both[target].details["tracked_from"]
        detected, tracked = both[source], both[target]
        own = tracked.details.get("own_detection", {})
        if not own.get("found", True):
            warnings.append(f"detection on the {target} film failed ({own.get('reason')}); "
                            f"its bodies were tracked from the {source} film")
    else:
        for source, target in (("flexion", "extension"), ("extension", "flexion")):
            detected = both[source]
            if not detected:
                reasons.append(f"{source} film: {getattr(detected, 'reason', 'not found')}")
                continue
            # guarded by the target film's own detection: a body where the two disagree is left
            # unplaced; labels or facing that differ between the films need review
            tracked = track_checked(
                films[source], detected.corners, films[target], levels=levels,
                detection=both[target], target_name=target,
                source_facing=detected.details.get("facing"), labels_detected=True,
            )
            if not tracked:
                reasons.append(f"tracking from the {source} film: "
                               f"{getattr(tracked, 'reason', 'failed')}")
                continue
            break
        else:
            outcome.reason = "landmarks: detection failed: " + "; ".join(reasons)
            return False
    # labels and facing come from the detection (tracking never changes them); unsure
    # detections are counted only once a reader has reviewed them
    review = [*detected.details.get("review_reasons", []), *tracked.details.get("review_reasons", [])]
    # a body placed on neither method's terms leaves its segments unmeasured: an automatic
    # result with a hole is not a finding ("within" by omission) until a reader has looked
    for role, result in ((source, detected), (target, tracked)):
        missing = [lv for lv in levels if lv in result.failures]
        if missing:
            review.append(f"{', '.join(missing)} not placed on the {role} film: "
                          "their segments are not measured (place them, or confirm they are off the film)")
    outcome.needs_review = bool(review)
    outcome.review_reasons = list(dict.fromkeys(review))
    outcome.levels = list(levels)
    for role, result in ((source, detected), (target, tracked)):
        setattr(outcome, f"{role}_landmarks", np.asarray(result.corners, dtype=float).tolist())
        setattr(outcome, f"{role}_sd_mm", np.asarray(result.sd_mm, dtype=float).tolist())
        setattr(outcome, f"{role}_placement",
                [[str(m) for m in body] for body in np.asarray(result.placement).tolist()])
        setattr(outcome, f"{role}_fit_quality",
                np.asarray(result.quality, dtype=float).tolist())
        warnings.extend(f"{role} film: {level} not placed: {why}"
                        for level, why in result.failures.items())
    if reasons:
        warnings.append("detection on the flexion film failed; detected on the extension film")
    outcome.landmark_method = f"detected:{source}+tracked:{target}"
    return True
