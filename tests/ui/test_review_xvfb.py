"""Review mode in a real X11 window (Xvfb): ``lumbar-instability view --session``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app import _report_fixtures as fx

pytestmark = [
    pytest.mark.xvfb,
    pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run not installed"),
]

CLI = Path(sys.executable).with_name("lumbar-instability")


def test_saved_session_opens_as_review_in_a_real_window(tmp_path, qapp):
    import numpy as np
    from PySide6.QtGui import QImage

    session = fx.make_study(tmp_path / "study")
    before = session.read_bytes()
    shot = tmp_path / "review.png"
    env = dict(os.environ, QT_QPA_PLATFORM="xcb",
               LUMBAR_INSTABILITY_STATE_DIR=str(tmp_path / "state"))
    result = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", str(CLI), "view", "--session",
         str(session), "--screenshot", str(shot)],
        env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    image = QImage(str(shot)).convertToFormat(QImage.Format.Format_RGB888)
    assert not image.isNull() and image.width() >= 1200
    rgb = np.frombuffer(image.constBits(), np.uint8).reshape(
        image.height(), image.bytesPerLine())[:, : 3 * image.width()].reshape(
        image.height(), image.width(), 3)
    # the reported table shows the UNSTABLE and BORDERLINE findings in their colours
    lower = rgb[rgb.shape[0] // 2:].reshape(-1, 3)
    for colour in ((150, 30, 30), (140, 100, 0)):
        assert (lower == colour).all(axis=1).sum() > 20, colour
    assert session.read_bytes() == before  # review never writes the session
