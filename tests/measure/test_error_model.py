"""Per-body (rigid) error model: closed form, Monte Carlo, and the placement-method mapping."""
# ruff: noqa: RUF005  (numpy array + list is elementwise addition, not concatenation)

from __future__ import annotations

import math

import numpy as np
import pytest

from measure import (
    ERROR_MODEL,
    ErrorModel,
    PlacementMethod,
    TrackingSDModel,
    placement_uncertainty,
    segmental_motion,
    tracking_sd,
)
from tests.measure._spines import random_spines

SPACING = (0.15, 0.15)


def _rigid_monte_carlo(flex, ext, corner_sd, body_sd_f, body_sd_e, n, rng, spacing=SPACING):
    """Move each body by a random shift and a rotation about the centroid of its corners,
    then each corner independently; re-measure.  SDs in mm and degrees, corners in px."""
    px = np.array([spacing[1], spacing[0]])

    def perturb(c, body):
        shift_mm, rot_deg = np.asarray(body, float)[..., 0], np.asarray(body, float)[..., 1]
        centre = np.nanmean(c, axis=-2, keepdims=True)  # (V, 1, 2)
        rel = c - centre
        angle = np.radians(rng.normal(size=(n, c.shape[0])) * rot_deg)[..., None]  # (n, V, 1)
        cos, sin = np.cos(angle), np.sin(angle)
        rotated = np.stack([cos * rel[..., 0] - sin * rel[..., 1], sin * rel[..., 0] + cos * rel[..., 1]], -1)
        shift = rng.normal(size=(n, c.shape[0], 1, 2)) * (np.asarray(shift_mm)[..., None, None] / px)
        corner = rng.normal(size=(n, *c.shape)) * (np.asarray(corner_sd)[..., None] / px)
        return centre + rotated + shift + corner

    return segmental_motion(perturb(flex, body_sd_f), perturb(ext, body_sd_e), spacing)


def test_rigid_terms_match_monte_carlo_on_random_spines():
    rng = np.random.default_rng(7)
    flex, ext = random_spines(rng, 2, spacing=SPACING)
    corner = rng.uniform(0.1, 0.5, (6, 4))
    body_f = np.stack([rng.uniform(0.2, 0.8, 6), rng.uniform(0.5, 2.0, 6)], axis=-1)
    body_e = np.stack([rng.uniform(0.2, 0.8, 6), rng.uniform(0.5, 2.0, 6)], axis=-1)
    for s in range(2):
        r = segmental_motion(flex[s], ext[s], SPACING, landmark_sd_mm=corner,
                             flexion_body_sd=body_f, extension_body_sd=body_e)
        mc = _rigid_monte_carlo(flex[s], ext[s], corner, body_f, body_e, 40_000, rng)
        # SE of an SD from 40 000 samples is 0.35 %; first order is accurate to ~1 % at these sizes
        np.testing.assert_allclose(r.translation_sd_mm, mc.translation_mm.std(axis=0), rtol=0.03)
        np.testing.assert_allclose(r.translation_sd_pct, mc.translation_pct.std(axis=0), rtol=0.03)
        np.testing.assert_allclose(r.angulation_sd_deg, mc.angulation_deg.std(axis=0), rtol=0.03)
        # without the body terms the same corners give clearly smaller SDs: the terms matter
        alone = segmental_motion(flex[s], ext[s], SPACING, landmark_sd_mm=corner)
        assert np.all(alone.angulation_sd_deg < 0.8 * r.angulation_sd_deg)


def _rectangles(n_bodies: int = 2) -> np.ndarray:
    """Bodies 40 px deep, 30 px high, 10 px discs, facing right (AS at larger x), y down."""
    body = np.array([[40.0, 0], [0, 0], [0, 30], [40, 30]])
    return np.stack([body + [0, 40 * k] for k in range(n_bodies)])


