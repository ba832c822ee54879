"""Landmark placement methods and their default positional uncertainty (measurement.md §6).

Every corner carries an isotropic positional standard deviation (SD).
:func:`measure.segmental_motion` propagates it to the motion values to first
order (see ``docs/measurement-methods.md``).

How the defaults are derived
----------------------------
For a typical lumbar segment (endplate depth ``D`` ≈ 35 mm, the posterior-inferior
corner of the upper body a disc height ``h`` ≈ 10 mm above the lower endplate),
independent per-corner SD ``s`` in each film gives, by the propagation formulas of
:mod:`measure._motion`:

- translation ``dt = t_flex - t_ext``: ``SD(dt) = s * sqrt(2 * (2 + 2 h²/D²)) ≈ 2.05 s``;
- angulation: ``SD(dtheta) = s * sqrt(8) / D`` rad ``≈ 4.6 s`` degrees per mm.

measurement.md §6 quotes manual measurement errors of about 0.6 mm / 1.6°
(intra-observer) and 1.4 mm / 2.6° (inter-observer) (Eur J Radiol
1994;18:227-231).  Solving the two relations for ``s``:
intra-observer 0.29 mm (translation) / 0.35 mm (angle); inter-observer
0.68 mm / 0.56 mm.
"""

from __future__ import annotations

import enum

__all__ = ["PlacementMethod"]


class PlacementMethod(enum.StrEnum):
    """How a landmark was placed; the string values are written to session files."""

    MANUAL = "manual"
    """Clicked by a reader.  Default SD 0.6 mm: the per-corner SD that reproduces
    the inter-observer error of manual measurement (1.4 mm / 2.6°, Eur J Radiol
    1994;18:227-231, measurement.md §6) – 0.68 mm from translation, 0.56 mm from
    angle.  Inter- rather than intra-observer error because another reader is the
    relevant comparison for a reported value."""

    REFINED = "refined"
    """Placed by a reader, then snapped to the cortical edge by sub-pixel
    refinement (:func:`measure.refine_corners`).  Default SD 0.5 mm: measured
    on 24 phantom studies no test uses (``benchmarks/bench_accuracy.py``):
    from clicks off by 1.5 mm per axis, corner error median 0.43 mm, 95th
    percentile 1.6 mm (2-D), i.e. about 0.5 mm per axis.  The fit's own
    per-corner SD is written to ``landmark_sd_mm`` when available."""

    TRACKED = "tracked"
    """Carried from the other film by rigid registration of the body's own
    pixels (§7, :func:`measure.track_bodies`).  Default SD 0.1 mm: measured on
    24 phantom studies no test uses (noise, rotation, facing, magnification
    change; ``benchmarks/bench_accuracy.py``): corner error median 0.03 mm,
    95th percentile 0.07 mm (≈ 0.03 mm per axis), tripled for real films;
    template tracking on fluoroscopy reached ≈ 0.06 mm (Balkovec 2017, §6).
    The fit's own per-corner SD is written to ``landmark_sd_mm``."""

    DETECTED = "detected"
    """Found automatically, not reviewed (:func:`measure.detect_vertebrae`).
    Default SD 1.0 mm: on 48 phantom films no test uses the corner error of
    correctly labelled bodies has a median of 0.47 mm (≈ 0.4 mm per axis) with
    a long tail, and the phantom is kinder than real films; the value stays
    above the inter-observer level (0.68 mm, §6) so that unreviewed detections
    remain visibly uncertain."""

    EDITED = "edited"
    """An automatic landmark moved by a reader: same as ``manual`` (0.6 mm)."""

    @property
    def default_sd_mm(self) -> float:
        """Default isotropic positional SD of one corner, in mm."""
        return DEFAULT_LANDMARK_SD_MM[self]


DEFAULT_LANDMARK_SD_MM: dict[PlacementMethod, float] = {
    PlacementMethod.MANUAL: 0.6,
    PlacementMethod.REFINED: 0.5,
    PlacementMethod.TRACKED: 0.1,
    PlacementMethod.DETECTED: 1.0,
    PlacementMethod.EDITED: 0.6,
}
"""Per-method default SD in mm (engineer of tracking/detection may update these
from measured accuracy; keep the docstrings in step)."""
