"""The landmarks JSON file: reading, key-naming errors, round trip with extra keys."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.errors import InputFileError
from app.landmarks_io import read_criteria, read_landmarks, write_landmarks
from measure import CalibrationSource, PlacementMethod


def _doc():
    def film(dx):
        return {
            "pixel_spacing_mm": [0.15, 0.2],
            "landmarks": {
                "L5": {"AS": [40 + dx, 40], "PS": [0 + dx, 40], "PI": [0 + dx, 70], "AI": [40 + dx, 70]},
                "L4": {"AS": [40 + dx, 0], "PS": [0 + dx, 0], "PI": [0 + dx, 30], "AI": [40 + dx, 30]},
                "S1": {"AS": [40, 80], "PS": [0, 80]},
            },
        }

    return {"flexion": film(2.5), "extension": film(0.0)}


def _write(tmp_path, doc, name="study.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_reads_levels_in_anatomical_order_and_corners(tmp_path):
    study = read_landmarks(_write(tmp_path, _doc()))
    assert study.levels == ("L4", "L5", "S1")  # the file lists L5 before L4
    c = study.flexion.corners
    assert c.shape == (3, 4, 2)
    np.testing.assert_array_equal(c[0], [[42.5, 0], [2.5, 0], [2.5, 30], [42.5, 30]])
    assert np.isnan(c[2, 2:]).all() and np.isfinite(c[2, :2]).all()
    assert study.flexion.spacing_mm == (0.15, 0.2)
    # no calibration_source: provenance unknown, treated as detector (warns about magnification)
    assert study.flexion.calibration.source is CalibrationSource.DETECTOR
    assert "provenance unknown" in study.flexion.calibration.detail
    # no placement or SD: every corner gets the manual default
    np.testing.assert_array_equal(study.flexion.effective_sd_mm(), PlacementMethod.MANUAL.default_sd_mm)


def test_transitional_levels_and_missing_level(tmp_path):
    doc = _doc()
    doc["flexion"]["landmarks"]["T12"] = {"AS": [40, -80], "PS": [0, -80], "PI": [0, -50], "AI": [40, -50]}
    doc["extension"]["landmarks"]["L6"] = {"AS": [1, 2], "PS": [3, 4]}
    study = read_landmarks(_write(tmp_path, doc))
    # L1-L3 have no landmarks: added as missing levels, so that no "T12-L4" segment exists
    assert study.levels == ("T12", "L1", "L2", "L3", "L4", "L5", "L6", "S1")
    assert np.isnan(study.extension.corners[0]).all()  # T12 not on extension: a missing level
    assert np.isnan(study.flexion.corners[1:4]).all() and np.isnan(study.extension.corners[1:4]).all()
    assert np.isnan(study.flexion.corners[6]).all()  # L6 only on extension


def test_top_level_may_omit_its_superior_corners(tmp_path):
    """L4-L5 needs only L4's PI and AI; L5 (not the top) still needs AS and PS."""
    doc = _doc()
    for film in ("flexion", "extension"):
        for corner in ("AS", "PS"):
            del doc[film]["landmarks"]["L4"][corner]
    study = read_landmarks(_write(tmp_path, doc))
    study.check_measurable()
    assert np.isnan(study.flexion.corners[0, :2]).all()
    del doc["extension"]["landmarks"]["L5"]["PS"]
    with pytest.raises(InputFileError, match=r"key extension.landmarks.L5.PS: missing; the segment L4-L5"):
        read_landmarks(_write(tmp_path, doc)).check_measurable()


def test_a_skipped_level_is_a_missing_level_not_a_two_disc_segment(tmp_path):
    """L3 and L5 annotated, L4 not: L3-L4 and L4-L5 are not measured (no "L3-L5" span)."""
    doc = _doc()
    for film in ("flexion", "extension"):
        marks = doc[film]["landmarks"]
        marks["L3"] = {"AS": [40, -80], "PS": [0, -80], "PI": [0, -50], "AI": [40, -50]}
        del marks["L4"]
    study = read_landmarks(_write(tmp_path, doc))
    assert study.levels == ("L3", "L4", "L5", "S1")
    assert np.isnan(study.flexion.corners[1]).all() and np.isnan(study.extension.corners[1]).all()
    from app.commands.measure import measure_study

    result, _ = measure_study(study, "default")
    assert result.segments == ("L3-L4", "L4-L5", "L5-S1")
    assert result.measured.tolist() == [False, False, True]
    # a stated levels list is taken as written
    doc["levels"] = ["L3", "L5", "S1"]
    assert read_landmarks(_write(tmp_path, doc)).levels == ("L3", "L5", "S1")


