"""The PDF report: rendered with pdftoppm, read with pdftotext, films on the page."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from app import __version__
from app.report_data import load_report
from app.report_pdf import finding_of, write_pdf
from app.report_tables import films_panel
from tests.app import _report_fixtures as fx

pytestmark = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils not installed",
)

DPI = 60


def _text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout


def _row_block(text: str, line: str) -> str:
    """A table row's line with the lines above and below (a two-line cell wraps onto them)."""
    before, after = text.split(line)[:2]
    return " ".join([*before.splitlines()[-1:], line, *after.splitlines()[1:2]])


def _render(pdf: Path, out: Path) -> list[Path]:
    subprocess.run(["pdftoppm", "-r", str(DPI), "-png", str(pdf), str(out)], check=True,
                   timeout=60)
    return sorted(out.parent.glob(out.name + "-*.png"))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pdf")
    session_path = fx.make_study(folder / "study")
    report = load_report(session_path)
    pdf = write_pdf(report, folder / "report.pdf",
                    generated_at=dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC))
    return report, pdf, _render(pdf, folder / "page"), _text(pdf)


def test_one_or_two_pages(rendered):
    _, _, pages, text = rendered
    assert 1 <= len(pages) <= 2
    assert text.count("\f") == len(pages)


def test_identification_and_results_text(rendered):
    _, _, _, text = rendered
    flat = " ".join(text.split())
    for expected in (
        "PHANTOM, Lumbar", "PHANTOM-001", "2026-01-01", "ACC1",
        "1.2.826.0.1.3680043.10.1234.3.1", "1.2.826.0.1.3680043.10.1234.3.2",
        "image verified (SHA-256)",
        "Dupuis", "Spine 1985;10:262-276", "Pearson", "Spine 2011;36:572-580", "White & Panjabi",
        "measurement aid, not a diagnosis", f"lumbar-instability {__version__}",
        "2026-11-21T09:30:00+00:00", "session saved 2026-11-21T10:00:00+00:00",
        "source detector", "0.2 x 0.2 mm/pixel", "overstate patient distances",
        "Flexion: 22 corners (22 manual); 22 clicked or moved by the reader",
        "Extension: 22 corners (5 manual, 4 edited, 5 refined, 4 tracked, 4 detected); 9 clicked "
        "or moved by the reader",
        "tracked: carried over from the other film", "Only manual and edited corners were "
        "clicked by a reader", "Criteria: default", "Thresholds used: translation > 4 mm; angulation > 10 deg",
    ):
        assert expected in flat, expected
    lines: dict[str, str] = {}
    for line in text.splitlines():  # the first table: segmental motion
        if line.strip() and line.split()[0] in ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"):
            lines.setdefault(line.split()[0], line)
    # row L3-L4: 4.75 mm [3.85, 5.65], 15.2 % [12.2, 18.2], 7.0 deg [4.9, 9.1]: above 4 mm,
    # the interval straddling it (the one verdict rule): borderline, not unstable
    l34 = lines["L3-L4"]
    for cell in ("+4.8*", "[3.9, 5.7]", "+15.2", "[12.2, 18.2]", "+7.0", "[4.9, 9.1]",
                 "translation"):
        assert cell in l34, (cell, l34)
    block = _row_block(text, l34)
    assert "BORDERLINE" in block and "(ABOVE threshold)" in block and "UNSTABLE" not in block
    # L2-L3: 10.5 [8.4, 12.6] deg, above 10 with the interval straddling it
    assert "BORDERLINE" in _row_block(text, lines["L2-L3"]) and "angulation" in lines["L2-L3"]
    assert "UNSTABLE" in lines["L4-L5"]  # 12.25 [10.15, 14.35] deg: wholly above 10
    assert "within thresholds" in lines["L5-S1"] and "UNSTABLE" not in lines["L5-S1"]


