"""What every report shows, read once from a session file: the common ground of
the PDF, the DICOM SR, the CSV/JSON tables and the review mode.

A report is built from the *session JSON* (``docs/architecture.md``, "The
session file"): the levels, the criteria preset, per film the calibration, the
image reference (path, UIDs, SHA-256), the landmarks with how each corner was
placed, and the per-segment result rows exactly as last shown to the user.
Reports never re-measure silently: they print the saved rows, and they check
that the images are still the ones that were measured (SHA-256 of the file).

Examples
--------
>>> report = load_report("session.json")            # doctest: +SKIP
>>> report.films["flexion"].image_status            # doctest: +SKIP
'ok'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.dicom_io import file_sha256  # the project's one content hash (SHA-256 of the bytes)
from app.errors import InputFileError
from measure import Calibration, CalibrationSource, Verdict, verdict_of_record

__all__ = [
    "CORNERS",
    "CORNER_NAMES",
    "DEFAULT_LEVELS",
    "DISCLAIMER",
    "PLACEMENT_METHODS",
    "REFERENCES",
    "VIEWS",
    "FilmReport",
    "ReportData",
    "file_sha256",
    "find_images_by_uid",
    "finding_of",
    "landmark_array",
    "levels_of",
    "load_report",
    "load_session_dict",
    "read_session_file",
    "reader_fields",
    "report_from_session",
    "segment_columns",
    "verdict_of",
]

CORNERS: tuple[str, ...] = ("AS", "PS", "PI", "AI")
"""Corner codes in the project's order (``measure.CORNERS``)."""

CORNER_NAMES: dict[str, str] = {
    "AS": "anterior-superior",
    "PS": "posterior-superior",
    "PI": "posterior-inferior",
    "AI": "anterior-inferior",
}

DEFAULT_LEVELS: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5", "S1")

VIEWS: tuple[str, ...] = ("flexion", "extension")

PLACEMENT_METHODS: tuple[str, ...] = ("manual", "refined", "tracked", "detected", "edited")
"""How a corner was placed (``measure.PlacementMethod`` values)."""

DISCLAIMER = (
    "This report is a measurement aid, not a diagnosis. The measurements must be "
    "interpreted by a qualified clinician together with the images and the clinical findings."
)

REFERENCES: dict[str, str] = {
    "default": (
        "Dupuis PR, Yong-Hing K, Cassidy JD, Kirkaldy-Willis WH. Radiologic diagnosis of "
        "degenerative lumbar spinal instability. Spine 1985;10:262-276; thresholds used "
        "verbatim by Pearson AM et al., Spine 2011;36:572-580."
    ),
    "white-panjabi": (
        "White AA, Panjabi MM. Clinical Biomechanics of the Spine, 2nd ed. "
        "Philadelphia: Lippincott, 1990 (checklist for lumbar instability)."
    ),
    "translation": (
        "Translation: distance along the lower body's superior endplate from its "
        "posterior-superior corner to the foot of the perpendicular from the upper "
        "body's posterior-inferior corner (White & Panjabi 1990)."
    ),
}

CRITERIA_TEXT: dict[str, str] = {
    "default": "unstable when |translation| > 4 mm or |angulation| > 10 deg at any level",
    "white-panjabi": (
        "unstable when |translation| > 4.5 mm or > 15 % of endplate depth, or |angulation| "
        "> 15 deg at L1-L2, L2-L3, L3-L4, > 20 deg at L4-L5, > 25 deg at L5-S1"
    ),
}

_SESSION_FORMAT = "lumbar-instability-session"
_LANDMARKS_FORMAT = "lumbar-instability-landmarks"
_TRUTH_FORMAT = "lumbar-instability-phantom-truth"  # a landmarks file with the phantom's truth


