"""Plain records passed between the scan, the pairing, the workers and the tables.

Every record is a frozen dataclass of plain Python values (str, int, float,
tuples) so that it pickles cheaply to a process pool or a Dask worker and
round-trips through JSON for the resume journal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Failure", "FilmRecord", "StudyOutcome", "StudyPlan"]


@dataclass(frozen=True, slots=True)
class FilmRecord:
    """What the header of one film says, read without decoding its pixels.

    Parameters
    ----------
    path : str
        Path of the file relative to the input folder (POSIX separators).
    patient_id, study_instance_uid, series_instance_uid, sop_instance_uid : str
        DICOM identifiers; empty when absent.  Patient names, birth dates and
        accession numbers are never copied into a record.
    acquisition_datetime : str
        ``YYYYMMDDHHMMSS.FFFFFF`` as far as known (AcquisitionDateTime, else
        AcquisitionDate + AcquisitionTime, else ContentDate/Time); empty when
        unknown.  Sorts chronologically as a string.
    instance_number : int or None
        ``InstanceNumber`` (0020,0013), used after the acquisition time to order films.
    view : str
        ``flexion``, ``extension``, ``neutral`` or ``unknown`` (``app.dicom_io``).
    spacing_mm : tuple of float or None
        ``(row, column)`` pixel spacing in mm, None when uncalibrated.
    calibration_source : str
        A ``measure.CalibrationSource`` value.
    calibration_detail : str
        Which attributes the spacing came from.
    rows, columns : int
        Image size in pixels.
    study_date : str
        ``YYYYMMDD`` of StudyDate (0008,0020); empty when absent.
    """

    path: str
    patient_id: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    acquisition_datetime: str = ""
    instance_number: int | None = None
    view: str = "unknown"
    spacing_mm: tuple[float, float] | None = None
    calibration_source: str = "uncalibrated"
    calibration_detail: str = ""
    rows: int = 0
    columns: int = 0
    study_date: str = ""

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-ready dict."""
        out = dataclasses.asdict(self)
        out["spacing_mm"] = list(self.spacing_mm) if self.spacing_mm is not None else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FilmRecord:
        """Inverse of :meth:`to_json`."""
        data = dict(data)
        if data.get("spacing_mm") is not None:
            data["spacing_mm"] = tuple(float(v) for v in data["spacing_mm"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Failure:
    """One file or study that could not be processed, and why.

    Parameters
    ----------
    kind : str
        ``file``, ``directory`` or ``study``.
    path : str
        The file or folder (relative to the input folder), or the study's folder.
    reason : str
        ``"stage: what went wrong"``; the part before the first colon is the
        reason category counted in the summary (``read``, ``pairing``,
        ``landmarks``, ``decode``, ``measure``, ``report``, ``worker``...).
    patient_id, study_instance_uid : str
        Identifiers when known (anonymised with ``--anonymize``).
    files : tuple of str
        The files the reason names (relative paths), so that ``--anonymize``
        can replace them.
    """

    kind: str
    path: str
    reason: str
    patient_id: str = ""
    study_instance_uid: str = ""
    files: tuple[str, ...] = ()

    @property
    def category(self) -> str:
        """The stage before the first colon of ``reason``."""
        return self.reason.split(":", 1)[0].strip()

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-ready dict."""
        out = dataclasses.asdict(self)
        out["files"] = list(self.files)
        return out


@dataclass(frozen=True, slots=True)
class StudyPlan:
    """A study ready to be processed: its flexion and extension films.

    Parameters
    ----------
    key : str
        Stable identifier of this unit of work (hash of the two SOP Instance
        UIDs and of the landmark source); names the journal entry.
    patient_id, study_instance_uid : str
        Identifiers of the study.
    flexion, extension : FilmRecord
        The two films.
    pairing : str
        How the films were chosen: ``views`` (both recognised), ``views+order``
        (one recognised, the other by elimination), ``acquisition-order``
        (neither recognised: earlier = flexion) or ``manifest``.
    landmarks_path : str
        Absolute path of a landmarks/session JSON (or SR) that gives the
        landmarks, or empty to detect them.
    landmarks_origin : str
        ``session``, ``landmarks-dir``, ``sr`` or empty.
    warnings : tuple of str
        Warnings found while pairing (e.g. the ignored neutral film).
    """

    key: str
    patient_id: str
    study_instance_uid: str
    flexion: FilmRecord
    extension: FilmRecord
    pairing: str
    landmarks_path: str = ""
    landmarks_origin: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class StudyOutcome:
    """What a worker returns for one study: landmarks and calibration, or a failure.

    Landmarks are nested lists ``(V, 4, 2)`` in pixels (NaN as ``None`` in JSON)
    so the outcome is JSON-serialisable for the journal.

    Parameters
    ----------
    key : str
        The :attr:`StudyPlan.key`.
    ok : bool
        False when the study failed; ``reason`` then says why.
    reason : str
        ``"stage: what went wrong"`` for a failure.
    levels : list of str
        Body labels, top to bottom.
    flexion_landmarks, extension_landmarks : list
        ``(V, 4, 2)`` pixel coordinates, NaN for an absent corner.
    flexion_sd_mm, extension_sd_mm : list
        ``(V, 4)`` positional standard deviation of each corner, in mm
        (NaN: the default of the placement method).
    flexion_placement, extension_placement : list
        ``(V, 4)`` how each corner was placed (``measure.PlacementMethod``
        values, empty when unknown).
    flexion_calibration_detail, extension_calibration_detail : str
        Where the spacing came from (attributes, manual line).
    flexion_spacing_mm, extension_spacing_mm : list of float or None
        ``(row, column)`` mm per pixel, None when uncalibrated.
    flexion_calibration_source, extension_calibration_source : str
        ``measure.CalibrationSource`` values.
    landmark_method : str
        ``given:session``, ``given:landmarks-dir``, ``given:sr`` or ``detected``.
    flexion_fit_quality, extension_fit_quality : list of float
        ``(V,)`` per-body fit quality in [0, 1] (1 for given landmarks), NaN when unknown.
    warnings : list of str
        Warnings for every row of the study.
    safety : list of dict
        Safety warnings of the film pair (``app.safety.SafetyWarning.to_json``:
        same image twice, near-identical pixels, different patients, same view).
    needs_review : bool
        Detected landmarks whose labels or facing are unsure (or could not be
        cross-checked between the films): the study's verdicts are not counted
        until a reviewed session or landmarks file is given.
    review_reasons : list of str
        Why.
    decode_seconds, total_seconds : float
        Time spent decoding pixels and in the whole worker call.
    flexion_image_size, extension_image_size : list of int or None
        ``[rows, columns]`` of the decoded film (the field-of-view check of
        :func:`app.safety.implausible_spacing`); None in older journals.
    """

    key: str
    ok: bool
    reason: str = ""
    levels: list[str] = field(default_factory=list)
    flexion_landmarks: list = field(default_factory=list)
    extension_landmarks: list = field(default_factory=list)
    flexion_sd_mm: list = field(default_factory=list)
    extension_sd_mm: list = field(default_factory=list)
    flexion_placement: list = field(default_factory=list)
    extension_placement: list = field(default_factory=list)
    flexion_spacing_mm: list[float] | None = None
    extension_spacing_mm: list[float] | None = None
    flexion_calibration_source: str = "uncalibrated"
    extension_calibration_source: str = "uncalibrated"
    flexion_calibration_detail: str = ""
    extension_calibration_detail: str = ""
    landmark_method: str = ""
    flexion_fit_quality: list = field(default_factory=list)
    extension_fit_quality: list = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    safety: list = field(default_factory=list)
    needs_review: bool = False
    review_reasons: list[str] = field(default_factory=list)
    decode_seconds: float = 0.0
    total_seconds: float = 0.0
    flexion_image_size: list[int] | None = None
    extension_image_size: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        """The outcome as a JSON-ready dict (NaN written as null)."""
        return _nan_to_none(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudyOutcome:
        """Inverse of :meth:`to_json`; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    return value
