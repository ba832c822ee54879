"""Image registration kernels used by tracking and detection.

All transforms are 2x3 float64 matrices ``M`` mapping a point ``x`` (column,
row; pixels, origin at the centre of the top-left pixel) of a *source* frame to
``M[:, :2] @ x + M[:, 2]`` in a *target* frame.

- :func:`resample` and :func:`level_matrix`: image pyramids with the pixel-centre
  convention kept exact;
- :func:`coarse_similarity`: exhaustive search of rotation, scale and position
  of a masked template by normalised cross-correlation (OpenCV ``matchTemplate``
  with a mask), used to align a whole column coarsely and to find one body in a
  search window;
- :func:`register_similarity`: sub-pixel rigid (optionally + isotropic scale)
  registration of a masked patch by inverse-compositional Gauss-Newton on
  photometrically normalised intensities (the ECC criterion), with the
  parameter covariance.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "PatchFit",
    "apply_matrix",
    "coarse_candidates",
    "coarse_similarity",
    "compose",
    "invert",
    "level_matrix",
    "register_similarity",
    "resample",
    "similarity_matrix",
]


def similarity_matrix(
    scale: float, angle_rad: float, centre: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """The similarity mapping ``centre`` to ``target`` with the given scale and rotation.

    ``x -> target + scale * R(angle) @ (x - centre)``; a positive angle turns
    +x towards +y (clockwise on screen, since y grows downwards).
    """
    c, s = np.cos(angle_rad) * scale, np.sin(angle_rad) * scale
    linear = np.array([[c, -s], [s, c]])
    return np.hstack([linear, (np.asarray(target) - linear @ np.asarray(centre))[:, None]])


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``outer ∘ inner`` for 2x3 affine matrices."""
    linear = outer[:, :2] @ inner[:, :2]
    return np.hstack([linear, (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    linear = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear, (-linear @ matrix[:, 2])[:, None]])


def apply_matrix(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 matrix to points of shape ``(..., 2)``; NaN stays NaN."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def level_matrix(factor: float) -> np.ndarray:
    """Pixel coordinates at full resolution -> at a resolution scaled by ``factor``.

    With the pixel-centre convention, ``x_level = (x + 0.5) * factor - 0.5``.
    """
    return np.array([[factor, 0.0, 0.5 * factor - 0.5], [0.0, factor, 0.5 * factor - 0.5]])


def resample(image: np.ndarray, factor: float) -> np.ndarray:
    """Resize an image by ``factor`` (area averaging when shrinking)."""
    if abs(factor - 1.0) < 1e-9:
        return np.asarray(image, dtype=np.float32)
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    # dsize left to OpenCV so that the mapping uses exactly ``factor``
    return cv2.resize(
        np.asarray(image, dtype=np.float32), None, fx=factor, fy=factor, interpolation=interp
    )


@dataclass(frozen=True, slots=True)
class SimilarityMatch:
    """Best pose of a template found by :func:`coarse_similarity`."""

    matrix: np.ndarray
    """2x3 matrix, template source frame -> search image frame."""
    score: float
    """Normalised cross-correlation at the peak, in [-1, 1]."""
    angle_rad: float
    scale: float


def _rotated_template(
    source: np.ndarray,
    mask: np.ndarray,
    centre: np.ndarray,
    bounds: np.ndarray,
    scale: float,
    angle: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Template of ``source`` rotated/scaled about ``centre`` on a canvas that holds ``bounds``."""
    probe = similarity_matrix(scale, angle, centre, np.zeros(2))
    moved = apply_matrix(probe, bounds)
    low = np.floor(moved.min(axis=0)) - 1
    size = (np.ceil(moved.max(axis=0)) - low + 2).astype(int)
    forward = probe.copy()
    forward[:, 2] -= low
    template = cv2.warpAffine(
        source, forward, (int(size[0]), int(size[1])), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    tmask = cv2.warpAffine(mask, forward, (int(size[0]), int(size[1])), flags=cv2.INTER_NEAREST)
    return template, tmask, forward


def coarse_similarity(
    source: np.ndarray,
    source_mask: np.ndarray,
    centre: np.ndarray,
    search: np.ndarray,
    angles_rad: np.ndarray,
    scales: np.ndarray,
    window: tuple[float, float, float, float] | None = None,
) -> SimilarityMatch | None:
    """The best pose of :func:`coarse_candidates` (same parameters), or None."""
    found = coarse_candidates(source, source_mask, centre, search, angles_rad, scales, window)
    return found[0] if found else None


def coarse_candidates(
    source: np.ndarray,
    source_mask: np.ndarray,
    centre: np.ndarray,
    search: np.ndarray,
    angles_rad: np.ndarray,
    scales: np.ndarray,
    window: tuple[float, float, float, float] | None = None,
) -> list[SimilarityMatch]:
    """Exhaustive search of the pose of a masked template in a search image.

    Parameters
    ----------
    source : ndarray of shape (H, W), float32
        Image the template comes from (already normalised: zero mean locally).
    source_mask : ndarray of shape (H, W), uint8
        Non-zero where the template is defined.
    centre : ndarray of shape (2,)
        Rotation centre in ``source`` (x, y), pixels.
    search : ndarray of shape (H2, W2), float32
        Image searched (normalised the same way, same resolution).  It is
        padded with zeros so that a template may stick out of it.
    angles_rad, scales : ndarray of shape (K,), (L,)
        Rotations and scales tried (every combination).
    window : tuple of float, optional
        ``(x0, y0, x1, y1)`` bounds on where ``centre`` may land in ``search``;
        default the whole image.

    Returns
    -------
    list of SimilarityMatch
        The peak of every pose tried, best first (empty when the mask or the
        window is empty).

    Notes
    -----
    The masked normalised cross-correlation of every pose (that of OpenCV's
    ``TM_CCOEFF_NORMED`` with a mask) is built from three unmasked
    ``cv2.matchTemplate`` correlations (:func:`_masked_ncc`), 2.7 times less
    CPU than OpenCV's masked mode; the loop over poses (tens to a few hundred)
    calls OpenCV, no numeric inner loop runs in Python.  The peak is refined
    to sub-pixel by a parabola.
    """
    ys, xs = np.nonzero(source_mask)
    if xs.size < 16:
        return None
    bounds = np.array(
        [[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.max(), ys.max()], [xs.min(), ys.max()]],
        dtype=np.float64,
    )
    h2, w2 = search.shape
    x0, y0, x1, y1 = window if window is not None else (0.0, 0.0, w2 - 1.0, h2 - 1.0)
    found: list[SimilarityMatch] = []
    # one zero border wide enough for every rotated/scaled template canvas (at
    # most the bounds' diagonal times the scale, plus the canvas margin)
    extent = bounds.max(axis=0) - bounds.min(axis=0)
    border = int(np.ceil(np.hypot(*extent) * float(np.max(scales)))) + 6
    padded = cv2.copyMakeBorder(search, border, border, border, border, cv2.BORDER_CONSTANT, value=0.0)
    padded_sq = cv2.multiply(padded, padded)
    floor = 1e-4 * float(np.mean(search * search))  # the image's variance at a constant
    for scale in np.atleast_1d(scales):
        for angle in np.atleast_1d(angles_rad):
            template, tmask, forward = _rotated_template(
                source, source_mask, centre, bounds, float(scale), float(angle)
            )
            if np.count_nonzero(tmask) < 16:
                continue
            th, tw = template.shape
            cpos = apply_matrix(forward, centre)  # template centre on the canvas
            # top-left of the template in coordinates of the search image padded
            # by the template's size, for centre in the window
            lx0 = max(int(np.floor(x0 - cpos[0])) + tw - 1, 0)
            ly0 = max(int(np.floor(y0 - cpos[1])) + th - 1, 0)
            lx1 = min(int(np.ceil(x1 - cpos[0])) + tw + 1, w2 + tw)
            ly1 = min(int(np.ceil(y1 - cpos[1])) + th + 1, h2 + th)
            if lx1 < lx0 or ly1 < ly0:
                continue
            rows = slice(ly0 + border - th, ly1 + border)
            cols = slice(lx0 + border - tw, lx1 + border)
            response = _masked_ncc(padded[rows, cols], padded_sq[rows, cols], template, tmask, floor)
            iy, ix = np.unravel_index(int(np.argmax(response)), response.shape)
            score = float(response[iy, ix])
            dx = _parabola_peak(response[iy, max(ix - 1, 0) : ix + 2], ix)
            dy = _parabola_peak(response[max(iy - 1, 0) : iy + 2, ix], iy)
            top_left = np.array([lx0 + ix + dx - tw, ly0 + iy + dy - th], dtype=np.float64)
            matrix = forward.copy()
            matrix[:, 2] += top_left
            found.append(SimilarityMatch(matrix, score, float(angle), float(scale)))
    found.sort(key=lambda m: -m.score)
    return found


def _masked_ncc(
    region: np.ndarray,
    region_sq: np.ndarray,
    template: np.ndarray,
    tmask: np.ndarray,
    floor: float | None = None,
) -> np.ndarray:
    """Normalised cross-correlation of a masked template at every position of ``region``.

    Parameters
    ----------
    region, region_sq : ndarray of shape (H, W), float32
        The image searched and its square.
    template : ndarray of shape (h, w), float32
    tmask : ndarray of shape (h, w), uint8
        Non-zero on the template pixels that take part (binary).
    floor : float, optional
        Masked variance per pixel below which the image counts as constant;
        default 1e-4 of the mean of ``region_sq``.

    Returns
    -------
    ndarray of shape (H - h + 1, W - w + 1), float32
        ``sum M (T - T_M)(I - I_M) / sqrt(sum M (T - T_M)^2 * sum M (I - I_M)^2)``
        with ``T_M``, ``I_M`` the means over the mask (OpenCV's
        ``TM_CCOEFF_NORMED`` with a mask); 0 where the image is constant
        under the mask (its masked variance below ``floor``: the zero
        padding).

    Notes
    -----
    With ``A = M (T - T_M)`` (which sums to zero) the numerator is the plain
    correlation of ``I`` with ``A``, and the image's masked variance times
    ``n = sum M`` is ``corr(I^2, M) - corr(I, M)^2 / n``: three unmasked
    ``cv2.matchTemplate(..., TM_CCORR)`` calls.
    """
    inside = tmask > 0
    m = inside.astype(np.float32)
    n = float(np.count_nonzero(inside))
    centred = (template - float(template[inside].mean())) * m
    numerator = cv2.matchTemplate(region, centred, cv2.TM_CCORR)
    local_sum = cv2.matchTemplate(region, m, cv2.TM_CCORR)
    image_var = cv2.matchTemplate(region_sq, m, cv2.TM_CCORR)
    image_var -= local_sum * local_sum / n  # n times the masked variance of the image
    # an image (nearly) constant under the mask: float32 cancellation, not a match
    if floor is None:
        floor = 1e-4 * float(np.mean(region_sq))
    constant = image_var <= n * floor + 1e-12
    np.maximum(image_var, 1e-30, out=image_var)
    image_var *= float(np.dot(centred.ravel(), centred.ravel()))
    numerator /= np.sqrt(image_var, out=image_var)
    numerator[constant] = 0.0
    return numerator


_HUBER_K = 1.345
_STALL = 8  # iterations without a better correlation before a registration gives up


def _parabola_peak(values: np.ndarray, index: int) -> float:
    """Sub-pixel offset of a peak from three samples (0 at the borders)."""
    if values.shape[0] != 3:
        return 0.0
    a, b, c = (float(v) for v in values)
    denom = a - 2 * b + c
    if denom >= 0:
        return 0.0
    return float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5))


@dataclass(frozen=True, slots=True)
class PatchFit:
    """Result of :func:`register_similarity`."""

    matrix: np.ndarray
    """2x3 matrix, template frame -> image frame."""
    correlation: float
    """Normalised cross-correlation of template and warped image over the mask."""
    covariance: np.ndarray
    """Covariance of the parameter increments (rotation rad, [scale], tx, ty) in the
    template frame, corrected for the correlation of neighbouring pixels."""
    valid_fraction: float
    """Fraction of the mask that fell inside the image."""
    iterations: int
    centre: np.ndarray
    """Centre of rotation of the parameters (mask centroid), template frame."""


def register_similarity(
    template: np.ndarray,
    mask: np.ndarray,
    image: np.ndarray,
    initial: np.ndarray,
    *,
    estimate_scale: bool = False,
    max_iterations: int = 60,
    tolerance: float = 1e-4,
    smoothing: float = 1.0,
    robust: bool = True,
    image_smoothed: bool = False,
) -> PatchFit:
    """Rigid (+ optional isotropic scale) registration of a masked patch, sub-pixel.

    Parameters
    ----------
    template : ndarray of shape (h, w), float32
        The patch (normalised intensities).
    mask : ndarray of shape (h, w), bool
        Pixels of the patch that take part (the body's outline).
    image : ndarray of shape (H, W), float32
        The image the patch is sought in (normalised the same way).
    initial : ndarray of shape (2, 3)
        Starting transform, template frame -> image frame.
    estimate_scale : bool
        Also estimate an isotropic scale; otherwise the scale of ``initial`` is kept.
    max_iterations, tolerance : int, float
        Stop when the update moves every mask pixel less than ``tolerance`` pixels.
    smoothing : float
        Gaussian sigma (pixels) applied to both images before matching.
    robust : bool
        Down-weight pixels with large residuals (Huber, k = 1.345 robust SDs),
        so that structures overlying the body that move differently pull less.
    image_smoothed : bool
        ``image`` is already smoothed with ``smoothing`` (a caller registering
        many patches in one image blurs it once instead of at every call).

    Returns
    -------
    PatchFit

    Notes
    -----
    Inverse-compositional Gauss-Newton (Baker & Matthews, IJCV 2004) on the
    zero-mean, unit-norm intensities over the mask, which maximises the
    enhanced correlation coefficient (Evangelidis & Psarakis, PAMI 2008).
    Parameters: rotation about the patch centre, (log-)scale, translation.
    The covariance is ``s2 * inv(H) * k`` with the residual variance ``s2`` and
    ``k = 4 pi sigma^2`` the area over which smoothed residuals are correlated.

    Cost: per iteration one ``warpAffine`` of the mask's bounding box and a
    dozen float32 operations on the mask pixels (the 3x3 or 4x4 system is
    solved in float64); the per-pixel check that the warped mask lies on the
    image runs only when the box's corners do not.  On the poses of tracking
    the float32 arithmetic moves the result by at most 3e-5 px from float64.
    """
    tmpl = cv2.GaussianBlur(np.asarray(template, np.float32), (0, 0), smoothing)
    img = np.asarray(image, np.float32)
    if not image_smoothed:
        img = cv2.GaussianBlur(img, (0, 0), smoothing)
    ys, xs = np.nonzero(mask)
    if xs.size < 32:
        raise ValueError("mask: fewer than 32 pixels to register")
    # Only the mask's bounding box is warped at each iteration; ``flat`` indexes
    # the mask pixels in it.
    bx0, by0 = int(xs.min()), int(ys.min())
    bw, bh = int(xs.max()) - bx0 + 1, int(ys.max()) - by0 + 1
    flat = (ys - by0) * bw + (xs - bx0)
    box = np.array([[bx0, by0], [bx0 + bw - 1, by0], [bx0, by0 + bh - 1], [bx0 + bw - 1, by0 + bh - 1]], float)
    grad_box = (slice(max(by0 - 1, 0), by0 + bh + 1), slice(max(bx0 - 1, 0), bx0 + bw + 1))
    gx = cv2.Sobel(tmpl, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8)[grad_box]
    gy = cv2.Sobel(tmpl, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8)[grad_box]
    gflat = (ys - grad_box[0].start) * gx.shape[1] + (xs - grad_box[1].start)
    centre = np.array([xs.mean(), ys.mean()])
    xc, yc = xs - centre[0], ys - centre[1]
    t = tmpl[ys, xs].astype(np.float64)
    t_mean, t_std = t.mean(), t.std() + 1e-9
    t_hat = (t - t_mean) / t_std
    gxv, gyv = gx.ravel()[gflat] / t_std, gy.ravel()[gflat] / t_std
    columns = [gyv * xc - gxv * yc]  # rotation
    if estimate_scale:
        columns.append(gxv * xc + gyv * yc)  # log-scale
    columns += [gxv, gyv]
    steepest = np.stack(columns).astype(np.float32)  # (P, N): rows weighted in place cheaply
    n_params = steepest.shape[0]
    n_pixels = xs.size
    # the template's normalised intensities when every mask pixel falls on the image
    t_hat = t_hat.astype(np.float32)
    t_all = t_hat - t_hat.mean()
    t_all /= np.linalg.norm(t_all) / np.sqrt(n_pixels) + 1e-12
    all_valid = np.ones(n_pixels, bool)
    radius = np.sqrt(np.mean(xc**2 + yc**2))
    matrix = np.asarray(initial, dtype=np.float64).copy()
    rows, cols = img.shape
    valid = all_valid
    iterations = 0
    correlation = -1.0
    residual_var = 1.0
    hessian = steepest @ steepest.T
    best: tuple | None = None  # (correlation, matrix, hessian, residual_var, valid) of the best pose
    stalled = 0
    converged = False
    for iterations in range(1, max_iterations + 1):  # noqa: B007 - iterations reported
        boxed = matrix.copy()
        boxed[:, 2] += matrix[:, 0] * bx0 + matrix[:, 1] * by0
        warped = cv2.warpAffine(
            img, boxed, (bw, bh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        i = warped.ravel()[flat]
        # mask pixels whose warped position falls on the image (nearest pixel);
        # all of them when the box's corners do (an affine map keeps the box convex)
        uv = np.rint(box @ matrix[:, :2].T + matrix[:, 2])
        if uv.min() >= 0 and uv[:, 0].max() <= cols - 1 and uv[:, 1].max() <= rows - 1:
            valid, sd, tv = all_valid, steepest, t_all
            i_mean = i.mean()
            centred = i - i_mean
            i_hat = centred / (np.sqrt(centred @ centred / n_pixels) + 1e-9)
            iv_hat = i_hat
        else:
            u = np.rint(matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2])
            v = np.rint(matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2])
            valid = (u >= 0) & (u <= cols - 1) & (v >= 0) & (v <= rows - 1)
            if valid.sum() < 32:
                break
            iv = i[valid]
            i_hat = (i - iv.mean()) / (iv.std() + 1e-9)
            iv_hat = i_hat[valid]
            tv = t_hat[valid] - t_hat[valid].mean()
            tv /= np.linalg.norm(tv) / np.sqrt(tv.size) + 1e-12
            sd = steepest[:, valid]
        correlation = float(tv @ iv_hat) / tv.size
        # A pose that stops improving the correlation for _STALL iterations
        # (a wrong start circling, not converging) ends the search; the best
        # pose seen is returned.
        if best is None or correlation > best[0] + 1e-5:
            stalled = 0
        else:
            stalled += 1
            if stalled >= _STALL:
                break
        # least-squares optimal gain, as in ECC: compare t_hat with i_hat scaled
        error = iv_hat - (t_hat if valid is all_valid else t_hat[valid])
        if robust:
            # Huber weights: pixels that do not move with the body (overlying
            # pelvis, bowel gas, a neighbour's osteophyte) count less
            magnitude = np.abs(error)
            spread = 1.4826 * _median(magnitude) + 1e-6
            weight = np.minimum(1.0, _HUBER_K * spread / (magnitude + 1e-12))
        else:
            weight = np.ones_like(error)
        weighted = sd * weight
        hessian = (weighted @ sd.T).astype(np.float64)
        residual_var = float(weight @ (error * error) / weight.sum())
        if best is None or correlation > best[0]:
            best = (correlation, matrix.copy(), hessian, residual_var, valid)
        try:
            delta = np.linalg.solve(hessian, weighted @ error)
        except np.linalg.LinAlgError:
            break
        # incremental warp in the centred template frame, then W <- W o dW^-1
        angle = float(delta[0])
        log_scale = float(delta[1]) if estimate_scale else 0.0
        shift = delta[-2:]
        matrix = _compose_inverse_increment(matrix, angle, log_scale, centre, shift)
        motion = np.hypot(*shift) + radius * (abs(angle) + abs(log_scale))
        if motion < tolerance:
            converged = True
            break
    if not converged and best is not None and best[0] > correlation:
        correlation, matrix, hessian, residual_var, valid = best
    k = 4.0 * np.pi * max(smoothing, 0.5) ** 2
    try:
        covariance = residual_var * np.linalg.inv(hessian) * k
    except np.linalg.LinAlgError:
        covariance = np.full((n_params, n_params), np.inf)
    return PatchFit(matrix, correlation, covariance, float(valid.mean()), iterations, centre)


def _median(values: np.ndarray) -> float:
    """``np.median`` of a 1-d array (the same two middle values), without its overhead."""
    n = values.size
    half = n // 2
    if n % 2:
        return float(np.partition(values, half)[half])
    low, high = np.partition(values, (half - 1, half))[half - 1 : half + 1]
    return float((low + high) / 2)


def _compose_inverse_increment(
    matrix: np.ndarray, angle: float, log_scale: float, centre: np.ndarray, shift: np.ndarray
) -> np.ndarray:
    """``compose(matrix, invert(similarity_matrix(exp(log_scale), angle, centre, centre + shift)))``.

    The inverse-compositional update of :func:`register_similarity`, in plain
    floats (a 2x3 product costs less this way than through numpy's calls).
    """
    scale = np.exp(-log_scale)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    cx, cy = float(centre[0]), float(centre[1])
    px, py = cx + float(shift[0]), cy + float(shift[1])
    # inverse of x -> p + S R (x - centre): y -> centre + R^T S^-1 (y - p), linear [[c, s], [-s, c]]
    tx, ty = cx - (c * px + s * py), cy - (-s * px + c * py)
    (a, b, e), (d, f, g) = matrix.tolist()
    return np.array(
        [
            [a * c - b * s, a * s + b * c, a * tx + b * ty + e],
            [d * c - f * s, d * s + f * c, d * tx + f * ty + g],
        ]
    )