def test_rotation_only_closed_form():
    """Rotation SD r per body, nothing else, 0.25 mm/px.

    Angle: each film's theta moves with U's and L's rotation: var = 2 r², two films: SD 2 r.
    Translation: U's centroid is (20, 15), PI_U = (0, 30): lever along e2 (up) = 15 px;
    L's centroid (20, 55): PI_U is 25 px above it.  var(t) = r² (15² + 25²) px² per film.
    """
    corners = _rectangles()
    r_deg = 1.5
    r = segmental_motion(corners, corners, (0.25, 0.25), levels=["L4", "L5"],
                         flexion_body_sd=[0.0, r_deg], extension_body_sd=[0.0, r_deg])
    assert r.angulation_sd_deg[0] == pytest.approx(2 * r_deg, rel=1e-9)
    rad = math.radians(r_deg)
    sd_t = math.sqrt(2 * rad**2 * (15**2 + 25**2)) * 0.25
    assert r.translation_sd_mm[0] == pytest.approx(sd_t, rel=1e-9)
    # dt = 0 and rotations do not change depth (10 mm): % SD = 100 SD(dt) / depth
    assert r.translation_sd_pct[0] == pytest.approx(100 * sd_t / 10.0, rel=1e-9)


def test_shift_only_closed_form():
    """Shift SD s per axis per body: var(t) = 2 s² per film (U's PI and L's PS move), SD(dt) = 2 s;
    angles do not move at all."""
    corners = _rectangles()
    s = 0.7
    r = segmental_motion(corners, corners, (0.25, 0.25), levels=["L4", "L5"],
                         flexion_body_sd=[s, 0.0], extension_body_sd=[s, 0.0])
    assert r.translation_sd_mm[0] == pytest.approx(2 * s, rel=1e-12)
    assert r.angulation_sd_deg[0] == 0.0
    assert r.translation_sd_pct[0] == pytest.approx(100 * 2 * s / 10.0, rel=1e-12)


def test_rigid_and_corner_terms_add_in_quadrature():
    corners = _rectangles()
    kw = {"levels": ["L4", "L5"]}
    both = segmental_motion(corners, corners, (0.25, 0.25), landmark_sd_mm=0.4,
                            flexion_body_sd=[0.5, 1.0], extension_body_sd=[0.5, 1.0], **kw)
    corner = segmental_motion(corners, corners, (0.25, 0.25), landmark_sd_mm=0.4, **kw)
    rigid = segmental_motion(corners, corners, (0.25, 0.25),
                             flexion_body_sd=[0.5, 1.0], extension_body_sd=[0.5, 1.0], **kw)
    for name in ("translation_sd_mm", "translation_sd_pct", "angulation_sd_deg"):
        expected = np.hypot(getattr(corner, name), getattr(rigid, name))
        np.testing.assert_allclose(getattr(both, name), expected, rtol=1e-12)


def test_rigid_terms_on_uncalibrated_films_keep_angle_and_percent():
    """An uncalibrated film takes its median endplate depth as 40 mm: the shift converts like a
    corner SD, the rotation needs no conversion.  Same SDs as a film calibrated at 40 mm / depth."""
    corners = _rectangles(3)  # depth 40 px -> 1 mm/px nominal
    body = [[0.5, 1.2], [0.3, 0.8], [0.6, 2.0]]
    uncal = segmental_motion(corners, corners + [3, 0], None, levels=["L3", "L4", "L5"],
                             landmark_sd_mm=0.3, flexion_body_sd=body, extension_body_sd=body)
    cal = segmental_motion(corners, corners + [3, 0], (1.0, 1.0), levels=["L3", "L4", "L5"],
                           landmark_sd_mm=0.3, flexion_body_sd=body, extension_body_sd=body)
    assert np.isnan(uncal.translation_sd_mm).all()
    np.testing.assert_allclose(uncal.angulation_sd_deg, cal.angulation_sd_deg, rtol=1e-12)
    np.testing.assert_allclose(uncal.translation_sd_pct, cal.translation_sd_pct, rtol=1e-12)


def test_one_calibrated_film_keeps_rigid_terms_in_percent():
    corners = _rectangles()
    body = [0.5, 1.0]
    mixed = segmental_motion(corners, corners, flexion_spacing_mm=(1.0, 1.0), levels=["L4", "L5"],
                             flexion_body_sd=body, extension_body_sd=body)
    cal = segmental_motion(corners, corners, (1.0, 1.0), levels=["L4", "L5"],
                           flexion_body_sd=body, extension_body_sd=body)
    assert np.isnan(mixed.translation_sd_mm).all()
    np.testing.assert_allclose(mixed.translation_sd_pct, cal.translation_sd_pct, rtol=1e-12)


