"""DICOM Comprehensive SR (TID 1500 Measurement Report) of a session, and back.

:func:`write_sr` encodes a session with highdicom; :func:`read_sr` decodes the
file into the same session dict, number for number (see ``docs/reports.md``
for the content tree and every code).  In short, inside the TID 1500
"Imaging Measurements" container:

- one TID 1501 group per film (tracking identifier ``"film flexion"``): the view
  (SCT Flexion / Extension), the pixel spacing (DCM 111066 / 111026, mm) whose
  Measurement Method is the calibration source, the manual calibration line and
  the object length (DCM 122423), the image path and SHA-256;
- one TID 1410 planar ROI group per film and vertebra (``"flexion L4"``): the
  corners as an SCOORD POLYLINE (closed outline ``AS PS PI AI AS``, or the
  endplate line of S1) referencing the film by SOP Instance UID, the finding
  site (SCT L1…L5 vertebra, sacrum), and per corner its exact ``x``, ``y``
  (pixels) and positional SD (mm), with how it was placed as the Measurement
  Method;
- one TID 1501 group per segment (``"segment L4-L5"``): finding site (SCT
  L4/L5 disc), the finding (DCM 121071 "Finding" = private code unstable /
  borderline / stable) and
  every numeric column of the result row as a NUM (translation mm and %,
  angulation, per-film values, 95 % interval bounds, thresholds), both films
  as source images.

SCOORD coordinates follow DICOM (PS3.3 C.18.6.1.1: ``0\\0`` is the top-left
corner of the top-left pixel), so they are the project's pixel coordinates
(origin at the centre of that pixel) plus 0.5.  They are float32; the exact
values travel in the NUM items (FloatingPointValue, float64).

Concepts with no standard code use the private coding scheme ``99LUMBINST``
(documented in ``docs/reports.md``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app import __version__
from app.errors import InputFileError, UserError
from app.report_data import (
    CORNER_NAMES,
    CORNERS,
    VIEWS,
    ReportData,
    load_session_dict,
    reader_fields,
    report_from_session,
)
from measure import verdict_of_record

__all__ = [
    "PRIVATE_SCHEME",
    "SrContent",
    "read_sr",
    "sr_dataset",
    "write_sr",
]

PRIVATE_SCHEME = "99LUMBINST"
"""Coding scheme designator of the project's private codes (PS3.3 8.2: "99" prefix)."""

PRIVATE_SCHEME_NAME = "lumbar-instability private codes"

# The private concepts, value -> meaning.  Row columns are coded by their own
# key (``translation_mm`` ...) in the same scheme.
_PRIVATE: dict[str, str] = {
    "view": "Radiographic view",
    "calibration-source": "Calibration source",
    "calibration-detail": "Calibration detail",
    "image-sha256": "SHA-256 of the image file as measured",
    "calibration-line-x0": "Manual calibration line, first end x (pixels)",
    "calibration-line-y0": "Manual calibration line, first end y (pixels)",
    "calibration-line-x1": "Manual calibration line, second end x (pixels)",
    "calibration-line-y1": "Manual calibration line, second end y (pixels)",
    "film-extra": "Other film keys (JSON)",
    "session-extra": "Other session keys (JSON)",
    "session-header": "Session header (JSON)",
    "reader-recorded": "Reader fields recorded (person observer, comment)",
    "segment-columns": "Result row columns (JSON)",
    "level": "Vertebral level label",
    "unstable": "Unstable (95 % interval wholly above a threshold)",
    "borderline-above": "Borderline, above threshold (95 % interval straddles it)",
    "borderline-below": "Borderline, below thresholds (95 % interval reaches one)",
    "within": "Within thresholds (every 95 % interval within)",
    "not-assessed": "Not assessed (no criterion applicable)",
    "not-measured": "Not measured",
    "manual": "Placed manually",
    "refined": "Placed manually, refined automatically",
    "tracked": "Tracked from the other film",
    "detected": "Detected automatically",
    "edited": "Edited by the user",
    "calibrated": "Calibrated pixel spacing (patient plane)",
    "magnification-corrected": "Imager pixel spacing corrected for magnification",
    "detector": "Imager pixel spacing (detector plane, not corrected)",
    "uncalibrated": "Uncalibrated",
    "reader-angle": "Angle drawn by the reader",
    "annotation-label": "Label of the reader's ruler or angle",
}
_PRIVATE.update(
    {f"{c}-{a}": f"{CORNER_NAMES[c].capitalize()} corner, {a} (pixels)" for c in CORNERS
     for a in ("x", "y")}
)
_PRIVATE.update(
    {f"{c}-sd": f"{CORNER_NAMES[c].capitalize()} corner, positional SD" for c in CORNERS}
)

