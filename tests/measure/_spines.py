"""Random but anatomically plausible landmark sets for the motion tests (numpy only)."""

from __future__ import annotations

import numpy as np

# a body in its own frame, mm: x anterior, y superior; corners AS, PS, PI, AI
_DEPTH, _HEIGHT, _PITCH = 35.0, 25.0, 37.0


def random_spines(rng: np.random.Generator, n: int, n_bodies: int = 6, spacing=(0.15, 0.15)):
    """Flexion and extension corners in pixels, shape (n, V, 4, 2); the last body has NaN PI/AI.

    Each film: bodies stacked with random lordosis, random film rotation and
    offset, random facing (mirror); extension moves each body by a few mm and
    degrees relative to flexion.
    """
    local = np.array([[_DEPTH, 0], [0, 0], [0, -_HEIGHT], [_DEPTH, -_HEIGHT]]) - [_DEPTH / 2, -_HEIGHT / 2]
    local = local + rng.normal(0, 1.0, (n, n_bodies, 4, 2))  # shape variation

    def film(extra_angle, extra_shift):
        tilt = np.deg2rad(np.cumsum(rng.normal(-6, 3, (n, n_bodies)), axis=1) + extra_angle)
        centres = np.zeros((n, n_bodies, 2))
        centres[..., 1] = -_PITCH * np.arange(n_bodies)
        centres[..., 0] = np.cumsum(rng.normal(0, 2, (n, n_bodies)), axis=1)
        centres += extra_shift
        c, s = np.cos(tilt), np.sin(tilt)
        rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (n, V, 2, 2)
        pts = np.einsum("nvij,nvkj->nvki", rot, local) + centres[:, :, None, :]
        # whole film: rotation, mirror, offset; then y down, pixels
        a = np.deg2rad(rng.uniform(-30, 30, n))
        film_rot = np.stack([np.stack([np.cos(a), -np.sin(a)], -1), np.stack([np.sin(a), np.cos(a)], -1)], -2)
        pts = np.einsum("nij,nvkj->nvki", film_rot, pts)
        mirror = rng.random(n) < 0.5
        pts[mirror, ..., 0] *= -1
        pts[..., 1] *= -1
        pts += rng.uniform(200, 400, (n, 1, 1, 2))
        px = pts / np.array([spacing[1], spacing[0]])
        px[:, -1, 2:] = np.nan
        return px

    flex = film(0.0, 0.0)
    ext = film(rng.normal(0, 4, (n, n_bodies)), rng.normal(0, 1.5, (n, n_bodies, 2)))
    return flex, ext