def test_body_sd_shape_and_value_errors():
    corners = _rectangles()
    with pytest.raises(ValueError, match="flexion_body_sd: shape"):
        segmental_motion(corners, corners, (1.0, 1.0), levels=["L4", "L5"], flexion_body_sd=[1, 2, 3])
    with pytest.raises(ValueError, match="extension_body_sd: standard deviations must be finite"):
        segmental_motion(corners, corners, (1.0, 1.0), levels=["L4", "L5"], extension_body_sd=[-1, 0])


def test_placement_uncertainty_maps_methods_to_their_models():
    models = {m: ErrorModel() for m in PlacementMethod}
    models[PlacementMethod.TRACKED] = ErrorModel(corner_factor=2.0, shift_sd_mm=0.2, rotation_sd_deg=0.5)
    models[PlacementMethod.DETECTED] = ErrorModel(corner_factor=0.5, across_factor=3.0, shift_sd_mm=1.0,
                                                  rotation_sd_deg=0.1)
    placement = [["tracked"] * 4, ["manual", "", None, "edited"], ["detected", "tracked", "edited", "tracked"]]
    stated = [[0.2, np.nan, 0.1, 0.2], [np.nan, 1.0, np.nan, np.nan], [np.nan] * 4]
    u = placement_uncertainty(placement, stated, models)
    tracked = PlacementMethod.TRACKED.default_sd_mm
    detected = PlacementMethod.DETECTED.default_sd_mm
    np.testing.assert_allclose(u.corner_sd_mm[0], 2 * np.array([0.2, tracked, 0.1, 0.2]))
    np.testing.assert_allclose(u.across_sd_mm[0], u.corner_sd_mm[0])  # isotropic when not set
    np.testing.assert_allclose(u.corner_sd_mm[1], [0.6, 1.0, 0.6, 0.6])  # manual defaults, stated kept
    np.testing.assert_allclose(u.corner_sd_mm[2], [0.5 * detected, 2 * tracked, 0.6, 2 * tracked])
    np.testing.assert_allclose(u.across_sd_mm[2], [3.0 * detected, 2 * tracked, 0.6, 2 * tracked])
    # a body of mixed methods takes the largest shared terms
    np.testing.assert_allclose(u.body_sd, [[0.2, 0.5], [0.0, 0.0], [1.0, 0.5]])
    kwargs = u.motion_kwargs("extension")
    assert set(kwargs) == {"extension_landmark_sd_mm", "extension_landmark_sd_across_mm", "extension_body_sd"}


def test_placement_uncertainty_rejects_unknown_methods_and_shapes():
    with pytest.raises(ValueError, match="placement"):
        placement_uncertainty([["guessed"] * 4])
    with pytest.raises(ValueError, match="placement: expected shape"):
        placement_uncertainty(["manual"] * 4)
    with pytest.raises(ValueError, match="film"):
        placement_uncertainty([["manual"] * 4]).motion_kwargs("lateral")


def test_manual_and_edited_corners_are_taken_as_stated():
    """The reader's SD is the literature's; the phantom cannot measure a reader."""
    for method in (PlacementMethod.MANUAL, PlacementMethod.EDITED):
        assert ERROR_MODEL[method] == ErrorModel()
    u = placement_uncertainty(np.full((3, 6, 4), "manual", dtype=object), np.full((3, 6, 4), 0.8))
    assert u.corner_sd_mm.shape == (3, 6, 4) and u.body_sd.shape == (3, 6, 2)
    assert np.all(u.corner_sd_mm == 0.8) and np.all(u.across_sd_mm == 0.8) and np.all(u.body_sd == 0.0)


