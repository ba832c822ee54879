"""Every landmarks writer states ``image_size``: 1\\1 on a cropped film of coarse pixels (issue 14 §1).

The phantom's unit-spacing study at 0.7 mm detector pixels (549 x 439 px) with
ImagerPixelSpacing 1\\1: its bodies come out 57-66 mm deep, which looks like a
large adult's, so only the film's size (55 x 44 cm at 1 mm, larger than any
detector) shows the spacing is not the patient's.  Before, ``detect``,
``track``, ``complete``, the sessions of batch reports and
``app.api.measure_study`` with films lost that size, and the file alone was
measured in millimetres.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.safety import image_shape_of, implausible_spacing

LEVELS = ["L1", "L2", "L3", "L4", "L5", "S1"]
SHAPE = [549, 439]  # rows, columns of the phantom at --scale 0.2857


@pytest.fixture(scope="module")
def coarse_unit(tmp_path_factory) -> tuple[Path, dict]:
    """The 0.7 mm-pixel phantom with ImagerPixelSpacing 1\\1, and its truth."""
    out = tmp_path_factory.mktemp("coarse") / "study"
    assert main(["phantom", str(out), "--seed", "5", "--scale", "0.2857",
                 "--calibration", "unit-spacing"]) == 0
    truth = json.loads((out / "truth.json").read_text())
    assert truth["flexion"]["image_size"] == SHAPE
    return out, truth


def _corners(truth: dict, role: str) -> np.ndarray:
    marks = truth[role]["landmarks"]  # S1: its superior corners only
    nan = [np.nan, np.nan]
    return np.array([[marks[lv].get(c, nan) for c in ("AS", "PS", "PI", "AI")] for lv in LEVELS], float)


def _measured_safety(path: Path, capsys) -> list[str]:
    capsys.readouterr()
    assert main(["measure", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    return [w["message"] for w in out["safety"] if w["check"] == "implausible-spacing"]


def test_depths_alone_do_not_show_it(coarse_unit):
    # the premise: without the film's size this spacing passes (the gap being closed)
    _, truth = coarse_unit
    for role in ("flexion", "extension"):
        assert implausible_spacing(_corners(truth, role), (1.0, 1.0)) is None
        assert "field of view" in implausible_spacing(_corners(truth, role), (1.0, 1.0), SHAPE)


def test_track_writes_the_image_size_and_measure_flags_the_spacing(coarse_unit, tmp_path, capsys):
    study, truth = coarse_unit
    given = {"levels": LEVELS,
             "flexion": {"landmarks": truth["flexion"]["landmarks"]}}  # no image_size, no spacing
    source = tmp_path / "in.json"
    source.write_text(json.dumps(given))
    out = tmp_path / "tracked.json"
    assert main(["track", str(study / "flexion.dcm"), str(study / "extension.dcm"),
                 "--landmarks", str(source), "--out", str(out)]) in (0, 1)
    doc = json.loads(out.read_text())
    assert doc["flexion"]["image_size"] == SHAPE and doc["extension"]["image_size"] == SHAPE
    assert doc["flexion"]["pixel_spacing_mm"] == [1.0, 1.0]  # the film's 1\1, now stated
    reasons = _measured_safety(out, capsys)
    assert len(reasons) == 2 and all("field of view of 44 x 55 cm" in r for r in reasons)


def test_complete_writes_the_image_size_of_both_films(coarse_unit, tmp_path, capsys):
    study, truth = coarse_unit
    # one click in the middle of each lumbar body of the flexion film
    centres = {lv: _corners(truth, "flexion")[v].mean(axis=0).tolist() for v, lv in enumerate(LEVELS[:5])}
    clicks = tmp_path / "clicks.json"
    clicks.write_text(json.dumps({"levels": LEVELS[:5], "flexion": centres}))
    out = tmp_path / "completed.json"
    assert main(["complete", str(study / "flexion.dcm"), str(study / "extension.dcm"),
                 "--clicks", str(clicks), "--out", str(out)]) in (0, 1)
    doc = json.loads(out.read_text())
    assert doc["flexion"]["image_size"] == SHAPE and doc["extension"]["image_size"] == SHAPE
    assert any("field of view" in r for r in _measured_safety(out, capsys))


def test_detect_writes_the_image_size_of_every_film(coarse_unit, tmp_path):
    study, _ = coarse_unit
    out = tmp_path / "detections.json"
    main(["detect", str(study / "flexion.dcm"), str(study / "extension.dcm"), "--out", str(out)])
    doc = json.loads(out.read_text())
    assert [film["image_size"] for film in doc["films"]] == [SHAPE, SHAPE]
    found = [film for film in doc["films"] if film["failure"] is None]
    assert found, "detection found neither film of the phantom"
    for film in found:
        corners = np.full((len(LEVELS), 4, 2), np.nan)
        for v, lv in enumerate(LEVELS):
            for c, name in enumerate(("AS", "PS", "PI", "AI")):
                if name in film["landmarks"].get(lv, {}):
                    corners[v, c] = film["landmarks"][lv][name]
        reason = implausible_spacing(corners, film["pixel_spacing_mm"], image_shape_of(film))
        assert reason is not None and "field of view" in reason


def test_api_measure_study_takes_the_size_from_the_films(coarse_unit):
    from app.api import measure_study

    study, truth = coarse_unit
    doc = {"levels": LEVELS,
           **{role: {"landmarks": truth[role]["landmarks"]} for role in ("flexion", "extension")}}
    alone = measure_study(doc)
    assert not any("SAFETY" in w for w in alone.warnings)  # uncalibrated: % and angles only
    with_films = measure_study(doc, flexion=study / "flexion.dcm", extension=study / "extension.dcm")
    safety = [w for w in with_films.warnings if w.startswith("SAFETY")]
    assert len(safety) == 2 and all("field of view" in w for w in safety)
    assert with_films.segments["translation_mm"].isna().all()  # no mm from 1 mm/px
    assert with_films.calibration["row_spacing_mm"].tolist() == [1.0, 1.0]


def test_batch_report_sessions_state_the_decoded_size():
    from app.batch._records import FilmRecord, StudyOutcome, StudyPlan
    from app.batch._reports import session_dict

    def record(name: str) -> FilmRecord:
        return FilmRecord(path=f"s/{name}", patient_id="p", study_instance_uid="1.2",
                          series_instance_uid="1.2.3", sop_instance_uid=f"1.2.3.{len(name)}",
                          rows=600, columns=500)

    plan = StudyPlan(key="k", patient_id="p", study_instance_uid="1.2", flexion=record("f"),
                     extension=record("ext"), pairing="views")
    nan4 = [[float("nan")] * 2] * 4
    outcome = StudyOutcome(key="k", ok=True, levels=["L1", "L2"],
                           flexion_landmarks=[nan4, nan4], extension_landmarks=[nan4, nan4],
                           flexion_image_size=SHAPE)
    session = session_dict(plan, outcome, [], "default", Path("/in"))
    assert session["flexion"]["image_size"] == SHAPE  # what the worker decoded
    assert session["extension"]["image_size"] == [600, 500]  # an older journal: the header's
    assert image_shape_of(session["flexion"]) == tuple(SHAPE)
