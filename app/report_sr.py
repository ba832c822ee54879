"""DICOM Comprehensive SR (TID 1500 Measurement Report) of a session, and back.

:func:`write_sr` encodes a session with highdicom as coded content (CODE, NUM
with UCUM units, SCOORD on the films, TEXT only for free text); :func:`read_sr`
decodes that content into the session dict (``docs/reports.md`` has the
content tree and every code).  Inside the TID 1500 "Imaging Measurements"
container:

- one TID 1501 group per film (tracking identifier ``"film flexion"``): the
  view, the pixel spacing in force (DCM 111066 / 111026, mm) with the
  calibration source as Measurement Method, the DICOM header's own
  calibration, the manual calibration line (DCM 122423 with its SCOORD), the
  image size, the image's UIDs and SHA-256 (never its local path);
- one TID 1410 planar ROI group per film and vertebra (``"flexion L4"``): the
  corners as a SCOORD POLYLINE on the film, the finding site (SCT vertebra),
  the label (DCM 112050 Anatomic Identifier) and per corner its exact ``x``,
  ``y`` (pixels, float64) and positional SD (mm), how it was placed as the
  Measurement Method;
- one TID 1501 group per segment (``"segment L4-L5"``): finding site (SCT
  disc), the verdict as the Finding (DCM 121071), the criteria as the
  Measurement Method, the translation (mm, %) and angulation (deg) between the
  films each with its 95 % interval and threshold (DCM 122411) as properties,
  the flags and verdicts as CODE (SCT Yes/No, private verdict codes), the
  centre of rotation and the endplate depth ratio;
- one TID 1501 group per segment and film (``"flexion L4-L5"``): the segmental
  angle (SCT 1483009 Angle, deg) and the sagittal translation (mm, %) on that
  film;
- one TID 1501 group per ruler or angle the reader drew (``"annotation
  flexion R1"``): SCT 410668003 Length (mm, or pixels on an uncalibrated film)
  or SCT 1483009 Angle (deg), with its line(s) as SCOORD on the film.

A cell that is null (or NaN) has no item: a PACS never sees a placeholder
number, and the reader knows from a row's kind which cells it has
(:func:`_decode_row`).

SCOORD coordinates follow DICOM (PS3.3 C.18.6.1.1: ``0\\0`` is the top-left
corner of the top-left pixel), so they are the project's pixel coordinates
(origin at the centre of that pixel) plus 0.5.  They are float32; the corners'
exact values travel in NUM items (FloatingPointValue, float64) and reading
checks that the two agree.  An annotation is read from its SCOORD and its
stored value must agree with the value its points give.

Concepts with no standard code use the private coding scheme ``99LUMBINST``
(``app.sr_codes``), declared in the Coding Scheme Identification Sequence.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app import __version__
from app import sr_codes as sc
from app.errors import InputFileError, UserError
from app.report_data import (
    CORNERS,
    VIEWS,
    ReportData,
    load_session_dict,
    reader_fields,
    report_from_session,
)
from app.sr_codes import PRIVATE_SCHEME, PRIVATE_SCHEME_NAME
from app.sr_codes import concept_key as _concept
from measure import verdict_of_record

__all__ = [
    "PRIVATE_SCHEME",
    "SrContent",
    "read_sr",
    "report_from_sr",
    "sr_dataset",
    "write_sr",
]

ALGORITHM_NAME = "lumbar-instability"
"""Algorithm Name (DCM 111001) of every group; its version is the session's ``software_version``."""

SESSION_FORMAT = ("lumbar-instability-session", 1)
"""``format`` and ``format_version`` of the session an SR is read into."""

#: Row columns of a segment group that are NUMs between the films (code, unit).
_MOTION_NUMS = {
    "translation_mm": sc.MM,
    "translation_pct": sc.PERCENT,
    "angulation_deg": sc.DEG,
}
#: Per-film row columns (``<view>_<suffix>``) of the per-film segment group: concept, unit.
_FILM_NUMS = {
    "angle_deg": (sc.ANGLE, sc.DEG),
    "translation_mm": (("film_translation_mm", PRIVATE_SCHEME, None), sc.MM),
    "translation_pct": (("film_translation_pct", PRIVATE_SCHEME, None), sc.PERCENT),
}
#: Boolean row columns: private concept (value SCT Yes / No).
_BOOL_COLUMNS = {
    "measured": "measured",
    "translation_unstable": "translation_unstable",
    "angulation_unstable": "angulation_unstable",
    "unstable": "above-threshold",
    "borderline": "interval-reaches-threshold",
    "translation_assessed": "translation_assessed",
    "needs_review": "needs_review",
}
#: Enumerated row columns: private concept and the prefix of their private value codes.
_ENUM_COLUMNS = {
    "criterion": ("criterion", "criterion-"),
    "translation_verdict": ("translation_verdict", ""),
    "angulation_verdict": ("angulation_verdict", ""),
    "finding": ("finding", "finding-"),
}
#: Free-text row columns, and the column that is always written with them (a null
#: text cannot be a TEXT item: it is read back as null when its companion is there).
_TEXT_COLUMNS = {
    "rotation_centre_note": "rotation_centre",
    "translation_mm_note": "finding",
    "needs_review_reason": "needs_review",
}
_LABEL_COLUMNS = ("upper", "lower")
_KNOWN_COLUMNS = frozenset(
    {"segment", "verdict", "thresholds", "rotation_centre", "depth_ratio", "calibration_source",
     "translation_mm_ci95", "translation_pct_ci95", "angulation_deg_ci95",
     *_MOTION_NUMS, *_BOOL_COLUMNS, *_ENUM_COLUMNS, *_TEXT_COLUMNS, *_LABEL_COLUMNS}
    | {f"{v}_{k}" for v in VIEWS for k in _FILM_NUMS}
)


class SrContent(dict):
    """The session read from an SR (a plain ``dict``), plus ``.identity``: the
    patient and study attributes of the SR (``patient_id``, ``patient_name``,
    ``study_instance_uid``, ``study_date``, ``sop_instance_uid`` of the SR), and
    ``.coded_findings``: each segment group's coded finding (``{"L4-L5": "unstable"}``),
    which a report compares with the verdict its landmarks give."""

    identity: dict[str, str]
    coded_findings: dict[str, str]


# ----------------------------------------------------------------------------
# writing


def _code(triple: tuple[str, str, str | None] | str):
    """A pydicom ``Code`` of a standard triple or of a private code value."""
    from pydicom.sr.coding import Code

    if isinstance(triple, str):
        triple = (triple, PRIVATE_SCHEME, None)
    value, scheme, meaning = triple
    if meaning is None:
        meaning = sc.PRIVATE.get(value) or (
            f"Instability criteria: {value[9:]}" if value.startswith("criteria-")
            else value.replace("_", " "))
    return Code(value, scheme, meaning[: sc.CODE_MEANING_MAX])


def _rel(kind: str):
    import highdicom as hd

    return getattr(hd.sr.RelationshipTypeValues, kind)


def _text(name, value: str, relationship: str = "CONTAINS"):
    import highdicom as hd

    return hd.sr.TextContentItem(name=_code(name), value=value, relationship_type=_rel(relationship))


