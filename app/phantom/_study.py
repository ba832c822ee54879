"""A flexion-extension phantom study with its ground truth."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from app.phantom._anatomy import (
    BODY_LEVELS,
    SEGMENTS,
    Anatomy,
    Motion,
    make_anatomy,
    make_motion,
)
from app.phantom._bones import Patch, body_patch, gas_patch, pelvis_patch, rib_patch
from app.phantom._film import FilmGeometry, film_geometry, render_film
from app.phantom._realism import (
    Realism,
    draw_realism,
    realistic_anatomy,
    realistic_motion,
)
from app.phantom._realism_film import export_8bit, film_artefacts
from measure._threads import single_threaded

__all__ = [
    "CALIBRATIONS",
    "COMPRESSIONS",
    "CORNER_DEFINITION",
    "MEASURED_LEVELS",
    "VIEWS",
    "PhantomFilm",
    "PhantomOptions",
    "PhantomStudy",
    "Realism",
    "make_study",
    "write_study",
]

VIEWS: tuple[str, str] = ("flexion", "extension")
MEASURED_LEVELS: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5", "S1")
_TRUTH_LEVELS: tuple[str, ...] = ("T11", "T12", *MEASURED_LEVELS)
CORNER_NAMES: tuple[str, ...] = ("AS", "PS", "PI", "AI")
CALIBRATIONS: tuple[str, ...] = (
    "calibrated", "magnification-corrected", "detector", "detector-differs",
    "uncalibrated", "garbage", "unit-spacing",
)  # fmt: skip
COMPRESSIONS: tuple[str, ...] = ("none", "rle", "jpeg-ls", "jpeg2000", "jpeg-lossless")
CORNER_DEFINITION = (
    "A corner is the point where the chord of the endplate (the straight line "
    "through the endplate's peripheral rim, i.e. between the two corners of that "
    "endplate) meets the outer cortical surface of the anterior (AS, AI) or "
    "posterior (PS, PI) wall of the vertebral body, in the mid-sagittal plane: "
    "the vertex of the body outline the phantom draws. Coordinates are image "
    "pixels (x = column, y = row, origin at the centre of the top-left pixel)."
)
_DEFAULT_SHAPE = (1920, 1536)  # rows, columns at 0.2 mm: a 38.4 x 30.7 cm detector
_DEFAULT_DETECTOR_SPACING = 0.2


@dataclass(frozen=True)
class PhantomOptions:
    """Everything that determines a phantom study (with the seed).

    Attributes
    ----------
    seed : int
        Seed of every random choice: same options, same bytes.
    facing : {'left', 'right'}
        Side of the image the patient's front is on.
    rotation_deg : float
        Rotation of the whole film about its centre, degrees, counter-clockwise
        as displayed (both films).
    magnification : float
        Geometric magnification of the flexion film (detector / patient).
    magnification_change : float
        Extension magnification = flexion magnification × this factor.
    photometric : {'MONOCHROME2', 'MONOCHROME1'}
    compression : {'none', 'rle', 'jpeg-ls', 'jpeg2000', 'jpeg-lossless'}
        Lossless transfer syntax of the DICOM files.
    calibration : str
        One of ``CALIBRATIONS``: which spacing attributes the headers carry
        (``docs/measurement.md`` §5).
    unstable : tuple of str
        Segments given 5.0-6.5 mm and 12.5-16° of motion (e.g. ``('L4-L5',)``).
    scale : float
        Film size factor: ``0.25`` renders 480 × 384 pixels of 0.8 mm (fast tests).
    bits_stored : int
        12 to 16.
    realism : Realism, optional
        Departures from the clean phantom that real films show (narrow discs,
        flat back, high iliac crests, text, 8-bit exports, ...); see
        :class:`app.phantom.Realism`.  None: the clean phantom.
    realistic : bool
        Draw a seeded ``realism`` (when none is given): the ``--realistic``
        preset.  The drawn values are in ``study.options.realism``.
    """

    seed: int
    facing: str = "left"
    rotation_deg: float = 0.0
    magnification: float = 1.2
    magnification_change: float = 1.0
    photometric: str = "MONOCHROME2"
    compression: str = "none"
    calibration: str = "magnification-corrected"
    unstable: tuple[str, ...] = ()
    scale: float = 1.0
    bits_stored: int = 12
    realism: Realism | None = None
    realistic: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "unstable", tuple(self.unstable))
        checks = [
            ("facing", self.facing in ("left", "right"), "'left' or 'right'"),
            ("photometric", self.photometric in ("MONOCHROME1", "MONOCHROME2"),
             "'MONOCHROME1' or 'MONOCHROME2'"),
            ("compression", self.compression in COMPRESSIONS, f"one of {COMPRESSIONS}"),
            ("calibration", self.calibration in CALIBRATIONS, f"one of {CALIBRATIONS}"),
            ("magnification", 1.0 <= self.magnification <= 2.0, "between 1 and 2"),
            ("magnification_change", 0.8 <= self.magnification_change <= 1.25,
             "between 0.8 and 1.25"),
            ("scale", 0.1 <= self.scale <= 2.0, "between 0.1 and 2"),
            ("bits_stored", self.bits_stored in (12, 13, 14, 15, 16), "12 to 16"),
            ("seed", 0 <= int(self.seed) < 2**63, "a non-negative integer"),
        ]  # fmt: skip
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name}: must be {expected}, got {getattr(self, name)!r}")
        bad = [s for s in self.unstable if s not in SEGMENTS]
        if bad:
            raise ValueError(f"unstable: unknown segment {bad[0]!r}; expected one of {SEGMENTS}")

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of both films."""
        return (round(_DEFAULT_SHAPE[0] * self.scale), round(_DEFAULT_SHAPE[1] * self.scale))

    @property
    def detector_spacing_mm(self) -> float:
        """Pixel spacing at the detector, mm."""
        return _DEFAULT_DETECTOR_SPACING / self.scale

    def magnifications(self) -> tuple[float, float]:
        """Magnification of the (flexion, extension) film."""
        return (self.magnification, self.magnification * self.magnification_change)