def _anisotropic_monte_carlo(flex, ext, along, across, n, rng, spacing=SPACING):
    """Each corner moved along and across its own endplate (superior corners: AS-PS,
    inferior corners: AI-PI), independently; SDs in mm."""
    px = spacing[0]  # square pixels here

    def perturb(c):
        sup = c[:, 0] - c[:, 1]
        inf = c[:, 3] - c[:, 2]
        direction = np.stack([sup, sup, inf, inf], axis=1)
        direction = direction / np.linalg.norm(direction, axis=-1, keepdims=True)  # (V, 4, 2)
        normal = np.stack([-direction[..., 1], direction[..., 0]], axis=-1)
        a = rng.normal(size=(n, *c.shape[:2], 1)) * (np.asarray(along)[..., None] / px)
        b = rng.normal(size=(n, *c.shape[:2], 1)) * (np.asarray(across)[..., None] / px)
        return c + a * direction + b * normal

    return segmental_motion(perturb(flex), perturb(ext), spacing)


def test_along_and_across_sds_match_monte_carlo():
    rng = np.random.default_rng(11)
    flex, ext = random_spines(rng, 2, spacing=SPACING)
    along = rng.uniform(0.1, 0.4, (6, 4))
    across = rng.uniform(0.5, 1.0, (6, 4))
    for s in range(2):
        r = segmental_motion(flex[s], ext[s], SPACING, landmark_sd_mm=along,
                             flexion_landmark_sd_across_mm=across, extension_landmark_sd_across_mm=across)
        mc = _anisotropic_monte_carlo(flex[s], ext[s], along, across, 40_000, rng)
        np.testing.assert_allclose(r.angulation_sd_deg, mc.angulation_deg.std(axis=0), rtol=0.03)
        np.testing.assert_allclose(r.translation_sd_mm, mc.translation_mm.std(axis=0), rtol=0.03)
        np.testing.assert_allclose(r.translation_sd_pct, mc.translation_pct.std(axis=0), rtol=0.03)


def test_across_only_closed_form():
    """Flat rectangles (depth D = 40 px, |i| = 40 px, PI_U 10 px over L), 1 mm/px, SD along a,
    across b on every corner.  Angle per film: 2 b²/|i|² + 2 b²/D²; translation per film:
    a² (PI_U) + a² (PS_L) + 2 b² (h/D)² with h/D = 1/4."""
    corners = _rectangles()
    a, b = 0.2, 0.9
    r = segmental_motion(corners, corners, (1.0, 1.0), levels=["L4", "L5"], landmark_sd_mm=a,
                         flexion_landmark_sd_across_mm=b, extension_landmark_sd_across_mm=b)
    assert r.angulation_sd_deg[0] == pytest.approx(math.degrees(math.sqrt(2 * 4 * b**2 / 1600)), rel=1e-12)
    var_t = 2 * a**2 + 2 * b**2 / 16
    assert r.translation_sd_mm[0] == pytest.approx(math.sqrt(2 * var_t), rel=1e-12)
    # dt = 0: % SD = 100 SD(dt) / D (the depth's own error enters only through dt / D)
    assert r.translation_sd_pct[0] == pytest.approx(100 * math.sqrt(2 * var_t) / 40, rel=1e-12)
    with pytest.raises(ValueError, match="needs the SD along"):
        segmental_motion(corners, corners, (1.0, 1.0), levels=["L4", "L5"], flexion_landmark_sd_across_mm=b)


# ----------------------------------------------------------------------------- per-body tracking SD


def test_tracking_sd_closed_form_grows_as_the_match_falls():
    m = TrackingSDModel(fraction=0.002, power=0.5, min_mismatch=0.01)
    depth = np.array([[35.0, 35.0, 35.0, 40.0, 35.0]])
    got = tracking_sd([[0.96, 0.84, 0.995, 0.96, np.nan]], depth, m)
    # 0.002 * 35 * sqrt(0.04) = 0.014; sqrt(0.16) = 0.4 -> 0.028; 0.005 < min_mismatch -> sqrt(0.01)
    np.testing.assert_allclose(got[0, :4], [0.014, 0.028, 0.007, 0.016], rtol=1e-12)
    assert np.isnan(got[0, 4])  # a body not tracked has no SD
    assert got.shape == (1, 5)
    # the package model: larger SD for a poorer match, in the unit of the depth
    q = np.linspace(0.5, 0.99, 20)
    sd_mm = tracking_sd(q, 35.0)
    assert np.all(np.diff(sd_mm) < 0)
    np.testing.assert_allclose(tracking_sd(q, 35.0 / 0.2), sd_mm / 0.2)  # px at 0.2 mm/px


