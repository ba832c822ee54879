"""Free rulers and angles (app.annotations, Session.add_annotation): values by hand,
never mm without calibration, undo, save/load round trip, strict loading."""

from __future__ import annotations

import json
import math

import pytest

from app.annotations import Annotation, annotations_from_json, measure_annotation
from app.errors import InputFileError, UserError
from app.session import ManualCalibration, Session
from measure import Calibration, CalibrationSource
from tests.app.test_session import _cal, make_session

ANISO = Calibration(0.1, 0.2, CalibrationSource.CALIBRATED, "row 0.1, column 0.2")  # (row, column) mm


def test_ruler_in_mm_only_with_calibration_and_naming_its_source():
    ruler = Annotation("ruler", ((10, 20), (310, 420)))  # dx 300 px, dy 400 px
    # columns 0.2 mm, rows 0.1 mm: sqrt((300*0.2)^2 + (400*0.1)^2) = sqrt(3600 + 1600)
    value = measure_annotation(ruler, ANISO)
    assert value.value == pytest.approx(math.sqrt(5200)) and value.unit == "mm"
    assert value.calibration_source == "calibrated" and value.text == "72.1 mm (calibrated)"
    plain = measure_annotation(ruler, Calibration.uncalibrated("no spacing"))
    assert (plain.value, plain.unit, plain.calibration_source) == (500.0, "px", "uncalibrated")
    assert "mm" not in plain.text.replace("no mm", "") and "uncalibrated" in plain.text
    detector = measure_annotation(ruler, _cal(0.5, "detector"))
    assert detector.value == pytest.approx(250.0)
    assert "detector" in detector.text and "magnification" in detector.text


def test_three_point_angle_in_the_patient_plane():
    right = Annotation("angle", ((100, 0), (0, 0), (0, 100)))
    assert measure_annotation(right, None).value == pytest.approx(90.0)
    diagonal = Annotation("angle", ((100, 100), (0, 0), (100, 0)))
    assert measure_annotation(diagonal, None).value == pytest.approx(45.0)
    # pixels twice as wide as tall: (100 px, 100 px) is (20 mm, 10 mm): atan(10/20)
    assert measure_annotation(diagonal, ANISO).value == pytest.approx(math.degrees(math.atan2(10, 20)))
    straight = Annotation("angle", ((-50, 0), (0, 0), (80, 0)))
    assert measure_annotation(straight, None).value == pytest.approx(180.0)
    assert measure_annotation(straight, None).text == "180.0°"


def test_two_line_angle_is_the_acute_angle_between_the_lines():
    t = math.tan(math.radians(30))
    lines = Annotation("angle", ((0, 0), (100, 0), (0, 50), (100, 50 + 100 * t)))
    assert measure_annotation(lines, None).value == pytest.approx(30.0)
    # drawn in the other direction: the lines are the same, so is the angle
    reverse = Annotation("angle", ((100, 0), (0, 0), (0, 50), (100, 50 + 100 * t)))
    assert measure_annotation(reverse, None).value == pytest.approx(30.0)
    degenerate = Annotation("angle", ((5, 5), (5, 5), (0, 0), (1, 1)))
    assert math.isnan(measure_annotation(degenerate, None).value)


@pytest.mark.parametrize(("kind", "points", "message"), [
    ("ruler", [(0, 0)], "a ruler has 2 points, got 1"),
    ("angle", [(0, 0), (1, 1)], "an angle has 3 or 4 points, got 2"),
    ("circle", [(0, 0), (1, 1)], "expected one of ruler, angle"),
    ("ruler", [(0, 0), (math.nan, 1)], "finite"),
])
def test_bad_annotations_refused(kind, points, message):
    with pytest.raises(ValueError, match=re_escape(message)):
        Annotation(kind, tuple(points))


def re_escape(text):
    import re

    return re.escape(text)


