"""Default file names of an export, from the study: date, views, series.

The viewer's export dialog (``ui/export_dialog.py``) writes the PDF, the DICOM
SR, the CSV table and the annotated films into one folder under one stem, e.g.
``2024-05-02_flexion-extension_S3-4``:

- the **date**: the acquisition date of the films (else the study date), ISO
  8601; two different dates are both given (``2024-05-02+2024-05-09``);
  ``undated`` when no film says;
- the **views** present (``flexion-extension``, ``flexion``);
- the **series** numbers (``S3-4``; one number when both films share a series);
  without series numbers, the series descriptions, and only when the output
  is not anonymised (a description is free text and may hold a name).

No part ever holds the patient's name, ID or birth date: a description that
contains any of them is left out, and anonymised output uses dates and numbers
only.  The functions are pure (no file system).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

__all__ = ["EXPORT_FORMATS", "ExportFormat", "export_file_names", "export_stem", "safe_file_part"]

_MAX_PART = 40
_MAX_STEM = 120


@dataclass(frozen=True)
class ExportFormat:
    """One format of the export dialog.

    Attributes
    ----------
    key : str
        ``"pdf"``, ``"sr"``, ``"csv"``, ``"json"`` or ``"png"``.
    label : str
        What the dialog shows.
    suffix : str
        Appended to the stem (with the extension that chooses the writer in
        :func:`app.report_export.write_report`).
    default : bool
        Ticked when the dialog opens for the first time.
    """

    key: str
    label: str
    suffix: str
    default: bool = True


EXPORT_FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat("pdf", "PDF report (one page, for the record)", ".pdf"),
    ExportFormat("sr", "DICOM SR (structured report, for the PACS)", "_SR.dcm"),
    ExportFormat("csv", "CSV table (one row per segment)", ".csv"),
    ExportFormat("png", "PNG of the annotated films", "_films.png"),
    ExportFormat("json", "JSON table (the CSV's values, typed)", ".json", default=False),
)
"""The formats in the order the dialog lists them."""


def safe_file_part(text: str, max_length: int = _MAX_PART) -> str:
    """``text`` as a portable piece of a file name: ASCII letters, digits, ``-_+.``.

    Accents are dropped (``é`` → ``e``), every other run of characters becomes
    one ``-``; leading/trailing ``-`` and ``.`` are removed (no hidden file, no
    ``..``); at most ``max_length`` characters.

    Examples
    --------
    >>> safe_file_part("L-SPINE LAT / flexión")
    'L-SPINE-LAT-flexion'
    """
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    part = re.sub(r"[^A-Za-z0-9._+-]+", "-", ascii_text)
    part = re.sub(r"\.{2,}", ".", part)
    return part[:max_length].strip("-._+")


def _day(identity: Any) -> date | None:
    acquired = getattr(identity, "acquisition_datetime", None)
    if isinstance(acquired, datetime):
        return acquired.date()
    study = getattr(identity, "study_date", None)
    return study if isinstance(study, date) else None


def _private_words(identities: Sequence[Any]) -> set[str]:
    """Lower-case words of every patient name, ID and birth date (never put in a name)."""
    words: set[str] = set()
    for identity in identities:
        for attribute in ("patient_name", "patient_id"):
            value = getattr(identity, attribute, None)
            if value:
                words.update(w for w in re.split(r"[^0-9a-z]+", str(value).lower()) if len(w) >= 2)
        birth = getattr(identity, "patient_birth_date", None)
        if isinstance(birth, date):
            words.update({birth.isoformat(), birth.strftime("%Y%m%d")})
    return words


def _holds_private(text: str, private: set[str]) -> bool:
    lowered = text.lower()
    words = set(re.split(r"[^0-9a-z]+", lowered))
    return bool(words & private) or any(p in lowered for p in private if len(p) >= 4)


def export_stem(identities: Mapping[str, Any], *, anonymised: bool = False) -> str:
    """The default file-name stem of a study's export.

    Parameters
    ----------
    identities : mapping of str to FilmIdentity
        ``{"flexion": film.identity, "extension": ...}`` of the films present, in
        that order (:class:`app.dicom_io.FilmIdentity`; any object with its
        attributes, None for a film without DICOM identity, e.g. a PNG).
    anonymised : bool
        The user chose anonymised output: dates and series numbers only.

    Returns
    -------
    str
        e.g. ``"2024-05-02_flexion-extension_S3-4"``; never the patient's name, ID
        or birth date.

    Examples
    --------
    >>> from datetime import date
    >>> from types import SimpleNamespace as I
    >>> export_stem({"flexion": I(study_date=date(2024, 5, 2), series_number=3),
    ...              "extension": I(study_date=date(2024, 5, 2), series_number=4)})
    '2024-05-02_flexion-extension_S3-4'
    """
    views = [v for v in ("flexion", "extension") if v in identities] or sorted(identities)
    films = [identities[v] for v in views]
    private = _private_words([f for f in films if f is not None])
    days: list[str] = []
    for film in films:
        day = _day(film)
        if day is not None and day.isoformat() not in days:
            days.append(day.isoformat())
    parts = ["+".join(days) if days else "undated", "-".join(views) if views else "films"]
    numbers: list[str] = []
    for film in films:
        number = getattr(film, "series_number", None)
        if isinstance(number, int) and not isinstance(number, bool) and number >= 0 and str(number) not in numbers:
            numbers.append(str(number))
    if numbers:
        parts.append("S" + "-".join(numbers))
    elif not anonymised:
        described: list[str] = []
        for film in films:
            text = getattr(film, "series_description", None)
            if not text or _holds_private(str(text), private):
                continue
            part = safe_file_part(str(text), 24)
            if part and part not in described:
                described.append(part)
        if described:
            parts.append("_".join(described))
    stem = "_".join(p for p in parts if p)
    return stem[:_MAX_STEM].strip("-._") or "report"


def export_file_names(stem: str, formats: Sequence[str]) -> dict[str, str]:
    """The file name of each chosen format (``{"pdf": "STEM.pdf", "sr": "STEM_SR.dcm", ...}``).

    Parameters
    ----------
    stem : str
        From :func:`export_stem` or typed by the user (made safe with
        :func:`safe_file_part`; an empty stem becomes ``report``).
    formats : sequence of str
        Keys of :data:`EXPORT_FORMATS`.

    Raises
    ------
    ValueError
        An unknown format key.
    """
    known = {f.key: f for f in EXPORT_FORMATS}
    clean = safe_file_part(stem, _MAX_STEM) or "report"
    out: dict[str, str] = {}
    for key in formats:
        if key not in known:
            raise ValueError(f"formats: unknown export format {key!r} (use {', '.join(known)})")
        out[key] = clean + known[key].suffix
    return out
