"""Level labels awaiting the reader's confirmation, and several films merged in one edit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.app.test_session import hand_case, make_session, row


def test_unconfirmed_labels_mark_every_row_and_survive_save_and_load(tmp_path):
    session, files = make_session(tmp_path)
    flex, ext = hand_case()
    session.set_landmarks("flexion", flex)
    session.set_landmarks("extension", ext)
    assert row(session)["finding"] in ("unstable", "borderline") and "needs_review" not in row(session)
    seen = []
    session.events.label_review.connect(lambda e: seen.append(e.value))
    session.request_label_review("extension film: low label confidence (L4 0.31 < 0.50)")
    assert seen == ["extension film: low label confidence (L4 0.31 < 0.50)"]
    r = row(session)
    assert r["needs_review"] is True and "L4 0.31" in r["needs_review_reason"]
    # the values are still computed (5 mm, 11.31 deg by hand), only their verdict waits
    assert abs(r["translation_mm"] - 5.0) < 1e-9 and abs(r["angulation_deg"] - 11.3099) < 1e-3
    path = session.save(tmp_path / "s.json")
    doc = json.loads(path.read_text())
    assert doc["labels_need_review"].startswith("extension film")
    assert doc["results"]["segments"][0]["needs_review"] is True
    # the recovery file keeps it too, and reopening asks again
    (tmp_path / "other").mkdir()
    reopened, _ = make_session(tmp_path / "other")
    reopened.load(path, loader=files.__getitem__)
    assert reopened.label_review == session.label_review and row(reopened)["needs_review"]
    reopened.confirm_labels()
    assert reopened.label_review is None and "needs_review" not in row(reopened)
    assert "labels_need_review" not in reopened.to_json()
    # new films: nothing to confirm
    session.open_paths(list(files), loader=files.__getitem__)
    assert session.label_review is None


def test_merge_landmarks_of_two_films_is_one_undo_step(tmp_path):
    session, _ = make_session(tmp_path)
    flex, ext = hand_case()
    session.set_corner("extension", 0, 0, (1.0, 2.0))  # a reader's corner that the merge keeps
    marks = {
        "flexion": (flex, np.full((3, 4), "tracked", object), np.full((3, 4), 0.1)),
        "extension": (np.where(np.arange(3)[:, None, None] == 0, np.nan, ext), np.full((3, 4), "detected", object), None),
    }
    n = session.merge_landmarks_of(marks, "Auto: test")
    assert n == 10 + 6  # flexion: 4 + 4 + 2; extension: L5 and S1 (4 + 2)
    assert session.undo_text == "Auto: test"
    lm = session.landmarks("extension")
    np.testing.assert_array_equal(lm[0, 0], (1.0, 2.0))
    np.testing.assert_array_equal(lm[1:], ext[1:])
    assert session.film("flexion").placement[0, 0] == "tracked"
    assert session.film("flexion").landmark_sd_mm[0, 0] == 0.1
    session.undo()
    assert np.isnan(session.landmarks("flexion")).all()
    np.testing.assert_array_equal(session.landmarks("extension")[0, 0], (1.0, 2.0))
    assert np.isnan(session.landmarks("extension")[1:]).all()


def test_segment_details_by_hand(tmp_path):
    """Hand case (0.5 mm/px): L4-L5 translates 5 mm and rotates 11.31 deg."""
    session, _ = make_session(tmp_path)
    flex, ext = hand_case()
    session.set_landmarks("flexion", flex)
    session.set_landmarks("extension", ext)
    d = session.segment_details(0)
    # disc heights: flexion AI(110,190)-AS(100,200) and PI(70,190)-PS(60,200) = sqrt(200) px;
    # extension AI(100,182)-AS(100,200) = 18 px, PI(60,190)-PS(60,200) = 10 px; x 0.5 mm
    assert d["disc_heights"]["flexion"]["anterior"] == pytest.approx(0.5 * np.sqrt(200))
    assert d["disc_heights"]["flexion"]["posterior"] == pytest.approx(0.5 * np.sqrt(200))
    assert d["disc_heights"]["extension"]["anterior"] == pytest.approx(9.0)
    assert d["disc_heights"]["extension"]["posterior"] == pytest.approx(5.0)
    assert d["disc_heights"]["extension"]["unit"] == "mm"
    assert d["translation_per_degree_mm"] == pytest.approx(5.0 / np.degrees(np.arctan(8 / 40)), rel=1e-6)
    # centre of rotation: the fixed point of the rotation taking L4's inferior endplate
    # midpoint (90,190) in flexion to (80,186) in extension, by the endplate's turn
    phi = np.arctan2(-8, 40)
    rot = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
    m_f, m_e = np.array([90.0, 190.0]), np.array([80.0, 186.0])
    fixed = np.linalg.solve(np.eye(2) - rot, m_e - rot @ m_f)
    assert d["rotation_centre_px"] == pytest.approx(tuple(fixed), abs=0.5)
    # and in L5's frame: PS (60,200), along +x, depth 40 px, "above" = -y
    u, v = d["rotation_centre"]
    assert (60 + 40 * u, 200 - 40 * v) == pytest.approx(d["rotation_centre_px"])


def test_no_centre_of_rotation_below_the_minimum_angle(tmp_path):
    session, _ = make_session(tmp_path)
    flex, _ = hand_case()
    session.set_landmarks("flexion", flex)
    session.set_landmarks("extension", flex)  # no motion
    d = session.segment_details(0)
    assert d["rotation_centre"] is None and d["rotation_centre_px"] is None
    assert "centre of rotation undefined" in d["rotation_centre_note"]
    assert d["translation_per_degree_mm"] is None
