"""``lumbar-instability info FILE... [--json]``: what the software reads in each film.

Per file: size, photometric interpretation, the recognised view, the pixel
spacing and where it came from, with a warning where it is not calibrated.
A file that cannot be read is reported with its reason; the others still are.
Exit status 0 when every file was read, 1 when some could not be.

Patient names, birth dates and IDs are never printed.  Free-text attributes
(SeriesDescription, ImageComments, WindowCenterWidthExplanation, ...) can hold a
name: they are shown only with ``--free-text``; otherwise the attribute that
decided is named and its text replaced by ``[text]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

HELP = "show size, view, pixel spacing and its source for DICOM/PNG/JPEG/TIFF films"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``info``."""
    parser.add_argument("files", nargs="+", metavar="FILE", help="films to inspect")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list with one object per file, in the order given",
    )
    parser.add_argument(
        "--header-only",
        action="store_true",
        help="read headers only, without decoding the pixel data (faster; the structure of "
        "compressed pixel data is checked, but damage inside them is not detected)",
    )
    parser.add_argument(
        "--free-text",
        action="store_true",
        help="also show free-text attributes (SeriesDescription, ImageComments, window "
        "explanations) that decided the view or window; they may hold a name",
    )


#: A quoted value in evidence strings (Python repr of a str).
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def redact_free_text(text: str | None) -> str | None:
    """``SeriesDescription 'LAT FLEX' -> flexion`` becomes ``SeriesDescription [text] -> flexion``."""
    return None if text is None else _QUOTED.sub("[text]", text)


def describe(path: str, *, header_only: bool = False, free_text: bool = False) -> dict[str, Any]:
    """The ``info`` record of one file (the keys of ``--json``).

    Parameters
    ----------
    path : str
        The file.
    header_only : bool, optional
        Read the header only (no pixel decoding, no window, no sha256).
    free_text : bool, optional
        Keep free-text values in ``view_evidence``, ``calibration_detail`` and
        ``window_source``, and fill ``series_description``; by default they are
        replaced by ``[text]`` and ``series_description`` is None.

    Returns
    -------
    dict
        ``path``, ``rows``, ``columns``, ``photometric_interpretation``,
        ``view``, ``pixel_spacing_mm`` ([row, column] or None),
        ``calibration_source``, ``warning``, ``error`` and more
        (``view_evidence``, ``calibration_detail``, ``source_format``,
        ``transfer_syntax``, ``bits_stored``, ``modality``, UIDs,
        ``acquisition_datetime``, ``window``, ``sha256``).  When the file
        cannot be read, every key but ``path`` and ``error`` is None.
    """
    from app.dicom_io import load_film, read_film_header
    from app.errors import InputFileError

    record: dict[str, Any] = dict.fromkeys(_KEYS)
    record["path"] = path
    try:
        film = read_film_header(path) if header_only else load_film(path)
    except InputFileError as exc:
        record["error"] = exc.reason
        return record
    except OSError as exc:  # pragma: no cover - races with the file system
        record["error"] = f"cannot be read: {exc.strerror or exc}"
        return record
    except Exception as exc:  # pragma: no cover - a reader bug must not hide the other files
        record["error"] = f"unexpected error while reading ({type(exc).__name__})"
        return record
    shown = (lambda text: text) if free_text else redact_free_text
    calibration = film.calibration
    spacing = calibration.spacing_mm
    identity = film.identity
    acquired = identity.acquisition_datetime
    record.update(
        rows=film.rows,
        columns=film.columns,
        photometric_interpretation=film.photometric_interpretation,
        view=film.view.value,
        view_evidence=shown(film.view_evidence),
        pixel_spacing_mm=[spacing[0], spacing[1]] if spacing else None,
        calibration_source=calibration.source.value,
        calibration_detail=shown(calibration.detail),
        warning=_warning(film),
        error=None,
        source_format=film.source_format,
        transfer_syntax=film.transfer_syntax,
        transfer_syntax_name=film.transfer_syntax_name,
        bits_stored=film.bits_stored,
        modality=identity.modality,
        presentation_intent=film.presentation_intent,
        study_instance_uid=identity.study_instance_uid,
        series_instance_uid=identity.series_instance_uid,
        sop_instance_uid=identity.sop_instance_uid,
        acquisition_datetime=acquired.isoformat() if acquired else None,
        series_description=identity.series_description if free_text else None,
    )
    if not header_only:
        record.update(
            window=[film.window[0], film.window[1]],
            window_source=shown(film.window_source),
            invert=film.invert,
            sha256=film.sha256,
        )
    return record


def _warning(film: Any) -> str | None:
    """The calibration warning, and a note for raw (FOR PROCESSING) detector images."""
    parts = [film.calibration_warning] if film.calibration_warning else []
    if (film.presentation_intent or "").upper() == "FOR PROCESSING":
        parts.append("a FOR PROCESSING image: raw detector data, not meant for reading")
    return "; ".join(parts) or None


_KEYS = (
    "path",
    "rows",
    "columns",
    "photometric_interpretation",
    "view",
    "view_evidence",
    "pixel_spacing_mm",
    "calibration_source",
    "calibration_detail",
    "warning",
    "error",
    "source_format",
    "transfer_syntax",
    "transfer_syntax_name",
    "bits_stored",
    "modality",
    "presentation_intent",
    "study_instance_uid",
    "series_instance_uid",
    "sop_instance_uid",
    "acquisition_datetime",
    "series_description",
    "window",
    "window_source",
    "invert",
    "sha256",
)


def _format_spacing(record: dict[str, Any]) -> str:
    spacing = record["pixel_spacing_mm"]
    if not spacing:
        return "-"
    row, column = spacing
    if abs(row - column) <= 1e-9 * max(row, column):
        return f"{row:.4g} mm"
    return f"{row:.4g} x {column:.4g} mm"


def format_table(records: list[dict[str, Any]]) -> str:
    """The human-readable report: one table row per file, warnings and errors below it."""
    header = ("FILE", "SIZE", "PHOTOMETRIC", "VIEW", "SPACING", "SOURCE")
    rows = []
    for record in records:
        if record["error"]:
            rows.append((record["path"], "-", "-", "-", "-", "unreadable"))
        else:
            rows.append(
                (
                    record["path"],
                    f"{record['columns']} x {record['rows']}",
                    record["photometric_interpretation"],
                    record["view"],
                    _format_spacing(record),
                    record["calibration_source"],
                )
            )
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(header, widths, strict=True)).rstrip()]
    for record, row in zip(records, rows, strict=True):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if record["error"]:
            lines.append(f"    error: {record['error']}")
            continue
        lines.append(f"    view: {record['view_evidence']}")
        lines.append(f"    spacing: {record['calibration_detail']}")
        if record["warning"]:
            lines.append(f"    warning: {record['warning']}")
    lines.append(
        "SIZE is columns x rows. SPACING is mm per pixel (row x column when they differ); "
        "SOURCE says where it came from."
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Describe each file; exit 0 when every file was read, 1 otherwise."""
    records = [
        describe(path, header_only=args.header_only, free_text=args.free_text)
        for path in args.files
    ]
    if args.json:
        json.dump(records, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(format_table(records))
    return 1 if any(record["error"] for record in records) else 0
