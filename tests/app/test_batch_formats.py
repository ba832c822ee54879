"""Batch input and output formats: reports from films missing Type 2 attributes,
honest ``--landmarks``, clutter, all-or-nothing tables, input fingerprints."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from app.batch import BatchOptions, SerialExecutor, run_batch
from tests.app._batch_archive import _landmarks_file, _render

TYPE2 = ("StudyDate", "StudyTime", "PatientBirthDate", "PatientSex", "AccessionNumber",
         "StudyID")


def make_study(folder: Path, landmarks_dir: Path, seed: int, *, strip=()) -> dict:
    """One phantom study in ``folder`` with its exact landmarks file in ``landmarks_dir``."""
    truth, paths = _render(seed, folder / ".tmp", calibration="calibrated")
    study_uid = generate_uid()
    sop = {}
    for role, path in paths.items():
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = study_uid
        ds.PatientID = f"PAT{seed:03d}"
        sop[role] = ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        for keyword in strip:
            if keyword in ds:
                delattr(ds, keyword)
        ds.save_as(folder / f"{role}.dcm", enforce_file_format=True)
    shutil.rmtree(folder / ".tmp")
    _landmarks_file(landmarks_dir / f"{study_uid}.json", truth, study_uid, sop)
    return {"study_instance_uid": study_uid, "sop": sop, "truth": truth}


def test_sr_for_films_without_type2_patient_and_study_attributes(tmp_path: Path):
    inp, marks = tmp_path / "in", tmp_path / "marks"
    study = make_study(inp / "s1", marks, 1, strip=TYPE2)
    out = tmp_path / "out"
    summary = run_batch(BatchOptions(inp, out, landmarks_dir=marks, sr=True, pdf=True,
                                     quiet=True), executor=SerialExecutor())
    assert summary.failures == {} and summary.measured == 1
    (sr_path,) = (out / "reports").glob("*.sr.dcm")
    ds = pydicom.dcmread(sr_path)
    for keyword in TYPE2:
        assert keyword in ds and ds[keyword].value in ("", None), keyword
    assert ds.StudyInstanceUID == study["study_instance_uid"] and ds.PatientID == "PAT001"
    assert len(list((out / "reports").glob("*.pdf"))) == 1
    if shutil.which("dciodvfy"):
        run = subprocess.run(["dciodvfy", str(sr_path)], capture_output=True, text=True,
                             timeout=60)
        errors = [ln for ln in (run.stdout + run.stderr).splitlines() if ln.startswith("Error")]
        assert errors == []
