"""A MONOCHROME1, uncalibrated study (phantom): bone shown white, presets mirrored,
no millimetres anywhere, percentages still right."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.ui.test_sample_study import truth_arrays


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from app.phantom import make_study, write_study

    out = tmp_path_factory.mktemp("mono1")
    write_study(make_study(3, scale=0.3, photometric="MONOCHROME1", calibration="uncalibrated"), out)
    return out


def test_monochrome1_uncalibrated(make_window, study):
    truth = json.loads((study / "truth.json").read_text())
    window = make_window()
    window.open_paths([str(study / "flexion.dcm"), str(study / "extension.dcm")])
    view = window.views["flexion"]
    assert view.film.invert  # MONOCHROME1
    lm = truth_arrays(truth, "flexion")
    # bone white: the inside of L3 is brighter than the soft tissue beside it
    centre = np.nanmean(lm[2], axis=0).round().astype(int)
    depth = int(np.linalg.norm(lm[2, 0] - lm[2, 1]))
    img = view.display_array.astype(float)
    body = img[centre[1] - 3 : centre[1] + 4, centre[0] - 3 : centre[0] + 4].mean()
    anterior = np.sign(lm[2, 0, 0] - lm[2, 1, 0])
    beside = img[centre[1] - 3 : centre[1] + 4, centre[0] + int(anterior * depth) - 3 : centre[0] + int(anterior * depth) + 4].mean()
    assert body > beside
    # the Bone preset of a MONOCHROME1 film windows the low values (bone is low there)
    view.apply_window_preset("Bone")
    p0, _, _, p60, _, _ = view._percentiles()
    c, w = view.window
    assert c - w / 2 == pytest.approx(p0 - 0.5, abs=1.0) and c + w / 2 == pytest.approx(p60 + 0.5, abs=1.0)
    # uncalibrated: banners say so, no mm in the table, % equals the truth
    assert sum("no usable pixel spacing" in m for m in window.banner.messages("warning")) == 2
    window.session.set_landmarks("flexion", lm)
    window.session.set_landmarks("extension", truth_arrays(truth, "extension"))
    for segment in window.session.segments:
        assert window.results.cell(segment, "Translation (mm)") == "—"
        assert window.results.cell(segment, "Flexion transl. (mm)") == "—"
        assert window.results.cell(segment, "Calibration") == "uncalibrated"
        shown = float(window.results.cell(segment, "Translation (%)").split()[0])
        assert shown == pytest.approx(truth["motion"][segment]["dt_pct"], abs=0.06)
