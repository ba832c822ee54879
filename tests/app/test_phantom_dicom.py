"""The phantom's DICOM files: dciodvfy, lossless round trip, headers, calibration, bytes."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from app.phantom import COMPRESSIONS, make_study, write_study

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
TRANSFER_SYNTAX = {
    "none": "1.2.840.10008.1.2.1",
    "rle": "1.2.840.10008.1.2.5",
    "jpeg-ls": "1.2.840.10008.1.2.4.80",
    "jpeg2000": "1.2.840.10008.1.2.4.90",
    "jpeg-lossless": "1.2.840.10008.1.2.4.70",
}


@pytest.fixture(scope="module")
def study():
    return make_study(13, scale=0.1, unstable=("L4-L5",))


def _with(study, **options):
    """The same rendered films written with other header/encoding options."""
    return dataclasses.replace(study, options=dataclasses.replace(study.options, **options))


def _dciodvfy(path) -> list[str]:
    run = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


needs_dciodvfy = pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed"
)


@needs_dciodvfy
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_dciodvfy_finds_no_error(study, tmp_path, compression):
    paths = write_study(_with(study, compression=compression), tmp_path)
    for view in ("flexion", "extension"):
        assert _dciodvfy(paths[view]) == [], view


@needs_dciodvfy
@pytest.mark.parametrize(
    ("calibration", "photometric"),
    [("calibrated", "MONOCHROME1"), ("detector", "MONOCHROME2"), ("detector-differs", "MONOCHROME1")],
)
def test_dciodvfy_clean_for_the_conformant_calibration_variants(study, tmp_path, calibration, photometric):
    mono1 = make_study(13, scale=0.1, photometric=photometric, calibration=calibration, facing="right")
    paths = write_study(mono1, tmp_path)
    assert _dciodvfy(paths["flexion"]) == []


@needs_dciodvfy
def test_the_deliberately_broken_spacing_variants_break_only_the_spacing(study, tmp_path):
    """'uncalibrated' lacks ImagerPixelSpacing (type 1 in DX) and 'garbage' has 0.000:
    exactly what a reader must cope with, and nothing else is wrong."""
    errors = _dciodvfy(write_study(_with(study, calibration="uncalibrated"), tmp_path / "u")["flexion"])
    assert len(errors) == 1 and "ImagerPixelSpacing" in errors[0] and "Missing" in errors[0]
    errors = _dciodvfy(write_study(_with(study, calibration="garbage"), tmp_path / "g")["flexion"])
    assert errors and all("Value is zero" in e and "PixelSpacing" in e for e in errors)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_lossless_round_trip(study, tmp_path, compression):
    paths = write_study(_with(study, compression=compression), tmp_path)
    for film in study.films:
        ds = pydicom.dcmread(paths[film.view])
        assert ds.file_meta.TransferSyntaxUID == TRANSFER_SYNTAX[compression]
        np.testing.assert_array_equal(ds.pixel_array, film.pixels)


def test_headers_identify_one_patient_study_and_two_views(study, tmp_path):
    paths = write_study(study, tmp_path)
    flex, ext = (pydicom.dcmread(paths[v]) for v in ("flexion", "extension"))
    for ds, view in ((flex, "FLEXION"), (ext, "EXTENSION")):
        assert ds.SOPClassUID == DX_FOR_PRESENTATION
        assert ds.Modality == "DX" and ds.PresentationIntentType == "FOR PRESENTATION"
        assert str(ds.PatientName) == "PHANTOM^SEED13" and ds.PatientID == "PHANTOM-13"
        assert ds.SeriesDescription == f"L-SPINE LAT {view}"
        code = ds.ViewCodeSequence[0]
        assert (code.CodeValue, code.CodingSchemeDesignator) == ("399173006", "SCT")  # left lateral
        modifier = code.ViewModifierCodeSequence[0]
        assert modifier.CodeMeaning.upper() == view
        assert ds.PatientOrientation == ["P", "F"]  # facing left: columns run to posterior
        assert ds.BitsStored == 12 and ds.PhotometricInterpretation == "MONOCHROME2"
    assert flex.StudyInstanceUID == ext.StudyInstanceUID
    assert flex.SeriesInstanceUID != ext.SeriesInstanceUID
    assert flex.SOPInstanceUID != ext.SOPInstanceUID
    assert flex.StudyInstanceUID.startswith(pydicom.uid.PYDICOM_ROOT_UID)


def _spacing_per_measurement_md(ds) -> tuple[str, float | None]:
    """measurement.md §5, written out here as the independent expectation."""

    def pair(keyword):
        try:
            values = [float(v) for v in ds.get(keyword, [])]
        except ValueError:
            return None
        return values if len(values) == 2 and all(v > 0 for v in values) else None

    ps, ips = pair("PixelSpacing"), pair("ImagerPixelSpacing")
    ermf = float(ds.get("EstimatedRadiographicMagnificationFactor", 0) or 0)
    if ps and ds.get("PixelSpacingCalibrationType") in ("GEOMETRY", "FIDUCIAL"):
        return "calibrated", ps[0]
    if ips and ermf > 0:
        return "magnification-corrected", ips[0] / ermf
    if ps and ips and ps != ips:
        return "calibrated", ps[0]
    if ips or ps:
        return "detector", (ips or ps)[0]
    return "uncalibrated", None


@pytest.mark.parametrize(
    "calibration",
    ["calibrated", "magnification-corrected", "detector", "detector-differs", "uncalibrated", "garbage"],
)
def test_each_calibration_variant_carries_what_the_truth_says(study, tmp_path, calibration):
    variant = _with(study, calibration=calibration)
    truth = variant.truth()
    paths = write_study(variant, tmp_path)
    for film in variant.films:
        ds = pydicom.dcmread(paths[film.view])
        source, spacing = _spacing_per_measurement_md(ds)
        expected = truth[film.view]["header_calibration"]
        assert source == expected["source"]
        if spacing is None:
            assert expected["pixel_spacing_mm"] is None
        else:
            assert spacing == pytest.approx(expected["pixel_spacing_mm"][0], rel=1e-9)
        if source in ("calibrated", "magnification-corrected"):  # the patient-plane truth
            assert spacing == pytest.approx(film.pixel_spacing_mm[0], rel=1e-9)
        if source == "detector":  # overstates patient distances by the magnification
            assert spacing / film.pixel_spacing_mm[0] == pytest.approx(film.magnification)
        try:
            from app.dicom_io import calibration_from_dataset
        except ImportError:
            continue
        assert calibration_from_dataset(ds).source.value == expected["source"]


def test_same_seed_writes_identical_bytes(tmp_path):
    a = make_study(2, scale=0.1, compression="jpeg-ls", unstable=("L4-L5",))
    b = make_study(2, scale=0.1, compression="jpeg-ls", unstable=("L4-L5",))
    pa, pb = write_study(a, tmp_path / "a"), write_study(b, tmp_path / "b")
    for name in ("flexion", "extension", "truth"):
        assert pa[name].read_bytes() == pb[name].read_bytes(), name
    c = write_study(make_study(3, scale=0.1, compression="jpeg-ls"), tmp_path / "c")
    assert pydicom.dcmread(c["flexion"]).StudyInstanceUID != pydicom.dcmread(pa["flexion"]).StudyInstanceUID
