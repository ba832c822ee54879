"""Modality LUT, VOI windowing (window tags, VOI LUT Sequence) and MONOCHROME1 inversion,
checked against values computed by hand from PS3.3 C.11.1 / C.11.2."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.sequence import Sequence

from app.dicom_io import apply_window, load_film
from tests.app.dicom_factory import make_dataset, voi_lut_item, write

ROW = np.array([[0, 100, 200, 300, 400]], dtype=np.uint16)


def _film(tmp_path, pixels=ROW, **attributes):
    return load_film(write(make_dataset(pixels, **attributes), tmp_path / "f.dcm"))


def test_window_tags_linear_by_hand(tmp_path):
    # c = 200, w = 201: x <= 99.5 -> 0; x > 299.5 -> 255; else ((x - 199.5)/200 + 0.5) * 255
    film = _film(tmp_path, WindowCenter=200, WindowWidth=201)
    assert film.window == (200.0, 201.0)
    assert film.window_source.startswith("WindowCenter/WindowWidth")
    np.testing.assert_array_equal(film.display_image(), [[0, 1, 128, 255, 255]])


def test_monochrome1_is_inverted_so_bone_is_white(tmp_path):
    film = _film(tmp_path, photometric="MONOCHROME1", WindowCenter=200, WindowWidth=201)
    assert film.invert is True
    assert film.photometric_interpretation == "MONOCHROME1"
    np.testing.assert_array_equal(film.display_image(), [[255, 254, 127, 0, 0]])
    np.testing.assert_array_equal(film.display_image(invert=False), [[0, 1, 128, 255, 255]])
    # the measured values are not inverted: they stay as stored
    np.testing.assert_array_equal(film.pixels, ROW)


def test_multiple_windows_use_the_first(tmp_path):
    film = _film(tmp_path, WindowCenter=[200, 50], WindowWidth=[201, 10])
    assert film.window == (200.0, 201.0)


def test_explicit_window_overrides(tmp_path):
    film = _film(tmp_path, WindowCenter=200, WindowWidth=201)
    # c = 100.5, w = 2: x <= 99.5 -> 0, x > 100.5 -> 255, x = 100 -> ((100 - 100)/1 + 0.5) -> 128
    np.testing.assert_array_equal(film.display_image(window=(100.5, 2)), [[0, 128, 255, 255, 255]])
    with pytest.raises(ValueError, match="window"):
        film.display_image(window=(100, 0))


def test_linear_exact_and_sigmoid_functions(tmp_path):
    film = _film(tmp_path, WindowCenter=200, WindowWidth=200, VOILUTFunction="LINEAR_EXACT")
    # (x - 200)/200 + 0.5, clipped: 0, 0, 0.5, 1, 1 -> 0, 0, 128 (127.5 rounds to even 128), 255, 255
    np.testing.assert_array_equal(film.display_image(), [[0, 0, 128, 255, 255]])
    film = _film(tmp_path, WindowCenter=200, WindowWidth=200, VOILUTFunction="SIGMOID")
    x = ROW.astype(float)
    expected = np.rint(255 / (1 + np.exp(-4 * (x - 200) / 200))).astype(np.uint8)
    np.testing.assert_array_equal(film.display_image(), expected)
    assert film.voi_lut_function == "SIGMOID"


def test_voi_lut_sequence_by_hand(tmp_path):
    pixels = np.array([[0, 100, 101, 102, 103, 500]], dtype=np.uint16)
    lut = voi_lut_item(first_mapped=100, bits=8, data=[0, 51, 204, 255], explanation="BONE")
    film = _film(tmp_path, pixels, VOILUTSequence=Sequence([lut]))
    assert film.voi_lut is not None and film.voi_lut.first_mapped == 100
    # below the first mapped value -> first entry; above the last -> last entry
    np.testing.assert_array_equal(film.display_image(), [[0, 0, 51, 204, 255, 255]])
    # the window for the sliders spans the LUT's input range
    assert film.window == (102.0, 4.0)
    assert film.window_source == "input range of the VOI LUT Sequence"


def test_voi_lut_sequence_12_bit_output_and_monochrome1(tmp_path):
    pixels = np.array([[10, 11, 12]], dtype=np.uint16)
    lut = voi_lut_item(first_mapped=10, bits=12, data=[0, 4095, 1365])
    film = _film(tmp_path, pixels, photometric="MONOCHROME1", VOILUTSequence=Sequence([lut]))
    # 1365 / 4095 * 255 = 85.0, inverted -> 170
    np.testing.assert_array_equal(film.display_image(), [[255, 0, 170]])


def test_voi_lut_preferred_over_window_tags_unless_a_window_is_given(tmp_path):
    pixels = np.array([[0, 100, 101, 102, 103, 500]], dtype=np.uint16)
    lut = voi_lut_item(first_mapped=100, bits=8, data=[0, 51, 204, 255])
    film = _film(
        tmp_path, pixels, VOILUTSequence=Sequence([lut]), WindowCenter=250.5, WindowWidth=500
    )
    np.testing.assert_array_equal(film.display_image(), [[0, 0, 51, 204, 255, 255]])
    assert film.window == (250.5, 500.0)
    # window tags applied when asked: ((x - 250)/499 + 0.5) * 255
    x = pixels.astype(float)
    expected = np.rint(np.clip((x - 250) / 499 + 0.5, 0, 1) * 255)
    np.testing.assert_array_equal(film.display_image(window=film.window), expected)


def test_rescale_gives_float32_modality_values(tmp_path):
    pixels = np.array([[0, 1, 2, 1000]], dtype=np.uint16)
    film = _film(tmp_path, pixels, RescaleSlope=0.5, RescaleIntercept=-100)
    assert film.pixels.dtype == np.float32
    np.testing.assert_array_equal(film.pixels, [[-100, -99.5, -99, 400]])


def test_identity_rescale_keeps_the_stored_integers(tmp_path):
    film = _film(tmp_path, RescaleSlope=1, RescaleIntercept=0)
    assert film.pixels.dtype == np.uint16
    np.testing.assert_array_equal(film.pixels, ROW)


def test_signed_pixels_display_through_the_lookup_table(tmp_path):
    pixels = np.array([[-1000, -1, 0, 1, 1000]], dtype=np.int16)
    film = _film(tmp_path, pixels, bits_stored=16, WindowCenter=0.5, WindowWidth=2)
    # c = 0.5, w = 2: x <= -0.5 -> 0, x > 0.5 -> 255, x = 0: ((0 - 0)/1 + 0.5) -> 128
    np.testing.assert_array_equal(film.display_image(), [[0, 0, 128, 255, 255]])


def test_float_and_table_paths_agree(tmp_path):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 4096, size=(40, 50)).astype(np.uint16)
    film = _film(
        tmp_path, pixels, WindowCenter=1500, WindowWidth=1800, VOILUTFunction="LINEAR_EXACT"
    )
    assert film.pixels.dtype == np.uint16  # the lookup-table path
    expected = np.rint(np.clip((pixels - 1500.0) / 1800.0 + 0.5, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(film.display_image(), expected)
    # the same window in rescaled units (2 x - 10): the float path, same picture
    rescaled = _film(tmp_path, pixels, RescaleSlope=2, RescaleIntercept=-10,
                     WindowCenter=2990, WindowWidth=3600, VOILUTFunction="LINEAR_EXACT")  # fmt: skip
    assert rescaled.pixels.dtype == np.float32
    np.testing.assert_array_equal(rescaled.display_image(), expected)


def test_default_window_from_percentiles(tmp_path):
    pixels = np.arange(1000, dtype=np.uint16).reshape(20, 50)
    film = _film(tmp_path, pixels)
    low, high = np.percentile(pixels, [0.5, 99.5])
    assert film.window == pytest.approx(((low + high) / 2, high - low))
    assert film.window_source == "pixel values, 0.5th-99.5th percentile"


def test_apply_window_edges_by_hand():
    y = apply_window(np.array([99.5, 99.6, 299.5, 299.6]), 200, 201)
    np.testing.assert_allclose(y, [0.0, 0.0005, 1.0, 1.0], atol=1e-12)
    # width 1 is a threshold at c - 0.5
    np.testing.assert_array_equal(apply_window(np.array([99, 100, 101]), 100.5, 1), [0, 0, 1])


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT"])
def test_float_images_are_windowed_in_blocks_like_the_formula(tmp_path, function):
    rng = np.random.default_rng(7)
    stored = rng.integers(0, 4096, size=(260, 4100)).astype(np.uint16)  # > one 1 M-pixel block
    film = _film(tmp_path, stored, RescaleSlope=0.25, RescaleIntercept=-3,
                 WindowCenter=400, WindowWidth=600, VOILUTFunction=function, photometric="MONOCHROME1")  # fmt: skip
    assert film.pixels.dtype == np.float32
    grey = np.rint(apply_window(stored * 0.25 - 3.0, 400, 600, function) * 255)
    np.testing.assert_array_equal(film.display_image(), 255 - grey)
