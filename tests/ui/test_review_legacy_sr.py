"""Review mode opens an SR written by the previous version (JSON TEXT items)."""

from __future__ import annotations

import pydicom
import pytest

from app.report_verify import STORED_VALUES_DIFFER
from tests.app import _report_fixtures as fx


@pytest.fixture(scope="module")
def old_sr(tmp_path_factory):
    return fx.previous_version_sr(tmp_path_factory.mktemp("review-legacy"))


def test_review_opens_an_old_sr_and_says_so(make_window, old_sr):
    import json

    session_path, sr = old_sr
    window = make_window()
    window.review.ask_folder = lambda message: None
    assert window.open_paths([str(sr)])
    assert window.review.active
    messages = window.banner.messages()
    assert any("previous version" in m for m in messages), messages
    assert not any(STORED_VALUES_DIFFER in m for m in messages), messages
    original = json.loads(session_path.read_text())
    report = window.review.report
    assert report.stored_differences == []
    assert report.session["flexion"]["landmarks"] == original["flexion"]["landmarks"]


def test_review_of_a_tampered_old_sr_shows_the_difference(make_window, old_sr):
    from tests.app.test_report_sr_legacy import _segment_num

    _, sr = old_sr
    ds = pydicom.dcmread(sr)
    item = _segment_num(ds, "L4-L5", "translation_mm")
    item.MeasuredValueSequence[0].FloatingPointValue = 9.5
    item.MeasuredValueSequence[0].NumericValue = "9.5"
    tampered = sr.parent / "old-tampered.dcm"
    ds.save_as(tampered)
    window = make_window()
    window.review.ask_folder = lambda message: None
    assert window.open_paths([str(tampered)])
    assert any(m.startswith(STORED_VALUES_DIFFER) for m in window.banner.messages())
    assert any(d.startswith("L4-L5 translation_mm: stored 9.5")
               for d in window.review.report.stored_differences)
