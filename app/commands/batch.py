"""``lumbar-instability batch``: measure every flexion/extension study of a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "measure every flexion/extension study of a DICOM folder (tidy CSV/Parquet tables)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``batch`` subcommand.

    Every option defaults to None here: the value then comes from ``--config``
    (a TOML file, :mod:`app.batch._config`), else from :data:`DEFAULTS`.
    """
    parser.add_argument("input_dir", metavar="INPUT_DIR", type=Path, nargs="?",
                        help="folder scanned recursively for DICOM films (or input_dir in --config)")
    parser.add_argument("--config", metavar="TOML", type=Path,
                        help="batch options and criteria from a TOML file; flags given here "
                             "override it (docs/batch.md)")
    parser.add_argument("--out", metavar="RESULTS_DIR", type=Path,
                        help="results folder: results.csv/.parquet, studies.csv/.parquet, "
                             "failures.csv/.parquet, pairs.csv, summary.json, summary.html "
                             "(a rerun resumes); required here or in --config")
    parser.add_argument("--landmarks", metavar="DIR", type=Path,
                        help="landmarks or session JSON files to use instead of detection "
                             "(matched by SOP Instance UIDs or named <StudyInstanceUID>.json)")
    parser.add_argument("--manifest", metavar="CSV", type=Path,
                        help="pairing manifest (columns flexion, extension[, "
                             "study_instance_uid]) overriding the automatic pairing")
    parser.add_argument("--workers", metavar="N", type=int,
                        help="worker processes (default 1); with --scheduler local the size "
                             "of the LocalCluster")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on Dask distributed: tcp://HOST:PORT, or 'local' for a "
                             "LocalCluster on this machine")
    parser.add_argument("--criteria", metavar="PRESET|FILE",
                        help="criteria preset (default: 4 mm / 10°; white-panjabi) or a JSON "
                             "settings file of custom thresholds")
    flag = argparse.BooleanOptionalAction
    parser.add_argument("--anonymize", action=flag,
                        help="replace identifiers and file names by salted hashes in every output")
    parser.add_argument("--salt-file", metavar="FILE",
                        help="secret salt for --anonymize (default: RESULTS_DIR/.work/salt, "
                             "created on first use)")
    parser.add_argument("--pdf", action=flag, help="also write a PDF report per study")
    parser.add_argument("--sr", action=flag, help="also write a DICOM SR (TID 1500) per study")
    parser.add_argument("--acknowledge-safety", action=flag,
                        help="accept studies with safety warnings (same image twice, different "
                             "patients, no motion, implausible spacing): their reports are written "
                             "and they do not count as failures (the 'safety' column still names them)")
    parser.add_argument("--retry-failed", action=flag,
                        help="redo studies that failed in an earlier run of the same folder")
    parser.add_argument("--force", action=flag,
                        help="write into a results folder that holds a run over a different "
                             "input (its tables are replaced; by default this is refused)")
    parser.add_argument("--quiet", action=flag, help="no progress bar")
    parser.add_argument("--plots", action=flag,
                        help="cohort plots (cohort_*.png) and summary.html (default: on)")


#: Command-line dest -> BatchOptions field, where they differ.
_FIELDS = {"out": "out_dir", "landmarks": "landmarks_dir"}


def options_from_args(args: argparse.Namespace):
    """:class:`app.batch.BatchOptions` from the flags over ``--config`` over the defaults."""
    from app.batch._config import CONFIG_KEYS, batch_options

    given = {_FIELDS.get(dest, dest): getattr(args, dest, None) for dest in CONFIG_KEYS}
    return batch_options(args.config, **given)


def run(args: argparse.Namespace) -> int:
    """Run the batch; 0 all went through, 1 some failed (results written), 2 usage error."""
    from app.batch import run_batch

    summary = run_batch(options_from_args(args))
    print(summary.text(), file=sys.stdout)
    return summary.exit_status
