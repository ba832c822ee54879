"""End-to-end batch runs on a phantom archive with known truth and broken files."""

from __future__ import annotations

import csv
import errno
import json
import math
import os
import shutil
from pathlib import Path

import pytest

from app.batch import (
    BatchOptions,
    PoolExecutor,
    SerialExecutor,
    read_parquet_rows,
    run_batch,
)
from app.cli import main
from app.errors import UserError
from tests.app._batch_archive import (
    ACCESSION_MARKER,
    BIRTH_DATE,
    NAME_MARKER,
    Archive,
    build_archive,
    light_subset,
)

SEGMENTS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
EXACT = 1e-6  # truth landmarks: the measurement must reproduce the construction


def _detection_available() -> bool:
    try:
        import app.autolandmarks  # noqa: F401
        import measure
    except ImportError:
        return False
    return hasattr(measure, "detect_vertebrae")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Archive:
    return build_archive(tmp_path_factory.mktemp("batch"))


@pytest.fixture(scope="module")
def serial_run(archive: Archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "results"
    summary = run_batch(
        BatchOptions(archive.input_dir, out, landmarks_dir=archive.landmarks_dir, quiet=True),
        executor=SerialExecutor(),
    )
    return out, summary


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _float(text: str) -> float:
    return math.nan if text == "" else float(text)


def test_every_row_matches_the_phantom_truth(archive: Archive, serial_run):
    out, summary = serial_run
    rows = _csv(out / "results.csv")
    by_study: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_study.setdefault(row["study_instance_uid"], []).append(row)
    given = {uid: s for uid, s in archive.studies.items() if s.landmarks != "detect"}
    assert len(given) >= 20
    exact = {uid for uid, s in given.items() if s.landmarks in ("landmarks-dir", "session")}
    assert len(exact) >= 18
    detected = {uid for uid, s in archive.studies.items() if s.landmarks == "detect"}
    expected_studies = set(given) | (detected if _detection_available() else set())
    assert set(by_study) == expected_studies
    measured = {uid: s for uid, s in archive.studies.items() if uid in expected_studies}
    for uid, study in measured.items():
        study_rows = by_study[uid]
        assert [r["segment"] for r in study_rows] == SEGMENTS
        for row in study_rows:
            truth = study.truth["motion"][row["segment"]]
            assert row["patient_id"] == study.patient_id
            assert row["flexion_sop_instance_uid"] == study.sop["flexion"]
            assert row["extension_sop_instance_uid"] == study.sop["extension"]
            assert row["flexion_file"] == study.files["flexion"]
            assert row["extension_file"] == study.files["extension"]
            assert row["pairing"] == study.pairing
            assert row["upper"] + "-" + row["lower"] == row["segment"]
            assert row["measured"] == "true"
            if study.landmarks in ("detect", "flexion-only"):
                # detected on flexion (or given there), tracked onto extension: the
                # truth lies inside the 95 % interval the row reports
                if study.landmarks == "detect":
                    assert row["landmark_method"] == "detected:flexion+tracked:extension"
                    assert 0 < float(row["flexion_fit_quality"]) <= 1
                else:
                    assert row["landmark_method"] == (
                        "given:landmarks-dir (manual)+tracked:extension")
                    assert row["flexion_fit_quality"] == ""
                assert 0 < float(row["extension_fit_quality"]) <= 1
                for value, sd, true in (
                    ("angulation_deg", "angulation_sd_deg", truth["dtheta_deg"]),
                    ("translation_pct", "translation_sd_pct", truth["dt_pct"]),
                ):
                    assert abs(float(row[value]) - true) <= 1.96 * float(row[sd])
                    assert 0 < float(row[sd]) < 3
                continue
            assert float(row["angulation_deg"]) == pytest.approx(truth["dtheta_deg"], abs=EXACT)
            assert float(row["flexion_angle_deg"]) == pytest.approx(
                truth["theta_flexion_deg"], abs=EXACT)
            assert float(row["extension_angle_deg"]) == pytest.approx(
                truth["theta_extension_deg"], abs=EXACT)
            assert float(row["translation_pct"]) == pytest.approx(truth["dt_pct"], abs=EXACT)
            # mm at the plane the header's spacing refers to: the detector overstates
            # patient distances by the magnification (measurement.md §5)
            film = study.truth["flexion"]
            header = film["header_calibration"]
            source = header["source"]
            assert row["flexion_calibration_source"] == source
            assert row["extension_calibration_source"] == (
                study.truth["extension"]["header_calibration"]["source"])
            factor = (header["pixel_spacing_mm"][0] / film["pixel_spacing_mm"][0]
                      if header["pixel_spacing_mm"] else math.nan)
            expected_mm = truth["dt_mm"] * factor
            if math.isnan(expected_mm):
                assert row["translation_mm"] == "" and row["flexion_translation_mm"] == ""
                assert "no usable pixel spacing" in row["warnings"]
                assert row["flexion_row_spacing_mm"] == ""
            else:
                assert float(row["translation_mm"]) == pytest.approx(expected_mm, abs=EXACT)
                assert float(row["flexion_translation_mm"]) == pytest.approx(
                    truth["translation_flexion_mm"] * factor, abs=EXACT)
            if source == "detector":
                assert "spacing measured at the detector" in row["warnings"]
            translation = abs(expected_mm) > 4.0 if not math.isnan(expected_mm) else False
            angulation = abs(truth["dtheta_deg"]) > 10.0
            assert row["translation_unstable"] == str(translation).lower()
            assert row["angulation_unstable"] == str(angulation).lower()
            assert row["unstable"] == str(translation or angulation).lower()
            expected_method = ("given:session (manual)" if study.landmarks == "session"
                               else "given:landmarks-dir (manual)")
            assert row["landmark_method"] == expected_method
            # manual placement: default SD 0.6 mm per corner gives an uncertainty; on an
            # uncalibrated film it is converted with a nominal 40 mm endplate depth, so
            # angles and % keep their intervals (no mm interval)
            assert _float(row["angulation_sd_deg"]) > 0 and _float(row["translation_sd_pct"]) > 0
            if source == "uncalibrated":
                assert row["translation_sd_mm"] == ""
    # the unstable phantoms (every fourth) are found unstable at L4-L5
    flagged = {uid for uid, rs in by_study.items() for r in rs
               if r["segment"] == "L4-L5" and r["unstable"] == "true"}
    assert flagged >= {uid for uid, s in given.items()
                       if s.truth["generator"]["unstable"] == ["L4-L5"]}
    assert summary.measured == len(expected_studies)
    assert summary.segments == 5 * len(expected_studies)
    assert summary.unstable_segments == sum(r["unstable"] == "true" for r in rows)


def test_failures_table_names_every_broken_file_and_study(archive: Archive, serial_run):
    out, summary = serial_run
    failures = _csv(out / "failures.csv")
    found = {(f["kind"], f["path"], f["reason_category"]) for f in failures}
    expected = set(archive.failures)
    if not _detection_available():
        for study in archive.studies.values():
            if study.landmarks == "detect":
                folder = str(Path(study.files["flexion"]).parent.as_posix())
                expected.add(("study", folder, "landmarks"))
    assert found == expected
    reasons = {f["path"]: f["reason"] for f in failures}
    assert reasons["broken/IMG0003"].startswith("read: not a DICOM file")
    clutter = {row["path"]: row["reason"] for row in _csv(out / "clutter.csv")}
    assert set(clutter) == archive.clutter
    assert clutter["DICOMDIR"] == "a DICOMDIR index"
    assert clutter["broken/notes.txt"] == "a .txt file, not a film"
    assert "2 films recognised as flexion" in reasons["three"]
    assert "1 film in the study" in reasons["one"]
    assert "films of 2 patients" in reasons["shared"]
    if not _detection_available():
        assert "landmarks: no landmarks and automatic detection unavailable" in reasons.values()
    assert summary.exit_status == 1
    assert sum(summary.failures.values()) == len(failures)
    table = read_parquet_rows(out / "failures.parquet")
    assert [{k: ("" if v is None else v) for k, v in row.items()} for row in table] == failures


def test_parquet_holds_the_same_table_as_the_csv(serial_run):
    out, _ = serial_run
    rows = _csv(out / "results.csv")
    table = read_parquet_rows(out / "results.parquet")
    assert len(table) == len(rows)
    for text_row, row in zip(rows, table, strict=True):
        assert list(row) == list(text_row)
        for key, value in row.items():
            if value is None:
                assert text_row[key] == ""
            elif isinstance(value, bool):
                assert text_row[key] == str(value).lower()
            elif isinstance(value, float):
                assert float(text_row[key]) == value  # exact: shortest round-trip text
            else:
                assert text_row[key] == value


def test_pairs_csv_is_a_reusable_manifest(archive: Archive, serial_run, tmp_path: Path):
    out, _ = serial_run
    pairs = _csv(out / "pairs.csv")
    by_uid = {p["study_instance_uid"]: p for p in pairs}
    for uid, study in archive.studies.items():
        assert by_uid[uid]["flexion"] == study.files["flexion"]
        assert by_uid[uid]["extension"] == study.files["extension"]
    # a manifest naming the films by SOP Instance UID overrides the pairing
    uid = next(u for u, s in archive.studies.items() if s.landmarks == "landmarks-dir")
    study = archive.studies[uid]
    small = tmp_path / "small"
    shutil.copytree(archive.input_dir / Path(study.files["flexion"]).parent, small / "s")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("study_instance_uid,flexion,extension\n"
                        f"{uid},{study.sop['flexion']},{study.sop['extension']}\n")
    run_batch(BatchOptions(small, tmp_path / "res", landmarks_dir=archive.landmarks_dir,
                           manifest=manifest, quiet=True), executor=SerialExecutor())
    rows = _csv(tmp_path / "res" / "results.csv")
    reference = [r for r in _csv(out / "results.csv") if r["study_instance_uid"] == uid]
    assert [r["pairing"] for r in rows] == ["manifest"] * 5
    assert [r["angulation_deg"] for r in rows] == [r["angulation_deg"] for r in reference]
    # swapped in the manifest: the landmark file names its films in the other roles,
    # so it is not applied to the swapped pair (never measured with the wrong films)
    manifest.write_text("flexion,extension\n"
                        f"s/{Path(study.files['extension']).name},"
                        f"s/{Path(study.files['flexion']).name}\n")
    summary = run_batch(BatchOptions(small, tmp_path / "res2", landmarks_dir=archive.landmarks_dir,
                                     manifest=manifest, quiet=True), executor=SerialExecutor())
    rows = _csv(tmp_path / "res2" / "results.csv")
    assert not any(r["landmark_method"].startswith("given") for r in rows)
    if not _detection_available():
        (failure,) = _csv(tmp_path / "res2" / "failures.csv")
        assert failure["reason_category"] == "landmarks"
        assert summary.measured == 0


def _rows_of(path: Path, uids) -> list[dict[str, str]]:
    return [r for r in _csv(path) if r["study_instance_uid"] in set(uids)]


def test_rerun_skips_finished_studies_and_interrupted_runs_resume(
    archive: Archive, serial_run, tmp_path: Path
):
    out_ref, _ = serial_run
    uids = light_subset(archive, tmp_path / "input", 8)
    reference = _rows_of(out_ref / "results.csv", uids)
    assert len(reference) == 40

    class Interrupting(SerialExecutor):
        def __init__(self, after: int) -> None:
            self.after, self.calls = after, 0

        def imap_unordered(self, fn, items):
            for result in super().imap_unordered(fn, items):
                if fn.__name__ == "process_study":
                    self.calls += 1
                    if self.calls > self.after:
                        raise KeyboardInterrupt
                yield result

    out = tmp_path / "results"
    options = BatchOptions(tmp_path / "input", out, landmarks_dir=archive.landmarks_dir,
                           quiet=True)
    with pytest.raises(UserError, match=r"interrupted: 3 finished studies are kept") as stopped:
        run_batch(options, executor=Interrupting(after=3))
    assert stopped.value.exit_status == 130  # the shell's status for Ctrl-C
    journal = sorted((out / ".work" / "studies").glob("*.json"))
    assert len(journal) == 3
    assert not (out / "results.csv").exists()
    resumed = Interrupting(after=10_000)
    summary = run_batch(options, executor=resumed)
    assert summary.resumed == 3
    assert resumed.calls == 8 - 3
    assert _csv(out / "results.csv") == reference
    again = Interrupting(after=10_000)
    run_batch(options, executor=again)
    assert again.calls == 0
    assert _csv(out / "results.csv") == reference
    # a changed landmark file redoes only that study
    path = archive.landmarks_dir / f"{uids[0]}.json"
    changed = tmp_path / "landmarks"
    shutil.copytree(archive.landmarks_dir, changed)
    data = json.loads(path.read_text())
    data["flexion"]["landmarks"]["L1"]["AS"][0] += 1.0
    (changed / path.name).write_text(json.dumps(data))
    once_more = Interrupting(after=10_000)
    run_batch(BatchOptions(tmp_path / "input", out, landmarks_dir=changed, quiet=True),
              executor=once_more)
    assert once_more.calls == 1


def test_disk_full_is_reported_and_nothing_written_is_corrupted(
    archive: Archive, serial_run, tmp_path: Path, monkeypatch
):
    import app.batch._journal as journal_module

    out_ref, _ = serial_run
    uids = light_subset(archive, tmp_path / "input", 6)
    real = journal_module.atomic_write_text
    calls = []

    def filling_disk(path, text, *args, **kwargs):
        calls.append(path)
        if len(calls) > 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, text, *args, **kwargs)

    monkeypatch.setattr(journal_module, "atomic_write_text", filling_disk)
    out = tmp_path / "results"
    options = BatchOptions(tmp_path / "input", out, landmarks_dir=archive.landmarks_dir,
                           quiet=True)
    with pytest.raises(UserError, match=r"No space left on device.*intact.*rerun"):
        run_batch(options, executor=SerialExecutor())
    written = sorted((out / ".work" / "studies").iterdir())
    assert len(written) == 4 and all(json.loads(p.read_text())["key"] for p in written)
    monkeypatch.setattr(journal_module, "atomic_write_text", real)
    summary = run_batch(options, executor=SerialExecutor())
    assert summary.resumed == 4 and summary.exit_status == 0
    assert _csv(out / "results.csv") == _rows_of(out_ref / "results.csv", uids)


