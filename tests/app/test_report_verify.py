"""Stored values against the landmarks (issue 11 §5) and ``report LANDMARKS.json`` (§6)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from app.cli import main
from app.report_data import load_report
from app.report_verify import STORED_VALUES_DIFFER, measure_session, stored_value_differences
from tests.app import _report_fixtures as fx

SAMPLE = Path(__file__).resolve().parents[2] / "sample_dicoms"


@pytest.fixture(scope="module")
def measured_study(tmp_path_factory):
    return fx.make_study(tmp_path_factory.mktemp("verify") / "study", measured=True)


def test_a_session_saved_by_the_viewer_agrees_with_its_landmarks(measured_study):
    # The viewer's model (app.session) and the report's recomputation are two code
    # paths; on the same landmarks they must give the same rows, key for key.
    doc = json.loads(measured_study.read_text())
    again = measure_session(doc)
    assert again is not None
    assert stored_value_differences(doc["results"]["segments"], again.rows) == []
    report = load_report(measured_study)
    assert report.stored_differences == []
    assert not any(STORED_VALUES_DIFFER in w for w in report.warnings)


def _tamper_translation(doc):
    doc["results"]["segments"][3]["translation_mm"] = 9.5
    return "L4-L5 translation_mm: stored 9.5"


def _tamper_finding(doc):
    doc["results"]["segments"][3]["finding"] = "stable"
    return "L4-L5 finding: stored stable"


def _tamper_remove(doc):
    del doc["results"]["segments"][2]
    return "missing L3-L4"


def _tamper_duplicate(doc):
    rows = doc["results"]["segments"]
    rows.insert(3, dict(rows[3]))
    return "repeated L4-L5"


def _tamper_spacing(doc):
    doc["flexion"]["pixel_spacing_mm"] = [0.25, 0.25]
    return "flexion_translation_mm: stored"


def _tamper_nan(doc):
    doc["results"]["segments"][1]["angulation_deg"] = float("nan")
    return "L2-L3 angulation_deg: stored NaN"


def test_nan_in_a_session_file_is_refused(measured_study, tmp_path, capsys):
    # NaN is not JSON: a session file holding it is refused with one line naming the key
    # (in an SR a NaN is a valid FD value: there the comparison flags it, test_report_sr)
    doc = json.loads(measured_study.read_text())
    _tamper_nan(doc)
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(doc))
    assert main(["report", str(path), "--json", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "angulation_deg" in err and "NaN" in err
    assert not (tmp_path / "t.json").exists()


def _tamper_angle(doc):
    doc["results"]["segments"][0]["angulation_deg"] += 0.5
    return "L1-L2 angulation_deg: stored"


def _tamper_corner(doc):
    doc["extension"]["landmarks"]["L4"]["PI"][0] += 3.0
    return "L4-L5 extension_translation_mm: stored"


def _tamper_criteria(doc):
    doc["criteria"] = "white-panjabi"
    return "thresholds: stored"


def _tamper_level_label(doc):
    doc["results"]["segments"][4]["segment"] = "L5-L6"
    return "not in the landmarks L5-L6"


TAMPERINGS = {f.__name__.removeprefix("_tamper_"): f for f in (
    _tamper_translation, _tamper_finding, _tamper_remove, _tamper_duplicate, _tamper_spacing,
    _tamper_angle, _tamper_corner, _tamper_criteria, _tamper_level_label)}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_report_flags_each_tampered_session(name, measured_study, tmp_path, capsys):
    doc = json.loads(measured_study.read_text())
    expected = TAMPERINGS[name](doc)
    path = measured_study.parent / f"tampered-{name}.json"
    path.write_text(json.dumps(doc))  # NaN is written as the JSON extension NaN
    out = tmp_path / "t.json"
    if name == "nan":
        # NaN is not valid in a session file: refused before anything is reported,
        # naming the key (app/jsonfile.py); an SR's NaN is flagged below (read_sr)
        assert main(["report", str(path), "--json", str(out)]) == 2
        assert capsys.readouterr().err == (
            f"lumbar-instability: {path}: key results.segments[1].angulation_deg: NaN is not "
            "allowed (numbers must be finite)\n")
        assert not out.exists()
        return
    assert main(["report", str(path), "--json", str(out)]) == 1
    err = capsys.readouterr().err
    assert STORED_VALUES_DIFFER in err
    table = json.loads(out.read_text())
    assert any(expected in d for d in table["stored_values_differ"]), table["stored_values_differ"]
    assert any(w.startswith(STORED_VALUES_DIFFER) for w in table["warnings"])


def test_landmarks_file_is_measured(tmp_path, capsys):
    # the phantom's truth file is a landmarks file without results: the report measures
    # it, and its values are the phantom's true motion
    out = tmp_path / "t.json"
    assert main(["report", str(SAMPLE / "truth.json"), "--json", str(out)]) == 0
    table = json.loads(out.read_text())
    truth = json.loads((SAMPLE / "truth.json").read_text())["motion"]
    assert table["measured_from_landmarks"] is True
    assert [r["segment"] for r in table["segments"]] == ["L1-L2", "L2-L3", "L3-L4", "L4-L5",
                                                         "L5-S1"]
    for row in table["segments"]:
        true = truth[row["segment"]]
        assert row["translation_mm"] == pytest.approx(true["dt_mm"], abs=1e-6)
        assert row["translation_pct"] == pytest.approx(true["dt_pct"], abs=1e-6)
        assert abs(row["angulation_deg"]) == pytest.approx(abs(true["dtheta_deg"]), abs=1e-6)
    l45 = next(r for r in table["segments"] if r["segment"] == "L4-L5")
    assert l45["unstable"] is True and l45["translation_mm"] > 4
    assert "nothing was measured" not in capsys.readouterr().err


def test_landmarks_file_from_track_is_measured_like_measure(tmp_path, capsys):
    # a landmarks file without levels, placement or images (what `track` writes)
    lm = {v: {"pixel_spacing_mm": [0.2, 0.2], "calibration_source": "calibrated",
              "landmarks": {level: {c: [float(x), float(y)]
                                    for c, (x, y) in zip(fx.CORNERS, fx.landmarks(v)[i],
                                                         strict=True) if math.isfinite(x)}
                            for i, level in enumerate(fx.LEVELS)}}
          for v in ("flexion", "extension")}
    path = tmp_path / "lm.json"
    path.write_text(json.dumps(lm))
    assert main(["measure", str(path), "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)["segments"]
    out = tmp_path / "t.json"
    assert main(["report", str(path), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["segments"]
    assert [r["segment"] for r in rows] == [r["segment"] for r in measured]
    for mine, theirs in zip(rows, measured, strict=True):
        for key in ("translation_mm", "translation_pct", "angulation_deg", "unstable",
                    "borderline", "translation_mm_ci95"):
            assert mine[key] == theirs[key]
