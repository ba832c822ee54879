"""measure.usable_corners: which bodies a segment can use (shared by the session and the report check)."""
# ruff: noqa: RUF005  (numpy array + list is elementwise addition, not concatenation)

from __future__ import annotations

import numpy as np

from measure import segmental_motion, usable_corners


def _spine(n: int = 4) -> np.ndarray:
    body = np.array([[40.0, 0], [0, 0], [0, 30], [40, 30]])
    return np.stack([body + [0, 40 * k] for k in range(n)])


def test_incomplete_middle_body_is_left_out_and_ends_need_only_their_endplate():
    c = _spine()
    c[0, :2] = np.nan  # top body: its superior corners are not needed
    c[3, 2:] = np.nan  # bottom body: its inferior corners are not needed
    c[2, 3] = np.nan  # a middle body missing AI: left out entirely
    out = usable_corners(c)
    assert np.isnan(out[2]).all()
    np.testing.assert_array_equal(np.isnan(out[[0, 1, 3]]), np.isnan(c[[0, 1, 3]]))
    np.testing.assert_array_equal(out[1], c[1])
    # the input is not modified, and the segments touching the removed body are not measured
    assert np.isfinite(c[2, :3]).all()
    r = segmental_motion(out, out, (1.0, 1.0), levels=["L2", "L3", "L4", "L5"])
    assert np.isfinite(r.translation_mm[0]) and np.isnan(r.translation_mm[1:]).all()


def test_batched_and_a_half_placed_corner_counts_as_missing():
    c = np.stack([_spine(), _spine()])
    c[1, 1, 0, 0] = np.nan  # x of L3's AS only
    out = usable_corners(c)
    assert np.isfinite(out[0]).all()
    assert np.isnan(out[1, 1]).all() and np.isfinite(out[1, [0, 2, 3]]).all()
