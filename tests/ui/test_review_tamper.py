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


@pytest.mark.parametrize("consistent", [False, True])
def test_review_of_an_sr_whose_ruler_was_moved(make_window, tmp_path, consistent):
    import json

    from tests.app._sr_tamper import annotation_num, move_ruler_end

    session = fx.make_study(tmp_path / "study", measured=True)
    doc = json.loads(session.read_text())
    doc["annotations"] = [{"kind": "ruler", "film": "flexion",
                           "points_px": [[100.0, 100.0], [100.0, 300.0]]}]  # 40 mm at 0.2 mm
    session.write_text(json.dumps(doc))
    sr = write_sr(load_report(session), tmp_path / "study" / "report.dcm")
    ds = pydicom.dcmread(sr)
    assert annotation_num(ds, "annotation flexion R1").MeasuredValueSequence[0] \
        .FloatingPointValue == pytest.approx(40.0)
    move_ruler_end(ds, 100.0, length=60.0 if consistent else None)
    ds.save_as(sr)
    window = make_window()
    window.review.ask_folder = lambda message: None
    opened = window.open_paths([str(sr)])
    if not consistent:  # the line moved, its stored 40 mm did not: refused, naming the ruler
        assert not opened and not window.review.active
        assert any("R1" in m and "disagrees with its points" in m
                   for m in window.banner.messages()), window.banner.messages()
        return
    assert opened and window.review.active  # a careful edit reads back as changed
    (ruler,) = window.session.annotations("flexion")
    assert [list(p) for p in ruler.points_px] == [[100.0, 100.0], [100.0, 400.0]]
    assert window.session.annotation_values("flexion")[0][2].value == pytest.approx(60.0)
