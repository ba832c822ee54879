"""Strict check of a session document (``docs/session-format.md``) before anything uses it.

The viewer (:meth:`app.session.Session.load`), the reports (``app.report_data``)
and the batch read the same session files.  A hostile or damaged file must give
one line naming the file and the key, never a half-loaded session, a
``TypeError`` deep in a report or a guessed value: this module checks every key
those readers touch (types, finite numbers in range, levels spelt once, known
format and version) and the landmark keys with the rules of
:mod:`app.landmarks_io`.  It also decides where a session's image paths may
point (:func:`image_path_allowed`).
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from app.errors import InputFileError
from app.landmarks_io import (
    FILMS,
    SPACING_RANGE_MM,
    _Bad,
    _calibration,
    _check_level,
    _film_from_dict,
    _number,
    _per_corner,
    _same_level_twice,
    _show,
    _with_skipped_levels,
    check_format,
    check_stated_levels,
)
from measure import DEFAULT_LEVELS, level_sort_key

__all__ = [
    "CALIBRATION_LENGTH_RANGE_MM",
    "check_session_document",
    "image_path_allowed",
    "resolve_image_path",
]

#: Length of the object a manual calibration line is drawn over, mm.
CALIBRATION_LENGTH_RANGE_MM: tuple[float, float] = (0.1, 10_000.0)
_IMAGE_KEYS = ("path", "sop_instance_uid", "series_instance_uid", "study_instance_uid", "sha256")
_MAX_TEXT = 4096


def _levels(doc: Mapping[str, Any]) -> tuple[str, ...]:
    stated = doc.get("levels")
    if stated is None:
        labels: list[str] = []
        for name in FILMS:
            film = doc.get(name)
            if isinstance(film, Mapping):
                for level in _per_corner(film, name, "landmarks"):
                    _check_level(level, f"{name}.landmarks.{level}")
                    if level not in labels:
                        labels.append(level)
        _same_level_twice([*DEFAULT_LEVELS, *labels], "extension.landmarks")
        # the default levels, and any other labelled level with the gaps filled
        every = sorted(set(DEFAULT_LEVELS) | set(labels), key=level_sort_key)
        return _with_skipped_levels(every)
    if not isinstance(stated, list) or len(stated) < 2:
        raise _Bad("levels", f"expected a list of at least two level labels, got {_show(stated)}")
    check_stated_levels(stated)
    return tuple(stated)


def _text(value: Any, key: str) -> None:
    if value is None:
        return
    if not isinstance(value, str) or len(value) > _MAX_TEXT or "\x00" in value:
        raise _Bad(key, f"expected a text of at most {_MAX_TEXT} characters, got {_show(value)}")


def _point(value: Any, key: str) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2 or not all(_number(v) for v in value):
        raise _Bad(key, f"expected [x, y] numbers, got {_show(value)}")
    return float(value[0]), float(value[1])


def _film(film: Mapping[str, Any], name: str, levels: tuple[str, ...]) -> None:
    for level in _per_corner(film, name, "landmarks"):
        _check_level(level, f"{name}.landmarks.{level}")
        if level not in levels:
            _same_level_twice([*levels, level], f"{name}.landmarks.{level}")
            raise _Bad(f"{name}.landmarks.{level}", f"not one of the session's levels {list(levels)}")
    _film_from_dict(film, name, levels)  # landmarks, placement, SDs, spacing, source
    image = film.get("image")
    if image is not None:
        if not isinstance(image, Mapping):
            raise _Bad(f"{name}.image", f"expected an object with path and UIDs, got {_show(image)}")
        for key in _IMAGE_KEYS:
            _text(image.get(key), f"{name}.image.{key}")
    dicom = film.get("dicom_calibration")
    if dicom is not None:
        if not isinstance(dicom, Mapping):
            raise _Bad(f"{name}.dicom_calibration", f"expected an object, got {_show(dicom)}")
        _calibration(dicom, f"{name}.dicom_calibration")
    manual = film.get("manual_calibration")
    if manual is not None:
        key = f"{name}.manual_calibration"
        if not isinstance(manual, Mapping):
            raise _Bad(key, f"expected an object with p0, p1 and length_mm, got {_show(manual)}")
        p0 = _point(manual.get("p0"), f"{key}.p0")
        p1 = _point(manual.get("p1"), f"{key}.p1")
        length = manual.get("length_mm")
        low, high = CALIBRATION_LENGTH_RANGE_MM
        if not _number(length) or not low <= length <= high:
            raise _Bad(f"{key}.length_mm",
                       f"expected a number of mm from {low:g} to {high:g}, got {_show(length)}")
        pixels = math.dist(p0, p1)
        if not pixels >= 1.0:
            raise _Bad(key, "the line is shorter than one pixel")
        low, high = SPACING_RANGE_MM
        if not low <= length / pixels <= high:
            raise _Bad(key, f"{length:g} mm over {pixels:.4g} pixels is a pixel spacing outside "
                            f"{low:g} to {high:g} mm")


_NUMBER_SUFFIXES = ("_mm", "_pct", "_deg", "_per_deg", "n_corners")
_FLAG_KEYS = ("measured", "unstable", "borderline", "translation_assessed")


def _number_or_null(value: Any) -> bool:
    return value is None or _number(value)


def _result_row(row: Mapping[str, Any], key: str) -> None:
    """Types of the saved result cells the reports print (values are not re-derived here)."""
    for name, value in row.items():
        where = f"{key}.{name}"
        if name.endswith("_ci95"):
            if value is not None and not (
                isinstance(value, list) and len(value) == 2 and all(_number_or_null(v) for v in value)
            ):
                raise _Bad(where, f"expected [low, high] numbers or null, got {_show(value)}")
        elif name in _FLAG_KEYS:
            if value is not None and not isinstance(value, bool):
                raise _Bad(where, f"expected true, false or null, got {_show(value)}")
        elif name == "thresholds":
            if value is not None and not (
                isinstance(value, Mapping) and all(_number_or_null(v) for v in value.values())
            ):
                raise _Bad(where, f"expected an object of numbers or null, got {_show(value)}")
        elif name == "warnings":
            if not (isinstance(value, str | type(None))
                    or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
                raise _Bad(where, f"expected a list of texts, got {_show(value)}")
        elif name.endswith(_NUMBER_SUFFIXES):
            if not _number_or_null(value):
                raise _Bad(where, f"expected a number or null, got {_show(value)}")
        elif isinstance(value, dict | list):
            continue  # cells added by later versions: shown as text, never computed with
        elif value is not None and not isinstance(value, str | bool | int | float):
            raise _Bad(where, f"unexpected value {_show(value)}")
    segment = row.get("segment")
    if segment is not None and not isinstance(segment, str):
        raise _Bad(f"{key}.segment", f"expected a segment label such as L4-L5, got {_show(segment)}")


def check_session_document(doc: Any, path: str | PathLike[str] = "<session>") -> tuple[str, ...]:
    """Check a session (or landmarks) document as the viewer and the reports read it.

    Parameters
    ----------
    doc : Any
        The parsed JSON (see :func:`app.jsonfile.read_json`).
    path : path-like
        Named in the error.

    Returns
    -------
    tuple of str
        The levels, top to bottom.

    Raises
    ------
    InputFileError
        ``"PATH: key flexion.image: expected an object with path and UIDs, got \\"x.dcm\\""``.
    """
    if not isinstance(doc, Mapping):
        raise InputFileError(path, "not a session file: the top level is not a JSON object")
    check_format(doc, path)
    try:
        levels = _levels(doc)
        present = [name for name in FILMS if doc.get(name) is not None]
        for name in present:
            if not isinstance(doc[name], Mapping):
                raise _Bad(name, f"expected an object with landmarks, got {_show(doc[name])}")
            _film(doc[name], name, levels)
        criteria = doc.get("criteria")
        if criteria is not None:
            from measure import Criteria

            try:
                if isinstance(criteria, str):  # a preset, or the name of thresholds shown as such
                    _text(criteria, "criteria")
                elif isinstance(criteria, Mapping):
                    Criteria.from_dict(dict(criteria), name=str(criteria.get("name") or "custom"))
                else:
                    raise ValueError(f"expected a preset name or an object, got {_show(criteria)}")
            except (ValueError, TypeError) as exc:
                raise _Bad("criteria", str(exc)) from None
        selected = doc.get("selected_segment")
        if selected is not None and not isinstance(selected, str):
            raise _Bad("selected_segment", f"expected a segment label or null, got {_show(selected)}")
        for key in ("recovery_of", "software_version", "saved_at"):
            _text(doc.get(key), key)
        reader = doc.get("reader")
        if reader is not None:
            if not isinstance(reader, Mapping):
                raise _Bad("reader", f"expected an object with name and comment, got {_show(reader)}")
            for key, limit in (("name", 200), ("comment", 10000)):
                value = reader.get(key, "")
                if not isinstance(value, str) or len(value) > limit:
                    raise _Bad(f"reader.{key}", f"expected text of at most {limit} characters, "
                               f"got {_show(value)}")
        if doc.get("annotations") is not None:
            from app.annotations import annotations_from_json

            try:
                annotations_from_json(doc["annotations"], present)
            except ValueError as exc:
                key, _, reason = str(exc).partition(": ")
                raise _Bad(key, reason) from None
        results = doc.get("results")
        if results is not None:
            rows = results.get("segments") if isinstance(results, Mapping) else None
            if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
                raise _Bad("results.segments", "expected a list of objects")
            for i, row in enumerate(rows):
                _result_row(row, f"results.segments[{i}]")
        if not present:
            raise _Bad("flexion", "missing: the session names neither a flexion nor an extension film")
    except _Bad as exc:
        raise InputFileError(path, str(exc)) from None
    return levels


def image_path_allowed(path: str | PathLike[str], folders: Sequence[str | PathLike[str]]) -> bool:
    """True when ``path`` lies inside one of ``folders`` (after removing ``..``, lexically).

    A session names its films by path; a damaged or hostile session must not make
    the viewer or a report open ``../../etc/passwd`` or another patient's film.
    Paths are compared after :func:`os.path.abspath` (``..`` removed, symbolic
    links the user made inside a folder are followed as the user meant).
    """
    target = os.path.abspath(path)
    for folder in folders:
        root = os.path.abspath(folder)
        if target == root or target.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def film_has_uid(path: str | os.PathLike[str], sop_instance_uid: str) -> bool:
    """Whether *path* is a regular DICOM file whose SOP Instance UID is *sop_instance_uid*.

    Only the header is read (no pixel data, no hash): a session naming
    ``/etc/passwd`` or another patient's film gets False, never an image.
    """
    if not sop_instance_uid:
        return False
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        from app.dicom_io import read_film_header

        header = read_film_header(path)
    except Exception:  # any unreadable file is simply not the film the session names
        return False
    identity = getattr(header, "identity", None)
    return getattr(identity, "sop_instance_uid", None) == sop_instance_uid


def resolve_image_path(
    raw: str, base: Path | None, folders: Sequence[Path] = (), *, sop_instance_uid: str = ""
) -> tuple[Path | None, str]:
    """Where a session's image path points, if it is allowed to.

    Parameters
    ----------
    raw : str
        The path recorded in the session (absolute, or relative to ``base``).
    base : Path or None
        The session file's folder.
    folders : sequence of Path
        Further folders the user named (``--images``).
    sop_instance_uid : str
        The UID the session recorded for this film.  A path outside the folders
        is still used when the DICOM header there carries exactly this UID (the
        reader saved the session away from the films it opened); anything else
        outside the folders is refused unread beyond its header.

    Returns
    -------
    (Path or None, str)
        The path and "" when allowed; None and the reason when it points outside.
    """
    candidate = Path(raw)
    if not candidate.is_absolute() and base is not None:
        candidate = base / candidate
    allowed = [*([base] if base is not None else []), *folders]
    if image_path_allowed(candidate, allowed) or film_has_uid(candidate, sop_instance_uid):
        return Path(os.path.abspath(candidate)), ""
    return None, (
        f"image path {_show(raw)} points outside the session's folder"
        + (" and the --images folders" if folders else "")
        + ": not opened (open the film explicitly, or give its folder)"
    )
