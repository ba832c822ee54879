"""Batch processing of DICOM folders for research (``lumbar-instability batch``).

Scan a folder recursively (headers only), group films by study, pair the
flexion and extension films, take existing landmarks or detect them, measure
every study in one vectorised :func:`measure.segmental_motion` call and write
tidy tables (CSV + Parquet), a failures table and a summary.  Runs serially, on
a process pool or on Dask distributed; resumable.  See ``docs/batch.md``.
"""

from app.batch._anonymize import Pseudonymizer, load_or_create_salt
from app.batch._executors import (
    DaskExecutor,
    Executor,
    PoolExecutor,
    SerialExecutor,
    make_executor,
)
from app.batch._measure import RESULT_SCHEMA, measure_studies
from app.batch._pairing import ManifestRow, group_studies, pair_films, read_manifest, study_key
from app.batch._progress import Progress, format_duration
from app.batch._records import Failure, FilmRecord, StudyOutcome, StudyPlan
from app.batch._run import FAILURE_SCHEMA, BatchOptions, BatchSummary, run_batch
from app.batch._scan import ScanResult, list_files
from app.batch._tables import read_parquet_rows, write_csv, write_parquet

__all__ = [
    "FAILURE_SCHEMA",
    "RESULT_SCHEMA",
    "BatchOptions",
    "BatchSummary",
    "DaskExecutor",
    "Executor",
    "Failure",
    "FilmRecord",
    "ManifestRow",
    "PoolExecutor",
    "Progress",
    "Pseudonymizer",
    "ScanResult",
    "SerialExecutor",
    "StudyOutcome",
    "StudyPlan",
    "format_duration",
    "group_studies",
    "list_files",
    "load_or_create_salt",
    "make_executor",
    "measure_studies",
    "pair_films",
    "read_manifest",
    "read_parquet_rows",
    "run_batch",
    "study_key",
    "write_csv",
    "write_parquet",
]
