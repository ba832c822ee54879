"""The SR as coded content (issue 11 §5): every session value read back from CODE, NUM,
SCOORD and TEXT items (no JSON text), standard codes where they exist, and the reader's
rulers and angles read from their SCOORD, an edit of which is refused or read back
consistently."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from app import sr_codes as sc
from app.cli import main
from app.errors import InputFileError
from app.report_data import load_report
from app.report_sr import read_sr, write_sr
from app.report_tables import report_annotations
from tests.app import _report_fixtures as fx
from tests.app._sr_tamper import annotation_num, move_ruler_end


def _cv(code) -> str:
    return str(code.get("CodeValue") or code.get("LongCodeValue"))


def _walk(items):
    for item in items:
        yield item
        yield from _walk(item.get("ContentSequence", []))


def _group(ds, tracking):
    container = next(i for i in ds.ContentSequence if i.ValueType == "CONTAINER"
                     and _cv(i.ConceptNameCodeSequence[0]) == "126010")
    for group in container.ContentSequence:
        if any(i.ValueType == "TEXT" and _cv(i.ConceptNameCodeSequence[0]) == "112039"
               and i.TextValue == tracking for i in group.ContentSequence):
            return group
    raise AssertionError(tracking)


def _errors(path) -> list[str]:
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A session saved by the viewer's model on the bundled sample (every key the viewer
    writes: DICOM calibration, image size, safety, reader) and its SR."""
    if not (fx.SAMPLE_DIR / "truth.json").exists():
        pytest.skip("sample study absent")
    folder = tmp_path_factory.mktemp("coded")
    path = fx.sample_session(folder / "study", reader={"name": "Reader^Alice", "comment": "ok"})
    return path, write_sr(load_report(path), folder / "sample_sr.dcm")


def test_a_viewer_session_round_trips_exactly_from_coded_content(sample):
    path, sr = sample
    original = json.loads(path.read_text())
    assert {"dicom_calibration", "image_size"} <= set(original["flexion"])  # so they are tested
    assert original["safety"] == {"warnings": [], "acknowledged": []}
    assert dict(read_sr(sr)) == fx.without_paths(original)


def test_no_json_and_every_private_code_is_declared_with_its_meaning(sample):
    ds = pydicom.dcmread(sample[1])
    items = list(_walk(ds.ContentSequence))
    assert not [i for i in items if i.ValueType == "TEXT"
                and i.TextValue.lstrip()[:1] in ("{", "[")]
    (scheme,) = ds.CodingSchemeIdentificationSequence
    assert scheme.CodingSchemeDesignator == sc.PRIVATE_SCHEME
    private = [c for i in items for seq in ("ConceptNameCodeSequence", "ConceptCodeSequence")
               for c in i.get(seq, []) if c.CodingSchemeDesignator == sc.PRIVATE_SCHEME]
    assert len(private) > 100
    for code in private:  # each private code is one of ours, with our meaning
        value = _cv(code)
        expected = sc.PRIVATE.get(value)
        if expected is None:  # corner coordinates are in PRIVATE; criteria names are built
            assert value.startswith("criteria-"), value
        else:
            assert code.CodeMeaning == expected[:64], value
    # the clinically central concepts are standard codes
    concepts = {(c.CodingSchemeDesignator, _cv(c)) for i in items
                for c in i.get("ConceptNameCodeSequence", [])}
    assert {("SCT", "1483009"), ("DCM", "122411"), ("DCM", "111066"), ("DCM", "111026"),
            ("DCM", "121071"), ("SCT", "363698007"), ("DCM", "112050")} <= concepts


def test_session_time_and_software_version_are_coded(sample):
    path, sr = sample
    original = json.loads(path.read_text())
    ds = pydicom.dcmread(sr)
    container = next(i for i in ds.ContentSequence if i.ValueType == "CONTAINER"
                     and _cv(i.ConceptNameCodeSequence[0]) == "126010")
    saved = original["saved_at"]  # e.g. 2026-12-04T00:03:59+00:00
    assert container.ObservationDateTime == (saved[:19].replace("-", "").replace("T", "")
                                             .replace(":", "") + "+0000")
    versions = {i.TextValue for i in _walk(ds.ContentSequence) if i.ValueType == "TEXT"
                and _cv(i.ConceptNameCodeSequence[0]) == "111003"}  # DCM Algorithm Version
    assert versions == {original["software_version"]}


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
def test_dciodvfy_no_error_on_the_viewer_session(sample):
    assert _errors(sample[1]) == []


