"""Landmark placement methods and their default positional uncertainty (measurement.md §6).

Every corner carries an isotropic positional standard deviation (SD).
:func:`measure.segmental_motion` propagates it to the motion values to first
order (see ``docs/measurement-methods.md``).

How the defaults are derived
----------------------------
For a typical lumbar segment (endplate depth ``D`` ≈ 35 mm, the posterior-inferior
corner of the upper body a disc height ``h`` ≈ 10 mm above the lower endplate),
independent per-corner SD ``s`` in each film gives, by the propagation formulas of
:mod:`measure._motion`:

- translation ``dt = t_flex - t_ext``: ``SD(dt) = s * sqrt(2 * (2 + 2 h²/D²)) ≈ 2.05 s``;
- angulation: ``SD(dtheta) = s * sqrt(8) / D`` rad ``≈ 4.6 s`` degrees per mm.

measurement.md §6 quotes manual measurement errors of about 0.6 mm / 1.6°
(intra-observer) and 1.4 mm / 2.6° (inter-observer) (Eur J Radiol
1994;18:227-231).  Solving the two relations for ``s``:
intra-observer 0.29 mm (translation) / 0.35 mm (angle); inter-observer
0.68 mm / 0.56 mm.

Measured error model
--------------------
The default (or fitted) SD of a corner is what the placing step states; how
far that statement is from the truth was measured on phantom studies no test
uses (``benchmarks/bench_coverage.py``) and is corrected by :data:`ERROR_MODEL`
(:class:`ErrorModel` per method: along/across-endplate factors and a shift and
rotation shared by a body), applied by :func:`placement_uncertainty` wherever
motion is measured.  Manual corners are taken as stated.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ERROR_MODEL",
    "TRACKING_SD_MODEL",
    "ErrorModel",
    "LandmarkUncertainty",
    "PlacementMethod",
    "TrackingSDModel",
    "placement_uncertainty",
    "tracking_sd",
]


class PlacementMethod(enum.StrEnum):
    """How a landmark was placed; the string values are written to session files."""

    MANUAL = "manual"
    """Clicked by a reader.  Default SD 0.6 mm: the per-corner SD that reproduces
    the inter-observer error of manual measurement (1.4 mm / 2.6°, Eur J Radiol
    1994;18:227-231, measurement.md §6) – 0.68 mm from translation, 0.56 mm from
    angle.  Inter- rather than intra-observer error because another reader is the
    relevant comparison for a reported value."""

    REFINED = "refined"
    """Placed by a reader, then snapped to the cortical edge by sub-pixel
    refinement (:func:`measure.refine_corners`).  Default SD 0.5 mm: measured
    on 24 phantom studies no test uses (``benchmarks/bench_accuracy.py``):
    from clicks off by 1.5 mm per axis, corner error median 0.43 mm, 95th
    percentile 1.6 mm (2-D), i.e. about 0.5 mm per axis.  The fit's own
    per-corner SD is written to ``landmark_sd_mm`` when available."""

    TRACKED = "tracked"
    """Carried from the other film by rigid registration of the body's own
    pixels (§7, :func:`measure.track_bodies`).  Default SD 0.1 mm (used only
    when no SD was stored): measured on 24 phantom studies no test uses (noise,
    rotation, facing, magnification change; ``benchmarks/bench_accuracy.py``):
    corner error median 0.03 mm, 95th percentile 0.07 mm (≈ 0.03 mm per axis),
    tripled for real films; template tracking on fluoroscopy reached ≈ 0.06 mm
    (Balkovec 2017, §6).  ``app.autolandmarks`` writes each body's own SD to
    ``landmark_sd_mm``: :func:`tracking_sd` of its registration's correlation."""

    DETECTED = "detected"
    """Found automatically, not reviewed (:func:`measure.detect_vertebrae`).
    Default SD 1.0 mm: on 48 phantom films no test uses the corner error of
    correctly labelled bodies has a median of 0.47 mm (≈ 0.4 mm per axis) with
    a long tail, and the phantom is kinder than real films; the value stays
    above the inter-observer level (0.68 mm, §6) so that unreviewed detections
    remain visibly uncertain."""

    EDITED = "edited"
    """An automatic landmark moved by a reader: same as ``manual`` (0.6 mm)."""

    @property
    def default_sd_mm(self) -> float:
        """Default isotropic positional SD of one corner, in mm."""
        return DEFAULT_LANDMARK_SD_MM[self]


