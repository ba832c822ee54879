"""Batch throughput on a PACS-like mixed-codec archive (issue 14 §3, §4).

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_throughput.py [--studies 40] [--detected 6]
        [--scale 1.0] [--repeat 2] [--keep DIR] [--markdown]

Builds, from seeds, an archive the way a PACS exports one: nested
``PATIENT/STUDY/SERIES/`` folders, files without extensions, the five codecs
of the phantom (native Explicit VR Little Endian, RLE, JPEG-LS, JPEG 2000 and
lossless JPEG, one per study in turn), studies of three films (flexion,
extension and a neutral film the pairing ignores) and of one film (a pairing
failure), and clutter (``DICOMDIR``, ``README.TXT``, ``.DS_Store``,
``Thumbs.db``, a PDF).  The landmarks of every study are its phantom truth,
written as ``<StudyInstanceUID>.json`` files.

Then it times ``run_batch`` end to end (scan, pairing, decoding, landmarks,
measurement, tables; plots off) with the process pool and a Dask
LocalCluster of 1 and 2 workers, landmarks given (the whole archive) and
detected (a second archive of ``--detected`` studies without landmark
files).  Executors are started before the clock; the contestants alternate
within each round so that load from other jobs hits them alike.  Prints
studies/s (measured studies / wall time) per case, the median over
``--repeat`` rounds, Dask/pool ratios, and whether the tables of the pool and
Dask runs are identical.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CODECS = ("none", "rle", "jpeg-ls", "jpeg2000", "jpeg-lossless")
CALIBRATIONS = ("magnification-corrected", "detector", "calibrated")
CLUTTER = {"DICOMDIR": b"\0" * 128 + b"DICM", "README.TXT": b"PACS export\r\n",
           ".DS_Store": b"\0\0\0\1Bud1", "Thumbs.db": b"\xd0\xcf\x11\xe0",
           "report.pdf": b"%PDF-1.4\n%%EOF\n"}  # fmt: skip


def _place(source: Path, folder: Path, rng: random.Random, **changes: str) -> str:
    """Move a phantom film to ``folder/IMxxxxxxxx`` (no extension) with a new SOP
    Instance UID and the given attributes; return the SOP Instance UID."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(source)
    sop = generate_uid()
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.SeriesInstanceUID = generate_uid()
    for keyword, value in changes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    folder.mkdir(parents=True, exist_ok=True)
    ds.save_as(folder / f"IM{rng.randrange(10**8):08d}", enforce_file_format=True)
    return sop


def build_archive(root: Path, studies: int, *, seed: int, scale: float,
                  landmarks: bool) -> dict[str, int]:
    """Write the archive into ``root/input`` (and ``root/landmarks``); return counts."""
    from app.phantom import make_study, write_study

    rng = random.Random(seed)
    inp, marks = root / "input", root / "landmarks"
    counts = {"studies": 0, "paired": 0, "films": 0, "one_film": 0, "three_film": 0}
    for i in range(studies):
        options = {"compression": CODECS[i % len(CODECS)], "scale": scale,
                   "calibration": CALIBRATIONS[i % len(CALIBRATIONS)],
                   "facing": "left" if i % 2 else "right"}
        if i % 4 == 1:
            options["unstable"] = ("L4-L5",)
        study = make_study(seed + i, **options)
        tmp = root / ".render"
        paths = write_study(study, tmp)
        truth = json.loads(Path(paths["truth"]).read_text())
        study_dir = inp / f"P{seed + i:06d}" / f"{20240101 + i % 28}"
        sops = {}
        one_film = i % 10 == 9
        roles = ("flexion",) if one_film else ("flexion", "extension")
        for k, role in enumerate(roles):
            sops[role] = _place(paths[role], study_dir / f"S{k + 1:03d}", rng)
        if i % 3 == 0 and not one_film:  # a neutral film in its own series
            _place(paths["flexion"], study_dir / "S003", rng,
                   SeriesDescription="L-SPINE LAT NEUTRAL", ViewCodeSequence=None,
                   ProtocolName=None, ImageComments=None)
            counts["three_film"] += 1
            counts["films"] += 1
        counts["films"] += len(roles)
        counts["studies"] += 1
        counts["one_film"] += one_film
        counts["paired"] += not one_film
        shutil.rmtree(tmp)
        if landmarks and not one_film:
            import pydicom

            uid = str(pydicom.dcmread(next((study_dir / "S001").iterdir()),
                                      stop_before_pixels=True).StudyInstanceUID)
            doc = {"format": "lumbar-instability-landmarks", "format_version": 1,
                   "levels": truth["levels"]}
            for role in roles:
                doc[role] = {"image": {"sop_instance_uid": sops[role]},
                             "landmarks": truth[role]["landmarks"],
                             "image_size": truth[role]["image_size"]}
            marks.mkdir(parents=True, exist_ok=True)
            (marks / f"{uid}.json").write_text(json.dumps(doc))
    for name, data in CLUTTER.items():
        (inp / name).write_bytes(data)
    (inp / f"P{seed:06d}" / "Thumbs.db").write_bytes(CLUTTER["Thumbs.db"])
    return counts


