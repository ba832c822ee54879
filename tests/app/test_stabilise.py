"""Rigid/similarity transform from corresponding corners (app.stabilise)."""

import numpy as np
import pytest

from app.stabilise import rigid_transform_from_corners, stabilising_transform, warp_to


def _matrix(angle_deg, tx, ty, k=1.0):
    a = np.radians(angle_deg)
    return np.array([[k * np.cos(a), -k * np.sin(a), tx], [k * np.sin(a), k * np.cos(a), ty], [0, 0, 1]])


def _apply(m, pts):
    return pts @ m[:2, :2].T + m[:2, 2]


@pytest.mark.parametrize(("angle", "tx", "ty"), [(0, 0, 0), (7.5, -12.25, 3.0), (-170, 400, -250)])
def test_recovers_a_rigid_motion(angle, tx, ty):
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 500, (4, 2))
    m = _matrix(angle, tx, ty)
    np.testing.assert_allclose(rigid_transform_from_corners(src, _apply(m, src)), m, atol=1e-9)


def test_scale_only_when_asked():
    src = np.array([[0.0, 0], [40, 0], [40, 30], [0, 30]])
    m = _matrix(20, 5, 6, k=1.1)
    dst = _apply(m, src)
    np.testing.assert_allclose(rigid_transform_from_corners(src, dst, scale=True), m, atol=1e-9)
    rigid = rigid_transform_from_corners(src, dst)
    assert np.hypot(rigid[0, 0], rigid[1, 0]) == pytest.approx(1.0)
    assert np.degrees(np.arctan2(rigid[1, 0], rigid[0, 0])) == pytest.approx(20.0)


def test_nan_corners_ignored_and_too_few_points():
    src = np.array([[0.0, 0], [40, 0], [np.nan, np.nan], [0, 30]])
    m = _matrix(-5, 1, 2)
    dst = _apply(m, np.nan_to_num(src))
    np.testing.assert_allclose(rigid_transform_from_corners(src, dst), m, atol=1e-9)
    one = np.array([[0.0, 0], [np.nan, np.nan]])
    assert np.isnan(rigid_transform_from_corners(one, one)).all()


def test_vectorised_over_leading_axes():
    rng = np.random.default_rng(2)
    src = rng.uniform(0, 100, (3, 5, 4, 2))
    ms = np.stack([[_matrix(a + b, a, -b) for b in range(5)] for a in range(3)])
    dst = np.einsum("...ij,...nj->...ni", ms[..., :2, :2], src) + ms[..., None, :2, 2]
    np.testing.assert_allclose(rigid_transform_from_corners(src, dst), ms, atol=1e-9)


def test_stabilising_transform_and_warp():
    flex = np.full((2, 4, 2), np.nan)
    flex[1] = [[60.0, 20], [20, 20], [20, 40], [60, 40]]
    ext = flex.copy()
    ext[1] += [3.0, -2.0]  # the lower body moved 3 px right, 2 px up on extension
    m = stabilising_transform(flex, ext, 1)
    np.testing.assert_allclose(m, _matrix(0, -3, 2), atol=1e-9)
    image = np.zeros((60, 80), np.uint8)
    image[18:38, 23:63] = 200  # the body on the extension film
    warped = warp_to(image, m, image.shape)
    assert warped[20:40, 20:60].min() == 200 and warped[:18].max() == 0


def test_bad_shape():
    with pytest.raises(ValueError, match="source"):
        rigid_transform_from_corners(np.zeros((4, 3)), np.zeros((4, 3)))
