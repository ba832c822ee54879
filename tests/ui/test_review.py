"""Review mode: a saved session or SR opens read-only, exactly as reported."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from app.report_data import load_report
from app.report_sr import write_sr
from app.report_tables import csv_text
from tests.app import _report_fixtures as fx
from ui.qt_review import next_version_path


@pytest.fixture
def study(tmp_path):
    return fx.make_study(tmp_path / "study")


@pytest.fixture
def window(make_window):
    return make_window()


def test_next_version_path(tmp_path):
    assert next_version_path(tmp_path / "case.json").name == "case.v2.json"
    (tmp_path / "case.v2.json").write_text("{}")
    assert next_version_path(tmp_path / "case.json").name == "case.v3.json"
    assert next_version_path(tmp_path / "case.v2.json").name == "case.v3.json"
    assert next_version_path(tmp_path / "report.dcm").name == "report.v2.json"


def test_session_opens_read_only_with_the_reported_table(window, study):
    assert window.open_paths([str(study)])
    review = window.review
    assert review.active
    assert window.session.roles == ("flexion", "extension")
    np.testing.assert_array_equal(window.session.landmarks("flexion"), fx.landmarks("flexion"))
    # the saved rows, not a recomputation: L3-L4 was reported as 4.75 mm [3.85, 5.65]
    assert review.panel.cell("L3-L4", "Translation (mm)") == "+4.8 ± 0.9"
    assert review.panel.cell("L3-L4", "Angulation (°)") == "+7.0 ± 2.1"
    assert review.panel.cell("L2-L3", "Result").startswith("BORDERLINE")
    assert review.panel.isVisible() and not window.results.isVisible()
    # the hand-written rows differ from what the landmarks give: the user is told
    assert any("stored values differ from its landmarks" in m for m in window.banner.messages())
    assert "read-only" in window.windowTitle()
    for name in ("save", "save_as", "undo", "guided", "swap", "calibrate_flexion"):
        assert not window.actions_by_name[name].isEnabled(), name
    assert not window.results.criteria_combo.isEnabled()
    assert "detector" in review.panel.calibration_label.text()


def test_read_only_ignores_clicks_drags_and_keys(qtbot, window, study):
    window.open_paths([str(study)])
    view = window.views["flexion"]
    before = window.session.landmarks("flexion").copy()
    corner = view.image_to_widget(*before[2, 0])
    target = view.image_to_widget(*(before[2, 0] + 30))
    p0 = QPoint(round(corner.x()), round(corner.y()))
    p1 = QPoint(round(target.x()), round(target.y()))
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=p0)
    qtbot.mouseMove(view, p1)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=p1)
    view.setFocus()
    for key in (Qt.Key.Key_Tab, Qt.Key.Key_Right, Qt.Key.Key_Delete):
        qtbot.keyClick(view, key)
    np.testing.assert_array_equal(window.session.landmarks("flexion"), before)
    assert not window.session.dirty


def test_edit_saves_a_new_version_and_keeps_the_original(qtbot, window, study):
    original = study.read_bytes()
    window.open_paths([str(study)])
    window.review.panel.edit_button.click()
    assert not window.review.active
    assert window.actions_by_name["save"].isEnabled()
    assert window.results.isVisible()
    window.session.set_corner("flexion", 2, 0, (200.0, 220.0))
    assert window.save()
    assert study.read_bytes() == original
    new = study.with_name("session.v2.json")
    doc = json.loads(new.read_text())
    assert doc["flexion"]["landmarks"]["L3"]["AS"] == [200.0, 220.0]
    assert window.session.path == new


def test_sr_opens_with_the_same_landmarks_and_table(window, study, tmp_path):
    sr = write_sr(load_report(study), study.parent / "report.dcm")
    assert window.open_paths([str(sr)])
    assert window.review.active
    np.testing.assert_array_equal(window.session.landmarks("extension"),
                                  fx.landmarks("extension"))
    assert window.review.panel.cell("L4-L5", "Translation (mm)") == "+4.1 ± 0.9"
    assert window.session.path is None  # saving never goes over the SR


def test_missing_films_are_found_by_uid_in_the_chosen_folder(window, study, tmp_path):
    elsewhere = tmp_path / "moved" / "series"
    elsewhere.mkdir(parents=True)
    for name in ("flexion.dcm", "extension.dcm"):
        shutil.move(study.parent / name, elsewhere / f"IM_{name[:3].upper()}")
    asked = []
    window.review.ask_folder = lambda message: asked.append(message) or str(tmp_path / "moved")
    assert window.open_paths([str(study)])
    assert len(asked) == 1 and "SOP Instance UID" in asked[0]
    film = window.session.film("flexion")
    assert film.film is not None
    assert film.image.path.endswith("IM_FLE")
    assert window.review.report.films["extension"].image_status == "ok"


def test_changed_film_is_flagged(window, study):
    with open(study.parent / "flexion.dcm", "ab") as handle:
        handle.write(b"\0\0")
    assert window.open_paths([str(study)])
    assert any("CHANGED" in m for m in window.banner.messages("error"))


def test_corrupt_session_is_an_error_banner(window, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{broken")
    assert not window.open_paths([str(bad)])
    assert not window.review.active
    assert any(str(bad) in m for m in window.banner.messages("error"))


def test_export_in_review_writes_the_reported_rows(window, study, tmp_path):
    window.open_paths([str(study)])
    out = window.review.export(tmp_path / "table.csv")
    assert out.read_text() == csv_text(load_report(study))
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[2]["translation_mm"]) == 4.75
    pdf = window.review.export(tmp_path / "r.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")


def test_export_sr_in_review_round_trips(window, study, tmp_path):
    from app.report_sr import read_sr

    window.open_paths([str(study)])
    sr = window.review.export(tmp_path / "again.dcm")
    assert dict(read_sr(sr)) == fx.without_paths(json.loads(study.read_text()))


def test_export_after_edit_is_the_live_session(window, study, tmp_path):
    window.open_paths([str(study)])
    window.review.enter_edit()
    window.session.set_corner("flexion", 2, 2, (270.0, 300.0))
    doc = json.loads(window.review.export(tmp_path / "live.json").read_text())
    live = window.session.result_rows()
    assert doc["segments"][2]["translation_mm"] == live[2]["translation_mm"]
    assert doc["segments"][2]["translation_mm"] != 4.75  # not the reviewed rows
    with pytest.raises(Exception, match="unknown report format"):
        window.review.export(tmp_path / "x.txt")


def test_opening_films_ends_the_review(window, study):
    window.open_paths([str(study)])
    assert window.review.active
    films = [str(study.parent / "flexion.dcm"), str(study.parent / "extension.dcm")]
    assert window.open_paths(films)
    assert not window.review.active
    assert window.actions_by_name["save"].isEnabled()
    assert window.results.isVisible() and not window.review.panel.isVisible()
    assert window.results.criteria_combo.isEnabled()


def test_reviewing_another_report_stays_read_only(window, study, tmp_path):
    window.open_paths([str(study)])
    other = fx.make_study(tmp_path / "other", uncalibrated_view="flexion")
    assert window.open_paths([str(other)])
    assert window.review.active and window.review.source == other
    assert not window.actions_by_name["save"].isEnabled()
    assert window.review.panel.cell("L3-L4", "Translation (mm)") == "—"


def test_review_shows_reader_local_time_legend_and_warnings(window, study, monkeypatch):
    import time

    from ui.qt_review import local_time

    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        assert local_time("2026-11-21T10:00:00+00:00") == "2026-11-21 11:00 CET"
        assert local_time("2026-07-01T10:00:00+00:00") == "2026-07-01 12:00 CEST"
        assert local_time(None) == "at an unknown time"
        doc = json.loads(study.read_text())
        doc["reader"] = {"name": "Dr <Example>", "comment": "second read"}
        study.write_text(json.dumps(doc))
        assert window.open_paths([str(study)])
        panel = window.review.panel
        text = panel.source_label.text()
        assert "Dr &lt;Example&gt;" in text and "second read" in text
        assert "2026-11-21 11:00 CET" in text and "T10:00:00" not in text
        methods = {m for view in ("flexion", "extension") for marks in doc[view]["placement"].values()
                   for m in marks.values()}
        legend = panel.legend_label.text()
        assert methods and all(m in legend for m in methods)
        shown = panel.warnings_label.text()
        for warning in window.review.report.warnings:
            assert warning in shown
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def _study_with_labels_to_confirm(tmp_path):
    study = fx.make_study(tmp_path / "labels", measured=True)
    doc = json.loads(study.read_text())
    reason = "extension film: low label confidence (L1 0.40 < 0.50)"
    doc["labels_need_review"] = reason
    for row in doc["results"]["segments"]:
        row["needs_review"], row["needs_review_reason"] = True, reason
    study.write_text(json.dumps(doc))
    return study


def test_enter_in_review_confirms_the_labels_in_a_new_version(qtbot, window, tmp_path):
    study = _study_with_labels_to_confirm(tmp_path)
    original = study.read_bytes()
    assert window.open_paths([str(study)]) and window.review.active
    assert window.review.panel.cell("L3-L4", "Result") == "labels to confirm (Enter)"
    assert window.actions_by_name["confirm_labels"].isEnabled()
    assert "Enter confirms" in window.hint_label.text()
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_Return)
    # Enter did what the cell says: the labels are confirmed, as an edit of a new version
    assert not window.review.active and window.session.label_review is None
    assert window.session.path == study.with_name("session.v2.json")
    assert not any(row.get("needs_review") for row in window.session.result_rows())
    assert "labels to confirm" not in window.results.cell("L3-L4", "Result")
    assert study.read_bytes() == original  # the reviewed report is kept as reported
    assert window.session.dirty and window.actions_by_name["save"].isEnabled()


def test_shift_keys_in_review_shift_the_labels_in_a_new_version(qtbot, window, tmp_path):
    study = _study_with_labels_to_confirm(tmp_path)
    assert window.open_paths([str(study)]) and window.review.active
    before = window.session.levels
    assert window.actions_by_name["shift_down"].isEnabled()
    window.actions_by_name["shift_down"].trigger()  # the "]" key
    assert not window.review.active
    assert before == ("L1", "L2", "L3", "L4", "L5", "S1")
    assert window.session.levels == ("L2", "L3", "L4", "L5", "L6", "S1")
    assert window.session.label_review is not None  # shifting is not confirming


def test_review_of_confirmed_labels_keeps_the_shift_keys_off(window, study):
    assert window.open_paths([str(study)]) and window.review.active
    assert window.session.label_review is None
    for name in ("shift_up", "shift_down"):
        assert not window.actions_by_name[name].isEnabled(), name
