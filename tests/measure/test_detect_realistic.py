"""Detection on realistic phantoms (issue 12): no confident wrong level or facing.

Seeds 90000+ are used by no benchmark (tuning: 70000+, reporting: 80000+).
"""

from __future__ import annotations

import numpy as np
import pytest

from app.phantom import Realism, make_study
from measure import REVIEW_THRESHOLD, detect_vertebrae


def _image(film) -> np.ndarray:
    img = film.pixels.astype(np.float32)
    return -img if film.photometric == "MONOCHROME1" and film.export == "dicom" else img


def _levels_right(result, film) -> bool:
    """Every placed level within a third of a body of the truth (a level off is a whole body)."""
    sp = np.array(film.pixel_spacing_mm[::-1])
    truth = film.landmark_array()
    per_level = np.nanmedian(np.linalg.norm((result.landmarks - truth) * sp, axis=-1), axis=1)
    placed = np.isfinite(per_level)
    return bool(placed.any() and np.all(per_level[placed] < 10.0))


@pytest.fixture(scope="module")
def realistic_films():
    films = []
    for seed in range(90000, 90006):
        study = make_study(seed, realistic=True, scale=0.5, facing=("left", "right")[seed % 2])
        films += [(film, study.options.facing) for film in study.films]
    return films


def test_no_confident_wrong_level_or_facing_on_realistic_films(realistic_films):
    confident_right = 0
    for film, facing in realistic_films:
        spacing = film.pixel_spacing_mm[0] if film.export == "dicom" else None
        result = detect_vertebrae(_image(film), pixel_spacing_mm=spacing)
        if not result:
            assert result.reason.startswith("not found")
            continue
        right = _levels_right(result, film) and result.facing == facing
        confident = not result.needs_review
        assert right or not confident, (film.view, result.review_reasons)
        if confident:
            # a confident result has every found level at or above the threshold
            assert np.all(result.confidence[np.isfinite(result.confidence)] >= REVIEW_THRESHOLD)
            confident_right += 1
        else:
            assert result.review_reasons
    assert confident_right >= 4  # and some answers are given without review


def test_narrow_l5_s1_disc_under_high_crests_keeps_the_levels():
    # the failure: a narrow degenerate L5-S1 with the iliac crests over it
    # made L4-L5 pass for L5-S1 and shifted every label, with confidence 1
    realism = Realism(narrow_discs=("L5-S1",), crest_rise_mm=20.0, lordosis_loss_deg=8.0)
    study = make_study(90011, scale=0.5, realism=realism)
    for film in study.films:
        result = detect_vertebrae(_image(film), pixel_spacing_mm=film.pixel_spacing_mm[0])
        assert result, result.reason
        assert _levels_right(result, film) or result.needs_review


def test_uncalibrated_8bit_export_body_size_from_the_image():
    # 0.3 mm/px exports without spacing: the body size must come from the image
    study = make_study(90012, scale=0.6, realism=Realism(export="jpeg", export_spacing_mm=0.3))
    for film in study.films:
        result = detect_vertebrae(film.pixels)
        assert result, result.reason
        assert _levels_right(result, film) or result.needs_review
        assert result.facing == "left"


@pytest.mark.parametrize("facing", ["left", "right"])
def test_facing_holds_when_flexion_straightens_the_lower_lumbar_spine(facing):
    # flat back: the flexion film's L4-S1 discs are parallel or open backwards, so the
    # disc wedge would give the opposite facing; the posterior elements do not
    study = make_study(90013, scale=0.4, facing=facing, realism=Realism(lordosis_loss_deg=16.0))
    assert study.motion["L4-L5"]["theta_flexion_deg"] < 0.5
    for film in study.films:
        result = detect_vertebrae(_image(film), pixel_spacing_mm=film.pixel_spacing_mm[0])
        assert result, result.reason
        assert result.facing == facing
        assert result.facing_confidence >= REVIEW_THRESHOLD