_VERTEBRA_SCT = {
    "L1": ("66794005", "L1 vertebra"),
    "L2": ("14293000", "L2 vertebra"),
    "L3": ("36470004", "L3 vertebra"),
    "L4": ("11994002", "L4 vertebra"),
    "L5": ("49668003", "L5 vertebra"),
    "S1": ("54735007", "Sacrum"),
}
_DISC_SCT = {
    "T12-L1": ("76206002", "T12/L1 disc"),
    "L1-L2": ("80064006", "L1/L2 disc"),
    "L2-L3": ("67459009", "L2/L3 disc"),
    "L3-L4": ("62551000", "L3/L4 disc"),
    "L4-L5": ("84020006", "L4/L5 disc"),
    "L5-S1": ("715056000", "L5/S1 disc"),
}
_VIEW_SCT = {"flexion": ("9964006", "Flexion"), "extension": ("24154002", "Extension")}

_TRACKING_IDENTIFIER = ("112039", "DCM")
_MEASUREMENT_METHOD = ("370129005", "SCT")
_FINDING = ("121071", "DCM")
_FINDING_SITE = ("363698007", "SCT")
_MEASUREMENT_GROUP = ("125007", "DCM")
_VERTICAL_SPACING = ("111066", "DCM", "Vertical Pixel Spacing")
_HORIZONTAL_SPACING = ("111026", "DCM", "Horizontal Pixel Spacing")
_CALIBRATION_OBJECT_SIZE = ("122423", "DCM", "Calibration Object Size")
_PROCEDURE = ("168537006", "SCT", "Plain radiography")
_SERIES_UID = ("112002", "DCM", "Series Instance UID")
_STUDY_UID = ("110180", "DCM", "Study Instance UID")
_PERSON_OBSERVER_NAME = ("121008", "DCM")
_COMMENT = ("121106", "DCM", "Comment")
_YES = ("373066001", "SCT", "Yes")
_NO = ("373067005", "SCT", "No")
_ELEMENT_NAMES = {"_ci95": ("low", "high"), "rotation_centre": ("x", "y")}
"""Names of the two elements of a pair-valued result cell (code ``<column>/<name>``)."""


def _code(value: str, scheme: str = PRIVATE_SCHEME, meaning: str | None = None):
    from pydicom.sr.coding import Code

    if meaning is None:
        meaning = _PRIVATE.get(value) or value.replace("_", " ")
    return Code(value, scheme, meaning[:64])  # PS3.3: Code Meaning is LO (64 characters)


def _unit(key: str):
    """UCUM unit of a result column, from its name."""
    from pydicom.sr.coding import Code

    k = key.lower()
    if "_mm" in k or k.endswith("mm"):
        return Code("mm", "UCUM", "mm")
    if "_pct" in k or "percent" in k:
        return Code("%", "UCUM", "%")
    if "_deg" in k or "angle" in k or "angulation" in k:
        return Code("deg", "UCUM", "deg")
    if "_px" in k or "pixel" in k:
        return Code("{pixels}", "UCUM", "pixels")
    return Code("1", "UCUM", "no units")


_PIXELS = ("{pixels}", "UCUM", "pixels")
_MM = ("mm", "UCUM", "mm")
_DEG = ("deg", "UCUM", "deg")
_LENGTH = ("410668003", "SCT", "Length")


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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(name: str, value: str):
    import highdicom as hd

    return hd.sr.TextContentItem(
        name=_code(name), value=value, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )


def _num(name, value: float, unit, method=None):
    import highdicom as hd

    if isinstance(value, np.generic):
        value = value.item()
    return hd.sr.Measurement(name=name, value=value, unit=unit, method=method)


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


