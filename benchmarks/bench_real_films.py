"""The automatic landmarks on real films, against hand annotations (issue 12 §5).

Fetches nothing: give a folder holding whichever of the films listed in
``benchmarks/real_films/films.json`` you have (found by SHA-256, any file
name, any depth; ``benchmarks/real_films/SOURCES.md`` says where each comes
from)::

    .venv/bin/python benchmarks/bench_real_films.py FOLDER --overlays OUT/ --markdown

Per lateral film with an annotation (``benchmarks/real_films/*.json``):

- ``detect``: :func:`app.autolandmarks.detect_film` from nothing: levels right
  (every detected body nearest to the annotated body of the same label),
  the shift otherwise, facing, median corner error, lowest confidence, time;
- ``clicks x6``: :func:`app.autolandmarks.complete_film` with one click per
  body (the annotated body's centre moved by a seeded ±12 % of its depth);
- ``clicks L1+S1``: the same with the L1 and S1 clicks only;
- ``track``: for each pair in ``films.json``, the annotated corners of one film
  carried to the other by the guarded path every command uses
  (:func:`app.autolandmarks.track_checked`: tracking, then a detection on the
  target film as a cross-check; the row says what the check found).

Films of other kinds (AP, oblique, spot views) must be refused by detection:
the row says whether they were, and with what reason.  Errors are in pixels
and in % of the film's mean annotated endplate depth: the films carry no
calibration, so no millimetre value is given.  ``--overlays`` writes one PNG
per film (annotation green, detection red, clicks L1+S1 blue, tracking
yellow) to look at; they contain the film, so keep them out of the repo.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.autolandmarks import complete_film, detect_film, film_image, track_checked
from app.dicom_io import load_film
from measure._auto_common import body_outlines

HERE = Path(__file__).resolve().parent / "real_films"
LEVELS = ("L1", "L2", "L3", "L4", "L5", "S1")
CORNERS = ("AS", "PS", "PI", "AI")
SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dcm", ""}


def find_films(folder: Path, wanted: set[str]) -> dict[str, Path]:
    """SHA-256 -> path for every wanted file under ``folder``."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in SUFFIXES and path.stat().st_size < 200_000_000:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in wanted and digest not in found:
                found[digest] = path
    return found


def annotated_corners(doc: dict) -> np.ndarray:
    """(6, 4, 2) pixels from an annotation file; S1's PI/AI NaN."""
    out = np.full((len(LEVELS), 4, 2), np.nan)
    for v, level in enumerate(LEVELS):
        for c, corner in enumerate(CORNERS):
            xy = doc["landmarks"].get(level, {}).get(corner)
            if xy is not None:
                out[v, c] = xy
    return out


def centres(corners: np.ndarray) -> np.ndarray:
    """Centre of each body's outline (S1: a block under its endplate), (V, 2)."""
    return body_outlines(corners, sacrum_height=0.6).mean(axis=1)


