"""The landmarks JSON file (``docs/landmarks-format.md``): read, check and write.

A file holds the corners of the vertebral bodies on a flexion and an extension
film, with each film's pixel spacing.  Level labels are data: ``T12`` or ``L6``
are allowed, and the bodies are ordered top to bottom by anatomy.  Keys this
module does not know are kept and written back unchanged, so the session file
of the viewer (which extends this format) survives a read/write round trip.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from app.atomic import atomic_write_text
from app.errors import InputFileError
from app.jsonfile import read_json
from app.safety import image_shape_of
from measure import (
    CORNERS,
    Calibration,
    CalibrationSource,
    Criteria,
    LandmarkUncertainty,
    PlacementMethod,
    get_criteria,
    level_sort_key,
    placement_uncertainty,
)

__all__ = [
    "FILMS",
    "FilmLandmarks",
    "StudyLandmarks",
    "parse_landmarks",
    "read_criteria",
    "read_landmarks",
    "write_landmarks",
]

FILMS: tuple[str, str] = ("flexion", "extension")
_FILM_KEYS = {
    "pixel_spacing_mm",
    "calibration_source",
    "calibration_detail",
    "landmarks",
    "placement",
    "landmark_sd_mm",
}
UNSTATED_SOURCE_DETAIL = (
    "pixel_spacing_mm from the landmarks file without calibration_source: provenance "
    "unknown, treated as detector spacing"
)
NO_SPACING_DETAIL = "no pixel_spacing_mm in the landmarks file"
_DEFAULT_DETAILS = (UNSTATED_SOURCE_DETAIL, NO_SPACING_DETAIL)

#: Pixel spacings accepted, mm (a radiograph's are 0.05-1 mm; 1 µm to 10 mm
#: leaves room for any scan or reduced copy and refuses garbage such as 1e308).
SPACING_RANGE_MM: tuple[float, float] = (1e-3, 10.0)
#: Largest landmark coordinate, pixels (a film is at most some 10^4 pixels wide).
MAX_COORDINATE_PX = 1e6
#: Largest positional SD of a corner, mm.
MAX_SD_MM = 100.0
#: ``format`` values whose files carry landmarks, with the newest ``format_version``
#: this software reads (a session's is :data:`app.session.FORMAT_VERSION`).
LANDMARK_FORMATS: dict[str, int | None] = {
    "lumbar-instability-landmarks": 1,
    "lumbar-instability-session": None,
    "lumbar-instability-detections": 1,  # written by ``lumbar-instability detect``
    "lumbar-instability-phantom-truth": 1,
}


@dataclass(frozen=True, eq=False)
class FilmLandmarks:
    """Corners and calibration of one film.

    Parameters
    ----------
    corners : ndarray of shape (V, 4, 2), pixels
        (x, y) of AS, PS, PI, AI per body, top to bottom; NaN = absent.
    calibration : Calibration
        Pixel spacing and where it came from.
    placement : ndarray of str, shape (V, 4), optional
        :class:`measure.PlacementMethod` value per corner, "" where not stated.
    landmark_sd_mm : ndarray of shape (V, 4), mm, optional
        Positional SD per corner stated in the file, NaN where not stated.
    extra : dict
        Keys of the film object this module does not interpret (kept verbatim).
    """

    corners: np.ndarray
    calibration: Calibration = field(default_factory=Calibration.uncalibrated)
    placement: np.ndarray | None = None
    landmark_sd_mm: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def spacing_mm(self) -> tuple[float, float] | None:
        """(row, column) mm, or None when uncalibrated."""
        return self.calibration.spacing_mm

    def effective_sd_mm(self) -> np.ndarray:
        """SD per corner, shape (V, 4), mm: stated SD, else the placement method's
        default, else the ``manual`` default (a landmarks file is a reader's clicks)."""
        n = self.corners.shape[0]
        methods = np.full((n, 4), PlacementMethod.MANUAL.value, dtype=object)
        if self.placement is not None:
            stated = self.placement != ""
            methods[stated] = self.placement[stated]
        sd = np.vectorize(lambda m: PlacementMethod(m).default_sd_mm, otypes=[float])(methods)
        if self.landmark_sd_mm is not None:
            stated = np.isfinite(self.landmark_sd_mm)
            sd[stated] = self.landmark_sd_mm[stated]
        return sd

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """``(rows, columns)`` of the film stated under ``image_size``, or None."""
        return image_shape_of(self.extra)

    def with_image_size(self, shape: tuple[int, int] | None) -> FilmLandmarks:
        """A copy stating the film's size in pixels as ``image_size`` (``[rows, columns]``).

        Every landmarks writer states it, so that the field-of-view check of
        :func:`app.safety.implausible_spacing` also runs on the file alone (a
        1 mm spacing on a cropped film of coarse pixels gives plausible body
        depths; only the film's size then shows it larger than any detector).

        Parameters
        ----------
        shape : (int, int) or None
            The film's ``(rows, columns)``; None returns the landmarks unchanged.
        """
        if shape is None:
            return self
        extra = {**self.extra, "image_size": [int(shape[0]), int(shape[1])]}
        return FilmLandmarks(self.corners, self.calibration, self.placement, self.landmark_sd_mm, extra)

    def uncertainty(self) -> LandmarkUncertainty:
        """The measured error model of these corners (``measure.placement_uncertainty``
        on :meth:`effective_sd_mm` and the placement methods, ``manual`` when unstated)."""
        methods = np.full(self.corners.shape[:2], PlacementMethod.MANUAL.value, dtype=object)
        if self.placement is not None:
            stated = self.placement != ""
            methods[stated] = self.placement[stated]
        return placement_uncertainty(methods, self.effective_sd_mm())


@dataclass(frozen=True, eq=False)
class StudyLandmarks:
    """A flexion and an extension film's landmarks on the same levels.

    Parameters
    ----------
    levels : tuple of str, length V
        Body labels, top to bottom.
    flexion, extension : FilmLandmarks
    extra : dict
        Top-level keys this module does not interpret (kept verbatim).
    path : Path, optional
        The file read, for messages.
    """

    levels: tuple[str, ...]
    flexion: FilmLandmarks
    extension: FilmLandmarks
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def film(self, name: str) -> FilmLandmarks:
        """``'flexion'`` or ``'extension'``."""
        if name not in FILMS:
            raise ValueError(f"name: expected 'flexion' or 'extension', got {name!r}")
        return getattr(self, name)

    def check_measurable(self) -> None:
        """Raise :class:`InputFileError` naming the key of a corner a segment needs.

        A segment needs the upper body's PI and AI and the lower body's AS and
        PS.  A level without any corner is a missing level, which is allowed.
        """
        where = self.path or "<landmarks>"
        n = len(self.levels)
        for name in FILMS:
            corners = self.film(name).corners
            present = np.isfinite(corners).all(axis=2)  # (V, 4)
            for v, level in enumerate(self.levels):
                if not present[v].any():
                    continue
                needed = ([] if v == 0 else ["AS", "PS"]) + ([] if v == n - 1 else ["PI", "AI"])
                for corner in needed:
                    if not present[v, CORNERS.index(corner)]:
                        raise InputFileError(
                            where,
                            f"key {name}.landmarks.{level}.{corner}: missing; the segment "
                            f"{_segment_of(self.levels, v, corner)} needs it (leave out the "
                            f"whole level if it is not visible)",
                        )
        if len(self.levels) < 2:
            raise InputFileError(where, "key flexion.landmarks: at least two levels are needed")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready mapping (extra keys included)."""
        doc = dict(self.extra)
        if "levels" in doc:
            doc["levels"] = list(self.levels)
        for name in FILMS:
            doc[name] = _film_to_dict(self.film(name), self.levels)
        return doc


def _segment_of(levels, v: int, corner: str) -> str:
    if corner in ("AS", "PS"):
        return f"{levels[v - 1]}-{levels[v]}"
    return f"{levels[v]}-{levels[v + 1]}"


# --------------------------------------------------------------------------- reading


class _Bad(Exception):
    """A problem at a key path; turned into InputFileError with the file name."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"key {key}: {reason}")


def _load_json(path: Path) -> Any:
    return read_json(path)


def _number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # a JSON integer of hundreds of digits
        return False


def _spacing(value: Any, key: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2 or not all(_number(v) and v > 0 for v in value):
        raise _Bad(key, f"expected [row, column] positive numbers in mm or null, got {_show(value)}")
    low, high = SPACING_RANGE_MM
    if not all(low <= v <= high for v in value):
        raise _Bad(
            key,
            f"expected [row, column] positive numbers in mm or null, got {_show(value)}: "
            f"a pixel spacing lies between {low:g} and {high:g} mm",
        )
    return float(value[0]), float(value[1])


def _show(value: Any) -> str:
    """A short JSON rendering of a bad value for a message."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _calibration(film: Mapping[str, Any], name: str) -> Calibration:
    spacing = _spacing(film.get("pixel_spacing_mm"), f"{name}.pixel_spacing_mm")
    detail = film.get("calibration_detail", "")
    if not isinstance(detail, str):
        raise _Bad(f"{name}.calibration_detail", "expected a string")
    source = film.get("calibration_source")
    if source is None:
        if spacing is None:
            return Calibration.uncalibrated(detail or NO_SPACING_DETAIL)
        return Calibration(*spacing, CalibrationSource.DETECTOR, detail or UNSTATED_SOURCE_DETAIL)
    try:
        source = CalibrationSource(source)
    except ValueError:
        known = ", ".join(s.value for s in CalibrationSource)
        raise _Bad(f"{name}.calibration_source", f"expected one of {known}, got {_show(source)}") from None
    if source is CalibrationSource.UNCALIBRATED:
        if spacing is not None:
            raise _Bad(f"{name}.pixel_spacing_mm", "must be null when calibration_source is uncalibrated")
        return Calibration.uncalibrated(detail)
    if spacing is None:
        raise _Bad(f"{name}.pixel_spacing_mm", f"missing although calibration_source is {source.value}")
    return Calibration(*spacing, source, detail)


def _per_corner(film: Mapping[str, Any], name: str, key: str) -> dict[str, dict[str, Any]]:
    table = film.get(key)
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise _Bad(f"{name}.{key}", "expected an object mapping levels to corners")
    for level, corners in table.items():
        if not isinstance(corners, Mapping):
            raise _Bad(f"{name}.{key}.{level}", "expected an object mapping corners (AS, PS, PI, AI)")
        for corner in corners:
            if corner not in CORNERS:
                raise _Bad(f"{name}.{key}.{level}.{corner}", f"unknown corner (expected {', '.join(CORNERS)})")
    return dict(table)


def _check_level(label: Any, key: str) -> str:
    try:
        if not isinstance(label, str) or label != label.strip():
            raise ValueError(label)
        level_sort_key(label)
    except ValueError:
        raise _Bad(key, f"{_show(label)} is not a vertebral level such as L4, T12 or S1") from None
    return label


def check_stated_levels(stated: list[str]) -> None:
    """Check a file's ``levels`` list: valid labels, each once and in one spelling, top to bottom.

    Raises ``_Bad`` naming the key ``levels`` (the callers add the file).
    """
    for i, level in enumerate(stated):
        _check_level(level, f"levels[{i}]")
    if len(set(stated)) != len(stated):
        raise _Bad("levels", "labels must be unique")
    _same_level_twice(stated, "levels")
    ordered = sorted(stated, key=level_sort_key)
    if ordered != stated:
        raise _Bad("levels", f"expected top-to-bottom order {ordered}")


def _same_level_twice(labels: list[str], key: str) -> None:
    """Refuse two spellings of one level (``L4`` and ``l4``, ``L4`` and ``L04``)."""
    seen: dict[tuple[int, int], str] = {}
    for label in labels:
        first = seen.setdefault(level_sort_key(label), label)
        if first != label:
            raise _Bad(key, f"{_show(first)} and {_show(label)} name the same level: write each level once, one way")


def check_format(doc: Mapping[str, Any], path: str | PathLike[str] = "<landmarks>") -> str | None:
    """Check ``format`` and ``format_version`` of a landmarks or session document.

    Returns
    -------
    str or None
        The stated format (None when absent: read as a landmarks file).

    Raises
    ------
    InputFileError
        An unknown format, or a version this software does not read.
    """
    fmt = doc.get("format")
    if fmt is None:
        if "format_version" in doc:
            raise InputFileError(path, "key format_version: given without format")
        return None
    if fmt not in LANDMARK_FORMATS:
        known = ", ".join(LANDMARK_FORMATS)
        raise InputFileError(
            path, f"key format: {_show(fmt)} is not a format this tool reads (expected {known}; "
            "see docs/landmarks-format.md)"
        )
    newest = LANDMARK_FORMATS[fmt]
    if newest is None:
        from app.session import FORMAT_VERSION as newest
    version = doc.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputFileError(path, f"key format_version: expected a whole number from 1, got {_show(version)}")
    if version > newest:
        raise InputFileError(
            path, f"key format_version: {fmt} version {version} is newer than this software reads "
            f"({newest}): update lumbar-instability"
        )
    return fmt


def _film_from_dict(film: Any, name: str, levels: tuple[str, ...]) -> FilmLandmarks:
    n = len(levels)
    index = {level: v for v, level in enumerate(levels)}
    landmarks = _per_corner(film, name, "landmarks")
    corners = np.full((n, 4, 2), np.nan)
    for level, points in landmarks.items():
        for corner, xy in points.items():
            key = f"{name}.landmarks.{level}.{corner}"
            if xy is None:
                continue
            if not isinstance(xy, list) or len(xy) != 2 or not all(_number(v) for v in xy):
                raise _Bad(key, f"expected [x, y] numbers, got {_show(xy)}")
            if not all(abs(v) <= MAX_COORDINATE_PX for v in xy):
                raise _Bad(key, f"[x, y] pixels must lie within ±{MAX_COORDINATE_PX:g}, got {_show(xy)}")
            corners[index[level], CORNERS.index(corner)] = xy
    placement_table = _per_corner(film, name, "placement")
    placement = None
    if placement_table:
        placement = np.full((n, 4), "", dtype=object)
        for level, methods in placement_table.items():
            _check_level(level, f"{name}.placement.{level}")
            if level not in index:
                _same_level_twice([*levels, level], f"{name}.placement.{level}")
                continue
            for corner, method in methods.items():
                try:
                    placement[index[level], CORNERS.index(corner)] = PlacementMethod(method).value
                except ValueError:
                    known = ", ".join(m.value for m in PlacementMethod)
                    raise _Bad(
                        f"{name}.placement.{level}.{corner}", f"expected one of {known}, got {_show(method)}"
                    ) from None
    sd_table = _per_corner(film, name, "landmark_sd_mm")
    sd = None
    if sd_table:
        sd = np.full((n, 4), np.nan)
        for level, values in sd_table.items():
            _check_level(level, f"{name}.landmark_sd_mm.{level}")
            if level not in index:
                _same_level_twice([*levels, level], f"{name}.landmark_sd_mm.{level}")
                continue
            for corner, value in values.items():
                if value is None:
                    continue
                if not _number(value) or not 0 <= value <= MAX_SD_MM:
                    raise _Bad(
                        f"{name}.landmark_sd_mm.{level}.{corner}",
                        f"expected a number >= 0 (mm, at most {MAX_SD_MM:g}), got {_show(value)}",
                    )
                sd[index[level], CORNERS.index(corner)] = value
    extra = {k: v for k, v in film.items() if k not in _FILM_KEYS}
    return FilmLandmarks(corners, _calibration(film, name), placement, sd, extra)


_LAST = {"T": 12, "L": 5}  # the usual last number of a region, where the next one starts


def _with_skipped_levels(ordered: list[str]) -> tuple[str, ...]:
    """Levels top to bottom with any level skipped between two labelled ones added.

    Without this a file with L3 and L5 but no L4 would be measured as one segment
    "L3-L5" spanning two discs, against single-segment thresholds.  The added levels
    have no landmarks, so their segments are reported as not measured.  Only gaps
    inside a region and across T12/L1 and L5/S1 are filled (a sixth lumbar body is
    kept when it is labelled).
    """
    out: list[str] = []
    for upper, lower in itertools.pairwise(ordered):
        out.append(upper)
        (ru, nu), (rl, nl) = level_sort_key(upper), level_sort_key(lower)
        prefix_u, prefix_l = upper.rstrip("0123456789"), lower.rstrip("0123456789")
        if ru == rl:
            out += [f"{prefix_u}{k}" for k in range(nu + 1, nl)]
            continue
        prefix_u, prefix_l = prefix_u.upper(), prefix_l.upper()
        if (prefix_u, prefix_l) in (("T", "L"), ("L", "S")):
            out += [f"{prefix_u}{k}" for k in range(nu + 1, _LAST[prefix_u] + 1)]
            out += [f"{prefix_l}{k}" for k in range(1, nl)]
    out += ordered[-1:]
    return tuple(out)


def parse_landmarks(doc: Any, path: str | PathLike[str] = "<landmarks>") -> StudyLandmarks:
    """A :class:`StudyLandmarks` from an already-parsed JSON document.

    Raises
    ------
    InputFileError
        ``"PATH: key flexion.landmarks.L3.PS: expected [x, y] numbers, got ..."``.
    """
    path = Path(path)
    if isinstance(doc, Mapping):
        check_format(doc, path)
    try:
        if not isinstance(doc, Mapping):
            raise _Bad("(top level)", "expected an object with flexion and extension")
        labels: list[str] = []
        for name in FILMS:
            film = doc.get(name)
            if film is None:
                raise _Bad(name, "missing")
            if not isinstance(film, Mapping):
                raise _Bad(name, "expected an object with pixel_spacing_mm and landmarks")
            if "landmarks" not in film:
                raise _Bad(f"{name}.landmarks", "missing")
            in_film = list(_per_corner(film, name, "landmarks"))
            for level in in_film:
                _check_level(level, f"{name}.landmarks.{level}")
                if level not in labels:
                    labels.append(level)
            _same_level_twice(in_film, f"{name}.landmarks")
        _same_level_twice(labels, "extension.landmarks")
        stated = doc.get("levels")
        if stated is not None:
            if not isinstance(stated, list) or not all(isinstance(s, str) for s in stated):
                raise _Bad("levels", "expected a list of level labels")
            check_stated_levels(stated)
            for level in labels:
                if level not in stated:
                    raise _Bad("levels", f"has no {level} although the landmarks do")
            levels = tuple(stated)
        else:
            levels = _with_skipped_levels(sorted(labels, key=level_sort_key))
        films = [_film_from_dict(doc[name], name, levels) for name in FILMS]
    except _Bad as exc:
        raise InputFileError(path, str(exc)) from None
    extra = {k: v for k, v in doc.items() if k not in FILMS}
    return StudyLandmarks(levels, films[0], films[1], extra, path)


def read_landmarks(path: str | PathLike[str]) -> StudyLandmarks:
    """Read a landmarks (or session) JSON file.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    StudyLandmarks

    Raises
    ------
    InputFileError
        One line naming the file and the key: unreadable file, invalid JSON,
        wrong types, unknown corners or levels, bad spacing.
    """
    path = Path(path)
    return parse_landmarks(_load_json(path), path)


def _film_to_dict(film: FilmLandmarks, levels: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["pixel_spacing_mm"] = None if film.spacing_mm is None else list(film.spacing_mm)
    cal = film.calibration
    if cal.detail not in _DEFAULT_DETAILS:  # a default is not written back: keep the file as it was
        out["calibration_source"] = cal.source.value
        if cal.detail:
            out["calibration_detail"] = cal.detail
    landmarks: dict[str, dict[str, list[float]]] = {}
    for v, level in enumerate(levels):
        points = {
            corner: [float(film.corners[v, c, 0]), float(film.corners[v, c, 1])]
            for c, corner in enumerate(CORNERS)
            if np.isfinite(film.corners[v, c]).all()
        }
        if points:
            landmarks[level] = points
    out["landmarks"] = landmarks
    if film.placement is not None:
        table = {
            level: {corner: str(film.placement[v, c]) for c, corner in enumerate(CORNERS) if film.placement[v, c]}
            for v, level in enumerate(levels)
        }
        out["placement"] = {k: t for k, t in table.items() if t}
    if film.landmark_sd_mm is not None:
        table = {
            level: {
                corner: float(film.landmark_sd_mm[v, c])
                for c, corner in enumerate(CORNERS)
                if np.isfinite(film.landmark_sd_mm[v, c])
            }
            for v, level in enumerate(levels)
        }
        out["landmark_sd_mm"] = {k: t for k, t in table.items() if t}
    out.update(film.extra)
    return out


def write_landmarks(path: str | PathLike[str], study: StudyLandmarks) -> None:
    """Write ``study`` atomically as a landmarks JSON file (extra keys preserved)."""
    atomic_write_text(path, json.dumps(study.to_dict(), indent=2, allow_nan=False) + "\n")


# --------------------------------------------------------------------------- criteria settings


def read_criteria(spec: str | PathLike[str]) -> Criteria:
    """A criteria preset name, or a JSON settings file of custom thresholds.

    The file format (``docs/landmarks-format.md``, "Criteria settings")::

        {"name": "clinic-2026", "source": "our protocol",
         "translation_mm": {"*": 4.0, "L5-S1": 5.0},
         "translation_pct": null,
         "angulation_deg": {"*": 10.0}}

    Raises
    ------
    InputFileError
        Unknown preset and no such file, or a bad key in the file.
    """
    text = str(spec)
    try:
        return get_criteria(text)
    except ValueError:
        pass
    path = Path(text)
    if not path.exists():
        raise InputFileError(
            path, "neither a criteria preset (default, white-panjabi) nor an existing settings file"
        )
    doc = _load_json(path)
    try:
        criteria = Criteria.from_dict(doc, name=path.stem)
    except ValueError as exc:
        raise InputFileError(path, f"key {exc}") from None
    _check_threshold_ranges(doc, path)
    return criteria


#: Largest threshold that can ever fire, per table: a larger one would silently
#: make the criterion meaningless (a typo such as 40 for 4.0 mm is still allowed).
THRESHOLD_LIMITS = {"translation_mm": 100.0, "translation_pct": 100.0, "angulation_deg": 90.0}


def _check_threshold_ranges(doc: Mapping[str, Any], path: Path) -> None:
    for kind, limit in THRESHOLD_LIMITS.items():
        table = doc.get(kind)
        cells = table.items() if isinstance(table, Mapping) else [("", table)]
        for segment, value in cells:
            if _number(value) and value > limit:
                key = f"{kind}.{segment}" if segment else kind
                raise InputFileError(
                    path, f"key {key}: {value:g} is out of range (a {kind} threshold above "
                    f"{limit:g} can never fire)"
                )
