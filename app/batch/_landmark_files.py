"""Find and read the landmarks that already exist for a study.

Sources, first match wins:

1. ``--landmarks DIR``: any ``*.json`` (landmarks format or session file) under
   DIR whose ``flexion.image``/``extension.image`` name the study's films (by
   SOP Instance UID), else a file named ``<StudyInstanceUID>.json``;
2. a session file next to the films (same matching);
3. a DICOM SR of the study next to the films (read with ``app.report_sr`` when
   it can read landmarks back).

Otherwise the landmarks are detected.  The JSON keys are those of
``docs/landmarks-format.md`` / the session file (``docs/architecture.md``),
parsed with :mod:`app.landmarks_io`.  The films' own calibration (DICOM) is
used, except that a manual calibration stored in the file is honoured.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GivenLandmarks", "LandmarkIndex", "read_given_landmarks"]

CORNERS = ("AS", "PS", "PI", "AI")
DEFAULT_LEVELS = ("L1", "L2", "L3", "L4", "L5", "S1")
ROLES = ("flexion", "extension")
#: ``format`` values of files that carry landmarks (an absent ``format`` is accepted).
LANDMARK_FORMATS = ("lumbar-instability-session", "lumbar-instability-landmarks")


class LandmarkIndex:
    """Which JSON file holds the landmarks of which films and studies."""

    def __init__(self) -> None:
        self.by_sop: dict[tuple[str, str], tuple[str, str]] = {}
        self.by_study: dict[str, tuple[str, str]] = {}
        self.sr_by_study: dict[str, str] = {}

    def add_json(self, path: Path, origin: str) -> None:
        """Index one JSON file (silently skipped when it is not a landmarks file)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return
        if not isinstance(data, dict) or not all(isinstance(data.get(r), dict) for r in ROLES):
            return
        if data.get("format", LANDMARK_FORMATS[0]) not in LANDMARK_FORMATS:
            return  # e.g. a phantom's truth.json: not landmarks placed for this study
        images = [data[r].get("image") or {} for r in ROLES]
        sops = tuple(str(i.get("sop_instance_uid", "")) if isinstance(i, dict) else ""
                     for i in images)
        entry = (str(path), origin)
        if all(sops):
            # A file naming its films is used for exactly those films in that role
            # order, never for another pair of the same study.
            self.by_sop.setdefault(sops, entry)  # type: ignore[arg-type]
            return
        studies = {str(i.get("study_instance_uid", "")) for i in images if isinstance(i, dict)}
        studies.discard("")
        for study in studies:
            self.by_study.setdefault(study, entry)
        self.by_study.setdefault(path.stem, entry)

    def add_sr(self, path: Path, study_instance_uid: str) -> None:
        """Index a DICOM SR of a study."""
        if study_instance_uid:
            self.sr_by_study.setdefault(study_instance_uid, str(path))

    def lookup(self, flexion_sop: str, extension_sop: str, study: str) -> tuple[str, str]:
        """``(path, origin)`` of the landmarks of a film pair, or ``("", "")``."""
        found = self.by_sop.get((flexion_sop, extension_sop)) or self.by_study.get(study)
        if found:
            return found
        if study in self.sr_by_study:
            return self.sr_by_study[study], "sr"
        return "", ""

    @classmethod
    def build(
        cls,
        landmarks_dir: Path | None,
        sibling_json: Iterable[Path],
        structured_reports: Iterable[tuple[Path, str]],
    ) -> LandmarkIndex:
        """Index ``--landmarks DIR`` first (it wins), then files next to the films."""
        index = cls()
        if landmarks_dir is not None:
            for path in sorted(landmarks_dir.rglob("*.json")):
                index.add_json(path, "landmarks-dir")
        for path in sibling_json:
            index.add_json(path, "session")
        for path, study in structured_reports:
            index.add_sr(path, study)
        return index