def compare(found: np.ndarray, truth: np.ndarray) -> dict:
    """Levels, shift and corner errors of ``found`` (V, 4, 2) against ``truth``."""
    depth = float(np.nanmean(np.linalg.norm(truth[:5, 0] - truth[:5, 1], axis=-1)))
    ok = np.all(np.isfinite(found[:, :2, 0]), axis=1)
    t_c, f_c = centres(truth), centres(np.where(ok[:, None, None], found, truth))
    nearest = np.argmin(np.linalg.norm(f_c[:, None] - t_c[None], axis=-1), axis=1)
    shifts = (nearest - np.arange(len(LEVELS)))[ok]
    err = np.linalg.norm(found - truth, axis=-1)
    err = err[ok[:, None] & np.isfinite(truth[..., 0])]
    both = np.isfinite(found[:5, 0, 0]) & np.isfinite(found[:5, 1, 0])
    facing = None
    if np.any(both):
        facing = "right" if np.median(found[:5, 0, 0][both] - found[:5, 1, 0][both]) > 0 else "left"
    return {
        "placed": int(ok.sum()),
        "levels_right": bool(ok.any() and np.all(shifts == 0)),
        "shift": sorted({int(s) for s in shifts}),
        "facing": facing,
        "median_px": float(np.median(err)) if err.size else float("nan"),
        "p90_px": float(np.percentile(err, 90)) if err.size else float("nan"),
        "median_pct_depth": 100 * float(np.median(err)) / depth if err.size else float("nan"),
        "depth_px": depth,
    }


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def draw(image: np.ndarray, layers: list[tuple[np.ndarray, tuple[int, int, int]]], path: Path) -> None:
    """The film (1-99 % window) with each layer's outlines; AS/AI marked by a filled dot."""
    lo, hi = np.percentile(image, [1, 99])
    grey = np.clip((image - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)
    canvas = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    for corners, colour in layers:
        for v, level in enumerate(LEVELS):
            quad = corners[v][np.isfinite(corners[v, :, 0])]
            if len(quad) < 2:
                continue
            pts = np.round(quad).astype(np.int32)
            cv2.polylines(canvas, [pts], len(pts) == 4, colour, 1, cv2.LINE_AA)
            for c in (0, 3):
                if np.isfinite(corners[v, c, 0]):
                    cv2.circle(canvas, tuple(np.round(corners[v, c]).astype(int)), 3, colour, -1)
            cv2.putText(canvas, level, tuple(pts[0] + [6, 12]), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1)
    cv2.imwrite(str(path), canvas)


def run_lateral(
    film_id: str, path: Path, doc: dict, rng: np.random.Generator, overlays: Path | None, skip=()
) -> list[dict]:
    film = load_film(path)
    truth = annotated_corners(doc)
    rows = []
    det, t_det = (None, 0.0) if "detect" in skip else timed(detect_film, film, levels=LEVELS)
    row = {"film": film_id, "method": "detect", "time_s": t_det}
    if det is None:
        pass
    elif det:
        row |= compare(det.corners, truth)
        row["reported_facing"] = det.details.get("facing")
        row["min_confidence"] = float(np.nanmin(det.quality)) if np.any(np.isfinite(det.quality)) else None
        row["review"] = det.details.get("needs_review", det.details.get("review"))
    else:
        row["refused"] = det.reason
    if det is not None:
        rows.append(row)
    depth = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=-1)[:, None]
    clicks = centres(truth) + rng.uniform(-0.12, 0.12, (len(LEVELS), 2)) * depth
    layers = [(truth, (0, 200, 0))]
    if det:
        layers.append((det.corners, (0, 0, 255)))
    for name, use in (("clicks x6", np.ones(6, bool)), ("clicks L1+S1", np.array([1, 0, 0, 0, 0, 1], bool))):
        if "clicks" in skip:
            break
        given = {level: tuple(clicks[v]) for v, level in enumerate(LEVELS) if use[v]}
        out, t_out = timed(complete_film, film, given, levels=LEVELS)
        row = {"film": film_id, "method": name, "time_s": t_out}
        if out:
            row |= compare(out.corners, truth)
            row["reported_facing"] = out.details["facing"]
            row["facing_sure"] = out.details["facing_evidence"]["sure"]
            row["refined"] = int(np.sum(out.placement[:, 0] == "refined"))
            row["not_found"] = sorted(out.failures)
            if name == "clicks L1+S1":
                layers.append((out.corners, (255, 120, 0)))
        else:
            row["refused"] = out.reason
        rows.append(row)
    if overlays is not None:
        draw(film_image(film), layers, overlays / f"{film_id}.png")
    return rows


def run_refusal(film_id: str, kind: str, path: Path) -> dict:
    film = load_film(path)
    det, t_det = timed(detect_film, film, levels=LEVELS)
    row = {"film": film_id, "method": f"detect ({kind}: must refuse)", "time_s": t_det}
    if det:
        row["WRONG"] = f"landmarks given for {', '.join(det.placed)} (facing {det.details.get('facing')})"
    else:
        row["refused"] = det.reason
    return row


