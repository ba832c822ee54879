"""Pixel spacing of a DICOM film with its provenance (measurement.md §5).

The order of the decision is the clinical specification's, verbatim:

1. manual (set later by the user, not from the file);
2. PixelSpacingCalibrationType (0028,0A02) FIDUCIAL or GEOMETRY with
   PixelSpacing (0028,0030) -> ``calibrated``;
3. ImagerPixelSpacing (0018,1164) with EstimatedRadiographicMagnificationFactor
   (0018,1114) -> spacing / factor, ``magnification-corrected``;
4. PixelSpacing present and different from ImagerPixelSpacing -> ``calibrated``;
5. only ImagerPixelSpacing, or PixelSpacing equal to it -> ``detector``;
6. nothing usable -> ``uncalibrated`` (never 1 mm/pixel).

DICOM PS3.3 §10.7.1.3 defines PixelSpacing as measured in the patient and
ImagerPixelSpacing as measured at the front plane of the detector.

Values are read from the element's original text, so a garbled value (``"0.000"``,
``"-0.1"``, ``"abc"``, one value instead of two) is reported as it is in the
file and never raises: the attribute is ignored and named in the warning.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydicom.dataset import Dataset
from pydicom.tag import Tag

from measure import Calibration, CalibrationSource

__all__ = ["calibration_and_warning", "calibration_from_dataset"]

PIXEL_SPACING = Tag(0x0028, 0x0030)
IMAGER_PIXEL_SPACING = Tag(0x0018, 0x1164)
CALIBRATION_TYPE = Tag(0x0028, 0x0A02)
CALIBRATION_DESCRIPTION = Tag(0x0028, 0x0A04)
MAGNIFICATION_FACTOR = Tag(0x0018, 0x1114)

_NAMES = {
    PIXEL_SPACING: "PixelSpacing (0028,0030)",
    IMAGER_PIXEL_SPACING: "ImagerPixelSpacing (0018,1164)",
    CALIBRATION_TYPE: "PixelSpacingCalibrationType (0028,0A02)",
    MAGNIFICATION_FACTOR: "EstimatedRadiographicMagnificationFactor (0018,1114)",
}
_REL_TOL = 1e-6  # DS values compare equal when they agree to 6 significant digits


def raw_text(ds: Dataset, tag: Any) -> str | None:
    """The element's value as the text stored in the file, or None when absent.

    Works on raw (not yet converted) elements, so an invalid value never raises.
    """
    if tag not in ds:
        return None
    try:
        element = ds.get_item(tag)
    except Exception:  # pragma: no cover - pydicom failed to parse the element
        return ""
    value = element.value
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("latin-1")
    elif isinstance(value, str):
        text = value
    else:
        try:
            items = list(value)
        except TypeError:
            items = [value]
        text = "\\".join(str(getattr(v, "original_string", None) or v) for v in items)
    return text.strip(" \x00")


_NUMERIC_TEXT = re.compile(r"[0-9eE+\-. \\]*")
_CODE_TEXT = re.compile(r"[A-Z0-9_ ]*")


def _shown(text: str) -> str:
    """A numeric attribute's text as found, or a placeholder when it is not numeric text.

    A damaged length field can make a value swallow the attributes that follow
    it (a patient's name): only digits, signs, points and backslashes are quoted.
    """
    if not _NUMERIC_TEXT.fullmatch(text):
        return "[non-numeric text]"
    return text if len(text) <= 40 else text[:37] + "..."


#: Values outside these ranges are not a radiograph's (mm per pixel; magnification):
#: a spacing of 1e308 mm or a factor of 1e-300 would turn every distance into
#: nonsense (and a detector's image scale into zero pixels).
SPACING_RANGE_MM = (1e-3, 10.0)
FACTOR_RANGE = (0.1, 10.0)


def _positive_numbers(
    ds: Dataset, tag: Any, count: int, problems: list[str],
    plausible: tuple[float, float] = SPACING_RANGE_MM,
) -> tuple[float, ...] | None:
    """Parse ``count`` positive finite numbers; record why not in ``problems``."""
    text = raw_text(ds, tag)
    if text is None:
        return None
    name = _NAMES[tag]
    if text == "":
        problems.append(f"{name} is empty")
        return None
    parts = [p.strip() for p in text.split("\\")]
    shown = _shown(text)
    if len(parts) != count:
        problems.append(f"{name} '{shown}' ignored: {len(parts)} values, expected {count}")
        return None
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        problems.append(f"{name} '{shown}' ignored: not a number")
        return None
    if not all(math.isfinite(v) and v > 0 for v in values):
        problems.append(f"{name} '{shown}' ignored: not a positive number")
        return None
    low, high = plausible
    if not all(low <= v <= high for v in values):
        problems.append(f"{name} '{shown}' ignored: outside the plausible {low:g}-{high:g}")
        return None
    return values


def _fmt(values: tuple[float, ...]) -> str:
    return "\\".join(f"{v:g}" for v in values)


def calibration_and_warning(ds: Dataset) -> tuple[Calibration, str | None]:
    """The film's calibration and the caution that goes with it.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The film's dataset (pixel data not needed).

    Returns
    -------
    calibration : measure.Calibration
        Spacing ``(row, column)`` in mm with its source; ``detail`` names the
        attributes and values used, and any that were ignored.
    warning : str or None
        Ignored attributes and the source's own caution (detector plane,
        uncalibrated), joined with ``"; "``; None when there is nothing to say.
    """
    problems: list[str] = []
    pixel_spacing = _positive_numbers(ds, PIXEL_SPACING, 2, problems)
    imager_spacing = _positive_numbers(ds, IMAGER_PIXEL_SPACING, 2, problems)
    factor = _positive_numbers(ds, MAGNIFICATION_FACTOR, 1, problems, FACTOR_RANGE)
    calibration_type = (raw_text(ds, CALIBRATION_TYPE) or "").upper()

    notes: list[str] = []
    if factor is not None and not 1.0 <= factor[0] <= 2.0:
        notes.append(f"{_NAMES[MAGNIFICATION_FACTOR]} {factor[0]:g} is outside the usual 1.0-2.0")

    calibration = _decide(pixel_spacing, imager_spacing, factor, calibration_type, ds, problems)
    if problems:
        calibration = Calibration(
            calibration.row_spacing_mm,
            calibration.column_spacing_mm,
            calibration.source,
            f"{calibration.detail}; ignored: {'; '.join(problems)}",
        )
    if calibration.source is not CalibrationSource.MAGNIFICATION_CORRECTED:
        notes = []
    parts = problems + notes
    if calibration.warning:
        parts.append(calibration.warning)
    return calibration, ("; ".join(parts) or None)


def _decide(
    pixel_spacing: tuple[float, ...] | None,
    imager_spacing: tuple[float, ...] | None,
    factor: tuple[float, ...] | None,
    calibration_type: str,
    ds: Dataset,
    problems: list[str],
) -> Calibration:
    ps_name, ips_name = _NAMES[PIXEL_SPACING], _NAMES[IMAGER_PIXEL_SPACING]
    # 2. a calibrated PixelSpacing
    if calibration_type in ("FIDUCIAL", "GEOMETRY"):
        if pixel_spacing is not None:
            detail = (
                f"{ps_name} {_fmt(pixel_spacing)} mm with "
                f"{_NAMES[CALIBRATION_TYPE]} {calibration_type}"
            )
            description = raw_text(ds, CALIBRATION_DESCRIPTION)
            if description:
                detail += f" ({description[:64]!r})"  # free text: repr-quoted, redactable
            return Calibration(*pixel_spacing, CalibrationSource.CALIBRATED, detail)
        problems.append(f"{_NAMES[CALIBRATION_TYPE]} {calibration_type} without a usable {ps_name}")
    elif calibration_type:
        problems.append(
            f"{_NAMES[CALIBRATION_TYPE]} "
            f"'{calibration_type[:16] if _CODE_TEXT.fullmatch(calibration_type) else '[text]'}' "
            "is neither FIDUCIAL nor GEOMETRY"
        )
    # 3. detector spacing corrected for the estimated magnification
    if imager_spacing is not None and factor is not None:
        spacing = (imager_spacing[0] / factor[0], imager_spacing[1] / factor[0])
        detail = (
            f"{ips_name} {_fmt(imager_spacing)} mm / {_NAMES[MAGNIFICATION_FACTOR]} {factor[0]:g}"
        )
        return Calibration(*spacing, CalibrationSource.MAGNIFICATION_CORRECTED, detail)
    # 4. PixelSpacing that differs from the detector spacing: in the patient plane
    if pixel_spacing is not None:
        same = imager_spacing is not None and all(
            math.isclose(a, b, rel_tol=_REL_TOL)
            for a, b in zip(pixel_spacing, imager_spacing, strict=True)
        )
        if not same:
            if imager_spacing is None:
                detail = f"{ps_name} {_fmt(pixel_spacing)} mm (no {ips_name})"
            else:
                detail = (
                    f"{ps_name} {_fmt(pixel_spacing)} mm, different from "
                    f"{ips_name} {_fmt(imager_spacing)} mm"
                )
            return Calibration(*pixel_spacing, CalibrationSource.CALIBRATED, detail)
    # 5. detector plane only
    if imager_spacing is not None:
        detail = f"{ips_name} {_fmt(imager_spacing)} mm"
        if pixel_spacing is not None:
            detail += f" (equal to {ps_name})"
        return Calibration(*imager_spacing, CalibrationSource.DETECTOR, detail)
    # 6. nothing usable
    return Calibration.uncalibrated(f"no usable {ps_name} or {ips_name}")


def calibration_from_dataset(ds: Dataset) -> Calibration:
    """The pixel spacing of a film and where it came from (measurement.md §5).

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The film's dataset.

    Returns
    -------
    measure.Calibration
        ``(row, column)`` spacing in mm and its source (``calibrated``,
        ``magnification-corrected``, ``detector`` or ``uncalibrated``; ``manual``
        is the user's, never the file's).  ``detail`` names the attributes and
        values used and those ignored as unusable.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.ImagerPixelSpacing = [0.15, 0.15]
    >>> ds.EstimatedRadiographicMagnificationFactor = 1.25
    >>> cal = calibration_from_dataset(ds)
    >>> cal.source.value, round(cal.row_spacing_mm, 6)
    ('magnification-corrected', 0.12)
    """
    return calibration_and_warning(ds)[0]
