"""Tracking bodies between two films: accuracy against known poses, and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from measure import LandmarkFailure, track_bodies
from tests.measure._synthetic_spine import make_pair


def _corner_error(result, truth: np.ndarray) -> np.ndarray:
    return np.linalg.norm(result.landmarks - truth, axis=-1)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"film_rotation_deg": 12.0, "scale": 1.08},
        {"facing_left": False, "film_rotation_deg": -9.0, "scale": 0.94},
        {"noise": 0.08, "exposure": (0.5, 1.4, 2.0)},
    ],
    ids=["same-setting", "rotated-magnified", "facing-right", "noisy-other-exposure"],
)
def test_tracking_carries_corners_to_true_positions(options):
    fixed, moving = make_pair(11, **options)
    result = track_bodies(fixed.image, fixed.corners, moving.image)
    assert result, getattr(result, "reason", "")
    assert all(reason is None for reason in result.body_failures)
    err = _corner_error(result, moving.corners)
    assert np.nanmax(err) < 0.6  # pixels, bodies 64 px deep
    assert np.nanmedian(err) < 0.3
    expected_scale = options.get("scale", 1.0)
    assert result.scale == pytest.approx(expected_scale, abs=0.01)
    # NaN corners (S1 PI, AI) stay NaN
    assert np.all(np.isnan(result.landmarks[5, 2:]))


def test_tracking_reproduces_body_rotation():
    fixed, moving = make_pair(12, film_rotation_deg=5.0)
    result = track_bodies(fixed.image, fixed.corners, moving.image)
    # truth: rotation of each body's pose between the films
    true = np.degrees(
        np.arctan2(moving.poses[:, 1, 0], moving.poses[:, 0, 0])
        - np.arctan2(fixed.poses[:, 1, 0], fixed.poses[:, 0, 0])
    )
    found = np.degrees(np.arctan2(result.matrices[:, 1, 0], result.matrices[:, 0, 0]))
    np.testing.assert_allclose(found, (true + 180) % 360 - 180, atol=0.3)


def test_tracking_sd_is_of_the_size_of_the_error():
    errors, sds = [], []
    for seed in (21, 22):
        fixed, moving = make_pair(seed, noise=0.12)
        result = track_bodies(fixed.image, fixed.corners, moving.image)
        errors.append(_corner_error(result, moving.corners))
        sds.append(result.corner_sd_px)
    err, sd = np.concatenate(errors).ravel(), np.concatenate(sds).ravel()
    keep = np.isfinite(err)
    # 2-D error of an isotropic per-axis SD s has RMS sqrt(2) s
    ratio = np.sqrt(np.mean(err[keep] ** 2) / 2) / np.sqrt(np.mean(sd[keep] ** 2))
    assert 0.4 < ratio < 2.5
    assert np.all(sd[keep] >= 0.15)


def test_uniform_moving_film_is_refused():
    fixed, moving = make_pair(13)
    result = track_bodies(fixed.image, fixed.corners, np.full_like(moving.image, 7.0))
    assert isinstance(result, LandmarkFailure) and not result
    assert "blank or uniform" in result.reason


def test_landmarks_outside_the_image_are_refused():
    fixed, moving = make_pair(14)
    corners = fixed.corners.copy()
    corners[2, 0] = (fixed.image.shape[1] + 40, 10)
    result = track_bodies(fixed.image, corners, moving.image, levels=list("ABCDEF"))
    assert not result
    assert result.reason.startswith("C: a corner lies outside")


def test_another_image_gives_no_confident_answer():
    fixed, _ = make_pair(15)
    rng = np.random.default_rng(0)
    import cv2

    other = cv2.GaussianBlur(rng.normal(size=fixed.image.shape).astype(np.float32), (0, 0), 6)
    result = track_bodies(fixed.image, fixed.corners, other)
    if result:  # either a failure, or every body rejected
        assert not np.any(result.tracked)
        assert np.all(np.isnan(result.landmarks))
    else:
        assert result.reason.startswith("not found")


def test_body_cut_off_by_the_edge_is_rejected():
    fixed, moving = make_pair(16)
    top = int(np.nanmax(moving.corners[0, :, 1])) - 20  # L1 only partly on the film
    cropped = moving.image[top:]
    result = track_bodies(fixed.image, fixed.corners, cropped)
    assert result
    assert "cut off" in result.body_failures[0]
    assert np.all(np.isnan(result.landmarks[0]))
    truth = moving.corners[1:] - np.array([0, top])
    assert np.nanmax(np.linalg.norm(result.landmarks[1:] - truth, axis=-1)) < 0.6


def test_bad_shape_raises_value_error():
    fixed, moving = make_pair(17)
    with pytest.raises(ValueError, match="fixed_landmarks"):
        track_bodies(fixed.image, fixed.corners[:, :3], moving.image)