def test_process_pool_and_dask_local_cluster_give_identical_tables(
    archive: Archive, serial_run, tmp_path: Path
):
    from app.batch import DaskExecutor

    out_ref, _ = serial_run
    options = dict(landmarks_dir=archive.landmarks_dir, quiet=True)
    with PoolExecutor(2) as pool:
        run_batch(BatchOptions(archive.input_dir, tmp_path / "pool", **options), executor=pool)
    with DaskExecutor("local", 2) as dask:  # worker processes on the loopback interface
        run_batch(BatchOptions(archive.input_dir, tmp_path / "dask", **options), executor=dask)
    for name in ("results.csv", "failures.csv", "pairs.csv"):
        pool_bytes = (tmp_path / "pool" / name).read_bytes()
        assert pool_bytes == (tmp_path / "dask" / name).read_bytes(), name
        assert pool_bytes == (out_ref / name).read_bytes(), name
    # a running scheduler reached by address, through the command line
    from distributed import LocalCluster

    uids = light_subset(archive, tmp_path / "small", 4)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as cluster:
        status = main(["batch", str(tmp_path / "small"), "--out", str(tmp_path / "remote"),
                       "--landmarks", str(archive.landmarks_dir), "--quiet",
                       "--scheduler", cluster.scheduler_address])
    assert status == 0
    assert _csv(tmp_path / "remote" / "results.csv") == _rows_of(out_ref / "results.csv", uids)
    assert read_parquet_rows(tmp_path / "pool" / "results.parquet") == read_parquet_rows(
        tmp_path / "dask" / "results.parquet")


