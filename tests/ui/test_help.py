"""Help menu, Landmarks menu mnemonics, loupe placement and the next-step hint (issue #13)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFont, QFontMetricsF

from tests.ui.conftest import synthetic_truth
from ui.qt_help import FILM_KEYS, shortcut_rows
from ui.qt_main_window import next_step_hint


def _mnemonic(text: str) -> str | None:
    m = re.search(r"&([^&])", text.replace("&&", ""))
    return m.group(1).lower() if m else None


def test_shortcut_list_is_every_action_with_a_shortcut(make_window):
    window = make_window()
    rows = shortcut_rows(window.actions_by_name)
    listed = {keys for keys, _ in rows}
    with_keys = {
        name: a for name, a in window.actions_by_name.items() if any(not k.isEmpty() for k in a.shortcuts())
    }
    assert len(with_keys) >= 15
    for name, action in with_keys.items():
        text = ", ".join(k.toString() for k in action.shortcuts())
        assert text in listed, name
    # no ampersands of mnemonics leak into the list; the film keys follow
    assert not any("&" in what for _, what in rows[: -len(FILM_KEYS)])
    assert rows[-len(FILM_KEYS) :] == list(FILM_KEYS)
    assert ("Ctrl+Shift+A", "Auto (detect or track, refine where it helps)") in rows
    # no two actions share a key
    keys = [k for k, _ in rows[: -len(FILM_KEYS)] for k in k.split(", ")]
    assert len(keys) == len(set(keys))


def test_help_dialog_shows_the_list(make_window, qtbot):
    window = make_window()
    window.actions_by_name["help_shortcuts"].trigger()
    text = window.help_dialog.browser.toPlainText()
    assert "Ctrl+Shift+A" in text and "Tab / Shift+Tab" in text
    window.help_dialog.close()
    window.actions_by_name["help_measure"].trigger()
    text = window.help_dialog.browser.toPlainText()
    assert "AS (anterior-superior)" in text and "4 mm" in text and "not a diagnosis" in text


def test_landmarks_menu_mnemonics_are_unique(make_window):
    window = make_window()
    keys = [_mnemonic(a.text()) for a in window.landmarks_menu.actions() if not a.isSeparator()]
    assert None not in keys
    assert len(keys) == len(set(keys)), keys


def test_loupe_at_fit_zoom_magnifies_little_and_leaves_the_overlay_text_free(make_window, synthetic_pair):
    window = make_window(loader=synthetic_pair.__getitem__)
    window.open_paths(list(synthetic_pair))
    view = window.views["flexion"]
    view.fit()
    fit = view.transform.scale
    assert view.loupe_scale() == pytest.approx(max(3 * fit, 1.0))  # not x4..x32 of the image pixels
    texts = view.overlay_texts()
    line_h = QFontMetricsF(QFont(view.font().family(), 10)).height()
    for wx, wy in [(20, 20), (view.width() - 20, 20), (20, view.height() - 20), (view.width() - 20, view.height() - 20)]:
        box = view.loupe_rect(wx, wy)
        side = "right" if wx < view.width() / 2 else "left"
        top_text = QRectF(0, 0, view.width(), 8 + len(texts.get(f"top_{side}", ())) * line_h)
        bottom_text = QRectF(0, view.height() - 8 - len(texts.get(f"bottom_{side}", ())) * line_h, view.width(), view.height())
        assert not box.intersects(top_text) and not box.intersects(bottom_text), (wx, wy)
        assert not box.contains(wx, wy)  # never under the pointer


def test_next_step_hint_follows_the_work(make_window, synthetic_pair):
    window = make_window(loader=synthetic_pair.__getitem__)
    session = window.session
    assert next_step_hint(session).startswith("Next: open the flexion and extension films")
    window.open_paths(list(synthetic_pair))
    assert "Auto" in window.hint_label.text()
    session.set_landmarks("flexion", synthetic_truth(10.0))
    assert "Track (T)" in window.hint_label.text() and "to the extension film" in window.hint_label.text()
    session.set_landmarks("extension", synthetic_truth(-5.0))
    assert window.hint_label.text().startswith("Done:")
    session.request_label_review("extension film: low label confidence (L1 0.30 < 0.50)")
    assert "level labels" in window.hint_label.text()
    assert all(row.get("needs_review") for row in session.result_rows())
    assert window.results.cell("L4-L5", "Result") == "labels to confirm (Enter)"
    assert window.actions_by_name["confirm_labels"].isEnabled()
    window.actions_by_name["confirm_labels"].trigger()
    assert session.label_review is None and not any(r.get("needs_review") for r in session.result_rows())
    assert window.hint_label.text().startswith("Done:")
    assert not window.actions_by_name["confirm_labels"].isEnabled()
    assert next_step_hint(session, busy="Track flexion → extension").startswith("Track flexion → extension is running")
    assert np.isfinite(session.landmarks("extension")).all(-1).sum() == 22


def test_png_film_is_not_labelled_dicom(make_window, synthetic_pair):
    for film in synthetic_pair.values():
        film.source_format = "png"
    window = make_window(loader=synthetic_pair.__getitem__)
    window.open_paths(list(synthetic_pair))
    texts = window.views["flexion"].overlay_texts()
    lines = [line for block in texts.values() for line in block]
    assert not any("DICOM" in line for line in lines), lines
    assert "View: flexion (PNG file)" in texts["top_left"]
    assert texts["bottom_right"][1].endswith("(PNG file range)")


def test_one_film_mode_centres_the_film(qtbot, make_window, synthetic_pair):
    window = make_window(loader=synthetic_pair.__getitem__)
    window.open_paths(list(synthetic_pair))
    qtbot.wait(50)
    window.set_layout("flexion")
    view = window.views["flexion"]
    qtbot.waitUntil(lambda: view.width() > window.width() * 0.8, timeout=2000)
    rows, columns = view.film.pixels.shape[:2]
    cx, cy = view.transform.to_widget((columns - 1) / 2, (rows - 1) / 2)
    assert cx == pytest.approx(view.width() / 2, abs=2) and cy == pytest.approx(view.height() / 2, abs=2)
    # a zoomed film is left as the reader put it
    view.zoom_to(2.0)
    before = view.transform
    window.set_layout("both")
    qtbot.waitUntil(lambda: view.width() < window.width() * 0.6, timeout=2000)
    assert view.transform.scale == before.scale
