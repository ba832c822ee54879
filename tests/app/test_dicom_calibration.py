"""Calibration per measurement.md §5: every branch, from datasets and from files."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from app.dicom_io import calibration_and_warning, calibration_from_dataset, load_film
from measure import CalibrationSource
from tests.app.dicom_factory import make_dataset, patch_text, write

CAL = CalibrationSource

# (attributes, expected source, expected (row, column) spacing in mm or None)
BRANCHES = {
    "fiducial": (
        {"PixelSpacing": [0.1, 0.1], "PixelSpacingCalibrationType": "FIDUCIAL",
         "ImagerPixelSpacing": [0.14, 0.14]},
        CAL.CALIBRATED, (0.1, 0.1)),
    "geometry-before-magnification": (
        {"PixelSpacing": [0.11, 0.12], "PixelSpacingCalibrationType": "GEOMETRY",
         "ImagerPixelSpacing": [0.15, 0.15], "EstimatedRadiographicMagnificationFactor": 1.5},
        CAL.CALIBRATED, (0.11, 0.12)),
    "magnification-corrected": (
        {"ImagerPixelSpacing": [0.15, 0.15], "EstimatedRadiographicMagnificationFactor": 1.25},
        CAL.MAGNIFICATION_CORRECTED, (0.12, 0.12)),
    "magnification-beats-plain-pixel-spacing": (
        {"PixelSpacing": [0.1, 0.1], "ImagerPixelSpacing": [0.16, 0.2],
         "EstimatedRadiographicMagnificationFactor": 1.6},
        CAL.MAGNIFICATION_CORRECTED, (0.1, 0.125)),
    "pixel-spacing-differs": (
        {"PixelSpacing": [0.125, 0.125], "ImagerPixelSpacing": [0.15, 0.15]},
        CAL.CALIBRATED, (0.125, 0.125)),
    "pixel-spacing-alone": ({"PixelSpacing": [0.2, 0.1]}, CAL.CALIBRATED, (0.2, 0.1)),
    "detector-only": ({"ImagerPixelSpacing": [0.139, 0.139]}, CAL.DETECTOR, (0.139, 0.139)),
    "pixel-spacing-equals-detector": (
        {"PixelSpacing": [0.139, 0.139], "ImagerPixelSpacing": ["0.1390", "0.139"]},
        CAL.DETECTOR, (0.139, 0.139)),
    "nothing": ({}, CAL.UNCALIBRATED, None),
}  # fmt: skip


def _dataset(attributes: dict) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize("name", list(BRANCHES))
def test_each_branch_from_a_dataset(name):
    attributes, source, spacing = BRANCHES[name]
    calibration = calibration_from_dataset(_dataset(attributes))
    assert calibration.source is source
    if spacing is None:
        assert calibration.spacing_mm is None
    else:
        assert calibration.spacing_mm == pytest.approx(spacing, rel=1e-12)


@pytest.mark.parametrize("name", list(BRANCHES))
def test_each_branch_from_a_file(tmp_path, name):
    attributes, source, spacing = BRANCHES[name]
    path = write(make_dataset(**attributes), tmp_path / f"{name}.dcm")
    film = load_film(path)
    assert film.calibration.source is source
    assert film.calibration.spacing_mm == (pytest.approx(spacing) if spacing else None)


def test_detail_names_the_attributes_and_values_used():
    cal = calibration_from_dataset(_dataset(BRANCHES["magnification-corrected"][0]))
    assert cal.detail == (
        "ImagerPixelSpacing (0018,1164) 0.15\\0.15 mm / "
        "EstimatedRadiographicMagnificationFactor (0018,1114) 1.25"
    )
    cal = calibration_from_dataset(_dataset(BRANCHES["fiducial"][0]))
    assert cal.detail == (
        "PixelSpacing (0028,0030) 0.1\\0.1 mm with PixelSpacingCalibrationType (0028,0A02) FIDUCIAL"
    )
    cal = calibration_from_dataset(_dataset(BRANCHES["detector-only"][0]))
    assert cal.detail == "ImagerPixelSpacing (0018,1164) 0.139\\0.139 mm"


def test_detector_and_uncalibrated_carry_a_warning_the_others_none():
    for name, (attributes, source, _) in BRANCHES.items():
        _, warning = calibration_and_warning(_dataset(attributes))
        if source in (CAL.DETECTOR, CAL.UNCALIBRATED):
            assert warning == source.warning, name
        else:
            assert warning is None, name


# Garbled values are written into real files (pydicom would refuse to encode them).
GARBLED = {
    # placeholder in the file -> garbled text, other attributes, expected source, spacing, warning
    "zero": ("0.000\\0.000", {}, CAL.UNCALIBRATED, None,
             "PixelSpacing (0028,0030) '0.000\\0.000' ignored: not a positive number"),
    "negative": ("-0.14\\0.140", {}, CAL.UNCALIBRATED, None,
                 "PixelSpacing (0028,0030) '-0.14\\0.140' ignored: not a positive number"),
    # text that is not numeric is never quoted: it may be a swallowed name
    "not-a-number": ("abc\\0.1400", {}, CAL.UNCALIBRATED, None,
                     "PixelSpacing (0028,0030) '[non-numeric text]' ignored: not a number"),
    "absurd": ("1e308\\1e308", {}, CAL.UNCALIBRATED, None,
               "PixelSpacing (0028,0030) '1e308\\1e308' ignored: outside the plausible 0.001-10"),
    "one-value": ("0.1400000000", {}, CAL.UNCALIBRATED, None,
                  "PixelSpacing (0028,0030) '0.1400000000' ignored: 1 values, expected 2"),
    "zero-with-detector": ("0.000\\0.000", {"ImagerPixelSpacing": [0.15, 0.15]}, CAL.DETECTOR,
                           (0.15, 0.15),
                           "PixelSpacing (0028,0030) '0.000\\0.000' ignored: not a positive number"),
    "zero-with-fiducial": ("0.000\\0.000", {"PixelSpacingCalibrationType": "FIDUCIAL",
                                            "ImagerPixelSpacing": [0.15, 0.15]},
                           CAL.DETECTOR, (0.15, 0.15),
                           "PixelSpacing (0028,0030) '0.000\\0.000' ignored: not a positive number"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(GARBLED))
def test_garbled_pixel_spacing_is_ignored_with_a_warning_naming_it(tmp_path, name):
    garbled, others, source, spacing, warning = GARBLED[name]
    placeholder = "9.87654\\9.8765"[: len(garbled)]
    placeholder = placeholder + "9" * (len(garbled) - len(placeholder))
    path = write(make_dataset(PixelSpacing=placeholder.split("\\"), **others), tmp_path / "g.dcm")
    patch_text(path, placeholder, garbled)
    film = load_film(path)  # not an error
    assert film.calibration.source is source
    assert film.calibration.spacing_mm == (pytest.approx(spacing) if spacing else None)
    assert film.calibration_warning.startswith(warning)
    assert warning in film.calibration.detail
    if source is CAL.UNCALIBRATED:
        assert film.calibration_warning.endswith(CAL.UNCALIBRATED.warning)


def test_garbled_magnification_factor_falls_back_to_the_detector(tmp_path):
    path = write(
        make_dataset(
            ImagerPixelSpacing=[0.15, 0.15], EstimatedRadiographicMagnificationFactor="7.5"
        ),
        tmp_path / "m.dcm",
    )
    patch_text(path, "7.5", "0.0")
    film = load_film(path)
    assert film.calibration.source is CAL.DETECTOR
    assert film.calibration.spacing_mm == pytest.approx((0.15, 0.15))
    assert film.calibration_warning.startswith(
        "EstimatedRadiographicMagnificationFactor (0018,1114) '0.0' ignored: not a positive number"
    )


def test_unknown_calibration_type_is_not_trusted():
    ds = _dataset({"PixelSpacing": [0.1, 0.1], "ImagerPixelSpacing": [0.1, 0.1],
                   "PixelSpacingCalibrationType": "GUESS"})  # fmt: skip
    calibration, warning = calibration_and_warning(ds)
    assert calibration.source is CAL.DETECTOR
    assert (
        "PixelSpacingCalibrationType (0028,0A02) 'GUESS' is neither FIDUCIAL nor GEOMETRY"
        in warning
    )


def test_implausible_magnification_factor_is_used_but_flagged():
    ds = _dataset(
        {"ImagerPixelSpacing": [0.15, 0.15], "EstimatedRadiographicMagnificationFactor": 0.5}
    )
    calibration, warning = calibration_and_warning(ds)
    assert calibration.source is CAL.MAGNIFICATION_CORRECTED
    assert calibration.spacing_mm == pytest.approx((0.3, 0.3))
    assert (
        warning
        == "EstimatedRadiographicMagnificationFactor (0018,1114) 0.5 is outside the usual 1.0-2.0"
    )


def test_never_one_millimetre_per_pixel_for_plain_images(tmp_path):
    import cv2
    import numpy as np

    path = tmp_path / "lateral.png"
    cv2.imwrite(str(path), np.full((8, 9), 100, np.uint8))
    film = load_film(path)
    assert film.calibration.source is CAL.UNCALIBRATED
    assert film.calibration.spacing_mm is None
    assert film.calibration_warning == CAL.UNCALIBRATED.warning
