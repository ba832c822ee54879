"""segmental_motion: hand-computed cases, the scalar reference, thresholds, NaN, errors."""
# ruff: noqa: RUF005  (numpy array + list is elementwise addition, not concatenation)

from __future__ import annotations

import math

import numpy as np
import pytest

from measure import CRITERIA_PRESETS, Criteria, segment_labels, segmental_motion
from tests.measure._spines import random_spines
from tests.measure.scalar_reference import scalar_batch, scalar_motion

SP = 0.25  # mm per pixel in the hand-computed case


def _hand_case():
    """Two bodies (L4 over L5), spacing 0.25 mm, worked out by hand in mm.

    Flexion: L5's superior endplate PS=(0,0) px, AS=(40,-30) px -> a = (10, -7.5) mm,
    d = 12.5 mm, e1 = (0.8, -0.6); U lies towards -y so e2 = (-0.6, -0.8).
    PI_U = PS + 2 e1 + 3 e2 = (-0.2, -3.6) mm = (-0.8, -14.4) px   -> t_flex = 2 mm.
    i = 8 e1 + 1 e2 = (5.8, -5.6) mm -> AI_U = (5.6, -9.2) mm = (22.4, -36.8) px,
    theta_flex = atan(1/8) = 7.1250163489 deg.
    Extension: PS=(100,200) px, AS=(150,200) px -> d = 12.5 mm, e1 = (1,0), e2 = (0,-1).
    PI_U = PS + (-1.5 e1 + 3.2 e2) mm = PS + (-6, -12.8) px -> t_ext = -1.5 mm.
    i = 8 e1 + 4 e2 = (8, -4) mm = (32, -16) px -> theta_ext = atan(1/2) = 26.5650511771 deg.
    L4's superior corners sit 30 px above its inferior ones (same x), so L4's depth equals
    |i|: sqrt(65) mm on flexion, sqrt(80) mm on extension.
    """
    pi_f = np.array([-0.8, -14.4])
    ai_f = np.array([22.4, -36.8])
    ps_e = np.array([100.0, 200.0])
    pi_e = ps_e + [-6, -12.8]
    ai_e = pi_e + [32, -16]
    up = np.array([0, -30.0])
    flex = np.array(
        [
            [ai_f + up, pi_f + up, pi_f, ai_f],
            [[40, -30], [0, 0], [np.nan, np.nan], [np.nan, np.nan]],
        ]
    )
    ext = np.array(
        [
            [ai_e + up, pi_e + up, pi_e, ai_e],
            [ps_e + [50, 0], ps_e, [np.nan, np.nan], [np.nan, np.nan]],
        ]
    )
    return flex, ext


def test_hand_computed_case():
    flex, ext = _hand_case()
    r = segmental_motion(flex, ext, [SP, SP], levels=["L4", "L5"])
    assert r.segments == ("L4-L5",)
    theta_f = math.degrees(math.atan(1 / 8))
    theta_e = math.degrees(math.atan(1 / 2))
    np.testing.assert_allclose(r.flexion_angle_deg, [theta_f], atol=1e-12)
    np.testing.assert_allclose(r.extension_angle_deg, [theta_e], atol=1e-12)
    # angulation = atan(1/2) - atan(1/8) = atan(6/17)
    np.testing.assert_allclose(r.angulation_deg, [math.degrees(math.atan(6 / 17))], atol=1e-12)
    np.testing.assert_allclose(r.flexion_translation_mm, [2.0], atol=1e-12)
    np.testing.assert_allclose(r.extension_translation_mm, [-1.5], atol=1e-12)
    np.testing.assert_allclose(r.translation_mm, [3.5], atol=1e-12)  # 2 - (-1.5)
    np.testing.assert_allclose(r.translation_pct, [28.0], atol=1e-12)  # 100 * 3.5 / 12.5
    np.testing.assert_allclose(r.flexion_translation_pct, [16.0], atol=1e-12)  # 100 * 2 / 12.5
    np.testing.assert_allclose(r.extension_translation_pct, [-12.0], atol=1e-12)
    # L4 depth sqrt(80)/sqrt(65); L5 12.5/12.5
    np.testing.assert_allclose(r.depth_ratio, [math.sqrt(80 / 65), 1.0], atol=1e-12)
    assert r.depth_mismatch.tolist() == [True, False]
    # default: 3.5 mm is not > 4 mm, 19.44 deg > 10 deg
    assert r.translation_unstable.tolist() == [False]
    assert r.angulation_unstable.tolist() == [True]
    assert r.unstable.tolist() == [True]
    assert r.criterion.tolist() == ["angulation"]
    # white-panjabi: 28 % > 15 % fires translation; 19.44 deg is not > the default-free L4-L5 20 deg
    wp = segmental_motion(flex, ext, [SP, SP], levels=["L4", "L5"], criteria="white-panjabi")
    assert wp.translation_unstable.tolist() == [True]
    assert wp.angulation_unstable.tolist() == [False]
    assert wp.criterion.tolist() == ["translation"]


