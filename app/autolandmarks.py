"""Automatic landmarks on films and studies: tracking, refinement, detection.

The algorithms are in :mod:`measure` (``track_bodies``, ``refine_corners``,
``detect_vertebrae``); this module wires them to films (:class:`app.dicom_io.Film`
or plain arrays), level labels, calibration and the landmarks format: pixel SDs
become millimetres with the film's calibration, every corner gets its
:class:`measure.PlacementMethod`, and a body that could not be placed carries
its reason.  The viewer (``app.session``/``ui``), the CLI (``track``,
``detect``) and batch call the three functions below; see
``docs/auto-landmarks.md``.

Public API
----------
track_film(source, source_corners, target, *, levels) -> AutoLandmarks | LandmarkFailure
refine_film(film, corners, *, levels) -> AutoLandmarks | LandmarkFailure
detect_film(film, *, levels) -> AutoLandmarks | LandmarkFailure
detect_study(flexion, extension, *, levels) -> (AutoLandmarks | LandmarkFailure, ...)
track_study(study, flexion, extension, *, source=None, replace=False, check=True) -> (StudyLandmarks, ...)
track_checked(source, source_corners, target, *, levels, check=None) -> AutoLandmarks | LandmarkFailure
check_tracking(tracked, detection, *, target) -> AutoLandmarks  (the guard: tracking vs detection)
corners_facing(corners) -> 'left' | 'right' | None
complete_film(film, clicks, *, levels, facing=None) -> AutoLandmarks | LandmarkFailure
film_image(film) -> ndarray (bone bright, float32)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from measure import (
    DEFAULT_LEVELS,
    REVIEW_THRESHOLD,
    Calibration,
    Checkpoint,
    LandmarkFailure,
    PlacementMethod,
    endplate_depth_px,
    refine_corners,
    track_bodies,
    tracking_sd,
)

__all__ = [
    "AutoLandmarks",
    "check_tracking",
    "complete_film",
    "corners_facing",
    "detect_film",
    "film_image",
    "refine_film",
    "track_checked",
    "track_film",
    "track_study",
]

# Smallest SD reported per method, mm: what the benchmark cannot resolve below
# (benchmarks/bench_accuracy.py; docs/auto-landmarks.md).
# A tracked body whose centre is farther than this (fraction of its endplate depth)
# from the body of the same label detected on the same film is another body.
_CHECK_DISTANCE = 0.5

# a neighbour's label must match the other film's bodies this much better (mean
# correlation) than the same label before the films are said to disagree
_LABEL_MARGIN = 0.1

# detect_study's partner step (``_with_partner``), chosen on the tuning seeds 70000-70059
# (benchmarks/bench_detect_realistic.py --set tuning; docs/auto-landmarks.md):
# a film tracked from a sure partner whose own detection was refused (nothing to cross-check) needs
# review: the refusal may have been right (a frontal film, another body part), and no case on the
# tuning or report seeds depended on it
_UNCHECKED_NEEDS_REVIEW = True
# fewer lumbar bodies than this tracked from the partner: the result needs review
_MIN_CARRIED_BODIES = 3
# the guard leaving bodies of the helped film unplaced also puts the sure partner under review
_DISAGREE_SOURCE_REVIEW = True
# films whose labels differ by a level: the one whose smallest label confidence is higher by this
# gives its labels to the other (both stay under review)
_SETTLE_MARGIN = 0.3
# both films unsure: a body whose tracked and detected outlines lie this far apart (endplate
# depths; beyond the upper bound it is another level, the guard's case) with at least this
# tracking correlation is taken from the film whose detection is surer of it
_DISPUTE = (0.2, 1.0)
_DISPUTE_QUALITY = 0.6

# Tracked corners have no floor: their SD is the per-body SD of the registration's
# own fit (tracked_sd_px, measure.tracking_sd), fitted on phantoms down to 0.01 mm.
_SD_FLOOR_MM = {
    PlacementMethod.TRACKED: 0.0,
    PlacementMethod.REFINED: 0.15,
    PlacementMethod.DETECTED: 0.5,
}


#: Films narrower than this (pixels) hold no vertebral body to find.
MIN_FILM_SIDE = 16


def _too_small(*films: Any) -> LandmarkFailure | None:
    """A failure for a film too small to search (a 1-pixel-wide film), else None."""
    for film in films:
        shape = np.shape(film.pixels if hasattr(film, "pixels") else film)
        if len(shape) >= 2 and min(shape[:2]) < MIN_FILM_SIDE:
            return LandmarkFailure(
                f"not found: the film is too small ({shape[1]} x {shape[0]} pixels)"
            )
    return None


def film_image(film: Any) -> np.ndarray:
    """The pixels of a film as float32 with bone bright.

    Parameters
    ----------
    film : app.dicom_io.Film or ndarray of shape (H, W)
        A loaded film (pixels after the Modality LUT; MONOCHROME1 is negated so
        bone is bright) or an image array used as is.

    Returns
    -------
    ndarray of shape (H, W), float32
    """
    if hasattr(film, "pixels"):
        pixels = np.asarray(film.pixels, dtype=np.float32)
        return -pixels if getattr(film, "invert", False) else pixels
    return np.asarray(film, dtype=np.float32)


def _calibration_of(film: Any, calibration: Calibration | None) -> Calibration:
    if calibration is not None:
        return calibration
    return getattr(film, "calibration", None) or Calibration.uncalibrated()


def _mm_per_px(calibration: Calibration) -> float | None:
    spacing = calibration.spacing_mm
    return None if spacing is None else float(max(spacing))


@dataclass(frozen=True, eq=False)
class AutoLandmarks:
    """Corners placed automatically on one film.

    Attributes
    ----------
    levels : tuple of str
        Body labels, top to bottom (length V).
    corners : ndarray of shape (V, 4, 2)
        Pixels; NaN for bodies not placed (see ``failures``) and S1's ``PI``, ``AI``.
    placement : ndarray of str, shape (V, 4)
        ``PlacementMethod`` value per corner placed, ``""`` elsewhere.
    sd_px : ndarray of shape (V, 4)
        Positional SD per corner (per axis), pixels.
    sd_mm : ndarray of shape (V, 4)
        The same in mm (the larger of the two spacings); NaN when uncalibrated.
    quality : ndarray of shape (V,)
        Per body: tracking correlation, refinement edge contrast (in noise
        SDs) or detection confidence; NaN when not placed.
    failures : dict of str to str
        Level -> reason for each body that was not placed.
    method : PlacementMethod
        How these corners were placed.
    calibration : Calibration
        Calibration of the film the corners are on.
    details : dict
        Method-specific extras (``scale`` of tracking, ``displacement_px`` of
        refinement, ``facing`` of detection, ...), JSON-ready.
    """

    levels: tuple[str, ...]
    corners: np.ndarray
    placement: np.ndarray
    sd_px: np.ndarray
    sd_mm: np.ndarray
    quality: np.ndarray
    failures: dict[str, str]
    method: PlacementMethod
    calibration: Calibration
    details: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return True

    @property
    def placed(self) -> tuple[str, ...]:
        """Levels whose corners were placed."""
        ok = np.any(np.isfinite(self.corners[..., 0]), axis=1)
        return tuple(level for level, good in zip(self.levels, ok, strict=True) if good)

    def summary(self) -> list[str]:
        """One line per body: quality, or the reason it was not placed."""
        lines = []
        for v, level in enumerate(self.levels):
            if level in self.failures:
                lines.append(f"{level}: not placed: {self.failures[level]}")
            elif np.isfinite(self.quality[v]):
                sd = self.sd_mm[v] if np.any(np.isfinite(self.sd_mm[v])) else self.sd_px[v]
                unit = "mm" if np.any(np.isfinite(self.sd_mm[v])) else "px"
                lines.append(
                    f"{level}: {self.method.value}, quality {self.quality[v]:.2f}, "
                    f"corner SD up to {np.nanmax(sd):.2f} {unit}"
                )
        return lines

    def to_json(self) -> dict[str, Any]:
        """Per-level quality, failures and details (for the ``track``/``detect`` outputs)."""
        return {
            "method": self.method.value,
            "quality": {
                level: round(float(q), 4)
                for level, q in zip(self.levels, self.quality, strict=True)
                if np.isfinite(q)
            },
            "failures": dict(self.failures),
            **self.details,
        }


def _result(
    levels: tuple[str, ...],
    corners: np.ndarray,
    sd_px: np.ndarray,
    quality: np.ndarray,
    reasons: tuple[str | None, ...],
    method: PlacementMethod,
    calibration: Calibration,
    details: dict[str, Any],
    wanted: np.ndarray,
) -> AutoLandmarks:
    placed = np.isfinite(corners[..., 0])
    placement = np.where(placed, method.value, "").astype(object)
    scale = _mm_per_px(calibration)
    if scale is None:
        sd_mm = np.full(sd_px.shape, np.nan)
    else:
        sd_mm = np.where(placed, np.maximum(sd_px * scale, _SD_FLOOR_MM[method]), np.nan)
    failures = {
        level: reason.split(": ", 1)[1] if reason.startswith(f"{level}: ") else reason
        for level, reason, want in zip(levels, reasons, wanted, strict=True)
        if reason is not None and want
    }
    return AutoLandmarks(
        tuple(levels), corners, placement, np.where(placed, sd_px, np.nan), sd_mm,
        np.where(np.any(placed, axis=1), quality, np.nan), failures, method, calibration, details,
    )  # fmt: skip


def tracked_sd_px(corners: np.ndarray, quality: np.ndarray, model: Any = None) -> np.ndarray:
    """Per-corner SD of tracked corners, pixels, from each body's registration (``measure.tracking_sd``).

    Parameters
    ----------
    corners : ndarray of shape (V, 4, 2)
        Tracked corners on the target film, pixels (NaN: not placed).
    quality : ndarray of shape (V,)
        Each body's correlation with its template after registration.
    model : measure.TrackingSDModel, optional
        Default ``measure.TRACKING_SD_MODEL`` (the benchmark passes one it fits).

    Returns
    -------
    ndarray of shape (V, 4)
        The SD of the body's shift per axis (the same for its four corners),
        in proportion to its endplate depth on the target film; NaN where a
        corner is not placed.
    """
    corners = np.asarray(corners, dtype=float)
    sd = tracking_sd(np.asarray(quality, dtype=float), endplate_depth_px(corners), model)
    return np.where(np.isfinite(corners[..., 0]), sd[:, None], np.nan)


def _check_levels(levels, corners: np.ndarray) -> tuple[str, ...]:
    levels = tuple(levels)
    if len(levels) != corners.shape[0]:
        raise ValueError(f"levels: {len(levels)} labels for {corners.shape[0]} bodies")
    return levels


def track_film(
    source: Any,
    source_corners: np.ndarray,
    target: Any,
    *,
    levels: tuple[str, ...] | list[str] = DEFAULT_LEVELS,
    target_calibration: Calibration | None = None,
    estimate_scale: bool = True,
    checkpoint: Checkpoint | None = None,
) -> AutoLandmarks | LandmarkFailure:
    """Carry the bodies outlined on one film to the other film.

    Parameters
    ----------
    source, target : app.dicom_io.Film or ndarray of shape (H, W)
        The film with corners and the film to place them on.
    source_corners : ndarray of shape (V, 4, 2)
        Corners on ``source``, pixels (NaN = absent).
    levels : sequence of str
        Labels of the V bodies.
    target_calibration : Calibration, optional
        Default: ``target.calibration`` (uncalibrated for an array).
    estimate_scale : bool
        Allow a magnification change between the films.
    checkpoint : callable, optional
        Progress and cancellation hook (:data:`measure.Checkpoint`).

    Returns
    -------
    AutoLandmarks or LandmarkFailure
        Corners on ``target`` with method ``tracked``; ``quality`` is the
        correlation of each body after registration.
    """
    corners = np.asarray(source_corners, dtype=np.float64)
    levels = _check_levels(levels, corners)
    small = _too_small(source, target)
    if small is not None:
        return small
    result = track_bodies(
        film_image(source), corners, film_image(target),
        estimate_scale=estimate_scale, levels=levels, checkpoint=checkpoint,
    )  # fmt: skip
    if not result:
        return result
    wanted = np.any(np.isfinite(corners[..., 0]), axis=1)
    # the SD stored is the body's from its own registration fit (measure.tracking_sd), not
    # the Gauss-Newton covariance (which does not grow with a poorer match): measured on
    # phantoms no test uses, benchmarks/bench_coverage.py
    sd_px = tracked_sd_px(result.landmarks, result.quality)
    return _result(
        levels, result.landmarks, sd_px, result.quality, result.body_failures,
        PlacementMethod.TRACKED, _calibration_of(target, target_calibration),
        {"scale": round(float(result.scale), 5)}, wanted,
    )  # fmt: skip


def refine_film(
    film: Any,
    corners: np.ndarray,
    *,
    levels: tuple[str, ...] | list[str] = DEFAULT_LEVELS,
    calibration: Calibration | None = None,
    checkpoint: Checkpoint | None = None,
) -> AutoLandmarks | LandmarkFailure:
    """Snap rough corners (quick clicks) to the cortical corners, sub-pixel.

    Bodies that cannot be refined keep NaN corners here and a reason in
    ``failures``: the caller keeps the reader's clicks for them.  ``details``
    has ``displacement_px`` (how far each refined corner moved, per level) and
    ``displacement_mm`` when calibrated.  ``checkpoint`` is the progress and
    cancellation hook (:data:`measure.Checkpoint`).
    """
    corners = np.asarray(corners, dtype=np.float64)
    levels = _check_levels(levels, corners)
    small = _too_small(film)
    if small is not None:
        return small
    result = refine_corners(film_image(film), corners, levels=levels, checkpoint=checkpoint)
    if not result:
        return result
    ok = result.refined
    refined = np.where(ok[:, None, None], result.landmarks, np.nan)
    cal = _calibration_of(film, calibration)
    moved = {
        level: [round(float(d), 3) for d in result.displacement_px[v][np.isfinite(corners[v, :, 0])]]
        for v, level in enumerate(levels)
        if ok[v]
    }
    details: dict[str, Any] = {"displacement_px": moved}
    scale = _mm_per_px(cal)
    if scale is not None:
        details["displacement_mm"] = {k: [round(d * scale, 3) for d in v] for k, v in moved.items()}
    wanted = np.any(np.isfinite(corners[..., 0]), axis=1)
    return _result(
        levels, refined, result.corner_sd_px, result.edge_strength, result.body_failures,
        PlacementMethod.REFINED, cal, details, wanted,
    )  # fmt: skip


def detect_film(
    film: Any,
    *,
    levels: tuple[str, ...] | list[str] = DEFAULT_LEVELS,
    calibration: Calibration | None = None,
    checkpoint: Checkpoint | None = None,
) -> AutoLandmarks | LandmarkFailure:
    """Find the bodies ``levels`` (counted from the sacrum upwards) on one film.

    Returns
    -------
    AutoLandmarks or LandmarkFailure
        Method ``detected``; ``quality`` is the confidence per body in [0, 1];
        ``details["facing"]`` is ``"left"`` or ``"right"``.  A failure reason
        starts with ``"not found: "``.  ``checkpoint`` is the progress and
        cancellation hook (:data:`measure.Checkpoint`).
    """
    from measure import detect_vertebrae

    levels = tuple(levels)
    if not levels or levels[-1] != "S1":
        return LandmarkFailure(
            "not found: detection counts the levels from the sacrum, so they must end with S1 "
            f"(got {', '.join(levels) or 'none'})"
        )
    small = _too_small(film)
    if small is not None:
        return small
    cal = _calibration_of(film, calibration)
    spacing = cal.spacing_mm
    result = detect_vertebrae(
        film_image(film), levels=levels,
        pixel_spacing_mm=None if spacing is None else float(np.sqrt(spacing[0] * spacing[1])),
        checkpoint=checkpoint,
    )  # fmt: skip
    if not result:
        return result
    wanted = np.ones(len(levels), bool)
    details = {
        "facing": result.facing,
        "facing_confidence": round(float(result.facing_confidence), 3),
        "facing_evidence": round(float(result.facing_evidence), 4),
        "label_confidence": {
            level: round(float(c), 3)
            for level, c in zip(levels, result.label_confidence, strict=True)
            if np.isfinite(c)
        },
        "needs_review": result.needs_review,
        "review_reasons": list(result.review_reasons),
    }
    return _result(
        levels, result.landmarks, result.corner_sd_px, result.confidence, result.body_failures,
        PlacementMethod.DETECTED, cal, details, wanted,
    )  # fmt: skip


def detect_study(
    flexion: Any,
    extension: Any,
    *,
    levels: tuple[str, ...] | list[str] = DEFAULT_LEVELS,
    calibrations: tuple[Calibration | None, Calibration | None] = (None, None),
    partner: bool = True,
    checkpoint: Checkpoint | None = None,
) -> tuple[AutoLandmarks | LandmarkFailure, AutoLandmarks | LandmarkFailure]:
    """Detect on both films of a study, make them agree, and let a sure film help its partner.

    Each film is detected on its own (:func:`detect_film`); then

    - **facing**: the posterior-element evidence of the two films is added (the
      patient faces the same way in both).  Films that disagree both need
      review; a film unsure on its own is settled by a sure film that agrees.
    - **labels**: the same vertebra looks the same in both films (a rigid
      body), so each detected body is compared with the other film's bodies at
      the same label and one level up or down (normalised correlation of the
      bodies resampled into their own frame).  When a neighbour's label fits
      better, the labels of the two films differ by a level: both need review.
    - **partner** (``partner=True``, :func:`_with_partner`): when one film is
      refused or needs review and the other does not, the sure film's bodies
      are tracked onto it (:func:`track_film`, guarded by that film's own
      detection with :func:`check_tracking`) and the tracked bodies become its
      result: ``method`` ``tracked``, ``details["tracked_from"]`` names the
      source film, ``details["obtained"]`` says how and why.  When the labels
      of two found films differ, tracking both ways shows which bodies
      correspond; the film whose own labels are sure gives the labels to the
      other, and both still need review.  Labels and facing are never changed
      by tracking: they are always one film's detected ones.

    Parameters
    ----------
    flexion, extension : app.dicom_io.Film or ndarray of shape (H, W)
        The two films.
    levels : sequence of str
        Labels top to bottom, ending with ``S1``.
    calibrations : (Calibration or None, Calibration or None)
        Per film; default each film's own (uncalibrated for an array).
    partner : bool
        Track between the films where one helps the other (costs about one
        tracking, ≈ 1 s CPU, and only when a film is refused or unsure).
    checkpoint : callable, optional
        Progress and cancellation hook (:data:`measure.Checkpoint`): the two
        detections take the first 40 %, tracking the rest.

    Returns
    -------
    (flexion, extension) : AutoLandmarks or LandmarkFailure
        ``details["needs_review"]`` and ``details["review_reasons"]`` include
        the study-level checks (``details["study_check"]`` has the figures).
    """
    levels = tuple(levels)
    films = (flexion, extension)
    alone = tuple(
        detect_film(film, levels=levels, calibration=cal, checkpoint=_part(checkpoint, 0.2 * k, 0.2 * k + 0.2))
        for k, (film, cal) in enumerate(zip(films, calibrations, strict=True))
    )
    agreed = _agree(films, alone)
    if not partner:
        return agreed
    done = [0.4]

    def track(source: int, target: int) -> AutoLandmarks | LandmarkFailure:
        start, done[0] = done[0], min(done[0] + 0.3, 1.0)
        return track_film(
            films[source], agreed[source].corners, films[target], levels=levels,
            target_calibration=calibrations[target], checkpoint=_part(checkpoint, start, done[0]),
        )  # fmt: skip

    result = _with_partner(agreed, alone, track)
    if checkpoint is not None:
        checkpoint(1.0)
    return result


def _part(checkpoint: Checkpoint | None, start: float, stop: float) -> Checkpoint | None:
    """A checkpoint for one step of a chain, mapping its [0, 1] onto [start, stop]."""
    if checkpoint is None:
        return None
    return lambda fraction: checkpoint(start + (stop - start) * fraction)


def _agree(
    films: tuple[Any, Any], outcomes: tuple[AutoLandmarks | LandmarkFailure, AutoLandmarks | LandmarkFailure]
) -> tuple[AutoLandmarks | LandmarkFailure, AutoLandmarks | LandmarkFailure]:
    """The study-level checks of :func:`detect_study`: facing and labels must agree between the films."""
    if not all(outcomes):
        return outcomes[0], outcomes[1]
    flex, ext = outcomes
    reasons: list[str] = []
    ev = np.array([o.details["facing_evidence"] for o in outcomes])
    conf = np.array([o.details["facing_confidence"] for o in outcomes])
    facing_agree = flex.details["facing"] == ext.details["facing"]
    if not facing_agree:
        reasons.append(
            f"the films disagree on the facing (flexion {flex.details['facing']}, extension "
            f"{ext.details['facing']}): every angle and translation would change sign"
        )
    offset, scores = _label_offset((film_image(films[0]), film_image(films[1])), (flex.corners, ext.corners))
    if offset != 0:
        reasons.append(
            f"the labels of the two films differ by {abs(offset)} level(s): the same vertebra is "
            f"{flex.levels[0] if offset > 0 else ext.levels[0]}… on one film and one level "
            f"{'lower' if offset > 0 else 'higher'} on the other"
        )
    check = {
        "facing_evidence": [round(float(e), 4) for e in ev],
        "facing_agree": bool(facing_agree),
        "label_offset": int(offset),
        "label_match": {str(k): round(float(v), 3) for k, v in scores.items()},
    }
    out = []
    for o in outcomes:
        own = list(o.details["review_reasons"])
        if facing_agree and conf.max() >= REVIEW_THRESHOLD:
            own = [r for r in own if not r.startswith("facing unsure")]
        merged = own + reasons
        details = {**o.details, "needs_review": bool(merged), "review_reasons": merged, "study_check": check}
        out.append(replace(o, details=details))
    return out[0], out[1]


_ROLES = ("flexion", "extension")


def _with_partner(
    agreed: tuple[AutoLandmarks | LandmarkFailure, AutoLandmarks | LandmarkFailure],
    alone: tuple[AutoLandmarks | LandmarkFailure, AutoLandmarks | LandmarkFailure],
    track: Any,
) -> tuple[AutoLandmarks | LandmarkFailure, AutoLandmarks | LandmarkFailure]:
    """Where one film of a study is refused or unsure, carry the other film's bodies onto it.

    Parameters
    ----------
    agreed : (flexion, extension)
        The films' detections after the study-level checks (:func:`_agree`).
    alone : (flexion, extension)
        The same detections before them (each film's own review state).
    track : callable
        ``track(source, target)`` with film indices (0 flexion, 1 extension):
        :func:`track_film` of ``agreed[source]``'s corners onto the target film.

    Returns
    -------
    (flexion, extension) : AutoLandmarks or LandmarkFailure
        ``agreed`` where nothing is to be gained; otherwise the helped film's
        result is the guarded tracking (:func:`_carried`).

    Notes
    -----
    Cases, with "sure" = found and not marked for review:

    - both sure, or both refused, or the films disagree on the facing
      (tracking cannot mirror, so it cannot settle that): unchanged;
    - one film refused, the other found: the found film's bodies are tracked
      onto it (needing review when the source does);
    - both found, one sure, labels agreeing: the unsure film gets the sure
      film's bodies, checked body by body against its own detection;
    - both found, labels one level apart (:func:`_label_offset`): tracked both
      ways; when both trackings put the bodies on the other film's bodies one
      label away (the two detections name the same vertebrae differently) and
      one film's own label evidence is clearly stronger, that film's labels
      are carried to the other.  Both still need review: the evidence disagreed.
    - both found and unsure, labels and facing agreeing: neither film's labels
      can be preferred, but where the two films outline one body differently,
      the surer outline is carried to the other film (:func:`_exchange_bodies`).
    """
    found = [bool(o) for o in agreed]
    if not any(found):
        return agreed
    sure = [f and not o.details["needs_review"] for f, o in zip(found, agreed, strict=True)]
    if all(sure):
        return agreed
    out = list(agreed)
    if all(found):
        check = agreed[0].details["study_check"]
        if not check["facing_agree"]:
            return agreed
        offset = int(check["label_offset"])
        if offset != 0:
            return _settle_labels(agreed, alone, track, offset)
        if not any(sure):
            return _exchange_bodies(agreed, track)
        source = int(sure.index(True))
    else:
        source = int(found.index(True))
    target = 1 - source
    tracked = track(source, target)
    if not tracked:
        if not agreed[target]:
            out[target] = LandmarkFailure(
                f"{agreed[target].reason} (tracking from the {_ROLES[source]} film failed too: {tracked.reason})"
            )
        return out[0], out[1]
    carried, source_reasons = _carried(tracked, agreed[source], agreed[target], source, target)
    out[target] = carried
    if source_reasons:
        out[source] = _with_reasons(agreed[source], source_reasons)
    return out[0], out[1]


def _with_reasons(outcome: AutoLandmarks, reasons: list[str]) -> AutoLandmarks:
    merged = list(dict.fromkeys([*outcome.details.get("review_reasons", []), *reasons]))
    return replace(outcome, details={**outcome.details, "needs_review": bool(merged), "review_reasons": merged})


def _carried(
    tracked: AutoLandmarks,
    source: AutoLandmarks,
    detection: AutoLandmarks | LandmarkFailure,
    source_index: int,
    target_index: int,
    *,
    extra_reasons: tuple[str, ...] = (),
    expected_offset: int = 0,
) -> tuple[AutoLandmarks, list[str]]:
    """A film's result tracked from its partner's detection, with its own review state.

    Parameters
    ----------
    tracked : AutoLandmarks
        :func:`track_film` of ``source``'s corners onto this film.
    source : AutoLandmarks
        The partner's detection (after the study-level checks): its labels,
        facing and review state.
    detection : AutoLandmarks or LandmarkFailure
        This film's own detection: the guard (:func:`check_tracking`).
    source_index, target_index : int
        0 flexion, 1 extension.
    extra_reasons : tuple of str
        Review reasons the caller adds (labels settled between the films).
    expected_offset : int
        A label offset between the tracked bodies and this film's detection
        that the caller already explains in ``extra_reasons`` (not repeated).

    Returns
    -------
    (AutoLandmarks, list of str)
        This film's result, and review reasons for the *source* film (the
        guard found the two detections naming the same bodies differently).
    """
    src_name, tgt_name = _ROLES[source_index], _ROLES[target_index]
    guarded = check_tracking(
        tracked, detection, target=tgt_name, source_facing=source.details.get("facing"),
        unchecked_needs_review=_UNCHECKED_NEEDS_REVIEW,
    )  # fmt: skip
    cross = guarded.details["cross_check"]
    reasons = list(extra_reasons)
    if source.details.get("needs_review"):
        reasons.append(f"its labels are the {src_name} film's, which needs review itself")
    guard_reasons = guarded.details.get("review_reasons", [])
    if expected_offset and cross.get("label_offset") == expected_offset:
        guard_reasons = [r for r in guard_reasons if not r.startswith("the labels of the two films differ")]
    reasons += guard_reasons
    n_placed = len([lv for lv in guarded.placed if lv != guarded.levels[-1]])
    if n_placed < _MIN_CARRIED_BODIES:
        reasons.append(f"only {n_placed} bodies could be tracked from the {src_name} film")
    source_reasons = []
    if cross.get("label_offset") and cross["label_offset"] != expected_offset:
        k = int(cross["label_offset"])
        source_reasons.append(
            f"tracking its bodies onto the {tgt_name} film puts them on the bodies detection there names "
            f"{abs(k)} level(s) {'lower' if k > 0 else 'higher'}: check the labels on both films"
        )
    elif any(status == "disagree" for status in cross["status"].values()) and _DISAGREE_SOURCE_REVIEW:
        source_reasons.append(
            f"its bodies tracked onto the {tgt_name} film and detection there disagree on some bodies"
        )
    if detection:
        why = "its own detection needs review" if detection.details.get("needs_review") else "detected"
        own = {"found": True, "needs_review": bool(detection.details.get("needs_review")),
               "review_reasons": list(detection.details.get("review_reasons", []))}  # fmt: skip
    else:
        why = f"its own detection: {detection.reason}"
        own = {"found": False, "reason": detection.reason}
    reasons = list(dict.fromkeys(reasons))
    details = {
        **guarded.details,
        "facing": source.details.get("facing"),
        "facing_confidence": source.details.get("facing_confidence"),
        "facing_evidence": source.details.get("facing_evidence"),
        "label_confidence": {
            lv: c for lv, c in source.details.get("label_confidence", {}).items() if lv in guarded.placed
        },
        "study_check": source.details.get("study_check"),
        "tracked_from": src_name,
        "obtained": f"tracked from the {src_name} film ({why})",
        "own_detection": own,
        "needs_review": bool(reasons),
        "review_reasons": reasons,
    }
    return replace(guarded, details=details), source_reasons


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ≈ scale * R @ src + t`` of matched points (Umeyama).

    Parameters
    ----------
    src, dst : ndarray of shape (N, 2)
        Matched points, pixels (N >= 2).

    Returns
    -------
    (scale, R, t) : float, ndarray of shape (2, 2), ndarray of shape (2,)
    """
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / max(float(np.sum(a * a)), 1e-12))
    return scale, rot, mu_d - scale * rot @ mu_s


