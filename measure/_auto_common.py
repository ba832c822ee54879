"""Shared pieces of the automatic landmark methods (tracking, refinement, detection).

Image preparation that is robust to exposure and window differences, body
outlines built from the corners, input checks and the falsy failure value.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np

__all__ = [
    "Cancelled",
    "Checkpoint",
    "LandmarkFailure",
    "as_image",
    "as_landmarks",
    "at_checkpoint",
    "body_outlines",
    "endplate_depth_px",
    "local_normalise",
    "nan_tolerant",
    "wide_gaussian_blur",
]

_F = TypeVar("_F", bound=Callable)


def nan_tolerant(func: _F) -> _F:
    """Silence numpy's all-NaN-slice warnings inside ``func``.

    Absent bodies and S1's missing corners are NaN by design; reductions over
    them are expected to give NaN, which the code then handles explicitly.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"(Mean of empty slice|All-NaN slice encountered)", RuntimeWarning)
            warnings.filterwarnings("ignore", r"(invalid value|divide by zero)", RuntimeWarning)
            with np.errstate(invalid="ignore", divide="ignore"):
                return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


Checkpoint = Callable[[float], None]
"""A callable given the fraction of the work done, called between bodies (and
stages) by the automatic methods; it stops the method by raising (usually
:class:`Cancelled`).  Used by the viewer to show progress and cancel a run."""


class Cancelled(Exception):
    """Raised by a :data:`Checkpoint` to stop an automatic method; nothing is returned."""


def at_checkpoint(checkpoint: Checkpoint | None, fraction: float) -> None:
    """Call ``checkpoint(fraction)`` when one is given (it may raise :class:`Cancelled`)."""
    if checkpoint is not None:
        checkpoint(float(min(max(fraction, 0.0), 1.0)))


@dataclass(frozen=True, slots=True)
class LandmarkFailure:
    """An automatic landmark method that could not give a trustworthy answer.

    It is falsy, so callers can write ``if not result: print(result.reason)``.

    Parameters
    ----------
    reason : str
        One line saying what failed and why (e.g. ``"not found: no vertebral
        body pattern in the image"``).
    """

    reason: str

    def __bool__(self) -> bool:
        return False


