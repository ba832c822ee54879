"""Sub-pixel refinement of rough corners onto the cortical outline of each body.

From four quick clicks per body, each side of the body (superior endplate,
posterior wall, inferior endplate, anterior wall) is located by its edge: the
image is sampled along profiles perpendicular to the side (one ``cv2.remap``
for every profile of every body), the outer cortical surface is the strongest
bright-to-dark step going outwards (sub-pixel by a parabola), and a quadratic
curve is fitted to the edge points of each side by iteratively reweighted
least squares (Tukey biweight; batched over every side of every body).  A
corner is the intersection of its two sides' curves: the endplate chord
meeting the outer surface of the wall (measurement.md §1, the phantom's corner
definition).  Profiles avoid the last 10 % of each side, where corners are
rounded by osteophytes or the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    nan_tolerant,
)
from measure._threads import single_threaded_call

__all__ = ["RefinementResult", "refine_corners"]

# Sides as (start corner, end corner) indices into AS, PS, PI, AI.
_SIDES = np.array([[0, 1], [1, 2], [2, 3], [3, 0]])
# Each corner is the meeting of two sides: (side before, side after).
_CORNER_SIDES = np.array([[3, 0], [0, 1], [1, 2], [2, 3]])
_N_PROFILES = 24
# Profiles used for a corner: from 6 % to 36 % of each adjacent side's length.
_NEAR = (0.06, 0.36)
_SD_FLOOR_PX = 0.1
_PASSES = 3


@dataclass(frozen=True)
class RefinementResult:
    """Corners snapped to the cortical outline.

    Attributes
    ----------
    landmarks : ndarray of shape (V, 4, 2)
        Refined corners, pixels; the input corner where a body could not be
        refined (see ``body_failures``) and NaN where the input was NaN.
    displacement_px : ndarray of shape (V, 4)
        How far each corner moved, pixels (0 where not refined).
    corner_sd_px : ndarray of shape (V, 4)
        Positional standard deviation (per axis) of each refined corner, pixels,
        from the residuals of the edge fits; NaN where not refined.
    edge_strength : ndarray of shape (V,)
        Median contrast of the edges found relative to the image noise; low
        values mean the outline was barely visible.
    body_failures : tuple of (str or None)
        Per body, why it was left as placed, or None.
    """

    landmarks: np.ndarray
    displacement_px: np.ndarray
    corner_sd_px: np.ndarray
    edge_strength: np.ndarray
    body_failures: tuple[str | None, ...]

    def __bool__(self) -> bool:
        return True

    @property
    def refined(self) -> np.ndarray:
        """Boolean array of shape (V,): bodies whose corners were refined."""
        return np.array([r is None for r in self.body_failures])


@single_threaded_call
@nan_tolerant
def refine_corners(
    image: np.ndarray,
    landmarks: np.ndarray,
    *,
    search_fraction: float = 0.14,
    max_move_fraction: float = 0.12,
    levels: tuple[str, ...] | list[str] | None = None,
    checkpoint: Checkpoint | None = None,
) -> RefinementResult | LandmarkFailure:
    """Snap rough corners to the cortical corners of each body, sub-pixel.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        Lateral film, bone brighter or darker than soft tissue (detected per body).
    landmarks : ndarray of shape (V, 4, 2)
        Rough corners ``AS, PS, PI, AI`` per body, pixels; NaN for S1's
        inferior corners and for absent bodies.
    search_fraction : float
        Half-length of each edge profile as a fraction of the endplate depth.
    max_move_fraction : float
        A corner that would move further than this fraction of the endplate
        depth is not trusted: the body is left as placed, with a reason.
    levels : sequence of str, optional
        Level labels used in the reasons.
    checkpoint : callable, optional
        Called with the fraction of the work done between passes; raising
        from it (:class:`measure.Cancelled`) stops the refinement.

    Returns
    -------
    RefinementResult or LandmarkFailure
        A failure (falsy) when no body can be refined at all (blank image,
        landmarks outside the image).

    Notes
    -----
    Every numeric step is batched over bodies, sides and profiles; the IRLS
    fit runs a fixed number (5) of iterations of batched normal equations.
    """
    img = as_image(image)
    corners = as_landmarks(landmarks)
    n_bodies = corners.shape[0]
    h, w = img.shape
    present = np.all(np.isfinite(corners[:, :2]), axis=(1, 2))
    if not np.any(present):
        return LandmarkFailure("no body with both superior corners to refine")
    finite = np.isfinite(corners[..., 0])
    outside = finite & (
        (corners[..., 0] < -0.5) | (corners[..., 1] < -0.5)
        | (corners[..., 0] > w - 0.5) | (corners[..., 1] > h - 0.5)
    )
    lo, hi = np.percentile(img[:: max(h // 256, 1), :: max(w // 256, 1)], [1, 99])
    if not hi > lo:
        return LandmarkFailure("the film is blank or uniform: no edge to refine on")
    is_s1 = present & ~np.all(np.isfinite(corners[:, 2:]), axis=(1, 2))
    depth = endplate_depth_px(corners)
    smoothed = cv2.GaussianBlur(img, (0, 0), 1.0)
    noise = _noise_sigma(smoothed)
    current = np.where(present[:, None, None], corners, np.nan)
    for k in range(_PASSES):  # each pass re-centres the profiles on the last corners
        at_checkpoint(checkpoint, k / _PASSES)
        refined, corner_sd, side_ok, strength, usable = _snap(
            smoothed, current, is_s1, noise, search_fraction
        )
        current = np.where(np.isfinite(refined) | ~np.isfinite(corners), refined, current)
        current = np.where(np.isfinite(corners), current, np.nan)
    refined = current

    # ---------------- checks per body -----------------------------------------
    moved = np.linalg.norm(refined - corners, axis=-1)
    failures: list[str | None] = [None] * n_bodies
    for i in range(n_bodies):
        name = levels[i] if levels is not None else f"body {i + 1}"
        if not present[i]:
            failures[i] = "absent"
        elif np.any(outside[i]):
            failures[i] = f"{name}: a corner lies outside the film"
        elif is_s1[i] and not np.all(side_ok[i, :2]):
            failures[i] = f"{name}: the superior endplate or a wall has no clear edge"
        elif not is_s1[i] and not np.all(side_ok[i]):
            failures[i] = f"{name}: a corner has no clear edge (cut off or not bone)"
        else:
            keep = np.isfinite(corners[i, :, 0])
            limit = max_move_fraction * depth[i]
            if np.any(moved[i][keep] > limit) or not np.all(np.isfinite(refined[i][keep])):
                failures[i] = (
                    f"{name}: a corner would move {np.nanmax(moved[i][keep]):.1f} px, more than "
                    f"{limit:.1f} px: check the placement"
                )
    ok = np.array([f is None for f in failures])
    mask = ok[:, None] & finite
    out = np.where(mask[..., None], refined, corners)
    displacement = np.where(mask, moved, 0.0)
    sd = np.where(mask, corner_sd, np.nan)
    strength_body = np.array(
        [float(np.median(strength[i][usable[i]])) if usable[i].any() else 0.0 for i in range(n_bodies)]
    )
    if not np.any(ok):
        reasons = "; ".join(f for f in failures if f and f != "absent")
        return LandmarkFailure(f"no body could be refined: {reasons}")
    return RefinementResult(out, displacement, sd, strength_body, tuple(failures))



def _snap(
    smoothed: np.ndarray, corners: np.ndarray, is_s1: np.ndarray, noise: float, search_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One pass of edge profiles and corner lines; see :func:`refine_corners`.

    Returns refined corners (V, 4, 2), corner SD (V, 4), side_ok (V, 4),
    edge strength (V, 4, K) and usable (V, 4, K).
    """
    outlines = body_outlines(corners, sacrum_height=0.5)
    depth = endplate_depth_px(corners)
    n_bodies = corners.shape[0]
    h, w = smoothed.shape

    # profiles: (V, 4 sides, K positions, S samples)
    start = outlines[:, _SIDES[:, 0]]  # (V, 4, 2)
    end = outlines[:, _SIDES[:, 1]]
    along = end - start
    length = np.linalg.norm(along, axis=-1, keepdims=True)
    tangent = along / np.maximum(length, 1e-9)
    centroid = np.nanmean(outlines, axis=1, keepdims=True)
    normal = np.stack([tangent[..., 1], -tangent[..., 0]], axis=-1)
    mid = (start + end) / 2
    flip = np.sum((mid - centroid) * normal, axis=-1, keepdims=True) < 0
    normal = np.where(flip, -normal, normal)  # outward
    u = np.concatenate(
        [np.linspace(_NEAR[0], _NEAR[1], _N_PROFILES // 2), np.linspace(1 - _NEAR[1], 1 - _NEAR[0], _N_PROFILES // 2)]
    )
    u = np.broadcast_to(u, (n_bodies, 4, _N_PROFILES)).copy()
    # one profile length for every body: the median depth sets the scale
    typical = float(np.nanmedian(depth)) if np.any(depth > 0) else 16.0
    step = 0.25
    n_samples = 2 * int(np.ceil(search_fraction * typical / step)) + 1
    half = (n_samples - 1) / 2 * step
    offsets = np.arange(n_samples) * step - half  # (S,)
    base = start[:, :, None, :] + u[..., None] * along[:, :, None, :]  # (V,4,K,2)
    pts = base[..., None, :] + offsets[..., None] * normal[:, :, None, None, :]  # (V,4,K,S,2)
    flat = np.nan_to_num(pts.reshape(-1, 2), nan=-10.0).astype(np.float32)
    sampled = cv2.remap(
        smoothed, flat[:, 0].reshape(-1, n_samples), flat[:, 1].reshape(-1, n_samples),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"),
    ).reshape(pts.shape[:-1])
    inside_img = np.all(
        (pts[..., 0] >= 0) & (pts[..., 0] <= w - 1) & (pts[..., 1] >= 0) & (pts[..., 1] <= h - 1),
        axis=-1,
    )
    # polarity per body: bone brighter inside than outside?
    inner = np.nanmean(sampled[..., : n_samples // 2], axis=(1, 2, 3))
    outer = np.nanmean(sampled[..., n_samples // 2 + 1 :], axis=(1, 2, 3))
    polarity = np.where(inner >= outer, 1.0, -1.0)[:, None, None, None]
    deriv = np.gradient(sampled * polarity, axis=-1) / step  # d/d(outward)
    deriv = np.nan_to_num(deriv, nan=0.0)
    # strongest bright-to-dark step going outward (most negative derivative)
    k = np.argmin(deriv, axis=-1)
    kc = np.clip(k, 1, n_samples - 2)
    d0 = np.take_along_axis(deriv, (kc - 1)[..., None], -1)[..., 0]
    d1 = np.take_along_axis(deriv, kc[..., None], -1)[..., 0]
    d2 = np.take_along_axis(deriv, (kc + 1)[..., None], -1)[..., 0]
    denom = d0 - 2 * d1 + d2
    frac = np.where(denom > 0, 0.5 * (d0 - d2) / np.where(denom > 0, denom, 1), 0.0)
    frac = np.clip(frac, -0.5, 0.5)
    edge_offset = (kc + frac) * step - half  # (V,4,K) along the outward normal
    contrast = -d1
    strength = contrast / max(noise, 1e-9)
    usable = inside_img & (strength > 2.0) & (k > 0) & (k < n_samples - 1)

    # Each corner from two local lines: the end of the side before it and the
    # start of the side after it (profiles within ``_NEAR`` of the corner).
    # IRLS line fit of the edge offset against u, batched over (V, side, half).
    half_u = np.stack([u <= _NEAR[1], u >= 1 - _NEAR[1]], axis=2)  # (V,4,2,K)
    half_u &= np.stack([u >= _NEAR[0], u <= 1 - _NEAR[0]], axis=2)
    use = usable[:, :, None, :] & half_u
    uu = np.broadcast_to(u[:, :, None, :], use.shape)
    off = np.broadcast_to(np.nan_to_num(edge_offset)[:, :, None, :], use.shape)
    design = np.stack([np.ones_like(uu), uu], axis=-1)  # (V,4,2,K,2)
    weights = use.astype(np.float64)
    for _ in range(6):  # fixed number of IRLS iterations, batched
        wd = design * weights[..., None]
        normal_eq = np.einsum("vshki,vshkj->vshij", wd, design) + 1e-6 * np.eye(2)
        rhs = np.einsum("vshki,vshk->vshi", wd, off)
        coef = np.linalg.solve(normal_eq, rhs[..., None])[..., 0]
        resid = off - np.einsum("vshki,vshi->vshk", design, coef)
        scale = 1.4826 * _masked_median(np.abs(resid), use) + 0.1
        r = resid / (4.685 * scale[..., None])
        weights = np.where(use & (np.abs(r) < 1), (1 - r**2) ** 2, 0.0)
    n_eff = weights.sum(axis=-1)  # (V,4,2)
    resid = off - np.einsum("vshki,vshi->vshk", design, coef)
    sigma2 = np.sum(weights * resid**2, axis=-1) / np.maximum(n_eff - 2, 1)
    normal_eq = np.einsum("vshki,vshkj->vshij", design * weights[..., None], design)
    cov = sigma2[..., None, None] * np.linalg.inv(normal_eq + 1e-6 * np.eye(2))

    # corner j: side a = _CORNER_SIDES[j, 0] (its end half), side b = [j, 1] (start half)
    side_a, side_b = _CORNER_SIDES[:, 0], _CORNER_SIDES[:, 1]
    ca, cb = coef[:, side_a, 1], coef[:, side_b, 0]  # (V,4,2): a + b*u
    # line a: start_a + u*along_a + (ca0 + ca1 u) n_a ; point at u=1 and direction
    pa = start[:, side_a] + along[:, side_a] + (ca[..., 0] + ca[..., 1])[..., None] * normal[:, side_a]
    ta = along[:, side_a] + ca[..., 1][..., None] * normal[:, side_a]
    pb = start[:, side_b] + cb[..., 0][..., None] * normal[:, side_b]
    tb = along[:, side_b] + cb[..., 1][..., None] * normal[:, side_b]
    mat = np.stack([ta, -tb], axis=-1)  # (V,4,2,2)
    det = mat[..., 0, 0] * mat[..., 1, 1] - mat[..., 0, 1] * mat[..., 1, 0]
    ok_det = np.abs(det) > 1e-6 * np.maximum(depth[:, None] ** 2, 1)
    safe = np.where(ok_det[..., None, None], mat, np.eye(2))
    sol = np.linalg.solve(safe, (pb - pa)[..., None])[..., 0]
    refined = pa + sol[..., 0][..., None] * ta
    refined = np.where(ok_det[..., None], refined, np.nan)
    ua, ub = 1 + sol[..., 0], sol[..., 1]

    # per-corner SD: each line's offset SD at the corner, combined (sides ~perpendicular)
    def offset_var(side_u: np.ndarray, c: np.ndarray) -> np.ndarray:
        basis = np.stack([np.ones_like(side_u), side_u], axis=-1)
        return np.einsum("vci,vcij,vcj->vc", basis, c, basis)

    var_a = offset_var(ua, cov[:, side_a, 1])
    var_b = offset_var(ub, cov[:, side_b, 0])
    corner_sd = np.sqrt(np.maximum((var_a + var_b) / 2, 0) + _SD_FLOOR_PX**2)
    side_ok = np.stack([n_eff[:, side_a, 1], n_eff[:, side_b, 0]], axis=-1).min(axis=-1) >= 3

    return refined, corner_sd, side_ok, strength, usable


def _noise_sigma(image: np.ndarray) -> float:
    """Robust noise SD of an image from its Laplacian (median absolute deviation)."""
    lap = cv2.Laplacian(image, cv2.CV_32F, ksize=1)
    return float(1.4826 * np.median(np.abs(lap - np.median(lap))) / np.sqrt(20.0)) + 1e-12


def _masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median over the last axis of ``values`` where ``mask``; 0 where none."""
    masked = np.where(mask, values, np.nan)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(masked, axis=-1)
    return np.nan_to_num(med, nan=0.0)