def test_cli_anonymize_leaves_no_identity_in_any_output(
    archive: Archive, tmp_path: Path, capsys
):
    out = tmp_path / "anon"
    status = main(["batch", str(archive.input_dir), "--out", str(out), "--landmarks",
                   str(archive.landmarks_dir), "--anonymize", "--quiet"])
    assert status == 1  # the broken files are failures
    printed = capsys.readouterr().out
    assert "failures:" in printed and "not a diagnosis" in printed
    secrets = [NAME_MARKER, "SEED", BIRTH_DATE, ACCESSION_MARKER, *archive.patient_ids,
               *archive.studies, "PAT0", "mixed/", "flexion_retake", "OTHER"]
    for path in out.rglob("*"):
        if path.is_file() and path.name != "salt":
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, (path.name, secret)
    rows = _csv(out / "results.csv")
    measured = [s for s in archive.studies.values()
                if s.landmarks != "detect" or _detection_available()]
    assert len({r["patient_id"] for r in rows}) == len({s.patient_id for s in measured})
    assert all(r["patient_id"].startswith("patient-") for r in rows)
    # same salt on a rerun: same pseudonyms (results of reruns can be joined)
    main(["batch", str(archive.input_dir), "--out", str(out), "--landmarks",
          str(archive.landmarks_dir), "--anonymize", "--quiet"])
    assert _csv(out / "results.csv") == rows