def _film_group(view: str, record: Mapping[str, Any], ds) -> Any:
    import highdicom as hd
    from pydicom.sr.coding import Code

    source = record.get("calibration_source", "uncalibrated")
    measurements = []
    spacing = record.get("pixel_spacing_mm")
    method = _code(source)
    if spacing is not None:
        measurements.append(_num(Code(*_VERTICAL_SPACING), spacing[0], Code(*_MM), method))
        measurements.append(_num(Code(*_HORIZONTAL_SPACING), spacing[1], Code(*_MM), method))
    manual = record.get("manual_calibration")
    if manual:
        line = np.array([manual["p0"], manual["p1"]], dtype=float) + 0.5
        measurements.append(
            hd.sr.Measurement(
                name=Code(*_CALIBRATION_OBJECT_SIZE),
                value=float(manual["length_mm"]),
                unit=Code(*_MM),
                method=_code("manual"),
                referenced_coordinates=[
                    hd.sr.CoordinatesForMeasurement(
                        "POLYLINE", line, hd.sr.SourceImageForRegion.from_source_image(ds)
                    )
                ],
            )
        )
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=hd.UID(), identifier=f"film {view}"
        ),
        measurements=measurements or None,
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(_code("view"), Code(_VIEW_SCT[view][0], "SCT",
                                                            _VIEW_SCT[view][1])),
            hd.sr.QualitativeEvaluation(_code("calibration-source"), _code(source)),
        ],
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(ds)],
    )
    content = group[0].ContentSequence
    known = {"pixel_spacing_mm", "calibration_source", "calibration_detail", "manual_calibration",
             "image", "landmarks", "placement", "landmark_sd_mm"}
    content.append(_text("calibration-detail", str(record.get("calibration_detail") or "")))
    if manual:
        for name, value in zip(("calibration-line-x0", "calibration-line-y0",
                                "calibration-line-x1", "calibration-line-y1"),
                               [*manual["p0"], *manual["p1"]], strict=True):
            content.extend(_num(_code(name), float(value), Code(*_PIXELS)))
    # The image: by SOP Instance UID (the source image above), series, study and content
    # hash; never its local file path, which means nothing to a PACS.
    image = record.get("image") or {}
    for code, key in ((_SERIES_UID, "series_instance_uid"), (_STUDY_UID, "study_instance_uid")):
        if image.get(key):
            content.append(hd.sr.UIDRefContentItem(
                name=Code(*code), value=str(image[key]),
                relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    if image.get("sha256"):
        content.append(_text("image-sha256", str(image["sha256"])))
    extra = {k: v for k, v in record.items() if k not in known}
    if "manual_calibration" in record and not manual:
        extra["manual_calibration"] = record["manual_calibration"]  # null: kept as written
    if extra:
        content.append(_text("film-extra", json.dumps(extra)))
    return group


def _vertebra_groups(view: str, record: Mapping[str, Any], levels: Sequence[str], ds) -> list:
    import highdicom as hd
    from pydicom.sr.coding import Code

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
        measurements = []
        for corner, (x, y) in zip(corners, xy, strict=True):
            method_name = (placement.get(level) or {}).get(corner)
            method = _code(method_name) if method_name else None
            measurements.append(_num(_code(f"{corner}-x"), float(x), Code(*_PIXELS), method))
            measurements.append(_num(_code(f"{corner}-y"), float(y), Code(*_PIXELS), method))
            sd = (sds.get(level) or {}).get(corner)
            if sd is not None:
                measurements.append(_num(_code(f"{corner}-sd"), sd, Code(*_MM)))
        sites = None
        if level in _VERTEBRA_SCT:
            value, meaning = _VERTEBRA_SCT[level]
            sites = [hd.sr.FindingSite(Code(value, "SCT", meaning))]
        group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(),
                                                         identifier=f"{view} {level}"),
            referenced_region=hd.sr.ImageRegion(
                graphic_type, data + 0.5, hd.sr.SourceImageForRegion.from_source_image(ds)
            ),
            finding_sites=sites,
            measurements=measurements,
            qualitative_evaluations=[
                hd.sr.QualitativeEvaluation(
                    _code("view"), Code(_VIEW_SCT[view][0], "SCT", _VIEW_SCT[view][1])
                )
            ],
        )
        group[0].ContentSequence.append(_text("level", level))
        groups.append(group)
    return groups


_CELL_MEANINGS = {
    "rotation_centre/x": "Centre of rotation x (along endplate, fraction of depth)",
    "rotation_centre/y": "Centre of rotation y (across endplate, fraction of depth)",
}


