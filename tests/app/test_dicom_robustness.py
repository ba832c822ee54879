"""A damaged file gives a Film or an InputFileError, never another exception."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from app.dicom_io import load_film, read_film_header
from app.errors import InputFileError
from tests.app.dicom_factory import make_dataset, ramp, write


def _outcome(read, path):
    try:
        return read(path)
    except InputFileError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"{path}: ")
        return exc


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless])
def test_truncated_anywhere(tmp_path, syntax):
    source = write(
        make_dataset(ramp(40, 48), SeriesDescription="LAT FLEX", PixelSpacing=[0.1, 0.1]),
        tmp_path / "source.dcm",
        syntax,
    )
    data = source.read_bytes()
    target = tmp_path / "cut.dcm"
    cuts = sorted(set(np.linspace(1, len(data) - 1, 60).astype(int)))
    for cut in cuts:
        target.write_bytes(data[:cut])
        for read in (load_film, read_film_header):
            outcome = _outcome(read, target)
            if not isinstance(outcome, InputFileError):
                # only a cut in trailing padding could leave a complete film
                assert read is read_film_header or np.array_equal(outcome.pixels, ramp(40, 48))


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless])
def test_random_byte_damage(tmp_path, syntax):
    source = write(
        make_dataset(ramp(40, 48), ImagerPixelSpacing=[0.2, 0.2]), tmp_path / "s.dcm", syntax
    )
    data = np.frombuffer(source.read_bytes(), np.uint8)
    rng = np.random.default_rng(11)
    target = tmp_path / "damaged.dcm"
    for _ in range(40):
        damaged = data.copy()
        where = rng.integers(132, data.size, size=4)
        damaged[where] = rng.integers(0, 256, size=4, dtype=np.uint8)
        target.write_bytes(damaged.tobytes())
        for read in (load_film, read_film_header):
            _outcome(read, target)  # a Film or a one-line InputFileError, nothing else


@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg"])
def test_truncated_plain_images(tmp_path, suffix):
    import cv2

    source = tmp_path / f"film{suffix}"
    cv2.imwrite(str(source), (np.arange(200 * 150).reshape(200, 150) % 251).astype(np.uint8))
    data = source.read_bytes()
    target = tmp_path / f"cut{suffix}"
    for cut in (8, 100, len(data) // 2, len(data) - 2):
        target.write_bytes(data[:cut])
        outcome = _outcome(load_film, target)
        assert isinstance(outcome, InputFileError), cut


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_damaged_image_gives_only_its_reason_not_decoder_noise(tmp_path, capfd, suffix):
    """OpenCV logs '[ERROR:...] IHDR chunk shall be first' etc. on stderr by itself;
    the user must see one line, ours."""
    import cv2

    source = tmp_path / f"film{suffix}"
    cv2.imwrite(str(source), np.zeros((20, 30), np.uint8))
    damaged = tmp_path / f"damaged{suffix}"
    data = source.read_bytes()
    damaged.write_bytes(data[:8] + b"\0" * (len(data) - 8))
    capfd.readouterr()
    assert isinstance(_outcome(load_film, damaged), InputFileError)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