def test_hand_case_uncalibrated_keeps_angles_and_percent():
    flex, ext = _hand_case()
    cal = segmental_motion(flex, ext, [SP, SP], levels=["L4", "L5"])
    unc = segmental_motion(flex, ext, None, levels=["L4", "L5"])
    np.testing.assert_allclose(unc.angulation_deg, cal.angulation_deg, atol=1e-12)
    np.testing.assert_allclose(unc.translation_pct, cal.translation_pct, atol=1e-12)
    assert np.isnan(unc.translation_mm).all()
    assert np.isnan(unc.flexion_translation_mm).all()
    # % available per film; the mm criterion cannot be applied
    np.testing.assert_allclose(unc.flexion_translation_pct, [16.0], atol=1e-12)
    assert unc.translation_assessed.tolist() == [False]
    assert unc.translation_unstable.tolist() == [False]
    assert any("no usable pixel spacing" in w for w in unc.warnings())
    assert any("translation criterion not applied at L4-L5" in w for w in unc.warnings())


def test_one_film_calibrated():
    flex, ext = _hand_case()
    r = segmental_motion(flex, ext, flexion_spacing_mm=[SP, SP], levels=["L4", "L5"])
    np.testing.assert_allclose(r.flexion_translation_mm, [2.0], atol=1e-12)
    assert np.isnan(r.extension_translation_mm).all() and np.isnan(r.translation_mm).all()
    # the % is computed in pixels on both films: same as fully calibrated (square pixels)
    np.testing.assert_allclose(r.translation_pct, [28.0], atol=1e-12)
    np.testing.assert_allclose(r.depth_ratio, [math.sqrt(80 / 65), 1.0], atol=1e-12)
    assert r.flexion_calibrated and not r.extension_calibrated


def test_one_film_calibrated_with_non_square_pixels():
    """The calibrated film's shape comes from its (row, column) spacing even when the
    other film has none: if the uncalibrated film's pixels are square with the same
    area, the % and the depth ratio equal those of both films calibrated."""
    rng = np.random.default_rng(17)
    row, col = 0.1, 0.2
    square = math.sqrt(row * col)
    flex, _ = random_spines(rng, 40, spacing=(row, col))
    _, ext = random_spines(rng, 40, spacing=(square, square))
    both = segmental_motion(flex, ext, flexion_spacing_mm=(row, col), extension_spacing_mm=(square, square))
    for sd in (None, 0.4):
        mixed = segmental_motion(flex, ext, flexion_spacing_mm=(row, col), landmark_sd_mm=sd)
        np.testing.assert_allclose(mixed.translation_pct, both.translation_pct, atol=1e-9)
        np.testing.assert_allclose(mixed.depth_ratio, both.depth_ratio, rtol=1e-12)
        assert np.isnan(mixed.translation_mm).all()
    sds = segmental_motion(flex, ext, flexion_spacing_mm=(row, col), extension_spacing_mm=(square, square), landmark_sd_mm=0.4)
    mixed = segmental_motion(
        flex, ext, flexion_spacing_mm=(row, col), flexion_landmark_sd_mm=0.4, landmark_sd_px=0.4 / square
    )
    np.testing.assert_allclose(mixed.translation_sd_pct, sds.translation_sd_pct, rtol=1e-9)


