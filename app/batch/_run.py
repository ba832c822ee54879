"""The batch pipeline: scan, pair, process, measure once, write the tables."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from app import __version__
from app.atomic import atomic_write_text
from app.batch._anonymize import Pseudonymizer, load_or_create_salt
from app.batch._executors import Executor, make_executor
from app.batch._journal import Journal
from app.batch._landmark_files import LandmarkIndex
from app.batch._measure import RESULT_SCHEMA, measure_studies
from app.batch._output import StagedTables
from app.batch._pairing import (
    group_studies,
    pair_films,
    read_manifest,
    study_key,
    write_pairs_csv,
)
from app.batch._progress import Progress, format_duration
from app.batch._records import Failure, FilmRecord, StudyOutcome, StudyPlan
from app.batch._scan import HeaderChunk, list_files, read_header_chunk
from app.batch._studies import STUDY_SCHEMA, dicom_date, study_rows
from app.batch._tables import write_csv, write_parquet
from app.batch._worker import NO_DETECTION, StudyTask, process_study
from app.errors import UserError
from measure import CalibrationSource

__all__ = ["BatchOptions", "BatchSummary", "run_batch"]

#: Files whose headers one task reads.
HEADER_CHUNK = 32

FAILURE_SCHEMA = (
    ("kind", "string"),
    ("path", "string"),
    ("reason_category", "string"),
    ("reason", "string"),
    ("patient_id", "string"),
    ("study_instance_uid", "string"),
)


@dataclass
class BatchOptions:
    """What ``lumbar-instability batch`` was asked to do.

    Parameters
    ----------
    input_dir : Path
        Folder scanned recursively for DICOM films.
    out_dir : Path
        Results folder (created).  May not be the input folder.
    landmarks_dir : Path, optional
        Landmarks/session JSON files to use instead of detection.
    manifest : Path, optional
        Pairing manifest CSV that overrides the automatic pairing.
    workers : int
        1 = in this process; more = a process pool (or LocalCluster size).
    scheduler : str, optional
        ``local`` or ``tcp://HOST:PORT``: run on Dask distributed.
    anonymize : bool
        Replace identifiers by salted hashes in every output.
    salt_file : str, optional
        The salt for ``anonymize`` (default: ``RESULTS_DIR/.work/salt``).
    criteria : str or measure.Criteria
        Criteria preset (``default``, ``white-panjabi``) or custom thresholds.
    pdf, sr : bool
        Also write a PDF report / DICOM SR per measured study.
    retry_failed : bool
        Redo studies whose failure is in the journal (default: keep them).
    plots : bool
        Write the cohort plots and ``summary.html`` (default True).
    quiet : bool
        No progress bar.
    force : bool
        Write into a results folder that belongs to a run over a different
        input (refused by default: its tables would silently be replaced).
    """

    input_dir: Path
    out_dir: Path
    landmarks_dir: Path | None = None
    manifest: Path | None = None
    workers: int = 1
    scheduler: str | None = None
    anonymize: bool = False
    salt_file: str | None = None
    criteria: Any = "default"
    pdf: bool = False
    sr: bool = False
    acknowledge_safety: bool = False
    retry_failed: bool = False
    quiet: bool = False
    plots: bool = True
    force: bool = False


@dataclass
class BatchSummary:
    """What a run did; ``exit_status`` is 0 when nothing failed, else 1."""

    files: int = 0
    studies: int = 0
    measured: int = 0
    resumed: int = 0
    segments: int = 0
    unstable_segments: int = 0
    unstable_studies: int = 0
    borderline_segments: int = 0
    safety_studies: int = 0
    review_studies: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    landmark_files: dict[str, Any] | None = None
    clutter: int = 0
    input: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    decode_seconds: float = 0.0
    worker_seconds: float = 0.0
    executor: str = ""
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def exit_status(self) -> int:
        """0: everything went through; 1: some files or studies failed."""
        return 1 if sum(self.failures.values()) else 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (written to ``summary.json``)."""
        return {
            "software_version": __version__,
            "files": self.files,
            "studies": self.studies,
            "measured_studies": self.measured,
            "resumed_studies": self.resumed,
            "segments": self.segments,
            "unstable_segments": self.unstable_segments,
            "unstable_studies": self.unstable_studies,
            "borderline_segments": self.borderline_segments,
            "safety_studies": self.safety_studies,
            "needs_review_studies": self.review_studies,
            "failures_by_reason": dict(sorted(self.failures.items())),
            "landmark_files": self.landmark_files,
            "clutter_files": self.clutter,
            "input": self.input,
            "seconds": round(self.seconds, 3),
            "decode_seconds": round(self.decode_seconds, 3),
            "worker_seconds": round(self.worker_seconds, 3),
            "executor": self.executor,
            "outputs": self.outputs,
        }

    def text(self) -> str:
        """The summary printed at the end of a run."""
        lines = [
            f"studies: {self.studies} found, {self.measured} measured"
            + (f" ({self.resumed} from an earlier run)" if self.resumed else ""),
            f"segments: {self.segments}, unstable: {self.unstable_segments} "
            f"in {self.unstable_studies} studies, borderline: {self.borderline_segments}"
            + (f" (not counting {self.review_studies} studies whose detected landmarks need review: "
               "needs_review in the results)" if self.review_studies else ""),
        ]
        total = sum(self.failures.values())
        if total:
            detail = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items()))
            lines.append(f"failures: {total} ({detail}); see {self.outputs.get('failures_csv')}")
        else:
            lines.append("failures: none")
        if self.clutter:
            lines.append(f"clutter: {self.clutter} files that are not films (README, DICOMDIR, "
                         f"thumbs.db ...), listed in {self.outputs.get('clutter_csv')}; not failures")
        if self.landmark_files is not None:
            used, read = self.landmark_files["used"], self.landmark_files["read"]
            lines.append(f"landmark files: {used} of {read} used"
                         + (f", {read - used} ignored (see {self.outputs.get('landmark_files_csv')})"
                            if read > used else ""))
        lines.append(f"results: {self.outputs.get('results_csv')} (+ .parquet), one row per "
                     f"study: {self.outputs.get('studies_csv')}")
        if self.outputs.get("summary_html"):
            lines.append(f"cohort summary and plots: {self.outputs['summary_html']}")
        lines.append(
            f"time: {format_duration(self.seconds)} on {self.executor}"
            + (f", {100 * self.decode_seconds / self.worker_seconds:.0f} % of worker time "
               "decoding" if self.worker_seconds > 0 else "")
        )
        lines.append("A measurement aid, not a diagnosis.")
        return "\n".join(lines)


