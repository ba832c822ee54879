"""The notebook API: batches, single studies, sessions and reader agreement as DataFrames.

Everything a data scientist calls from a notebook, returning pandas DataFrames
(``polars.from_pandas(df)`` or ``polars.read_parquet`` on the batch's files
for polars).  Importing this module is cheap and needs no Qt: pandas, the
DICOM readers and the batch machinery are imported when a function runs, so
a headless install (``bash scripts/install.sh --headless``) is enough.

>>> from app import api
>>> tables = api.run_batch("export/", "results/", landmarks="landmarks/")  # doctest: +SKIP
>>> tables.studies[tables.studies["unstable"]]                              # doctest: +SKIP

Functions
---------
run_batch
    Measure every study of a folder tree; :class:`BatchTables` of segments,
    studies and failures.
read_batch
    The tables of a finished (or resumed) batch from its results folder.
measure_study
    One study from a landmarks or session file (optionally with its films,
    whose DICOM calibration then applies); one row per segment.
load_session
    A saved session or SR: segments, landmarks and calibration.
agreement
    Reader agreement of two or more readers' readings (``lumbar-instability agreement``).
level_summary
    Per-level prevalence (Wilson 95 % interval) and distribution of a results table.

In a Python *script* (not a notebook) the batch's worker processes re-import
the script: put the calls under ``if __name__ == "__main__":`` or run with
``workers=0`` (everything in the calling process).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = [
    "BatchTables",
    "StudyTables",
    "agreement",
    "level_summary",
    "load_session",
    "measure_study",
    "read_batch",
    "run_batch",
]

PathType = str | PathLike[str]


@dataclass(frozen=True)
class BatchTables:
    """The tables of a batch run (pandas DataFrames, the columns of ``docs/batch.md``).

    Attributes
    ----------
    segments : DataFrame
        ``results.parquet``: one row per study and segment.
    studies : DataFrame
        ``studies.parquet``: one row per measured study.
    failures : DataFrame
        ``failures.parquet``: one row per file or study that could not be processed.
    summary : dict
        ``summary.json`` (counts, failures by reason, timing, output paths).
    out_dir : Path
        The results folder.
    """

    segments: Any
    studies: Any
    failures: Any
    summary: dict[str, Any]
    out_dir: Path


@dataclass(frozen=True)
class StudyTables:
    """One study measured: DataFrames of its segments and landmarks.

    Attributes
    ----------
    segments : DataFrame
        One row per segment: the ``measure --json`` row with each 95 % interval
        split into ``*_ci95_low`` / ``*_ci95_high`` and the verdict as ``finding``.
    landmarks : DataFrame
        One row per film, level and corner: ``film``, ``level``, ``corner``,
        ``x``, ``y`` (pixels), ``placement``, ``sd_mm``.
    calibration : DataFrame
        One row per film: ``film``, ``row_spacing_mm``, ``column_spacing_mm``,
        ``source``, ``detail``, ``warning``.
    warnings : list of str
    source : Path or None
        The file read.
    criteria : str
        Name of the criteria the verdicts follow.
    """

    segments: Any
    landmarks: Any
    calibration: Any
    warnings: list[str] = field(default_factory=list)
    source: Path | None = None
    criteria: str = "default"


def _read_table(path: Path, schema) -> Any:
    import pandas as pd

    if path.exists():
        return pd.read_parquet(path)
    return pd.DataFrame({name: pd.Series(dtype=_dtype(kind)) for name, kind in schema})


def _dtype(kind: str) -> str:
    return {"string": "object", "float64": "float64", "int64": "Int64", "bool": "boolean"}[kind]


def read_batch(out_dir: PathType) -> BatchTables:
    """Read the tables a batch wrote to ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        The batch's results folder (``--out``).

    Returns
    -------
    BatchTables

    Raises
    ------
    app.errors.UserError
        ``out_dir`` holds no batch results.
    """
    import json

    from app.batch import FAILURE_SCHEMA, RESULT_SCHEMA
    from app.batch._studies import STUDY_SCHEMA
    from app.errors import UserError

    out = Path(out_dir)
    if not (out / "results.parquet").exists():
        raise UserError(f"{out}: no batch results here (results.parquet not found)")
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else {}
    return BatchTables(
        segments=_read_table(out / "results.parquet", RESULT_SCHEMA),
        studies=_read_table(out / "studies.parquet", STUDY_SCHEMA),
        failures=_read_table(out / "failures.parquet", FAILURE_SCHEMA),
        summary=summary,
        out_dir=out,
    )


def run_batch(
    input_dir: PathType,
    out_dir: PathType,
    *,
    landmarks: PathType | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    criteria: Any = None,
    config: PathType | None = None,
    quiet: bool = True,
    **options: Any,
) -> BatchTables:
    """Run ``lumbar-instability batch`` and return its tables.

    Parameters
    ----------
    input_dir, out_dir : path-like
        The folder of films (scanned recursively) and the results folder (a
        rerun resumes).
    landmarks : path-like, optional
        Folder of landmarks or session files (``--landmarks``).
    workers : int
        Worker processes (``--workers``, default 1 or the config's); ``0`` runs
        everything in this process.
    scheduler : str, optional
        ``"local"`` or ``"tcp://HOST:PORT"`` for Dask (``--scheduler``).
    criteria : str, path-like, mapping or measure.Criteria, optional
        A preset (``"default"``, ``"white-panjabi"``), a settings file, or
        thresholds (``{"translation_mm": 4.5, "angulation_deg": {"L4-L5": 12, "*": 10}}``);
        default: the config's, else ``"default"``.
    config : path-like, optional
        A TOML batch configuration (``--config``); the arguments given here
        override it.
    quiet : bool
        No progress bar (default True).
    **options
        Further :class:`app.batch.BatchOptions` fields (``manifest``,
        ``anonymize``, ``salt_file``, ``pdf``, ``sr``, ``retry_failed``, ``plots``).

    Returns
    -------
    BatchTables

    Raises
    ------
    app.errors.UserError
        Bad options or an unwritable results folder (one line).
    """
    from app.batch import SerialExecutor
    from app.batch import run_batch as _run_batch
    from app.batch._config import batch_options

    run_options = batch_options(
        config,
        input_dir=Path(input_dir),
        out_dir=Path(out_dir),
        landmarks_dir=None if landmarks is None else Path(landmarks),
        workers=None if workers in (0, 1) else workers,
        scheduler=scheduler,
        criteria=criteria,
        quiet=quiet,
        **options,
    )
    in_process = workers == 0 and not run_options.scheduler
    executor = SerialExecutor() if in_process else None
    _run_batch(run_options, executor=executor)
    return read_batch(out_dir)


def _segments_frame(doc: dict[str, Any]):
    import pandas as pd

    from app.report_data import finding_of

    rows = []
    for record in doc["segments"]:
        row: dict[str, Any] = {}
        for key, value in record.items():
            if key.endswith("_ci95"):
                low, high = value if value is not None else (None, None)
                row[f"{key}_low"], row[f"{key}_high"] = low, high
            elif isinstance(value, dict | list):
                continue  # nested details (thresholds, rotation centre): in the JSON output
            else:
                row[key] = value
        row["finding"] = finding_of(record)
        rows.append(row)
    frame = pd.DataFrame(rows)
    def numbers_only(column) -> bool:
        values = [v for v in column if v is not None]
        return bool(values) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )

    unit_columns = ("_mm", "_pct", "_deg", "_low", "_high")  # all None when uncalibrated
    numeric = [c for c in frame.columns if c.endswith(unit_columns) or numbers_only(frame[c])]
    return frame.astype({c: "float64" for c in numeric})


def _study_tables(study, criteria, source: Path | None) -> StudyTables:
    import numpy as np
    import pandas as pd

    from app.commands.measure import measure_study as _measure
    from app.landmarks_io import FILMS
    from measure import CORNERS

    _, doc = _measure(study, criteria)
    marks = []
    for name in FILMS:
        film = study.film(name)
        sd = film.effective_sd_mm()
        for v, level in enumerate(study.levels):
            for c, corner in enumerate(CORNERS):
                x, y = film.corners[v, c]
                if not (np.isfinite(x) and np.isfinite(y)):
                    continue
                placement = "" if film.placement is None else str(film.placement[v, c])
                marks.append({"film": name, "level": level, "corner": corner, "x": float(x),
                              "y": float(y), "placement": placement or "manual",
                              "sd_mm": float(sd[v, c])})
    calibration = pd.DataFrame(
        [
            {
                "film": name,
                "row_spacing_mm": None if c["pixel_spacing_mm"] is None else c["pixel_spacing_mm"][0],
                "column_spacing_mm": None if c["pixel_spacing_mm"] is None else c["pixel_spacing_mm"][1],
                "source": c["source"],
                "detail": c["detail"],
                "warning": c["warning"],
            }
            for name, c in doc["calibration"].items()
        ]
    )
    return StudyTables(
        segments=_segments_frame(doc),
        landmarks=pd.DataFrame(marks, columns=["film", "level", "corner", "x", "y", "placement", "sd_mm"]),
        calibration=calibration,
        warnings=list(doc["warnings"]),
        source=source,
        criteria=str(doc["criteria"]["name"]),
    )


def measure_study(
    landmarks: PathType | dict[str, Any],
    *,
    flexion: PathType | None = None,
    extension: PathType | None = None,
    criteria: Any = "default",
) -> StudyTables:
    """Measure one study: landmarks (and optionally its films) to DataFrames.

    Parameters
    ----------
    landmarks : path-like or dict
        A landmarks or session file (``docs/landmarks-format.md``), or the
        parsed JSON document.
    flexion, extension : path-like, optional
        The films.  When given, their DICOM calibration (``docs/measurement.md``
        §5, with its source) replaces the spacing written in the landmarks file,
        as in a batch; a manual calibration in a session file is kept.
    criteria : str, path-like, mapping or measure.Criteria

    Returns
    -------
    StudyTables

    Raises
    ------
    app.errors.InputFileError
        The file and the problem, in one line.
    """
    from dataclasses import replace

    from app.landmarks_io import parse_landmarks, read_criteria, read_landmarks
    from measure import CalibrationSource, get_criteria

    spec = read_criteria(criteria) if isinstance(criteria, str | PathLike) else get_criteria(criteria)
    if isinstance(landmarks, dict):
        study, source = parse_landmarks(landmarks), None
    else:
        study, source = read_landmarks(landmarks), Path(landmarks)
    films = {"flexion": flexion, "extension": extension}
    if any(films.values()):
        from app.dicom_io import read_film_header

        updates = {}
        for name, path in films.items():
            if path is None:
                continue
            film = study.film(name)
            header = read_film_header(path)
            if film.calibration.source != CalibrationSource.MANUAL:
                film = replace(film, calibration=header.calibration)
            # the film's size too: the field-of-view check of its spacing (issue 14 §1)
            updates[name] = film.with_image_size(header.shape)
        study = replace(study, **updates)
    return _study_tables(study, spec, source)


def load_session(path: PathType, *, criteria: Any = None) -> StudyTables:
    """A saved session (viewer) or an SR written by this tool, as DataFrames.

    Parameters
    ----------
    path : path-like
        ``*.json`` session or landmarks file, or a DICOM SR (``report --sr``).
    criteria : optional
        Measure with these criteria instead of the session's own.

    Returns
    -------
    StudyTables
        Measured again from the saved landmarks and calibration (the numbers
        the viewer shows).
    """
    from app.landmarks_io import parse_landmarks, read_criteria, read_landmarks
    from measure import get_criteria

    path = Path(path)
    if path.suffix.lower() == ".json":
        study = read_landmarks(path)
    else:
        from app.report_sr import read_sr

        study = parse_landmarks(read_sr(path), path)
    if criteria is None:
        saved = study.extra.get("criteria", "default")
        spec = get_criteria(saved) if isinstance(saved, dict | str) else get_criteria("default")
    elif isinstance(criteria, str | PathLike):
        spec = read_criteria(criteria)
    else:
        spec = get_criteria(criteria)
    return _study_tables(study, spec, path)


def agreement(
    readers: list[PathType],
    names: list[str] | None = None,
    *,
    criteria: Any = "default",
    common: bool = False,
):
    """Reader agreement (ICC, SEM/SDC, Bland–Altman, kappa) as DataFrames.

    Parameters
    ----------
    readers : list of path-like
        One per reader: a file or folder of sessions, landmarks files, SRs or a
        batch results table (``docs/agreement.md``).
    names : list of str, optional
        The readers' names.
    criteria : str or path-like
        For the unstable verdict.
    common : bool
        Only the studies every reader read.

    Returns
    -------
    app.agreement.AgreementResult
        ``.icc``, ``.bland_altman``, ``.kappa``, ``.readings`` DataFrames.
    """
    from app.agreement import agreement as _agreement

    return _agreement(readers, names, criteria=criteria, common=common)


def level_summary(segments, criteria: Any = "default"):
    """Per-level prevalence of instability (Wilson 95 % interval) and distributions.

    Parameters
    ----------
    segments : DataFrame
        ``BatchTables.segments`` (or any table with the ``results`` columns).
    criteria : str or measure.Criteria
        For the thresholds shown.

    Returns
    -------
    DataFrame
        One row per segment (``app.batch._cohort.level_table``).
    """
    from app.batch._cohort import level_table

    return level_table(segments, criteria)
