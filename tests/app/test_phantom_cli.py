"""``lumbar-instability phantom``: writes the study the Python API makes, refuses bad options."""

from __future__ import annotations

import json

import pydicom

from app.cli import main
from app.phantom import make_study
from tests.app._pixels import assert_same_render


def test_cli_writes_the_study_of_the_api(tmp_path, capsys):
    out = tmp_path / "study"
    status = main([
        "phantom", str(out), "--seed", "3", "--scale", "0.1", "--unstable", "L4-L5",
        "--compression", "rle", "--photometric", "MONOCHROME1", "--calibration", "detector",
        "--facing", "right", "--rotation", "10", "--magnification-change", "1.05", "--bits", "14",
    ])  # fmt: skip
    assert status == 0
    expected = make_study(
        3, scale=0.1, unstable=("L4-L5",), compression="rle", photometric="MONOCHROME1",
        calibration="detector", facing="right", rotation_deg=10.0, magnification_change=1.05,
        bits_stored=14,
    )  # fmt: skip
    truth = json.loads((out / "truth.json").read_text())
    assert truth == json.loads(json.dumps(expected.truth()))
    assert truth["generator"]["unstable"] == ["L4-L5"] and truth["generator"]["seed"] == 3
    for film in expected.films:
        ds = pydicom.dcmread(out / f"{film.view}.dcm")
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
        assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.BitsStored == 14
        assert "EstimatedRadiographicMagnificationFactor" not in ds
        assert_same_render(ds.pixel_array, film.pixels, label=film.view)
    printed = capsys.readouterr().out
    l45 = expected.motion["L4-L5"]
    assert f"L4-L5   {l45['dtheta_deg']:6.2f}  {l45['dt_mm']:6.2f}" in printed


def test_cli_refuses_bad_options_in_one_line(tmp_path, capsys):
    status = main(["phantom", str(tmp_path / "x"), "--seed", "1", "--magnification", "3"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err == "lumbar-instability: phantom: magnification: must be between 1 and 2, got 3.0"
    assert not (tmp_path / "x").exists()


def test_cli_reports_an_unwritable_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    status = main(["phantom", str(blocker), "--seed", "1", "--scale", "0.1"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.startswith(f"lumbar-instability: {blocker}: cannot write the study") and "\n" not in err