@dataclass(frozen=True)
class PhantomFilm:
    """One rendered film with its truth.

    Attributes
    ----------
    view : {'flexion', 'extension'}
    pixels : ndarray of shape (rows, columns), uint16
        Stored pixel values in the film's photometric interpretation.
    photometric : str
    bits_stored : int
    pixel_spacing_mm : tuple of float
        True ``(row, column)`` spacing in the patient, mm.
    detector_spacing_mm : float
        Spacing at the detector, mm.
    magnification : float
        Detector / patient.
    corners_px : ndarray of shape (8, 4, 2)
        True corners ``AS, PS, PI, AI`` of T11, T12, L1…L5, S1 in pixels
        (S1: ``PI``, ``AI`` NaN).
    export : {'dicom', 'png', 'jpeg'}
        How the film is written; an 8-bit export (``pixels`` uint8,
        ``bits_stored`` 8, MONOCHROME2) carries no calibration.
    file_bytes : bytes or None
        The encoded JPEG of a ``jpeg`` export (its decoded pixels are ``pixels``).
    """

    view: str
    pixels: np.ndarray
    photometric: str
    bits_stored: int
    pixel_spacing_mm: tuple[float, float]
    detector_spacing_mm: float
    magnification: float
    corners_px: np.ndarray
    export: str = "dicom"
    file_bytes: bytes | None = field(default=None, repr=False)

    def landmarks(self, levels: tuple[str, ...] = MEASURED_LEVELS) -> dict:
        """Corners in the landmarks-file layout: ``{level: {corner: [x, y]}}``."""
        out: dict[str, dict[str, list[float]]] = {}
        for level in levels:
            k = _TRUTH_LEVELS.index(level)
            names = CORNER_NAMES[:2] if level == "S1" else CORNER_NAMES
            out[level] = {c: [float(v) for v in self.corners_px[k, i]] for i, c in enumerate(names)}
        return out

    def landmark_array(self, levels: tuple[str, ...] = MEASURED_LEVELS) -> np.ndarray:
        """Corners as an array of shape (V, 4, 2), pixels, NaN for S1's ``PI``/``AI``."""
        return self.corners_px[[_TRUTH_LEVELS.index(level) for level in levels]].copy()

    def inside(self, level: str) -> bool:
        """Whether every corner of ``level`` lies on the film."""
        pts = self.corners_px[_TRUTH_LEVELS.index(level)]
        pts = pts[np.isfinite(pts[:, 0])]
        rows, cols = self.pixels.shape
        return bool(np.all((pts >= -0.5) & (pts <= np.array([cols, rows]) - 0.5)))