class _Scrubber:
    """Applies the pseudonymizer to records, rows and reasons."""

    def __init__(self, pseudo: Pseudonymizer, root: Path) -> None:
        self.pseudo = pseudo
        self.root = str(root)

    def file(self, path: str) -> str:
        return self.pseudo(path, "file")

    def text(self, text: str, files: Sequence[str], patient_id: str = "",
             study_instance_uid: str = "") -> str:
        if not self.pseudo.enabled:
            return text
        text = text.replace(self.root, "INPUT_DIR")
        names = {}
        # identifiers quoted in a reason (long enough not to hit ordinary numbers)
        if len(study_instance_uid) >= 6:
            names[study_instance_uid] = self.pseudo(study_instance_uid, "study")
        if len(patient_id) >= 6:
            names[patient_id] = self.pseudo(patient_id, "patient")
        for path in files:
            names[path] = self.file(path)
            names[PurePosixPath(path).name] = self.file(path)
        # An empty name (the folder "." of films at the top of INPUT_DIR has no
        # name) would be "found" between every two characters, and a short one
        # (a file "1") inside other words: short names are replaced only as whole
        # words, long ones wherever they occur; longest first.
        names = {k: v for k, v in names.items() if k.strip(".")}
        if not names:
            return text
        alternatives = [
            re.escape(name) if len(name) >= 6 else rf"(?<![\w.\-]){re.escape(name)}(?![\w\-]|\.\w)"
            for name in sorted(names, key=len, reverse=True)
        ]
        return re.sub("|".join(alternatives), lambda match: names[match.group(0)], text)

    def failure_row(self, failure: Failure) -> dict[str, Any]:
        path = failure.path
        files = failure.files
        if self.pseudo.enabled and not path.startswith("manifest line"):
            path = self.file(failure.path)
            files = (*failure.files, failure.path)
        return {
            "kind": failure.kind,
            "path": path,
            "reason_category": failure.category,
            "reason": self.text(failure.reason, files, failure.patient_id,
                                failure.study_instance_uid),
            "patient_id": self.pseudo(failure.patient_id, "patient"),
            "study_instance_uid": self.pseudo(failure.study_instance_uid, "study"),
        }


