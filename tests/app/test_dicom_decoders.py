"""Which decoder runs per transfer syntax, the libjpeg-turbo plugin for lossless
JPEG, and the film's SHA-256 hashed on first use (issue 14 §3)."""

from __future__ import annotations

import hashlib
import os
import types

import numpy as np
import pytest
from pydicom.pixels import get_decoder, pixel_array
from pydicom.uid import JPEGLossless, JPEGLosslessSV1

from app.dicom_io import DECODING_PLUGINS, load_film
from app.dicom_io import _imagecodecs as plugin
from app.dicom_io._digest import FileDigest
from app.errors import InputFileError
from tests.app.dicom_factory import gdcm_transcode, make_dataset, ramp, write

LOSSLESS_JPEG = {"p14": "1.2.840.10008.1.2.4.57", "sv1": "1.2.840.10008.1.2.4.70"}


def _film(tmp_path, syntax: str, bits: int, signed: bool, seed: int = 0):
    """A GDCM-encoded lossless JPEG film with noise over the full range of ``bits``."""
    rng = np.random.default_rng(seed)
    dtype = np.int16 if signed else np.uint16  # stored in 16 bits, as X-ray films are
    if signed:
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        low, high = 0, (1 << bits) - 1
    pixels = ramp(41, 67, bits=min(bits, 15), signed=signed).astype(dtype)
    pixels = np.clip(pixels.astype(np.int64) + rng.integers(-40, 41, pixels.shape), low, high)
    pixels = pixels.astype(dtype)
    pixels[0, :4] = low, high, 0, 1
    source = write(make_dataset(pixels, bits_stored=bits), tmp_path / f"src-{bits}-{signed}.dcm")
    path = gdcm_transcode(source, tmp_path / f"{syntax}-{bits}-{signed}.dcm", syntax)
    return path, pixels


def test_lossless_jpeg_prefers_libjpeg_turbo_then_the_previous_decoders():
    for syntax in (JPEGLossless, JPEGLosslessSV1):
        assert DECODING_PLUGINS[syntax] == ("imagecodecs", "pylibjpeg", "gdcm")
        assert "imagecodecs" in get_decoder(syntax).available_plugins
    # pydicom's own order is unchanged: the plugin is added after its plugins
    assert get_decoder(JPEGLossless).available_plugins[0] != "imagecodecs"


@pytest.mark.parametrize("syntax", list(LOSSLESS_JPEG.values()), ids=list(LOSSLESS_JPEG))
@pytest.mark.parametrize(("bits", "signed"), [(8, False), (12, False), (12, True), (16, False),
                                              (16, True)])
def test_libjpeg_turbo_gives_the_encoded_pixels_exactly(tmp_path, monkeypatch, syntax, bits, signed):
    path, pixels = _film(tmp_path, syntax, bits, signed)
    calls = []
    decode = plugin._jpeg_decode()
    monkeypatch.setattr(plugin, "_jpeg_decode", lambda: lambda src: calls.append(1) or decode(src))
    monkeypatch.setitem(DECODING_PLUGINS, syntax, ("imagecodecs",))  # no fallback
    film = load_film(path)
    assert calls == [1]  # the film went through libjpeg-turbo
    assert film.pixels.dtype.kind == ("i" if signed else "u")
    np.testing.assert_array_equal(film.pixels, pixels)
    # and libjpeg (pylibjpeg), the previous first choice, agrees
    np.testing.assert_array_equal(pixel_array(path, decoding_plugin="pylibjpeg"), pixels)


def test_a_failing_libjpeg_turbo_hands_the_film_to_the_next_decoder(tmp_path, monkeypatch):
    path, pixels = _film(tmp_path, LOSSLESS_JPEG["sv1"], 12, False)

    def broken(src: bytes) -> np.ndarray:
        raise RuntimeError("libjpeg-turbo refused")

    monkeypatch.setattr(plugin, "_jpeg_decode", lambda: broken)
    np.testing.assert_array_equal(load_film(path).pixels, pixels)  # pylibjpeg decoded it


