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
    refinement.  Default SD 0.35 mm: the intra-observer level (0.29–0.35 mm
    from 0.6 mm / 1.6°, §6), i.e. the reader's choice of corner remains but
    the edge localisation no longer varies between readers.  To be replaced by
    the measured accuracy of the refinement."""

    TRACKED = "tracked"
    """Carried from the other film by rigid registration of the body's own
    pixels (§7).  Default SD 0.2 mm: template tracking on fluoroscopy reached
    ≤ 0.4° and ≈ 0.06 mm (Balkovec 2017, §6), i.e. per-corner 0.03–0.09 mm by
    the relations above; doubled for single radiographs, which are noisier than
    fluoroscopy sequences.  To be replaced by the tracker's measured accuracy."""

    DETECTED = "detected"
    """Found automatically, not reviewed.  Default SD 1.0 mm: no published
    accuracy applies, so the value is set above the inter-observer level
    (0.68 mm, §6) to keep unreviewed detections visibly uncertain.  To be
    replaced by the detector's measured accuracy."""

    EDITED = "edited"
    """An automatic landmark moved by a reader: same as ``manual`` (0.6 mm)."""

    @property
    def default_sd_mm(self) -> float:
        """Default isotropic positional SD of one corner, in mm."""
        return DEFAULT_LANDMARK_SD_MM[self]


DEFAULT_LANDMARK_SD_MM: dict[PlacementMethod, float] = {
    PlacementMethod.MANUAL: 0.6,
    PlacementMethod.REFINED: 0.35,
    PlacementMethod.TRACKED: 0.2,
    PlacementMethod.DETECTED: 1.0,
    PlacementMethod.EDITED: 0.6,
}
"""Per-method default SD in mm (engineer of tracking/detection may update these
from measured accuracy; keep the docstrings in step)."""
