"""Registration kernels of tracking (measure/_registration.py) against independent references."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from measure._registration import (
    _masked_ncc,
    _median,
    apply_matrix,
    coarse_candidates,
    register_similarity,
    similarity_matrix,
)


def _texture(shape: tuple[int, int], seed: int, sigma: float = 2.0) -> np.ndarray:
    """Smooth random texture with unit variance, float32."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.normal(size=shape).astype(np.float32), (0, 0), sigma)
    return (img / img.std()).astype(np.float32)


def _quad_mask(shape: tuple[int, int], points: list[list[int]]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.array(points, np.int32)], 1)
    return mask


def test_masked_ncc_equals_opencv_masked_mode():
    """Three unmasked correlations give OpenCV's masked TM_CCOEFF_NORMED wherever it is defined."""
    image = _texture((120, 100), 1)
    template = _texture((50, 40), 2)
    image[30:80, 45:85] = 0.7 * template + 0.3 * image[30:80, 45:85]  # one true match, top-left (45, 30)
    mask = _quad_mask(template.shape, [[4, 2], [36, 9], [33, 47], [2, 44]])
    padded = cv2.copyMakeBorder(image, 50, 50, 40, 40, cv2.BORDER_CONSTANT, value=0.0)
    reference = cv2.matchTemplate(padded, template, cv2.TM_CCOEFF_NORMED, mask=mask)
    ours = _masked_ncc(padded, padded * padded, template, mask)
    assert ours.shape == reference.shape
    # where at least a tenth of the mask lies on the image the two agree to float32 rounding
    on_image = cv2.matchTemplate(
        cv2.copyMakeBorder(np.ones_like(image), 50, 50, 40, 40, cv2.BORDER_CONSTANT, value=0.0),
        mask.astype(np.float32), cv2.TM_CCORR,
    )  # fmt: skip
    defined = on_image > 0.1 * mask.sum()
    assert defined.sum() > 10000
    assert np.max(np.abs(ours[defined] - reference[defined])) < 1e-4
    peak = np.unravel_index(np.argmax(np.where(defined, ours, -1.0)), ours.shape)
    assert (int(peak[0]) - 50, int(peak[1]) - 40) == (30, 45)
    assert ours[peak] > 0.9
    # wholly on the zero padding: no correlation, never a match
    assert np.all(ours[on_image < 0.5] == 0.0)


def test_coarse_candidates_find_a_rotated_scaled_copy():
    """A template rotated by 6° and scaled by 1.1 into the search image is found there."""
    source = _texture((160, 160), 3, sigma=2.5)
    mask = _quad_mask(source.shape, [[50, 55], [110, 50], [112, 105], [48, 110]])
    centre = np.array([80.0, 80.0])
    truth = similarity_matrix(1.1, np.deg2rad(6.0), centre, np.array([95.0, 70.0]))
    search = cv2.warpAffine(source, truth, (190, 170), flags=cv2.INTER_LINEAR)
    found = coarse_candidates(
        source, mask, centre, search, np.deg2rad(np.arange(-12.0, 12.1, 3.0)), np.array([1.0, 1.1, 1.2])
    )
    best = found[0]
    assert best.angle_rad == pytest.approx(np.deg2rad(6.0))
    assert best.scale == pytest.approx(1.1)
    assert best.score > 0.95
    assert np.linalg.norm(apply_matrix(best.matrix, centre) - [95.0, 70.0]) < 0.6
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)


@pytest.mark.parametrize("off_edge", [False, True])
def test_register_similarity_recovers_a_known_pose(off_edge):
    """Sub-pixel pose of a patch moved by a known similarity, also when part of it leaves the image.

    ``off_edge`` puts a quarter of the patch outside the image, so that the per-pixel
    validity path (not the whole-box shortcut) is the one exercised.
    """
    big = _texture((260, 260), 4, sigma=3.0)
    template = big[60:180, 60:180].copy()
    mask = _quad_mask(template.shape, [[20, 22], [100, 18], [98, 96], [24, 100]]).astype(bool)
    centre = np.array([60.0, 60.0])
    target = np.array([70.3, 64.6]) if not off_edge else np.array([15.2, 64.6])
    truth = similarity_matrix(1.0, np.deg2rad(4.0), centre, target)
    # image = template moved by ``truth`` (inverse map: image -> template)
    image = cv2.warpAffine(
        big, np.hstack([np.eye(2), [[60.0], [60.0]]]) @ np.vstack([cv2.invertAffineTransform(truth), [0, 0, 1]]),
        (150, 140), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT,
    )  # fmt: skip
    start = similarity_matrix(1.0, np.deg2rad(1.0), centre, target + np.array([1.5, -1.2]))
    fit = register_similarity(template, mask, image, start)
    corners = np.array([[20.0, 22.0], [100.0, 18.0], [98.0, 96.0], [24.0, 100.0]])
    visible = apply_matrix(truth, corners)[:, 0] > 0
    assert (not visible.all()) == off_edge
    assert fit.valid_fraction == pytest.approx(1.0) if not off_edge else 0.5 < fit.valid_fraction < 0.9
    error = np.linalg.norm(apply_matrix(fit.matrix, corners) - apply_matrix(truth, corners), axis=1)
    assert error.max() < 0.1
    assert fit.correlation > 0.98


def test_register_similarity_estimates_scale():
    big = _texture((260, 260), 5, sigma=3.0)
    template = big[60:180, 60:180].copy()
    mask = _quad_mask(template.shape, [[20, 22], [100, 18], [98, 96], [24, 100]]).astype(bool)
    centre = np.array([60.0, 60.0])
    truth = similarity_matrix(1.07, np.deg2rad(-3.0), centre, np.array([75.0, 70.0]))
    image = cv2.warpAffine(
        big, np.hstack([np.eye(2), [[60.0], [60.0]]]) @ np.vstack([cv2.invertAffineTransform(truth), [0, 0, 1]]),
        (160, 150), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT,
    )  # fmt: skip
    fit = register_similarity(
        template, mask, image, similarity_matrix(1.0, 0.0, centre, np.array([74.0, 71.0])), estimate_scale=True
    )
    scale = np.sqrt(abs(np.linalg.det(fit.matrix[:, :2])))
    assert scale == pytest.approx(1.07, abs=0.003)
    assert np.rad2deg(np.arctan2(fit.matrix[1, 0], fit.matrix[0, 0])) == pytest.approx(-3.0, abs=0.1)


@pytest.mark.parametrize("n", [33, 34, 10001, 10002])
def test_median_matches_numpy(n):
    values = np.abs(np.random.default_rng(n).normal(size=n))
    assert _median(values) == np.median(values)
