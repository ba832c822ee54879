"""``lumbar-instability measure``: table, JSON, criteria, bad files (exit 2, no traceback)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from app.cli import main
from measure import ERROR_MODEL, PlacementMethod


def _study(flex_shift_px=20.0, spacing=(0.2, 0.2), **film_keys):
    """L1-S1 stacked bodies 200 px deep and 175 px high (40 x 35 mm at 0.2 mm, adult-sized:
    smaller bodies would be flagged as an implausible spacing), 75 px discs; L1-L4 shifted on
    flexion at L4-L5.

    At spacing 0.2 mm a 20 px shift is 4.0 mm (not > 4: within), 25 px is 5.0 mm (unstable);
    as % of the 200 px (40 mm) depth: 10 % and 12.5 %.
    """
    levels = ["L1", "L2", "L3", "L4", "L5", "S1"]

    def film(shift):
        marks = {}
        for k, level in enumerate(levels):
            dx = shift if k < 4 else 0.0
            y = 250.0 * k
            marks[level] = {"AS": [200 + dx, y], "PS": [dx, y]}
            if level != "S1":
                marks[level].update(PI=[dx, y + 175], AI=[200 + dx, y + 175])
        return {"pixel_spacing_mm": None if spacing is None else list(spacing), "landmarks": marks, **film_keys}

    return {"flexion": film(flex_shift_px), "extension": film(0.0)}


def _run(tmp_path, doc, *args, capsys):
    path = tmp_path / "study.json"
    path.write_text(json.dumps(doc))
    status = main(["measure", str(path), *args])
    out, err = capsys.readouterr()
    return status, out, err, path


def test_json_output(tmp_path, capsys):
    status, out, err, _ = _run(tmp_path, _study(25.0, calibration_source="calibrated"), "--json", capsys=capsys)
    assert status == 0 and err == ""
    doc = json.loads(out)
    seg = {s["segment"]: s for s in doc["segments"]}
    assert list(seg) == ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    assert seg["L4-L5"]["translation_mm"] == pytest.approx(5.0, abs=1e-12)
    assert seg["L4-L5"]["translation_pct"] == pytest.approx(12.5, abs=1e-12)
    assert seg["L4-L5"]["angulation_deg"] == pytest.approx(0.0, abs=1e-12)
    assert seg["L4-L5"]["unstable"] is True and seg["L4-L5"]["criterion"] == "translation"
    assert seg["L3-L4"]["unstable"] is False and seg["L3-L4"]["translation_mm"] == pytest.approx(0.0, abs=1e-12)
    assert doc["criteria"]["name"] == "default"
    assert doc["calibration"]["flexion"]["source"] == "calibrated"
    # manual placement by default: 95 % interval around 5 mm
    lo, hi = seg["L4-L5"]["translation_mm_ci95"]
    assert lo < 5.0 < hi
    assert "not a diagnosis" in doc["disclaimer"]


def test_exactly_four_mm_is_not_unstable(tmp_path, capsys):
    status, out, _, _ = _run(tmp_path, _study(20.0), "--json", capsys=capsys)
    seg = json.loads(out)["segments"][3]
    assert status == 0 and seg["translation_mm"] == pytest.approx(4.0, abs=1e-12)
    assert seg["unstable"] is False and seg["borderline"] is True  # 4 mm sits inside its interval


def test_uncalibrated_gives_null_mm_and_warning(tmp_path, capsys):
    status, out, _, _ = _run(tmp_path, _study(25.0, spacing=None), "--json", capsys=capsys)
    doc = json.loads(out)
    seg = doc["segments"][3]
    assert status == 0 and seg["translation_mm"] is None and seg["flexion_translation_mm"] is None
    assert seg["translation_pct"] == pytest.approx(12.5)
    assert seg["translation_assessed"] is False and seg["unstable"] is False
    assert any("no usable pixel spacing" in w for w in doc["warnings"])
    # mm SDs are converted taking the median depth (200 px here) as 40 mm: the intervals of
    # % and angle are those of the same study at 0.2 mm/px, and the output says so
    _, out_1mm, _, _ = _run(tmp_path, _study(25.0, spacing=(0.2, 0.2)), "--json", capsys=capsys)
    at_1mm = json.loads(out_1mm)["segments"][3]
    assert seg["translation_pct_ci95"] == pytest.approx(at_1mm["translation_pct_ci95"], rel=1e-12)
    assert seg["angulation_deg_ci95"] == pytest.approx(at_1mm["angulation_deg_ci95"], rel=1e-12)
    assert seg["translation_mm_ci95"] is None
    assert any("median endplate depth as 40 mm" in w for w in doc["warnings"])
    # white-panjabi has a % criterion, which works without calibration
    _, out, _, _ = _run(tmp_path, _study(60.0, spacing=None), "--json", "--criteria", "white-panjabi", capsys=capsys)
    seg = json.loads(out)["segments"][3]
    assert seg["translation_assessed"] is True and seg["unstable"] is True


def test_table_output(tmp_path, capsys):
    status, out, _, _ = _run(tmp_path, _study(25.0), capsys=capsys)
    assert status == 0
    line = next(row for row in out.splitlines() if row.startswith("L4-L5"))
    assert "+5.0 ±" in line and "+12.5 ±" in line and "translation" in line
    # manual corners (0.6 mm), PI_U 75 px above the 200 px endplate: SD(dt) =
    # 0.6 sqrt(2 (2 + 2 (15/40)²)) = 1.28 mm, 95 % half-width 2.5 mm: 5.0 mm straddles 4 mm
    assert "+5.0 ±2.5 mm" in line and line.endswith("BORDERLINE (ABOVE threshold)")
    # angle uncertainty of 40 mm deep bodies: 1.96 x 0.6 sqrt(8) / 40 rad = 4.8 degrees
    first = next(row for row in out.splitlines() if row.startswith("L1-L2"))
    assert "+0.0 ±2.5 mm" in first and "+0.0 ±4.8°" in first and first.endswith("within thresholds")
    assert "-0.0" not in out  # a flat segment's -0.0 is printed as +0.0
    assert "Translation (detector)" in out  # the calibration source next to the mm column
    assert "spacing measured at the detector" in out  # unstated provenance -> detector warning
    assert "not a diagnosis" in out and "Dupuis et al." in out


def test_custom_criteria_file(tmp_path, capsys):
    crit = tmp_path / "clinic.json"
    crit.write_text(json.dumps({"name": "clinic", "translation_mm": {"*": 4.0, "L4-L5": 6.0}}))
    status, out, _, _ = _run(tmp_path, _study(25.0), "--json", "--criteria", str(crit), capsys=capsys)
    doc = json.loads(out)
    assert status == 0 and doc["criteria"]["name"] == "clinic"
    assert doc["segments"][3]["unstable"] is False
    assert doc["segments"][3]["thresholds"]["translation_mm"] == 6.0


def test_depth_mismatch_and_different_spacing_warn(tmp_path, capsys):
    doc = _study(0.0)
    doc["extension"]["pixel_spacing_mm"] = [0.22, 0.22]
    _, out, _, _ = _run(tmp_path, doc, "--json", capsys=capsys)
    warnings = json.loads(out)["warnings"]
    assert any("different pixel spacing" in w for w in warnings)
    assert any("endplate depth differs by more than 5 %" in w and "L1 +10.0 %" in w for w in warnings)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["flexion"]["landmarks"]["L3"].update(PS=[1, "x"]), "key flexion.landmarks.L3.PS: expected [x, y] numbers"),
        (lambda d: d["extension"]["landmarks"]["L2"].pop("AI"), "key extension.landmarks.L2.AI: missing"),
        (lambda d: d["flexion"]["landmarks"]["L5"].update(AS=[0, 1000]), "cannot measure: flexion: degenerate endplate: L5 AS and PS coincide"),
    ],
)
def test_bad_file_one_line_exit_2(tmp_path, capsys, change, message):
    doc = _study()
    change(doc)
    status, out, err, path = _run(tmp_path, doc, capsys=capsys)
    assert status == 2 and out == ""
    assert err.strip() == f"lumbar-instability: {path}: {message}" or err.startswith(f"lumbar-instability: {path}: {message}")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_subprocess_no_traceback(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "app", "measure", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"lumbar-instability: {path}: not valid JSON")
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    unknown = subprocess.run(
        [sys.executable, "-m", "app", "measure", str(tmp_path / "x.json"), "--criteria", "lax"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2 and "neither a criteria preset" in unknown.stderr


def test_missing_level_and_one_uncalibrated_film(tmp_path, capsys):
    doc = _study(25.0)
    del doc["extension"]["landmarks"]["L2"]  # L2 not visible on extension
    doc["flexion"]["pixel_spacing_mm"] = None
    status, out, _, _ = _run(tmp_path, doc, "--json", capsys=capsys)
    seg = {s["segment"]: s for s in json.loads(out)["segments"]}
    assert status == 0
    assert seg["L1-L2"]["measured"] is False and seg["L1-L2"]["criterion"] is None
    assert seg["L2-L3"]["translation_pct"] is None
    # the flexion film alone still has its own values
    assert seg["L1-L2"]["flexion_angle_deg"] == pytest.approx(0.0, abs=1e-12)
    assert seg["L4-L5"]["translation_mm"] is None and seg["L4-L5"]["translation_pct"] == pytest.approx(12.5)
    _, table, _, _ = _run(tmp_path, doc, capsys=capsys)
    line = next(row for row in table.splitlines() if row.startswith("L4-L5"))
    assert "+12.5 %" in line and "+0.0 %" in line and "mm" not in line  # per-film values in %
    assert "not measured" in table and "no landmarks on one of the films" in table


def _text(doc) -> str:
    return json.dumps(doc)


def _with_ps(value):
    doc = _study()
    doc["flexion"]["landmarks"]["L3"]["PS"] = value
    return doc


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "not valid JSON: Expecting value at line 1 column 1"),
        (_text(_study()).replace("[0.2, 0.2]", "[NaN, 0.2]", 1), "key flexion.pixel_spacing_mm[0]: NaN is not allowed (numbers must be finite)"),
        ("[1, 2]", "key (top level): expected an object with flexion and extension"),
        ("[" * 100_000 + "]" * 100_000, "JSON nested more than 64 levels deep: not a file of this tool"),
        (_text({"flexion": _study()["flexion"]}), "key extension: missing"),
        (_text(_study(spacing=(0, 0))), "key flexion.pixel_spacing_mm: expected [row, column] positive numbers"),
        (_text(_study(spacing=(-0.2, 0.2))), "key flexion.pixel_spacing_mm: expected [row, column] positive numbers"),
        (_text(_study(spacing=("0.000", "0.000"))), 'key flexion.pixel_spacing_mm: expected [row, column] positive numbers in mm or null, got ["0.000", "0.000"]'),
        (_text(_with_ps(["20", "100"])), 'key flexion.landmarks.L3.PS: expected [x, y] numbers, got ["20", "100"]'),
        (_text(_with_ps([1e200, 1e200])), "key flexion.landmarks.L3.PS: [x, y] pixels must lie within ±1e+06, got [1e+200, 1e+200]"),
        (_text(_with_ps([10**400, 0])), "key flexion.landmarks.L3.PS[0]: an integer of 401 digits is not allowed"),  # no OverflowError
        (_text(_study(spacing=(10**400, 0.2))), "key flexion.pixel_spacing_mm[0]: an integer of 401 digits"),
    ],
)
def test_broken_files_one_line_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "study.json"
    path.write_text(content)
    status = main(["measure", str(path)])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.startswith(f"lumbar-instability: {path}: {message}"), err
    assert len(err.strip().splitlines()) == 1


def test_criteria_file_with_a_huge_integer_exit_2(tmp_path, capsys):
    crit = tmp_path / "clinic.json"
    crit.write_text('{"translation_mm": ' + "1" + "0" * 400 + "}")
    status, out, err, _ = _run(tmp_path, _study(), "--criteria", str(crit), capsys=capsys)
    assert status == 2 and out == ""
    assert err.startswith(f"lumbar-instability: {crit}: key translation_mm: an integer of 401 digits is not allowed")


def test_directory_and_missing_path_exit_2(tmp_path, capsys):
    assert main(["measure", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"lumbar-instability: {tmp_path}: is a directory, expected a JSON file\n"
    assert main(["measure", str(tmp_path / "absent.json")]) == 2
    assert capsys.readouterr().err == f"lumbar-instability: {tmp_path / 'absent.json'}: no such file\n"


def test_each_film_keeps_its_own_landmark_uncertainty(tmp_path, capsys):
    """Tracked corners on extension, manual on flexion: the interval of the flat segment
    is 1.96 sqrt(var_t(s_manual) + var_tracked), var_t(s) = s² (2 + 2 (h/d)²), where the tracked
    film follows its measured error model (measure.ERROR_MODEL): corner SD k s_tracked, plus a
    shift σs of each body (2 σs²) and a rotation σr about each body's centroid, whose lever on
    t is PI_U's height over U's centroid (87.5 px) and over L's (162.5 px)."""
    doc = _study(25.0, calibration_source="calibrated")
    doc["extension"]["placement"] = {
        level: {c: "tracked" for c in corners} for level, corners in doc["extension"]["landmarks"].items()
    }
    _, out, _, _ = _run(tmp_path, doc, "--json", capsys=capsys)
    lo, hi = json.loads(out)["segments"][3]["translation_mm_ci95"]
    r = 75 / 200  # PI_U 75 px above L's 200 px endplate
    s_manual = PlacementMethod.MANUAL.default_sd_mm
    s_tracked = PlacementMethod.TRACKED.default_sd_mm
    assert s_tracked < s_manual  # the two films really carry different uncertainties
    model = ERROR_MODEL[PlacementMethod.TRACKED]
    k = model.corner_factor
    shift = math.hypot(model.shift_sd_mm, model.shift_factor * s_tracked)  # no SD stored: the default
    rot = math.radians(math.hypot(model.rotation_sd_deg, model.rotation_deg_per_mm * s_tracked))
    var_tracked = (k * s_tracked) ** 2 * (2 + 2 * r * r) + 2 * shift**2 + rot**2 * ((87.5**2 + 162.5**2) * 0.2**2)
    expected = 1.959963984540054 * math.sqrt(s_manual**2 * (2 + 2 * r * r) + var_tracked)
    assert (hi - lo) / 2 == pytest.approx(expected, rel=1e-9)