@dataclass(frozen=True)
class PhantomStudy:
    """A flexion and an extension film of one phantom patient, with the truth.

    Attributes
    ----------
    options : PhantomOptions
    flexion, extension : PhantomFilm
    motion : dict
        Per segment (``T12-L1`` … ``L5-S1``) the true ``theta_flexion_deg``,
        ``theta_extension_deg``, ``translation_flexion_mm``,
        ``translation_extension_mm``, ``endplate_depth_mm`` (of the lower body),
        ``dtheta_deg``, ``dt_mm``, ``dt_pct``.
    """

    options: PhantomOptions
    flexion: PhantomFilm
    extension: PhantomFilm
    motion: dict = field(repr=False)

    @property
    def films(self) -> tuple[PhantomFilm, PhantomFilm]:
        """(flexion, extension)."""
        return (self.flexion, self.extension)

    def truth(self) -> dict:
        """The ground truth as written to ``truth.json`` (JSON-ready)."""
        out: dict = {
            "format": "lumbar-instability-phantom-truth",
            "format_version": 1,
            "levels": list(MEASURED_LEVELS),
            "corner_definition": CORNER_DEFINITION,
        }
        for film in self.films:
            out[film.view] = {
                "pixel_spacing_mm": list(film.pixel_spacing_mm),
                "calibration_source": "calibrated",
                "calibration_detail": "phantom ground truth: detector spacing / magnification",
                "landmarks": film.landmarks(),
                "image_size": [int(film.pixels.shape[0]), int(film.pixels.shape[1])],
                "extra_landmarks": film.landmarks(("T11", "T12")),
                "inside_film": {level: film.inside(level) for level in _TRUTH_LEVELS},
                "magnification": film.magnification,
                "detector_spacing_mm": film.detector_spacing_mm,
                "photometric_interpretation": film.photometric,
                "header_calibration": _header_calibration(self.options.calibration, film),
            }
        out["motion"] = self.motion
        out["generator"] = {"name": "lumbar-instability phantom", **asdict(self.options)}
        out["generator"]["unstable"] = list(self.options.unstable)
        # the clean phantom's truth stays as it was (the committed sample is checked against it)
        realism, realistic = out["generator"].pop("realism"), out["generator"].pop("realistic")
        if realistic or realism is not None:
            out["generator"]["realistic"] = realistic
            out["generator"]["realism"] = self.options.realism.to_json() if self.options.realism else {}
        return out


def _header_calibration(calibration: str, film: PhantomFilm) -> dict:
    """What a reader following ``docs/measurement.md`` §5 must get from the headers."""
    if film.export != "dicom":
        return {"variant": f"{film.export} export", "source": "uncalibrated", "pixel_spacing_mm": None}
    true = [film.pixel_spacing_mm[0], film.pixel_spacing_mm[1]]
    detector = [film.detector_spacing_mm, film.detector_spacing_mm]
    source, spacing = {
        "calibrated": ("calibrated", true),
        "magnification-corrected": ("magnification-corrected", true),
        "detector": ("detector", detector),
        "detector-differs": ("calibrated", true),
        "uncalibrated": ("uncalibrated", None),
        "garbage": ("uncalibrated", None),
        # 1 mm/px as old CR exports write: read as detector spacing, but the bodies come out
        # 4-5x too deep; a reader must flag it and not use the millimetres (issue 14 §1)
        "unit-spacing": ("detector", [1.0, 1.0]),
    }[calibration]
    return {"variant": calibration, "source": source, "pixel_spacing_mm": spacing}