def test_placement_uncertainty_scales_body_terms_with_the_stated_sd():
    models = {m: ErrorModel() for m in PlacementMethod}
    models[PlacementMethod.TRACKED] = ErrorModel(corner_factor=0.5, shift_sd_mm=0.03, shift_factor=0.8,
                                                 rotation_deg_per_mm=4.0)
    placement = [["tracked"] * 4, ["tracked"] * 4, ["tracked", "edited", "tracked", "tracked"]]
    stated = [[0.02] * 4, [0.05, 0.05, np.nan, 0.04], [0.03, 0.6, 0.01, 0.01]]
    u = placement_uncertainty(placement, stated, models)
    default = PlacementMethod.TRACKED.default_sd_mm  # a NaN stated SD falls back to it
    s_body = np.array([0.02, max(0.05, default), 0.03])  # largest of the body's tracked corners
    np.testing.assert_allclose(u.body_sd[:, 0], np.hypot(0.03, 0.8 * s_body), rtol=1e-12)
    np.testing.assert_allclose(u.body_sd[:, 1], 4.0 * s_body, rtol=1e-12)
    # the reader's edited corner (0.6 mm) does not inflate the body's tracked terms
    assert u.body_sd[2, 1] == pytest.approx(0.12)
    np.testing.assert_allclose(u.corner_sd_mm[2], [0.015, 0.6, 0.005, 0.005])


def test_per_body_tracking_sd_propagates_like_moving_each_body_by_it():
    """Bodies tracked with different correlations: the SDs measure.segmental_motion gives from
    placement_uncertainty equal the spread of re-measuring when each body is shifted and rotated
    by its own SD and each corner moved by its residual (Monte Carlo, 40 000 draws)."""
    rng = np.random.default_rng(11)
    flex, ext = random_spines(rng, 1, spacing=SPACING)
    quality = np.array([0.97, 0.9, 0.75, 0.95, 0.6, 0.85])
    depth_mm = np.linalg.norm(ext[0][:, 0] - ext[0][:, 1], axis=-1) * SPACING[0]
    sd = np.repeat(tracking_sd(quality, depth_mm, TrackingSDModel(0.05, 0.5))[:, None], 4, axis=1)
    assert sd[4, 0] > 3 * sd[0, 0]  # the poor match really carries a larger SD
    model = ErrorModel(corner_factor=0.5, shift_factor=0.8, rotation_deg_per_mm=3.0)
    models = {**ERROR_MODEL, PlacementMethod.TRACKED: model}
    u = placement_uncertainty(np.full((6, 4), "tracked"), sd, models)
    r = segmental_motion(flex[0], ext[0], SPACING, **u.motion_kwargs("flexion"), **u.motion_kwargs("extension"))
    body = np.stack([0.8 * sd[:, 0], 3.0 * sd[:, 0]], axis=-1)
    mc = _rigid_monte_carlo(flex[0], ext[0], 0.5 * sd, body, body, 40_000, rng)
    np.testing.assert_allclose(r.translation_sd_mm, mc.translation_mm.std(axis=0), rtol=0.03)
    np.testing.assert_allclose(r.translation_sd_pct, mc.translation_pct.std(axis=0), rtol=0.03)
    np.testing.assert_allclose(r.angulation_sd_deg, mc.angulation_deg.std(axis=0), rtol=0.03)
    # one SD for every body (the old floor) would misstate the segments next to the poor match
    flat = placement_uncertainty(np.full((6, 4), "tracked"), np.full((6, 4), sd.mean()), models)
    f = segmental_motion(flex[0], ext[0], SPACING, **flat.motion_kwargs("flexion"), **flat.motion_kwargs("extension"))
    assert not np.allclose(f.translation_sd_mm, mc.translation_mm.std(axis=0), rtol=0.1)
