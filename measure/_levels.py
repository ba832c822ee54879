"""Landmark conventions: corner order, level labels, segment labels.

Labels are data, not code (measurement.md §1): the core works on any ordered
list of bodies, so a sixth lumbar body (``L6``) or ``T12`` is just another label.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CORNERS", "DEFAULT_LEVELS", "level_sort_key", "segment_labels", "sort_levels", "usable_corners",
]  # fmt: skip

CORNERS: tuple[str, str, str, str] = ("AS", "PS", "PI", "AI")
"""Corner codes in array order: anterior-superior, posterior-superior,
posterior-inferior, anterior-inferior (measurement.md §1)."""

DEFAULT_LEVELS: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5", "S1")
"""The bodies measured by default, top to bottom."""

_REGIONS = {"C": 0, "T": 1, "L": 2, "S": 3, "CO": 4}
_LEVEL_RE = re.compile(r"^(C|T|L|S|CO)(\d{1,2})$", re.IGNORECASE)


def level_sort_key(label: str) -> tuple[int, int]:
    """Anatomical position of a vertebral level label, top to bottom.

    Parameters
    ----------
    label : str
        A label such as ``"T12"``, ``"L5"``, ``"L6"`` or ``"S1"`` (case-insensitive).

    Returns
    -------
    key : tuple of int
        ``(region, number)`` with regions ordered C, T, L, S, Co.

    Raises
    ------
    ValueError
        When the label is not a vertebral level.

    Examples
    --------
    >>> sorted(["S1", "L5", "T12", "L1"], key=level_sort_key)
    ['T12', 'L1', 'L5', 'S1']
    """
    match = _LEVEL_RE.match(str(label).strip())
    if match is None:
        raise ValueError(f"level: {label!r} is not a vertebral level such as 'L4', 'T12' or 'S1'")
    return _REGIONS[match.group(1).upper()], int(match.group(2))


def sort_levels(labels: Iterable[str]) -> tuple[str, ...]:
    """Level labels ordered top to bottom (anatomical order).

    Examples
    --------
    >>> sort_levels(["S1", "L4", "L5"])
    ('L4', 'L5', 'S1')
    """
    return tuple(sorted(labels, key=level_sort_key))


def segment_labels(levels: Sequence[str]) -> tuple[str, ...]:
    """Segment labels ``"U-L"`` for consecutive bodies.

    Parameters
    ----------
    levels : sequence of str, length V
        Body labels, top to bottom.

    Returns
    -------
    segments : tuple of str, length V-1

    Examples
    --------
    >>> segment_labels(DEFAULT_LEVELS)
    ('L1-L2', 'L2-L3', 'L3-L4', 'L4-L5', 'L5-S1')
    """
    levels = tuple(str(level) for level in levels)
    return tuple(f"{upper}-{lower}" for upper, lower in itertools.pairwise(levels))


def usable_corners(landmarks: Any) -> np.ndarray:
    """Corners with every body lacking a corner the motion needs set to NaN.

    A segment needs its upper body's ``PI, AI`` and its lower body's ``AS, PS``;
    so the top body needs only ``PI, AI``, the bottom body only ``AS, PS``, and
    every other body all four.  A body being placed (a reader's guided mode, an
    automatic step that found three corners) is left out until it has them,
    rather than measured from a partial outline.

    Parameters
    ----------
    landmarks : array_like of shape (..., V, 4, 2), pixels
        Corners AS, PS, PI, AI of V bodies, top to bottom; NaN = not placed.

    Returns
    -------
    ndarray of shape (..., V, 4, 2)
        A copy, with the incomplete bodies' corners all NaN.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.zeros((3, 4, 2)); c[1, 3] = np.nan; c[2, 2:] = np.nan
    >>> np.isnan(usable_corners(c)).all(axis=(-1, -2)).tolist()
    [False, True, False]
    """
    corners = np.array(landmarks, dtype=float)
    finite = np.isfinite(corners).all(axis=-1)  # (..., V, 4)
    required = np.ones(finite.shape[-2:], dtype=bool)
    required[0, :2] = False
    required[-1, 2:] = False
    complete = (finite | ~required).all(axis=-1)
    corners[~complete] = np.nan
    return corners
