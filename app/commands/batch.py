"""``lumbar-instability batch``: measure every flexion/extension study of a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "measure every flexion/extension study of a DICOM folder (tidy CSV/Parquet tables)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``batch`` subcommand."""
    parser.add_argument("input_dir", metavar="INPUT_DIR", type=Path,
                        help="folder scanned recursively for DICOM films")
    parser.add_argument("--out", metavar="RESULTS_DIR", type=Path, required=True,
                        help="results folder: results.csv/.parquet, failures.csv/.parquet, "
                             "pairs.csv, summary.json (a rerun resumes)")
    parser.add_argument("--landmarks", metavar="DIR", type=Path,
                        help="landmarks or session JSON files to use instead of detection "
                             "(matched by SOP Instance UIDs or named <StudyInstanceUID>.json)")
    parser.add_argument("--manifest", metavar="CSV", type=Path,
                        help="pairing manifest (columns flexion, extension[, "
                             "study_instance_uid]) overriding the automatic pairing")
    parser.add_argument("--workers", metavar="N", type=int, default=1,
                        help="worker processes (default 1); with --scheduler local the size "
                             "of the LocalCluster")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on Dask distributed: tcp://HOST:PORT, or 'local' for a "
                             "LocalCluster on this machine")
    parser.add_argument("--criteria", default="default", metavar="PRESET|FILE",
                        help="criteria preset (default: 4 mm / 10°; white-panjabi) or a JSON "
                             "settings file of custom thresholds")
    parser.add_argument("--anonymize", action="store_true",
                        help="replace identifiers and file names by salted hashes in every output")
    parser.add_argument("--salt-file", metavar="FILE",
                        help="secret salt for --anonymize (default: RESULTS_DIR/.work/salt, "
                             "created on first use)")
    parser.add_argument("--pdf", action="store_true", help="also write a PDF report per study")
    parser.add_argument("--sr", action="store_true",
                        help="also write a DICOM SR (TID 1500) per study")
    parser.add_argument("--acknowledge-safety", action="store_true",
                        help="accept studies with safety warnings (same image twice, different "
                             "patients, no motion, implausible spacing): their reports are written "
                             "and they do not count as failures (the 'safety' column still names them)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="redo studies that failed in an earlier run of the same folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the batch; 0 all went through, 1 some failed (results written), 2 usage error."""
    from app.batch import BatchOptions, run_batch
    from app.errors import UserError

    if args.workers < 1:
        raise UserError(f"--workers: must be at least 1, got {args.workers}")
    from app.landmarks_io import read_criteria

    criteria = read_criteria(args.criteria)  # a preset, or a settings file (InputFileError)
    options = BatchOptions(
        input_dir=args.input_dir,
        out_dir=args.out,
        landmarks_dir=args.landmarks,
        manifest=args.manifest,
        workers=args.workers,
        scheduler=args.scheduler,
        anonymize=args.anonymize,
        salt_file=args.salt_file,
        criteria=criteria,
        pdf=args.pdf,
        sr=args.sr,
        acknowledge_safety=args.acknowledge_safety,
        retry_failed=args.retry_failed,
        quiet=args.quiet,
    )
    summary = run_batch(options)
    print(summary.text(), file=sys.stdout)
    return summary.exit_status