def _exchange_bodies(
    agreed: tuple[AutoLandmarks, AutoLandmarks], track: Any
) -> tuple[AutoLandmarks, AutoLandmarks]:
    """Both films found and unsure, same labels and facing: settle bodies the two outline differently.

    The flexion film's bodies are tracked onto the extension film.  A body
    whose tracked and detected positions on the extension film lie between
    ``_DISPUTE[0]`` and ``_DISPUTE[1]`` endplate depths apart (the same
    vertebra outlined differently: farther is the guard's business, another
    level), with a tracking correlation of at least ``_DISPUTE_QUALITY``, is
    outlined on one of the films a good part of a body off.  The film whose
    detection is surer of that body (its confidence) keeps it, and the other
    film takes it: the tracked corners (flexion → extension), or the extension
    film's detected corners mapped back by the inverse of that body's tracked
    similarity (extension → flexion; a rigid body, so this is tracking the
    other way).  Labels are not touched; both films keep needing review, with
    a reason naming the body.
    """
    tracked = track(0, 1)
    if not tracked:
        return agreed
    flex, ext = agreed
    c_t, depth = _centres(tracked.corners)
    c_e, _ = _centres(ext.corners)
    with np.errstate(invalid="ignore"):
        gap = np.linalg.norm(c_t - c_e, axis=-1) / depth
        disputed = (gap > _DISPUTE[0]) & (gap < _DISPUTE[1]) & (tracked.quality >= _DISPUTE_QUALITY)
    disputed &= np.isfinite(flex.quality) & np.isfinite(ext.quality) & (flex.quality != ext.quality)
    if not disputed.any():
        return agreed
    out = {"flexion": _Editable(flex), "extension": _Editable(ext)}
    for v in np.flatnonzero(disputed):
        level = flex.levels[v]
        has = np.isfinite(flex.corners[v, :, 0]) & np.isfinite(tracked.corners[v, :, 0])
        if flex.quality[v] > ext.quality[v]:
            keeper, taker, corners, sd = "flexion", "extension", tracked.corners[v], flex.sd_px[v]
            quality = flex.quality[v]
        else:
            keeper, taker = "extension", "flexion"
            scale, rot, t = _similarity(flex.corners[v, has], tracked.corners[v, has])
            corners = ((ext.corners[v] - t) @ rot) / scale  # the inverse similarity, row vectors
            sd, quality = ext.sd_px[v] / scale, ext.quality[v]
        why = (
            f"{level}: the two films outline it {gap[v]:.2f} endplate depths apart; the {keeper} film's "
            f"outline (detection confidence {max(flex.quality[v], ext.quality[v]):.2f} against "
            f"{min(flex.quality[v], ext.quality[v]):.2f}) is carried to the {taker} film: check {level} on both"
        )
        out[taker].take(v, corners, sd, quality, why)
        out[keeper].note(why)
    return out["flexion"].result(), out["extension"].result()


