"""Walk the input folder and read every file's header (no pixel decoding).

The walk itself (listing folders) runs in this process; reading headers is a
task that runs in the executor in chunks, so a cluster reads a large archive
in parallel.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from app.batch._records import Failure, FilmRecord

__all__ = ["HeaderChunk", "ScanResult", "list_files", "read_header_chunk"]

#: Files never read as films: DICOMDIR indexes, OS litter (compared in lower case).
IGNORED_NAMES = frozenset({"dicomdir", ".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db",
                           "icon\r", ".directory", "autorun.inf", "lockfile"})
#: Extensions of files that are clearly not films (documents, viewers, indexes).
CLUTTER_EXTENSIONS = frozenset({
    ".txt", ".md", ".rtf", ".pdf", ".doc", ".docx", ".htm", ".html", ".xml", ".csv", ".tsv",
    ".ini", ".inf", ".log", ".nfo", ".exe", ".dll", ".bat", ".cmd", ".sh", ".app", ".lnk",
    ".url", ".db", ".sqlite", ".css", ".js", ".jar", ".cab", ".msi", ".plist", ".xsl", ".sys",
})


@dataclass
class ScanResult:
    """What the walk found.

    Attributes
    ----------
    files : list of str
        Candidate DICOM files, relative POSIX paths, sorted.
    json_files : list of str
        ``*.json`` files (possible session or landmarks files), relative paths.
    failures : list of Failure
        Folders that could not be listed, and entries that are not regular
        files (named pipes, sockets, devices: never opened, a pipe would
        block the scan forever).
    clutter : list of (str, str)
        Files that are clearly not films (relative path, why): DICOMDIR,
        README.TXT, .DS_Store, thumbs.db ...; not read, not failures.
    """

    files: list[str] = field(default_factory=list)
    json_files: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    clutter: list[tuple[str, str]] = field(default_factory=list)


def list_files(root: Path, exclude: Sequence[Path] = ()) -> ScanResult:
    """List every file under ``root`` recursively.

    Parameters
    ----------
    root : Path
        The input folder.
    exclude : sequence of Path
        Folders to leave out (the results folder when it lies inside ``root``).

    Returns
    -------
    ScanResult
        Unreadable folders are recorded as failures, never raised.
    """
    result = ScanResult()
    excluded = {os.path.realpath(p) for p in exclude}

    def on_error(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else root
        result.failures.append(
            Failure("directory", _relative(where, root),
                    f"read: cannot list the folder: {exc.strerror or exc}",
                    files=(_relative(where, root),))
        )

    for folder, dirs, names in os.walk(root, onerror=on_error, followlinks=False):
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and os.path.realpath(os.path.join(folder, d)) not in excluded
        )
        for name in sorted(names):
            relative = _relative(Path(folder) / name, root)
            kind = _not_regular(os.path.join(folder, name))
            if kind:
                result.failures.append(
                    Failure("file", relative, f"read: not a regular file ({kind}): skipped",
                            files=(relative,))
                )
                continue
            why = _clutter(os.path.join(folder, name), name)
            if why:
                result.clutter.append((relative, why))
            elif name.lower().endswith(".json"):
                result.json_files.append(relative)
            else:
                result.files.append(relative)
    return result


def _clutter(path: str, name: str) -> str:
    """Why a file is clearly not a film ("" when it may be one).

    By its name only, and never a file that carries the DICOM preamble: a film
    exported as ``IMG0001.TXT`` is still read.
    """
    lower = name.lower()
    if lower in IGNORED_NAMES:
        why = "a DICOMDIR index" if lower == "dicomdir" else "operating-system litter"
    elif name.startswith("."):
        why = "a hidden file"
    elif os.path.splitext(lower)[1] in CLUTTER_EXTENSIONS:
        why = f"a {os.path.splitext(lower)[1]} file, not a film"
    else:
        return ""
    if lower == "dicomdir":
        return why  # a DICOMDIR carries the preamble too, and holds no film
    try:
        with open(path, "rb") as handle:
            if handle.read(132)[128:132] == b"DICM":
                return ""
    except OSError:
        return ""
    return why


def _not_regular(path: str) -> str | None:
    """What a directory entry is when it is not a regular file (None for a file).

    ``os.stat`` follows symbolic links: a link to a film is a film, a link to
    a pipe is a pipe; a dangling link is left to the reader (``no such file``).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    for test, name in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a plain file"


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix() or "."
    except ValueError:
        return Path(path).as_posix()