def _code_item(name, value, relationship: str = "CONTAINS"):
    import highdicom as hd

    return hd.sr.CodeContentItem(name=_code(name), value=_code(value),
                                 relationship_type=_rel(relationship))


def _yes_no(value: bool):
    return sc.YES if value else sc.NO


def _num_item(name, value: Any, unit, relationship: str = "CONTAINS", method=None):
    """A NUM content item, or None for a null or NaN value: a value that does not
    exist is left out (never a placeholder number; which cells a row has is known
    from its kind, see :func:`_decode_row`)."""
    import highdicom as hd

    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    item = hd.sr.NumContentItem(name=_code(name), value=float(value), unit=_code(unit),
                                relationship_type=_rel(relationship))
    if method is not None:
        item.ContentSequence = [_code_item(sc.MEASUREMENT_METHOD, method, "HAS_CONCEPT_MOD")]
    return item


def _extend(content, *items) -> None:
    """Append the items that exist (``_num_item`` gives None for a null value)."""
    content.extend(i for i in items if i is not None)


def _algorithm(session: Mapping[str, Any]):
    import highdicom as hd

    version = session.get("software_version")
    if not isinstance(version, str) or not version:
        return None
    return hd.sr.AlgorithmIdentification(name=ALGORITHM_NAME, version=version)


def _tracking(identifier: str):
    import highdicom as hd

    return hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=identifier)


def _view_evaluation(view: str):
    import highdicom as hd

    return hd.sr.QualitativeEvaluation(_code("view"), _code(sc.VIEW_SCT[view]))


#: Type 2 Patient and General Study attributes the SR copies from the first film.
_TYPE2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
                 "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")


def _read_headers(report: ReportData) -> dict[str, Any]:
    import pydicom

    headers = {}
    for view, film in report.films.items():
        if film.path is None:
            raise UserError(
                f"the {view} image was not found: the SR must reference the original images "
                "(give their folder with --images)"
            )
        if film.image_status == "changed":
            raise InputFileError(
                film.path,
                "image changed since it was measured (SHA-256 mismatch): refusing to write an SR "
                "that would reference it",
            )
        try:
            ds = pydicom.dcmread(film.path, stop_before_pixels=True)
        except Exception as exc:
            raise InputFileError(film.path, f"not a readable DICOM file ({exc})") from None
        for keyword in _TYPE2_COPIED:
            # Type 2 (may be empty) in the film and in the SR: de-identified and
            # older exports leave them out, and the SR then carries them empty.
            if keyword not in ds:
                setattr(ds, keyword, "")
        uid = (film.record.get("image") or {}).get("sop_instance_uid")
        if uid and ds.get("SOPInstanceUID") != uid:
            raise InputFileError(
                film.path, "SOP Instance UID differs from the one recorded in the session"
            )
        headers[view] = ds
    if not headers:
        raise UserError("the session has no films: nothing to report")
    return headers


def _film_group(view: str, record: Mapping[str, Any], ds, algorithm) -> Any:
    import highdicom as hd

    source = record.get("calibration_source", "uncalibrated")
    measurements = []
    spacing = record.get("pixel_spacing_mm")
    if spacing is not None:
        for code, value in ((sc.VERTICAL_SPACING, spacing[0]), (sc.HORIZONTAL_SPACING, spacing[1])):
            measurements.append(hd.sr.Measurement(name=_code(code), value=float(value),
                                                  unit=_code(sc.MM), method=_code(source)))
    manual = record.get("manual_calibration")
    if manual:
        line = np.array([manual["p0"], manual["p1"]], dtype=float) + 0.5
        measurements.append(hd.sr.Measurement(
            name=_code(sc.CALIBRATION_OBJECT_SIZE), value=float(manual["length_mm"]),
            unit=_code(sc.MM), method=_code("manual"),
            referenced_coordinates=[hd.sr.CoordinatesForMeasurement(
                "POLYLINE", line, hd.sr.SourceImageForRegion.from_source_image(ds))]))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking(f"film {view}"),
        algorithm_id=algorithm,
        measurements=measurements or None,
        qualitative_evaluations=[
            _view_evaluation(view),
            hd.sr.QualitativeEvaluation(_code(sc.CALIBRATION_METHOD), _code(source)),
        ],
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(ds)],
    )
    content = group[0].ContentSequence
    if record.get("calibration_detail"):
        content.append(_text("calibration-detail", str(record["calibration_detail"])))
    if manual:  # the exact ends of the line (the SCOORD above is float32)
        for name, value in zip(("calibration-line-x0", "calibration-line-y0",
                                "calibration-line-x1", "calibration-line-y1"),
                               [*manual["p0"], *manual["p1"]], strict=True):
            content.append(_num_item(name, float(value), sc.PIXELS))
    header = record.get("dicom_calibration")
    if isinstance(header, Mapping):
        header_spacing = header.get("pixel_spacing_mm")
        header_source = str(header.get("calibration_source") or "uncalibrated")
        content.append(_code_item("header-calibration-method", header_source))
        if header_spacing is not None:
            content.append(_num_item("header-vertical-spacing", header_spacing[0], sc.MM))
            content.append(_num_item("header-horizontal-spacing", header_spacing[1], sc.MM))
        if header.get("calibration_detail"):
            content.append(_text("header-calibration-detail", str(header["calibration_detail"])))
    size = record.get("image_size")
    if size is not None:
        content.append(_num_item("image-rows", int(size[0]), sc.PIXELS))
        content.append(_num_item("image-columns", int(size[1]), sc.PIXELS))
    # The image: by SOP Instance UID (the source image above), series, study and content
    # hash; never its local file path, which means nothing to a PACS.
    image = record.get("image") or {}
    for code, key in ((sc.SERIES_UID, "series_instance_uid"), (sc.STUDY_UID, "study_instance_uid")):
        if image.get(key):
            content.append(hd.sr.UIDRefContentItem(
                name=_code(code), value=str(image[key]), relationship_type=_rel("CONTAINS")))
    if image.get("sha256"):
        content.append(_text("image-sha256", str(image["sha256"])))
    return group


def _vertebra_groups(view: str, record: Mapping[str, Any], levels: Sequence[str], ds,
                     algorithm) -> list:
    import highdicom as hd

    groups = []
    marks = record.get("landmarks") or {}
    placement = record.get("placement") or {}
    sds = record.get("landmark_sd_mm") or {}
    for level in levels:
        corners = [c for c in CORNERS if (marks.get(level) or {}).get(c) is not None]
        if not corners:
            continue
        xy = np.array([marks[level][c] for c in corners], dtype=float)
        if len(corners) == 4:
            graphic_type, data = "POLYLINE", np.vstack([xy, xy[:1]])
        elif len(corners) == 1:
            graphic_type, data = "POINT", xy
        else:
            graphic_type, data = "POLYLINE", xy
        sites = [hd.sr.FindingSite(_code(sc.VERTEBRA_SCT[level]))] if level in sc.VERTEBRA_SCT \
            else None
        group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking(f"{view} {level}"),
            referenced_region=hd.sr.ImageRegion(
                graphic_type, data + 0.5, hd.sr.SourceImageForRegion.from_source_image(ds)
            ),
            algorithm_id=algorithm,
            finding_sites=sites,
            qualitative_evaluations=[_view_evaluation(view)],
        )
        content = group[0].ContentSequence
        content.append(_text(sc.ANATOMIC_IDENTIFIER, level))
        for corner, (x, y) in zip(corners, xy, strict=True):
            method_name = (placement.get(level) or {}).get(corner)
            content.append(_num_item(f"{corner}-x", float(x), sc.PIXELS, method=method_name))
            content.append(_num_item(f"{corner}-y", float(y), sc.PIXELS, method=method_name))
            sd = (sds.get(level) or {}).get(corner)
            if sd is not None:
                content.append(_num_item(f"{corner}-sd", sd, sc.MM))
        groups.append(group)
    return groups


