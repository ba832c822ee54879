"""``lumbar-instability info``: calibration source per variant, JSON keys, order, exit status,
and never a patient name."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from app.cli import main
from tests.app.dicom_factory import FAKE_PATIENT_NAME, make_dataset, patch_text, write

VARIANTS = {
    "calibrated-fiducial.dcm": (
        {"PixelSpacing": [0.1, 0.1], "PixelSpacingCalibrationType": "FIDUCIAL"},
        "calibrated", [0.1, 0.1]),
    "magnification.dcm": (
        {"ImagerPixelSpacing": [0.15, 0.15], "EstimatedRadiographicMagnificationFactor": 1.25},
        "magnification-corrected", [0.12, 0.12]),
    "calibrated-differs.dcm": (
        {"PixelSpacing": [0.125, 0.1], "ImagerPixelSpacing": [0.15, 0.15]},
        "calibrated", [0.125, 0.1]),
    "detector.dcm": ({"ImagerPixelSpacing": [0.139, 0.139]}, "detector", [0.139, 0.139]),
    "none.dcm": ({}, "uncalibrated", None),
}  # fmt: skip

REQUIRED_KEYS = {
    "path", "rows", "columns", "photometric_interpretation", "view", "pixel_spacing_mm",
    "calibration_source", "warning", "error",
}  # fmt: skip


@pytest.fixture
def films(tmp_path):
    paths = []
    for name, (attributes, _, _) in VARIANTS.items():
        paths.append(
            str(write(make_dataset(SeriesDescription="LAT FLEX", **attributes), tmp_path / name))
        )
    return paths


def _run(capsys, *argv):
    status = main(["info", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_reports_each_calibration_source(capsys, films):
    status, out, _ = _run(capsys, "--json", *films)
    assert status == 0
    records = json.loads(out)
    assert [r["path"] for r in records] == films
    for record in records:
        name = record["path"].rsplit("/", 1)[-1]
        _, source, spacing = VARIANTS[name]
        assert REQUIRED_KEYS <= record.keys()
        assert record["calibration_source"] == source
        if spacing is None:
            assert record["pixel_spacing_mm"] is None
            assert (
                record["warning"] == "no usable pixel spacing: millimetre values are not available"
            )
        else:
            assert record["pixel_spacing_mm"] == pytest.approx(spacing)
        if source == "detector":
            assert record["warning"].startswith("spacing measured at the detector")
        if source in ("calibrated", "magnification-corrected"):
            assert record["warning"] is None
        assert (record["rows"], record["columns"]) == (24, 32)
        assert record["photometric_interpretation"] == "MONOCHROME2"
        assert record["view"] == "flexion"
        assert record["error"] is None


def test_garbled_spacing_is_a_warning_not_an_error(capsys, tmp_path):
    path = write(make_dataset(PixelSpacing=["9.876", "9.876"]), tmp_path / "g.dcm")
    patch_text(path, "9.876\\9.876", "0.000\\0.000")
    status, out, _ = _run(capsys, "--json", str(path))
    assert status == 0
    (record,) = json.loads(out)
    assert record["calibration_source"] == "uncalibrated"
    assert record["pixel_spacing_mm"] is None
    assert record["warning"].startswith(
        "PixelSpacing (0028,0030) '0.000\\0.000' ignored: not a positive number"
    )


def test_unreadable_files_are_reported_in_order_and_exit_1(capsys, films, tmp_path):
    junk = tmp_path / "junk.dcm"
    junk.write_text("not dicom " * 20)
    png = tmp_path / "extension.png"
    cv2.imwrite(str(png), np.full((5, 7), 9, np.uint16))
    argv = [films[0], str(junk), str(png), str(tmp_path / "missing.dcm")]
    status, out, err = _run(capsys, "--json", *argv)
    assert status == 1
    records = json.loads(out)
    assert [r["path"] for r in records] == argv
    assert records[1]["error"] == "not a DICOM file (no DICM preamble and not an image)"
    assert records[1]["rows"] is None and records[1]["calibration_source"] is None
    assert records[2]["error"] is None
    assert (records[2]["rows"], records[2]["columns"], records[2]["view"]) == (5, 7, "extension")
    assert records[2]["calibration_source"] == "uncalibrated"
    assert records[3]["error"] == "no such file"
    assert err == ""


def test_table(capsys, films, tmp_path):
    junk = tmp_path / "junk.dcm"
    junk.write_text("not dicom " * 20)
    status, out, _ = _run(capsys, films[3], str(junk))
    assert status == 1
    lines = out.splitlines()
    assert lines[0].split() == ["FILE", "SIZE", "PHOTOMETRIC", "VIEW", "SPACING", "SOURCE"]
    assert lines[1].split()[1:] == [
        "32",
        "x",
        "24",
        "MONOCHROME2",
        "flexion",
        "0.139",
        "mm",
        "detector",
    ]
    assert "    warning: spacing measured at the detector" in out
    assert "    spacing: ImagerPixelSpacing (0018,1164) 0.139\\0.139 mm" in out
    assert "    error: not a DICOM file (no DICM preamble and not an image)" in out


def test_header_only(capsys, films):
    status, out, _ = _run(capsys, "--json", "--header-only", films[1])
    (record,) = json.loads(out)
    assert status == 0
    assert record["calibration_source"] == "magnification-corrected"
    assert record["window"] is None and record["sha256"] is None


def test_patient_name_is_never_printed(capsys, films):
    surname, given = FAKE_PATIENT_NAME.split("^")[:2]
    for argv in (["--json", *films], films):
        _, out, err = _run(capsys, *argv)
        for text in (out, err):
            assert surname not in text and given not in text
            assert "19600229" not in text and "1960-02-29" not in text


def test_for_processing_images_are_flagged(capsys, tmp_path):
    path = write(
        make_dataset(ImagerPixelSpacing=[0.1, 0.1], PresentationIntentType="FOR PROCESSING"),
        tmp_path / "raw.dcm",
    )
    _, out, _ = _run(capsys, "--json", str(path))
    (record,) = json.loads(out)
    assert record["warning"].endswith(
        "; a FOR PROCESSING image: raw detector data, not meant for reading"
    )
    assert record["presentation_intent"] == "FOR PROCESSING"
