"""Cohort outputs of a batch run: per-level plots and a self-contained ``summary.html``.

- ``cohort_distributions.png``: per level, the translation (mm and % of
  endplate depth) and the angulation of every measured segment, with the
  criteria's thresholds; unstable segments in red, borderline in amber.
- ``cohort_prevalence.png``: per level, the share of segments reported
  unstable, with its Wilson 95 % interval, and the share borderline.
- ``cohort_calibration.png``: how the films' millimetres were calibrated.
- ``summary.html``: the three plots (PNG inlined, no external file) and the
  per-level table, for a quick look at a cohort.

Matplotlib draws on the Agg backend through its object API (no pyplot, no
display, safe in workers and headless installs).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["cohort_figures", "level_table", "write_cohort"]

UNSTABLE_COLOUR = "#c62828"
BORDERLINE_COLOUR = "#f9a825"
WITHIN_COLOUR = "#607d8b"
PANELS = (
    ("translation_mm", "Translation (mm)"),
    ("translation_pct", "Translation (% of endplate depth)"),
    ("angulation_deg", "Angulation (°)"),
)


def _frame(rows: Sequence[Mapping[str, Any]] | Any):
    import pandas as pd

    return rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))


def _segments(results) -> list[str]:
    from measure import level_sort_key

    return sorted(results["segment"].unique(), key=lambda s: level_sort_key(str(s).split("-")[0]))


def level_table(results, criteria: Any = "default"):
    """Per-level summary of a results table.

    Parameters
    ----------
    results : DataFrame or sequence of mapping
        ``results`` rows of a batch (``segment``, ``measured``, ``unstable``,
        ``borderline``, ``translation_mm``, ``translation_pct``, ``angulation_deg``).
    criteria : str or measure.Criteria
        For the thresholds shown.

    Returns
    -------
    DataFrame
        One row per segment: ``measured``, ``unstable``, ``unstable_pct`` with
        ``unstable_ci95_low``/``high`` (Wilson, %), ``borderline``, medians and
        quartiles of the three quantities, and the thresholds.
    """
    import pandas as pd

    from measure import get_criteria, wilson_interval

    frame = _frame(results)
    spec = get_criteria(criteria)
    out = []
    for segment in _segments(frame):
        part = frame[(frame["segment"] == segment) & frame["measured"].astype(bool)]
        n = len(part)
        unstable = int(part["unstable"].astype(bool).sum())
        low, high = wilson_interval(unstable, n) * 100.0
        row: dict[str, Any] = {
            "segment": segment,
            "measured": n,
            "unstable": unstable,
            "unstable_pct": 100.0 * unstable / n if n else math.nan,
            "unstable_ci95_low": low,
            "unstable_ci95_high": high,
            "borderline": int(part["borderline"].astype(bool).sum()),
        }
        for key, _ in PANELS:
            values = pd.to_numeric(part[key], errors="coerce").dropna()
            row[f"{key}_n"] = len(values)
            row[f"{key}_median"] = float(values.median()) if len(values) else math.nan
            row[f"{key}_q1"] = float(values.quantile(0.25)) if len(values) else math.nan
            row[f"{key}_q3"] = float(values.quantile(0.75)) if len(values) else math.nan
            row[f"{key}_threshold"] = spec.threshold(key, segment)
        out.append(row)
    return pd.DataFrame(out)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _distributions(frame, segments: list[str], criteria) -> Any:
    import pandas as pd

    fig = _figure(13.5, 4.4)
    axes = fig.subplots(1, len(PANELS))
    measured = frame[frame["measured"].astype(bool)]
    jitter = np.random.default_rng(0)
    for ax, (key, title) in zip(axes, PANELS, strict=True):
        data = []
        for i, segment in enumerate(segments):
            part = measured[measured["segment"] == segment]
            values = pd.to_numeric(part[key], errors="coerce")
            ok = values.notna().to_numpy()
            y = values.to_numpy()[ok]
            data.append(y)
            unstable = part["unstable"].astype(bool).to_numpy()[ok]
            borderline = part["borderline"].astype(bool).to_numpy()[ok]
            colour = np.where(borderline, BORDERLINE_COLOUR,
                              np.where(unstable, UNSTABLE_COLOUR, WITHIN_COLOUR))
            x = i + jitter.uniform(-0.18, 0.18, len(y))
            ax.scatter(x, y, s=12, c=list(colour), alpha=0.8, linewidths=0, zorder=3)
            threshold = criteria.threshold(key, segment)
            if math.isfinite(threshold):
                for sign in (-1, 1):
                    ax.hlines(sign * threshold, i - 0.42, i + 0.42, colors="black",
                              linestyles="--", linewidth=1.0, zorder=4)
        ax.boxplot(
            [d if len(d) else [np.nan] for d in data],
            positions=range(len(segments)),
            widths=0.55,
            showfliers=False,
            medianprops={"color": "black"},
            boxprops={"color": "0.45"},
            whiskerprops={"color": "0.45"},
            capprops={"color": "0.45"},
        )
        counts = [len(d) for d in data]
        ax.set_xticks(range(len(segments)), [f"{s}\nn={c}" for s, c in zip(segments, counts,
                                                                            strict=True)])
        ax.axhline(0.0, color="0.8", linewidth=0.8, zorder=1)
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=8)
        if not any(math.isfinite(criteria.threshold(key, s)) for s in segments):
            ax.text(0.01, 0.99, f"no {criteria.name} threshold", transform=ax.transAxes,
                    fontsize=7, va="top", color="0.4")
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", ls="", color=WITHIN_COLOUR, label="within thresholds"),
        Line2D([], [], marker="o", ls="", color=BORDERLINE_COLOUR, label="borderline (95 % interval straddles a threshold)"),
        Line2D([], [], marker="o", ls="", color=UNSTABLE_COLOUR, label="unstable"),
        Line2D([], [], ls="--", color="black", label=f"threshold ± ({criteria.name})"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    fig.suptitle(
        "Motion per level: flexion − extension translation, extension − flexion angulation "
        "(mm only for calibrated films)",
        fontsize=11,
    )
    return fig


def _prevalence(table) -> Any:
    fig = _figure(7.0, 4.4)
    ax = fig.subplots()
    x = np.arange(len(table))
    n = table["measured"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        borderline_pct = np.where(n > 0, 100.0 * table["borderline"].to_numpy() / np.maximum(n, 1),
                                  np.nan)
    ax.bar(x - 0.2, table["unstable_pct"], width=0.4, color=UNSTABLE_COLOUR, label="unstable")
    err = np.clip(np.vstack([table["unstable_pct"] - table["unstable_ci95_low"],
                             table["unstable_ci95_high"] - table["unstable_pct"]]), 0.0, None)
    ax.errorbar(x - 0.2, table["unstable_pct"], yerr=err, fmt="none", ecolor="black",
                capsize=3, linewidth=1, label="95 % interval (Wilson)")
    ax.bar(x + 0.2, borderline_pct, width=0.4, color=BORDERLINE_COLOUR, label="borderline")
    tops = np.nan_to_num(table["unstable_ci95_high"].to_numpy(), nan=0.0)
    for xi, (u, total, top) in enumerate(zip(table["unstable"], n, tops, strict=True)):
        ax.text(xi - 0.2, top + 1.5, f"{u}/{total}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, table["segment"])
    ax.set_ylabel("% of measured segments")
    ax.set_ylim(0, 105)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=8,
               frameon=False)
    ax.set_title("Segments reported unstable or borderline, per level", fontsize=10)
    return fig


def _calibration(studies) -> Any:
    from measure import CalibrationSource

    fig = _figure(7.5, 3.6)
    ax = fig.subplots()
    sources = [s.value for s in CalibrationSource]
    roles = ("flexion", "extension")
    counts = {role: studies[f"{role}_calibration_source"].value_counts() for role in roles}
    present = [s for s in sources if any(counts[r].get(s, 0) for r in roles)] or sources
    y = np.arange(len(present))
    for offset, role, colour in ((-0.2, "flexion", "#1565c0"), (0.2, "extension", "#6a1b9a")):
        values = [int(counts[role].get(s, 0)) for s in present]
        ax.barh(y + offset, values, height=0.4, color=colour, label=f"{role} film")
        for yi, v in zip(y, values, strict=True):
            ax.text(v, yi + offset, f" {v}", va="center", fontsize=7)
    ax.set_yticks(y, present)
    ax.invert_yaxis()
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("studies")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_xlim(0, max(1, *(int(counts[r].max()) if len(counts[r]) else 0 for r in roles)) * 1.12)
    fig.suptitle(
        "Calibration of the films\n(detector: mm overstated by the magnification; "
        "uncalibrated: no mm, % and angles only)", fontsize=9,
    )
    return fig


def cohort_figures(results, studies, criteria: Any = "default") -> dict[str, Any]:
    """The cohort plots as matplotlib Figures (Agg canvas), by file stem.

    Parameters
    ----------
    results, studies : DataFrame or sequence of mapping
        The ``results`` and ``studies`` rows of a batch.
    criteria : str or measure.Criteria

    Returns
    -------
    dict
        ``cohort_distributions``, ``cohort_prevalence``, ``cohort_calibration``.
    """
    from measure import get_criteria

    frame, study_frame = _frame(results), _frame(studies)
    spec = get_criteria(criteria)
    segments = _segments(frame)
    table = level_table(frame, spec)
    return {
        "cohort_distributions": _distributions(frame, segments, spec),
        "cohort_prevalence": _prevalence(table),
        "cohort_calibration": _calibration(study_frame),
    }


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _html(table, pngs: Mapping[str, bytes], info: Mapping[str, Any]) -> str:
    rows = []
    for _, r in table.iterrows():
        cells = [
            html.escape(str(r["segment"])),
            str(r["measured"]),
            f"{r['unstable']} ({_fmt(r['unstable_pct'])} %; {_fmt(r['unstable_ci95_low'])}–"
            f"{_fmt(r['unstable_ci95_high'])} %)",
            str(r["borderline"]),
        ]
        for key, _ in PANELS:
            cells.append(
                f"{_fmt(r[f'{key}_median'])} [{_fmt(r[f'{key}_q1'])}, {_fmt(r[f'{key}_q3'])}]"
                f" (n={r[f'{key}_n']})"
            )
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    images = "\n".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode("ascii")}"></figure>'
        for name, data in pngs.items()
    )
    facts = "".join(
        f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in info.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>lumbar-instability cohort summary</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
td, th {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #eee; }}
img {{ max-width: 100%; }}
.note {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>Cohort summary</h1>
<p class="note">A measurement aid, not a diagnosis: measurements against published thresholds,
with their uncertainty. Borderline: the 95 % interval of a value straddles its threshold.</p>
<ul>{facts}</ul>
<h2>Per level</h2>
<table><tr><th>segment</th><th>measured</th><th>unstable (95 % CI)</th><th>borderline</th>
<th>translation mm median [IQR]</th><th>translation % median [IQR]</th>
<th>angulation ° median [IQR]</th></tr>
{chr(10).join(rows)}
</table>
<h2>Plots</h2>
{images}
</body></html>
"""


def write_cohort(
    out_dir: str | Path,
    results: Sequence[Mapping[str, Any]] | Any,
    studies: Sequence[Mapping[str, Any]] | Any,
    criteria: Any = "default",
    info: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write the three PNGs and ``summary.html`` (atomically); returns the paths.

    Nothing is written when no segment was measured.
    """
    from app.atomic import atomic_write_bytes, atomic_write_text
    from measure import get_criteria

    frame = _frame(results)
    if frame.empty or not frame["measured"].astype(bool).any():
        return []
    spec = get_criteria(criteria)
    out = Path(out_dir)
    figures = cohort_figures(frame, studies, spec)
    pngs = {name: _png(fig) for name, fig in figures.items()}
    written = []
    for name, data in pngs.items():
        path = out / f"{name}.png"
        atomic_write_bytes(path, data)
        written.append(path)
    facts = {"criteria": spec.describe(), **(info or {})}
    path = out / "summary.html"
    atomic_write_text(path, _html(level_table(frame, spec), pngs, facts))
    written.append(path)
    return written