def test_session_add_move_delete_undo(tmp_path):
    session, _ = make_session(tmp_path)
    seen = []
    session.events.annotations.connect(lambda e: seen.append(e.role))
    assert session.add_annotation("flexion", "ruler", [(0, 0), (30, 40)]) == 0
    assert session.add_annotation("flexion", "angle", [(10, 0), (0, 0), (0, 10)]) == 1
    assert session.add_annotation("extension", "ruler", [(0, 0), (0, 8)]) == 0
    assert seen == ["flexion", "flexion", "extension"]
    labels = [(lbl, v.text) for lbl, _, v in session.annotation_values("flexion")]
    assert labels == [("R1", "25.0 mm (detector plane, not corrected for magnification)"),
                      ("A1", "90.0°")]
    assert session.undo_text == "Add ruler"
    # one drag = one undo step
    for x in (31, 32, 33):
        session.move_annotation_point("flexion", 0, 1, (x, 40), merge_id=("annotation", 0))
    session.end_merge()
    assert session.annotations("flexion")[0].points_px[1] == (33.0, 40.0)
    session.undo()
    assert session.annotations("flexion")[0].points_px[1] == (30.0, 40.0)
    session.remove_annotation("flexion", 1)
    assert [a.kind for a in session.annotations("flexion")] == ["ruler"]
    session.undo()
    assert [a.kind for a in session.annotations("flexion")] == ["ruler", "angle"]
    # a manual calibration changes the ruler's millimetres and names its source
    session.set_manual_calibration("flexion", ManualCalibration((0, 0), (100, 0), 10.0))
    assert session.annotation_values("flexion")[0][2].text == "5.0 mm (manual)"
    # the annotations follow their film when the films are swapped
    session.swap_films()
    assert [a.kind for a in session.annotations("extension")] == ["ruler", "angle"]
    with pytest.raises(UserError, match="a ruler has 2 points"):
        session.add_annotation("flexion", "ruler", [(0, 0)])


def test_save_load_round_trip_and_old_files(tmp_path):
    session, files = make_session(tmp_path)
    session.add_annotation("flexion", "ruler", [(1.25, 2.5), (30.125, 40.0)])
    session.add_annotation("extension", "angle", [(0, 0), (10, 0), (0, 50), (10, 55)])
    path = session.save(tmp_path / "s.json")
    doc = json.loads(path.read_text())
    assert doc["annotations"] == [
        {"kind": "ruler", "film": "flexion", "points_px": [[1.25, 2.5], [30.125, 40.0]]},
        {"kind": "angle", "film": "extension", "points_px": [[0.0, 0.0], [10.0, 0.0], [0.0, 50.0], [10.0, 55.0]]},
    ]
    again = Session(recovery_path=None)
    again.load(path, loader=files.__getitem__)
    assert again.annotations("flexion") == session.annotations("flexion")
    assert again.annotations("extension") == session.annotations("extension")
    assert not again.can_undo
    # a file without the key (older versions) loads with none, and is saved without it
    del doc["annotations"]
    path.write_text(json.dumps(doc))
    again.load(path, loader=files.__getitem__)
    assert again.annotations("flexion") == () and "annotations" not in again.to_json()


@pytest.mark.parametrize(("value", "message"), [
    ({"kind": "ruler"}, "key annotations: expected a list"),
    ([{"kind": "ruler", "film": "lateral", "points_px": [[0, 0], [1, 1]]}], "annotations[0].film"),
    ([{"kind": "ruler", "film": "flexion", "points_px": [[0, 0], [1, "x"]]}], "annotations[0].points_px"),
    ([{"kind": "ruler", "film": "flexion", "points_px": [[0, 0]]}], "annotations[0].points_px: a ruler has 2"),
    ([{"kind": "ruler", "film": "flexion", "points_px": [[0, 0], [1e300, 1]]}], "within"),
])
def test_bad_annotations_in_a_file_give_one_line(tmp_path, value, message):
    session, files = make_session(tmp_path)
    path = session.save(tmp_path / "s.json")
    doc = json.loads(path.read_text())
    doc["annotations"] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(InputFileError, match=re_escape(message)) as info:
        Session(recovery_path=None).load(path, loader=files.__getitem__)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_from_json_by_film():
    got = annotations_from_json([{"kind": "ruler", "film": "extension", "points_px": [[0, 0], [3, 4]]}])
    assert got == {"flexion": [], "extension": [Annotation("ruler", ((0, 0), (3, 4)))]}
