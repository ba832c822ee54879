"""The one-click path in the viewer (issue 12 §4): clicks inside the bodies -> every corner, refined,
the other film tracked through the guard, one undo step."""

from __future__ import annotations

import json

import numpy as np
import pytest

from measure._auto_common import body_outlines
from tests.ui.test_qt_main_window import click_at
from tests.ui.test_sample_study import truth_arrays


@pytest.fixture
def window(make_window, sample):
    window = make_window()
    window.open_paths([str(sample / "flexion.dcm"), str(sample / "extension.dcm")])
    return window


def _centres(corners: np.ndarray) -> np.ndarray:
    """A point inside each body (V, 2): the outline's mean (S1: a block under its endplate)."""
    return body_outlines(corners, sacrum_height=0.6).mean(axis=1)


def _corner_error_mm(placed: np.ndarray, truth: np.ndarray, spacing_mm: float) -> np.ndarray:
    err = np.linalg.norm(placed - truth, axis=-1) * spacing_mm
    return err[np.isfinite(truth).all(-1)]


def _check_one_click(window, role: str, truth: np.ndarray, spacing_mm: float) -> None:
    """Every body on its own body, corners as accurate as bench_one_click says on clean phantoms
    (median 0.42 mm, 95th percentile 1.6 mm).  On the sample, L1's anterior-inferior corner is refined
    4-6 mm off (or its box kept, 2.3 mm off, when the refinement is refused): the bound is on 90 %."""
    placed = window.session.landmarks(role)
    placement = window.session.film(role).placement
    err = np.linalg.norm(placed - truth, axis=-1) * spacing_mm
    have = np.isfinite(truth).all(-1)
    assert np.all(np.isfinite(err[have])) and set(placement[have]) <= {"refined", "detected"}
    assert np.median(err[have]) < 1.0, np.round(err, 2)
    assert np.percentile(err[have], 90) < 2.0, np.round(err, 2)
    assert (placement[have] == "refined").sum() >= 16
    depth = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=-1)
    off = np.linalg.norm(np.nanmean(placed[:, :2], 1) - np.nanmean(truth[:, :2], 1), axis=-1) / depth
    assert np.all(off < 0.25), off  # never a level off


def test_clicks_in_l1_and_s1_place_every_corner_and_track_the_other_film(qtbot, window, sample):
    truth = json.loads((sample / "truth.json").read_text())
    flex, ext = truth_arrays(truth, "flexion"), truth_arrays(truth, "extension")
    centres = _centres(flex)
    action = window.actions_by_name["one_click"]
    action.trigger()
    view = window.views["flexion"]
    assert view.state.mode == "clicks" and view.prompt_text().startswith("Click inside L1")
    click_at(qtbot, view, centres[0])
    assert view.prompt_text().startswith("Click inside L2")
    click_at(qtbot, view, centres[-1])
    assert np.allclose(view.state.clicks, centres[[0, -1]], atol=0.5)
    with qtbot.waitSignal(window.tasks.finished, timeout=180_000) as finished:
        action.trigger()  # O again: L1 and S1 only, the bodies between are found along the column
    assert finished.args == ["One click", "done"]
    assert view.state.mode == "edit" and not view.state.clicks
    spacing = {r: truth[r]["pixel_spacing_mm"][0] for r in ("flexion", "extension")}
    placed = window.session.landmarks("flexion")
    err = _corner_error_mm(placed, flex, spacing["flexion"])
    assert err.size == 22 and np.all(np.isfinite(err))  # every corner of L1-L5 and S1's two
    _check_one_click(window, "flexion", flex, spacing["flexion"])
    # the extension film was tracked (and cross-checked): every body placed is on its own body
    tracked = window.session.landmarks("extension")
    on = np.isfinite(tracked).all(-1).any(-1)
    assert on.sum() >= 5
    e = _corner_error_mm(np.where(on[:, None, None], tracked, np.nan), np.where(on[:, None, None], ext, np.nan),
                         spacing["extension"])  # fmt: skip
    # tracking carries the completed corners' own errors (L1 AI, above): the median, and the level
    assert np.nanmedian(e) < 1.0 and np.percentile(e[np.isfinite(e)], 90) < 2.0, np.round(e, 2)
    depth = np.linalg.norm(ext[:, 0] - ext[:, 1], axis=-1)
    off = np.linalg.norm(np.nanmean(tracked[:, :2], 1) - np.nanmean(ext[:, :2], 1), axis=-1)[on] / depth[on]
    assert np.all(off < 0.25), off
    assert window.session.undo_text.startswith("One click: completed the flexion film (6 bodies), tracked")
    window.session.undo()  # one step for both films
    assert all(np.isnan(window.session.landmarks(r)).all() for r in ("flexion", "extension"))


def test_one_click_in_every_body_completes_by_itself(qtbot, window, sample):
    truth = json.loads((sample / "truth.json").read_text())
    ext = truth_arrays(truth, "extension")
    window.actions_by_name["one_click"].trigger()
    view = window.views["extension"]
    with qtbot.waitSignal(window.tasks.finished, timeout=180_000) as finished:
        for xy in _centres(ext):
            click_at(qtbot, view, xy)
    assert finished.args == ["One click", "done"]
    assert not window.actions_by_name["one_click"].isChecked()
    _check_one_click(window, "extension", ext, truth["extension"]["pixel_spacing_mm"][0])


def test_a_click_count_that_fits_nothing_is_refused_and_places_nothing(qtbot, window, sample):
    truth = json.loads((sample / "truth.json").read_text())
    centres = _centres(truth_arrays(truth, "flexion"))
    window.actions_by_name["one_click"].trigger()
    view = window.views["flexion"]
    for xy in centres[:3]:
        click_at(qtbot, view, xy)
    window.actions_by_name["one_click"].trigger()
    assert not window.tasks.busy
    assert any("3 clicks" in m for m in window.banner.messages("error"))
    assert np.isnan(window.session.landmarks("flexion")).all()
    # Esc forgets the clicks of a film; guided placement ends the mode
    window.actions_by_name["one_click"].trigger()
    click_at(qtbot, view, centres[0])
    window.actions_by_name["guided"].trigger()
    assert view.state.mode == "guided" and not view.state.clicks
    assert not window.actions_by_name["one_click"].isChecked()