def test_burned_in_text_and_shutter_do_not_move_the_column():
    study = make_study(90014, scale=0.4, realism=Realism(burned_in_text=True, shutter=True))
    for film in study.films:
        result = detect_vertebrae(_image(film), pixel_spacing_mm=film.pixel_spacing_mm[0])
        assert result, result.reason
        assert _levels_right(result, film)


def test_colour_photograph_of_a_film_is_refused_with_what_was_seen():
    study = make_study(90015, scale=0.25)
    grey = study.flexion.pixels.astype(np.float32) / 16.0
    photo = np.stack([grey * 1.0, grey * 0.8 + 20, grey * 0.6 + 40], axis=-1)  # warm cast
    result = detect_vertebrae(photo)
    assert not result and "colour image" in result.reason
    # the same pixels as grey are a film
    assert detect_vertebrae(grey)


def test_spot_film_of_one_level_is_refused_with_what_was_seen():
    study = make_study(90016, scale=0.4)
    film = study.extension
    l3 = film.landmark_array(("L3",))[0]
    x0, y0 = np.floor(l3.min(axis=0)).astype(int) - 25
    x1, y1 = np.ceil(l3.max(axis=0)).astype(int) + 25
    spot = _image(film)[y0:y1, x0:x1]  # one body and its two discs
    result = detect_vertebrae(spot, pixel_spacing_mm=film.pixel_spacing_mm[0])
    assert not result
    assert result.reason.startswith("not found: no column of vertebral bodies")


@pytest.mark.parametrize("seed", [90032, 90033, 90036])
def test_levels_and_facing_right_on_realistic_test_studies(seed):
    # seeds reserved for tests (never tuned on, never reported): every film of these
    # realistic studies is found with all six levels within 10 mm of the truth and
    # the right facing, whether or not it is marked for review
    study = make_study(seed, realistic=True, scale=0.5, facing=("left", "right")[seed % 2])
    for film in study.films:
        spacing = film.pixel_spacing_mm[0] if film.export == "dicom" else None
        result = detect_vertebrae(_image(film), pixel_spacing_mm=spacing)
        assert result, (film.view, result.reason)
        assert np.all(np.isfinite(result.landmarks[:, :2]))  # L1..S1 all placed
        assert _levels_right(result, film), film.view
        assert result.facing == study.options.facing


def _within_a_third(result, film) -> np.ndarray:
    """Per level: placed and within a third of its endplate depth of the truth."""
    sp = np.array(film.pixel_spacing_mm[::-1])
    truth = film.landmark_array()
    per_level = np.nanmedian(np.linalg.norm((result.landmarks - truth) * sp, axis=-1), axis=1)
    depth = np.linalg.norm((truth[:, 0] - truth[:, 1]) * sp, axis=-1)
    return np.isfinite(per_level) & (per_level < depth / 3)


@pytest.mark.parametrize("seed", [90042, 90047])
def test_l1_cropped_extension_film_gives_l2_to_s1(seed):
    # L1 cut by the film's top edge, narrow L4-L5 and L5-S1 discs, an uncalibrated export:
    # the posterior elements line up into a stronger "column" than the four bodies left, and
    # detection used to refuse the film ("no sacrum below the column"); the bodies' column
    # must be found, labelled L2-S1 from the sacrum, with L1 left unplaced
    realism = Realism(crop_top=True, narrow_discs=("L4-L5", "L5-S1"), crest_rise_mm=15.0,
                      export="png", export_spacing_mm=0.3)  # fmt: skip
    study = make_study(seed, scale=0.5, realism=realism, facing=("left", "right")[seed % 2])
    film = study.extension
    result = detect_vertebrae(_image(film))
    assert result, result.reason
    assert np.all(np.isnan(result.landmarks[0]))  # L1: cut off, not guessed
    assert _within_a_third(result, film)[1:].all()  # L2, L3, L4, L5, S1
    assert result.facing == study.options.facing
