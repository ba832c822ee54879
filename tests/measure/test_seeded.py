"""Corners from one click inside each body (measure.corners_from_seeds) on phantom films."""

from __future__ import annotations

import numpy as np
import pytest

from measure import corners_from_seeds
from measure._auto_common import body_outlines

LEVELS = ("L1", "L2", "L3", "L4", "L5", "S1")


def _film(seed: int, view: str = "flexion", **options):
    from app.phantom import make_study

    study = make_study(seed, scale=0.25, **options)
    film = study.flexion if view == "flexion" else study.extension
    pixels = film.pixels.astype(np.float32)
    image = -pixels if film.photometric == "MONOCHROME1" else pixels
    truth = film.corners_px[2:]  # L1..S1
    return image, truth, film.pixel_spacing_mm[0]


def _clicks(truth: np.ndarray, rng: np.random.Generator, jitter: float = 0.12) -> np.ndarray:
    """A point inside each body: the outline's centre moved by up to ``jitter`` of the depth."""
    centres = body_outlines(truth, sacrum_height=0.6).mean(axis=1)
    depth = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=-1)[:, None]
    return centres + rng.uniform(-jitter, jitter, centres.shape) * depth


@pytest.mark.parametrize(
    ("seed", "view", "options"),
    [
        (7101, "flexion", {}),
        (7102, "extension", {"facing": "right"}),
        (7103, "flexion", {"facing": "right", "rotation_deg": 15.0}),
    ],
)
@pytest.mark.parametrize("ends_only", [False, True])
def test_corners_from_clicks_match_the_phantom_truth(seed, view, options, ends_only):
    image, truth, spacing = _film(seed, view, **options)
    clicks = _clicks(truth, np.random.default_rng(seed))
    if ends_only:
        clicks[1:-1] = np.nan
    result = corners_from_seeds(image, clicks, levels=LEVELS)
    assert result
    assert result.facing == options.get("facing", "left")
    error_mm = np.linalg.norm(result.landmarks - truth, axis=-1) * spacing
    present = np.isfinite(truth[..., 0])
    # every corner on its own body and on the right side (AS anterior): a swapped
    # facing or a one-level shift would be off by a depth (~35 mm) or a pitch
    assert np.all(error_mm[present] < 3.0), np.round(error_mm, 2)
    assert np.median(error_mm[present]) < 1.0
    assert np.all(np.isnan(result.landmarks[-1, 2:]))  # S1: superior corners only
    assert result.refined.all(), result.body_failures
    assert list(result.clicked) == ([True] * 6 if not ends_only else [True, False, False, False, False, True])
    assert np.all(result.corner_sd_px[present] > 0)


def test_given_facing_overrides_the_image_and_swaps_anterior_and_posterior():
    image, truth, _ = _film(7104, "flexion")  # faces left
    clicks = _clicks(truth, np.random.default_rng(1))
    wrong = corners_from_seeds(image, clicks, facing="right", levels=LEVELS)
    assert wrong.facing == "right" and wrong.facing_evidence["given"]
    # the reader's (wrong) facing is obeyed: AS and PS swap places
    err = np.linalg.norm(wrong.landmarks[:5, 0] - truth[:5, 1], axis=-1)
    depth = np.linalg.norm(truth[:5, 0] - truth[:5, 1], axis=-1)
    assert np.all(err < 0.1 * depth)


def test_a_wrong_body_count_between_clicks_refuses_the_bodies_between():
    """Six labels but the last click is in L5: only four bodies lie between L1 and it."""
    image, truth, _ = _film(7105, "flexion")
    centres = body_outlines(truth, sacrum_height=0.6).mean(axis=1)
    clicks = np.full((6, 2), np.nan)
    clicks[0], clicks[5] = centres[0], centres[4]
    result = corners_from_seeds(image, clicks, levels=LEVELS)
    assert result
    assert np.all(np.isnan(result.landmarks[1:5]))
    for reason in result.body_failures[1:5]:
        assert "do not lead to the next click" in reason


@pytest.mark.parametrize(
    ("clicks", "message"),
    [
        (np.array([[100.0, 100.0]] + [[np.nan, np.nan]] * 5), "first and the last body"),
        (np.array([[100.0, 100.0], [120.0, 160.0], [5000.0, 200.0]]), "outside the film"),
        (np.array([[100.0, 100.0], [100.0, 200.0], [100.0, 150.0], [100.0, 300.0]]), "not in order"),
    ],
)
def test_bad_clicks_are_refused_with_a_reason(clicks, message):
    image, _, _ = _film(7106)
    result = corners_from_seeds(image, clicks)
    assert not result
    assert message in result.reason


def test_a_blank_film_is_refused():
    result = corners_from_seeds(np.full((400, 300), 7.0), np.array([[150.0, 100.0], [150.0, 300.0]]))
    assert not result
    assert "blank" in result.reason


def test_seeds_of_the_wrong_shape_raise():
    with pytest.raises(ValueError, match="seeds: expected shape"):
        corners_from_seeds(np.zeros((100, 100)), np.zeros((3, 3)))


def test_plausible_outline_rejects_a_corner_angle_outside_55_to_125_degrees():
    from measure._seeded import _plausible_outline

    box = np.array([[30.0, 0.0], [0.0, 0.0], [0.0, 25.0], [30.0, 25.0]])  # AS PS PI AI, right angles
    skewed = box.copy()
    skewed[2] = [20.0, 25.0]  # PI pulled 20 px anterior: the PS angle becomes ~51°
    sacrum = box.copy()
    sacrum[2:] = np.nan  # S1: superior corners only
    assert list(_plausible_outline(np.stack([box, skewed, sacrum]))) == [True, False, True]