def test_highdicom_parses_every_group(sample):
    import highdicom as hd

    sr = hd.sr.srread(sample[1])
    groups = {g.tracking_identifier: g for g in sr.content.get_image_measurement_groups()}
    # L4-L5 is the unstable segment of the sample (truth 6.2 mm, 13.3 deg)
    assert groups["segment L4-L5"].finding_type.value == "unstable"
    values = {m.name.value: m.value for m in groups["segment L4-L5"].get_measurements()}
    assert values["translation_mm"] == pytest.approx(6.2, abs=0.1)
    assert values["angulation_deg"] == pytest.approx(13.3, abs=0.1)
    angle = {m.name.value: m.value for m in groups["extension L4-L5"].get_measurements()}
    flexion = {m.name.value: m.value for m in groups["flexion L4-L5"].get_measurements()}
    assert angle["1483009"] - flexion["1483009"] == pytest.approx(values["angulation_deg"])


def _study(folder, **changes):
    """The synthetic study with session keys changed; its path."""
    path = fx.make_study(folder)
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc))
    return path


def test_custom_criteria_safety_and_label_review_round_trip(tmp_path):
    criteria = {"name": "clinic", "source": "our protocol 2026",
                "translation_mm": {"L4-L5": 3.0, "*": 4.5}, "translation_pct": {},
                "angulation_deg": {"*": 11.0}}
    safety = {"warnings": [{"check": "same-view", "message": "Both films say flexion."}],
              "acknowledged": ["same-view"]}
    path = _study(tmp_path / "s", criteria=criteria, safety=safety,
                  labels_need_review="L1 may be T12")
    sr = write_sr(load_report(path), tmp_path / "r.dcm")
    back = read_sr(sr)
    assert back["criteria"] == criteria
    assert back["safety"] == safety
    assert back["labels_need_review"] == "L1 may be T12"
    assert dict(back) == fx.without_paths(json.loads(path.read_text()))
    ds = pydicom.dcmread(sr)
    warning = next(i for i in ds.ContentSequence if i.ValueType == "CODE"
                   and _cv(i.ConceptNameCodeSequence[0]) == "safety-warning")
    assert _cv(warning.ConceptCodeSequence[0]) == "same-view"
    assert warning.ConceptCodeSequence[0].CodeMeaning == "Both films the same view"
    # the custom table: one Threshold Value per entry, naming quantity and segment
    container = next(i for i in ds.ContentSequence if i.ValueType == "CONTAINER"
                     and _cv(i.ConceptNameCodeSequence[0]) == "criteria-custom")
    entries = sorted(
        (_cv(t.ContentSequence[0].ConceptCodeSequence[0]), t.ContentSequence[1].TextValue,
         t.MeasuredValueSequence[0].FloatingPointValue,
         t.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue)
        for t in container.ContentSequence if t.ValueType == "NUM")
    assert entries == [("angulation_deg", "*", 11.0, "deg"), ("translation_mm", "*", 4.5, "mm"),
                       ("translation_mm", "L4-L5", 3.0, "mm")]


def test_manual_calibration_round_trips_with_its_line(tmp_path):
    path = fx.make_study(tmp_path / "s")
    doc = json.loads(path.read_text())
    line = {"p0": [10.123456789, 20.25], "p1": [10.5, 220.987654321], "length_mm": 40.0}
    spacing = 40.0 / math.hypot(0.376543211, 200.737654321)
    doc["flexion"].update(manual_calibration=line, calibration_source="manual",
                          pixel_spacing_mm=[spacing, spacing],
                          calibration_detail="line of 40 mm drawn by the reader")
    path.write_text(json.dumps(doc))
    sr = write_sr(load_report(path), tmp_path / "r.dcm")
    back = read_sr(sr)
    assert back["flexion"]["manual_calibration"] == line  # exact: float64 NUMs
    assert back["flexion"]["dicom_calibration"]["calibration_source"] == "detector"
    assert dict(back) == fx.without_paths(doc)
    group = _group(pydicom.dcmread(sr), "film flexion")
    size = next(i for i in group.ContentSequence if i.ValueType == "NUM"
                and _cv(i.ConceptNameCodeSequence[0]) == "122423")  # Calibration Object Size
    scoord = next(i for i in size.ContentSequence if i.ValueType == "SCOORD")
    np.testing.assert_allclose(np.reshape(scoord.GraphicData, (2, 2)),
                               np.array([line["p0"], line["p1"]]) + 0.5, atol=1e-4)