def _check_options(options: BatchOptions) -> tuple[Path, Path]:
    input_dir = Path(options.input_dir).expanduser().resolve()
    out_dir = Path(options.out_dir).expanduser().resolve()
    if not input_dir.is_dir():
        raise UserError(f"{options.input_dir}: input folder not found")
    if out_dir == input_dir:
        raise UserError(f"{options.out_dir}: the results folder must differ from the input folder")
    if options.landmarks_dir is not None and not Path(options.landmarks_dir).is_dir():
        raise UserError(f"{options.landmarks_dir}: --landmarks folder not found")
    if options.anonymize and (options.pdf or options.sr):
        raise UserError("--anonymize cannot be combined with --pdf or --sr: per-study reports "
                        "carry the patient's identity")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{options.out_dir}: cannot create the results folder: "
                        f"{exc.strerror or exc}") from None
    return input_dir, out_dir


def _write_error(path: Path | str, exc: OSError) -> UserError:
    return UserError(
        f"{path}: cannot write: {exc.strerror or exc}; files written before are intact, "
        "free space and rerun the same command to resume"
    )


def run_batch(
    options: BatchOptions,
    *,
    executor: Executor | None = None,
    stream: TextIO | None = None,
) -> BatchSummary:
    """Run the whole batch pipeline.

    Parameters
    ----------
    options : BatchOptions
    executor : Executor, optional
        Where the work runs (default: from ``options.workers``/``scheduler``;
        a given executor is not closed).
    stream : file, optional
        Progress and log lines (stderr by default).

    Returns
    -------
    BatchSummary

    Raises
    ------
    UserError
        Bad options, or the results folder cannot be written (everything
        written before stays intact; a rerun resumes).
    """
    start = time.perf_counter()
    stream = stream if stream is not None else sys.stderr
    landmark_files: dict[str, Any] | None = None
    clutter: list[tuple[str, str]] = []
    input_dir, out_dir = _check_options(options)
    manifest = read_manifest(options.manifest) if options.manifest else []
    pseudo = Pseudonymizer(
        load_or_create_salt(out_dir, options.salt_file) if options.anonymize else None
    )
    scrub = _Scrubber(pseudo, input_dir)
    own = executor is None
    if own:
        executor = make_executor(options.workers, options.scheduler)
    assert executor is not None
    summary = BatchSummary(executor=executor.describe())

    def log(text: str) -> None:
        if not options.quiet:
            print(text, file=stream, flush=True)

    try:
        films, failures, found, clutter = _scan(input_dir, out_dir, executor, options, log,
                                                stream, summary.input)
        summary.clutter = len(clutter)
        summary.files = len(films) + sum(f.kind == "file" for f in failures)
        plans, pair_failures, landmark_files = _plan(input_dir, films, found, manifest, options)
        failures.extend(pair_failures)
        if landmark_files is not None:
            summary.landmark_files = {k: v for k, v in landmark_files.items() if k != "files"}
            log(_landmarks_line(landmark_files, options.landmarks_dir))
            unusable = [r for r in landmark_files["files"]
                        if r["status"] == "ignored" and not r["reason"].startswith("matched")]
            if landmark_files["read"] and len(unusable) == landmark_files["read"]:
                # not one file in the landmarks format: the user meant to give
                # landmarks, and detecting every study instead would hide it
                first = unusable[0]
                raise UserError(
                    f"{options.landmarks_dir}: --landmarks: 0 of {landmark_files['read']} files "
                    f"used, none is a landmarks file (e.g. {Path(first['path']).name}: "
                    f"{first['reason']}); fix the files or leave out --landmarks to detect "
                    "the landmarks"
                )
        summary.studies = len(plans) + sum(
            1 for f in pair_failures if f.category == "pairing"
        )

        outcomes = _process(
            plans, input_dir, out_dir, executor, options, scrub, summary, log, stream
        )
        measured = [(plan, outcomes[plan.key]) for plan in plans if outcomes[plan.key].ok]
        for plan in plans:
            outcome = outcomes[plan.key]
            if not outcome.ok:
                failures.append(Failure("study", _folder(plan), outcome.reason, plan.patient_id,
                                        plan.study_instance_uid,
                                        (plan.flexion.path, plan.extension.path)))
        want_reports = options.pdf or options.sr
        per_study = measure_studies([o for _, o in measured], options.criteria,
                                    with_records=want_reports)
        rows = []
        reportable = []
        for (plan, outcome), segments in zip(measured, per_study, strict=True):
            if segments and "failure" in segments[0]:
                failures.append(Failure("study", _folder(plan), segments[0]["failure"],
                                        plan.patient_id, plan.study_instance_uid,
                                        (plan.flexion.path, plan.extension.path)))
                continue
            summary.measured += 1
            records = [seg.pop("_record", None) for seg in segments]
            safeties = [seg.pop("_safety", []) for seg in segments]
            safety = safeties[0] if safeties else []
            if safety:
                summary.safety_studies += 1
                if not options.acknowledge_safety:
                    # the rows stay in the tables (column 'safety'); the study is listed
                    # with the reason, no report is written for it, and the exit status is 1
                    failures.append(Failure(
                        "study", _folder(plan),
                        "safety: " + " ".join(w["message"] for w in safety)
                        + " (rows kept in the tables; no report; --acknowledge-safety to accept)",
                        plan.patient_id, plan.study_instance_uid,
                        (plan.flexion.path, plan.extension.path)))
            accepted = not safety or options.acknowledge_safety
            reportable.append((plan, outcome, records if accepted else None, safety))
            for segment in segments:
                rows.append(_row(plan, outcome, segment, pseudo))
        if want_reports:
            failures.extend(
                _reports(reportable, input_dir, out_dir, executor, options, log, stream)
            )
    except KeyboardInterrupt:
        # Ctrl-C: stop the workers now (not after the studies in flight); what they
        # finished is journaled, and a rerun resumes from it.
        if own:
            executor.abort()
            own = False
        kept = len(list(Journal(out_dir).folder.glob("*.json")))
        raise UserError(
            f"interrupted: {kept} finished studies are kept in {out_dir / '.work'}; run the "
            "same command again to resume (no tables were written by this run)",
            exit_status=130,
        ) from None
    finally:
        if own:
            executor.close()

    count_verdicts(summary, rows)
    summary.failures = dict(Counter(f.category for f in failures))

    days = {(r["study_instance_uid"], r["flexion_sop_instance_uid"]): r.pop("_day") for r in rows}
    studies = study_rows(rows, options.criteria, {k: v for k, v in days.items() if v is not None})
    failure_rows = [scrub.failure_row(f) for f in failures]
    metadata = {"software_version": __version__, "criteria": _criteria_name(options.criteria),
                "anonymized": str(options.anonymize).lower()}
    outputs = {
        "results_csv": out_dir / "results.csv",
        "results_parquet": out_dir / "results.parquet",
        "studies_csv": out_dir / "studies.csv",
        "studies_parquet": out_dir / "studies.parquet",
        "failures_csv": out_dir / "failures.csv",
        "failures_parquet": out_dir / "failures.parquet",
        "pairs_csv": out_dir / "pairs.csv",
        "clutter_csv": out_dir / "clutter.csv",
        "summary_json": out_dir / "summary.json",
    }
    if landmark_files is not None:
        outputs["landmark_files_csv"] = out_dir / "landmark_files.csv"
    summary.outputs = {k: str(v) for k, v in outputs.items()}
    result_columns = [name for name, _ in RESULT_SCHEMA]
    failure_columns = [name for name, _ in FAILURE_SCHEMA]
    # Every table goes to a staging folder first and the set is swapped in only
    # when all are written: a full disk leaves the previous run's tables intact.
    current = None
    try:
        tables = StagedTables(out_dir)
        current = outputs["results_parquet"]
        write_parquet(tables.path(current.name), rows, RESULT_SCHEMA, metadata)
        current = outputs["results_csv"]
        write_csv(tables.path(current.name), rows, result_columns)
        current = outputs["studies_parquet"]
        write_parquet(tables.path(current.name), studies, STUDY_SCHEMA, metadata)
        current = outputs["studies_csv"]
        write_csv(tables.path(current.name), studies, [name for name, _ in STUDY_SCHEMA])
        current = outputs["failures_parquet"]
        write_parquet(tables.path(current.name), failure_rows, FAILURE_SCHEMA, metadata)
        current = outputs["failures_csv"]
        write_csv(tables.path(current.name), failure_rows, failure_columns)
        current = outputs["pairs_csv"]
        write_pairs_csv(tables.path(current.name), [_anonymous_plan(p, pseudo) for p in plans])
        current = outputs["clutter_csv"]
        write_csv(tables.path(current.name),
                  [{"path": pseudo(path, "file"), "reason": reason} for path, reason in clutter],
                  ["path", "reason"])
        if landmark_files is not None:
            current = outputs["landmark_files_csv"]
            write_csv(tables.path(current.name),
                      [{**row, "path": _landmark_file_name(row["path"], options, pseudo)}
                       for row in landmark_files["files"]],
                      ["path", "status", "reason"])
        if options.plots:
            _write_cohort(tables, rows, studies, options, summary, log)
        summary.seconds = time.perf_counter() - start
        current = outputs["summary_json"]
        atomic_write_text(tables.path(current.name),
                          json.dumps(summary.to_json(), indent=2) + "\n")
        current = out_dir
        tables.commit()
    except OSError as exc:
        raise _write_error(current, exc) from None
    return summary