def test_cli_usage_errors_exit_2(tmp_path: Path, capsys):
    assert main(["batch", str(tmp_path / "absent"), "--out", str(tmp_path / "o")]) == 2
    assert "input folder not found" in capsys.readouterr().err
    assert main(["batch", str(tmp_path), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert main(["batch", str(tmp_path), "--out", str(tmp_path / "o"), "--criteria", "x"]) == 2
    assert main(["batch", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert main(["batch", str(tmp_path), "--out", str(tmp_path / "o"), "--manifest",
                 str(tmp_path / "none.csv")]) == 2
    # an empty folder is not an error: nothing failed, empty tables with their columns
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["batch", str(empty), "--out", str(tmp_path / "o2"), "--quiet"]) == 0
    header = (tmp_path / "o2" / "results.csv").read_text().splitlines()
    assert header[0].startswith("patient_id,study_instance_uid,")
    assert len(header) == 1


def test_sr_and_pdf_per_study_and_sr_read_back_as_landmarks(archive: Archive, serial_run,
                                                             tmp_path: Path):
    from app.report_sr import read_sr

    out_ref, _ = serial_run
    reference = {(r["study_instance_uid"], r["segment"]): r for r in _csv(out_ref / "results.csv")}
    studies = [s for s in archive.studies.values() if s.landmarks == "landmarks-dir"][:2]
    small = tmp_path / "small"
    for i, study in enumerate(studies):
        shutil.copytree(archive.input_dir / Path(study.files["flexion"]).parent, small / f"s{i}")
    out = tmp_path / "out"
    summary = run_batch(BatchOptions(small, out, landmarks_dir=archive.landmarks_dir, sr=True,
                                     pdf=True, quiet=True), executor=SerialExecutor())
    assert summary.failures == {}
    reports = sorted((out / "reports").iterdir())
    assert sorted(p.suffix for p in reports) == [".dcm", ".dcm", ".pdf", ".pdf"]
    for pdf in (p for p in reports if p.suffix == ".pdf"):
        assert pdf.read_bytes().startswith(b"%PDF")
    for study in studies:
        (sr_path,) = (p for p in reports if p.name.startswith(study.study_instance_uid)
                      and p.suffix == ".dcm")
        content = read_sr(sr_path)
        assert content["flexion"]["landmarks"]["L3"]["PS"] == pytest.approx(
            study.truth["flexion"]["landmarks"]["L3"]["PS"], abs=1e-9)
        assert [r["segment"] for r in content["results"]["segments"]] == SEGMENTS
    # a rerun keeps the reports (resume)
    stamps = {p: p.stat().st_mtime_ns for p in reports}
    run_batch(BatchOptions(small, out, landmarks_dir=archive.landmarks_dir, sr=True, pdf=True,
                           quiet=True), executor=SerialExecutor())
    assert {p: p.stat().st_mtime_ns for p in reports} == stamps
    # an SR next to the films gives the landmarks when no other source exists
    for i, study in enumerate(studies):
        (sr_path,) = (p for p in reports if p.name.startswith(study.study_instance_uid)
                      and p.suffix == ".dcm")
        shutil.copy(sr_path, small / f"s{i}" / "measurements.sr.dcm")
    run_batch(BatchOptions(small, tmp_path / "from-sr", quiet=True), executor=SerialExecutor())
    rows = _csv(tmp_path / "from-sr" / "results.csv")
    assert len(rows) == 10
    for row in rows:
        assert row["landmark_method"] == "given:sr (manual)"
        expected = reference[(row["study_instance_uid"], row["segment"])]
        assert float(row["angulation_deg"]) == pytest.approx(float(expected["angulation_deg"]),
                                                             abs=1e-9)
        assert row["translation_pct"] != "" and float(row["translation_pct"]) == pytest.approx(
            float(expected["translation_pct"]), abs=1e-9)


def test_custom_criteria_file_applies_its_thresholds(archive: Archive, serial_run,
                                                     tmp_path: Path):
    out_ref, _ = serial_run
    uids = light_subset(archive, tmp_path / "input", 3)
    settings = tmp_path / "strict.json"
    settings.write_text(json.dumps({"name": "strict", "translation_mm": {"*": 0.5},
                                    "translation_pct": None, "angulation_deg": {"*": 2.0}}))
    status = main(["batch", str(tmp_path / "input"), "--out", str(tmp_path / "out"),
                   "--landmarks", str(archive.landmarks_dir), "--criteria", str(settings),
                   "--quiet"])
    assert status == 0
    rows = _csv(tmp_path / "out" / "results.csv")
    reference = _rows_of(out_ref / "results.csv", uids)
    assert [r["angulation_deg"] for r in rows] == [r["angulation_deg"] for r in reference]
    for row in rows:
        assert row["criteria"] == "strict"
        mm = _float(row["translation_mm"])
        expected = abs(float(row["angulation_deg"])) > 2.0 or (
            not math.isnan(mm) and abs(mm) > 0.5)
        assert row["unstable"] == str(expected).lower()
