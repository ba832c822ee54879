"""Benchmark: loading lateral films — decoding speed per codec, and memory.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_load.py --codecs [--size 2500 2048] [--repeat 5]
    .venv/bin/python benchmarks/bench_load.py [--size 4000 5000] [--keep DIR]

``--codecs``: one film (a downscaled copy of the bundled phantom, 12 bits,
no patient data) in every transfer syntax a PACS sends for radiographs;
per codec, in one process, the median over ``--repeat`` rounds (the order of
the contestants rotates every round, so load from other jobs hits them
alike) of ``pydicom.dcmread(path).pixel_array`` (pydicom's own decoder
order, GDCM first), of every installed decoding plugin alone, of GDCM in a
forked child (how ``load_film`` runs it) and of ``load_film`` itself.  This
is how ``app.dicom_io.DECODING_PLUGINS`` was chosen.

Without ``--codecs``:

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


SPEED_CHILD = r"""
import json, statistics, sys, time, warnings
sys.path.insert(0, {root!r})
warnings.simplefilter("ignore")
import numpy as np, pydicom
from pydicom.pixels import get_decoder, pixel_array
from app.dicom_io import load_film
from app.dicom_io._limits import run_guarded, silenced_stderr
path, repeat = {path!r}, {repeat!r}
ds = pydicom.dcmread(path, stop_before_pixels=True)
syntax = ds.file_meta.TransferSyntaxUID
reference = pydicom.dcmread(path).pixel_array
contestants = {{"pydicom pixel_array": lambda: pydicom.dcmread(path).pixel_array,
                "load_film": lambda: load_film(path).pixels}}
if syntax.is_compressed:
    for plugin in get_decoder(syntax).available_plugins:
        contestants[plugin] = lambda plugin=plugin: pixel_array(path, decoding_plugin=plugin)
    if "gdcm" in get_decoder(syntax).available_plugins:
        contestants["gdcm (forked)"] = lambda: run_guarded(
            lambda: pixel_array(path, decoding_plugin="gdcm"), reference.shape, reference.dtype)
times = {{name: [] for name in contestants}}
equal = {{}}
names = list(contestants)
for round_ in range(repeat):
    for name in names[round_ % len(names):] + names[: round_ % len(names)]:
        start = time.perf_counter()
        try:
            with silenced_stderr():
                array = contestants[name]()
        except Exception:
            times[name] = None
            continue
        if times[name] is not None:
            times[name].append(time.perf_counter() - start)
            equal[name] = bool(np.array_equal(np.asarray(array), reference))
print(json.dumps({{"syntax": str(syntax), "name": syntax.name,
                  "median": {{k: (statistics.median(v) if v else None) for k, v in times.items()}},
                  "equal": equal}}))
"""


def make_codec_films(directory: Path, rows: int, columns: int) -> dict[str, Path]:
    """The bundled phantom's flexion film resized to ``rows x columns``, in every codec."""
    import cv2
    import numpy as np
    import pydicom

    sys.path.insert(0, str(ROOT))
    from tests.app._hostile import write_codec
    from tests.app.dicom_factory import gdcm_transcode, make_dataset

    pixels = pydicom.dcmread(ROOT / "sample_dicoms" / "flexion.dcm").pixel_array
    pixels = cv2.resize(pixels, (columns, rows), interpolation=cv2.INTER_LINEAR)
    pixels = np.clip(pixels, 0, 4095).astype(np.uint16)
    films = {}
    for codec in ("native", "deflate", "rle", "jpeg-ls", "j2k", "jpeg-lossless"):
        films[codec] = write_codec(directory / f"{codec}.dcm", codec, pixels)
    gdcm_transcode(films["native"], directory / "jpeg-lossless-p14.dcm", "1.2.840.10008.1.2.4.57")
    films["jpeg-lossless-p14"] = directory / "jpeg-lossless-p14.dcm"
    eight = directory / "eight.dcm"
    make_dataset((pixels >> 4).astype(np.uint8), bits_stored=8).save_as(
        eight, enforce_file_format=True)
    films["jpeg-baseline"] = gdcm_transcode(eight, directory / "jpeg-baseline.dcm",
                                            "1.2.840.10008.1.2.4.50")
    eight.unlink()
    return films


def codec_table(directory: Path, rows: int, columns: int, repeat: int) -> None:
    films = make_codec_films(directory, rows, columns)
    print(f"{rows} x {columns} pixels, median of {repeat} rounds (seconds)\n")
    print("| codec (transfer syntax) | file MB | pydicom `pixel_array` | plugins alone "
          "| `load_film` | `load_film` / pydicom |")
    print("|---|---|---|---|---|---|")
    for codec, path in films.items():
        code = SPEED_CHILD.format(root=str(ROOT), path=str(path), repeat=repeat)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        median = r["median"]
        reference, ours = median.pop("pydicom pixel_array"), median.pop("load_film")
        plugins = ", ".join(
            f"{name} {value:.3f}" + ("" if r["equal"].get(name, True) else " (other pixels)")
            for name, value in median.items() if value is not None
        ) or "native"
        print(f"| {codec} ({r['syntax']}) | {path.stat().st_size / 1e6:.1f} | {reference:.3f} "
              f"| {plugins} | {ours:.3f} | {ours / reference:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=None, metavar=("ROWS", "COLUMNS"))
    parser.add_argument("--keep", type=Path, help="write the films here and keep them")
    parser.add_argument("--codecs", action="store_true", help="decoding speed per codec")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.codecs:
        with tempfile.TemporaryDirectory() as tmp:
            directory = args.keep or Path(tmp)
            directory.mkdir(parents=True, exist_ok=True)
            codec_table(directory, *(args.size or (2500, 2048)), args.repeat)
        return
    args.size = args.size or (4000, 5000)
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
