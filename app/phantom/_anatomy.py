"""Anatomy and pose of the phantom spine, in millimetres in the patient.

Every vertebral body has its own *local frame*: ``x`` anterior, ``y`` superior,
origin at its posterior-inferior corner ``PI``, inferior endplate chord along
``+x`` (so ``AI = (d_inf, 0)``).  The sacrum's local frame has its origin at the
posterior-superior corner of S1 (``PS``) with the S1 superior endplate chord
along ``+x``.

Poses are built from the sacrum upwards so that, by construction, each segment's
segmental angle and sagittal translation (``docs/measurement.md`` §2) equal the
values asked for: the upper body U is placed in the frame of the lower body L's
superior endplate (``e1`` from ``PS_L`` to ``AS_L``, ``e2`` its normal towards
U) with ``PI_U = PS_L + t e1 + h e2`` and U's inferior endplate chord rotated by
``theta`` from ``e1``.  The truth is therefore analytic and independent of the
measurement code.

A *corner* is the point where the chord of an endplate (the line through its
peripheral rim) meets the outer cortical surface of the anterior or posterior
wall, in the mid-sagittal plane: the vertex of the body outline the renderer
draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BODY_LEVELS",
    "SEGMENTS",
    "Anatomy",
    "Motion",
    "body_poses",
    "make_anatomy",
    "make_motion",
]

# Bodies drawn as vertebrae (with posterior elements); S1 is part of the sacrum.
BODY_LEVELS: tuple[str, ...] = ("T11", "T12", "L1", "L2", "L3", "L4", "L5")
# Segments upper-lower, top to bottom; the last lower body is S1.
SEGMENTS: tuple[str, ...] = (
    "T11-T12", "T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1",
)  # fmt: skip

# Nominal body dimensions, mm: posterior height, anterior height, inferior
# endplate depth, superior endplate depth, transverse width.  Lumbar values
# within the ranges of the issue (depth 33-38, height 25-28); L5 wedged
# posteriorly (taller in front), thoracolumbar bodies slightly wedged anteriorly.
_BODY_NOMINAL = np.array(
    [
        [22.0, 20.8, 29.5, 29.0, 38.0],  # T11
        [24.0, 22.8, 31.5, 31.0, 40.0],  # T12
        [25.8, 25.2, 34.0, 33.6, 43.0],  # L1
        [26.6, 26.4, 35.0, 34.6, 45.0],  # L2
        [27.0, 27.2, 36.0, 35.6, 47.0],  # L3
        [26.6, 27.4, 36.6, 36.4, 49.0],  # L4
        [25.4, 27.6, 36.4, 37.0, 51.0],  # L5
    ]
)
_S1_DEPTH_NOMINAL = 36.8

# Neutral disc per segment: segmental angle (deg, lordotic positive), posterior
# disc height (mm), sagittal translation (mm).
_DISC_NOMINAL = np.array(
    [
        [-1.5, 3.6, 0.3],  # T11-T12
        [2.5, 4.6, 0.3],  # T12-L1
        [5.0, 5.4, 0.4],  # L1-L2
        [7.0, 5.9, 0.4],  # L2-L3
        [8.5, 6.4, 0.5],  # L3-L4
        [10.0, 7.0, 0.5],  # L4-L5
        [12.0, 6.0, 0.6],  # L5-S1
    ]
)

# Neutral anterior disc height bands (mm) per segment, T11-T12 … L5-S1.
_ANTERIOR_DISC = np.array(
    [[2.8, 3.4], [5.6, 6.4], [7.9, 9.0], [9.6, 10.7], [11.0, 12.1], [12.4, 13.6], [11.8, 13.4]]
)

# Normal motion between flexion and extension: angulation (deg), translation (mm).
# Kept under the default thresholds (10 deg, 4 mm) and inside the published
# normal ranges (Hayes 1989: 7-14 deg, 2-3 mm; Abbott 2006: 6.8-10.7 deg).
_NORMAL_MOTION = np.array(
    [
        [1.5, 0.3],  # T11-T12
        [4.0, 0.8],  # T12-L1
        [7.5, 1.6],  # L1-L2
        [8.5, 2.0],  # L2-L3
        [8.8, 2.2],  # L3-L4
        [8.2, 2.2],  # L4-L5
        [6.8, 1.6],  # L5-S1
    ]
)


def _rotation(angle_rad: np.ndarray | float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s], [s, c]])


@dataclass(frozen=True)
class Anatomy:
    """Shape of one phantom patient (identical in both films).

    Attributes
    ----------
    corners : ndarray of shape (7, 4, 2)
        Corners ``AS, PS, PI, AI`` of T11…L5 in each body's local frame, mm.
    width_mm : ndarray of shape (7,)
        Transverse width of each body, mm.
    endplate_concavity_mm : ndarray of shape (7, 2)
        Depth of the (superior, inferior) endplate concavity, mm.
    waist_mm : ndarray of shape (7, 2)
        Inward concavity of the (anterior, posterior) wall at mid height, mm.
    s1_depth_mm : float
        Depth of the S1 superior endplate, mm.
    disc_neutral : ndarray of shape (7, 3)
        Per segment (``SEGMENTS``): neutral angle (deg), posterior disc height
        (mm), translation (mm).
    variation : ndarray of shape (7, 8)
        Per body random numbers in [-1, 1] that vary the posterior elements.
    """

    corners: np.ndarray
    width_mm: np.ndarray
    endplate_concavity_mm: np.ndarray
    waist_mm: np.ndarray
    s1_depth_mm: float
    disc_neutral: np.ndarray
    variation: np.ndarray

    def lower_superior_depth(self) -> np.ndarray:
        """Superior endplate depth of each segment's lower body (T12…S1), mm, shape (7,)."""
        sup = np.linalg.norm(self.corners[:, 0] - self.corners[:, 1], axis=-1)
        return np.append(sup[1:], self.s1_depth_mm)


