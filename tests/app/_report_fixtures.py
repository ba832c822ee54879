"""A small synthetic flexion/extension study and its session, for the report tests.

Two 560 x 440 DX films (no real patient): six bright vertebral bodies drawn as
quadrilaterals whose corners are the landmarks of the session, so a report that
draws the landmarks on the film can be checked against the bodies.  The result
rows are written by hand (the reports print the saved rows; they never
re-measure).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from pathlib import Path

import numpy as np

LEVELS = ["L1", "L2", "L3", "L4", "L5", "S1"]
CORNERS = ("AS", "PS", "PI", "AI")
ROWS, COLS = 560, 440
PATIENT_NAME = "Phantom^Lumbar"


def _bodies(shift: float, tilt_deg: float) -> np.ndarray:
    """Corners (6, 4, 2) of six bodies, patient facing left (anterior = small x)."""
    out = np.full((6, 4, 2), np.nan)
    for i in range(6):
        cx = 220.0 + (shift if i == 3 else 0.0) + 4.0 * i
        cy = 60.0 + 85.0 * i
        a = np.radians(tilt_deg * (i - 2.5) / 2.5)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        # 200 px deep: 40 mm at 0.2 mm/px, an adult body (smaller ones flag the spacing)
        local = np.array([[-100.0, -28.0], [100.0, -28.0], [100.0, 28.0], [-100.0, 28.0]])
        out[i] = local @ rot.T + (cx, cy)
    out[5, 2:] = np.nan  # S1: superior endplate only
    return out


def landmarks(view: str) -> np.ndarray:
    """(6, 4, 2) corners, x/y in pixels, with sub-pixel digits a float32 cannot hold."""
    lm = _bodies(25.0, 8.0) if view == "flexion" else _bodies(0.0, -8.0)  # L4 5 mm forward
    return lm + 0.123456789012


def film_pixels(view: str) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(1 if view == "flexion" else 2)
    img = (600 + 80 * rng.standard_normal((ROWS, COLS))).clip(0, 4095).astype(np.uint16)
    for body in landmarks(view):
        pts = body[np.isfinite(body[:, 0])]
        if len(pts) == 2:  # S1: a wedge below the endplate
            pts = np.vstack([pts, pts[::-1] + np.array([0.0, 70.0])])
        cv2.fillPoly(img, [np.round(pts).astype(np.int32)], 2600)
    return img


def write_film(
    path: Path,
    view: str,
    *,
    uid_root: str = "1.2.826.0.1.3680043.10.1234",
    patient_id: str = "PHANTOM-001",
    spacing: tuple[float, float] | None = (0.2, 0.2),
) -> Path:
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = f"{uid_root}.3.{1 if view == 'flexion' else 2}"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = f"{uid_root}.1"
    ds.SeriesInstanceUID = f"{uid_root}.2.{1 if view == 'flexion' else 2}"
    ds.PatientName = PATIENT_NAME
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = "ACC1"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.SeriesNumber = 1 if view == "flexion" else 2
    ds.InstanceNumber = 1
    ds.Modality = "DX"
    ds.Manufacturer = "synthetic"
    ds.ViewPosition = "LL"
    ds.PatientOrientation = ["P", "F"]
    ds.SeriesDescription = f"L-spine lateral {view}"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    pixels = film_pixels(view)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if spacing is not None:
        ds.ImagerPixelSpacing = list(spacing)
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def result_rows() -> list[dict]:
    """Hand-written rows in the shape of ``results.segments`` (not measured)."""
    rows = []
    values = [
        (1.5, 6.1, 9.2),
        (2.25, 8.0, 10.5),
        (4.75, 15.2, 7.0),
        (4.1, 12.9, 12.25),
        (0.5, 1.6, 3.0),
    ]
    # the findings the one verdict rule (measure.verdict_of_record) gives for these values
    # and intervals: L1-L2 9.2 [7.1, 11.3]° below but reaching 10°; L2-L3 10.5 [8.4, 12.6]°
    # and L3-L4 4.75 [3.85, 5.65] mm above, straddling; L4-L5 12.25 [10.15, 14.35]° wholly above
    finding = ["borderline", "borderline", "borderline", "unstable", "stable"]
    for (label, (t, pct, ang)), find in zip(
        zip([f"{a}-{b}" for a, b in itertools.pairwise(LEVELS)], values, strict=False),
        finding,
        strict=False,
    ):
        rows.append(
            {
                "segment": label,
                "measured": True,
                "flexion_angle_deg": 3.0 + ang / 3,
                "extension_angle_deg": 3.0 + 4 * ang / 3,
                "flexion_translation_mm": t / 2,
                "extension_translation_mm": -t / 2,
                "flexion_translation_pct": pct / 2,
                "extension_translation_pct": -pct / 2,
                "translation_mm": t,
                "translation_pct": pct,
                "angulation_deg": ang,
                "translation_mm_ci95": [t - 0.9, t + 0.9],
                "angulation_deg_ci95": [ang - 2.1, ang + 2.1],
                "translation_pct_ci95": [pct - 3.0, pct + 3.0],
                "thresholds": {
                    "translation_mm": 4.0,
                    "translation_pct": None,
                    "angulation_deg": 10.0,
                },
                "calibration_source": "detector",
                "translation_note": None,
                "criterion": "translation" if t > 4 else ("angulation" if ang > 10 else "none"),
                "unstable": t > 4 or ang > 10,  # the value above a threshold
                "borderline": find == "borderline",
                "n_corners": 8,
            }
        )
    return rows


TABLE_VERDICTS = ["borderline-below", "borderline-above", "borderline-above", "unstable", "within"]
"""The verdicts of :func:`result_rows` by the rule of measurement-methods.md (hand-derived)."""


def table_rows() -> list[dict]:
    """:func:`result_rows` as the CSV/JSON tables export them: with their ``verdict``."""
    return [{**row, "verdict": v} for row, v in zip(result_rows(), TABLE_VERDICTS, strict=True)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def film_record(
    view: str,
    path: Path,
    base: Path,
    *,
    source: str = "detector",
    spacing: list[float] | None = (0.2, 0.2),
) -> dict:
    lm = landmarks(view)
    marks, placement, sds = {}, {}, {}
    methods = ["manual", "refined", "tracked", "detected", "edited"]
    for i, level in enumerate(LEVELS):
        for j, corner in enumerate(CORNERS):
            if np.isfinite(lm[i, j, 0]):
                marks.setdefault(level, {})[corner] = [float(lm[i, j, 0]), float(lm[i, j, 1])]
                m = methods[(i + j) % 5] if view == "extension" else "manual"
                placement.setdefault(level, {})[corner] = m
                sds.setdefault(level, {})[corner] = 0.5 if m == "manual" else 0.25
    return {
        "pixel_spacing_mm": None if spacing is None else list(spacing),
        "calibration_source": source,
        "calibration_detail": "ImagerPixelSpacing (0018,1164)" if spacing else "no spacing",
        "dicom_calibration": {
            "pixel_spacing_mm": None if spacing is None else list(spacing),
            "calibration_source": source,
            "calibration_detail": "ImagerPixelSpacing (0018,1164)",
        },
        "manual_calibration": None,
        "image": {
            "path": str(path.relative_to(base)),
            "sop_instance_uid": f"1.2.826.0.1.3680043.10.1234.3.{1 if view == 'flexion' else 2}",
            "series_instance_uid": f"1.2.826.0.1.3680043.10.1234.2.{1 if view == 'flexion' else 2}",
            "study_instance_uid": "1.2.826.0.1.3680043.10.1234.1",
            "sha256": sha256(path),
        },
        "landmarks": marks,
        "placement": placement,
        "landmark_sd_mm": sds,
    }


def viewer_rows(session_path: Path) -> list[dict]:
    """The rows the viewer's model (``app.session.Session``) computes from a session's
    landmarks: what a session saved by the viewer holds."""
    from app.dicom_io import load_film
    from app.session import Session

    session = Session()
    session.load(session_path, loader=load_film)
    return session.result_rows()


def make_study(folder: Path, *, uncalibrated_view: str | None = None,
               measured: bool = False) -> Path:
    """Write ``flexion.dcm``, ``extension.dcm`` and ``session.json`` into ``folder``;
    return the session path.

    The result rows are hand-written (:func:`result_rows`, which the landmarks
    do not give: every report flags them as differing), or with ``measured``
    the rows the viewer computes from the landmarks (:func:`viewer_rows`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    session = {
        "format": "lumbar-instability-session",
        "format_version": 1,
        "software_version": "0.1.0",
        "saved_at": "2026-11-21T10:00:00+00:00",
        "levels": LEVELS,
        "criteria": "default",
    }
    for view in ("flexion", "extension"):
        uncal = view == uncalibrated_view
        path = write_film(folder / f"{view}.dcm", view, spacing=None if uncal else (0.2, 0.2))
        session[view] = film_record(
            view,
            path,
            folder,
            source="uncalibrated" if uncal else "detector",
            spacing=None if uncal else [0.2, 0.2],
        )
    rows = result_rows()
    if uncalibrated_view:
        for row in rows:
            for key in (
                "translation_mm",
                "flexion_translation_mm",
                "extension_translation_mm",
                "translation_mm_ci95",
            ):
                row[key] = None
            row["translation_note"] = "uncalibrated film: no mm value"
    session["selected_segment"] = "L4-L5"
    session["results"] = {"segments": rows}
    path = folder / "session.json"
    path.write_text(json.dumps(session, indent=2))
    if measured:
        session["results"] = {"segments": viewer_rows(path)}
        path.write_text(json.dumps(session, indent=2))
    return path


def make_stale_uncalibrated_study(folder: Path, **row_extra) -> Path:
    """A study whose extension film is uncalibrated but whose saved rows still hold mm
    values (an edited or out-of-date session file); ``row_extra`` adds keys to each row."""
    session_path = make_study(folder, uncalibrated_view="extension")
    session = json.loads(session_path.read_text())
    for row in session["results"]["segments"]:
        row["translation_mm"] = 4.75
        row["translation_mm_ci95"] = [3.0, 6.0]
        row["extension_translation_mm"] = 2.5
        row["flexion_translation_mm"] = 1.25
        row.update(row_extra)
    session_path.write_text(json.dumps(session))
    return session_path


SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_dicoms"


def sample_session(folder: Path, *, method: str = "tracked", reader: dict | None = None) -> Path:
    """A session of the bundled sample study saved by the viewer's model, with the
    phantom's true corners on both films (placed by ``method``): L4-L5 is unstable
    (truth 6.2 mm, 13.3 deg), every other segment within the thresholds."""
    import shutil

    from app.dicom_io import load_film
    from app.session import Session

    truth = json.loads((SAMPLE_DIR / "truth.json").read_text())
    # the films beside the session: a report opens image paths only inside the
    # session's folder (and --images folders)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("flexion.dcm", "extension.dcm"):
        shutil.copyfile(SAMPLE_DIR / name, folder / name)
    session = Session()
    session.open_paths([folder / "flexion.dcm", folder / "extension.dcm"], loader=load_film)
    for view in ("flexion", "extension"):
        lm = np.full((len(session.levels), 4, 2), np.nan)
        for i, level in enumerate(session.levels):
            for j, corner in enumerate(CORNERS):
                xy = truth[view]["landmarks"].get(level, {}).get(corner)
                if xy is not None:
                    lm[i, j] = xy
        session.set_landmarks(view, lm, method=method)
    folder.mkdir(parents=True, exist_ok=True)
    path = session.save(folder / "sample.json")
    if reader is not None:
        doc = json.loads(path.read_text())
        doc["reader"] = reader
        path.write_text(json.dumps(doc, indent=2))
    return path


def without_paths(session: dict) -> dict:
    """The session as an SR carries it: every film's image without its local file path
    (a PACS has no use for it; the film is found by SOP Instance UID), and without the row
    the viewer highlighted (``selected_segment``: a state of the viewer, not a finding)."""
    out = json.loads(json.dumps(session))
    out.pop("selected_segment", None)
    for row in (out.get("results") or {}).get("segments") or []:
        # a null cell of a column the SR does not know (the hand-written rows' old name) is
        # not carried: an SR holds no placeholder for a value that does not exist
        if "translation_note" in row and row["translation_note"] is None:
            del row["translation_note"]
    for view in ("flexion", "extension"):
        if isinstance(out.get(view), dict) and isinstance(out[view].get("image"), dict):
            out[view]["image"].pop("path", None)
    return out


PREVIOUS_VERSION_SR = Path(__file__).with_name("previous_version_sr") / "old.dcm"


def previous_version_sr(folder: Path) -> tuple[Path, Path]:
    """Make the measured study and put the previous version's SR of it beside it.

    Returns
    -------
    (session, sr) : tuple of Path
        The study's session file and the copied SR (``folder / "study" / "old.dcm"``).
    """
    session = make_study(folder / "study", measured=True)
    sr = folder / "study" / "old.dcm"
    shutil.copyfile(PREVIOUS_VERSION_SR, sr)
    return session, sr
