"""Scanning a folder: headers only, failures recorded, nothing raised."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from app.batch import Failure, FilmRecord, list_files
from app.batch._scan import HeaderChunk, read_header_chunk
from tests.app.dicom_factory import FAKE_PATIENT_NAME, make_dataset, truncate, write


def test_walk_records_unreadable_folders_and_skips_the_results_folder(tmp_path: Path,
                                                                      monkeypatch):
    (tmp_path / "a" / "locked").mkdir(parents=True)
    (tmp_path / "a" / "x.dcm").write_bytes(b"x")
    (tmp_path / "a" / "session.json").write_text("{}")
    (tmp_path / "a" / ".hidden").write_text("")
    (tmp_path / "DICOMDIR").write_bytes(b"x")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.csv").write_text("")
    (tmp_path / "a" / "locked" / "y.dcm").write_bytes(b"y")
    locked = str(tmp_path / "a" / "locked")
    real_scandir = os.scandir

    def scandir(path="."):  # as a folder without read permission behaves (also as root)
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    scan = list_files(tmp_path, exclude=[tmp_path / "results"])
    assert scan.files == ["a/x.dcm"]
    assert scan.json_files == ["a/session.json"]
    assert scan.failures == [
        Failure("directory", "a/locked", "read: cannot list the folder: Permission denied",
                files=("a/locked",))
    ]


def test_header_chunk_reads_identity_view_and_calibration_without_names(tmp_path: Path):
    pixels = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48)
    ds = make_dataset(pixels, SeriesDescription="LWS lat Flexion", PatientID="P-7",
                      ImagerPixelSpacing=[0.2, 0.2], AcquisitionDate="20240312",
                      AcquisitionTime="101500", InstanceNumber=3)
    write(ds, tmp_path / "flex.dcm")
    write(make_dataset(pixels), tmp_path / "cut.dcm")
    truncate(tmp_path / "cut.dcm", 200)
    (tmp_path / "notes.txt").write_text("hello")
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 200
    (tmp_path / "picture.png").write_bytes(png)
    film, cut, notes, picture = read_header_chunk(
        HeaderChunk(str(tmp_path), ("flex.dcm", "cut.dcm", "notes.txt", "picture.png"))
    )
    assert isinstance(film, FilmRecord)
    assert (film.path, film.patient_id, film.view, film.instance_number) == (
        "flex.dcm", "P-7", "flexion", 3)
    assert film.study_instance_uid == ds.StudyInstanceUID
    assert film.sop_instance_uid == ds.SOPInstanceUID
    assert film.acquisition_datetime.startswith("20240312101500")
    assert (film.rows, film.columns) == (64, 48)
    assert film.calibration_source == "detector"
    assert film.spacing_mm == pytest.approx((0.2, 0.2))
    assert FAKE_PATIENT_NAME.split("^")[0] not in repr(film.to_json())
    assert isinstance(cut, Failure) and cut.kind == "file" and cut.reason.startswith("read: ")
    assert notes.reason.startswith("read: not a DICOM file")
    assert isinstance(picture, Failure) and picture.reason.startswith("read: ")
    assert FilmRecord.from_json(film.to_json()) == film
