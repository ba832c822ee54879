"""Pixel spacing with its provenance: the calibration value object.

The object is built from plain numbers.  Reading it off a DICOM dataset is the
job of :mod:`app.dicom_io` (``calibration_from_dataset``), following
``docs/measurement.md`` §5.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = ["Calibration", "CalibrationSource"]


class CalibrationSource(enum.StrEnum):
    """Where a film's millimetres-per-pixel came from (measurement.md §5).

    The string values are the ones written to JSON, CSV and reports.
    """

    MANUAL = "manual"
    """The user drew a line over an object of known length (ball, ruler)."""

    CALIBRATED = "calibrated"
    """``PixelSpacing`` in the patient plane: calibration type FIDUCIAL or
    GEOMETRY, or a ``PixelSpacing`` that differs from ``ImagerPixelSpacing``."""

    MAGNIFICATION_CORRECTED = "magnification-corrected"
    """``ImagerPixelSpacing`` divided by ``EstimatedRadiographicMagnificationFactor``."""

    DETECTOR = "detector"
    """Spacing at the detector plane only; overstates patient distances by the
    geometric magnification (typically 1.1–1.4 for a lateral lumbar film)."""

    UNCALIBRATED = "uncalibrated"
    """No usable spacing: no millimetre value may be shown or exported."""

    @property
    def is_calibrated(self) -> bool:
        """True when millimetre values may be shown (every source but ``uncalibrated``)."""
        return self is not CalibrationSource.UNCALIBRATED

    @property
    def warning(self) -> str | None:
        """The caution a reader must see next to millimetre values, or None."""
        if self is CalibrationSource.DETECTOR:
            return (
                "spacing measured at the detector, not corrected for magnification: "
                "millimetre values overstate patient distances (typically by 10-40 %)"
            )
        if self is CalibrationSource.UNCALIBRATED:
            return "no usable pixel spacing: millimetre values are not available"
        return None


@dataclass(frozen=True, slots=True)
class Calibration:
    """Pixel spacing of one film, in millimetres, with where it came from.

    Parameters
    ----------
    row_spacing_mm : float or None
        Distance between the centres of adjacent rows (along ``y``), mm.
        None when uncalibrated.
    column_spacing_mm : float or None
        Distance between the centres of adjacent columns (along ``x``), mm.
        None when uncalibrated.
    source : CalibrationSource
        Provenance of the spacing.
    detail : str, optional
        Human-readable detail (e.g. which DICOM attributes were used).

    Notes
    -----
    The order (row, column) follows DICOM ``PixelSpacing``.  Coordinates in the
    project are (x, y) = (column, row), so ``x_mm = x * column_spacing_mm``.
    """

    row_spacing_mm: float | None
    column_spacing_mm: float | None
    source: CalibrationSource
    detail: str = ""

    def __post_init__(self) -> None:
        source = CalibrationSource(self.source)
        object.__setattr__(self, "source", source)
        if source is CalibrationSource.UNCALIBRATED:
            if self.row_spacing_mm is not None or self.column_spacing_mm is not None:
                raise ValueError("source: an uncalibrated film cannot carry a pixel spacing")
            return
        for name in ("row_spacing_mm", "column_spacing_mm"):
            value = getattr(self, name)
            if value is None or not math.isfinite(float(value)) or float(value) <= 0:
                raise ValueError(f"{name}: must be a finite positive number, got {value!r}")
            object.__setattr__(self, name, float(value))

    @classmethod
    def uncalibrated(cls, detail: str = "") -> Calibration:
        """A calibration that carries no spacing."""
        return cls(None, None, CalibrationSource.UNCALIBRATED, detail)

    @property
    def is_calibrated(self) -> bool:
        """True when millimetre values may be shown."""
        return self.source.is_calibrated

    @property
    def spacing_mm(self) -> tuple[float, float] | None:
        """``(row, column)`` spacing in mm, or None when uncalibrated."""
        if not self.is_calibrated:
            return None
        return (self.row_spacing_mm, self.column_spacing_mm)  # type: ignore[return-value]

    @property
    def warning(self) -> str | None:
        """The caution to show next to millimetre values, or None."""
        return self.source.warning
