"""Reader agreement: compare two or more readings of the same studies.

A *reading* is one reader's landmarks of one study: a session file, a
landmarks file, an SR written by this tool, or one study's rows of a batch
``results.csv``/``results.parquet`` (automatic landmarks).  A *reader* is one
command-line argument: a file, or a folder holding that reader's readings
(readers, repeated readings by one reader, manual versus automatic).

Readings are matched across readers by the first identity every reading
carries: the Study Instance UID of the films, then the SHA-256 of both films,
then their SOP Instance UIDs, then the file name.  Every reading is measured
again with the same criteria (:func:`app.commands.measure.measure_study`), so
readers differ only by their landmarks and calibration.

Per segment and quantity the tables give ICC(2,1) and ICC(3,1) with 95 %
intervals, the standard error of measurement and the smallest detectable
change; per pair of readers the Bland–Altman bias and limits of agreement; per
segment Cohen's (two readers) or Fleiss' (more) kappa of the *unstable*
verdict.  The statistics are :mod:`measure._agreement`'s; see
``docs/agreement.md``.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import InputFileError, UserError

__all__ = [
    "QUANTITIES",
    "AgreementResult",
    "Reading",
    "agreement",
    "agreement_tables",
    "format_agreement",
    "load_readings",
    "records",
    "write_agreement",
]

#: Quantities compared, with their unit: the motion and the per-film segmental angles.
QUANTITIES: dict[str, str] = {
    "translation_mm": "mm",
    "translation_pct": "%",
    "angulation_deg": "°",
    "flexion_angle_deg": "°",
    "extension_angle_deg": "°",
}

#: Titles for tables and plots.
QUANTITY_TITLES: dict[str, str] = {
    "translation_mm": "Translation (mm)",
    "translation_pct": "Translation (% of endplate depth)",
    "angulation_deg": "Angulation (°)",
    "flexion_angle_deg": "Segmental angle on flexion (°)",
    "extension_angle_deg": "Segmental angle on extension (°)",
}

MATCH_KEYS = ("study_instance_uid", "film_sha256", "sop_instance_uids", "file_name")
"""How readings are matched, in order of preference; the first that every reading has wins."""

DISCLAIMER = (
    "Agreement between readings of a measurement aid; not a diagnosis. "
    "ICC(2,1): absolute agreement, readers random; ICC(3,1): consistency, readers fixed."
)


@dataclass(frozen=True)
class Reading:
    """One reader's measurement of one study.

    Attributes
    ----------
    reader : str
        The reader's name (``--reader``, else the argument's file or folder name).
    path : Path
        The file read.
    identity : dict of str to str
        ``study_instance_uid``, ``film_sha256``, ``sop_instance_uids``,
        ``file_name``; "" where the reading does not carry it.
    segments : list of dict
        ``measure.SegmentalMotion.to_records()`` rows (``segment``,
        ``measured``, the quantities of :data:`QUANTITIES`, ``unstable``).
    """

    reader: str
    path: Path
    identity: dict[str, str]
    segments: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class AgreementResult:
    """The agreement tables (pandas DataFrames) and how they were made.

    Attributes
    ----------
    readings : DataFrame
        One row per reader, study and segment: ``reader``, ``study``, ``segment``,
        the quantities, ``unstable``, ``file``.
    icc : DataFrame
        One row per segment and quantity: ``n_studies``, ``n_readers``,
        ``icc_2_1`` with ``icc_2_1_ci95_low/high``, ``icc_3_1`` with its interval,
        ``f_value``, ``p_value``, ``sem``, ``sdc``, ``sem_consistency``,
        ``sdc_consistency``, ``note``.
    bland_altman : DataFrame
        One row per segment, quantity and pair of readers: ``reader_a``,
        ``reader_b`` (differences are b − a), ``n_studies``, ``bias``, ``sd``,
        ``loa_low``, ``loa_high`` and the 95 % intervals of bias and limits.
    kappa : DataFrame
        One row per segment (and ``all`` segments pooled): ``method`` (cohen,
        fleiss), ``n_studies``, ``kappa``, ``observed_agreement`` and the number
        of unstable verdicts of each reader.
    readers : list of str
    studies : list of str
    matched_by : str
        One of :data:`MATCH_KEYS`.
    criteria : str
        The criteria every reading was measured with.
    """

    readings: Any
    icc: Any
    bland_altman: Any
    kappa: Any
    readers: list[str]
    studies: list[str]
    matched_by: str
    criteria: str
    ignored: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading


def _identity_of_doc(doc: dict[str, Any], path: Path) -> dict[str, str]:
    images = []
    for role in ("flexion", "extension"):
        film = doc.get(role) if isinstance(doc.get(role), dict) else {}
        image = film.get("image") if isinstance(film.get("image"), dict) else {}
        images.append(image)
    studies = {str(i.get("study_instance_uid") or "") for i in images}
    sha = [str(i.get("sha256") or "") for i in images]
    sop = [str(i.get("sop_instance_uid") or "") for i in images]
    study = next(iter(studies)) if len(studies) == 1 else ""
    return {
        "study_instance_uid": study,
        "film_sha256": "/".join(sha) if all(sha) else "",
        "sop_instance_uids": "/".join(sop) if all(sop) else "",
        "file_name": path.stem,
    }


def _measure_doc(doc: dict[str, Any], path: Path, reader: str, criteria) -> Reading:
    from app.commands.measure import measure_study
    from app.landmarks_io import parse_landmarks

    study = parse_landmarks(doc, path)
    _, result = measure_study(study, criteria)
    identity = _identity_of_doc(doc, path)
    if not identity["study_instance_uid"] and getattr(doc, "identity", None):
        identity["study_instance_uid"] = str(doc.identity.get("study_instance_uid") or "")
    return Reading(reader, path, identity, result["segments"])


def _readings_of_table(path: Path, reader: str) -> list[Reading]:
    """Readings from a batch ``results.csv`` / ``results.parquet`` (one per study)."""
    import pandas as pd

    try:
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:
        raise InputFileError(path, f"cannot be read as a results table ({type(exc).__name__})") from None
    needed = {"study_instance_uid", "segment", "measured", "unstable", *QUANTITIES}
    missing = sorted(needed - set(table.columns))
    if missing:
        raise InputFileError(path, f"not a batch results table: no column {missing[0]!r}")
    readings = []
    for uid, rows in table.groupby("study_instance_uid", sort=False):
        identity = {key: "" for key in MATCH_KEYS}
        identity["study_instance_uid"] = str(uid)
        if {"flexion_sop_instance_uid", "extension_sop_instance_uid"} <= set(rows.columns):
            first = rows.iloc[0]
            identity["sop_instance_uids"] = (
                f"{first['flexion_sop_instance_uid']}/{first['extension_sop_instance_uid']}"
            )
        segments = [
            {
                "segment": str(r["segment"]),
                "measured": bool(r["measured"]),
                "unstable": None if pd.isna(r["unstable"]) else bool(r["unstable"]),
                **{q: None if pd.isna(r[q]) else float(r[q]) for q in QUANTITIES},
            }
            for _, r in rows.iterrows()
        ]
        readings.append(Reading(reader, path, identity, segments))
    return readings


def _is_results_table(path: Path) -> bool:
    return path.suffix in (".csv", ".parquet")


def _read_file(path: Path, reader: str, criteria) -> list[Reading] | None:
    """The readings of one file, or None when it holds none (not a reading)."""
    if _is_results_table(path):
        return _readings_of_table(path, reader)
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputFileError(path, f"not a JSON file ({type(exc).__name__})") from None
        if not (isinstance(doc, dict) and isinstance(doc.get("flexion"), dict)
                and isinstance(doc.get("extension"), dict)):
            return None
        return [_measure_doc(doc, path, reader, criteria)]
    from app.report_sr import read_sr

    try:
        doc = read_sr(path)
    except InputFileError as exc:
        if "not a DICOM Structured Report" in str(exc) or "not a readable DICOM" in str(exc):
            return None  # a film or another file lying in the reader's folder
        raise
    return [_measure_doc(doc, path, reader, criteria)]


def _reader_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(
            p for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in (".json", ".dcm", ".csv", ".parquet")
            and not p.name.startswith(".")
        )
    if path.is_file():
        return [path]
    raise InputFileError(path, "no such file or folder")


def load_readings(
    paths: Sequence[str | PathLike[str]],
    readers: Sequence[str] | None = None,
    criteria: str | PathLike[str] = "default",
) -> tuple[list[Reading], list[str]]:
    """Read and measure every reader's readings.

    Parameters
    ----------
    paths : sequence of path-like
        One per reader: a file or a folder of that reader's readings.
    readers : sequence of str, optional
        The readers' names, one per path (default: each path's name).
    criteria : str or path-like
        Criteria preset or settings file (as ``measure --criteria``).

    Returns
    -------
    readings : list of Reading
    ignored : list of str
        Files in the readers' folders that hold no reading, with why.

    Raises
    ------
    UserError
        Fewer than two readers, or a wrong number of names.
    InputFileError
        A reading that cannot be read or measured (the file and the problem).
    """
    from app.landmarks_io import read_criteria

    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise UserError("agreement needs at least two readers (two files or folders)")
    if readers is None:
        readers = [p.stem if p.is_file() else p.name for p in paths]
    if len(readers) != len(paths):
        raise UserError(f"--reader: {len(readers)} names for {len(paths)} readers")
    if len(set(readers)) != len(readers):
        raise UserError(f"reader names must differ (got {list(readers)}); name them with --reader")
    spec = read_criteria(criteria)
    readings: list[Reading] = []
    ignored: list[str] = []
    for path, reader in zip(paths, readers, strict=True):
        found = 0
        for file in _reader_files(path):
            got = _read_file(file, reader, spec)
            if got is None:
                ignored.append(f"{file}: not a reading (no flexion and extension landmarks)")
                continue
            readings.extend(got)
            found += len(got)
        if not found:
            raise InputFileError(path, "no readings found (session, landmarks, SR or results table)")
    return readings, ignored


def _match(readings: list[Reading], readers: list[str]) -> tuple[str, dict[tuple[str, str], Reading]]:
    """Pick the identity key all readings share; index readings by (reader, study)."""
    key = next(
        (k for k in MATCH_KEYS if all(r.identity.get(k) for r in readings)), "file_name"
    )
    table: dict[tuple[str, str], Reading] = {}
    for reading in readings:
        study = reading.identity[key]
        other = table.get((reading.reader, study))
        if other is not None:
            raise UserError(
                f"reader {reading.reader!r} has two readings of the same study ({key} {study}): "
                f"{other.path} and {reading.path}"
            )
        table[(reading.reader, study)] = reading
    studies = sorted({s for _, s in table})
    missing = [
        f"{reader}: {sum((reader, s) not in table for s in studies)} of {len(studies)}"
        for reader in readers
        if any((reader, s) not in table for s in studies)
    ]
    if missing:
        example = next(
            (reader, s) for reader in readers for s in studies if (reader, s) not in table
        )
        raise UserError(
            f"the readers' studies do not match (matched by {key}); studies missing: "
            f"{'; '.join(missing)} (e.g. {example[0]} has no reading of {example[1]}). "
            "Use --common to compare only the studies every reader read"
        )
    return key, table


def _long_table(readings: list[Reading], readers: list[str], common: bool):
    import pandas as pd

    key = next(
        (k for k in MATCH_KEYS if all(r.identity.get(k) for r in readings)), "file_name"
    )
    if common:
        by_study: dict[str, set[str]] = {}
        for r in readings:
            by_study.setdefault(r.identity[key], set()).add(r.reader)
        keep = {s for s, who in by_study.items() if who >= set(readers)}
        if len(keep) < 2:
            raise UserError(
                f"fewer than two studies were read by every reader (matched by {key}): "
                f"{len(keep)} of {len(by_study)}"
            )
        readings = [r for r in readings if r.identity[key] in keep]
    key, _ = _match(readings, readers)
    rows = []
    for r in readings:
        for seg in r.segments:
            rows.append(
                {
                    "reader": r.reader,
                    "study": r.identity[key],
                    "segment": seg["segment"],
                    "measured": bool(seg.get("measured", True)),
                    **{q: _float(seg.get(q)) for q in QUANTITIES},
                    "unstable": seg.get("unstable") if seg.get("measured", True) else None,
                    "file": str(r.path),
                }
            )
    return key, pd.DataFrame(rows)


def _float(value: Any) -> float:
    if value is None:
        return math.nan
    return float(value)


# --------------------------------------------------------------------------- statistics


def _segment_order(segments: Sequence[str]) -> list[str]:
    from measure import level_sort_key

    return sorted(set(segments), key=lambda s: level_sort_key(s.split("-")[0]))


def agreement_tables(long, readers: Sequence[str]) -> tuple[Any, Any, Any]:
    """ICC, Bland–Altman and kappa tables from the long table of readings.

    Parameters
    ----------
    long : DataFrame
        One row per reader, study and segment with the columns of
        :data:`QUANTITIES` and ``unstable`` (as :attr:`AgreementResult.readings`).
    readers : sequence of str
        Column order of the readers (the first is reader A of every pair).

    Returns
    -------
    icc, bland_altman, kappa : DataFrame
    """
    import pandas as pd

    from measure import bland_altman, cohen_kappa, fleiss_kappa, intraclass_correlation

    readers = list(readers)
    k = len(readers)
    icc_rows, ba_rows, kappa_rows = [], [], []
    segments = _segment_order(long["segment"])
    for segment in segments:
        part = long[long["segment"] == segment]
        for quantity, unit in QUANTITIES.items():
            wide = part.pivot(index="study", columns="reader", values=quantity).reindex(columns=readers)
            complete = wide.dropna()
            n = len(complete)
            row: dict[str, Any] = {
                "segment": segment, "quantity": quantity, "unit": unit,
                "n_studies": n, "n_readers": k, "n_incomplete": len(wide) - n,
                "mean": float(complete.to_numpy().mean()) if n else math.nan,
            }  # fmt: skip
            if n >= 2 and np.ptp(complete.to_numpy()) > 0:
                icc = intraclass_correlation(complete.to_numpy())
                row |= {
                    "icc_2_1": float(icc.icc_2_1),
                    "icc_2_1_ci95_low": float(icc.icc_2_1_ci95[0]),
                    "icc_2_1_ci95_high": float(icc.icc_2_1_ci95[1]),
                    "icc_3_1": float(icc.icc_3_1),
                    "icc_3_1_ci95_low": float(icc.icc_3_1_ci95[0]),
                    "icc_3_1_ci95_high": float(icc.icc_3_1_ci95[1]),
                    "f_value": float(icc.f_value),
                    "p_value": float(icc.p_value),
                    "sem": float(icc.sem),
                    "sdc": float(icc.sdc),
                    "sem_consistency": float(icc.sem_consistency),
                    "sdc_consistency": float(icc.sdc_consistency),
                    "note": "",
                }
            else:
                row["note"] = (
                    "fewer than 2 studies measured by every reader"
                    if n < 2 else "every reading has the same value"
                )
            icc_rows.append(row)
            for a, b in itertools.combinations(readers, 2):
                pair = wide[[a, b]].dropna()
                ba_row: dict[str, Any] = {
                    "segment": segment, "quantity": quantity, "unit": unit,
                    "reader_a": a, "reader_b": b, "n_studies": len(pair),
                }  # fmt: skip
                if len(pair) >= 2:
                    ba = bland_altman(pair[a].to_numpy(), pair[b].to_numpy())
                    ba_row |= {
                        "bias": float(ba.bias),
                        "bias_ci95_low": float(ba.bias_ci95[0]),
                        "bias_ci95_high": float(ba.bias_ci95[1]),
                        "sd": float(ba.sd),
                        "loa_low": float(ba.loa[0]),
                        "loa_high": float(ba.loa[1]),
                        "loa_low_ci95_low": float(ba.loa_lower_ci95[0]),
                        "loa_low_ci95_high": float(ba.loa_lower_ci95[1]),
                        "loa_high_ci95_low": float(ba.loa_upper_ci95[0]),
                        "loa_high_ci95_high": float(ba.loa_upper_ci95[1]),
                    }
                ba_rows.append(ba_row)
    verdicts = long.pivot_table(
        index=["study", "segment"], columns="reader", values="unstable", aggfunc="first"
    ).reindex(columns=readers)
    verdicts = verdicts.dropna()
    for segment in [*segments, "all"]:
        table = verdicts if segment == "all" else verdicts[
            verdicts.index.get_level_values("segment") == segment
        ]
        codes = table.to_numpy(dtype=bool)
        row = {"segment": segment, "method": "cohen" if k == 2 else "fleiss", "n_studies": len(table)}
        if segment == "all":
            row["n_studies"] = table.index.get_level_values("study").nunique()
            row["n_segments"] = len(table)
        else:
            row["n_segments"] = len(table)
        row |= {f"unstable_{r}": int(codes[:, i].sum()) for i, r in enumerate(readers)}
        if len(table) >= 1:
            kappa = cohen_kappa(codes[:, 0], codes[:, 1]) if k == 2 else fleiss_kappa(codes)
            row["kappa"] = float(kappa)
            row["observed_agreement"] = float(np.mean(codes.all(axis=1) | ~codes.any(axis=1)))
            row["note"] = "" if np.isfinite(kappa) else "undefined: one verdict throughout"
        else:
            row |= {"kappa": math.nan, "observed_agreement": math.nan, "note": "no segment measured"}
        kappa_rows.append(row)
    return pd.DataFrame(icc_rows), pd.DataFrame(ba_rows), pd.DataFrame(kappa_rows)


def agreement(
    paths: Sequence[str | PathLike[str]],
    readers: Sequence[str] | None = None,
    *,
    criteria: str | PathLike[str] = "default",
    common: bool = False,
) -> AgreementResult:
    """Agreement of two or more readers' readings of the same studies.

    Parameters
    ----------
    paths : sequence of path-like
        One per reader: a session, landmarks or SR file, a batch results table,
        or a folder of them.
    readers : sequence of str, optional
        Names of the readers (default: the file or folder names).
    criteria : str or path-like
        Criteria every reading is measured with (for the *unstable* verdict).
    common : bool
        Use only the studies every reader read instead of refusing unmatched studies.

    Returns
    -------
    AgreementResult

    Raises
    ------
    UserError, InputFileError
        Unmatched studies (without ``common``), unreadable readings.
    """
    from app.landmarks_io import read_criteria

    readings, ignored = load_readings(paths, readers, criteria)
    names = list(dict.fromkeys(r.reader for r in readings))
    key, long = _long_table(readings, names, common)
    icc, ba, kappa = agreement_tables(long, names)
    return AgreementResult(
        readings=long,
        icc=icc,
        bland_altman=ba,
        kappa=kappa,
        readers=names,
        studies=sorted(long["study"].unique()),
        matched_by=key,
        criteria=read_criteria(criteria).name,
        ignored=ignored,
    )


# --------------------------------------------------------------------------- output


def _json_value(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def records(frame) -> list[dict[str, Any]]:
    return [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict("records")]


def bland_altman_figure(result: AgreementResult, quantity: str):
    """A matplotlib Figure (Agg, no pyplot state): one panel per segment, differences
    against means for each pair of readers, with bias and 95 % limits of agreement."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    long = result.readings
    readers = result.readers
    segments = _segment_order(long["segment"])
    unit = QUANTITIES[quantity]
    fig = Figure(figsize=(3.2 * len(segments), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(segments), squeeze=False, sharey=True)[0]
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    pairs = list(itertools.combinations(readers, 2))
    ba = result.bland_altman
    for ax, segment in zip(axes, segments, strict=True):
        wide = long[long["segment"] == segment].pivot(
            index="study", columns="reader", values=quantity
        )
        for i, (a, b) in enumerate(pairs):
            colour = colours[i % len(colours)]
            pair = wide[[a, b]].dropna()
            mean = (pair[a] + pair[b]) / 2
            diff = pair[b] - pair[a]
            ax.scatter(mean, diff, s=14, color=colour, alpha=0.75, label=f"{b} − {a}")
            stats_row = ba[(ba["segment"] == segment) & (ba["quantity"] == quantity)
                           & (ba["reader_a"] == a) & (ba["reader_b"] == b)]
            if len(stats_row) and "bias" in stats_row and np.isfinite(stats_row["bias"].iloc[0]):
                s = stats_row.iloc[0]
                ax.axhline(s["bias"], color=colour, lw=1.2)
                for limit in (s["loa_low"], s["loa_high"]):
                    ax.axhline(limit, color=colour, lw=1.0, ls="--")
                if len(pairs) == 1:
                    ax.set_title(
                        f"{segment}\nbias {s['bias']:+.2f} [{s['loa_low']:+.2f}, {s['loa_high']:+.2f}]",
                        fontsize=9,
                    )
        if len(pairs) != 1:
            ax.set_title(segment, fontsize=9)
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_xlabel(f"mean of the pair ({unit})", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel(f"difference ({unit})", fontsize=8)
    which = f"{pairs[0][1]} − {pairs[0][0]}" if len(pairs) == 1 else "each pair of readers"
    if len(pairs) > 1:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center",
                   ncols=min(len(pairs), 6), fontsize=8)
    fig.suptitle(
        f"Bland–Altman, {QUANTITY_TITLES[quantity]}: {which} against their mean; "
        "solid: bias, dashed: 95 % limits of agreement",
        fontsize=10,
    )
    return fig


def write_agreement(result: AgreementResult, out_dir: str | PathLike[str]) -> list[Path]:
    """Write ``agreement_icc.csv``, ``agreement_bland_altman.csv``, ``agreement_kappa.csv``,
    ``agreement_readings.csv``, ``agreement.json`` and ``bland_altman_<quantity>.png``.

    Every file is written atomically; returns the paths written.
    """
    import io

    from app.atomic import atomic_write_bytes, atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (
        ("agreement_icc.csv", result.icc),
        ("agreement_bland_altman.csv", result.bland_altman),
        ("agreement_kappa.csv", result.kappa),
        ("agreement_readings.csv", result.readings),
    ):
        path = out / name
        atomic_write_text(path, frame.to_csv(index=False, float_format="%.10g"))
        written.append(path)
    doc = {
        "format": "lumbar-instability-agreement",
        "format_version": 1,
        "readers": result.readers,
        "studies": len(result.studies),
        "matched_by": result.matched_by,
        "criteria": result.criteria,
        "icc": records(result.icc),
        "bland_altman": records(result.bland_altman),
        "kappa": records(result.kappa),
        "ignored_files": result.ignored,
        "disclaimer": DISCLAIMER,
    }
    path = out / "agreement.json"
    atomic_write_text(path, json.dumps(doc, indent=2, allow_nan=False, ensure_ascii=False))
    written.append(path)
    for quantity in QUANTITIES:
        fig = bland_altman_figure(result, quantity)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        path = out / f"bland_altman_{quantity}.png"
        atomic_write_bytes(path, buf.getvalue())
        written.append(path)
    return written


def format_agreement(result: AgreementResult) -> str:
    """The readable summary printed by ``lumbar-instability agreement``."""
    lines = [
        f"Readers: {', '.join(result.readers)}; {len(result.studies)} studies "
        f"(matched by {result.matched_by}); criteria: {result.criteria}",
        "",
    ]
    header = ["Segment", "Quantity", "n", "ICC(2,1) [95 % CI]", "ICC(3,1) [95 % CI]", "SEM", "SDC"]
    if len(result.readers) == 2:
        header.append("Bias [95 % LoA]")
    rows = [header]
    ba = result.bland_altman
    for _, r in result.icc.iterrows():
        unit = r["unit"]
        if r["note"]:
            cells = [r["segment"], r["quantity"], str(r["n_studies"]), r["note"], "", "", ""]
        else:
            cells = [
                r["segment"], r["quantity"], str(r["n_studies"]),
                f"{r['icc_2_1']:.2f} [{r['icc_2_1_ci95_low']:.2f}, {r['icc_2_1_ci95_high']:.2f}]",
                f"{r['icc_3_1']:.2f} [{r['icc_3_1_ci95_low']:.2f}, {r['icc_3_1_ci95_high']:.2f}]",
                f"{r['sem']:.2f} {unit}", f"{r['sdc']:.2f} {unit}",
            ]  # fmt: skip
        if len(result.readers) == 2:
            s = ba[(ba["segment"] == r["segment"]) & (ba["quantity"] == r["quantity"])].iloc[0]
            cells.append(
                f"{s['bias']:+.2f} [{s['loa_low']:+.2f}, {s['loa_high']:+.2f}] {unit}"
                if "bias" in s and np.isfinite(s.get("bias", math.nan)) else "-"
            )
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    lines.append("")
    method = "Cohen's" if len(result.readers) == 2 else "Fleiss'"
    lines.append(f"{method} kappa of the unstable verdict:")
    for _, r in result.kappa.iterrows():
        counts = ", ".join(f"{name} {r[f'unstable_{name}']}" for name in result.readers)
        kappa = "n/a" if not np.isfinite(r["kappa"]) else f"{r['kappa']:.2f}"
        note = f" ({r['note']})" if r["note"] else ""
        lines.append(
            f"  {r['segment']:6s} kappa {kappa}{note}; agreement {r['observed_agreement']:.0%} "
            f"of {r['n_segments']} segments; unstable: {counts}"
        )
    if result.ignored:
        lines.append("")
        lines.append(f"{len(result.ignored)} file(s) in the readers' folders hold no reading (ignored).")
    lines.append("")
    lines.append(DISCLAIMER)
    return "\n".join(lines)
