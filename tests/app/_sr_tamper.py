"""The ten hand edits of an SR that issue 11 lists, each a function on a pydicom
dataset returning the phrase its report must show (shared by the ``report`` and
review-mode tests)."""

from __future__ import annotations

import copy
import math

import numpy as np

MEASUREMENTS = ("126010", "DCM")


def _cv(item) -> str:
    code = item.ConceptNameCodeSequence[0]
    return str(code.get("CodeValue") or code.get("LongCodeValue"))


def _groups(ds):
    container = next(i for i in ds.ContentSequence if i.ValueType == "CONTAINER"
                     and _cv(i) == MEASUREMENTS[0])
    return container.ContentSequence


def _group(ds, tracking: str):
    for group in _groups(ds):
        for item in group.ContentSequence:
            if item.ValueType == "TEXT" and _cv(item) == "112039" and item.TextValue == tracking:
                return group
    raise AssertionError(tracking)


def _item(group, code: str, value_type: str | None = None):
    return next(i for i in group.ContentSequence if _cv(i) == code
                and (value_type is None or i.ValueType == value_type))


def _set_num(item, value: float) -> None:
    measured = item.MeasuredValueSequence[0]
    measured.FloatingPointValue = value
    measured.NumericValue = "NaN" if math.isnan(value) else f"{value:.6g}"


def translation(ds):
    _set_num(_item(_group(ds, "segment L4-L5"), "translation_mm"), 9.5)
    return "L4-L5 translation_mm: stored 9.5"


def finding_to_stable(ds):
    group = _group(ds, "segment L4-L5")
    _item(group, "121071").ConceptCodeSequence[0].CodeValue = "within"
    _item(group, "finding", "CODE").ConceptCodeSequence[0].CodeValue = "finding-stable"
    return "L4-L5 finding: stored stable"


def removed_segment(ds):
    groups = _groups(ds)
    groups.remove(_group(ds, "segment L3-L4"))
    return "missing L3-L4"


def duplicated_segment(ds):
    groups = _groups(ds)
    groups.append(copy.deepcopy(_group(ds, "segment L4-L5")))
    return "repeated L4-L5"


def pixel_spacing(ds):
    group = _group(ds, "film flexion")
    for code in ("111066", "111026"):
        _set_num(_item(group, code), 0.25)
    return "flexion_translation_mm: stored"


def nan_value(ds):
    # refused outright (a result value must be a number or null): one line naming the key
    _set_num(_item(_group(ds, "segment L2-L3"), "angulation_deg"), float("nan"))
    return "results.segments[1].angulation_deg: expected a number or null, got NaN"


def angle(ds):
    item = _item(_group(ds, "flexion L1-L2"), "1483009")  # SCT Angle of the flexion film
    _set_num(item, float(item.MeasuredValueSequence[0].FloatingPointValue) + 2.0)
    return "L1-L2 flexion_angle_deg: stored"


def corner(ds):
    # a careful edit: the exact value and the displayed outline move together
    group = _group(ds, "extension L4")
    item = _item(group, "PI-x")
    x = float(item.MeasuredValueSequence[0].FloatingPointValue) + 6.0
    _set_num(item, x)
    scoord = next(i for i in group.ContentSequence if i.ValueType == "SCOORD")
    data = np.asarray(scoord.GraphicData, dtype=float).reshape(-1, 2)
    data[2, 0] = x + 0.5  # AS PS PI AI AS: PI is the third point
    scoord.GraphicData = [float(v) for v in data.ravel()]
    return "L4-L5 extension_translation_mm: stored"


def criteria(ds):
    item = next(i for i in ds.ContentSequence if i.ValueType == "CODE" and _cv(i) == "criteria")
    code = item.ConceptCodeSequence[0]
    del code.CodeValue  # a value over 16 characters is a Long Code Value (PS3.3 8.8)
    code.LongCodeValue = "criteria-white-panjabi"
    return "thresholds: stored"


def level_label(ds):
    _item(_group(ds, "segment L5-S1"), "112050", "TEXT").TextValue = "L5-L6"  # Anatomic Identifier
    return "not in the landmarks L5-L6"


def annotation_num(ds, tracking: str):
    """The NUM of a ruler or angle group (``"annotation flexion R1"``)."""
    return next(i for i in _group(ds, tracking).ContentSequence if i.ValueType == "NUM")


def move_ruler_end(ds, dy: float, length: float | None = None) -> None:
    """Move the second end of the flexion ruler R1 by ``dy`` pixels in its SCOORD and, with
    ``length``, set its stored value (a careful edit); not one of the issue's ten edits."""
    num = annotation_num(ds, "annotation flexion R1")
    scoord = next(i for i in num.ContentSequence if i.ValueType == "SCOORD")
    data = list(scoord.GraphicData)
    data[3] += dy  # the second end's y
    scoord.GraphicData = data
    if length is not None:
        measured = num.MeasuredValueSequence[0]
        measured.FloatingPointValue = length
        measured.NumericValue = f"{length:.6g}"


TAMPERINGS = {f.__name__: f for f in (
    translation, finding_to_stable, removed_segment, duplicated_segment, pixel_spacing,
    nan_value, angle, corner, criteria, level_label)}

REFUSED = {"nan_value"}
"""Edits that make the SR unreadable as a session (one-line error, exit 2) rather than
readable with differing values."""
