"""A folder of phantom studies with known truth plus broken input, for the batch tests.

Built once per test module (the phantom renders in ~0.2 s per study at
``scale=0.1``).  Identifiers are rewritten with pydicom so the tests know every
one; patient names stay the phantom's (``PHANTOM^SEED…``), birth dates and
accession numbers get markers; the anonymisation test greps for all three.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from app.phantom import make_study, write_study

NAME_MARKER = "PHANTOM^SEED"  # the phantom's patient names, kept as written
BIRTH_DATE = "19561231"
ACCESSION_MARKER = "ACCQX"
VIEW_ATTRIBUTES = (
    "ViewCodeSequence", "SeriesDescription", "ProtocolName", "ImageComments",
    "AcquisitionDeviceProcessingDescription", "PerformedProcedureStepDescription",
    "StudyDescription",
)  # fmt: skip
CALIBRATIONS = (
    "magnification-corrected",
    "calibrated",
    "detector",
    "magnification-corrected",
    "uncalibrated",
)
LEVELS = ["L1", "L2", "L3", "L4", "L5", "S1"]


@dataclass
class StudyTruth:
    patient_id: str
    study_instance_uid: str
    sop: dict[str, str]
    files: dict[str, str]
    truth: dict
    pairing: str = "views"
    landmarks: str = "landmarks-dir"  # or session, detect, flexion-only


@dataclass
class Archive:
    input_dir: Path
    landmarks_dir: Path
    studies: dict[str, StudyTruth] = field(default_factory=dict)
    failures: set[tuple[str, str, str]] = field(default_factory=set)  # kind, path, category
    clutter: set[str] = field(default_factory=set)  # paths of files that are not films
    patient_ids: list[str] = field(default_factory=list)


def _rewrite(
    path: Path, *, patient: str, number: int, study_uid: str, time: str, strip_view: bool = False
) -> str:
    ds = pydicom.dcmread(path)
    ds.PatientID = patient
    ds.PatientBirthDate = BIRTH_DATE
    ds.AccessionNumber = f"{ACCESSION_MARKER}{number:04d}"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    sop = generate_uid()
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.AcquisitionDate = "20240312"
    ds.AcquisitionTime = time
    if "AcquisitionDateTime" in ds:
        del ds.AcquisitionDateTime
    if strip_view:
        for keyword in VIEW_ATTRIBUTES:
            if keyword in ds:
                delattr(ds, keyword)
    ds.save_as(path, enforce_file_format=True)
    return sop


def _landmarks_file(path: Path, truth: dict, study_uid: str, sop: dict[str, str]) -> None:
    data = {"format": "lumbar-instability-landmarks", "format_version": 1, "levels": LEVELS}
    for role in ("flexion", "extension"):
        marks = truth[role]["landmarks"]
        data[role] = {
            "image": {"sop_instance_uid": sop[role], "study_instance_uid": study_uid},
            "landmarks": marks,
            "placement": {lv: {c: "manual" for c in marks[lv]} for lv in marks},
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _render(seed: int, folder: Path, **options) -> tuple[dict, dict[str, Path]]:
    options.setdefault("scale", 0.1)
    study = make_study(seed, **options)
    paths = write_study(study, folder)
    Path(paths["truth"]).unlink()  # the truth stays with the test, not in the archive
    return study.truth(), {"flexion": Path(paths["flexion"]),
                           "extension": Path(paths["extension"])}


def build_archive(root: Path, n_good: int = 22) -> Archive:
    """The archive: ``n_good`` measurable studies and the broken cases."""
    archive = Archive(root / "input", root / "landmarks")
    inp = archive.input_dir
    seed = 0

    def good_study(
        i: int,
        folder: Path,
        *,
        names=("flexion.dcm", "extension.dcm"),
        strip_view=False,
        landmarks="landmarks-dir",
        times=("100000", "100500"),
        patient=None,
    ) -> StudyTruth:
        nonlocal seed
        seed += 1
        options = {
            "calibration": CALIBRATIONS[i % len(CALIBRATIONS)],
            "facing": "right" if i % 2 else "left",
        }
        if i % 4 == 0:
            options["unstable"] = ("L4-L5",)
        if landmarks in ("detect", "flexion-only"):  # realistic resolution for the images
            options["scale"] = 0.25
        truth, paths = _render(seed, folder / f".tmp{i}", **options)
        patient = patient or f"PAT{i:03d}"
        study_uid = generate_uid()
        sop, files = {}, {}
        for role, name, time in zip(("flexion", "extension"), names, times, strict=True):
            target = folder / name
            shutil.move(paths[role], target)
            sop[role] = _rewrite(
                target,
                patient=patient,
                number=i,
                study_uid=study_uid,
                time=time,
                strip_view=strip_view,
            )
            files[role] = target.relative_to(inp).as_posix()
        shutil.rmtree(folder / f".tmp{i}")
        if landmarks == "landmarks-dir":
            _landmarks_file(archive.landmarks_dir / f"{study_uid}.json", truth, study_uid, sop)
        elif landmarks == "flexion-only":  # outlined on flexion: tracked onto extension
            _landmarks_file(archive.landmarks_dir / f"{study_uid}.json", truth, study_uid, sop)
            path = archive.landmarks_dir / f"{study_uid}.json"
            data = json.loads(path.read_text())
            data["extension"]["landmarks"] = {}
            data["extension"]["placement"] = {}
            path.write_text(json.dumps(data))
        elif landmarks == "session":
            _landmarks_file(folder / "session.json", truth, study_uid, sop)
            data = json.loads((folder / "session.json").read_text())
            data["format"] = "lumbar-instability-session"
            (folder / "session.json").write_text(json.dumps(data))
        record = StudyTruth(
            patient,
            study_uid,
            sop,
            files,
            truth,
            "acquisition-order" if strip_view else "views",
            landmarks,
        )
        archive.studies[study_uid] = record
        archive.patient_ids.append(patient)
        return record

    for i in range(n_good):
        if i in (3, 4):  # two patients' studies in one folder, distinct file names
            good_study(i, inp / "mixed", names=(f"p{i}_flex.dcm", f"p{i}_ext.dcm"))
        elif i == 5:  # views not recognised: earlier acquisition is flexion, named to sort last
            good_study(
                i, inp / f"PAT{i:03d}" / "s1", names=("img_b.dcm", "img_a.dcm"), strip_view=True
            )
        elif i == 6:  # landmarks from a session file next to the films
            good_study(i, inp / f"PAT{i:03d}" / "s1", landmarks="session")
        elif i == 7:  # no landmarks anywhere: detection
            good_study(i, inp / f"PAT{i:03d}" / "s1", landmarks="detect")
        elif i == 10:  # landmarks on the flexion film only (calibrated: SDs in mm)
            good_study(i, inp / f"PAT{i:03d}" / "s1", landmarks="flexion-only")
        else:
            good_study(i, inp / f"PAT{i:03d}" / f"study{i}")

    # --- broken input
    broken = inp / "broken"
    broken.mkdir(parents=True)
    (broken / "IMG0003").write_text("exported by PACS, nothing to see\n")  # no extension: read
    archive.failures.add(("file", "broken/IMG0003", "read"))
    # clutter: clearly not films by their names, listed apart, not failures
    (broken / "notes.txt").write_text("exported by PACS, nothing to see\n")
    (inp / "README.TXT").write_text("PACS export\n")
    (inp / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")
    (broken / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (broken / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    archive.clutter.update({"broken/notes.txt", "README.TXT", "DICOMDIR", "broken/.DS_Store",
                            "broken/Thumbs.db"})
    source = next(iter(archive.studies.values()))
    data = (inp / source.files["flexion"]).read_bytes()
    (broken / "truncated.dcm").write_bytes(data[:300])
    archive.failures.add(("file", "broken/truncated.dcm", "read"))

    # a study with one film
    one = good_study(100, inp / "one", landmarks="landmarks-dir")
    (inp / one.files["extension"]).unlink()
    del archive.studies[one.study_instance_uid]
    archive.failures.add(("study", "one", "pairing"))

    # a study with three films: a second film recognised as flexion (a retake)
    three = good_study(101, inp / "three")
    retake = inp / "three" / "flexion_retake.dcm"
    shutil.copy(inp / three.files["flexion"], retake)
    _rewrite(
        retake,
        patient=three.patient_id,
        number=101,
        study_uid=three.study_instance_uid,
        time="100200",
    )
    del archive.studies[three.study_instance_uid]
    archive.failures.add(("study", "three", "pairing"))

    # one StudyInstanceUID shared by two patients
    shared = good_study(102, inp / "shared")
    _rewrite(
        inp / shared.files["extension"],
        patient="OTHER",
        number=102,
        study_uid=shared.study_instance_uid,
        time="100500",
    )
    del archive.studies[shared.study_instance_uid]
    archive.failures.add(("study", "shared", "pairing"))

    # a study whose extension film is cut inside the pixel data: the header scan
    # already sees it (the file fails), which leaves the study with one film
    cut = good_study(103, inp / "cut")
    data = (inp / cut.files["extension"]).read_bytes()
    (inp / cut.files["extension"]).write_bytes(data[: len(data) - 2000])
    del archive.studies[cut.study_instance_uid]
    archive.failures.add(("file", "cut/extension.dcm", "read"))
    archive.failures.add(("study", "cut", "pairing"))
    return archive


def light_subset(archive: Archive, target: Path, n: int) -> list[str]:
    """Copy the folders of ``n`` studies with exact landmark files into ``target``.

    For tests of resuming and write errors, which need real studies but not
    the slow detection and tracking.  Returns the StudyInstanceUIDs copied.
    """
    chosen = [uid for uid, s in archive.studies.items()
              if s.landmarks == "landmarks-dir" and "mixed" not in s.files["flexion"]][:n]
    for uid in chosen:
        folder = Path(archive.studies[uid].files["flexion"]).parent
        shutil.copytree(archive.input_dir / folder, target / folder)
    return chosen
