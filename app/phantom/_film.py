"""Projection of the phantom onto a film: pose, soft tissue, physics, processing.

A film is rendered by summing line integrals of attenuation (soft tissue of the
trunk + the warped bone and gas patches), turning them into detector signal
``N0 exp(-A)`` with heel effect, scatter, detector blur and quantum noise, and
then processing the signal like a DX "for presentation" image: logarithm (bone
bright), large-kernel dynamic range compression, edge enhancement and a
display S-curve to ``bits_stored`` bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from app.phantom._anatomy import (
    BODY_LEVELS,
    Anatomy,
    Motion,
    body_poses,
    corners_in_sacrum_frame,
)
from app.phantom._bones import MU_WATER, SACRAL_SLOPE_DEG, Patch

__all__ = ["FilmGeometry", "film_geometry", "render_film"]


def _smooth(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian low-pass; wide kernels run on a reduced copy (same result to the eye, 100x faster)."""
    if sigma_px <= 6.0:
        return cv2.GaussianBlur(img, (0, 0), sigma_px)
    f = sigma_px / 3.0
    rows, cols = img.shape
    small = cv2.resize(
        img, (max(round(cols / f), 4), max(round(rows / f), 4)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), sigma_px * small.shape[1] / cols)
    return cv2.resize(small, (cols, rows), interpolation=cv2.INTER_LINEAR)


def _h(m: np.ndarray) -> np.ndarray:
    """2x3 affine -> 3x3 homogeneous."""
    out = np.eye(3)
    out[:2] = m
    return out


