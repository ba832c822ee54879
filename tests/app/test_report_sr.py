"""DICOM Comprehensive SR (TID 1500): exact round trip, codes, dciodvfy, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from app.errors import InputFileError, UserError
from app.report_data import load_report
from app.report_sr import PRIVATE_SCHEME, read_sr, write_sr
from tests.app import _report_fixtures as fx


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sr")
    session_path = fx.make_study(folder / "study")
    sr_path = write_sr(load_report(session_path), folder / "report.dcm")
    return session_path, sr_path


def _cv(code):
    return code.get("CodeValue") or code.get("LongCodeValue")


def _walk(items):
    for item in items:
        yield item
        yield from _walk(item.get("ContentSequence", []))


def _group(ds, tracking):
    container = next(i for i in ds.ContentSequence if _cv(i.ConceptNameCodeSequence[0]) == "126010")
    for group in container.ContentSequence:
        for item in group.ContentSequence:
            if (
                _cv(item.ConceptNameCodeSequence[0]) == "112039"
                and item.ValueType == "TEXT"
                and item.TextValue == tracking
            ):
                return group
    raise AssertionError(f"no group {tracking!r}")


def test_round_trip_is_exact(study):
    session_path, sr_path = study
    original = json.loads(session_path.read_text())
    back = read_sr(sr_path)
    assert dict(back) == fx.without_paths(original)
    # The coordinates carry digits a float32 SCOORD cannot: they came from the NUM items.
    x = original["flexion"]["landmarks"]["L3"]["AS"][0]
    assert float(np.float32(x)) != x
    assert back["flexion"]["landmarks"]["L3"]["AS"][0] == x
    assert back.identity["patient_id"] == "PHANTOM-001"


def test_segment_group_codes_and_values(study):
    _, sr_path = study
    ds = pydicom.dcmread(sr_path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert ds.PatientID == "PHANTOM-001"
    assert ds.StudyInstanceUID == "1.2.826.0.1.3680043.10.1234.1"
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    group = _group(ds, "segment L3-L4")
    items = list(_walk(group.ContentSequence))
    site = [i for i in items if _cv(i.ConceptNameCodeSequence[0]) == "363698007"]
    assert _cv(site[0].ConceptCodeSequence[0]) == "62551000"  # SCT L3/L4 disc
    method = [i for i in items if _cv(i.ConceptNameCodeSequence[0]) == "370129005"]
    assert _cv(method[0].ConceptCodeSequence[0]) == "criteria-default"
    finding = [i for i in items if _cv(i.ConceptNameCodeSequence[0]) == "121071"]
    assert _cv(finding[0].ConceptCodeSequence[0]) == "borderline-above"  # 4.75 [3.85, 5.65] mm
    assert finding[0].ConceptCodeSequence[0].CodingSchemeDesignator == PRIVATE_SCHEME
    top = group.ContentSequence  # the group's own items (the interval is a property below)
    nums = {_cv(i.ConceptNameCodeSequence[0]): i for i in top if i.ValueType == "NUM"
            and _cv(i.ConceptNameCodeSequence[0]) != "122411"}
    row = fx.result_rows()[2]
    t = nums["translation_mm"].MeasuredValueSequence[0]
    assert t.FloatingPointValue == row["translation_mm"] == 4.75
    assert t.MeasurementUnitsCodeSequence[0].CodeValue == "mm"
    a = nums["angulation_deg"].MeasuredValueSequence[0]
    assert a.MeasurementUnitsCodeSequence[0].CodeValue == "deg"
    assert float(a.NumericValue) == 7.0
    pct = nums["translation_pct"].MeasuredValueSequence[0]
    assert pct.MeasurementUnitsCodeSequence[0].CodeValue == "%"
    props = {_cv(p.ConceptNameCodeSequence[0]): p for p in nums["translation_mm"].ContentSequence}
    assert props["ci95-lower"].RelationshipType == "HAS PROPERTIES"
    assert props["ci95-lower"].MeasuredValueSequence[0].FloatingPointValue == pytest.approx(4.75 - 0.9)
    assert props["ci95-upper"].MeasuredValueSequence[0].FloatingPointValue == pytest.approx(4.75 + 0.9)
    # DCM 122411 Threshold Value, one per criterion used, naming its quantity
    thresholds = {
        _cv(i.ContentSequence[0].ConceptCodeSequence[0]): (
            i.MeasuredValueSequence[0].FloatingPointValue,
            i.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue)
        for i in top if i.ValueType == "NUM" and _cv(i.ConceptNameCodeSequence[0]) == "122411"}
    assert thresholds == {"translation_mm": (4.0, "mm"), "angulation_deg": (10.0, "deg")}
    flags = {_cv(i.ConceptNameCodeSequence[0]): _cv(i.ConceptCodeSequence[0])
             for i in top if i.ValueType == "CODE"}
    assert flags["above-threshold"] == "373066001"  # SCT Yes: 4.75 mm > 4 mm
    assert flags["interval-reaches-threshold"] == "373066001"
    assert flags["measured"] == "373066001"
    assert flags["criterion"] == "criterion-translation"
    texts = {_cv(i.ConceptNameCodeSequence[0]): i.TextValue for i in top if i.ValueType == "TEXT"}
    assert texts["112050"] == "L3-L4"  # DCM Anatomic Identifier
    # no JSON anywhere in the SR
    assert not [i for i in _walk(pydicom.dcmread(sr_path).ContentSequence)
                if i.ValueType == "TEXT" and i.TextValue.lstrip()[:1] in ("{", "[")]
    # the angle and translation on each film: their own group, SCT Angle
    flex = {_cv(i.ConceptNameCodeSequence[0]): i for i in _group(ds, "flexion L3-L4").ContentSequence
            if i.ValueType == "NUM"}
    assert flex["1483009"].MeasuredValueSequence[0].FloatingPointValue == row["flexion_angle_deg"]
    assert flex["1483009"].ConceptNameCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert flex["film_translation_mm"].MeasuredValueSequence[0].FloatingPointValue == 4.75 / 2
    sources = [
        i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in items if i.ValueType == "IMAGE"
    ]
    assert sources == ["1.2.826.0.1.3680043.10.1234.3.1", "1.2.826.0.1.3680043.10.1234.3.2"]


def test_landmarks_are_scoord_on_the_right_image(study):
    _, sr_path = study
    ds = pydicom.dcmread(sr_path)
    group = _group(ds, "extension L4")
    scoord = next(i for i in group.ContentSequence if i.ValueType == "SCOORD")
    assert scoord.GraphicType == "POLYLINE"
    data = np.asarray(scoord.GraphicData, dtype=float).reshape(-1, 2)
    expected = fx.landmarks("extension")[3] + 0.5  # DICOM: 0\0 is the top-left pixel's corner
    np.testing.assert_allclose(data, np.vstack([expected, expected[:1]]), atol=1e-4)
    ref = scoord.ContentSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == "1.2.826.0.1.3680043.10.1234.3.2"
    s1 = next(i for i in _group(ds, "flexion S1").ContentSequence if i.ValueType == "SCOORD")
    assert len(s1.GraphicData) == 4  # S1: the superior endplate line only
    site = next(
        i
        for i in _group(ds, "flexion L1").ContentSequence
        if _cv(i.ConceptNameCodeSequence[0]) == "363698007"
    )
    assert _cv(site.ConceptCodeSequence[0]) == "66794005"  # SCT L1 vertebra
    methods = {
        _cv(m.ConceptCodeSequence[0])
        for i in _walk(_group(ds, "extension L2").ContentSequence)
        if i.ValueType == "NUM"
        for m in i.get("ContentSequence", [])
        if _cv(m.ConceptNameCodeSequence[0]) == "370129005"
    }
    assert methods == {"refined", "tracked", "detected", "edited"}


def test_film_group_has_calibration(study):
    _, sr_path = study
    ds = pydicom.dcmread(sr_path)
    items = list(_walk(_group(ds, "film flexion").ContentSequence))
    spacing = [
        i
        for i in items
        if i.ValueType == "NUM" and _cv(i.ConceptNameCodeSequence[0]) in ("111066", "111026")
    ]
    assert [s.MeasuredValueSequence[0].FloatingPointValue for s in spacing] == [0.2, 0.2]
    method = spacing[0].ContentSequence[0]
    assert _cv(method.ConceptCodeSequence[0]) == "detector"


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
def test_dciodvfy_reports_no_error(study):
    _, sr_path = study
    out = subprocess.run(["dciodvfy", str(sr_path)], capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert "ComprehensiveSR" in text
    errors = [line for line in text.splitlines() if line.startswith("Error")]
    assert errors == []


def test_uncalibrated_film_round_trip_without_mm(tmp_path):
    session_path = fx.make_study(tmp_path / "s", uncalibrated_view="extension")
    sr_path = write_sr(load_report(session_path), tmp_path / "r.dcm")
    original = json.loads(session_path.read_text())
    assert dict(read_sr(sr_path)) == fx.without_paths(original)
    ds = pydicom.dcmread(sr_path)
    film = list(_walk(_group(ds, "film extension").ContentSequence))
    assert not [i for i in film if i.ValueType == "NUM"]  # no spacing: none invented
    seg = list(_walk(_group(ds, "segment L4-L5").ContentSequence))
    seg += list(_walk(_group(ds, "extension L4-L5").ContentSequence))
    mm = {
        _cv(i.ConceptNameCodeSequence[0])
        for i in seg
        if i.ValueType == "NUM"
        and i.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "mm"
    }
    assert mm == {"122411"}  # Threshold Value: the criterion, not a measurement


def test_nan_is_null_and_int_cells_round_trip(tmp_path):
    session_path = fx.make_study(tmp_path / "s")
    session = json.loads(session_path.read_text())
    session["results"]["segments"][0]["depth_ratio"] = float("nan")
    report = load_report(session_path)
    report.session["results"]["segments"][0]["depth_ratio"] = float("nan")
    report.rows[0]["depth_ratio"] = float("nan")
    back = read_sr(write_sr(report, tmp_path / "r.dcm"))
    row = back["results"]["segments"][0]
    # a value that does not exist has no NUM; this hand-written row is not one of measure's
    # (whose every column is read back, null when absent), so the cell is left out
    assert "depth_ratio" not in row and row["translation_mm"] == 1.5
    assert row["n_corners"] == 8 and isinstance(row["n_corners"], int)
    assert row["unstable"] is False


def test_changed_image_refuses_and_keeps_last_good_file(tmp_path):
    session_path = fx.make_study(tmp_path / "s")
    out = write_sr(load_report(session_path), tmp_path / "r.dcm")
    before = out.read_bytes()
    with open(session_path.parent / "flexion.dcm", "ab") as handle:
        handle.write(b"\0\0")
    report = load_report(session_path)
    assert report.films["flexion"].image_status == "changed"
    with pytest.raises(UserError, match="SHA-256 mismatch"):
        write_sr(report, out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".r.dcm")] == []


@pytest.mark.parametrize("content", [b"", b"not dicom at all", None])
def test_corrupt_or_foreign_sr_is_one_line_error(tmp_path, study, content):
    path = tmp_path / "bad.dcm"
    if content is None:  # a valid DICOM file that is not one of our SRs
        shutil.copy(study[0].parent / "flexion.dcm", path)
    else:
        path.write_bytes(content)
    with pytest.raises(InputFileError) as info:
        read_sr(path)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_truncated_sr_is_one_line_error(tmp_path, study):
    data = study[1].read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match=str(path)):
        read_sr(path)


def test_highdicom_reads_it_as_a_measurement_report(study):
    import highdicom as hd

    sr = hd.sr.srread(study[1])
    assert isinstance(sr.content, hd.sr.MeasurementReport)
    rois = sr.content.get_planar_roi_measurement_groups()
    assert len(rois) == 12  # 6 vertebrae x 2 films
    groups = {g.tracking_identifier: g for g in sr.content.get_image_measurement_groups()}
    segments = [f"{a}-{b}" for a, b in zip(fx.LEVELS, fx.LEVELS[1:], strict=False)]
    assert set(groups) == {"film flexion", "film extension"} | {
        f"{kind} {s}" for s in segments for kind in ("segment", "flexion", "extension")}
    seg = groups["segment L2-L3"]
    assert seg.finding_type.value == "borderline-above"  # 10.5 [8.4, 12.6] deg
    assert seg.finding_sites[0].value.value == "67459009"  # SCT L2/L3 disc
    values = {m.name.value: (m.value, m.unit.value) for m in seg.get_measurements()}
    assert values["angulation_deg"] == (10.5, "deg")
    assert values["translation_mm"] == (2.25, "mm")
    flexion = {m.name.value: m.value for m in groups["flexion L2-L3"].get_measurements()}
    assert flexion["1483009"] == pytest.approx(3.0 + 10.5 / 3)  # SCT Angle


def test_film_without_patient_orientation(tmp_path):
    session_path = fx.make_study(tmp_path / "s")
    for view in ("flexion", "extension"):
        path = session_path.parent / f"{view}.dcm"
        ds = pydicom.dcmread(path)
        del ds.PatientOrientation
        ds.save_as(path)
    session = json.loads(session_path.read_text())
    for view in ("flexion", "extension"):
        session[view]["image"]["sha256"] = fx.sha256(session_path.parent / f"{view}.dcm")
    session_path.write_text(json.dumps(session))
    sr_path = write_sr(load_report(session_path), tmp_path / "r.dcm")
    assert dict(read_sr(sr_path)) == fx.without_paths(session)
    if shutil.which("dciodvfy"):
        out = subprocess.run(["dciodvfy", str(sr_path)], capture_output=True, text=True,
                             timeout=60)
        assert not [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]


def test_foreign_sr_and_tampered_content_are_refused(study, tmp_path):
    ds = pydicom.dcmread(study[1])
    del ds.CodingSchemeIdentificationSequence  # another vendor's SR declares no 99LUMBINST
    foreign = tmp_path / "foreign.dcm"
    ds.save_as(foreign)
    with pytest.raises(InputFileError, match="not a lumbar-instability SR"):
        read_sr(foreign)

    ds = pydicom.dcmread(study[1])
    group = _group(ds, "flexion L2")
    num = next(i for i in group.ContentSequence if i.ValueType == "NUM"
               and _cv(i.ConceptNameCodeSequence[0]) == "AS-x")
    num.MeasuredValueSequence[0].FloatingPointValue += 5.0
    tampered = tmp_path / "tampered.dcm"
    ds.save_as(tampered)
    with pytest.raises(InputFileError, match="outline of 'flexion L2' disagrees"):
        read_sr(tampered)


def test_stale_mm_of_an_uncalibrated_film_never_reaches_the_sr(tmp_path):
    session_path = fx.make_stale_uncalibrated_study(tmp_path / "s")
    back = read_sr(write_sr(load_report(session_path), tmp_path / "r.dcm"))
    row = back["results"]["segments"][2]
    assert row["translation_mm"] is None and row["extension_translation_mm"] is None
    assert row["translation_mm_ci95"] is None
    assert row["flexion_translation_mm"] == 1.25  # the flexion film is calibrated
    ds = pydicom.dcmread(tmp_path / "r.dcm")
    for segment in ("segment L3-L4", "extension L3-L4"):
        meanings = {_cv(i.ConceptNameCodeSequence[0]) for i in _group(ds, segment).ContentSequence
                    if i.ValueType == "NUM"}
        assert not meanings & {"translation_mm", "film_translation_mm"}, segment
    flexion = {_cv(i.ConceptNameCodeSequence[0]) for i in _group(ds, "flexion L3-L4").ContentSequence
               if i.ValueType == "NUM"}
    assert "film_translation_mm" in flexion  # so the check above can fail


TYPE2_PATIENT_STUDY = ("StudyDate", "StudyTime", "PatientBirthDate", "PatientSex",
                       "AccessionNumber", "StudyID", "ReferringPhysicianName", "PatientName")


@pytest.mark.parametrize("how", ["missing", "empty"])
def test_films_without_type2_patient_and_study_attributes(tmp_path, how):
    # De-identified or sloppy exports drop or empty these Type 2 attributes; the
    # SR must still be written, with them present and empty (PS3.3 Type 2).
    session_path = fx.make_study(tmp_path / "s")
    for view in ("flexion", "extension"):
        path = session_path.parent / f"{view}.dcm"
        ds = pydicom.dcmread(path)
        for keyword in TYPE2_PATIENT_STUDY:
            if how == "missing":
                delattr(ds, keyword)
            else:
                setattr(ds, keyword, "")
        ds.save_as(path)
    session = json.loads(session_path.read_text())
    for view in ("flexion", "extension"):
        session[view]["image"]["sha256"] = fx.sha256(session_path.parent / f"{view}.dcm")
    session_path.write_text(json.dumps(session))
    sr_path = write_sr(load_report(session_path), tmp_path / "r.dcm")
    ds = pydicom.dcmread(sr_path)
    for keyword in TYPE2_PATIENT_STUDY:
        assert keyword in ds and ds[keyword].value in ("", None), keyword
    assert ds.PatientID == "PHANTOM-001"
    assert ds.StudyInstanceUID == "1.2.826.0.1.3680043.10.1234.1"
    assert dict(read_sr(sr_path)) == fx.without_paths(session)
    if shutil.which("dciodvfy"):
        out = subprocess.run(["dciodvfy", str(sr_path)], capture_output=True, text=True,
                             timeout=60)
        assert not [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]
