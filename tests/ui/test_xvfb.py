"""The viewer in a real X11 window (Xvfb, Qt's xcb platform), started as users start it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ui.conftest import SAMPLE_DIR, needs_sample

pytestmark = [
    pytest.mark.xvfb,
    pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run not installed"),
]

CLI = Path(sys.executable).with_name("lumbar-instability")


def run_view(args, tmp_path, shot):
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", LUMBAR_INSTABILITY_STATE_DIR=str(tmp_path / "state"))
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", str(CLI), "view", *args, "--screenshot", str(shot)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def check_picture(shot):
    from PySide6.QtGui import QImage

    keep = os.environ.get("LUMBAR_INSTABILITY_SCREENSHOTS")  # a folder to keep the pictures in
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)

    image = QImage(str(shot))
    assert not image.isNull()
    assert image.width() >= 1200 and image.height() >= 800
    # not blank: dark film panes, light results panel, coloured overlays
    colours = {image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 29)}
    assert len(colours) > 20


def test_viewer_window_under_xvfb(synthetic_dicoms, tmp_path, qapp):
    shot = tmp_path / "viewer-synthetic.png"
    files = [str(synthetic_dicoms / "flexion.dcm"), str(synthetic_dicoms / "extension.dcm")]
    result = run_view([*files, "--landmarks", str(synthetic_dicoms / "landmarks.json")], tmp_path, shot)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    check_picture(shot)
    assert not (tmp_path / "state" / "recovery.autosave.json").exists()


@needs_sample
def test_sample_viewer_under_xvfb(tmp_path, qapp):
    shot = tmp_path / "viewer-sample.png"
    result = run_view(["--sample", "--landmarks", str(SAMPLE_DIR / "truth.json")], tmp_path, shot)
    assert result.returncode == 0, result.stderr[-2000:]
    check_picture(shot)


def test_bad_file_is_one_line_not_a_traceback(tmp_path):
    result = subprocess.run(
        [str(CLI), "view", str(tmp_path / "missing.dcm")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"lumbar-instability: {tmp_path / 'missing.dcm'}: no such file or folder"
