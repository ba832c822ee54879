"""Detection of the lumbar bodies L1–S1 on a single lateral film, from nothing.

A classical pipeline, no learned weights:

1. **Body candidates and body size.**  On a locally normalised copy of the
   film (exposure, window and heel effect cancel), a generic body template —
   a bright block (endplate depth D, height 0.75 D) between two dark disc
   bands — is matched by normalised cross-correlation over rotations (±60°)
   and body sizes.  The sizes come from the pixel spacing when it is known;
   otherwise a wide range is searched and the size is decided by the image
   itself: the size whose best column of five bodies correlates best (a mean,
   not a sum, so a long chain of half-size blocks does not win).
2. **Column.**  Dynamic programming links candidates into the best chain of
   bodies one pitch apart, each below the previous one along its own axis and
   turned by less than 25° from it; the chain is then followed up and down
   body by body in the template responses.
3. **Sacrum and labels** (:mod:`measure._column_profile`).  Intensity
   profiles along each body's axis at a resolution fine enough for a narrow
   disc give the prominence of the dark band below every body, compared with
   the column's own discs.  L5 is the lowest body with a real disc below it;
   S1 is the bone below that disc, which must show no disc of its own.  Each
   piece of evidence gives a confidence; the labels get the weakest of them
   (the sacrum's, the L5-S1 disc's, and for the levels above a gap in the
   column, the gap's).
4. **Facing** from the posterior elements: pedicles, facets, laminae and
   spinous processes make the band behind the bodies brighter and busier than
   the soft tissue in front, in flexion as in extension (the disc wedge, which
   flexion straightens or reverses, is not used).
5. **Corners.**  Each body's block corners are snapped to the cortical outline
   by :func:`measure.refine_corners`; S1's superior corners likewise.

When the evidence is weak or contradictory the result says so:
``needs_review`` with the reasons (see ``REVIEW_THRESHOLD``).  When no column
or no sacrum is found the result is a falsy :class:`LandmarkFailure` whose
reason starts with ``"not found: "``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

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
from measure._column_profile import column_profiles
from measure._refine import refine_corners
from measure._registration import level_matrix, resample
from measure._threads import single_threaded_call

__all__ = ["REVIEW_THRESHOLD", "DetectionResult", "detect_vertebrae"]

_TEMPLATE_DEPTH = 20  # pixels: bodies are matched at this size
_SEARCH_DEPTH = 14  # pixels: ... and at this size while the body size is sought
_ASPECT = 0.75  # body height / endplate depth
_DISC = 0.22  # disc height / endplate depth
_ANGLES_DEG = np.arange(-60.0, 60.1, 7.5)
_MAX_CANDIDATES = 60
_MIN_SCORE = 0.2
_BODY_DEPTH_MM = (31.0, 37.0, 44.0)
_MIN_MEAN_SCORE = 0.33
_EDGE_MARGIN = 0.3  # a body closer than this (x depth) to the film's edge may be cut off
_MIN_REFINED_SHARE = 0.6
_MIN_CHAIN = 4  # bodies for a column
_HALF_SIZE = 0.35  # a chain repeating this much better at twice its pitch: half-size blocks
_SIZE_TIE = 0.1  # scores this close to the best: the larger body size wins (chosen on tuning films)
_MIN_LINKED = 3  # of which found as candidates and linked (the others followed)
_TOP_K = 5  # a column's score: mean correlation of its best five bodies

# label evidence (prominence of a band / the column's typical disc prominence)
_DISC_RATIO = 0.45  # a band at least this prominent is a disc
_DISC_SURE = (0.30, 0.65)  # L5-S1 band ratio: confidence 0 at the first, 1 at the second
_SACRUM_SURE = (0.55, 0.25)  # strongest band inside "S1": confidence 0 at the first, 1 at the second
_PLATE = (1.0, 1.5)  # brightest inferior endplate (normalised): a body's at the second, none at the first
_NARROW_DISC_CONFIDENCE = 0.7  # L5 found by its endplate when no L5-S1 disc space is seen
# the first body below the linked column (a narrow disc above and below it spoils its match)
# is L5 by its inferior endplate alone when this bright (tuning: the sacrum's first segment
# below a column <= 1.53, L5s past the column with a narrow L5-S1 disc 2.29-2.45) ...
_PLATE_BEYOND = 1.8
_S1_LENGTH = (0.8, 1.25)  # S1's superior / L5's inferior endplate length, refined (truth 0.98-1.05)
_BEYOND_CONFIDENCE = 0.5  # ... and its labels are then to be confirmed
_GAP_PITCH = 1.45  # consecutive bodies further apart than this x the pitch: a body missed
# facing evidence: modulation behind minus in front of the bodies, relative
_FACING_SURE = (0.1, 0.3)
# a frontal film: mirror symmetry above _AP_SYMMETRY and posterior modulation below
# _AP_MODULATION (tuning: realistic laterals symmetry <= 0.32, clean laterals <= 0.44 with
# |modulation| >= 0.38; AP renders symmetry 0.41-0.68 with |modulation| <= 0.19)
_AP_SYMMETRY = 0.38
_AP_MODULATION = 0.3
_BRIGHTNESS_DISAGREES = 0.3  # brighter side opposite to the modulated one by this much: halve
_FRONTAL = "not found: a frontal"
# when the strongest column is refused (no sacrum below it...), up to this many columns
# in all (the strongest included) are tried; labels found on one of them are capped at this confidence
_MAX_COLUMNS = 3
_SECOND_COLUMN_CONFIDENCE = 0.5

_TRACE: list | None = None  # set to a list to collect the label evidence (benchmarks, debugging)

REVIEW_THRESHOLD = 0.6
"""Confidence below which a label, the facing or the whole film is marked for
review.  Calibrated on the tuning seeds of ``benchmarks/bench_detect_realistic.py``
(70000+), reported on others (80000+); see ``docs/auto-landmarks.md``."""


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
        Per level, in [0, 1]: the smaller of the body's outline confidence and
        its label's confidence; NaN where not found.
    body_failures : tuple of (str or None)
        Per level, why it was not found, or None.
    facing : str
        ``"left"`` or ``"right"``: the side of the image the patient faces.
    label_confidence : ndarray of shape (V,)
        Per level, in [0, 1]: how surely the label is right (sacrum, L5-S1
        disc, continuity of the column); NaN where not found.
    facing_confidence : float
        In [0, 1], from the posterior elements' contrast.
    facing_evidence : float
        Signed contrast behind minus in front (positive: facing left), for
        combining the two films of a study.
    review_reasons : tuple of str
        Why the result is unsure (empty when it is not).
    """

    landmarks: np.ndarray
    corner_sd_px: np.ndarray
    confidence: np.ndarray
    body_failures: tuple[str | None, ...]
    facing: str
    label_confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    facing_confidence: float = 1.0
    facing_evidence: float = 0.0
    review_reasons: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return True

    @property
    def needs_review(self) -> bool:
        """Whether a reader must confirm the labels or the facing before results count."""
        return bool(self.review_reasons)


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


