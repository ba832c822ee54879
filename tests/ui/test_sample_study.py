"""Issue #4's acceptance test on the sample study (sample_dicoms/, or the same
phantom generated when the folder is absent): place every corner by simulated
clicks at the ground-truth positions, read the true motion back from the
results panel, drag a corner and see its row change, undo, save, reopen, same
numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from tests.ui.conftest import SAMPLE_DIR
from tests.ui.test_qt_main_window import ZOOM, click_at, leading_number
from ui.qt_results import COLUMNS

CORNER_NAMES = ("AS", "PS", "PI", "AI")


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    if (SAMPLE_DIR / "truth.json").exists():
        return SAMPLE_DIR
    from app.phantom import make_study, write_study

    out = tmp_path_factory.mktemp("sample")
    write_study(make_study(7), out)  # the phantom's defaults, seed 7
    return out


def truth_arrays(truth: dict, role: str) -> np.ndarray:
    levels = truth["levels"]
    lm = np.full((len(levels), 4, 2), np.nan)
    for v, level in enumerate(levels):
        for c, name in enumerate(CORNER_NAMES):
            xy = truth[role]["landmarks"].get(level, {}).get(name)
            if xy is not None:
                lm[v, c] = xy
    return lm


def test_sample_study_clicks_drag_undo_save_reopen(qtbot, make_window, sample_dir, tmp_path):
    truth = json.loads((sample_dir / "truth.json").read_text())
    window = make_window()  # the real DICOM loader
    assert window.open_paths([str(sample_dir / "flexion.dcm"), str(sample_dir / "extension.dcm")])
    assert window.session.levels == tuple(truth["levels"])

    # 1. guided placement: one click per corner, at the ground truth
    window.set_guided(True)
    for role in ("flexion", "extension"):
        lm = truth_arrays(truth, role)
        view = window.views[role]
        for v, c in window.session.corner_order():
            assert view.prompt_text().startswith(f"Click {truth['levels'][v]} {CORNER_NAMES[c]}")
            click_at(qtbot, view, lm[v, c])
        np.testing.assert_allclose(window.session.landmarks(role), lm, atol=1 / (2 * ZOOM))
        assert (window.session.film(role).placement[np.isfinite(lm).all(-1)] == "manual").all()

    # 2. the truth's motion, read from the table (clicks land within 1/16 px)
    header = truth["flexion"]["header_calibration"]
    for segment in window.session.segments:
        motion = truth["motion"][segment]
        assert leading_number(window.results.cell(segment, "Angulation (°)")) == pytest.approx(
            motion["dtheta_deg"], abs=0.06
        )
        assert leading_number(window.results.cell(segment, "Translation (%)")) == pytest.approx(
            motion["dt_pct"], abs=0.06
        )
        mm = window.results.cell(segment, "Translation (mm)")
        if header["source"] == "uncalibrated":
            assert mm == "—"
        else:
            # the header spacing over the true one: 1 unless the header is the detector's
            scale = header["pixel_spacing_mm"][0] / truth["flexion"]["pixel_spacing_mm"][0]
            assert leading_number(mm) == pytest.approx(motion["dt_mm"] * scale, abs=0.06)
        assert window.results.cell(segment, "Calibration") == header["source"]
    shown = {(s, c): window.results.cell(s, c) for s in window.session.segments for c in COLUMNS}

    # 3. drag L4's PI on the flexion film 8 px posteriorly: the L4-L5 row changes while dragging
    window.set_guided(False)
    view = window.views["flexion"]
    lm = truth_arrays(truth, "flexion")
    pi, ps_lower = lm[3, 2], lm[4, 1]
    anterior = (lm[4, 0] - ps_lower) / np.linalg.norm(lm[4, 0] - ps_lower)
    view.centre_on(*pi, scale=1.0)
    start = view.image_to_widget(*pi).toPoint()
    end = start - QPoint(round(8 * anterior[0]), round(8 * anterior[1]))
    before = leading_number(shown[("L4-L5", "Translation (%)")])
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view, pos=end)
    during = leading_number(window.results.cell("L4-L5", "Translation (%)"))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=end)
    depth_px = np.linalg.norm(lm[4, 0] - lm[4, 1])  # about 8 px along the endplate: about -8/depth of 100 %
    assert during - before == pytest.approx(-100 * 8 / depth_px, rel=0.15)
    assert window.results.cell("L3-L4", "Translation (%)") == shown[("L3-L4", "Translation (%)")]
    assert window.session.film("flexion").placement[3, 2] == "manual"

    # 4. undo restores the row exactly
    window.actions_by_name["undo"].trigger()
    assert window.results.cell("L4-L5", "Translation (%)") == shown[("L4-L5", "Translation (%)")]

    # 5. save, reopen in a new window, same numbers
    target = tmp_path / "sample.session.json"
    window.ask_save_path = lambda: str(target)
    assert window.save()
    other = make_window()
    assert other.open_paths([str(target)])
    other.actions_by_name["review_edit"].trigger()
    assert {(s, c): other.results.cell(s, c) for s in other.session.segments for c in COLUMNS} == shown
    assert math.isclose(
        json.loads(target.read_text())["results"]["segments"][3]["angulation_deg"],
        truth["motion"]["L4-L5"]["dtheta_deg"],
        abs_tol=0.06,
    )