def _cell_meaning(path: str) -> str:
    """Human meaning of a result cell's private code (``translation_mm_ci95/low`` ->
    ``translation mm, 95 % interval, low``)."""
    if path in _CELL_MEANINGS:
        return _CELL_MEANINGS[path]
    key, _, sub = path.partition("/")
    text = key.replace("_ci95", ", 95 % interval").replace("_", " ")
    if sub:
        text += f", {sub.replace('_', ' ')}"
    return text


def _element_names(key: str, n: int) -> list[str]:
    """Names of the elements of a list-valued cell: ``low``/``high`` for intervals,
    ``x``/``y`` for the centre of rotation, else the index."""
    for suffix, names in _ELEMENT_NAMES.items():
        if (key.endswith(suffix) or key == suffix) and n == len(names):
            return list(names)
    return [str(i) for i in range(n)]


def _row_label(row: Mapping[str, Any], index: int) -> str:
    for key in ("segment", "level", "label"):
        if isinstance(row.get(key), str):
            return row[key]
    return f"segment {index + 1}"


def _row_finding(row: Mapping[str, Any]) -> str:
    """The coded finding of a segment: its verdict's key (``measure.Verdict``)."""
    return verdict_of_record(row).key


def _annotation_groups(view: str, measured: Sequence[tuple[str, Any, Any]], ds) -> list:
    """The reader's rulers and angles of one film as coded measurements with their lines.

    A ruler is a Length (SCT 410668003) in mm with its calibration source as
    the method, or in pixels on an uncalibrated film; an angle is coded with the
    project's ``reader-angle`` in degrees.  Each references its polyline(s) on the
    film (two lines of a two-line angle as two polylines).  The session's own copy
    stays in ``session-extra`` (exact round trip); these items are for a PACS.
    """
    import highdicom as hd
    from pydicom.sr.coding import Code

    groups = []
    for label, annotation, value in measured:
        if not math.isfinite(value.value):
            continue
        pts = np.asarray(annotation.points_px, dtype=float) + 0.5  # pixel centres to SCOORD
        lines = [pts[:2], pts[2:]] if len(pts) == 4 else [pts]
        coordinates = [hd.sr.CoordinatesForMeasurement(
            "POLYLINE", line, hd.sr.SourceImageForRegion.from_source_image(ds)) for line in lines]
        if annotation.kind == "ruler":
            unit, method = (Code(*_MM), _code(value.calibration_source)) if value.unit == "mm" else (
                Code(*_PIXELS), _code("uncalibrated"))
            measurement = hd.sr.Measurement(name=Code(*_LENGTH), value=float(value.value), unit=unit,
                                            method=method, referenced_coordinates=coordinates)
        else:
            measurement = hd.sr.Measurement(name=_code("reader-angle"), value=float(value.value),
                                            unit=Code(*_DEG), referenced_coordinates=coordinates)
        group = hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(),
                                                         identifier=f"annotation {view} {label}"),
            measurements=[measurement],
            qualitative_evaluations=[hd.sr.QualitativeEvaluation(
                _code("view"), Code(_VIEW_SCT[view][0], "SCT", _VIEW_SCT[view][1]))],
            source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(ds)],
        )
        group[0].ContentSequence.append(_text("annotation-label", label))
        groups.append(group)
    return groups


