"""The PDF leads with the answer (issue 11 §4): summary first, flagged level marked on
both films, warnings, reader fields, one page; on the bundled sample study."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess

import numpy as np
import pytest

from app.dicom_io import load_film
from app.palette import FINDING_RGB
from app.report_data import load_report, verdict_of
from app.report_pdf import pdf_bytes, summary_lines
from app.report_tables import annotate_film, annotated_films
from tests.app import _report_fixtures as fx

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils not installed")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return fx.sample_session(tmp_path_factory.mktemp("sample"),
                             reader={"name": "Dr A. Reader", "comment": "L4-L5 checked twice"})


def _pdf_text(data: bytes, tmp_path) -> tuple[str, int]:
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(data)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True,
                           timeout=60).stdout
    n = int(next(line.split()[-1] for line in pages.splitlines() if line.startswith("Pages:")))
    return text, n


def test_sample_verdicts_match_the_truth(sample):
    # truth: L4-L5 6.2 mm / 13.3 deg (sample_dicoms/README.md); the rest well within
    report = load_report(sample, search_dirs=[fx.SAMPLE_DIR])
    verdicts = {r["segment"]: verdict_of(r).key for r in report.rows}
    assert verdicts == {"L1-L2": "within", "L2-L3": "within", "L3-L4": "within",
                        "L4-L5": "unstable", "L5-S1": "within"}
    (first, text), *rest = summary_lines(report)
    assert first == "unstable"
    truth = json.loads((fx.SAMPLE_DIR / "truth.json").read_text())["motion"]["L4-L5"]
    assert text.startswith(f"L4-L5: translation +{truth['dt_mm']:.1f} ± ")
    assert f"angulation +{truth['dtheta_deg']:.1f} ± " in text
    assert text.endswith("mm, angulation " + text.split("angulation ")[1].split(" — ")[0]
                         + " — above 4 mm and 10°")
    assert rest == [("within", "Within the thresholds: L1-L2, L2-L3, L3-L4, L5-S1")]


@needs_poppler
def test_sample_pdf_leads_with_the_answer_on_one_page(sample, tmp_path):
    report = load_report(sample, search_dirs=[fx.SAMPLE_DIR])
    text, pages = _pdf_text(pdf_bytes(report, generated_at=dt.datetime(2026, 12, 3, tzinfo=dt.UTC)),
                            tmp_path)
    assert pages == 1
    flat = " ".join(text.split())
    summary = flat.index("UNSTABLE L4-L5: translation +6.2 ±")
    assert summary < flat.index("Patient") < flat.index("Segmental motion")
    assert flat.index("measurement aid, not a diagnosis") < summary
    assert "Within the thresholds: L1-L2, L2-L3, L3-L4, L5-S1" in flat
    assert "Reader Dr A. Reader" in flat and "Comment L4-L5 checked twice" in flat
    assert "Signature" in flat
    # placement stated truthfully: tracked corners were not clicked by anybody
    assert "22 corners (22 tracked); none clicked by a reader" in flat
    assert "placed by the reader" not in flat


def test_flagged_segment_is_marked_on_both_films(sample):
    report = load_report(sample, search_dirs=[fx.SAMPLE_DIR])
    pictures = annotated_films(report, max_side=800)
    assert set(pictures) == {"flexion", "extension"}
    red = np.array(FINDING_RGB["unstable"])
    for view, rgb in pictures.items():
        film = report.films[view]
        mark = (np.abs(rgb.astype(int) - red).sum(axis=-1) < 8)
        ys, _ = np.nonzero(mark)
        assert ys.size > 50, view
        # the mark surrounds the L4-L5 disc: between L4's inferior and L5's superior corners
        levels = report.levels
        lm = film.landmarks
        h = rgb.shape[0]
        s = h / load_film(str(film.path)).shape[0]
        disc = np.vstack([lm[levels.index("L4"), 2:], lm[levels.index("L5"), :2]]) * s
        assert disc[:, 1].min() - 40 < np.median(ys) < disc[:, 1].max() + 40, view
        # and nowhere near the other discs
        l12 = np.vstack([lm[levels.index("L1"), 2:], lm[levels.index("L2"), :2]]) * s
        assert not ((ys > l12[:, 1].min() - 5) & (ys < l12[:, 1].max() + 5)).any(), view


def test_only_flagged_segments_are_marked():
    image = np.zeros((400, 300), np.uint8)
    lm = np.full((3, 4, 2), np.nan)
    lm[0] = [[100, 50], [200, 50], [200, 110], [100, 110]]
    lm[1] = [[100, 140], [200, 140], [200, 200], [100, 200]]
    lm[2] = [[100, 230], [200, 230], [200, 290], [100, 290]]
    colour = np.array(FINDING_RGB["borderline-above"])
    plain = annotate_film(image, lm, ["L3", "L4", "L5"])
    marked = annotate_film(image, lm, ["L3", "L4", "L5"],
                           verdicts={"L3-L4": "within", "L4-L5": "borderline-above"})
    hit = np.abs(marked.astype(int) - colour).sum(axis=-1) < 8
    assert not (np.abs(plain.astype(int) - colour).sum(axis=-1) < 8).any()
    ys, _ = np.nonzero(hit)
    assert ys.size > 30 and ys.min() > 190 and np.median(ys) < 250  # the L4-L5 disc, not L3-L4
