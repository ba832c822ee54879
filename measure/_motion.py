"""Segmental translation and angulation between a flexion and an extension film.

Implements measurement.md §1–4 and §6, vectorised over any leading batch shape.
The formulas and their sources are in ``docs/measurement-methods.md``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from measure._calibration import Calibration
from measure._criteria import Criteria, get_criteria
from measure._levels import CORNERS, DEFAULT_LEVELS, segment_labels
from measure._verdict import Verdict, quantity_verdicts, segment_verdict

__all__ = ["Z95", "SegmentalMotion", "segmental_motion"]

Z95 = 1.959963984540054
"""Two-sided 95 % quantile of the standard normal distribution."""

NOMINAL_ENDPLATE_DEPTH_MM = 40.0
"""Typical adult superior endplate depth of L1–S1 (mm).  Converts landmark SDs in
mm to pixels on an uncalibrated film, so that its angles and percentages keep
their 95 % intervals: those are scale-free and depend only on SD / body size."""

DEPTH_RATIO_TOLERANCE = 0.05
"""Endplate depths of one body differing by more than 5 % between the films
trigger the magnification warning (measurement.md §5)."""

_AS, _PS, _PI, _AI = range(4)
_X, _Y = 0, 1
_MIN_LENGTH = 1e-9  # endplates shorter than this (px or mm) count as coincident corners
_CHUNK = 4096  # studies per chunk: keeps the per-segment temporaries in cache
_MAX_COORDINATE = 1e9  # px or mm: far beyond any film, far below where squares overflow


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class SegmentalMotion:
    """Motion of every segment between flexion and extension.

    Arrays have shape ``(..., V-1)`` (one value per segment, top to bottom)
    unless stated; ``...`` is the batch shape of the input.  NaN marks a value
    that cannot be computed (missing level, uncalibrated film).

    Attributes
    ----------
    levels : tuple of str, length V
        Body labels, top to bottom.
    segments : tuple of str, length V-1
        Segment labels ``"L4-L5"``.
    criteria : Criteria
        The thresholds applied.
    flexion_angle_deg, extension_angle_deg : ndarray of shape (..., V-1), degrees
        Segmental angle per film; positive = lordotic.
    flexion_translation_mm, extension_translation_mm : ndarray of shape (..., V-1), mm
        Sagittal translation per film; positive = upper body anterior.  NaN on
        an uncalibrated film.
    flexion_translation_pct, extension_translation_pct : ndarray of shape (..., V-1), %
        The same as a percentage of the lower body's endplate depth on that
        film: available on uncalibrated films.
    angulation_deg : ndarray of shape (..., V-1), degrees
        ``theta_ext - theta_flex``.
    translation_mm : ndarray of shape (..., V-1), mm
        ``t_flex - t_ext``; NaN unless both films are calibrated.
    translation_pct : ndarray of shape (..., V-1), % of endplate depth
        ``100 * dt / mean(d_L_flex, d_L_ext)``.
    angulation_sd_deg, translation_sd_mm, translation_sd_pct : ndarray of shape (..., V-1)
        Standard deviations propagated from the landmark SDs (NaN without them).
    translation_unstable, angulation_unstable, unstable : ndarray of bool, shape (..., V-1)
        Criterion flags (strict ``>``); ``unstable`` is their logical or.
    translation_assessed : ndarray of bool, shape (..., V-1)
        False where no translation threshold could be applied (e.g. a mm
        threshold on uncalibrated films and no % threshold).
    translation_borderline, angulation_borderline, borderline : ndarray of bool, shape (..., V-1)
        The 95 % interval straddles a threshold so that the decision is not
        certain; always False without landmark SDs.
    depth_ratio : ndarray of shape (..., V)
        Superior endplate depth of each body on extension over flexion.
    depth_mismatch : ndarray of bool, shape (..., V)
        ``|depth_ratio - 1| > 0.05``.
    rotation_centre : ndarray of shape (..., V-1, 2), fraction of endplate depth
        Centre of rotation of the upper body relative to the lower one, in the
        lower body's frame: ``[..., 0]`` along the superior endplate from
        ``PS`` (0) to ``AS`` (1); ``[..., 1]`` perpendicular to it, positive
        towards the upper body.  NaN when the segment rotates less than
        ``min_rotation_deg`` (see :attr:`rotation_centre_note`).
    flexion_calibrated, extension_calibrated : ndarray of bool, shape (...)
        Whether each film had a usable spacing.
    thresholds : dict of str to ndarray of shape (V-1,)
        The thresholds applied per segment (NaN = criterion not used).
    min_rotation_deg : float
        Smallest angulation for which a centre of rotation is reported.
    has_uncertainty : bool
        Whether landmark SDs were given.
    """

    levels: tuple[str, ...]
    segments: tuple[str, ...]
    criteria: Criteria
    flexion_angle_deg: np.ndarray
    extension_angle_deg: np.ndarray
    flexion_translation_mm: np.ndarray
    extension_translation_mm: np.ndarray
    flexion_translation_pct: np.ndarray
    extension_translation_pct: np.ndarray
    angulation_deg: np.ndarray
    translation_mm: np.ndarray
    translation_pct: np.ndarray
    angulation_sd_deg: np.ndarray
    translation_sd_mm: np.ndarray
    translation_sd_pct: np.ndarray
    translation_unstable: np.ndarray
    angulation_unstable: np.ndarray
    unstable: np.ndarray
    translation_assessed: np.ndarray
    translation_borderline: np.ndarray
    angulation_borderline: np.ndarray
    borderline: np.ndarray
    depth_ratio: np.ndarray
    depth_mismatch: np.ndarray
    rotation_centre: np.ndarray
    flexion_calibrated: np.ndarray
    extension_calibrated: np.ndarray
    thresholds: Mapping[str, np.ndarray]
    min_rotation_deg: float
    has_uncertainty: bool

    # ---- derived views (computed on access: they are not needed in a batch)

    @property
    def shape(self) -> tuple[int, ...]:
        """The batch shape ``...``."""
        return self.angulation_deg.shape[:-1]

    @property
    def measured(self) -> np.ndarray:
        """ndarray of bool, shape (..., V-1): the segment's motion could be computed."""
        return np.isfinite(self.angulation_deg)

    @property
    def criterion(self) -> np.ndarray:
        """ndarray of str, shape (..., V-1): which criterion fired.

        One of ``'translation'``, ``'angulation'``, ``'both'``, ``'none'``, or
        ``'not measured'`` for a missing segment.
        """
        names = np.array(["none", "translation", "angulation", "both", "not measured"])
        code = self.translation_unstable.astype(np.int8) + 2 * self.angulation_unstable
        code = np.where(self.measured, code, 4)
        return names[code]

    def _ci95(self, value: np.ndarray, sd: np.ndarray) -> np.ndarray:
        half = Z95 * sd
        return np.stack([value - half, value + half], axis=-1)

    @property
    def angulation_ci95_deg(self) -> np.ndarray:
        """ndarray of shape (..., V-1, 2), degrees: 95 % interval (low, high)."""
        return self._ci95(self.angulation_deg, self.angulation_sd_deg)

    @property
    def translation_ci95_mm(self) -> np.ndarray:
        """ndarray of shape (..., V-1, 2), mm: 95 % interval (low, high)."""
        return self._ci95(self.translation_mm, self.translation_sd_mm)

    @property
    def translation_ci95_pct(self) -> np.ndarray:
        """ndarray of shape (..., V-1, 2), %: 95 % interval (low, high)."""
        return self._ci95(self.translation_pct, self.translation_sd_pct)

    def _verdict_inputs(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        values = {
            "translation_mm": self.translation_mm,
            "translation_pct": self.translation_pct,
            "angulation_deg": self.angulation_deg,
        }
        ci95 = {
            "translation_mm": self.translation_ci95_mm,
            "translation_pct": self.translation_ci95_pct,
            "angulation_deg": self.angulation_ci95_deg,
        }
        return values, ci95

    @property
    def verdict(self) -> np.ndarray:
        """ndarray of int8, shape (..., V-1): :class:`measure.Verdict` code per segment.

        The one verdict rule of :func:`measure.segment_verdict` (value and 95 %
        interval against the thresholds); ``Verdict(int(code)).label`` is the text
        every output shows.
        """
        values, ci95 = self._verdict_inputs()
        return segment_verdict(values, self.thresholds, ci95, measured=self.measured)

    @property
    def translation_verdict(self) -> np.ndarray:
        """ndarray of int8, shape (..., V-1): verdict of the translation (mm and %) alone."""
        values, ci95 = self._verdict_inputs()
        per = quantity_verdicts(values, self.thresholds, ci95)
        code = np.maximum(per["translation_mm"], per["translation_pct"])
        return np.where(self.measured, code, np.int8(Verdict.NOT_MEASURED)).astype(np.int8)

    @property
    def angulation_verdict(self) -> np.ndarray:
        """ndarray of int8, shape (..., V-1): verdict of the angulation alone."""
        values, ci95 = self._verdict_inputs()
        code = quantity_verdicts(values, self.thresholds, ci95)["angulation_deg"]
        return np.where(self.measured, code, np.int8(Verdict.NOT_MEASURED)).astype(np.int8)

    @property
    def magnification_warning(self) -> np.ndarray:
        """ndarray of bool, shape (...): some body's depth differs by more than 5 %."""
        return self.depth_mismatch.any(axis=-1)

    @property
    def rotation_centre_note(self) -> np.ndarray:
        """ndarray of str, shape (..., V-1): why a centre of rotation is missing ('' if present)."""
        small = f"rotation below {self.min_rotation_deg:g} degrees: centre of rotation undefined"
        notes = np.array(["", small, "segment not measured"])
        code = np.where(np.isfinite(self.rotation_centre[..., 0]), 0, 1)
        code = np.where(self.measured, code, 2)
        return notes[code]

    # ---- one study

    def study(self, index: int | tuple[int, ...] = ()) -> SegmentalMotion:
        """The result of one study of the batch (all arrays indexed by ``index``)."""
        index = (index,) if isinstance(index, int | np.integer) else tuple(index)
        if len(index) != len(self.shape):
            raise ValueError(
                f"index: expected {len(self.shape)} indices for batch shape {self.shape}, "
                f"got {index!r}"
            )
        fields = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                value = value[index]
            fields[name] = value
        return replace(self, **fields)

    def warnings(self, index: int | tuple[int, ...] = ()) -> list[str]:
        """Cautions for one study, one line each (calibration, magnification)."""
        one = self.study(index)
        out = []
        if not (one.flexion_calibrated and one.extension_calibrated):
            missing = [
                film
                for film, ok in (("flexion", one.flexion_calibrated), ("extension", one.extension_calibrated))
                if not ok
            ]
            out.append(
                f"no usable pixel spacing on the {' and '.join(missing)} film: "
                "translation in mm is not available, only in % of endplate depth"
            )
        not_assessed = one.measured & ~one.translation_assessed
        no_threshold = np.isnan(one.thresholds["translation_mm"]) & np.isnan(one.thresholds["translation_pct"])
        needs_mm = not_assessed & ~no_threshold
        if needs_mm.any():
            segs = ", ".join(np.asarray(one.segments)[needs_mm])
            out.append(
                f"translation criterion not applied at {segs}: the criteria "
                f"{one.criteria.name!r} need millimetres"
            )
        if (not_assessed & no_threshold).any():
            segs = ", ".join(np.asarray(one.segments)[not_assessed & no_threshold])
            out.append(
                f"the criteria {one.criteria.name!r} set no translation threshold at "
                f"{segs}: translation is not classified there"
            )
        no_angle = [
            s for s, a in zip(one.segments, np.isnan(one.thresholds["angulation_deg"]), strict=True) if a
        ]
        if no_angle:
            out.append(
                f"the criteria {one.criteria.name!r} set no angulation threshold at "
                f"{', '.join(no_angle)}: angulation is not classified there"
            )
        if one.depth_mismatch.any():
            details = ", ".join(
                f"{level} {100 * (ratio - 1):+.1f} %"
                for level, ratio, bad in zip(one.levels, one.depth_ratio, one.depth_mismatch, strict=True)
                if bad
            )
            out.append(
                "endplate depth differs by more than 5 % between the films "
                f"({details}): the views differ in magnification or a landmark is misplaced"
            )
        return out

    def to_records(self, index: int | tuple[int, ...] = ()) -> list[dict[str, Any]]:
        """JSON-ready rows, one per segment, for one study.

        NaN becomes None; intervals are ``[low, high]`` or None.
        """
        one = self.study(index)
        criterion = one.criterion
        note = one.rotation_centre_note
        ci_a, ci_mm, ci_pct = one.angulation_ci95_deg, one.translation_ci95_mm, one.translation_ci95_pct
        verdict, t_verdict, a_verdict = one.verdict, one.translation_verdict, one.angulation_verdict
        rows = []
        for k, segment in enumerate(one.segments):
            measured = bool(np.isfinite(one.angulation_deg[k]))
            centre = one.rotation_centre[k]
            rows.append(
                {
                    "segment": segment,
                    "upper": one.levels[k],
                    "lower": one.levels[k + 1],
                    "measured": measured,
                    "flexion_angle_deg": _num(one.flexion_angle_deg[k]),
                    "extension_angle_deg": _num(one.extension_angle_deg[k]),
                    "flexion_translation_mm": _num(one.flexion_translation_mm[k]),
                    "extension_translation_mm": _num(one.extension_translation_mm[k]),
                    "flexion_translation_pct": _num(one.flexion_translation_pct[k]),
                    "extension_translation_pct": _num(one.extension_translation_pct[k]),
                    "translation_mm": _num(one.translation_mm[k]),
                    "translation_pct": _num(one.translation_pct[k]),
                    "angulation_deg": _num(one.angulation_deg[k]),
                    "translation_mm_ci95": _interval(ci_mm[k]),
                    "translation_pct_ci95": _interval(ci_pct[k]),
                    "angulation_deg_ci95": _interval(ci_a[k]),
                    "translation_unstable": bool(one.translation_unstable[k]),
                    "angulation_unstable": bool(one.angulation_unstable[k]),
                    "unstable": bool(one.unstable[k]),
                    "criterion": None if not measured else str(criterion[k]),
                    "borderline": bool(one.borderline[k]),
                    "verdict": Verdict(int(verdict[k])).key,
                    "translation_verdict": Verdict(int(t_verdict[k])).key,
                    "angulation_verdict": Verdict(int(a_verdict[k])).key,
                    "translation_assessed": bool(one.translation_assessed[k]),
                    "thresholds": {kind: _num(v[k]) for kind, v in one.thresholds.items()},
                    "rotation_centre": _interval(centre),
                    "rotation_centre_note": str(note[k]) or None,
                    "depth_ratio": _num(one.depth_ratio[k + 1]),
                }
            )
        return rows


def _num(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _interval(pair: np.ndarray) -> list[float] | None:
    if not np.all(np.isfinite(pair)):
        return None
    return [float(pair[0]), float(pair[1])]


# --------------------------------------------------------------------------- input checks


def _where(batch: tuple[int, ...], flat_index: int) -> str:
    if not batch:
        return ""
    return f" in study {tuple(int(i) for i in np.unravel_index(flat_index, batch))}"


def _as_landmarks(value: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot be read as an array of coordinates ({exc})") from None
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected real numbers, got dtype {array.dtype}")
    if array.ndim < 3 or array.shape[-2:] != (4, 2):
        raise ValueError(
            f"{name}: expected shape (..., V, 4, 2) (bodies, corners AS/PS/PI/AI, x/y), "
            f"got {array.shape}"
        )
    if array.shape[-3] < 2:
        raise ValueError(f"{name}: need at least 2 bodies to form a segment, got {array.shape[-3]}")
    return array


def _as_spacing(value: Any, name: str, batch: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    """Spacing as (N, 2) (row, column) mm, NaN rows = uncalibrated; None = all uncalibrated."""
    if value is None:
        return None
    if isinstance(value, Calibration):
        value = value.spacing_mm
        if value is None:
            return None
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected (row, column) spacing in mm, got {value!r}") from None
    if array.ndim < 1 or array.shape[-1] != 2:
        raise ValueError(f"{name}: expected shape (..., 2) as (row, column) mm, got {array.shape}")
    try:
        array = np.broadcast_to(array, (*batch, 2))
    except ValueError:
        raise ValueError(
            f"{name}: shape {array.shape} does not broadcast to the batch shape {(*batch, 2)}"
        ) from None
    if np.isinf(array).any():
        raise ValueError(f"{name}: spacing must be finite (use NaN or None for uncalibrated)")
    with np.errstate(invalid="ignore"):
        bad = array <= 0
    if bad.any():
        flat = int(np.flatnonzero(bad.reshape(-1, 2).any(axis=1))[0])
        raise ValueError(
            f"{name}: spacing must be positive, got {array.reshape(-1, 2)[flat].tolist()}"
            f"{_where(batch, flat)}"
        )
    return np.ascontiguousarray(array.reshape(-1, 2), dtype=dtype)


def _as_sd(value: Any, name: str, batch: tuple[int, ...], n_bodies: int, dtype,
           tail: tuple[int, str] = (4, "corners")) -> np.ndarray | None:
    """SDs broadcast to (N, V, K); None when not given.

    ``tail`` is (K, what the last axis holds): 4 corners for landmark SDs, or
    2 ``[shift mm, rotation deg]`` for the per-body rigid SDs.
    """
    if value is None:
        return None
    size, what = tail
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected standard deviations as numbers") from None
    try:
        array = np.broadcast_to(array, (*batch, n_bodies, size))
    except ValueError:
        raise ValueError(
            f"{name}: shape {array.shape} does not broadcast to {(*batch, n_bodies, size)} "
            f"(batch, bodies, {what})"
        ) from None
    with np.errstate(invalid="ignore"):
        if np.isinf(array).any() or (array < 0).any():
            raise ValueError(f"{name}: standard deviations must be finite and >= 0 (NaN = unknown)")
    return array.reshape(-1, n_bodies, size).astype(dtype, copy=False)


_BODY_SD_TAIL = (2, "[shift mm, rotation deg]")


def _rigid_inputs(body: np.ndarray | None, landmarks: np.ndarray, spacing: np.ndarray | None,
                  nominal_depth_mm: float | None):
    """(shift mm (N, V, 4), shift px or None (N, V, 4), rotation rad (V, N)) of one film.

    The shift is repeated over the four corners so that it converts between mm
    and pixels exactly as the corner SDs do (:func:`_sd_in_units`).
    """
    if body is None:
        return None
    shift = np.ascontiguousarray(np.broadcast_to(body[..., :1], (*body.shape[:2], 4)))
    shift_px = None if nominal_depth_mm is None else _nominal_sd_px(landmarks, spacing, shift, nominal_depth_mm)
    rotation = np.ascontiguousarray(np.deg2rad(body[..., 1]).T)
    return shift, shift_px, rotation


def _rigid_variances(c, g, rigid, lo, hi, spacing, calibrated, pixels, rows=None):
    """Variances of theta (rad²) and t, (V-1, n), from whole-body shifts and rotations.

    ``c`` is the film's (4, 2, V, n) corners in the working unit and ``g`` its
    geometry (:func:`_film`); ``rows`` picks studies within ``lo:hi``.  Zero
    when the film has no body SDs.
    """
    if rigid is None:
        return 0.0, 0.0
    shift_mm, shift_px, rotation = rigid
    idx = slice(lo, hi) if rows is None else lo + rows
    s = _sd_in_units(shift_mm[idx], None if shift_px is None else shift_px[idx], spacing, calibrated, pixels)[0]
    r2 = rotation[:, idx] ** 2  # (V, n)
    s2 = s * s
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a body without corners
        centre = np.nanmean(c, axis=0)  # (2, V, n)
    ax = c[_AS, _X, 1:] - c[_PS, _X, 1:]  # L's superior endplate, (V-1, n)
    ay = c[_AS, _Y, 1:] - c[_PS, _Y, 1:]
    pi_x, pi_y = c[_PI, _X, :-1], c[_PI, _Y, :-1]

    def lever2(cx, cy):  # ((PI_U - centre) . e2)², via the cross product with the endplate
        h = ax * (pi_y - cy) - ay * (pi_x - cx)
        return h * h / g["d2"]

    var_theta = r2[:-1] + r2[1:]
    var_t = s2[:-1] + s2[1:] + r2[:-1] * lever2(centre[_X, :-1], centre[_Y, :-1])
    var_t += r2[1:] * lever2(centre[_X, 1:], centre[_Y, 1:])
    return var_theta, var_t


def _check_corners(c: np.ndarray, name: str, levels: Sequence[str], batch, offset: int) -> None:
    """Raise for non-finite required corners; c has shape (4, 2, V, n).

    A segment needs its upper body's PI/AI and its lower body's AS/PS.  A body
    whose corners are all NaN is a missing level (its segments become NaN).
    """
    # a coordinate this large is not a position on a film; the products below would
    # overflow to inf/NaN and turn a segment silently into "not measured" or flip e2
    extent = max(np.fmax.reduce(c, axis=None), -np.fmin.reduce(c, axis=None))
    if _MAX_COORDINATE < extent < np.inf:  # infinite corners are reported below
        with np.errstate(invalid="ignore"):
            corner, _axis, body, study = (int(i[0]) for i in np.nonzero(np.abs(c) > _MAX_COORDINATE))
        raise ValueError(
            f"{name}: {levels[body]} {CORNERS[corner]} lies beyond {_MAX_COORDINATE:.0e} "
            f"(pixels, or mm after spacing): not a position on a film{_where(batch, offset + study)}"
        )
    # fast path: every required coordinate finite (sums are finite iff all terms are)
    if np.isfinite(c[_AS:_PI, :, 1:].sum()) and np.isfinite(c[_PI:, :, :-1].sum()):
        return
    finite = np.isfinite(c)
    if np.isinf(c).any():
        corner, _axis, body, study = (int(i[0]) for i in np.nonzero(np.isinf(c)))
        raise ValueError(
            f"{name}: {levels[body]} {CORNERS[corner]} is infinite{_where(batch, offset + study)}"
        )
    missing_body = ~finite.any(axis=(0, 1))  # (V, n)
    required = np.zeros(c.shape[0:1] + c.shape[2:], dtype=bool)  # (4, V, n)
    required[_AS:_PI, 1:] = True
    required[_PI:, :-1] = True
    bad = (required & ~(finite[:, 0] & finite[:, 1])) & ~missing_body
    half = finite[:, 0] ^ finite[:, 1]  # x given without y or the reverse
    bad |= half
    if bad.any():
        corner, body, study = (int(i[0]) for i in np.nonzero(bad))
        raise ValueError(
            f"{name}: {levels[body]} {CORNERS[corner]} is not a finite (x, y) pair but "
            f"{levels[body]} has other corners (a missing level must be all NaN)"
            f"{_where(batch, offset + study)}"
        )


# --------------------------------------------------------------------------- geometry


def _first(mask: np.ndarray) -> tuple[int, int]:
    body, study = (int(i[0]) for i in np.nonzero(mask))
    return body, study


def _film(
    c: np.ndarray, name: str, levels, batch, offset: int, theta_out=None, t_out=None, need_i2=True
) -> dict[str, np.ndarray]:
    """Per-segment geometry of one film.

    ``c`` has shape (4, 2, V, n) (corner, x/y, body, study), already in the
    working unit (mm, or pixels).  Arrays returned have shape (V-1, n), except
    ``depth`` (V, n); ``theta`` (radians) and ``t`` are written to ``theta_out``
    and ``t_out`` when given.  Every operation runs on contiguous blocks of studies.
    """
    ax = c[_AS, _X] - c[_PS, _X]  # superior endplate of every body, (V, n)
    ay = c[_AS, _Y] - c[_PS, _Y]
    depth = ax * ax  # np.hypot is several times slower; coordinates cannot overflow
    tmp = ay * ay
    depth += tmp
    np.sqrt(depth, out=depth)
    ax = ax[1:]  # L's superior endplate, (V-1, n)
    ay = ay[1:]
    d = depth[1:]
    tmp = tmp[1:]  # scratch of shape (V-1, n)
    ix = c[_AI, _X, :-1] - c[_PI, _X, :-1]  # U's inferior endplate
    iy = c[_AI, _Y, :-1] - c[_PI, _Y, :-1]
    px = c[_PI, _X, :-1] - c[_PS, _X, 1:]  # PI_U - PS_L
    py = c[_PI, _Y, :-1] - c[_PS, _Y, 1:]
    if np.fmin.reduce(depth, axis=None) < _MIN_LENGTH:
        body, study = _first(depth < _MIN_LENGTH)
        raise ValueError(
            f"{name}: degenerate endplate: {levels[body]} AS and PS coincide"
            f"{_where(batch, offset + study)}"
        )
    if need_i2:
        i2 = ix * ix
        i2 += iy * iy
        coincident = i2 < _MIN_LENGTH * _MIN_LENGTH
    else:  # cheaper: ix is almost never exactly 0, so look closer only when it is
        i2 = None
        coincident = None
        if np.count_nonzero(ix) < ix.size:
            coincident = (np.abs(ix) < _MIN_LENGTH) & (np.abs(iy) < _MIN_LENGTH)
    if coincident is not None and coincident.any():
        body, study = _first(coincident)
        raise ValueError(
            f"{name}: degenerate endplate: {levels[body]} PI and AI coincide"
            f"{_where(batch, offset + study)}"
        )
    # e2 points towards U.  Decided by U's superior endplate (a body height plus a disc
    # above L's endplate line, so landmark noise cannot flip it): the sign of
    # cross(a, AS_U + PS_U - 2 PS_L); by U's inferior endplate midpoint when U has no
    # superior corners.
    qx = c[_AS, _X, :-1] + c[_PS, _X, :-1]
    qx -= c[_PS, _X, 1:]
    qx -= c[_PS, _X, 1:]
    qy = c[_AS, _Y, :-1] + c[_PS, _Y, :-1]
    qy -= c[_PS, _Y, 1:]
    qy -= c[_PS, _Y, 1:]
    side = ax * qy
    qx *= ay
    side -= qx
    if np.isnan(side.sum()):
        no_superior = np.isnan(side)
        mx, my = px + 0.5 * ix, py + 0.5 * iy
        np.copyto(side, ax * my - ay * mx, where=no_superior)
    if np.count_nonzero(side) < side.size:
        body, study = _first(side == 0)
        raise ValueError(
            f"{name}: {levels[body]} lies on the line of {levels[body + 1]}'s superior "
            f"endplate: cannot tell superior from inferior{_where(batch, offset + study)}"
        )
    sign = np.sign(side, out=side)
    sin_part = ax * iy
    np.multiply(ay, ix, out=tmp)
    sin_part -= tmp
    sin_part *= sign  # (i . e2) * d
    cos_part = np.multiply(ax, ix, out=ix)
    np.multiply(ay, iy, out=tmp)
    cos_part += tmp  # (i . e1) * d
    theta = np.arctan2(sin_part, cos_part, out=theta_out)
    dot_ap = np.multiply(ax, px, out=qy)
    np.multiply(ay, py, out=tmp)
    dot_ap += tmp  # (PI_U - PS_L) . a
    cross_ap = np.multiply(ax, py, out=iy)
    np.multiply(ay, px, out=tmp)
    cross_ap -= tmp
    cross_ap *= sign  # height of PI_U above L's endplate line, times d
    t = np.divide(dot_ap, d, out=t_out)  # (PI_U - PS_L) . e1
    d2 = np.multiply(d, d, out=qx)
    # sin² of the angle between the endplates (mixes along/across SDs of PI_U into t)
    sin2 = sin_part * sin_part / (i2 * d2) if need_i2 else None
    # U's inferior endplate midpoint m = p + i/2 in L's frame, as a fraction of depth:
    # along e1 (a.p + a.i/2)/d², along e2 sign (cross(a,p) + cross(a,i)/2)/d²
    cos_part *= 0.5
    cos_part += dot_ap
    cos_part /= d2
    sin_part *= 0.5
    sin_part += cross_ap
    sin_part /= d2
    return {
        "theta": theta, "t": t, "depth": depth, "d": d, "i2": i2,
        "u": cos_part, "v": sin_part, "cross_ap": cross_ap, "d2": d2, "scratch": px, "sin2": sin2,
    }  # fmt: skip


# --------------------------------------------------------------------------- main function


def segmental_motion(
    flexion: Any,
    extension: Any,
    spacing_mm: Any = None,
    *,
    flexion_spacing_mm: Any = None,
    extension_spacing_mm: Any = None,
    criteria: str | Criteria | Mapping[str, Any] = "default",
    levels: Sequence[str] | None = None,
    landmark_sd_mm: Any = None,
    flexion_landmark_sd_mm: Any = None,
    extension_landmark_sd_mm: Any = None,
    landmark_sd_px: Any = None,
    flexion_landmark_sd_across_mm: Any = None,
    extension_landmark_sd_across_mm: Any = None,
    flexion_body_sd: Any = None,
    extension_body_sd: Any = None,
    nominal_depth_mm: float | None = NOMINAL_ENDPLATE_DEPTH_MM,
    min_rotation_deg: float = 5.0,
    workers: int | None = None,
) -> SegmentalMotion:
    """Per-segment translation and angulation between a flexion and an extension film.

    Parameters
    ----------
    flexion, extension : array_like of shape (..., V, 4, 2), pixels
        Corners of V bodies, top to bottom; corners in the order AS, PS, PI, AI
        (:data:`measure.CORNERS`), each (x, y) = (column, row) with the origin
        at the centre of the top-left pixel and y growing downwards.  NaN marks
        an absent corner: the lowest body may lack PI/AI, and a body whose
        corners are all NaN is a missing level (its segments are NaN).  The
        leading batch shapes ``...`` of both films must broadcast.
    spacing_mm : array_like of shape (..., 2), mm, or Calibration, optional
        (row, column) pixel spacing used for both films; None = uncalibrated.
        A NaN row marks one study as uncalibrated.
    flexion_spacing_mm, extension_spacing_mm : array_like of shape (..., 2), optional
        Per-film spacing, instead of ``spacing_mm`` (a film left out is uncalibrated).
    criteria : str or Criteria or mapping, default 'default'
        Preset name (``'default'``, ``'white-panjabi'``), :class:`Criteria`, or a
        settings mapping (see :meth:`Criteria.from_dict`).
    levels : sequence of str of length V, optional
        Body labels; default :data:`measure.DEFAULT_LEVELS` (V must then be 6).
    landmark_sd_mm : array_like broadcastable to (..., V, 4), mm, optional
        Isotropic positional SD of each corner, both films.
    flexion_landmark_sd_mm, extension_landmark_sd_mm : array_like, optional
        Per-film SDs (override ``landmark_sd_mm`` for that film).
    landmark_sd_px : array_like broadcastable to (..., V, 4), pixels, optional
        SDs used on uncalibrated films (where mm cannot be converted); on a
        calibrated film used only when no mm SD is given (converted with the
        geometric mean of the spacing).
    flexion_landmark_sd_across_mm, extension_landmark_sd_across_mm : array_like, optional
        Broadcastable to (..., V, 4), mm: SD of each corner perpendicular to its
        endplate (the direction angles are sensitive to); the film's
        ``*_landmark_sd_mm`` is then the SD along the endplate.  Default: the
        same as along (isotropic).  Needs the film's ``*_landmark_sd_mm``.
    flexion_body_sd, extension_body_sd : array_like broadcastable to (..., V, 2), optional
        Per body, the SD of an error shared by its corners: (shift per axis in
        mm, rotation about the centroid of its corners in degrees) - the rigid
        part of the measured error model (:func:`measure.placement_uncertainty`).
        Added to the independent corner SDs (taken as 0 when none are given);
        the shift converts to pixels on an uncalibrated film as the corner SDs do.
    nominal_depth_mm : float or None, default :data:`NOMINAL_ENDPLATE_DEPTH_MM` (40 mm)
        Without ``landmark_sd_px``, an uncalibrated film converts its mm SDs to
        pixels taking the median superior endplate depth of its bodies as this
        many mm, so that angles and percentages keep their intervals (no mm value
        is produced).  None: no interval for values that depend on such a film.
    min_rotation_deg : float, default 5.0
        A centre of rotation is reported only when ``|angulation_deg|`` is at
        least this large.
    workers : int, optional
        Threads over chunks of studies; default: up to 2 for large batches.

    Returns
    -------
    SegmentalMotion
        Arrays of shape ``(..., V-1)``; see its attributes.

    Raises
    ------
    ValueError
        Naming the parameter and the problem: wrong shapes, non-finite required
        corners, coincident endplate corners, zero/negative spacing.

    Notes
    -----
    Per film (measurement.md §2), for upper body U and lower body L, with
    ``e1`` the unit vector PS_L→AS_L and ``e2`` its normal towards U:
    ``theta = atan2(i·e2, i·e1)`` with ``i = AI_U - PI_U``;
    ``t = (PI_U - PS_L)·e1``; ``d_L = |AS_L - PS_L|``.  Motion (§3):
    ``dtheta = theta_ext - theta_flex``, ``dt = t_flex - t_ext``,
    ``dt_pct = 100 dt / mean(d_L_flex, d_L_ext)``.  Geometry is done in mm
    (``x_mm = x * column_spacing``, ``y_mm = y * row_spacing``); on
    uncalibrated films in pixels (square pixels assumed), and when only one
    film is calibrated the percentage is computed in pixels on both (the
    calibrated film's non-square pixels made square first).
    Uncertainty is propagated to first order (analytic Jacobian): independent
    corner errors (isotropic, or along/across the endplate: a segment's two
    endplates are taken as parallel for the translation terms) plus, when given, a rigid shift and rotation of each
    body (correlated corner errors; bodies and films independent).  A rotation
    ``r`` of U about its centroid ``c_U`` adds ``r²`` to ``var(theta)`` and
    ``r² ((PI_U - c_U)·e2)²`` to ``var(t)``; a rotation of L about ``c_L`` adds
    ``r²`` and ``r² ((PI_U - c_L)·e2)²``; a shift ``s`` of either adds ``s²`` to
    ``var(t)`` only; none changes a depth.  See ``docs/measurement-methods.md``.

    References
    ----------
    White AA, Panjabi MM. Clinical Biomechanics of the Spine, 2nd ed. 1990.
    Dupuis PR et al. Spine 1985;10:262-276.

    Examples
    --------
    >>> import numpy as np
    >>> body = np.array([[40., 0], [0, 0], [0, 30], [40, 30]])  # AS PS PI AI, facing right
    >>> flex = np.stack([body + [0, 40 * k] for k in range(6)])
    >>> ext = flex.copy()
    >>> ext[:4] += [-20, 0]   # L1-L4 slide 20 px posteriorly on extension
    >>> r = segmental_motion(flex, ext, [0.25, 0.25])
    >>> r.translation_mm.tolist()
    [0.0, 0.0, 0.0, 5.0, 0.0]
    >>> r.unstable.tolist()
    [False, False, False, True, False]
    """
    flex = _as_landmarks(flexion, "flexion")
    ext = _as_landmarks(extension, "extension")
    n_bodies = flex.shape[-3]
    if ext.shape[-3] != n_bodies:
        raise ValueError(
            f"extension: {ext.shape[-3]} bodies but flexion has {n_bodies} (shapes "
            f"{ext.shape} and {flex.shape})"
        )
    try:
        batch = tuple(np.broadcast_shapes(flex.shape[:-3], ext.shape[:-3]))
    except ValueError:
        raise ValueError(
            f"extension: batch shape {ext.shape[:-3]} does not broadcast with flexion's "
            f"{flex.shape[:-3]}"
        ) from None
    if levels is None:
        if n_bodies != len(DEFAULT_LEVELS):
            raise ValueError(
                f"levels: {n_bodies} bodies need {n_bodies} labels (the default "
                f"{DEFAULT_LEVELS} has {len(DEFAULT_LEVELS)})"
            )
        levels = DEFAULT_LEVELS
    levels = tuple(str(level) for level in levels)
    if len(levels) != n_bodies:
        raise ValueError(f"levels: {len(levels)} labels for {n_bodies} bodies")
    if len(set(levels)) != len(levels):
        raise ValueError(f"levels: labels must be unique, got {levels}")
    segments = segment_labels(levels)
    crit = get_criteria(criteria)
    thresholds = crit.thresholds(segments)
    if not (isinstance(min_rotation_deg, int | float) and math.isfinite(min_rotation_deg)) or (
        min_rotation_deg < 0
    ):
        raise ValueError(f"min_rotation_deg: expected a finite number >= 0, got {min_rotation_deg!r}")

    dtype = np.dtype(np.float32) if flex.dtype == ext.dtype == np.float32 else np.dtype(np.float64)
    if spacing_mm is not None and (flexion_spacing_mm is not None or extension_spacing_mm is not None):
        raise ValueError(
            "spacing_mm: give either spacing_mm (both films) or "
            "flexion_spacing_mm/extension_spacing_mm, not both"
        )
    if spacing_mm is not None:
        sp_f = sp_e = _as_spacing(spacing_mm, "spacing_mm", batch, dtype)
    else:
        sp_f = _as_spacing(flexion_spacing_mm, "flexion_spacing_mm", batch, dtype)
        sp_e = _as_spacing(extension_spacing_mm, "extension_spacing_mm", batch, dtype)

    sd_both = _as_sd(landmark_sd_mm, "landmark_sd_mm", batch, n_bodies, dtype)
    sd_f = _as_sd(flexion_landmark_sd_mm, "flexion_landmark_sd_mm", batch, n_bodies, dtype)
    sd_e = _as_sd(extension_landmark_sd_mm, "extension_landmark_sd_mm", batch, n_bodies, dtype)
    sd_px = _as_sd(landmark_sd_px, "landmark_sd_px", batch, n_bodies, dtype)
    sd_f = sd_both if sd_f is None else sd_f
    sd_e = sd_both if sd_e is None else sd_e
    body_f = _as_sd(flexion_body_sd, "flexion_body_sd", batch, n_bodies, dtype, _BODY_SD_TAIL)
    body_e = _as_sd(extension_body_sd, "extension_body_sd", batch, n_bodies, dtype, _BODY_SD_TAIL)
    if (body_f is not None or body_e is not None) and sd_f is None and sd_e is None and sd_px is None:
        sd_f = sd_e = np.zeros((math.prod(batch), n_bodies, 4), dtype)
    has_sd = sd_f is not None or sd_e is not None or sd_px is not None
    sdx_f = _as_sd(flexion_landmark_sd_across_mm, "flexion_landmark_sd_across_mm", batch, n_bodies, dtype)
    sdx_e = _as_sd(extension_landmark_sd_across_mm, "extension_landmark_sd_across_mm", batch, n_bodies, dtype)
    for across, along, film in ((sdx_f, sd_f, "flexion"), (sdx_e, sd_e, "extension")):
        if across is not None and along is None:
            raise ValueError(f"{film}_landmark_sd_across_mm: needs the SD along the endplate too "
                             f"({film}_landmark_sd_mm or landmark_sd_mm)")
    if nominal_depth_mm is not None and not (
        isinstance(nominal_depth_mm, int | float) and math.isfinite(nominal_depth_mm) and nominal_depth_mm > 0
    ):
        raise ValueError(f"nominal_depth_mm: expected a positive number or None, got {nominal_depth_mm!r}")

    n = math.prod(batch)
    shape4 = (n, n_bodies, 4, 2)
    flex = np.broadcast_to(flex, (*batch, n_bodies, 4, 2)).reshape(shape4)
    ext = np.broadcast_to(ext, (*batch, n_bodies, 4, 2)).reshape(shape4)
    sd_px_f = sd_px_e = sd_px
    if sd_px is None and nominal_depth_mm is not None:
        sd_px_f = _nominal_sd_px(flex, sp_f, sd_f, nominal_depth_mm)
        sd_px_e = _nominal_sd_px(ext, sp_e, sd_e, nominal_depth_mm)
    sdx_px_f = sdx_px_e = None
    if nominal_depth_mm is not None:
        sdx_px_f = _nominal_sd_px(flex, sp_f, sdx_f, nominal_depth_mm)
        sdx_px_e = _nominal_sd_px(ext, sp_e, sdx_e, nominal_depth_mm)
    rigid_f = _rigid_inputs(body_f, flex, sp_f, nominal_depth_mm)
    rigid_e = _rigid_inputs(body_e, ext, sp_e, nominal_depth_mm)

    # outputs are filled as (segments, studies) so that every chunk operation runs on
    # contiguous blocks of studies; the result exposes them transposed, (..., V-1)
    n_seg = n_bodies - 1
    names = list(_VALUE_FIELDS)
    flags = ["translation_unstable", "angulation_unstable", "unstable", "translation_assessed"]
    if has_sd:
        names += list(_SD_FIELDS)
        flags += list(_BORDERLINE_FIELDS)
    out = {key: np.empty((n_seg, n), dtype) for key in names}
    out.update({key: np.empty((n_seg, n), bool) for key in flags})
    out["rotation_centre"] = np.empty((2, n_seg, n), dtype)
    out["depth_ratio"] = np.empty((n_bodies, n), dtype)
    out["depth_mismatch"] = np.empty((n_bodies, n), bool)
    cal_f = np.zeros(n, bool) if sp_f is None else np.isfinite(sp_f).all(axis=1)
    cal_e = np.zeros(n, bool) if sp_e is None else np.isfinite(sp_e).all(axis=1)

    ctx = _Context(
        flex=flex, ext=ext, sp_f=sp_f, sp_e=sp_e, cal_f=cal_f, cal_e=cal_e,
        sd_f=sd_f, sd_e=sd_e, sd_px_f=sd_px_f, sd_px_e=sd_px_e, rigid_f=rigid_f, rigid_e=rigid_e,
        sdx_f=sdx_f, sdx_e=sdx_e, sdx_px_f=sdx_px_f, sdx_px_e=sdx_px_e, has_sd=has_sd, levels=levels, batch=batch,
        thresholds={k: v.astype(dtype)[:, None] for k, v in thresholds.items()},
        all_mm_thresholds=bool(np.isfinite(thresholds["translation_mm"]).all()),
        any_pct_threshold=bool(np.isfinite(thresholds["translation_pct"]).any()),
        min_rotation_deg=float(min_rotation_deg), dtype=dtype, out=out,
    )  # fmt: skip
    starts = range(0, n, _CHUNK)
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if n >= 4 * _CHUNK else 1
    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda lo: _chunk(ctx, lo, min(lo + _CHUNK, n)), starts))
    else:
        for lo in starts:
            _chunk(ctx, lo, min(lo + _CHUNK, n))

    def shaped(array: np.ndarray) -> np.ndarray:  # (k, n) -> (..., k), a view
        return array.T.reshape(*batch, array.shape[0])

    nan = np.broadcast_to(np.array(np.nan, dtype), (*batch, n_seg))
    false = np.broadcast_to(np.array(False), (*batch, n_seg))
    fields = {key: shaped(out[key]) for key in (*names, *flags, "depth_ratio", "depth_mismatch")}
    if not has_sd:
        fields.update({key: nan for key in _SD_FIELDS})
        fields.update({key: false for key in _BORDERLINE_FIELDS})
    return SegmentalMotion(
        levels=levels,
        segments=segments,
        criteria=crit,
        **fields,
        rotation_centre=np.moveaxis(out["rotation_centre"], (0, 1, 2), (2, 1, 0)).reshape(*batch, n_seg, 2),
        flexion_calibrated=cal_f.reshape(batch),
        extension_calibrated=cal_e.reshape(batch),
        thresholds=thresholds,
        min_rotation_deg=float(min_rotation_deg),
        has_uncertainty=has_sd,
    )


_VALUE_FIELDS = (
    "flexion_angle_deg", "extension_angle_deg", "flexion_translation_mm",
    "extension_translation_mm", "flexion_translation_pct", "extension_translation_pct",
    "angulation_deg", "translation_mm", "translation_pct",
)  # fmt: skip
_SD_FIELDS = ("angulation_sd_deg", "translation_sd_mm", "translation_sd_pct")
_BORDERLINE_FIELDS = ("translation_borderline", "angulation_borderline", "borderline")


@dataclass
class _Context:
    flex: np.ndarray
    ext: np.ndarray
    sp_f: np.ndarray | None
    sp_e: np.ndarray | None
    cal_f: np.ndarray
    cal_e: np.ndarray
    sd_f: np.ndarray | None
    sd_e: np.ndarray | None
    sd_px_f: np.ndarray | None
    sd_px_e: np.ndarray | None
    rigid_f: tuple[np.ndarray, np.ndarray | None, np.ndarray] | None
    rigid_e: tuple[np.ndarray, np.ndarray | None, np.ndarray] | None
    sdx_f: np.ndarray | None
    sdx_e: np.ndarray | None
    sdx_px_f: np.ndarray | None
    sdx_px_e: np.ndarray | None
    has_sd: bool
    levels: tuple[str, ...]
    batch: tuple[int, ...]
    thresholds: dict[str, np.ndarray]
    all_mm_thresholds: bool
    any_pct_threshold: bool
    min_rotation_deg: float
    dtype: np.dtype
    out: dict[str, np.ndarray]


def _corners(landmarks: np.ndarray, spacing: np.ndarray | None, calibrated: np.ndarray, dtype) -> np.ndarray:
    """(n, V, 4, 2) pixels -> (4, 2, V, n) in the working unit: mm where calibrated, else px.

    The transposition and the scaling are one pass over the data.
    """
    src = landmarks.transpose(2, 3, 1, 0)
    if spacing is None or not calibrated.any():
        return np.ascontiguousarray(src, dtype=dtype)
    if not calibrated.all():
        spacing = np.where(calibrated[:, None], spacing, np.ones((), dtype))
    scale = spacing.T[::-1, None, :]  # (2, 1, n): x scaled by the column spacing, y by the row
    return np.multiply(src, scale, out=np.empty(src.shape, dtype))


def _nominal_sd_px(landmarks: np.ndarray, spacing: np.ndarray | None, sd_mm: np.ndarray | None,
                   depth_mm: float) -> np.ndarray | None:
    """(N, V, 4) SDs in pixels for uncalibrated studies: mm SD × median depth (px) / depth_mm.

    None when nothing needs it (no mm SD, or every study calibrated); NaN for a
    study without two endplates to take the scale from.
    """
    if sd_mm is None:
        return None
    calibrated = np.zeros(landmarks.shape[0], bool) if spacing is None else np.isfinite(spacing).all(axis=1)
    if calibrated.all():
        return None
    d = landmarks[:, :, 0] - landmarks[:, :, 1]  # AS - PS, (N, V, 2) px
    depth = np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN studies
        px_per_mm = np.nanmedian(depth, axis=1) / depth_mm  # (N,)
    return (sd_mm * px_per_mm[:, None, None]).astype(sd_mm.dtype, copy=False)


def _sd_in_units(sd_mm, sd_px, spacing, calibrated, pixels: bool):
    """Per-corner SD as (4, V, n) in the working unit of one film (mm, or px when ``pixels``)."""
    n = calibrated.shape[0]
    if sd_mm is None and sd_px is None:
        return None
    if not pixels and sd_mm is not None and calibrated.all():  # the common case: mm as given
        return np.ascontiguousarray(sd_mm.transpose(2, 1, 0))
    with np.errstate(invalid="ignore"):
        mean_spacing = (
            np.sqrt(spacing[:, 0] * spacing[:, 1])[:, None, None]
            if spacing is not None
            else np.full((n, 1, 1), np.nan)
        )
    cal = calibrated[:, None, None]
    nan = np.full((), np.nan)
    if pixels:  # working unit px on every film
        from_mm = sd_mm / mean_spacing if sd_mm is not None else nan
        sd = np.where(cal & np.isfinite(from_mm), from_mm, sd_px if sd_px is not None else nan)
    else:
        mm = sd_mm if sd_mm is not None else sd_px * mean_spacing
        sd = np.where(cal, mm, sd_px if sd_px is not None else nan)
    return np.ascontiguousarray(np.broadcast_to(sd, (n, *sd.shape[1:])).transpose(2, 1, 0))


def _variances(g: dict[str, np.ndarray], sd: np.ndarray | None, across: np.ndarray | None = None):
    """Variances of theta (rad²) and t, and the squared corner SDs, for one film.

    ``sd`` is the SD along the corner's own endplate, ``across`` perpendicular
    to it (None: isotropic).  Angles see only the perpendicular errors; ``t``
    sees PS_L along L's endplate, PI_U along L's endplate (its own SDs mixed by
    the angle between the endplates) and L's endplate tilt (AS_L, PS_L across)
    times r.
    """
    if sd is None:
        nan = np.full(g["t"].shape, np.nan, g["t"].dtype)
        return nan, nan, (nan, nan, nan, nan, nan, nan)
    s2 = sd * sd
    x2 = s2 if across is None else across * across
    s_as, s_ps = s2[_AS, 1:], s2[_PS, 1:]
    x_as, x_ps = x2[_AS, 1:], x2[_PS, 1:]
    x_pi, x_ai = x2[_PI, :-1], x2[_AI, :-1]
    s_pi = s2[_PI, :-1]
    if across is not None:  # PI_U's SD along L's endplate
        s_pi = s_pi + (x_pi - s_pi) * g["sin2"]
    r = g["cross_ap"] / g["d2"]  # height of PI_U over L's endplate / depth
    r2 = r * r
    var_theta = (x_pi + x_ai) / g["i2"] + (x_as + x_ps) / g["d2"]
    var_t = s_pi + s_ps + (x_as + x_ps) * r2
    return var_theta, var_t, (s_as, s_ps, s_pi, r2, x_as, x_ps)


def _pct_sd(dt, dbar, sq_f, sq_e, rigid_var_t=0.0):
    """SD of translation_pct: gradients through dt and the mean depth (they share corners).

    ``rigid_var_t`` is the variance of ``dt`` from whole-body errors (they leave depths alone).
    """
    s_as_f, s_ps_f, s_pi_f, r2_f, x_as_f, x_ps_f = sq_f
    s_as_e, s_ps_e, s_pi_e, r2_e, x_as_e, x_ps_e = sq_e
    k = dt / (2 * dbar)
    k2 = k * k
    var = (
        s_pi_f
        + s_pi_e
        + s_as_f * k2
        + x_as_f * r2_f
        + s_ps_f * (k - 1) ** 2
        + x_ps_f * r2_f
        + s_as_e * k2
        + x_as_e * r2_e
        + s_ps_e * (k + 1) ** 2
        + x_ps_e * r2_e
        + rigid_var_t
    )
    return 100 * np.sqrt(var) / dbar


def _decision(value, sd, threshold):
    """(certainly exceeded, certainly within) for ``|value| > threshold``; unused → (False, True)."""
    if not np.isfinite(threshold).any():
        return False, True
    half = Z95 * np.nan_to_num(sd)
    lo = value - half
    hi = value + half
    used = np.isfinite(threshold) & np.isfinite(value)
    exceeded = used & ((lo > threshold) | (hi < -threshold))
    within = ~used | ((lo >= -threshold) & (hi <= threshold))
    return exceeded, within


def _masked(dest: np.ndarray, value: np.ndarray, keep: np.ndarray) -> None:
    """dest = value where keep (per study, last axis), NaN elsewhere."""
    if keep.all():
        dest[...] = value
    elif not keep.any():
        dest[...] = np.nan
    else:
        np.copyto(dest, np.where(keep, value, np.nan))


def _chunk(ctx: _Context, lo: int, hi: int) -> None:
    """Fill the outputs for studies lo:hi (all arrays here are (segments, studies))."""
    # NaN marks missing values on purpose; numpy's error state is per thread
    with np.errstate(invalid="ignore", divide="ignore"):
        _chunk_body(ctx, lo, hi)


def _chunk_body(ctx: _Context, lo: int, hi: int) -> None:
    out = {key: value[..., lo:hi] for key, value in ctx.out.items()}
    cal_f, cal_e = ctx.cal_f[lo:hi], ctx.cal_e[lo:hi]
    all_f, all_e = bool(cal_f.all()), bool(cal_e.all())
    sp_f = None if ctx.sp_f is None else ctx.sp_f[lo:hi]
    sp_e = None if ctx.sp_e is None else ctx.sp_e[lo:hi]
    cf = _corners(ctx.flex[lo:hi], sp_f, cal_f, ctx.dtype)
    ce = _corners(ctx.ext[lo:hi], sp_e, cal_e, ctx.dtype)
    _check_corners(cf, "flexion", ctx.levels, ctx.batch, lo)
    _check_corners(ce, "extension", ctx.levels, ctx.batch, lo)
    # angles and per-film translations go straight into the outputs when possible
    fa, ea = out["flexion_angle_deg"], out["extension_angle_deg"]
    ft_mm, et_mm = out["flexion_translation_mm"], out["extension_translation_mm"]
    gf = _film(cf, "flexion", ctx.levels, ctx.batch, lo, fa, ft_mm if all_f else None, ctx.has_sd)
    ge = _film(ce, "extension", ctx.levels, ctx.batch, lo, ea, et_mm if all_e else None, ctx.has_sd)
    if not all_f:
        _masked(ft_mm, gf["t"], cal_f)
    if not all_e:
        _masked(et_mm, ge["t"], cal_e)

    rad2deg = 180.0 / math.pi
    fa *= rad2deg
    ea *= rad2deg
    ang = np.subtract(ea, fa, out=out["angulation_deg"])

    both = cal_f & cal_e
    t_mm = out["translation_mm"]
    if all_f and all_e:
        dt = np.subtract(gf["t"], ge["t"], out=t_mm)  # mm
    else:
        dt = np.subtract(gf["t"], ge["t"], out=gf["scratch"])  # mm, or px when neither is calibrated
        _masked(t_mm, dt, both)
    dbar = np.add(gf["d"], ge["d"], out=ge["scratch"])
    dbar *= 0.5
    pct = np.divide(dt, dbar, out=out["translation_pct"])
    pct *= 100
    for name, g in (("flexion", gf), ("extension", ge)):
        film_pct = np.divide(g["t"], g["d"], out=out[f"{name}_translation_pct"])
        film_pct *= 100
    np.divide(ge["depth"], gf["depth"], out=out["depth_ratio"])

    if ctx.has_sd:
        def sub(a):
            return None if a is None else a[lo:hi]

        wf = _sd_in_units(sub(ctx.sd_f), sub(ctx.sd_px_f), sp_f, cal_f, pixels=False)
        we = _sd_in_units(sub(ctx.sd_e), sub(ctx.sd_px_e), sp_e, cal_e, pixels=False)
        xf = None if ctx.sdx_f is None else _sd_in_units(sub(ctx.sdx_f), sub(ctx.sdx_px_f), sp_f, cal_f, False)
        xe = None if ctx.sdx_e is None else _sd_in_units(sub(ctx.sdx_e), sub(ctx.sdx_px_e), sp_e, cal_e, False)
        var_th_f, var_t_f, sq_f = _variances(gf, wf, xf)
        var_th_e, var_t_e, sq_e = _variances(ge, we, xe)
        rig_th_f, rig_t_f = _rigid_variances(cf, gf, ctx.rigid_f, lo, hi, sp_f, cal_f, pixels=False)
        rig_th_e, rig_t_e = _rigid_variances(ce, ge, ctx.rigid_e, lo, hi, sp_e, cal_e, pixels=False)
        var_th_f = var_th_f + rig_th_f + rig_th_e
        var_t_f = var_t_f + rig_t_f + rig_t_e
        np.multiply(np.sqrt(var_th_f + var_th_e), rad2deg, out=out["angulation_sd_deg"])
        _masked(out["translation_sd_mm"], np.sqrt(var_t_f + var_t_e), both)
        out["translation_sd_pct"][...] = _pct_sd(dt, dbar, sq_f, sq_e, rig_t_f + rig_t_e)

    # centre of rotation (measurement-methods.md): fixed point of the rigid motion taking
    # m_flex to m_ext with rotation phi = angulation, in L's frame (fraction of depth):
    # c = m_f + (m_e - m_f)/2 + cot(phi/2)/2 * rot90(m_e - m_f)
    abs_ang = np.abs(ang, out=ge["cross_ap"])
    cot = np.multiply(ang, 0.5 / rad2deg, out=ge["d2"])
    np.tan(cot, out=cot)
    np.divide(1.0, cot, out=cot)  # cot(phi / 2)
    # NaN where the rotation is below the minimum: sqrt(|phi| - min) * 0 is 0 or NaN
    # (cheaper than a masked copy)
    gate = np.subtract(abs_ang, ctx.min_rotation_deg, out=gf["d2"])
    np.sqrt(gate, out=gate)
    gate *= 0.0
    cot += gate
    du = np.subtract(ge["u"], gf["u"], out=ge["u"])
    dv = np.subtract(ge["v"], gf["v"], out=ge["v"])
    cx, cy = out["rotation_centre"][0], out["rotation_centre"][1]
    np.multiply(cot, dv, out=cx)  # cx = u_f + (du - cot dv) / 2
    np.subtract(du, cx, out=cx)
    cx *= 0.5
    cx += gf["u"]
    du *= cot  # cy = v_f + (dv + cot du) / 2
    np.add(dv, du, out=cy)
    cy *= 0.5
    cy += gf["v"]

    mixed = cal_f != cal_e
    if not (all_f and all_e) and mixed.any():
        _recompute_mixed(ctx, lo, np.flatnonzero(mixed), sp_f, sp_e, cal_f, cal_e)

    th = ctx.thresholds
    t_unstable = out["translation_unstable"]
    assessed = out["translation_assessed"]
    with np.errstate(invalid="ignore"):
        abs_mm = np.abs(t_mm, out=gf["d2"])
        np.greater(abs_mm, th["translation_mm"], out=t_unstable)
        np.isfinite(abs_mm, out=assessed)
        if not ctx.all_mm_thresholds:
            assessed &= np.isfinite(th["translation_mm"])
        if ctx.any_pct_threshold:
            abs_pct = np.abs(pct, out=ge["d2"])
            t_unstable |= abs_pct > th["translation_pct"]
            assessed |= np.isfinite(abs_pct) & np.isfinite(th["translation_pct"])
        a_unstable = np.greater(abs_ang, th["angulation_deg"], out=out["angulation_unstable"])
        np.logical_or(t_unstable, a_unstable, out=out["unstable"])
        mismatch = np.subtract(out["depth_ratio"], 1, out=ge["depth"])
        np.abs(mismatch, out=mismatch)
        np.greater(mismatch, DEPTH_RATIO_TOLERANCE, out=out["depth_mismatch"])
    if ctx.has_sd:
        ex_mm, in_mm = _decision(t_mm, out["translation_sd_mm"], th["translation_mm"])
        ex_pct, in_pct = _decision(pct, out["translation_sd_pct"], th["translation_pct"])
        ex_a, in_a = _decision(ang, out["angulation_sd_deg"], th["angulation_deg"])
        ex_t, in_t = ex_mm | ex_pct, in_mm & in_pct
        np.logical_not(np.logical_or(ex_t, in_t), out=out["translation_borderline"])
        np.logical_not(np.logical_or(ex_a, in_a), out=out["angulation_borderline"])
        np.logical_not(np.logical_or(ex_t | ex_a, in_t & in_a), out=out["borderline"])


def _recompute_mixed(ctx, lo, rows, sp_f, sp_e, cal_f, cal_e) -> None:
    """Studies with one calibrated film: % and depth ratio in pixels on both films.

    The calibrated film keeps its true shape: x and y are scaled by its spacing over
    the geometric mean spacing (unit: a square pixel of the same area), so that
    non-square pixels do not distort its angles and depths; the uncalibrated film
    can only be taken as square pixels.
    """
    out = ctx.out
    dtype = ctx.dtype

    def shape_only(spacing):  # (k, 2) spacing of unit geometric mean
        if spacing is None:
            return None
        spacing = spacing[rows]
        return spacing / np.sqrt(spacing[:, :1] * spacing[:, 1:])

    cf = _corners(ctx.flex[lo + rows], shape_only(sp_f), cal_f[rows], dtype)
    ce = _corners(ctx.ext[lo + rows], shape_only(sp_e), cal_e[rows], dtype)
    gf = _film(cf, "flexion", ctx.levels, ctx.batch, lo)
    ge = _film(ce, "extension", ctx.levels, ctx.batch, lo)
    dt = gf["t"] - ge["t"]
    dbar = 0.5 * (gf["d"] + ge["d"])
    idx = lo + rows
    out["translation_pct"][:, idx] = 100 * dt / dbar
    out["depth_ratio"][:, idx] = ge["depth"] / gf["depth"]
    if ctx.has_sd:
        def sub(a):
            return None if a is None else a[idx]

        def rows_of(a):
            return None if a is None else a[rows]

        wf = _sd_in_units(sub(ctx.sd_f), sub(ctx.sd_px_f), rows_of(sp_f), cal_f[rows], pixels=True)
        we = _sd_in_units(sub(ctx.sd_e), sub(ctx.sd_px_e), rows_of(sp_e), cal_e[rows], pixels=True)
        xf = (None if ctx.sdx_f is None
              else _sd_in_units(sub(ctx.sdx_f), sub(ctx.sdx_px_f), rows_of(sp_f), cal_f[rows], pixels=True))
        xe = (None if ctx.sdx_e is None
              else _sd_in_units(sub(ctx.sdx_e), sub(ctx.sdx_px_e), rows_of(sp_e), cal_e[rows], pixels=True))
        _, _, sq_f = _variances(gf, wf, xf)
        _, _, sq_e = _variances(ge, we, xe)
        hi = lo + int(rows.max()) + 1
        _, rig_f = _rigid_variances(cf, gf, ctx.rigid_f, lo, hi, rows_of(sp_f), cal_f[rows], True, rows)
        _, rig_e = _rigid_variances(ce, ge, ctx.rigid_e, lo, hi, rows_of(sp_e), cal_e[rows], True, rows)
        out["translation_sd_pct"][:, idx] = _pct_sd(dt, dbar, sq_f, sq_e, rig_f + rig_e)