DEFAULT_LANDMARK_SD_MM: dict[PlacementMethod, float] = {
    PlacementMethod.MANUAL: 0.6,
    PlacementMethod.REFINED: 0.5,
    PlacementMethod.TRACKED: 0.1,
    PlacementMethod.DETECTED: 1.0,
    PlacementMethod.EDITED: 0.6,
}
"""Per-method default SD in mm (engineer of tracking/detection may update these
from measured accuracy; keep the docstrings in step)."""


@dataclass(frozen=True)
class ErrorModel:
    """Measured error model of one placement method (issue 11 §2).

    A corner's error is the sum of an independent error - SD
    ``corner_factor * s`` along its endplate and ``across_factor * s``
    perpendicular to it, where ``s`` is the corner's stated SD (the
    algorithm's own fit SD, else the method's default) - and an error shared
    by its whole body: a shift (SD ``shift_sd_mm`` per axis) and a rotation
    about the centroid of its corners (SD ``rotation_sd_deg``).  Bodies and
    films err independently.  The default is the stated SD, isotropic and
    independent.

    Attributes
    ----------
    corner_factor : float
        Scales the stated SD along the endplate (translation is sensitive to it).
    across_factor : float or None
        Scales the stated SD perpendicular to the endplate (angles are
        sensitive to it); None: ``corner_factor`` (isotropic).
    shift_sd_mm : float
        SD of the whole body's shift, per axis, mm (in the patient).
    rotation_sd_deg : float
        SD of the whole body's rotation about its corners' centroid, degrees.
    shift_factor : float
        Adds ``shift_factor * s_body`` (in quadrature) to the body's shift SD,
        where ``s_body`` is the largest stated SD of the body's corners placed
        by this method, mm: a per-body SD (tracking's, from the registration's
        own fit, :func:`tracking_sd`) scales the shared error.
    rotation_deg_per_mm : float
        Adds ``rotation_deg_per_mm * s_body`` degrees (in quadrature) to the
        body's rotation SD.
    """

    corner_factor: float = 1.0
    across_factor: float | None = None
    shift_sd_mm: float = 0.0
    rotation_sd_deg: float = 0.0
    shift_factor: float = 0.0
    rotation_deg_per_mm: float = 0.0

    @property
    def across(self) -> float:
        """The factor across the endplate (``corner_factor`` when not set)."""
        return self.corner_factor if self.across_factor is None else self.across_factor


@dataclass(frozen=True)
class TrackingSDModel:
    """How far a tracked body's registration can be trusted, from its own fit.

    The SD (per axis) of the shift of a tracked body is
    ``fraction * depth * (1 - quality) ** power``: ``quality`` is the
    normalised cross-correlation of the body with its template after
    registration (1 = the other film's body matches its template exactly),
    ``depth`` the body's endplate depth on the film the body was tracked to.
    A body that matches its template less well (other exposure, blur,
    overlying structures, a shape that changed out of plane) is registered
    less precisely.

    Attributes
    ----------
    fraction : float
        SD as a fraction of the endplate depth at correlation 0.
    power : float
        Exponent of ``1 - quality``.
    min_mismatch : float
        ``1 - quality`` is taken at least this large (a perfect correlation
        still leaves sub-pixel error).
    """

    fraction: float
    power: float
    min_mismatch: float = 0.005


TRACKING_SD_MODEL = TrackingSDModel(fraction=0.00291, power=0.599)
"""SD of a tracked body's shift: 0.00291 × depth × (1 − correlation)^0.599.

Fitted by maximum likelihood (``fit_tracking_sd`` of
``benchmarks/bench_coverage.py --cache DIR --fit --fit-on both --studies 60 48 80 72``)
on the 639 tracked bodies of the tuning studies only (standard seeds
82000-82059, realistic 82500-82547, scale 0.5; code of main at 61564d2).  For a
35 mm body: 0.017 mm at correlation 0.95, 0.026 mm at 0.9, 0.039 mm at 0.8.
The error grows with the mismatch (correlation of log error with
log(1 − correlation) 0.45 over both kinds of phantom); the Gauss-Newton
covariance of the registration, floored at 0.15 px in
:func:`measure.track_bodies`, told the bodies apart no better (0.50 unfloored,
0.07 floored).  At the same correlation, tracking on the realistic phantoms
still errs about 1.4 times more than on the standard ones (per-axis RMS of
error/SD 1.17 against 0.84 on the first tuning studies): no figure of the
registration tells them apart (README, "Coverage of the 95 % intervals")."""