def run_pair(pair: dict, films: dict, paths: dict, docs: dict, overlays: Path | None) -> list[dict]:
    rows = []
    for a, b in ((pair["from"], pair["to"]), (pair["to"], pair["from"])):
        if a not in paths or b not in paths:
            continue
        src, dst = load_film(paths[a]), load_film(paths[b])
        truth_a, truth_b = annotated_corners(docs[a]), annotated_corners(docs[b])
        out, t_out = timed(track_checked, src, truth_a, dst, levels=LEVELS, target_name=b)
        row = {"film": b, "method": f"track from {a}", "time_s": t_out}
        if out:
            row |= compare(out.corners, truth_b)
            row["not_found"] = [f"{lv} ({why})" for lv, why in sorted(out.failures.items())]
            row["scale"] = out.details.get("scale")
            check = out.details["cross_check"]
            row["cross_check"] = (
                ", ".join(f"{lv} {st}" for lv, st in check["status"].items()) if check["checked"]
                else f"unchecked ({check.get('reason', '')[:60]})"
            )
            row["needs_review"] = out.details["needs_review"]
            if overlays is not None:
                draw(film_image(dst), [(truth_b, (0, 200, 0)), (out.corners, (0, 220, 255))],
                     overlays / f"{b}_tracked_from_{a}.png")  # fmt: skip
        else:
            row["refused"] = out.reason
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    head = "| film | method | levels | facing | corner error median (px / % depth) | 90th pct (px) | time (s) | notes |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "refused" in r:
            note = f"refused: {r['refused']}"
            lines.append(f"| {r['film']} | {r['method']} | – | – | – | – | {r['time_s']:.2f} | {note} |")
            continue
        if "WRONG" in r:
            lines.append(f"| {r['film']} | {r['method']} | **WRONG** | – | – | – | {r['time_s']:.2f} | {r['WRONG']} |")
            continue
        levels = "right" if r["levels_right"] else f"**wrong** (shift {r['shift']})"
        levels += f", {r['placed']}/6"
        facing = r.get("reported_facing") or r["facing"]
        facing_ok = "right" if r["facing"] == facing else "**reversed**"
        notes = []
        if r.get("min_confidence") is not None:
            notes.append(f"lowest confidence {r['min_confidence']:.2f}")
        if r.get("facing_sure") is False:
            notes.append("facing unsure")
        if "refined" in r:
            notes.append(f"{r['refined']}/6 refined")
        if r.get("not_found"):
            notes.append("not found: " + ", ".join(r["not_found"]))
        if r.get("scale"):
            notes.append(f"scale {r['scale']:.3f}")
        if r.get("cross_check"):
            notes.append(f"cross-check: {r['cross_check']}" + ("; needs review" if r.get("needs_review") else ""))
        lines.append(
            f"| {r['film']} | {r['method']} | {levels} | {facing} ({facing_ok}) | "
            f"{r['median_px']:.1f} / {r['median_pct_depth']:.1f} % | {r['p90_px']:.1f} | {r['time_s']:.2f} | "
            f"{'; '.join(notes)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="folder with any of the films of films.json")
    parser.add_argument("--overlays", type=Path, default=None, help="write overlay PNGs here")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--json", type=Path, default=None, help="write every row as JSON")
    parser.add_argument("--seed", type=int, default=12, help="seed of the click jitter")
    parser.add_argument("--films", nargs="+", default=None, metavar="ID", help="only these film ids")
    parser.add_argument("--skip", nargs="+", default=(), choices=("detect", "clicks", "track"), help="methods left out")
    args = parser.parse_args(argv)
    manifest = json.loads((HERE / "films.json").read_text())
    films = {f["id"]: f for f in manifest["films"]}
    by_sha = find_films(args.folder, {f["sha256"] for f in films.values()})
    paths = {fid: by_sha[f["sha256"]] for fid, f in films.items() if f["sha256"] in by_sha}
    if args.films:
        paths = {fid: p for fid, p in paths.items() if fid in args.films}
    if not paths:
        print(f"{args.folder}: none of the films of {HERE / 'films.json'} is there (see SOURCES.md)")
        return 1
    if args.overlays is not None:
        args.overlays.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    docs = {fid: json.loads((HERE / f["annotation"]).read_text()) for fid, f in films.items() if "annotation" in f}
    rows: list[dict] = []
    for fid, path in paths.items():
        if films[fid]["kind"] == "lateral" and fid in docs:
            rows += run_lateral(fid, path, docs[fid], rng, args.overlays, args.skip)
        elif "detect" not in args.skip:
            rows.append(run_refusal(fid, films[fid]["kind"], path))
    for pair in manifest.get("pairs", []) if "track" not in args.skip else ():
        rows += run_pair(pair, films, paths, docs, args.overlays)
    missing = sorted(set(films) - set(paths))
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "missing": missing}, indent=1, default=str))
    if args.markdown:
        print(markdown(rows))
    else:
        for r in rows:
            print(json.dumps(r, default=str))
    if missing:
        print(f"\nnot in {args.folder}: {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
