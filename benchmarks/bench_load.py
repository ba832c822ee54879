"""Benchmark: loading a large lateral film (4000 x 5000, 16-bit) — time and memory.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_load.py [--size 4000 5000] [--keep DIR]

Writes synthetic films (a smooth ramp with noise: no patient data) as native
Explicit VR Little Endian (12 bits stored in 16), the same with a rescale
(float32 output), and JPEG 2000 lossless, then loads each in a fresh Python
process and reports the wall time, the tracemalloc peak (every numpy
allocation is traced) and the growth of the peak RSS during the load.  The
ideal is one array: rows x columns x 2 bytes (x 4 for float32).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, sys, time, tracemalloc
sys.path.insert(0, {root!r})
from app.dicom_io import load_film
import numpy, pydicom, pydicom.pixels  # imports before measuring
def hwm():  # peak resident set size of this process, kB (reset by exec, unlike ru_maxrss)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
rss0 = hwm()
tracemalloc.start()
t0 = time.perf_counter()
if {naive!r}:  # reference: the usual pydicom idiom, for comparison
    class film:
        ds = pydicom.dcmread({path!r})
        pixels = ds.pixel_array
        del ds
        display_image = staticmethod(lambda: None)
else:
    film = load_film({path!r})
t1 = time.perf_counter()
current, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss1 = hwm()
t2 = time.perf_counter()
image = film.display_image()
t3 = time.perf_counter()
print(json.dumps({{"seconds": t1 - t0, "peak_mb": peak / 1e6, "kept_mb": current / 1e6,
                  "rss_growth_mb": (rss1 - rss0) / 1e3, "array_mb": film.pixels.nbytes / 1e6,
                  "dtype": str(film.pixels.dtype), "display_seconds": t3 - t2}}))
"""


def make_films(directory: Path, rows: int, columns: int) -> dict[str, Path]:
    import numpy as np
    from pydicom.uid import JPEG2000Lossless

    sys.path.insert(0, str(ROOT / "tests" / "app"))
    from dicom_factory import make_dataset, write  # the tests' builder

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:rows, 0:columns]
    pixels = (1000 + 2000 * (x / columns) + 500 * np.sin(y / 300.0)).astype(np.uint16)
    pixels += rng.integers(0, 64, size=pixels.shape, dtype=np.uint16)
    films = {
        "native 12/16-bit": write(make_dataset(pixels), directory / "native.dcm"),
        "native + rescale (float32)": write(
            make_dataset(pixels, RescaleSlope=0.5, RescaleIntercept=-1024),
            directory / "rescaled.dcm",
        ),
    }
    try:
        films["JPEG 2000 lossless"] = write(
            make_dataset(pixels), directory / "j2k.dcm", JPEG2000Lossless
        )
    except Exception as exc:  # pragma: no cover - encoder missing
        print(f"(JPEG 2000 skipped: {exc})")
    return films


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, nargs=2, default=(4000, 5000), metavar=("ROWS", "COLUMNS")
    )
    parser.add_argument("--keep", type=Path, help="write the films here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        films = make_films(directory, *args.size)
        print(f"{args.size[0]} x {args.size[1]} pixels")
        print(f"{'film':28s} {'file MB':>8s} {'load s':>7s} {'peak MB':>8s} {'kept MB':>8s} "
              f"{'RSS+ MB':>8s} {'array MB':>8s} {'display s':>9s}")  # fmt: skip
        runs = [(name, path, False) for name, path in films.items()]
        runs.append(("(pydicom dcmread+pixel_array)", films["native 12/16-bit"], True))
        for name, path, naive in runs:
            code = CHILD.format(root=str(ROOT), path=str(path), naive=naive)
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{name:28s} {path.stat().st_size / 1e6:8.1f} {r['seconds']:7.2f} {r['peak_mb']:8.1f} "
                  f"{r['kept_mb']:8.1f} {r['rss_growth_mb']:8.1f} {r['array_mb']:8.1f} "
                  f"{r['display_seconds']:9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
