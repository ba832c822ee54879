"""Propagated uncertainty (measurement.md §6): Jacobian against Monte Carlo, borderline flags."""
# ruff: noqa: RUF005  (numpy array + list is elementwise addition, not concatenation)

from __future__ import annotations

import math

import numpy as np
import pytest

from measure import DEFAULT_LANDMARK_SD_MM, Z95, PlacementMethod, segmental_motion
from tests.measure._spines import random_spines

SPACING = (0.15, 0.15)


def _monte_carlo(flex, ext, sd_f_mm, sd_e_mm, n, rng, spacing=SPACING, **kwargs):
    """Perturb every corner with isotropic Gaussian noise (mm converted to px) and re-measure."""
    px = np.array([spacing[1], spacing[0]])
    nf = rng.normal(size=(n, *flex.shape)) * (np.asarray(sd_f_mm)[..., None] / px)
    ne = rng.normal(size=(n, *ext.shape)) * (np.asarray(sd_e_mm)[..., None] / px)
    return segmental_motion(flex + nf, ext + ne, spacing, **kwargs)


def test_jacobian_matches_monte_carlo():
    rng = np.random.default_rng(42)
    flex, ext = random_spines(rng, 3, spacing=SPACING)
    # different SDs per corner and per film (tracked corners on extension, manual on flexion)
    sd_f = rng.uniform(0.2, 0.8, (6, 4))
    sd_e = rng.uniform(0.05, 0.4, (6, 4))
    for s in range(3):
        r = segmental_motion(
            flex[s], ext[s], SPACING, flexion_landmark_sd_mm=sd_f, extension_landmark_sd_mm=sd_e
        )
        mc = _monte_carlo(flex[s], ext[s], sd_f, sd_e, 40_000, rng)
        # SE of an SD estimate from 40 000 samples is 0.35 %; first order is accurate to ~1 % here
        np.testing.assert_allclose(r.translation_sd_mm, mc.translation_mm.std(axis=0), rtol=0.03)
        np.testing.assert_allclose(r.translation_sd_pct, mc.translation_pct.std(axis=0), rtol=0.03)
        np.testing.assert_allclose(r.angulation_sd_deg, mc.angulation_deg.std(axis=0), rtol=0.03)
        # and the intervals cover about 95 % of the simulated values
        lo, hi = r.translation_ci95_mm[..., 0], r.translation_ci95_mm[..., 1]
        shift = mc.translation_mm - mc.translation_mm.mean(axis=0) + r.translation_mm
        coverage = ((shift > lo) & (shift < hi)).mean(axis=0)
        np.testing.assert_allclose(coverage, 0.95, atol=0.01)


def test_hand_computed_sd_for_a_flat_segment():
    """Flat endplates, PI_U at height h = 10 px over L (depth D = 40 px), 1 px = 1 mm, SD s.

    var(t) per film = s²(PI) + s²(AS) (h/D)² + s²(PS) (1 + (h/D)²) = s² (2 + 2/16) for s equal;
    var(dt) = 2 var(t) = s² 4.25.  var(theta) per film = 2 s²/|i|² + 2 s²/D² with |i| = D = 40:
    var(dtheta) = 8 s² / 1600 rad².
    """
    body = np.array([[40.0, 0], [0, 0], [0, 30], [40, 30]])
    flex = np.stack([body, body + [0, 40]])
    s = 0.5
    r = segmental_motion(flex, flex, (1.0, 1.0), levels=["L4", "L5"], landmark_sd_mm=s)
    assert r.translation_sd_mm[0] == pytest.approx(s * math.sqrt(4.25), rel=1e-12)
    assert r.angulation_sd_deg[0] == pytest.approx(math.degrees(s * math.sqrt(8 / 1600)), rel=1e-12)
    # dt = 0: % SD = 100 sqrt(var(dt)) / D
    assert r.translation_sd_pct[0] == pytest.approx(100 * s * math.sqrt(4.25) / 40, rel=1e-12)
    assert r.translation_ci95_mm[0, 1] == pytest.approx(Z95 * s * math.sqrt(4.25), rel=1e-12)


def _shifted(amount_mm: float):
    body = np.array([[40.0, 0], [0, 0], [0, 30], [40, 30]])
    ext = np.stack([body, body + [0, 40]])
    flex = ext.copy()
    flex[0] += [amount_mm / 0.5, 0]
    return flex, ext


def test_borderline_when_interval_straddles_threshold():
    # SD(dt) = s sqrt(4.25) in the flat case; s = 0.3 mm -> 1.21 mm half-width at 95 %
    flex, ext = _shifted(4.5)
    r = segmental_motion(flex, ext, (0.5, 0.5), levels=["L4", "L5"], landmark_sd_mm=0.3)
    assert r.translation_unstable[0] and r.translation_borderline[0] and r.borderline[0]
    flex, ext = _shifted(6.0)  # 6 - 1.21 > 4: confidently unstable
    r = segmental_motion(flex, ext, (0.5, 0.5), levels=["L4", "L5"], landmark_sd_mm=0.3)
    assert r.unstable[0] and not r.borderline[0]
    flex, ext = _shifted(2.0)  # 2 + 1.21 < 4: confidently within
    r = segmental_motion(flex, ext, (0.5, 0.5), levels=["L4", "L5"], landmark_sd_mm=0.3)
    assert not r.unstable[0] and not r.borderline[0]
    # without SDs nothing is borderline, and intervals are NaN
    r = segmental_motion(*_shifted(4.5), (0.5, 0.5), levels=["L4", "L5"])
    assert not r.borderline.any() and np.isnan(r.translation_ci95_mm).all()


