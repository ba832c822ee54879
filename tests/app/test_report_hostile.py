"""``report`` on malformed sessions and odd films: a one-line error naming the
file and the key (exit 2), never an internal error (exit 3), and image paths
confined to the session's folder and ``--images``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.cli import main
from tests.app import _report_fixtures as fx


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, dict]:
    path = fx.make_study(tmp_path_factory.mktemp("hostile") / "s", measured=True)
    return path, json.loads(path.read_text())


def _set(*keys, value):
    def edit(doc):
        for key in keys[:-1]:
            doc = doc[key]
        doc[keys[-1]] = value

    return edit


EDITS = [
    (_set("flexion", "pixel_spacing_mm", value="ab"),
     'key flexion.pixel_spacing_mm: expected [row, column] positive numbers in mm or null, got "ab"'),
    (_set("flexion", "pixel_spacing_mm", value=[0.2]),
     "key flexion.pixel_spacing_mm: expected [row, column] positive numbers in mm or null, got [0.2]"),
    (_set("extension", "pixel_spacing_mm", value=[-1, -1]),
     "key extension.pixel_spacing_mm: expected [row, column] positive numbers in mm or null, got [-1, -1]"),
    (_set("flexion", "pixel_spacing_mm", value=[1e308, 1e308]),
     "key flexion.pixel_spacing_mm: expected [row, column] positive numbers in mm or null, got "
     "[1e+308, 1e+308]: a pixel spacing lies between 0.001 and 10 mm"),
    (_set("flexion", "image", value="flexion.dcm"),
     'key flexion.image: expected an object with path and UIDs, got "flexion.dcm"'),
    (_set("flexion", "image", "path", value=5), "key flexion.image.path: expected a text"),
    (_set("levels", value=["L1", "L2", "L3", "l3", "L4", "L5", "S1"]),
     'key levels: "L3" and "l3" name the same level'),
    (_set("flexion", "dicom_calibration", value="x"), 'key flexion.dicom_calibration: expected an object, got "x"'),
    (_set("flexion", "manual_calibration", value={"p0": [0, 0], "p1": [0, 0.5], "length_mm": 5}),
     "key flexion.manual_calibration: the line is shorter than one pixel"),
    (_set("flexion", "manual_calibration", value={"p0": [0, 0], "p1": [0, 100], "length_mm": 1e-300}),
     "key flexion.manual_calibration.length_mm: expected a number of mm from 0.1 to 10000, got 1e-300"),
    (_set("results", value="x"), "key results.segments: expected a list of objects"),
    (_set("results", "segments", value=[{"segment": "L1-L2", "translation_mm": "x"}]),
     'key results.segments[0].translation_mm: expected a number or null, got "x"'),
    (_set("results", "segments", value=[{"segment": "L1-L2", "angulation_deg_ci95": [1]}]),
     "key results.segments[0].angulation_deg_ci95: expected [low, high] numbers or null, got [1]"),
    (_set("results", "segments", value=[{"segment": "L1-L2", "unstable": "yes"}]),
     'key results.segments[0].unstable: expected true, false or null, got "yes"'),
    (_set("criteria", value={"translation_mm": "x"}), "key criteria: translation_mm: expected a number"),
    (_set("criteria", value=5), "key criteria: expected a preset name or an object, got 5"),
    (_set("flexion", "placement", value={"L1": {"AS": "guess"}}),
     'key flexion.placement.L1.AS: expected one of manual, refined, tracked, detected, edited, got "guess"'),
    (_set("selected_segment", value=[1]), "key selected_segment: expected a segment label or null, got [1]"),
    (_set("format_version", value=99),
     "key format_version: lumbar-instability-session version 99 is newer than this software reads"),
    (_set("format", value="lumbar-instability-sessions"),
     'key format: "lumbar-instability-sessions" is not a format this tool reads'),
]
TEXT_EDITS = [
    (lambda t: t.replace('"AS": [', '"AS": [NaN, ', 1),
     "key flexion.landmarks.L1.AS[0]: NaN is not allowed (numbers must be finite)"),
    (lambda t: t.replace('"L4": {', '"L4": {"AS": [1, 2]}, "L4": {', 1),
     "key flexion.landmarks.L4: given twice (a key may appear only once)"),
    (lambda t: t[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
     "JSON nested more than 64 levels deep"),
    (lambda t: t.replace("[", "[1e999, ", 1), "key levels[0]: 1e999 is not allowed"),
]


def _run(capsys, *args) -> tuple[int, str, str]:
    status = main(["report", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(("edit", "message"), EDITS + TEXT_EDITS)
def test_malformed_session_is_one_line_naming_file_and_key(base, tmp_path, capsys, edit, message):
    path, doc = base
    bad = path.parent / f"bad-{tmp_path.name}.json"
    if (edit, message) in TEXT_EDITS:
        bad.write_text(edit(json.dumps(doc)))
    else:
        changed = copy.deepcopy(doc)
        edit(changed)
        bad.write_text(json.dumps(changed))
    for flag, name in (("--sr", "r.dcm"), ("--pdf", "r.pdf")):
        status, out, err = _run(capsys, bad, flag, tmp_path / name)
        assert status == 2 and out == ""
        assert err.startswith(f"lumbar-instability: {bad}: {message}"), err
        assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target", ["../../../../../../../../etc/passwd", "/etc/hostname"])
def test_image_paths_outside_the_session_folder_are_not_opened(base, tmp_path, capsys, target):
    path, doc = base
    changed = copy.deepcopy(doc)
    changed["flexion"]["image"]["path"] = target
    bad = path.parent / f"outside-{tmp_path.name}.json"
    bad.write_text(json.dumps(changed))
    status, _, err = _run(capsys, bad, "--csv", tmp_path / "r.csv")
    assert status == 0
    assert err == (f'warning: The flexion image path "{target}" points outside the session\'s folder: '
                   "not opened (open the film explicitly, or give its folder).\n")
    status, _, err = _run(capsys, bad, "--sr", tmp_path / "r.dcm")
    assert status == 2 and "the flexion image was not found" in err
    assert not (tmp_path / "r.dcm").exists()


def test_films_in_a_sibling_folder_open_only_as_the_saved_films(base, tmp_path, capsys):
    """Films outside the session's folder open when their header carries the saved SOP
    Instance UID (a session saved away from its films); swapped paths (each entry naming
    the other film) need --images or --trust-image-paths."""
    path, doc = base
    films = tmp_path / "films"
    films.mkdir()
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    changed = copy.deepcopy(doc)
    for view in ("flexion", "extension"):
        (films / f"{view}.dcm").write_bytes((path.parent / f"{view}.dcm").read_bytes())
        changed[view]["image"]["path"] = f"../films/{view}.dcm"
    session = sessions / "s.json"
    session.write_text(json.dumps(changed))
    status, _, err = _run(capsys, session, "--sr", tmp_path / "a.dcm")
    assert status == 0 and err == "", err
    assert pydicom.dcmread(tmp_path / "a.dcm").PatientID == "PHANTOM-001"

    swapped = copy.deepcopy(changed)
    swapped["flexion"]["image"]["path"] = "../films/extension.dcm"
    swapped["extension"]["image"]["path"] = "../films/flexion.dcm"
    session.write_text(json.dumps(swapped))
    status, _, err = _run(capsys, session, "--sr", tmp_path / "b.dcm")
    assert status == 2 and "the flexion image was not found" in err
    assert not (tmp_path / "b.dcm").exists()
    for extra in (["--images", films], ["--trust-image-paths"]):
        session.write_text(json.dumps(changed))
        status, _, err = _run(capsys, session, "--sr", tmp_path / "c.dcm", *extra)
        assert status == 0 and err == "", err
        (tmp_path / "c.dcm").unlink()


@pytest.mark.parametrize("shape", [(560, 1), (1, 440), (1, 1)])
def test_one_pixel_wide_films_report_without_internal_error(tmp_path, capsys, shape):
    session = fx.make_study(tmp_path / "s", measured=True)
    doc = json.loads(session.read_text())
    for view in ("flexion", "extension"):
        film = session.parent / f"{view}.dcm"
        ds = pydicom.dcmread(film)
        ds.Rows, ds.Columns = shape
        ds.PixelData = np.full(shape, 600, np.uint16).tobytes()
        ds.save_as(film)
        doc[view]["image"]["sha256"] = fx.sha256(film)
    session.write_text(json.dumps(doc))
    out = tmp_path / "out"
    status, _, err = _run(capsys, session, "--pdf", out / "r.pdf", "--sr", out / "r.dcm", "--csv",
                          out / "r.csv", "--json", out / "r.json", "--png", out / "r.png")
    assert status == 0, err
    assert (out / "r.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "r.png").read_bytes().startswith(b"\x89PNG")
