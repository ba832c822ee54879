"""Disc and sacrum evidence along the column: intensity profiles through the bodies.

Labels are counted from the sacrum, so everything hangs on which dark band
is the L5-S1 disc.  The profile of each body is sampled along its own down
axis (perpendicular to its endplates) from its centre, through the disc below
and on into the next bone, averaged across the middle 40 % of the endplate, on
a copy of the film scaled so that a body is ``PROFILE_DEPTH`` pixels deep and
locally normalised (exposure and window cancel).  A disc is a dark band between
two bright endplates; its *prominence* is how much darker it is than the lower
of the two bright sides.  A degenerate narrow disc is thin but still dark
(no bone crosses it); the fused S1-S2 disc of the sacrum leaves at most a faint
band (bone on both sides and across it).  Prominences are compared with the
column's own discs, so they are free of units.
"""

from __future__ import annotations

import cv2
import numpy as np

from measure._auto_common import local_normalise
from measure._registration import level_matrix, resample

__all__ = ["PROFILE_DEPTH", "ColumnProfiles", "column_profiles"]

PROFILE_DEPTH = 128  # pixels per endplate depth for the profiles (a 1 mm cortex is ~3 px)
_STEP = 0.01  # profile step, fraction of the depth
_S = np.arange(-0.1, 1.9, _STEP)  # from the body centre, fractions of the depth
_ACROSS = np.linspace(-0.2, 0.2, 9)
_WINDOW = 0.22  # bright sides sought this far (depths) either side of a dark point


