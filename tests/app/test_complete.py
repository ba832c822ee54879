"""The one-click-per-body path: ``app.autolandmarks.complete_film`` and ``lumbar-instability complete``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.autolandmarks import complete_film
from app.cli import main
from app.phantom import MEASURED_LEVELS, make_study, write_study
from measure import Calibration, CalibrationSource
from measure._auto_common import body_outlines


def _centres(corners_px: np.ndarray) -> np.ndarray:
    return body_outlines(corners_px[2:], sacrum_height=0.6).mean(axis=1)  # L1..S1


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory):
    study = make_study(7201, scale=0.25)
    out = tmp_path_factory.mktemp("phantom")
    return study, write_study(study, out)


def test_complete_film_from_l1_and_s1_clicks_places_every_corner_in_mm():
    study = make_study(7202, scale=0.25)
    film = study.extension
    image = film.pixels.astype(np.float32) * (-1 if film.photometric == "MONOCHROME1" else 1)
    centres = _centres(film.corners_px)
    spacing = film.pixel_spacing_mm
    cal = Calibration(spacing[0], spacing[1], CalibrationSource.CALIBRATED)
    out = complete_film(image, {"L1": centres[0], "S1": centres[-1]}, calibration=cal)
    assert out
    assert out.details["clicked"] == ["L1", "S1"]
    assert out.details["found_along_column"] == ["L2", "L3", "L4", "L5"]
    assert out.failures == {} and out.details["unrefined"] == {}
    err_mm = np.linalg.norm(out.corners - film.corners_px[2:], axis=-1) * spacing[0]
    assert np.nanmax(err_mm) < 3.0 and np.nanmedian(err_mm) < 1.0
    assert np.all(out.placement[:5] == "refined") and list(out.placement[5]) == ["refined", "refined", "", ""]
    assert np.all(out.sd_mm[:5] >= 0.15)  # the refined floor, in mm from the calibration
    assert np.isnan(out.sd_mm[5, 2:]).all()


def test_complete_film_rejects_clicks_for_unknown_levels():
    out = complete_film(np.zeros((200, 200)), {"L1": (50, 50), "L9": (60, 150)})
    assert not out and "L9" in out.reason


def test_complete_command_completes_one_film_and_tracks_the_other(phantom_files, tmp_path, capsys):
    study, paths = phantom_files
    centres = _centres(study.flexion.corners_px)
    clicks = tmp_path / "clicks.json"
    clicks.write_text(json.dumps({"flexion": {"L1": centres[0].tolist(), "S1": centres[-1].tolist()}}))
    out = tmp_path / "out.json"
    status = main(["complete", str(paths["flexion"]), str(paths["extension"]),
                   "--clicks", str(clicks), "--out", str(out)])  # fmt: skip
    assert status == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["flexion"]["completion"]["found_along_column"] == ["L2", "L3", "L4", "L5"]
    assert doc["flexion"]["completion"]["facing"] == "left"
    for name, film in (("flexion", study.flexion), ("extension", study.extension)):
        truth = film.landmarks()
        for level in MEASURED_LEVELS:
            for corner, xy in truth[level].items():
                err_mm = np.hypot(*(np.array(doc[name]["landmarks"][level][corner]) - xy)) * film.pixel_spacing_mm[0]
                assert err_mm < 3.0, (name, level, corner, err_mm)
    assert doc["flexion"]["placement"]["L3"]["AS"] == "refined"
    assert doc["extension"]["placement"]["L3"]["AS"] == "tracked"
    assert "tracked to the other film: 6 bodies" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"flexion": {"L1": [10, 10]}}, "first and the last level (L1, S1) must be clicked"),
        ({"flexion": {"L1": [10, 10], "S1": "here"}}, "key flexion.S1: expected [x, y] numbers"),
        ({"flexion": {"L1": [10, 10], "S1": [20, 90000]}}, "key flexion.S1: the click lies outside"),
        ({"levels": ["L1", "X7"], "flexion": {}}, "'X7' is not a level label"),
    ],
)
def test_complete_command_names_the_bad_key_and_writes_nothing(phantom_files, tmp_path, capsys, doc, message):
    _, paths = phantom_files
    clicks = tmp_path / "clicks.json"
    clicks.write_text(json.dumps(doc))
    out = tmp_path / "out.json"
    status = main(["complete", str(paths["flexion"]), str(paths["extension"]),
                   "--clicks", str(clicks), "--out", str(out)])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_batch_completes_clicks_from_a_landmarks_file_and_tracks_the_other_film(tmp_path):
    import csv

    import pydicom

    from app.batch import BatchOptions, SerialExecutor, run_batch

    study = make_study(7203, scale=0.25, unstable=("L4-L5",))
    paths = write_study(study, tmp_path / "input" / "study1")
    uid = str(pydicom.dcmread(paths["flexion"], stop_before_pixels=True).StudyInstanceUID)
    centres = _centres(study.flexion.corners_px)
    marks = tmp_path / "landmarks"
    marks.mkdir()
    (marks / f"{uid}.json").write_text(json.dumps({
        "flexion": {"landmarks": {}, "clicks": {"L1": centres[0].tolist(), "S1": centres[-1].tolist()}},
        "extension": {"landmarks": {}},
    }))  # fmt: skip
    out = tmp_path / "results"
    run_batch(BatchOptions(tmp_path / "input", out, landmarks_dir=marks, quiet=True), executor=SerialExecutor())
    with open(out / "results.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["study_instance_uid"] == uid]
    assert len(rows) == 5, rows
    for row in rows:
        assert "+clicks:flexion" in row["landmark_method"] and "+tracked:extension" in row["landmark_method"]
        truth = study.motion[row["segment"]]
        assert float(row["translation_pct"]) == pytest.approx(truth["dt_pct"], abs=4.0), row["segment"]
        assert float(row["angulation_deg"]) == pytest.approx(truth["dtheta_deg"], abs=2.5), row["segment"]
    unstable = {r["segment"]: r["unstable"] for r in rows}
    assert unstable["L4-L5"] == "true"