def _row_label(row: Mapping[str, Any], index: int) -> str:
    value = row.get("segment")
    return value if isinstance(value, str) else f"segment {index + 1}"


def _enum_code(prefix: str, value: str) -> str:
    return prefix + value.replace(" ", "-")


def _generic_cells(key: str, value: Any) -> list:
    """Items of a row column this version does not know: NUM (null: value unknown),
    CODE Yes/No, TEXT; a flat list or dict becomes ``key/0`` … or ``key/name`` items."""
    if isinstance(value, list | tuple) and all(not isinstance(v, list | dict) for v in value):
        return [i for k, v in enumerate(value) for i in _generic_cells(f"{key}/{k}", v)]
    if isinstance(value, Mapping) and all(not isinstance(v, list | dict) for v in value.values()):
        return [i for k, v in value.items() for i in _generic_cells(f"{key}/{k}", v)]
    if isinstance(value, bool):
        return [_code_item(key, _yes_no(value))]
    if isinstance(value, int | float):
        return [i for i in (_num_item(key, value, _unit_of(key)),) if i is not None]
    if isinstance(value, str) and value:
        return [_text(key, value)]
    return []  # nulls, empty texts and nested structures: not carried


def _unit_of(key: str):
    """UCUM unit of a column this version does not know, from its name."""
    k = key.lower()
    if "_mm" in k or k.endswith("mm"):
        return sc.MM
    if "_pct" in k or "percent" in k:
        return sc.PERCENT
    if "_deg" in k or "angle" in k or "angulation" in k:
        return sc.DEG
    if "_px" in k or "pixel" in k:
        return sc.PIXELS
    return sc.NO_UNITS


def _threshold_items(quantity: str, value: Any, unit, segment: str | None = None) -> list:
    """A Threshold Value (DCM 122411) NUM naming its quantity (and, in custom
    criteria, its segment), or nothing for a threshold that is not used."""
    item = _num_item(sc.THRESHOLD_VALUE, value, unit)
    if item is None:
        return []
    item.ContentSequence = [_code_item("threshold-of", quantity, "HAS_CONCEPT_MOD")]
    if segment is not None:
        item.ContentSequence.append(_text(sc.ANATOMIC_IDENTIFIER, segment, "HAS_CONCEPT_MOD"))
    return [item]


def _segment_groups(row: Mapping[str, Any], index: int, headers: Mapping[str, Any],
                    criteria_method: str, algorithm) -> list:
    import highdicom as hd

    label = _row_label(row, index)
    sites = [hd.sr.FindingSite(_code(sc.DISC_SCT[label]))] if label in sc.DISC_SCT else None
    sources = [hd.sr.SourceImageForMeasurementGroup.from_source_image(ds)
               for ds in headers.values()]
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking(f"segment {label}"),
        finding_type=_code(verdict_of_record(row).key),
        method=_code(criteria_method),
        algorithm_id=algorithm,
        finding_sites=sites,
        source_images=sources,
    )
    content = group[0].ContentSequence
    if isinstance(row.get("segment"), str):
        content.append(_text(sc.ANATOMIC_IDENTIFIER, row["segment"]))
    for key in _LABEL_COLUMNS:
        if isinstance(row.get(key), str) and row[key]:
            content.append(_text(key, row[key]))
    for key, unit in _MOTION_NUMS.items():
        item = _num_item(key, row.get(key), unit)
        if item is None:
            continue
        interval = row.get(f"{key}_ci95")
        if isinstance(interval, list | tuple) and len(interval) == 2:
            props = [_num_item("ci95-lower", interval[0], unit, "HAS_PROPERTIES"),
                     _num_item("ci95-upper", interval[1], unit, "HAS_PROPERTIES")]
            if None not in props:
                item.ContentSequence = props
        content.append(item)
    thresholds = row.get("thresholds") if isinstance(row.get("thresholds"), Mapping) else {}
    for key, unit in _MOTION_NUMS.items():
        content.extend(_threshold_items(key, thresholds.get(key), unit))
    for key, concept in _BOOL_COLUMNS.items():
        if isinstance(row.get(key), bool):
            content.append(_code_item(concept, _yes_no(row[key])))
    for key, (concept, prefix) in _ENUM_COLUMNS.items():
        if isinstance(row.get(key), str):
            content.append(_code_item(concept, _enum_code(prefix, row[key])))
    centre = row.get("rotation_centre")
    if isinstance(centre, list | tuple) and len(centre) == 2 and None not in centre:
        _extend(content, _num_item("rotation_centre/x", centre[0], sc.RATIO),
                _num_item("rotation_centre/y", centre[1], sc.RATIO))
    _extend(content, _num_item("depth_ratio", row.get("depth_ratio"), sc.RATIO))
    for key in _TEXT_COLUMNS:
        if isinstance(row.get(key), str) and row[key]:
            content.append(_text(key, row[key]))
    source = row.get("calibration_source")
    per_film_source: dict[str, str] = {}
    if isinstance(source, str) and source in sc.PRIVATE:
        content.append(_code_item("calibration_source", source))
    elif isinstance(source, str):  # "flexion manual, extension detector": per film below
        for part in source.split(", "):
            view, _, value = part.partition(" ")
            per_film_source[view] = value
    for key, value in row.items():
        if key not in _KNOWN_COLUMNS:
            content.extend(_generic_cells(key, value))

    groups = [group]
    for view, ds in headers.items():
        keys = [k for k in _FILM_NUMS if f"{view}_{k}" in row]
        if not keys and view not in per_film_source:
            continue
        film_group = hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking(f"{view} {label}"),
            algorithm_id=algorithm,
            finding_sites=sites,
            qualitative_evaluations=[_view_evaluation(view)],
            source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(ds)],
        )
        film_content = film_group[0].ContentSequence
        for key in keys:
            concept, unit = _FILM_NUMS[key]
            _extend(film_content, _num_item(concept, row[f"{view}_{key}"], unit))
        if view in per_film_source:
            film_content.append(_code_item("calibration_source", per_film_source[view]))
        groups.append(film_group)
    return groups