def tracking_sd(quality: Any, depth: Any, model: TrackingSDModel | None = None) -> np.ndarray:
    """Per-body SD of a tracked body's shift, per axis, from the registration's correlation.

    Parameters
    ----------
    quality : array_like of shape (...)
        Correlation of each body with its template after registration, [-1, 1];
        NaN for bodies not tracked.
    depth : array_like of shape (...)
        The body's endplate depth on the film it was tracked to, in the unit
        wanted for the SD (mm or pixels).
    model : TrackingSDModel, optional
        Default :data:`TRACKING_SD_MODEL`.

    Returns
    -------
    ndarray of shape (...)
        SD in the unit of ``depth``; NaN where ``quality`` or ``depth`` is NaN.

    Examples
    --------
    >>> m = TrackingSDModel(fraction=0.01, power=0.5)
    >>> tracking_sd([0.96, 0.84], 35.0, m).round(3).tolist()
    [0.07, 0.14]
    """
    model = TRACKING_SD_MODEL if model is None else model
    q = np.asarray(quality, dtype=float)
    mismatch = np.clip(1.0 - q, model.min_mismatch, 2.0)
    return model.fraction * np.asarray(depth, dtype=float) * mismatch**model.power


MANUAL_ERROR_MODEL = ErrorModel()
"""Manual and edited corners: the stated SD (0.6 mm by default, from the
literature's inter-observer error, measurement.md §6), isotropic and
independent.  Not measurable on phantoms: a simulated reader has the error we
give it."""

# The three models below were fitted by
#   .venv/bin/python benchmarks/bench_coverage.py --cache /tmp/coverage --fit --fit-on both --studies 60 48 80 72
# on the tuning seeds only: 60 standard phantom studies (seeds 82000-82059) and 48
# realistic ones (82500-82547), scale 0.5, code of main at 61564d2 (detect_study with
# the partner step, detect3's detector, trackspeed's tracking) with the tracked SD of
# TRACKING_SD_MODEL.
# Each fit: the smallest factor/SD that brings the tuning segments' coverage to 95 %
# (angulation first, then translation), coverage being the mean of the standard and the
# realistic studies' (each kind counts the same); see ``fit_error_model`` there.  Coverage
# on the reporting seeds (never used to fit) is in the README, "Coverage of the 95 % intervals".

REFINED_ERROR_MODEL = ErrorModel(corner_factor=1.57, across_factor=2.21)
"""Refined corners: the fit's own SD × 1.57 along the endplate and × 2.21 across it.

Measured on 892 refined bodies of the tuning studies (clicks 1.5 mm off, then
refined): the angle errors of a body's two endplates do not correlate (-0.03),
so corners err independently, not as a body; the fit SD understates the error,
most across the endplate (where the edge is located).  With the SDs as stored
angulation intervals covered 82-86 %.  (The factor along the endplate is
poorly determined: translation coverage moves little with it; fitted on 24
realistic tuning studies it was 0.53.)"""

TRACKED_ERROR_MODEL = ErrorModel(corner_factor=0.575, shift_factor=0.772, rotation_deg_per_mm=3.40)
"""Tracked corners: the body moves as one (endplate angle errors correlate at
1.00 on 531 tracked bodies of the tuning studies), so the error is a shift of
the whole body, SD 0.77 × the body's stated SD ``s`` per axis, and a rotation
about its centroid, SD 3.4 ° per mm of ``s``, plus a residual of 0.58 × ``s``
per corner.  ``s`` is the per-body SD of :func:`tracking_sd` that
``app.autolandmarks`` stores (it grows as the registration's correlation
falls): 0.017 mm for a 35 mm body matched at 0.95, i.e. shift 0.013 mm,
rotation 0.06°."""

DETECTED_ERROR_MODEL = ErrorModel(corner_factor=0.517, across_factor=1.17)
"""Detected corners: the detector's SD × 0.52 along the endplate and × 1.17
across it (1035 detected bodies of the tuning studies, some of them tracked
from the study's other film by ``detect_study``, which keeps their detection
SD; corner errors larger across the endplate than along).  A body detected at
the wrong level (tens of mm off) is never covered: such studies are what
``needs_review`` is for (on the tuning and reporting seeds all 78 bodies more
than a third of a depth off were in studies marked for review, and the
confidence of correctly labelled bodies says nothing about their corner error:
median 0.43-0.51 mm in every confidence band on standard phantoms)."""

ERROR_MODEL: dict[PlacementMethod, ErrorModel] = {
    PlacementMethod.MANUAL: MANUAL_ERROR_MODEL,
    PlacementMethod.REFINED: REFINED_ERROR_MODEL,
    PlacementMethod.TRACKED: TRACKED_ERROR_MODEL,
    PlacementMethod.DETECTED: DETECTED_ERROR_MODEL,
    PlacementMethod.EDITED: MANUAL_ERROR_MODEL,
}
"""Error model per placement method, used by :func:`placement_uncertainty`."""


