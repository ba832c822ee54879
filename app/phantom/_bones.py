"""Attenuation patches of the rigid parts of the phantom, in their own frames.

Each rigid part (a vertebra with its posterior elements, a pair of ribs, the
sacrum with the pelvis, the bowel gas) is computed once per study as a *patch*:
an image on a regular grid of its local millimetre frame whose value is the
line integral of ``mu - mu_water`` along the lateral ray (dimensionless), i.e.
the extra attenuation the part adds to the soft tissue it displaces.  A patch is
then warped into each film with that film's pose, so the same bone pixels appear
in both films, exactly as in a real flexion-extension pair.

Attenuation coefficients are effective values for a ~85 kVp beam, per mm:
soft tissue 0.021, trabecular bone excess over water 0.011, cortical bone excess
0.050.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from app.phantom._anatomy import BODY_LEVELS, Anatomy

__all__ = ["MU_WATER", "Patch", "body_patch", "gas_patch", "pelvis_patch", "rib_patch"]

MU_WATER = 0.021  # /mm, effective, soft tissue
MU_TRAB = 0.011  # /mm, trabecular bone minus water
MU_CORT = 0.050  # /mm, cortical bone minus water
MU_PROCESS = 0.034  # /mm, posterior elements, ribs, pelvis: thin trabecular + thick cortex
SACRAL_SLOPE_DEG = 40.0  # nominal; the pelvis frame is the sacrum frame turned by it


@dataclass(frozen=True)
class Patch:
    """An attenuation image on a grid of a part's local frame.

    Attributes
    ----------
    values : ndarray of shape (rows, cols), float32
        Extra attenuation (line integral of ``mu - mu_water``), dimensionless.
    to_local : ndarray of shape (2, 3)
        Affine taking patch ``(col, row)`` to local ``(x, y)`` mm.
    """

    values: np.ndarray
    to_local: np.ndarray


def _grid(x0: float, x1: float, y0: float, y1: float, res: float) -> tuple:
    cols = int(np.ceil((x1 - x0) / res)) + 1
    rows = int(np.ceil((y1 - y0) / res)) + 1
    x = (x0 + res * np.arange(cols, dtype=np.float32))[None, :]
    y = (y1 - res * np.arange(rows, dtype=np.float32))[:, None]
    to_local = np.array([[res, 0.0, x0], [0.0, -res, y1]])
    return x, y, (rows, cols), to_local


def _to_px(points_mm: np.ndarray, to_local: np.ndarray) -> np.ndarray:
    """Local mm -> patch pixel, shape (..., 2)."""
    res, x0, y1 = to_local[0, 0], to_local[0, 2], to_local[1, 2]
    pts = np.asarray(points_mm, dtype=np.float64)
    return np.stack([(pts[..., 0] - x0) / res, (y1 - pts[..., 1]) / res], axis=-1)


def _filtered_noise(
    rng: np.random.Generator, shape: tuple[int, int], sigma_px: tuple[float, float]
) -> np.ndarray:
    """Gaussian noise low-passed with (sigma_x, sigma_y) pixels, unit standard deviation."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    sx, sy = max(sigma_px[0], 0.3), max(sigma_px[1], 0.3)
    kx, ky = 2 * round(3 * sx) + 1, 2 * round(3 * sy) + 1
    out = cv2.GaussianBlur(noise, (kx, ky), sigmaX=sx, sigmaY=sy, borderType=cv2.BORDER_REFLECT)
    return out / max(float(out.std()), 1e-6)


def _wobble(rng: np.random.Generator, coord: np.ndarray, amplitude: float, scale: float) -> np.ndarray:
    """A smooth random function of ``coord`` (mm): sum of 3 sines, about ``amplitude`` mm."""
    k = 2 * np.pi / (scale * rng.uniform(0.7, 1.6, 3))
    phase = rng.uniform(0, 2 * np.pi, 3)
    waves = np.sin(coord[..., None] * k.astype(np.float32) + phase.astype(np.float32))
    return (amplitude / np.sqrt(1.5)) * waves.sum(-1) / np.sqrt(2.0)


