"""Automatic landmarks on phantom films: tracking and refinement wired to levels and calibration."""

from __future__ import annotations

import numpy as np
import pytest

from app.autolandmarks import film_image, refine_film, track_film, track_study
from app.landmarks_io import FilmLandmarks, StudyLandmarks
from app.phantom import MEASURED_LEVELS, make_study
from measure import (
    TRACKING_SD_MODEL,
    Calibration,
    CalibrationSource,
    LandmarkFailure,
    PlacementMethod,
)


@pytest.fixture(scope="module")
def study():
    return make_study(5151, scale=0.25)


def _cal(film) -> Calibration:
    return Calibration(*film.pixel_spacing_mm, CalibrationSource.CALIBRATED)


def test_track_film_places_every_level_with_tracked_method_and_mm_sd(study):
    flex, ext = study.flexion, study.extension
    result = track_film(
        flex.pixels, flex.landmark_array(), ext.pixels, levels=MEASURED_LEVELS,
        target_calibration=_cal(ext),
    )  # fmt: skip
    assert result and result.method is PlacementMethod.TRACKED
    assert result.placed == MEASURED_LEVELS and result.failures == {}
    err_mm = np.linalg.norm(result.corners - ext.landmark_array(), axis=-1) * ext.pixel_spacing_mm[0]
    assert np.nanmedian(err_mm) < 0.5
    assert set(result.placement[0]) == {"tracked"}
    assert list(result.placement[5]) == ["tracked", "tracked", "", ""]
    # SD in mm = SD in pixels x spacing (no floor for tracking)
    np.testing.assert_allclose(result.sd_mm[:, :2], result.sd_px[:, :2] * ext.pixel_spacing_mm[0])
    # each body's SD is measure.tracking_sd of its own correlation and endplate depth (mean of
    # both endplates; S1 its superior one), the same for its four corners
    c = result.corners
    sup = np.linalg.norm(c[:, 0] - c[:, 1], axis=-1)
    inf = np.linalg.norm(c[:, 3] - c[:, 2], axis=-1)
    depth_mm = np.where(np.isnan(inf), sup, (sup + inf) / 2) * ext.pixel_spacing_mm[0]
    m = TRACKING_SD_MODEL
    expected = m.fraction * depth_mm * np.maximum(1 - result.quality, m.min_mismatch) ** m.power
    np.testing.assert_allclose(result.sd_mm[:, 0], expected, rtol=1e-9)
    np.testing.assert_allclose(result.sd_mm[:5], np.repeat(expected[:5, None], 4, axis=1), rtol=1e-9)
    assert np.all(np.isnan(result.sd_mm[5, 2:]))  # S1 has no inferior corners


def test_uncalibrated_target_has_no_mm_sd(study):
    flex, ext = study.flexion, study.extension
    result = track_film(flex.pixels, flex.landmark_array(), ext.pixels, levels=MEASURED_LEVELS)
    assert result.calibration.source is CalibrationSource.UNCALIBRATED
    assert np.all(np.isnan(result.sd_mm))
    assert np.all(np.isfinite(result.sd_px[:5]))


def test_track_study_fills_the_empty_film_and_records_quality(study):
    flex, ext = study.flexion, study.extension
    empty = np.full((6, 4, 2), np.nan)
    landmarks = StudyLandmarks(
        MEASURED_LEVELS,
        FilmLandmarks(flex.landmark_array(), _cal(flex)),
        FilmLandmarks(empty, _cal(ext)),
    )
    updated, outcome = track_study(landmarks, flex.pixels, ext.pixels)
    assert outcome
    got = updated.extension
    err = np.linalg.norm(got.corners - ext.landmark_array(), axis=-1) * ext.pixel_spacing_mm[0]
    assert np.nanmax(err) < 1.5
    assert got.placement[2, 0] == "tracked" and updated.flexion.placement[2, 0] == "manual"
    assert got.extra["tracking"]["source"] == "flexion"
    assert set(got.extra["tracking"]["quality"]) == set(MEASURED_LEVELS)
    # the stored SD is the body's own (measure.tracking_sd of its correlation): positive, and
    # larger for the body matched worse
    sd = got.landmark_sd_mm[:5, 0]
    quality = np.array([got.extra["tracking"]["quality"][lv] for lv in MEASURED_LEVELS[:5]])
    assert np.all(sd > 0) and np.all(np.isfinite(sd))
    assert sd[np.argmin(quality)] >= sd[np.argmax(quality)]


def test_refine_film_reports_displacement_in_mm(study):
    ext = study.extension
    truth = ext.landmark_array()
    rough = truth + np.random.default_rng(3).normal(0, 1.5, truth.shape)  # ~1 mm clicks
    result = refine_film(ext.pixels, rough, levels=MEASURED_LEVELS, calibration=_cal(ext))
    assert result and result.method is PlacementMethod.REFINED
    assert len(result.placed) >= 4
    for level in result.placed:
        v = MEASURED_LEVELS.index(level)
        moved = np.linalg.norm(result.corners[v] - rough[v], axis=-1)
        moved = moved[np.isfinite(moved)]
        np.testing.assert_allclose(result.details["displacement_px"][level], moved, atol=1e-3)
        np.testing.assert_allclose(
            result.details["displacement_mm"][level], moved * ext.pixel_spacing_mm[0], atol=2e-3
        )


def test_film_image_makes_bone_bright_for_monochrome1():
    class Film:  # the two attributes film_image reads
        pixels = np.array([[0, 4095]], dtype=np.uint16)
        invert = True

    np.testing.assert_array_equal(film_image(Film()), [[0.0, -4095.0]])


def test_track_study_without_any_landmark_fails_with_reason(study):
    empty = np.full((6, 4, 2), np.nan)
    landmarks = StudyLandmarks(MEASURED_LEVELS, FilmLandmarks(empty), FilmLandmarks(empty))
    same, outcome = track_study(landmarks, study.flexion.pixels, study.extension.pixels)
    assert isinstance(outcome, LandmarkFailure)
    assert "no landmarks" in outcome.reason
    assert same is landmarks


def test_detect_film_needs_levels_ending_with_s1(study):
    from app.autolandmarks import detect_film

    result = detect_film(study.flexion.pixels, levels=("L1", "L2", "L3"))
    assert isinstance(result, LandmarkFailure)
    assert "must end with S1" in result.reason


def test_detect_film_labels_from_the_sacrum_with_mm_sd(study):
    from app.autolandmarks import detect_film

    film = study.extension
    result = detect_film(film.pixels, levels=MEASURED_LEVELS, calibration=_cal(film))
    assert result and result.method is PlacementMethod.DETECTED
    err_mm = np.linalg.norm(result.corners - film.landmark_array(), axis=-1) * film.pixel_spacing_mm[0]
    assert np.all(np.nanmedian(err_mm, axis=1) < 5.0)
    assert np.nanmin(result.sd_mm) >= 0.5
    assert result.details["facing"] == study.options.facing