def test_the_plugin_refuses_colour_and_a_wrong_size():
    runner = types.SimpleNamespace(samples_per_pixel=3, rows=2, columns=2)
    with pytest.raises(ValueError, match="monochrome"):
        plugin._decode_frame(b"", runner)
    runner = types.SimpleNamespace(samples_per_pixel=1, rows=3, columns=2, set_option=None)
    with pytest.raises(ValueError, match="expected 3 x 2"):
        plugin._decode_frame(_lossless_codestream(), runner)


def _lossless_codestream() -> bytes:
    """A 2 x 2 lossless JPEG codestream (encoded by imagecodecs itself)."""
    from imagecodecs import jpeg8_encode

    return bytes(jpeg8_encode(np.array([[1, 2], [3, 4]], np.uint16), lossless=True, bitspersample=12))


def test_sha256_is_the_files_and_is_computed_once(tmp_path, monkeypatch):
    path = write(make_dataset(ramp(20, 30)), tmp_path / "f.dcm")
    film = load_film(path)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    calls = []
    real = __import__("app.dicom_io._digest", fromlist=["file_sha256"]).file_sha256
    monkeypatch.setattr("app.dicom_io._digest.file_sha256", lambda p: calls.append(p) or real(p))
    assert film.sha256 == expected and film.sha256 == expected
    assert len(calls) == 1
    assert film.header().sha256 == expected


def test_a_film_pickles_with_its_digest(tmp_path):
    import pickle

    path = write(make_dataset(ramp(20, 30)), tmp_path / "f.dcm")
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    fresh = pickle.loads(pickle.dumps(load_film(path)))  # not hashed yet: hashes over there
    assert fresh.sha256 == expected
    hashed = load_film(path)
    assert hashed.sha256 == expected
    path.unlink()  # hashed before pickling: the copy has the value, no file needed
    assert pickle.loads(pickle.dumps(hashed)).sha256 == expected


def test_sha256_of_a_file_replaced_after_loading_is_an_error(tmp_path):
    path = write(make_dataset(ramp(20, 30)), tmp_path / "f.dcm")
    film = load_film(path)
    other = write(make_dataset(ramp(20, 30) + 1), tmp_path / "g.dcm")
    os.replace(other, path)  # another film under the same name: another inode
    with pytest.raises(InputFileError, match="changed on disk since it was loaded"):
        _ = film.sha256
    gone = write(make_dataset(ramp(5, 6)), tmp_path / "h.dcm")
    digest = FileDigest(gone)
    gone.unlink()
    with pytest.raises(InputFileError, match=r"h\.dcm"):
        _ = digest.value


def test_sha256_of_a_png_film_is_the_files(tmp_path):
    import cv2

    path = tmp_path / "lat.png"
    cv2.imwrite(str(path), ramp(16, 16, bits=8))
    assert load_film(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_eight_bit_codestream_in_sixteen_bit_pixels(tmp_path, monkeypatch):
    # some encoders store 8-bit lossless JPEG with Bits Allocated 16: the decoder's
    # uint8 frame must fill the uint16 film value by value, not byte by byte
    from imagecodecs import jpeg8_encode
    from pydicom.encaps import encapsulate

    pixels = np.random.default_rng(5).integers(0, 256, (23, 31)).astype(np.uint8)
    ds = make_dataset(pixels.astype(np.uint16), bits_stored=8)
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.PixelData = encapsulate([bytes(jpeg8_encode(pixels, lossless=True, predictor=1))])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    path = tmp_path / "eight-in-sixteen.dcm"
    ds.save_as(path, enforce_file_format=True)
    monkeypatch.setitem(DECODING_PLUGINS, JPEGLosslessSV1, ("imagecodecs",))  # no fallback
    film = load_film(path)
    assert film.pixels.dtype == np.uint16
    np.testing.assert_array_equal(film.pixels, pixels)
