"""The ``track`` and ``detect`` commands on phantom DICOM files: outputs and refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main
from app.phantom import MEASURED_LEVELS, make_study, write_study


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory):
    study = make_study(6262, scale=0.25)
    out = tmp_path_factory.mktemp("phantom")
    paths = write_study(study, out)
    return study, paths, out


def _write(path, doc) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def test_track_writes_both_films_with_placement_sd_and_quality(phantom_files, tmp_path, capsys):
    study, paths, _ = phantom_files
    landmarks = _write(tmp_path / "in.json", {"flexion": {"landmarks": study.flexion.landmarks()}})
    out = tmp_path / "out.json"
    status = main(["track", str(paths["flexion"]), str(paths["extension"]),
                   "--landmarks", landmarks, "--out", str(out)])  # fmt: skip
    assert status == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    ext = doc["extension"]
    truth = study.extension.landmarks()
    spacing = study.extension.pixel_spacing_mm[0]
    for level in MEASURED_LEVELS:
        for corner, xy in truth[level].items():
            err_mm = np.hypot(*(np.array(ext["landmarks"][level][corner]) - xy)) * spacing
            assert err_mm < 1.0, (level, corner, err_mm)
            assert ext["placement"][level][corner] == "tracked"
            assert ext["landmark_sd_mm"][level][corner] >= 0.05
        assert doc["flexion"]["placement"][level]["AS"] == "manual"
    assert set(ext["tracking"]["quality"]) == set(MEASURED_LEVELS)
    assert ext["tracking"]["failures"] == {}
    # calibration from the DICOM header of each film
    assert ext["pixel_spacing_mm"] == pytest.approx(list(study.extension.pixel_spacing_mm), rel=1e-6)
    assert "L3: tracked, quality" in capsys.readouterr().out


def test_track_refuses_landmarks_outside_the_film(phantom_files, tmp_path, capsys):
    study, paths, _ = phantom_files
    marks = study.flexion.landmarks()
    marks["L2"]["AS"] = [5000.0, 20.0]
    landmarks = _write(tmp_path / "in.json", {"flexion": {"landmarks": marks}})
    out = tmp_path / "out.json"
    status = main(["track", str(paths["flexion"]), str(paths["extension"]),
                   "--landmarks", landmarks, "--out", str(out)])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "in.json: key flexion.landmarks: a corner lies outside the flexion film" in err
    assert not out.exists()


def test_track_refuses_a_uniform_film(phantom_files, tmp_path, capsys):
    import cv2

    study, paths, _ = phantom_files
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full(study.extension.pixels.shape, 128, np.uint8))
    landmarks = _write(tmp_path / "in.json", {"flexion": {"landmarks": study.flexion.landmarks()}})
    out = tmp_path / "out.json"
    status = main(["track", str(paths["flexion"]), str(blank), "--landmarks", landmarks,
                   "--out", str(out)])  # fmt: skip
    assert status == 2
    assert "blank or uniform" in capsys.readouterr().err
    assert not out.exists()


def test_track_refuses_a_film_of_something_else(phantom_files, tmp_path, capsys):
    import cv2

    study, paths, _ = phantom_files
    rng = np.random.default_rng(1)
    other = cv2.GaussianBlur(rng.normal(128, 40, study.extension.pixels.shape), (0, 0), 5)
    path = tmp_path / "other.png"
    cv2.imwrite(str(path), np.clip(other, 0, 255).astype(np.uint8))
    landmarks = _write(tmp_path / "in.json", {"flexion": {"landmarks": study.flexion.landmarks()}})
    out = tmp_path / "out.json"
    status = main(["track", str(paths["flexion"]), str(path), "--landmarks", landmarks,
                   "--out", str(out)])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "tracking failed: not found" in err or "no body could be tracked" in err
    assert not out.exists()