@dataclass(frozen=True, eq=False)
class LandmarkUncertainty:
    """The SDs :func:`measure.segmental_motion` needs for one film's corners.

    Attributes
    ----------
    corner_sd_mm : ndarray of shape (..., V, 4)
        Independent SD of each corner along its endplate, mm.
    across_sd_mm : ndarray of shape (..., V, 4)
        Independent SD of each corner perpendicular to its endplate, mm.
    body_sd : ndarray of shape (..., V, 2)
        Per body, SD of the shift shared by its corners (mm per axis) and of
        its rotation about their centroid (degrees).
    """

    corner_sd_mm: np.ndarray
    across_sd_mm: np.ndarray
    body_sd: np.ndarray

    def motion_kwargs(self, film: str) -> dict[str, np.ndarray]:
        """Keyword arguments of :func:`measure.segmental_motion` for ``film``
        (``"flexion"`` or ``"extension"``)."""
        if film not in ("flexion", "extension"):
            raise ValueError(f"film: expected 'flexion' or 'extension', got {film!r}")
        return {
            f"{film}_landmark_sd_mm": self.corner_sd_mm,
            f"{film}_landmark_sd_across_mm": self.across_sd_mm,
            f"{film}_body_sd": self.body_sd,
        }


def placement_uncertainty(
    placement: Any,
    stated_sd_mm: Any = None,
    models: dict[PlacementMethod, ErrorModel] | None = None,
) -> LandmarkUncertainty:
    """Corner and body SDs for :func:`measure.segmental_motion` from how corners were placed.

    Parameters
    ----------
    placement : array_like of str, shape (..., V, 4)
        :class:`PlacementMethod` value of each corner; ``""`` or None count as
        ``manual`` (a reader's clicks).
    stated_sd_mm : array_like of shape (..., V, 4), mm, optional
        The SD saved with each corner (a fit's own SD); NaN or absent: the
        method's default (:attr:`PlacementMethod.default_sd_mm`).
    models : dict, optional
        Error model per method; default :data:`ERROR_MODEL`.

    Returns
    -------
    LandmarkUncertainty
        ``.motion_kwargs("flexion")`` gives the arguments for that film.  A
        body whose corners were placed differently takes the largest of their
        methods' shared terms (an edited corner does not remove the body's
        shared error).

    Examples
    --------
    >>> u = placement_uncertainty([["manual"] * 4, ["manual", "", None, "edited"]])
    >>> u.corner_sd_mm.tolist()
    [[0.6, 0.6, 0.6, 0.6], [0.6, 0.6, 0.6, 0.6]]
    >>> u.body_sd.tolist()
    [[0.0, 0.0], [0.0, 0.0]]
    """
    models = ERROR_MODEL if models is None else models
    methods = np.asarray(placement, dtype=object)
    if methods.ndim < 2 or methods.shape[-1] != 4:
        raise ValueError(f"placement: expected shape (..., V, 4), got {methods.shape}")
    order = list(PlacementMethod)
    try:
        codes = (np.vectorize(lambda m: order.index(PlacementMethod(m or "manual")), otypes=[np.intp])(methods)
                 if methods.size else np.zeros(methods.shape, np.intp))
    except ValueError as exc:
        raise ValueError(f"placement: {exc}") from None
    table = [models[m] for m in order]

    def per_corner(values) -> np.ndarray:
        return np.asarray(values, dtype=float)[codes]

    default = per_corner([m.default_sd_mm for m in order])
    stated = default if stated_sd_mm is None else np.asarray(stated_sd_mm, dtype=float)
    stated = np.where(np.isfinite(stated), stated, default)
    along = per_corner([m.corner_factor for m in table]) * stated
    across = per_corner([m.across for m in table]) * stated
    # the shared terms of each corner's method, with the parts that scale with the
    # stated SD of the body's corners of that method (NaN corners: not placed)
    s_body = np.empty(codes.shape)
    for k in range(len(order)):  # five methods, vectorised over every corner
        s_k = np.where(codes == k, stated, -np.inf).max(axis=-1, keepdims=True)
        s_body = np.where(codes == k, s_k, s_body)
    shift = np.hypot(per_corner([m.shift_sd_mm for m in table]),
                     per_corner([m.shift_factor for m in table]) * s_body).max(axis=-1)
    rotation = np.hypot(per_corner([m.rotation_sd_deg for m in table]),
                        per_corner([m.rotation_deg_per_mm for m in table]) * s_body).max(axis=-1)
    return LandmarkUncertainty(along, across, np.stack([shift, rotation], axis=-1))
