"""Detection of the lumbar bodies L1–S1 on a single lateral film, from nothing.

A classical pipeline, no learned weights:

1. **Body candidates.**  On a locally normalised copy of the film (exposure,
   window and heel effect cancel), a generic body template — a bright block
   (endplate depth D, height 0.75 D) between two dark disc bands — is matched
   by masked normalised cross-correlation over rotations (±60°) and a few body
   sizes (from the pixel spacing when known, else from the film size).
   Non-maximum suppression leaves a few dozen candidates with a pose each.
2. **Column.**  Dynamic programming links candidates into the best chain of
   bodies one pitch apart (0.8–1.35 D), each below the previous one along its
   own axis and turned by less than 25° from it — a column of vertebrae, not
   ribs, bowel gas or labels.
3. **Sacrum and labels.**  The chain is followed downwards; the lowest body
   with a disc below it and bone after the disc is L5, and the bone below that
   disc is S1 (the sacrum has no disc inside it).  Levels are labelled from
   the sacrum upwards (L5, L4, …), so thoracic bodies above L1 or a missing
   top of the film do not shift the labels.
4. **Corners.**  Each body's block corners are snapped to the cortical outline
   by :func:`measure.refine_corners`; S1's superior corners likewise.
5. **Facing.**  Lumbar discs open anteriorly (lordosis at L3–S1 in flexion and
   extension alike): the side where the L3–S1 disc spaces are taller is
   anterior, which assigns ``AS, PS, PI, AI``.

Each body gets a confidence in [0, 1] (template correlation, edge support of
the refinement, agreement with the column).  When no column or no sacrum is
found the result is a falsy :class:`LandmarkFailure` whose reason starts with
``"not found: "``.  The loops over sizes and rotations call OpenCV; the chain
search is a dynamic programme over at most ``_MAX_CANDIDATES`` candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from measure._auto_common import (
    Checkpoint,
    LandmarkFailure,
    as_image,
    at_checkpoint,
    local_normalise,
    nan_tolerant,
)
from measure._refine import refine_corners
from measure._registration import level_matrix, resample

__all__ = ["DetectionResult", "detect_vertebrae"]

_TEMPLATE_DEPTH = 24  # pixels: bodies are matched at this size
_ASPECT = 0.75  # body height / endplate depth
_DISC = 0.22  # disc height / endplate depth
_ANGLES_DEG = np.arange(-60, 61, 5)
_MAX_CANDIDATES = 60
_MIN_SCORE = 0.2
_BODY_DEPTH_MM = (31.0, 37.0, 44.0)
_MIN_MEAN_SCORE = 0.45
_DISC_CONTRAST = 0.8  # normalised intensity between a body (or the sacrum) and its disc
_SACRUM_DISC_CONTRAST = 0.5  # lenient: any disc-like band where the sacrum should be
# a band under a body less than this share as dark as the discs above it is a
# fused sacral disc's remnant (or a narrow disc): not trusted as the L5-S1 disc
_REMNANT_RATIO = 0.6
_EDGE_MARGIN = 0.3  # a body closer than this (x depth) to the film's edge may be cut off
_MIN_REFINED_SHARE = 0.6
_MIN_CHAIN = 4  # bodies (sacral segment included) for a column
_MIN_DISC_WIDTH = 0.14  # of the endplate depth
_DEBUG = False  # endplate depth in the image, mm (incl. magnification)


@dataclass(frozen=True)
class DetectionResult:
    """Bodies found on one film.

    Attributes
    ----------
    landmarks : ndarray of shape (V, 4, 2)
        Corners ``AS, PS, PI, AI`` per requested level, pixels; NaN for levels
        not found (see ``body_failures``) and for S1's ``PI``, ``AI``.
    corner_sd_px : ndarray of shape (V, 4)
        Positional SD per corner, pixels (from the refinement's edge fits,
        raised where a corner could not be refined).
    confidence : ndarray of shape (V,)
        Per level, in [0, 1]; NaN where not found.
    body_failures : tuple of (str or None)
        Per level, why it was not found, or None.
    facing : str
        ``"left"`` or ``"right"``: the side of the image the patient faces.
    """

    landmarks: np.ndarray
    corner_sd_px: np.ndarray
    confidence: np.ndarray
    body_failures: tuple[str | None, ...]
    facing: str

    def __bool__(self) -> bool:
        return True


def _body_template(depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Template (+1 body, -1 discs) and mask, in the body frame (x along the endplate)."""
    height = round(_ASPECT * depth)
    disc = max(round(_DISC * depth), 2)
    rows, cols = height + 2 * disc, depth
    template = np.full((rows, cols), -1.0, np.float32)
    template[disc : disc + height] = 1.0
    # cortical rim a little brighter
    template[disc : disc + 2] = template[disc + height - 2 : disc + height] = 1.5
    mask = np.ones((rows, cols), np.uint8)
    return template, mask


