"""The reader's own measurements on a film: free rulers and angles (as in Surgimap, Weasis).

An annotation is a few points in the film's pixel coordinates (``x`` = column,
``y`` = row, origin at the centre of the top-left pixel, as every landmark):

- ``ruler``: two points; its length is given in **millimetres only when the
  film is calibrated**, with the calibration source named (``manual``,
  ``calibrated``, ``magnification-corrected``, ``detector``), else in pixels and
  marked *uncalibrated* (``docs/measurement.md`` §5: never a millimetre whose
  calibration is unknown);
- ``angle``: three points ``A, V, B`` (the angle at the vertex ``V`` between
  ``VA`` and ``VB``, 0-180°), or four points, two lines ``P0-P1`` and
  ``P2-P3`` (the angle between the lines, 0-90°, as a Cobb angle).  Angles are
  computed in the patient's plane: with a calibration whose row and column
  spacings differ, the pixel offsets are scaled first (square pixels otherwise).

They are kept in the session (``annotations``: ``[{"kind": "ruler", "film":
"flexion", "points_px": [[x, y], [x, y]]}, ...]``, ``docs/session-format.md``),
undoable, drawn in the viewer, the PDF and the PNG, and listed with their
values in the PDF.  They never enter the instability verdict.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from measure import Calibration

__all__ = [
    "ANNOTATION_KINDS",
    "MAX_ANNOTATIONS",
    "Annotation",
    "AnnotationValue",
    "annotation_label",
    "annotations_from_json",
    "annotations_to_json",
    "labelled",
    "measure_annotation",
    "session_annotations",
    "short_text",
]

ANNOTATION_KINDS: dict[str, tuple[int, ...]] = {"ruler": (2,), "angle": (3, 4)}
"""Each kind and the numbers of points it may have."""

MAX_ANNOTATIONS = 500
"""At most this many annotations in one session (a damaged file cannot make the viewer draw millions)."""

_COORDINATE_LIMIT = 1e6


@dataclass(frozen=True)
class Annotation:
    """One ruler or angle on one film.

    Parameters
    ----------
    kind : {"ruler", "angle"}
    points_px : tuple of (float, float)
        ``(x, y)`` pixels; 2 for a ruler, 3 (``A, V, B``) or 4 (two lines) for an angle.

    Raises
    ------
    ValueError
        An unknown kind, the wrong number of points, or a coordinate that is not
        a finite number within ±1e6 pixels.
    """

    kind: str
    points_px: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if self.kind not in ANNOTATION_KINDS:
            raise ValueError(f"kind: expected one of {', '.join(ANNOTATION_KINDS)}, got {self.kind!r}")
        points = tuple((float(x), float(y)) for x, y in self.points_px)
        if len(points) not in ANNOTATION_KINDS[self.kind]:
            counts = " or ".join(str(n) for n in ANNOTATION_KINDS[self.kind])
            raise ValueError(f"points_px: {'an' if self.kind == 'angle' else 'a'} {self.kind} has {counts} points, got {len(points)}")
        if not all(math.isfinite(v) and abs(v) <= _COORDINATE_LIMIT for p in points for v in p):
            raise ValueError("points_px: coordinates must be finite numbers of pixels within ±1e6")
        object.__setattr__(self, "points_px", points)

    def moved(self, index: int, xy: tuple[float, float]) -> Annotation:
        """The annotation with point ``index`` at ``xy``."""
        points = list(self.points_px)
        points[index] = (float(xy[0]), float(xy[1]))
        return Annotation(self.kind, tuple(points))

    def to_json(self, film: str) -> dict[str, Any]:
        return {"kind": self.kind, "film": film, "points_px": [[x, y] for x, y in self.points_px]}


@dataclass(frozen=True)
class AnnotationValue:
    """What an annotation measures.

    Attributes
    ----------
    value : float
        Millimetres, pixels or degrees (see ``unit``).
    unit : {"mm", "px", "deg"}
    calibration_source : str or None
        Where the millimetres come from (``measure.CalibrationSource`` value);
        ``"uncalibrated"`` for a ruler in pixels; None for an angle.
    text : str
        How the viewer and the PDF show it, e.g. ``"42.1 mm (calibrated)"``,
        ``"210.5 px (uncalibrated: no mm)"``, ``"37.2°"``.
    """

    value: float
    unit: str
    calibration_source: str | None
    text: str


def _scale(calibration: Calibration | None) -> tuple[float, float]:
    """(x, y) factors that make pixel offsets proportional to the patient's plane."""
    if calibration is not None and calibration.is_calibrated:
        return float(calibration.column_spacing_mm), float(calibration.row_spacing_mm)
    return 1.0, 1.0