def _motion_truth(anatomy: Anatomy, motion: Motion) -> dict:
    depth = anatomy.lower_superior_depth()
    out = {}
    for i, name in enumerate(SEGMENTS):
        if name == "T11-T12":
            continue
        th_f, th_e = motion.theta_deg[:, i]
        t_f, t_e = motion.translation_mm[:, i]
        dt = t_f - t_e
        out[name] = {
            "theta_flexion_deg": float(th_f),
            "theta_extension_deg": float(th_e),
            "translation_flexion_mm": float(t_f),
            "translation_extension_mm": float(t_e),
            "endplate_depth_mm": float(depth[i]),
            "dtheta_deg": float(th_e - th_f),
            "dt_mm": float(dt),
            "dt_pct": float(100.0 * dt / depth[i]),
        }
    return out


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream])


def make_study(seed: int, **options) -> PhantomStudy:
    """Render a flexion-extension phantom study in memory.

    Parameters
    ----------
    seed : int
        Same seed and options give identical pixels and truth.
    **options
        Fields of :class:`PhantomOptions` (``facing``, ``rotation_deg``,
        ``magnification``, ``magnification_change``, ``photometric``,
        ``compression``, ``calibration``, ``unstable``, ``scale``,
        ``bits_stored``).

    Returns
    -------
    PhantomStudy

    Examples
    --------
    >>> study = make_study(7, scale=0.2, unstable=("L4-L5",))
    >>> study.flexion.pixels.shape
    (384, 307)
    >>> study.motion["L4-L5"]["dt_mm"] > 4
    True

    Notes
    -----
    Rendering runs single-threaded: OpenCV's warps and resizes round differently
    with another thread count (464 pixels of the sample's flexion film moved by
    one grey level between 1 and 2 threads), and the same seed must give the
    same pixels on a laptop, a 2-core CI machine and a 64-core server.
    """
    with single_threaded():
        return _make_study(seed, **options)


def _make_study(seed: int, **options) -> PhantomStudy:
    opts = PhantomOptions(seed=seed, **options)
    if opts.realistic and opts.realism is None:
        opts = replace(opts, realism=draw_realism(_rng(seed, 20)))
    realism = opts.realism if opts.realism is not None and opts.realism.active else None
    anatomy = make_anatomy(_rng(seed, 1))
    if realism is not None:
        anatomy = realistic_anatomy(anatomy, realism)
    motion = make_motion(anatomy, _rng(seed, 2), unstable=opts.unstable)
    if realism is not None:
        motion = realistic_motion(motion, anatomy, realism)
    place = _rng(seed, 3)
    jitter = place.uniform([-0.02, -0.02, -2.0], [0.02, 0.02, 2.0], size=(2, 3))
    gas_offsets = np.column_stack(
        [place.uniform(-4, 4, 2), place.uniform(-4, 4, 2), np.radians(place.uniform(-3, 3, 2))]
    )
    habitus = place.uniform([0.9, 0.85, 0.9], [1.25, 1.3, 1.15])
    mags = opts.magnifications()
    res = opts.detector_spacing_mm / max(mags) / 1.25
    parts = _parts(anatomy, res, _rng(seed, 4), realism, seed)
    if realism is not None:
        habitus = habitus * np.array([1.0, realism.soft_tissue, realism.soft_tissue])
    films = []
    for f, view in enumerate(VIEWS):
        geom: FilmGeometry = film_geometry(
            anatomy,
            motion,
            f,
            shape=opts.shape,
            detector_spacing_mm=opts.detector_spacing_mm,
            magnification=mags[f],
            facing=opts.facing,
            rotation_deg=opts.rotation_deg,
            jitter=jitter[f],
        )
        pixels = render_film(
            geom, anatomy, parts, gas_offsets[f], habitus, _rng(seed, 10 + f),
            bits_stored=opts.bits_stored,
        )  # fmt: skip
        corners = geom.corners_px
        if realism is not None:
            pixels, corners = film_artefacts(
                pixels, corners, realism, view, opts.bits_stored, _rng(seed, 23 + f)
            )
        if opts.photometric == "MONOCHROME1" and (realism is None or realism.export == "dicom"):
            pixels = (2**opts.bits_stored - 1 - pixels).astype(np.uint16)
        spacing = geom.patient_spacing_mm
        film = PhantomFilm(
            view=view,
            pixels=pixels,
            photometric=opts.photometric,
            bits_stored=opts.bits_stored,
            pixel_spacing_mm=(spacing, spacing),
            detector_spacing_mm=opts.detector_spacing_mm,
            magnification=mags[f],
            corners_px=corners,
        )
        if realism is not None and realism.export != "dicom":
            film = export_8bit(film, realism, _rng(seed, 25 + f))
        films.append(film)
    return PhantomStudy(opts, films[0], films[1], _motion_truth(anatomy, motion))


