"""A small phantom archive for the cohort outputs, the API and the executors.

Patients followed over time: each patient has studies on known dates; every
study has an exact landmarks file (the phantom's truth), so a batch needs no
detection and runs in about a second.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from app.phantom import make_study, write_study

LEVELS = ["L1", "L2", "L3", "L4", "L5", "S1"]
CALIBRATIONS = ("magnification-corrected", "calibrated", "detector", "uncalibrated")


@dataclass
class CohortStudy:
    patient_id: str
    study_instance_uid: str
    study_date: str  # YYYYMMDD
    unstable: tuple[str, ...]
    calibration: str
    truth: dict
    sop: dict[str, str] = field(default_factory=dict)


@dataclass
class CohortArchive:
    input_dir: Path
    landmarks_dir: Path
    studies: list[CohortStudy] = field(default_factory=list)


def build_cohort(root: Path, n_patients: int = 3, visits: tuple[str, ...] = ("20240105", "20240415"),
                 scale: float = 0.1, first_seed: int = 500) -> CohortArchive:
    """``n_patients`` x ``len(visits)`` studies; the second visit of patient 0 is unstable at L4-L5."""
    archive = CohortArchive(root / "input", root / "landmarks")
    seed = first_seed
    for p in range(n_patients):
        patient = f"COH{p:03d}"
        for v, day in enumerate(visits):
            seed += 1
            unstable = ("L4-L5",) if (p + v) % 2 == 1 else ()
            calibration = CALIBRATIONS[(p + v) % len(CALIBRATIONS)]
            study = make_study(seed, scale=scale, unstable=unstable, calibration=calibration)
            folder = archive.input_dir / patient / f"visit{v}"
            tmp = folder / ".tmp"
            paths = write_study(study, tmp)
            truth = json.loads(Path(paths["truth"]).read_text())
            uid = generate_uid()
            record = CohortStudy(patient, uid, day, unstable, calibration, truth)
            for role in ("flexion", "extension"):
                target = folder / f"{role}.dcm"
                shutil.move(paths[role], target)
                ds = pydicom.dcmread(target)
                ds.PatientID = patient
                ds.StudyInstanceUID = uid
                ds.StudyDate = day
                ds.AcquisitionDate = day
                if "AcquisitionDateTime" in ds:
                    del ds.AcquisitionDateTime
                sop = generate_uid()
                ds.SOPInstanceUID = sop
                ds.file_meta.MediaStorageSOPInstanceUID = sop
                ds.save_as(target, enforce_file_format=True)
                record.sop[role] = sop
            shutil.rmtree(tmp)
            doc = {"format": "lumbar-instability-landmarks", "format_version": 1, "levels": LEVELS}
            for role in ("flexion", "extension"):
                marks = {lv: truth[role]["landmarks"][lv] for lv in LEVELS}
                doc[role] = {
                    "image": {"sop_instance_uid": record.sop[role], "study_instance_uid": uid},
                    "landmarks": marks,
                    "placement": {lv: {c: "tracked" for c in marks[lv]} for lv in marks},
                }
            archive.landmarks_dir.mkdir(parents=True, exist_ok=True)
            (archive.landmarks_dir / f"{uid}.json").write_text(json.dumps(doc))
            archive.studies.append(record)
    return archive
