"""The codes of the lumbar-instability DICOM SR (``app.report_sr``), in one table.

Standard codes (DCM: DICOM PS3.16, SCT: SNOMED CT, UCUM units) are used where
one exists, with the code meaning exactly as PS3.16 gives it; the private
scheme :data:`PRIVATE_SCHEME` only where none exists.  ``docs/reports.md``
lists every code with its meaning and where it appears in the content tree.

Pure data (no highdicom, no pydicom): codes are ``(value, scheme, meaning)``
triples.
"""

from __future__ import annotations

from app.report_data import CORNER_NAMES, CORNERS

__all__ = [
    "CODE_MEANING_MAX",
    "PRIVATE",
    "PRIVATE_SCHEME",
    "PRIVATE_SCHEME_NAME",
    "concept_key",
]

PRIVATE_SCHEME = "99LUMBINST"
"""Coding scheme designator of the project's private codes (PS3.3 8.2: "99" prefix)."""

PRIVATE_SCHEME_NAME = "lumbar-instability private codes"

CODE_MEANING_MAX = 64
"""Code Meaning is LO: at most 64 characters."""

# --------------------------------------------------------------------------- standard codes

TRACKING_IDENTIFIER = ("112039", "DCM", "Tracking Identifier")
MEASUREMENT_METHOD = ("370129005", "SCT", "Measurement Method")
FINDING = ("121071", "DCM", "Finding")
FINDING_SITE = ("363698007", "SCT", "Finding Site")
MEASUREMENT_GROUP = ("125007", "DCM", "Measurement Group")
IMAGING_MEASUREMENTS = ("126010", "DCM", "Imaging Measurements")
ANATOMIC_IDENTIFIER = ("112050", "DCM", "Anatomic Identifier")
VERTICAL_SPACING = ("111066", "DCM", "Vertical Pixel Spacing")
HORIZONTAL_SPACING = ("111026", "DCM", "Horizontal Pixel Spacing")
CALIBRATION_OBJECT_SIZE = ("122423", "DCM", "Calibration Object Size")
CALIBRATION_METHOD = ("122422", "DCM", "Calibration Method")
THRESHOLD_VALUE = ("122411", "DCM", "Threshold Value")
STANDARD_DEVIATION = ("386136009", "SCT", "Standard Deviation")
ANGLE = ("1483009", "SCT", "Angle")
LENGTH = ("410668003", "SCT", "Length")
PROCEDURE = ("168537006", "SCT", "Plain radiography")
SERIES_UID = ("112002", "DCM", "Series Instance UID")
STUDY_UID = ("110180", "DCM", "Study Instance UID")
PERSON_OBSERVER_NAME = ("121008", "DCM", "Person Observer Name")
COMMENT = ("121106", "DCM", "Comment")
ALGORITHM_NAME = ("111001", "DCM", "Algorithm Name")
ALGORITHM_VERSION = ("111003", "DCM", "Algorithm Version")
YES = ("373066001", "SCT", "Yes")
NO = ("373067005", "SCT", "No")

MM = ("mm", "UCUM", "mm")
PERCENT = ("%", "UCUM", "%")
DEG = ("deg", "UCUM", "deg")
PIXELS = ("{pixels}", "UCUM", "pixels")
RATIO = ("{ratio}", "UCUM", "ratio")
NO_UNITS = ("1", "UCUM", "no units")

VIEW_SCT = {"flexion": ("9964006", "SCT", "Flexion"), "extension": ("24154002", "SCT", "Extension")}
"""The film's joint position during acquisition (CID 92)."""

VERTEBRA_SCT = {
    "T12": ("23215003", "SCT", "T12 vertebra"),
    "L1": ("66794005", "SCT", "L1 vertebra"),
    "L2": ("14293000", "SCT", "L2 vertebra"),
    "L3": ("36470004", "SCT", "L3 vertebra"),
    "L4": ("11994002", "SCT", "L4 vertebra"),
    "L5": ("49668003", "SCT", "L5 vertebra"),
    "S1": ("54735007", "SCT", "Sacrum"),
}
DISC_SCT = {
    "T12-L1": ("76206002", "SCT", "T12/L1 disc"),
    "L1-L2": ("80064006", "SCT", "L1/L2 disc"),
    "L2-L3": ("67459009", "SCT", "L2/L3 disc"),
    "L3-L4": ("62551000", "SCT", "L3/L4 disc"),
    "L4-L5": ("84020006", "SCT", "L4/L5 disc"),
    "L5-S1": ("715056000", "SCT", "L5/S1 disc"),
}

# --------------------------------------------------------------------------- private codes

