"""SRs written by the previous version (JSON in TEXT items) still open."""

from __future__ import annotations

import json

import pydicom
import pytest

from app.errors import InputFileError
from app.report_data import report_from_session
from app.report_sr import read_sr
from app.report_sr_legacy import READ_FROM_KEY, READ_FROM_PREVIOUS, is_previous_version
from app.report_verify import STORED_VALUES_DIFFER
from tests.app import _report_fixtures as fx


@pytest.fixture(scope="module")
def old_sr(tmp_path_factory):
    return fx.previous_version_sr(tmp_path_factory.mktemp("srv1"))


def _cv(item) -> str:
    code = item.ConceptNameCodeSequence[0]
    return str(code.get("CodeValue") or code.get("LongCodeValue"))


def _segment_num(ds, segment: str, key: str):
    container = next(i for i in ds.ContentSequence if _cv(i) == "126010")
    for group in container.ContentSequence:
        items = group.ContentSequence
        if any(i.ValueType == "TEXT" and i.TextValue == f"segment {segment}" for i in items):
            return next(i for i in items if i.ValueType == "NUM"
                        and _cv(i) == key)
    raise AssertionError(segment)


def test_fixture_is_an_old_format_sr(old_sr):
    ds = pydicom.dcmread(old_sr[1])
    assert is_previous_version(ds)
    texts = {_cv(i) for i in ds.ContentSequence if i.ValueType == "TEXT"}
    assert {"session-header", "session-extra"} <= texts


def test_old_sr_reads_back_to_the_session_it_came_from(old_sr):
    session_path, sr_path = old_sr
    original = json.loads(session_path.read_text())
    for view in ("flexion", "extension"):  # the previous version carried all but the paths
        original[view]["image"].pop("path")
    back = read_sr(sr_path)
    assert back[READ_FROM_KEY] == READ_FROM_PREVIOUS
    got = {k: v for k, v in back.items() if k != READ_FROM_KEY}
    assert got == original
    for view in ("flexion", "extension"):
        assert back[view]["landmarks"] == original[view]["landmarks"]
        assert back[view]["pixel_spacing_mm"] == original[view]["pixel_spacing_mm"]
        assert back[view]["calibration_source"] == original[view]["calibration_source"]
    assert [r["segment"] for r in back["results"]["segments"]] == [
        r["segment"] for r in original["results"]["segments"]]
    assert back.identity["patient_id"] == "PHANTOM-001"


def test_old_sr_report_says_where_it_came_from_and_agrees(old_sr):
    _, sr_path = old_sr
    content = read_sr(sr_path)
    report = report_from_session(dict(content), sr_path, search_dirs=[sr_path.parent],
                                 coded_findings=content.coded_findings)
    assert report.stored_differences == []
    assert any("previous version" in w for w in report.warnings)
    assert not any(STORED_VALUES_DIFFER in w for w in report.warnings)


def test_tampered_old_sr_is_refused_like_a_new_one(old_sr, tmp_path):
    _, sr_path = old_sr
    ds = pydicom.dcmread(sr_path)
    item = _segment_num(ds, "L4-L5", "translation_mm")
    stored = float(item.MeasuredValueSequence[0].FloatingPointValue)
    item.MeasuredValueSequence[0].FloatingPointValue = 9.5
    item.MeasuredValueSequence[0].NumericValue = "9.5"
    bad = tmp_path / "tampered.dcm"
    ds.save_as(bad)
    content = read_sr(bad)
    assert content["results"]["segments"][[r["segment"] for r in
                                           content["results"]["segments"]].index("L4-L5")][
        "translation_mm"] == 9.5
    report = report_from_session(dict(content), bad, search_dirs=[sr_path.parent],
                                 coded_findings=content.coded_findings)
    assert stored != 9.5
    assert any(d.startswith("L4-L5 translation_mm: stored 9.5") for d in report.stored_differences)
    assert report.warnings[0].startswith(STORED_VALUES_DIFFER)


def test_corrupt_json_of_an_old_sr_is_one_line(old_sr, tmp_path):
    _, sr_path = old_sr
    ds = pydicom.dcmread(sr_path)
    header = next(i for i in ds.ContentSequence
                  if i.ValueType == "TEXT" and _cv(i) == "session-header")
    header.TextValue = "{not json"
    bad = tmp_path / "bad.dcm"
    ds.save_as(bad)
    with pytest.raises(InputFileError) as info:
        read_sr(bad)
    message = str(info.value)
    assert "bad.dcm" in message and "session-header" in message and "\n" not in message


def test_report_command_writes_a_pdf_from_an_old_sr(old_sr, tmp_path, capsys):
    from app.cli import main

    _, sr_path = old_sr
    pdf = tmp_path / "old.pdf"
    csv = tmp_path / "old.csv"
    assert main(["report", str(sr_path), "--pdf", str(pdf), "--csv", str(csv)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    err = capsys.readouterr().err
    assert "previous version" in err and STORED_VALUES_DIFFER not in err
    rows = csv.read_text().splitlines()
    assert rows[0].startswith("segment") or "segment" in rows[0]
    assert sum(line.startswith("L4-L5") for line in rows) == 1


def test_an_old_sr_saved_again_is_written_in_the_current_format(old_sr, tmp_path):
    from app.cli import main

    session_path, sr_path = old_sr
    new = tmp_path / "new.dcm"
    assert main(["report", str(sr_path), "--sr", str(new)]) == 0
    ds = pydicom.dcmread(new)
    assert not is_previous_version(ds)
    again = read_sr(new)
    assert READ_FROM_KEY not in again
    original = json.loads(session_path.read_text())
    for view in ("flexion", "extension"):
        assert again[view]["landmarks"] == original[view]["landmarks"]
        assert again[view]["pixel_spacing_mm"] == original[view]["pixel_spacing_mm"]
    assert again["results"]["segments"] == fx.without_paths(original)["results"]["segments"]