def _rot(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


@dataclass(frozen=True)
class FilmGeometry:
    """Where everything lands in one film.

    Attributes
    ----------
    shape : tuple of int
        ``(rows, columns)`` of the film.
    sacrum_to_image : ndarray of shape (3, 3)
        Homogeneous affine from the sacrum frame (mm, patient) to image pixels
        ``(x, y) = (column, row)``.
    poses : ndarray of shape (8, 2, 3)
        Body poses in the sacrum frame (T11…L5, sacrum).
    corners_px : ndarray of shape (8, 4, 2)
        Corners ``AS, PS, PI, AI`` of T11…L5 and S1 (``PI``, ``AI`` NaN) in pixels.
    patient_spacing_mm : float
        Size of a pixel in the patient (detector spacing / magnification), mm.
    """

    shape: tuple[int, int]
    sacrum_to_image: np.ndarray
    poses: np.ndarray
    corners_px: np.ndarray
    patient_spacing_mm: float


def film_geometry(
    anatomy: Anatomy,
    motion: Motion,
    film: int,
    *,
    shape: tuple[int, int],
    detector_spacing_mm: float,
    magnification: float,
    facing: str,
    rotation_deg: float,
    jitter: np.ndarray,
) -> FilmGeometry:
    """Pose the spine of one film and map it to pixels.

    ``jitter`` (3,): small random placement offsets (fractions of the film) and
    a tilt offset in degrees, so two films never frame the patient identically.
    """
    poses = body_poses(anatomy, motion, film)
    corners = corners_in_sacrum_frame(anatomy, poses)
    centres = np.nanmean(corners, axis=1)
    centres[-1] = 0.5 * (corners[-1, 0] + corners[-1, 1])
    # Turn the column so that S1 -> L1 leans forward by the film's tilt.
    v = centres[BODY_LEVELS.index("L1")] - centres[-1]
    turn = (90.0 - motion.tilt_deg[film] - jitter[2]) - np.degrees(np.arctan2(v[1], v[0]))
    rows, cols = shape
    px_per_mm = magnification / detector_spacing_mm
    ref = 0.5 * (centres[BODY_LEVELS.index("L2")] + centres[BODY_LEVELS.index("L3")])
    sign = -1.0 if facing == "left" else 1.0
    # world (x anterior, y up) -> image: scale, mirror, flip y
    to_img = np.diag([sign * px_per_mm, -px_per_mm])
    # the column's reference point: 45 % down, 56 % of the width from the back
    anchor = np.array(
        [(cols - 1) / 2 + sign * cols * (0.06 + jitter[0]), rows * (0.40 + jitter[1])]
    )
    lin = to_img @ _rot(turn)
    world = np.eye(3)
    world[:2, :2] = lin
    world[:2, 2] = anchor - lin @ ref
    centre = np.array([(cols - 1) / 2, (rows - 1) / 2])
    # rotate the whole film about its centre (counter-clockwise on screen, y down)
    r = _rot(-rotation_deg)
    spin = np.eye(3)
    spin[:2, :2] = r
    spin[:2, 2] = centre - r @ centre
    sacrum_to_image = spin @ world
    corners_px = corners @ sacrum_to_image[:2, :2].T + sacrum_to_image[:2, 2]
    return FilmGeometry(
        shape=shape,
        sacrum_to_image=sacrum_to_image,
        poses=poses,
        corners_px=corners_px,
        patient_spacing_mm=detector_spacing_mm / magnification,
    )


def _smooth_line(points: np.ndarray, step: float = 4.0) -> np.ndarray:
    """Resample a polyline every ``step`` units and round its kinks (a few [1 2 1] passes)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.arange(0.0, arc[-1], step)
    line = np.column_stack([np.interp(s, arc, points[:, 0]), np.interp(s, arc, points[:, 1])])
    half = max(int(30.0 / step), 1)
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    for _ in range(2):
        padded = np.vstack([np.repeat(line[:1], half, 0), line, np.repeat(line[-1:], half, 0)])
        line = np.column_stack([np.convolve(padded[:, i], kernel, mode="valid") for i in (0, 1)])
    return line


def _distance(shape: tuple[int, int], line: np.ndarray) -> np.ndarray:
    """Euclidean distance (pixels) from every pixel of a canvas to a polyline (n, 2)."""
    img = np.full(shape, 255, np.uint8)
    cv2.polylines(img, [np.round(line * 16).astype(np.int32)], False, 0, 1, cv2.LINE_8, 4)
    return cv2.distanceTransform(img, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _add_patch(canvas: np.ndarray, patch: Patch, local_to_image: np.ndarray) -> None:
    """Warp ``patch`` (whose local frame maps to the image by ``local_to_image``) into ``canvas``."""
    m = local_to_image @ _h(patch.to_local)
    rows, cols = patch.values.shape
    box = np.array([[0, 0, 1], [cols, 0, 1], [0, rows, 1], [cols, rows, 1]], float) @ m.T
    x0 = max(int(np.floor(box[:, 0].min())), 0)
    y0 = max(int(np.floor(box[:, 1].min())), 0)
    x1 = min(int(np.ceil(box[:, 0].max())) + 1, canvas.shape[1])
    y1 = min(int(np.ceil(box[:, 1].max())) + 1, canvas.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], float) @ m
    canvas[y0:y1, x0:x1] += cv2.warpAffine(
        patch.values,
        shift[:2],
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )


def _soft_tissue(
    geom: FilmGeometry, anatomy: Anatomy, habitus: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Line integral through the trunk (muscle, fat, lung bases), at the film's size.

    The trunk's outline follows the spine: the back skin lies 70-95 mm behind
    the bodies, the abdominal wall 120-180 mm in front; the lateral path is the
    chord of a flattened ellipse of transverse width ~300 mm.
    """
    rows, cols = geom.shape
    mm = geom.patient_spacing_mm
    q = max(1, round(0.5 / mm))  # work at ~0.5 mm
    margin = round(250.0 / mm / q)
    cr, cc = rows // q + 2 * margin + 1, cols // q + 2 * margin + 1
    to_canvas = np.array([[1 / q, 0, margin], [0, 1 / q, margin], [0, 0, 1]]) @ geom.sacrum_to_image
    n = len(BODY_LEVELS)
    corners = corners_in_sacrum_frame(anatomy, geom.poses)
    centres = np.nanmean(corners[:n], axis=1)
    axes = geom.poses[:n, :, 0]  # each body's anterior direction
    depth = anatomy.corners[:, 3, 0]
    # sacrum: axis points going down and back from S1
    pelvis = _rot(SACRAL_SLOPE_DEG)  # pelvis frame -> sacrum frame
    s_pts = np.array([[18.0, -10.0], [10.0, -60.0], [0.0, -110.0], [-10.0, -200.0]]) @ pelvis.T
    s_axes = np.tile(pelvis @ np.array([1.0, 0.0]), (4, 1))
    up = centres[0] + 150.0 * np.array([-axes[0, 1], axes[0, 0]])
    pts = np.vstack([up, centres[::1], s_pts])
    ax = np.vstack([axes[0], axes, s_axes])
    half = np.concatenate([[depth[0] / 2], depth / 2, [18.0, 18.0, 18.0, 18.0]])
    back = np.concatenate([[70.0], np.linspace(72.0, 82.0, n), [75.0, 85.0, 100.0, 110.0]])
    front = np.concatenate([[110.0], np.linspace(120.0, 165.0, n), [150.0, 145.0, 140.0, 130.0]])
    back = back * habitus[0]
    front = front * habitus[1]
    post_line = pts - (half + back)[:, None] * ax
    ant_line = pts + (half + front)[:, None] * ax

    def to_c(p: np.ndarray) -> np.ndarray:
        return p @ to_canvas[:2, :2].T + to_canvas[:2, 2]

    post_c, ant_c = _smooth_line(to_c(post_line)), _smooth_line(to_c(ant_line))
    yy, xx = np.mgrid[0:cr, 0:cc].astype(np.float32)
    # distances (mm) to the skin lines, on the coarse grid (smooth: upsampled later)
    # signed distances (mm) to the skin lines, positive inside the trunk: smooth
    # across the skin, so the upsampled skin edge is smooth too
    inside = np.zeros((cr, cc), np.uint8)
    cv2.fillPoly(inside, [np.round(np.vstack([post_c, ant_c[::-1]]) * 16).astype(np.int32)], 1,
                 shift=4)
    sign = np.where(inside > 0, np.float32(1.0), np.float32(-1.0))
    d_back = _distance((cr, cc), post_c) * np.float32(q * mm) * sign
    d_front = _distance((cr, cc), ant_c) * np.float32(q * mm) * sign
    hetero = _smooth(rng.standard_normal((cr, cc)).astype(np.float32), 18.0 / (q * mm))
    hetero /= max(float(hetero.std()), 1e-6)
    # lung bases: above a line from the posterior costophrenic recess (L1) to the dome
    l1 = BODY_LEVELS.index("L1")
    p_back = to_c((centres[l1] - (depth[l1] / 2 + 35.0) * axes[l1])[None])[0]
    head = np.array([-axes[0, 1], axes[0, 0]])
    p_dome = to_c((centres[0] + (depth[0] / 2 + 70.0) * axes[0] + 45.0 * head)[None])[0]
    dirn = (p_dome - p_back) / np.linalg.norm(p_dome - p_back)
    normal = np.array([dirn[1], -dirn[0]])
    if normal @ (to_c((centres[0] + 100 * head)[None])[0] - p_back) < 0:
        normal = -normal  # towards the head
    above = ((xx - p_back[0]) * normal[0] + (yy - p_back[1]) * normal[1]) * (q * mm)
    head_c = to_c((centres[0] + 100 * head)[None])[0] - to_c(centres[0][None])[0]
    head_c /= np.linalg.norm(head_c)
    rise = ((xx - p_back[0]) * head_c[0] + (yy - p_back[1]) * head_c[1]) * (q * mm)
    above = above * np.clip(rise / 40.0 + 0.2, 0.0, 1.0)

    def full(a: np.ndarray) -> np.ndarray:
        crop = a[margin : margin + rows // q + 2, margin : margin + cols // q + 2]
        m = np.array([[1.0 / q, 0.0, 0.0], [0.0, 1.0 / q, 0.0]])
        return cv2.warpAffine(crop, m, (cols, rows), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)

    d_b, d_f, het, abv = (full(a) for a in (d_back, d_front, hetero, above.astype(np.float32)))
    mask = (d_b > 0) & (d_f > 0)
    d_b, d_f = np.clip(d_b, 0.0, None), np.clip(d_f, 0.0, None)
    t = d_b / np.maximum(d_b + d_f, 1.0)
    width = 300.0 * habitus[2]
    # broad flat back, rounded belly; the chord rises like a curved skin surface at both edges
    chord = width * (4.0 * t * (1.0 - t)) ** np.where(t < 0.5, 0.18, 0.5)
    chord *= np.sqrt(np.clip(np.minimum(d_b, d_f) / 8.0, 0.0, 1.0)) * mask
    soft = MU_WATER * chord * (1.0 + 0.025 * het)
    soft -= 0.004 * chord * np.exp(-d_b / 18.0)  # subcutaneous fat of the back
    lung = np.clip(abv / 70.0, 0.0, 1.0) ** 1.5 * 130.0 * np.clip(1.2 - t, 0.0, 1.0) * mask
    lung = np.minimum(lung, 0.5 * chord)  # the lungs never take more than half the path
    return (soft - 0.75 * MU_WATER * lung).astype(np.float32)


def render_film(
    geom: FilmGeometry,
    anatomy: Anatomy,
    parts: dict[str, Patch],
    gas_offset: np.ndarray,
    habitus: np.ndarray,
    rng: np.random.Generator,
    *,
    bits_stored: int,
) -> np.ndarray:
    """Render one film.

    Returns
    -------
    pixels : ndarray of shape (rows, columns), uint16
        Processed "for presentation" values in ``[0, 2**bits_stored - 1]``,
        bone bright (MONOCHROME2 sense).
    """
    rows, cols = geom.shape
    mm = geom.patient_spacing_mm
    atten = _soft_tissue(geom, anatomy, habitus, rng)
    s2i = geom.sacrum_to_image
    for k, level in enumerate(BODY_LEVELS):
        pose = s2i @ _h(geom.poses[k])
        _add_patch(atten, parts[level], pose)
        if f"ribs-{level}" in parts:
            _add_patch(atten, parts[f"ribs-{level}"], pose)
    pelvis = np.eye(3)
    pelvis[:2, :2] = _rot(SACRAL_SLOPE_DEG)
    _add_patch(atten, parts["pelvis"], s2i @ pelvis)
    l3 = BODY_LEVELS.index("L3")
    gas_pose = _h(geom.poses[l3]) @ np.array(
        [[np.cos(gas_offset[2]), -np.sin(gas_offset[2]), gas_offset[0]],
         [np.sin(gas_offset[2]), np.cos(gas_offset[2]), gas_offset[1]], [0, 0, 1]]
    )
    _add_patch(atten, parts["gas"], s2i @ gas_pose)
    if "gas-spine" in parts:
        _add_patch(atten, parts["gas-spine"], s2i @ gas_pose)
    _lead_marker(atten, geom, rng)

    # -- physics: primary with heel effect, scatter, collimation, blur, noise
    yy = np.linspace(-1.0, 1.0, rows, dtype=np.float32)[:, None]
    xx = np.linspace(-1.0, 1.0, cols, dtype=np.float32)[None, :]
    heel = 1.0 + 0.08 * yy - 0.05 * (xx**2 + yy**2)
    n0 = 4.0e5 * (mm / 0.17) ** 2  # quanta per pixel without the patient
    primary = n0 * np.exp(-atten) * heel
    coll = _collimator(geom.shape, mm, rng)
    primary *= coll
    # scatter is made in the patient (none from the air around it), spreads widely and
    # is attenuated on its way out: ~0.6 of the primary behind the spine, after the grid
    source = primary * np.clip(atten / 6.0, 0.0, 1.0)
    scatter = _smooth(source, 30.0 / mm)
    signal = primary + 0.6 * scatter * np.exp(-0.15 * np.clip(atten, 0.0, None)) / 0.35
    signal += 3.0e-4 * n0 * np.float32(0.0015)  # detector offset/dark signal
    signal = cv2.GaussianBlur(signal, (0, 0), max(0.08 / mm, 0.3))
    noise = rng.standard_normal((rows, cols), dtype=np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 0.6) * np.float32(1.0 / 0.42)
    signal = np.maximum(signal + np.sqrt(signal) * noise + 3.0 * rng.standard_normal((rows, cols), dtype=np.float32), 0.5)

    # -- processing "for presentation": log, equalisation, edge enhancement, S-curve
    log_img = np.log(np.float32(n0) / signal)
    field = (coll > 0.5) & (atten > 4.0)  # inside the collimated field and the trunk
    # equalisation: a low-pass of the body only (normalised convolution), so the air
    # around the patient does not brighten the skin edge
    body = (atten > 1.0).astype(np.float32)
    low = _smooth(log_img * body, 16.0 / mm) / np.maximum(_smooth(body, 16.0 / mm), 0.05)
    level = float(np.median(low[field])) if field.any() else float(low.mean())
    eq = log_img - 0.9 * (low - level) * cv2.GaussianBlur(body, (0, 0), max(1.0 / mm, 0.5))
    detail = eq - _smooth(eq, 1.2 / mm)
    proc = eq + 0.6 * detail
    lo, hi = np.percentile(proc[field] if field.any() else proc, [1.0, 99.9])
    v = (proc - lo) / max(hi - lo, 1e-6)
    curve = 0.5 + 0.5 * np.tanh(1.8 * (v - 0.55)) / np.tanh(0.9)
    top = 2**bits_stored - 1
    return np.clip(np.round(curve * top), 0, top).astype(np.uint16)


def _lead_marker(atten: np.ndarray, geom: FilmGeometry, rng: np.random.Generator) -> None:
    """The radiographer's lead side marker ("L" for a left lateral, "R" for a right one),
    ~12 mm tall, in a front corner of the film, away from the spine."""
    rows, cols = atten.shape
    lin = geom.sacrum_to_image[:2, :2]
    letter = "L" if np.linalg.det(lin) > 0 else "R"  # facing left = left lateral
    anterior_right = (lin @ geom.poses[BODY_LEVELS.index("L3"), :, 0])[0] > 0
    height_px = 12.0 / geom.patient_spacing_mm
    scale = height_px / 22.0  # FONT_HERSHEY_SIMPLEX capitals are ~22 px tall at scale 1
    thickness = max(1, round(2.5 * scale))
    (w, h), _ = cv2.getTextSize(letter, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    fx = rng.uniform(0.04, 0.12)
    x = cols * (1 - fx) - w if anterior_right else cols * fx
    y = rows * (rng.uniform(0.06, 0.12) if rng.uniform() < 0.5 else rng.uniform(0.85, 0.92)) + h
    mask = np.zeros((rows, cols), np.uint8)
    cv2.putText(mask, letter, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness,
                cv2.LINE_AA)
    atten += np.float32(3.0 / 255.0) * mask


def _collimator(shape: tuple[int, int], mm: float, rng: np.random.Generator) -> np.ndarray:
    """Transmission of the collimator blades: 1 in the field, ~0 outside, 1.5 mm penumbra.

    The field is a slightly rotated rectangle inset 0-25 mm from the film edges.
    """
    rows, cols = shape
    inset = rng.uniform(0.0, 25.0, size=4) / mm * (rng.uniform(size=4) < 0.6)
    ang = np.radians(rng.uniform(-1.5, 1.5))
    yy = np.arange(rows, dtype=np.float32)[:, None]
    xx = np.arange(cols, dtype=np.float32)[None, :]
    cx, cy = (cols - 1) / 2, (rows - 1) / 2
    u = (xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)
    w = -(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)
    pen = 1.5 / mm
    edges = np.minimum(
        np.minimum(u + (cx - inset[0]), (cx - inset[1]) - u),
        np.minimum(w + (cy - inset[2]), (cy - inset[3]) - w),
    )
    return (0.5 + 0.5 * np.tanh(edges * np.float32(1.0 / pen))) * np.float32(0.98) + np.float32(0.02)
