"""Bad input gives one exact line naming the file; every codec round-trips losslessly;
plain images; header-only reads; identity."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import cv2
import numpy as np
import pytest
from pydicom.uid import (
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from app.dicom_io import FilmIdentity, load_film, read_film_header
from app.errors import InputFileError
from tests.app.dicom_factory import (
    FAKE_PATIENT_NAME,
    gdcm_transcode,
    make_dataset,
    pixel_value_offset,
    ramp,
    truncate,
    write,
)

READERS = pytest.mark.parametrize("read", [load_film, read_film_header], ids=["load", "header"])


def _reason(read, path) -> str:
    with pytest.raises(InputFileError) as caught:
        read(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert FAKE_PATIENT_NAME.split("^")[0] not in message
    return caught.value.reason


@READERS
def test_not_a_dicom_file(tmp_path, read):
    path = tmp_path / "x.dcm"
    path.write_text("just some text, long enough to have 132 bytes " * 4)
    assert _reason(read, path) == "not a DICOM file (no DICM preamble and not an image)"


@READERS
def test_empty_and_missing_files(tmp_path, read):
    (tmp_path / "empty.dcm").write_bytes(b"")
    assert _reason(read, tmp_path / "empty.dcm") == "empty file"
    assert _reason(read, tmp_path / "nope.dcm") == "no such file"
    assert _reason(read, tmp_path) == "is a directory, not a file"


@READERS
def test_truncated_native_pixel_data(tmp_path, read):
    path = write(make_dataset(ramp(50, 100)), tmp_path / "t.dcm")
    offset = pixel_value_offset(path)
    truncate(path, offset + 1234)
    assert _reason(read, path) == "truncated: pixel data has 1234 of 10000 bytes"


@READERS
def test_truncated_encapsulated_pixel_data(tmp_path, read):
    path = write(make_dataset(ramp(50, 100)), tmp_path / "t.dcm", RLELossless)
    size = path.stat().st_size
    truncate(path, size - 100)
    reason = _reason(read, path)
    assert reason.startswith("truncated: encapsulated pixel data end after ")
    assert reason.endswith(" bytes without their sequence delimiter")


@READERS
def test_no_pixel_data(tmp_path, read):
    ds = make_dataset()
    del ds.PixelData
    path = write(ds, tmp_path / "n.dcm")
    assert _reason(read, path) == "no pixel data"


def _encapsulated_with_syntax(tmp_path, syntax):
    from pydicom.encaps import encapsulate

    ds = make_dataset(ramp(8, 8))
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3 not a real stream"])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax
    path = tmp_path / "u.dcm"
    ds.save_as(path, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return path


@READERS
@pytest.mark.parametrize(
    ("syntax", "name"),
    [
        ("1.2.3.4.5.6.7.8.9.0", "unknown"),
        ("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level"),
    ],
)
def test_unsupported_transfer_syntax(tmp_path, read, syntax, name):
    path = _encapsulated_with_syntax(tmp_path, syntax)
    assert (
        _reason(read, path) == f"transfer syntax {syntax} ({name}) cannot be decoded: not supported"
    )


def test_corrupt_codestream_is_found_when_decoding(tmp_path):
    path = write(make_dataset(ramp(40, 40)), tmp_path / "j.dcm", JPEG2000Lossless)
    data = bytearray(path.read_bytes())
    start = data.find(b"\xff\x4f\xff\x51")  # J2K SOC + SIZ markers
    data[start : start + 40] = b"\x00" * 40
    path.write_bytes(bytes(data))
    for read in (load_film, read_film_header):  # the codestream's header is checked first
        assert _reason(read, path) == (
            "transfer syntax 1.2.840.10008.1.2.4.90 (JPEG 2000 Image Compression (Lossless Only)) "
            "cannot be decoded: JPEG 2000 codestream without its SIZ header"
        )


@READERS
def test_rgb_is_refused(tmp_path, read):
    pixels = np.zeros((8, 9, 3), np.uint8)
    path = write(make_dataset(pixels, bits_stored=8, photometric="RGB"), tmp_path / "c.dcm")
    assert _reason(read, path) == "RGB image, a lateral film must be grayscale"


@READERS
def test_multi_frame_is_refused(tmp_path, read):
    frames = np.stack([ramp(8, 9)] * 12)
    ds = make_dataset(ramp(8, 9), NumberOfFrames=12)
    ds.PixelData = frames.tobytes()
    path = write(ds, tmp_path / "m.dcm")
    assert _reason(read, path) == "12 frames, a lateral film is a single frame"


# Every transfer syntax a PACS sends lateral films in: encoded by pydicom or GDCM,
# decoded by our loader, compared with the original pixels.
CODECS = {
    "explicit-le": ("pydicom", "1.2.840.10008.1.2.1"),
    "implicit-le": ("pydicom", "1.2.840.10008.1.2"),
    "deflated": ("pydicom", "1.2.840.10008.1.2.1.99"),
    "rle": ("pydicom", RLELossless),
    "jpeg-ls-lossless": ("pydicom", JPEGLSLossless),
    "jpeg-2000-lossless": ("pydicom", JPEG2000Lossless),
    "jpeg-lossless-p14": ("gdcm", "1.2.840.10008.1.2.4.57"),
    "jpeg-lossless-sv1": ("gdcm", "1.2.840.10008.1.2.4.70"),
    "jpeg-ls-gdcm": ("gdcm", "1.2.840.10008.1.2.4.80"),
    "jpeg-2000-gdcm": ("gdcm", "1.2.840.10008.1.2.4.90"),
}


@pytest.mark.parametrize("name", list(CODECS))
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_lossless_codecs_round_trip(tmp_path, name, signed):
    tool, syntax = CODECS[name]
    pixels = ramp(37, 53, bits=12, signed=signed)
    pixels[0, :8] = pixels.min(), pixels.max(), 0, 1, 7, 2047, 100, 5
    ds = make_dataset(pixels, photometric="MONOCHROME1")
    if tool == "pydicom":
        if syntax.endswith(".99") or syntax == "1.2.840.10008.1.2":
            ds.file_meta.TransferSyntaxUID = syntax
            path = write(ds, tmp_path / f"{name}.dcm")
        else:
            path = write(ds, tmp_path / f"{name}.dcm", syntax)
    else:
        source = write(ds, tmp_path / "source.dcm")
        path = gdcm_transcode(source, tmp_path / f"{name}.dcm", syntax)
    film = load_film(path)
    assert film.transfer_syntax == syntax
    np.testing.assert_array_equal(film.pixels, pixels)
    assert film.photometric_interpretation == "MONOCHROME1"


def test_jpeg_baseline_8_bit(tmp_path):
    pixels = ramp(32, 48, bits=8)
    source = write(make_dataset(pixels, bits_stored=8), tmp_path / "s.dcm")
    path = gdcm_transcode(source, tmp_path / "b.dcm", "1.2.840.10008.1.2.4.50")
    film = load_film(path)
    assert film.transfer_syntax == "1.2.840.10008.1.2.4.50"
    assert np.abs(film.pixels.astype(int) - pixels).max() <= 8  # lossy, but close


def test_unused_high_bits_are_cleared_or_sign_extended(tmp_path):
    # 12 bits stored in 16: garbage in the top 4 bits must not change the values
    unsigned = np.array([[0x0FFF, 0x0001]], np.uint16)
    ds = make_dataset(unsigned)
    ds.PixelData = (unsigned | 0xF000).astype(np.uint16).tobytes()
    np.testing.assert_array_equal(load_film(write(ds, tmp_path / "u.dcm")).pixels, unsigned)
    signed = np.array([[-2048, -1, 0, 2047]], np.int16)
    ds = make_dataset(signed)
    ds.PixelData = (signed.view(np.uint16) & 0x0FFF).tobytes()  # not sign-extended on disk
    np.testing.assert_array_equal(load_film(write(ds, tmp_path / "s.dcm")).pixels, signed)


def test_file_without_preamble_is_read(tmp_path):
    path = write(make_dataset(ramp(5, 6), SeriesDescription="LAT EXT"), tmp_path / "p.dcm")
    data = path.read_bytes()
    meta_end = data.index(b"\x08\x00")  # first group 0008 element after the meta header
    (tmp_path / "raw.dcm").write_bytes(data[meta_end:])
    film = load_film(tmp_path / "raw.dcm")
    np.testing.assert_array_equal(film.pixels, ramp(5, 6))
    assert film.view == "extension"


# --------------------------------------------------------------------------- plain images


def test_png_16_bit_grayscale(tmp_path):
    pixels = ramp(20, 30, bits=16)
    cv2.imwrite(str(tmp_path / "Flexion.png"), pixels)
    film = load_film(tmp_path / "Flexion.png")
    assert film.source_format == "png"
    assert film.pixels.dtype == np.uint16
    np.testing.assert_array_equal(film.pixels, pixels)
    assert film.view == "flexion" and film.view_evidence == "file name 'Flexion.png' -> flexion"
    assert film.calibration.spacing_mm is None
    assert film.bits_stored == 16 and film.invert is False


def test_png_rgb_with_equal_channels_is_grayscale(tmp_path):
    grey = ramp(10, 12, bits=8)
    cv2.imwrite(str(tmp_path / "ext.png"), np.dstack([grey, grey, grey]))
    film = load_film(tmp_path / "ext.png")
    np.testing.assert_array_equal(film.pixels, grey)
    assert film.view == "extension"


def test_colour_png_is_refused(tmp_path):
    grey = ramp(10, 12, bits=8)
    cv2.imwrite(str(tmp_path / "c.png"), np.dstack([grey, grey, 255 - grey]))
    assert _reason(load_film, tmp_path / "c.png") == "RGB image, a lateral film must be grayscale"


def test_tiff_and_jpeg(tmp_path):
    pixels = ramp(16, 16, bits=16)
    cv2.imwrite(str(tmp_path / "neutral.tif"), pixels)
    film = load_film(tmp_path / "neutral.tif")
    assert film.source_format == "tiff" and film.view == "neutral"
    np.testing.assert_array_equal(film.pixels, pixels)
    grey = np.full((16, 16), 120, np.uint8)
    cv2.imwrite(str(tmp_path / "x.jpg"), grey)
    film = load_film(tmp_path / "x.jpg")
    assert film.source_format == "jpeg" and film.view == "unknown"
    assert np.abs(film.pixels.astype(int) - 120).max() <= 1


def test_multipage_tiff_is_refused(tmp_path):
    pages = [ramp(8, 8, bits=8)] * 3
    assert cv2.imwritemulti(str(tmp_path / "m.tif"), pages)
    assert _reason(load_film, tmp_path / "m.tif") == "3 frames, a lateral film is a single frame"


# --------------------------------------------------------------------------- header & identity


def test_header_agrees_with_the_loaded_film(tmp_path):
    path = write(
        make_dataset(
            ImagerPixelSpacing=[0.15, 0.15],
            SeriesDescription="LWS seitl. Inklination",
            AcquisitionDateTime="20260102101530.25+0100",
        ),
        tmp_path / "h.dcm",
    )
    film, header = load_film(path), read_film_header(path, sha256=True)
    for name in ("rows", "columns", "bits_stored", "photometric_interpretation", "calibration",
                 "calibration_warning", "identity", "view", "view_evidence", "transfer_syntax",
                 "sha256", "source_format", "presentation_intent"):  # fmt: skip
        assert getattr(header, name) == getattr(film, name), name
    assert read_film_header(path).sha256 is None
    import hashlib

    assert film.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # the test writes bad values
def test_identity_and_acquisition_time(tmp_path):
    tz = timezone(timedelta(hours=1))
    cases = [
        ({"AcquisitionDateTime": "20260102101530.25+0100"},
         datetime(2026, 1, 2, 10, 15, 30, 250000, tzinfo=tz)),
        ({"AcquisitionDate": "20260103", "AcquisitionTime": "081500"},
         datetime(2026, 1, 3, 8, 15)),
        ({"ContentDate": "20260104", "ContentTime": "23:59:58"}, datetime(2026, 1, 4, 23, 59, 58)),
        ({"AcquisitionDate": "20260105"}, None),  # a date without a time is not a time
        ({"AcquisitionDateTime": "garbage"}, None),
    ]  # fmt: skip
    for attributes, expected in cases:
        film = load_film(write(make_dataset(**attributes), tmp_path / "i.dcm"))
        assert film.identity.acquisition_datetime == expected, attributes
    identity = film.identity
    assert identity.patient_id == "PHANTOM-0001"
    assert identity.patient_name == FAKE_PATIENT_NAME
    assert identity.patient_birth_date == date(1960, 2, 29)
    assert identity.study_date == date(2026, 1, 2)
    assert identity.modality == "DX" and identity.instance_number == 1
    assert identity.accession_number == "ACC42"
    assert datetime(2026, 1, 2, 9, 15, 30, 250000, tzinfo=UTC) == cases[0][1]


def test_identity_repr_hides_the_patient_name_and_birth_date(tmp_path):
    film = load_film(write(make_dataset(), tmp_path / "r.dcm"))
    for text in (repr(film.identity), str(film.identity), repr(film)):
        assert "Testperson" not in text and "Erika" not in text
        assert "1960, 2, 29" not in text and "19600229" not in text  # the birth date
        assert "PHANTOM-0001" in text or text.startswith("Film(")


def test_patient_differences_names_attributes_not_values():
    a = FilmIdentity(patient_id="1", patient_name="Doe^Jane", patient_birth_date=date(1970, 1, 1))
    b = FilmIdentity(patient_id="1", patient_name="DOE JANE", patient_birth_date=date(1970, 1, 2))
    assert a.patient_differences(b) == ("patient_birth_date",)
    assert a.patient_differences(FilmIdentity(patient_id="2")) == ("patient_id",)
    assert a.patient_differences(FilmIdentity()) == ()


def test_invalid_values_never_reach_logs_or_warnings(tmp_path, caplog, recwarn):
    """pydicom's validation messages quote values ("Invalid value for VR TM: '25:99:99'",
    logged when the factory writes these files); a quoted value could be a name, so none
    may reach the logs while films are read, from several threads at once."""
    import logging
    from concurrent.futures import ThreadPoolExecutor

    import pydicom

    paths = [write(make_dataset(ContentDate="20260101", ContentTime="25:99:99"), tmp_path / f"{i}.dcm")
             for i in range(6)]  # fmt: skip
    recwarn.clear()
    caplog.clear()
    before = pydicom.config.settings.reading_validation_mode
    with caplog.at_level(logging.DEBUG):
        with ThreadPoolExecutor(3) as pool:
            films = list(pool.map(load_film, paths))
        headers = [read_film_header(p) for p in paths]
    assert pydicom.config.settings.reading_validation_mode == before
    assert films[0].identity.acquisition_datetime is None and headers[0].identity.modality == "DX"
    assert "25:99:99" not in caplog.text
    assert not [w for w in recwarn if "25:99:99" in str(w.message)]


def test_a_missing_decoder_plugin_is_named(tmp_path, monkeypatch):
    import types

    import pydicom.pixels

    path = write(make_dataset(), tmp_path / "r.dcm", RLELossless)
    fake = types.SimpleNamespace(is_available=False, missing_dependencies=["gdcm - requires gdcm"])
    monkeypatch.setattr(pydicom.pixels, "get_decoder", lambda uid: fake)
    assert _reason(load_film, path) == (
        "transfer syntax 1.2.840.10008.1.2.5 (RLE Lossless) cannot be decoded: "
        "no decoding plugin installed (gdcm - requires gdcm)"
    )


# The decoders docs/dicom-input.md promises, per transfer syntax (a broken install fails here).
PROMISED_PLUGINS = {
    "1.2.840.10008.1.2.4.50": {"pylibjpeg", "gdcm"},
    "1.2.840.10008.1.2.4.51": {"pylibjpeg"},
    "1.2.840.10008.1.2.4.57": {"pylibjpeg", "gdcm"},
    "1.2.840.10008.1.2.4.70": {"pylibjpeg", "gdcm"},
    "1.2.840.10008.1.2.4.80": {"pylibjpeg", "gdcm"},
    "1.2.840.10008.1.2.4.81": {"pylibjpeg", "gdcm"},
    "1.2.840.10008.1.2.4.90": {"pylibjpeg", "gdcm"},
    "1.2.840.10008.1.2.4.91": {"pylibjpeg", "gdcm"},
    "1.2.840.10008.1.2.4.201": {"pylibjpeg"},
    "1.2.840.10008.1.2.4.203": {"pylibjpeg"},
    "1.2.840.10008.1.2.5": {"pylibjpeg", "pydicom"},
}


@pytest.mark.parametrize("syntax", list(PROMISED_PLUGINS))
def test_promised_decoders_are_installed(syntax):
    from pydicom.pixels import get_decoder

    decoder = get_decoder(syntax)
    assert PROMISED_PLUGINS[syntax] <= set(decoder.available_plugins)