@dataclass(frozen=True)
class Motion:
    """Segmental angle and translation of every segment in each film.

    Attributes
    ----------
    theta_deg : ndarray of shape (2, 7)
        Segmental angle per film (flexion, extension) and segment, degrees.
    translation_mm : ndarray of shape (2, 7)
        Sagittal translation per film and segment, mm in the patient.
    disc_height_mm : ndarray of shape (2, 7)
        Distance of ``PI_U`` from L's superior endplate line, mm.
    tilt_deg : ndarray of shape (2,)
        Forward tilt of the column (S1 to L1) from vertical in each film, degrees.
    """

    theta_deg: np.ndarray
    translation_mm: np.ndarray
    disc_height_mm: np.ndarray
    tilt_deg: np.ndarray


def make_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one patient's anatomy around the nominal dimensions."""
    n = len(BODY_LEVELS)
    patient_scale = rng.uniform(0.97, 1.03)
    dims = _BODY_NOMINAL * patient_scale * rng.uniform(0.98, 1.02, size=_BODY_NOMINAL.shape)
    lumbar = slice(2, n)  # L1-L5: keep inside the published ranges of the issue
    dims[lumbar, :2] = np.clip(dims[lumbar, :2], 25.1, 27.9)  # heights
    dims[lumbar, 2:4] = np.clip(dims[lumbar, 2:4], 33.2, 37.8)  # endplate depths
    hp, ha, d_inf, d_sup, width = dims.T
    x_ps = rng.uniform(-0.6, 0.8, size=n)  # posterior wall lean
    corners = np.empty((n, 4, 2))
    corners[:, 2] = 0.0  # PI
    corners[:, 3, 0], corners[:, 3, 1] = d_inf, 0.0  # AI
    corners[:, 1, 0], corners[:, 1, 1] = x_ps, hp  # PS
    corners[:, 0, 0] = x_ps + np.sqrt(d_sup**2 - (ha - hp) ** 2)  # AS
    corners[:, 0, 1] = ha
    concavity = rng.uniform(1.2, 2.4, size=(n, 2))
    waist = np.column_stack([rng.uniform(1.0, 2.4, n), rng.uniform(0.4, 1.1, n)])
    disc = _DISC_NOMINAL.copy()
    disc[:, 1] *= rng.uniform(0.93, 1.07, size=n)
    disc[:, 2] += rng.uniform(-0.4, 0.4, size=n)
    # Anterior disc height: drawn in non-overlapping bands so that it increases
    # down to L4-L5 (7-14 mm); the neutral angle follows from it and the upper
    # body's inferior depth (anterior = posterior + d_inf sin(theta)).
    anterior = rng.uniform(_ANTERIOR_DISC[:, 0], _ANTERIOR_DISC[:, 1])
    disc[:, 0] = np.degrees(np.arcsin((anterior - disc[:, 1]) / d_inf))
    return Anatomy(
        corners=corners,
        width_mm=width,
        endplate_concavity_mm=concavity,
        waist_mm=waist,
        s1_depth_mm=float(_S1_DEPTH_NOMINAL * patient_scale * rng.uniform(0.98, 1.02)),
        disc_neutral=disc,
        variation=rng.uniform(-1.0, 1.0, size=(n, 8)),
    )


