"""Reader name and comment: set in the session, saved, reloaded, printed in the PDF and
carried into the SR as the person observer and a comment (issue 11 §4)."""

from __future__ import annotations

import json

import pydicom
import pytest

from app.dicom_io import load_film
from app.errors import InputFileError
from app.report_data import load_report, read_session_file
from app.report_sr import read_sr, write_sr
from app.session import Session
from tests.app import _report_fixtures as fx


def test_reader_is_saved_reloaded_and_carried_into_the_sr(tmp_path):
    path = fx.sample_session(tmp_path)
    session = Session()
    session.load(path, loader=load_film)
    assert session.reader == {"name": "", "comment": ""}
    session.set_reader(name="Reader^Alice", comment="L4-L5 reviewed; no listhesis on CT")
    assert session.dirty
    session.save(path)
    assert json.loads(path.read_text())["reader"] == {
        "name": "Reader^Alice", "comment": "L4-L5 reviewed; no listhesis on CT"}
    again = Session()
    again.load(path, loader=load_film)
    assert again.reader["name"] == "Reader^Alice"

    sr = write_sr(load_report(path, search_dirs=[fx.SAMPLE_DIR]), tmp_path / "r.dcm")
    ds = pydicom.dcmread(sr)
    names = [str(i.PersonName) for i in ds.ContentSequence if i.ValueType == "PNAME"]
    assert names == ["Reader^Alice"]
    comments = [i.TextValue for i in ds.ContentSequence if i.ValueType == "TEXT"
                and i.ConceptNameCodeSequence[0].CodeValue == "121106"]
    assert comments == ["L4-L5 reviewed; no listhesis on CT"]
    assert read_sr(sr)["reader"] == json.loads(path.read_text())["reader"]
    assert str(tmp_path) not in sr.read_bytes().decode("latin-1")  # no local path


def test_free_text_reader_name_round_trips(tmp_path):
    path = fx.sample_session(tmp_path, reader={"name": "Dr A. Reader", "comment": ""})
    sr = write_sr(load_report(path, search_dirs=[fx.SAMPLE_DIR]), tmp_path / "r.dcm")
    assert read_sr(sr)["reader"] == {"name": "Dr A. Reader", "comment": ""}


def test_reader_of_the_wrong_type_is_one_line_error(tmp_path):
    path = fx.sample_session(tmp_path, reader={"name": 42, "comment": ""})
    with pytest.raises(InputFileError, match=r"reader\.name"):
        read_session_file(path)
