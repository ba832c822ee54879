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


#: The expected shape, named in every "not used" reason.
EXPECTED_FORMAT = ("expected a landmarks or session file: an object with flexion and extension, "
                   "each with landmarks {level: {corner: [x, y]}} (docs/landmarks-format.md)")
TRUTH_FORMAT = "lumbar-instability-phantom-truth"


class LandmarkIndex:
    """Which JSON file holds the landmarks of which films and studies.

    Every file of ``--landmarks DIR`` is accounted for: :attr:`files` maps its
    path to why it is not usable ("" when it was indexed), and :meth:`lookup`
    records which ones a study used, so a run can say "12 of 60 files used" and
    why the others were not.
    """

    def __init__(self) -> None:
        self.by_sop: dict[tuple[str, str], tuple[str, str]] = {}
        self.by_study: dict[str, tuple[str, str]] = {}
        self.by_folder: dict[str, tuple[str, str]] = {}
        self.sr_by_study: dict[str, str] = {}
        self.files: dict[str, str] = {}  # --landmarks files: path -> reason not usable ("" = indexed)
        self.used: set[str] = set()

    def add_json(self, path: Path, origin: str, folder: str | None = None) -> None:
        """Index one JSON file (a file that is not a landmarks file is noted, not raised).

        ``folder`` (files of ``--landmarks DIR`` only): the file's folder relative
        to DIR, under which a phantom's ``truth.json`` gives the landmarks of the
        study in the same folder of INPUT_DIR.
        """
        from app.errors import InputFileError
        from app.jsonfile import read_json

        reason = ""
        try:
            data = read_json(path)
        except InputFileError as exc:
            reason = f"not usable: {exc.reason}"
            data = None
        if data is not None and (
            not isinstance(data, dict) or not all(isinstance(data.get(r), dict) for r in ROLES)
        ):
            reason = f"not in the landmarks format: {EXPECTED_FORMAT}"
        elif data is not None and data.get("format", LANDMARK_FORMATS[0]) not in (
            *LANDMARK_FORMATS, TRUTH_FORMAT
        ):
            reason = (f"not in the landmarks format: format {str(data.get('format'))[:60]!r}; "
                      f"{EXPECTED_FORMAT}")
        if origin == "landmarks-dir":
            self.files[str(path)] = reason
        if reason:
            return
        entry = (str(path), origin)
        if data.get("format") == TRUTH_FORMAT:
            # A phantom's ground truth names no film: only an explicit --landmarks
            # folder laid out like INPUT_DIR applies it (never one found beside the
            # films, which would replace the detection being evaluated).
            if folder is not None:
                self.by_folder.setdefault(folder, entry)
            elif origin == "landmarks-dir":
                self.files[str(path)] = "phantom truth outside a folder matching INPUT_DIR"
            return
        images = [data[r].get("image") or {} for r in ROLES]
        sops = tuple(str(i.get("sop_instance_uid", "")) if isinstance(i, dict) else ""
                     for i in images)
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

    def lookup(self, flexion_sop: str, extension_sop: str, study: str,
               folder: str = "") -> tuple[str, str]:
        """``(path, origin)`` of the landmarks of a film pair, or ``("", "")``.

        ``folder``: the films' folder relative to INPUT_DIR (for truth files).
        """
        found = (self.by_sop.get((flexion_sop, extension_sop)) or self.by_study.get(study)
                 or self.by_folder.get(folder))
        if found:
            self.used.add(found[0])
            return found
        if study in self.sr_by_study:
            return self.sr_by_study[study], "sr"
        return "", ""

    def accounting(self) -> dict[str, Any]:
        """What became of the ``--landmarks`` files: counts and a reason per unused file.

        Returns
        -------
        dict
            ``{"read": n, "used": n, "ignored": n, "ignored_by_reason": {reason: n},
            "files": [{"path", "status", "reason"}]}`` (paths as indexed).
        """
        rows = []
        for path, reason in sorted(self.files.items()):
            if path in self.used:
                rows.append({"path": path, "status": "used", "reason": ""})
                continue
            reason = reason or ("matched no study: neither its films' SOP Instance UIDs, its "
                                "study UID nor its file name (<StudyInstanceUID>.json) are in "
                                "INPUT_DIR")
            rows.append({"path": path, "status": "ignored", "reason": reason})
        ignored = [r for r in rows if r["status"] == "ignored"]
        by_reason: dict[str, int] = {}
        for row in ignored:
            key = row["reason"].split(":", 1)[0]
            by_reason[key] = by_reason.get(key, 0) + 1
        return {"read": len(rows), "used": len(rows) - len(ignored), "ignored": len(ignored),
                "ignored_by_reason": by_reason, "files": rows}

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
                if path.name.startswith("."):
                    continue
                folder = path.parent.relative_to(landmarks_dir).as_posix()
                index.add_json(path, "landmarks-dir", folder)
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
        from app.errors import InputFileError
        from app.jsonfile import read_json

        try:
            data = read_json(path)
        except InputFileError as exc:
            raise ValueError(f"{name}: {exc.reason}") from None
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