def test_optional_session_keys_are_understood(tmp_path):
    doc = _doc()
    doc["flexion"]["calibration_source"] = "manual"
    doc["flexion"]["calibration_detail"] = "ball 25 mm"
    doc["flexion"]["placement"] = {"L4": {"PI": "tracked"}, "L5": {"AS": "detected"}}
    doc["flexion"]["landmark_sd_mm"] = {"L4": {"AI": 0.05}}
    doc["extension"]["pixel_spacing_mm"] = None
    doc["extension"]["calibration_source"] = "uncalibrated"
    study = read_landmarks(_write(tmp_path, doc))
    assert study.flexion.calibration.source is CalibrationSource.MANUAL
    assert study.flexion.calibration.detail == "ball 25 mm"
    assert not study.extension.calibration.is_calibrated and study.extension.spacing_mm is None
    sd = study.flexion.effective_sd_mm()
    assert sd[0, 2] == PlacementMethod.TRACKED.default_sd_mm  # L4 PI tracked
    assert sd[1, 0] == PlacementMethod.DETECTED.default_sd_mm  # L5 AS detected
    assert sd[0, 3] == 0.05  # stated SD wins
    assert sd[0, 0] == PlacementMethod.MANUAL.default_sd_mm


def test_round_trip_preserves_extra_keys(tmp_path):
    doc = _doc()
    doc["format"] = "lumbar-instability-session"
    doc["levels"] = ["L4", "L5", "S1"]
    doc["results"] = {"segments": [{"segment": "L4-L5"}]}
    doc["flexion"]["image"] = {"path": "flexion.dcm", "sha256": "abc"}
    doc["flexion"]["calibration_source"] = "calibrated"
    doc["flexion"]["placement"] = {"L4": {"PI": "tracked"}}
    path = _write(tmp_path, doc)
    study = read_landmarks(path)
    out = tmp_path / "copy.json"
    write_landmarks(out, study)
    again = json.loads(out.read_text())
    assert again["format"] == "lumbar-instability-session" and again["results"] == doc["results"]
    assert again["flexion"]["image"] == doc["flexion"]["image"]
    assert again["flexion"]["calibration_source"] == "calibrated"
    assert "calibration_source" not in again["extension"]  # not stated in the file: not invented
    assert again["flexion"]["placement"] == {"L4": {"PI": "tracked"}}
    assert again["flexion"]["landmarks"]["S1"] == {"AS": [40.0, 80.0], "PS": [0.0, 80.0]}
    reread = read_landmarks(out)
    np.testing.assert_array_equal(reread.extension.corners, study.extension.corners)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary file


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["flexion"]["landmarks"]["L4"].update(PS="oops"), "key flexion.landmarks.L4.PS: expected [x, y] numbers"),
        (lambda d: d["flexion"]["landmarks"]["L4"].update(PS=[1, True]), "key flexion.landmarks.L4.PS: expected [x, y] numbers"),
        (lambda d: d["extension"]["landmarks"]["L4"].update(XX=[1, 2]), "key extension.landmarks.L4.XX: unknown corner"),
        (lambda d: d["extension"]["landmarks"].update(Q7={}), "key extension.landmarks.Q7: \"Q7\" is not a vertebral level"),
        (lambda d: d.pop("extension"), "key extension: missing"),
        (lambda d: d["flexion"].pop("landmarks"), "key flexion.landmarks: missing"),
        (lambda d: d["flexion"].update(pixel_spacing_mm=[0, 0.1]), "key flexion.pixel_spacing_mm: expected [row, column] positive numbers"),
        (lambda d: d["flexion"].update(pixel_spacing_mm="0.15"), "key flexion.pixel_spacing_mm: expected [row, column]"),
        (lambda d: d["flexion"].update(calibration_source="guess"), "key flexion.calibration_source: expected one of manual"),
        (lambda d: d["flexion"].update(placement={"L4": {"AS": "magic"}}), "key flexion.placement.L4.AS: expected one of manual"),
        (lambda d: d["flexion"].update(landmark_sd_mm={"L4": {"AS": -1}}), "key flexion.landmark_sd_mm.L4.AS: expected a number >= 0"),
        (lambda d: d.update(levels=["S1", "L4", "L5"]), "key levels: expected top-to-bottom order"),
    ],
)
def test_errors_name_file_and_key(tmp_path, change, message):
    doc = _doc()
    change(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(InputFileError) as info:
        read_landmarks(path)
    assert str(info.value).startswith(f"{path}: {message}")
    assert "\n" not in str(info.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(InputFileError, match=r"missing\.json: no such file"):
        read_landmarks(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"flexion": ')
    with pytest.raises(InputFileError, match=r"bad\.json: not valid JSON: .* line 1 column"):
        read_landmarks(bad)
    nan = tmp_path / "nan.json"
    nan.write_text('{"flexion": {"pixel_spacing_mm": [NaN, 0.1]}}')
    with pytest.raises(InputFileError, match=r"nan\.json: key flexion\.pixel_spacing_mm\[0\]: NaN is not allowed"):
        read_landmarks(nan)
    with pytest.raises(InputFileError, match=r"not\.json: key \(top level\): expected an object"):
        read_landmarks(_write(tmp_path, [1, 2], "not.json"))


def test_check_measurable_names_the_missing_corner(tmp_path):
    doc = _doc()
    del doc["extension"]["landmarks"]["L5"]["PS"]
    study = read_landmarks(_write(tmp_path, doc))
    with pytest.raises(InputFileError, match=r"key extension.landmarks.L5.PS: missing; the segment L4-L5 needs it"):
        study.check_measurable()


def test_read_criteria_presets_and_files(tmp_path):
    assert read_criteria("white-panjabi").name == "white-panjabi"
    path = tmp_path / "clinic.json"
    path.write_text(json.dumps({"translation_mm": {"*": 5.0}, "angulation_deg": 12}))
    crit = read_criteria(path)
    assert crit.name == "clinic" and crit.threshold("translation_mm", "L4-L5") == 5.0
    assert crit.threshold("angulation_deg", "L1-L2") == 12.0
    path.write_text(json.dumps({"angulation_deg": {"L4-L5": "ten"}}))
    with pytest.raises(InputFileError, match=r"clinic\.json: key angulation_deg\.L4-L5: expected a positive number"):
        read_criteria(path)
    with pytest.raises(InputFileError, match=r"neither a criteria preset"):
        read_criteria(tmp_path / "nope")


def _text_with_duplicate_l4(doc) -> str:
    """The document with its flexion L4 given twice (the second copy moved 50 px)."""
    text = json.dumps(doc)
    body = json.dumps(doc["flexion"]["landmarks"]["L4"])
    moved = json.dumps({k: [x + 50, y] for k, (x, y) in doc["flexion"]["landmarks"]["L4"].items()})
    return text.replace(f'"L4": {body}', f'"L4": {body}, "L4": {moved}', 1)


def _lower_l4_in_extension(doc):
    doc["extension"]["landmarks"]["l4"] = doc["extension"]["landmarks"].pop("L4")
    return doc


def _levels_with_case_variant(doc):
    doc["levels"] = ["L4", "l4", "L5", "S1"]
    return doc


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: _text_with_duplicate_l4(d), "key flexion.landmarks.L4: given twice"),
        (lambda d: json.dumps(d).replace('"pixel_spacing_mm"', '"pixel_spacing_mm": [1, 1], "pixel_spacing_mm"', 1),
         "key flexion.pixel_spacing_mm: given twice"),
        (lambda d: json.dumps(_lower_l4_in_extension(d)),
         'key extension.landmarks: "L4" and "l4" name the same level'),
        (lambda d: json.dumps(_levels_with_case_variant(d)), 'key levels: "L4" and "l4" name the same level'),
        (lambda d: json.dumps({**d, "format": "lumbar-instability-landmarks", "format_version": 7}),
         "key format_version: lumbar-instability-landmarks version 7 is newer than this software reads (1)"),
        (lambda d: json.dumps({**d, "format": "lumbar-instability-landmarks", "format_version": "1"}),
         'key format_version: expected a whole number from 1, got "1"'),
        (lambda d: json.dumps({**d, "format": "someone-elses-landmarks"}),
         'key format: "someone-elses-landmarks" is not a format this tool reads'),
        (lambda d: json.dumps(d).replace("[0.15, 0.2]", "[NaN, NaN]", 1),
         "key flexion.pixel_spacing_mm[0]: NaN is not allowed"),
        (lambda d: json.dumps(d).replace("[0.15, 0.2]", "[1e308, 0.2]", 1),
         "key flexion.pixel_spacing_mm: expected [row, column] positive numbers in mm or null, got "
         "[1e+308, 0.2]: a pixel spacing lies between 0.001 and 10 mm"),
        (lambda d: json.dumps(d).replace("[0.15, 0.2]", "[1e999, 0.2]", 1),
         "key flexion.pixel_spacing_mm[0]: 1e999 is not allowed"),
        (lambda d: json.dumps(d).replace("[0.15, 0.2]", '"ab"', 1),
         'key flexion.pixel_spacing_mm: expected [row, column] positive numbers in mm or null, got "ab"'),
        (lambda d: json.dumps(d).replace("[0.15, 0.2]", "[0.2]", 1),
         "key flexion.pixel_spacing_mm: expected [row, column] positive numbers in mm or null, got [0.2]"),
        (lambda d: json.dumps(d).replace("[0.15, 0.2]", "[-1, -1]", 1),
         "key flexion.pixel_spacing_mm: expected [row, column] positive numbers in mm or null, got [-1, -1]"),
        (lambda d: json.dumps(d).replace("[40, 80]", "[40, -Infinity]", 1),
         "key flexion.landmarks.S1.AS[1]: -Infinity is not allowed"),
        (lambda d: json.dumps(d).replace("[40, 80]", "[40, 3e6]", 1),
         "key flexion.landmarks.S1.AS: [x, y] pixels must lie within ±1e+06, got [40, 3000000.0]"),
        (lambda d: '{"flexion": {"landmarks": ' + "[" * 100_000 + "]" * 100_000 + "}}",
         "JSON nested more than 64 levels deep"),
        (lambda d: json.dumps({**d, "note": {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
            "x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}),
         "JSON nested more than 64 levels deep"),
    ],
)
def test_strict_format_errors_name_file_and_key(tmp_path, make, message):
    path = tmp_path / "study.json"
    path.write_text(make(_doc()))
    with pytest.raises(InputFileError) as info:
        read_landmarks(path)
    assert str(info.value).startswith(f"{path}: {message}")
    assert "\n" not in str(info.value)


def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(InputFileError, match=r"pipe\.json: not a regular file"):
        read_landmarks(fifo)


def test_known_formats_and_versions_are_read(tmp_path):
    for fmt in ("lumbar-instability-landmarks", "lumbar-instability-session"):
        study = read_landmarks(_write(tmp_path, {**_doc(), "format": fmt, "format_version": 1}))
        assert study.levels == ("L4", "L5", "S1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"translation_mm": 1e308}', "key translation_mm: 1e+308 is out of range"),
        ('{"angulation_deg": {"*": 10, "L4-L5": 400}}', "key angulation_deg.L4-L5: 400 is out of range"),
        ('{"translation_mm": 4, "translation_mm": 40}', "key translation_mm: given twice"),
        ('{"translation_mm": NaN}', "key translation_mm: NaN is not allowed"),
    ],
)
def test_criteria_files_are_strict(tmp_path, text, message):
    from app.landmarks_io import read_criteria

    path = tmp_path / "clinic.json"
    path.write_text(text)
    with pytest.raises(InputFileError) as info:
        read_criteria(path)
    assert str(info.value).startswith(f"{path}: {message}")
    path.write_text('{"translation_mm": {"*": 4, "L5-S1": 5}, "angulation_deg": 10}')
    assert read_criteria(path).name == "clinic"
