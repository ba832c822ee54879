"""The phantom's ground truth: geometry by construction, anatomy ranges, rendering agrees.

The truth landmarks are checked against the motion the generator was asked
for with an independent, scalar implementation of ``docs/measurement.md`` §2-3
written here, and against :func:`measure.segmental_motion`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.phantom import MEASURED_LEVELS, make_study
from app.phantom._anatomy import SEGMENTS, make_anatomy, make_motion
from tests.app._pixels import assert_same_render

LUMBAR_SEGMENTS = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")


def _per_view(marks: dict, spacing: list[float], upper: str, lower: str) -> tuple[float, float, float]:
    """theta (deg), t (mm), d_L (mm) for one film, following measurement.md §2 literally."""
    row, col = spacing

    def mm(level: str, corner: str) -> np.ndarray:
        x, y = marks[level][corner]
        return np.array([x * col, y * row])

    ps_l, as_l = mm(lower, "PS"), mm(lower, "AS")
    pi_u, ai_u = mm(upper, "PI"), mm(upper, "AI")
    d_l = float(np.linalg.norm(as_l - ps_l))
    e1 = (as_l - ps_l) / d_l
    e2 = np.array([-e1[1], e1[0]])
    centre_u = np.mean([mm(upper, c) for c in ("AS", "PS", "PI", "AI")], axis=0)
    if (centre_u - ps_l) @ e2 < 0:  # e2 points towards U
        e2 = -e2
    i = ai_u - pi_u
    theta = math.degrees(math.atan2(i @ e2, i @ e1))
    t = float((pi_u - ps_l) @ e1)
    return theta, t, d_l


def _motion_from_truth(truth: dict, upper: str, lower: str) -> dict[str, float]:
    out = {}
    for view in ("flexion", "extension"):
        film = truth[view]
        marks = {**film["landmarks"], **film["extra_landmarks"]}
        out[view] = _per_view(marks, film["pixel_spacing_mm"], upper, lower)
    (th_f, t_f, d_f), (th_e, t_e, d_e) = out["flexion"], out["extension"]
    dt = t_f - t_e
    return {
        "theta_flexion_deg": th_f,
        "theta_extension_deg": th_e,
        "translation_flexion_mm": t_f,
        "translation_extension_mm": t_e,
        "dtheta_deg": th_e - th_f,
        "dt_mm": dt,
        "dt_pct": 100.0 * dt / ((d_f + d_e) / 2),
        "depth_flexion_mm": d_f,
        "depth_extension_mm": d_e,
    }


OPTION_SETS = [
    {},
    {"facing": "right"},
    {"rotation_deg": 90.0},
    {"rotation_deg": -17.0, "facing": "right"},
    {"magnification": 1.35, "magnification_change": 1.12},
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: ",".join(o) or "default")
def test_truth_landmarks_give_the_constructed_motion(options):
    study = make_study(11, scale=0.1, unstable=("L4-L5",), **options)
    truth = study.truth()
    for segment, expected in truth["motion"].items():
        upper, lower = segment.split("-")
        got = _motion_from_truth(truth, upper, lower)
        for key in ("theta_flexion_deg", "theta_extension_deg", "translation_flexion_mm",
                    "translation_extension_mm", "dtheta_deg", "dt_mm", "dt_pct"):  # fmt: skip
            assert got[key] == pytest.approx(expected[key], abs=1e-6), (segment, key)
        # the same body has the same depth in mm in both films, whatever the magnification
        assert got["depth_flexion_mm"] == pytest.approx(expected["endplate_depth_mm"], abs=1e-6)
        assert got["depth_extension_mm"] == pytest.approx(expected["endplate_depth_mm"], abs=1e-6)


def test_measure_segmental_motion_recovers_the_truth():
    measure = pytest.importorskip("measure")
    study = make_study(5, scale=0.1, unstable=("L4-L5",), magnification_change=1.08, facing="right",
                       rotation_deg=12.0)  # fmt: skip
    result = measure.segmental_motion(
        study.flexion.landmark_array(),
        study.extension.landmark_array(),
        flexion_spacing_mm=study.flexion.pixel_spacing_mm,
        extension_spacing_mm=study.extension.pixel_spacing_mm,
        levels=MEASURED_LEVELS,
    )
    assert result.segments == LUMBAR_SEGMENTS
    expected = [study.motion[s] for s in LUMBAR_SEGMENTS]
    np.testing.assert_allclose(result.angulation_deg, [m["dtheta_deg"] for m in expected], atol=1e-6)
    np.testing.assert_allclose(result.translation_mm, [m["dt_mm"] for m in expected], atol=1e-6)
    np.testing.assert_allclose(result.translation_pct, [m["dt_pct"] for m in expected], atol=1e-6)
    np.testing.assert_allclose(
        result.flexion_angle_deg, [m["theta_flexion_deg"] for m in expected], atol=1e-6
    )
    # L4-L5 is the only unstable segment under the default criteria
    assert list(result.unstable) == [False, False, False, True, False]


@pytest.mark.parametrize("seed", range(6))
def test_anatomy_within_the_published_ranges(seed):
    anatomy = make_anatomy(np.random.default_rng([seed, 1]))
    lumbar = anatomy.corners[2:]  # L1..L5, local frames, mm
    sup_depth = np.linalg.norm(lumbar[:, 0] - lumbar[:, 1], axis=1)
    inf_depth = np.linalg.norm(lumbar[:, 3] - lumbar[:, 2], axis=1)
    assert np.all((sup_depth >= 33) & (sup_depth <= 38)), sup_depth
    assert np.all((inf_depth >= 33) & (inf_depth <= 38)), inf_depth
    heights = np.stack([lumbar[:, 1, 1], lumbar[:, 0, 1] - lumbar[:, 3, 1]])
    assert np.all((heights >= 25) & (heights <= 28)), heights
    # neutral discs L1-L2 … L5-S1: posterior 5-8 mm, anterior 7-14 mm, increasing to L4-L5
    theta, posterior, _ = anatomy.disc_neutral[2:].T
    upper_inf_depth = np.linalg.norm(anatomy.corners[2:, 3] - anatomy.corners[2:, 2], axis=1)
    anterior = posterior + upper_inf_depth * np.sin(np.radians(theta))
    assert np.all((posterior >= 5) & (posterior <= 8)), posterior
    assert np.all((anterior >= 7) & (anterior <= 14)), anterior
    assert np.all(np.diff(anterior[:4]) > 0), anterior
    # lordosis: every lumbar disc opens anteriorly; L1 to S1 adds up to 35-60 degrees
    assert np.all(theta > 0)
    wedge = np.degrees(np.arctan2(anatomy.corners[:, 0, 1] - anatomy.corners[:, 1, 1],
                                  anatomy.corners[:, 0, 0] - anatomy.corners[:, 1, 0]))  # fmt: skip
    assert 35 < theta.sum() + wedge[2:].sum() < 60
    # no two bodies alike
    assert len({round(float(d), 3) for d in sup_depth}) == 5


@pytest.mark.parametrize("seed", range(4))
def test_normal_segments_stay_normal_and_unstable_ones_exceed_both_thresholds(seed):
    anatomy = make_anatomy(np.random.default_rng([seed, 1]))
    motion = make_motion(anatomy, np.random.default_rng([seed, 2]), unstable=("L4-L5",))
    d_theta = motion.theta_deg[1] - motion.theta_deg[0]
    d_t = motion.translation_mm[0] - motion.translation_mm[1]
    k = SEGMENTS.index("L4-L5")
    assert d_theta[k] > 10 and d_t[k] > 4
    normal = [SEGMENTS.index(s) for s in ("L1-L2", "L2-L3", "L3-L4", "L5-S1")]
    assert np.all((d_theta[normal] >= 5) & (d_theta[normal] < 10)), d_theta
    assert np.all((d_t[normal] > 0.5) & (d_t[normal] < 4)), d_t


def test_unknown_option_values_are_refused_with_the_parameter_named():
    with pytest.raises(ValueError, match="unstable: unknown segment 'L7-L8'"):
        make_study(1, scale=0.1, unstable=("L7-L8",))
    with pytest.raises(ValueError, match="compression: must be one of"):
        make_study(1, scale=0.1, compression="jpeg-lossy")
    with pytest.raises(ValueError, match="facing"):
        make_study(1, scale=0.1, facing="up")


def _polygon_mean(image: np.ndarray, polygon: np.ndarray) -> float:
    import cv2

    mask = np.zeros(image.shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 1, shift=4)
    return float(image[mask > 0].mean())


def _shrink(points: np.ndarray, factor: float) -> np.ndarray:
    centre = points.mean(axis=0)
    return centre + factor * (points - centre)


@pytest.fixture(scope="module")
def rendered():
    return {
        "left": make_study(21, scale=0.3),
        "right-rotated": make_study(21, scale=0.3, facing="right", rotation_deg=25.0),
    }


@pytest.mark.parametrize("name", ["left", "right-rotated"])
def test_bodies_render_where_the_truth_says(rendered, name):
    """Bone is brighter than disc, and brighter just inside each true corner than just outside."""
    for film in rendered[name].films:
        image = film.pixels.astype(float)
        corners = film.landmark_array()  # L1..S1
        px_per_mm = 1.0 / film.pixel_spacing_mm[0]
        body = [_polygon_mean(image, _shrink(corners[v], 0.6)) for v in range(5)]
        disc = []
        for v in range(5):
            upper, lower = corners[v], corners[v + 1]
            quad = np.array([upper[2], upper[3], lower[0], lower[1]])  # PI_U, AI_U, AS_L, PS_L
            disc.append(_polygon_mean(image, _shrink(quad, 0.6)))
        assert min(body) > max(disc) + 0.03 * image.max(), (body, disc)
        inside, outside = [], []
        for v in range(5):
            centre = corners[v].mean(axis=0)
            for c in range(4):
                direction = (centre - corners[v, c]) / np.linalg.norm(centre - corners[v, c])
                for sign, bucket in ((1, inside), (-1, outside)):
                    x, y = corners[v, c] + sign * 2.0 * px_per_mm * direction
                    bucket.append(image[round(y), round(x)])
        assert np.mean(inside) > np.mean(outside) + 0.05 * image.max()


def test_mirroring_and_rotation_move_the_landmarks_as_the_image():
    left = make_study(21, scale=0.1)
    right = make_study(21, scale=0.1, facing="right")
    cols = left.flexion.pixels.shape[1]
    a, b = left.flexion.corners_px, right.flexion.corners_px
    np.testing.assert_allclose(b[..., 0], (cols - 1) - a[..., 0], atol=1e-9)
    np.testing.assert_allclose(b[..., 1], a[..., 1], atol=1e-9)
    turned = make_study(21, scale=0.1, rotation_deg=90.0)
    rows = left.flexion.pixels.shape[0]
    centre = np.array([(cols - 1) / 2, (rows - 1) / 2])
    rel = a - centre
    # counter-clockwise on screen (y down): (x, y) -> (y, -x) about the centre
    expected = centre + np.stack([rel[..., 1], -rel[..., 0]], axis=-1)
    np.testing.assert_allclose(turned.flexion.corners_px, expected, atol=1e-9)


def test_magnification_change_scales_the_films_not_the_patient():
    study = make_study(8, scale=0.1, magnification=1.2, magnification_change=1.1)
    flex, ext = study.films
    assert flex.pixel_spacing_mm[0] == pytest.approx(flex.detector_spacing_mm / 1.2)
    assert ext.pixel_spacing_mm[0] == pytest.approx(ext.detector_spacing_mm / 1.32)
    depth_px = [np.linalg.norm(f.landmark_array()[:, 0] - f.landmark_array()[:, 1], axis=-1) for f in study.films]
    np.testing.assert_allclose(depth_px[1] / depth_px[0], 1.1, rtol=1e-9)


def test_same_seed_same_film_other_seed_other_film():
    a = make_study(3, scale=0.1)
    b = make_study(3, scale=0.1)
    c = make_study(4, scale=0.1)
    for fa, fb, fc in zip(a.films, b.films, c.films, strict=True):
        assert_same_render(fa.pixels, fb.pixels, label=fa.view)
        assert not np.array_equal(fa.pixels, fc.pixels)
    assert a.truth() == b.truth()
    assert a.truth()["motion"] != c.truth()["motion"]


def test_photometric_and_bit_depth():
    mono2 = make_study(6, scale=0.1)
    mono1 = make_study(6, scale=0.1, photometric="MONOCHROME1")
    assert_same_render(mono1.flexion.pixels, 4095 - mono2.flexion.pixels.astype(int))
    deep = make_study(6, scale=0.1, bits_stored=16)
    assert deep.flexion.pixels.max() > 60000 and deep.flexion.pixels.dtype == np.uint16
    # same anatomy and pose, only the grey scale differs: 16-bit / 16 ~ 12-bit
    diff = deep.flexion.pixels.astype(float) / 16.0 - mono2.flexion.pixels
    assert np.abs(diff).mean() < 1.0