def test_page_shows_the_films(rendered, tmp_path):
    report, _, pages, _ = rendered
    page = cv2.imread(str(pages[0]), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    panel = cv2.cvtColor(films_panel(report, max_side=1000), cv2.COLOR_RGB2GRAY)
    # The panel spans the text width (210 mm - 2 x 12 mm margins) or 80 mm of height.
    width_mm = min(210 - 24, 80 * panel.shape[1] / panel.shape[0])
    width = round(width_mm / 25.4 * DPI)
    height = round(panel.shape[0] * width / panel.shape[1])
    template = cv2.resize(panel, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    score = cv2.matchTemplate(page, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (x, y) = cv2.minMaxLoc(score)
    assert best > 0.9
    region = page[y: y + height, x: x + width]
    assert region.std() > 40  # bright bodies on a dark film, not a blank box
    # a blank page region of the same size correlates poorly
    assert cv2.matchTemplate(np.full_like(template, 255), template, cv2.TM_CCOEFF_NORMED
                             ).max() < 0.2


def test_uncalibrated_film_never_shows_mm(tmp_path):
    session_path = fx.make_study(tmp_path / "s", uncalibrated_view="extension")
    session = json.loads(session_path.read_text())
    for row in session["results"]["segments"]:  # a stale mm value must not leak
        row["translation_mm"] = 4.75
        row["extension_translation_mm"] = 2.5
    session_path.write_text(json.dumps(session))
    text = _text(write_pdf(load_report(session_path), tmp_path / "r.pdf"))
    rows = [line for line in text.splitlines() if line.strip().startswith("L3-L4")]
    assert "n/a (uncalibrated)" in rows[0]
    assert "4.8" not in rows[0]
    assert "+2.5" not in text
    flat = " ".join(text.split())
    assert "The extension film is uncalibrated" in flat
    assert "no usable pixel spacing" in flat
    assert "(angulation only)" in text


def test_changed_image_is_flagged(tmp_path):
    session_path = fx.make_study(tmp_path / "s")
    with open(session_path.parent / "extension.dcm", "ab") as handle:
        handle.write(b"\0\0")
    text = " ".join(_text(write_pdf(load_report(session_path), tmp_path / "r.pdf")).split())
    assert "IMAGE CHANGED" in text
    assert "has CHANGED since it was measured" in " ".join(text.split())


def test_different_patients_are_flagged(tmp_path):
    session_path = fx.make_study(tmp_path / "s")
    fx.write_film(session_path.parent / "extension.dcm", "extension", patient_id="OTHER-002")
    text = " ".join(_text(write_pdf(load_report(session_path, verify_images=False),
                                    tmp_path / "r.pdf")).split())
    assert "DIFFERENT PATIENTS (patient_id differ)" in text
    assert "OTHER-002" not in text.split("DIFFERENT PATIENTS")[1][:80]


def test_missing_images_still_report_numbers(tmp_path):
    session_path = fx.make_study(tmp_path / "s")
    (session_path.parent / "flexion.dcm").unlink()
    (session_path.parent / "extension.dcm").unlink()
    text = _text(write_pdf(load_report(session_path), tmp_path / "r.pdf"))
    assert "The films are not shown" in text
    assert "image not found" in text
    assert "[3.9, 5.7]" in text


@pytest.mark.parametrize(("row", "expected"), [
    ({"finding": "Borderline"}, "borderline"),
    ({"unstable": True, "borderline": False}, "unstable"),
    ({"unstable": True, "borderline": True}, "borderline"),
    ({"unstable": False, "borderline": False}, "stable"),
    ({"measured": False, "unstable": False}, "not measured"),
    ({}, "not measured"),
])
def test_finding_of(row, expected):
    assert finding_of(row) == expected


@pytest.mark.parametrize(("criteria", "expected"), [
    ("white-panjabi", ["Criteria: white-panjabi", "> 20 deg at L4-L5",
                       "White AA, Panjabi MM. Clinical Biomechanics of the Spine"]),
    ("my-clinic", ["Criteria: my-clinic - user-defined thresholds, see the table"]),
])
def test_criteria_and_their_reference(tmp_path, criteria, expected):
    session_path = fx.make_study(tmp_path / "s")
    session = json.loads(session_path.read_text())
    session["criteria"] = criteria
    session_path.write_text(json.dumps(session))
    flat = " ".join(_text(write_pdf(load_report(session_path), tmp_path / "r.pdf")).split())
    for text in expected:
        assert text in flat, text
    assert ("Dupuis" in flat) is False