def test_anisotropic_spacing_uses_row_and_column():
    # flat endplates; PI_U 10 px anterior of PS_L along x, column spacing 0.3 -> 3 mm
    body = np.array([[40.0, 0], [0, 0], [0, 30], [40, 30]])
    flex = np.stack([body + [10, 0], body + [0, 40]])
    ext = np.stack([body, body + [0, 40]])
    r = segmental_motion(flex, ext, [0.1, 0.3], levels=["L4", "L5"])
    np.testing.assert_allclose(r.translation_mm, [3.0], atol=1e-12)
    np.testing.assert_allclose(r.translation_pct, [100 * 3.0 / 12.0], atol=1e-12)  # depth 40 px * 0.3


def test_agrees_with_scalar_reference_on_random_inputs():
    rng = np.random.default_rng(20261121)
    flex, ext = random_spines(rng, 300, spacing=(0.14, 0.16))
    flex[7, 2] = np.nan  # a missing level: L2-L3 and L3-L4 NaN
    r = segmental_motion(flex, ext, [0.14, 0.16])
    ref = scalar_batch(flex, ext, (0.14, 0.16))
    keys = [
        "flexion_angle_deg", "extension_angle_deg", "flexion_translation_pct",
        "extension_translation_pct", "angulation_deg", "translation_mm", "translation_pct",
    ]  # fmt: skip
    for key in keys:
        expected = np.array([[np.nan if row is None else row[key] for row in study] for study in ref])
        actual = getattr(r, key).copy()
        if key.startswith(("flexion", "extension")):  # per-film values of the intact film remain
            assert np.isfinite(actual[7, 1:3]).all() == key.startswith("extension")
            actual[7, 1:3] = np.nan
        np.testing.assert_allclose(actual, expected, atol=1e-9, rtol=0, err_msg=key)
    for key in ("translation_unstable", "angulation_unstable", "unstable"):
        expected = np.array([[False if row is None else row[key] for row in study] for study in ref])
        np.testing.assert_array_equal(getattr(r, key), expected, err_msg=key)
    centre = np.array(
        [[(np.nan, np.nan) if row is None else row["rotation_centre"] for row in study] for study in ref]
    )
    np.testing.assert_allclose(r.rotation_centre, centre, atol=1e-9, rtol=0)
    assert np.isnan(r.angulation_deg[7, 1:3]).all() and np.isfinite(r.angulation_deg[7, [0, 3, 4]]).all()
    assert r.unstable.any() and not r.unstable.all()  # the comparison covered both outcomes


def test_batch_shapes_and_chunks_agree_with_single_studies():
    rng = np.random.default_rng(5)
    flex, ext = random_spines(rng, 24)
    flat = segmental_motion(flex, ext, [0.15, 0.15])
    shaped = segmental_motion(flex.reshape(2, 3, 4, 6, 4, 2), ext.reshape(2, 3, 4, 6, 4, 2), [0.15, 0.15])
    assert shaped.angulation_deg.shape == (2, 3, 4, 5)
    assert shaped.rotation_centre.shape == (2, 3, 4, 5, 2)
    assert shaped.depth_ratio.shape == (2, 3, 4, 6)
    np.testing.assert_array_equal(shaped.translation_mm.reshape(24, 5), flat.translation_mm)
    single = segmental_motion(flex[13], ext[13], [0.15, 0.15])
    assert single.angulation_deg.shape == (5,)
    np.testing.assert_allclose(single.angulation_deg, flat.angulation_deg[13], atol=1e-12)
    one = flat.study(13)
    np.testing.assert_array_equal(one.translation_pct, flat.translation_pct[13])
    # a flexion template broadcast against many extensions
    many = segmental_motion(flex[0], ext[:5], [0.15, 0.15])
    np.testing.assert_allclose(many.angulation_deg[3], segmental_motion(flex[0], ext[3], [0.15, 0.15]).angulation_deg)


