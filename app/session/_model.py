"""Value objects of the session: which image, its calibration, its corners.

Shared by every part of :mod:`app.session`; no behaviour beyond copying and
the calibration a drawn line implies.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.errors import UserError
from measure import Calibration, CalibrationSource

FORMAT = "lumbar-instability-session"
FORMAT_VERSION = 1
ROLES: tuple[str, str] = ("flexion", "extension")
_LEVEL_SEQUENCE = ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "L6")


# --------------------------------------------------------------------------- value objects


@dataclass(frozen=True)
class ImageRef:
    """Which image a film's landmarks belong to.

    Parameters
    ----------
    path : str
        Path of the DICOM file (as given, or relative to the session file once saved).
    sop_instance_uid, series_instance_uid, study_instance_uid : str
        DICOM identity of the image ("" when unknown).
    sha256 : str
        Hex digest of the file content ("" when unknown).
    """

    path: str = ""
    sop_instance_uid: str = ""
    series_instance_uid: str = ""
    study_instance_uid: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class ManualCalibration:
    """A line drawn over an object of known length.

    Parameters
    ----------
    p0, p1 : tuple of float
        End points ``(x, y)`` in pixels (column, row; origin at the centre of the
        top-left pixel).
    length_mm : float
        The object's true length, mm.
    """

    p0: tuple[float, float]
    p1: tuple[float, float]
    length_mm: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.length_mm) and self.length_mm > 0):
            raise UserError(f"calibration length must be a positive number of mm, got {self.length_mm!r}")
        if math.dist(self.p0, self.p1) < 1.0:
            raise UserError("calibration line is shorter than one pixel: draw it over the whole object")

    def calibration(self, reference: Calibration | None = None) -> Calibration:
        """The film's calibration implied by the line (source ``manual``).

        The ratio of row to column spacing of ``reference`` is kept (square pixels
        when it has none), and the scale is chosen so that the line measures
        ``length_mm``: ``sqrt((dx * col)^2 + (dy * row)^2) = length_mm``.
        """
        ratio = 1.0
        if reference is not None and reference.is_calibrated:
            ratio = float(reference.row_spacing_mm) / float(reference.column_spacing_mm)
        dx = self.p1[0] - self.p0[0]
        dy = self.p1[1] - self.p0[1]
        column = self.length_mm / math.hypot(dx, dy * ratio)
        return Calibration(
            column * ratio,
            column,
            CalibrationSource.MANUAL,
            f"line of {math.hypot(dx, dy):.1f} px drawn over {self.length_mm:g} mm",
        )

    def to_json(self) -> dict[str, Any]:
        return {"p0": list(self.p0), "p1": list(self.p1), "length_mm": self.length_mm}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ManualCalibration:
        return cls(
            tuple(float(v) for v in data["p0"]),  # type: ignore[arg-type]
            tuple(float(v) for v in data["p1"]),  # type: ignore[arg-type]
            float(data["length_mm"]),
        )


@dataclass
class FilmState:
    """One film of the session and everything placed on it.

    Parameters
    ----------
    film : object or None
        The loaded image (:class:`app.dicom_io.Film`), None when the session was
        opened without its images.
    image : ImageRef
        Identity of the image.
    landmarks : ndarray of shape (V, 4, 2)
        Corners ``AS, PS, PI, AI`` of each body in pixels; NaN where absent.
    placement : ndarray of shape (V, 4), dtype object
        How each corner was placed (``measure.PlacementMethod`` value) or None.
    dicom_calibration : Calibration
        Calibration read from the DICOM header.
    manual_calibration : ManualCalibration or None
        The user's line, which then overrides the DICOM calibration.
    landmark_sd_mm : ndarray of shape (V, 4)
        Positional standard deviation of each corner, mm (NaN: the default of
        its placement method).
    annotations : tuple of app.annotations.Annotation
        The reader's rulers and angles on this film (immutable: shared by copies).
    image_size : tuple of (int, int) or None
        ``(rows, columns)`` the session file stated, for the field-of-view check
        of :func:`app.safety.implausible_spacing` when the film is not open.
    """

    film: Any
    image: ImageRef
    landmarks: np.ndarray
    placement: np.ndarray
    dicom_calibration: Calibration
    manual_calibration: ManualCalibration | None = None
    landmark_sd_mm: np.ndarray = field(default_factory=lambda: np.empty((0, 4)))
    annotations: tuple[Any, ...] = ()
    image_size: tuple[int, int] | None = None

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """``(rows, columns)`` of the open film, else the size the session file stated."""
        film = self.film
        if film is not None and hasattr(film, "rows") and hasattr(film, "columns"):
            return (int(film.rows), int(film.columns))
        return self.image_size

    @property
    def calibration(self) -> Calibration:
        """The calibration in force: manual when drawn, else the DICOM's."""
        if self.manual_calibration is not None:
            return self.manual_calibration.calibration(self.dicom_calibration)
        return self.dicom_calibration

    def copy(self) -> FilmState:
        return dataclasses.replace(
            self,
            landmarks=self.landmarks.copy(),
            placement=self.placement.copy(),
            landmark_sd_mm=self.landmark_sd_mm.copy(),
        )


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role: must be 'flexion' or 'extension', got {role!r}")
    return role


def _empty_landmarks(n_levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.full((n_levels, 4, 2), np.nan),
        np.full((n_levels, 4), None, dtype=object),
        np.full((n_levels, 4), np.nan),
    )


def _same_landmarks(a: FilmState, b: FilmState) -> bool:
    return bool(
        np.array_equal(a.landmarks, b.landmarks, equal_nan=True)
        and np.array_equal(a.placement, b.placement)
    )

