"""Group films by study and choose the flexion and extension film of each.

The rule (also in ``docs/batch.md``):

1. Films are grouped by ``StudyInstanceUID``; a film without one is grouped by
   patient and folder.  A study whose films carry more than one ``PatientID``
   is not paired (failure ``pairing: films of N patients ...``).
2. A manifest row (``--manifest``) names the two films of a study and overrides
   everything below for that study.
3. Exactly one film recognised as flexion and one as extension: they are the
   pair (``views``); any other film (neutral, unknown) is ignored with a warning.
4. One view recognised and exactly one film of unknown view left: that film is
   the other view (``views+elimination``).
5. No view recognised and exactly two films: the earlier acquisition is the
   flexion film, the later the extension film (``acquisition-order``,
   with a warning on every row).  Order: acquisition date/time, then
   ``InstanceNumber``, then file path. Equal times and instance numbers: failure.
6. Anything else (one film, two films recognised as the same view, three
   candidates without a clear pair) is a failure naming the films; a manifest
   row resolves it.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.batch._records import Failure, FilmRecord, StudyPlan
from app.errors import InputFileError

__all__ = [
    "ManifestRow",
    "group_studies",
    "pair_films",
    "read_manifest",
    "study_key",
]

MANIFEST_COLUMNS = ("study_instance_uid", "flexion", "extension")


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One line of a pairing manifest.

    Parameters
    ----------
    line : int
        Line number in the CSV (header = 1).
    study_instance_uid : str
        Optional: the study the pair belongs to (checked against the films).
    flexion, extension : str
        Each a path relative to the input folder, or a SOP Instance UID.
    """

    line: int
    study_instance_uid: str
    flexion: str
    extension: str


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestRow]:
    """Read a pairing manifest CSV.

    Columns: ``flexion``, ``extension`` (required; a path relative to the input
    folder, or a SOP Instance UID) and ``study_instance_uid`` (optional).  Other
    columns are ignored, so the ``pairs.csv`` a run writes can be edited and fed
    back.  Blank lines and lines starting with ``#`` are skipped.

    Raises
    ------
    InputFileError
        The file cannot be read or lacks a required column (a usage error).
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            lines = [line for line in handle if line.strip() and not line.lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"cannot read the manifest: {exc}") from None
    reader = csv.DictReader(lines)
    header = [name.strip() for name in (reader.fieldnames or [])]
    missing = [name for name in ("flexion", "extension") if name not in header]
    if missing:
        raise InputFileError(path, f"manifest lacks the column(s) {', '.join(missing)}")
    rows = []
    for number, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not row.get("flexion") or not row.get("extension"):
            raise InputFileError(path, f"line {number}: flexion and extension must both be given")
        rows.append(
            ManifestRow(number, row.get("study_instance_uid", ""), row["flexion"], row["extension"])
        )
    return rows


def group_studies(films: Iterable[FilmRecord]) -> dict[str, list[FilmRecord]]:
    """Group films by study.

    Parameters
    ----------
    films : iterable of FilmRecord

    Returns
    -------
    dict of str to list of FilmRecord
        Study identifier (``StudyInstanceUID``, or ``"<patient>|<folder>"``
        when a film has none) to its films, each list sorted by acquisition order;
        studies ordered by patient ID, first acquisition time, then identifier.
    """
    groups: dict[str, list[FilmRecord]] = defaultdict(list)
    for film in films:
        key = film.study_instance_uid or (
            f"{film.patient_id}|{PurePosixPath(film.path).parent.as_posix()}"
        )
        groups[key].append(film)
    ordered = {key: sorted(group, key=_acquisition_order) for key, group in groups.items()}
    # Studies in a reader's order: by patient, then by date, then by UID.
    return dict(sorted(
        ordered.items(),
        key=lambda kv: (kv[1][0].patient_id, kv[1][0].acquisition_datetime or "~", kv[0]),
    ))


def _acquisition_order(film: FilmRecord) -> tuple:
    return (
        film.acquisition_datetime or "~",  # unknown times sort last
        film.instance_number if film.instance_number is not None else 1 << 62,
        film.path,
    )


def study_key(flexion: FilmRecord, extension: FilmRecord, landmarks_tag: str) -> str:
    """A stable key for one unit of work (names its journal entry).

    It changes when the films or the landmark source change, so a rerun with
    other landmarks redoes the study.
    """
    text = "\n".join(
        ["v1", flexion.sop_instance_uid, flexion.path, extension.sop_instance_uid, extension.path,
         landmarks_tag]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _study_folder(films: Sequence[FilmRecord]) -> str:
    parents = {PurePosixPath(f.path).parent.as_posix() for f in films}
    if len(parents) == 1:
        return parents.pop()
    return os.path.commonpath(sorted(parents)) or "."


def _names(films: Sequence[FilmRecord]) -> str:
    return ", ".join(PurePosixPath(f.path).name for f in films)


def pair_films(
    studies: Mapping[str, list[FilmRecord]],
    manifest: Sequence[ManifestRow] = (),
) -> tuple[list[tuple[FilmRecord, FilmRecord, str, tuple[str, ...]]], list[Failure]]:
    """Choose the flexion and extension film of every study.

    Parameters
    ----------
    studies : mapping of str to list of FilmRecord
        As returned by :func:`group_studies`.
    manifest : sequence of ManifestRow
        Pairs that override the automatic rule.

    Returns
    -------
    pairs : list of (flexion, extension, pairing, warnings)
        One entry per paired study, in study order.
    failures : list of Failure
        One per study that could not be paired (``kind="study"``) or manifest
        line that names no readable film.
    """
    by_path: dict[str, FilmRecord] = {}
    by_uid: dict[str, FilmRecord] = {}
    for films in studies.values():
        for film in films:
            by_path[film.path] = film
            if film.sop_instance_uid:
                by_uid.setdefault(film.sop_instance_uid, film)

    pairs: list[tuple[FilmRecord, FilmRecord, str, tuple[str, ...]]] = []
    failures: list[Failure] = []
    overridden: set[str] = set()
    for row in manifest:
        found = []
        for role, ref in (("flexion", row.flexion), ("extension", row.extension)):
            film = by_path.get(PurePosixPath(ref).as_posix()) or by_uid.get(ref)
            if film is None:
                failures.append(
                    Failure("study", f"manifest line {row.line}",
                            f"manifest: line {row.line}: {role} film {ref!r} is not among the "
                            "readable films of the input folder", "", row.study_instance_uid,
                            (ref,))
                )
                break
            found.append(film)
        else:
            flexion, extension = found
            warnings: list[str] = []
            if flexion.patient_id != extension.patient_id:
                warnings.append("the flexion and extension films belong to different patients")
            if flexion.study_instance_uid != extension.study_instance_uid:
                warnings.append("the flexion and extension films belong to different studies")
            if row.study_instance_uid and row.study_instance_uid != flexion.study_instance_uid:
                warnings.append("the manifest's study_instance_uid differs from the films'")
            for film, role in ((flexion, "flexion"), (extension, "extension")):
                if film.view not in (role, "unknown"):
                    warnings.append(f"the manifest's {role} film was recognised as {film.view}")
            pairs.append((flexion, extension, "manifest", tuple(warnings)))
        overridden.add(row.study_instance_uid)
        overridden.update(f.study_instance_uid for f in found)

    for _study, films in studies.items():
        if films and films[0].study_instance_uid and films[0].study_instance_uid in overridden:
            continue
        result = _pair_study(films)
        if isinstance(result, Failure):
            failures.append(result)
        else:
            pairs.append(result)
    return pairs, failures


def _pair_study(
    films: list[FilmRecord],
) -> tuple[FilmRecord, FilmRecord, str, tuple[str, ...]] | Failure:
    first = films[0]
    folder = _study_folder(films)

    def fail(reason: str) -> Failure:
        return Failure("study", folder, f"pairing: {reason}", first.patient_id,
                       first.study_instance_uid, tuple(f.path for f in films))

    patients = sorted({f.patient_id for f in films})
    if len(patients) > 1:
        return fail(
            f"films of {len(patients)} patients share this StudyInstanceUID ({_names(films)}); "
            "name the pair in --manifest if this is intended"
        )
    by_view: dict[str, list[FilmRecord]] = defaultdict(list)
    for film in films:
        by_view[film.view if film.view in ("flexion", "extension", "neutral") else "unknown"].append(
            film
        )
    flexion, extension = by_view["flexion"], by_view["extension"]
    neutral, unknown = by_view["neutral"], by_view["unknown"]
    candidates = len(flexion) + len(extension) + len(unknown)

    if len(flexion) > 1 or len(extension) > 1:
        view = "flexion" if len(flexion) > 1 else "extension"
        same = flexion if len(flexion) > 1 else extension
        return fail(
            f"{len(same)} films recognised as {view} ({_names(same)}): cannot choose; "
            "name the pair in --manifest"
        )
    if candidates < 2:
        what = f"{len(films)} film" + ("s" if len(films) != 1 else "")
        extra = f", {len(neutral)} neutral" if neutral else ""
        return fail(
            f"{what} in the study ({_names(films)}{extra}): needs a flexion and an extension film"
        )
    if len(flexion) == 1 and len(extension) == 1:
        ignored = neutral + unknown
        warnings = ()
        if ignored:
            kinds = ", ".join(sorted({f.view for f in ignored}))
            warnings = (f"ignored {len(ignored)} other film(s) of the study ({kinds})",)
        return flexion[0], extension[0], "views", warnings
    if len(flexion) + len(extension) == 1 and len(unknown) == 1:
        known = (flexion or extension)[0]
        other = unknown[0]
        warnings = (
            f"the {'extension' if flexion else 'flexion'} film's view was not recognised; "
            "taken as the only other film of the study",
        )
        if flexion:
            return known, other, "views+elimination", warnings
        return other, known, "views+elimination", warnings
    if not flexion and not extension and len(unknown) == 2:
        earlier, later = unknown  # already in acquisition order
        if _acquisition_order(earlier)[:2] == _acquisition_order(later)[:2]:
            return fail(
                f"views not recognised and acquisition order unknown ({_names(unknown)}); "
                "name the pair in --manifest"
            )
        return earlier, later, "acquisition-order", (
            "views not recognised: the earlier acquisition was taken as flexion",
        )
    return fail(
        f"{candidates} candidate films ({_names(flexion + extension + unknown)}) without a clear "
        "flexion/extension pair; name the pair in --manifest"
    )


def write_pairs_csv(path: Path, plans: Sequence[StudyPlan]) -> None:
    """Write the chosen pairs in the manifest format (editable, reusable as ``--manifest``)."""
    from app.batch._tables import write_csv

    rows = [
        {
            "study_instance_uid": p.study_instance_uid,
            "patient_id": p.patient_id,
            "flexion": p.flexion.path,
            "extension": p.extension.path,
            "pairing": p.pairing,
            "flexion_view": p.flexion.view,
            "extension_view": p.extension.view,
        }
        for p in plans
    ]
    write_csv(
        path,
        rows,
        ["study_instance_uid", "patient_id", "flexion", "extension", "pairing", "flexion_view",
         "extension_view"],
    )
