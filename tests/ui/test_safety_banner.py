"""The viewer shows the session's safety warnings in a red banner with an
Acknowledge button; export waits for it (issue 11 §1); a 1\\1 spacing is flagged
(issue 14 §1)."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from app.errors import UserError
from tests.ui.conftest import SAMPLE_DIR
from tests.ui.test_sample_study import truth_arrays

pytestmark = pytest.mark.skipif(not (SAMPLE_DIR / "truth.json").exists(), reason="sample study absent")


def test_same_film_twice_blocks_export_until_acknowledged(qtbot, make_window, tmp_path):
    window = make_window()
    flexion = str(SAMPLE_DIR / "flexion.dcm")
    assert window.open_paths([flexion, flexion])
    shown = window.banner.messages("safety")
    assert len(shown) == 1 and "same SOP Instance UID" in shown[0] and "blocked" in shown[0]
    with pytest.raises(UserError, match="export refused"):
        window.review.export(tmp_path / "r.csv")
    assert not (tmp_path / "r.csv").exists()
    button = window.banner.action_button("safety")
    assert button is not None and button.text() == "Acknowledge"
    button.click()
    assert window.session.unacknowledged_safety == []
    assert window.banner.messages("safety") == []
    (acknowledged,) = [m for m in window.banner.messages("warning") if m.startswith("SAFETY")]
    assert "(acknowledged)" in acknowledged and window.banner.action_button("safety") is None
    assert window.review.export(tmp_path / "r.csv").exists()


def test_unit_spacing_flagged_in_the_viewer(qtbot, make_window, tmp_path):
    out = tmp_path / "unit"
    assert main(["phantom", str(out), "--seed", "5", "--scale", "0.5", "--calibration", "unit-spacing"]) == 0
    truth = json.loads((out / "truth.json").read_text())
    window = make_window()
    assert window.open_paths([str(out / "flexion.dcm"), str(out / "extension.dcm")])
    for role in ("flexion", "extension"):
        window.session.set_landmarks(role, truth_arrays(truth, role))
    (shown,) = window.banner.messages("safety")
    assert "adults measure about 25-60 mm" in shown and "millimetres are not used" in shown
    assert window.results.cell("L4-L5", "Translation (mm)") == "—"
    assert window.results.cell("L4-L5", "Translation (%)") != "—"