@dataclass
class GivenLandmarks:
    """Landmarks read from a file, per film.

    Attributes
    ----------
    levels : tuple of str
    landmarks : dict of str to ndarray of shape (V, 4, 2)
        Pixel coordinates per role, NaN for absent corners.
    sd_mm : dict of str to ndarray of shape (V, 4)
        Positional SD per corner in mm; NaN where the file gives none.
    placement : dict of str to list of str
        Per role, the placement methods found (for the ``landmark_method`` column).
    corner_placement : dict of str to list
        Per role, ``(V, 4)`` placement method of each corner ('' when unknown).
    sop_instance_uids : dict of str to str
        Per role, the SOP Instance UID of the film the file names ('' if none).
    calibration : dict of str to (spacing, source, detail) or None
        A manual calibration stored in a session, which overrides the film's.
    clicks : dict of str to dict of str to (x, y)
        Per role, the film's ``clicks`` key (one point inside each clicked
        body, ``docs/one-click-landmarks.md``), used when the film has no corners.
    """

    levels: tuple[str, ...]
    landmarks: dict[str, np.ndarray]
    sd_mm: dict[str, np.ndarray]
    placement: dict[str, list[str]]
    corner_placement: dict[str, list]
    sop_instance_uids: dict[str, str]
    calibration: dict[str, tuple[tuple[float, float], str, str] | None]
    clicks: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)


def _point(value: Any) -> tuple[float, float]:
    if isinstance(value, list | tuple) and len(value) == 2 and all(
        isinstance(v, int | float) and v is not None for v in value
    ):
        return float(value[0]), float(value[1])
    return math.nan, math.nan


def read_given_landmarks(path: str | Path, origin: str) -> GivenLandmarks:
    """Read the landmarks of both films from a landmarks/session JSON or an SR.

    Raises
    ------
    ValueError
        With a one-line reason when the file cannot be used.
    """
    name = Path(path).name
    if origin == "sr":
        try:
            from app.report_sr import read_sr
        except ImportError:
            raise ValueError("reading landmarks from a DICOM SR is not available") from None
        from app.errors import InputFileError

        try:
            data = dict(read_sr(path))
        except InputFileError as exc:
            raise ValueError(f"{name}: {exc.reason}") from None
    else:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"cannot read {name}: {type(exc).__name__}") from None
    return landmarks_from_dict(data, name)


def landmarks_from_dict(data: dict[str, Any], name: str = "<session>") -> GivenLandmarks:
    """Landmarks, SDs, placement and manual calibration of both films of a session dict.

    Parsed and checked with :func:`app.landmarks_io.parse_landmarks` (the
    landmarks format); corner SDs are :meth:`FilmLandmarks.effective_sd_mm`
    (stated SD, else the placement method's default, else ``manual``).

    Raises
    ------
    ValueError
        The one-line reason (key and problem) when the file cannot be used.
    """
    from app.errors import InputFileError
    from app.landmarks_io import parse_landmarks
    from measure import CalibrationSource

    has_clicks = any(isinstance(data.get(r), dict) and data[r].get("clicks") for r in ROLES)
    if has_clicks and "levels" not in data:
        data = {**data, "levels": list(DEFAULT_LEVELS)}  # clicks only: the levels they name
    try:
        study = parse_landmarks(data, name)
        study.check_measurable()
    except InputFileError as exc:
        raise ValueError(f"{name}: {exc.reason}") from None
    levels = tuple(study.levels)
    landmarks, sds, placements, calibrations, corner_placement, sops = {}, {}, {}, {}, {}, {}
    for role in ROLES:
        film = study.film(role)
        landmarks[role] = np.asarray(film.corners, dtype=float)
        sds[role] = np.asarray(film.effective_sd_mm(), dtype=float)
        placement = (np.asarray(film.placement, dtype=object) if film.placement is not None
                     else np.full((len(levels), 4), "", dtype=object))
        corner_placement[role] = [[str(m) for m in body] for body in placement.tolist()]
        placements[role] = sorted({m for body in corner_placement[role] for m in body if m})
        calibration = film.calibration
        calibrations[role] = None
        if calibration.source is CalibrationSource.MANUAL:
            calibrations[role] = (calibration.spacing_mm, "manual",
                                  calibration.detail or "manual calibration in the landmarks file")
        image = data[role].get("image") if isinstance(data.get(role), dict) else None
        sops[role] = str(image.get("sop_instance_uid") or "") if isinstance(image, dict) else ""
    clicks: dict[str, dict[str, tuple[float, float]]] = {}
    for role in ROLES:
        raw = data[role].get("clicks") if isinstance(data.get(role), dict) else None
        if isinstance(raw, dict):
            points = {str(level): _point(xy) for level, xy in raw.items()}
            clicks[role] = {k: v for k, v in points.items() if np.isfinite(v).all()}
    return GivenLandmarks(levels, landmarks, sds, placements, corner_placement, sops,
                          calibrations, clicks)