class ColumnProfiles:
    """Profiles below each body of a column and the bands found in them.

    Attributes
    ----------
    s : ndarray of shape (S,)
        Positions along the down axis from the body centre, fractions of the depth.
    profiles : ndarray of shape (N, S)
        Normalised intensity (NaN off the film).
    prominence : ndarray of shape (N, S)
        Band prominence at each position (0 where not a local dark band).
    """

    def __init__(self, s: np.ndarray, profiles: np.ndarray) -> None:
        self.s = s
        self.profiles = profiles
        self.prominence = _prominence(profiles, round(_WINDOW / _STEP))

    def best_band(self, start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Strongest band of each body between ``start`` and ``stop`` (depths from the centre).

        Returns
        -------
        prominence, position : ndarray of shape (N,)
            NaN when part of the window is off the film.
        """
        start = np.broadcast_to(np.asarray(start, float), (self.profiles.shape[0],))
        stop = np.broadcast_to(np.asarray(stop, float), (self.profiles.shape[0],))
        inside = (self.s[None, :] >= start[:, None]) & (self.s[None, :] <= stop[:, None])
        prom = np.where(inside, self.prominence, -np.inf)
        k = np.argmax(prom, axis=1)
        best = prom[np.arange(len(k)), k]
        seen = np.all(np.isfinite(self.profiles) | ~inside, axis=1) & np.isfinite(best)
        return np.where(seen, best, np.nan), np.where(seen, self.s[k], np.nan)

    def peak(self, start: float, stop: float) -> tuple[np.ndarray, np.ndarray]:
        """Brightest value of each profile between ``start`` and ``stop`` (depths), and where.

        Returns
        -------
        value, position : ndarray of shape (N,)
        """
        inside = (self.s >= start) & (self.s <= stop)
        values = np.where(inside[None, :] & np.isfinite(self.profiles), self.profiles, -np.inf)
        k = np.argmax(values, axis=1)
        best = values[np.arange(len(k)), k]
        return np.where(np.isfinite(best), best, np.nan), self.s[k]

    def seen_until(self) -> np.ndarray:
        """How far down (depths from the centre) each profile stays on the film, shape (N,)."""
        off = ~np.isfinite(self.profiles) & (self.s[None, :] > 0)
        first = np.where(off.any(axis=1), np.argmax(off, axis=1), len(self.s) - 1)
        return self.s[first]


def _prominence(profiles: np.ndarray, half: int) -> np.ndarray:
    """Per position: min(max over the ``half`` steps before, max over those after) - value,
    where the position is a local minimum; 0 elsewhere."""
    filled = np.where(np.isfinite(profiles), profiles, -np.inf)
    padded = np.pad(filled, ((0, 0), (half, half)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, half + 1, axis=1)  # (N, S + half, half + 1)
    n = filled.shape[1]
    left = windows[:, :n].max(axis=2)  # [i - half, i]
    right = windows[:, half : half + n].max(axis=2)  # [i, i + half]
    local_min = np.zeros_like(filled, dtype=bool)
    local_min[:, 1:-1] = (filled[:, 1:-1] <= filled[:, :-2]) & (filled[:, 1:-1] <= filled[:, 2:])
    with np.errstate(invalid="ignore"):
        prom = np.minimum(left, right) - filled
    ok = local_min & np.isfinite(profiles) & np.isfinite(prom)
    return np.where(ok, prom, 0.0)


def column_profiles(
    image: np.ndarray, centres: np.ndarray, downs: np.ndarray, depth: float
) -> ColumnProfiles:
    """Profiles below bodies of a column on a full-resolution film.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The film, bone bright.
    centres : ndarray of shape (N, 2)
        Body centres, full-resolution pixels.
    downs : ndarray of shape (N, 2)
        Unit vectors perpendicular to each body's endplates, towards the feet.
    depth : float
        Endplate depth, full-resolution pixels.

    Returns
    -------
    ColumnProfiles
    """
    f = min(1.0, PROFILE_DEPTH / depth)
    m = level_matrix(f)
    c = centres @ m[:, :2].T + m[:, 2]
    d = depth * f
    across = np.stack([-downs[:, 1], downs[:, 0]], axis=1)
    pts = (
        c[:, None, None, :]
        + (_S * d)[None, :, None, None] * downs[:, None, None, :]
        + (_ACROSS * d)[None, None, :, None] * across[:, None, None, :]
    )  # (N, S, A, 2)
    # only the column's neighbourhood is normalised (3 sigma around the samples): the
    # wide Gaussian over the whole film took most of the detection's time
    sigma = 0.5 * d
    img = np.asarray(image)
    lo = np.floor((np.nanmin(pts.reshape(-1, 2), axis=0) - 3 * sigma) / f).astype(int)
    hi = np.ceil((np.nanmax(pts.reshape(-1, 2), axis=0) + 3 * sigma) / f).astype(int)
    x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
    x1, y1 = min(int(hi[0]), img.shape[1]), min(int(hi[1]), img.shape[0])
    if x1 - x0 < 8 or y1 - y0 < 8:
        x0, y0, x1, y1 = 0, 0, img.shape[1], img.shape[0]
    crop = img[y0:y1, x0:x1]
    small = resample(crop, f)
    norm = _coarse_normalise(small, sigma)
    pts = pts - (np.array([x0, y0]) @ m[:, :2].T)  # the crop's origin, at the profile scale
    flat = pts.reshape(-1, 2).astype(np.float32)
    values = cv2.remap(
        norm, flat[:, 0].reshape(1, -1), flat[:, 1].reshape(1, -1), cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"),
    ).reshape(pts.shape[:3])  # fmt: skip
    with np.errstate(invalid="ignore"):
        off = np.any(~np.isfinite(values), axis=2)
        prof = np.where(off, np.nan, np.mean(np.where(np.isfinite(values), values, 0.0), axis=2))
    prof = _smooth_rows(prof, 1.0)
    return ColumnProfiles(_S.copy(), prof)


def _smooth_rows(prof: np.ndarray, sigma: float) -> np.ndarray:
    finite = np.isfinite(prof)
    filled = np.where(finite, prof, 0.0).astype(np.float32)
    weight = finite.astype(np.float32)
    k = int(np.ceil(3 * sigma))
    kernel = cv2.getGaussianKernel(2 * k + 1, sigma).astype(np.float32)
    num = cv2.filter2D(filled, -1, kernel.T, borderType=cv2.BORDER_REPLICATE)
    den = cv2.filter2D(weight, -1, kernel.T, borderType=cv2.BORDER_REPLICATE)
    out = num / np.maximum(den, 1e-6)
    return np.where(finite, out, np.nan)


def _coarse_normalise(image: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`measure._auto_common.local_normalise` with the wide local mean and
    variance computed on a copy shrunk so that ``sigma`` is 8 pixels (they are
    smooth at that scale), then enlarged back; the fine detail stays."""
    k = sigma / 8.0
    if k < 2.0:
        return local_normalise(image, sigma)
    h, w = image.shape
    size = (max(round(w / k), 1), max(round(h / k), 1))

    def smooth(values: np.ndarray) -> np.ndarray:
        shrunk = cv2.resize(values, size, interpolation=cv2.INTER_AREA)
        blurred = cv2.GaussianBlur(shrunk, (0, 0), 8.0, borderType=cv2.BORDER_REFLECT)
        return cv2.resize(blurred, (w, h), interpolation=cv2.INTER_LINEAR)

    centred = image - smooth(image)
    var = smooth(centred * centred)
    scale = float(np.sqrt(np.median(var))) if np.any(var > 0) else 1.0
    eps = (0.05 * scale) ** 2 + 1e-12
    out = centred / np.sqrt(var + eps)
    return np.clip(out, -4.0, 4.0, out=out)