def test_borderline_uses_the_95_percent_half_width_on_both_sides():
    """Half-width 1.96 x 0.618 = 1.21 mm: 5.0 mm straddles 4 mm at 95 % (it would not at
    one SD, 0.62 mm); a posterior translation of -4.5 mm straddles -4 mm the same way."""
    kwargs = {"levels": ["L4", "L5"], "landmark_sd_mm": 0.3}
    r = segmental_motion(*_shifted(5.0), (0.5, 0.5), **kwargs)
    assert r.translation_sd_mm[0] == pytest.approx(0.3 * math.sqrt(4.25), rel=1e-12)
    assert r.unstable[0] and r.translation_borderline[0] and r.borderline[0]
    r = segmental_motion(*_shifted(-4.5), (0.5, 0.5), **kwargs)
    assert r.translation_mm[0] == pytest.approx(-4.5, abs=1e-12)
    assert r.unstable[0] and r.translation_borderline[0] and r.borderline[0]
    r = segmental_motion(*_shifted(-3.0), (0.5, 0.5), **kwargs)  # [-4.21, -1.79] straddles -4
    assert not r.unstable[0] and r.borderline[0]
    r = segmental_motion(*_shifted(-6.0), (0.5, 0.5), **kwargs)  # wholly below -4
    assert r.unstable[0] and not r.borderline[0]


def test_borderline_is_about_the_overall_decision():
    """Translation borderline but angulation certainly exceeded: certainly unstable overall."""
    flex, ext = _shifted(4.5)
    a = math.radians(25)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    ext[0] = (ext[0] - ext[0, 2]) @ rot.T + ext[0, 2]
    r = segmental_motion(flex, ext, (0.5, 0.5), levels=["L4", "L5"], landmark_sd_mm=0.3)
    assert r.angulation_unstable[0] and not r.angulation_borderline[0]
    assert r.translation_borderline[0] and not r.borderline[0]


def test_uncalibrated_films_use_pixel_sds():
    flex, ext = _shifted(4.5)
    mm = segmental_motion(flex, ext, (0.5, 0.5), levels=["L4", "L5"], landmark_sd_mm=0.3)
    none = segmental_motion(flex, ext, None, levels=["L4", "L5"], landmark_sd_mm=0.3, nominal_depth_mm=None)
    assert np.isnan(none.angulation_sd_deg).all()  # mm SDs cannot be converted without spacing
    # by default the median endplate depth is taken as 40 mm: the same intervals as a film
    # calibrated at 40 mm / depth in pixels (angles and % are scale-free)
    depth_px = np.median(np.hypot(*(flex[:, 0] - flex[:, 1]).T))
    nominal = segmental_motion(flex, ext, None, levels=["L4", "L5"], landmark_sd_mm=0.3)
    as_40 = segmental_motion(flex, ext, (40 / depth_px,) * 2, levels=["L4", "L5"], landmark_sd_mm=0.3)
    np.testing.assert_allclose(nominal.angulation_sd_deg, as_40.angulation_sd_deg, rtol=1e-12)
    np.testing.assert_allclose(nominal.translation_sd_pct, as_40.translation_sd_pct, rtol=1e-12)
    assert np.isnan(nominal.translation_sd_mm).all() and np.isnan(nominal.translation_mm).all()
    px = segmental_motion(flex, ext, None, levels=["L4", "L5"], landmark_sd_px=0.6)
    np.testing.assert_allclose(px.angulation_sd_deg, mm.angulation_sd_deg, rtol=1e-12)
    np.testing.assert_allclose(px.translation_sd_pct, mm.translation_sd_pct, rtol=1e-12)
    assert np.isnan(px.translation_sd_mm).all()
    # on a calibrated film without mm SDs, pixel SDs are converted with the spacing
    conv = segmental_motion(flex, ext, (0.5, 0.5), levels=["L4", "L5"], landmark_sd_px=0.6)
    for name in ("translation_sd_mm", "translation_sd_pct", "angulation_sd_deg"):
        np.testing.assert_allclose(getattr(conv, name), getattr(mm, name), rtol=1e-12, err_msg=name)
    # one film calibrated: % computed in pixels with the mm SD converted on that film
    mixed = segmental_motion(
        flex, ext, flexion_spacing_mm=(0.5, 0.5), levels=["L4", "L5"], landmark_sd_mm=0.3, landmark_sd_px=0.6
    )
    np.testing.assert_allclose(mixed.translation_sd_pct, mm.translation_sd_pct, rtol=1e-12)


def test_placement_defaults_are_derived_from_measurement_md():
    assert {m.value for m in PlacementMethod} == {"manual", "refined", "tracked", "detected", "edited"}
    assert PlacementMethod("manual").default_sd_mm == DEFAULT_LANDMARK_SD_MM[PlacementMethod.MANUAL]
    # the manual default must reproduce the inter-observer error of §6 (1.4 mm, 2.6 deg)
    # on a typical segment within 25 %
    body = np.array([[35.0, 0], [0, 0], [0, 25], [35, 25]])
    flex = np.stack([body, body + [0, 35]])
    r = segmental_motion(
        flex, flex, (1.0, 1.0), levels=["L4", "L5"], landmark_sd_mm=PlacementMethod.MANUAL.default_sd_mm
    )
    assert r.translation_sd_mm[0] == pytest.approx(1.4, rel=0.25)
    assert r.angulation_sd_deg[0] == pytest.approx(2.6, rel=0.25)
    order = [PlacementMethod.TRACKED, PlacementMethod.REFINED, PlacementMethod.MANUAL, PlacementMethod.DETECTED]
    assert [m.default_sd_mm for m in order] == sorted(m.default_sd_mm for m in order)