def _annotation_groups(session: Mapping[str, Any], report: ReportData, headers, algorithm) -> list:
    """The reader's rulers and angles, in the session's order, as coded measurements
    with their line(s) as SCOORD on the film (two polylines for a two-line angle).

    A ruler is a Length (SCT 410668003) in mm with its calibration source as the
    method, or in pixels on an uncalibrated film; an angle is an Angle (SCT
    1483009) in degrees.  A value that cannot be computed (a degenerate angle)
    is a NUM without a value.
    """
    import highdicom as hd

    from app.report_tables import report_annotations

    groups = []
    for view, measured in report_annotations(report).items():
        if view not in headers:
            continue
        ds = headers[view]
        for label, annotation, value in measured:
            pts = np.asarray(annotation.points_px, dtype=float) + 0.5  # pixel centres to SCOORD
            lines = [pts[:2], pts[2:]] if len(pts) == 4 else [pts]
            coordinates = [hd.sr.CoordinatesForMeasurement(
                "POLYLINE", line, hd.sr.SourceImageForRegion.from_source_image(ds))
                for line in lines]
            if annotation.kind == "ruler":
                unit, method = ((sc.MM, value.calibration_source) if value.unit == "mm"
                                else (sc.PIXELS, "uncalibrated"))
                name = sc.LENGTH
            else:
                unit, method, name = sc.DEG, None, sc.ANGLE
            number = float(value.value)
            if not math.isfinite(number):
                continue  # a degenerate angle has no value to code (the PDF says so)
            measurement = hd.sr.Measurement(
                name=_code(name), value=number, unit=_code(unit),
                method=None if method is None else _code(method),
                referenced_coordinates=coordinates)
            group = hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=_tracking(f"annotation {view} {label}"),
                algorithm_id=algorithm,
                measurements=[measurement],
                qualitative_evaluations=[_view_evaluation(view)],
                source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(ds)],
            )
            groups.append(group)
    return groups


def _criteria_items(criteria: Any) -> tuple[str, list]:
    """The session's criteria: a preset as a CODE (``criteria-default`` …), custom
    thresholds as a container of Threshold Value (DCM 122411) NUMs, each naming its
    quantity and segment (``*`` = every other segment).  Returns the code of the
    segment groups' Measurement Method and the root items."""
    import highdicom as hd

    if isinstance(criteria, str):
        return f"criteria-{criteria}", [_code_item("criteria", f"criteria-{criteria}")]
    if not isinstance(criteria, Mapping):
        return "criteria-default", []
    container = hd.sr.ContainerContentItem(name=_code("criteria-custom"),
                                           relationship_type=_rel("CONTAINS"))
    items = []
    if criteria.get("name"):
        items.append(_text("criteria-name", str(criteria["name"])))
    if criteria.get("source"):
        items.append(_text("criteria-source", str(criteria["source"])))
    for key, unit in _MOTION_NUMS.items():
        table = criteria.get(key)
        if not isinstance(table, Mapping):
            continue
        for segment, value in table.items():
            items += _threshold_items(key, value, unit, str(segment))
    container.ContentSequence = items
    return "criteria-custom", [container]


def _safety_items(safety: Any) -> list:
    """That the safety checks ran (CODE Yes), each safety warning as a CODE (its check)
    with its message as a property, each acknowledged check as a CODE."""
    if not isinstance(safety, Mapping):
        return []
    items = [_code_item("safety-checked", sc.YES)]  # the checks ran (with or without warnings)
    for warning in safety.get("warnings") or []:
        if not isinstance(warning, Mapping) or not warning.get("check"):
            continue
        item = _code_item("safety-warning", str(warning["check"]))
        if warning.get("message"):
            item.ContentSequence = [_text("safety-message", str(warning["message"]),
                                          "HAS_PROPERTIES")]
        items.append(item)
    for check in safety.get("acknowledged") or []:
        items.append(_code_item("safety-acknowledged", str(check)))
    return items


def _observation_datetime(saved_at: Any) -> str | None:
    """A session's ISO 8601 ``saved_at`` as a DICOM DT, or None."""
    if not isinstance(saved_at, str):
        return None
    try:
        when = _dt.datetime.fromisoformat(saved_at)
    except ValueError:
        return None
    if when.isoformat(timespec="microseconds" if when.microsecond else "seconds") != saved_at:
        return None  # not in the form the viewer writes: it would not read back equal
    text = when.strftime("%Y%m%d%H%M%S") + (f".{when.microsecond:06d}" if when.microsecond else "")
    if when.utcoffset() is not None:
        minutes = int(when.utcoffset().total_seconds() // 60)
        text += f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    return text


def sr_dataset(
    report: ReportData,
    *,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    series_number: int = 900,
    instance_number: int = 1,
    anonymise: bool = False,
):
    """Build the Comprehensive SR dataset of a report (see the module docstring).

    Parameters
    ----------
    report : ReportData
        A session with its images found (the SR copies the patient and study
        from them and references them).
    anonymise : bool
        Empty the patient's name, ID and birth date, the other patient
        identifiers, the accession number and the referring physician, and
        say so (Patient Identity Removed, De-identification Method); the
        UIDs and dates stay so that the SR still references its films.

    Returns
    -------
    highdicom.sr.ComprehensiveSR

    Raises
    ------
    UserError
        An image is missing, changed since measurement, or is not the recorded one.
    """
    import highdicom as hd
    from pydicom import Dataset

    from app.report_tables import safe_row

    headers = _read_headers(report)
    session = report.session
    algorithm = _algorithm(session)
    criteria_method, criteria_items = _criteria_items(session.get("criteria"))
    groups: list = []
    for view in VIEWS:
        if view in report.films:
            groups.append(_film_group(view, report.films[view].record, headers[view], algorithm))
    for view in VIEWS:
        if view in report.films:
            groups += _vertebra_groups(view, report.films[view].record, report.levels,
                                       headers[view], algorithm)
    # A stale or edited session may hold mm values of an uncalibrated film; the
    # PACS must never receive them (measurement.md §5), as for the other exports.
    for i, row in enumerate(report.rows):
        groups += _segment_groups(safe_row(report, row), i, headers, criteria_method, algorithm)
    groups += _annotation_groups(session, report, headers, algorithm)

    device = hd.sr.ObserverContext(
        observer_type=_code(("121007", "DCM", "Device")),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="lumbar-instability", model_name=f"lumbar-instability {__version__}",
            manufacturer_name="lumbar-instability project",
        ),
    )
    reader_name, comment = reader_fields(session)
    person = None
    if reader_name:
        person = hd.sr.ObserverContext(
            observer_type=_code(("121006", "DCM", "Person")),
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=_person_name(reader_name)),
        )

    def build(library):
        return hd.sr.MeasurementReport(
            observation_context=hd.sr.ObservationContext(observer_person_context=person,
                                                         observer_device_context=device),
            procedure_reported=_code(sc.PROCEDURE),
            imaging_measurements=groups,
            referenced_images=library,
        )

    try:
        measurement_report = build(list(headers.values()))
    except (AttributeError, ValueError, TypeError):
        # The image library's descriptors need attributes some films lack
        # (e.g. PatientOrientation); the library is then left empty: the images
        # are still referenced by every group and in the evidence sequence.
        measurement_report = build(None)
    root = measurement_report[0].ContentSequence
    container = next(i for i in root if i.ValueType == "CONTAINER"
                     and _concept(i) == sc.IMAGING_MEASUREMENTS[:2])
    when = _observation_datetime(session.get("saved_at"))
    if when:
        container.ObservationDateTime = when  # when the measurements were saved
    if comment:
        root.append(_text(sc.COMMENT, comment))
    for level in session.get("levels") or []:
        root.append(_text("level", str(level)))
    root.extend(criteria_items)
    root.extend(_safety_items(session.get("safety")))
    if session.get("labels_need_review"):
        root.append(_text("labels-need-review", str(session["labels_need_review"])))

    evidence = list(headers.values())
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence,
        content=measurement_report,
        series_instance_uid=series_instance_uid or hd.UID(),
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or hd.UID(),
        instance_number=instance_number,
        manufacturer="lumbar-instability project",
        is_complete=True,
    )
    scheme = Dataset()
    scheme.CodingSchemeDesignator = PRIVATE_SCHEME
    scheme.CodingSchemeName = PRIVATE_SCHEME_NAME
    scheme.CodingSchemeResponsibleOrganization = "lumbar-instability project"
    scheme.CodingSchemeVersion = "2"
    sr.CodingSchemeIdentificationSequence = [scheme]
    sr.SeriesDescription = "Lumbar instability measurements"
    sr.SoftwareVersions = str(__version__)
    if "Modality" not in sr:
        sr.Modality = "SR"
    if anonymise:
        _anonymise(sr)
    return sr


