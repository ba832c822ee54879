"""Landmark interaction as plain functions of (session, state, event): no widget."""

import numpy as np
import pytest

from app.session import Session
from ui._interaction import (
    EditorState,
    KeyEvent,
    PointerEvent,
    hit_corner,
    key_press,
    pointer_move,
    pointer_press,
    pointer_release,
)


@pytest.fixture
def session(synthetic_pair):
    s = Session(recovery_path=None)
    s.open_paths(list(synthetic_pair), loader=synthetic_pair.__getitem__)
    return s


def test_hit_corner_nearest_within_radius():
    lm = np.full((2, 4, 2), np.nan)
    lm[0, 0] = (10, 10)
    lm[1, 2] = (13, 10)
    assert hit_corner(lm, (11.9, 10), 3) == (1, 2)
    assert hit_corner(lm, (11.0, 10), 3) == (0, 0)
    assert hit_corner(lm, (30, 30), 3) is None
    assert hit_corner(np.full((2, 4, 2), np.nan), (0, 0), 3) is None


def test_guided_clicks_place_corners_in_order(session):
    state = EditorState("flexion", mode="guided")
    points = [(50.0 + 20 * i, 30.0 + 7 * i) for i in range(6)]
    for p in points:
        assert pointer_press(session, state, PointerEvent(p))
        pointer_release(session, state, PointerEvent(p))
    lm = session.landmarks("flexion")
    assert lm[0].tolist() == [list(p) for p in points[:4]]
    assert lm[1, :2].tolist() == [list(p) for p in points[4:]]
    assert session.next_missing_corner("flexion") == (1, 2)


def test_guided_press_places_then_drag_adjusts_in_one_step(session):
    state = EditorState("flexion", mode="guided")
    assert pointer_press(session, state, PointerEvent((50.0, 40.0), scale=4.0))
    pointer_move(session, state, PointerEvent((50.5, 40.25), scale=4.0))
    pointer_release(session, state, PointerEvent((50.75, 40.25), scale=4.0))
    assert session.landmarks("flexion")[0, 0].tolist() == [50.5, 40.25]  # the last move
    assert session.film("flexion").placement[0, 0] == "manual"
    assert session.undo_text == "Place L1 AS (flexion)"
    session.undo()
    assert np.isnan(session.landmarks("flexion")).all()
    assert not session.can_undo


def test_press_near_corner_drags_it_as_one_undo_step(session):
    session.set_corner("flexion", 2, 1, (100.0, 100.0))
    state = EditorState("flexion", mode="guided")
    # 6 screen px away at scale 2 = 3 image px: within the 8 px pick radius
    assert pointer_press(session, state, PointerEvent((103.0, 100.0), scale=2.0))
    assert state.selected == (2, 1)
    for x in (104.0, 106.0, 110.5):
        assert pointer_move(session, state, PointerEvent((x, 101.0), scale=2.0))
    assert pointer_release(session, state, PointerEvent((110.5, 101.0), scale=2.0))
    assert session.landmarks("flexion")[2, 1].tolist() == [110.5, 101.0]
    assert session.next_missing_corner("flexion") == (0, 0)  # nothing new placed
    session.undo()
    assert session.landmarks("flexion")[2, 1].tolist() == [100.0, 100.0]


def test_pick_radius_is_in_screen_pixels(session):
    session.set_corner("flexion", 0, 0, (100.0, 100.0))
    state = EditorState("flexion")
    # 3 image px away: at scale 0.25 that is 0.75 screen px: hit; at scale 4 it is 12 px: miss
    assert pointer_press(session, state, PointerEvent((103.0, 100.0), scale=0.25))
    pointer_release(session, state, PointerEvent((103.0, 100.0), scale=0.25))
    state.selected = None
    assert not pointer_press(session, state, PointerEvent((106.0, 100.0), scale=4.0))
    assert state.selected is None


def test_edit_mode_click_on_empty_image_places_nothing(session):
    state = EditorState("flexion")
    assert not pointer_press(session, state, PointerEvent((10.0, 10.0)))
    assert np.isnan(session.landmarks("flexion")).all()


def test_keys_nudge_delete_and_tab(session):
    session.set_corner("extension", 0, 0, (10.0, 10.0))
    session.set_corner("extension", 0, 1, (20.0, 10.0))
    state = EditorState("extension")
    assert key_press(session, state, KeyEvent("tab"))
    assert state.selected == (0, 0)
    assert key_press(session, state, KeyEvent("right"))
    assert key_press(session, state, KeyEvent("down", frozenset({"shift"})))
    assert session.landmarks("extension")[0, 0].tolist() == [10.25, 11.0]
    assert key_press(session, state, KeyEvent("tab"))
    assert state.selected == (0, 1)
    assert key_press(session, state, KeyEvent("delete"))
    assert np.isnan(session.landmarks("extension")[0, 1]).all()
    assert state.selected is None
    assert not key_press(session, state, KeyEvent("left"))  # nothing selected
    session.undo()  # the delete
    session.undo()  # both nudges of (0, 0): one step
    assert session.landmarks("extension")[0, 0].tolist() == [10.0, 10.0]


def test_calibration_line(session):
    state = EditorState("flexion", mode="calibrate")
    assert pointer_press(session, state, PointerEvent((10.0, 20.0)))
    pointer_move(session, state, PointerEvent((40.0, 60.0)))
    assert not state.calibration_done
    assert pointer_release(session, state, PointerEvent((40.0, 60.0)))
    assert state.calibration_done
    assert state.calibration_line == ((10.0, 20.0), (40.0, 60.0))
    assert np.isnan(session.landmarks("flexion")).all()
    assert key_press(session, state, KeyEvent("escape"))
    assert state.calibration_line is None
