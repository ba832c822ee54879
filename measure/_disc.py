"""Disc heights of each segment on one film: anterior and posterior.

The anterior disc height is the distance from the upper body's ``AI`` to the
lower body's ``AS``, the posterior from ``PI`` to ``PS`` (the corner-to-corner
definition of QMA-style reports; measurement.md §1 corners).  In millimetres
when the pixel spacing is known, else in pixels.
"""

from __future__ import annotations

import numpy as np

__all__ = ["disc_heights"]


def disc_heights(landmarks: np.ndarray, spacing_mm: tuple[float, float] | None = None) -> np.ndarray:
    """Anterior and posterior disc height of every segment.

    Parameters
    ----------
    landmarks : ndarray of shape (..., V, 4, 2)
        Corners ``AS, PS, PI, AI`` per body, pixels (``x`` = column, ``y`` = row); NaN absent.
    spacing_mm : (float, float), optional
        ``(row, column)`` spacing in mm; None gives pixels.

    Returns
    -------
    ndarray of shape (..., V-1, 2)
        ``[..., 0]`` anterior (``AI_U`` to ``AS_L``), ``[..., 1]`` posterior
        (``PI_U`` to ``PS_L``), mm (or pixels); NaN where a corner is missing.

    Examples
    --------
    >>> lm = np.array([[[10, 0], [0, 0], [0, 10], [10, 10]], [[10, 14], [0, 12], [0, 22], [10, 22]]], float)
    >>> disc_heights(lm, (0.5, 0.5))
    array([[2., 1.]])
    """
    lm = np.asarray(landmarks, dtype=float)
    if lm.shape[-2:] != (4, 2) or lm.ndim < 3:
        raise ValueError(f"landmarks: expected shape (..., V, 4, 2), got {lm.shape}")
    scale = np.array([1.0, 1.0]) if spacing_mm is None else np.array([spacing_mm[1], spacing_mm[0]], float)
    upper, lower = lm[..., :-1, :, :], lm[..., 1:, :, :]
    ends = np.stack([upper[..., 3, :] - lower[..., 0, :], upper[..., 2, :] - lower[..., 1, :]], axis=-2)
    return np.linalg.norm(ends * scale, axis=-1)
