"""Read an SR written by the previous version (private scheme ``99LUMBINST`` version 1).

Up to commit fe1442f the SR carried the session as JSON in TEXT items
("Session header (JSON)", "Result row columns (JSON)", per-film "Other film keys
(JSON)") beside the coded corners and values.  The current writer
(:mod:`app.report_sr`) holds coded content only, but reports saved earlier must
still open: :func:`is_previous_version` recognises such an SR by its root
``session-header`` item and :func:`decode_previous_version` rebuilds the session
with the previous version's rules.  The caller then checks it like any SR: the
report measures the corners again (:mod:`app.report_verify`) and any stored value
they do not give is shown as a difference.

The session gets :data:`READ_FROM_KEY` = :data:`READ_FROM_PREVIOUS`, which the
report shows as a warning.  The reader's rulers and angles of such an SR are not
read back (the previous version did not read them either).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import InputFileError
from app.report_data import CORNERS, VIEWS, load_session_dict
from app.sr_codes import concept_key as _concept

__all__ = ["READ_FROM_KEY", "READ_FROM_PREVIOUS", "decode_previous_version",
           "is_previous_version"]

READ_FROM_KEY = "read_from"
"""Session key naming where a session was rebuilt from, when not from its own format."""

READ_FROM_PREVIOUS = "an SR of the previous version (99LUMBINST version 1)"
"""Value of :data:`READ_FROM_KEY` for a session read by :func:`decode_previous_version`."""

_SCHEME = "99LUMBINST"
_TRACKING_IDENTIFIER = ("112039", "DCM")
_MEASUREMENT_METHOD = ("370129005", "SCT")
_FINDING = ("121071", "DCM")
_MEASUREMENT_GROUP = ("125007", "DCM")
_IMAGING_MEASUREMENTS = ("126010", "DCM")
_VERTICAL_SPACING = ("111066", "DCM")
_HORIZONTAL_SPACING = ("111026", "DCM")
_CALIBRATION_OBJECT_SIZE = ("122423", "DCM")
_SERIES_UID = ("112002", "DCM")
_STUDY_UID = ("110180", "DCM")
_PERSON_OBSERVER_NAME = ("121008", "DCM")
_COMMENT = ("121106", "DCM")
_YES, _NO = "373066001", "373067005"


def is_previous_version(ds) -> bool:
    """Whether a dataset is an SR of the previous version (a root ``session-header`` TEXT).

    Parameters
    ----------
    ds : pydicom.Dataset
        An SR (``ContentSequence`` present).

    Returns
    -------
    bool
    """
    return any(item.get("ValueType") == "TEXT" and _concept(item) == ("session-header", _SCHEME)
               for item in ds.get("ContentSequence", []))


def _code_value(item) -> str:
    code = item.ConceptCodeSequence[0]
    return str(code.get("CodeValue") or code.get("LongCodeValue") or "")


def _num_value(item) -> float:
    measured = item.MeasuredValueSequence[0]
    if "FloatingPointValue" in measured:
        return float(measured.FloatingPointValue)
    return float(measured.NumericValue)


def _parse_group(group) -> dict[str, Any]:
    out: dict[str, Any] = {"tracking": None, "nums": {}, "methods": {}, "codes": {}, "texts": {},
                           "images": [], "scoord": None, "uids": {}}
    for item in group.get("ContentSequence", []):
        concept = _concept(item)
        vtype = item.ValueType
        if vtype == "TEXT":
            if concept == _TRACKING_IDENTIFIER:
                out["tracking"] = str(item.TextValue)
            elif concept[1] == _SCHEME:
                out["texts"][concept[0]] = str(item.TextValue)
        elif vtype == "NUM":
            out["nums"][concept] = _num_value(item)
            for child in item.get("ContentSequence", []):
                if _concept(child) == _MEASUREMENT_METHOD and child.ValueType == "CODE":
                    out["methods"][concept] = _code_value(child)
        elif vtype == "CODE":
            out["codes"][concept] = _code_value(item)
        elif vtype == "UIDREF":
            out["uids"][concept] = str(item.UID)
        elif vtype == "IMAGE":
            out["images"].append(str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID))
        elif vtype == "SCOORD":
            out["scoord"] = np.asarray(item.GraphicData, dtype=float).reshape(-1, 2)
    return out


def _json(texts: Mapping[str, str], key: str, path: Path, default: Any = None) -> Any:
    if key not in texts:
        return default
    try:
        return json.loads(texts[key])
    except json.JSONDecodeError:
        raise InputFileError(path, f"corrupt SR of the previous version: item {key!r} is not "
                             "valid JSON") from None


def _decode_film(group: Mapping[str, Any], path: Path) -> dict[str, Any]:
    nums, texts = group["nums"], group["texts"]
    spacing_v, spacing_h = nums.get(_VERTICAL_SPACING), nums.get(_HORIZONTAL_SPACING)
    film: dict[str, Any] = {
        "pixel_spacing_mm": None if spacing_v is None else [spacing_v, spacing_h],
        "calibration_source": group["codes"].get(("calibration-source", _SCHEME), "uncalibrated"),
        "calibration_detail": texts.get("calibration-detail", ""),
    }
    line = [nums.get((f"calibration-line-{a}", _SCHEME)) for a in ("x0", "y0", "x1", "y1")]
    length = nums.get(_CALIBRATION_OBJECT_SIZE)
    if all(v is not None for v in line) and length is not None:
        film["manual_calibration"] = {"p0": line[:2], "p1": line[2:], "length_mm": length}
    image = {"sop_instance_uid": group["images"][0] if group["images"] else None,
             "series_instance_uid": group["uids"].get(_SERIES_UID),
             "study_instance_uid": group["uids"].get(_STUDY_UID),
             "sha256": texts.get("image-sha256")}
    film["image"] = {k: v for k, v in image.items() if v is not None}
    film.update(_json(texts, "film-extra", path, {}))
    return film


def _decode_row(group: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """One result row from a segment group: the columns listed by ``segment-columns``."""
    texts, tracking = group["texts"], group["tracking"]
    meta = _json(texts, "segment-columns", path)
    if not isinstance(meta, dict) or "columns" not in meta:
        raise InputFileError(path, f"corrupt SR of the previous version: {tracking!r} has no "
                             "column list")
    nums = {c[0]: v for c, v in group["nums"].items() if c[1] == _SCHEME}
    flags = {c[0]: v for c, v in group["codes"].items() if c[1] == _SCHEME}

    def cell(key: str) -> Any:
        if key in meta.get("null", ()):
            return None
        if key in meta.get("nan", ()):
            return float("nan")
        if key in meta.get("json", ()):
            return _json(texts, key, path)
        if key in meta.get("bool", ()):
            if flags.get(key) not in (_YES, _NO):
                raise InputFileError(path, f"corrupt SR of the previous version: {tracking!r} "
                                     f"lacks {key!r}")
            return flags[key] == _YES
        if key in nums:
            return int(nums[key]) if key in meta.get("int", ()) else nums[key]
        if key in texts:
            return texts[key]
        raise InputFileError(path, f"corrupt SR of the previous version: {tracking!r} lacks {key!r}")

    row: dict[str, Any] = {}
    skeletons = meta.get("skeleton", {})
    for key in meta["columns"]:
        skeleton = skeletons.get(key)
        if isinstance(skeleton, list):
            row[key] = [cell(p) for p in skeleton]
        elif isinstance(skeleton, dict):
            row[key] = {k: cell(p) for k, p in skeleton.items()}
        else:
            row[key] = cell(key)
    return row


def _decode_vertebra(group: Mapping[str, Any], record: dict[str, Any], level: str,
                     path: Path) -> None:
    nums = group["nums"]
    marks = record.setdefault("landmarks", {})
    placement = record.setdefault("placement", {})
    sds = record.setdefault("landmark_sd_mm", {})
    for corner in CORNERS:
        key_x, key_y, key_sd = ((f"{corner}-{a}", _SCHEME) for a in ("x", "y", "sd"))
        if key_x not in nums:
            continue
        marks.setdefault(level, {})[corner] = [nums[key_x], nums[key_y]]
        if key_x in group["methods"]:
            placement.setdefault(level, {})[corner] = group["methods"][key_x]
        if key_sd in nums:
            sds.setdefault(level, {})[corner] = nums[key_sd]
    if group["scoord"] is not None:
        corners = marks.get(level, {})
        present = [c for c in CORNERS if c in corners]
        exact = np.array([corners[c] for c in present], dtype=float).reshape(-1, 2) + 0.5
        shown = group["scoord"][: len(present)]
        if shown.shape != exact.shape or not np.allclose(shown, exact, rtol=1e-6, atol=1e-3):
            raise InputFileError(path, f"corrupt SR: the outline of {group['tracking']!r} "
                                 "disagrees with its corner values")


def decode_previous_version(ds, path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Rebuild the session of a previous-version SR.

    Parameters
    ----------
    ds : pydicom.Dataset
        The SR (:func:`is_previous_version` is true).
    path : Path
        Named in errors.

    Returns
    -------
    session : dict
        Checked with :func:`app.report_data.load_session_dict`; its
        :data:`READ_FROM_KEY` says it came from a previous-version SR.
    coded_findings : dict of str to str
        Segment label -> the finding code its group stored (DCM 121071).

    Raises
    ------
    InputFileError
        Invalid JSON, a missing column, a corner outline that disagrees with its
        values, or a session the reports cannot use.
    """
    root_texts: dict[str, str] = {}
    groups: list = []
    reader = {"name": "", "comment": ""}
    for item in ds.ContentSequence:
        concept = _concept(item)
        if item.ValueType == "TEXT" and concept[1] == _SCHEME:
            root_texts[concept[0]] = str(item.TextValue)
        elif item.ValueType == "TEXT" and concept == _COMMENT:
            reader["comment"] = str(item.TextValue)
        elif item.ValueType == "PNAME" and concept == _PERSON_OBSERVER_NAME:
            name = str(item.PersonName)
            reader["name"] = name[:-1] if name.endswith("^") and name.count("^") == 1 else name
        elif item.ValueType == "CONTAINER" and concept == _IMAGING_MEASUREMENTS:
            groups = [g for g in item.get("ContentSequence", [])
                      if _concept(g) == _MEASUREMENT_GROUP]
    header = _json(root_texts, "session-header", path)
    if not isinstance(header, dict):
        raise InputFileError(path, "corrupt SR of the previous version: the session header is "
                             "not an object")
    session: dict[str, Any] = dict(header)
    extra = _json(root_texts, "session-extra", path, {})
    results_extra = extra.pop("results", None) if isinstance(extra, dict) else None
    session.update(extra if isinstance(extra, dict) else {})
    if root_texts.get("reader-recorded") == "yes":
        session["reader"] = reader
    levels = list(session.get("levels") or [])

    parsed = [_parse_group(g) for g in groups]
    if not any((g["tracking"] or "").startswith("film ") for g in parsed):
        raise InputFileError(path, "corrupt SR of the previous version: no film measurement group")
    rows: list[dict[str, Any]] = []
    coded: dict[str, str] = {}
    for group in parsed:
        tracking = group["tracking"] or ""
        if tracking.startswith("film ") and tracking[5:] in VIEWS:
            record = session.setdefault(tracking[5:], {})
            for key, value in _decode_film(group, path).items():
                record.setdefault(key, value)
        elif tracking.startswith("segment "):
            rows.append(_decode_row(group, path))
            if _FINDING in group["codes"]:
                coded[str(rows[-1].get("segment", tracking[8:]))] = group["codes"][_FINDING]
    for group in parsed:
        view, _, level = (group["tracking"] or "").partition(" ")
        if view in VIEWS and level:
            _decode_vertebra(group, session.setdefault(view, {}),
                             group["texts"].get("level", level), path)
    for view in VIEWS:
        if view in session:
            for key in ("landmarks", "placement", "landmark_sd_mm"):
                d = session[view].get(key) or {}
                session[view][key] = {lv: d[lv] for lv in levels if lv in d} | {
                    lv: v for lv, v in d.items() if lv not in levels}
    if rows or results_extra is not None:
        session["results"] = {**(results_extra or {}), "segments": rows}
    session[READ_FROM_KEY] = READ_FROM_PREVIOUS
    load_session_dict(session, path)
    return session, coded
