"""A frontal (AP) lumbar film: the wrong input for lateral detection.

Not a measurement phantom (it has no truth corners): it is the film a user
sends by mistake instead of a lateral, for testing that detection recognises
it and refuses it.  Drawn in the coronal plane, from the same ingredients a
real AP film shows: T11 to L5 as wide bodies with a pair of pedicle rings
each, transverse and spinous processes, discs between them, the sacrum
between the two iliac wings, the twelfth ribs, psoas and flank soft tissue,
noise and a heel-effect gradient.  Seeded; single-threaded like
:func:`app.phantom.make_study`.
"""

from __future__ import annotations

import cv2
import numpy as np

from measure._threads import single_threaded

__all__ = ["make_ap_film"]


def make_ap_film(
    seed: int, *, spacing_mm: float = 0.28, shape: tuple[int, int] = (1152, 922), tilt_deg: float = 0.0
) -> np.ndarray:
    """Render an AP lumbar film.

    Parameters
    ----------
    seed : int
        Same seed, same pixels.
    spacing_mm : float
        Pixel spacing, mm.
    shape : tuple of int
        ``(rows, columns)``.
    tilt_deg : float
        In-plane rotation of the spine (scoliosis-free), degrees.

    Returns
    -------
    ndarray of shape ``shape``, float32
        Bone bright, about 0-4000 (12 bits).
    """
    with single_threaded():
        return _render(np.random.default_rng([seed, 0xA9]), spacing_mm, shape, tilt_deg)


def _render(rng: np.random.Generator, sp: float, shape: tuple[int, int], tilt_deg: float) -> np.ndarray:
    rows, cols = shape
    atten = np.zeros(shape, np.float32)

    def px(points_mm: np.ndarray) -> np.ndarray:
        """mm in the spine frame (x right, y down, origin at L3's centre) -> pixels."""
        a = np.deg2rad(tilt_deg)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        centre = np.array([cols / 2 + rng_offset[0], rows * 0.45 + rng_offset[1]])
        return (np.asarray(points_mm, float) @ rot.T) / sp + centre

    def fill(poly_mm: np.ndarray, value: float, target: np.ndarray = atten) -> None:
        layer = np.zeros(shape, np.float32)
        cv2.fillPoly(layer, [np.round(px(poly_mm) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
        target += value * layer

    def ellipse(cx: float, cy: float, ax: float, ay: float, n: int = 40) -> np.ndarray:
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        return np.column_stack([cx + ax * np.cos(t), cy + ay * np.sin(t)])

    def rounded_box(cx: float, cy: float, half_w: float, half_h: float, waist: float) -> np.ndarray:
        t = np.linspace(0, 1, 12)
        top = np.column_stack([cx - half_w + 2 * half_w * t, cy - half_h + 0.6 * np.sin(np.pi * t)])
        right = np.column_stack([cx + half_w - waist * np.sin(np.pi * t), cy - half_h + 2 * half_h * t])
        bottom = np.column_stack([cx + half_w - 2 * half_w * t, cy + half_h - 0.6 * np.sin(np.pi * t)])
        left = np.column_stack([cx - half_w + waist * np.sin(np.pi * t), cy + half_h - 2 * half_h * t])
        return np.vstack([top, right, bottom, left])

    rng_offset = rng.uniform(-30, 30, 2)
    # soft tissue: the abdomen's outline and both psoas shadows
    fill(ellipse(0, 20, 150 + rng.uniform(-10, 10), 260), 1.0)
    for side in (-1, 1):
        psoas = np.array([[side * 20, -60], [side * 45, 40], [side * 70, 140], [side * 50, 150], [side * 15, -50]])
        fill(psoas, 0.25)
    # bodies T11..L5 (index 2 = L3 at the origin), discs between them
    heights = np.array([24.0, 25.0, 26.0, 27.0, 28.0, 28.0, 27.0])
    widths = np.array([36.0, 38.0, 42.0, 45.0, 48.0, 50.0, 52.0]) * rng.uniform(0.95, 1.05)
    discs = np.array([6.0, 7.0, 8.0, 9.0, 10.0, 10.0, 9.0])
    y = -(heights[:4].sum() + discs[:4].sum()) + heights[4] / 2 - 2 * heights[4]
    centres = []
    for k in range(7):
        cy = y + heights[k] / 2
        centres.append(cy)
        half_w, half_h = widths[k] / 2, heights[k] / 2
        fill(rounded_box(0, cy, half_w, half_h, 2.5), 1.6)  # trabecular body
        fill(rounded_box(0, cy, half_w, half_h, 2.5), 0.9)  # cortex (rim made below)
        fill(rounded_box(0, cy, half_w - 2.0, half_h - 1.5, 2.0), -0.9)
        for side in (-1, 1):  # pedicle rings in the upper half of the body
            fill(ellipse(side * 0.32 * widths[k], cy - 0.15 * heights[k], 5.0, 7.5), 1.2)
            fill(ellipse(side * 0.32 * widths[k], cy - 0.15 * heights[k], 3.0, 5.0), -0.8)
            tp = 25.0 if k >= 2 else 14.0  # transverse processes
            fill(np.array([[side * 0.4 * widths[k], cy - 6], [side * (0.5 * widths[k] + tp), cy - 4],
                           [side * (0.5 * widths[k] + tp), cy + 1], [side * 0.4 * widths[k], cy + 2]]), 0.9)  # fmt: skip
        fill(np.array([[-3.5, cy - 4], [3.5, cy - 4], [2.0, cy + 16], [-2.0, cy + 16]]), 0.8)  # spinous process
        y += heights[k] + discs[k]
    # twelfth ribs from T12
    for side in (-1, 1):
        t = np.linspace(0, 1, 20)
        rib = np.column_stack([side * (20 + 90 * t), centres[1] - 4 + 35 * t**1.3])
        fill(np.vstack([rib + np.array([0.0, -3.0]), rib[::-1] + np.array([0.0, 3.0])]), 0.9)
    # sacrum and iliac wings
    top = y
    sacrum = np.array([[-55, top], [55, top], [12, top + 110], [-12, top + 110]])
    fill(sacrum, 1.4)
    for k in range(4):  # sacral foramina
        for side in (-1, 1):
            fill(ellipse(side * (30 - 5 * k), top + 18 + 22 * k, 4.0, 3.5), -0.7)
    for side in (-1, 1):
        wing = np.array([[side * 50, top - 5], [side * 95, top - 60 - rng.uniform(0, 15)],
                         [side * 150, top - 40], [side * 165, top + 10], [side * 130, top + 80],
                         [side * 60, top + 95]])  # fmt: skip
        fill(wing, 1.3)
        fill(wing * [0.9, 1.0] + [side * 6, 6], -0.5)
    # blur (focal spot), heel effect, log signal, noise
    atten = cv2.GaussianBlur(atten, (0, 0), max(0.4 / sp, 0.6))
    heel = np.linspace(0.9, 1.1, rows, dtype=np.float32)[:, None]
    signal = np.exp(-0.8 * atten) * heel
    image = -np.log(np.maximum(signal, 1e-4))
    image += rng.normal(0.0, 0.02, shape).astype(np.float32)
    lo, hi = np.percentile(image, [0.5, 99.5])
    return (np.clip((image - lo) / (hi - lo), 0, 1) * 4000).astype(np.float32)