def _candidates(norm: np.ndarray, depth: int, angles: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(x, y, angle_deg, score)`` of local maxima of the best rotation's response,
    and the responses of every rotation, shape (A, H, W), indexed by the body centre.
    ``angles`` (indices into ``_ANGLES_DEG``) limits the rotations tried; the
    others' responses stay -1.

    The rotated template's corners outside the block are set to its mean, so an
    unmasked correlation (several times faster than a masked one) ignores them.
    """
    responses = np.full((len(_ANGLES_DEG), *norm.shape), -1.0, np.float32)
    templates = _rotated_templates(depth)
    for a_index in range(len(templates)) if angles is None else angles:
        t = templates[a_index]
        if t.shape[0] >= norm.shape[0] or t.shape[1] >= norm.shape[1]:
            continue
        response = cv2.matchTemplate(norm, t, cv2.TM_CCOEFF_NORMED)
        half = t.shape[0] // 2
        responses[a_index, half : half + response.shape[0], half : half + response.shape[1]] = response
    np.nan_to_num(responses, copy=False, nan=-1.0, posinf=-1.0, neginf=-1.0)
    best_index = np.argmax(responses, axis=0)
    best = np.take_along_axis(responses, best_index[None], axis=0)[0]
    radius = max(int(0.45 * depth), 2)
    dilated = cv2.dilate(best, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    peaks = (best >= dilated) & (best > _MIN_SCORE)
    ys, xs = np.nonzero(peaks)
    scores = best[ys, xs]
    order = np.argsort(-scores)[:_MAX_CANDIDATES]
    angles = _ANGLES_DEG[best_index[ys, xs][order]]
    cands = np.column_stack([xs[order], ys[order], angles, scores[order]])
    return cands.astype(np.float64), responses


@functools.lru_cache(maxsize=8)
def _rotated_templates(depth: int) -> tuple[np.ndarray, ...]:
    """The body template turned by every angle of ``_ANGLES_DEG``, corners outside set to its mean."""
    template, mask = _body_template(depth)
    out = []
    for angle in _ANGLES_DEG:
        t, m = _rotate(template, mask, float(angle))
        t = np.where(m > 0, t, np.float32(t[m > 0].mean())).astype(np.float32)
        t.setflags(write=False)
        out.append(t)
    return tuple(out)


def _follow(
    chain_poses: np.ndarray, responses: np.ndarray, count: int, *, down: bool, min_score: float = 0.3
) -> np.ndarray:
    """Follow the column from its end body, one pitch at a time, up or down.

    Bodies overlapped by ribs, the iliac crests or strongly turned may miss the
    global candidate list; guided by the pose of the end body (and the turn
    between the two end bodies), each is sought in a window of 0.3 pitch and
    ±20° around its predicted pose, and kept if its correlation exceeds ``min_score``.
    """
    poses = [tuple(p) for p in chain_poses]
    if len(poses) < 2:
        return chain_poses
    pitch = float(np.median(np.linalg.norm(np.diff(chain_poses[:, :2], axis=0), axis=1)))
    _, h, w = responses.shape
    for _ in range(count):
        end, nxt = (np.array(poses[-1]), np.array(poses[-2])) if down else (np.array(poses[0]), np.array(poses[1]))
        turn = np.clip((end[2] - nxt[2] + 180) % 360 - 180, -15, 15)
        angle = end[2] + turn
        a = np.deg2rad((end[2] + angle) / 2)
        axis = np.array([-np.sin(a), np.cos(a)]) * (1.0 if down else -1.0)
        centre = end[:2] + pitch * axis
        r = max(int(0.3 * pitch), 1)
        x0, x1 = int(max(centre[0] - r, 0)), int(min(centre[0] + r + 1, w))
        y0, y1 = int(max(centre[1] - r, 0)), int(min(centre[1] + r + 1, h))
        if x1 <= x0 or y1 <= y0:
            break
        near = np.flatnonzero(np.abs((_ANGLES_DEG - angle + 180) % 360 - 180) <= 20)
        window = responses[near, y0:y1, x0:x1]
        k, iy, ix = np.unravel_index(int(np.argmax(window)), window.shape)
        score = float(window[k, iy, ix])
        if score < min_score:
            break
        pose = (x0 + ix, y0 + iy, float(_ANGLES_DEG[near[k]]), score)
        if down:
            poses.append(pose)
        else:
            poses.insert(0, pose)
    return np.array(poses, dtype=np.float64)


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


def _block_frame(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each block's unit axis across the column, unit axis down it, and centre.

    Parameters
    ----------
    blocks : (B, 4, 2) float array, px
        Block corners in the order top-left, top-right, bottom-right, bottom-left.

    Returns
    -------
    ex, down, centre : (B, 2) float arrays
        ``ex`` along the top edge, ``down`` perpendicular to it pointing to the
        bottom edge, ``centre`` the mean of the corners (px).
    """
    top_left, top_right, _, bottom_left = (blocks[:, k] for k in range(4))
    ex = top_right - top_left
    ex /= np.linalg.norm(ex, axis=1, keepdims=True)
    down = np.stack([-ex[:, 1], ex[:, 0]], axis=1)
    flip = np.einsum("ij,ij->i", down, bottom_left - top_left) < 0
    down[flip] *= -1
    return ex, down, blocks.mean(axis=1)


def _posterior_modulation(norm: np.ndarray, blocks: np.ndarray, depth: float) -> float:
    """How much more the band behind the +x wall varies along the column than the -x band.

    Behind the bodies, pedicles (bright, level with the upper body) alternate
    with the intervertebral foramina (dark, level with the disc) at the
    column's pitch; in front there is only soft tissue.  Per side, the band
    0.1-0.7 depth outside the wall is averaged across and sampled along the
    column over one pitch centred on the body; its standard deviation along
    the column is the side's modulation.  Returns ``(plus - minus) / (plus +
    minus)`` over the blocks, in [-1, 1] (positive: posterior elements on +x).
    """
    ex, down, centre = _block_frame(blocks)
    out = np.linspace(0.6, 1.2, 7) * depth  # from the centre: 0.1-0.7 depth beyond the wall
    along = np.linspace(-0.55, 0.55, 23) * depth
    stds = []
    for sign in (1.0, -1.0):
        pts = (
            centre[:, None, None, :]
            + along[None, :, None, None] * down[:, None, None, :]
            + sign * out[None, None, :, None] * ex[:, None, None, :]
        )  # (B, along, out, 2)
        flat = pts.reshape(-1, 2).astype(np.float32)
        values = cv2.remap(
            norm, flat[:, 0].reshape(1, -1), flat[:, 1].reshape(1, -1), cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"),
        ).reshape(pts.shape[:3])  # fmt: skip
        profile = np.nanmean(values, axis=2)  # (B, along)
        stds.append(np.nanstd(profile, axis=1))
    plus, minus = (float(np.nanmean(v)) for v in stds)
    return (plus - minus) / max(plus + minus, 1e-6)


def _mirror_symmetry(norm: np.ndarray, blocks: np.ndarray, depth: float) -> float:
    """Correlation of the column's surroundings with their mirror image across its axis.

    On a lateral film the two sides of the bodies differ (soft tissue in
    front, pedicles, facets and spinous processes behind); on a frontal (AP)
    film they mirror each other (pedicles, transverse processes, psoas and
    iliac wings on both sides).  Per body, rows across the column over the
    body's height are sampled from -2.2 to +2.2 depths; for mirror axes within
    0.5 depth of the blocks' centres the Pearson correlation of the points
    0.5-1.6 depth from the axis with their mirror points is taken.  Returns
    the best, in [-1, 1].
    """
    ex, down, centre = _block_frame(blocks)
    step = 0.05
    across = np.arange(-2.2, 2.2 + 1e-9, step) * depth
    along = np.linspace(-0.5, 0.5, 15) * depth
    pts = (
        centre[:, None, None, :]
        + along[None, :, None, None] * down[:, None, None, :]
        + across[None, None, :, None] * ex[:, None, None, :]
    )  # (B, along, across, 2)
    flat = pts.reshape(-1, 2).astype(np.float32)
    values = cv2.remap(
        norm, flat[:, 0].reshape(1, -1), flat[:, 1].reshape(1, -1), cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"),
    ).reshape(-1, across.size)  # fmt: skip
    mid = across.size // 2
    offsets = np.arange(round(0.5 / step), round(1.6 / step) + 1)
    shifts = np.arange(-round(0.5 / step), round(0.5 / step) + 1)
    plus = values[:, mid + shifts[:, None] + offsets[None, :]]  # (rows, shifts, offsets)
    minus = values[:, mid + shifts[:, None] - offsets[None, :]]
    ok = np.isfinite(plus) & np.isfinite(minus)
    n = ok.sum(axis=(0, 2))
    a = np.where(ok, plus, 0.0)
    b = np.where(ok, minus, 0.0)
    mean_a = a.sum(axis=(0, 2)) / np.maximum(n, 1)
    mean_b = b.sum(axis=(0, 2)) / np.maximum(n, 1)
    da = np.where(ok, plus - mean_a[None, :, None], 0.0)
    db = np.where(ok, minus - mean_b[None, :, None], 0.0)
    corr = (da * db).sum(axis=(0, 2)) / np.maximum(
        np.sqrt((da * da).sum(axis=(0, 2)) * (db * db).sum(axis=(0, 2))), 1e-9
    )
    corr = np.where(n >= 50, corr, -1.0)
    return float(np.max(corr))


def _down_axis(corners: np.ndarray) -> np.ndarray:
    """Unit vector from a block's top edge towards its bottom edge."""
    ex = (corners[2] - corners[3]) / np.linalg.norm(corners[2] - corners[3])
    ey = np.array([-ex[1], ex[0]])
    return ey if np.dot(ey, corners[3] - corners[0]) >= 0 else -ey


def _column_score(scores: np.ndarray) -> float:
    """Mean correlation of a chain's best ``_TOP_K`` bodies, scaled down for shorter chains."""
    top = np.sort(scores)[::-1][:_TOP_K]
    return float(np.mean(top)) * min(len(scores), _TOP_K) / _TOP_K


def _ramp(value: float | np.ndarray, zero: float, one: float) -> np.ndarray:
    """0 at ``zero``, 1 at ``one``, linear between, clipped (either direction)."""
    return np.clip((np.asarray(value, float) - zero) / (one - zero), 0.0, 1.0)


def _find_columns(img: np.ndarray, depths: np.ndarray, checkpoint: Checkpoint | None = None) -> list[tuple]:
    """Columns found over the body sizes ``depths`` (full-resolution pixels), best first.

    Every size is tried with bodies matched at ``_SEARCH_DEPTH`` pixels; a
    chain of half-size blocks (two per vertebra, see :func:`_period_ratio`) is
    not a column.  The best size is then corrected by the column's own pitch
    and matched again at ``_TEMPLATE_DEPTH`` for its column.  The other sizes'
    columns follow in order of score (each corrected and matched again when it
    is used: :func:`_rematched`), for when the first is refused.

    Returns
    -------
    list of tuple
        ``(score, depth, factor, norm, chain poses, responses)`` as
        :func:`_column_at`; empty when no column is found.
    """
    if len(depths) == 1:
        found = _column_at(img, float(depths[0]), _TEMPLATE_DEPTH)
        return [] if found is None else [found]
    columns = []
    for k, depth in enumerate(depths):
        at_checkpoint(checkpoint, 0.7 * k / len(depths))
        found = _column_at(img, float(depth), _SEARCH_DEPTH)
        if found is not None and _period_ratio(found[3], found[4], found[1] * found[2]) <= _HALF_SIZE:
            columns.append(found)
    if not columns:
        return []
    # a block matching part of a body correlates about as well as one matching all of it:
    # of the sizes scoring (nearly) the best, the largest
    # (a column of three bodies cut by the film's edge only when there is no longer one)
    whole = [c for c in columns if len(c[4]) >= _MIN_CHAIN] or columns
    top = max(c[0] for c in whole)
    best = max((c for c in whole if c[0] >= top - _SIZE_TIE), key=lambda c: c[1])
    at_checkpoint(checkpoint, 0.75)
    others = sorted((c for c in columns if c is not best), key=lambda c: -c[0])
    return [_rematched(img, best), *others]


def _rematched(img: np.ndarray, column: tuple) -> tuple:
    """``column`` (found at ``_SEARCH_DEPTH``) at the size its pitch gives, matched at ``_TEMPLATE_DEPTH``."""
    depth = column[1]
    pitch = float(np.median(np.linalg.norm(np.diff(column[4][:, :2], axis=0), axis=1))) / column[2]
    from_pitch = pitch / (_ASPECT + _DISC)
    if not 0.88 < from_pitch / depth < 1.14:
        depth = float(np.clip(from_pitch, 0.6 * depth, 1.6 * depth))
    return _column_at(img, depth, _TEMPLATE_DEPTH) or column


def _overlaps(centres: np.ndarray, other: np.ndarray, depth: float) -> bool:
    """Whether most bodies of one column lie on another column's bodies.

    Parameters
    ----------
    centres, other : (N, 2), (M, 2) float arrays, px
        Body centres of the two columns, full resolution.
    depth : float, px
        Body size.
    """
    dist = np.linalg.norm(centres[:, None] - other[None], axis=-1).min(axis=1)
    return bool(np.mean(dist < 0.5 * depth) >= 0.5)


def _with_review(result: DetectionResult, cap: float, reason: str) -> DetectionResult:
    """``result`` with every label's confidence at most ``cap`` and ``reason`` to review."""
    return dataclasses.replace(  # np.minimum keeps NaN (a label not placed)
        result, label_confidence=np.minimum(result.label_confidence, cap),
        confidence=np.minimum(result.confidence, cap),
        review_reasons=(*result.review_reasons, reason),
    )  # fmt: skip


def _period_ratio(norm: np.ndarray, poses: np.ndarray, depth: float) -> float:
    """How much better the column repeats at twice its pitch than at its pitch.

    The intensity along the column (through the bodies' centres, averaged
    across the middle of the endplates) repeats once per vertebra.  A chain of
    half-size blocks, two per vertebra, has a pitch of half a vertebra: its
    profile correlates poorly with itself shifted by one pitch and well when
    shifted by two.  Returns ``autocorrelation(2 pitch) - autocorrelation(pitch)``
    (about 0 or below for a right-sized column, up to about 1.5 for half-size blocks).
    """
    xy = poses[:, :2]
    steps = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    if xy.shape[0] < 4 or not np.all(steps > 0):
        return -1.0
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    t = np.arange(0.0, arc[-1], 0.5)
    path = np.column_stack([np.interp(t, arc, xy[:, 0]), np.interp(t, arc, xy[:, 1])])
    tangent = np.gradient(path, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    across = np.linspace(-0.2, 0.2, 5) * depth
    pts = (path[:, None, :] + across[None, :, None] * normal[:, None, :]).reshape(-1, 2).astype(np.float32)
    values = cv2.remap(
        norm, pts[:, 0].reshape(1, -1), pts[:, 1].reshape(1, -1), cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    ).reshape(len(t), -1).mean(axis=1)  # fmt: skip
    x = values - values.mean()
    var = float(np.mean(x * x)) or 1.0
    lag = round(float(np.median(steps)) / 0.5)
    if 2 * lag >= len(x) - 4:
        return -1.0
    ac1 = float(np.mean(x[:-lag] * x[lag:])) / var
    ac2 = float(np.mean(x[: -2 * lag] * x[2 * lag :])) / var
    return ac2 - ac1


def _column_at(img: np.ndarray, depth: float, template_depth: int):
    """``(score, depth, factor, norm, chain poses, responses)`` of the best column at one size, or None."""
    f = min(1.0, template_depth / depth)
    small = resample(img, f)
    norm = local_normalise(small, 0.6 * template_depth)
    d = depth * f
    cands, responses = _candidates(norm, round(d))
    chain = _best_chain(cands, d)
    if len(chain) < _MIN_LINKED:
        return None
    # bodies the candidate list missed (cropped, turned, under the crests) extend the
    # chain before it is scored, so a short true column competes with a long chain of
    # half-size blocks
    poses = _follow(cands[chain], responses, 6, down=False)
    poses = _follow(poses, responses, 3, down=True)
    if len(poses) < _MIN_CHAIN - (1 if _cut_above(poses, norm.shape) else 0):
        return None
    return _column_score(poses[:, 3]), depth, f, norm, poses, responses


def _cut_above(poses: np.ndarray, shape: tuple[int, int]) -> bool:
    """Whether the body one pitch above the column's top would be cut by the film's edge.

    Parameters
    ----------
    poses : (N, 4) float array
        The column's ``(x, y, angle_deg, score)``, top to bottom, px.
    shape : (int, int)
        The film's rows and columns at the poses' scale.
    """
    if len(poses) < 2:
        return False
    pitch = float(np.median(np.linalg.norm(np.diff(poses[:, :2], axis=0), axis=1)))
    up = poses[0, :2] - poses[1, :2]
    above = poses[0, :2] + pitch * up / max(float(np.linalg.norm(up)), 1e-9)
    margin = 0.4 * pitch
    return bool(
        above[0] < margin or above[1] < margin or above[0] > shape[1] - 1 - margin or above[1] > shape[0] - 1 - margin
    )


def _s1_edge(profile: np.ndarray, s: np.ndarray, disc_at: float) -> float:
    """Where the bone after the disc at ``disc_at`` starts: first rise above half-way, depths."""
    k0 = int(np.argmin(np.abs(s - disc_at)))
    after = profile[k0 : k0 + 30]
    if not np.any(np.isfinite(after)):
        return disc_at + 0.05
    mid = 0.5 * (profile[k0] + np.nanmax(after))
    rise = np.flatnonzero(np.nan_to_num(after, nan=-np.inf) > mid)
    return float(s[k0 + rise[0]]) if rise.size else disc_at + 0.05


@nan_tolerant
@single_threaded_call
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
        Mean pixel spacing; narrows the body sizes searched.  Without it the
        body size is estimated from the image, never from the film's size.
    checkpoint : callable, optional
        Called with the fraction of the work done between body sizes searched;
        raising from it (:class:`measure.Cancelled`) stops the detection.

    Returns
    -------
    DetectionResult or LandmarkFailure
        A failure whose reason starts with ``"not found: "`` when the film is
        blank, no column of bodies is found or the sacrum is not seen.  A
        result whose labels or facing are unsure has ``needs_review`` and says
        why in ``review_reasons``.
    """
    levels = tuple(levels)
    if not levels or levels[-1] != "S1":
        raise ValueError(f"levels: must end with 'S1', got {levels}")
    colour = _colour_reason(image)
    if colour:
        return LandmarkFailure(colour)
    img = as_image(image)
    h, w = img.shape
    lo, hi = np.percentile(img[:: max(h // 256, 1), :: max(w // 256, 1)], [1, 99])
    if not hi > lo:
        return LandmarkFailure("not found: the film is blank or uniform")
    img = _without_burned_in(img)
    if pixel_spacing_mm is not None and pixel_spacing_mm > 0:
        depths = np.array(_BODY_DEPTH_MM) / pixel_spacing_mm
    else:
        depths = min(h, w) * np.geomspace(1 / 16, 1 / 3.5, 9)
    columns = _find_columns(img, depths, checkpoint)
    if not columns:
        return LandmarkFailure(
            "not found: no column of vertebral bodies on the film (fewer than four bodies in a row: "
            "a spot film of one level, another body part?)"
        )
    first = _labelled(img, levels, columns[0])
    if first or first.reason.startswith(_FRONTAL):
        return first
    # the strongest column had no sacrum below it or no bodies' outlines (the posterior
    # elements of an extension film with L1 cropped line up like a column too): the next
    # column found elsewhere on the film, whose labels a reader must then confirm
    tried = [columns[0][4][:, :2] / columns[0][2]]
    for column in columns[1:]:
        centres = column[4][:, :2] / column[2]
        if any(_overlaps(centres, other, column[1]) for other in tried):
            continue
        tried.append(centres)
        if len(tried) > _MAX_COLUMNS:
            break
        result = _labelled(img, levels, _rematched(img, column))
        if result:
            return _with_review(result, _SECOND_COLUMN_CONFIDENCE, (
                f"the strongest column of blocks on the film was not a spine ({first.reason.removeprefix('not found: ')}); "
                "the bodies are those of another column: confirm the levels"
            ))
    return first


def _labelled(img: np.ndarray, levels: tuple[str, ...], column: tuple) -> DetectionResult | LandmarkFailure:
    """Labels, facing and corners of one column found by :func:`_find_columns`."""
    h, w = img.shape
    _, depth, f, norm, poses, responses = column
    d = depth * f
    poses = _follow(poses, responses, len(levels), down=False)
    poses = _follow(poses, responses, 3, down=True)
    # the body size from the column itself: its pitch (body + disc ~ 0.97 depth)
    pitch_small = float(np.median(np.linalg.norm(np.diff(poses[:, :2], axis=0), axis=1)))
    d = float(np.clip(pitch_small / (_ASPECT + _DISC), 0.8 * d, 1.25 * d))
    depth = d / f
    n = len(poses)
    blocks = np.array([_block_corners(*poses[k, :3], d) for k in range(n)])  # small scale
    to_full = np.linalg.inv(np.vstack([level_matrix(f), [0, 0, 1]]))[:2]
    blocks_full = blocks @ to_full[:, :2].T + to_full[:, 2]
    centres = blocks_full.mean(axis=1)
    downs = np.array([_down_axis(b) for b in blocks_full])

    # -- which body is L5: profiles below every body (and two more one pitch apart below the
    # column, followed whatever their correlation, so the body below the last one is judged too)
    n_chain = n
    poses = _follow(poses, responses, 3, down=True, min_score=-1.0)
    n = len(poses)
    if n > n_chain:
        extra = np.array([_block_corners(*poses[k, :3], d) for k in range(n_chain, n)])
        blocks = np.concatenate([blocks, extra])
        blocks_full = blocks @ to_full[:, :2].T + to_full[:, 2]
        centres = blocks_full.mean(axis=1)
        downs = np.array([_down_axis(b) for b in blocks_full])
    prof = column_profiles(img, centres, downs, depth)
    disc, disc_at = prof.best_band(0.28, 0.85)
    plate, plate_at = prof.peak(0.2, 0.55)  # the inferior endplate's cortex, seen edge on
    seen = prof.seen_until()
    sacrum_stop = np.minimum(disc_at + 1.0, seen - 0.02)
    inner, _ = prof.best_band(disc_at + 0.25, np.maximum(sacrum_stop, disc_at + 0.26))
    finite = np.flatnonzero(np.isfinite(disc[:n_chain]))
    if finite.size < 2:
        return LandmarkFailure("not found: no discs seen between the bodies found")
    ref_pool = disc[finite[:-2]] if finite.size >= 5 else disc[finite]
    reference = float(np.median(ref_pool))
    if not reference > 0:
        return LandmarkFailure("not found: no discs seen between the bodies found")
    ratio = disc / reference
    inner_ratio = inner / reference
    if _TRACE is not None:
        _TRACE.append({"plate": plate, "ratio": ratio, "inner": inner_ratio, "disc_at": disc_at,
                       "seen": seen, "centres": centres, "depth": depth, "reference": reference,
                       "poses": poses, "n_chain": n_chain, "plate_at": plate_at})  # fmt: skip
    # L5: the lowest body with a bright inferior endplate and bone below it; the
    # sacrum's first segment has no inferior endplate (a fused remnant at most)
    body_like = (plate >= _PLATE[1]) | ((plate >= _PLATE[0]) & (ratio >= _DISC_RATIO))
    l5 = None
    for p in range(n - 2, 0, -1):
        if body_like[p] and seen[p] > plate_at[p] + 0.4 and (
            p < n_chain or ratio[p] >= _DISC_RATIO or (p == n_chain and plate[p] >= _PLATE_BEYOND)
        ):
            l5 = p
            break
    if _TRACE is not None:
        _TRACE[-1]["l5"] = l5
    if l5 is None:
        return LandmarkFailure("not found: no sacrum below the column (no L5-S1 disc seen)")
    narrow = not ratio[l5] >= _DISC_RATIO
    if narrow:
        disc_at[l5] = plate_at[l5] + 0.04
    bone_seen = float(seen[l5] - disc_at[l5])
    if bone_seen < 0.4:
        return LandmarkFailure("not found: the sacrum is not seen below the column (film cropped above it?)")
    if not narrow and np.isfinite(inner_ratio[l5]) and inner_ratio[l5] >= 0.85 and bone_seen >= 1.0:
        return LandmarkFailure(
            "not found: the bone below the lowest disc has a disc of its own, so it is not the sacrum "
            "(film cropped above the sacrum?)"
        )
    lumbar = levels[:-1]
    n_lumbar = len(lumbar)
    if l5 + 1 < min(_MIN_CHAIN - 1, n_lumbar):
        return LandmarkFailure(
            f"not found: only {l5 + 1} vertebral bodies above the sacrum (a column needs "
            f"{min(_MIN_CHAIN - 1, n_lumbar)})"
        )

    # -- label evidence
    evidence: list[tuple[float, str]] = []  # (confidence, why it is not higher)
    c_plate = float(_ramp(plate[l5], *_PLATE))
    c_below = float(_ramp(np.nan_to_num(plate[l5 + 1], nan=0.0), _PLATE[1], _PLATE[0] - 0.2))
    c_disc = (_BEYOND_CONFIDENCE if l5 >= n_chain else _NARROW_DISC_CONFIDENCE) if narrow else 1.0
    c_sacrum = 1.0 if narrow else float(_ramp(np.nan_to_num(inner_ratio[l5], nan=0.0), *_SACRUM_SURE))
    c_seen = 1.0 if bone_seen >= 0.9 else 0.5
    sacral = min(c_plate, c_below, c_disc, c_sacrum, c_seen)
    if c_plate < 1.0:
        evidence.append((c_plate,
            f"the body taken for L5 has a faint inferior endplate ({plate[l5]:.1f}): it may be the "
            "sacrum's first segment, and every label one level off"
        ))
    if c_below < 1.0:
        evidence.append((c_below,
            f"the bone below the level taken for S1 shows an endplate ({plate[l5 + 1]:.1f}) like a "
            "lumbar body's: S1 may be L5 (narrow L5-S1 disc or transitional vertebra), every label one level off"
        ))
    if narrow:
        evidence.append((c_disc,
            "no L5-S1 disc space seen (narrow or degenerate disc?): L5 is the lowest body with an "
            "inferior endplate" + (", below the bodies the column was found from" if l5 >= n_chain else "")
        ))
    if c_sacrum < 1.0:
        evidence.append((c_sacrum,
            f"a disc-like band ({inner_ratio[l5]:.2f} of the discs above) inside the bone taken for S1: "
            "it may be L5 over a narrow L5-S1 disc or a transitional vertebra, and every label one level off"
        ))
    if c_seen < 1.0:
        evidence.append((c_seen, "the film's edge cuts the sacrum close below the L5-S1 disc"))
    found_pos = list(range(l5 - n_lumbar + 1, l5 + 1))  # chain positions of L1..L5
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    pitch = float(np.median(steps[max(l5 - 4, 0) : l5])) if l5 > 0 else float(np.median(steps))
    gap_after = steps > _GAP_PITCH * pitch  # between chain positions k and k + 1
    label_conf = np.full(len(levels), np.nan)
    for v, pos in enumerate(found_pos):
        if pos < 0:
            continue
        gaps = np.flatnonzero(gap_after[pos:l5])
        label_conf[v] = sacral * (0.3 if gaps.size else 1.0)
        if gaps.size and not any("missing" in r for _, r in evidence):
            evidence.append((0.3,
                f"the column has a gap of {steps[pos + gaps[0]] / pitch:.1f} body pitches above "
                f"{levels[min(v + gaps[0] + 1, n_lumbar - 1)]}: a body may be missing and the labels above it off"
            ))
    label_conf[-1] = sacral
    reasons = [why for c, why in evidence if c < REVIEW_THRESHOLD]

    # -- facing from the posterior elements
    lumbar_blocks = blocks[max(l5 - n_lumbar + 1, 0) : l5 + 1]
    behind = _side_contrast(norm, lumbar_blocks, d)
    modulation = _posterior_modulation(norm, lumbar_blocks, d)
    symmetry = _mirror_symmetry(norm, lumbar_blocks, d)
    if symmetry > _AP_SYMMETRY and abs(modulation) < _AP_MODULATION:
        return LandmarkFailure(
            f"{_FRONTAL} (AP or PA) film, not a lateral: the two sides of the column mirror "
            f"each other (symmetry {symmetry:.2f}, above {_AP_SYMMETRY}) and neither side has the "
            f"posterior elements of a lateral film (modulation {modulation:+.2f})"
        )
    if _TRACE is not None:
        _TRACE[-1].update(behind=behind, modulation=modulation, symmetry=symmetry)
    facing = "left" if modulation >= 0 else "right"
    facing_conf = float(_ramp(abs(modulation), *_FACING_SURE))
    if np.sign(behind) != np.sign(modulation) and abs(behind) > _BRIGHTNESS_DISAGREES:
        facing_conf *= 0.5
    if facing_conf < REVIEW_THRESHOLD:
        reasons.append(
            "facing unsure: the posterior elements (pedicles and foramina) barely stand out behind "
            f"the bodies (modulation {modulation:+.2f}, brightness {behind:+.2f})"
        )

    # -- corners
    if facing == "left":
        order = [0, 1, 2, 3]  # AS=top-left, PS=top-right, PI=bottom-right, AI=bottom-left
    else:
        order = [1, 0, 3, 2]
    edge = plate_at[l5] + 0.06 if narrow else _s1_edge(prof.profiles[l5], prof.s, float(disc_at[l5]))
    bottom_full = blocks_full[l5][[2, 3]]  # (right, left) in the block frame
    s1_top = bottom_full + (edge - 0.5 * _ASPECT) * depth * downs[l5]
    s1_as_ps = s1_top[[1, 0]] if facing == "left" else s1_top[[0, 1]]
    corners = np.full((len(levels), 4, 2), np.nan)
    body_conf = np.full(len(levels), np.nan)
    failures: list[str | None] = [None] * len(levels)
    margin = _EDGE_MARGIN * depth
    for v, pos in enumerate(found_pos):
        if pos < 0:
            failures[v] = f"{levels[v]}: not found: above the top of the column found (cropped film?)"
            continue
        block = blocks_full[pos]
        if (
            np.any(block < margin - 0.5) or np.any(block[:, 0] > w - 0.5 - margin)
            or np.any(block[:, 1] > h - 0.5 - margin)
        ):  # fmt: skip
            failures[v] = f"{levels[v]}: cut off by the edge of the film"
            label_conf[v] = np.nan
            continue
        corners[v] = block[order]
        body_conf[v] = float(_ramp(poses[pos, 3], _MIN_SCORE, _MIN_SCORE + 0.3))
    corners[-1, :2] = s1_as_ps
    lumbar_conf = body_conf[:n_lumbar]
    body_conf[-1] = float(np.nanmin(lumbar_conf)) if np.any(np.isfinite(lumbar_conf)) else 0.5

    refined = refine_corners(img, corners, search_fraction=0.25, max_move_fraction=0.4, levels=levels)
    sd = np.full(corners.shape[:2], np.nan)
    ok = np.zeros(len(levels), bool)
    if refined:
        ok = refined.refined.copy()
        sd = np.where(ok[:, None], refined.corner_sd_px, 0.08 * depth)
        corners = np.where(ok[:, None, None], refined.landmarks, corners)
        corners, sd, ok = _reseek_unrefined(img, corners, sd, ok, depth)
        corners, sd = _s1_like_l5(corners, sd, depth)
        sd = np.where(ok[:, None], sd, 0.08 * depth)
        body_conf = np.where(ok, body_conf, body_conf * 0.5)
    else:
        sd[:] = 0.08 * depth
        body_conf = body_conf * 0.5
    sd = np.where(np.isfinite(corners[..., 0]), sd, np.nan)
    if all(failures[v] is not None for v in range(n_lumbar)):
        return LandmarkFailure("not found: no lumbar body above the sacrum")
    found = np.array([fl is None for fl in failures])
    scores = np.array([poses[p, 3] for p in found_pos if p >= 0])
    refined_share = float(np.mean(ok[found]))
    if np.mean(scores) < _MIN_MEAN_SCORE or refined_share < _MIN_REFINED_SHARE:
        return LandmarkFailure(
            "not found: the shapes found do not look like vertebral bodies "
            f"(mean correlation {np.mean(scores):.2f}, outlines confirmed {refined_share:.0%})"
        )
    confidence = np.fmin(body_conf, label_conf)
    confidence = np.where(found, confidence, np.nan)
    label_conf = np.where(found, label_conf, np.nan)
    unsure = [lv for lv, c in zip(levels, body_conf, strict=True) if np.isfinite(c) and c < REVIEW_THRESHOLD]
    if unsure:
        reasons.append(f"outline unsure for {', '.join(unsure)}")
    return DetectionResult(
        corners, sd, confidence, tuple(failures), facing,
        label_confidence=label_conf, facing_confidence=facing_conf, facing_evidence=float(modulation),
        review_reasons=tuple(reasons),
    )  # fmt: skip


# a body whose outline could not be confirmed is sought again from its block moved by these
# fractions of the depth along its endplate and down the column, and from its neighbours
_RESEEK_ALONG = (-0.3, -0.15, 0.0, 0.15, 0.3)
_RESEEK_DOWN = (-0.15, 0.0, 0.15)


def _reseek_unrefined(
    img: np.ndarray, corners: np.ndarray, sd: np.ndarray, ok: np.ndarray, depth: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seek again the lumbar bodies whose outline refinement did not confirm.

    A block the template put a third of a body off (the top body beside a
    cropped L1, an L5 between two narrow discs) has no cortical outline where
    the refinement looks for it.  Such a body is tried again from its block
    moved along its endplate and down the column, and from where its refined
    neighbours put it (midway between them, or one step on from the two next
    to it); every candidate is refined, and of those whose outline is
    confirmed and that keep clear of the neighbours, the one nearest the
    expected place is kept.

    Parameters
    ----------
    img : (H, W) float array
        The film.
    corners : (V, 4, 2) float array, px
        ``AS, PS, PI, AI`` per level (S1 last, with NaN inferior corners);
        refined where ``ok``.
    sd : (V, 4) float array, px
        Corner SDs of the refined bodies.
    ok : (V,) bool array
        Whether each body's outline was confirmed.
    depth : float, px
        Endplate depth.

    Returns
    -------
    corners, sd, ok
        Updated for the bodies found again.
    """
    n_lumbar = corners.shape[0] - 1
    placed = np.all(np.isfinite(corners), axis=(1, 2))
    retry = np.flatnonzero(placed[:n_lumbar] & ~ok[:n_lumbar])
    if retry.size == 0:
        return corners, sd, ok
    centres = corners.mean(axis=1)
    cands, owner, expected = [], [], []
    for v in retry:
        block = corners[v]
        along = (block[1] - block[0]) / max(float(np.linalg.norm(block[1] - block[0])), 1e-9)
        down = np.array([-along[1], along[0]])
        down *= np.sign(np.dot(down, block[3] - block[0])) or 1.0
        shifts = np.array([a * along + b * down for a in _RESEEK_ALONG for b in _RESEEK_DOWN]) * depth
        options = [block + shift for shift in shifts]
        good = [k for k in (v - 2, v - 1, v + 1, v + 2) if 0 <= k < n_lumbar and ok[k] and placed[k]]
        if v - 1 in good and v + 1 in good:
            options.append(0.5 * (corners[v - 1] + corners[v + 1]))
        elif v + 1 in good and v + 2 in good:
            options.append(2 * corners[v + 1] - corners[v + 2])
        elif v - 1 in good and v - 2 in good:
            options.append(2 * corners[v - 1] - corners[v - 2])
        guess = options[-1].mean(axis=0) if len(options) > len(shifts) else centres[v]
        cands += options
        owner += [v] * len(options)
        expected += [guess] * len(options)
    cands_arr = np.array(cands)
    again = refine_corners(img, cands_arr, search_fraction=0.25, max_move_fraction=0.4)
    if not again:
        return corners, sd, ok
    owner_arr = np.array(owner)
    found = again.refined.copy()
    got = again.landmarks.mean(axis=1)
    others = np.flatnonzero(ok & placed)
    if others.size:
        # clear of every confirmed body (a candidate that slid onto a neighbour)
        clear = np.linalg.norm(got[:, None] - centres[others][None], axis=-1).min(axis=1) > 0.6 * depth
        found &= clear
    miss = np.linalg.norm(got - np.array(expected), axis=1)
    before = corners
    corners, sd, ok = corners.copy(), sd.copy(), ok.copy()
    for v in retry:
        mine = np.flatnonzero((owner_arr == v) & found)
        if mine.size:
            k = mine[np.argmin(miss[mine])]
            corners[v], sd[v], ok[v] = again.landmarks[k], again.corner_sd_px[k], True
    # S1's endplate was put below L5's block: it moves with L5 when L5 was found elsewhere
    l5, s1 = n_lumbar - 1, n_lumbar
    if ok[l5] and not ok[s1] and l5 in retry and np.all(np.isfinite(corners[s1, :2])):
        moved = corners[s1].copy()
        moved[:2] += corners[l5, [3, 2]] - before[l5, [3, 2]]
        s1_again = refine_corners(img, moved[None], search_fraction=0.25, max_move_fraction=0.4)
        if s1_again and s1_again.refined[0]:
            corners[s1], sd[s1], ok[s1] = s1_again.landmarks[0], s1_again.corner_sd_px[0], True
        else:
            corners[s1] = moved
    return corners, sd, ok


def _s1_like_l5(corners: np.ndarray, sd: np.ndarray, depth: float) -> tuple[np.ndarray, np.ndarray]:
    """S1's superior corners with an implausible endplate length rebuilt from L5's.

    S1's superior endplate is about as long as L5's inferior one (the truth of
    the tuning phantoms: 0.98-1.05 times).  When the refined S1 endplate is
    outside ``_S1_LENGTH`` times L5's, one corner snapped to another edge (the
    promontory's shadow, the crest): the corner that sits nearer, along L5's
    endplate, to its L5 counterpart (AS to AI, PS to PI) is kept and the other
    is put at L5's endplate vector from it, with an SD of 0.08 depth.

    Parameters
    ----------
    corners : (V, 4, 2) float array, px
        L5 last but one, S1 last (``AS, PS`` finite).
    sd : (V, 4) float array, px
    depth : float, px

    Returns
    -------
    corners, sd
    """
    s1, l5 = corners[-1, :2], corners[-2, [3, 2]]
    if not (np.all(np.isfinite(s1)) and np.all(np.isfinite(l5))):
        return corners, sd
    l5_vector = l5[1] - l5[0]
    l5_length = float(np.linalg.norm(l5_vector))
    ratio = float(np.linalg.norm(s1[1] - s1[0])) / max(l5_length, 1e-9)
    if _S1_LENGTH[0] <= ratio <= _S1_LENGTH[1]:
        return corners, sd
    along = (s1 - l5) @ (l5_vector / l5_length)
    keep = int(np.argmin(np.abs(along)))
    corners, sd = corners.copy(), sd.copy()
    corners[-1, 1 - keep] = s1[keep] + (l5_vector if keep == 0 else -l5_vector)
    sd[-1, 1 - keep] = max(float(np.nan_to_num(sd[-1, 1 - keep])), 0.08 * depth)
    return corners, sd


def _without_burned_in(img: np.ndarray) -> np.ndarray:
    """The film with saturated pixels (burned-in text, markers, shutter borders) filled in.

    Pixels at the image's exact minimum or maximum carry no anatomy; their hard
    edges would otherwise look like cortical outlines.  They are replaced by the
    mean of the valid pixels nearby (normalised convolution), and by the median
    of the film where there are none (the middle of a black shutter).
    """
    vmin, vmax = float(img.min()), float(img.max())
    invalid = (img <= vmin) | (img >= vmax)
    share = float(invalid.mean())
    if share < 1e-4 or share > 0.9:
        return img
    valid = (~invalid).astype(np.float32)
    sigma = max(min(img.shape) / 300.0, 2.0)
    num = cv2.GaussianBlur(img * valid, (0, 0), sigma)
    den = cv2.GaussianBlur(valid, (0, 0), sigma)
    fill = np.where(den > 0.05, num / np.maximum(den, 1e-6), float(np.median(img[~invalid])))
    return np.where(invalid, fill, img).astype(np.float32)


def _colour_reason(image: np.ndarray) -> str | None:
    """A reason when ``image`` is a colour picture (a photograph of a film), else None."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        return None
    rgb = array[..., :3].astype(np.float32)
    spread = float(np.percentile(np.ptp(rgb[:: 4, :: 4], axis=2), 99))
    scale = float(np.percentile(rgb, 99) - np.percentile(rgb, 1)) or 1.0
    if spread > 0.08 * scale:
        return (
            "not found: a colour image (a photograph of a film or a screen?); "
            "detection needs the radiograph itself, greyscale"
        )
    return None