_INPUT_RECORD = Path(".work") / "input.json"


def _check_input_identity(
    input_dir: Path, out_dir: Path, listing: Any, options: BatchOptions
) -> dict[str, Any]:
    """Refuse a results folder that belongs to a run over another input (unless ``force``).

    The input is identified by its folder and a fingerprint of the files found in it
    (relative paths, SHA-256).  The same folder is always accepted (a rerun resumes,
    new studies are added); another folder is accepted when it holds the same files
    (the archive was moved).  The identity is recorded before any work starts, in
    ``RESULTS_DIR/.work/input.json`` and later in ``summary.json``.
    """
    names = sorted([*listing.files, *listing.json_files])
    digest = hashlib.sha256("\n".join(names).encode("utf-8", "surrogateescape")).hexdigest()
    identity = {
        "input_dir": str(input_dir),
        "files": len(names),
        "files_sha256": digest,
        "landmarks_dir": str(Path(options.landmarks_dir).resolve()) if options.landmarks_dir else None,
    }
    record = out_dir / _INPUT_RECORD
    previous = None
    if record.is_file():
        from app.errors import InputFileError
        from app.jsonfile import read_json

        try:
            previous = read_json(record)
        except InputFileError:
            previous = None
    if (
        isinstance(previous, dict)
        and previous.get("input_dir") != identity["input_dir"]
        and previous.get("files_sha256") != identity["files_sha256"]
        and not options.force
    ):
        raise UserError(
            f"{options.out_dir}: holds the results of a run over another input "
            f"({previous.get('input_dir')}, {previous.get('files')} files); choose another "
            "results folder, or add --force to replace them"
        )
    try:
        atomic_write_text(record, json.dumps(identity, indent=2) + "\n")
    except OSError as exc:
        raise _write_error(record, exc) from None
    return identity


