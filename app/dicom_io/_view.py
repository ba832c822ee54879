"""Which functional view a film shows: flexion, extension, neutral or unknown.

Evidence comes from coded view modifiers and from free text written by the
modality or the technologist, in the spellings seen on PACS: English, German,
French, Spanish, Italian, Portuguese and Dutch, abbreviations included.

Text is compared word by word after stripping accents and case, so ``EXT``
matches ``LAT EXT`` or ``LWS_EXT`` but never ``TEXT``, ``NEXT`` or ``EXTERNAL``.
A bare ``EXT`` is not taken as extension where it abbreviates something else:
``UPPER EXT`` / ``LOWER EXT`` (extremity) or ``EXT STUDY`` / ``EXT REFERRAL``
(an external study).

Sources are weighed in tiers: the film's own attributes first (view modifier
codes, SeriesDescription, ProtocolName, ImageComments,
AcquisitionDeviceProcessingDescription), then the procedure and the study
(PerformedProcedureStepDescription, StudyDescription — usually
"flexion/extension" for both films, hence weaker), then the file name.  Within
a tier, sources that disagree give ``unknown`` with the conflict as evidence; a
single text naming both views ("FLEX/EXT") decides nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from pydicom.dataset import Dataset

from app.dicom_io._film import View

__all__ = ["recognise_view", "view_from_sources"]

_FLEXION = frozenset(
    {
        "flex", "flexion", "flexed", "flx", "flexn", "flexio", "flexao", "flessione", "flexie",
        "flexions", "flexionsaufnahme", "flexionsstellung", "anteflexion", "anteflex", "hyperflexion",
        "inklination", "inklinationsaufnahme", "inklinationsstellung",
        "beugung", "vorbeugung", "vorneigung", "ventralflexion",
    }
)  # fmt: skip
_EXTENSION = frozenset(
    {
        "ext", "extension", "extended", "extn", "extensao", "estensione", "extensie",
        "extensions", "extensionsaufnahme", "extensionsstellung", "hyperextension",
        "retroflexion", "retroflex", "reklination", "reklinationsaufnahme",
        "reklinationsstellung", "rekl", "streckung", "ruckbeugung", "rueckbeugung",
        "dorsalextension",
    }
)  # fmt: skip
_NEUTRAL = frozenset(
    {
        "neutral", "neutro", "neutra", "neutre", "neutraal", "neutralstellung", "neutralposition",
        "neutralaufnahme", "nullstellung",
    }
)  # fmt: skip
# Two-word forms, checked before single words (their words are then consumed).
_PHRASES: dict[tuple[str, str], View] = {
    ("retro", "flexion"): View.EXTENSION,
    ("ante", "flexion"): View.FLEXION,
    ("forward", "bending"): View.FLEXION,
    ("bending", "forward"): View.FLEXION,
    ("forward", "flexion"): View.FLEXION,
    ("backward", "bending"): View.EXTENSION,
    ("bending", "backward"): View.EXTENSION,
    ("backward", "extension"): View.EXTENSION,
}
# Bare "ext" abbreviating something else.
_EXT_NOT_BEFORE = frozenset({"upper", "lower", "up", "low", "lwr", "upr", "from"})
_EXT_NOT_AFTER = frozenset(
    {"study", "studies", "exam", "referral", "ref", "import", "imported", "source", "prior",
     "report", "hospital", "site", "clinic", "institution", "pacs"}
)  # fmt: skip

# Code values of DICOM CID 92 "Musculoskeletal Positions" (SNOMED CT, with
# the legacy SNOMED-RT values) and DCM.
_CODES: dict[tuple[str, str], View] = {
    ("SCT", "9964006"): View.FLEXION,
    ("SRT", "F-10110"): View.FLEXION,
    ("SNM3", "F-10110"): View.FLEXION,
    ("SCT", "24154002"): View.EXTENSION,
    ("SRT", "F-10100"): View.EXTENSION,
    ("SNM3", "F-10100"): View.EXTENSION,
    ("DCM", "109136"): View.NEUTRAL,
}

# Text attributes in the order they are weighed.
_FILM_ATTRIBUTES = (
    "SeriesDescription",
    "ProtocolName",
    "ImageComments",
    "AcquisitionDeviceProcessingDescription",
)
_STUDY_ATTRIBUTES = ("PerformedProcedureStepDescription", "StudyDescription")


def _words(text: str) -> list[str]:
    """Lower-case, accent-free words; letters and digits split apart."""
    text = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = re.sub(r"(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])", " ", text)
    return [w for w in re.split(r"[^0-9a-z]+", text) if w]


def _views_in_text(text: str) -> list[tuple[View, str]]:
    """Every view a text names, with the word(s) that named it, in order."""
    words = _words(text)
    found: list[tuple[View, str]] = []
    i = 0
    while i < len(words):
        pair = tuple(words[i : i + 2])
        if len(pair) == 2 and pair in _PHRASES:
            found.append((_PHRASES[pair], " ".join(pair)))
            i += 2
            continue
        word = words[i]
        if word in _FLEXION:
            found.append((View.FLEXION, word))
        elif word in _EXTENSION:
            before = words[i - 1] if i > 0 else ""
            after = words[i + 1] if i + 1 < len(words) else ""
            if word != "ext" or (before not in _EXT_NOT_BEFORE and after not in _EXT_NOT_AFTER):
                found.append((View.EXTENSION, word))
        elif word in _NEUTRAL:
            found.append((View.NEUTRAL, word))
        i += 1
    return found


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= 64 else text[:61] + "...")


def view_from_sources(
    tiers: Iterable[Iterable[tuple[str, str, View | None]]],
) -> tuple[View, str]:
    """Decide the view from labelled sources grouped in tiers of decreasing weight.

    Parameters
    ----------
    tiers : iterable of iterables of (label, text, coded)
        ``label`` names the source (e.g. ``"SeriesDescription"``), ``text`` is
        its value, ``coded`` is a view already known from a code (or None, then
        ``text`` is searched).

    Returns
    -------
    view : View
    evidence : str
        Which source decided, the conflict, or what was searched.
    """
    searched: list[str] = []
    undecided: list[str] = []
    for tier in tiers:
        decisive: list[tuple[View, str]] = []
        for label, text, coded in tier:
            if not text and coded is None:
                continue
            searched.append(label)
            if coded is not None:
                decisive.append((coded, f"{label} {_quote(text)}"))
                continue
            views = {view for view, _ in _views_in_text(text)}
            if len(views) == 1:
                decisive.append((views.pop(), f"{label} {_quote(text)}"))
            elif len(views) > 1:
                names = " and ".join(sorted(v.value for v in views))
                undecided.append(f"{label} {_quote(text)} names both {names}")
        found = {view for view, _ in decisive}
        if len(found) == 1:
            view = found.pop()
            return view, "; ".join(f"{where} -> {view.value}" for _, where in decisive)
        if len(found) > 1:
            detail = "; ".join(f"{where} says {view.value}" for view, where in decisive)
            return View.UNKNOWN, f"conflicting evidence: {detail}"
    if undecided:
        return View.UNKNOWN, "; ".join(undecided)
    if not searched:
        return View.UNKNOWN, "no view attribute or text to search"
    return View.UNKNOWN, f"no flexion/extension/neutral term in {', '.join(searched)}"


def _coded_sources(ds: Dataset) -> list[tuple[str, str, View | None]]:
    sources: list[tuple[str, str, View | None]] = []
    for item in _sequence(ds, "ViewCodeSequence"):
        meaning = str(item.get("CodeMeaning", "") or "")
        if meaning:
            sources.append(("ViewCodeSequence CodeMeaning", meaning, None))
        for modifier in _sequence(item, "ViewModifierCodeSequence"):
            scheme = str(modifier.get("CodingSchemeDesignator", "") or "").strip().upper()
            value = str(modifier.get("CodeValue", "") or "").strip()
            meaning = str(modifier.get("CodeMeaning", "") or "")
            coded = _CODES.get((scheme, value))
            label = f"ViewModifierCodeSequence ({scheme} {value})"
            sources.append((label, meaning or value, coded))
    return sources


def _sequence(ds: Dataset, keyword: str) -> list[Dataset]:
    try:
        value = ds.get(keyword)
    except Exception:
        return []
    return list(value) if value else []


def _text_value(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword)
    except Exception:
        return ""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return " ".join(str(v) for v in value)
    except TypeError:
        return str(value)


def dataset_view_tiers(
    ds: Dataset, file_name: str | None = None
) -> list[list[tuple[str, str, View | None]]]:
    """The labelled view sources of a dataset, grouped in tiers (see module notes)."""
    film = _coded_sources(ds) + [(k, _text_value(ds, k), None) for k in _FILM_ATTRIBUTES]
    study = [(k, _text_value(ds, k), None) for k in _STUDY_ATTRIBUTES]
    tiers = [film, study]
    if file_name:
        tiers.append([("file name", file_name, None)])
    return tiers


def recognise_view(ds_or_text: Dataset | str) -> tuple[View, str]:
    """Recognise the view of a film from its dataset or from a text.

    Parameters
    ----------
    ds_or_text : pydicom.dataset.Dataset or str
        A dataset (its view modifier codes, SeriesDescription, ProtocolName,
        ImageComments, AcquisitionDeviceProcessingDescription, then
        PerformedProcedureStepDescription and StudyDescription, then the name
        of the file it was read from), or any text such as a file name.

    Returns
    -------
    view : View
        ``flexion``, ``extension``, ``neutral`` or ``unknown``.
    evidence : str
        The attribute and text that matched, or why the view is unknown.

    Examples
    --------
    >>> recognise_view("LWS seitl. Reklination")[0].value
    'extension'
    >>> recognise_view("LAT FLEX/EXT")[0].value
    'unknown'
    >>> recognise_view("TEXT NEXT")[0].value
    'unknown'
    """
    if isinstance(ds_or_text, str):
        return view_from_sources([[("text", ds_or_text, None)]])
    filename = getattr(ds_or_text, "filename", None)
    name = Path(filename).name if isinstance(filename, str) and filename else None
    return view_from_sources(dataset_view_tiers(ds_or_text, name))