def as_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Check a 2-D greyscale image and return it as float32.

    Raises
    ------
    ValueError
        Naming ``name`` when the array is not 2-D, too small or not finite.
    """
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[..., :3].mean(axis=2)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D greyscale image, got shape {array.shape}")
    if min(array.shape) < 16:
        raise ValueError(f"{name}: image too small ({array.shape[1]}x{array.shape[0]} pixels)")
    out = array.astype(np.float32, copy=False)
    if not np.all(np.isfinite(out)):
        out = np.nan_to_num(out, nan=float(np.nanmedian(out)), posinf=0.0, neginf=0.0)
    return out


def as_landmarks(landmarks: np.ndarray, name: str = "landmarks") -> np.ndarray:
    """Check landmarks of shape ``(V, 4, 2)`` (pixels, NaN = absent) and return float64."""
    array = np.asarray(landmarks, dtype=np.float64)
    if array.ndim != 3 or array.shape[1:] != (4, 2):
        raise ValueError(f"{name}: expected shape (V, 4, 2), got {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name}: no bodies")
    return array


def local_normalise(image: np.ndarray, sigma: float, *, wide_blur: bool = False) -> np.ndarray:
    """Locally zero-mean, unit-variance intensities.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        Any greyscale image.
    sigma : float
        Standard deviation of the Gaussian neighbourhood, pixels.
    wide_blur : bool
        Blur with :func:`wide_gaussian_blur` (a Gaussian wider than 12 pixels
        computed at half resolution: 5 times less CPU at 22 pixels, values
        within 0.35 % of the direct blur).

    Returns
    -------
    ndarray of shape (H, W), float32
        ``(I - G*I) / sqrt(G*(I - G*I)^2 + eps)``, clipped to ``[-4, 4]``.

    Notes
    -----
    Cancels any smooth change of offset and gain (exposure, window level and
    width, heel effect), so two films of one spine compare pixel by pixel.
    """
    img = np.asarray(image, dtype=np.float32)
    sigma = float(max(sigma, 0.5))
    if wide_blur:
        mean = wide_gaussian_blur(img, sigma)
        centred = img - mean
        var = wide_gaussian_blur(centred * centred, sigma)
    else:
        mean = cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        centred = img - mean
        var = cv2.GaussianBlur(centred * centred, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    scale = float(np.sqrt(np.median(var))) if np.any(var > 0) else 1.0
    eps = (0.05 * scale) ** 2 + 1e-12
    out = centred / np.sqrt(var + eps)
    return np.clip(out, -4.0, 4.0, out=out)


_DIRECT_BLUR_SIGMA = 12.0  # pixels; wider Gaussians are computed at half resolution


def wide_gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (reflected border) that computes wide kernels at half resolution.

    Parameters
    ----------
    image : ndarray of shape (H, W), float32
    sigma : float
        Standard deviation, pixels.

    Returns
    -------
    ndarray of shape (H, W), float32

    Notes
    -----
    Up to ``sigma`` = 12 px this is ``cv2.GaussianBlur``.  Wider: 2x2 area
    averaging, the blur at half resolution with ``sigma' = sqrt(sigma^2 -
    0.92) / 2`` (the averaging box adds a variance of 0.25 px^2 and the linear
    interpolation back about 0.67 px^2), recursively, and linear interpolation
    to full resolution with the pixel-centre convention kept.  A Gaussian this
    wide passes almost nothing near the half-resolution Nyquist frequency, so
    the result differs from the direct blur mainly by the interpolation error:
    on a test film with sharp steps at most 0.35 % of the image's standard
    deviation, 0.05 % on average (``tests/measure/test_auto_common.py``).  The
    direct blur's cost grows with ``sigma`` (a kernel of ``8 sigma + 1`` taps
    per axis); this one's does not.
    """
    img = np.asarray(image, dtype=np.float32)
    if sigma <= _DIRECT_BLUR_SIGMA or min(img.shape) < 8:
        return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    rows, cols = img.shape
    even = cv2.copyMakeBorder(img, 0, rows % 2, 0, cols % 2, cv2.BORDER_REFLECT)
    half = cv2.resize(even, (even.shape[1] // 2, even.shape[0] // 2), interpolation=cv2.INTER_AREA)
    blurred = wide_gaussian_blur(half, float(np.sqrt(sigma**2 - 0.92)) / 2)
    full = cv2.resize(blurred, (even.shape[1], even.shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(full[:rows, :cols])


def endplate_depth_px(landmarks: np.ndarray) -> np.ndarray:
    """Mean of the superior and inferior endplate depths per body, pixels, shape (V,).

    S1 (inferior corners NaN) uses its superior endplate only.
    """
    sup = np.linalg.norm(landmarks[:, 0] - landmarks[:, 1], axis=-1)
    inf = np.linalg.norm(landmarks[:, 3] - landmarks[:, 2], axis=-1)
    return np.where(np.isfinite(inf), (sup + np.nan_to_num(inf)) / 2, sup)


def body_outlines(landmarks: np.ndarray, sacrum_height: float = 0.7) -> np.ndarray:
    """Quadrilateral outline of every body, with a pseudo-outline for S1.

    Parameters
    ----------
    landmarks : ndarray of shape (V, 4, 2)
        Corners ``AS, PS, PI, AI`` in pixels; a body with NaN inferior corners
        (S1) gets them from its superior endplate.
    sacrum_height : float
        Height of the S1 pseudo-outline as a fraction of its endplate depth.

    Returns
    -------
    ndarray of shape (V, 4, 2)
        Outlines; a body missing a superior corner stays NaN.

    Notes
    -----
    The inferior corners of S1 are placed on the side away from the body above
    (or, for a lone body, along the normal that makes the outline ``AS, PS, PI,
    AI`` turn the same way as a regular body with the same facing).
    """
    out = np.array(landmarks, dtype=np.float64, copy=True)
    missing = ~np.all(np.isfinite(out[:, 2:]), axis=(1, 2)) & np.all(
        np.isfinite(out[:, :2]), axis=(1, 2)
    )
    if not np.any(missing):
        return out
    e1 = out[:, 0] - out[:, 1]  # PS -> AS
    depth = np.linalg.norm(e1, axis=-1, keepdims=True)
    normal = np.stack([-e1[:, 1], e1[:, 0]], axis=-1) / np.maximum(depth, 1e-9)
    centres = np.nanmean(out, axis=1)
    sup_mid = (out[:, 0] + out[:, 1]) / 2
    idx = np.flatnonzero(missing)
    for i in idx:  # at most one or two bodies: S1 (and a transitional level)
        above = i - 1
        if above >= 0 and np.all(np.isfinite(centres[above])):
            towards_above = centres[above] - sup_mid[i]
            sign = -np.sign(np.dot(normal[i], towards_above)) or 1.0
        else:
            sign = 1.0
        down = sign * normal[i] * depth[i] * sacrum_height
        out[i, 2] = out[i, 1] + down
        out[i, 3] = out[i, 0] + down
    return out