#: Emptied (Type 2) or removed (Type 3) by an anonymised SR.
ANONYMISED_EMPTY = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber",
                    "ReferringPhysicianName")
ANONYMISED_REMOVED = ("OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames",
                      "PatientBirthName", "PatientMotherBirthName", "PatientAddress",
                      "PatientTelephoneNumbers", "IssuerOfPatientID", "PatientBirthTime",
                      "MedicalRecordLocator", "PatientComments")


def _anonymise(sr) -> None:
    """Remove who the patient is from an SR dataset, in place (see :func:`sr_dataset`)."""
    for keyword in ANONYMISED_EMPTY:
        setattr(sr, keyword, "")
    for keyword in ANONYMISED_REMOVED:
        if keyword in sr:
            delattr(sr, keyword)
    sr.PatientIdentityRemoved = "YES"
    sr.DeidentificationMethod = [  # LO: 64 characters per value
        "lumbar-instability anonymised export",
        "patient name, ID, birth date, other patient IDs removed",
        "accession number and referring physician removed",
        "UIDs and dates kept",
    ]


def _person_name(name: str) -> str:
    """A reader's name as a DICOM PN value: as typed (``Family^Given`` or free text), without
    the ``=`` and backslash a PN cannot hold in one component group."""
    clean = " ".join(str(name).replace("\\", " ").replace("=", " ").split())
    return clean if "^" in clean else clean + "^"  # free text: the family name component


def _person_name(name: str) -> str:
    """A reader's name as a DICOM PN value: as typed (``Family^Given`` or free text), without
    the ``=`` and backslash a PN cannot hold in one component group."""
    clean = " ".join(str(name).replace("\\", " ").replace("=", " ").split())
    return clean if "^" in clean else clean + "^"  # free text: the family name component


def write_sr(report: ReportData, path: str | Path, **kwargs: Any) -> Path:
    """Write the SR of a report to ``path`` atomically; returns the path.

    See :func:`sr_dataset` for the parameters and errors.
    """
    from pydicom.filebase import DicomBytesIO

    from app.atomic import atomic_write_bytes

    sr = sr_dataset(report, **kwargs)
    buffer = DicomBytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


# ----------------------------------------------------------------------------
# reading


def _key(triple: tuple[str, str, str | None] | str) -> tuple[str, str]:
    """The (value, scheme) of a code triple or a private code value."""
    return (triple, PRIVATE_SCHEME) if isinstance(triple, str) else (triple[0], triple[1])


def _code_of(item) -> tuple[str, str]:
    code = item.ConceptCodeSequence[0]
    return (str(code.get("CodeValue") or code.get("LongCodeValue") or ""),
            str(code.get("CodingSchemeDesignator", "")))


class _Num:
    """A NUM item read back: ``value`` (None = null, NaN), ``unit``, its Measurement
    Method, its properties (children NUMs by concept) and its SCOORD children."""

    def __init__(self, item) -> None:
        measured = item.get("MeasuredValueSequence") or []
        self.unit: tuple[str, str] | None = None
        if measured:
            m = measured[0]
            self.value: float | None = (float(m.FloatingPointValue) if "FloatingPointValue" in m
                                        else float(m.NumericValue))
            unit = m.MeasurementUnitsCodeSequence[0]
            self.unit = (str(unit.CodeValue), str(unit.CodingSchemeDesignator))
        else:  # no value (another writer's qualified NUM): null
            self.value = None
        self.method: str | None = None
        self.props: dict[tuple[str, str], _Num] = {}
        self.mods: dict[tuple[str, str], Any] = {}
        self.scoords: list[np.ndarray] = []
        for child in item.get("ContentSequence", []):
            concept = _concept(child)
            if child.ValueType == "CODE":
                if concept == _key(sc.MEASUREMENT_METHOD):
                    self.method = _code_of(child)[0]
                else:
                    self.mods[concept] = _code_of(child)
            elif child.ValueType == "TEXT":
                self.mods[concept] = str(child.TextValue)
            elif child.ValueType == "NUM":
                self.props[concept] = _Num(child)
            elif child.ValueType == "SCOORD":
                self.scoords.append(_scoord_points(child))


def _scoord_points(item) -> np.ndarray:
    return np.asarray(item.GraphicData, dtype=float).reshape(-1, 2)


class _Group:
    """One measurement group read back."""

    def __init__(self, group) -> None:
        self.tracking = ""
        self.nums: dict[tuple[str, str], _Num] = {}
        self.thresholds: list[_Num] = []
        self.codes: dict[tuple[str, str], tuple[str, str]] = {}
        self.code_items: list[tuple[tuple[str, str], tuple[str, str]]] = []
        self.texts: dict[tuple[str, str], str] = {}
        self.uids: dict[tuple[str, str], str] = {}
        self.images: list[str] = []
        self.scoord: np.ndarray | None = None
        self.version: str | None = None
        self.finding: str | None = None
        for item in group.get("ContentSequence", []):
            concept = _concept(item)
            vtype = item.ValueType
            if vtype == "TEXT":
                if concept == _key(sc.TRACKING_IDENTIFIER):
                    self.tracking = str(item.TextValue)
                elif concept == _key(sc.ALGORITHM_VERSION):
                    self.version = str(item.TextValue)
                else:
                    self.texts[concept] = str(item.TextValue)
            elif vtype == "NUM" and concept == _key(sc.THRESHOLD_VALUE):
                self.thresholds.append(_Num(item))
            elif vtype == "NUM":
                if concept in self.nums:
                    raise ValueError(f"{self.tracking!r} holds {concept[0]!r} twice")
                self.nums[concept] = _Num(item)
            elif vtype == "CODE":
                if concept == _key(sc.FINDING):
                    self.finding = _code_of(item)[0]
                self.codes[concept] = _code_of(item)
                self.code_items.append((concept, _code_of(item)))
            elif vtype == "UIDREF":
                self.uids[concept] = str(item.UID)
            elif vtype == "IMAGE":
                self.images.append(str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID))
            elif vtype == "SCOORD":
                self.scoord = _scoord_points(item)

    def num(self, triple) -> _Num | None:
        return self.nums.get(_key(triple))

    def code(self, triple) -> str | None:
        found = self.codes.get(_key(triple))
        return None if found is None else found[0]

    def text(self, triple) -> str | None:
        return self.texts.get(_key(triple))


