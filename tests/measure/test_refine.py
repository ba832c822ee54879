"""Refinement of rough corners: sub-pixel accuracy against known corners, and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from measure import LandmarkFailure, refine_corners
from tests.measure._synthetic_spine import make_pair


@pytest.mark.parametrize(
    "options",
    [{"noise": 0.02}, {"noise": 0.06, "film_rotation_deg": 14.0}, {"facing_left": False}],
    ids=["clean", "noisy-rotated", "facing-right"],
)
def test_refinement_snaps_rough_clicks_to_the_corners(options):
    _, film = make_pair(31, **options)
    rng = np.random.default_rng(5)
    rough = film.corners + rng.normal(0, 2.0, film.corners.shape)  # quick clicks, ~3 % of depth
    result = refine_corners(film.image, rough)
    assert result
    before = np.linalg.norm(rough - film.corners, axis=-1)
    after = np.linalg.norm(result.landmarks - film.corners, axis=-1)
    refined = result.refined
    assert refined.sum() >= 5
    assert np.nanmedian(after[refined]) < 0.6
    assert np.nanmedian(after[refined]) < 0.35 * np.nanmedian(before[refined])
    # displacement is how far each corner moved
    moved = np.linalg.norm(result.landmarks - rough, axis=-1)
    np.testing.assert_allclose(result.displacement_px[refined], np.nan_to_num(moved[refined]), atol=1e-9)
    # S1's absent corners stay absent
    assert np.all(np.isnan(result.landmarks[5, 2:]))
    assert np.all(np.isfinite(result.corner_sd_px[refined][:, :2]))


def test_refinement_is_stable_on_true_corners():
    _, film = make_pair(32, noise=0.02)
    result = refine_corners(film.image, film.corners)
    err = np.linalg.norm(result.landmarks - film.corners, axis=-1)
    assert np.nanmax(err[result.refined]) < 0.9


def test_refinement_refuses_a_uniform_film():
    _, film = make_pair(33)
    result = refine_corners(np.zeros_like(film.image), film.corners)
    assert isinstance(result, LandmarkFailure)
    assert "blank or uniform" in result.reason


def test_refinement_leaves_bodies_without_edges_as_placed():
    _, film = make_pair(34, noise=0.02)
    rough = film.corners.copy()
    rough[1] += np.array([0.0, 400.0])  # L2 clicked far off the spine, on soft tissue
    rough[1, :, 1] = np.clip(rough[1, :, 1], 0, film.image.shape[0] - 1)
    result = refine_corners(film.image, rough, levels=["L1", "L2", "L3", "L4", "L5", "S1"])
    assert result
    assert result.body_failures[1] is not None and result.body_failures[1].startswith("L2")
    np.testing.assert_array_equal(result.landmarks[1], rough[1])
    assert np.all(result.displacement_px[1] == 0)
    assert result.refined[0] and result.refined[3]


def test_refinement_flags_corners_outside_the_film():
    _, film = make_pair(35)
    rough = film.corners.copy()
    rough[0, 0] = (-30.0, 5.0)
    result = refine_corners(film.image, rough, levels=["L1", "L2", "L3", "L4", "L5", "S1"])
    assert result.body_failures[0] == "L1: a corner lies outside the film"