def _rotate(template: np.ndarray, mask: np.ndarray, angle_deg: float):
    h, w = template.shape
    diag = int(np.ceil(np.hypot(h, w))) + 2
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), -angle_deg, 1.0)
    matrix[:, 2] += (diag - 1) / 2 - centre
    t = cv2.warpAffine(template, matrix, (diag, diag), flags=cv2.INTER_LINEAR)
    m = cv2.warpAffine(mask, matrix, (diag, diag), flags=cv2.INTER_NEAREST)
    return t, m


def _candidates(norm: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(x, y, angle_deg, score)`` of local maxima of the best rotation's response,
    and the responses of every rotation, shape (A, H, W), indexed by the body centre."""
    template, mask = _body_template(depth)
    best = np.full(norm.shape, -1.0, np.float32)
    best_angle = np.zeros(norm.shape, np.float32)
    responses = np.full((len(_ANGLES_DEG), *norm.shape), -1.0, np.float32)
    for a_index, angle in enumerate(_ANGLES_DEG):
        t, m = _rotate(template, mask, float(angle))
        if t.shape[0] >= norm.shape[0] or t.shape[1] >= norm.shape[1]:
            continue
        response = cv2.matchTemplate(norm, t, cv2.TM_CCOEFF_NORMED, mask=m)
        response = np.nan_to_num(response, nan=-1.0, posinf=-1.0, neginf=-1.0)
        half = t.shape[0] // 2
        full = np.full(norm.shape, -1.0, np.float32)
        full[half : half + response.shape[0], half : half + response.shape[1]] = response
        responses[a_index] = full
        better = full > best
        best = np.where(better, full, best)
        best_angle = np.where(better, angle, best_angle)
    radius = max(int(0.45 * depth), 2)
    dilated = cv2.dilate(best, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    peaks = (best >= dilated) & (best > _MIN_SCORE)
    ys, xs = np.nonzero(peaks)
    scores = best[ys, xs]
    order = np.argsort(-scores)[:_MAX_CANDIDATES]
    cands = np.column_stack([xs[order], ys[order], best_angle[ys, xs][order], scores[order]])
    return cands.astype(np.float64), responses


def _extend_upwards(chain_poses: np.ndarray, responses: np.ndarray, depth: float, count: int) -> np.ndarray:
    """Follow the column up from its top body, one pitch at a time.

    Bodies overlapped by ribs or strongly turned in extension may miss the
    global candidate list; guided by the pose of the body below (and the turn
    between the two bodies below), each is sought in a window of 0.3 pitch and
    ±20° around its predicted pose, and kept if its correlation exceeds 0.3.
    """
    poses = [tuple(p) for p in chain_poses]
    if len(poses) < 2:
        return chain_poses
    pitch = float(np.median(np.linalg.norm(np.diff(chain_poses[:, :2], axis=0), axis=1)))
    _, h, w = responses.shape
    for _ in range(count):
        top, below = np.array(poses[0]), np.array(poses[1])
        turn = np.clip((top[2] - below[2] + 180) % 360 - 180, -15, 15)
        angle = top[2] + turn
        a = np.deg2rad((top[2] + angle) / 2)
        up = -np.array([-np.sin(a), np.cos(a)])
        centre = top[:2] + pitch * up
        r = max(int(0.3 * pitch), 1)
        x0, x1 = int(max(centre[0] - r, 0)), int(min(centre[0] + r + 1, w))
        y0, y1 = int(max(centre[1] - r, 0)), int(min(centre[1] + r + 1, h))
        if x1 <= x0 or y1 <= y0:
            break
        near = np.flatnonzero(np.abs((_ANGLES_DEG - angle + 180) % 360 - 180) <= 20)
        window = responses[near, y0:y1, x0:x1]
        k, iy, ix = np.unravel_index(int(np.argmax(window)), window.shape)
        score = float(window[k, iy, ix])
        if score < 0.3:
            break
        poses.insert(0, (x0 + ix, y0 + iy, float(_ANGLES_DEG[near[k]]), score))
    return np.array(poses, dtype=np.float64)


def _best_chain(cands: np.ndarray, depth: float) -> list[int]:
    """Indices of the highest-scoring chain of candidates, top to bottom."""
    n = cands.shape[0]
    if n == 0:
        return []
    xy = cands[:, :2]
    ang = np.deg2rad(cands[:, 2])
    # body "down" axis (perpendicular to the endplate, towards +y for an upright film)
    down = np.stack([-np.sin(ang), np.cos(ang)], axis=1)
    diff = xy[None, :, :] - xy[:, None, :]  # i -> j
    dist = np.linalg.norm(diff, axis=-1)
    along = np.einsum("ijk,ik->ij", diff, down)
    cos_dir = along / np.maximum(dist, 1e-9)
    turn = np.abs((cands[None, :, 2] - cands[:, None, 2] + 180) % 360 - 180)
    pitch = (_ASPECT + _DISC) * depth
    link = (
        (dist > 0.75 * pitch) & (dist < 1.4 * pitch) & (cos_dir > np.cos(np.deg2rad(28)))
        & (turn < 25)
    )  # fmt: skip
    # longest-path DP in order of position along the mean down axis
    mean_down = down.mean(axis=0)
    order = np.argsort(xy @ mean_down)
    score = cands[:, 3].copy()
    best = score.copy()
    prev = np.full(n, -1)
    for j in order:  # O(n^2) over <= 60 candidates
        incoming = np.flatnonzero(link[:, j])
        if incoming.size:
            k = incoming[np.argmax(best[incoming])]
            if best[k] + score[j] > best[j]:
                best[j] = best[k] + score[j]
                prev[j] = k
    end = int(np.argmax(best))
    chain = [end]
    while prev[chain[-1]] >= 0:
        chain.append(int(prev[chain[-1]]))
    return chain[::-1]


def _block_corners(x: float, y: float, angle_deg: float, depth: float) -> np.ndarray:
    """Corners (top-left, top-right, bottom-right, bottom-left in the body frame), (4, 2)."""
    a = np.deg2rad(angle_deg)
    ex = np.array([np.cos(a), np.sin(a)])  # along the endplate
    ey = np.array([-np.sin(a), np.cos(a)])  # down
    hx, hy = depth / 2, _ASPECT * depth / 2
    c = np.array([x, y])
    return np.array([c - hx * ex - hy * ey, c + hx * ex - hy * ey, c + hx * ex + hy * ey, c - hx * ex + hy * ey])


def _profile_below(
    norm: np.ndarray, corners: np.ndarray, depth: float, steps_depth: np.ndarray | None = None
) -> np.ndarray:
    """Mean normalised intensity along the down axis below a block, from its bottom.

    Sampled at ``steps_depth`` (fractions of the depth; default -0.1 to 0.78 by
    0.02), each the mean across the middle 60 % of the block's width.
    """
    bottom_mid = (corners[2] + corners[3]) / 2
    ex = (corners[2] - corners[3]) / np.linalg.norm(corners[2] - corners[3])
    ey = np.array([-ex[1], ex[0]])
    if np.dot(ey, corners[3] - corners[0]) < 0:
        ey = -ey
    steps = (np.arange(-0.1, 0.8, 0.02) if steps_depth is None else steps_depth) * depth
    across = np.linspace(-0.3, 0.3, 9) * depth
    pts = bottom_mid + steps[:, None, None] * ey + across[None, :, None] * ex
    flat = pts.reshape(-1, 2).astype(np.float32)
    values = cv2.remap(
        norm, flat[:, 0].reshape(len(steps), -1), flat[:, 1].reshape(len(steps), -1),
        cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"),
    )  # fmt: skip
    return np.nanmean(values, axis=1) if np.any(np.isfinite(values)) else np.full(len(steps), np.nan)


def _side_contrast(norm: np.ndarray, blocks: np.ndarray, depth: float) -> float:
    """Mean normalised intensity beside the blocks' +x side minus their -x side.

    Bands 0.7-1.5 depth outside each wall (beyond the spinal canal), over the
    middle half of its height.
    """
    top_left, top_right, bottom_right, bottom_left = (blocks[:, k] for k in range(4))
    ex = top_right - top_left
    ex /= np.linalg.norm(ex, axis=1, keepdims=True)
    out = np.linspace(0.7, 1.5, 11) * depth
    along = np.linspace(0.25, 0.75, 7)
    right = top_right[:, None, :] + along[None, :, None] * (bottom_right - top_right)[:, None, :]
    left = top_left[:, None, :] + along[None, :, None] * (bottom_left - top_left)[:, None, :]
    pts_r = right[:, :, None, :] + out[None, None, :, None] * ex[:, None, None, :]
    pts_l = left[:, :, None, :] - out[None, None, :, None] * ex[:, None, None, :]
    pts = np.concatenate([pts_r.reshape(-1, 2), pts_l.reshape(-1, 2)]).astype(np.float32)
    values = cv2.remap(
        norm, pts[:, 0].reshape(1, -1), pts[:, 1].reshape(1, -1), cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"),
    ).ravel()  # fmt: skip
    half = values.size // 2
    return float(np.nanmean(values[:half]) - np.nanmean(values[half:]))


def _down_axis(corners: np.ndarray) -> np.ndarray:
    """Unit vector from a block's top edge towards its bottom edge."""
    ex = (corners[2] - corners[3]) / np.linalg.norm(corners[2] - corners[3])
    ey = np.array([-ex[1], ex[0]])
    return ey if np.dot(ey, corners[3] - corners[0]) >= 0 else -ey


_SACRUM_STEPS = np.arange(-0.1, 1.2, 0.02)


def _sacrum_evidence(
    norm: np.ndarray, l5_block: np.ndarray, s1_edge: float, depth: float, disc_depth: float
) -> tuple[float, bool]:
    """How surely the bone under the L5-S1 disc is the sacrum: 1, 0.5 or 0; and whether
    a faint band was seen where a disc would be.

    The bone is followed from the S1 endplate downwards.  If it is on the film
    for less than 0.4 depth, it is not seen (0).  If one lumbar-body height
    further down there is a disc (a dark band at least 14 % of the depth tall,
    bone on both sides, as dark as ``_REMNANT_RATIO`` × ``disc_depth``, the
    typical depth of the discs above, and at least ``_SACRUM_DISC_CONTRAST``),
    the bone is a lumbar body and the column was mislabelled (0).  A fainter
    band there (a fused sacral disc's remnant, or a narrow disc) is reported
    as ambiguous.  Otherwise it is the sacrum: 1 when the film shows the bone
    past where such a disc would end (1.1 depth), 0.5 when the film's edge
    comes first.
    """
    down = _down_axis(l5_block)
    top_block = l5_block + down * s1_edge  # its bottom edge lies on the S1 endplate
    prof = _profile_below(norm, top_block, depth, _SACRUM_STEPS)
    off_film = np.flatnonzero((_SACRUM_STEPS > 0.05) & ~np.isfinite(prof))
    seen = _SACRUM_STEPS[off_film[0]] if off_film.size else _SACRUM_STEPS[-1]
    if seen < 0.4:
        return 0.0, False
    s1_block = top_block + down * (_ASPECT * depth)
    strong = max(_SACRUM_DISC_CONTRAST, _REMNANT_RATIO * disc_depth) if np.isfinite(disc_depth) else _SACRUM_DISC_CONTRAST
    disc, _, _ = _has_disc_below(norm, s1_block, depth, strong, need_bone=False)
    if disc:
        return 0.0, False
    faint, _, _ = _has_disc_below(norm, s1_block, depth, _SACRUM_DISC_CONTRAST, need_bone=False)
    return (1.0 if seen >= 1.1 else 0.5), faint


def _has_disc_below(
    norm: np.ndarray,
    corners: np.ndarray,
    depth: float,
    contrast: float = _DISC_CONTRAST,
    need_bone: bool = True,
) -> tuple[bool, float, float]:
    """Whether a dark disc and then bone follow the block; the disc's far edge offset; its depth.

    With ``need_bone=False`` a dark band alone counts (the bone after it may be
    off the film or faint).  The depth is how much darker the band is than the
    body above it (normalised intensity; NaN when the profile leaves the film).
    """
    prof = _profile_below(norm, corners, depth)
    steps = np.arange(-0.1, 0.8, 0.02)
    needed = np.ones(steps.shape, bool) if need_bone else steps < 0.35
    if not np.all(np.isfinite(prof[needed])):
        return False, np.nan, np.nan
    if not need_bone:
        prof = np.where(np.isfinite(prof), prof, -np.inf)
    disc_zone = (steps > 0.0) & (steps < 0.35)
    bone_zone = (steps > 0.2) & (steps < 0.7)
    k_disc = np.flatnonzero(disc_zone)[np.argmin(prof[disc_zone])]
    after = bone_zone & (steps > steps[k_disc] + 0.05)
    if not np.any(after):
        return False, np.nan, np.nan
    bone = float(np.max(prof[after]))
    body = np.mean(prof[steps < 0.0])
    dark = prof[k_disc]
    # a disc is a dark band of some height; a sacral remnant line is thin
    level = dark + 0.5 * (min(body, bone) - dark)
    band = prof < level
    lo_k = hi_k = k_disc
    while lo_k > 0 and band[lo_k - 1]:
        lo_k -= 1
    while hi_k < len(prof) - 1 and band[hi_k + 1]:
        hi_k += 1
    width = (hi_k - lo_k + 1) * 0.02
    bone_ok = bone - dark > contrast or not need_bone
    ok = (body - dark > contrast) and bone_ok and width >= _MIN_DISC_WIDTH
    # superior endplate of the next bone: first crossing above the midpoint after the disc
    mid = (dark + bone) / 2
    idx = np.flatnonzero(after & (prof > mid))
    edge = steps[idx[0]] * depth if idx.size else np.nan
    return bool(ok), float(edge), float(body - dark)


@nan_tolerant
def detect_vertebrae(
    image: np.ndarray,
    *,
    levels: tuple[str, ...] | list[str] = ("L1", "L2", "L3", "L4", "L5", "S1"),
    pixel_spacing_mm: float | None = None,
    checkpoint: Checkpoint | None = None,
) -> DetectionResult | LandmarkFailure:
    """Find the lumbar bodies and S1 on one lateral film and propose their corners.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The film, bone bright (negate MONOCHROME1 pixel values), upright
        (head towards the top, rotated by less than about 60°).
    levels : sequence of str
        Levels wanted, top to bottom, ending with ``"S1"``; labels are
        counted from the sacrum upwards.
    pixel_spacing_mm : float, optional
        Mean pixel spacing; narrows the body sizes searched.
    checkpoint : callable, optional
        Called with the fraction of the work done between body sizes searched;
        raising from it (:class:`measure.Cancelled`) stops the detection.

    Returns
    -------
    DetectionResult or LandmarkFailure
        A failure whose reason starts with ``"not found: "`` when the film is
        blank, no column of bodies is found or the sacrum is not seen.
    """
    img = as_image(image)
    levels = tuple(levels)
    if not levels or levels[-1] != "S1":
        raise ValueError(f"levels: must end with 'S1', got {levels}")
    h, w = img.shape
    lo, hi = np.percentile(img[:: max(h // 256, 1), :: max(w // 256, 1)], [1, 99])
    if not hi > lo:
        return LandmarkFailure("not found: the film is blank or uniform")
    if pixel_spacing_mm is not None and pixel_spacing_mm > 0:
        depths = np.array(_BODY_DEPTH_MM) / pixel_spacing_mm
    else:
        depths = min(h, w) * np.geomspace(1 / 14, 1 / 5, 6)

    best = None
    for k, depth in enumerate(depths):
        at_checkpoint(checkpoint, 0.8 * k / len(depths))
        f = min(1.0, _TEMPLATE_DEPTH / depth)
        small = resample(img, f)
        norm = local_normalise(small, 0.6 * _TEMPLATE_DEPTH)
        d = depth * f
        cands, responses = _candidates(norm, round(d))
        chain = _best_chain(cands, d)
        if not chain:
            continue
        total = float(np.sum(cands[chain, 3]))
        if best is None or total > best[0]:
            best = (total, depth, f, norm, cands[chain], responses)
    if best is None or len(best[4]) < _MIN_CHAIN:
        return LandmarkFailure("not found: no column of vertebral bodies on the film")
    _, depth, f, norm, poses, responses = best
    d = depth * f
    poses = _extend_upwards(poses, responses, d, len(levels))
    chain = list(range(len(poses)))
    cands = poses
    blocks = np.array([_block_corners(*cands[k, :3], d) for k in chain])  # (n, 4, 2) small scale
    # walk down the chain: the lowest body followed by a disc and bone is L5
    l5 = None
    s1_edge = np.nan
    # L5 has a real disc below it and one above it (sacral segments are
    # separated by thin remnant lines at most)
    discs = [_has_disc_below(norm, blocks[pos], d) for pos in range(len(chain))]
    # ... and its disc is about as dark as the discs above: the lucent band of a
    # fused sacral disc can pass for a disc on its own (then S1 would be called
    # L5 and every label shift by one level)
    ambiguous = False
    disc_depth = np.nan
    for pos in range(len(chain) - 1, 0, -1):
        if not (discs[pos][0] and discs[pos - 1][0]):
            continue
        above = [discs[p][2] for p in range(max(pos - 4, 0), pos) if discs[p][0]]
        disc_depth = float(np.median(above))
        if discs[pos][2] < _REMNANT_RATIO * disc_depth:
            ambiguous = True
            continue
        l5, s1_edge = pos, discs[pos][1]
        break
    if l5 is None:
        return LandmarkFailure("not found: no sacrum below the column (no L5-S1 disc seen)")
    # the bone below that disc must be the sacrum: on the film, and without a
    # disc of its own one body height further down (else it is a lumbar body
    # and the film is cropped above the sacrum)
    sacrum, faint_below = _sacrum_evidence(norm, blocks[l5], s1_edge, d, disc_depth)
    ambiguous = ambiguous or faint_below
    if sacrum == 0.0:
        return LandmarkFailure(
            "not found: the sacrum is not seen below the column (film cropped above it?)"
        )
    lumbar = levels[:-1]
    n_lumbar = len(lumbar)
    if l5 + 1 < min(_MIN_CHAIN - 1, n_lumbar):
        return LandmarkFailure(
            f"not found: only {l5 + 1} vertebral bodies above the sacrum (a column needs "
            f"{min(_MIN_CHAIN - 1, n_lumbar)})"
        )
    found_pos = list(range(l5, l5 - n_lumbar, -1))[::-1]  # chain positions for L1..L5
    # S1 superior corners: the bottom corners of L5 moved across the disc
    bottom = blocks[l5][[2, 3]]
    ex = (blocks[l5][2] - blocks[l5][3]) / np.linalg.norm(blocks[l5][2] - blocks[l5][3])
    ey = np.array([-ex[1], ex[0]])
    if np.dot(ey, blocks[l5][3] - blocks[l5][0]) < 0:
        ey = -ey
    s1_block_top = bottom + s1_edge * ey  # (right, left) in body frame
    # back to full resolution
    to_full = np.linalg.inv(np.vstack([level_matrix(f), [0, 0, 1]]))[:2]
    blocks_full = blocks @ to_full[:, :2].T + to_full[:, 2]
    s1_full = s1_block_top @ to_full[:, :2].T + to_full[:, 2]

    # facing: discs open anteriorly at L3-S1 (lordosis)
    def disc_gaps(anterior_is_left: bool) -> float:
        total = 0.0
        a, p = (0, 1) if anterior_is_left else (1, 0)  # top-left/top-right of a block
        for pos in range(max(l5 - 2, 0), l5 + 1):
            upper = blocks_full[pos]
            lower_top = blocks_full[pos + 1][[0, 1]] if pos + 1 < len(chain) and pos < l5 else s1_full[::-1]
            # upper inferior corners: bottom-left = 3, bottom-right = 2
            ai_u = upper[3] if anterior_is_left else upper[2]
            pi_u = upper[2] if anterior_is_left else upper[3]
            total += np.linalg.norm(ai_u - lower_top[a]) - np.linalg.norm(pi_u - lower_top[p])
        return total

    # posterior elements (pedicles, facets, spinous processes) make the side
    # behind the bodies brighter than the soft tissue in front of them
    behind = _side_contrast(norm, blocks[max(l5 - n_lumbar + 1, 0) : l5 + 1], d)
    gaps = disc_gaps(True) / d
    facing_left_score = gaps + behind  # both O(1): depth units / normalised intensity
    facing = "left" if facing_left_score >= 0 else "right"
    # in the block frame the "left" of an upright body is its -x side
    if facing == "left":
        order = [0, 1, 2, 3]  # AS=top-left, PS=top-right, PI=bottom-right, AI=bottom-left
        s1_as_ps = s1_full[[1, 0]]  # s1_full is (bottom-right, bottom-left) shifted
    else:
        order = [1, 0, 3, 2]
        s1_as_ps = s1_full[[0, 1]]

    corners = np.full((len(levels), 4, 2), np.nan)
    confidence = np.full(len(levels), np.nan)
    failures: list[str | None] = [None] * len(levels)
    for v, pos in enumerate(found_pos):
        if pos < 0:
            failures[v] = f"{levels[v]}: not found: above the top of the column found (cropped film?)"
            continue
        block = blocks_full[pos]
        margin = _EDGE_MARGIN * depth
        if (
            np.any(block < margin - 0.5) or np.any(block[:, 0] > w - 0.5 - margin)
            or np.any(block[:, 1] > h - 0.5 - margin)
        ):
            failures[v] = f"{levels[v]}: cut off by the edge of the film"
            continue
        corners[v] = block[order]
        confidence[v] = float(np.clip((cands[chain[pos], 3] - _MIN_SCORE) / 0.4, 0, 1))
    corners[-1, :2] = s1_as_ps
    lumbar_conf = confidence[:n_lumbar]
    confidence[-1] = float(np.nanmin(lumbar_conf)) if np.any(np.isfinite(lumbar_conf)) else 0.5
    # the labels hang on the sacrum: an unsure sacrum makes every level unsure
    confidence = confidence * sacrum
    # a faint band at the sacral end of the column (read as a remnant here) could
    # also be a narrow L5-S1 disc: the labels may be one level off
    if ambiguous:
        confidence = confidence * 0.5

    refined = refine_corners(img, corners, search_fraction=0.25, max_move_fraction=0.4, levels=levels)
    sd = np.full(corners.shape[:2], np.nan)
    if refined:
        ok = refined.refined
        corners = np.where(ok[:, None, None], refined.landmarks, corners)
        sd = np.where(ok[:, None], refined.corner_sd_px, 0.08 * depth)
        confidence = np.where(ok, confidence, confidence * 0.5)
    else:
        sd[:] = 0.08 * depth
        confidence = confidence * 0.5
    sd = np.where(np.isfinite(corners[..., 0]), sd, np.nan)
    if all(failures[v] is not None for v in range(n_lumbar)):
        return LandmarkFailure("not found: no lumbar body above the sacrum")
    found = np.array([f is None for f in failures])
    scores = np.array([cands[chain[p], 3] for p in found_pos if p >= 0])
    refined_share = float(np.mean(refined.refined[found])) if refined else 0.0
    if np.mean(scores) < _MIN_MEAN_SCORE or refined_share < _MIN_REFINED_SHARE:
        return LandmarkFailure(
            "not found: the shapes found do not look like vertebral bodies "
            f"(mean correlation {np.mean(scores):.2f}, outlines confirmed {refined_share:.0%})"
        )
    return DetectionResult(corners, sd, confidence, tuple(failures), facing)
