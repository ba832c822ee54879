"""Reading a session for a report: validation, landmarks, finding images by UID and hash."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from app.errors import InputFileError
from app.report_data import (
    find_images_by_uid,
    landmark_array,
    load_report,
    load_session_dict,
    read_session_file,
)
from tests.app import _report_fixtures as fx


def test_landmark_array_keeps_nan_for_absent_corners(tmp_path):
    session = json.loads(fx.make_study(tmp_path / "s").read_text())
    lm = landmark_array(session["flexion"], fx.LEVELS)
    assert lm.shape == (6, 4, 2)
    np.testing.assert_array_equal(lm, fx.landmarks("flexion"))
    assert np.isnan(lm[5, 2:]).all() and np.isfinite(lm[5, :2]).all()


@pytest.mark.parametrize(("session", "message"), [
    ([], "top level is not a JSON object"),
    ({"format": "other"}, 'key format: "other" is not a format this tool reads'),
    ({"levels": ["L1", "L1"]}, "key levels: labels must be unique"),
    ({"levels": ["L1", "l1"]}, 'key levels: "L1" and "l1" name the same level'),
    ({"flexion": {"landmarks": {"L9": {}}}}, "unknown level 'L9'"),
    ({"flexion": {"landmarks": {"L1": {"XX": [1, 2]}}}}, "key flexion.landmarks.L1.XX: unknown corner"),
    ({"flexion": {"landmarks": {"L1": {"AS": [1, "a"]}}}},
     r"key flexion.landmarks.L1.AS: expected \[x, y\] numbers"),
    ({"flexion": {"calibration_source": "guess"}}, "key flexion.calibration_source: expected one of"),
    ({"results": {"segments": {}}}, "key results.segments: expected a list of objects"),
    ({"flexion": {"image": "x.dcm"}}, 'key flexion.image: expected an object with path and UIDs, got "x.dcm"'),
    ({"flexion": {"pixel_spacing_mm": "ab", "calibration_source": "calibrated"}},
     r'key flexion.pixel_spacing_mm: expected \[row, column\] positive numbers in mm or null, got "ab"'),
    ({"flexion": {"manual_calibration": {"p0": [0, 0], "p1": [10, 0], "length_mm": 1e-300}}},
     "key flexion.manual_calibration.length_mm: expected a number of mm from 0.1 to 10000, got 1e-300"),
])
def test_bad_sessions_name_the_problem(session, message):
    with pytest.raises(InputFileError, match=message) as info:
        load_session_dict(session, "s.json")
    assert str(info.value).startswith("s.json: ")


def test_unreadable_files(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        read_session_file(tmp_path / "absent.json")
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputFileError, match="not valid JSON: not UTF-8 text"):
        read_session_file(binary)


def test_find_by_uid_prefers_the_file_whose_hash_matches(tmp_path):
    session_path = fx.make_study(tmp_path / "s")
    session = json.loads(session_path.read_text())
    folder = tmp_path / "pacs"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    (folder / "notes.txt").write_text("not dicom")
    # same SOP Instance UID, other bytes, sorted first: must not win
    changed = folder / "a" / "0001"
    shutil.copy(session_path.parent / "flexion.dcm", changed)
    with open(changed, "ab") as handle:
        handle.write(b"\0\0")
    good = folder / "b" / "0002"
    shutil.copy(session_path.parent / "flexion.dcm", good)
    uid = session["flexion"]["image"]["sop_instance_uid"]
    found = find_images_by_uid({"flexion": uid, "extension": "1.2.3.4"}, [folder],
                               sha256={"flexion": session["flexion"]["image"]["sha256"]})
    assert found == {"flexion": good}
    # without the good copy, the changed one is returned and then flagged as changed
    good.unlink()
    found = find_images_by_uid({"flexion": uid}, [folder],
                               sha256={"flexion": session["flexion"]["image"]["sha256"]})
    assert found == {"flexion": changed}
    report = load_report(session_path, image_paths=found)
    assert report.films["flexion"].image_status == "changed"


def test_status_of_images(tmp_path):
    session_path = fx.make_study(tmp_path / "s")
    assert {v: f.image_status for v, f in load_report(session_path).films.items()} == {
        "flexion": "ok", "extension": "ok"}
    (session_path.parent / "extension.dcm").unlink()
    report = load_report(session_path)
    assert report.films["extension"].image_status == "missing"
    assert report.films["extension"].path is None
    assert any("'extension.dcm' was not found" in w for w in report.warnings)
    assert load_report(session_path, verify_images=False).films["flexion"].image_status == (
        "unverified")


def test_single_film_is_said(tmp_path):
    session_path = fx.make_study(tmp_path / "s")
    session = json.loads(session_path.read_text())
    del session["extension"]
    session_path.write_text(json.dumps(session))
    report = load_report(session_path)
    assert list(report.films) == ["flexion"]
    assert "Only the flexion film: motion between flexion and extension cannot be measured." in (
        report.warnings)
