"""Phantom rendering and encoding time per study, at several film sizes.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_phantom.py [--repeat 3]

Prints, per scale, the film size and the best-of-N wall time of ``make_study``
(two films) and of ``write_study`` with each lossless codec.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.phantom import COMPRESSIONS, make_study, write_study


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'scale':>5} {'film (rows x cols)':>20} {'make_study (2 films)':>22}")
    for scale in (0.1, 0.25, 0.5, 1.0):
        study = make_study(1, scale=scale, unstable=("L4-L5",))
        rows, cols = study.flexion.pixels.shape
        t = best_of(args.repeat, lambda s=scale: make_study(1, scale=s, unstable=("L4-L5",)))
        print(f"{scale:5.2f} {f'{rows} x {cols}':>20} {t:20.2f} s")
    study = make_study(1, unstable=("L4-L5",))
    with tempfile.TemporaryDirectory() as tmp:
        for compression in COMPRESSIONS:
            options = dataclasses.replace(study.options, compression=compression)
            variant = dataclasses.replace(study, options=options)
            out = Path(tmp) / compression
            t = best_of(args.repeat, lambda v=variant, o=out: write_study(v, o))
            size = sum((out / f"{v}.dcm").stat().st_size for v in ("flexion", "extension"))
            print(f"write_study {compression:13s} {t:6.2f} s  {size / 1e6:6.2f} MB (2 films, full size)")


if __name__ == "__main__":
    main()