def test_chunked_threads_match_single_thread(monkeypatch):
    import measure._motion as motion

    monkeypatch.setattr(motion, "_CHUNK", 7)
    rng = np.random.default_rng(8)
    flex, ext = random_spines(rng, 50)
    spacing = np.where(rng.random((50, 1)) < 0.3, np.nan, 0.15) * np.ones((50, 2))  # some uncalibrated
    a = segmental_motion(flex, ext, spacing, workers=1, landmark_sd_mm=0.5)
    b = segmental_motion(flex, ext, spacing, workers=2, landmark_sd_mm=0.5)
    for name in ("angulation_deg", "translation_mm", "translation_pct", "translation_sd_pct", "rotation_centre"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    uncal = ~np.isfinite(spacing[:, 0])
    assert np.isnan(a.translation_mm[uncal]).all() and np.isfinite(a.translation_mm[~uncal]).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_output_dtype(dtype):
    body = np.array([[40, 0], [0, 0], [0, 30], [40, 30]])
    flex = np.stack([body + [0, 40 * k] for k in range(6)]).astype(dtype)
    ext = flex.copy()
    ext[:3] += np.array([-8, 0], dtype=dtype)
    r = segmental_motion(flex, ext, [0.5, 0.5])
    expected = np.float32 if dtype == np.float32 else np.float64
    assert r.translation_mm.dtype == expected and r.angulation_deg.dtype == expected
    np.testing.assert_allclose(r.translation_mm, [0, 0, 4.0, 0, 0], atol=1e-6)


def _translated(amount_px: float, spacing: float = 0.5):
    """L1-L4 shifted anteriorly by ``amount_px`` on flexion: translation amount*spacing at L4-L5."""
    body = np.array([[40.0, 0], [0, 0], [0, 30], [40, 30]])
    ext = np.stack([body + [0, 40 * k] for k in range(6)])
    ext[5, 2:] = np.nan
    flex = ext.copy()
    flex[:4] += [amount_px, 0]
    return flex, ext


def test_threshold_edges_are_strict():
    flex, ext = _translated(8.0)  # exactly 4.0 mm at L4-L5
    r = segmental_motion(flex, ext, [0.5, 0.5])
    assert r.translation_mm[3] == 4.0
    assert not r.unstable[3] and r.criterion[3] == "none"
    flex, ext = _translated(8.0 + 1e-9)
    assert segmental_motion(flex, ext, [0.5, 0.5]).translation_unstable[3]
    # white-panjabi 4.5 mm and 15 %: depth 20 mm -> 3 mm is exactly 15 %
    flex, ext = _translated(6.0)
    wp = segmental_motion(flex, ext, [0.5, 0.5], criteria="white-panjabi")
    assert wp.translation_pct[3] == 15.0 and not wp.translation_unstable[3]
    flex, ext = _translated(9.0)  # 4.5 mm exactly, but 22.5 %
    wp = segmental_motion(flex, ext, [0.5, 0.5], criteria="white-panjabi")
    assert wp.translation_mm[3] == 4.5 and wp.translation_unstable[3]


def test_angulation_threshold_edge_and_sign():
    # rotate L4 about its PI corner on extension by +-angle
    def case(angle_deg):
        flex, ext = _translated(0.0)
        a = math.radians(angle_deg)
        # image y down: rotating the anterior end of L4 upwards opens the disc anteriorly (lordosis)
        rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
        pivot = ext[3, 2].copy()
        ext[3] = (ext[3] - pivot) @ rot.T + pivot
        return segmental_motion(flex, ext, [0.5, 0.5])

    r = case(10.5)
    assert r.angulation_deg[3] == pytest.approx(10.5, abs=1e-12)
    assert r.extension_angle_deg[3] == pytest.approx(10.5, abs=1e-12)  # lordotic = positive
    assert r.angulation_unstable[3] and r.criterion[3] == "angulation"
    r = case(-9.5)
    assert r.angulation_deg[3] == pytest.approx(-9.5, abs=1e-12) and not r.angulation_unstable[3]
    assert case(-10.5).angulation_unstable[3]  # magnitude, sign kept


def test_angulation_threshold_is_strict_exactly_at_the_threshold():
    """Flat L5 endplate; on extension U's inferior endplate rises 45 degrees anteriorly
    (AI 20 px anterior of and 20 px above PI): atan2(1, 1) is exactly 45.0 degrees."""
    body = np.array([[40.0, 0], [0, 0], [0, 30], [40, 30]])
    flex = np.stack([body, body + [0, 40]])
    ext = flex.copy()
    ext[0, 3] = ext[0, 2] + [20, -20]
    ext[0, 0] = ext[0, 3] + [0, -30]
    at = Criteria("at 45", angulation_deg=45.0)
    r = segmental_motion(flex, ext, [0.5, 0.5], levels=["L4", "L5"], criteria=at)
    assert r.angulation_deg[0] == 45.0
    assert not r.angulation_unstable[0] and r.criterion[0] == "none"
    below = Criteria("just below 45", angulation_deg=float(np.nextafter(45.0, 0.0)))
    assert segmental_motion(flex, ext, [0.5, 0.5], levels=["L4", "L5"], criteria=below).angulation_unstable[0]


def test_both_criteria_and_custom_levels():
    flex, ext = _translated(10.0)  # 5 mm at L4-L5
    a = math.radians(12)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    ext[3] = (ext[3] - ext[3, 2]) @ rot.T + ext[3, 2]
    r = segmental_motion(flex, ext, [0.5, 0.5])
    assert r.criterion[3] == "both"
    custom = Criteria("clinic", translation_mm={"L4-L5": 6.0}, angulation_deg={"*": 10, "L4-L5": None})
    c = segmental_motion(flex, ext, [0.5, 0.5], criteria=custom)
    assert not c.unstable[3] and c.criterion[3] == "none"
    np.testing.assert_array_equal(c.thresholds["angulation_deg"], [10, 10, 10, np.nan, 10])
    np.testing.assert_array_equal(c.thresholds["translation_mm"], [np.nan] * 3 + [6.0, np.nan])
    # calibrated films, no translation threshold at a segment: said so, not "needs millimetres"
    assert c.translation_assessed.tolist() == [False, False, False, True, False]
    warnings = " | ".join(c.warnings())
    assert "set no translation threshold at L1-L2, L2-L3, L3-L4, L5-S1" in warnings
    assert "need millimetres" not in warnings


def test_transitional_anatomy_labels():
    body = np.array([[40.0, 0], [0, 0], [0, 30], [40, 30]])
    ext = np.stack([body + [0, 40 * k] for k in range(7)])
    flex = ext.copy()
    flex[:6] += [10, 0]
    levels = ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    r = segmental_motion(flex, ext, [0.5, 0.5], levels=levels)
    assert r.segments == segment_labels(levels) and r.segments[0] == "T12-L1"
    np.testing.assert_allclose(r.translation_mm, [0, 0, 0, 0, 0, 5.0], atol=1e-12)
    wp = segmental_motion(flex, ext, [0.5, 0.5], levels=levels, criteria="white-panjabi")
    assert np.isnan(wp.thresholds["angulation_deg"][0])  # no white-panjabi angle for T12-L1
    assert any("no angulation threshold at T12-L1" in w for w in wp.warnings())
    assert not any("angulation threshold" in w for w in r.warnings())


def test_missing_level_gives_nan_segments_not_error():
    flex, ext = _translated(10.0)
    flex[2] = np.nan  # L3 not visible on flexion
    r = segmental_motion(flex, ext, [0.5, 0.5])
    assert np.isnan(r.translation_mm[1:3]).all() and np.isnan(r.angulation_deg[1:3]).all()
    assert np.isfinite(r.translation_mm[[0, 3, 4]]).all()
    assert r.criterion[1] == "not measured" and not r.unstable[1:3].any()
    assert np.isnan(r.depth_ratio[2])
    recs = r.to_records()
    assert recs[1]["translation_mm"] is None and recs[1]["criterion"] is None
    assert recs[3]["translation_mm"] == 5.0 and recs[3]["unstable"] is True


def test_top_body_without_superior_corners_still_finds_the_side_of_u():
    """The top body may omit AS/PS; e2 is then oriented by U's inferior endplate.

    Same numbers as with the corners present, on a rotated, mirrored film too.
    """
    flex, ext = _translated(10.0)
    a = math.radians(8)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    ext[0] = (ext[0] - ext[0, 2]) @ rot.T + ext[0, 2]  # L1 tilts 8 degrees lordotic on extension
    b = math.radians(140)
    film = np.array([[-math.cos(b), math.sin(b)], [math.sin(b), math.cos(b)]])  # mirror and rotate
    for f, e in ((flex, ext), (flex @ film.T + 900, ext @ film.T + 900)):
        full = segmental_motion(f, e, [0.5, 0.5])
        f, e = f.copy(), e.copy()
        f[0, :2] = np.nan
        e[0, :2] = np.nan
        top = segmental_motion(f, e, [0.5, 0.5])
        assert top.angulation_deg[0] == pytest.approx(8.0, abs=1e-9)
        assert top.extension_angle_deg[0] == pytest.approx(8.0, abs=1e-9)  # lordotic: positive
        assert top.translation_mm[0] == pytest.approx(0.0, abs=1e-9)
        assert top.translation_mm[3] == pytest.approx(5.0, abs=1e-9)
        for name in ("flexion_angle_deg", "extension_angle_deg", "translation_mm", "rotation_centre"):
            np.testing.assert_allclose(getattr(top, name), getattr(full, name), atol=1e-9, err_msg=name)
        assert np.isnan(top.depth_ratio[0]) and np.isfinite(top.depth_ratio[1:]).all()
    # and on random films of either facing and any rotation
    flex, ext = random_spines(np.random.default_rng(11), 200)
    full = segmental_motion(flex, ext, [0.15, 0.15])
    flex[:, 0, :2] = np.nan
    ext[:, 0, :2] = np.nan
    top = segmental_motion(flex, ext, [0.15, 0.15])
    for name in ("flexion_angle_deg", "extension_angle_deg", "translation_mm", "rotation_centre"):
        np.testing.assert_allclose(getattr(top, name), getattr(full, name), atol=1e-9, err_msg=name)


def test_rotation_centre_of_constructed_rigid_motion():
    """U rotates about a known point of L's frame; the result is that point / depth."""
    _, ext = _translated(0.0)
    # L5 superior endplate: PS = (0, 160), AS = (40, 160) px: depth 40 px, e1 = +x, e2 = -y.
    centre_frame = np.array([0.4, -0.3])  # 0.4 depth anterior of PS, 0.3 depth below the endplate
    centre_px = np.array([0, 160]) + 40 * np.array([centre_frame[0], -centre_frame[1]])
    for angle in (12.0, -7.0):
        moved = ext.copy()
        a = math.radians(angle)
        rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
        moved[3] = (ext[3] - centre_px) @ rot.T + centre_px
        r = segmental_motion(ext, moved, [0.5, 0.5])
        assert r.angulation_deg[3] == pytest.approx(angle, abs=1e-12)
        np.testing.assert_allclose(r.rotation_centre[3], centre_frame, atol=1e-12)
        assert np.isnan(r.rotation_centre[[0, 1, 4]]).all()  # no rotation there (L3-L4 does rotate)
        assert r.rotation_centre_note[0].startswith("rotation below 5 degrees")
    # the same motion seen on a rotated, mirrored, differently scaled film
    a = math.radians(33)
    film = np.array([[-math.cos(a), math.sin(a)], [math.sin(a), math.cos(a)]]) * 1.7
    r = segmental_motion(ext @ film.T + 5, moved @ film.T + 5, None)
    np.testing.assert_allclose(r.rotation_centre[3], centre_frame, atol=1e-12)


def test_rotation_centre_threshold_keyword():
    flex, ext = _translated(0.0)
    a = math.radians(3.0)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    ext[3] = (ext[3] - ext[3, 2]) @ rot.T + ext[3, 2]
    assert np.isnan(segmental_motion(flex, ext, None).rotation_centre[3]).all()
    r = segmental_motion(flex, ext, None, min_rotation_deg=2.0)
    # rotation about PI_U, which sits 10 px (0.25 depth) above PS_L: centre (0, 0.25)
    np.testing.assert_allclose(r.rotation_centre[3], [0.0, 0.25], atol=1e-12)


def test_records_are_json_ready():
    import json

    flex, ext = _hand_case()
    r = segmental_motion(flex, ext, [SP, SP], levels=["L4", "L5"], landmark_sd_mm=0.3)
    rec = r.to_records()[0]
    json.dumps(rec, allow_nan=False)
    assert rec["segment"] == "L4-L5" and rec["translation_mm"] == pytest.approx(3.5)
    lo, hi = rec["translation_mm_ci95"]
    assert lo < 3.5 < hi and hi - 3.5 == pytest.approx(3.5 - lo)
    assert rec["thresholds"] == {"translation_mm": 4.0, "translation_pct": None, "angulation_deg": 10.0}


# ----------------------------------------------------------------------------- errors


def _good():
    return _translated(4.0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda f, e: (f[:, :3], e), r"flexion: expected shape \(\.\.\., V, 4, 2\)"),
        (lambda f, e: (f, e[:5]), r"extension: 5 bodies but flexion has 6"),
        (lambda f, e: (np.stack([f, f]), np.stack([e, e, e])), r"extension: batch shape \(3,\)"),
        (lambda f, e: (f.astype(str), e), r"flexion: expected real numbers"),
    ],
)
def test_shape_errors_name_the_parameter(change, match):
    f, e = change(*_good())
    with pytest.raises(ValueError, match=match):
        segmental_motion(f, e)


