"""``lumbar-instability report``: PDF, DICOM SR, CSV, JSON and PNG of a saved session."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP = "write the report of a saved session (or SR): PDF, DICOM SR (TID 1500), CSV, JSON, PNG"

_OUTPUTS = ("pdf", "sr", "csv", "json", "png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``report`` subcommand."""
    parser.add_argument("session", metavar="SESSION", type=Path,
                        help="session file (.json) saved by the viewer, or a DICOM SR written "
                             "by this tool")
    parser.add_argument("--pdf", metavar="OUT.pdf", type=Path, help="PDF report (A4)")
    parser.add_argument("--sr", metavar="OUT.dcm", type=Path,
                        help="DICOM Comprehensive SR, TID 1500 Measurement Report")
    parser.add_argument("--csv", metavar="OUT.csv", type=Path, help="per-segment table, CSV")
    parser.add_argument("--json", metavar="OUT.json", type=Path, help="per-segment table, JSON")
    parser.add_argument("--png", metavar="OUT.png", type=Path,
                        help="both films with landmarks, endplate lines and level labels")
    parser.add_argument("--images", metavar="DIR", type=Path, action="append", default=[],
                        help="folder holding the films when they are not where the session "
                             "says (matched by file name; repeatable)")
    parser.add_argument("--acknowledge-safety", action="store_true",
                        help="write the outputs although the session has safety warnings its "
                             "reader did not acknowledge (same image twice, different patients, "
                             "no motion, implausible spacing); they are printed in every output "
                             "and the exit status is 1")
    parser.add_argument("--trust-image-paths", action="store_true",
                        help="open the films at the paths the session names even outside its "
                             "folder and the --images folders (only for sessions you trust)")


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def run(args: argparse.Namespace) -> int:
    """Build every requested output in memory, then write each atomically.

    Returns 0, or 1 when an image changed since it was measured (the PDF, tables
    and PNG are written with the warning; the SR is refused), when the stored
    values differ from the landmarks (every output says so), or when
    ``--acknowledge-safety`` let unacknowledged safety warnings through.  Without
    that option such warnings refuse the export (a one-line error, exit status 2).
    """
    from app.errors import InputFileError, UserError
    from app.report_data import load_report, report_from_session

    wanted = {name: getattr(args, name) for name in _OUTPUTS if getattr(args, name) is not None}
    if not wanted:
        raise UserError("nothing to write: give at least one of --pdf, --sr, --csv, --json, --png")
    for directory in args.images:
        if not directory.is_dir():
            raise InputFileError(directory, "not a folder")
    source = args.session.resolve() if args.session.exists() else args.session
    sr_identity = None
    if _is_dicom(source):
        from app.report_sr import read_sr

        content = read_sr(source)
        sr_identity = content.identity
        report = report_from_session(dict(content), source,
                                     search_dirs=[*args.images, source.parent],
                                     trust_paths=args.trust_image_paths,
                                     coded_findings=content.coded_findings)
    else:
        report = load_report(source, search_dirs=args.images, trust_paths=args.trust_image_paths)
    for path in wanted.values():
        if path.resolve() == Path(source).resolve():
            raise UserError(f"{path}: would overwrite the input")
    for path in wanted.values():
        # Check every destination before writing any, so that one bad path
        # leaves no partial set of outputs and gives a one-line reason.
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"{path}: cannot write here ({exc.strerror or exc})") from None
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise UserError(f"{path}: cannot write here (folder not writable)")

    from app.safety import require_acknowledged

    require_acknowledged(report.safety, report.safety_acknowledged,
                         override=getattr(args, "acknowledge_safety", False))

    payloads: dict[str, bytes | str] = {}
    if "sr" in wanted:
        from pydicom.filebase import DicomBytesIO

        from app.report_sr import sr_dataset

        buffer = DicomBytesIO()
        sr_dataset(report).save_as(buffer, enforce_file_format=True)
        payloads["sr"] = buffer.getvalue()
    if "pdf" in wanted:
        from app.report_pdf import pdf_bytes

        payloads["pdf"] = pdf_bytes(report, sr_identity=sr_identity)
    if "csv" in wanted:
        from app.report_tables import csv_text

        payloads["csv"] = csv_text(report)
    if "json" in wanted:
        import json

        from app.report_tables import _nan_to_none, table_json

        payloads["json"] = json.dumps(_nan_to_none(table_json(report)), indent=2,
                                      allow_nan=False) + "\n"
    if "png" in wanted:
        from app.report_tables import encode_png, films_panel

        try:
            payloads["png"] = encode_png(films_panel(report, max_side=1200))
        except ValueError:
            raise UserError("--png: no film image was found (give their folder with --images)"
                            ) from None

    from app.atomic import atomic_write_bytes, atomic_write_text

    for name, data in payloads.items():
        if isinstance(data, bytes):
            atomic_write_bytes(wanted[name], data)
        else:
            atomic_write_text(wanted[name], data)
        print(f"{name}: {wanted[name]}")
    for text in report.warnings:
        print(f"warning: {text}", file=sys.stderr)
    return 1 if report.images_changed or report.stored_differences or report.unacknowledged_safety else 0
