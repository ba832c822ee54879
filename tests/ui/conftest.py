"""Fixtures of the viewer tests: a synthetic film pair (numpy, no DICOM) and a
window factory that owns its clean-up, plus the sample study when present."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from app.session import Session
from measure import Calibration, CalibrationSource

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_dicoms"


@dataclass
class SyntheticIdentity:
    patient_id: str = "SYNTH-1"
    patient_name: str = "Synthetic^Patient"
    study_instance_uid: str = "1.2.826.0.1.3680043.10.1"
    series_instance_uid: str = "1.2.826.0.1.3680043.10.1.1"
    sop_instance_uid: str = "1.2.826.0.1.3680043.10.1.1.1"
    study_date: object = None


@dataclass
class SyntheticFilm:
    """Duck-typed like app.dicom_io.Film: pixels, window, display_image, identity, view."""

    path: str
    view: str
    pixels: np.ndarray
    calibration: Calibration
    identity: SyntheticIdentity = field(default_factory=SyntheticIdentity)
    invert: bool = False
    voi_lut: object = None
    sha256: str = ""

    @property
    def window(self):
        lo, hi = float(self.pixels.min()), float(self.pixels.max())
        return ((lo + hi) / 2, hi - lo + 1)

    def display_image(self, window=None, invert=None):
        c, w = self.window if window is None else window
        grey = np.clip((self.pixels - (c - w / 2)) / w, 0, 1)
        grey = np.rint(grey * 255).astype(np.uint8)
        if (self.invert if invert is None else invert):
            grey = 255 - grey
        return grey


def synthetic_truth(shift_px: float = 0.0) -> np.ndarray:
    """Corners (6, 4, 2) of axis-aligned bodies facing right, 60 px deep, 40 px high."""
    lm = np.full((6, 4, 2), np.nan)
    for v in range(6):
        top = 40.0 + 55.0 * v
        x0 = 100.0 + (shift_px if v < 5 else 0.0) * (5 - v) / 5
        lm[v] = [[x0 + 60, top], [x0, top], [x0, top + 40], [x0 + 60, top + 40]]
    lm[5, 2:] = np.nan
    return lm


def synthetic_image(landmarks: np.ndarray, shape=(400, 300)) -> np.ndarray:
    img = np.full(shape, 200, dtype=np.uint16)
    for v in range(landmarks.shape[0]):
        pts = landmarks[v][np.isfinite(landmarks[v]).all(-1)]
        x0, y0 = np.floor(pts.min(0)).astype(int)
        x1, y1 = np.ceil(pts.max(0)).astype(int)
        y1 = y1 if v < 5 else y1 + 30
        img[y0:y1, x0:x1] = 900
    return img


class SyntheticFiles(dict):
    """path -> SyntheticFilm; an unknown path is an unreadable file (like load_film)."""

    def __missing__(self, path):
        from app.errors import InputFileError

        raise InputFileError(path, "not a DICOM file")


@pytest.fixture
def synthetic_pair(tmp_path):
    """Loader and paths of a flexion/extension pair of synthetic films (0.6 mm/px: the 60 px
    bodies are 36 mm deep, an adult size; smaller ones would flag the spacing as implausible)."""
    films = SyntheticFiles()
    cal = Calibration(0.6, 0.6, CalibrationSource.DETECTOR, "synthetic")
    for view, shift in (("flexion", 10.0), ("extension", -5.0)):
        path = tmp_path / f"{view}.dcm"
        path.write_bytes(view.encode())
        lm = synthetic_truth(shift)
        identity = SyntheticIdentity(sop_instance_uid=f"1.2.826.0.1.3680043.10.1.1.{len(films) + 1}")
        films[str(path)] = SyntheticFilm(str(path), view, synthetic_image(lm), cal, identity)
        films[str(path)].truth = lm
    return films


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    d = tmp_path / "state"
    monkeypatch.setenv("LUMBAR_INSTABILITY_STATE_DIR", str(d))
    return d


@pytest.fixture
def make_window(qtbot, state_dir):
    """Factory: a QtMainWindow on a fresh session; closed (without prompts) after the test."""
    from ui.qt_main_window import QtMainWindow

    windows = []

    def factory(loader=None, size=(1400, 900)):
        session = Session(recovery_path=state_dir / "recovery.autosave.json")
        window = QtMainWindow(session, loader=loader)
        window.ask_close = lambda: "discard"
        qtbot.addWidget(window)
        window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield factory
    for w in windows:
        w.close()


def sample_truth() -> dict:
    return json.loads((SAMPLE_DIR / "truth.json").read_text())


needs_sample = pytest.mark.skipif(
    not (SAMPLE_DIR / "flexion.dcm").exists() or not (SAMPLE_DIR / "truth.json").exists(),
    reason="sample_dicoms/ not generated yet",
)


def write_synthetic_dicom(path, pixels, view, spacing_mm=0.2, patient_id="SYNTH-1"):
    """A small DX DICOM of a synthetic film (no real patient data), readable by load_film."""
    import datetime

    from pydicom.dataset import Dataset as _Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray for presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = _Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.543.1"
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = "Synthetic^Phantom"
    ds.StudyDate = datetime.date(2026, 1, 2).strftime("%Y%m%d")
    ds.Modality = "DX"
    ds.SeriesDescription = f"L-spine lateral {view}"
    ds.ImageComments = view
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.ImagerPixelSpacing = [spacing_mm, spacing_mm]
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def synthetic_dicoms(tmp_path):
    """flexion.dcm, extension.dcm and landmarks.json of the synthetic pair, on disk."""
    out = tmp_path / "films"
    out.mkdir()
    doc = {"levels": ["L1", "L2", "L3", "L4", "L5", "S1"]}
    for view, shift in (("flexion", 10.0), ("extension", -5.0)):
        lm = synthetic_truth(shift)
        write_synthetic_dicom(out / f"{view}.dcm", synthetic_image(lm), view)
        doc[view] = {
            "pixel_spacing_mm": [0.2, 0.2],
            "calibration_source": "detector",
            "landmarks": {
                level: {c: lm[v, k].tolist() for k, c in enumerate(("AS", "PS", "PI", "AI")) if np.isfinite(lm[v, k]).all()}
                for v, level in enumerate(doc["levels"])
            },
        }
    (out / "landmarks.json").write_text(json.dumps(doc))
    return out


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    """The sample study folder (flexion.dcm, extension.dcm, truth.json); a phantom when absent."""
    if (SAMPLE_DIR / "truth.json").exists():
        return SAMPLE_DIR
    from app.phantom import make_study, write_study

    out = tmp_path_factory.mktemp("sample")
    write_study(make_study(7), out)
    return out


@pytest.fixture(autouse=True)
def _no_modal_file_dialogs(monkeypatch):
    """A file dialog in a test would wait forever for a click: fail the test instead."""
    from PySide6.QtWidgets import QFileDialog

    def refuse(*_args, **_kwargs):
        raise AssertionError("a test opened a modal file dialog: set the window's ask_* hook")

    for name in ("getOpenFileName", "getOpenFileNames", "getSaveFileName", "getExistingDirectory"):
        monkeypatch.setattr(QFileDialog, name, staticmethod(refuse))
