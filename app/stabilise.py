"""Stabilised comparison of the two films: hold one body still.

For a segment, the lower body's corners on the extension film are mapped onto
the same corners on the flexion film by a rigid (optionally similarity)
transform; warping the extension film with it superimposes the two lower bodies
so that the upper body's motion is what moves.

Coordinates are pixels ``(x, y)`` = (column, row) with the origin at the centre
of the top-left pixel (the convention of OpenCV's ``warpAffine`` as well).
"""

from __future__ import annotations

import numpy as np

__all__ = ["rigid_transform_from_corners", "stabilising_transform", "warp_to"]


def rigid_transform_from_corners(
    source: np.ndarray, target: np.ndarray, *, scale: bool = False
) -> np.ndarray:
    """Least-squares rigid (or similarity) transform taking ``source`` onto ``target``.

    Parameters
    ----------
    source, target : ndarray of shape (..., N, 2), pixels
        Corresponding points; a point NaN in either is ignored.  At least two
        points are needed.
    scale : bool, keyword-only
        Also fit an isotropic scale (for films of different magnification).

    Returns
    -------
    ndarray of shape (..., 3, 3)
        Homogeneous matrix ``M`` with ``target ≈ M @ [x, y, 1]``; all NaN
        where fewer than two points are usable.

    Notes
    -----
    The closed-form 2-D Procrustes solution (Umeyama 1991): with centred point
    sets ``a`` (source) and ``b`` (target), the rotation angle is
    ``atan2(sum(a_x b_y - a_y b_x), sum(a_x b_x + a_y b_y))`` and the scale
    ``sqrt(S_xx^2 + S_xy^2) / sum |a|^2``.

    References
    ----------
    Umeyama S. Least-squares estimation of transformation parameters between two
    point patterns. IEEE TPAMI 1991;13:376-380.

    Examples
    --------
    >>> src = np.array([[0., 0], [10, 0], [10, 5]])
    >>> theta = np.radians(30)
    >>> rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    >>> m = rigid_transform_from_corners(src, src @ rot.T + [3, 4])
    >>> np.round(m, 6).tolist()
    [[0.866025, -0.5, 3.0], [0.5, 0.866025, 4.0], [0.0, 0.0, 1.0]]
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if src.shape[-1] != 2 or dst.shape[-1] != 2:
        raise ValueError(f"source: expected points of shape (..., N, 2), got {src.shape} and {dst.shape}")
    src, dst = np.broadcast_arrays(src, dst)
    valid = np.isfinite(src).all(-1) & np.isfinite(dst).all(-1)  # (..., N)
    w = valid.astype(np.float64)[..., None]
    n = w.sum(axis=-2)  # (..., 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(valid[..., None], src, 0.0)
        d = np.where(valid[..., None], dst, 0.0)
        mu_s = s.sum(-2) / n
        mu_d = d.sum(-2) / n
        a = (s - mu_s[..., None, :]) * w
        b = (d - mu_d[..., None, :]) * w
        sxx = (a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]).sum(-1)
        sxy = (a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]).sum(-1)
        angle = np.arctan2(sxy, sxx)
        k = np.hypot(sxx, sxy) / (a**2).sum((-1, -2)) if scale else np.ones_like(angle)
    c, si = np.cos(angle) * k, np.sin(angle) * k
    out = np.zeros((*src.shape[:-2], 3, 3))
    out[..., 0, 0], out[..., 0, 1] = c, -si
    out[..., 1, 0], out[..., 1, 1] = si, c
    out[..., 0, 2] = mu_d[..., 0] - (c * mu_s[..., 0] - si * mu_s[..., 1])
    out[..., 1, 2] = mu_d[..., 1] - (si * mu_s[..., 0] + c * mu_s[..., 1])
    out[..., 2, 2] = 1.0
    out[n[..., 0] < 2] = np.nan
    return out


def stabilising_transform(
    flexion: np.ndarray, extension: np.ndarray, body: int, *, scale: bool = True
) -> np.ndarray:
    """The transform taking extension pixels onto flexion pixels for one body.

    Parameters
    ----------
    flexion, extension : ndarray of shape (V, 4, 2), pixels
        Landmarks of the two films.
    body : int
        Index of the body held still (the lower body of the segment).
    scale : bool
        Fit an isotropic scale too (different magnification of the films).

    Returns
    -------
    ndarray of shape (3, 3)
        NaN when the body has fewer than two corners on both films.
    """
    return rigid_transform_from_corners(extension[body], flexion[body], scale=scale)


def warp_to(image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample ``image`` into a ``shape`` (rows, columns) frame: ``out(p) = image(M^-1 p)``.

    Parameters
    ----------
    image : ndarray of shape (rows, columns), uint8
    matrix : ndarray of shape (3, 3)
        Image pixels -> output pixels (e.g. :func:`stabilising_transform`).
    shape : tuple of int
        Output ``(rows, columns)``.
    """
    import cv2

    return cv2.warpAffine(
        np.ascontiguousarray(image),
        np.asarray(matrix, dtype=np.float64)[:2],
        (int(shape[1]), int(shape[0])),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def rotation_centre_px(
    lower: np.ndarray,
    upper: np.ndarray,
    centre: np.ndarray,
    spacing_mm: tuple[float, float] | None = None,
) -> np.ndarray:
    """The centre of rotation of a segment as a point on the film.

    Parameters
    ----------
    lower, upper : ndarray of shape (4, 2)
        Corners ``AS, PS, PI, AI`` of the lower and upper body on the film, pixels.
    centre : ndarray of shape (2,)
        ``SegmentalMotion.rotation_centre`` of the segment: fractions of the
        lower body's endplate depth along its superior endplate from ``PS``
        (0) to ``AS`` (1), and perpendicular to it towards the upper body.
    spacing_mm : (float, float), optional
        ``(row, column)`` spacing; the frame is built in mm (square pixels when None).

    Returns
    -------
    ndarray of shape (2,)
        ``(x, y)`` pixels; NaN when the centre is undefined (rotation too small).
    """
    scale = np.array([1.0, 1.0]) if spacing_mm is None else np.array([spacing_mm[1], spacing_mm[0]], float)
    as_, ps = np.asarray(lower[0], float) * scale, np.asarray(lower[1], float) * scale
    e1 = as_ - ps
    depth = float(np.hypot(*e1))
    e1 = e1 / depth
    e2 = np.array([-e1[1], e1[0]])
    towards_upper = np.nanmean(np.asarray(upper, float) * scale, axis=0) - ps
    if np.dot(e2, towards_upper) < 0:
        e2 = -e2
    c = np.asarray(centre, float)
    point_mm = ps + depth * (c[0] * e1 + c[1] * e2)
    return point_mm / scale
