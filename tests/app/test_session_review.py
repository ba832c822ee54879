"""Level labels awaiting the reader's confirmation, and several films merged in one edit."""

from __future__ import annotations

import json

import numpy as np

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