def read_sr(path: str | Path) -> SrContent:
    """Read an SR written by :func:`write_sr` back into a session dict.

    Every value comes from the coded content (``docs/reports.md``, "What the SR
    carries"): the levels, criteria, films, corners, result rows, reader, safety
    warnings and the reader's rulers and angles.  An SR of the previous version
    (JSON in TEXT items, up to fe1442f) is read by :mod:`app.report_sr_legacy`;
    its session says so in ``read_from``.

    Returns
    -------
    SrContent
        The session (``format``, ``levels``, ``criteria``, ``flexion``,
        ``extension`` with calibration, image reference, landmarks, placement and
        landmark SDs, ``results.segments``, ``annotations``, ``reader``,
        ``safety``); ``.identity`` holds the patient and study of the SR.

    Raises
    ------
    InputFileError
        Not a DICOM file, not an SR of this project, a corrupt content tree, a
        corner outline or an annotation value that disagrees with its numbers.
    """
    import pydicom

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except Exception as exc:
        raise InputFileError(path, f"not a readable DICOM file ({type(exc).__name__})") from None
    if ds.get("Modality") != "SR" or "ContentSequence" not in ds:
        raise InputFileError(path, "not a DICOM Structured Report")
    try:
        return _decode(ds, path)
    except InputFileError:
        raise
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise InputFileError(path, f"corrupt or foreign SR content ({type(exc).__name__}: {exc})"
                             ) from None


def _iso_datetime(value: str) -> str | None:
    """A DICOM DT (``YYYYMMDDHHMMSS[.FFFFFF][&ZZXX]``) as the ISO 8601 text the viewer writes."""
    import re

    match = re.fullmatch(r"(\d{14})(?:\.(\d{1,6}))?([+-]\d{4})?", value.strip())
    if not match:
        return None
    when = _dt.datetime.strptime(match.group(1), "%Y%m%d%H%M%S")
    if match.group(2):
        when = when.replace(microsecond=int(match.group(2).ljust(6, "0")))
    if match.group(3):
        sign = -1 if match.group(3)[0] == "-" else 1
        offset = _dt.timedelta(hours=int(match.group(3)[1:3]), minutes=int(match.group(3)[3:]))
        when = when.replace(tzinfo=_dt.timezone(sign * offset))
    return when.isoformat(timespec="microseconds" if when.microsecond else "seconds")


def _is_ours(ds) -> bool:
    schemes = ds.get("CodingSchemeIdentificationSequence") or []
    return any(str(s.get("CodingSchemeDesignator", "")) == PRIVATE_SCHEME for s in schemes)


def _identity(ds) -> dict[str, str]:
    return {
        "patient_id": str(ds.get("PatientID", "")),
        "patient_name": str(ds.get("PatientName", "")),
        "study_instance_uid": str(ds.get("StudyInstanceUID", "")),
        "study_date": str(ds.get("StudyDate", "")),
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
        "content_date": str(ds.get("ContentDate", "")),
    }


def _decode(ds, path: Path) -> SrContent:
    from app.report_sr_legacy import decode_previous_version, is_previous_version

    if is_previous_version(ds):
        session, coded = decode_previous_version(ds, path)
        content = SrContent(session)
        content.coded_findings = coded
        content.identity = _identity(ds)
        return content
    if not _is_ours(ds):
        raise InputFileError(path, "not a lumbar-instability SR (no 99LUMBINST coding scheme)")
    session: dict[str, Any] = {"format": SESSION_FORMAT[0], "format_version": SESSION_FORMAT[1]}
    reader = {"name": "", "comment": ""}
    levels: list[str] = []
    groups: list[_Group] = []
    safety: dict[str, list] = {"warnings": [], "acknowledged": []}
    has_safety = False
    saved_at = None
    for item in ds.ContentSequence:
        concept = _concept(item)
        vtype = item.ValueType
        if vtype == "TEXT" and concept == _key(sc.COMMENT):
            reader["comment"] = str(item.TextValue)
        elif vtype == "PNAME" and concept == _key(sc.PERSON_OBSERVER_NAME):
            name = str(item.PersonName)
            reader["name"] = name[:-1] if name.endswith("^") and name.count("^") == 1 else name
        elif vtype == "TEXT" and concept == _key("level"):
            levels.append(str(item.TextValue))
        elif vtype == "TEXT" and concept == _key("labels-need-review"):
            session["labels_need_review"] = str(item.TextValue)
        elif vtype == "CODE" and concept == _key("criteria"):
            value = _code_of(item)[0]
            if not value.startswith("criteria-"):
                raise ValueError(f"criteria code {value!r}")
            session["criteria"] = value[len("criteria-"):]
        elif vtype == "CONTAINER" and concept == _key("criteria-custom"):
            session["criteria"] = _decode_criteria(item)
        elif vtype == "CODE" and concept == _key("safety-warning"):
            has_safety = True
            message = next((str(c.TextValue) for c in item.get("ContentSequence", [])
                            if _concept(c) == _key("safety-message")), "")
            safety["warnings"].append({"check": _code_of(item)[0], "message": message})
        elif vtype == "CODE" and concept == _key("safety-checked"):
            has_safety = True
        elif vtype == "CODE" and concept == _key("safety-acknowledged"):
            has_safety = True
            safety["acknowledged"].append(_code_of(item)[0])
        elif vtype == "CONTAINER" and concept == _key(sc.IMAGING_MEASUREMENTS):
            saved_at = item.get("ObservationDateTime")
            groups = [_Group(g) for g in item.get("ContentSequence", [])
                      if _concept(g) == _key(sc.MEASUREMENT_GROUP)]
    if not groups or not any(g.tracking.startswith("film ") for g in groups):
        raise InputFileError(path, "not a lumbar-instability SR (no film measurement group)")
    version = next((g.version for g in groups if g.version), None)
    if version is not None:
        session["software_version"] = version
    if saved_at:
        iso = _iso_datetime(str(saved_at))
        if iso is not None:
            session["saved_at"] = iso
    session["levels"] = levels
    session.setdefault("criteria", "default")

    rows: list[dict[str, Any]] = []
    coded: dict[str, str] = {}
    film_groups = {g.tracking[5:]: g for g in groups if g.tracking.startswith("film ")}
    for view in VIEWS:
        if view in film_groups:
            session[view] = _decode_film(film_groups[view])
    segment_groups = [g for g in groups if g.tracking.startswith("segment ")]
    per_film = {g.tracking: g for g in groups
                if g.tracking.partition(" ")[0] in VIEWS and "-" in g.tracking.partition(" ")[2]}
    for group in segment_groups:
        row = _decode_row(group, per_film)
        rows.append(row)
        if group.finding is not None:
            coded[str(row.get("segment", group.tracking[8:]))] = group.finding
    for group in groups:
        view, _, level = group.tracking.partition(" ")
        if view not in VIEWS or not level or group.tracking in per_film:
            continue
        _decode_vertebra(group, session.setdefault(view, {}), path)
    for view in VIEWS:
        if view in session:
            for key in ("landmarks", "placement", "landmark_sd_mm"):
                d = session[view].setdefault(key, {})
                # the session's order of levels
                session[view][key] = {lv: d[lv] for lv in levels if lv in d} | {
                    lv: v for lv, v in d.items() if lv not in levels}
    annotations = _decode_annotations(groups, session, path)
    if annotations:
        session["annotations"] = annotations
    if reader["name"] or reader["comment"]:
        session["reader"] = reader
    if rows:
        session["results"] = {"segments": rows}
    if has_safety:
        session["safety"] = safety
    load_session_dict(session, path)
    content = SrContent(session)
    content.coded_findings = coded
    content.identity = _identity(ds)
    return content