def measure_annotation(annotation: Annotation, calibration: Calibration | None) -> AnnotationValue:
    """The length or angle of one annotation on a film with ``calibration``.

    Parameters
    ----------
    annotation : Annotation
    calibration : measure.Calibration or None
        The film's calibration in force (manual line, DICOM, or none).

    Returns
    -------
    AnnotationValue

    Examples
    --------
    >>> from measure import Calibration, CalibrationSource
    >>> cal = Calibration(0.2, 0.1, CalibrationSource.CALIBRATED, "")
    >>> measure_annotation(Annotation("ruler", ((0, 0), (300, 400))), cal).text
    '50.0 mm (calibrated)'
    >>> measure_annotation(Annotation("ruler", ((0, 0), (300, 400))), None).text
    '500.0 px (uncalibrated: no mm)'
    """
    sx, sy = _scale(calibration)
    pts = np.asarray(annotation.points_px, dtype=float) * np.array([sx, sy])
    if annotation.kind == "ruler":
        length = float(np.hypot(*(pts[1] - pts[0])))
        if calibration is not None and calibration.is_calibrated:
            source = str(calibration.source)
            shown = "detector plane, not corrected for magnification" if source == "detector" else source
            return AnnotationValue(length, "mm", source, f"{length:.1f} mm ({shown})")
        return AnnotationValue(length, "px", "uncalibrated", f"{length:.1f} px (uncalibrated: no mm)")
    if len(pts) == 3:
        u, v = pts[0] - pts[1], pts[2] - pts[1]
        acute = False
    else:
        u, v = pts[1] - pts[0], pts[3] - pts[2]
        acute = True
    norms = float(np.hypot(*u) * np.hypot(*v))
    if norms == 0.0:
        return AnnotationValue(math.nan, "deg", None, "angle undefined (two points coincide)")
    cross = float(u[0] * v[1] - u[1] * v[0])
    dot = float(u @ v)
    angle = math.degrees(math.atan2(abs(cross), dot))  # 0-180, well conditioned at 0 and 180
    if acute and angle > 90.0:
        angle = 180.0 - angle
    return AnnotationValue(angle, "deg", None, f"{angle:.1f}°")


def annotation_label(kind: str, number: int) -> str:
    """``R1``, ``R2`` … for rulers and ``A1`` … for angles (numbered per film)."""
    return ("R" if kind == "ruler" else "A") + str(number)


def labelled(annotations: Sequence[Annotation]) -> list[tuple[str, Annotation]]:
    """Each annotation with its label (rulers and angles numbered separately, in order)."""
    counts: dict[str, int] = {}
    out = []
    for a in annotations:
        counts[a.kind] = counts.get(a.kind, 0) + 1
        out.append((annotation_label(a.kind, counts[a.kind]), a))
    return out


def annotations_to_json(by_film: Mapping[str, Sequence[Annotation]]) -> list[dict[str, Any]]:
    """The session's ``annotations`` list (films in the order given)."""
    return [a.to_json(film) for film, items in by_film.items() for a in items]


def annotations_from_json(items: Any, films: Iterable[str] = ("flexion", "extension")) -> dict[str, list[Annotation]]:
    """Read the session's ``annotations`` list into annotations by film.

    Raises
    ------
    ValueError
        ``"annotations[2].points_px: ..."``: the first bad entry and why.
    """
    films = tuple(films)
    out: dict[str, list[Annotation]] = {f: [] for f in films}
    if items is None:
        return out
    if not isinstance(items, list):
        raise ValueError(f"annotations: expected a list, got {type(items).__name__}")
    if len(items) > MAX_ANNOTATIONS:
        raise ValueError(f"annotations: at most {MAX_ANNOTATIONS} are allowed, got {len(items)}")
    for i, item in enumerate(items):
        where = f"annotations[{i}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: expected an object with kind, film and points_px")
        film = item.get("film")
        if film not in films:
            raise ValueError(f"{where}.film: expected one of {', '.join(films)}, got {film!r}")
        points = item.get("points_px")
        if not isinstance(points, list) or not all(
            isinstance(p, list) and len(p) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
            for p in points
        ):
            raise ValueError(f"{where}.points_px: expected a list of [x, y] numbers")
        try:
            out[film].append(Annotation(str(item.get("kind")), tuple((p[0], p[1]) for p in points)))
        except ValueError as exc:
            raise ValueError(f"{where}.{exc}") from None
    return out


def short_text(value: AnnotationValue) -> str:
    """The value as drawn beside the annotation on a film: ``42.1 mm``, ``210.5 px``, ``37.2°``."""
    if not math.isfinite(value.value):
        return "undefined"
    unit = {"mm": " mm", "px": " px", "deg": "°"}[value.unit]
    return f"{value.value:.1f}{unit}"


def session_annotations(
    session: Mapping[str, Any], calibrations: Mapping[str, Calibration | None]
) -> dict[str, list[tuple[str, Annotation, AnnotationValue]]]:
    """The annotations of a session document by film, labelled and measured.

    Parameters
    ----------
    session : mapping
        The session JSON (its ``annotations`` list; checked when the document was read).
    calibrations : mapping of str to Calibration
        Each present film's calibration in force (a report's ``films[view].calibration``).

    Returns
    -------
    dict of str to list of (str, Annotation, AnnotationValue)
        Only the films in ``calibrations``; an unreadable list gives none.
    """
    try:
        drawn = annotations_from_json(session.get("annotations"), tuple(calibrations))
    except ValueError:
        return {view: [] for view in calibrations}
    return {
        view: [(label, a, measure_annotation(a, calibrations[view])) for label, a in labelled(items)]
        for view, items in drawn.items()
    }
