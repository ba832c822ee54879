"""Ruler and angle tools in the viewer (ui.annotation_tools) and the reader's name and
comment (ui.reader_dialog): values by hand, Esc, drag, delete, undo, save/reopen."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt


@pytest.fixture
def window(make_window, synthetic_pair):
    window = make_window(loader=synthetic_pair.__getitem__)
    assert window.open_paths(list(synthetic_pair))
    return window


def _image_point(view, wx: int, wy: int) -> tuple[float, float]:
    """The image point a click at widget pixel (wx, wy) stands for (pixel centre)."""
    return view.transform.to_image(wx + 0.5, wy + 0.5)


def _click(qtbot, view, wx, wy):
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(wx, wy))


def test_ruler_by_two_clicks_in_mm_with_its_source(qtbot, window, synthetic_pair):
    tools, view = window.annotation_tools, window.views["flexion"]
    spacing = next(iter(synthetic_pair.values())).calibration.column_spacing_mm  # the fixture's, square
    window.actions_by_name["tool_ruler"].trigger()
    assert tools.tool == "ruler"
    _click(qtbot, view, 100, 120)
    assert window.session.annotations("flexion") == () and tools.pending["points"]
    _click(qtbot, view, 180, 300)
    (annotation,) = window.session.annotations("flexion")
    (x0, y0), (x1, y1) = _image_point(view, 100, 120), _image_point(view, 180, 300)
    np.testing.assert_allclose(annotation.points_px, [[x0, y0], [x1, y1]], atol=1e-9)
    label, _, value = window.session.annotation_values("flexion")[0]
    assert label == "R1" and value.unit == "mm"
    assert value.value == pytest.approx(math.hypot(x1 - x0, y1 - y0) * spacing)
    assert "detector plane" in value.text
    assert window.statusBar().currentMessage() == f"R1 on the flexion film: {value.text}"
    assert window.session.undo_text == "Add ruler"
    assert tools.tool == "ruler"  # stays on for the next one


def test_uncalibrated_film_gives_pixels_never_mm(qtbot, window):
    from measure import Calibration

    film = window.session.film("extension")
    film.dicom_calibration = Calibration.uncalibrated("no spacing")
    window.annotation_tools.set_tool("ruler")
    view = window.views["extension"]
    _click(qtbot, view, 50, 50)
    _click(qtbot, view, 50, 150)
    (_, _, value), = window.session.annotation_values("extension")
    (x0, y0), (x1, y1) = _image_point(view, 50, 50), _image_point(view, 50, 150)
    assert value.unit == "px" and value.value == pytest.approx(math.hypot(x1 - x0, y1 - y0))
    assert value.calibration_source == "uncalibrated" and value.text == f"{value.value:.1f} px (uncalibrated: no mm)"


def test_angles_three_points_and_two_lines(qtbot, window):
    view = window.views["flexion"]
    window.annotation_tools.set_tool("angle")
    for p in ((200, 100), (100, 100), (100, 200)):  # right angle at (100, 100)
        _click(qtbot, view, *p)
    window.annotation_tools.set_tool("lines")
    for p in ((50, 300), (150, 300), (50, 350), (150, 450)):  # horizontal vs 45 degrees
        _click(qtbot, view, *p)
    values = [(label, round(v.value, 6)) for label, _, v in window.session.annotation_values("flexion")]
    assert values == [("A1", 90.0), ("A2", 45.0)]


def test_escape_drops_points_then_leaves_the_tool(qtbot, window):
    view = window.views["flexion"]
    window.annotation_tools.set_tool("angle")
    _click(qtbot, view, 100, 100)
    _click(qtbot, view, 120, 100)
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert window.annotation_tools.pending is None and window.annotation_tools.tool == "angle"
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert window.annotation_tools.tool is None
    assert not window.actions_by_name["tool_angle"].isChecked()
    assert window.session.annotations("flexion") == ()


def test_drag_a_point_delete_and_undo(qtbot, window):
    session, view, tools = window.session, window.views["flexion"], window.annotation_tools
    session.add_annotation("flexion", "ruler", [_image_point(view, 100, 100), _image_point(view, 200, 100)])
    tools.set_tool("ruler")
    end = view.image_to_widget(*session.annotations("flexion")[0].points_px[1])
    start = QPoint(round(end.x() - 0.5), round(end.y() - 0.5))
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
    for dy in (10, 20, 30):
        qtbot.mouseMove(view, start + QPoint(0, dy))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=start + QPoint(0, 30))
    (moved,) = session.annotations("flexion")  # no new ruler: the point was moved
    np.testing.assert_allclose(moved.points_px[1], _image_point(view, start.x(), start.y() + 30), atol=1e-9)
    assert session.undo_text == "Move ruler"
    session.undo()
    np.testing.assert_allclose(session.annotations("flexion")[0].points_px[1],
                               _image_point(view, 200, 100), atol=1e-6)
    assert tools.selected == ("flexion", 0)
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert session.annotations("flexion") == () and session.undo_text == "Delete ruler"
    session.undo()
    assert len(session.annotations("flexion")) == 1


def test_drawn_in_the_view_and_kept_through_save_and_reopen(qtbot, window, make_window, synthetic_pair, tmp_path):
    view = window.views["flexion"]
    window.session.add_annotation("flexion", "ruler", [_image_point(view, 60, 400), _image_point(view, 260, 400)])
    before = view.grab().toImage()
    mid = view.image_to_widget(*np.mean(window.session.annotations("flexion")[0].points_px, axis=0))
    colour = before.pixelColor(round(mid.x()), round(mid.y()))
    assert (colour.red(), colour.green(), colour.blue()) == (255, 255, 255)  # the white ruler line
    path = tmp_path / "s.json"
    window._save_to(path)
    other = make_window(loader=synthetic_pair.__getitem__)
    assert other.open_session(str(path))
    assert other.session.annotations("flexion") == window.session.annotations("flexion")


def test_reader_name_and_comment_round_trip(qtbot, window, make_window, synthetic_pair, tmp_path):
    field = window.reader_dialog
    assert window.actions_by_name["reader"].isEnabled()

    def answer(dialog):
        assert dialog.name_edit.text() == "" and dialog.comment_edit.toPlainText() == ""
        dialog.name_edit.setText("  Dr Jane Smith ")
        dialog.comment_edit.setPlainText("Flexion film slightly rotated.")
        return dialog.values()

    field.ask = answer
    assert field.edit()
    assert window.session.reader == {"name": "Dr Jane Smith", "comment": "Flexion film slightly rotated."}
    assert window.session.dirty
    path = tmp_path / "s.json"
    window._save_to(path)
    other = make_window(loader=synthetic_pair.__getitem__)
    assert other.open_session(str(path))
    dialog = other.reader_dialog.make_dialog()
    assert (dialog.name_edit.text(), dialog.comment_edit.toPlainText()) == (
        "Dr Jane Smith", "Flexion film slightly rotated.")
    dialog.close()
    # a new session offers the name last typed, never the comment
    third = make_window(loader=synthetic_pair.__getitem__)
    third.open_paths(list(synthetic_pair))
    fresh = third.reader_dialog.make_dialog()
    assert (fresh.name_edit.text(), fresh.comment_edit.toPlainText()) == ("Dr Jane Smith", "")
    fresh.close()
    # cancelling changes nothing
    other.reader_dialog.ask = lambda d: None
    assert not other.reader_dialog.edit()


def test_review_mode_shows_them_read_only(qtbot, make_window, tmp_path):
    import json

    from tests.app import _report_fixtures as fx

    if not (fx.SAMPLE_DIR / "truth.json").exists():
        pytest.skip("sample study absent")
    path = fx.sample_session(tmp_path / "s")
    doc = json.loads(path.read_text())
    doc["annotations"] = [{"kind": "ruler", "film": "flexion", "points_px": [[300, 400], [600, 800]]}]
    path.write_text(json.dumps(doc))
    window = make_window()
    assert window.open_paths([str(path)]) and window.review.active
    for name in ("tool_ruler", "tool_angle", "tool_lines", "tool_delete", "reader"):
        assert not window.actions_by_name[name].isEnabled(), name
    (label, _, value), = window.session.annotation_values("flexion")
    assert (label, value.text) == ("R1", f"{500 * 0.25 / 1.2:.1f} mm (magnification-corrected)")
    window.annotation_tools.tool = "ruler"  # even if a tool were on, no click edits a reviewed report
    _click(qtbot, window.views["flexion"], 100, 100)
    _click(qtbot, window.views["flexion"], 200, 200)
    assert len(window.session.annotations("flexion")) == 1
    window.review.enter_edit()
    assert window.actions_by_name["tool_ruler"].isEnabled() and window.actions_by_name["reader"].isEnabled()