def _parts(
    anatomy: Anatomy, res: float, rng: np.random.Generator, realism: Realism | None, seed: int
) -> dict[str, Patch]:
    """The rigid parts; realism's extras draw from streams of their own (the clean parts stay)."""
    r = realism or Realism()
    spurs = _rng(seed, 21).uniform(0.4, 1.0, size=(len(BODY_LEVELS), 2)) * r.osteophytes_mm
    spurs[: BODY_LEVELS.index("L2")] = 0.0
    parts: dict[str, Patch] = {}
    for k, level in enumerate(BODY_LEVELS):
        bridge = r.transitional == "sacralised-L5" and level == "L5"
        parts[level] = body_patch(
            anatomy, k, res, rng, osteophyte_mm=(float(spurs[k, 0]), float(spurs[k, 1])),
            bridge_mm=float(anatomy.disc_neutral[-1, 1] + 0.8) if bridge else 0.0,
        )  # fmt: skip
    parts["ribs-T11"] = rib_patch(anatomy, 0, res, rng, ribs=(10, 11))
    parts["ribs-T12"] = rib_patch(anatomy, 1, res, rng, ribs=(12,))
    parts["pelvis"] = pelvis_patch(
        anatomy, res, rng, crest_rise_mm=r.crest_rise_mm,
        s1_s2_disc=r.transitional == "lumbarised-S1",
    )  # fmt: skip
    parts["gas"] = gas_patch(
        max(res, 0.4), rng, depth_mm=float(anatomy.corners[BODY_LEVELS.index("L3"), 3, 0])
    )
    if r.gas_over_spine:  # colon crossing the spine's shadow
        parts["gas-spine"] = gas_patch(max(res, 0.4), _rng(seed, 22), depth_mm=-20.0)
    return parts


def write_study(study: PhantomStudy, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``flexion.dcm``, ``extension.dcm`` and ``truth.json`` into ``out_dir``.

    Every file is written atomically.  Returns the paths by name.
    """
    from app.atomic import atomic_write_bytes, atomic_write_text
    from app.phantom._dicom import encode_film

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for film in study.films:
        if film.export == "dicom":
            path = out / f"{film.view}.dcm"
            atomic_write_bytes(path, encode_film(study, film))
        else:
            from app.phantom._realism_film import encoded_export

            path = out / f"{film.view}.{'png' if film.export == 'png' else 'jpg'}"
            atomic_write_bytes(path, encoded_export(film))
        paths[film.view] = path
    truth_path = out / "truth.json"
    atomic_write_text(truth_path, json.dumps(study.truth(), indent=2) + "\n")
    paths["truth"] = truth_path
    return paths
