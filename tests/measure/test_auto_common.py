"""Shared image helpers of the landmark methods (measure/_auto_common.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from measure._auto_common import local_normalise, wide_gaussian_blur


def _film_like(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Bright blocks on a smooth gradient with noise: edges, flat parts and a trend."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    img = 100 + 0.2 * x + 0.1 * y
    for _ in range(12):
        r0, c0 = rng.integers(0, rows - 60), rng.integers(0, cols - 60)
        img[r0 : r0 + rng.integers(20, 60), c0 : c0 + rng.integers(20, 60)] += rng.uniform(30, 80)
    return (img + rng.normal(0, 5, shape)).astype(np.float32)


@pytest.mark.parametrize("sigma", [12.5, 14.0, 22.0, 40.0])
@pytest.mark.parametrize("shape", [(300, 240), (301, 247)])
def test_wide_blur_matches_the_direct_gaussian(sigma, shape):
    """Half-resolution blur within 0.4 % of the image's SD of OpenCV's direct blur, away from the border.

    The film has sharp steps of 30-80 grey levels (noise SD 5), the hardest case
    for the linear interpolation back to full resolution.
    """
    img = _film_like(shape, int(sigma))
    direct = cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    wide = wide_gaussian_blur(img, sigma)
    assert wide.shape == img.shape and wide.dtype == np.float32
    inner = (slice(int(2 * sigma), -int(2 * sigma)), slice(int(2 * sigma), -int(2 * sigma)))
    spread = float(img.std())
    assert np.max(np.abs(wide - direct)[inner]) < 4e-3 * spread
    assert np.abs(wide - direct)[inner].mean() < 1e-3 * spread


def test_narrow_blur_is_the_direct_gaussian():
    img = _film_like((200, 180), 1)
    assert np.array_equal(wide_gaussian_blur(img, 12.0), cv2.GaussianBlur(img, (0, 0), 12.0, borderType=cv2.BORDER_REFLECT))


def test_local_normalise_with_wide_blur_is_within_noise_of_the_direct_one():
    img = _film_like((400, 320), 2)
    direct = local_normalise(img, 22.0)
    wide = local_normalise(img, 22.0, wide_blur=True)
    assert np.sqrt(np.mean((wide - direct) ** 2)) < 0.01
    assert np.percentile(np.abs(wide - direct), 99) < 0.03
