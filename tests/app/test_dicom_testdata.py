"""Every 2-D image bundled with pydicom loads with pydicom's own pixel values, or
fails with a clear one-line reason (no network: ``download=False``)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut

from app.dicom_io import load_film, read_film_header
from app.errors import InputFileError

TEST_FILES = sorted(
    path for path in get_testdata_files() if os.path.isfile(path) and not path.endswith(".py")
)

# Files pydicom itself cannot decode (or that are not images), with the reason expected.
EXPECTED_REASONS = {
    "MR_truncated.dcm": "truncated: pixel data has 8130 of 8192 bytes",
    "badVR.dcm": "NumberOfFrames (0028,0008) is not a number",  # the tag, never the value
    "JPEG-lossy.dcm": "transfer syntax 1.2.840.10008.1.2.4.51 (JPEG Extended (Process 2 and 4)) "
    "cannot be decoded:",
    "JPEG2000-embedded-sequence-delimiter.dcm": "transfer syntax 1.2.840.10008.1.2.4.91 "
    "(JPEG 2000 Image Compression) cannot be decoded:",
    "meta_missing_tsyntax.dcm": "missing PhotometricInterpretation (0028,0004)",
    "nested_priv_SQ.dcm": "missing PhotometricInterpretation (0028,0004)",
}


def _reference(path: str) -> tuple[np.ndarray, bool] | str:
    """What pydicom alone makes of a file: (modality values, whether the rescale is
    the identity), or the kind of refusal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            # A data set without preamble is read when it starts with a group
            # 0002 or 0008 element, in either byte order.
            with open(path, "rb") as handle:
                start = handle.read(2)
            if start not in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08"):
                return "not a DICOM file (no DICM preamble and not an image)"
            ds = pydicom.dcmread(path, force=True)
        if "PixelData" not in ds:
            return "no pixel data"
        photometric = str(ds.get("PhotometricInterpretation", ""))
        if photometric and (
            ds.get("SamplesPerPixel", 1) != 1 or not photometric.startswith("MONO")
        ):
            return f"{photometric} image, a lateral film must be grayscale"
        try:
            frames = int(ds.get("NumberOfFrames", 1) or 1)
        except (TypeError, ValueError):
            return "pydicom cannot read NumberOfFrames"
        if frames > 1:
            return f"{frames} frames, a lateral film is a single frame"
        try:
            stored = ds.pixel_array
        except Exception as exc:
            return f"pydicom cannot decode: {exc}"
        identity = "ModalityLUTSequence" not in ds and (
            float(ds.get("RescaleSlope", 1)) == 1 and float(ds.get("RescaleIntercept", 0)) == 0
        )
        return apply_modality_lut(stored, ds), identity


def test_the_bundled_set_is_not_empty():
    names = {Path(p).name for p in TEST_FILES}
    assert len(TEST_FILES) > 100
    assert {"CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "MR_small_jpeg_ls_lossless.dcm",
            "JPGExtended.dcm", "image_dfl.dcm"} <= names  # fmt: skip
    assert get_testdata_file("CT_small.dcm", download=False) in TEST_FILES


@pytest.mark.parametrize(
    "path", TEST_FILES, ids=lambda p: os.path.relpath(p, Path(TEST_FILES[0]).parent)
)
def test_bundled_file_loads_like_pydicom_or_gives_a_reason(path):
    expected = _reference(path)
    name = Path(path).name
    if isinstance(expected, tuple):
        expected, identity = expected
        film = load_film(path)
        assert film.pixels.shape == expected.shape == (film.rows, film.columns)
        if identity:  # no copy to float: the stored integers themselves
            assert film.pixels.dtype.kind in "iu"
            np.testing.assert_array_equal(film.pixels, expected)
        elif expected.dtype.kind == "f":  # a rescale: float32 here, float64 in pydicom
            assert film.pixels.dtype == np.float32
            np.testing.assert_allclose(film.pixels, expected, rtol=1e-6, atol=1e-4)
        else:  # a Modality LUT Sequence
            assert film.pixels.dtype.kind == expected.dtype.kind
            np.testing.assert_array_equal(film.pixels, expected)
        assert not film.pixels.flags.writeable
        header = read_film_header(path)
        assert (header.rows, header.columns) == film.shape
        assert header.calibration == film.calibration
        return
    with pytest.raises(InputFileError) as caught:
        load_film(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    reason = caught.value.reason
    if name in EXPECTED_REASONS:
        assert reason.startswith(EXPECTED_REASONS[name])
    else:
        assert reason == expected


def test_most_bundled_greyscale_images_load():
    loaded = 0
    for path in TEST_FILES:
        try:
            load_film(path)
        except InputFileError:
            continue
        loaded += 1
    assert loaded >= 50
