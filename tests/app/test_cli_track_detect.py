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
            assert 0 < ext["landmark_sd_mm"][level][corner] < 0.5  # the body's own tracking SD
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


def test_detect_writes_a_landmarks_file_for_a_flexion_extension_pair(phantom_files, tmp_path, capsys):
    study, paths, _ = phantom_files
    out = tmp_path / "det.json"
    status = main(["detect", str(paths["flexion"]), str(paths["extension"]), "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["format"] == "lumbar-instability-detections" and len(doc["films"]) == 2
    for film in study.films:
        got = doc[film.view]
        spacing = film.pixel_spacing_mm[0]
        for level, corners in film.landmarks().items():
            err = [np.hypot(*(np.array(got["landmarks"][level][c]) - xy)) * spacing for c, xy in corners.items()]
            assert np.median(err) < 3.0, (film.view, level, err)  # right level, ~1 mm corners
            assert set(got["placement"][level].values()) == {"detected"}
            assert min(got["landmark_sd_mm"][level].values()) >= 0.5
    entry = doc["films"][0]
    assert entry["failure"] is None and entry["detection"]["facing"] == study.options.facing
    assert set(entry["detection"]["confidence"]) == set(MEASURED_LEVELS)
    # the output is a landmarks file: measure reads it
    from app.landmarks_io import read_landmarks

    assert read_landmarks(out).levels == MEASURED_LEVELS


def test_detect_reports_a_blank_film_and_an_unreadable_file(phantom_files, tmp_path, capsys):
    import cv2

    _study, paths, _ = phantom_files
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 240), 90, np.uint8))
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not an image")
    out = tmp_path / "det.json"
    status = main(["detect", str(blank), str(junk), str(paths["flexion"]), "--out", str(out)])
    assert status == 1
    doc = json.loads(out.read_text())
    assert doc["films"][0]["failure"] == "not found: the film is blank or uniform"
    assert doc["films"][1]["failure"]  # the reader's reason
    assert doc["films"][2]["failure"] is None
    assert "flexion" not in doc  # no pair of views
    captured = capsys.readouterr()
    assert "junk.dcm" in captured.err and "Traceback" not in captured.err


def test_detect_with_no_readable_film_writes_nothing(tmp_path, capsys):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not an image")
    out = tmp_path / "det.json"
    assert main(["detect", str(junk), "--out", str(out)]) == 2
    assert not out.exists()


def test_detect_gives_a_refused_film_its_partners_bodies(phantom_files, tmp_path, capsys, monkeypatch):
    # the flexion film's detection refused (forced here; the real refusals are in
    # test_detect_study_partner.py): given both films, detect writes the extension film's
    # bodies tracked onto it, says how, and reports the film as found
    import app.autolandmarks as autolandmarks
    from measure import LandmarkFailure

    real = autolandmarks.detect_film

    def refusing(film, **kwargs):
        if film.view.value == "flexion":
            return LandmarkFailure("not found: refused for this test")
        return real(film, **kwargs)

    monkeypatch.setattr(autolandmarks, "detect_film", refusing)
    study, paths, _ = phantom_files
    out = tmp_path / "det.json"
    status = main(["detect", str(paths["flexion"]), str(paths["extension"]), "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    doc = json.loads(out.read_text())
    flex = doc["films"][0]
    assert flex["failure"] is None and flex["view"] == "flexion"
    assert flex["detection"]["tracked_from"] == "extension"
    assert flex["detection"]["obtained"] == (
        "tracked from the extension film (its own detection: not found: refused for this test)"
    )
    # the labels are the extension film's, and nothing on the flexion film could check them
    # (its own detection refused): the tracked film always needs review, and says why
    ext_review = doc["films"][1]["detection"]["needs_review"]
    assert flex["detection"]["needs_review"] is True
    assert flex["detection"]["review_reasons"] == (
        (["its labels are the extension film's, which needs review itself"] if ext_review else [])
        + ["labels not cross-checked on the flexion film (detection: not found: refused for this test)"]
    )
    assert "tracked_from" not in doc["films"][1]["detection"]
    truth = study.flexion.landmarks()
    spacing = study.flexion.pixel_spacing_mm[0]
    for level in MEASURED_LEVELS:
        got = doc["flexion"]["landmarks"][level]
        err = [np.hypot(*(np.array(got[c]) - truth[level][c])) * spacing for c in truth[level]]
        assert np.median(err) < 3.0, (level, err)  # on its own body (bodies are ~30 mm apart)
        assert set(doc["flexion"]["placement"][level].values()) == {"tracked"}
    assert "tracked from the extension film" in captured.out