def test_non_finite_required_corner_is_an_error():
    f, e = _good()
    f[3, 2] = np.nan  # L4 PI missing but L4 otherwise present
    with pytest.raises(ValueError, match=r"flexion: L4 PI is not a finite \(x, y\) pair"):
        segmental_motion(f, e)
    f, e = _good()
    e[5, 0, 1] = np.inf
    with pytest.raises(ValueError, match=r"extension: S1 AS is infinite"):
        segmental_motion(f, e)
    f, e = _good()
    batch_f = np.stack([f, f, f])
    batch_f[2, 4, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"flexion: L5 PS .* in study \(2,\)"):
        segmental_motion(batch_f, e)


def test_coordinates_beyond_any_film_are_errors():
    """Huge but finite coordinates overflowed silently (a segment became 'not measured',
    a neighbour flipped sign); they are rejected, naming film, level and corner."""
    f, e = _good()
    f[2, 1] = [1e200, 1e200]  # L3 PS
    with pytest.raises(ValueError, match=r"flexion: L3 PS lies beyond 1e\+09"):
        segmental_motion(f, e, [0.5, 0.5])
    f, e = _good()
    batch_e = np.stack([e, e])
    batch_e[1, 4, 3, 0] = -2e9  # L5 AI x, second study
    with pytest.raises(ValueError, match=r"extension: L5 AI lies beyond .* in study \(1,\)"):
        segmental_motion(f, batch_e)
    f, e = _good()
    with pytest.raises(ValueError, match=r"flexion: L1 AS lies beyond"):  # limit applies in mm too
        segmental_motion(f, e, [1e9, 1e9])