def read_session_file(path: str | Path) -> dict[str, Any]:
    """Read a session JSON file into a dict, with a one-line error when it is not one.

    Raises
    ------
    InputFileError
        The file is missing, not JSON, or not a lumbar-instability session.
    """
    from app.jsonfile import read_json

    path = Path(path)
    session = read_json(path)
    return load_session_dict(session, source=path)


def load_session_dict(session: Any, source: str | Path = "<session>") -> dict[str, Any]:
    """Check the structure of a session dict; return it (not copied).

    Raises
    ------
    InputFileError
        A key the reports need is missing or has the wrong type.
    """
    from app.session_format import check_session_document

    check_session_document(session, source)  # every key strictly; the reports' own needs below
    fmt = session.get("format")
    if fmt not in (_SESSION_FORMAT, _LANDMARKS_FORMAT, _TRUTH_FORMAT, None):
        raise InputFileError(source, f"not a session file: format is {fmt!r}")
    levels = session.get("levels", None)
    if levels is None:
        levels = levels_of(session)
    if (
        not isinstance(levels, list)
        or len(levels) < 2
        or not all(isinstance(lv, str) and lv for lv in levels)
        or len(set(levels)) != len(levels)
    ):
        raise InputFileError(source, "'levels' must be a list of at least two distinct labels")
    for view in VIEWS:
        film = session.get(view)
        if film is None:
            continue
        if not isinstance(film, dict):
            raise InputFileError(source, f"'{view}' must be an object")
        marks = film.get("landmarks", {}) or {}
        if not isinstance(marks, dict):
            raise InputFileError(source, f"'{view}.landmarks' must be an object")
        for level, corners in marks.items():
            if level not in levels:
                raise InputFileError(source, f"'{view}.landmarks' has unknown level {level!r}")
            if not isinstance(corners, dict):
                raise InputFileError(source, f"'{view}.landmarks.{level}' must be an object")
            for corner, xy in corners.items():
                if corner not in CORNERS:
                    raise InputFileError(
                        source, f"'{view}.landmarks.{level}' has unknown corner {corner!r}"
                    )
                if xy is None:
                    continue
                if (
                    not isinstance(xy, list | tuple)
                    or len(xy) != 2
                    or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in xy)
                ):
                    raise InputFileError(
                        source, f"'{view}.landmarks.{level}.{corner}' must be [x, y] numbers"
                    )
        source_name = film.get("calibration_source", "uncalibrated")
        try:
            CalibrationSource(source_name)
        except ValueError:
            raise InputFileError(
                source, f"'{view}.calibration_source' is not a calibration source: {source_name!r}"
            ) from None
    results = session.get("results")
    if results is not None:
        rows = results.get("segments") if isinstance(results, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InputFileError(source, "'results.segments' must be a list of objects")
    return session


def levels_of(session: Mapping[str, Any]) -> list[str]:
    """The levels of a session, or of a landmarks file without ``levels``.

    The stated ``levels``; else the labels of the landmarks, top to bottom, with
    a level skipped between two of them added (``docs/landmarks-format.md``);
    else :data:`DEFAULT_LEVELS`.
    """
    stated = session.get("levels")
    if stated:
        return list(stated)
    labels: list[str] = []
    for view in VIEWS:
        marks = (session.get(view) or {}).get("landmarks") if isinstance(
            session.get(view), Mapping) else None
        for level in marks or {}:
            if level not in labels:
                labels.append(str(level))
    if len(labels) < 2:
        return list(DEFAULT_LEVELS)
    from app.landmarks_io import parse_landmarks

    try:
        return list(parse_landmarks({v: {"landmarks": {lv: {} for lv in labels}}
                                     for v in VIEWS}).levels)
    except InputFileError:
        return list(DEFAULT_LEVELS)


def landmark_array(film: Mapping[str, Any], levels: Sequence[str]) -> np.ndarray:
    """The landmarks of one film as an array.

    Parameters
    ----------
    film : mapping
        One film of the session (``session["flexion"]``).
    levels : sequence of str
        Level labels, top to bottom.

    Returns
    -------
    ndarray of shape (V, 4, 2), float64
        Pixels ``(x, y)`` per level and corner (``AS, PS, PI, AI``); NaN where absent.
    """
    out = np.full((len(levels), len(CORNERS), 2), np.nan)
    marks = film.get("landmarks") or {}
    for i, level in enumerate(levels):
        for j, corner in enumerate(CORNERS):
            xy = (marks.get(level) or {}).get(corner)
            if xy is not None:
                out[i, j] = xy
    return out


def film_calibration(film: Mapping[str, Any]) -> Calibration:
    """The :class:`measure.Calibration` recorded for one film of a session."""
    source = CalibrationSource(film.get("calibration_source", "uncalibrated"))
    detail = film.get("calibration_detail") or ""
    spacing = film.get("pixel_spacing_mm")
    if not source.is_calibrated or spacing is None:
        return Calibration.uncalibrated(detail)
    return Calibration(float(spacing[0]), float(spacing[1]), source, detail)


@dataclass
class FilmReport:
    """One film as a report sees it.

    Attributes
    ----------
    view : str
        ``"flexion"`` or ``"extension"``.
    record : dict
        The film's entry in the session (not copied).
    calibration : Calibration
        Spacing and its source.
    landmarks : ndarray of shape (V, 4, 2)
        Pixels, NaN where absent.
    path : Path or None
        Where the image file was found (None: not found).
    image_status : str
        ``"ok"`` (hash matches), ``"unverified"`` (no hash recorded),
        ``"changed"`` (hash differs: results must not be trusted),
        ``"missing"`` (file not found) or ``"none"`` (no image recorded).
    """

    view: str
    record: dict[str, Any]
    calibration: Calibration
    landmarks: np.ndarray
    path: Path | None = None
    image_status: str = "none"

    @property
    def sop_instance_uid(self) -> str | None:
        return (self.record.get("image") or {}).get("sop_instance_uid")

    def placement_summary(self) -> dict[str, int]:
        """How many corners were placed by each method (``manual``: 12, ...)."""
        counts: dict[str, int] = {}
        for corners in (self.record.get("placement") or {}).values():
            for method in (corners or {}).values():
                counts[method] = counts.get(method, 0) + 1
        return counts


@dataclass
class ReportData:
    """Everything a report shows, read from one session.

    Attributes
    ----------
    session : dict
        The session as saved.
    session_path : Path or None
        Where it was read from.
    levels : list of str
    films : dict of str to FilmReport
        ``"flexion"``, ``"extension"`` (only those present in the session).
    rows : list of dict
        The per-segment result rows as last shown (``results.segments``).
    warnings : list of str
        What the reader must know before trusting the numbers (changed or missing
        images, uncalibrated films, stored values that differ from the
        landmarks, ...), one sentence each.
    measurement_warnings : list of str
        What the viewer shows beside the table for these landmarks (endplate
        depths that differ between the films, criteria not applied), from
        :func:`app.report_verify.measure_session`; also in ``warnings``.
    stored_differences : list of str
        Every stored value the landmarks do not give
        (:func:`app.report_verify.stored_value_differences`); empty when they agree.
    measured_from_landmarks : bool
        The file held no results (a landmarks file): ``rows`` were measured here.
    safety : list of app.safety.SafetyWarning
        Safety checks (same image twice, different patients, no motion, implausible
        spacing, ...; :func:`app.safety.session_safety`); also in ``warnings``.
    borderline_hint : str or None
        What would resolve the borderline levels when most are borderline
        (:func:`app.safety.borderline_hint`), for the report to show.
    safety_acknowledged : list of str
        The checks (``SafetyCheck`` values) the reader acknowledged; export of an
        unacknowledged one is refused (:func:`app.safety.require_acknowledged`).
    """

    session: dict[str, Any]
    session_path: Path | None
    levels: list[str]
    films: dict[str, FilmReport]
    rows: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    measurement_warnings: list[str] = field(default_factory=list)
    stored_differences: list[str] = field(default_factory=list)
    measured_from_landmarks: bool = False
    safety: list[Any] = field(default_factory=list)
    borderline_hint: str | None = None
    safety_acknowledged: list[str] = field(default_factory=list)

    @property
    def unacknowledged_safety(self) -> list[Any]:
        """The safety warnings the reader has not acknowledged."""
        from app.safety import unacknowledged

        return unacknowledged(self.safety, self.safety_acknowledged)

    @property
    def criteria(self) -> str:
        return str(self.session.get("criteria") or "default")

    @property
    def images_changed(self) -> bool:
        return any(f.image_status == "changed" for f in self.films.values())

    @property
    def software_version(self) -> str:
        return str(self.session.get("software_version") or "unknown")


def _find_image(
    image: Mapping[str, Any], base_dir: Path | None, search_dirs: Sequence[Path],
    trust_paths: bool = False,
) -> tuple[Path | None, str]:
    """The image file: the recorded path (absolute or relative to the session),
    else a file of the same name in one of ``search_dirs``; and why a recorded
    path was not opened ("" when it was, or was not needed).

    The recorded path is used only inside the session's folder or ``search_dirs``
    (a damaged or hostile session must not open ``../../etc/passwd`` or another
    patient's film), unless ``trust_paths``.
    """
    raw = image.get("path")
    if not raw:
        return None, ""
    candidate = Path(raw)
    refused = ""
    if trust_paths:
        tries = [candidate if candidate.is_absolute() or base_dir is None else base_dir / candidate]
    else:
        from app.session_format import resolve_image_path

        allowed, refused = resolve_image_path(
            str(raw), base_dir, search_dirs,
            sop_instance_uid=str(image.get("sop_instance_uid") or ""),
        )
        tries = [allowed] if allowed is not None else []
    tries += [Path(d) / candidate.name for d in search_dirs]
    for path in tries:
        if path.is_file():
            return path, ""
    return None, refused


def report_from_session(
    session: dict[str, Any],
    session_path: str | Path | None = None,
    *,
    search_dirs: Sequence[str | Path] = (),
    image_paths: Mapping[str, str | Path] | None = None,
    verify_images: bool = True,
    trust_paths: bool = False,
    coded_findings: Mapping[str, str] | None = None,
) -> ReportData:
    """Build the :class:`ReportData` of a session dict.

    Parameters
    ----------
    session : dict
        A session (checked with :func:`load_session_dict`).
    session_path : path, optional
        The session file; relative image paths are resolved against its folder.
    search_dirs : sequence of path
        Further folders where the images may be (same file name).
    image_paths : mapping of str to path, optional
        An explicit image file per view (e.g. matched by SOP Instance UID by the
        review mode); wins over the recorded path.
    verify_images : bool
        Compare each image's SHA-256 with the recorded one.
    trust_paths : bool
        Open a recorded image path wherever it points (the user asked for it
        explicitly); by default only inside the session's folder and ``search_dirs``.
    """
    source = session_path if session_path is not None else "<session>"
    load_session_dict(session, source)
    base_dir = Path(session_path).parent if session_path is not None else None
    levels = list(session.get("levels") or levels_of(session))
    films: dict[str, FilmReport] = {}
    warnings: list[str] = []
    for view in VIEWS:
        record = session.get(view)
        if record is None:
            continue
        film = FilmReport(view, record, film_calibration(record), landmark_array(record, levels))
        image = record.get("image") or {}
        refused = ""
        explicit = (image_paths or {}).get(view)
        if explicit is not None:
            # a film the viewer opened may have been moved or deleted since
            film.path = Path(explicit) if Path(explicit).is_file() else None
        else:
            film.path, refused = _find_image(image, base_dir, [Path(d) for d in search_dirs],
                                             trust_paths)
            if refused:
                warnings.append(f"The {view} {refused}.")
            if film.path is None and search_dirs and image.get("sop_instance_uid"):
                film.path = find_images_by_uid(
                    {view: image["sop_instance_uid"]}, search_dirs,
                    sha256={view: image.get("sha256")},
                ).get(view)
        if film.path is None:
            recorded = image.get("path") or image.get("sop_instance_uid")
            film.image_status = "missing" if recorded else "none"
            if image.get("path") and not refused:
                warnings.append(f"The {view} image {image['path']!r} was not found.")
            elif recorded and not refused:
                warnings.append(f"The {view} image (SOP Instance UID {image['sop_instance_uid']}) "
                                "was not found: give its folder with --images.")
        elif not verify_images or not image.get("sha256"):
            film.image_status = "unverified"
        elif file_sha256(film.path) != image["sha256"]:
            film.image_status = "changed"
            warnings.append(
                f"The {view} image has CHANGED since it was measured (SHA-256 mismatch): "
                "the landmarks and results below may not belong to it."
            )
        else:
            film.image_status = "ok"
        if not film.calibration.is_calibrated:
            warnings.append(
                f"The {view} film is uncalibrated: no millimetre values; translation in % of "
                "endplate depth only."
            )
        films[view] = film
    if len(films) == 1:
        (only,) = films
        warnings.append(f"Only the {only} film: motion between flexion and extension cannot be "
                        "measured.")
    rows = [dict(r) for r in ((session.get("results") or {}).get("segments") or [])]
    report = ReportData(session, Path(session_path) if session_path else None, levels, films,
                        rows, warnings)
    _check_against_landmarks(report, coded_findings)
    _check_safety(report)
    return report


def _check_safety(report: ReportData) -> None:
    """The safety warnings of the session (saved and recomputed), first in ``warnings``."""
    from app.safety import borderline_hint, image_shape_of, implausible_spacing, session_safety

    reasons = {
        view: implausible_spacing(film.landmarks, film.calibration.spacing_mm,
                                  image_shape_of(film.record))
        for view, film in report.films.items()
    }
    report.safety, report.safety_acknowledged = session_safety(report.session, report.rows, reasons)
    methods, sds = [], []
    for film in report.films.values():
        stated = film.record.get("landmark_sd_mm") or {}
        for level, corners in (film.record.get("placement") or {}).items():
            if not isinstance(corners, dict):
                continue
            for corner, m in corners.items():
                if isinstance(m, str):
                    sd = (stated.get(level) or {}).get(corner) if isinstance(stated.get(level), dict) else None
                    methods.append(m)
                    sds.append(float(sd) if isinstance(sd, int | float) else float("nan"))
    report.borderline_hint = borderline_hint(report.rows, methods, sds)
    done = set(report.safety_acknowledged)
    report.warnings[0:0] = [
        "SAFETY: " + w.message + (" (acknowledged by the reader)" if w.check.value in done else "")
        for w in report.safety
    ]


def _check_against_landmarks(report: ReportData,
                             coded_findings: Mapping[str, str] | None = None) -> None:
    """Measure the landmarks again: fill ``rows`` of a landmarks file, else compare
    (the stored rows and, for an SR, each segment's coded finding)."""
    from app.report_verify import STORED_VALUES_DIFFER, measure_session, stored_value_differences

    again = measure_session(report.session)
    if again is not None:
        report.measurement_warnings = list(again.warnings)
        report.warnings.extend(again.warnings)
    if not report.rows:
        if again is None:
            report.warnings.append("The session holds no results: nothing was measured.")
            return
        report.rows = [dict(r) for r in again.rows]
        report.measured_from_landmarks = True
        return
    if again is None:
        return
    report.stored_differences = stored_value_differences(report.rows, again.rows)
    expected = {str(r.get("segment")): verdict_of_record(r).key for r in again.rows}
    for segment, code in (coded_findings or {}).items():
        if expected.get(segment, code) != code:
            report.stored_differences.append(
                f"{segment} coded finding: stored {code}, the landmarks give {expected[segment]}")
    if report.stored_differences:
        shown = report.stored_differences[:4]
        more = len(report.stored_differences) - len(shown)
        report.warnings.insert(0, (
            f"{STORED_VALUES_DIFFER}: " + "; ".join(shown)
            + (f"; and {more} more" if more > 0 else "")
            + ". The table shows the stored values; do not rely on them."))


def find_images_by_uid(
    sop_instance_uids: Mapping[str, str],
    folders: Sequence[str | Path],
    *,
    sha256: Mapping[str, str] | None = None,
    max_files: int = 20000,
) -> dict[str, Path]:
    """Find films in folders by SOP Instance UID (and, when given, content hash).

    Parameters
    ----------
    sop_instance_uids : mapping of str to str
        ``{"flexion": uid, ...}``.
    folders : sequence of path
        Searched recursively (DICOM headers only, pixel data not read).
    sha256 : mapping of str to str, optional
        Expected hash per view: among files with the right UID, one whose bytes
        match is preferred.
    max_files : int
        Stop after looking at this many files.

    Returns
    -------
    dict of str to Path
        The views found.
    """
    import pydicom

    wanted = {uid: view for view, uid in sop_instance_uids.items() if uid}
    expected = {view: (sha256 or {}).get(view) for view in wanted.values()}
    found: dict[str, Path] = {}
    verified: set[str] = set()
    seen = 0
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if seen >= max_files or len(verified) == len(wanted):
                return found
            if not path.is_file() or path.name.startswith("."):
                continue
            seen += 1
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True,
                                     specific_tags=["SOPInstanceUID"])
            except Exception:  # not DICOM: skip
                continue
            view = wanted.get(str(ds.get("SOPInstanceUID", "")))
            if view is None or view in verified:
                continue
            if not expected[view] or file_sha256(path) == expected[view]:
                found[view] = path
                verified.add(view)
            else:
                found.setdefault(view, path)  # right UID, other content: flagged later
    return found


