"""CSV / JSON tables and the annotated films (PNG)."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from app.palette import ENDPLATE_RGB
from app.report_data import load_report
from app.report_tables import (
    PLACEMENT_COLOURS,
    annotate_film,
    films_panel,
    write_csv,
    write_json,
    write_png,
)
from tests.app import _report_fixtures as fx


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return load_report(fx.make_study(tmp_path_factory.mktemp("tables") / "s"))


def test_csv_values_are_exact_and_flat(report, tmp_path):
    path = write_csv(report, tmp_path / "t.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = fx.result_rows()
    assert [r["segment"] for r in rows] == ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    for got, want in zip(rows, expected, strict=True):
        assert float(got["translation_mm"]) == want["translation_mm"]
        assert float(got["angulation_deg"]) == want["angulation_deg"]
        assert float(got["flexion_angle_deg"]) == want["flexion_angle_deg"]  # every digit
        assert float(got["translation_mm_ci95_low"]) == want["translation_mm_ci95"][0]
        assert float(got["translation_mm_ci95_high"]) == want["translation_mm_ci95"][1]
        assert float(got["threshold_angulation_deg"]) == 10.0
        assert got["threshold_translation_pct"] == ""
        assert got["unstable"] == ("true" if want["unstable"] else "false")
        assert got["criteria"] == "default"
        assert got["flexion_calibration_source"] == "detector"
        assert got["flexion_image_check"] == "ok"
        assert got["extension_image_check"] == "ok"


def test_csv_uncalibrated_has_empty_mm(tmp_path):
    report = load_report(fx.make_study(tmp_path / "s", uncalibrated_view="flexion"))
    with open(write_csv(report, tmp_path / "t.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["translation_mm"] for r in rows} == {""}
    assert {r["flexion_calibration_source"] for r in rows} == {"uncalibrated"}
    assert float(rows[2]["translation_pct"]) == 15.2


def test_json_table(report, tmp_path):
    doc = json.loads(write_json(report, tmp_path / "t.json").read_text())
    assert doc["format"] == "lumbar-instability-report-table"
    assert doc["segments"] == fx.table_rows()
    assert doc["criteria"] == "default"
    flex = doc["films"]["flexion"]
    assert flex["calibration_source"] == "detector"
    assert flex["pixel_spacing_mm"] == [0.2, 0.2]
    assert "overstate" in flex["calibration_warning"]
    assert flex["sop_instance_uid"] == "1.2.826.0.1.3680043.10.1234.3.1"
    assert doc["films"]["extension"]["placement"] == {
        "manual": 5, "refined": 5, "tracked": 4, "detected": 4, "edited": 4}


def test_json_writes_nan_as_null(report, tmp_path):
    report.rows[0]["depth_ratio"] = float("nan")
    try:
        doc = json.loads(write_json(report, tmp_path / "t.json").read_text())
    finally:
        del report.rows[0]["depth_ratio"]
    assert doc["segments"][0]["depth_ratio"] is None


def test_annotate_film_draws_on_the_corners_after_downsampling():
    image = np.zeros((1000, 800), np.uint8)
    landmarks = np.full((2, 4, 2), np.nan)
    landmarks[0] = [[300, 200], [500, 210], [495, 400], [295, 390]]
    landmarks[1, :2] = [[310, 600], [510, 620]]
    placement = {"L5": {"AS": "tracked", "PS": "edited", "PI": "manual", "AI": "manual"},
                 "S1": {"AS": "detected", "PS": "refined"}}
    rgb = annotate_film(image, landmarks, ["L5", "S1"], placement=placement, max_side=500)
    assert rgb.shape == (500, 400, 3)
    scale = 0.5

    def at(x, y):
        return rgb[round((y + 0.5) * scale - 0.5), round((x + 0.5) * scale - 0.5)]

    assert tuple(at(300, 200)) == PLACEMENT_COLOURS["tracked"]
    assert tuple(at(500, 210)) == PLACEMENT_COLOURS["edited"]
    assert tuple(at(310, 600)) == PLACEMENT_COLOURS["detected"]
    assert tuple(at(510, 620)) == PLACEMENT_COLOURS["refined"]
    # both endplates (AS-PS, PI-AI) in the viewer's colour, at the middle of each line
    for x, y in ((400, 205), (395, 395)):  # anti-aliased: the line's hue, not its exact value
        r, g, b = (int(v) for v in at(x, y))
        assert r < 40 and g > 150 and b > 180, (r, g, b)
        assert abs(g / b - ENDPLATE_RGB[1] / ENDPLATE_RGB[2]) < 0.06
    # the label is drawn on the anterior side (small x here), not on the posterior side
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 80)
    _, cols = np.nonzero(yellow[100:200])
    assert cols.size > 0 and cols.max() < 150 * 1.0  # left of AS (x = 150 after scaling)
    # nothing drawn where there is no landmark
    assert rgb[450:, 300:].max() == 0


def test_annotate_film_rejects_colour_input():
    with pytest.raises(ValueError, match="image"):
        annotate_film(np.zeros((10, 10, 3), np.uint8), np.zeros((1, 4, 2)), ["L1"])


def test_png_is_the_panel_of_both_films(report, tmp_path):
    path = write_png(report, tmp_path / "f.png", max_side=400)
    png = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(png, films_panel(report, max_side=400))
    assert png.shape[1] > 2 * 0.9 * 400 * fx.COLS / fx.ROWS  # two films side by side


def test_png_without_images_keeps_last_good_file(tmp_path):
    session_path = fx.make_study(tmp_path / "s")
    good = write_png(load_report(session_path), tmp_path / "f.png", max_side=200)
    before = good.read_bytes()
    (session_path.parent / "flexion.dcm").unlink()
    (session_path.parent / "extension.dcm").unlink()
    with pytest.raises(ValueError, match="no film image"):
        write_png(load_report(session_path), good)
    assert good.read_bytes() == before


def test_stale_mm_of_an_uncalibrated_film_never_exported(tmp_path):
    session_path = fx.make_stale_uncalibrated_study(
        tmp_path / "s", translation_mm_note="uncalibrated film: no mm value"
    )
    report = load_report(session_path)
    with open(write_csv(report, tmp_path / "t.csv"), newline="") as handle:
        row = list(csv.DictReader(handle))[2]
    assert row["translation_mm"] == row["extension_translation_mm"] == ""
    assert row["translation_mm_ci95_low"] == ""
    assert float(row["flexion_translation_mm"]) == 1.25  # the flexion film is calibrated
    assert row["translation_mm_note"] == "uncalibrated film: no mm value"
    assert float(row["threshold_translation_mm"]) == 4.0  # a criterion, not a measurement
    doc = json.loads(write_json(report, tmp_path / "t.json").read_text())
    assert doc["segments"][2]["translation_mm"] is None
    assert doc["segments"][2]["translation_mm_ci95"] is None
