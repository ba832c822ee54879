"""The reader's rulers and angles in the reports: listed with their values in the PDF,
drawn on the films of the PDF and the PNG, carried by the SR."""

from __future__ import annotations

import json
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from app.report_data import load_report
from app.report_pdf import write_pdf
from app.report_sr import read_sr, write_sr
from app.report_tables import films_panel
from tests.app import _report_fixtures as fx

pytestmark = pytest.mark.skipif(not (fx.SAMPLE_DIR / "truth.json").exists(), reason="sample study absent")

# the sample's films: ImagerPixelSpacing 0.25 mm / magnification 1.2 (read from the DICOM header)
SPACING_MM = 0.25 / 1.2
RULER = [[300.0, 400.0], [600.0, 800.0]]  # 500 px
ANGLE = [[700.0, 300.0], [500.0, 300.0], [500.0, 100.0]]  # 90 degrees at (500, 300)


@pytest.fixture(scope="module")
def session_path(tmp_path_factory):
    path = fx.sample_session(tmp_path_factory.mktemp("ann") / "study")
    doc = json.loads(path.read_text())
    doc["annotations"] = [
        {"kind": "ruler", "film": "flexion", "points_px": RULER},
        {"kind": "angle", "film": "extension", "points_px": ANGLE},
    ]
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_pdf_lists_each_ruler_and_angle_with_its_value(session_path, tmp_path):
    pdf = write_pdf(load_report(session_path), tmp_path / "r.pdf")
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True,
                                   timeout=60).stdout.split())
    length = 500 * SPACING_MM  # 104.17 mm
    assert f"R1 flexion {length:.1f} mm (magnification-corrected)" in text
    assert "A1 extension 90.0°" in text
    assert "not used for the findings" in text
    # their line does not push the signature block onto a second page
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True, timeout=60).stdout
    assert "Pages:           1" in info


def test_annotations_are_drawn_on_the_films(session_path):
    report = load_report(session_path)
    with_marks = films_panel(report, max_side=1000)
    doc = json.loads(session_path.read_text())
    del doc["annotations"]
    plain_path = session_path.with_name("plain.json")
    plain_path.write_text(json.dumps(doc))
    without = films_panel(load_report(plain_path), max_side=1000)
    assert with_marks.shape == without.shape
    changed = np.any(with_marks != without, axis=-1)
    # the panel: strip on top, flexion tile, gap, extension tile; films shrunk to 1000 px high
    rows, cols = 1536, 1229
    scale = 1000 / rows
    strip = with_marks.shape[0] - round(rows * scale)
    tile_width = round(cols * scale)
    ys, xs = np.nonzero(changed)
    flex = xs < tile_width
    # every changed flexion pixel lies near the ruler's line or its label
    p0, p1 = (np.array(RULER) + 0.5) * scale - 0.5
    px = np.stack([xs[flex], ys[flex] - strip], axis=1).astype(float)
    u, w = p1 - p0, px - p0
    d = np.abs(u[0] * w[:, 1] - u[1] * w[:, 0]) / np.linalg.norm(u)
    assert flex.sum() > 100 and np.mean(d < 6) > 0.6
    # the middle of the ruler is white (the annotation colour) on the flexion film
    mid = np.round((p0 + p1) / 2).astype(int)
    assert (with_marks[strip + mid[1], mid[0]] >= 250).all()
    # the extension film changed too (the angle), near its vertex
    vertex = (np.array(ANGLE[1]) + 0.5) * scale - 0.5
    ext = ~flex
    near = np.hypot(xs[ext] - (with_marks.shape[1] - tile_width) - vertex[0], ys[ext] - strip - vertex[1]) < 150
    assert ext.sum() > 100 and near.mean() > 0.8


def test_sr_carries_the_annotations(session_path, tmp_path):
    sr = write_sr(load_report(session_path), tmp_path / "r.dcm")
    assert read_sr(sr)["annotations"] == json.loads(session_path.read_text())["annotations"]


def test_png_export_draws_them(session_path, tmp_path):
    from app.report_tables import write_png

    out = write_png(load_report(session_path), tmp_path / "f.png", max_side=1000)
    img = cv2.imread(str(out))[..., ::-1]
    np.testing.assert_array_equal(img, films_panel(load_report(session_path), max_side=1000))


def _items(dataset):
    """Every content item of an SR, depth first."""
    for item in dataset.get("ContentSequence", []):
        yield item
        yield from _items(item)


def test_sr_codes_each_ruler_and_angle_for_a_pacs(session_path, tmp_path):
    import pydicom

    sr = pydicom.dcmread(write_sr(load_report(session_path), tmp_path / "r.dcm"))
    nums = {}
    for item in _items(sr):
        if item.ValueType == "NUM":
            concept = item.ConceptNameCodeSequence[0]
            code = concept.get("CodeValue") or concept.get("LongCodeValue")  # long private codes
            value = item.MeasuredValueSequence[0]
            nums.setdefault(code, []).append((float(value.NumericValue),
                                              value.MeasurementUnitsCodeSequence[0].CodeValue, item))
    (length,) = nums["410668003"]  # SCT Length: the ruler, in mm with its calibration source
    assert length[0] == pytest.approx(500 * SPACING_MM, abs=1e-6) and length[1] == "mm"
    (method,) = [i for i in length[2].ContentSequence
                 if i.ConceptNameCodeSequence[0].get("CodeValue") == "370129005"]  # SCT Measurement Method
    assert method.ConceptCodeSequence[0].get("LongCodeValue") == "magnification-corrected"  # > 16 chars
    scoord = [i for i in _items(length[2]) if i.ValueType == "SCOORD"]
    np.testing.assert_allclose(np.reshape(scoord[0].GraphicData, (-1, 2)), np.array(RULER) + 0.5)
    # SCT 1483009 Angle: the reader's angle is the one drawn on the film (with SCOORD); the
    # others are the segmental angles of each film
    (angle,) = [n for n in nums["1483009"] if any(i.ValueType == "SCOORD" for i in _items(n[2]))]
    assert angle[0] == pytest.approx(90.0) and angle[1] == "deg"
    assert angle[2].ConceptNameCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert len(nums["1483009"]) == 1 + 2 * 5  # and one per film and segment


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
def test_sr_with_annotations_is_valid_dicom(session_path, tmp_path):
    sr = write_sr(load_report(session_path), tmp_path / "r.dcm")
    out = subprocess.run(["dciodvfy", str(sr)], capture_output=True, text=True, timeout=60)
    assert [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")] == []
