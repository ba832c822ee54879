"""Ways real lateral films differ from the clean phantom: the options that break detection.

Every field of :class:`Realism` at its default leaves the phantom exactly as
before (same pixels, same truth), so the committed sample stays bit-identical.
:func:`draw_realism` draws a seeded mix of them (the ``--realistic`` preset)
from a random stream of its own, so the patient, the motion and the noise of a
seed do not change when realism is switched on.

What each option changes, and why it matters to detection:

- ``lordosis_loss_deg``: the lower lumbar discs (L3-S1) lose that much neutral
  lordosis (flat back); with flexion on top, the lower segments of the flexion
  film are straight or kyphotic, so "the taller side of the discs is anterior"
  no longer holds.
- ``narrow_discs``: degenerate discs at those segments, 35-50 % of their
  normal height (a narrow L5-S1 looks like a fused sacral remnant).
- ``listhesis_mm`` at ``listhesis_segment``: a degenerative anterolisthesis in
  both films (the upper body displaced forward on the lower).
- ``transitional``: ``"sacralised-L5"`` (L5 fused to the sacrum by a bony
  bridge across a 1-2 mm disc that no longer moves) or ``"lumbarised-S1"`` (a
  true disc between S1 and S2, so the sacrum looks like one more lumbar body).
  The truth keeps the anatomical labels; a detector can only be right by saying
  the labels need review.
- ``crest_rise_mm``: the iliac crests project higher, over L5 and L4-L5.
- ``osteophytes_mm``: anterior spurs (beaks) at the endplate corners of L2-L5;
  they lie outside the corners (the chord meets the wall before the spur).
- ``soft_tissue``: trunk thickness factor (1 = as drawn): more attenuation,
  scatter and noise.
- ``gas_over_spine``: bowel gas projected over the bodies, not only in front.
- ``crop_top``: the film's top edge cuts through L1.
- ``burned_in_text``: annotations burned into the pixels (side marker, view,
  date, technologist's initials), white.
- ``shutter``: an electronic shutter blacks out the film outside a tighter
  field.
- ``export`` / ``export_spacing_mm``: an 8-bit ``"png"`` or ``"jpeg"`` export
  of the displayed image, downscaled to that patient spacing, with no
  calibration (as films reach research teams and public collections).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from app.phantom._anatomy import SEGMENTS, Anatomy, Motion

__all__ = [
    "EXPORTS",
    "TRANSITIONAL",
    "Realism",
    "draw_realism",
    "realistic_anatomy",
    "realistic_motion",
]

TRANSITIONAL: tuple[str, ...] = ("none", "sacralised-L5", "lumbarised-S1")
EXPORTS: tuple[str, ...] = ("dicom", "png", "jpeg")
_LOWER = ("L3-L4", "L4-L5", "L5-S1")
_NARROWABLE = ("L3-L4", "L4-L5", "L5-S1")


@dataclass(frozen=True)
class Realism:
    """Departures from the clean phantom (defaults: none).

    Attributes
    ----------
    lordosis_loss_deg : float
        Neutral lordosis removed at L5-S1 (0.8 of it at L4-L5, 0.5 at L3-L4), degrees.
    narrow_discs : tuple of str
        Segments among ``L3-L4``, ``L4-L5``, ``L5-S1`` with a degenerate, narrow disc.
    listhesis_mm : float
        Anterolisthesis added to ``listhesis_segment`` in both films, mm.
    listhesis_segment : str
    transitional : {'none', 'sacralised-L5', 'lumbarised-S1'}
    crest_rise_mm : float
        How much higher the iliac crests project, mm.
    osteophytes_mm : float
        Length of the anterior endplate spurs of L2-L5, mm (0: none).
    soft_tissue : float
        Trunk thickness factor, 0.8-1.6.
    gas_over_spine : bool
    crop_top : bool
        Crop the film through L1.
    burned_in_text : bool
    shutter : bool
    export : {'dicom', 'png', 'jpeg'}
    export_spacing_mm : float
        Patient-plane pixel spacing of the export, mm (0.25-0.4 typical); ignored for DICOM.
    """

    lordosis_loss_deg: float = 0.0
    narrow_discs: tuple[str, ...] = ()
    listhesis_mm: float = 0.0
    listhesis_segment: str = "L4-L5"
    transitional: str = "none"
    crest_rise_mm: float = 0.0
    osteophytes_mm: float = 0.0
    soft_tissue: float = 1.0
    gas_over_spine: bool = False
    crop_top: bool = False
    burned_in_text: bool = False
    shutter: bool = False
    export: str = "dicom"
    export_spacing_mm: float = 0.3

    def __post_init__(self) -> None:
        object.__setattr__(self, "narrow_discs", tuple(self.narrow_discs))
        checks = [
            ("lordosis_loss_deg", 0.0 <= self.lordosis_loss_deg <= 25.0, "between 0 and 25"),
            ("narrow_discs", all(s in _NARROWABLE for s in self.narrow_discs),
             f"segments among {_NARROWABLE}"),
            ("listhesis_mm", 0.0 <= self.listhesis_mm <= 12.0, "between 0 and 12"),
            ("listhesis_segment", self.listhesis_segment in _LOWER, f"one of {_LOWER}"),
            ("transitional", self.transitional in TRANSITIONAL, f"one of {TRANSITIONAL}"),
            ("crest_rise_mm", 0.0 <= self.crest_rise_mm <= 40.0, "between 0 and 40"),
            ("osteophytes_mm", 0.0 <= self.osteophytes_mm <= 8.0, "between 0 and 8"),
            ("soft_tissue", 0.8 <= self.soft_tissue <= 1.6, "between 0.8 and 1.6"),
            ("export", self.export in EXPORTS, f"one of {EXPORTS}"),
            ("export_spacing_mm", 0.1 <= self.export_spacing_mm <= 1.0, "between 0.1 and 1"),
        ]  # fmt: skip
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name}: must be {expected}, got {getattr(self, name)!r}")

    @property
    def active(self) -> bool:
        """Whether anything differs from the clean phantom."""
        return self != Realism()

    def to_json(self) -> dict:
        """The non-default fields (JSON-ready)."""
        out = {}
        default = Realism()
        for f in fields(self):
            value = getattr(self, f.name)
            if value != getattr(default, f.name) or (f.name == "export_spacing_mm" and self.export != "dicom"):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def draw_realism(rng: np.random.Generator) -> Realism:
    """A seeded mix of real-film conditions (the ``realistic`` preset).

    Each condition is drawn independently, so some films have several (iliac
    crest high over a narrow L5-S1 in a flat-backed patient, exported as an
    uncalibrated JPEG) and a few have none.
    """
    u = rng.uniform(size=16)
    narrow = []
    if u[0] < 0.45:
        narrow.append("L5-S1")
    if u[1] < 0.25:
        narrow.append("L4-L5")
    if u[2] < 0.1:
        narrow.append("L3-L4")
    transitional = "none"
    if u[3] < 0.05:
        transitional = "sacralised-L5"
    elif u[3] < 0.10:
        transitional = "lumbarised-S1"
    export = "dicom" if u[4] < 0.35 else ("png" if u[5] < 0.5 else "jpeg")
    return Realism(
        lordosis_loss_deg=float(rng.uniform(0.0, 16.0)),
        narrow_discs=tuple(s for s in _NARROWABLE if s in narrow),
        listhesis_mm=float(rng.uniform(3.0, 8.0)) if u[6] < 0.2 else 0.0,
        listhesis_segment="L4-L5" if u[7] < 0.6 else "L5-S1",
        transitional=transitional,
        crest_rise_mm=float(rng.uniform(0.0, 25.0)),
        osteophytes_mm=float(rng.uniform(1.5, 4.5)) if u[8] < 0.5 else 0.0,
        soft_tissue=float(rng.uniform(0.9, 1.4)),
        gas_over_spine=bool(u[9] < 0.5),
        crop_top=bool(u[10] < 0.2),
        burned_in_text=bool(u[11] < 0.9),
        shutter=bool(u[12] < 0.6),
        export=export,
        export_spacing_mm=float(rng.uniform(0.25, 0.4)),
    )


_NARROW_FACTOR = 0.42  # a degenerate disc keeps 35-50 % of its height
_FUSED_DISC_MM = (1.2, 2.0)  # posterior, anterior height of a sacralised L5-S1


def realistic_anatomy(anatomy: Anatomy, realism: Realism) -> Anatomy:
    """The patient's neutral discs with degeneration, flat back, listhesis, fusion.

    Only ``disc_neutral`` changes (angle, posterior height, translation per
    segment); the truth stays analytic because the poses are built from it.
    """
    disc = anatomy.disc_neutral.copy()
    d_inf = anatomy.corners[:, 3, 0]  # inferior endplate depth of each segment's upper body
    theta, post, trans = disc.T
    anterior = post + d_inf * np.sin(np.radians(theta))
    for name in realism.narrow_discs:
        i = SEGMENTS.index(name)
        post[i] *= _NARROW_FACTOR
        anterior[i] *= _NARROW_FACTOR
    if realism.transitional == "sacralised-L5":
        i = SEGMENTS.index("L5-S1")
        post[i], anterior[i] = _FUSED_DISC_MM
    theta = np.degrees(np.arcsin(np.clip((anterior - post) / d_inf, -0.5, 0.5)))
    for name, share in zip(("L3-L4", "L4-L5", "L5-S1"), (0.5, 0.8, 1.0), strict=True):
        if not (name == "L5-S1" and realism.transitional == "sacralised-L5"):
            theta[SEGMENTS.index(name)] -= share * realism.lordosis_loss_deg
    trans[SEGMENTS.index(realism.listhesis_segment)] += realism.listhesis_mm
    return replace(anatomy, disc_neutral=np.column_stack([theta, post, trans]))


def realistic_motion(motion: Motion, anatomy: Anatomy, realism: Realism) -> Motion:
    """A sacralised L5 does not move on the sacrum; narrow discs may close to 1 mm."""
    theta0, h0, t0 = anatomy.disc_neutral.T
    theta, trans, height = (a.copy() for a in (motion.theta_deg, motion.translation_mm, motion.disc_height_mm))
    for name in realism.narrow_discs:
        i = SEGMENTS.index(name)
        depth = anatomy.lower_superior_depth()[i]
        x_c = 0.3 * depth
        h_c = h0[i] + x_c * np.tan(np.radians(theta0[i]))
        height[:, i] = np.maximum(h_c - x_c * np.tan(np.radians(theta[:, i])), 1.0)
    if realism.transitional == "sacralised-L5":
        i = SEGMENTS.index("L5-S1")
        theta[:, i], trans[:, i], height[:, i] = theta0[i], t0[i], h0[i]
    return replace(motion, theta_deg=theta, translation_mm=trans, disc_height_mm=height)
