"""Run time of tracking (per study) and detection (per film) on phantom studies (issue 12 §6).

Run by hand, from the checkout whose code you want to time::

    .venv/bin/python benchmarks/bench_speed.py --studies 8            # tracking + detection
    .venv/bin/python benchmarks/bench_speed.py --studies 8 --no-detect

Studies are those of ``bench_accuracy.py`` (seeds 50000 + k, the same cycle of
facing, rotation, magnification change and noise; 960 × 768 films at scale
0.5), so the corner error printed next to each time can be compared with its
``tracked`` row.  Wall-clock and CPU (process) time are both printed: on a
machine shared with other jobs the wall clock is what a user waits, the CPU
time what the code costs.  Say the load average (printed) with any figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_accuracy import SEED0

from app.phantom import MEASURED_LEVELS
from benchmarks._phantom_setup import prepare
from measure import detect_vertebrae, track_bodies


def timed(fn, *args, **kwargs):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w0, time.process_time() - c0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=8)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--no-detect", action="store_true")
    args = parser.parse_args()
    rows = {"track": [], "detect": []}
    errors = []
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    for k in range(args.studies):
        p = prepare(SEED0 + k, k, args.scale)
        img_f, img_e = p.images
        true_f, true_e = p.truth
        tr, wall, cpu = timed(track_bodies, img_f, true_f, img_e, levels=MEASURED_LEVELS)
        err = np.linalg.norm(tr.landmarks - true_e, axis=-1) * p.spacing_mm[1] if tr else np.nan
        errors.append(np.ravel(err))
        rows["track"].append((wall, cpu))
        line = f"study {SEED0 + k}: track {wall:5.2f} s wall {cpu:5.2f} s cpu, median error {np.nanmedian(err):.3f} mm"
        if not args.no_detect:
            for img, sp in zip(p.images, p.spacing_mm, strict=True):
                _, dw, dc = timed(detect_vertebrae, img, levels=MEASURED_LEVELS, pixel_spacing_mm=sp)
                rows["detect"].append((dw, dc))
            line += f"; detect {rows['detect'][-2][0]:.2f}/{rows['detect'][-1][0]:.2f} s wall"
        print(line, flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    for name, vals in rows.items():
        if vals:
            v = np.array(vals)
            print(
                f"{name}: wall median {np.median(v[:, 0]):.2f} s (max {v[:, 0].max():.2f}), "
                f"cpu median {np.median(v[:, 1]):.2f} s (max {v[:, 1].max():.2f}), n={len(v)}"
            )
    e = np.concatenate(errors)
    e = e[np.isfinite(e)]
    print(f"tracked corner error: median {np.median(e):.3f} mm, 95th pct {np.percentile(e, 95):.3f} mm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
