"""``lumbar-instability view``: the desktop viewer.

The one subcommand that starts the Qt layer, so it lives in ``ui`` and is added to
the command line by :mod:`ui.launcher` (``app`` never imports ``ui``)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "open the desktop viewer on a flexion/extension pair, a folder, or a saved session"

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_dicoms"
"""The bundled sample study (synthetic films with known truth)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``view`` subcommand."""
    parser.add_argument(
        "files", nargs="*", metavar="FILES", help="DICOM files (flexion and extension) or one folder"
    )
    parser.add_argument(
        "--sample", action="store_true", help=f"open the bundled sample study ({SAMPLE_DIR.name}/)"
    )
    parser.add_argument("--session", metavar="FILE", help="reopen a saved session (JSON)")
    parser.add_argument(
        "--landmarks",
        metavar="FILE",
        help="put the corners of a landmarks (or session) JSON file on the films opened",
    )
    # Save a picture of the window once it is shown, then quit (tests and documentation).
    parser.add_argument("--screenshot", metavar="PNG", help=argparse.SUPPRESS)


def sample_files() -> list[str]:
    """The sample study's flexion and extension files."""
    from app.errors import UserError

    files = [SAMPLE_DIR / "flexion.dcm", SAMPLE_DIR / "extension.dcm"]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise UserError(f"{missing[0]}: sample film missing (reinstall, or run `lumbar-instability phantom`)")
    return [str(f) for f in files]


def _has_display() -> bool:
    """False on Linux without X11/Wayland and no Qt platform chosen (Qt would abort)."""
    import os
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _qt_missing() -> str | None:
    """Why Qt cannot be imported (a headless install, missing system libraries), or None."""
    try:
        import PySide6.QtWidgets  # noqa: F401
    except ImportError as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def run(args: argparse.Namespace) -> int:
    """Start the viewer; returns Qt's exit status."""
    from app.errors import UserError

    if args.sample and (args.files or args.session):
        raise UserError("--sample: give either --sample, FILES or --session, not several")
    if args.session and args.files:
        raise UserError("--session: give either FILES or --session, not both")
    paths = sample_files() if args.sample else list(args.files)
    for p in paths:
        if not Path(p).exists():
            raise UserError(f"{p}: no such file or folder")
    if args.session and not Path(args.session).exists():
        raise UserError(f"{args.session}: no such session file")
    if args.landmarks and not Path(args.landmarks).exists():
        raise UserError(f"{args.landmarks}: no such landmarks file")
    if args.landmarks and not paths:
        raise UserError("--landmarks: give the films too (FILES or --sample)")
    missing = _qt_missing()
    if missing is not None:
        raise UserError(
            f"the viewer needs PySide6, which this installation lacks ({missing}): install it with "
            "`bash scripts/install.sh` (not --headless) or `pip install 'lumbar-instability[viewer]'`; "
            "every other command works without it"
        )
    if not _has_display():
        raise UserError(
            "no display to open the viewer on (DISPLAY and WAYLAND_DISPLAY are not set): "
            "run it on a desktop, over ssh -X, or under xvfb-run"
        )
    from ui.qt_main_window import run_viewer

    return run_viewer(paths, args.session, landmarks=args.landmarks, screenshot=args.screenshot)