def make_motion(
    anatomy: Anatomy,
    rng: np.random.Generator,
    *,
    unstable: tuple[str, ...] = (),
) -> Motion:
    """Draw the flexion and extension pose of every segment.

    Normal segments move within the published normal ranges; segments named in
    ``unstable`` get 5.0-6.5 mm of translation and 12.5-16 deg of angulation.
    """
    n = len(SEGMENTS)
    d_theta = _NORMAL_MOTION[:, 0] * rng.uniform(0.8, 1.1, size=n)
    d_t = _NORMAL_MOTION[:, 1] * rng.uniform(0.75, 1.25, size=n)
    for name in unstable:
        if name not in SEGMENTS:
            raise ValueError(f"unstable: unknown segment {name!r}; expected one of {SEGMENTS}")
        i = SEGMENTS.index(name)
        d_theta[i] = rng.uniform(12.5, 16.0)
        d_t[i] = rng.uniform(5.0, 6.5)
    flex_share = rng.uniform(0.5, 0.65, size=n)  # flexion moves more than extension
    theta0, h0, t0 = anatomy.disc_neutral.T
    theta = np.stack([theta0 - flex_share * d_theta, theta0 + (1 - flex_share) * d_theta])
    t = np.stack([t0 + 0.5 * d_t, t0 - 0.5 * d_t])
    # The disc rotates about a point 30 % of the endplate depth from its back:
    # the posterior height closes as the angle opens.
    depth = anatomy.lower_superior_depth()
    x_c = 0.3 * depth
    h_c = h0 + x_c * np.tan(np.radians(theta0))
    height = np.maximum(h_c - x_c * np.tan(np.radians(theta)), 2.0)
    tilt = np.array([rng.uniform(14.0, 24.0), rng.uniform(-9.0, -3.0)])
    return Motion(theta_deg=theta, translation_mm=t, disc_height_mm=height, tilt_deg=tilt)


def body_poses(anatomy: Anatomy, motion: Motion, film: int) -> np.ndarray:
    """Rigid poses of T11…L5 and the sacrum in the sacrum's frame for one film.

    Parameters
    ----------
    anatomy : Anatomy
    motion : Motion
    film : int
        0 for flexion, 1 for extension.

    Returns
    -------
    poses : ndarray of shape (8, 2, 3)
        Per body (T11…L5, then the sacrum) the affine ``[R | p]`` taking the
        body's local mm to the sacrum frame mm (identity for the sacrum).

    Notes
    -----
    For segment U over L: with ``e1`` the unit vector from ``PS_L`` to ``AS_L``
    and ``e2`` its normal towards U, ``PI_U = PS_L + t e1 + h e2`` and U's local
    ``+x`` axis is ``e1`` rotated by ``theta``.  Hence ``theta`` and ``t`` of
    ``docs/measurement.md`` §2 hold exactly.
    """
    n = len(BODY_LEVELS)
    poses = np.zeros((n + 1, 2, 3))
    poses[n, :, :2] = np.eye(2)
    # Lower endplate (PS_L, AS_L) of the current segment, in the sacrum frame.
    ps_l = np.zeros(2)
    as_l = np.array([anatomy.s1_depth_mm, 0.0])
    for k in range(n - 1, -1, -1):  # L5-S1 up to T11-T12: a chain, 7 steps
        e1 = (as_l - ps_l) / np.linalg.norm(as_l - ps_l)
        e2 = np.array([-e1[1], e1[0]])
        theta = np.radians(motion.theta_deg[film, k])
        pi_u = ps_l + motion.translation_mm[film, k] * e1 + motion.disc_height_mm[film, k] * e2
        rot = _rotation(np.arctan2(e1[1], e1[0]) + theta)
        poses[k, :, :2] = rot
        poses[k, :, 2] = pi_u
        ps_l = rot @ anatomy.corners[k, 1] + pi_u
        as_l = rot @ anatomy.corners[k, 0] + pi_u
    return poses


def corners_in_sacrum_frame(anatomy: Anatomy, poses: np.ndarray) -> np.ndarray:
    """Corners of T11…L5 and S1 (AS, PS; PI, AI NaN) in the sacrum frame, shape (8, 4, 2)."""
    n = len(BODY_LEVELS)
    out = np.full((n + 1, 4, 2), np.nan)
    out[:n] = np.einsum("bij,bkj->bki", poses[:n, :, :2], anatomy.corners) + poses[:n, None, :, 2]
    out[n, 0] = (anatomy.s1_depth_mm, 0.0)
    out[n, 1] = (0.0, 0.0)
    return out
