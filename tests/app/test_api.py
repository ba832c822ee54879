"""The notebook API (app.api): DataFrames equal to the files and commands they stand for; no Qt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app import api
from app.cli import main
from tests.app._cohort_archive import CohortArchive, build_cohort

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> CohortArchive:
    return build_cohort(tmp_path_factory.mktemp("api"), n_patients=2)


def test_import_and_batch_without_qt(cohort: CohortArchive, tmp_path: Path):
    # PySide6 blocked the way a headless install lacks it: any import of it fails.
    code = f"""
import sys

class _NoQt:
    def find_spec(self, name, path=None, target=None):
        if name == "PySide6" or name.startswith("PySide6."):
            raise ImportError("PySide6 is not installed (headless)")
        return None

sys.meta_path.insert(0, _NoQt())
sys.modules.pop("PySide6", None)
import app.api, app.batch, app.agreement, app.batch._cohort, app.batch._executors
from app import api
tables = api.run_batch({str(cohort.input_dir)!r}, {str(tmp_path / "out")!r},
                       landmarks={str(cohort.landmarks_dir)!r}, workers=0)
assert len(tables.studies) == {len(cohort.studies)}, tables.studies
assert not any(m == "PySide6" or m.startswith("PySide6.") for m in sys.modules), "Qt imported"
print("headless ok", len(tables.segments))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"headless ok {5 * len(cohort.studies)}" in done.stdout
    assert (tmp_path / "out" / "summary.html").exists()


def test_run_batch_returns_the_tables_it_wrote(cohort: CohortArchive, tmp_path: Path):
    tables = api.run_batch(cohort.input_dir, tmp_path / "res", landmarks=cohort.landmarks_dir,
                           workers=0, criteria="white-panjabi")
    assert isinstance(tables.segments, pd.DataFrame)
    on_disk = pd.read_csv(tmp_path / "res" / "results.csv")
    assert len(tables.segments) == len(on_disk) == 5 * len(cohort.studies)
    np.testing.assert_allclose(tables.segments["angulation_deg"], on_disk["angulation_deg"])
    assert set(tables.segments["criteria"]) == {"white-panjabi"}
    assert tables.segments["unstable"].dtype == bool
    assert len(tables.studies) == len(cohort.studies) and tables.failures.empty
    assert tables.summary["measured_studies"] == len(cohort.studies)
    again = api.read_batch(tmp_path / "res")
    pd.testing.assert_frame_equal(again.studies, tables.studies)
    with pytest.raises(api_user_error(), match="no batch results"):
        api.read_batch(tmp_path)


def api_user_error():
    from app.errors import UserError

    return UserError


def test_measure_study_equals_the_measure_command(cohort: CohortArchive, capsys):
    study = cohort.studies[1]
    path = cohort.landmarks_dir / f"{study.study_instance_uid}.json"
    # the landmarks file names no spacing: angles and % only ...
    tables = api.measure_study(path)
    assert main(["measure", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for row, ref in zip(tables.segments.to_dict("records"), doc["segments"], strict=True):
        assert row["segment"] == ref["segment"]
        assert row["angulation_deg"] == pytest.approx(ref["angulation_deg"], abs=1e-12)
        assert row["translation_pct"] == pytest.approx(ref["translation_pct"], abs=1e-12)
        if ref["angulation_deg_ci95"] is not None:
            assert row["angulation_deg_ci95_low"] == pytest.approx(ref["angulation_deg_ci95"][0])
    assert tables.segments["translation_mm"].isna().all()
    assert set(tables.calibration["source"]) == {"uncalibrated"}
    assert len(tables.landmarks) == 2 * (5 * 4 + 2)
    # ... with the films, their DICOM calibration applies and gives mm near the truth
    folder = cohort.input_dir / study.patient_id / "visit1"
    with_films = api.measure_study(path, flexion=folder / "flexion.dcm",
                                   extension=folder / "extension.dcm")
    assert set(with_films.calibration["source"]) == {study.calibration}
    truth = [study.truth["motion"][s]["dt_mm"] for s in with_films.segments["segment"]]
    np.testing.assert_allclose(with_films.segments["translation_mm"], truth, atol=0.05)
    findings = dict(zip(with_films.segments["segment"], with_films.segments["finding"], strict=True))
    assert study.unstable and all(findings[s] == "unstable" for s in study.unstable)


def test_load_session_uses_the_saved_calibration_and_criteria(cohort: CohortArchive, tmp_path):
    study = cohort.studies[0]
    doc = json.loads((cohort.landmarks_dir / f"{study.study_instance_uid}.json").read_text())
    doc["format"] = "lumbar-instability-session"
    doc["criteria"] = "white-panjabi"
    for role in ("flexion", "extension"):
        doc[role]["pixel_spacing_mm"] = study.truth[role]["pixel_spacing_mm"]
        doc[role]["calibration_source"] = "calibrated"
    path = tmp_path / "case.json"
    path.write_text(json.dumps(doc))
    tables = api.load_session(path)
    truth = [study.truth["motion"][s]["dt_mm"] for s in tables.segments["segment"]]
    np.testing.assert_allclose(tables.segments["translation_mm"], truth, atol=0.01)
    assert tables.criteria == "white-panjabi"
    assert api.load_session(path, criteria="default").criteria == "default"
    assert tables.source == path


def test_agreement_and_level_summary(tmp_path: Path):
    from tests.app._reader_study import reader_study

    folders, _, _ = reader_study(tmp_path, {"a": 1.0, "b": 2.0}, n_studies=8)
    result = api.agreement([folders["a"], folders["b"]])
    assert set(result.icc["quantity"]) >= {"translation_mm", "angulation_deg"}
    assert result.icc["icc_2_1"].between(-1, 1).all()
    segments = pd.DataFrame(
        {"segment": ["L4-L5"] * 4 + ["L5-S1"] * 2, "measured": [True] * 5 + [False],
         "unstable": [True, False, False, True, False, False],
         "borderline": [False] * 6, "translation_mm": [5.0, 1.0, 2.0, 4.5, 1.0, np.nan],
         "translation_pct": [14.0, 3.0, 6.0, 13.0, 2.0, np.nan],
         "angulation_deg": [8.0, 7.0, 9.0, 11.0, 6.0, np.nan]}
    )
    table = api.level_summary(segments)
    l45 = table.set_index("segment").loc["L4-L5"]
    assert (l45["measured"], l45["unstable"], l45["unstable_pct"]) == (4, 2, 50.0)
    assert l45["translation_mm_median"] == 3.25
    assert table.set_index("segment").loc["L5-S1", "measured"] == 1