def _segment_group(row: Mapping[str, Any], index: int, sources: Sequence,
                   criteria: str) -> Any:
    import highdicom as hd
    from pydicom.sr.coding import Code

    label = _row_label(row, index)
    measurements = []
    texts = []
    meta: dict[str, Any] = {"columns": list(row), "skeleton": {}, "null": [], "nan": [],
                            "json": [], "int": [], "bool": []}
    codes = []

    def leaf(path: str, value: Any) -> str:
        if value is None:
            meta["null"].append(path)
        elif isinstance(value, float) and math.isnan(value):
            meta["nan"].append(path)
        elif _is_number(value) and math.isfinite(value):
            if isinstance(value, int):
                meta["int"].append(path)
                value = float(value)
            measurements.append(_num(_code(path, meaning=_cell_meaning(path)), value,
                                     _unit(path)))
        elif isinstance(value, str):
            texts.append(_text(path, value))
        elif isinstance(value, bool):
            meta["bool"].append(path)
            codes.append(hd.sr.CodeContentItem(
                name=_code(path, meaning=_cell_meaning(path)),
                value=Code(*(_YES if value else _NO)),
                relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
        else:
            meta["json"].append(path)
            texts.append(_text(path, json.dumps(value)))
        return path

    for key, value in row.items():
        if isinstance(value, list) and all(not isinstance(v, list | dict) for v in value):
            names = _element_names(key, len(value))
            meta["skeleton"][key] = [leaf(f"{key}/{n}", v) for n, v in zip(names, value,
                                                                          strict=True)]
        elif isinstance(value, dict) and all(not isinstance(v, list | dict)
                                             for v in value.values()):
            meta["skeleton"][key] = {k: leaf(f"{key}/{k}", v) for k, v in value.items()}
        else:
            leaf(key, value)
    finding = _row_finding(row)
    sites = None
    if label in _DISC_SCT:
        value, meaning = _DISC_SCT[label]
        sites = [hd.sr.FindingSite(Code(value, "SCT", meaning))]
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"segment {label}"),
        finding_type=_code(finding),
        method=_code(f"criteria-{criteria}", meaning=f"Instability criteria: {criteria}"),
        finding_sites=sites,
        measurements=measurements or None,
        source_images=list(sources),
    )
    content = group[0].ContentSequence
    content.extend(codes)
    content.extend(texts)
    content.append(_text("segment-columns", json.dumps(meta)))
    return group


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
    from pydicom.sr.coding import Code

    headers = _read_headers(report)
    session = report.session
    groups: list = []
    for view in VIEWS:
        if view in report.films:
            groups.append(_film_group(view, report.films[view].record, headers[view]))
    for view in VIEWS:
        if view in report.films:
            groups += _vertebra_groups(view, report.films[view].record, report.levels,
                                       headers[view])
    sources = [hd.sr.SourceImageForMeasurementGroup.from_source_image(ds)
               for ds in headers.values()]
    from app.report_tables import safe_row

    # A stale or edited session may hold mm values of an uncalibrated film; the
    # PACS must never receive them (measurement.md §5), as for the other exports.
    for i, row in enumerate(report.rows):
        groups.append(_segment_group(safe_row(report, row), i, sources, report.criteria))
    from app.report_tables import report_annotations

    for view, measured in report_annotations(report).items():
        if view in headers:
            groups += _annotation_groups(view, measured, headers[view])

    device = hd.sr.ObserverContext(
        observer_type=Code("121007", "DCM", "Device"),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="lumbar-instability", model_name=f"lumbar-instability {__version__}",
            manufacturer_name="lumbar-instability project",
        ),
    )
    reader_name, comment = reader_fields(session)
    person = None
    if reader_name:
        person = hd.sr.ObserverContext(
            observer_type=Code("121006", "DCM", "Person"),
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=_person_name(reader_name)),
        )

    def build(library):
        return hd.sr.MeasurementReport(
            observation_context=hd.sr.ObservationContext(observer_person_context=person,
                                                         observer_device_context=device),
            procedure_reported=Code(*_PROCEDURE),
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
    header_keys = ("format", "format_version", "software_version", "saved_at", "levels",
                   "criteria")
    header = {k: session[k] for k in header_keys if k in session}
    extra = {k: v for k, v in session.items()
             if k not in (*header_keys, *VIEWS, "results", "reader")}
    if isinstance(session.get("results"), dict):
        res_extra = {k: v for k, v in session["results"].items() if k != "segments"}
        if res_extra:
            extra["results"] = res_extra
    root = measurement_report[0].ContentSequence
    if comment:
        root.append(hd.sr.TextContentItem(
            name=Code(*_COMMENT), value=comment,
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    if isinstance(session.get("reader"), Mapping):
        root.append(_text("reader-recorded", "yes"))
    root.append(_text("session-header", json.dumps(header)))
    if extra:
        root.append(_text("session-extra", json.dumps(extra)))

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
    scheme.CodingSchemeVersion = "1"
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


def _concept(item) -> tuple[str, str]:
    seq = item.get("ConceptNameCodeSequence")
    if not seq:
        return ("", "")
    code = seq[0]
    value = code.get("CodeValue") or code.get("LongCodeValue") or code.get("URNCodeValue") or ""
    return (str(value), str(code.get("CodingSchemeDesignator", "")))


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
            elif concept[1] == PRIVATE_SCHEME:
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
            ref = item.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            out["scoord"] = (str(item.GraphicType),
                             np.asarray(item.GraphicData, dtype=float).reshape(-1, 2),
                             str(ref))
    return out


def _json(texts: Mapping[str, str], key: str, path: Path, default: Any = None) -> Any:
    if key not in texts:
        return default
    try:
        return json.loads(texts[key])
    except json.JSONDecodeError:
        raise InputFileError(path, f"corrupt SR: item {key!r} is not valid JSON") from None


def read_sr(path: str | Path) -> SrContent:
    """Read an SR written by :func:`write_sr` back into a session dict.

    Returns
    -------
    SrContent
        The session (``format``, ``levels``, ``criteria``, ``flexion``,
        ``extension`` with calibration, image reference, landmarks, placement and
        landmark SDs, and ``results.segments``), equal to the one written;
        ``.identity`` holds the patient and study of the SR.

    Raises
    ------
    InputFileError
        Not a DICOM file, not an SR of this project, or a corrupt content tree.
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


def _decode(ds, path: Path) -> SrContent:
    root_texts: dict[str, str] = {}
    groups = []
    reader = {"name": "", "comment": ""}
    for item in ds.ContentSequence:
        concept = _concept(item)
        if item.ValueType == "TEXT" and concept[1] == PRIVATE_SCHEME:
            root_texts[concept[0]] = str(item.TextValue)
        elif item.ValueType == "TEXT" and concept == _COMMENT[:2]:
            reader["comment"] = str(item.TextValue)
        elif item.ValueType == "PNAME" and concept == _PERSON_OBSERVER_NAME:
            name = str(item.PersonName)
            reader["name"] = name[:-1] if name.endswith("^") and name.count("^") == 1 else name
        elif item.ValueType == "CONTAINER" and concept == ("126010", "DCM"):
            groups = [g for g in item.get("ContentSequence", [])
                      if _concept(g) == _MEASUREMENT_GROUP]
    if "session-header" not in root_texts:
        raise InputFileError(path, "not a lumbar-instability SR (no session header)")
    header = _json(root_texts, "session-header", path)
    session: dict[str, Any] = dict(header)
    extra = _json(root_texts, "session-extra", path, {})
    results_extra = extra.pop("results", None)
    session.update(extra)
    if root_texts.get("reader-recorded") == "yes":
        session["reader"] = reader
    levels = list(session.get("levels") or [])

    parsed = [_parse_group(g) for g in groups]
    rows: list[dict[str, Any]] = []
    coded: dict[str, str] = {}
    for group in parsed:
        tracking = group["tracking"] or ""
        texts = group["texts"]
        if tracking.startswith("film "):
            view = tracking[5:]
            record = session.setdefault(view, {})
            spacing_v = group["nums"].get((_VERTICAL_SPACING[0], "DCM"))
            spacing_h = group["nums"].get((_HORIZONTAL_SPACING[0], "DCM"))
            source = group["codes"].get(("calibration-source", PRIVATE_SCHEME), "uncalibrated")
            film = {
                "pixel_spacing_mm": None if spacing_v is None else [spacing_v, spacing_h],
                "calibration_source": source,
                "calibration_detail": texts.get("calibration-detail", ""),
            }
            line = [group["nums"].get((f"calibration-line-{a}", PRIVATE_SCHEME))
                    for a in ("x0", "y0", "x1", "y1")]
            length = group["nums"].get((_CALIBRATION_OBJECT_SIZE[0], "DCM"))
            if all(v is not None for v in line) and length is not None:
                film["manual_calibration"] = {"p0": line[:2], "p1": line[2:], "length_mm": length}
            image = {"sop_instance_uid": group["images"][0] if group["images"] else None,
                     "series_instance_uid": group["uids"].get(_SERIES_UID[:2]),
                     "study_instance_uid": group["uids"].get(_STUDY_UID[:2]),
                     "sha256": texts.get("image-sha256")}
            film["image"] = {k: v for k, v in image.items() if v is not None}
            film.update(_json(texts, "film-extra", path, {}))
            for key, value in film.items():
                record.setdefault(key, value)
        elif tracking.startswith("segment "):
            rows.append(_decode_row(group, path))
            finding = group["codes"].get(_FINDING)
            if finding is not None:
                coded[str(rows[-1].get("segment", tracking[8:]))] = finding
    for group in parsed:
        tracking = group["tracking"] or ""
        view, _, level = tracking.partition(" ")
        if view not in VIEWS or not level:
            continue
        level = group["texts"].get("level", level)
        record = session.setdefault(view, {})
        marks = record.setdefault("landmarks", {})
        placement = record.setdefault("placement", {})
        sds = record.setdefault("landmark_sd_mm", {})
        for corner in CORNERS:
            key_x = (f"{corner}-x", PRIVATE_SCHEME)
            if key_x not in group["nums"]:
                continue
            key_y = (f"{corner}-y", PRIVATE_SCHEME)
            marks.setdefault(level, {})[corner] = [group["nums"][key_x], group["nums"][key_y]]
            if key_x in group["methods"]:
                placement.setdefault(level, {})[corner] = group["methods"][key_x]
            key_sd = (f"{corner}-sd", PRIVATE_SCHEME)
            if key_sd in group["nums"]:
                sds.setdefault(level, {})[corner] = group["nums"][key_sd]
        if group["scoord"] is not None:
            _check_scoord(group, marks.get(level, {}), path, tracking)
    for view in VIEWS:
        if view in session:
            for key in ("landmarks", "placement", "landmark_sd_mm"):
                session[view].setdefault(key, {})
    if rows or results_extra is not None:
        session["results"] = {**(results_extra or {}), "segments": rows}
    # Keep the order of levels of the session in the landmarks dicts.
    for view in VIEWS:
        if view in session:
            for key in ("landmarks", "placement", "landmark_sd_mm"):
                d = session[view].get(key) or {}
                session[view][key] = {lv: d[lv] for lv in levels if lv in d} | {
                    lv: v for lv, v in d.items() if lv not in levels}
    load_session_dict(session, path)
    content = SrContent(session)
    content.coded_findings = coded
    content.identity = {
        "patient_id": str(ds.get("PatientID", "")),
        "patient_name": str(ds.get("PatientName", "")),
        "study_instance_uid": str(ds.get("StudyInstanceUID", "")),
        "study_date": str(ds.get("StudyDate", "")),
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
        "content_date": str(ds.get("ContentDate", "")),
    }
    return content


def _decode_row(group: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """One result row from a segment group (inverse of :func:`_segment_group`)."""
    texts = group["texts"]
    tracking = group["tracking"]
    meta = _json(texts, "segment-columns", path)
    nums = {c[0]: v for c, v in group["nums"].items() if c[1] == PRIVATE_SCHEME}
    flags = {c[0]: v for c, v in group["codes"].items() if c[1] == PRIVATE_SCHEME}

    def cell(key: str) -> Any:
        if key in meta["null"]:
            return None
        if key in meta["nan"]:
            return float("nan")
        if key in meta["json"]:
            return _json(texts, key, path)
        if key in meta.get("bool", ()):
            if flags.get(key) not in (_YES[0], _NO[0]):
                raise InputFileError(path, f"corrupt SR: {tracking!r} lacks {key!r}")
            return flags[key] == _YES[0]
        if key in nums:
            return int(nums[key]) if key in meta["int"] else nums[key]
        if key in texts:
            return texts[key]
        raise InputFileError(path, f"corrupt SR: {tracking!r} lacks {key!r}")

    row: dict[str, Any] = {}
    for key in meta["columns"]:
        skeleton = meta["skeleton"].get(key)
        if isinstance(skeleton, list):
            row[key] = [cell(p) for p in skeleton]
        elif isinstance(skeleton, dict):
            row[key] = {k: cell(p) for k, p in skeleton.items()}
        else:
            row[key] = cell(key)
    return row


def _check_scoord(group: Mapping[str, Any], corners: Mapping[str, Any], path: Path,
                  tracking: str) -> None:
    """The float32 SCOORD must show the exact corners (within float32 rounding)."""
    _, data, _ = group["scoord"]
    present = [c for c in CORNERS if c in corners]
    exact = np.array([corners[c] for c in present], dtype=float) + 0.5
    shown = data[: len(present)]
    if shown.shape != exact.shape or not np.allclose(shown, exact, rtol=1e-6, atol=1e-3):
        raise InputFileError(path, f"corrupt SR: the outline of {tracking!r} disagrees with "
                             "its corner values")


def report_from_sr(path: str | Path, **kwargs: Any) -> ReportData:
    """Read an SR and build the :class:`ReportData` of its session (images are
    looked for next to the SR and in ``search_dirs``)."""
    session = read_sr(path)
    return report_from_session(dict(session), path, **kwargs)
