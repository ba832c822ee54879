"""``lumbar-instability measure LANDMARKS.json``: segmental motion of one study.

Prints a table (default) or JSON (``--json``).  Bad input gives one line naming
the file and the key, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

HELP = "measure segmental translation and angulation from a landmarks JSON file"

DISCLAIMER = (
    "A measurement aid, not a diagnosis: interpret with the clinical picture. "
    "Landmark uncertainty is propagated to 95 % intervals; 'borderline' means the "
    "interval straddles a threshold."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("landmarks", metavar="LANDMARKS.json", help="landmarks file (docs/landmarks-format.md)")
    parser.add_argument(
        "--criteria",
        default="default",
        metavar="NAME|FILE",
        help="criteria preset (default, white-panjabi) or a JSON settings file of per-level thresholds",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def measure_study(study, criteria) -> tuple[Any, dict[str, Any]]:
    """Run ``measure.segmental_motion`` on a :class:`app.landmarks_io.StudyLandmarks`.

    Returns the :class:`measure.SegmentalMotion` and the JSON-ready document
    printed by ``--json`` (``segments``, ``criteria``, ``calibration``, ``warnings``).
    """

    import measure
    from app.errors import InputFileError
    from app.safety import (
        borderline_hint,
        check_motion,
        check_spacing,
        image_shape_of,
        implausible_spacing,
    )

    study.check_measurable()
    flex, ext = study.flexion, study.extension
    # issue 14 §1: a spacing that gives implausible body depths (or a field of view larger
    # than any detector, when the file states the film's "image_size") is not the patient's
    reasons = {name: implausible_spacing(f.corners, f.spacing_mm, image_shape_of(f.extra))
               for name in ("flexion", "extension") for f in [study.film(name)]}
    try:
        result = measure.segmental_motion(
            flex.corners,
            ext.corners,
            flexion_spacing_mm=None if reasons["flexion"] else flex.spacing_mm,
            extension_spacing_mm=None if reasons["extension"] else ext.spacing_mm,
            criteria=criteria,
            levels=study.levels,
            **flex.uncertainty().motion_kwargs("flexion"),
            **ext.uncertainty().motion_kwargs("extension"),
        )
    except ValueError as exc:
        raise InputFileError(study.path or "<landmarks>", f"cannot measure: {exc}") from None
    warnings = []
    for name in ("flexion", "extension"):
        cal = study.film(name).calibration
        if cal.warning and cal.is_calibrated:  # uncalibrated films: see result.warnings()
            warnings.append(f"{name}: {cal.warning}")
    sf, se = flex.spacing_mm, ext.spacing_mm
    if sf is not None and se is not None and not all(
        math.isclose(a, b, rel_tol=1e-6) for a, b in zip(sf, se, strict=True)
    ):
        warnings.append(
            f"the films have different pixel spacing (flexion {_fmt_spacing(sf)}, extension "
            f"{_fmt_spacing(se)} mm): check that both are calibrated the same way"
        )
    warnings += result.warnings()
    if not (result.flexion_calibrated and result.extension_calibrated):
        warnings.append(
            "landmark uncertainty is stated in mm: on an uncalibrated film it is converted "
            "taking the median endplate depth as 40 mm, for the 95 % intervals of angles and %"
        )
    safety = check_spacing(reasons) + check_motion(result.angulation_deg, result.translation_pct)
    warnings[0:0] = [f"SAFETY: {w.message}" for w in safety]
    crit = result.criteria
    doc = {
        "file": str(study.path) if study.path else None,
        "levels": list(study.levels),
        "criteria": {**crit.to_dict(), "rule": "unstable when a value is strictly more than its threshold"},
        "calibration": {
            name: {
                "pixel_spacing_mm": None if cal.spacing_mm is None else list(cal.spacing_mm),
                "source": cal.source.value,
                "detail": cal.detail,
                "warning": cal.warning,
                "spacing_used": cal.spacing_mm is not None and not reasons[name],
            }
            for name in ("flexion", "extension")
            for cal in [study.film(name).calibration]
        },
        "segments": result.to_records(),
        "warnings": warnings,
        "safety": [w.to_json() for w in safety],
        "borderline_hint": borderline_hint(result.to_records(), *_placed_corners(flex, ext)),
        "disclaimer": DISCLAIMER,
    }
    return result, doc


def _placed_corners(*films: Any) -> tuple[list[str], list[float]]:
    """Placement method and SD (mm, as used) of every placed corner of ``films`` (a file
    without placement is a reader's clicks), for ``app.safety.borderline_hint``."""
    import numpy as np

    methods: list[str] = []
    sds: list[float] = []
    for f in films:
        placed = np.isfinite(np.asarray(f.corners, float)).all(axis=-1)
        place = (np.full(placed.shape, "manual", dtype=object) if f.placement is None
                 else np.where(np.asarray(f.placement) == "", "manual", f.placement))
        methods += [str(m) for m in place[placed]]
        sds += [float(x) for x in f.effective_sd_mm()[placed]]
    return methods, sds


def _fmt_spacing(spacing) -> str:
    return f"{spacing[0]:.4g} x {spacing[1]:.4g}"


def _f(value: float | None, digits: int, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{round(value, digits) + 0.0:+.{digits}f}{unit}"  # + 0.0: no "-0.0"


def _pm(value: float | None, interval: list[float] | None, digits: int, unit: str) -> str:
    if value is None:
        return "n/a"
    text = f"{round(value, digits) + 0.0:+.{digits}f}"
    if interval is not None:
        text += f" ±{(interval[1] - interval[0]) / 2:.{digits}f}"
    return text + unit


def format_table(doc: dict[str, Any]) -> str:
    """The readable report of one study."""
    import measure

    cal = doc["calibration"]
    lines = []
    if doc.get("file"):
        lines.append(f"Study: {doc['file']}")
    for name in ("flexion", "extension"):
        c = cal[name]
        spacing = (
            "uncalibrated (no mm values)"
            if c["pixel_spacing_mm"] is None
            else f"{_fmt_spacing(c['pixel_spacing_mm'])} mm/pixel (row x column), source: {c['source']}"
        )
        if c["pixel_spacing_mm"] is not None and c.get("spacing_used") is False:
            spacing += " -- NOT USED: implausible endplate depths or field of view (see the warnings)"
        lines.append(f"{name.capitalize():10s} {spacing}")
    crit = doc["criteria"]
    lines.append(f"Criteria:  {crit['name']} ({crit['source']})")
    lines.append("")
    source_mm = _mm_source(cal)
    header = [
        "Segment", "Flex angle", "Ext angle", "Flex transl", "Ext transl",
        f"Translation{source_mm}", "Transl %", "Angulation", "Fired", "Result",
    ]  # fmt: skip
    rows = [header]
    both_mm = all(cal[name]["pixel_spacing_mm"] is not None and cal[name].get("spacing_used", True)
                  for name in ("flexion", "extension"))
    for s in doc["segments"]:
        if not s["measured"]:  # the film that has both levels still shows its own values
            rows.append(
                [
                    s["segment"],
                    _f(s["flexion_angle_deg"], 1, "°"),
                    _f(s["extension_angle_deg"], 1, "°"),
                    *["-"] * 5,
                    "-",
                    "not measured",
                ]
            )
            continue
        # the one verdict rule (measure.verdict_of_record), as in the viewer and the reports
        result = measure.verdict_of_record(s).label
        if not s["translation_assessed"]:
            result += " *"
        if both_mm:
            flex_t = _f(s["flexion_translation_mm"], 1, " mm")
            ext_t = _f(s["extension_translation_mm"], 1, " mm")
        else:  # the same unit on both films: % of that film's endplate depth
            flex_t = _f(s["flexion_translation_pct"], 1, " %")
            ext_t = _f(s["extension_translation_pct"], 1, " %")
        rows.append(
            [
                s["segment"],
                _f(s["flexion_angle_deg"], 1, "°"),
                _f(s["extension_angle_deg"], 1, "°"),
                flex_t,
                ext_t,
                _pm(s["translation_mm"], s["translation_mm_ci95"], 1, " mm"),
                _pm(s["translation_pct"], s["translation_pct_ci95"], 1, " %"),
                _pm(s["angulation_deg"], s["angulation_deg_ci95"], 1, "°"),
                s["criterion"],
                result,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        lines.append("  ".join(cell.ljust(w) if i in (0, 8, 9) else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    lines.append("")
    lines.append("Angles: positive = lordotic; angulation = extension - flexion. Translation: positive =")
    lines.append("upper body anterior; motion = flexion - extension. ± = half-width of the 95 % interval.")
    lines.append("UNSTABLE: a 95 % interval wholly beyond its threshold; BORDERLINE (ABOVE threshold): the")
    lines.append("value is above, its interval straddles the threshold; BORDERLINE (below thresholds): below,")
    lines.append("but an interval reaches a threshold; within thresholds: every interval within.")
    if not both_mm:
        lines.append("Per-film translation in % of that film's endplate depth (no mm without calibration).")
    if any(not s["translation_assessed"] for s in doc["segments"] if s["measured"]):
        lines.append("* translation criterion not applied (see the warnings).")
    if any(not s["measured"] for s in doc["segments"]):
        lines.append("not measured: one of its two levels has no landmarks on one of the films.")
    if doc.get("borderline_hint"):
        lines.append("")
        lines.append("Hint: " + doc["borderline_hint"])
    if doc["warnings"]:
        lines.append("")
        lines.append("Warnings:")
        lines.extend(f"  - {w}" for w in doc["warnings"])
    lines.append("")
    lines.append(DISCLAIMER)
    lines.append(f"Criteria source: {crit['source']}.")
    return "\n".join(lines)


def _mm_source(cal: dict[str, Any]) -> str:
    sources = {cal[name]["source"] for name in ("flexion", "extension")}
    if "uncalibrated" in sources or not all(cal[n].get("spacing_used", True) for n in cal):
        return ""
    return f" ({'/'.join(sorted(sources))})"


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


def run(args: argparse.Namespace) -> int:
    from app.landmarks_io import read_criteria, read_landmarks

    criteria = read_criteria(args.criteria)
    study = read_landmarks(args.landmarks)
    _, doc = measure_study(study, criteria)
    if args.json:
        print(json.dumps(_json_ready(doc), indent=2, allow_nan=False, ensure_ascii=False))
    else:
        print(format_table(doc))
    return 0