class _Editable:
    """A detection whose bodies are replaced one by one (:func:`_exchange_bodies`)."""

    def __init__(self, outcome: AutoLandmarks) -> None:
        self.outcome = outcome
        self.corners = np.array(outcome.corners, dtype=np.float64)
        self.placement = np.array(outcome.placement, dtype=object)
        self.sd_px = np.array(outcome.sd_px, dtype=np.float64)
        self.sd_mm = np.array(outcome.sd_mm, dtype=np.float64)
        self.quality = np.array(outcome.quality, dtype=np.float64)
        self.reasons: list[str] = []
        self.carried: list[str] = []

    def take(self, v: int, corners: np.ndarray, sd_px: np.ndarray, quality: float, why: str) -> None:
        placed = np.isfinite(corners[:, 0]) & np.isfinite(self.corners[v, :, 0])
        self.corners[v] = np.where(placed[:, None], corners, np.nan)
        self.placement[v] = np.where(placed, PlacementMethod.TRACKED.value, "")
        self.sd_px[v] = np.where(placed, sd_px, np.nan)
        scale = _mm_per_px(self.outcome.calibration)
        floor = _SD_FLOOR_MM[PlacementMethod.DETECTED]
        self.sd_mm[v] = np.nan if scale is None else np.where(placed, np.maximum(sd_px * scale, floor), np.nan)
        self.quality[v] = quality
        self.carried.append(self.outcome.levels[v])
        self.note(why)

    def note(self, why: str) -> None:
        self.reasons.append(why)

    def result(self) -> AutoLandmarks:
        if not self.reasons:
            return self.outcome
        o = self.outcome
        reasons = list(dict.fromkeys([*o.details.get("review_reasons", []), *self.reasons]))
        details = {**o.details, "needs_review": True, "review_reasons": reasons}
        if self.carried:
            details["carried_from_partner"] = list(self.carried)
        return replace(
            o, corners=self.corners, placement=self.placement.astype(object), sd_px=self.sd_px,
            sd_mm=self.sd_mm, quality=self.quality, details=details,
        )  # fmt: skip