def test_one_film_session_round_trips(tmp_path):
    path = fx.make_study(tmp_path / "s")
    doc = json.loads(path.read_text())
    del doc["extension"]
    keep = ("segment", "measured", "flexion_angle_deg", "flexion_translation_mm",
            "flexion_translation_pct", "calibration_source")
    doc["results"]["segments"] = [{k: r[k] for k in keep} for r in doc["results"]["segments"]]
    doc["results"]["segments"][1]["flexion_translation_mm"] = None  # null: left out, read back
    path.write_text(json.dumps(doc))
    sr = write_sr(load_report(path), tmp_path / "r.dcm")
    assert dict(read_sr(sr)) == fx.without_paths(doc)
    ds = pydicom.dcmread(sr)
    names = {_cv(i.ConceptNameCodeSequence[0]) for i in _group(ds, "flexion L2-L3").ContentSequence
             if i.ValueType == "NUM"}
    assert names == {"1483009", "film_translation_pct"}  # no NUM for the null value


def test_films_with_different_calibration_sources_round_trip(tmp_path):
    path = fx.make_study(tmp_path / "s")
    doc = json.loads(path.read_text())
    for row in doc["results"]["segments"]:
        row["calibration_source"] = "flexion manual, extension detector"
    path.write_text(json.dumps(doc))
    back = read_sr(write_sr(load_report(path), tmp_path / "r.dcm"))
    assert [r["calibration_source"] for r in back["results"]["segments"]] == [
        "flexion manual, extension detector"] * 5


# ---------------------------------------------------------------------------- annotations

RULER = [[100.0, 100.0], [100.0, 300.0]]  # 200 px at 0.2 mm: 40 mm
ANGLE = [[300.0, 100.0], [200.0, 100.0], [200.0, 0.0]]  # 90 degrees


@pytest.fixture
def annotated(tmp_path):
    path = _study(tmp_path / "s", annotations=[
        {"kind": "ruler", "film": "flexion", "points_px": RULER},
        {"kind": "angle", "film": "extension", "points_px": ANGLE}])
    return path, write_sr(load_report(path), tmp_path / "s" / "r.dcm")


def test_annotations_are_read_from_their_scoord(annotated):
    path, sr = annotated
    back = read_sr(sr)
    assert back["annotations"] == json.loads(path.read_text())["annotations"]
    ds = pydicom.dcmread(sr)
    ruler = annotation_num(ds, "annotation flexion R1")
    assert _cv(ruler.ConceptNameCodeSequence[0]) == "410668003"  # SCT Length
    assert ruler.MeasuredValueSequence[0].FloatingPointValue == pytest.approx(40.0)
    angle = annotation_num(ds, "annotation extension A1")
    assert (angle.ConceptNameCodeSequence[0].CodingSchemeDesignator,
            _cv(angle.ConceptNameCodeSequence[0])) == ("SCT", "1483009")  # SCT Angle
    assert angle.MeasuredValueSequence[0].FloatingPointValue == pytest.approx(90.0)


def test_moved_annotation_with_its_old_value_is_refused(annotated, tmp_path, capsys):
    _, sr = annotated
    ds = pydicom.dcmread(sr)
    move_ruler_end(ds, 100.0)  # 300 px now, the stored length still says 40 mm
    tampered = sr.parent / "moved.dcm"
    ds.save_as(tampered)
    with pytest.raises(InputFileError, match=r"value of R1 on the flexion film \(stored 40.* "
                       r"disagrees with its points \(60\)"):
        read_sr(tampered)
    assert main(["report", str(tampered), "--json", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "R1" in err
    assert not (tmp_path / "t.json").exists()


def test_changed_annotation_value_alone_is_refused(annotated):
    _, sr = annotated
    ds = pydicom.dcmread(sr)
    move_ruler_end(ds, 0.0, length=55.0)
    ds.save_as(sr.parent / "value.dcm")
    with pytest.raises(InputFileError, match=r"stored 55\.0"):
        read_sr(sr.parent / "value.dcm")


def test_annotation_moved_consistently_is_read_back_with_its_new_points(annotated):
    _, sr = annotated
    ds = pydicom.dcmread(sr)
    move_ruler_end(ds, 100.0, length=60.0)  # the end and the value, as a careful edit
    ds.save_as(sr.parent / "consistent.dcm")
    back = read_sr(sr.parent / "consistent.dcm")
    (ruler,) = [a for a in back["annotations"] if a["kind"] == "ruler"]
    assert ruler["points_px"] == [[100.0, 100.0], [100.0, 400.0]]
    # every report measures the changed line: 300 px x 0.2 mm
    from app.report_sr import report_from_sr

    report = report_from_sr(sr.parent / "consistent.dcm")
    (label, _, value) = report_annotations(report)["flexion"][0]
    assert (label, value.value) == ("R1", pytest.approx(60.0))
