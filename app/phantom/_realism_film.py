"""Film-level realism: cropping, burned-in text, electronic shutter, 8-bit exports.

Applied to the processed "for presentation" pixels (bone bright) after
rendering, so the anatomy and its truth are untouched; only the corners move
with a crop or a downscale, exactly (pixel centres: ``x' = (x + 0.5) f - 0.5``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from app.phantom._realism import Realism

if TYPE_CHECKING:
    from app.phantom._study import PhantomFilm

__all__ = ["encoded_export", "export_8bit", "film_artefacts"]

_L1 = 2  # index of L1 in the truth corners (T11, T12, L1, ...)
_VIEW_TEXT = {"flexion": ("FLEX", "FLEXION", "LAT FLEX"), "extension": ("EXT", "EXTENSION", "LAT EXT")}


def film_artefacts(
    pixels: np.ndarray,
    corners: np.ndarray,
    realism: Realism,
    view: str,
    bits_stored: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop through L1, burn in text, black out a shutter, as ``realism`` asks.

    Parameters
    ----------
    pixels : ndarray of shape (rows, cols), uint16
        Processed film, bone bright.
    corners : ndarray of shape (8, 4, 2)
        True corners, pixels.

    Returns
    -------
    pixels : ndarray of shape (rows', cols), uint16
    corners : ndarray of shape (8, 4, 2)
    """
    pixels = pixels.copy()
    corners = corners.copy()
    u = rng.uniform(size=12)
    if realism.crop_top:
        l1 = corners[_L1]
        top, bottom = float(np.nanmin(l1[:, 1])), float(np.nanmax(l1[:, 1]))
        cut = int(np.clip(round(top + (0.3 + 0.4 * u[0]) * (bottom - top)), 1, pixels.shape[0] - 16))
        pixels = pixels[cut:].copy()
        corners[..., 1] -= cut
    rows, cols = pixels.shape
    top_value = 2**bits_stored - 1
    if realism.shutter:
        # a tighter field: each edge moved in by 2-9 % of the film, black outside
        inset = np.array([cols, cols, rows, rows]) * (0.02 + 0.07 * u[1:5])
        inset[2] *= 0.0 if realism.crop_top else 1.0
        yy, xx = np.mgrid[0:rows, 0:cols]
        outside = (xx < inset[0]) | (xx > cols - 1 - inset[1]) | (yy < inset[2]) | (yy > rows - 1 - inset[3])
        pixels[outside] = 0
    if realism.burned_in_text:
        height = max(rows * (0.018 + 0.012 * u[5]), 7.0)
        scale = height / 22.0
        thick = max(1, round(2.0 * scale))
        texts = [
            (_VIEW_TEXT[view][int(u[6] * 3)], (0.04, 0.06)),
            (f"{int(1 + 27 * u[7]):02d}/{int(1 + 11 * u[8]):02d}/20{int(10 + 15 * u[9])}", (0.04, 0.95)),
            ("STANDING" if u[10] < 0.5 else "ERECT", (0.62, 0.95)),
            ("R" if u[11] < 0.5 else "L", (0.88, 0.07)),
        ]
        mask = np.zeros((rows, cols), np.uint8)  # OpenCV draws text on 8-bit images only
        for text, (fx, fy) in texts:
            cv2.putText(mask, text, (int(fx * cols), int(fy * rows)), cv2.FONT_HERSHEY_SIMPLEX,
                        scale, 255, thick, cv2.LINE_AA)  # fmt: skip
        alpha = mask.astype(np.float32) / 255.0
        pixels = np.round(pixels * (1.0 - alpha) + top_value * alpha).astype(np.uint16)
    return pixels, corners


def export_8bit(film: PhantomFilm, realism: Realism, rng: np.random.Generator) -> PhantomFilm:
    """An 8-bit PNG/JPEG export of the displayed film, downscaled, with no calibration.

    The window is the film's 0.5-99.8th percentile (what a viewer's export of
    the default window gives); the film is shrunk by area averaging to
    ``realism.export_spacing_mm`` (never enlarged).
    """
    img = film.pixels.astype(np.float32)
    if film.photometric == "MONOCHROME1":  # exports are of the displayed image (bone bright)
        img = (2**film.bits_stored - 1) - img
    lo, hi = np.percentile(img[img > 0] if np.any(img > 0) else img, [0.5, 99.8])
    eight = np.clip(np.round((img - lo) / max(hi - lo, 1e-6) * 255.0), 0, 255).astype(np.uint8)
    spacing = film.pixel_spacing_mm[0]
    f = min(1.0, spacing / realism.export_spacing_mm)
    rows, cols = eight.shape
    new_rows, new_cols = max(round(rows * f), 16), max(round(cols * f), 16)
    if (new_rows, new_cols) != (rows, cols):
        eight = cv2.resize(eight, (new_cols, new_rows), interpolation=cv2.INTER_AREA)
    fx, fy = new_cols / cols, new_rows / rows
    corners = film.corners_px.copy()
    corners[..., 0] = (corners[..., 0] + 0.5) * fx - 0.5
    corners[..., 1] = (corners[..., 1] + 0.5) * fy - 0.5
    data = None
    if realism.export == "jpeg":
        quality = int(rng.integers(70, 93))
        ok, buffer = cv2.imencode(".jpg", eight, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("OpenCV could not encode the JPEG export")
        data = buffer.tobytes()
        eight = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE)
    return replace(
        film,
        pixels=eight,
        photometric="MONOCHROME2",
        bits_stored=8,
        pixel_spacing_mm=(spacing / fy, spacing / fx),
        corners_px=corners,
        export=realism.export,
        file_bytes=data,
    )


def encoded_export(film: PhantomFilm) -> bytes:
    """The file of an exported film: its JPEG bytes, or a lossless PNG of its pixels."""
    if film.file_bytes is not None:
        return film.file_bytes
    ok, buffer = cv2.imencode(".png", film.pixels)
    if not ok:
        raise RuntimeError("OpenCV could not encode the PNG export")
    return buffer.tobytes()