def _settle_labels(
    agreed: tuple[AutoLandmarks, AutoLandmarks],
    alone: tuple[AutoLandmarks, AutoLandmarks],
    track: Any,
    offset: int,
) -> tuple[AutoLandmarks | LandmarkFailure, AutoLandmarks | LandmarkFailure]:
    """Two found films whose labels differ by ``offset`` (flexion body v is extension body v + offset).

    Tracking both ways must confirm the correspondence (each film's bodies
    land on the other film's bodies ``offset`` labels away); then, when one
    film's own label evidence is clearly stronger (its smallest label
    confidence higher by ``_SETTLE_MARGIN``), its labels (and bodies) are
    carried to the other.  Both films keep needing review.
    """
    conf = [min(o.details.get("label_confidence", {}).values(), default=0.0) for o in alone]
    if abs(conf[0] - conf[1]) < _SETTLE_MARGIN:
        return agreed
    source = int(np.argmax(conf))
    target = 1 - source
    there, back = track(source, target), track(target, source)
    expected = offset if source == 0 else -offset
    confirmed = []
    for result, det, k, name in ((there, alone[target], expected, target), (back, alone[source], -expected, source)):
        if not result:
            confirmed.append(False)
            continue
        cross = check_tracking(result, det, target=_ROLES[name]).details["cross_check"]
        confirmed.append(int(cross.get("label_offset", 0)) == k)
    if not all(confirmed):
        return agreed
    note = (
        f"the labels of the two films differed by {abs(offset)} level(s); tracking both ways confirms the "
        f"bodies correspond that way; the {_ROLES[target]} film takes the {_ROLES[source]} film's labels, "
        f"whose own label evidence is stronger (smallest label confidence {conf[source]:.2f} against "
        f"{conf[target]:.2f}): confirm the labels"
    )
    carried, _ = _carried(
        there, alone[source], alone[target], source, target, extra_reasons=(note,), expected_offset=expected
    )  # fmt: skip
    out = list(agreed)
    out[target] = replace(carried, details={**carried.details, "study_check": agreed[target].details["study_check"]})
    out[source] = _with_reasons(agreed[source], [note])
    return out[0], out[1]


