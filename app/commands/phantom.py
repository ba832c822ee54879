"""``lumbar-instability phantom``: write a synthetic flexion-extension study with its truth."""

from __future__ import annotations

import argparse

HELP = "write a synthetic lateral lumbar flexion-extension study (DICOM) with its ground truth"

_SEGMENTS = ("T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``phantom`` subcommand."""
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write flexion.dcm, extension.dcm and truth.json into")
    parser.add_argument("--seed", type=int, required=True, help="seed: the same seed and options write identical files")
    parser.add_argument("--facing", choices=("left", "right"), default="left", help="side of the image the patient faces (default: left)")
    parser.add_argument("--rotation", type=float, default=0.0, metavar="DEG", help="rotate both films by DEG degrees, counter-clockwise (default: 0)")
    parser.add_argument("--magnification", type=float, default=1.2, metavar="M", help="geometric magnification of the flexion film (default: 1.2)")
    parser.add_argument("--magnification-change", type=float, default=1.0, metavar="F", help="extension magnification = flexion magnification x F (default: 1.0)")
    parser.add_argument("--photometric", choices=("MONOCHROME1", "MONOCHROME2"), default="MONOCHROME2")
    parser.add_argument("--compression", choices=("none", "jpeg-ls", "jpeg2000", "rle", "jpeg-lossless"), default="none", help="lossless transfer syntax (default: none)")
    parser.add_argument(
        "--calibration",
        choices=("calibrated", "magnification-corrected", "detector", "detector-differs", "uncalibrated", "garbage",
                 "unit-spacing"),
        default="magnification-corrected",
        help="which pixel-spacing attributes the headers carry (docs/measurement.md section 5; default: magnification-corrected)",
    )
    parser.add_argument("--unstable", action="append", default=[], choices=_SEGMENTS, metavar="SEGMENT", help="make SEGMENT unstable (5-6.5 mm, 12.5-16 deg); repeatable")
    parser.add_argument("--scale", type=float, default=1.0, help="film size factor (default 1: 1920 x 1536 pixels of 0.2 mm)")
    parser.add_argument("--bits", type=int, default=12, choices=(12, 13, 14, 15, 16), help="bits stored (default: 12)")
    parser.add_argument(
        "--realistic", action="store_true",
        help="a seeded mix of what real films show: narrow discs, flat back and kyphotic flexion, high iliac "
        "crests, listhesis, transitional L5/S1, osteophytes, gas over the spine, L1 cropped, burned-in text, "
        "shutters, 8-bit PNG/JPEG exports without calibration (docs/phantom.md)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Render and write the study; print what was written and the true motion."""
    from app.errors import UserError
    from app.phantom import make_study, write_study

    try:
        study = make_study(
            args.seed,
            facing=args.facing,
            rotation_deg=args.rotation,
            magnification=args.magnification,
            magnification_change=args.magnification_change,
            photometric=args.photometric,
            compression=args.compression,
            calibration=args.calibration,
            unstable=tuple(args.unstable),
            scale=args.scale,
            bits_stored=args.bits,
            realistic=args.realistic,
        )
    except ValueError as exc:
        raise UserError(f"phantom: {exc}") from None
    try:
        paths = write_study(study, args.out_dir)
    except OSError as exc:
        raise UserError(f"{args.out_dir}: cannot write the study: {exc.strerror or exc}") from None
    for name in ("flexion", "extension", "truth"):
        print(f"wrote {paths[name]}")
    if study.options.realism is not None:
        drawn = ", ".join(f"{k}={v}" for k, v in study.options.realism.to_json().items())
        print(f"realism: {drawn or 'none drawn'}")
    print("true motion (angulation deg, translation mm, % of depth):")
    for segment, m in study.motion.items():
        print(f"  {segment:7s} {m['dtheta_deg']:6.2f}  {m['dt_mm']:6.2f}  {m['dt_pct']:6.1f}")
    return 0
