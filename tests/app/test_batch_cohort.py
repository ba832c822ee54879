"""Batch cohort outputs: one row per study (studies.csv/parquet), plots and summary.html."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest

from app.batch import BatchOptions, SerialExecutor, read_parquet_rows, run_batch
from app.batch._cohort import cohort_figures, level_table
from app.batch._studies import STUDY_SCHEMA, study_rows
from tests.app._cohort_archive import CohortArchive, build_cohort

SEGMENTS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> CohortArchive:
    return build_cohort(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="module")
def run(cohort: CohortArchive, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cohort_out")
    summary = run_batch(
        BatchOptions(cohort.input_dir, out, landmarks_dir=cohort.landmarks_dir, quiet=True),
        executor=SerialExecutor(),
    )
    assert summary.exit_status == 0 and summary.measured == len(cohort.studies)
    return out


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _expected_verdicts(truth: dict, calibration: str) -> dict[str, dict[str, float]]:
    """Per segment the true motion and its ratio to the default thresholds (4 mm / 10°).

    Detector spacing measures at the detector: its millimetres are the patient's
    times the magnification (what the tables must show, with a warning).
    """
    scale = truth["flexion"]["magnification"] if calibration == "detector" else 1.0
    out = {}
    for segment in SEGMENTS:
        m = truth["motion"][segment]
        out[segment] = {
            "dt_mm": m["dt_mm"] * scale,
            "dtheta_deg": m["dtheta_deg"],
            "ratio": max(abs(m["dt_mm"] * scale) / 4.0, abs(m["dtheta_deg"]) / 10.0),
        }
    return out


def test_one_row_per_study_with_levels_worst_segment_and_dates(cohort: CohortArchive, run: Path):
    studies = {r["study_instance_uid"]: r for r in _csv(run / "studies.csv")}
    assert list(_csv(run / "studies.csv")[0]) == [name for name, _ in STUDY_SCHEMA]
    assert set(studies) == {s.study_instance_uid for s in cohort.studies}
    results = _csv(run / "results.csv")
    for study in cohort.studies:
        row = studies[study.study_instance_uid]
        assert row["patient_id"] == study.patient_id
        day = study.study_date
        assert row["study_date"] == f"{day[:4]}-{day[4:6]}-{day[6:]}"
        assert row["acquisition_date"] == row["study_date"]
        # 2024-01-05 -> 2024-04-15: 26 + 29 + 31 + 15 = 101 days
        assert row["days_since_first_study"] == ("0" if day == "20240105" else "101")
        segment_rows = [r for r in results if r["study_instance_uid"] == study.study_instance_uid]
        assert {r["study_date"] for r in segment_rows} == {row["study_date"]}
        unstable = [r["segment"] for r in segment_rows if r["unstable"] == "true"]
        assert row["unstable_levels"] == ";".join(unstable)
        assert row["unstable"] == ("true" if unstable else "false")
        assert int(row["unstable_count"]) == len(unstable)
        assert set(study.unstable) <= set(unstable)  # the phantom's unstable level is found
        expected = _expected_verdicts(study.truth, study.calibration)
        calibrated = study.calibration != "uncalibrated"
        # worst segment from the true motion: largest |value| / threshold (mm only when calibrated)
        ratios = {
            s: (v["ratio"] if calibrated else abs(v["dtheta_deg"]) / 10.0)
            for s, v in expected.items()
        }
        worst = max(ratios, key=ratios.get)
        assert row["worst_segment"] == worst
        assert float(row["worst_threshold_ratio"]) == pytest.approx(ratios[worst], abs=0.02)
        assert float(row["worst_angulation_deg"]) == pytest.approx(expected[worst]["dtheta_deg"], abs=0.2)
        if calibrated:
            assert float(row["max_abs_translation_mm"]) == pytest.approx(
                max(abs(v["dt_mm"]) for v in expected.values()), abs=0.1
            )
        else:
            assert row["max_abs_translation_mm"] == "" and row["worst_translation_mm"] == ""
    # Parquet holds the same table with its types.
    parquet = {r["study_instance_uid"]: r for r in read_parquet_rows(run / "studies.parquet")}
    for uid, row in studies.items():
        assert parquet[uid]["days_since_first_study"] == int(row["days_since_first_study"])
        assert parquet[uid]["unstable"] is (row["unstable"] == "true")
        assert parquet[uid]["worst_segment"] == row["worst_segment"]


def test_anonymized_run_keeps_the_interval_not_the_dates(cohort: CohortArchive, tmp_path: Path):
    out = tmp_path / "anon"
    run_batch(
        BatchOptions(cohort.input_dir, out, landmarks_dir=cohort.landmarks_dir, quiet=True,
                     anonymize=True, plots=False),
        executor=SerialExecutor(),
    )
    studies = _csv(out / "studies.csv")
    assert len(studies) == len(cohort.studies)
    assert {r["study_date"] for r in studies} == {""}
    assert {r["acquisition_date"] for r in studies} == {""}
    assert sorted(r["days_since_first_study"] for r in studies) == ["0"] * 3 + ["101"] * 3
    text = (out / "studies.csv").read_text() + (out / "results.csv").read_text()
    for date in ("2024-01-05", "2024-04-15", "20240105", "20240415", "COH0"):
        assert date not in text
    assert not (out / "summary.html").exists()


def test_worst_segment_rules_on_hand_made_rows():
    def seg(segment, t, pct, a, unstable=False, measured=True):
        return {"study_instance_uid": "1.2", "flexion_sop_instance_uid": "9", "patient_id": "P",
                "segment": segment, "measured": measured, "unstable": unstable,
                "borderline": False, "translation_mm": t, "translation_pct": pct,
                "angulation_deg": a, "study_date": "2024-03-01"}

    rows = [seg("L3-L4", 3.9, 20.0, -9.0), seg("L4-L5", -4.2, 12.0, 2.0, True),
            seg("L5-S1", None, None, None, measured=False)]
    (default,) = study_rows(rows, "default")
    # default: -4.2 mm / 4 = 1.05 beats 3.9 / 4 and 9 / 10; % has no threshold
    assert (default["worst_segment"], default["worst_criterion"]) == ("L4-L5", "translation_mm")
    assert default["worst_threshold_ratio"] == pytest.approx(1.05)
    assert default["segments"] == 3 and default["segments_measured"] == 2
    assert default["max_abs_angulation_deg"] == 9.0 and default["days_since_first_study"] == 0
    (wp,) = study_rows(rows, "white-panjabi")
    # white-panjabi: 20 % / 15 % = 1.33 is the largest ratio
    assert (wp["worst_segment"], wp["worst_criterion"]) == ("L3-L4", "translation_pct")
    assert wp["worst_threshold_ratio"] == pytest.approx(20 / 15)


def test_cohort_plots_show_every_measured_value_and_summary_is_self_contained(
    cohort: CohortArchive, run: Path
):
    import pandas as pd

    for name in ("cohort_distributions", "cohort_prevalence", "cohort_calibration"):
        data = (run / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000
    html = (run / "summary.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 3
    assert not re.search(r'src="(?!data:)', html) and "<link" not in html
    results = pd.read_csv(run / "results.csv")
    studies = pd.read_csv(run / "studies.csv")
    figures = cohort_figures(results, studies, "default")
    axes = figures["cohort_distributions"].axes
    for ax, key in zip(axes, ("translation_mm", "translation_pct", "angulation_deg"), strict=True):
        points = [c for c in ax.collections if not hasattr(c, "get_segments")]  # not the hlines
        plotted = sum(len(c.get_offsets()) for c in points)
        assert plotted == results[key].notna().sum()
    # the default thresholds are drawn at ±4 mm and ±10° per level, none for %
    drawn = {
        key: sorted({round(float(y), 6) for c in ax.collections if hasattr(c, "get_segments")
                     for seg in c.get_segments() for y in np.asarray(seg)[:, 1]})
        for ax, key in zip(axes, ("translation_mm", "translation_pct", "angulation_deg"), strict=True)
    }
    assert drawn["translation_mm"] == [-4.0, 4.0]
    assert drawn["angulation_deg"] == [-10.0, 10.0]
    assert drawn["translation_pct"] == []
    table = level_table(results, "default")
    l45 = table[table["segment"] == "L4-L5"].iloc[0]
    assert l45["unstable"] == results[(results["segment"] == "L4-L5") & results["unstable"]].shape[0]
    assert l45["measured"] == len(cohort.studies)
    assert l45["unstable_ci95_low"] < l45["unstable_pct"] < l45["unstable_ci95_high"]
    assert f"{l45['unstable']} ({l45['unstable_pct']:.1f} %" in html
    # the calibration plot counts every study's two films
    bars = figures["cohort_calibration"].axes[0].patches
    assert sum(b.get_width() for b in bars) == 2 * len(cohort.studies)
    assert math.isclose(sum(b.get_width() for b in bars[: len(bars) // 2]), len(cohort.studies))
