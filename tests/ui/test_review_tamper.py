"""Review mode on a hand-edited SR (issue 11 §5): each of the ten edits is shown in the
banner as "This report's stored values differ from its landmarks" (or refused in one line)."""

from __future__ import annotations

import pydicom
import pytest

from app.report_data import load_report
from app.report_sr import write_sr
from app.report_verify import STORED_VALUES_DIFFER
from tests.app import _report_fixtures as fx
from tests.app._sr_tamper import REFUSED, TAMPERINGS


@pytest.fixture(scope="module")
def sr(tmp_path_factory):
    folder = tmp_path_factory.mktemp("review-tamper")
    session = fx.make_study(folder / "study", measured=True)
    return write_sr(load_report(session), folder / "study" / "report.dcm")


def test_untouched_sr_reviews_without_the_warning(make_window, sr):
    window = make_window()
    assert window.open_paths([str(sr)])
    assert window.review.active
    assert not any(STORED_VALUES_DIFFER in m for m in window.banner.messages())


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_review_shows_each_tampering(make_window, sr, name):
    ds = pydicom.dcmread(sr)
    expected = TAMPERINGS[name](ds)
    tampered = sr.parent / f"review-{name}.dcm"
    ds.save_as(tampered)
    window = make_window()
    window.review.ask_folder = lambda message: None  # no dialog: the films are beside the SR
    opened = window.open_paths([str(tampered)])
    messages = window.banner.messages()
    if name in REFUSED:
        assert not opened and not window.review.active
        assert any(expected in m for m in messages), messages
        return
    assert opened and window.review.active
    shown = [m for m in messages if m.startswith(STORED_VALUES_DIFFER)]
    assert shown, messages
    # the detail names what differs (the banner shows the first differences)
    details = window.review.report.stored_differences
    assert any(expected in d for d in details), details