def _decode_criteria(container) -> dict[str, Any]:
    out: dict[str, Any] = {"name": "custom", "source": ""}
    tables: dict[str, dict[str, float | None]] = {key: {} for key in _MOTION_NUMS}
    for item in container.get("ContentSequence", []):
        concept = _concept(item)
        if item.ValueType == "TEXT" and concept == _key("criteria-name"):
            out["name"] = str(item.TextValue)
        elif item.ValueType == "TEXT" and concept == _key("criteria-source"):
            out["source"] = str(item.TextValue)
        elif item.ValueType == "NUM" and concept == _key(sc.THRESHOLD_VALUE):
            num = _Num(item)
            quantity = num.mods[_key("threshold-of")][0]
            if quantity not in tables:
                raise ValueError(f"threshold of {quantity!r}")
            segment = num.mods[_key(sc.ANATOMIC_IDENTIFIER)]
            tables[quantity][segment] = num.value
    out.update(tables)
    return out


def _value(num: _Num | None) -> float | None:
    return None if num is None else num.value


def _decode_film(group: _Group) -> dict[str, Any]:
    spacing_v, spacing_h = _value(group.num(sc.VERTICAL_SPACING)), _value(group.num(sc.HORIZONTAL_SPACING))
    source = group.code(sc.CALIBRATION_METHOD) or "uncalibrated"
    film: dict[str, Any] = {
        "pixel_spacing_mm": None if spacing_v is None else [spacing_v, spacing_h],
        "calibration_source": source,
        "calibration_detail": group.text("calibration-detail") or "",
    }
    header_source = group.code("header-calibration-method")
    if header_source is not None:
        hv, hh = _value(group.num("header-vertical-spacing")), _value(group.num("header-horizontal-spacing"))
        film["dicom_calibration"] = {
            "pixel_spacing_mm": None if hv is None else [hv, hh],
            "calibration_source": header_source,
            "calibration_detail": group.text("header-calibration-detail") or "",
        }
    line = [_value(group.num(f"calibration-line-{a}")) for a in ("x0", "y0", "x1", "y1")]
    length = _value(group.num(sc.CALIBRATION_OBJECT_SIZE))
    film["manual_calibration"] = (
        {"p0": line[:2], "p1": line[2:], "length_mm": length}
        if all(v is not None for v in line) and length is not None else None)
    image = {"sop_instance_uid": group.images[0] if group.images else None,
             "series_instance_uid": group.uids.get(_key(sc.SERIES_UID)),
             "study_instance_uid": group.uids.get(_key(sc.STUDY_UID)),
             "sha256": group.text("image-sha256")}
    film["image"] = {k: v for k, v in image.items() if v is not None}
    rows, cols = _value(group.num("image-rows")), _value(group.num("image-columns"))
    if rows is not None and cols is not None:
        film["image_size"] = [int(rows), int(cols)]
    return film


def _decode_vertebra(group: _Group, record: dict[str, Any], path: Path) -> None:
    level = group.text(sc.ANATOMIC_IDENTIFIER) or group.tracking.partition(" ")[2]
    marks = record.setdefault("landmarks", {})
    placement = record.setdefault("placement", {})
    sds = record.setdefault("landmark_sd_mm", {})
    for corner in CORNERS:
        x, y = group.num(f"{corner}-x"), group.num(f"{corner}-y")
        if x is None or y is None:
            continue
        marks.setdefault(level, {})[corner] = [x.value, y.value]
        if x.method is not None:
            placement.setdefault(level, {})[corner] = x.method
        sd = group.num(f"{corner}-sd")
        if sd is not None:
            sds.setdefault(level, {})[corner] = sd.value
    if group.scoord is not None:
        present = [c for c in CORNERS if c in marks.get(level, {})]
        exact = np.array([marks[level][c] for c in present], dtype=float) + 0.5
        shown = group.scoord[: len(present)]
        if shown.shape != exact.shape or not np.allclose(shown, exact, rtol=1e-6, atol=1e-3):
            raise InputFileError(path, f"corrupt SR: the outline of {group.tracking!r} disagrees "
                                 "with its corner values")


def _yes(group: _Group, concept: str) -> bool | None:
    value = group.code(concept)
    if value is None:
        return None
    if value not in (sc.YES[0], sc.NO[0]):
        raise ValueError(f"{group.tracking!r}: {concept} is neither Yes nor No")
    return value == sc.YES[0]


#: The columns of every row ``measure`` gives for two films (``SegmentalMotion.to_records``):
#: a row whose segment group holds a translation verdict has them all, and a cell
#: the SR does not hold is null.
_RECORD_COLUMNS = (
    *(f"{v}_{k}" for v in VIEWS for k in _FILM_NUMS), *_MOTION_NUMS,
    *(f"{k}_ci95" for k in _MOTION_NUMS), "criterion", "rotation_centre", "rotation_centre_note",
    "depth_ratio",
)