def _timed(executor, input_dir: Path, out: Path, landmarks: Path | None) -> tuple[float, float]:
    from app.batch import BatchOptions, run_batch

    start = time.perf_counter()
    summary = run_batch(BatchOptions(input_dir, out, landmarks_dir=landmarks, quiet=True,
                                     plots=False), executor=executor)
    seconds = time.perf_counter() - start
    share = summary.decode_seconds / summary.worker_seconds if summary.worker_seconds else 0.0
    return summary.measured / seconds, share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=40, help="studies with landmark files")
    parser.add_argument("--detected", type=int, default=6, help="studies detected and tracked")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="phantom size: 1.0 = 1920 x 1536 px of 0.2 mm at the detector")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=90000)
    parser.add_argument("--keep", type=Path, help="build the archives here and keep them")
    parser.add_argument("--reuse", action="store_true",
                        help="time the archives already built in --keep (same options)")
    parser.add_argument("--cases", default="given,detected")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()

    from app.batch import DaskExecutor, PoolExecutor

    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        tic = time.perf_counter()
        archives = {}
        for name, n, seed, given in (("given", args.studies, args.seed, True),
                                     ("detected", args.detected, args.seed + 5000, False)):
            if name not in args.cases:
                continue
            folder = base / name
            counts_file = folder / "counts.json"
            if args.reuse and counts_file.exists():
                counts = json.loads(counts_file.read_text())
            else:
                counts = build_archive(folder, n, seed=seed, scale=args.scale, landmarks=given)
                counts_file.write_text(json.dumps(counts))
            archives[name] = (folder / "input", folder / "landmarks" if given else None, counts)
        print(f"built in {time.perf_counter() - tic:.0f} s: " + "; ".join(
            f"{name}: {c['studies']} studies ({c['paired']} pairs, {c['three_film']} with a "
            f"neutral film, {c['one_film']} of one film), {c['films']} films"
            for name, (_, _, c) in archives.items()), flush=True)
        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        print("\nstudies/s = measured studies / wall time, median of the rounds (each round in "
              "brackets); LocalCluster / pool = ratio of the medians; load = 1-minute load "
              "average at the start and end of the row")
        print("\n| landmarks | workers | pool studies/s | LocalCluster studies/s "
              "| LocalCluster / pool | same tables | decoding share of worker time | load |")
        print("|---|---|---|---|---|---|---|---|", flush=True)
        for workers in (int(w) for w in args.workers.split(",")):
            pool, dask = PoolExecutor(workers), DaskExecutor("local", workers)
            for executor in (pool, dask):  # start the workers outside the timing
                list(executor.imap_unordered(abs, [0] * workers))
            for name, (input_dir, landmarks, _) in archives.items():
                load_start = os.getloadavg()[0]
                speeds: dict[str, list[float]] = {"pool": [], "dask": []}
                shares: list[float] = []
                for run in range(args.repeat):
                    order = (("pool", pool), ("dask", dask))
                    for label, executor in order if run % 2 == 0 else order[::-1]:
                        out = base / f"out-{name}-{workers}-{label}-{run}"
                        shutil.rmtree(out, ignore_errors=True)
                        speed, share = _timed(executor, input_dir, out, landmarks)
                        speeds[label].append(speed)
                        shares.append(share)
                same = all(
                    (base / f"out-{name}-{workers}-dask-{r}" / "results.csv").read_text()
                    == (base / f"out-{name}-{workers}-pool-{r}" / "results.csv").read_text()
                    for r in range(args.repeat)
                )
                p, d = statistics.median(speeds["pool"]), statistics.median(speeds["dask"])
                print(f"| {name} | {workers} | {p:.2f} ({', '.join(f'{s:.2f}' for s in speeds['pool'])}) "
                      f"| {d:.2f} ({', '.join(f'{s:.2f}' for s in speeds['dask'])}) "
                      f"| {d / p:.2f} | {'yes' if same else '**no**'} "
                      f"| {100 * statistics.median(shares):.0f} % "
                      f"| {load_start:.1f}-{os.getloadavg()[0]:.1f} |", flush=True)
            pool.close()
            dask.close()
        print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
