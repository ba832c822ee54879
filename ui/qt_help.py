"""Help: the shortcut list (generated from the window's actions), the corner
diagram shown during guided placement, and a short "how to measure" page.

The shortcut list is built from the actions and the film views' own keys each
time it is opened, so it cannot drift from what the keys do.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QAction, QColor, QFont, QKeySequence, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

from ui._interaction import NUDGE_PX, NUDGE_SHIFT_PX

__all__ = ["FILM_KEYS", "HOW_TO_MEASURE", "draw_corner_diagram", "install_help", "shortcut_rows"]

#: Keys handled by a film view itself (not actions): key, what it does.
FILM_KEYS: tuple[tuple[str, str], ...] = (
    ("Left click", "place the corner asked for (guided placement) or select a corner"),
    ("Left drag on a corner", "move it (one undo step per drag)"),
    ("Middle drag, or left drag on the film", "pan"),
    ("Wheel", "zoom about the pointer"),
    ("Right drag", "window/level (contrast and brightness)"),
    ("Arrow keys", f"nudge the selected corner by {NUDGE_PX:g} px (Shift: {NUDGE_SHIFT_PX:g} px)"),
    ("Tab / Shift+Tab", "select the next / previous placed corner"),
    ("Delete / Backspace", "delete the selected corner"),
    ("Esc", "cancel the running task; else clear the selection or the calibration line"),
    ("F", "fit the film to the view"),
    ("1", "1:1 pixels"),
    ("I", "invert the grey scale"),
    ("R", "reset window/level"),
)

HOW_TO_MEASURE = """
<h2>How to measure</h2>
<ol>
<li><b>Open</b> the flexion and the extension lateral films (File › Open films…, Ctrl+O, or drop the
files on the window). Check the banner: a patient or study mismatch, or a film without pixel spacing,
is reported there.</li>
<li><b>Find the bodies</b>: press <b>Auto</b> (toolbar, Ctrl+Shift+A). It detects the bodies on one film
(or starts from the corners you placed), refines them where that lowers their uncertainty and tracks them
to the other film, as one undo step. Esc cancels; nothing is changed then. Alternatively press
<b>G</b> for guided placement and click each corner in the order asked: for every body top to bottom
<b>AS</b> (anterior-superior), <b>PS</b> (posterior-superior), <b>PI</b> (posterior-inferior),
<b>AI</b> (anterior-inferior); S1 has only AS and PS. Then <b>Track</b> (T) carries them to the other
film.</li>
<li><b>Check the level labels</b>. When the detector is unsure which body is L1, the results do not
count until you confirm the labels with <b>Enter</b>; <b>[</b> and <b>]</b> shift every label up or down
first (transitional anatomy, a T12 or L6).</li>
<li><b>Check every corner</b>: drag to correct, arrow keys to nudge. Automatic corners are marked by
their placement method and carry a larger uncertainty until you move them.</li>
<li><b>Read the results</b> below the films: translation (mm, and % of the lower body's endplate depth,
which needs no calibration), angulation (°), each with its 95 % interval. A segment is reported
<i>unstable</i> when |translation| &gt; 4 mm or |angulation| &gt; 10° (default criteria, Dupuis 1985);
<i>borderline</i> when the 95 % interval reaches a threshold. Ctrl+K shows the stabilised comparison
of a segment with its centre of rotation.</li>
<li><b>Export</b> the report (Ctrl+E): PDF, DICOM SR, CSV and PNG in one step.</li>
</ol>
<p>Definitions: translation is measured along the lower body's superior endplate (White &amp; Panjabi);
angulation is the change of the angle between the endplates from flexion to extension.</p>
<p><b>A measurement aid, not a diagnosis</b>: results must be interpreted by a qualified clinician
with the images.</p>
"""


def _key_text(action: QAction) -> str:
    keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
    return ", ".join(k for k in keys if k)


def shortcut_rows(actions: dict[str, QAction]) -> list[tuple[str, str]]:
    """``(keys, what)`` for every action with a shortcut, then the film views' own keys."""
    rows = []
    seen = set()
    for action in actions.values():
        keys = _key_text(action)
        if not keys or id(action) in seen:
            continue
        seen.add(id(action))
        what = action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip(".…")
        rows.append((keys, what))
    rows.sort(key=lambda r: r[1].lower())
    return [*rows, *FILM_KEYS]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shortcut_html(actions: dict[str, QAction]) -> str:
    body = "".join(
        f"<tr><td style='padding:2px 14px 2px 0'><b>{_escape(k)}</b></td><td>{_escape(w)}</td></tr>"
        for k, w in shortcut_rows(actions)
    )
    return f"<h2>Keyboard and mouse</h2><table>{body}</table>"