PRIVATE: dict[str, str] = {
    # film group
    "view": "Radiographic view",
    "calibration-detail": "Calibration detail",
    "image-sha256": "SHA-256 of the image file as measured",
    "image-rows": "Image rows (pixels)",
    "image-columns": "Image columns (pixels)",
    "header-vertical-spacing": "Pixel spacing from the DICOM header, vertical",
    "header-horizontal-spacing": "Pixel spacing from the DICOM header, horizontal",
    "header-calibration-method": "Calibration method of the DICOM header",
    "header-calibration-detail": "Calibration detail of the DICOM header",
    "calibration-line-x0": "Manual calibration line, first end x (pixels)",
    "calibration-line-y0": "Manual calibration line, first end y (pixels)",
    "calibration-line-x1": "Manual calibration line, second end x (pixels)",
    "calibration-line-y1": "Manual calibration line, second end y (pixels)",
    # calibration sources (measurement.md section 5)
    "calibrated": "Calibrated pixel spacing (patient plane)",
    "magnification-corrected": "Imager pixel spacing corrected for magnification",
    "detector": "Imager pixel spacing (detector plane, not corrected)",
    "uncalibrated": "Uncalibrated",
    "manual": "Placed or calibrated manually",
    # placement methods
    "refined": "Placed manually, refined automatically",
    "tracked": "Tracked from the other film",
    "detected": "Detected automatically",
    "edited": "Edited by the user",
    # segment groups
    "film_translation_mm": "Sagittal translation on one film",
    "film_translation_pct": "Sagittal translation on one film, % of endplate depth",
    "translation_mm": "Translation between the films (flexion - extension)",
    "translation_pct": "Translation between the films, % of endplate depth",
    "angulation_deg": "Angulation between the films (extension - flexion)",
    "ci95-lower": "Lower limit of the 95 % interval",
    "ci95-upper": "Upper limit of the 95 % interval",
    "measured": "Segment measured on both films",
    "translation_unstable": "Translation beyond its threshold",
    "angulation_unstable": "Angulation beyond its threshold",
    "above-threshold": "Value beyond a threshold",
    "interval-reaches-threshold": "95 % interval reaches a threshold",
    "translation_assessed": "Translation criterion assessed",
    "criterion": "Criterion that fired",
    "criterion-translation": "Translation",
    "criterion-angulation": "Angulation",
    "criterion-both": "Translation and angulation",
    "criterion-none": "None",
    "criterion-not-measured": "Not measured",
    "translation_verdict": "Verdict of the translation",
    "angulation_verdict": "Verdict of the angulation",
    "rotation_centre/x": "Centre of rotation along the endplate (fraction)",
    "rotation_centre/y": "Centre of rotation across the endplate (fraction)",
    "rotation_centre_note": "Why the centre of rotation is not given",
    "depth_ratio": "Endplate depth ratio between the films",
    "finding": "Finding category",
    "finding-unstable": "Unstable",
    "finding-borderline": "Borderline",
    "finding-stable": "Stable",
    "finding-not-measured": "Not measured",
    "calibration_source": "Calibration source of the films",
    "translation_mm_note": "Why the translation in mm is not given",
    "needs_review": "Level labels need review",
    "needs_review_reason": "Why the level labels need review",
    "upper": "Upper vertebra of the segment",
    "lower": "Lower vertebra of the segment",
    # the verdicts (measure.Verdict keys)
    "unstable": "Unstable (95 % interval wholly above a threshold)",
    "borderline-above": "Borderline, above threshold (95 % interval straddles it)",
    "borderline-below": "Borderline, below thresholds (95 % interval reaches one)",
    "within": "Within thresholds (every 95 % interval within)",
    "not-assessed": "Not assessed (no criterion applicable)",
    "not-measured": "Not measured",
    # session level
    "criteria": "Instability criteria",
    "criteria-custom": "Custom instability criteria",
    "criteria-default": "Instability criteria: default (4 mm, 10 degrees)",
    "criteria-white-panjabi": "Instability criteria: White and Panjabi checklist",
    "criteria-name": "Name of the criteria",
    "criteria-source": "Source of the criteria",
    "threshold-of": "Quantity the threshold applies to",
    "level": "Vertebral level of the session, top to bottom",
    "labels-need-review": "Why the level labels need review",
    "safety-checked": "Safety checks of the films were run",
    "safety-warning": "Safety warning",
    "safety-acknowledged": "Safety warning acknowledged by the reader",
    "safety-message": "Safety warning message",
    # the safety checks (app.safety.SafetyCheck values)
    "same-instance": "Same image on both films (SOP Instance UID)",
    "same-pixels": "Identical pixel data on both films",
    "near-identical-pixels": "Near-identical pixel data on both films",
    "different-patient": "Films of different patients or studies",
    "same-view": "Both films the same view",
    "incomplete-decode": "Pixel data of a film not decoded completely",
    "no-motion": "Implausibly small motion at every level",
    "implausible-spacing": "Implausible pixel spacing",
}
PRIVATE.update(
    {f"{c}-{a}": f"{CORNER_NAMES[c].capitalize()} corner, {a} (pixels)" for c in CORNERS
     for a in ("x", "y")}
)
PRIVATE.update(
    {f"{c}-sd": f"{CORNER_NAMES[c].capitalize()} corner, positional SD" for c in CORNERS}
)


def concept_key(item) -> tuple[str, str]:
    """The (code value, coding scheme) of a content item's concept name.

    Parameters
    ----------
    item : pydicom.Dataset
        An SR content item.

    Returns
    -------
    (value, scheme) : tuple of str
        ``("", "")`` when the item has no concept name.
    """
    seq = item.get("ConceptNameCodeSequence")
    if not seq:
        return ("", "")
    code = seq[0]
    value = code.get("CodeValue") or code.get("LongCodeValue") or code.get("URNCodeValue") or ""
    return (str(value), str(code.get("CodingSchemeDesignator", "")))