def _body_patches(image: np.ndarray, corners: np.ndarray, size: tuple[int, int] = (40, 30)) -> np.ndarray:
    """Each body resampled into its own frame (anterior left, superior up), standardised.

    Returns an array of shape (V, rows, cols); NaN for bodies without four corners.
    """
    import cv2

    cols, rows = size
    target = np.array([[0, 0], [cols - 1, 0], [cols - 1, rows - 1], [0, rows - 1]], np.float32)
    out = np.full((corners.shape[0], rows, cols), np.nan, np.float32)
    img = np.asarray(image, np.float32)
    for v, quad in enumerate(corners):  # at most six bodies
        if not np.all(np.isfinite(quad)):
            continue
        m = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
        patch = cv2.warpPerspective(img, m, (cols, rows), flags=cv2.INTER_AREA)
        patch -= patch.mean()
        out[v] = patch / max(float(patch.std()), 1e-6)
    return out


def _label_offset(images: tuple[np.ndarray, np.ndarray], corners: tuple[np.ndarray, np.ndarray]):
    """Level offset (-1, 0, +1) that best matches the bodies of the two films, and the scores.

    Score of an offset k: mean correlation of flexion body v with extension body v + k.
    An offset other than 0 is returned only when it beats 0 by a clear margin.
    """
    a, b = (_body_patches(img, c) for img, c in zip(images, corners, strict=True))
    scores = {}
    for k in (-1, 0, 1):
        pairs = [
            float(np.mean(a[v] * b[v + k]))
            for v in range(len(a))
            if 0 <= v + k < len(b) and np.all(np.isfinite(a[v])) and np.all(np.isfinite(b[v + k]))
        ]
        scores[k] = float(np.mean(pairs)) if len(pairs) >= 2 else np.nan
    best = max((k for k in scores if np.isfinite(scores[k])), key=lambda k: scores[k], default=0)
    if best != 0 and np.isfinite(scores[0]) and scores[best] - scores[0] < _LABEL_MARGIN:
        best = 0
    return best, scores