def _decode_row(group: _Group, per_film: Mapping[str, _Group]) -> dict[str, Any]:
    """One result row from a segment group and its per-film groups (inverse of
    :func:`_segment_groups`).  A null cell is an item the SR does not hold: the
    row's kind says which cells it has (every column of ``measure``'s rows when
    the group has a translation verdict; the per-film cells of each film that has
    a per-film group; the columns the viewer adds when the group has a finding)."""
    row: dict[str, Any] = {}
    label = group.text(sc.ANATOMIC_IDENTIFIER)
    if label is not None:
        row["segment"] = label
    label = group.tracking[len("segment "):]  # the per-film groups are tracked with the group
    for key in _LABEL_COLUMNS:
        if group.text(key) is not None:
            row[key] = group.text(key)
    for view in VIEWS:
        film = per_film.get(f"{view} {label}")
        if film is None:
            continue
        for key, (concept, _unit) in _FILM_NUMS.items():
            row[f"{view}_{key}"] = _value(film.num(concept))
    for key in _MOTION_NUMS:
        num = group.num(key)
        if num is None:
            continue
        row[key] = num.value
        lower, upper = num.props.get(_key("ci95-lower")), num.props.get(_key("ci95-upper"))
        if lower is not None and upper is not None:
            row[f"{key}_ci95"] = [lower.value, upper.value]
    for key, concept in _BOOL_COLUMNS.items():
        value = _yes(group, concept)
        if value is not None:
            row[key] = value
    for key, (concept, prefix) in _ENUM_COLUMNS.items():
        value = group.code(concept)
        if value is None:
            continue
        if not value.startswith(prefix):
            raise ValueError(f"{group.tracking!r}: {concept} code {value!r}")
        row[key] = value[len(prefix):].replace("-", " ") if prefix else value
    if all(f"{v} {label}" in per_film for v in VIEWS):  # a row of two films: the motion
        for key in _MOTION_NUMS:
            row.setdefault(key, None)
            row.setdefault(f"{key}_ci95", None)
    record = "translation_verdict" in row
    if record:  # measure's rows carry the verdict (the group's Finding) and every column
        row["verdict"] = group.finding
        for key in _RECORD_COLUMNS:
            row.setdefault(key, None)
    thresholds: dict[str, float | None] = {}
    for num in group.thresholds:
        thresholds[num.mods[_key("threshold-of")][0]] = num.value
    if thresholds or record:
        row["thresholds"] = {k: thresholds.get(k) for k in _MOTION_NUMS}
    x, y = group.num("rotation_centre/x"), group.num("rotation_centre/y")
    if x is not None and y is not None:
        row["rotation_centre"] = [x.value, y.value]
    if group.num("depth_ratio") is not None:
        row["depth_ratio"] = group.num("depth_ratio").value
    for key, companion in _TEXT_COLUMNS.items():
        text = group.text(key)
        if text is not None or companion in row:
            row[key] = text
    if group.code("calibration_source") is not None:
        row["calibration_source"] = group.code("calibration_source")
    else:
        parts = [f"{v} {per_film[f'{v} {label}'].code('calibration_source')}" for v in VIEWS
                 if f"{v} {label}" in per_film
                 and per_film[f"{v} {label}"].code("calibration_source") is not None]
        if parts:
            row["calibration_source"] = ", ".join(parts)
    row.update(_decode_generic(group))
    order = {key: i for i, key in enumerate(_COLUMN_ORDER)}
    return dict(sorted(row.items(), key=lambda kv: order.get(kv[0], len(order))))


#: The order of a row's columns (measure's ``to_records``, then the viewer's own):
#: the CSV of a report from the SR has the columns of the report from the session.
_COLUMN_ORDER = (
    "segment", "upper", "lower", "measured",
    *(f"{v}_{k}" for k in _FILM_NUMS for v in VIEWS),
    "translation_mm", "translation_pct", "angulation_deg",
    "translation_mm_ci95", "translation_pct_ci95", "angulation_deg_ci95",
    "translation_unstable", "angulation_unstable", "unstable", "criterion", "borderline",
    "verdict", "translation_verdict", "angulation_verdict", "translation_assessed",
    "thresholds", "rotation_centre", "rotation_centre_note", "depth_ratio",
    "finding", "calibration_source", "translation_mm_note", "needs_review", "needs_review_reason",
)


_GENERIC_SKIP = frozenset(
    {_key(c) for c in (sc.ANATOMIC_IDENTIFIER, sc.FINDING, sc.FINDING_SITE, sc.MEASUREMENT_METHOD,
                       sc.ALGORITHM_NAME, sc.TRACKING_IDENTIFIER, ("112040", "DCM", None))}
    | {_key(c) for c in (*_MOTION_NUMS, *_BOOL_COLUMNS.values(), *(c for c, _ in _ENUM_COLUMNS.values()),
                         *_TEXT_COLUMNS, *_LABEL_COLUMNS, "rotation_centre/x", "rotation_centre/y",
                         "depth_ratio", "calibration_source")}
)


def _decode_generic(group: _Group) -> dict[str, Any]:
    """The columns this version does not know (inverse of :func:`_generic_cells`)."""
    cells: dict[str, Any] = {}
    for concept, num in group.nums.items():
        if concept[1] == PRIVATE_SCHEME and concept not in _GENERIC_SKIP:
            value = num.value
            if value is not None and not math.isnan(value) and value.is_integer() \
                    and num.unit == _key(sc.NO_UNITS):
                value = int(value)
            cells[concept[0]] = value
    for concept, code in group.codes.items():
        if concept[1] == PRIVATE_SCHEME and concept not in _GENERIC_SKIP and code in (
                _key(sc.YES), _key(sc.NO)):
            cells[concept[0]] = code == _key(sc.YES)
    for concept, text in group.texts.items():
        if concept[1] == PRIVATE_SCHEME and concept not in _GENERIC_SKIP:
            cells[concept[0]] = text
    out: dict[str, Any] = {}
    for path, value in cells.items():
        key, _, part = path.partition("/")
        if not part:
            out[key] = value
            continue
        holder = out.setdefault(key, {})
        holder[part] = value
    for key, value in out.items():
        if isinstance(value, dict) and value and all(k.isdigit() for k in value):
            out[key] = [value[str(i)] for i in range(len(value))]
    return out


def _decode_annotations(groups: Sequence[_Group], session: Mapping[str, Any],
                        path: Path) -> list[dict[str, Any]]:
    """The reader's rulers and angles from their SCOORD; the value each group stores
    must be the value its points give with the film's calibration."""
    from app.annotations import Annotation, measure_annotation
    from app.report_data import film_calibration

    out = []
    for group in groups:
        kind_view, _, label = group.tracking.partition(" ")[2].partition(" ")
        if not group.tracking.startswith("annotation ") or kind_view not in VIEWS:
            continue
        length, angle = group.num(sc.LENGTH), group.num(sc.ANGLE)
        num = length if length is not None else angle
        if num is None:
            raise ValueError(f"{group.tracking!r} holds neither a Length nor an Angle")
        lines = num.scoords
        if not lines:
            raise ValueError(f"{group.tracking!r} has no coordinates")
        points = np.vstack(lines) - 0.5
        kind = "ruler" if length is not None else "angle"
        annotation = Annotation(kind, tuple((float(x), float(y)) for x, y in points))
        record = session.get(kind_view) or {}
        value = measure_annotation(annotation, film_calibration(record)).value
        stored = num.value
        agree = (stored is None and not math.isfinite(value)) or (
            stored is not None and math.isfinite(value)
            and math.isclose(stored, value, rel_tol=1e-4, abs_tol=1e-3))
        if not agree:
            raise InputFileError(
                path, f"corrupt SR: the value of {label} on the {kind_view} film "
                f"(stored {stored}) disagrees with its points ({value:.6g})")
        out.append({"kind": kind, "film": kind_view, "points_px": points.tolist()})
    return out


def report_from_sr(path: str | Path, **kwargs: Any) -> ReportData:
    """Read an SR and build the :class:`ReportData` of its session (images are
    looked for next to the SR and in ``search_dirs``)."""
    session = read_sr(path)
    return report_from_session(dict(session), path, **kwargs)
