"""Anonymised export (app.report_export.write_export): no patient name, ID or birth date in
the PDF, SR, CSV or PNG; one bad file costs one file."""

from __future__ import annotations

import shutil
import subprocess

import pydicom
import pytest

from app.report_data import load_report
from app.report_export import write_export
from tests.app import _report_fixtures as fx

FORMATS = ("r.pdf", "r_SR.dcm", "r.csv", "r_films.png")
# what the films say about the patient (tests/app/_report_fixtures.py)
SECRETS = (b"Phantom^Lumbar", b"PHANTOM-001", b"19700101", b"ACC1")


def _pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("anon")
    session = fx.make_study(folder / "study")
    report = load_report(session)
    out = {}
    for anonymise in (False, True):
        target = folder / ("anon" if anonymise else "plain")
        target.mkdir()
        outcomes = write_export([target / n for n in FORMATS], report, anonymise=anonymise)
        assert [o.error for o in outcomes] == ["", "", "", ""]
        out[anonymise] = target
    return out


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_pdf_identity_only_when_not_anonymised(exports):
    plain = _pdf_text(exports[False] / "r.pdf")
    assert "PHANTOM, Lumbar" in plain and "PHANTOM-001" in plain and "1970-01-01" in plain
    anon = _pdf_text(exports[True] / "r.pdf")
    assert "anonymised" in anon
    for secret in ("PHANTOM", "Phantom", "PHANTOM-001", "1970-01-01", "ACC1"):
        assert secret not in anon
    # the study date and the measurements are kept
    assert "2026-01-01" in anon and "L4-L5" in anon


def test_sr_patient_module_emptied_and_declared(exports):
    plain = pydicom.dcmread(exports[False] / "r_SR.dcm")
    assert str(plain.PatientName) == "Phantom^Lumbar" and plain.PatientID == "PHANTOM-001"
    anon = pydicom.dcmread(exports[True] / "r_SR.dcm")
    assert (str(anon.PatientName), anon.PatientID, anon.PatientBirthDate, anon.AccessionNumber) == ("", "", "", "")
    assert anon.PatientIdentityRemoved == "YES"
    assert any("birth date" in v for v in anon.DeidentificationMethod)
    # still the same study and still referencing its films (the SR must find them again)
    assert anon.StudyInstanceUID == plain.StudyInstanceUID
    refs = {r.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            for s in anon.CurrentRequestedProcedureEvidenceSequence for r in s.ReferencedSeriesSequence}
    assert refs == {"1.2.826.0.1.3680043.10.1234.3.1", "1.2.826.0.1.3680043.10.1234.3.2"}


@pytest.mark.parametrize("name", FORMATS)
def test_no_identifier_in_any_anonymised_file(exports, name):
    plain = (exports[False] / name).read_bytes()
    anon = (exports[True] / name).read_bytes()
    for secret in SECRETS:
        assert secret not in anon, (name, secret)
    if name.endswith(".dcm"):  # the check would catch a leak: the plain SR holds them
        assert all(s in plain for s in SECRETS[:3])


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
def test_anonymised_sr_is_valid_dicom(exports):
    out = subprocess.run(["dciodvfy", str(exports[True] / "r_SR.dcm")], capture_output=True, text=True,
                         timeout=60)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
    assert errors == []


def test_a_failing_file_costs_one_file(tmp_path):
    session = fx.make_study(tmp_path / "study")
    report = load_report(session)
    (tmp_path / "study" / "extension.dcm").unlink()  # the SR must reference both films
    report = load_report(session)
    out = tmp_path / "out"
    out.mkdir()
    outcomes = write_export([out / "r.pdf", out / "r_SR.dcm", out / "r.csv"], report)
    assert [o.ok for o in outcomes] == [True, False, True]
    assert "extension image was not found" in outcomes[1].error
    assert sorted(p.name for p in out.iterdir()) == ["r.csv", "r.pdf"]  # no half-written SR


def test_a_loaded_film_pickles_for_the_worker_process(tmp_path):
    """The viewer's export sends its films to the worker process by pickle (app.background)."""
    import pickle

    import numpy as np

    from app.dicom_io import file_sha256, load_film

    path = fx.write_film(tmp_path / "flexion.dcm", "flexion")
    film = load_film(str(path))
    again = pickle.loads(pickle.dumps(film))
    assert again.sha256 == film.sha256 == file_sha256(path)
    np.testing.assert_array_equal(again.display_image(), film.display_image())
    fresh = pickle.loads(pickle.dumps(load_film(str(path))))  # not hashed before pickling
    assert fresh.sha256 == file_sha256(path)
