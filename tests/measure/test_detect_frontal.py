"""Detection refuses frontal (AP/PA) films and half-size chains (issue 12 §2, bad input).

AP seeds 91000+ and lateral seeds 90020+ are used by no benchmark.
"""

from __future__ import annotations

import numpy as np
import pytest

import measure._detect as detect_module
from app.phantom import Realism, make_study
from app.phantom._ap import make_ap_film
from measure import detect_vertebrae
from measure._detect import _mirror_symmetry, _period_ratio


@pytest.mark.parametrize(("seed", "tilt", "spacing"), [(91000, -8.0, 0.28), (91002, 6.0, 0.35), (91004, 0.0, 0.2)])
def test_ap_film_is_refused_as_frontal_with_what_was_seen(seed, tilt, spacing):
    image = make_ap_film(seed, tilt_deg=tilt, spacing_mm=spacing)
    result = detect_vertebrae(image)
    assert not result
    assert result.reason.startswith("not found: a frontal (AP or PA) film"), result.reason
    assert "symmetry" in result.reason


def test_lateral_films_are_not_taken_for_frontal():
    for seed in (90020, 90021):
        study = make_study(seed, realistic=True, scale=0.5)
        for film in study.films:
            result = detect_vertebrae(film.pixels.astype(np.float32))
            assert result or "frontal" not in result.reason, result.reason


def _blocks(centres: np.ndarray, depth: float) -> np.ndarray:
    """Axis-aligned blocks (top-left, top-right, bottom-right, bottom-left) around centres, (B, 4, 2)."""
    hx, hy = depth / 2, 0.375 * depth
    offsets = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    return centres[:, None, :] + offsets[None]


def test_mirror_symmetry_of_a_mirrored_scene_and_of_a_one_sided_one():
    rng = np.random.default_rng(3)
    depth = 20.0
    left = rng.normal(size=(200, 60)).astype(np.float32)
    body = rng.normal(size=(200, 20)).astype(np.float32)
    mirrored = np.hstack([left, body, left[:, ::-1]])  # axis at column 69.5
    centres = np.column_stack([np.full(5, 69.5), np.linspace(40, 160, 5)])
    assert _mirror_symmetry(mirrored, _blocks(centres, depth), depth) > 0.95
    # the same left side, an unrelated right side: no better than chance
    other = np.hstack([left, body, rng.normal(size=(200, 60)).astype(np.float32)])
    assert _mirror_symmetry(other, _blocks(centres, depth), depth) < 0.3
    # the axis found within half a depth of the blocks' centres
    assert _mirror_symmetry(mirrored, _blocks(centres + np.array([6.0, 0.0]), depth), depth) > 0.95


def test_period_ratio_tells_half_size_blocks_from_whole_bodies():
    # a column along y: bright bodies 15 px, dark discs 5 px, period 20 px
    y = np.arange(400)
    column = np.where((y % 20) < 15, 1.0, -1.0).astype(np.float32)
    image = np.repeat(column[:, None], 60, axis=1)
    whole = np.column_stack([np.full(15, 30.0), 20.0 * np.arange(15) + 40.0])
    half = np.column_stack([np.full(30, 30.0), 10.0 * np.arange(30) + 40.0])
    # one pitch is one period: shifting by one or two pitches matches equally well
    assert abs(_period_ratio(image, np.column_stack([whole, np.zeros((15, 2))]), 20.0)) < 0.1
    # half a period: autocorrelation -5/12 at one pitch (hand-computed for a 15/5 square wave), 1 at two
    ratio = _period_ratio(image, np.column_stack([half, np.zeros((30, 2))]), 10.0)
    assert ratio == pytest.approx(1.0 + 5.0 / 12.0, abs=0.1)


def test_cropped_flexion_film_is_not_read_as_a_chain_of_half_bodies():
    # tuning film 70006 flexion (L1 cut by the film's top, large bodies) used to give a
    # chain of two blocks per vertebra and a refusal; the body size must be the true one
    detect_module._TRACE = []
    try:
        realism = Realism(crop_top=True, export="jpeg", export_spacing_mm=0.3, narrow_discs=("L5-S1",))
        study = make_study(90022, scale=0.6, realism=realism)
        film = study.flexion
        truth = film.landmark_array()
        true_depth = float(np.nanmedian(np.linalg.norm(truth[:, 0] - truth[:, 1], axis=1)))
        detect_vertebrae(film.pixels.astype(np.float32))
        assert detect_module._TRACE, "no column found"
        assert 0.8 * true_depth < detect_module._TRACE[-1]["depth"] < 1.25 * true_depth
    finally:
        detect_module._TRACE = None