def test_degenerate_endplates_are_errors():
    f, e = _good()
    f[4, 0] = f[4, 1]  # L5 AS on PS
    with pytest.raises(ValueError, match=r"flexion: degenerate endplate: L5 AS and PS coincide"):
        segmental_motion(f, e)
    f, e = _good()
    e[2, 3] = e[2, 2]  # L3 AI on PI
    with pytest.raises(ValueError, match=r"extension: degenerate endplate: L3 PI and AI coincide"):
        segmental_motion(f, e)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spacing_mm": [0.0, 0.1]}, r"spacing_mm: spacing must be positive"),
        ({"spacing_mm": [-0.1, 0.1]}, r"spacing_mm: spacing must be positive"),
        ({"spacing_mm": [0.1, np.inf]}, r"spacing_mm: spacing must be finite"),
        ({"spacing_mm": [0.1, 0.1, 0.1]}, r"spacing_mm: expected shape \(\.\.\., 2\)"),
        ({"extension_spacing_mm": [[0.1, 0.1]] * 3}, r"extension_spacing_mm: shape \(3, 2\)"),
        ({"spacing_mm": [0.1, 0.1], "flexion_spacing_mm": [0.1, 0.1]}, r"spacing_mm: give either"),
        ({"criteria": "strict"}, r"criteria: unknown preset 'strict'"),
        ({"levels": ["L1", "L2"]}, r"levels: 2 labels for 6 bodies"),
        ({"landmark_sd_mm": -1.0}, r"landmark_sd_mm: standard deviations must be"),
        ({"landmark_sd_mm": np.ones(5)}, r"landmark_sd_mm: shape \(5,\) does not broadcast"),
        ({"min_rotation_deg": -1}, r"min_rotation_deg"),
    ],
)
def test_argument_errors_name_the_parameter(kwargs, match):
    f, e = _good()
    with pytest.raises(ValueError, match=match):
        segmental_motion(f, e, **kwargs)