@dataclass(frozen=True, slots=True)
class HeaderChunk:
    """A chunk of files whose headers one task reads."""

    root: str
    paths: tuple[str, ...]


def read_header_chunk(chunk: HeaderChunk) -> list[FilmRecord | Failure | tuple[str, str]]:
    """Read the headers of a chunk of files (runs in a worker).

    Returns, per file, a :class:`FilmRecord`, a :class:`Failure`
    (``kind="file"``) or ``("sr", study_instance_uid)`` for a structured report
    that may carry landmarks.
    """
    from app.batch._worker import single_threaded

    with single_threaded():
        return [_read_one(Path(chunk.root), path) for path in chunk.paths]


def _read_one(root: Path, relative: str) -> FilmRecord | Failure | tuple[str, str]:
    from app.errors import InputFileError

    path = root / relative
    try:
        header = _read_film_header(path)
    except InputFileError as exc:
        sr = _structured_report_study(path) if _not_regular(str(path)) is None else None
        if sr is not None:
            return ("sr", sr)
        return Failure("file", relative, f"read: {exc.reason}", files=(relative,))
    except OSError as exc:
        return Failure("file", relative, f"read: {exc.strerror or exc}", files=(relative,))
    except Exception as exc:  # a reader bug must not stop the scan
        return Failure("file", relative, f"read: unexpected error ({type(exc).__name__})",
                       files=(relative,))
    kind = getattr(header, "source_format", "dicom")
    if kind != "dicom":
        return Failure("file", relative, f"read: not a DICOM file ({kind} image)",
                       files=(relative,))
    return film_record(header, relative)


def _read_film_header(path: Path) -> Any:
    from app.dicom_io import read_film_header

    return read_film_header(path)


def _structured_report_study(path: Path) -> str | None:
    """The StudyInstanceUID of a DICOM SR file, or None when the file is not an SR."""
    try:
        import pydicom

        from app.dicom_io import quiet_pydicom

        with quiet_pydicom():  # pydicom's warnings quote raw values
            ds = pydicom.dcmread(
                path, stop_before_pixels=True, specific_tags=["Modality", "StudyInstanceUID"]
            )
            # elements are converted lazily: a damaged VR raises here, not in dcmread
            if str(getattr(ds, "Modality", "")) != "SR":
                return None
            return str(getattr(ds, "StudyInstanceUID", ""))
    except Exception:
        return None


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _datetime_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y%m%d%H%M%S.%f")
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    if isinstance(value, time):
        return value.strftime("%H%M%S.%f")
    text = str(value).strip().replace("-", "").replace(":", "").replace("T", "").replace(" ", "")
    return text


def film_record(header: Any, relative: str) -> FilmRecord:
    """Convert the header object of ``app.dicom_io`` into a :class:`FilmRecord`.

    Only identifiers, view, acquisition time and calibration are copied; the
    patient's name, birth date and accession number never are.
    """
    identity = getattr(header, "identity", header)
    calibration = getattr(header, "calibration", None)
    spacing = getattr(calibration, "spacing_mm", None) if calibration is not None else None
    source = getattr(calibration, "source", "uncalibrated") if calibration is not None else (
        "uncalibrated"
    )
    view = getattr(header, "view", "unknown")
    view = _text(getattr(view, "value", view)).lower() or "unknown"
    instance = getattr(identity, "instance_number", None)
    try:
        instance = int(instance) if instance not in (None, "") else None
    except (TypeError, ValueError):
        instance = None
    shape = getattr(header, "shape", None)
    rows = getattr(header, "rows", None) or (shape[0] if shape else 0)
    columns = getattr(header, "columns", None) or (shape[1] if shape else 0)
    return FilmRecord(
        path=relative,
        patient_id=_text(getattr(identity, "patient_id", "")),
        study_instance_uid=_text(getattr(identity, "study_instance_uid", "")),
        series_instance_uid=_text(getattr(identity, "series_instance_uid", "")),
        sop_instance_uid=_text(getattr(identity, "sop_instance_uid", "")),
        acquisition_datetime=_datetime_text(getattr(identity, "acquisition_datetime", None)),
        instance_number=instance,
        study_date=_datetime_text(getattr(identity, "study_date", None))[:8],
        view=view if view in ("flexion", "extension", "neutral") else "unknown",
        spacing_mm=tuple(float(v) for v in spacing) if spacing else None,
        calibration_source=_text(getattr(source, "value", source)) or "uncalibrated",
        calibration_detail=_text(getattr(calibration, "detail", "")),
        rows=int(rows or 0),
        columns=int(columns or 0),
    )