def _translate(image: np.ndarray, shift_px: np.ndarray) -> np.ndarray:
    """``image`` moved by ``shift_px`` (dx, dy) pixels, bilinear, zero outside."""
    m = np.array([[1.0, 0.0, shift_px[0]], [0.0, 1.0, shift_px[1]]])
    rows, cols = image.shape
    return cv2.warpAffine(image.astype(np.float32), m, (cols, rows), flags=cv2.INTER_LINEAR)


def _solid(
    polygons: list[np.ndarray],
    shape: tuple[int, int],
    to_local: np.ndarray,
    *,
    thickness_mm: float,
    rise_mm: float,
    cortex_mm: float,
    mu: float = 0.0,
) -> np.ndarray:
    """Lateral path through a bony process outlined by polygons (local mm).

    The path rises like a rounded bar from 0 at the outline to ``thickness_mm``
    ``rise_mm`` inside; a cortical shell adds ``cortex_mm`` of cortical path at
    the outline (seen tangentially), decaying inwards.  ``mu`` is the
    excess attenuation of the process's bone (default: ``MU_PROCESS``).
    """
    mu = mu or MU_PROCESS
    res = to_local[0, 0]
    px = [_to_px(p, to_local) for p in polygons]
    (r0, r1, c0, c1), origin = _crop(np.vstack(px), shape, 3)
    out = np.zeros(shape, np.float32)
    if r1 <= r0 or c1 <= c0:
        return out
    mask = np.zeros((r1 - r0, c1 - c0), np.uint8)
    pts = [np.round((p - origin) * 16).astype(np.int32) for p in px]
    cv2.fillPoly(mask, pts, 1, lineType=cv2.LINE_8, shift=4)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5) * np.float32(res)
    u = np.minimum(dist / np.float32(rise_mm), 1.0)
    trab = thickness_mm * np.sqrt(u * (2.0 - u))
    cort = np.where(mask > 0, cortex_mm * np.exp(-dist / np.float32(0.7)), 0.0)
    out[r0:r1, c0:c1] = mu * trab + MU_CORT * cort
    return out


def _crop(px: np.ndarray, shape: tuple[int, int], margin: float) -> tuple:
    """Row/column bounds of points ``px`` (n, 2) grown by ``margin`` pixels, and the origin."""
    c0 = max(int(np.floor(px[:, 0].min() - margin)), 0)
    c1 = min(int(np.ceil(px[:, 0].max() + margin)) + 1, shape[1])
    r0 = max(int(np.floor(px[:, 1].min() - margin)), 0)
    r1 = min(int(np.ceil(px[:, 1].max() + margin)) + 1, shape[0])
    return (r0, r1, c0, c1), np.array([c0, r0], float)


