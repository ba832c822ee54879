"""app.display.downscale_grey: area averaging, checked against block means by hand."""

from __future__ import annotations

import numpy as np
import pytest

from app.display import downscale_grey


def test_halving_is_the_mean_of_each_2x2_block():
    grey = np.array(
        [[0, 4, 10, 20],
         [8, 12, 30, 40],
         [100, 100, 255, 255],
         [100, 104, 255, 251]], dtype=np.uint8,
    )
    out = downscale_grey(grey, 2, 2)
    # block means 6, 25, 101, 254 (exact integers: no rounding question)
    np.testing.assert_array_equal(out, [[6, 25], [101, 254]])


def test_a_thin_line_is_not_lost_when_shrinking():
    grey = np.zeros((90, 90), np.uint8)
    grey[:, 45] = 255  # one bright column: nearest-neighbour sampling at 1/3 would drop or keep it whole
    out = downscale_grey(grey, 30, 30)
    assert out.shape == (30, 30)
    np.testing.assert_allclose(out[:, 15], 85, atol=1)  # 255 / 3 over the 3-pixel block
    assert out[:, :15].max() == 0 and out[:, 16:].max() == 0


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="grey"):
        downscale_grey(np.zeros((4, 4), np.float32), 2, 2)