def test_presets_are_as_specified():
    d = CRITERIA_PRESETS["default"].thresholds(segment_labels(["L1", "L2", "L3", "L4", "L5", "S1"]))
    np.testing.assert_array_equal(d["translation_mm"], [4.0] * 5)
    np.testing.assert_array_equal(d["angulation_deg"], [10.0] * 5)
    assert np.isnan(d["translation_pct"]).all()
    w = CRITERIA_PRESETS["white-panjabi"].thresholds(segment_labels(["L1", "L2", "L3", "L4", "L5", "S1"]))
    np.testing.assert_array_equal(w["translation_mm"], [4.5] * 5)
    np.testing.assert_array_equal(w["translation_pct"], [15.0] * 5)
    np.testing.assert_array_equal(w["angulation_deg"], [15, 15, 15, 20, 25])


def test_criteria_from_dict_validation():
    c = Criteria.from_dict({"name": "x", "translation_pct": 12, "angulation_deg": {"L5-S1": 20}})
    assert c.threshold("translation_pct", "L4-L5") == 12 and math.isnan(c.threshold("angulation_deg", "L4-L5"))
    assert Criteria.from_dict(c.to_dict()).to_dict() == c.to_dict()
    with pytest.raises(ValueError, match=r"angulation_deg.L4-L5: expected a positive number"):
        Criteria.from_dict({"angulation_deg": {"L4-L5": -3}})
    with pytest.raises(ValueError, match=r"translation: unknown key"):
        Criteria.from_dict({"translation": 4})
    with pytest.raises(ValueError, match=r"criteria: at least one"):
        Criteria.from_dict({"name": "empty"})
    with pytest.raises(ValueError, match=r"criteria: at least one"):
        Criteria.from_dict({"translation_mm": None, "angulation_deg": {}})
    # a mistyped segment label would leave that segment silently without a threshold
    for label in ("L4L5", "L5-L4", "L4 - L5"):
        with pytest.raises(ValueError, match=rf"translation_mm\.{label}: not a segment label"):
            Criteria.from_dict({"translation_mm": {label: 4.0}})
    assert Criteria("data labels", translation_mm={"A-B": 1.0}).threshold("translation_mm", "A-B") == 1.0
    # a zero threshold is a bad value of that key, not a missing table
    with pytest.raises(ValueError, match=r"translation_mm\.\*: expected a positive number or null, got 0"):
        Criteria.from_dict({"translation_mm": 0})


def test_scalar_reference_itself_on_hand_case():
    """The reference must reproduce the hand-computed numbers too (it is independent code)."""
    flex, ext = _hand_case()
    row = scalar_motion(flex, ext, (SP, SP))[0]
    assert row["translation_mm"] == pytest.approx(3.5, abs=1e-12)
    assert row["angulation_deg"] == pytest.approx(math.degrees(math.atan(6 / 17)), abs=1e-12)
