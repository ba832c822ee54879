"""TEMPORARY stand-in for the measurement core of issue #2 while it is being written.

Delete this module as soon as ``measure.segmental_motion`` lands; the session
then calls ``measure`` directly.  It implements measurement.md §2-§4 minimally.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

CORNERS = ("AS", "PS", "PI", "AI")
DEFAULT_LEVELS = ("L1", "L2", "L3", "L4", "L5", "S1")
CRITERIA_PRESETS = {"default": None, "white-panjabi": None}


class PlacementMethod(enum.StrEnum):
    MANUAL = "manual"
    REFINED = "refined"
    TRACKED = "tracked"
    DETECTED = "detected"
    EDITED = "edited"

    @property
    def default_sd_mm(self) -> float:
        return 0.5


@dataclass
class Motion:
    angle_deg: np.ndarray  # (2, S)
    translation_mm: np.ndarray  # (2, S)
    translation_pct: np.ndarray  # (2, S)
    depth_mm: np.ndarray  # (2, S)


def per_view(landmarks, spacing):
    lm = np.asarray(landmarks, float) * np.asarray(spacing, float)[::-1]
    upper, lower = lm[:-1], lm[1:]
    e1 = lower[:, 0] - lower[:, 1]
    depth = np.linalg.norm(e1, axis=-1)
    e1 = e1 / depth[:, None]
    e2 = np.stack([e1[:, 1], -e1[:, 0]], -1)
    side = np.sign(((upper[:, 1] - lower[:, 1]) * e2).sum(-1))
    e2 = e2 * side[:, None]
    i = upper[:, 3] - upper[:, 2]
    theta = np.degrees(np.arctan2((i * e2).sum(-1), (i * e1).sum(-1)))
    t = ((upper[:, 2] - lower[:, 1]) * e1).sum(-1)
    return theta, t, depth
