"""Corners of every body from one click inside each (or from the two end bodies).

The semi-automatic path of issue 12 §4.  The reader clicks once inside each
vertebral body, top to bottom (or only inside the first and the last body,
e.g. L1 and S1, and the bodies in between are found along the column); the
click spacing gives the local size of the column (one *pitch* = body height +
disc height), and the image gives everything else:

1. **Bodies between clicks**: walking down from the upper click, the body
   just outlined is matched (normalised cross-correlation, ±12° and ±25 % of a
   pitch around the position one pitch further along the column) to find the
   next one; the walk must arrive within 0.45 pitch of the next click after
   exactly the number of bodies the labels say lie between, otherwise the
   bodies between are refused (a wrong count would shift the labels).
2. **Box per body**: in a frame aligned with the column, sampled at a fixed
   number of pixels per pitch, the superior and inferior endplates are the
   strongest dark-to-bright and bright-to-dark steps along the column axis
   0.45–0.95 pitch apart; the walls are read on the lower half of the body
   (below the pedicles) and chosen between the innermost and the strongest
   pair of steps by the typical depth/height ratio; the tilt (±21°) is the
   one with the sharpest endplates.  S1's endplate is sought just below L5's
   (a lumbosacral disc away), its depth near L5's.  A second pass re-fits
   every body along the column found (docs/one-click-landmarks.md).
3. **Facing** (which wall is anterior) from anatomy that holds in flexion
   as well as extension: behind the posterior wall, the pedicles (bright, at
   the upper half of each body) alternate with the neural foramina (dark, at
   the lower half and the disc); in front of the anterior wall the soft
   tissue does not.  Second cue: the sacral endplate descends anteriorly on
   an upright lateral film (sacral slope).  A given ``facing`` overrides
   both; disagreement is reported (``facing_evidence["sure"]``).
4. **Refinement**: the boxes go to :func:`measure.refine_corners` (corners
   may move up to 25 % of the depth) to reach the cortical corners,
   sub-pixel, wedge shape included.  A body refinement rejects keeps its box
   corners, flagged, with the reason.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import cv2
import numpy as np

from measure._auto_common import LandmarkFailure, as_image, nan_tolerant
from measure._refine import refine_corners
from measure._threads import single_threaded_call

__all__ = ["SeededResult", "corners_from_seeds"]

_PX_PER_PITCH = 40.0  # working resolution of the box fit
_ANGLES_DEG = np.arange(-21.0, 21.1, 3.0)
_HEIGHT_RANGE = (0.45, 0.95)  # body height / pitch
_DEPTH_RANGE = (0.65, 1.45)  # endplate depth / pitch
_DEPTH_TO_HEIGHT = (0.95, 1.65)
_TYPICAL_DEPTH_TO_HEIGHT = 1.25  # lumbar body: ~35 mm deep, ~27 mm high
_WALL_ROWS = (0.5, 0.88)  # part of the body height (from the superior endplate) where walls are read
_SACRAL_WALL_ROWS = (0.05, 0.4)  # S1: just under its endplate (the sacrum narrows and turns below)  # endplate depth / body height (lumbar bodies, sacrum)
_WALK_ANGLES_DEG = np.arange(-12.0, 12.1, 4.0)
_ARRIVAL_TOLERANCE = 0.45  # pitch
_MAX_MOVE = 0.25  # of the depth, for refinement
_BOX_SD_FRACTION = 0.06
# foramen cue (pedicle-level minus foramen-level brightness behind each wall, in SDs of the
# film): below this it does not count; realistic phantoms gave |cue| >= 0.58 (23/23 right)
_FORAMEN_MIN = 0.25  # SD of an unrefined box corner, fraction of the depth


@dataclass(frozen=True)
class SeededResult:
    """Corners found from clicks inside the bodies.

    Attributes
    ----------
    landmarks : ndarray of shape (V, 4, 2)
        Corners ``AS, PS, PI, AI`` per body, pixels; S1 (the last body when
        ``last_is_sacrum``) has NaN ``PI``, ``AI``; NaN for bodies not found.
    corner_sd_px : ndarray of shape (V, 4)
        Positional SD per corner (per axis), pixels: from the refinement's
        edge fits, or a fraction of the depth for a box that was not refined.
    refined : ndarray of bool, shape (V,)
        Bodies whose corners were snapped to the cortex by refinement.
    clicked : ndarray of bool, shape (V,)
        Bodies with a click (the others were found along the column).
    quality : ndarray of shape (V,)
        Edge contrast of the box: the mean step across its four sides as a
        fraction of the film's 1–99 % intensity range (typically 0.02–0.2);
        NaN where not found.
    facing : {'left', 'right'}
        Side of the image the anterior walls are on.
    facing_evidence : dict
        ``{"foramen": score, "sacral_slope_deg": angle or None,
        "posterior_elements": score, "agree": bool or None, "sure": bool,
        "given": bool}``; positive values vote for ``facing``.  ``sure`` is
        False when the foramen cue is too weak or the sacral slope disagrees
        with it: ask the reader.
    body_failures : tuple of (str or None)
        Per body, why it was not found, or why it was not refined.
    pitch_px : ndarray of shape (V,)
        Local pitch (body + disc height) used per body, pixels.
    """

    landmarks: np.ndarray
    corner_sd_px: np.ndarray
    refined: np.ndarray
    clicked: np.ndarray
    quality: np.ndarray
    facing: str
    facing_evidence: dict = field(default_factory=dict)
    body_failures: tuple[str | None, ...] = ()
    pitch_px: np.ndarray | None = None

    def __bool__(self) -> bool:
        return True


def _frame_matrix(centre: np.ndarray, axis: np.ndarray, scale: float, size: int) -> np.ndarray:
    """Affine map from patch (col, row) to image (x, y) for ``cv2.warpAffine`` with WARP_INVERSE_MAP.

    Patch column runs along ``normal`` (= axis turned +90°), row along ``axis``;
    the patch centre is ``centre``; one patch pixel is ``scale`` image pixels.
    """
    normal = np.array([-axis[1], axis[0]])
    half = (size - 1) / 2
    m = np.empty((2, 3))
    m[:, 0] = scale * normal
    m[:, 1] = scale * axis
    m[:, 2] = centre - scale * half * (normal + axis)
    return m


def _sample(image: np.ndarray, centre, axis, scale: float, size: int) -> np.ndarray:
    m = _frame_matrix(np.asarray(centre, float), np.asarray(axis, float), scale, size)
    return cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT,
    )  # fmt: skip


def _rotate(axis: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    a = np.deg2rad(angles_deg)[:, None]
    c, s = np.cos(a), np.sin(a)
    return np.concatenate([c * axis[0] - s * axis[1], s * axis[0] + c * axis[1]], axis=1)


def _best_pair(
    deriv: np.ndarray, lo: int, hi: int, min_gap: float, max_gap: float, centre: int,
    first_range: tuple[float, float] | None = None,
):  # fmt: skip
    """Rising step before ``centre`` and falling step after it, ``min_gap``–``max_gap`` apart.

    Parameters
    ----------
    deriv : ndarray of shape (A, N)
        Derivative profiles (one per tilt), bone bright.
    Returns
    -------
    (score (A,), first index (A,), second index (A,))
    """
    n = deriv.shape[1]
    idx = np.arange(n)
    first_ok = (idx >= lo) & (idx < centre)
    if first_range is not None:
        first_ok = (idx >= max(lo, first_range[0])) & (idx <= min(hi, first_range[1]))
    second_ok = (idx > centre) & (idx <= hi)
    gap = idx[None, :] - idx[:, None]  # second - first
    allowed = first_ok[:, None] & second_ok[None, :] & (gap >= min_gap) & (gap <= max_gap)
    score = deriv[:, :, None] - deriv[:, None, :]  # rise at first, fall at second
    score = np.where(allowed[None], score, -np.inf)
    flat = score.reshape(score.shape[0], -1)
    best = np.argmax(flat, axis=1)
    return flat[np.arange(len(best)), best], best // n, best % n


def _innermost_pair(deriv: np.ndarray, lo: int, hi: int, min_gap: float, max_gap: float, centre: int):
    """The walls: the narrowest pair of strong steps around ``centre``.

    Behind the posterior wall the pedicles and facets are bone too, and their
    own outer edge is often the strongest step on that side; the wall is the
    first strong step going outwards.  Among pairs (rising before ``centre``,
    falling after it, ``min_gap``–``max_gap`` apart) scoring at least 60 % of
    the best pair, the narrowest wins.

    Returns
    -------
    (score, first index, second index)
    """
    n = deriv.size
    idx = np.arange(n)
    gap = idx[None, :] - idx[:, None]
    allowed = (
        ((idx >= lo) & (idx < centre))[:, None] & ((idx > centre) & (idx <= hi))[None, :]
        & (gap >= min_gap) & (gap <= max_gap)
    )  # fmt: skip
    # local maxima of the rising step, local minima of the falling one
    rise = np.r_[False, (deriv[1:-1] >= deriv[:-2]) & (deriv[1:-1] >= deriv[2:]), False] & (deriv > 0)
    fall = np.r_[False, (deriv[1:-1] <= deriv[:-2]) & (deriv[1:-1] <= deriv[2:]), False] & (deriv < 0)
    allowed &= rise[:, None] & fall[None, :]
    if not np.any(allowed):
        score, first, second = _best_pair(deriv[None], lo, hi, min_gap, max_gap, centre)
        return float(score[0]), int(first[0]), int(second[0])
    score = np.where(allowed, deriv[:, None] - deriv[None, :], -np.inf)
    strong = score >= 0.6 * np.max(score)
    width = np.where(strong, gap, n + 1)
    first, second = np.unravel_index(int(np.argmin(width)), width.shape)
    return float(score[first, second]), int(first), int(second)


def _fit_box(
    image: np.ndarray, seed: np.ndarray, axis: np.ndarray, pitch: float, is_sacrum: bool,
    endplate_above: np.ndarray | None = None, depth_above: float | None = None,
):  # fmt: skip
    """Rotated box of one body around a click.

    ``endplate_above``: the midpoint of the inferior endplate of the body above
    (for S1: its superior endplate is sought 0.03–0.45 pitch below it, the
    height of a lumbosacral disc, not on the iliac lines further down);
    ``depth_above``: that body's depth, px (S1's endplate is 0.8–1.25 times
    as deep as L5's).

    Returns
    -------
    (corners (4, 2) in order [top-minus, top-plus, bottom-plus, bottom-minus] where
    minus/plus are the sides along -normal/+normal, axis (2,), strength float, depth px)
    """
    size = round(2.2 * _PX_PER_PITCH) | 1
    scale = pitch / _PX_PER_PITCH
    half = (size - 1) // 2
    centre = np.asarray(seed, float)
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    p = _PX_PER_PITCH
    strength = np.nan
    box = None
    for _ in range(3):
        axes = _rotate(axis, _ANGLES_DEG)
        patches = np.stack([_sample(image, centre, a, scale, size) for a in axes])  # (A, S, S)
        band = round(0.22 * p)
        # median over the central columns of each column's step along the axis:
        # an endplate crosses every column, a pedicle or gas bubble only some
        central = patches[:, :, half - band : half + band + 1].transpose(0, 2, 1)  # (A, cols, rows)
        dv = np.median(_derivative(central.reshape(-1, size)).reshape(central.shape), axis=1)
        lo, hi = half - int(0.8 * p), half + int(0.8 * p)
        first_range = None
        if endplate_above is not None:
            # row index of the endplate above along each tilt's axis
            rel = (np.asarray(endplate_above) - centre) @ axes.T / scale + half  # (A,)
            first_range = (float(np.max(rel)) + 0.03 * p, float(np.min(rel)) + 0.45 * p)
        score, top, bottom = _best_pair(
            dv, lo, hi, _HEIGHT_RANGE[0] * p, _HEIGHT_RANGE[1] * p, half, first_range
        )  # fmt: skip
        if is_sacrum:  # only the superior endplate matters; the S1-S2 remnant is faint
            score = dv[np.arange(len(top)), top] + 0.5 * (score - dv[np.arange(len(top)), top])
        a = int(np.argmax(score))
        axis = axes[a]
        t, b = top[a], bottom[a]
        wall_rows = _SACRAL_WALL_ROWS if is_sacrum else _WALL_ROWS
        rows = slice(int(t + wall_rows[0] * (b - t)), int(t + wall_rows[1] * (b - t)) + 1)
        # median over the lower rows of each row's step across the axis: the
        # pedicles join the upper half of the body; below them the foramen is
        # dark behind the posterior wall
        dh = np.median(_derivative(patches[a][rows]), axis=0)[None]
        lo, hi = half - int(0.85 * p), half + int(0.85 * p)
        height = float(b - t)
        min_depth = max(_DEPTH_RANGE[0] * p, _DEPTH_TO_HEIGHT[0] * height)
        max_depth = max(min(_DEPTH_RANGE[1] * p, _DEPTH_TO_HEIGHT[1] * height), min_depth + 1)
        if is_sacrum and depth_above is not None:
            min_depth, max_depth = 0.8 * depth_above / scale, 1.25 * depth_above / scale
        if is_sacrum:  # no pedicle over the sacral walls just under the endplate
            ws, ls, rs = _best_pair(dh, lo, hi, min_depth, max_depth, half)
            wscore, left, right = float(ws[0]), int(ls[0]), int(rs[0])
        else:
            # innermost strong pair (a pedicle's outer edge behind the wall) or the
            # strongest pair (a pedicle's front edge over the body): the one whose
            # depth is nearer the typical lumbar depth/height ratio
            cands = [_innermost_pair(dh[0], lo, hi, min_depth, max_depth, half)]
            ws, ls, rs = _best_pair(dh, lo, hi, min_depth, max_depth, half)
            cands.append((float(ws[0]), int(ls[0]), int(rs[0])))
            misfit = [abs((c[2] - c[1]) / max(height, 1.0) - _TYPICAL_DEPTH_TO_HEIGHT) for c in cands]
            wscore, left, right = cands[int(np.argmin(misfit))]
        normal = np.array([-axis[1], axis[0]])
        offs = np.array([[left, t], [right, t], [right, b], [left, b]], float) - half
        box = centre + scale * (offs[:, :1] * normal + offs[:, 1:] * axis)
        new_centre = centre + scale * (((left + right) / 2 - half) * normal + ((t + b) / 2 - half) * axis)
        strength = float(score[a] + wscore)
        if np.linalg.norm(new_centre - centre) < 0.5 * scale:
            break
        centre = new_centre
    depth = float(np.linalg.norm(box[1] - box[0]))
    return box, axis, strength, depth


def _derivative(profiles: np.ndarray) -> np.ndarray:
    """Derivative along the last axis of (N, S) profiles after Gaussian smoothing (sigma 1.2)."""
    return np.gradient(_smooth(profiles), axis=-1)


def _smooth(profiles: np.ndarray) -> np.ndarray:
    """Gaussian smoothing (sigma 1.2 samples) along the last axis of (A, N) profiles."""
    return cv2.GaussianBlur(profiles.astype(np.float32), (0, 0), sigmaX=1.2, sigmaY=1e-3)


def _walk(image, box, axis, pitch, template_scale) -> tuple[np.ndarray, np.ndarray, float]:
    """Find the body one pitch below a fitted box; returns (centre, axis, correlation)."""
    centre = box.mean(axis=0)
    size_t = round(1.1 * _PX_PER_PITCH) | 1
    template = _sample(image, centre, axis, template_scale, size_t)
    predicted = centre + pitch * axis
    size_s = size_t + 2 * round(0.3 * _PX_PER_PITCH)
    best = (-2.0, predicted, axis)
    for a in _rotate(axis, _WALK_ANGLES_DEG):
        search = _sample(image, predicted, a, template_scale, size_s)
        ncc = cv2.matchTemplate(search, template, cv2.TM_CCOEFF_NORMED)
        r, c = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
        if ncc[r, c] > best[0]:
            off = np.array([c - (ncc.shape[1] - 1) / 2, r - (ncc.shape[0] - 1) / 2])
            normal = np.array([-a[1], a[0]])
            found = predicted + template_scale * (off[0] * normal + off[1] * a)
            best = (float(ncc[r, c]), found, a)
    return best[1], best[2], best[0]


@single_threaded_call
@nan_tolerant
def corners_from_seeds(
    image: np.ndarray,
    seeds: np.ndarray,
    *,
    last_is_sacrum: bool = True,
    facing: str | None = None,
    levels: tuple[str, ...] | list[str] | None = None,
) -> SeededResult | LandmarkFailure:
    """Corners ``AS, PS, PI, AI`` of every body from one click inside each.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        Lateral film, bone bright (as :func:`app.autolandmarks.film_image` gives).
    seeds : ndarray of shape (V, 2)
        One point ``(x, y)`` in pixels inside each body, top to bottom; NaN
        for a body to be found along the column between two clicked bodies.
        At least the first and the last body must be clicked.
    last_is_sacrum : bool
        The last body is S1: only its superior corners are returned.
    facing : {'left', 'right'}, optional
        Side of the image the patient's front is on, if known (from the
        reader or the other film); estimated from the image otherwise.
    levels : sequence of str, optional
        Labels used in the reasons.

    Returns
    -------
    SeededResult or LandmarkFailure
        A failure (falsy) for a blank film, fewer than two clicks, clicks
        outside the film or clicks that are not in order down the column.

    Notes
    -----
    Costs a few milliseconds per body (a dozen 89 × 89 warps and a pair search
    on 1-D profiles) plus one refinement; see the module docstring for the
    steps and what each refusal means.
    """
    img = as_image(image)
    pts = np.asarray(seeds, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"seeds: expected shape (V, 2), got {pts.shape}")
    n = pts.shape[0]
    names = list(levels) if levels is not None else [f"body {i + 1}" for i in range(n)]
    if len(names) != n:
        raise ValueError(f"levels: {len(names)} labels for {n} seeds")
    if facing not in (None, "left", "right"):
        raise ValueError(f"facing: expected 'left', 'right' or None, got {facing!r}")
    clicked = np.all(np.isfinite(pts), axis=1)
    if clicked.sum() < 2 or not clicked[0] or not clicked[-1]:
        return LandmarkFailure(
            "need a click inside the first and the last body at least (e.g. L1 and S1)"
        )
    h, w = img.shape
    inside = (pts[clicked, 0] >= 0) & (pts[clicked, 0] <= w - 1) & (pts[clicked, 1] >= 0) & (pts[clicked, 1] <= h - 1)
    if not np.all(inside):
        return LandmarkFailure("a click lies outside the film")
    lo, hi = np.percentile(img[:: max(h // 256, 1), :: max(w // 256, 1)], [1, 99])
    if not hi > lo:
        return LandmarkFailure("the film is blank or uniform: no body to outline")

    idx = np.flatnonzero(clicked)
    steps = np.diff(pts[idx], axis=0) / np.diff(idx)[:, None]  # per body step between clicks
    step_len = np.linalg.norm(steps, axis=1)
    if np.any(step_len < 8):
        return LandmarkFailure("two clicks are (almost) on the same spot: one click inside each body")
    # clicks must go one way down the column: consecutive steps turn < 60°
    if len(steps) > 1:
        cosines = np.sum(steps[1:] * steps[:-1], axis=1) / (step_len[1:] * step_len[:-1])
        if np.any(cosines < 0.5):
            return LandmarkFailure("the clicks are not in order along the column (top to bottom, one per body)")
    # Pitch and axis per body, interpolated between clicks
    body_step = np.empty((n, 2))
    for k, (a, b) in enumerate(itertools.pairwise(idx)):
        body_step[a:b] = steps[k]
    body_step[idx[-1]] = steps[-1]
    pitch = np.linalg.norm(body_step, axis=1)
    if len(idx) > 2:  # central differences at the clicked inner bodies
        for j in range(1, len(idx) - 1):
            pitch[idx[j]] = 0.5 * (step_len[j - 1] + step_len[j])
            body_step[idx[j]] = 0.5 * (steps[j - 1] + steps[j])
    axis = body_step / np.linalg.norm(body_step, axis=1, keepdims=True)
    if last_is_sacrum and n >= 2:  # S1's click sits lower in its body: use the step above
        pitch[-1] = pitch[-2]

    # Work at ~_PX_PER_PITCH px per pitch: blur the film once for the box fit
    blur_sigma = max(float(np.median(pitch)) / _PX_PER_PITCH * 0.5, 0.0)
    work = cv2.GaussianBlur(img, (0, 0), blur_sigma) if blur_sigma > 0.6 else img

    boxes = np.full((n, 4, 2), np.nan)
    strength = np.full(n, np.nan)
    failures: list[str | None] = [None] * n
    v = 0
    centre = pts[0]
    while v < n:
        is_s1 = last_is_sacrum and v == n - 1
        above = None
        if is_s1 and v > 0 and np.isfinite(boxes[v - 1, 0, 0]):
            axis[v] = axis[v - 1]  # the sacral endplate turns < 21° from L5's (lumbosacral angle)
            above = boxes[v - 1, 2:].mean(axis=0)
        depth_above = float(np.linalg.norm(boxes[v - 1, 2] - boxes[v - 1, 3])) if above is not None else None
        box, ax, s, _ = _fit_box(work, centre, axis[v], pitch[v], is_s1, above, depth_above)
        boxes[v], strength[v] = box, s
        axis[v] = ax
        nxt = v + 1
        if nxt >= n:
            break
        if clicked[nxt]:
            centre = pts[nxt]
            v = nxt
            continue
        # walk down to the next clicked body
        target = idx[idx > v][0]
        chain = []
        cur_box, cur_axis = box, ax
        ok = True
        for u in range(nxt, target):
            found, found_axis, corr = _walk(work, cur_box, cur_axis, pitch[u], pitch[u] / _PX_PER_PITCH)
            if corr < 0.3:
                ok = False
                break
            b, a2, s2, _ = _fit_box(work, found, found_axis, pitch[u], False)
            chain.append((u, b, a2, s2))
            cur_box, cur_axis = b, a2
        if ok:
            arrival = cur_box.mean(axis=0) + pitch[target - 1] * cur_axis
            miss = np.linalg.norm(arrival - pts[target]) / pitch[target - 1]
            if miss > _ARRIVAL_TOLERANCE + (0.35 if last_is_sacrum and target == n - 1 else 0.0):
                ok = False
        if ok:
            for u, b, a2, s2 in chain:
                boxes[u], axis[u], strength[u] = b, a2, s2
        else:
            span = f"{names[v]} and {names[target]}"
            for u in range(nxt, target):
                failures[u] = (
                    f"{names[u]}: not found between {span}: the bodies found along the column do not "
                    f"lead to the next click (click inside each body instead)"
                )
        centre = pts[target]
        v = target

    found = np.all(np.isfinite(boxes[..., 0]), axis=1)
    boxes, axis, strength = _second_pass(work, boxes, axis, pitch, strength, found, last_is_sacrum)
    # ------------- facing --------------------------------------------------
    evidence = _facing_evidence(work, boxes, axis, pitch, found, last_is_sacrum)
    foramen, slope = evidence["foramen"], evidence["sacral_slope"]
    counts = {
        "foramen": foramen is not None and abs(foramen) >= _FORAMEN_MIN,
        "sacral_slope": slope is not None,  # only set when |slope| >= 8°
    }
    if facing is None:
        if counts["foramen"]:
            facing_out = "right" if foramen > 0 else "left"
        elif counts["sacral_slope"]:
            facing_out = "right" if slope > 0 else "left"
        else:  # no usable cue: the weak brightness cue decides, and says it is unsure
            facing_out = "right" if (evidence["posterior_elements"] or 0.0) >= 0 else "left"
        agree = (
            bool(np.sign(foramen) == np.sign(slope)) if counts["foramen"] and counts["sacral_slope"] else None
        )
        sure = counts["foramen"] and agree is not False
    else:
        facing_out, agree, sure = facing, None, True
    factor = 1.0 if facing_out == "right" else -1.0

    def signed(value, digits):
        return None if value is None else round(float(factor * value), digits)

    facing_evidence = {
        "given": facing is not None,
        "foramen": signed(foramen, 3),
        "sacral_slope_deg": signed(slope, 1),
        "posterior_elements": signed(evidence["posterior_elements"], 3),
        "agree": agree,
        "sure": bool(sure),
    }

    corners = _label_corners(boxes, axis, facing_out)
    if last_is_sacrum:
        corners[-1, 2:] = np.nan
    depth_px = np.linalg.norm(corners[:, 0] - corners[:, 1], axis=-1)
    sd = np.where(found[:, None], _BOX_SD_FRACTION * depth_px[:, None], np.nan) * np.ones((1, 4))
    refined_mask = np.zeros(n, bool)
    if np.any(found):
        result = refine_corners(
            img, np.where(found[:, None, None], corners, np.nan),
            search_fraction=0.2, max_move_fraction=_MAX_MOVE, levels=names,
        )  # fmt: skip
        if result:
            implausible = ~_plausible_outline(result.landmarks)
            refined_mask = result.refined & found & ~implausible
            corners = np.where(refined_mask[:, None, None], result.landmarks, corners)
            sd = np.where(refined_mask[:, None], result.corner_sd_px, sd)
            for u in range(n):
                if found[u] and not refined_mask[u]:
                    failures[u] = (
                        f"not refined: {names[u]}: the refined outline is not a plausible body "
                        "(a corner angle outside 55-125°)" if result.refined[u]
                        else f"not refined: {result.body_failures[u]}"
                    )
        else:
            for u in range(n):
                if found[u]:
                    failures[u] = f"not refined: {result.reason}"
    if last_is_sacrum:
        sd[-1, 2:] = np.nan
    corners = np.where(found[:, None, None], corners, np.nan)
    quality = np.where(found, strength / 4.0 / float(hi - lo), np.nan)
    return SeededResult(
        corners, sd, refined_mask, clicked, quality, facing_out,
        facing_evidence, tuple(failures), pitch,
    )  # fmt: skip


def _plausible_outline(corners: np.ndarray) -> np.ndarray:
    """Per body: every corner angle of the outline within 55–125° (S1: its two superior corners pass).

    Parameters
    ----------
    corners : ndarray of shape (V, 4, 2)

    Returns
    -------
    ndarray of bool, shape (V,)
    """
    prev = np.roll(corners, 1, axis=1) - corners
    nxt = np.roll(corners, -1, axis=1) - corners
    cos = np.sum(prev * nxt, axis=-1) / (np.linalg.norm(prev, axis=-1) * np.linalg.norm(nxt, axis=-1) + 1e-12)
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    ok = (angle >= 55) & (angle <= 125)
    return np.all(ok | ~np.isfinite(angle), axis=1)


def _second_pass(work, boxes, axis, pitch, strength, found, last_is_sacrum):
    """Re-fit every body along the column the first pass found.

    A click-based axis (from L1 to S1 when only the ends are clicked) can be
    far from a body's own axis where the column curves; the centres of the
    boxes found give each body its local axis (central differences) and
    pitch, and each box is fitted again from its own centre.
    """
    boxes, axis, strength = boxes.copy(), axis.copy(), strength.copy()
    n = len(boxes)
    centre = boxes.mean(axis=1)
    lumbar = np.flatnonzero(found[: n - 1] if last_is_sacrum else found)
    for v in lumbar:
        nb = [u for u in (v - 1, v + 1) if 0 <= u < n and found[u] and not (last_is_sacrum and u == n - 1)]
        if not nb:
            continue
        lo_c = centre[v - 1] if v - 1 in nb else centre[v]
        hi_c = centre[v + 1] if v + 1 in nb else centre[v]
        step = (hi_c - lo_c) / (len(nb) if len(nb) == 2 else 1)
        length = float(np.linalg.norm(step))
        if length < 1e-6:
            continue
        box, ax, s, _ = _fit_box(work, centre[v], step / length, length, False)
        boxes[v], axis[v], strength[v] = box, ax, s
    if last_is_sacrum and found[-1] and n >= 2 and found[-2]:
        box, ax, s, _ = _fit_box(
            work, boxes[-1].mean(axis=0), axis[-2], pitch[-1], True, boxes[-2, 2:].mean(axis=0),
            float(np.linalg.norm(boxes[-2, 2] - boxes[-2, 3])),
        )  # fmt: skip
        boxes[-1], axis[-1], strength[-1] = box, ax, s
    return boxes, axis, strength


def _label_corners(boxes: np.ndarray, axis: np.ndarray, facing: str) -> np.ndarray:
    """Box corners (top-minus, top-plus, bottom-plus, bottom-minus) -> AS, PS, PI, AI.

    ``+normal`` is the axis turned +90° (towards -x for a column pointing down
    the image); the anterior side is the one towards ``facing``.
    """
    normal = np.stack([-axis[:, 1], axis[:, 0]], axis=1)
    plus_is_right = normal[:, 0] > 0
    anterior_is_plus = plus_is_right if facing == "right" else ~plus_is_right
    tm, tp, bp, bm = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    ap = anterior_is_plus[:, None]
    as_ = np.where(ap, tp, tm)
    ps = np.where(ap, tm, tp)
    pi = np.where(ap, bm, bp)
    ai = np.where(ap, bp, bm)
    return np.stack([as_, ps, pi, ai], axis=1)


def _facing_evidence(work, boxes, axis, pitch, found, last_is_sacrum) -> dict:
    """Scores > 0 vote for the patient facing right (anterior = larger x).

    ``posterior_elements``: mean over lumbar bodies of (band behind the
    left wall − band beyond the right wall) in noise-normalised intensity;
    ``sacral_slope``: signed slope of S1's superior endplate in degrees,
    positive when it descends towards larger x; ``foramen``: median over
    lumbar bodies of (left − right) of the brightness at pedicle level minus
    at foramen level in a band 0.05–0.4 depth beyond each wall, in SDs of the
    film (positive: the foramina are on the left, so the patient faces right).
    """
    lumbar = found.copy()
    if last_is_sacrum:
        lumbar[-1] = False
    post = None
    if np.any(lumbar):
        diffs = []
        spread = float(np.std(work)) + 1e-9
        for v in np.flatnonzero(lumbar):
            centre = boxes[v].mean(axis=0)
            depth = float(np.linalg.norm(boxes[v, 1] - boxes[v, 0]))
            height = float(np.linalg.norm(boxes[v, 3] - boxes[v, 0]))
            normal = np.array([-axis[v, 1], axis[v, 0]])
            right = normal if normal[0] > 0 else -normal
            bands = []
            for side in (-1.0, 1.0):
                offs = np.linspace(0.5 * depth + 0.15 * pitch[v], 0.5 * depth + 0.75 * pitch[v], 12)
                along = np.linspace(-0.35 * height, 0.35 * height, 9)
                grid = centre + side * offs[:, None, None] * right + along[None, :, None] * axis[v]
                xy = grid.reshape(-1, 2).astype(np.float32)
                vals = cv2.remap(work, xy[:, 0].reshape(1, -1), xy[:, 1].reshape(1, -1), cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT)  # fmt: skip
                bands.append(float(np.mean(vals)))
            diffs.append((bands[0] - bands[1]) / spread)  # left brighter -> posterior on the left
        post = float(np.median(diffs))
    foramen = None
    if np.any(lumbar):
        spread = float(np.std(work)) + 1e-9
        votes = []
        for v in np.flatnonzero(lumbar):
            centre = boxes[v].mean(axis=0)
            depth = float(np.linalg.norm(boxes[v, 1] - boxes[v, 0]))
            height = float(np.linalg.norm(boxes[v, 3] - boxes[v, 0]))
            normal = np.array([-axis[v, 1], axis[v, 0]])
            right = normal if normal[0] > 0 else -normal
            disc = max(pitch[v] - height, 0.1 * height)
            offs = 0.5 * depth + np.linspace(0.05, 0.4, 8) * depth
            zones = (np.linspace(-0.35, -0.05, 7) * height, np.linspace(0.2 * height, 0.5 * height + 0.5 * disc, 7))
            contrast = []
            for side in (-1.0, 1.0):
                means = []
                for along in zones:
                    grid = centre + side * offs[:, None, None] * right + along[None, :, None] * axis[v]
                    xy = grid.reshape(-1, 2).astype(np.float32)
                    vals = cv2.remap(work, xy[:, 0].reshape(1, -1), xy[:, 1].reshape(1, -1), cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT)  # fmt: skip
                    means.append(float(np.mean(vals)))
                contrast.append(means[0] - means[1])  # pedicle level minus foramen level
            votes.append((contrast[0] - contrast[1]) / spread)  # > 0: the foramina are on the left
        foramen = float(np.median(votes))
    slope = None
    if last_is_sacrum and found[-1]:
        top = boxes[-1, 1] - boxes[-1, 0]  # along the superior endplate
        if top[0] < 0:
            top = -top
        angle = float(np.degrees(np.arctan2(top[1], top[0])))  # > 0: descends to the right
        if abs(angle) >= 8.0:
            slope = angle
    return {"posterior_elements": post, "sacral_slope": slope, "foramen": foramen}