def _landmark_file_name(path: str, options: BatchOptions, pseudo: Pseudonymizer) -> str:
    """A --landmarks file relative to its folder (a pseudonym under --anonymize: the
    names are often StudyInstanceUIDs)."""
    try:
        name = Path(path).relative_to(Path(options.landmarks_dir).resolve()).as_posix()
    except ValueError:
        name = Path(path).name
    return pseudo(name, "file")


def _write_cohort(tables: StagedTables, rows, studies, options: BatchOptions,
                  summary: BatchSummary, log) -> None:
    """Cohort plots and summary.html, staged with the tables; a plotting problem is
    reported, never fatal."""
    from app.batch._cohort import write_cohort

    info = {
        "studies measured": summary.measured,
        "segments": summary.segments,
        "unstable segments": summary.unstable_segments,
        "failures": sum(summary.failures.values()),
        "software": f"lumbar-instability {__version__}",
    }
    try:
        written = write_cohort(tables.staging, rows, studies, options.criteria, info)
    except OSError as exc:
        raise _write_error(tables.out_dir / "summary.html", exc) from None
    except Exception as exc:  # the tables are written; a plot must not fail the run
        log(f"cohort plots not written: {type(exc).__name__}: {exc}")
        return
    for path in written:
        tables.path(path.name)  # swapped in with the tables
    summary.outputs.update({p.stem if p.suffix == ".png" else "summary_html":
                            str(tables.out_dir / p.name) for p in written})


