"""A small synthetic lateral lumbar film with known corners, for the automatic-landmark tests.

Independent of the measurement code: each body is a textured block with a
bright cortical rim, rendered by OpenCV at a known rigid pose, so the true
corners in every film are the pose applied to the block's own corners.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class SyntheticFilm:
    image: np.ndarray  # (H, W) float32
    corners: np.ndarray  # (6, 4, 2): L1..L5 with 4 corners, S1 with AS, PS, NaN, NaN
    poses: np.ndarray  # (6, 2, 3): body frame -> film


def _body_texture(rng: np.random.Generator, depth: int, height: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Texture and alpha of one body in its own frame (x anterior, y inferior)."""
    size = (height + 2 * pad, depth + 2 * pad)
    tex = cv2.GaussianBlur(rng.normal(0, 1, size).astype(np.float32), (0, 0), 2.0) * 0.25
    tex += 0.55
    alpha = np.zeros(size, np.float32)
    alpha[pad : pad + height, pad : pad + depth] = 1
    rim = np.zeros(size, np.float32)
    rim[pad : pad + height, pad : pad + depth] = 1
    inner = cv2.erode(rim, np.ones((7, 7), np.uint8))
    tex = np.where((rim > 0) & (inner == 0), 1.0, tex)
    # a pedicle stub on the posterior side (x < 0 in the body frame)
    cy = pad + height // 2
    alpha[cy - height // 5 : cy + height // 5, : pad + 2] = 0.8
    tex[cy - height // 5 : cy + height // 5, : pad + 2] = 0.7
    return tex, alpha


def _pose(angle_deg: float, centre: tuple[float, float], scale: float, mirror: bool, local_centre: np.ndarray) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    lin = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    if mirror:
        lin = lin @ np.diag([-1.0, 1.0])
    return np.hstack([lin, (np.asarray(centre) - lin @ local_centre)[:, None]])


def make_pair(
    seed: int,
    *,
    segment_motion_deg: tuple[float, ...] = (4.0, 5.0, 6.0, 5.0, 4.0),
    film_rotation_deg: float = 0.0,
    scale: float = 1.0,
    noise: float = 0.03,
    exposure: tuple[float, float, float] = (1.6, 0.2, 0.8),
    facing_left: bool = True,
    shape: tuple[int, int] = (560, 420),
    depth: int = 64,
) -> tuple[SyntheticFilm, SyntheticFilm]:
    """A flexion-like and an extension-like film of one synthetic column.

    The second film's bodies turn by ``segment_motion_deg`` relative to each
    other (cumulative, counted from S1), the whole column is rotated by
    ``film_rotation_deg`` and scaled by ``scale`` about the film centre, and the
    intensities are mapped by ``gain * I ** gamma + offset`` (``exposure``).
    """
    rng = np.random.default_rng(seed)
    height, pad, disc = int(depth * 0.72), 14, int(depth * 0.25)
    textures = [_body_texture(rng, depth, height, pad) for _ in range(6)]
    local_corners = np.array(
        [[pad + depth, pad], [pad, pad], [pad, pad + height], [pad + depth, pad + height]], float
    ) - 0.5  # pixel edges of the block, centre-of-pixel convention
    local_centre = local_corners.mean(axis=0)
    background = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), 25) * 2 + 0.25
    _yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    background += 0.1 * xx / shape[1]

    base_angles = np.array([-14.0, -7.0, -1.0, 5.0, 12.0, 28.0])  # lordosis L1..S1
    pitch = height + disc
    h, w = shape
    centres = []
    y = h / 2 - 2.6 * pitch
    x = w / 2
    for k in range(6):
        centres.append((x + (8 * np.sin(np.deg2rad(base_angles[k]))) * (1 if facing_left else -1) * 4, y))
        y += pitch
    film_centre = np.array([w / 2, h / 2])

    def render(angles: np.ndarray, rotation: float, s: float, gain, gamma, offset, pose_shift):
        img = background.copy()
        poses = np.zeros((6, 2, 3))
        corners = np.full((6, 4, 2), np.nan)
        # global similarity about the film centre
        g = _pose(rotation, film_centre, s, False, film_centre)
        for k in range(6):
            sign = -1 if facing_left else 1
            body = _pose(sign * angles[k], centres[k] + pose_shift[k], 1.0, facing_left, local_centre)
            full = np.vstack([g, [0, 0, 1]]) @ np.vstack([body, [0, 0, 1]])
            pose = full[:2]
            tex, alpha = textures[k]
            warped = cv2.warpAffine(tex, pose, (w, h), flags=cv2.INTER_LINEAR)
            a = cv2.warpAffine(alpha, pose, (w, h), flags=cv2.INTER_LINEAR)
            img = img * (1 - a) + warped * a
            poses[k] = pose
            cs = local_corners @ pose[:, :2].T + pose[:, 2]
            corners[k] = cs if k < 5 else np.vstack([cs[:2], np.full((2, 2), np.nan)])
        img = np.clip(img, 0, None) ** gamma * gain + offset
        img = img + rng.normal(0, noise * gain, img.shape)
        return SyntheticFilm(img.astype(np.float32), corners, poses)

    zero = np.zeros((6, 2))
    first = render(base_angles, 0.0, 1.0, 1.0, 1.0, 0.0, zero)
    # cumulative segment motion from S1 upwards, centres moved to keep discs plausible
    motion = np.concatenate([np.cumsum(np.asarray(segment_motion_deg)[::-1])[::-1], [0.0]])
    angles2 = base_angles + motion
    shift = np.zeros((6, 2))
    for k in range(4, -1, -1):  # a body turning about the disc below slides a little
        shift[k] = shift[k + 1] + np.array([np.sin(np.deg2rad(motion[k])) * pitch * 0.5, 0])
    gain, gamma, offset = exposure
    second = render(angles2, film_rotation_deg, scale, gain, gamma, offset, shift)
    return first, second
