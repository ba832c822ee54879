"""Landmarks › Track and Refine on the sample study (app.autolandmarks, issue #5)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.ui.test_sample_study import truth_arrays


@pytest.fixture
def window(make_window, sample):
    window = make_window()
    window.open_paths([str(sample / "flexion.dcm"), str(sample / "extension.dcm")])
    return window


def test_track_carries_the_outline_to_the_other_film(window, sample):
    truth = json.loads((sample / "truth.json").read_text())
    flex, ext = truth_arrays(truth, "flexion"), truth_arrays(truth, "extension")
    window.session.set_landmarks("flexion", flex)
    assert window.actions_by_name["track_flexion"].isEnabled()
    window.actions_by_name["track_flexion"].trigger()
    assert window.tasks.wait()  # runs in the background
    placed = window.session.landmarks("extension")
    ok = np.isfinite(placed).all(-1)
    assert ok[:, :2].all()  # every body found
    # tracked corners land on the extension truth within a pixel or two
    assert np.nanmax(np.linalg.norm(placed - ext, axis=-1)) < 3.0
    doc = window.session.to_json()["extension"]
    assert set(doc["placement"]["L3"].values()) == {"tracked"}
    assert window.session.undo_text == "Track from flexion (extension)"
    # the motion is measurable now, and one undo removes the whole tracking
    assert window.session.result_rows()[3]["measured"]
    window.actions_by_name["undo"].trigger()
    assert np.isnan(window.session.landmarks("extension")).all()


def test_refine_snaps_rough_clicks(window, sample):
    truth = json.loads((sample / "truth.json").read_text())
    flex = truth_arrays(truth, "flexion")
    rng = np.random.default_rng(3)
    rough = flex + rng.normal(0, 2.0, flex.shape)
    window.session.set_landmarks("flexion", rough)
    window.actions_by_name["refine_flexion"].trigger()
    assert window.tasks.wait()
    refined = window.session.landmarks("flexion")
    placement = window.session.film("flexion").placement
    moved = placement == "refined"
    assert moved.any()
    # refined corners moved (sub-pixel snaps), the others kept the reader's clicks exactly
    assert (np.linalg.norm(refined - rough, axis=-1)[moved] > 0).all()
    np.testing.assert_array_equal(refined[~moved], rough[~moved])
    assert all(m in (None, "manual") for m in placement[~moved])
    summary = window.auto.last_summary
    assert len(summary) == len(window.session.levels) and summary[0].startswith("L1: ")
    window.actions_by_name["undo"].trigger()
    np.testing.assert_array_equal(window.session.landmarks("flexion"), rough)


def test_track_needs_an_outline(window):
    window.actions_by_name["track_extension"].trigger()
    assert any("outline the bodies on the extension film first" in m for m in window.banner.messages("error"))


def test_detect_places_bodies_without_clicks(window, sample):
    truth = json.loads((sample / "truth.json").read_text())
    assert window.auto.detect("extension")
    assert window.tasks.wait()
    n = window.auto.last_placed
    placed = window.session.landmarks("extension")
    found = np.isfinite(placed).all(-1)
    assert n == found.sum() > 0
    assert {m for m in window.session.film("extension").placement[found]} == {"detected"}
    ext = truth_arrays(truth, "extension")
    # a detected body sits on its true body (not one level off: bodies are ~30 mm apart)
    centre = np.nanmean(np.where(found[..., None], placed, np.nan), axis=1)
    true_centre = np.nanmean(ext, axis=1)
    rows = np.isfinite(centre).all(-1)
    assert (np.linalg.norm(centre[rows] - true_centre[rows], axis=-1) < 40).all()
    window.actions_by_name["undo"].trigger()
    assert np.isnan(window.session.landmarks("extension")).all()