def _dish(height: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Fraction of the transverse width that is bone at ``height`` above an endplate chord.

    The endplate is a parabolic dish of central ``depth`` (mm): at a height
    ``h`` above the rim, bone fills the lateral parts where the dish is below
    ``h``, a fraction ``1 - sqrt(1 - h / depth)``.
    """
    frac = 1.0 - np.sqrt(np.clip(1.0 - height / np.maximum(depth, 1e-3), 0.0, 1.0))
    return np.where(height <= 0, 0.0, frac)


def body_patch(
    anatomy: Anatomy,
    k: int,
    res: float,
    rng: np.random.Generator,
    *,
    osteophyte_mm: tuple[float, float] = (0.0, 0.0),
    bridge_mm: float = 0.0,
) -> Patch:
    """Vertebra ``BODY_LEVELS[k]``: body, pedicles, facets, laminae, spinous process.

    ``osteophyte_mm``: length of the anterior spur at the (superior, inferior)
    endplate (0: none).  ``bridge_mm``: height of a bony bridge filling the disc
    below the body (a sacralised L5 fused to the sacrum; 0: none).  Neither
    draws random numbers, so the rest of the patch is unchanged.
    """
    as_, ps, _pi, ai = anatomy.corners[k]
    var = anatomy.variation[k]
    h = float(ps[1])
    thoracic = BODY_LEVELS[k].startswith("T")
    x, y, shape, to_local = _grid(-75.0, float(as_[0]) + 5, -22.0, float(as_[1]) + 16, res)

    # -- vertebral body: walls, dished endplates, cortical shell, trabeculae
    v = np.clip(y / np.float32(max(as_[1], ps[1])), 0.0, 1.0)
    waist = np.sin(np.pi * v)
    # irregular cortical surfaces: a smooth random wobble (+-0.35 mm), zero at the corners
    wobble = _wobble(rng, y, 0.3, 10.0) * waist
    x_ant = ai[0] + y * (as_[0] - ai[0]) / as_[1] - anatomy.waist_mm[k, 0] * waist + wobble
    x_post = y * ps[0] / ps[1] + anatomy.waist_mm[k, 1] * waist - 0.6 * wobble
    y_sup_chord = ps[1] + (x - ps[0]) * (as_[1] - ps[1]) / (as_[0] - ps[0])
    u_ap = np.clip(x / np.float32(ai[0]), 0.0, 1.0)
    bump = np.clip(4.0 * u_ap**0.9 * (1.0 - u_ap**0.9), 0.0, 1.0) ** 0.6
    bump = np.clip(bump * (1.0 + _wobble(rng, x, 0.08, 14.0)), 0.0, None)
    c_sup, c_inf = anatomy.endplate_concavity_mm[k]
    width = float(anatomy.width_mm[k])
    half = np.maximum(0.5 * (x_ant - x_post), 1e-3)
    xm = x - 0.5 * (x_ant + x_post)
    p = 2.6

    def chord(shrink: float) -> np.ndarray:
        a = np.maximum(half - shrink, 1e-3)
        r = np.clip(np.abs(xm) / a, 0.0, 1.0)
        return (width - 2 * shrink) * (1.0 - r**p) ** (1.0 / p) * (np.abs(xm) < a)

    cortex_wall, cortex_end = 0.7, 0.45
    above_inf, below_sup = y, y_sup_chord - y
    outer = chord(0.0) * _dish(above_inf, c_inf * bump) * _dish(below_sup, c_sup * bump)
    inner = (
        chord(cortex_wall)
        * _dish(above_inf - cortex_end, c_inf * bump)
        * _dish(below_sup - cortex_end, c_sup * bump)
    )
    tex_fine = _filtered_noise(rng, shape, (0.3 / res, 0.8 / res))
    tex_cross = _filtered_noise(rng, shape, (0.9 / res, 0.25 / res))
    tex_coarse = _filtered_noise(rng, shape, (3.0 / res, 3.0 / res))
    density = 1.0 + 0.12 * tex_fine + 0.07 * tex_cross + 0.08 * tex_coarse
    # basivertebral vein: a lucent notch in the middle of the posterior wall
    vein = np.exp(-(((x - x_post - 2.5) / 3.0) ** 2) - ((y - 0.5 * h) / 1.4) ** 2)
    body = MU_TRAB * inner * np.clip(density - 0.6 * vein, 0.2, None) + MU_CORT * (outer - inner)
    # The two sides of a body project a little apart (divergent beam, slight obliquity):
    # half the body shifted up, half down -> double endplate and wall contours.  The
    # mid-sagittal outline, and so every corner, stays where it was.
    shift = np.array([rng.uniform(-0.4, 0.4), rng.uniform(0.2, 1.2)]) / res
    body = 0.5 * (_translate(body, shift) + _translate(body, -shift))

    # -- posterior elements (bilateral ones: path is twice one side)
    sl = 1.0 + 0.08 * var[0]
    ped_top, ped_bot = 0.93 * h, (0.50 + 0.05 * var[1]) * h
    pedicle = [
        np.array(
            [
                (1.0, ped_bot),
                (-16.0 * sl, ped_bot + 1.5),
                (-19.0 * sl, ped_bot + 4.0),
                (-19.5 * sl, ped_top - 2.0),
                (-15.0 * sl, ped_top + 0.5),
                (1.0, ped_top + 1.0),
            ]
        )
    ]
    sap_top = h + 8.0 + 1.5 * var[2]
    sap = [
        np.array(
            [(-13.0, 0.78 * h), (-13.5, h + 4.0), (-16.0, sap_top), (-20.5, sap_top - 1.5),
             (-23.0, 0.80 * h)]
        )
    ]
    pars = [
        np.array(
            [(-18.0, 0.97 * h), (-28.0, 0.97 * h), (-32.5, 0.45 * h), (-30.5, 0.02 * h),
             (-22.0, 0.22 * h), (-19.0, 0.6 * h)]
        )
    ]
    iap_tip = -11.5 + 1.5 * var[3]
    iap = [
        np.array(
            [(-23.5, 0.2 * h), (-31.0, 0.05 * h), (-32.5, -6.0), (-29.5, iap_tip),
             (-25.5, iap_tip + 2.0), (-23.0, -4.0)]
        )
    ]
    sp_len = (44.0 if thoracic else 58.0) * (1.0 + 0.07 * var[4])
    sp_drop = (0.45 * h if thoracic else 0.22 * h) + 2.0 * var[5]
    spinous = [
        np.array(
            [
                (-27.0, 0.96 * h),
                (-0.75 * sp_len, 0.80 * h - sp_drop),
                (-sp_len + 1.0, 0.68 * h - sp_drop),
                (-sp_len, 0.48 * h - sp_drop),
                (-sp_len + 3.0, 0.30 * h - sp_drop),
                (-0.75 * sp_len, 0.22 * h - sp_drop),
                (-32.0, 0.02 * h),
            ]
        )
    ]
    tp_c = np.array([-21.0, 0.74 * h + 1.5 * var[6]])
    ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    transverse = [tp_c + np.column_stack([5.5 * np.cos(ang), 4.0 * np.sin(ang)])]
    elements = (
        _solid(pedicle, shape, to_local, thickness_mm=14.0, rise_mm=3.5, cortex_mm=5.0)
        + _solid(sap, shape, to_local, thickness_mm=10.0, rise_mm=3.0, cortex_mm=4.0)
        + _solid(pars, shape, to_local, thickness_mm=11.0, rise_mm=4.0, cortex_mm=3.0)
        + _solid(iap, shape, to_local, thickness_mm=10.0, rise_mm=3.0, cortex_mm=4.0)
        + _solid(spinous, shape, to_local, thickness_mm=9.0, rise_mm=2.5, cortex_mm=3.0)
        + _solid(transverse, shape, to_local, thickness_mm=8.0, rise_mm=2.5, cortex_mm=2.0)
    )
    el_tex = 1.0 + 0.15 * _filtered_noise(rng, shape, (0.6 / res, 0.6 / res))
    # processes have rounded, not polygonal, outlines
    elements = cv2.GaussianBlur(elements * el_tex, (0, 0), 0.9 / res)
    values = body + elements
    if max(osteophyte_mm) > 0 or bridge_mm > 0:
        values = values + _degenerate(anatomy, k, shape, to_local, osteophyte_mm, bridge_mm)
    return Patch(values.astype(np.float32), to_local)


def _degenerate(
    anatomy: Anatomy,
    k: int,
    shape: tuple[int, int],
    to_local: np.ndarray,
    osteophyte_mm: tuple[float, float],
    bridge_mm: float,
) -> np.ndarray:
    """Anterior osteophytes and a fusion bridge of body ``k``, local frame (see :func:`body_patch`).

    A spur starts on the anterior wall 3-4 mm from the corner and curls
    outwards and towards the disc, beyond the corner: the chord of the endplate
    still meets the wall at the same point, so the true corner does not move.
    """
    as_, _ps, _pi, ai = anatomy.corners[k]
    width = 0.6 * float(anatomy.width_mm[k])
    polys = []
    sup, inf = osteophyte_mm
    spur = np.array([(-0.3, -4.0), (0.9, -1.5), (1.1, 0.5), (0.5, 0.2), (0.0, -0.6)])
    if sup > 0:  # from the wall below AS, up and forwards past the endplate level
        polys.append(as_ + spur * np.array([[1.0, 1.0], [sup, 1.0], [sup, sup], [sup, 1.0], [1.0, 1.0]]))
    if inf > 0:  # the mirror image at AI
        polys.append(ai + spur * np.array([[1.0, -1.0], [inf, -1.0], [inf, -inf], [inf, -1.0], [1.0, -1.0]]))
    out = np.zeros(shape, np.float32)
    if polys:
        out += _solid(polys, shape, to_local, thickness_mm=width, rise_mm=1.5, cortex_mm=2.0)
    if bridge_mm > 0:  # trabecular bone across the disc, anterior two thirds, cortex in front
        d = float(ai[0])
        bridge = np.array([(0.3 * d, 0.2), (d + 1.0, 0.2), (d + 2.0, -bridge_mm - 0.2),
                           (0.3 * d, -bridge_mm - 0.2)])  # fmt: skip
        out += _solid([bridge], shape, to_local, thickness_mm=float(anatomy.width_mm[k]),
                      rise_mm=6.0, cortex_mm=1.5, mu=MU_TRAB)  # fmt: skip
    return out


def _tube(
    centre: np.ndarray,
    radius: np.ndarray,
    shape: tuple[int, int],
    to_local: np.ndarray,
    *,
    thickness_mm: float,
    cortex_mm: float,
) -> np.ndarray:
    """Lateral path through a curved bony tube (rib, crest) along a polyline.

    ``centre`` (n, 2) local mm, ``radius`` (n,) mm: the half-height of the
    tube seen from the side at each centre point.
    """
    res = to_local[0, 0]
    full = np.zeros(shape, np.float32)
    (r0, r1, c0, c1), origin = _crop(_to_px(centre, to_local), shape, radius.max() / res + 4)
    if r1 <= r0 or c1 <= c0:
        return full
    shape = (r1 - r0, c1 - c0)
    line = np.full(shape, 255, np.uint8)
    px = np.round(_to_px(centre, to_local) - origin).astype(np.int32)
    cv2.polylines(line, [px], False, 0, 1)
    dist, labels = cv2.distanceTransformWithLabels(
        line, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    # radius at the nearest centre-line pixel: label -> its pixel -> nearest vertex
    zeros = np.argwhere(line == 0)  # in label order (row-major scan)
    lab_px = zeros[:, ::-1].astype(np.float32)
    d2 = ((lab_px[:, None, :] - px[None, :, :].astype(np.float32)) ** 2).sum(-1)
    lab_radius = radius[np.argmin(d2, axis=1)].astype(np.float32)
    r = np.concatenate([[1.0], lab_radius])[labels]
    d = dist * np.float32(res)
    u = np.clip(1.0 - (d / r) ** 2, 0.0, 1.0)
    trab = thickness_mm * np.sqrt(u)
    cort = cortex_mm * np.exp(-np.abs(r - d) / np.float32(0.6)) * (d < r + 0.5)
    full[r0:r1, c0:c1] = MU_PROCESS * trab + MU_CORT * cort
    return full


def _bezier(p0, p1, p2, n: int = 80) -> np.ndarray:
    s = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - s) ** 2 * np.asarray(p0) + 2 * s * (1 - s) * np.asarray(p1) + s**2 * np.asarray(p2)


def rib_patch(
    anatomy: Anatomy, k: int, res: float, rng: np.random.Generator, *, ribs: tuple[int, ...]
) -> Patch:
    """Ribs articulating with body ``k`` (and the one above), left and right sides.

    ``ribs`` lists the rib numbers drawn: 12 (short, floating), 11 and 10 (longer).
    In a lateral film a rib leaves the spine backwards, turns at its angle and
    sweeps down and forwards over the upper lumbar bodies.
    """
    h = float(anatomy.corners[k, 1, 1])
    _, _, shape, to_local = _grid(-95.0, 175.0, -125.0, h + 45.0, res)
    total = np.zeros(shape, np.float32)
    for rib in ribs:
        up = {12: 0.0, 11: 0.0, 10: 27.0}[rib]
        reach = {12: (15.0, -62.0), 11: (45.0, -105.0), 10: (80.0, -120.0)}[rib]
        for side in (-1.0, 1.0):
            jitter = rng.uniform(-1.0, 1.0, size=4)
            off = np.array([2.5 * side + jitter[0], 3.5 * side + 1.5 * jitter[1]])
            p0 = np.array([-12.0, 0.78 * h + up]) + off
            p1 = np.array([-75.0 - 8 * jitter[2], -30.0 + up]) + off
            p2 = np.array(reach) + off + np.array([10 * jitter[3], up * 0.5])
            centre = _bezier(p0, p1, p2)
            radius = np.linspace(5.0, 2.8, len(centre)) * (1.0 + 0.04 * side)
            total += _tube(centre, radius, shape, to_local, thickness_mm=3.0, cortex_mm=1.1)
    tex = 1.0 + 0.12 * _filtered_noise(rng, shape, (0.8 / res, 0.8 / res))
    return Patch((total * tex).astype(np.float32), to_local)


def _rot(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def pelvis_patch(
    anatomy: Anatomy,
    res: float,
    rng: np.random.Generator,
    *,
    crest_rise_mm: float = 0.0,
    s1_s2_disc: bool = False,
) -> Patch:
    """Sacrum, iliac wings with their crests, pelvic brim and femoral heads.

    The patch frame is the *pelvis frame*: origin at S1's posterior-superior
    corner, ``x`` anterior and ``y`` up with the pelvis standing
    (the sacrum frame turned by ``SACRAL_SLOPE_DEG``).  ``crest_rise_mm``
    raises the iliac crests; ``s1_s2_disc`` gives a lumbarised S1 a true disc
    below it instead of a fused remnant.
    """
    d = anatomy.s1_depth_mm
    x, y, shape, to_local = _grid(-85.0, 135.0, -175.0, 58.0 + crest_rise_mm, res)
    to_pelvis = _rot(-SACRAL_SLOPE_DEG)  # sacrum frame -> pelvis frame
    total = np.zeros(shape, np.float32)

    # -- sacrum: a curved wedge along its axis, in the sacrum frame
    length, radius = 108.0, 115.0
    s = np.linspace(0.0, length, 60)
    phi = s / radius
    centre = np.column_stack([d / 2 + radius * (1 - np.cos(phi)), -radius * np.sin(phi)])
    normal = np.column_stack([np.cos(phi), np.sin(phi)])  # anterior
    half = d / 2 * (1.0 - 0.72 * (s / length) ** 1.3)
    ant = centre + half[:, None] * normal
    post = centre - half[:, None] * normal
    body_poly = np.vstack([ant, post[::-1]]) @ to_pelvis.T
    canal = 5.0 + 6.0 * (1 - s / length)
    dorsal = 9.0 + 12.0 * (1 - s / length)
    back_in = centre - (half + canal)[:, None] * normal
    back_out = centre - (half + canal + dorsal)[:, None] * normal
    dorsal_poly = np.vstack([back_in, back_out[::-1]]) @ to_pelvis.T
    # transverse extent shrinks down the sacrum: ala at the top, coccyx at the tip
    top_w = 40.0
    rows_s = np.interp(-y, [0.0, 30.0, 0.8 * length], [top_w, 30.0, 10.0]).astype(np.float32)
    sac = _solid(
        [body_poly], shape, to_local, thickness_mm=1.0, rise_mm=4.0, cortex_mm=0.0, mu=MU_TRAB
    )
    sac = sac * rows_s + _solid(
        [body_poly], shape, to_local, thickness_mm=0.0, rise_mm=1.0, cortex_mm=12.0
    )
    sac += _solid([dorsal_poly], shape, to_local, thickness_mm=4.0, rise_mm=4.0, cortex_mm=1.5)
    # S1 superior endplate: bright edge-on plate; fused disc remnants: faint lucent bands
    plate = np.column_stack([np.linspace(0.0, d, 30), -1.0 * np.sin(np.linspace(0, np.pi, 30))])
    total += _tube(
        plate @ to_pelvis.T, np.full(30, 0.9), shape, to_local, thickness_mm=0.0, cortex_mm=7.0
    )
    for s_k in (27.0, 50.0, 70.0, 87.0):
        i = int(np.searchsorted(s, s_k))
        seg = np.array([post[i] + 1.5 * normal[i], ant[i] - 1.5 * normal[i]]) @ to_pelvis.T
        band = _tube(seg, np.full(2, 1.2), shape, to_local, thickness_mm=6.0, cortex_mm=0.0)
        if s1_s2_disc and s_k == 27.0:
            # a mobile S1-S2 disc: no bone across a 6 mm band, endplates either side
            disc = _tube(seg, np.full(2, 3.2), shape, to_local, thickness_mm=1.0, cortex_mm=0.0)
            sac *= np.clip(1.0 - disc / max(float(disc.max()), 1e-6) * 1.6, 0.0, 1.0)
            tangent = np.array([np.sin(phi[i]), -np.cos(phi[i])]) @ to_pelvis.T  # down the axis
            for off in (-3.4, 3.4):
                edge = seg + off * tangent
                total += _tube(edge, np.full(2, 0.7), shape, to_local, thickness_mm=0.0, cortex_mm=5.0)
            continue
        sac -= 0.6 * band
    total += sac

    # -- iliac wings (near and far side, offset by the divergent beam), crests, brim
    crest_t = np.radians(np.linspace(158.0, 12.0, 70))
    for dx, dy, scale in [(0.0, 0.0, 1.0), (5.0, -7.0, 1.06)]:
        jit = rng.uniform(-1.0, 1.0, size=4)
        c = np.array([18.0 + dx + 3 * jit[0], -18.0 + dy + 3 * jit[1]])
        crest = c + scale * np.column_stack(
            [82.0 * np.cos(crest_t), (62.0 + 4 * jit[2]) * np.sin(crest_t)]
        )
        if crest_rise_mm > 0:
            crest[:, 1] += crest_rise_mm * np.sin(crest_t)
        lower = c + scale * (
            np.array(
                [(78.0, -22.0), (66.0, -62.0), (45.0, -74.0), (15.0, -70.0), (-12.0, -52.0),
                 (-40.0, -40.0), (-66.0, -12.0)]
            )
        )
        wing = np.vstack([crest, lower])
        total += _solid([wing], shape, to_local, thickness_mm=2.2, rise_mm=25.0, cortex_mm=0.0)
        total += _tube(
            crest, np.full(len(crest), 2.5), shape, to_local, thickness_mm=3.0, cortex_mm=1.5
        )
        # the greater sciatic notch and the pelvic brim: curved cortical lines
        notch = _bezier(lower[4], c + scale * np.array([0.0, -60.0]), lower[2], 30)
        total += _tube(notch, np.full(30, 1.5), shape, to_local, thickness_mm=3.0, cortex_mm=3.0)
        brim = _bezier(
            (22.0 + dx, -42.0 + dy), (30.0 + dx, -100.0 + dy), (92.0 + dx, -140.0 + dy), 40
        )
        total += _tube(brim, np.full(40, 1.2), shape, to_local, thickness_mm=1.5, cortex_mm=1.8)
        # femoral head and acetabular roof
        head_c = c + np.array([48.0, -122.0]) * scale + np.array([0.0, 3 * jit[3]])
        r_head = 23.0 * scale
        dist = np.hypot(x - head_c[0], y - head_c[1])
        chord = 2.0 * np.sqrt(np.clip(r_head**2 - dist**2, 0.0, None))
        rim = np.exp(-np.abs(dist - r_head) / 0.8) * 5.0 * (dist < r_head + 3)
        total += (MU_TRAB * 0.9 * chord + MU_CORT * rim).astype(np.float32)
        arc = np.linspace(0.5, 2.7, 30)
        roof = head_c + (r_head + 2.5) * np.column_stack([np.cos(arc), np.sin(arc)])
        total += _tube(roof, np.full(30, 2.5), shape, to_local, thickness_mm=8.0, cortex_mm=3.0)
    tex = 1.0 + 0.12 * _filtered_noise(rng, shape, (0.8 / res, 0.8 / res))
    tex2 = 1.0 + 0.10 * _filtered_noise(rng, shape, (4.0 / res, 4.0 / res))
    return Patch((total * tex * tex2).astype(np.float32), to_local)


def gas_patch(res: float, rng: np.random.Generator, *, depth_mm: float) -> Patch:
    """Bowel gas in front of the spine, in the frame of L3 (negative attenuation).

    Colon loops (elongated lucencies with haustral folds), small bowel bubbles
    and mottled stool gas, 8-35 mm thick.
    """
    x, y, shape, to_local = _grid(depth_mm + 4.0, depth_mm + 190.0, -150.0, 110.0, res)
    gas = np.zeros(shape, np.float32)
    n_loops = int(rng.integers(4, 8))
    for _ in range(n_loops):
        cx, cy = rng.uniform(depth_mm + 15, depth_mm + 170), rng.uniform(-140, 100)
        ax, ay = rng.uniform(8, 26), rng.uniform(5, 14)
        ang = rng.uniform(0, np.pi)
        xr = (x - cx) * np.cos(ang) + (y - cy) * np.sin(ang)
        yr = -(x - cx) * np.sin(ang) + (y - cy) * np.cos(ang)
        haustra = 1.0 + 0.18 * np.cos(2 * np.pi * xr / rng.uniform(9, 16))
        r2 = (xr / ax) ** 2 + (yr / (ay * haustra)) ** 2
        gas += rng.uniform(10, 28) * np.clip(1.0 - r2, 0.0, 1.0) ** 0.7
    n_bubbles = int(rng.integers(6, 16))
    cx = rng.uniform(depth_mm + 10, depth_mm + 180, n_bubbles)
    cy = rng.uniform(-145, 105, n_bubbles)
    rr = rng.uniform(2.5, 7.0, n_bubbles)
    for i in range(n_bubbles):
        r2 = ((x - cx[i]) ** 2 + (y - cy[i]) ** 2) / rr[i] ** 2
        gas += 2 * rr[i] * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
    mottle = _filtered_noise(rng, shape, (1.2 / res, 1.2 / res))
    stool = _filtered_noise(rng, shape, (14.0 / res, 14.0 / res))
    gas += 6.0 * np.clip(mottle - 0.8, 0.0, None) * (stool > 0.6)
    # fade out towards the spine so gas never sits inside the bones' plane
    fade = np.clip((x - depth_mm - 4.0) / 12.0, 0.0, 1.0)
    gas = cv2.GaussianBlur((gas * fade).astype(np.float32), (0, 0), 2.5 / res)
    return Patch((-MU_WATER * gas).astype(np.float32), to_local)