def load_report(path: str | Path, **kwargs: Any) -> ReportData:
    """Read a session file and build its :class:`ReportData` (see :func:`report_from_session`)."""
    return report_from_session(read_session_file(path), path, **kwargs)


def segment_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Column names of the result rows, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns


def finding_of(row: Mapping[str, Any]) -> str:
    """``unstable``, ``borderline``, ``stable`` or ``not measured`` for one result row.

    A stored ``finding`` is returned as written; otherwise the row's verdict
    (:func:`measure.verdict_of_record`, the one rule of every output) grouped:
    both borderline verdicts are ``borderline``, within and not assessed ``stable``.
    """
    value = row.get("finding")
    if isinstance(value, str) and value:
        return value.lower()
    return _FINDINGS[verdict_of_record(row)]


_FINDINGS = {
    Verdict.UNSTABLE: "unstable",
    Verdict.BORDERLINE_ABOVE: "borderline",
    Verdict.BORDERLINE_BELOW: "borderline",
    Verdict.WITHIN: "stable",
    Verdict.NOT_ASSESSED: "stable",
    Verdict.NOT_MEASURED: "not measured",
}


def verdict_of(row: Mapping[str, Any]) -> Verdict:
    """The verdict a report shows for one result row: :func:`measure.verdict_of_record`
    (the one rule of every output), from the row's values, intervals and thresholds."""
    return verdict_of_record(row)


def reader_fields(session: Mapping[str, Any]) -> tuple[str, str]:
    """The reader's name and comment saved in a session (``reader``), ``""`` when absent."""
    reader = session.get("reader")
    if not isinstance(reader, Mapping):
        return "", ""
    return str(reader.get("name") or ""), str(reader.get("comment") or "")


def is_missing(value: Any) -> bool:
    """True for None and NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))
