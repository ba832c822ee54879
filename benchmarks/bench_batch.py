"""Batch throughput: studies per second with 1 and 2 workers, landmarks given and
detected, and the share of worker time spent decoding.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_batch.py [--studies 16] [--scale 0.25]

It renders phantom studies (``app.phantom``) into a temporary folder, writes
their true landmarks as landmark files, and times ``run_batch`` end to end
(scan, pairing, decoding, landmarks, the one vectorised measurement, tables).
"Detected" runs give no landmark files, so every study goes through automatic
detection and tracking (``app.autolandmarks``) when it is installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.batch import BatchOptions, make_executor, run_batch
from app.phantom import make_study, write_study


def build(folder: Path, landmarks: Path, n: int, scale: float) -> None:
    """Write ``n`` phantom studies and their truth landmarks."""
    import pydicom

    for seed in range(n):
        study_dir = folder / f"study{seed:04d}"
        paths = write_study(make_study(seed, scale=scale), study_dir)
        truth = json.loads(Path(paths["truth"]).read_text())
        Path(paths["truth"]).unlink()
        data = {"format": "lumbar-instability-landmarks", "levels": truth["levels"]}
        for role in ("flexion", "extension"):
            ds = pydicom.dcmread(paths[role], stop_before_pixels=True)
            data[role] = {"image": {"sop_instance_uid": str(ds.SOPInstanceUID)},
                          "landmarks": truth[role]["landmarks"]}
        (landmarks / f"study{seed:04d}.json").write_text(json.dumps(data))


def timed(input_dir: Path, out: Path, landmarks: Path | None, workers: int) -> dict:
    executor = make_executor(workers)  # what --workers N runs
    with executor:
        # start the worker processes outside the timing: a long run amortises it
        list(executor.imap_unordered(abs, [0] * workers))
        start = time.perf_counter()
        summary = run_batch(BatchOptions(input_dir, out, landmarks_dir=landmarks, quiet=True),
                            executor=executor)
        seconds = time.perf_counter() - start
    decode = summary.decode_seconds / summary.worker_seconds if summary.worker_seconds else 0
    return {"studies": summary.studies, "measured": summary.measured, "seconds": seconds,
            "studies_per_s": summary.studies / seconds, "decode_share": decode,
            "failures": summary.failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=16)
    parser.add_argument("--scale", type=float, default=0.25,
                        help="phantom size: 1.0 = 1920 x 1536 px, 0.25 = 480 x 384 px")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inp, lms = root / "input", root / "landmarks"
        lms.mkdir(parents=True)
        tic = time.perf_counter()
        build(inp, lms, args.studies, args.scale)
        print(f"built {args.studies} phantom studies at scale {args.scale} "
              f"in {time.perf_counter() - tic:.1f} s")
        print(f"{'landmarks':<10} {'workers':>7} {'studies/s':>10} {'decode %':>9} "
              f"{'seconds':>8}  failures")
        for mode, landmarks in (("given", lms), ("detected", None)):
            for workers in (1, 2):
                r = timed(inp, root / f"out-{mode}-{workers}", landmarks, workers)
                print(f"{mode:<10} {workers:>7} {r['studies_per_s']:>10.2f} "
                      f"{100 * r['decode_share']:>8.1f}% {r['seconds']:>8.2f}  "
                      f"{r['failures'] or '-'}")


if __name__ == "__main__":
    main()
