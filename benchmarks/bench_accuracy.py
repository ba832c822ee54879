"""Accuracy of the automatic landmarks on phantom studies no test uses (issue 5).

Run by hand (minutes)::

    .venv/bin/python benchmarks/bench_accuracy.py --studies 24 --markdown

For every study (seeds 50000 + k, never used by a test) the conditions cycle
through facing (left, right), film rotation (0°, 15°), a magnification change
between the films (1.00, 1.10) and added noise (0, 2 %, 5 % of the film's
1st-99th percentile range, Gaussian, per pixel).  Methods:

- ``tracked``: true flexion corners carried to the extension film
  (:func:`measure.track_bodies`);
- ``refined``: the true corners of both films moved by a Gaussian 1.5 mm per
  axis ("four quick clicks per body"), then :func:`measure.refine_corners`;
- ``clicks``: those rough corners unrefined, for comparison;
- ``detected``: :func:`measure.detect_vertebrae` on each film, from nothing.

Per method: corner error (median, 95th percentile, mm in the patient plane)
and motion error per segment against the motion computed from the true
corners (translation mm, angulation °): mean and 95 % limits of agreement
(mean ± 1.96 SD, Bland & Altman).  Detection also reports the share of films
whose six levels are all found at the right place (per-level median corner
error < 10 mm; a level off by one is ~35 mm off) and the share of films
answered with a failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.phantom import MEASURED_LEVELS
from benchmarks._phantom_setup import prepare
from measure import (
    detect_vertebrae,
    refine_corners,
    segmental_motion,
    track_bodies,
)

SEED0 = 50000


def motion(flex: np.ndarray, ext: np.ndarray, sp_flex: float, sp_ext: float):
    m = segmental_motion(
        flex, ext, flexion_spacing_mm=(sp_flex, sp_flex), extension_spacing_mm=(sp_ext, sp_ext),
        levels=MEASURED_LEVELS,
    )  # fmt: skip
    return np.asarray(m.translation_mm), np.asarray(m.angulation_deg)


def summarise(errors: dict) -> dict:
    out = {}
    for method, rec in errors.items():
        corner = np.concatenate(rec["corner"]) if rec["corner"] else np.array([np.nan])
        corner = corner[np.isfinite(corner)]
        row = {
            "corners": int(corner.size),
            "corner_median_mm": float(np.median(corner)) if corner.size else None,
            "corner_p95_mm": float(np.percentile(corner, 95)) if corner.size else None,
        }
        for key in ("dt", "dtheta"):
            e = np.concatenate(rec[key]) if rec[key] else np.array([np.nan])
            e = e[np.isfinite(e)]
            if e.size:
                mean, sd = float(np.mean(e)), float(np.std(e, ddof=1)) if e.size > 1 else 0.0
                row[f"{key}_mean"] = mean
                row[f"{key}_loa"] = (mean - 1.96 * sd, mean + 1.96 * sd)
                row[f"{key}_n"] = int(e.size)
        for key in ("films", "right_levels", "failed", "sd_ratio"):
            if key in rec:
                row[key] = rec[key]
        out[method] = row
    return out


def run(n_studies: int, scale: float, verbose: bool) -> dict:
    methods = ("tracked", "refined", "clicks", "detected")
    errors = {m: {"corner": [], "dt": [], "dtheta": []} for m in methods}
    errors["detected"].update(films=0, right_levels=0, failed=0)
    by_condition: dict[str, dict] = {}
    track_ratio = []
    t0 = time.time()
    for k in range(n_studies):
        p = prepare(SEED0 + k, k, scale)  # conditions cycle as in bench_coverage (_phantom_setup)
        rng = p.rng
        sp_f, sp_e = p.spacing_mm
        img_f, img_e = p.images
        true_f, true_e = p.truth
        dt0, dth0 = motion(true_f, true_e, sp_f, sp_e)
        key = p.label
        cell = by_condition.setdefault(key, {"tracked_dt": [], "tracked_dtheta": []})

        # tracking flexion -> extension
        tr = track_bodies(img_f, true_f, img_e, levels=MEASURED_LEVELS)
        if tr:
            got = tr.landmarks
            err = np.linalg.norm(got - true_e, axis=-1) * sp_e
            errors["tracked"]["corner"].append(err.ravel())
            dt, dth = motion(true_f, np.where(np.isfinite(got), got, np.nan), sp_f, sp_e)
            errors["tracked"]["dt"].append(dt - dt0)
            errors["tracked"]["dtheta"].append(dth - dth0)
            cell["tracked_dt"].append(dt - dt0)
            cell["tracked_dtheta"].append(dth - dth0)
            sd = tr.corner_sd_px * sp_e
            ok = np.isfinite(err) & np.isfinite(sd)
            track_ratio.append((err[ok] ** 2 / 2, sd[ok] ** 2))

        # rough clicks and refinement on both films
        rough_f = true_f + rng.normal(0, 1.5 / sp_f, true_f.shape)
        rough_e = true_e + rng.normal(0, 1.5 / sp_e, true_e.shape)
        refined = []
        for img, rough, truth, sp in ((img_f, rough_f, true_f, sp_f), (img_e, rough_e, true_e, sp_e)):
            errors["clicks"]["corner"].append((np.linalg.norm(rough - truth, axis=-1) * sp).ravel())
            rf = refine_corners(img, rough, levels=MEASURED_LEVELS)
            corners = np.where(rf.refined[:, None, None], rf.landmarks, np.nan) if rf else np.full_like(rough, np.nan)
            errors["refined"]["corner"].append((np.linalg.norm(corners - truth, axis=-1) * sp).ravel())
            refined.append(corners)
        dt, dth = motion(rough_f, rough_e, sp_f, sp_e)
        errors["clicks"]["dt"].append(dt - dt0)
        errors["clicks"]["dtheta"].append(dth - dth0)
        dt, dth = motion(refined[0], refined[1], sp_f, sp_e)
        errors["refined"]["dt"].append(dt - dt0)
        errors["refined"]["dtheta"].append(dth - dth0)

        # detection on each film
        det = []
        for img, truth, sp in ((img_f, true_f, sp_f), (img_e, true_e, sp_e)):
            errors["detected"]["films"] += 1
            dr = detect_vertebrae(img, pixel_spacing_mm=sp)
            if not dr:
                errors["detected"]["failed"] += 1
                det.append(np.full_like(truth, np.nan))
                continue
            err = np.linalg.norm(dr.landmarks - truth, axis=-1) * sp
            per_level = np.nanmedian(err, axis=1)
            right = bool(np.all(per_level < 10.0))
            errors["detected"]["right_levels"] += int(right)
            errors["detected"]["corner"].append(err.ravel())
            det.append(dr.landmarks)
        dt, dth = motion(det[0], det[1], sp_f, sp_e)
        errors["detected"]["dt"].append(dt - dt0)
        errors["detected"]["dtheta"].append(dth - dth0)
        if verbose:
            print(f"study {k + 1}/{n_studies} ({key}) {time.time() - t0:.0f} s", file=sys.stderr)

    result = summarise(errors)
    if track_ratio:
        e2 = np.concatenate([r[0] for r in track_ratio])
        s2 = np.concatenate([r[1] for r in track_ratio])
        result["tracked"]["rms_error_over_rms_sd"] = float(np.sqrt(e2.mean() / s2.mean()))
    result["by_condition"] = {
        key: {
            "tracked_dt_max_abs_mm": float(np.nanmax(np.abs(np.concatenate(v["tracked_dt"])))) if v["tracked_dt"] else None,
            "tracked_dtheta_max_abs_deg": float(np.nanmax(np.abs(np.concatenate(v["tracked_dtheta"])))) if v["tracked_dtheta"] else None,
        }
        for key, v in by_condition.items()
    }
    result["studies"] = n_studies
    result["scale"] = scale
    result["seconds"] = round(time.time() - t0, 1)
    return result


def markdown(result: dict) -> str:
    lines = [
        f"Phantom studies: {result['studies']} (seeds {SEED0}-{SEED0 + result['studies'] - 1}, "
        f"scale {result['scale']}), facing left/right, rotation 0/15°, magnification change "
        "1.00/1.10, added noise 0/2/5 %.",
        "",
        "| method | corner error median (mm) | 95th pct (mm) | translation error mean [95 % LoA] (mm) "
        "| angulation error mean [95 % LoA] (°) |",
        "|---|---|---|---|---|",
    ]
    for method in ("tracked", "refined", "clicks", "detected"):
        row = result[method]

        def fmt(key: str, row: dict = row) -> str:
            if f"{key}_mean" not in row:
                return "n/a"
            lo, hi = row[f"{key}_loa"]
            return f"{row[f'{key}_mean']:+.2f} [{lo:+.2f}, {hi:+.2f}]"

        med = row.get("corner_median_mm")
        p95 = row.get("corner_p95_mm")
        lines.append(
            f"| {method} | {med:.2f} | {p95:.2f} | {fmt('dt')} | {fmt('dtheta')} |"
            if med is not None
            else f"| {method} | n/a | n/a | {fmt('dt')} | {fmt('dtheta')} |"
        )
    det = result["detected"]
    lines += [
        "",
        f"Detection: right levels on {det['right_levels']}/{det['films']} films, "
        f"failure (\"not found\") on {det['failed']}.",
    ]
    if "rms_error_over_rms_sd" in result["tracked"]:
        lines.append(
            f"Tracking: RMS corner error / RMS reported SD = "
            f"{result['tracked']['rms_error_over_rms_sd']:.2f} (1 = calibrated SDs)."
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=24)
    parser.add_argument("--scale", type=float, default=0.5, help="phantom film size factor")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    result = run(args.studies, args.scale, not args.quiet)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(markdown(result) if args.markdown else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
