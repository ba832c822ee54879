"""Tracking of vertebral bodies from one film to the other (measurement.md §7).

The reader's corners on one film (the *fixed* film) define each body's outline.
Each body is found in the other film (the *moving* film) by registering that
body's own pixels:

1. the whole column is aligned coarsely (rotation, scale, translation) by a
   masked normalised cross-correlation search on a low-resolution,
   locally normalised copy of both films (robust to exposure and window);
2. each body is searched near its coarse position (rotation and translation)
   at an intermediate resolution; the best-fitting body becomes the anchor and
   the others are found outwards from it, each starting from its neighbour's
   pose (adjacent bodies turn by at most ~20° relative to each other), so that
   no body locks onto the wrong level;
3. each body is registered to sub-pixel precision inside a mask of its own
   outline (rigid, with one isotropic scale common to all bodies for a change
   of magnification) and its corners are carried over by the found transform.

Per body: the fit quality (correlation after registration), a positional SD
per corner from the registration's covariance, and a reason when the fit is
not trustworthy.  The loop over bodies (≈ 6) calls OpenCV and numpy kernels;
no numeric inner loop runs in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from measure._auto_common import (
    Checkpoint,
    LandmarkFailure,
    as_image,
    as_landmarks,
    at_checkpoint,
    body_outlines,
    endplate_depth_px,
    local_normalise,
    nan_tolerant,
)
from measure._registration import (
    apply_matrix,
    coarse_candidates,
    compose,
    invert,
    level_matrix,
    register_similarity,
    resample,
)
from measure._threads import single_threaded_call

__all__ = ["TrackingResult", "track_bodies"]

# Resolutions expressed as the endplate depth in pixels at each level.
_COARSE_DEPTH = 14.0
_SEARCH_DEPTH = 28.0
_FINE_DEPTH = 110.0
_MID_DEPTH = 55.0  # px per endplate depth where candidate poses are compared
# Smallest SD reported for a tracked corner, pixels at full resolution: the
# reproducibility of the corner on the fixed film is accounted for separately.
_SD_FLOOR_PX = 0.15
# Margin of the registration mask around the outline, fraction of the endplate depth.
_FINE_GROW = 0.04
# Height of the block registered for S1, fraction of its endplate depth.
_SACRUM_HEIGHT = 1.2
_SACRUM_FINAL = 0.5
# Distinct coarse poses of the column checked by registering its base bodies.
_HYPOTHESES = 4
# Distinct peaks of the search of one body refined by registration.
_PEAKS = 2
# Centre distance of two bodies in the moving film / in the fixed film (times the
# scale) outside this range: one of them is on another level.
_SPACING_RANGE = (0.8, 1.25)
# Gaussian neighbourhood of the local intensity normalisation, fraction of the depth.
_NORM_SIGMA_COARSE = 0.3
_NORM_SIGMA = 0.2


@dataclass(frozen=True)
class TrackingResult:
    """Bodies found in the moving film.

    Attributes
    ----------
    landmarks : ndarray of shape (V, 4, 2)
        Corners in the moving film, pixels; NaN for bodies that were absent in
        the fixed film or whose fit failed (see ``body_failures``).
    proposed_landmarks : ndarray of shape (V, 4, 2)
        Corners carried over for every present body, failed ones included
        (for display as a rejected proposal, never for measurement).
    corner_sd_px : ndarray of shape (V, 4)
        Positional standard deviation of each tracked corner, pixels; NaN where
        ``landmarks`` is NaN.
    quality : ndarray of shape (V,)
        Normalised cross-correlation of the body with its fixed-film template
        after registration, in [-1, 1]; NaN for absent bodies.
    matrices : ndarray of shape (V, 2, 3)
        Fixed-film -> moving-film transform of each body.
    scale : float
        Common isotropic scale (moving / fixed), 1 when not estimated.
    body_failures : tuple of (str or None)
        Per body, why it was rejected, or None.
    """

    landmarks: np.ndarray
    proposed_landmarks: np.ndarray
    corner_sd_px: np.ndarray
    quality: np.ndarray
    matrices: np.ndarray
    scale: float
    body_failures: tuple[str | None, ...]
    coarse_score: float = field(default=float("nan"))

    def __bool__(self) -> bool:
        return True

    @property
    def tracked(self) -> np.ndarray:
        """Boolean array of shape (V,): bodies tracked successfully."""
        return np.array([r is None for r in self.body_failures]) & np.isfinite(self.quality)


def _label(levels, i: int) -> str:
    return f"{levels[i]}" if levels is not None else f"body {i + 1}"


def _outline_mask(shape: tuple[int, int], outline: np.ndarray, grow: float) -> np.ndarray:
    """uint8 mask of a quadrilateral grown by ``grow`` pixels about its centroid."""
    centre = outline.mean(axis=0)
    radial = outline - centre
    norm = np.linalg.norm(radial, axis=1, keepdims=True)
    grown = centre + radial * (1 + grow / np.maximum(norm, 1e-9))
    mask = np.zeros(shape, np.uint8)
    pts = np.round((grown + 0.0) * 16).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return mask


def _angle_of(matrix: np.ndarray) -> float:
    return float(np.arctan2(matrix[1, 0], matrix[0, 0]))


def _scale_of(matrix: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


@single_threaded_call
@nan_tolerant
def track_bodies(
    fixed_image: np.ndarray,
    fixed_landmarks: np.ndarray,
    moving_image: np.ndarray,
    *,
    estimate_scale: bool = True,
    max_rotation_deg: float = 35.0,
    scale_range: tuple[float, float] = (0.85, 1.18),
    min_quality: float = 0.4,
    levels: tuple[str, ...] | list[str] | None = None,
    checkpoint: Checkpoint | None = None,
) -> TrackingResult | LandmarkFailure:
    """Find the bodies outlined on one film in the other film.

    Parameters
    ----------
    fixed_image : ndarray of shape (H, W)
        Film whose corners are known (any greyscale dtype; pixel values after
        the modality LUT or display values: only local contrast is used).
    fixed_landmarks : ndarray of shape (V, 4, 2)
        Corners ``AS, PS, PI, AI`` per body on ``fixed_image``, pixels; bodies
        top to bottom; NaN for absent corners (S1's ``PI``, ``AI``) or absent
        bodies (all NaN).
    moving_image : ndarray of shape (H2, W2)
        The other film (same patient).  May differ in exposure, window, noise,
        rotation and magnification; must face the same way.
    estimate_scale : bool
        Estimate one isotropic scale common to every body (a change of
        magnification between the films).
    max_rotation_deg : float
        Largest rotation of the column between the films searched, degrees.
    scale_range : (float, float)
        Range of the common scale searched (moving / fixed).
    min_quality : float
        A body whose correlation after registration is below this is rejected.
    levels : sequence of str, optional
        Level labels, used in failure reasons.
    checkpoint : callable, optional
        Called with the fraction of the work done between stages and bodies;
        raising from it (:class:`measure.Cancelled`) stops the tracking.

    Returns
    -------
    TrackingResult or LandmarkFailure
        A failure (falsy, with ``.reason``) when the images or landmarks are
        unusable or the column is not found; otherwise a result whose
        ``body_failures`` name each rejected body and why.

    Raises
    ------
    ValueError
        When an argument has the wrong shape.

    Notes
    -----
    See the module docstring and ``docs/auto-landmarks.md``.  Corner SDs come
    from the Gauss-Newton covariance of each body's registration; they are
    floored at 0.15 px.
    """
    fixed = as_image(fixed_image, "fixed_image")
    moving = as_image(moving_image, "moving_image")
    corners = as_landmarks(fixed_landmarks, "fixed_landmarks")
    n_bodies = corners.shape[0]
    if levels is not None and len(levels) != n_bodies:
        raise ValueError(f"levels: {len(levels)} labels for {n_bodies} bodies")
    present = np.all(np.isfinite(corners[:, :2]), axis=(1, 2))
    if not np.any(present):
        return LandmarkFailure("no body with both superior corners on the fixed film")
    for name, img in (("fixed", fixed), ("moving", moving)):
        lo, hi = np.percentile(img[:: max(img.shape[0] // 256, 1), :: max(img.shape[1] // 256, 1)], [1, 99])
        if not hi > lo:
            return LandmarkFailure(f"the {name} film is blank or uniform")
    h, w = fixed.shape
    for i in np.flatnonzero(present):
        pts = corners[i][np.all(np.isfinite(corners[i]), axis=1)]
        if np.any(pts < -0.5) or np.any(pts[:, 0] > w - 0.5) or np.any(pts[:, 1] > h - 0.5):
            return LandmarkFailure(f"{_label(levels, i)}: a corner lies outside the fixed film")
    outlines = body_outlines(corners)
    # S1 is registered with a taller block: the sacrum (and the pelvis joined to
    # it) is the one part of the column that no other level resembles.
    reg_outlines = body_outlines(corners, sacrum_height=_SACRUM_HEIGHT)
    sacral = present & ~np.all(np.isfinite(corners[:, 2:]), axis=(1, 2))
    sacral[: np.flatnonzero(present)[-1]] = False  # only the lowest body can be S1
    depth_each = endplate_depth_px(corners)
    depth = float(np.nanmedian(depth_each[present]))
    if not depth >= 8:
        return LandmarkFailure(f"bodies too small on the fixed film (endplate depth {depth:.1f} px)")
    # bodies whose outline (grown a little) leaves the fixed film cannot be templates
    margin = 0.1 * depth
    fixed_cut = np.zeros(n_bodies, bool)
    for i in np.flatnonzero(present):
        o = outlines[i]
        fixed_cut[i] = bool(
            np.any(o < margin - 0.5) or np.any(o[:, 0] > w - 0.5 - margin)
            or np.any(o[:, 1] > h - 0.5 - margin)
        )

    # ---------------- coarse alignment of the column -------------------------
    at_checkpoint(checkpoint, 0.0)
    fc = min(1.0, _COARSE_DEPTH / depth)
    sigma_c = _NORM_SIGMA_COARSE * depth * fc
    fixed_c = local_normalise(resample(fixed, fc), sigma_c, wide_blur=True)
    moving_c = local_normalise(resample(moving, fc), sigma_c, wide_blur=True)
    lc = level_matrix(fc)
    # the base of the column (S1 and the two bodies above) anchors the search;
    # the whole column when S1 is not given
    base = np.zeros(n_bodies, bool)
    if np.any(sacral):
        s1 = int(np.flatnonzero(sacral)[-1])
        base[max(s1 - 2, 0) : s1 + 1] = True
        base &= present
    else:
        base = present.copy()
    out_c = apply_matrix(lc, reg_outlines[base])
    band = np.zeros(fixed_c.shape, np.uint8)
    for o in out_c:
        band |= _outline_mask(fixed_c.shape, o, 0.3 * depth * fc)
    centre_c = out_c.reshape(-1, 2).mean(axis=0)
    # 3° and ~8 % steps move the edge of a 3-body block by about one pixel at this level
    step = np.deg2rad(3.0)
    angles = np.arange(-np.deg2rad(max_rotation_deg), np.deg2rad(max_rotation_deg) + 1e-9, step)
    scales = (
        np.exp(np.linspace(np.log(scale_range[0]), np.log(scale_range[1]), 5))
        if estimate_scale
        else np.array([1.0])
    )
    poses = coarse_candidates(fixed_c, band, centre_c, moving_c, angles, scales)
    at_checkpoint(checkpoint, 0.1)
    if not poses:
        return LandmarkFailure("not found: the column outlined on the fixed film does not fit in the other film")
    if poses[0].score < 0.15:
        return LandmarkFailure(
            f"not found: no match for the column in the other film (correlation {poses[0].score:.2f})"
        )
    # a few distinct hypotheses (vertebrae look alike: the best coarse peak may
    # sit one level off); each is judged by registering the base bodies
    hypotheses: list = []
    for pose in poses:
        if pose.score < 0.5 * poses[0].score or len(hypotheses) == _HYPOTHESES:
            break
        target = apply_matrix(pose.matrix, centre_c)
        if all(
            np.linalg.norm(target - apply_matrix(h.matrix, centre_c)) > 0.4 * depth * fc
            or abs(pose.angle_rad - h.angle_rad) > np.deg2rad(8)
            for h in hypotheses
        ):
            hypotheses.append(pose)

    # ---------------- per-body search and registration ------------------------
    fs = min(1.0, _SEARCH_DEPTH / depth)
    ff = min(1.0, _FINE_DEPTH / depth)
    ls, lf = level_matrix(fs), level_matrix(ff)
    sigma_s, sigma_f = _NORM_SIGMA * depth * fs, _NORM_SIGMA * depth * ff
    fixed_s = local_normalise(resample(fixed, fs), sigma_s, wide_blur=True)
    moving_s = local_normalise(resample(moving, fs), sigma_s, wide_blur=True)
    fixed_f = local_normalise(resample(fixed, ff), sigma_f, wide_blur=True)
    moving_f = local_normalise(resample(moving, ff), sigma_f, wide_blur=True)
    # a middle level to compare candidate poses (a quarter of the fine pixels)
    fm = min(1.0, _MID_DEPTH / depth)
    lm = level_matrix(fm)
    fixed_m = local_normalise(resample(fixed, fm), _NORM_SIGMA * depth * fm, wide_blur=True)
    moving_m = local_normalise(resample(moving, fm), _NORM_SIGMA * depth * fm, wide_blur=True)
    # the registrations' smoothing (sigma 1 px), once per level
    moving_f_smooth = cv2.GaussianBlur(moving_f, (0, 0), 1.0)
    moving_m_smooth = cv2.GaussianBlur(moving_m, (0, 0), 1.0)

    def search(i: int, prior: np.ndarray, radius: float, angle_span: float) -> list[np.ndarray]:
        """Up to ``_PEAKS`` distinct poses (full-res fixed -> moving) of body i near ``prior``."""
        o = apply_matrix(ls, reg_outlines[i])
        mask = _outline_mask(fixed_s.shape, o, max(_FINE_GROW * depth * fs, 0.5))
        centre = o.mean(axis=0)
        prior_s = compose(ls, compose(prior, invert(ls)))
        target = apply_matrix(prior_s, centre)
        r = radius * depth * fs
        window = (target[0] - r, target[1] - r, target[0] + r, target[1] + r)
        a0 = _angle_of(prior_s)
        found = coarse_candidates(
            fixed_s, mask, centre, moving_s,
            a0 + np.arange(-angle_span, angle_span + 1e-9, np.deg2rad(4.0)),
            np.array([_scale_of(prior_s)]), window,
        )
        peaks: list = []
        for match in found:
            spot = apply_matrix(match.matrix, centre)
            if all(np.linalg.norm(spot - apply_matrix(p.matrix, centre)) > 0.15 * depth * fs for p in peaks):
                peaks.append(match)
            if len(peaks) == _PEAKS:
                break
        return [compose(invert(ls), compose(m.matrix, ls)) for m in peaks]

    def best_fine(i: int, poses: list[np.ndarray], final: bool = True, accept=None):
        """The registration of body i with the highest correlation, or None.

        Candidates are compared at the middle level; with ``final`` the winner
        is registered again at the fine level.  ``accept(matrix)``, when
        given, rules candidates out (a body at the wrong spacing from its
        neighbour); None when no candidate is left.
        """
        results = [fine(i, pose, False, mid=True) for pose in poses]
        if accept is not None:
            results = [r for r in results if accept(r[0])]
        if not results:
            return None
        best = max(results, key=lambda r: r[1].correlation)
        return fine(i, best[0], False) if final else best

    def fine(
        i: int, start: np.ndarray, scale_free: bool, shapes: np.ndarray = reg_outlines, mid: bool = False
    ):
        """Sub-pixel registration of body i; returns (full-res matrix, PatchFit, offset)."""
        lv, fv, fixed_v, moving_v = (
            (lm, fm, fixed_m, moving_m_smooth) if mid else (lf, ff, fixed_f, moving_f_smooth)
        )
        o = apply_matrix(lv, shapes[i])
        pad = 0.35 * depth * fv
        x0 = int(max(np.floor(o[:, 0].min() - pad), 0))
        y0 = int(max(np.floor(o[:, 1].min() - pad), 0))
        x1 = int(min(np.ceil(o[:, 0].max() + pad) + 1, fixed_v.shape[1]))
        y1 = int(min(np.ceil(o[:, 1].max() + pad) + 1, fixed_v.shape[0]))
        template = fixed_v[y0:y1, x0:x1]
        shifted = o - np.array([x0, y0])
        mask = _outline_mask(template.shape, shifted, _FINE_GROW * depth * fv).astype(bool)
        crop = np.array([[1.0, 0, x0], [0, 1.0, y0]])  # template frame -> level's fixed frame
        start_v = compose(lv, compose(start, invert(lv)))  # level's fixed -> level's moving
        fit = register_similarity(
            template, mask, moving_v, compose(start_v, crop), estimate_scale=scale_free,
            smoothing=1.0, image_smoothed=True,
        )  # fmt: skip
        full = compose(invert(lv), compose(compose(fit.matrix, invert(crop)), lv))
        return full, fit, np.array([x0, y0], dtype=np.float64)

    quality = np.full(n_bodies, np.nan)
    matrices = np.full((n_bodies, 2, 3), np.nan)
    fits: dict[int, tuple] = {}
    off_level = np.zeros(n_bodies, bool)  # found only at a spacing that puts it on another level
    centres_f = np.nanmean(outlines, axis=1)

    def _spaced(matrix: np.ndarray, i: int, other: np.ndarray, j: int) -> bool:
        """Whether body i at ``matrix`` keeps its fixed-film distance to body j at ``other``."""
        d_fixed = np.linalg.norm(centres_f[i] - centres_f[j]) * _scale_of(other)
        d_moving = np.linalg.norm(apply_matrix(matrix, centres_f[i]) - apply_matrix(other, centres_f[j]))
        return bool(_SPACING_RANGE[0] < d_moving / max(d_fixed, 1e-9) < _SPACING_RANGE[1])

    # initial candidates for the base bodies under each coarse hypothesis
    best_score, candidates, coarse, coarse_full = -np.inf, {}, hypotheses[0], None
    for h, hyp in enumerate(hypotheses):
        hyp_full = compose(invert(lc), compose(hyp.matrix, lc))  # full res fixed -> moving
        found: dict[int, tuple] = {}
        for j, i in enumerate(np.flatnonzero(base)):
            at_checkpoint(checkpoint, 0.1 + 0.3 * (h + j / base.sum()) / len(hypotheses))
            result = best_fine(i, search(i, hyp_full, 0.75, np.deg2rad(16)), final=False)
            if result is not None:
                found[i] = result
        if not found:
            continue
        weights = np.array([2.0 if sacral[i] else 1.0 for i in found])
        corr = np.array([found[i][1].correlation for i in found])
        score = float(np.sum(weights * corr) / (weights.sum() + np.sum(base) - len(found)))
        if score > best_score:
            best_score, candidates, coarse, coarse_full = score, found, hyp, hyp_full
    if not candidates:
        return LandmarkFailure("not found: no body of the fixed film fits in the other film")
    # the chosen hypothesis's bodies, registered at the fine level
    candidates = {i: fine(i, r[0], False) for i, r in candidates.items()}
    anchor = max(candidates, key=lambda k: candidates[k][1].correlation)
    if np.any(sacral):
        s1 = int(np.flatnonzero(sacral)[-1])
        if s1 in candidates and candidates[s1][1].correlation >= min_quality:
            anchor = s1
    fits[anchor] = candidates[anchor]
    # outwards from the anchor, each body starting from its neighbour's pose
    order = [*range(anchor - 1, -1, -1), *range(anchor + 1, n_bodies)]
    for k, i in enumerate(order):
        at_checkpoint(checkpoint, 0.4 + 0.4 * k / max(len(order), 1))
        if not present[i]:
            continue
        neighbour = i + 1 if i < anchor else i - 1
        while neighbour not in fits and 0 <= neighbour < n_bodies and neighbour != anchor:
            neighbour = neighbour + 1 if i < anchor else neighbour - 1
        prior = fits[neighbour][0] if neighbour in fits else coarse_full
        # a pose is kept only at the neighbour's spacing: vertebrae look alike, and a
        # body one level off would carry every body beyond it one level off too
        accept = (lambda m, i=i, nb=neighbour: _spaced(m, i, fits[nb][0], nb)) if neighbour in fits else None
        best = best_fine(i, search(i, prior, 0.5, np.deg2rad(20)), accept=accept)
        alt = candidates.get(i)
        if alt is not None and accept is not None and not accept(alt[0]):
            alt = None
        if best is None or (
            alt is not None and alt[1].correlation > best[1].correlation + 0.1
        ):
            best = alt
        if best is not None:
            fits[i] = best
        elif accept is not None:
            off_level[i] = True

    # ---------------- common scale (magnification) ----------------------------
    scale = 1.0
    if estimate_scale and fits:
        scales_each = []
        for k, (i, (mat, fit, _)) in enumerate(fits.items()):
            at_checkpoint(checkpoint, 0.8 + 0.15 * k / len(fits))
            if fit.correlation < min_quality:
                continue
            free = fine(i, mat, True)
            scales_each.append(_scale_of(free[0]))
        if scales_each:
            scale = float(np.median(scales_each))
            for i, (mat, _fit, _) in list(fits.items()):
                lin = mat[:, :2] / _scale_of(mat) * scale
                centre = outlines[i].mean(axis=0)
                target = apply_matrix(mat, centre)
                start = np.hstack([lin, (target - lin @ centre)[:, None]])
                fits[i] = fine(i, start, False)
    # S1 located by the whole sacral block; its corners from the block under its endplate
    final_outlines = body_outlines(corners, sacrum_height=_SACRUM_FINAL)
    for i in np.flatnonzero(sacral):
        if i in fits:
            fits[i] = fine(i, fits[i][0], False, final_outlines)

    # ---------------- corners, SDs and checks ----------------------------------
    at_checkpoint(checkpoint, 0.95)
    proposed = np.full_like(corners, np.nan)
    corner_sd = np.full(corners.shape[:2], np.nan)
    failures: list[str | None] = [None] * n_bodies
    mh, mw = moving.shape
    for i in range(n_bodies):
        if not present[i]:
            failures[i] = "absent on the fixed film"
            continue
        if i not in fits:
            failures[i] = f"{_label(levels, i)}: " + (
                "found only at a spacing from its neighbour that puts it on another level"
                if off_level[i] else "not found in the other film"
            )
            continue
        mat, fit, origin = fits[i]
        matrices[i] = mat
        quality[i] = fit.correlation
        proposed[i] = apply_matrix(mat, corners[i])
        # SD of each corner from the covariance of (rotation, tx, ty), template frame
        r = apply_matrix(lf, corners[i]) - origin - fit.centre
        cov = fit.covariance
        # d corner = d_theta * (-ry, rx) + d_t
        jac = np.zeros((4, 2, 3))
        jac[:, 0, 0], jac[:, 1, 0] = -r[:, 1], r[:, 0]
        jac[:, 0, 1] = jac[:, 1, 2] = 1.0
        ccov = jac @ cov @ jac.transpose(0, 2, 1)
        sd = np.sqrt(np.clip(np.trace(ccov, axis1=1, axis2=2) / 2, 0, None)) / ff
        corner_sd[i] = np.where(np.isfinite(corners[i, :, 0]), np.maximum(sd, _SD_FLOOR_PX), np.nan)
        reason = None
        out_m = apply_matrix(mat, outlines[i])
        if fixed_cut[i]:
            reason = "cut off by the edge of the fixed film"
        elif np.any(out_m < -0.5) or np.any(out_m[:, 0] > mw - 0.5) or np.any(out_m[:, 1] > mh - 0.5):
            reason = "cut off by the edge of the other film"
        elif fit.correlation < min_quality:
            reason = f"poor fit (correlation {fit.correlation:.2f} < {min_quality:.2f})"
        if reason is not None:
            failures[i] = f"{_label(levels, i)}: {reason}"
    # neighbours must keep their spacing (scaled): otherwise a body locked onto another level
    centres_m = np.array([apply_matrix(matrices[i], centres_f[i]) if i in fits else [np.nan, np.nan] for i in range(n_bodies)])
    for i in range(n_bodies - 1):
        if failures[i] is not None or failures[i + 1] is not None:
            continue
        d_fixed = np.linalg.norm(centres_f[i + 1] - centres_f[i]) * scale
        d_moving = np.linalg.norm(centres_m[i + 1] - centres_m[i])
        if not _SPACING_RANGE[0] < d_moving / d_fixed < _SPACING_RANGE[1]:
            worse = i if quality[i] < quality[i + 1] else i + 1
            failures[worse] = (
                f"{_label(levels, worse)}: inconsistent with its neighbour "
                "(spacing changed: possibly the wrong level)"
            )
    ok = np.array([f is None for f in failures])
    landmarks = np.where(ok[:, None, None], proposed, np.nan)
    corner_sd = np.where(ok[:, None], corner_sd, np.nan)
    return TrackingResult(
        landmarks=landmarks,
        proposed_landmarks=proposed,
        corner_sd_px=corner_sd,
        quality=quality,
        matrices=matrices,
        scale=scale,
        body_failures=tuple(failures),
        coarse_score=float(coarse.score),
    )

