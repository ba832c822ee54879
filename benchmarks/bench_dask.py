"""Dask LocalCluster against the process pool on the same work (issue 14 §4).

Run by hand::

    .venv/bin/python benchmarks/bench_dask.py [--studies 24] [--detected 4] [--workers 2] [--repeat 3]
    .venv/bin/python benchmarks/bench_dask.py --stock-dask   # Dask's default worker settings

Renders phantom studies once, then times ``run_batch`` end to end with a
process pool and with a LocalCluster of the same size, alternating the two
so that load from other jobs hits both alike; the executors are started
before the clock (a long run amortises their start).  Prints the best and
median studies/s of each and their ratio, and checks that both wrote the
same ``results.csv``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.batch import BatchOptions, DaskExecutor, PoolExecutor, run_batch
from app.phantom import make_study, write_study


def build(folder: Path, landmarks: Path | None, n: int, scale: float) -> None:
    """``n`` phantom studies in ``folder``; their true corners in ``landmarks`` (if given)."""
    import json

    import pydicom

    for seed in range(n):
        paths = write_study(make_study(700 + seed, scale=scale), folder / f"study{seed:04d}")
        truth = json.loads(Path(paths["truth"]).read_text())
        Path(paths["truth"]).unlink()
        if landmarks is None:
            continue
        doc = {"format": "lumbar-instability-landmarks", "levels": truth["levels"]}
        for role in ("flexion", "extension"):
            uid = str(pydicom.dcmread(paths[role], stop_before_pixels=True).SOPInstanceUID)
            doc[role] = {"image": {"sop_instance_uid": uid},
                         "landmarks": truth[role]["landmarks"]}
        landmarks.mkdir(parents=True, exist_ok=True)
        (landmarks / f"study{seed:04d}.json").write_text(json.dumps(doc))


def timed(executor, input_dir: Path, out: Path, landmarks: Path | None) -> float:
    start = time.perf_counter()
    summary = run_batch(BatchOptions(input_dir, out, landmarks_dir=landmarks, quiet=True,
                                     plots=False), executor=executor)
    seconds = time.perf_counter() - start
    assert summary.measured == summary.studies, summary.failures
    return summary.studies / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=24, help="studies with landmark files")
    parser.add_argument("--detected", type=int, default=4, help="studies detected and tracked")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--stock-dask", action="store_true",
                        help="LocalCluster workers with Dask's default settings (profiler, "
                             "GIL monitor), for comparison")
    args = parser.parse_args()
    if args.stock_dask:
        import app.batch._executors as executors

        executors.LEAN_WORKER_CONFIG.clear()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root / "given", root / "landmarks", args.studies, args.scale)
        build(root / "detected", None, args.detected, args.scale)
        cases = [("given", root / "given", root / "landmarks"),
                 ("detected", root / "detected", None)]
        pool = PoolExecutor(args.workers)
        dask = DaskExecutor("local", args.workers)
        for executor in (pool, dask):  # start the workers outside the timing
            list(executor.imap_unordered(abs, [0] * args.workers))
        print("| landmarks | studies | pool studies/s (best, median) | LocalCluster studies/s "
              "(best, median) | LocalCluster / pool (median) | same tables |")
        print("|---|---|---|---|---|---|")
        for name, input_dir, landmarks in cases:
            speeds: dict[str, list[float]] = {"pool": [], "dask": []}
            for run in range(args.repeat):
                for label, executor in (("pool", pool), ("dask", dask)):
                    out = root / f"out-{name}-{label}-{run}"
                    speeds[label].append(timed(executor, input_dir, out, landmarks))
            same = all(
                (root / f"out-{name}-dask-{r}" / "results.csv").read_text()
                == (root / f"out-{name}-pool-{r}" / "results.csv").read_text()
                for r in range(args.repeat)
            )
            p, d = speeds["pool"], speeds["dask"]
            n = args.studies if name == "given" else args.detected
            print(f"| {name} | {n} | {max(p):.2f}, {statistics.median(p):.2f} | "
                  f"{max(d):.2f}, {statistics.median(d):.2f} | "
                  f"{statistics.median(d) / statistics.median(p):.2f} | {same} |")
        pool.close()
        dask.close()


if __name__ == "__main__":
    main()
