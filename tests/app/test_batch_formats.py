"""Batch input and output formats: reports from films missing Type 2 attributes,
honest ``--landmarks``, clutter, all-or-nothing tables, input fingerprints."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from app.batch import BatchOptions, SerialExecutor, run_batch
from app.batch._output import StagedTables, finish_interrupted_swap
from app.errors import UserError
from tests.app._batch_archive import _landmarks_file, _render

TYPE2 = ("StudyDate", "StudyTime", "PatientBirthDate", "PatientSex", "AccessionNumber",
         "StudyID")


def make_study(folder: Path, landmarks_dir: Path, seed: int, *, strip=()) -> dict:
    """One phantom study in ``folder`` with its exact landmarks file in ``landmarks_dir``."""
    truth, paths = _render(seed, folder / ".tmp", calibration="calibrated")
    study_uid = generate_uid()
    sop = {}
    for role, path in paths.items():
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = study_uid
        ds.PatientID = f"PAT{seed:03d}"
        sop[role] = ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        for keyword in strip:
            if keyword in ds:
                delattr(ds, keyword)
        ds.save_as(folder / f"{role}.dcm", enforce_file_format=True)
    shutil.rmtree(folder / ".tmp")
    _landmarks_file(landmarks_dir / f"{study_uid}.json", truth, study_uid, sop)
    return {"study_instance_uid": study_uid, "sop": sop, "truth": truth}


def test_sr_for_films_without_type2_patient_and_study_attributes(tmp_path: Path):
    inp, marks = tmp_path / "in", tmp_path / "marks"
    study = make_study(inp / "s1", marks, 1, strip=TYPE2)
    out = tmp_path / "out"
    summary = run_batch(BatchOptions(inp, out, landmarks_dir=marks, sr=True, pdf=True,
                                     quiet=True), executor=SerialExecutor())
    assert summary.failures == {} and summary.measured == 1
    (sr_path,) = (out / "reports").glob("*.sr.dcm")
    ds = pydicom.dcmread(sr_path)
    for keyword in TYPE2:
        assert keyword in ds and ds[keyword].value in ("", None), keyword
    assert ds.StudyInstanceUID == study["study_instance_uid"] and ds.PatientID == "PAT001"
    assert len(list((out / "reports").glob("*.pdf"))) == 1
    if shutil.which("dciodvfy"):
        run = subprocess.run(["dciodvfy", str(sr_path)], capture_output=True, text=True,
                             timeout=60)
        errors = [ln for ln in (run.stdout + run.stderr).splitlines() if ln.startswith("Error")]
        assert errors == []


# --------------------------------------------------------------------------- helpers

SEGMENTS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
TABLES = ("results.csv", "results.parquet", "failures.csv", "failures.parquet", "pairs.csv",
          "clutter.csv", "summary.json")


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _outputs(out: Path) -> dict[str, bytes]:
    """Every output file of the results folder (not .work, not reports/) and its bytes."""
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()
            and not p.name.startswith(".")}


def _run(inp: Path, out: Path, marks: Path | None = None, **options):
    return run_batch(BatchOptions(inp, out, landmarks_dir=marks, quiet=True, **options),
                     executor=SerialExecutor())


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    marks = root / "marks"
    studies = [make_study(root / "in" / f"s{i}", marks, 10 + i) for i in range(2)]
    return root / "in", marks, studies


def _copy_input(two_studies, target: Path) -> tuple[Path, Path]:
    inp, marks, _ = two_studies
    shutil.copytree(inp, target / "in")
    shutil.copytree(marks, target / "marks")
    return target / "in", target / "marks"


# --------------------------------------------------------------------------- clutter


def test_clutter_is_listed_apart_and_does_not_fail_the_run(two_studies, tmp_path, capsys):
    inp, marks = _copy_input(two_studies, tmp_path)
    (inp / "README.TXT").write_text("PACS export of 2 studies\n")
    (inp / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    (inp / "s0" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (inp / "s0" / ".hidden-note").write_text("x")
    (inp / "s1" / "thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    # a film whose name looks like clutter is still read as a film (DICOM preamble)
    (inp / "s1" / "extension.dcm").rename(inp / "s1" / "IMG0002.TXT")
    from app.cli import main

    out = tmp_path / "out"
    status = main(["batch", str(inp), "--out", str(out), "--landmarks", str(marks), "--quiet"])
    printed = capsys.readouterr().out
    assert status == 0
    rows = _csv(out / "clutter.csv")
    assert rows == [
        {"path": "DICOMDIR", "reason": "a DICOMDIR index"},
        {"path": "README.TXT", "reason": "a .txt file, not a film"},
        {"path": "s0/.DS_Store", "reason": "operating-system litter"},
        {"path": "s0/.hidden-note", "reason": "a hidden file"},
        {"path": "s1/thumbs.db", "reason": "operating-system litter"},
    ]
    assert _csv(out / "failures.csv") == []
    assert len(_csv(out / "results.csv")) == 10
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clutter_files"] == 5 and summary["failures_by_reason"] == {}
    assert "clutter: 5 files that are not films" in printed


# --------------------------------------------------------------------------- honest --landmarks


def test_landmark_files_in_another_shape_stop_the_run_naming_the_format(two_studies, tmp_path):
    inp, _, studies = two_studies
    other = tmp_path / "other"
    other.mkdir()
    for study in studies:
        (other / f"{study['study_instance_uid']}.json").write_text(json.dumps(
            {"study": study["study_instance_uid"], "points": {"L4": [[1, 2]] * 4}}))
    with pytest.raises(UserError) as info:
        _run(inp, tmp_path / "out", other)
    message = str(info.value)
    assert message.startswith(f"{other}: --landmarks: 0 of 2 files used, none is a landmarks "
                              "file (e.g. ")
    assert "not in the landmarks format: expected a landmarks or session file: an object with " \
           "flexion and extension" in message
    assert "docs/landmarks-format.md" in message


def test_landmark_files_are_counted_used_and_ignored_with_why(two_studies, tmp_path):
    inp, marks = _copy_input(two_studies, tmp_path)
    (marks / "notes.json").write_text('{"comment": "landmarks by reader 2"}')
    (marks / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (marks / "dup.json").write_text('{"flexion": {}, "flexion": {}}')
    stray = json.loads(next(iter(sorted(marks.glob("1*.json")))).read_text())
    for role in ("flexion", "extension"):
        stray[role]["image"] = {"sop_instance_uid": f"9.9.{role}", "study_instance_uid": "9.9"}
    (marks / "stray.json").write_text(json.dumps(stray))
    (inp / "s0" / "deep.json").write_text("{" + '"a": {' * 50_000 + "}" * 50_001)  # INPUT_DIR too
    out = tmp_path / "out"
    summary = _run(inp, out, marks)
    assert summary.measured == 2 and summary.failures == {}
    assert summary.landmark_files == {
        "read": 6, "used": 2, "ignored": 4,
        "ignored_by_reason": {"matched no study": 1, "not in the landmarks format": 1,
                              "not usable": 2},
    }
    rows = {r["path"]: r for r in _csv(out / "landmark_files.csv")}
    assert rows["deep.json"]["reason"] == ("not usable: JSON nested more than 64 levels deep: "
                                          "not a file of this tool")
    assert rows["dup.json"]["reason"] == ("not usable: key flexion: given twice (a key may appear "
                                         "only once)")
    assert rows["stray.json"]["reason"].startswith("matched no study")
    assert rows["notes.json"]["reason"].startswith("not in the landmarks format")
    assert [r["status"] for r in rows.values()].count("used") == 2
    assert json.loads((out / "summary.json").read_text())["landmark_files"]["used"] == 2
    assert "landmark files: 2 of 6 used, 4 ignored" in summary.text()


def test_phantom_truth_files_are_landmarks_in_a_folder_laid_out_like_the_input(tmp_path):
    from app.phantom import make_study as phantom_study
    from app.phantom import write_study

    truths = {}
    for i, seed in enumerate((21, 22)):
        study = phantom_study(seed, scale=0.1, calibration="calibrated")
        write_study(study, tmp_path / "phantoms" / f"case{i}")
        truths[f"case{i}"] = study.truth()
    inp = tmp_path / "phantoms"
    # beside the films a truth file is never used (detection is what is evaluated) ...
    # ... but named explicitly with --landmarks it gives each folder's landmarks
    out = tmp_path / "out"
    summary = _run(inp, out, inp)
    assert summary.measured == 2 and summary.landmark_files["used"] == 2
    rows = _csv(out / "results.csv")
    assert len(rows) == 10
    for row in rows:
        assert row["landmark_method"].startswith("given:landmarks-dir")
        folder = row["flexion_file"].split("/")[0]
        truth = truths[folder]["motion"][row["segment"]]
        assert float(row["angulation_deg"]) == pytest.approx(truth["dtheta_deg"], abs=1e-6)
        assert float(row["translation_pct"]) == pytest.approx(truth["dt_pct"], abs=1e-6)


# --------------------------------------------------------------------------- all old or all new


class _DiskFull:
    """Writes through app.atomic fail with ENOSPC once ``complete`` table files are
    written and ``spare`` more bytes of the next one (the disk fills mid-file)."""

    def __init__(self, complete: int, spare: int = 100) -> None:
        self.complete = complete
        self.spare = spare
        self.active = False  # from the start of the tables (journal and reports pass)

    def wrap(self, real_fdopen):
        import errno

        outer = self

        def fdopen(fd, mode="r", *args, **kwargs):
            handle = real_fdopen(fd, mode, *args, **kwargs)
            if not outer.active:
                return handle
            full = outer.complete <= 0
            outer.complete -= 1
            left = [outer.spare]
            real_write = handle.write

            def write(data):
                size = len(data.encode() if isinstance(data, str) else data)
                if full and size > left[0]:
                    raise OSError(errno.ENOSPC, "No space left on device")
                left[0] -= size if full else 0
                return real_write(data)

            handle.write = write
            return handle

        return fdopen


@pytest.mark.parametrize("complete", [0, 2, 6])
def test_a_disk_full_rerun_leaves_the_previous_complete_tables(two_studies, tmp_path,
                                                                monkeypatch, complete):
    import app.atomic

    inp, marks = _copy_input(two_studies, tmp_path)
    out = tmp_path / "out"
    (inp / "s1" / "extension.dcm").rename(tmp_path / "held-back.dcm")  # first run: 1 study
    _run(inp, out, marks)
    before = _outputs(out)
    assert set(TABLES) <= set(before)
    assert len(_csv(out / "results.csv")) == 5
    (tmp_path / "held-back.dcm").rename(inp / "s1" / "extension.dcm")  # rerun: 2 studies
    disk = _DiskFull(complete)
    monkeypatch.setattr(app.atomic.os, "fdopen", disk.wrap(app.atomic.os.fdopen))
    staged = []
    real_path, real_init = StagedTables.path, StagedTables.__init__

    def start(self, out_dir):
        real_init(self, out_dir)
        disk.active = True

    monkeypatch.setattr(StagedTables, "__init__", start)
    monkeypatch.setattr(StagedTables, "path",
                        lambda self, name: staged.append(name) or real_path(self, name))
    with pytest.raises(UserError, match="No space left on device"):
        _run(inp, out, marks)
    monkeypatch.undo()
    assert len(staged) == complete + 1, staged  # the disk filled inside table complete + 1
    assert _outputs(out) == before  # every table and plot as the first run left them
    _run(inp, out, marks)  # space freed: the rerun completes and swaps every table
    assert len(_csv(out / "results.csv")) == 10
    assert json.loads((out / "summary.json").read_text())["measured_studies"] == 2
    assert len(_csv(out / "pairs.csv")) == 2


def test_a_swap_interrupted_after_its_commit_is_finished_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.csv").write_text("old a\n")
    (out / "b.csv").write_text("old b\n")
    tables = StagedTables(out)
    tables.path("a.csv").write_text("new a\n")
    tables.path("b.csv").write_text("new b\n")
    (tables.staging / "COMMITTED").write_text("a.csv\nb.csv\n")
    import os

    os.replace(tables.staging / "a.csv", out / "a.csv")  # killed after the first rename
    assert finish_interrupted_swap(out) == ["b.csv"]
    assert (out / "a.csv").read_text() == "new a\n" and (out / "b.csv").read_text() == "new b\n"
    # a staging folder without its commit marker is an unfinished run's: dropped
    tables = StagedTables(out)
    tables.path("a.csv").write_text("half\n")
    assert finish_interrupted_swap(out) == []
    assert (out / "a.csv").read_text() == "new a\n" and not tables.staging.exists()


# --------------------------------------------------------------------------- input fingerprint


def test_a_results_folder_of_another_input_is_refused_without_force(two_studies, tmp_path):
    inp, marks = _copy_input(two_studies, tmp_path)
    other = tmp_path / "other"
    shutil.copytree(inp / "s0", other / "s0")
    out = tmp_path / "out"
    _run(inp, out, marks)
    with pytest.raises(UserError) as info:
        _run(other, out, marks)
    assert str(info.value) == (f"{out}: holds the results of a run over another input "
                               f"({inp.resolve()}, 4 files); choose another results folder, or "
                               "add --force to replace them")
    assert len(_csv(out / "results.csv")) == 10  # untouched
    summary = _run(other, out, marks, force=True)
    assert summary.measured == 1 and len(_csv(out / "results.csv")) == 5
    recorded = json.loads((out / "summary.json").read_text())["input"]
    assert recorded["input_dir"] == str(other.resolve()) and recorded["files"] == 2
    # the same files in another place (a moved archive) are the same input
    moved = tmp_path / "moved"
    shutil.copytree(other, moved)
    assert _run(moved, out, marks).measured == 1
