"""Detection of L1-S1 on single phantom films: right levels, corner accuracy, refusals."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from measure import REVIEW_THRESHOLD, LandmarkFailure, detect_vertebrae
from tests.measure._synthetic_spine import make_pair

LEVELS = ("L1", "L2", "L3", "L4", "L5", "S1")


@pytest.fixture(scope="module")
def phantom_films():
    from app.phantom import make_study

    films = []
    for seed, options in ((9101, {"facing": "left"}), (9102, {"facing": "right", "rotation_deg": 15})):
        study = make_study(seed, scale=0.25, **options)
        films += [(film, options["facing"]) for film in study.films]
    return films


def test_detection_finds_the_levels_and_the_facing(phantom_films):
    for film, facing in phantom_films:
        result = detect_vertebrae(film.pixels, pixel_spacing_mm=film.pixel_spacing_mm[0])
        assert result, result.reason
        truth = film.landmark_array()
        err_mm = np.linalg.norm(result.landmarks - truth, axis=-1) * film.pixel_spacing_mm[0]
        per_level = np.nanmedian(err_mm, axis=1)
        assert np.all(per_level < 5.0), per_level  # a wrong level is ~35 mm off
        assert np.nanmedian(err_mm) < 2.0
        assert result.facing == facing
        assert np.all(np.isnan(result.landmarks[5, 2:]))
        assert np.all((result.confidence >= 0) & (result.confidence <= 1))


def test_detection_without_spacing_still_finds_the_levels(phantom_films):
    film, _ = phantom_films[0]
    result = detect_vertebrae(film.pixels)
    err_mm = np.linalg.norm(result.landmarks - film.landmark_array(), axis=-1) * film.pixel_spacing_mm[0]
    assert np.all(np.nanmedian(err_mm, axis=1) < 5.0)


def test_cropped_film_reports_the_missing_top_levels(phantom_films):
    film, _ = phantom_films[0]
    truth = film.landmark_array()
    top = int(np.nanmax(truth[1, :, 1]))  # cut through L2's lower part: L1 and L2 gone
    result = detect_vertebrae(film.pixels[top:], pixel_spacing_mm=film.pixel_spacing_mm[0])
    assert result
    assert result.body_failures[0] is not None and "not found" in result.body_failures[0]
    assert result.body_failures[1] is not None
    assert np.all(np.isnan(result.landmarks[:2]))
    shifted = truth - np.array([0, top])
    placed = np.isfinite(result.landmarks[:, 0, 0])
    assert placed[3:].all()  # L4, L5, S1 well inside the film
    err_mm = np.linalg.norm(result.landmarks - shifted, axis=-1) * film.pixel_spacing_mm[0]
    assert np.all(np.nanmedian(err_mm[placed], axis=1) < 5.0)  # the top body: found or refused


def test_blank_film_is_not_found():
    result = detect_vertebrae(np.full((400, 300), 1000, np.uint16))
    assert isinstance(result, LandmarkFailure)
    assert result.reason == "not found: the film is blank or uniform"


def test_another_body_part_is_not_found():
    rng = np.random.default_rng(4)
    other = cv2.GaussianBlur(rng.normal(0, 1, (480, 384)).astype(np.float32), (0, 0), 8)
    result = detect_vertebrae(other, pixel_spacing_mm=0.67)
    assert not result and result.reason.startswith("not found")


def test_column_without_sacrum_is_not_found():
    _, film = make_pair(41, noise=0.02)  # five blocks and a sixth, no sacrum or disc below
    cut = film.image[: int(np.nanmax(film.corners[3, :, 1])) + 3]  # ends at L4's lower endplate
    result = detect_vertebrae(cut)
    assert not result and result.reason.startswith("not found")


def _with_sacral_remnant(film, strength: float) -> np.ndarray:
    """The film with a faint lucent band 4 mm tall across the sacrum 27 mm below
    S1's endplate (the fused S1-S2 disc), ``strength`` × the film's 1-99 % range."""
    img = film.pixels.astype(np.float32)
    sp = film.pixel_spacing_mm[0]
    truth = film.landmark_array()
    anterior, posterior = truth[5, 0], truth[5, 1]  # S1's AS, PS
    depth = np.linalg.norm(anterior - posterior)
    ex = (anterior - posterior) / depth
    ey = np.array([-ex[1], ex[0]])
    ey = ey if ey[1] > 0 else -ey  # towards the feet
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    rel = np.stack([xx - posterior[0], yy - posterior[1]], -1) @ np.column_stack([ex, ey])
    band = (np.abs(rel[..., 1] - 27 / sp) < 2 / sp) & (rel[..., 0] > -0.1 * depth) & (rel[..., 0] < 1.1 * depth)
    lo, hi = np.percentile(img, [1, 99])
    return np.where(band, img - strength * (hi - lo), img)


def test_faint_sacral_remnant_is_not_a_confident_l5_s1_disc(phantom_films):
    # The fused S1-S2 disc's faint band once passed for the L5-S1 disc: S1 was
    # called L5 and every level was one off, with confidence 1 (benchmark
    # films 50021 flexion and 50007 extension).  Now the band is judged against
    # the discs above: the levels are right, and flagged as unsure.
    film, _ = phantom_films[0]
    sp = film.pixel_spacing_mm[0]
    result = detect_vertebrae(_with_sacral_remnant(film, 0.04), pixel_spacing_mm=sp)
    assert result, result.reason
    err_mm = np.linalg.norm(result.landmarks - film.landmark_array(), axis=-1) * sp
    assert np.all(np.nanmedian(err_mm, axis=1) < 5.0)  # one level off would be > 30 mm
    assert result.needs_review and result.review_reasons
    assert np.all(result.confidence < REVIEW_THRESHOLD)


def test_a_body_placed_a_third_off_is_sought_again_and_found():
    # three synthetic bodies with their true corners; the middle one's block is put 0.3 of
    # a depth off along its endplate and 0.2 down, where the refinement finds no outline: seeking it
    # again from shifted blocks and from its neighbours must land on the true corners
    from measure._detect import _reseek_unrefined
    from measure._refine import refine_corners

    film, _ = make_pair(11, noise=0.02)
    truth = film.corners[1:4].copy()  # L2, L3, L4
    corners = np.concatenate([truth, film.corners[5:6]])  # and S1 last, as detection has it
    depth = float(np.linalg.norm(truth[1, 1] - truth[1, 0]))
    along = (truth[1, 1] - truth[1, 0]) / depth
    down = np.array([-along[1], along[0]])
    corners[1] = truth[1] + depth * (0.3 * along + 0.2 * down)
    first = refine_corners(film.image, corners, search_fraction=0.25, max_move_fraction=0.4)
    assert not first.refined[1]  # the displaced block is not confirmed as it is
    ok = first.refined.copy()
    start = np.where(ok[:, None, None], first.landmarks, corners)
    sd = np.where(ok[:, None], first.corner_sd_px, np.nan)
    found, found_sd, found_ok = _reseek_unrefined(film.image, start, sd, ok, depth)
    assert found_ok[1]
    # refined from the true corners the posterior ones err up to 0.08 depth (the pedicle
    # stub); the displaced block was 0.36 depth off, a neighbour is a whole depth away
    assert np.max(np.linalg.norm(found[1] - truth[1], axis=-1)) < 0.1 * depth
    assert np.all(np.isfinite(found_sd[1]))
    np.testing.assert_array_equal(found[[0, 2]], start[[0, 2]])  # the confirmed bodies stay
