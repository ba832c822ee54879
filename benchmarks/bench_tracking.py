"""CPU time and corner error of tracking on realistic phantom studies (issue 12 §6, issue 14 §3).

Run by hand, from the checkout whose code you want to time::

    .venv/bin/python benchmarks/bench_tracking.py --cache /tmp/films            # seeds 70000-70019
    .venv/bin/python benchmarks/bench_tracking.py --cache /tmp/films --save before.npz
    .venv/bin/python benchmarks/bench_tracking.py --cache /tmp/films --compare before.npz
    .venv/bin/python benchmarks/bench_tracking.py --cache /tmp/films --profile 25

Each study is ``make_study(seed, realistic=True, scale=0.6)`` prepared as in the
accuracy benchmarks (``benchmarks/_phantom_setup.py``: facing alternating,
added noise cycling 0/2/5 %); the true flexion corners (L1-S1, bodies not
wholly on the film left out) are tracked to the extension film with
``measure.track_bodies`` (the raw tracker; ``--checked`` times
``app.autolandmarks.track_checked`` instead, which adds a detection on the
target film).  The time is CPU time of this process (``time.process_time``;
tracking runs single-threaded), which a loaded machine changes far less than
the wall clock; the load average is printed with it.  Corner error: distance of
each tracked corner from the true extension corner, mm; a body more than half
an endplate depth off counts as *wrong level*.

``--save`` keeps every study's tracked corners and qualities, ``--compare``
prints how far another version's corners moved (to show that a faster version
gives the same answers up to noise).  ``--count`` counts the calls of the
registration kernels.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.phantom import MEASURED_LEVELS
from benchmarks._phantom_setup import PreparedStudy, prepare
from measure import _tracking as tracking_module
from measure import track_bodies

SEED0 = 70000
"""Tuning seeds of the tracking speed work (no test uses them)."""


def fixed_corners(p: PreparedStudy) -> np.ndarray:
    """True flexion corners with bodies not wholly on the film set to NaN, shape (V, 4, 2)."""
    corners = p.truth[0].copy()
    h, w = p.images[0].shape
    for i, body in enumerate(corners):
        pts = body[np.isfinite(body[:, 0])]
        if pts.size == 0 or np.any(pts < 0) or np.any(pts[:, 0] > w - 1) or np.any(pts[:, 1] > h - 1):
            corners[i] = np.nan
    return corners


def run_one(p: PreparedStudy, checked: bool):
    """Track flexion -> extension; returns (landmarks (V, 4, 2), quality (V,), cpu s, wall s)."""
    corners = fixed_corners(p)
    w0, c0 = time.perf_counter(), time.process_time()
    if checked:
        from app.autolandmarks import track_checked

        res = track_checked(p.images[0], corners, p.images[1], levels=MEASURED_LEVELS)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        if not res:
            return np.full_like(corners, np.nan), np.full(len(corners), np.nan), cpu, wall
        return np.asarray(res.corners, float), np.asarray(res.quality, float), cpu, wall
    res = track_bodies(p.images[0], corners, p.images[1], levels=MEASURED_LEVELS)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    if not res:
        return np.full_like(corners, np.nan), np.full(len(corners), np.nan), cpu, wall
    return res.landmarks, res.quality, cpu, wall


class Counter:
    """Counts calls of the registration kernels used by the tracker."""

    names = ("register_similarity", "coarse_candidates")

    def __init__(self) -> None:
        self.calls = dict.fromkeys(self.names, 0)
        for name in self.names:
            original = getattr(tracking_module, name)

            def counted(*args, _original=original, _name=name, **kwargs):
                self.calls[_name] += 1
                return _original(*args, **kwargs)

            setattr(tracking_module, name, counted)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed0", type=int, default=SEED0)
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--scale", type=float, default=0.6)
    parser.add_argument("--cache", type=Path, help="folder keeping rendered films between runs")
    parser.add_argument("--checked", action="store_true", help="time track_checked (with detection)")
    parser.add_argument("--repeat", type=int, default=1, help="time each study this many times, keep the least")
    parser.add_argument("--save", type=Path, help="write tracked corners to this .npz")
    parser.add_argument("--compare", type=Path, help="compare tracked corners with this .npz")
    parser.add_argument("--profile", type=int, default=0, help="print the N most costly functions")
    parser.add_argument("--count", action="store_true", help="count registration kernel calls")
    args = parser.parse_args()

    seeds = list(range(args.seed0, args.seed0 + args.studies))
    studies = [prepare(s, k, args.scale, realistic=True, film_cache=args.cache) for k, s in enumerate(seeds)]
    counter = Counter() if args.count else None
    # warm-up (first OpenCV calls, imports) on the first study, not timed
    run_one(studies[0], args.checked)
    if counter is not None:
        counter.calls = dict.fromkeys(Counter.names, 0)
    profiler = cProfile.Profile() if args.profile else None
    load0 = os.getloadavg()[0]
    cpu, wall, errors, wrong, tracked, asked = [], [], [], 0, 0, 0
    saved: dict[str, np.ndarray] = {}
    for p in studies:
        best = None
        for _ in range(max(args.repeat, 1)):
            if profiler is not None:
                profiler.enable()
            out = run_one(p, args.checked)
            if profiler is not None:
                profiler.disable()
            if best is None or out[2] < best[2]:
                best = out
        landmarks, quality, c, w = best
        cpu.append(c)
        wall.append(w)
        truth = p.truth[1]
        err_px = np.linalg.norm(landmarks - truth, axis=-1)  # (V, 4)
        err = err_px * p.spacing_mm[1]
        depth = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=-1)
        body_err = np.where(np.all(np.isnan(err_px), axis=1), np.nan, np.nanmax(np.where(np.isnan(err_px), -1, err_px), axis=1))
        present = np.all(np.isfinite(fixed_corners(p)[:, :2, 0]), axis=1)
        found = np.isfinite(body_err)
        asked += int(present.sum())
        tracked += int(found.sum())
        wrong += int(np.sum(found & (body_err > 0.5 * depth)))
        errors.append(err[np.isfinite(err)])
        saved[f"landmarks_{p.seed}"] = landmarks
        saved[f"quality_{p.seed}"] = quality
        print(
            f"study {p.seed}: {c:5.2f} s cpu {w:5.2f} s wall, {int(found.sum())}/{int(present.sum())} bodies, "
            f"median error {np.nanmedian(err) if np.any(np.isfinite(err)) else float('nan'):.3f} mm",
            flush=True,
        )
    load1 = os.getloadavg()[0]
    e = np.concatenate(errors)
    kind = "track_checked (tracking + detection)" if args.checked else "track_bodies"
    print(f"\n{kind}, {len(studies)} realistic studies (seeds {seeds[0]}-{seeds[-1]}, scale {args.scale:g})")
    print(f"load average {load0:.1f} at start, {load1:.1f} at end")
    print(
        f"CPU s/study: median {np.median(cpu):.3f}, max {np.max(cpu):.3f}, mean {np.mean(cpu):.3f}; "
        f"wall median {np.median(wall):.3f} s"
    )
    print(
        f"bodies tracked {tracked}/{asked}, wrong level {wrong}; corner error median {np.median(e):.3f} mm, "
        f"95th pct {np.percentile(e, 95):.3f} mm, max {np.max(e):.3f} mm (n={e.size})"
    )
    if counter is not None:
        per = {k: v / len(studies) for k, v in counter.calls.items()}
        print("calls per study: " + ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
    if args.save:
        np.savez(args.save, **saved)
    if args.compare:
        with np.load(args.compare) as ref:
            moved, changed_found = [], 0
            for p in studies:
                a, b = ref[f"landmarks_{p.seed}"], saved[f"landmarks_{p.seed}"]
                changed_found += int(np.sum(np.isfinite(a[:, 0, 0]) != np.isfinite(b[:, 0, 0])))
                d = np.linalg.norm(a - b, axis=-1) * p.spacing_mm[1]
                moved.append(d[np.isfinite(d)])
            d = np.concatenate(moved)
            print(
                f"vs {args.compare.name}: corners moved median {np.median(d):.4f} mm, 95th pct "
                f"{np.percentile(d, 95):.4f} mm, max {np.max(d):.4f} mm; bodies found/not found changed: "
                f"{changed_found}"
            )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
