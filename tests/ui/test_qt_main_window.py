"""The real widgets driven by simulated mouse and keyboard (pytest-qt, offscreen)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from ui.qt_results import COLUMNS

ZOOM = 8.0  # widget pixels per image pixel while clicking: a click lands within 1/16 px


def click_at(qtbot, view, xy, button=Qt.MouseButton.LeftButton):
    """Centre the view on image point xy at ZOOM and click the widget pixel that shows it."""
    view.centre_on(*xy, scale=ZOOM)
    t = view.transform
    # widget pixel p shows image x in [(p - o)/s - 0.5, (p + 1 - o)/s - 0.5): independent of the view code
    px = math.floor((xy[0] + 0.5) * t.scale + t.origin_x)
    py = math.floor((xy[1] + 0.5) * t.scale + t.origin_y)
    qtbot.mouseClick(view, button, pos=QPoint(px, py))


def place_by_clicks(qtbot, window, role, truth):
    view = window.views[role]
    for v, c in window.session.corner_order():
        if np.isfinite(truth[v, c]).all():
            click_at(qtbot, view, truth[v, c])
    view.fit()


def expected_synthetic_l4_l5():
    """Hand computation for the synthetic pair (see conftest.synthetic_truth).

    Bodies face +x with flat endplates, so t = x(PI of L4) - x(PS of L5):
    flexion 104 - 102 = 2 px, extension 98 - 99 = -1 px; at 0.6 mm/px
    dt = 1.8 mm, 3 px / 60 px depth = 5 %, no angulation.
    """
    return {"Translation (mm)": 1.8, "Translation (%)": 5.0, "Angulation (°)": 0.0}


def leading_number(text):
    return float(text.split()[0])


@pytest.fixture
def opened(make_window, synthetic_pair):
    window = make_window(loader=synthetic_pair.__getitem__)
    assert window.open_paths(list(synthetic_pair))
    return window


def test_open_assigns_roles_and_shows_both(opened, synthetic_pair):
    assert opened.views["flexion"].film.view == "flexion"
    assert opened.views["extension"].film.view == "extension"
    assert opened.views["flexion"].isVisible() and opened.views["extension"].isVisible()
    assert opened.results.table.rowCount() == 5
    assert opened.banner.messages() == []


def test_guided_clicks_read_back_the_motion(qtbot, opened, synthetic_pair):
    opened.set_guided(True)
    assert opened.views["flexion"].prompt_text() == "Click L1 AS (anterior-superior)"
    for film in synthetic_pair.values():
        place_by_clicks(qtbot, opened, film.view, film.truth)
    assert opened.views["flexion"].prompt_text().startswith("All corners placed")
    for role, film in ((f.view, f) for f in synthetic_pair.values()):
        np.testing.assert_allclose(opened.session.landmarks(role), film.truth, atol=1 / (2 * ZOOM))
    for column, value in expected_synthetic_l4_l5().items():
        assert leading_number(opened.results.cell("L4-L5", column)) == pytest.approx(value, abs=0.06)
    assert opened.results.cell("L4-L5", "Calibration") == "detector"
    assert "Flexion and extension films: spacing measured at the detector" in opened.results.warnings_label.text()


def _place_truth(window, synthetic_pair):
    for film in synthetic_pair.values():
        window.session.set_landmarks(film.view, film.truth)


def test_drag_corner_updates_row_live_and_undo(qtbot, opened, synthetic_pair):
    _place_truth(opened, synthetic_pair)
    view = opened.views["flexion"]
    before = opened.results.cell("L4-L5", "Translation (mm)")
    start = synthetic_pair[view.film.path].truth[3, 2]  # L4 PI on flexion at (104, 235)
    view.centre_on(*start, scale=2.0)
    p0 = view.image_to_widget(*start).toPoint()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=p0)
    seen = []
    for dx in (4, 8, 12):  # widget px: 2, 4, 6 image px anterior
        qtbot.mouseMove(view, pos=p0 + QPoint(dx, 0))
        seen.append(leading_number(opened.results.cell("L4-L5", "Translation (mm)")))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=p0 + QPoint(12, 0))
    # each 2 image px moves the flexion translation by 1.2 mm (0.6 mm/px): seen live during the drag
    assert np.diff(seen) == pytest.approx([1.2, 1.2], abs=0.11)
    assert seen[-1] == pytest.approx(leading_number(before) + 3.6, abs=0.11)
    assert opened.session.film("flexion").placement[3, 2] == "manual"
    opened.actions_by_name["undo"].trigger()
    assert opened.results.cell("L4-L5", "Translation (mm)") == before


def test_keyboard_nudge_and_shortcut_undo(qtbot, opened, synthetic_pair):
    _place_truth(opened, synthetic_pair)
    view = opened.views["extension"]
    view.setFocus()
    view.state.selected = (0, 0)
    qtbot.keyClick(view, Qt.Key.Key_Right)
    qtbot.keyClick(view, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    truth = synthetic_pair[view.film.path].truth
    assert opened.session.landmarks("extension")[0, 0] == pytest.approx(truth[0, 0] + [0.25, 1.0])
    assert opened.actions_by_name["undo"].shortcut().toString() == "Ctrl+Z"
    assert opened.actions_by_name["redo"].shortcut().toString() == "Ctrl+Shift+Z"
    opened.actions_by_name["undo"].trigger()
    assert opened.session.landmarks("extension")[0, 0] == pytest.approx(truth[0, 0])
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert np.isnan(opened.session.landmarks("extension")[0, 0]).all()


def test_selected_segment_highlight_follows_table(qtbot, opened, synthetic_pair):
    _place_truth(opened, synthetic_pair)
    opened.results.table.selectRow(2)
    assert opened.session.selected_segment == 2
    opened.session.selected_segment = 4
    assert opened.results.table.selectionModel().selectedRows()[0].row() == 4


def test_save_reopen_same_numbers(qtbot, make_window, opened, synthetic_pair, tmp_path):
    _place_truth(opened, synthetic_pair)
    opened.session.set_corner("flexion", 1, 2, (109.0, 135.0))
    shown = {(s, c): opened.results.cell(s, c) for s in opened.session.segments for c in COLUMNS}
    target = tmp_path / "case.json"  # beside the films: a session opens only films in its own folder
    opened.ask_save_path = lambda: str(target)
    assert opened.actions_by_name["save"].isEnabled()
    opened.actions_by_name["save"].trigger()
    assert json.loads(target.read_text())["format"] == "lumbar-instability-session"
    assert "*" not in opened.windowTitle()
    other = make_window(loader=synthetic_pair.__getitem__)
    assert other.open_paths([str(target)])  # a saved session opens in review mode (issue #6)
    other.actions_by_name["review_edit"].trigger()  # continue editing it
    assert other.results.isVisible()
    assert {(s, c): other.results.cell(s, c) for s in other.session.segments for c in COLUMNS} == shown
    np.testing.assert_array_equal(other.session.landmarks("flexion"), opened.session.landmarks("flexion"))


def test_criteria_combo_changes_flags(qtbot, opened, synthetic_pair):
    flex = synthetic_pair[next(iter(synthetic_pair))].truth.copy()
    ext = next(f for f in synthetic_pair.values() if f.view == "extension").truth.copy()
    # tilt L4's inferior endplate on extension by 12 degrees: default (10) flags it, white-panjabi (20) does not
    ext[3, 3, 1] = ext[3, 2, 1] - 60 * math.tan(math.radians(12))
    precise = np.full((6, 4), 0.02)  # mm: a 95 % interval far narrower than 2 degrees
    opened.session.set_landmarks("flexion", flex, landmark_sd_mm=precise)
    opened.session.set_landmarks("extension", ext, landmark_sd_mm=precise)
    assert leading_number(opened.results.cell("L4-L5", "Angulation (°)")) == pytest.approx(12.0, abs=0.05)
    assert opened.results.cell("L4-L5", "Result") == "UNSTABLE: angulation"
    assert opened.results.statuses[3] == "unstable"
    opened.results.criteria_combo.setCurrentText("white-panjabi")
    assert opened.session.criteria == "white-panjabi"
    assert opened.results.cell("L4-L5", "Result") == "within thresholds"
    assert "measurement aid, not a diagnosis" in opened.results.disclaimer.text()
    # manual SDs (0.6 mm) on 12 mm deep bodies: 12 +- ~4 degrees straddles 10: borderline, not a yes
    opened.results.criteria_combo.setCurrentText("default")
    opened.session.set_landmarks("extension", ext)
    opened.session.set_landmarks("flexion", flex)
    low, high = opened.session.result_rows()[3]["angulation_deg_ci95"]
    assert low < 10 < high
    assert opened.results.cell("L4-L5", "Result") == "BORDERLINE (ABOVE threshold): angulation"
    assert opened.results.statuses[3] == "borderline"
    # above a threshold: strong orange, bold; a below-threshold borderline row would be pale
    item = opened.results.table.item(3, 9)
    assert item.background().color().getRgb()[:3] == (176, 70, 0) and item.font().bold()


def test_uncalibrated_film_never_shows_mm(make_window, synthetic_pair):
    from measure import Calibration

    for film in synthetic_pair.values():
        if film.view == "extension":
            film.calibration = Calibration.uncalibrated("no spacing")
    window = make_window(loader=synthetic_pair.__getitem__)
    window.open_paths(list(synthetic_pair))
    assert any("no usable pixel spacing" in m for m in window.banner.messages())
    _place_truth(window, synthetic_pair)
    assert window.results.cell("L4-L5", "Translation (mm)") == "—"
    assert window.results.cell("L4-L5", "Extension transl. (mm)") == "—"
    assert leading_number(window.results.cell("L4-L5", "Translation (%)")) == pytest.approx(5.0, abs=0.01)
    tip = window.results.table.item(3, COLUMNS.index("Translation (mm)")).toolTip()
    assert "extension film has no usable pixel spacing" in tip
    assert window.views["extension"].overlay_texts()["bottom_left"][0].startswith("UNCALIBRATED")


def test_manual_calibration_by_drawing(qtbot, opened, synthetic_pair):
    _place_truth(opened, synthetic_pair)
    opened.ask_length = lambda role, length_px: 20.0
    opened.start_calibration("flexion")
    view = opened.views["flexion"]
    view.centre_on(150.0, 200.0, scale=1.0)
    a = view.image_to_widget(100.0, 200.0).toPoint()
    b = view.image_to_widget(200.0, 200.0).toPoint()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(view, pos=b)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=b)
    cal = opened.session.calibration("flexion")
    assert str(cal.source) == "manual"
    assert cal.column_spacing_mm == pytest.approx(0.2, rel=1e-9)  # 20 mm over 100 px
    # compact in the cell, whole in the tooltip (the long form was cut off in the table)
    assert opened.results.cell("L4-L5", "Calibration") == "flex. manual / ext. detector"
    item = opened.results.table.item(3, COLUMNS.index("Calibration"))
    assert "flexion manual, extension detector" in item.toolTip()
    assert view.state.mode == "edit"
    assert view.overlay_texts()["bottom_left"][1] == "Calibration: manual"


@pytest.mark.parametrize(
    ("views", "bad", "expected"),
    [
        (("flexion",), (), "Only one film"),
        (("flexion", "flexion"), (), "Both films are flexion"),
        (("flexion", "extension", "flexion"), (), "3 films given"),
        (("flexion", "extension"), ("broken.dcm",), "broken.dcm: not a DICOM file"),
    ],
)
def test_bad_input_messages_in_window(make_window, tmp_path, views, bad, expected):
    from app.errors import InputFileError
    from measure import Calibration, CalibrationSource
    from tests.ui.conftest import SyntheticFilm, synthetic_image, synthetic_truth

    films = {}
    for i, view in enumerate(views):
        path = tmp_path / f"{i}-{view}.dcm"
        path.write_bytes(b"x")
        films[str(path)] = SyntheticFilm(
            str(path), view, synthetic_image(synthetic_truth()), Calibration(0.6, 0.6, CalibrationSource.DETECTOR)
        )
    for name in bad:
        (tmp_path / name).write_bytes(b"garbage")

    def loader(path):
        if path in films:
            return films[path]
        raise InputFileError(path, "not a DICOM file")

    window = make_window(loader=loader)
    window.open_paths([tmp_path])
    assert any(expected in m for m in window.banner.messages()), window.banner.messages()
    # unreadable files and refused sets are errors (red), the rest warnings
    level = "error" if bad or len(views) > 2 else "warning"
    assert any(expected in m for m in window.banner.messages(level))
    # the viewer stays usable: menus enabled, another open works
    assert window.actions_by_name["open"].isEnabled()


def test_unreadable_only_file_keeps_previous_study(opened, tmp_path):
    bad = tmp_path / "nothing.dcm"
    bad.write_bytes(b"x")
    before = opened.session.roles
    assert not opened.open_paths([bad])
    assert opened.session.roles == before
    assert any("nothing.dcm" in m for m in opened.banner.messages("error"))


def test_mismatch_banner_is_prominent(make_window, synthetic_pair):
    from tests.ui.conftest import SyntheticIdentity

    films = list(synthetic_pair.values())
    films[1].identity = SyntheticIdentity(patient_id="OTHER-2", patient_name="Other^Person", study_instance_uid="9.9")
    window = make_window(loader=synthetic_pair.__getitem__)
    window.open_paths(list(synthetic_pair))
    text = window.banner.messages("mismatch")
    assert len(text) == 1 and "OTHER-2" in text[0] and "SYNTH-1" in text[0]
    assert "Other" not in text[0] and "Synthetic" not in text[0]


def test_one_film_mode_and_swap(qtbot, opened, synthetic_pair):
    opened.actions_by_name["layout_extension"].trigger()
    assert not opened.views["flexion"].isVisible() and opened.views["extension"].isVisible()
    opened.actions_by_name["layout_both"].trigger()
    flex_film = opened.views["flexion"].film
    opened.actions_by_name["swap"].trigger()
    assert opened.views["extension"].film is flex_film
    opened.actions_by_name["undo"].trigger()
    assert opened.views["flexion"].film is flex_film


def test_overlays_show_id_not_name(opened):
    texts = opened.views["flexion"].overlay_texts()
    flat = " ".join(line for lines in texts.values() for line in lines)
    assert "ID: SYNTH-1" in flat and "Synthetic" not in flat
    assert "Calibration: detector" in flat and "Zoom" in flat


def test_wheel_zoom_keeps_point_under_cursor(qtbot, opened):
    view = opened.views["flexion"]
    pos = QPointF(123, 210)
    before = view.transform.to_image(123.5, 210.5)
    from PySide6.QtGui import QWheelEvent

    event = QWheelEvent(
        pos, view.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 240), Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
    )
    scale = view.transform.scale
    view.wheelEvent(event)
    assert view.transform.scale == pytest.approx(scale * 1.25**2)
    assert view.transform.to_image(123.5, 210.5) == pytest.approx(before)
    view.one_to_one()
    assert view.transform.scale == 1.0


def test_window_level_drag_presets_and_invert(qtbot, opened):
    view = opened.views["flexion"]
    grey_before = view.display_array.copy()
    p = QPoint(100, 100)
    qtbot.mousePress(view, Qt.MouseButton.RightButton, pos=p)
    qtbot.mouseMove(view, pos=p + QPoint(-100, 0))
    qtbot.mouseRelease(view, Qt.MouseButton.RightButton, pos=p + QPoint(-100, 0))
    _, w = view.window
    assert w == pytest.approx(701 - 100 * 0.002 * 700)  # synthetic range 200..900
    assert view.window_preset == "Custom"
    view.apply_window_preset("Full range")
    assert view.window == pytest.approx((550.0, 701.0))
    view.reset_window()
    np.testing.assert_array_equal(view.display_array, grey_before)
    view.toggle_invert()
    np.testing.assert_array_equal(view.display_array, 255 - grey_before)
    assert "Inverted" in view.overlay_texts()["bottom_right"]


def test_stabilised_comparison_holds_lower_body(qtbot, opened, synthetic_pair):
    _place_truth(opened, synthetic_pair)
    opened.session.selected_segment = 3  # L4-L5: L5 held still
    opened.show_comparison()
    dialog = opened.comparison
    assert dialog.ok
    dialog.slider.setValue(0)
    flex = dialog.blended.astype(int)
    dialog.slider.setValue(100)
    ext = dialog.blended.astype(int)
    # L5 occupies the same pixels in both (same body, moved onto itself); L4 does not
    assert "L5 held still" in dialog.caption.text()
    diff = np.abs(flex - ext)
    assert diff.mean() > 0  # the upper body moved
    # the extension film's L5 (x 99..159) mapped onto flexion's (x 102..162)
    l5_rows = slice(*np.round(np.array([260, 300]) - dialog._crop_origin[1]).astype(int))
    assert diff[l5_rows].max() <= 1
    dialog.flicker.setChecked(True)
    dialog._on_tick()
    assert np.array_equal(dialog.blended, dialog._ext)
    dialog.close()


def test_double_click_row_opens_comparison(qtbot, opened, synthetic_pair):
    _place_truth(opened, synthetic_pair)
    table = opened.results.table
    rect = table.visualRect(table.model().index(1, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened.session.selected_segment == 1
    assert opened.comparison.isVisible() and "L3 held still" in opened.comparison.caption.text()
    opened.comparison.close()


def test_comparison_needs_corners(opened):
    opened.show_comparison()
    assert any("place at least two corners" in m for m in opened.banner.messages("error"))


def test_close_prompt_on_unsaved_changes(qtbot, opened, synthetic_pair):
    opened.session.set_corner("flexion", 0, 0, (10.0, 10.0))
    opened.ask_close = lambda: "cancel"
    opened.close()
    assert opened.isVisible()
    opened.ask_close = lambda: "discard"
    opened.close()
    assert not opened.isVisible()


def test_recovery_after_crash(qtbot, make_window, synthetic_pair, state_dir):
    first = make_window(loader=synthetic_pair.__getitem__)
    first.open_paths(list(synthetic_pair))
    first.session.set_corner("flexion", 2, 3, (161.5, 190.25))
    assert (state_dir / "recovery.autosave.json").exists()
    # a crash: the window is never closed properly; a new viewer starts
    second = make_window(loader=synthetic_pair.__getitem__)
    assert second.offer_recovery()
    button = second.banner.action_button("recovery")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert second.session.landmarks("flexion")[2, 3].tolist() == [161.5, 190.25]
    assert second.session.dirty
    first.ask_close = lambda: "discard"


def test_drop_files_opens_them(qtbot, make_window, synthetic_pair):
    window = make_window(loader=synthetic_pair.__getitem__)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in synthetic_pair])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.session.roles == ("flexion", "extension"), timeout=2000)
    assert window.recent_files()[0][0].endswith(".dcm")


def test_custom_thresholds(qtbot, opened, synthetic_pair):
    precise = np.full((6, 4), 0.02)
    for film in synthetic_pair.values():
        opened.session.set_landmarks(film.view, film.truth, landmark_sd_mm=precise)
    assert opened.results.cell("L4-L5", "Result") == "within thresholds"  # 1.8 mm, 0 degrees
    dialog = opened.results.edit_thresholds()
    check_mm, spin_mm = dialog.boxes["translation_mm"]
    assert check_mm.isChecked() and spin_mm.value() == 4.0  # filled from the default preset
    spin_mm.setValue(1.5)
    dialog.boxes["angulation_deg"][0].setChecked(False)
    assert dialog.apply()
    assert opened.session.criteria == "custom"
    assert opened.results.criteria_combo.currentText() == "custom"
    assert opened.results.cell("L4-L5", "Result") == "UNSTABLE: translation"
    for check, _ in dialog.boxes.values():
        check.setChecked(False)
    assert not dialog.apply()
    assert "at least one" in dialog.error.text()
    opened.actions_by_name["undo"].trigger()
    assert opened.session.criteria == "default"
    assert opened.results.cell("L4-L5", "Result") == "within thresholds"
    dialog.close()


def test_status_bar_shows_position_and_value(qtbot, opened):
    view = opened.views["flexion"]
    view.centre_on(130.0, 160.0, scale=4.0)
    t = view.transform
    px, py = math.floor(130.5 * t.scale + t.origin_x), math.floor(160.5 * t.scale + t.origin_y)
    # the mouse on widget pixel (px, py) points at that pixel's centre
    x, y = (px + 0.5 - t.origin_x) / t.scale - 0.5, (py + 0.5 - t.origin_y) / t.scale - 0.5
    assert abs(x - 130) < 0.25 and abs(y - 160) < 0.25
    qtbot.mouseMove(view, pos=QPoint(px, py))
    assert opened.position_label.text() == f"flexion: x {x:.2f}  y {y:.2f} px  value 900"
    opened.window_combo.textActivated.emit("Full range")
    assert view.window_preset == "Full range" and opened.views["extension"].window_preset == "Full range"


def test_ctrl_z_and_ctrl_shift_z_keys(qtbot, opened):
    opened.activateWindow()
    view = opened.views["flexion"]
    view.setFocus()
    opened.session.set_corner("flexion", 0, 0, (50.0, 60.0))
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.isnan(opened.session.landmarks("flexion")[0, 0]).all()
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert opened.session.landmarks("flexion")[0, 0].tolist() == [50.0, 60.0]


def test_one_film_mode_shows_per_film_values_only(make_window, synthetic_pair):
    path, film = next((p, f) for p, f in synthetic_pair.items() if f.view == "flexion")
    window = make_window(loader=synthetic_pair.__getitem__)
    window.open_paths([path])
    assert window.views["flexion"].isVisible() and not window.views["extension"].isVisible()
    assert any("Only one film" in m for m in window.banner.messages())
    window.session.set_landmarks("flexion", film.truth)
    # flexion L4-L5: PI of L4 at x 104, PS of L5 at x 102 -> +2 px = +1.2 mm; flat endplates -> 0 degrees
    assert window.results.cell("L4-L5", "Flexion transl. (mm)") == "+1.2"
    assert window.results.cell("L4-L5", "Flexion angle (°)") == "+0.0"
    assert window.results.cell("L4-L5", "Translation (mm)") == "—"
    assert window.results.cell("L4-L5", "Angulation (°)") == "—"
    assert window.results.cell("L4-L5", "Result") == "one film only"


def test_internal_error_becomes_a_banner(opened, caplog):
    try:
        raise RuntimeError("boom in a slot")
    except RuntimeError as exc:
        opened.report_internal_error(type(exc), exc, exc.__traceback__)
    assert any("Internal error: RuntimeError: boom in a slot" in m for m in opened.banner.messages("error"))
    assert "boom in a slot" in caplog.text
    assert opened.actions_by_name["open"].isEnabled()


def test_linked_zoom_and_pan(qtbot, opened):
    flex, ext = opened.views["flexion"], opened.views["extension"]
    ext_before = ext.transform
    flex.centre_on(120.0, 200.0, scale=3.0)
    assert ext.transform == ext_before  # not linked
    opened.actions_by_name["link"].trigger()
    flex.centre_on(120.0, 200.0, scale=3.0)
    assert ext.transform.scale == 3.0
    assert ext.transform.to_image(ext.width() / 2, ext.height() / 2) == pytest.approx((120.0, 200.0))
    ext.zoom_to(5.0)
    assert flex.transform.scale == 5.0


def test_result_cell_colours_and_tooltips_tell_above_from_below_threshold(qtbot):
    from ui.qt_results import format_row

    base = {
        "segment": "L3-L4", "measured": True, "translation_mm": None, "translation_pct": 5.0,
        "angulation_deg": 8.0, "criterion": "angulation", "borderline": True,
        "thresholds": {"translation_mm": 4.0, "translation_pct": None, "angulation_deg": 10.0},
    }
    roles = ("flexion", "extension")
    texts, tips, status = format_row({**base, "unstable": False, "translation_assessed": False,
                                      "angulation_deg_ci95": [6.0, 11.0]}, roles)
    assert (texts[9], status) == ("BORDERLINE (below thresholds) (angulation only)", "borderline")
    assert tips[9].endswith("translation criterion not applied: these criteria need millimetres")
    texts, tips, _ = format_row({**base, "unstable": True, "translation_assessed": False,
                                 "angulation_deg": 11.0, "angulation_deg_ci95": [9.0, 13.0],
                                 "thresholds": {"translation_mm": None, "translation_pct": None,
                                                "angulation_deg": 10.0}}, roles)
    assert texts[9] == "BORDERLINE (ABOVE threshold): angulation (angulation only)"
    assert format_row({**base, "borderline": False, "unstable": False, "angulation_deg_ci95": [7.0, 9.0],
                       "translation_assessed": False}, roles)[0][9] == "within thresholds (angulation only)"
    assert "no translation threshold" in tips[9] and "millimetres" not in tips[9]


def test_no_recover_offer_while_another_viewer_runs(qtbot, make_window, synthetic_pair, state_dir):
    import subprocess
    import sys

    first = make_window(loader=synthetic_pair.__getitem__)
    first.open_paths(list(synthetic_pair))
    first.session.set_corner("flexion", 2, 3, (161.5, 190.25))
    recovery = state_dir / "recovery.autosave.json"
    assert recovery.exists()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (state_dir / f"viewer.{other.pid}.lock").write_text(f"{other.pid}\n")
        second = make_window(loader=synthetic_pair.__getitem__)
        assert not second.offer_recovery()  # the other viewer's live work is not a crash
        assert second.banner.action_button("recovery") is None
        assert "Another viewer is open" in second.statusBar().currentMessage()
        assert recovery.exists()  # not moved aside
        # and this window autosaves to its own file, not over the other's
        assert second.session.recovery_path.name == f"recovery.{os.getpid()}.autosave.json"
    finally:
        other.kill()
        other.wait()
    # the other process is gone (a crash): its lock is stale, the work is offered
    third = make_window(loader=synthetic_pair.__getitem__)
    assert third.offer_recovery()
    assert not (state_dir / f"viewer.{other.pid}.lock").exists()
    assert (state_dir / f"viewer.{os.getpid()}.lock").exists()
    third.close()
    assert not (state_dir / f"viewer.{os.getpid()}.lock").exists()
    first.ask_close = lambda: "discard"


def test_no_calibration_or_result_cell_is_cut_off(qtbot, make_window, sample):
    """Mixed calibration sources and the longest verdicts: every text fits its cell."""
    from PySide6.QtGui import QFontMetrics

    from app.session import ManualCalibration
    from tests.ui.test_sample_study import truth_arrays

    window = make_window(size=(1500, 950))
    window.open_paths([str(sample / "flexion.dcm"), str(sample / "extension.dcm")])
    truth = json.loads((sample / "truth.json").read_text())
    for role in ("flexion", "extension"):
        window.session.set_landmarks(role, truth_arrays(truth, role))
    window.session.set_manual_calibration("flexion", ManualCalibration((10.0, 10.0), (110.0, 10.0), 15.0))
    qtbot.wait(50)
    table = window.results.table
    assert window.results.cell("L4-L5", "Calibration") == "flex. manual / ext. magn.-corrected"
    checked = 0
    for r in range(table.rowCount()):
        for column in ("Calibration", "Result"):
            c = COLUMNS.index(column)
            item = table.item(r, c)
            width = table.columnWidth(c) - 8  # the cell's margins
            metrics = QFontMetrics(item.font())
            needed = metrics.boundingRect(0, 0, width, 10_000, int(Qt.TextFlag.TextWordWrap), item.text())
            assert needed.width() <= width and needed.height() <= table.rowHeight(r), (r, column, item.text())
            checked += 1
    assert checked == 2 * table.rowCount() == 10
