"""The committed sample study: reproducible from its seed, and its truth measures right."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.phantom import make_study
from app.phantom._dicom import dataset_for_film

SAMPLE = Path(__file__).resolve().parents[2] / "sample_dicoms"
SEGMENTS = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")


@pytest.fixture(scope="module")
def committed_truth() -> dict:
    return json.loads((SAMPLE / "truth.json").read_text())


@pytest.fixture(scope="module")
def regenerated(committed_truth):
    options = dict(committed_truth["generator"])
    options.pop("name")
    seed = options.pop("seed")
    options["unstable"] = tuple(options["unstable"])
    return make_study(seed, **options)


def test_sample_is_small_lossless_and_complete():
    sizes = {p.name: p.stat().st_size for p in SAMPLE.iterdir()}
    assert {"flexion.dcm", "extension.dcm", "truth.json", "README.md"} <= set(sizes)
    assert sizes["flexion.dcm"] + sizes["extension.dcm"] < 5_000_000
    for name in ("flexion.dcm", "extension.dcm"):
        ds = pydicom.dcmread(SAMPLE / name)
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGLSLossless


def test_generator_reproduces_the_sample(committed_truth, regenerated):
    assert json.loads(json.dumps(regenerated.truth())) == committed_truth
    for film in regenerated.films:
        committed = pydicom.dcmread(SAMPLE / f"{film.view}.dcm")
        np.testing.assert_array_equal(committed.pixel_array, film.pixels)
        fresh = dataset_for_film(regenerated, film)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PatientName",
                        "PatientID", "SeriesDescription", "ImagerPixelSpacing",
                        "EstimatedRadiographicMagnificationFactor", "PhotometricInterpretation",
                        "BitsStored", "Rows", "Columns"):  # fmt: skip
            assert committed[keyword].value == fresh[keyword].value, keyword


def test_sample_truth_fed_to_measure_gives_the_true_motion(committed_truth):
    landmarks_io = pytest.importorskip("app.landmarks_io")
    from measure import segmental_motion

    study = landmarks_io.read_landmarks(SAMPLE / "truth.json")
    result = segmental_motion(
        study.flexion.corners,
        study.extension.corners,
        flexion_spacing_mm=study.flexion.calibration.spacing_mm,
        extension_spacing_mm=study.extension.calibration.spacing_mm,
        levels=study.levels,
    )
    truth = committed_truth["motion"]
    assert result.segments == SEGMENTS
    np.testing.assert_allclose(result.angulation_deg, [truth[s]["dtheta_deg"] for s in SEGMENTS], atol=1e-6)
    np.testing.assert_allclose(result.translation_mm, [truth[s]["dt_mm"] for s in SEGMENTS], atol=1e-6)
    np.testing.assert_allclose(result.translation_pct, [truth[s]["dt_pct"] for s in SEGMENTS], atol=1e-6)
    # one clearly unstable segment, on both criteria; the others inside published normal motion
    assert list(result.unstable) == [False, False, False, True, False]
    l45 = truth["L4-L5"]
    assert l45["dt_mm"] > 4.5 and l45["dtheta_deg"] > 11
    for s in ("L1-L2", "L2-L3", "L3-L4", "L5-S1"):
        assert 5 <= truth[s]["dtheta_deg"] < 10 and 0.5 < truth[s]["dt_mm"] < 3.5


def test_loader_reads_the_sample_calibration_the_truth_names(committed_truth):
    dicom_io = pytest.importorskip("app.dicom_io")
    for view in ("flexion", "extension"):
        film = dicom_io.load_film(SAMPLE / f"{view}.dcm")
        expected = committed_truth[view]
        assert film.calibration.source.value == expected["header_calibration"]["source"]
        assert film.calibration.spacing_mm == pytest.approx(expected["pixel_spacing_mm"], rel=1e-9)
        assert str(film.view.value if hasattr(film.view, "value") else film.view) == view