def _criteria_name(criteria: Any) -> str:
    return str(getattr(criteria, "name", criteria))


def _folder(plan: StudyPlan) -> str:
    parents = {PurePosixPath(plan.flexion.path).parent, PurePosixPath(plan.extension.path).parent}
    return parents.pop().as_posix() if len(parents) == 1 else PurePosixPath(
        plan.flexion.path).parent.as_posix()


def _scan(
    input_dir: Path, out_dir: Path, executor: Executor, options: BatchOptions, log, stream,
    scan_input: dict[str, Any],
) -> tuple[list[FilmRecord], list[Failure], list[tuple[Path, str]], list[tuple[str, str]]]:
    listing = list_files(input_dir, exclude=[out_dir])
    options_input = _check_input_identity(input_dir, out_dir, listing, options)
    scan_input.update(options_input)
    log(f"scanning {len(listing.files)} files on {executor.describe()}")
    # Small folders are split so every worker gets some headers; large ones use
    # chunks of HEADER_CHUNK files to keep the task overhead low.
    size = max(1, min(HEADER_CHUNK, -(-len(listing.files) // (4 * executor.workers))))
    chunks = [
        HeaderChunk(str(input_dir), tuple(listing.files[i : i + size]))
        for i in range(0, len(listing.files), size)
    ]
    progress = Progress(len(listing.files), "files", stream=stream, enabled=not options.quiet)
    results: list[list] = [[] for _ in chunks]
    for index, result, error in executor.imap_unordered(read_header_chunk, chunks):
        if error is not None:
            result = [Failure("file", p, error, files=(p,)) for p in chunks[index].paths]
        results[index] = result
        progress.advance(len(chunks[index].paths))
    progress.close()
    films: list[FilmRecord] = []
    failures = list(listing.failures)
    reports: list[tuple[Path, str]] = []
    seen: dict[str, str] = {}
    for chunk, chunk_results in zip(chunks, results, strict=True):
        for path, item in zip(chunk.paths, chunk_results, strict=True):
            if isinstance(item, Failure):
                failures.append(item)
            elif isinstance(item, tuple):
                reports.append((input_dir / path, item[1]))
            elif item.sop_instance_uid and item.sop_instance_uid in seen:
                failures.append(Failure(
                    "file", path,
                    f"duplicate: same SOPInstanceUID as {seen[item.sop_instance_uid]}; ignored",
                    item.patient_id, item.study_instance_uid,
                    (path, seen[item.sop_instance_uid]),
                ))
            else:
                seen[item.sop_instance_uid] = path
                films.append(item)
    return (films, failures, reports + [(input_dir / p, "json") for p in listing.json_files],
            listing.clutter)


def _plan(
    input_dir: Path,
    films: list[FilmRecord],
    found: list[tuple[Path, str]],
    manifest: Sequence,
    options: BatchOptions,
) -> tuple[list[StudyPlan], list[Failure], dict[str, Any] | None]:
    index = LandmarkIndex.build(
        Path(options.landmarks_dir).resolve() if options.landmarks_dir else None,
        [p for p, kind in found if kind == "json"],
        [(p, study) for p, study in found if study != "json"],
    )
    pairs, failures = pair_films(group_studies(films), manifest)
    plans = []
    for flexion, extension, pairing, warnings in pairs:
        path, origin = index.lookup(
            flexion.sop_instance_uid, extension.sop_instance_uid, flexion.study_instance_uid,
            PurePosixPath(flexion.path).parent.as_posix(),
        )
        if path:
            try:
                tag = origin + ":" + hashlib.sha256(Path(path).read_bytes()).hexdigest()
            except OSError:
                tag = origin + ":" + path
        else:
            tag = "detect"
        plans.append(StudyPlan(
            key=study_key(flexion, extension, tag),
            patient_id=flexion.patient_id,
            study_instance_uid=flexion.study_instance_uid,
            flexion=flexion,
            extension=extension,
            pairing=pairing,
            landmarks_path=path,
            landmarks_origin=origin,
            warnings=warnings,
        ))
    return plans, failures, index.accounting() if options.landmarks_dir else None


def _landmarks_line(accounting: dict[str, Any], landmarks_dir: Path) -> str:
    """``landmarks: 12 of 60 files in DIR used; 48 ignored (...)``."""
    line = (f"landmarks: {accounting['used']} of {accounting['read']} files in {landmarks_dir} "
            "used")
    if accounting["ignored"]:
        reasons = "; ".join(f"{n} {why}" for why, n in sorted(accounting["ignored_by_reason"].items()))
        line += f"; {accounting['ignored']} ignored ({reasons}; see landmark_files.csv)"
    return line


def _process(
    plans: list[StudyPlan],
    input_dir: Path,
    out_dir: Path,
    executor: Executor,
    options: BatchOptions,
    scrub: _Scrubber,
    summary: BatchSummary,
    log,
    stream,
) -> dict[str, StudyOutcome]:
    journal = Journal(out_dir)
    outcomes: dict[str, StudyOutcome] = {}
    pending: list[StudyPlan] = []
    for plan in plans:
        previous = journal.load(plan.key)
        if previous is not None and (previous.ok or not options.retry_failed):
            outcomes[plan.key] = previous
        else:
            pending.append(plan)
    summary.resumed = len(plans) - len(pending)
    if summary.resumed:
        log(f"resuming: {summary.resumed} studies already done, {len(pending)} to go")
    progress = Progress(len(pending), "studies", stream=stream, enabled=not options.quiet)
    tasks = [StudyTask(plan, str(input_dir)) for plan in pending]
    for index, outcome, error in executor.imap_unordered(process_study, tasks):
        plan = pending[index]
        if error is not None:  # infrastructure failure: reported, not journaled, retried next run
            outcome = StudyOutcome(key=plan.key, ok=False, reason=error)
        else:
            if not outcome.ok:
                files = [plan.flexion.path, plan.extension.path]
                if plan.landmarks_path:
                    files.append(Path(plan.landmarks_path).name)
                outcome.reason = scrub.text(outcome.reason, files, plan.patient_id,
                                            plan.study_instance_uid)
            try:
                # A study that failed only because detection is not installed is
                # redone on the next run, when it may be.
                if outcome.ok or outcome.reason != NO_DETECTION:
                    journal.save(outcome)
            except OSError as exc:
                progress.close()
                raise _write_error(journal.path(plan.key), exc) from None
            summary.decode_seconds += outcome.decode_seconds
            summary.worker_seconds += outcome.total_seconds
        outcomes[plan.key] = outcome
        progress.advance(failed=not outcome.ok)
    progress.close()
    return outcomes


def _reports(
    reportable: list[tuple[StudyPlan, StudyOutcome, list | None, list]],
    input_dir: Path,
    out_dir: Path,
    executor: Executor,
    options: BatchOptions,
    log,
    stream,
) -> list[Failure]:
    """Write the per-study PDF/SR in the workers; existing reports are kept (resume)."""
    from app.batch._reports import ReportTask, session_dict, write_reports

    folder = out_dir / "reports"
    tasks, owners = [], []
    for plan, outcome, records, safety in reportable:
        if records is None:  # unacknowledged safety warnings: no report
            continue
        stem = f"{_safe(plan.study_instance_uid or plan.key)}_{plan.key[:8]}"
        pdf = folder / f"{stem}.pdf" if options.pdf else None
        sr = folder / f"{stem}.sr.dcm" if options.sr else None
        todo_pdf = str(pdf) if pdf is not None and not pdf.exists() else ""
        todo_sr = str(sr) if sr is not None and not sr.exists() else ""
        if not (todo_pdf or todo_sr):
            continue
        session = session_dict(plan, outcome, records, _criteria_name(options.criteria),
                               input_dir)
        # acknowledged by --acknowledge-safety (else the study has no report)
        session["safety"] = {"warnings": safety, "acknowledged": sorted({w["check"] for w in safety})}
        tasks.append(ReportTask(session, todo_pdf, todo_sr))
        owners.append(plan)
    if not tasks:
        return []
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(folder, exc) from None
    progress = Progress(len(tasks), "reports", stream=stream, enabled=not options.quiet)
    failures = []
    for index, reason, error in executor.imap_unordered(write_reports, tasks):
        reason = error or reason
        plan = owners[index]
        if reason:
            failures.append(Failure("study", _folder(plan), reason, plan.patient_id,
                                    plan.study_instance_uid,
                                    (plan.flexion.path, plan.extension.path)))
        progress.advance(failed=bool(reason))
    progress.close()
    return failures


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in ".-_" else "_" for ch in text)[:80]


def _anonymous_plan(plan: StudyPlan, pseudo: Pseudonymizer) -> StudyPlan:
    if not pseudo.enabled:
        return plan
    from dataclasses import replace

    def film(record: FilmRecord) -> FilmRecord:
        return replace(
            record,
            path=pseudo(record.path, "file"),
            patient_id=pseudo(record.patient_id, "patient"),
            study_instance_uid=pseudo(record.study_instance_uid, "study"),
            series_instance_uid=pseudo(record.series_instance_uid, "series"),
            sop_instance_uid=pseudo(record.sop_instance_uid, "instance"),
        )

    return replace(
        plan,
        patient_id=pseudo(plan.patient_id, "patient"),
        study_instance_uid=pseudo(plan.study_instance_uid, "study"),
        flexion=film(plan.flexion),
        extension=film(plan.extension),
    )


def count_verdicts(summary: BatchSummary, rows: list[dict[str, Any]]) -> None:
    """Fill the summary's segment counts from the result rows.

    Verdicts of rows with ``needs_review`` (detected landmarks whose labels or
    facing are unsure) are not counted until a reader has reviewed them (a
    reviewed session or landmarks file given to the next run); they are
    counted in ``review_studies`` instead.
    """
    summary.segments = len(rows)
    counted = [r for r in rows if not r.get("needs_review")]
    summary.unstable_segments = sum(bool(r.get("unstable")) for r in counted)
    summary.unstable_studies = len({r["study_instance_uid"] for r in counted if r.get("unstable")})
    summary.borderline_segments = sum(bool(r.get("borderline")) for r in counted)
    summary.review_studies = len({r["study_instance_uid"] for r in rows if r.get("needs_review")})


def _row(
    plan: StudyPlan, outcome: StudyOutcome, segment: dict[str, Any], pseudo: Pseudonymizer
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "patient_id": pseudo(plan.patient_id, "patient"),
        "study_instance_uid": pseudo(plan.study_instance_uid, "study"),
        "flexion_sop_instance_uid": pseudo(plan.flexion.sop_instance_uid, "instance"),
        "extension_sop_instance_uid": pseudo(plan.extension.sop_instance_uid, "instance"),
        "flexion_file": pseudo(plan.flexion.path, "file"),
        "extension_file": pseudo(plan.extension.path, "file"),
        "pairing": plan.pairing,
        "landmark_method": outcome.landmark_method,
    }
    # Dates order a patient's studies over time; --anonymize keeps only the interval
    # (studies.days_since_first_study), never the date itself.
    study_date = dicom_date(plan.flexion.study_date or plan.extension.study_date)
    acquired = dicom_date(plan.flexion.acquisition_datetime)
    row["study_date"] = "" if pseudo.enabled or study_date is None else study_date.isoformat()
    row["acquisition_date"] = "" if pseudo.enabled or acquired is None else acquired.isoformat()
    when = study_date or acquired
    row["_day"] = when.toordinal() if when else None
    for role in ("flexion", "extension"):
        spacing = getattr(outcome, f"{role}_spacing_mm") or (None, None)
        row[f"{role}_calibration_source"] = getattr(outcome, f"{role}_calibration_source")
        row[f"{role}_row_spacing_mm"] = spacing[0]
        row[f"{role}_column_spacing_mm"] = spacing[1]
    row.update(segment)
    row["needs_review"] = bool(outcome.needs_review)
    row["review_reasons"] = "; ".join(outcome.review_reasons)
    warnings = list(outcome.warnings)
    for role in ("flexion", "extension"):
        source = CalibrationSource(getattr(outcome, f"{role}_calibration_source"))
        if source.is_calibrated and source.warning:  # uncalibrated: said by the measurement
            warnings.append(f"{role} film: {source.warning}")
    warnings += list(segment.get("warnings", []))
    row["warnings"] = "; ".join(dict.fromkeys(warnings))
    return row
