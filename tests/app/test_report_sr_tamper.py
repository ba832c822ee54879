"""``report`` on a hand-edited SR (issue 11 §5): each of the ten edits is shown as
"This report's stored values differ from its landmarks"; the untouched SR is clean."""

from __future__ import annotations

import json

import pydicom
import pytest

from app.cli import main
from app.report_data import load_report
from app.report_sr import read_sr, write_sr
from app.report_verify import STORED_VALUES_DIFFER
from tests.app import _report_fixtures as fx
from tests.app._sr_tamper import REFUSED, TAMPERINGS


@pytest.fixture(scope="module")
def sr(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tamper")
    session = fx.make_study(folder / "study", measured=True)
    return write_sr(load_report(session), folder / "study" / "report.dcm")


def test_untouched_sr_agrees_with_its_landmarks(sr, tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["report", str(sr), "--json", str(out)]) == 0
    table = json.loads(out.read_text())
    assert table["stored_values_differ"] == []
    assert STORED_VALUES_DIFFER not in capsys.readouterr().err
    assert read_sr(sr).coded_findings == {
        r["segment"]: r["verdict"] for r in table["segments"]}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_each_tampering_is_shown(name, sr, tmp_path, capsys):
    ds = pydicom.dcmread(sr)
    expected = TAMPERINGS[name](ds)
    tampered = sr.parent / f"tampered-{name}.dcm"
    ds.save_as(tampered)
    out = tmp_path / "t.json"
    status = main(["report", str(tampered), "--json", str(out), "--pdf", str(tmp_path / "t.pdf")])
    err = capsys.readouterr().err
    if name in REFUSED:
        assert status == 2 and len(err.strip().splitlines()) == 1 and expected in err, err
        assert not out.exists()
        return
    assert status == 1
    assert STORED_VALUES_DIFFER in err
    table = json.loads(out.read_text())
    assert any(expected in d for d in table["stored_values_differ"]), table["stored_values_differ"]
    assert table["warnings"][0].startswith(STORED_VALUES_DIFFER)


def test_the_coded_finding_alone_is_compared(sr, tmp_path):
    ds = pydicom.dcmread(sr)
    from tests.app._sr_tamper import _group, _item

    _item(_group(ds, "segment L4-L5"), "121071").ConceptCodeSequence[0].CodeValue = "within"
    ds.save_as(tmp_path / "t.dcm")
    out = tmp_path / "t.json"
    assert main(["report", str(tmp_path / "t.dcm"), "--json", str(out),
                 "--images", str(sr.parent)]) == 1
    assert any(d.startswith("L4-L5 coded finding: stored within")
               for d in json.loads(out.read_text())["stored_values_differ"])