class _TextDialog(QDialog):
    def __init__(self, title: str, html: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(640, 620)
        layout = QVBoxLayout(self)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(False)
        self.browser.setHtml(html)
        layout.addWidget(self.browser)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


def install_help(window) -> None:
    """Add the Help menu (shortcuts, how to measure, corner diagram) to a main window."""
    menu = window.menuBar().addMenu("&Help")
    a = window.actions_by_name

    def show(title: str, html_of) -> None:
        window.help_dialog = _TextDialog(title, html_of(), window)
        window.help_dialog.show()

    a["help_shortcuts"] = QAction("&Keyboard shortcuts", window)
    a["help_shortcuts"].setShortcut(QKeySequence("F1"))
    a["help_shortcuts"].triggered.connect(lambda: show("Keyboard shortcuts", lambda: shortcut_html(a)))
    a["help_measure"] = QAction("&How to measure", window)
    a["help_measure"].triggered.connect(lambda: show("How to measure", lambda: HOW_TO_MEASURE))
    for key in ("help_shortcuts", "help_measure"):
        window.addAction(a[key])
        menu.addAction(a[key])


def draw_corner_diagram(painter: QPainter, box: QRectF, highlight: int | None = None, anterior_left: bool = True) -> None:
    """A schematic body with its four corners named, the one asked for next highlighted.

    Parameters
    ----------
    painter : QPainter
    box : QRectF
        Where to draw (about 150 x 110 px).
    highlight : int or None
        Index of the corner asked for (``AS, PS, PI, AI`` = 0..3).
    anterior_left : bool
        Draw the front of the body on the left (the film's facing, when known).
    """
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.fillRect(box, QColor(0, 0, 0, 190))
    font = QFont(painter.font())
    font.setPointSize(9)
    painter.setFont(font)
    m = painter.fontMetrics()
    pad = 8.0
    inner = box.adjusted(pad + 26, pad + m.height() + 4, -pad - 26, -pad - m.height())
    # a body: slightly concave endplates, anterior wall a little shorter
    left, right, top, bottom = inner.left(), inner.right(), inner.top(), inner.bottom()
    ant, post = (left, right) if anterior_left else (right, left)
    corners = [
        QPointF(ant, top + 4),  # AS
        QPointF(post, top),  # PS
        QPointF(post, bottom),  # PI
        QPointF(ant, bottom - 4),  # AI
    ]
    path = QPainterPath(corners[0])
    mid_x = (left + right) / 2
    path.quadTo(QPointF(mid_x, top + 8), corners[1])
    path.lineTo(corners[2])
    path.quadTo(QPointF(mid_x, bottom - 8), corners[3])
    path.closeSubpath()
    painter.setPen(QPen(QColor(200, 200, 200), 1.5))
    painter.setBrush(QColor(120, 120, 120, 120))
    painter.drawPath(path)
    names = ("AS", "PS", "PI", "AI")
    for i, (point, name) in enumerate(zip(corners, names, strict=True)):
        on = i == highlight
        painter.setPen(QPen(QColor(255, 210, 80) if on else QColor(90, 200, 255), 2.0))
        painter.setBrush(QColor(255, 210, 80) if on else QColor(90, 200, 255))
        painter.drawEllipse(point, 4.5 if on else 3.0, 4.5 if on else 3.0)
        is_left = point.x() < mid_x
        x = point.x() - m.horizontalAdvance(name) - 7 if is_left else point.x() + 7
        painter.setPen(QColor(255, 210, 80) if on else QColor(235, 235, 235))
        painter.drawText(QPointF(x, point.y() + m.ascent() / 2 - 1), name)
    painter.setPen(QColor(200, 200, 200))
    front = "front (anterior)"
    back = "back"
    painter.drawText(
        QRectF(box.left() + pad, box.top() + 3, box.width() - 2 * pad, m.height()),
        Qt.AlignmentFlag.AlignLeft if anterior_left else Qt.AlignmentFlag.AlignRight,
        front,
    )
    painter.drawText(
        QRectF(box.left() + pad, box.top() + 3, box.width() - 2 * pad, m.height()),
        Qt.AlignmentFlag.AlignRight if anterior_left else Qt.AlignmentFlag.AlignLeft,
        back,
    )
    painter.drawText(
        QRectF(box.left(), box.bottom() - m.height() - 3, box.width(), m.height()),
        Qt.AlignmentFlag.AlignHCenter,
        "order: AS, PS, PI, AI",
    )
    painter.restore()