def corners_facing(corners: np.ndarray) -> str | None:
    """Side of the image the patient faces, read from the corners themselves.

    Parameters
    ----------
    corners : ndarray of shape (V, 4, 2)
        ``AS, PS, PI, AI`` per body, pixels (NaN = absent).

    Returns
    -------
    {'left', 'right'} or None
        ``"left"`` when the anterior corners lie left of the posterior ones
        (median over the bodies of ``AS.x - PS.x``); None without a body with
        both superior corners.
    """
    c = np.asarray(corners, dtype=np.float64)
    dx = c[:, 0, 0] - c[:, 1, 0]
    dx = dx[np.isfinite(dx)]
    if not dx.size or float(np.median(dx)) == 0:
        return None
    return "left" if float(np.median(dx)) < 0 else "right"


def _centres(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre of the superior endplate (V, 2) and endplate depth (V,) of each body; NaN if absent.

    The superior endplate is what every body, S1 included, has.
    """
    sup = np.asarray(corners, dtype=np.float64)[:, :2]
    centre = sup.mean(axis=1)
    depth = np.linalg.norm(sup[:, 0] - sup[:, 1], axis=-1)
    return centre, depth


def check_tracking(
    tracked: AutoLandmarks | LandmarkFailure,
    detection: AutoLandmarks | LandmarkFailure | None,
    *,
    target: str = "other",
    source_facing: str | None = None,
    unchecked_needs_review: bool = False,
) -> AutoLandmarks | LandmarkFailure:
    """The guard against a tracked body on the wrong level: tracking vs detection on the same film.

    Tracking carries each body with its label; vertebrae look alike, so a body
    can lock onto its neighbour with a high correlation.  Detection on the
    target film is an independent placement with its own labels.  Per tracked
    body, with ``d`` its endplate depth:

    - the detected body of the same label is within ``0.5 d`` of it: agreed;
    - it is farther: the two methods disagree on that body, which is **left
      unplaced** (NaN corners, reason in ``failures``) and the result needs
      review — unless *every* compared body sits on the detected body one
      label away by the same offset (the whole column's labels differ between
      the films: nothing is removed, the result needs review);
    - detection did not place that label: not checked (said in ``details``).

    Facing: tracking keeps the source film's facing (a rigid motion cannot
    mirror); when detection on the target finds the patient facing the other
    way, the result needs review.  Labels and facing are never changed here.

    Parameters
    ----------
    tracked : AutoLandmarks or LandmarkFailure
        :func:`track_film` on ``target`` (returned as is when a failure).
    detection : AutoLandmarks or LandmarkFailure or None
        :func:`detect_film` (or :func:`detect_study`) on the same target film.
    target : str
        Name of the target film in reasons (``"flexion"``, ``"extension"``).
    source_facing : {'left', 'right'}, optional
        Facing of the source film if known (detection's); default: from the
        tracked corners (:func:`corners_facing`).
    unchecked_needs_review : bool
        Whether a result that could not be cross-checked at all (detection
        failed or found none of the tracked bodies) needs review: True when
        the source labels themselves came from a detection.

    Returns
    -------
    AutoLandmarks or LandmarkFailure
        ``tracked`` with disagreeing bodies removed and, in ``details``:
        ``needs_review``, ``review_reasons`` and ``cross_check`` (per level
        ``agree`` / ``disagree`` / ``unchecked``, the label offset, facing).
    """
    if not tracked:
        return tracked
    levels = tracked.levels
    corners = np.asarray(tracked.corners, dtype=np.float64)
    placed = np.all(np.isfinite(corners[:, :2, 0]), axis=1)
    reasons: list[str] = []
    status = {lv: "unchecked" for lv, p in zip(levels, placed, strict=True) if p}
    check: dict[str, Any] = {"checked": False, "status": status}
    failures = dict(tracked.failures)
    remove = np.zeros(len(levels), bool)
    found = bool(detection) and getattr(detection, "levels", None) == levels
    if not found:
        why = getattr(detection, "reason", None) or (
            "no detection" if detection is None else "detection has other levels"
        )
        check["reason"] = why
        if unchecked_needs_review and placed.any():
            reasons.append(f"labels not cross-checked on the {target} film (detection: {why})")
    else:
        det = np.asarray(detection.corners, dtype=np.float64)
        c_t, depth = _centres(corners)
        c_d, _ = _centres(det)
        depth = np.where(np.isfinite(depth), depth, np.nanmedian(depth) if placed.any() else np.nan)
        with np.errstate(invalid="ignore"):
            gap = np.linalg.norm(c_t[:, None] - c_d[None], axis=-1) / depth[:, None]  # (V tracked, V detected)
        near = np.where(np.isfinite(gap), gap, np.inf)
        nearest = np.argmin(near, axis=1)
        matched = placed & (near[np.arange(len(levels)), nearest] < _CHECK_DISTANCE)
        offset = np.where(matched, nearest - np.arange(len(levels)), 0)
        same = np.diagonal(gap)
        comparable = placed & np.isfinite(same)
        agree = comparable & (same < _CHECK_DISTANCE)
        off = comparable & ~agree
        shifts = set(offset[off & matched].tolist())
        # the whole column named one level apart: every compared body off, most of them on
        # the detected body k labels away (the end bodies may have no partner), none agreeing
        uniform = (
            off.any() and not agree.any() and len(shifts) == 1
            and 2 * int(np.sum(off & matched)) >= int(comparable.sum()) and int(np.sum(off & matched)) >= 2
        )  # fmt: skip
        check.update(checked=bool(comparable.any()), label_offset=int(shifts.pop()) if uniform else 0)
        for v, lv in enumerate(levels):
            if agree[v]:
                status[lv] = "agree"
            elif off[v]:
                status[lv] = "disagree"
        if uniform:
            k = check["label_offset"]
            reasons.append(
                f"the labels of the two films differ by {abs(k)} level(s): detection on the {target} film "
                f"names every tracked body {abs(k)} level(s) {'lower' if k > 0 else 'higher'}: check the labels"
            )
        elif off.any():
            remove = off
            for v in np.flatnonzero(off):
                lv = levels[v]
                if matched[v]:
                    failures[lv] = (
                        f"tracking put {lv} where detection on the {target} film finds "
                        f"{levels[nearest[v]]} (possibly the wrong level): left unplaced"
                    )
                else:
                    failures[lv] = (
                        f"tracking and detection on the {target} film place {lv} "
                        f"{same[v]:.1f} endplate depths apart: left unplaced"
                    )
            reasons.append(
                f"{target} film: tracking and detection disagree on "
                f"{', '.join(levels[v] for v in np.flatnonzero(off))} (left unplaced there: place them, "
                "or check the labels on both films)"
            )
        if not comparable.any() and unchecked_needs_review and placed.any():
            reasons.append(f"labels not cross-checked on the {target} film (detection found none of the tracked bodies)")
        det_facing = detection.details.get("facing")
        own = source_facing or corners_facing(corners)
        check["facing"] = {"tracked": own, "detected": det_facing}
        if det_facing in ("left", "right") and own is not None and det_facing != own:
            reasons.append(
                f"detection on the {target} film finds the patient facing {det_facing}, the tracked "
                f"corners face {own}: one film may be mirrored; every angle and translation would change sign"
            )
    keep = ~remove
    details = {
        **tracked.details,
        "cross_check": check,
        "needs_review": bool(reasons) or bool(tracked.details.get("needs_review")),
        "review_reasons": [*tracked.details.get("review_reasons", []), *reasons],
    }
    return replace(
        tracked,
        corners=np.where(keep[:, None, None], corners, np.nan),
        placement=np.where(keep[:, None], tracked.placement, "").astype(object),
        sd_px=np.where(keep[:, None], tracked.sd_px, np.nan),
        sd_mm=np.where(keep[:, None], tracked.sd_mm, np.nan),
        quality=np.where(keep, tracked.quality, np.nan),
        failures=failures,
        details=details,
    )


def track_checked(
    source: Any,
    source_corners: np.ndarray,
    target: Any,
    *,
    levels: tuple[str, ...] | list[str] = DEFAULT_LEVELS,
    target_calibration: Calibration | None = None,
    estimate_scale: bool = True,
    detection: AutoLandmarks | LandmarkFailure | None = None,
    target_name: str = "other",
    source_facing: str | None = None,
    labels_detected: bool = False,
    checkpoint: Checkpoint | None = None,
) -> AutoLandmarks | LandmarkFailure:
    """:func:`track_film` guarded by a detection on the target film (:func:`check_tracking`).

    The one path every caller that tracks uses (viewer Auto, ``track``,
    ``complete``, batch): a body where tracking and detection disagree is left
    unplaced, and the result says when it needs review.

    Parameters
    ----------
    source, target, source_corners, levels, target_calibration, estimate_scale, checkpoint
        As :func:`track_film`.
    detection : AutoLandmarks or LandmarkFailure, optional
        Detection already run on ``target`` (batch's :func:`detect_study`);
        default: :func:`detect_film` is run on ``target`` when ``levels`` end
        with S1 (detection counts from the sacrum), else nothing is checked.
    target_name : str
        The target film's name in reasons.
    source_facing : {'left', 'right'}, optional
        The source film's facing when known.
    labels_detected : bool
        The source labels came from a detection: an unchecked result needs review.

    Returns
    -------
    AutoLandmarks or LandmarkFailure
    """
    tracked = track_film(
        source, source_corners, target, levels=levels, target_calibration=target_calibration,
        estimate_scale=estimate_scale, checkpoint=checkpoint,
    )  # fmt: skip
    if not tracked:
        return tracked
    if detection is None and tuple(levels)[-1:] == ("S1",):
        detection = detect_film(target, levels=levels, calibration=target_calibration)
    return check_tracking(
        tracked, detection, target=target_name, source_facing=source_facing,
        unchecked_needs_review=labels_detected,
    )  # fmt: skip


def track_study(
    study: Any,
    flexion: Any,
    extension: Any,
    *,
    source: str | None = None,
    replace_existing: bool = False,
    estimate_scale: bool = True,
    check: bool = True,
) -> tuple[Any, AutoLandmarks | LandmarkFailure]:
    """Track the bodies of a landmarks study from one film to the other, guarded.

    Parameters
    ----------
    study : app.landmarks_io.StudyLandmarks
        Landmarks of at least one film.
    flexion, extension : app.dicom_io.Film or ndarray
        The two films.
    source : {'flexion', 'extension'}, optional
        The film whose corners are carried; default the film with more corners
        (flexion on a tie).
    replace_existing : bool
        Replace the target film's corners of levels it already has; by default
        only levels missing on the target are filled.
    estimate_scale : bool
        Allow a magnification change between the films.
    check : bool
        Cross-check the tracked bodies with a detection on the target film
        (:func:`track_checked`): a body where the two disagree is not filled,
        and ``details["needs_review"]`` says whether the labels need a look.

    Returns
    -------
    (StudyLandmarks, AutoLandmarks or LandmarkFailure)
        The updated study (unchanged on failure) and the tracking outcome.
        Filled corners get ``placement`` ``tracked`` and ``landmark_sd_mm``
        from the fit; source corners without a stated placement become
        ``manual``.  Each film's calibration comes from its DICOM header
        unless the study's is a manual calibration.  The target film's
        ``tracking`` key records the source, the per-level quality and
        failures and the common scale.
    """
    films = {"flexion": flexion, "extension": extension}
    counts = {name: int(np.isfinite(study.film(name).corners[..., 0]).sum()) for name in films}
    if source is None:
        source = "flexion" if counts["flexion"] >= counts["extension"] else "extension"
    if source not in films:
        raise ValueError(f"source: expected 'flexion' or 'extension', got {source!r}")
    target = "extension" if source == "flexion" else "flexion"
    if counts[source] == 0:
        return study, LandmarkFailure(f"no landmarks on the {source} film to track from")
    src = study.film(source)
    cal = _study_calibration(study.film(target), films[target])
    if check:
        outcome = track_checked(
            films[source], src.corners, films[target], levels=study.levels, target_calibration=cal,
            estimate_scale=estimate_scale, target_name=target,
        )  # fmt: skip
    else:
        outcome = track_film(
            films[source], src.corners, films[target], levels=study.levels, target_calibration=cal,
            estimate_scale=estimate_scale,
        )  # fmt: skip
    if not outcome:
        return study, outcome
    updated = {
        source: _with_calibration(_with_default_placement(src), films[source]),
        target: _merge(study.film(target), outcome, films[target], replace_existing, source),
    }
    return replace(study, flexion=updated["flexion"], extension=updated["extension"]), outcome


def _study_calibration(film_landmarks: Any, film: Any) -> Calibration:
    cal = film_landmarks.calibration
    if cal.source.value == "manual" or not hasattr(film, "calibration"):
        return cal
    return film.calibration


def _with_calibration(film_landmarks: Any, film: Any) -> Any:
    return replace(film_landmarks, calibration=_study_calibration(film_landmarks, film))


def _with_default_placement(film_landmarks: Any) -> Any:
    corners = film_landmarks.corners
    placement = film_landmarks.placement
    present = np.isfinite(corners[..., 0])
    if placement is None:
        placement = np.full(present.shape, "", dtype=object)
    placement = np.where(present & (placement == ""), PlacementMethod.MANUAL.value, placement)
    return replace(film_landmarks, placement=placement.astype(object))


def _merge(old: Any, outcome: AutoLandmarks, film: Any, replace_existing: bool, source: str) -> Any:
    old = _with_default_placement(old)
    have = np.any(np.isfinite(old.corners[..., 0]), axis=1)
    got = np.any(np.isfinite(outcome.corners[..., 0]), axis=1)
    take = got & (replace_existing | ~have)
    corners = np.where(take[:, None, None], outcome.corners, old.corners)
    placement = np.where(take[:, None], outcome.placement, old.placement).astype(object)
    old_sd = old.landmark_sd_mm if old.landmark_sd_mm is not None else np.full((*take.shape, 4), np.nan)
    sd = np.where(take[:, None], outcome.sd_mm, old_sd)
    extra = dict(old.extra)
    extra["tracking"] = {"source": source, **outcome.to_json()}
    return replace(
        old, corners=corners, placement=placement,
        landmark_sd_mm=sd if np.any(np.isfinite(sd)) else old.landmark_sd_mm,
        calibration=outcome.calibration, extra=extra,
    )  # fmt: skip


def complete_film(
    film: Any,
    clicks: Any,
    *,
    levels: tuple[str, ...] | list[str] = DEFAULT_LEVELS,
    facing: str | None = None,
    calibration: Calibration | None = None,
    checkpoint: Checkpoint | None = None,
) -> AutoLandmarks | LandmarkFailure:
    """All the corners of every body from one click inside each (the fastest manual path).

    Parameters
    ----------
    film : app.dicom_io.Film or ndarray of shape (H, W)
        The film the clicks are on.
    clicks : ndarray of shape (V, 2) or dict of str to (x, y)
        One point (pixels, ``x`` = column, ``y`` = row) inside each body of
        ``levels``, top to bottom; NaN rows (or levels missing from the dict)
        are bodies to be found along the column between two clicked bodies.
        The first and the last level must be clicked: ``{"L1": (x, y),
        "S1": (x, y)}`` finds L2–L5 in between.
    levels : sequence of str
        Labels of the V bodies, top to bottom; when the last is ``S1`` only its
        superior corners are placed.  The labels are the reader's: clicks say
        which body is which, so no label is guessed here.
    facing : {'left', 'right'}, optional
        Side of the image the patient's front is on, if known (the reader, or
        the other film of the study); estimated from the image otherwise and
        reported in ``details["facing_evidence"]``.
    calibration : Calibration, optional
        Default: ``film.calibration`` (uncalibrated for an array).
    checkpoint : callable, optional
        Progress and cancellation hook (:data:`measure.Checkpoint`), called
        before and after the work.

    Returns
    -------
    AutoLandmarks or LandmarkFailure
        ``corners`` (V, 4, 2); ``placement`` ``refined`` for bodies snapped to
        the cortex and ``detected`` for bodies left as the box fitted to the
        image (their reason in ``details["unrefined"]``); bodies not found
        are NaN with the reason in ``failures``.  ``quality`` is the box's
        edge contrast.  ``details``: ``facing``, ``facing_evidence``
        (``sure`` is False when the anatomical cues are weak or disagree: ask the
        reader), ``clicked`` and ``found_along_column`` (level lists),
        ``unrefined``.  A failure (falsy) for fewer than two clicks, clicks
        off the film or out of order, or a blank film.

    Examples
    --------
    >>> out = complete_film(film, {"L1": (412, 300), "S1": (520, 1410)})   # doctest: +SKIP
    >>> out.corners.shape, out.details["found_along_column"]                # doctest: +SKIP
    ((6, 4, 2), ['L2', 'L3', 'L4', 'L5'])
    """
    from measure import corners_from_seeds

    levels = tuple(levels)
    if isinstance(clicks, dict):
        unknown = sorted(set(clicks) - set(levels))
        if unknown:
            return LandmarkFailure(f"clicks for levels not in {', '.join(levels)}: {', '.join(unknown)}")
        seeds = np.array([clicks.get(level, (np.nan, np.nan)) for level in levels], dtype=np.float64)
    else:
        seeds = np.asarray(clicks, dtype=np.float64)
        if seeds.shape != (len(levels), 2):
            raise ValueError(f"clicks: expected shape ({len(levels)}, 2), got {seeds.shape}")
    small = _too_small(film)
    if small is not None:
        return small
    if checkpoint is not None:
        checkpoint(0.0)
    result = corners_from_seeds(
        film_image(film), seeds, last_is_sacrum=levels[-1] == "S1", facing=facing, levels=levels,
    )  # fmt: skip
    if checkpoint is not None:
        checkpoint(1.0)
    if not result:
        return result
    cal = _calibration_of(film, calibration)
    found = np.all(np.isfinite(result.landmarks[:, :2, 0]), axis=1)
    placed = np.isfinite(result.landmarks[..., 0])
    method = np.where(result.refined[:, None], PlacementMethod.REFINED.value, PlacementMethod.DETECTED.value)
    placement = np.where(placed, method, "").astype(object)
    scale = _mm_per_px(cal)
    if scale is None:
        sd_mm = np.full(placed.shape, np.nan)
    else:
        floor = np.where(
            result.refined[:, None], _SD_FLOOR_MM[PlacementMethod.REFINED], _SD_FLOOR_MM[PlacementMethod.DETECTED]
        )
        sd_mm = np.where(placed, np.maximum(result.corner_sd_px * scale, floor), np.nan)
    failures = {
        level: reason for level, reason, ok in zip(levels, result.body_failures, found, strict=True)
        if reason is not None and not ok
    }  # fmt: skip
    unrefined = {
        level: reason for level, reason, ok, ref in zip(levels, result.body_failures, found, result.refined, strict=True)
        if ok and not ref and reason is not None
    }  # fmt: skip
    details = {
        "facing": result.facing,
        "facing_evidence": result.facing_evidence,
        "clicked": [level for level, c in zip(levels, result.clicked, strict=True) if c],
        "found_along_column": [
            level for level, c, ok in zip(levels, result.clicked, found, strict=True) if ok and not c
        ],
        "unrefined": unrefined,
    }
    return AutoLandmarks(
        levels, result.landmarks, placement, np.where(placed, result.corner_sd_px, np.nan), sd_mm,
        result.quality, failures, PlacementMethod.REFINED, cal, details,
    )  # fmt: skip
