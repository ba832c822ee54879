"""Free ruler and angle tools in the film views (as in Surgimap and Weasis).

Tools › Ruler (M), Angle (N: three points, the middle one the vertex) and
Angle between two lines (Shift+N: four points).  With a tool on, each left
click on a film places the next point (a ruler can also be dragged); the
measurement is added to the session when its last point is placed (one undo
step) and the tool stays on for the next one.  A click on an existing point
selects that ruler or angle and a drag moves the point (one undo step per
drag); Delete removes the selected one; Esc drops the points being placed,
then leaves the tool.  Middle-drag still pans.

Values come from :mod:`app.annotations` through the session (millimetres only
on a calibrated film, with the calibration source named; pixels and
"uncalibrated" otherwise); this module only draws and routes the mouse.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QAction, QActionGroup, QColor, QFont, QKeySequence, QPainter, QPen

from app.annotations import short_text
from app.errors import UserError
from app.palette import ANNOTATION_RGB, SELECTED_RGB
from app.session import ROLES
from ui._viewport import mouse_to_widget

__all__ = ["TOOLS", "QtAnnotationTools", "install_annotation_tools"]

TOOLS: dict[str, tuple[str, int, str, str]] = {
    "ruler": ("ruler", 2, "&Ruler (distance)", "M"),
    "angle": ("angle", 3, "&Angle (three points, vertex second)", "N"),
    "lines": ("angle", 4, "Angle between &two lines (four points)", "Shift+N"),
}
"""Tool name → (annotation kind, points, menu text, shortcut)."""

_PICK_RADIUS = 8.0  # widget pixels


class QtAnnotationTools(QObject):
    """The ruler and angle tools of one :class:`ui.qt_main_window.QtMainWindow`.

    Attributes
    ----------
    tool : str or None
        The tool on (a key of :data:`TOOLS`), None when off.
    pending : dict
        ``{"role": str, "points": [(x, y), ...]}`` of the measurement being placed, or None.
    selected : tuple of (str, int) or None
        ``(role, index)`` of the selected annotation.
    """

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.tool: str | None = None
        self.pending: dict | None = None
        self.selected: tuple[str, int] | None = None
        self._drag: tuple[str, int, int] | None = None
        self._press: tuple[str, QPointF] | None = None
        self._pointer: dict[str, tuple[float, float]] = {}
        self._merge = 0
        a = window.actions_by_name
        menu = next((m.menu() for m in window.menuBar().actions() if m.text() == "&Tools"), None)
        if menu is None:  # pragma: no cover - the window always has a Tools menu
            menu = window.menuBar().addMenu("&Tools")
        menu.addSeparator()
        group = QActionGroup(window)
        group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        self.actions: dict[str, QAction] = {}
        for name, (_kind, n, text, key) in TOOLS.items():
            act = QAction(text, window, checkable=True)
            act.setShortcut(QKeySequence(key))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            act.setStatusTip(f"Click {n} points on a film; the value is kept in the session and the PDF")
            act.toggled.connect(lambda on, nm=name: self._on_toggled(nm, on))
            group.addAction(act)
            menu.addAction(act)
            window.addAction(act)
            self.actions[name] = act
            a[f"tool_{name}"] = act
        delete = QAction("&Delete the selected ruler or angle", window)
        delete.triggered.connect(lambda _=False: self.delete_selected())
        menu.addAction(delete)
        window.addAction(delete)
        a["tool_delete"] = self.delete_action = delete
        for role in ROLES:
            view = window.views[role]
            view.overlay_painters.append(self._paint)
            view.installEventFilter(self)
        self.session.events.annotations.connect(self._on_annotations)
        self.session.events.films.connect(self._on_films)
        self._on_films()

    # ----------------------------------------------------------------- state

    def _review_active(self) -> bool:
        review = getattr(self.window, "review", None)
        return bool(review is not None and review.active)

    def _on_films(self, event=None) -> None:
        editable = bool(self.session.roles) and not self._review_active()
        for act in self.actions.values():
            act.setEnabled(editable)
            if not editable and act.isChecked():
                act.setChecked(False)
        self.pending = None
        self.selected = None
        self.delete_action.setEnabled(False)
        self._repaint()

    def _on_annotations(self, event=None) -> None:
        if self.selected is not None:
            role, index = self.selected
            if index >= len(self.session.annotations(role)):
                self.selected = None
        self.delete_action.setEnabled(self.selected is not None and not self._review_active())
        self._repaint()

    def _on_toggled(self, name: str, on: bool) -> None:
        if on:
            self.tool = name
            self.pending = None
            if self.window.actions_by_name["guided"].isChecked():
                self.window.set_guided(False)
            kind, n, _, _ = TOOLS[name]
            self.window.statusBar().showMessage(
                f"{kind.capitalize()}: click {n} points on a film"
                + (" (the vertex second)" if n == 3 else " (two lines)" if n == 4 else " (or drag)")
                + "; Esc stops", 10000)
        elif self.tool == name:
            self.tool = None
            self.pending = None
        self._repaint()

    def set_tool(self, name: str | None) -> None:
        """Turn a tool on (``"ruler"``, ``"angle"``, ``"lines"``) or every tool off (None)."""
        if name is None:
            for act in self.actions.values():
                act.setChecked(False)
        else:
            self.actions[name].setChecked(True)

    def _repaint(self) -> None:
        for view in self.window.views.values():
            view.update()

    # ----------------------------------------------------------------- editing

    def place_point(self, role: str, x: float, y: float) -> bool:
        """Place the next point of the current tool at image ``(x, y)`` on ``role``.

        Returns True when that point completed a measurement (added to the session).
        """
        if self.tool is None or self._review_active():
            return False
        kind, n, _, _ = TOOLS[self.tool]
        if self.pending is None or self.pending["role"] != role:
            self.pending = {"role": role, "points": []}
        self.pending["points"].append((float(x), float(y)))
        if len(self.pending["points"]) < n:
            self._repaint()
            return False
        points = self.pending["points"]
        self.pending = None
        try:
            index = self.session.add_annotation(role, kind, points)
        except UserError as exc:
            self.window.show_error(str(exc))
            return False
        self.selected = (role, index)
        label, _, value = self.session.annotation_values(role)[index]
        self.window.statusBar().showMessage(f"{label} on the {role} film: {value.text}", 15000)
        self._on_annotations()
        return True

    def delete_selected(self) -> bool:
        """Delete the selected ruler or angle (one undo step)."""
        if self.selected is None or self._review_active():
            return False
        role, index = self.selected
        self.selected = None
        try:
            self.session.remove_annotation(role, index)
        except UserError as exc:
            self.window.show_error(str(exc))
            return False
        self._on_annotations()
        return True

    def pick(self, role: str, wx: float, wy: float) -> tuple[int, int] | None:
        """``(annotation index, point index)`` of the point within reach of widget ``(wx, wy)``."""
        view = self.window.views[role]
        best, found = _PICK_RADIUS, None
        for i, annotation in enumerate(self.session.annotations(role)):
            for j, (x, y) in enumerate(annotation.points_px):
                p = view.image_to_widget(x, y)
                d = ((p.x() - wx) ** 2 + (p.y() - wy) ** 2) ** 0.5
                if d <= best:
                    best, found = d, (i, j)
        return found

    # ----------------------------------------------------------------- events

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        role = getattr(obj, "role", None)
        if role not in ROLES or self._review_active():
            return False
        kind = event.type()
        if kind == QEvent.Type.MouseMove:
            x, y = obj.transform.to_image(*mouse_to_widget(event.position().x(), event.position().y()))
            self._pointer[role] = (x, y)
            if self._drag is not None and self._drag[0] == role:
                _, i, j = self._drag
                try:
                    self.session.move_annotation_point(role, i, j, (x, y), merge_id=("annotation", self._merge))
                except UserError as exc:
                    self.window.show_error(str(exc))
                    self._drag = None
                return True
            if self.pending is not None:
                obj.update()
            return False
        if kind == QEvent.Type.KeyPress:
            key = Qt.Key(event.key())
            if key == Qt.Key.Key_Escape and (self.pending is not None or self.tool is not None):
                if self.pending is not None:
                    self.pending = None
                    self._repaint()
                else:
                    self.set_tool(None)
                return True
            if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selected is not None and (
                    self.tool is not None or obj.state.selected is None):
                return self.delete_selected()
            return False
        if self.tool is None or event.type() not in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease,
                                                      QEvent.Type.MouseButtonDblClick):
            return False
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        pos = event.position()
        x, y = obj.transform.to_image(*mouse_to_widget(pos.x(), pos.y()))
        if kind == QEvent.Type.MouseButtonPress:
            obj.setFocus()
            hit = self.pick(role, pos.x(), pos.y()) if self.pending is None else None
            if hit is not None:
                self.selected = (role, hit[0])
                self._merge += 1
                self._drag = (role, hit[0], hit[1])
                self._on_annotations()
                return True
            self._press = (role, QPointF(pos))
            self.place_point(role, x, y)
            return True
        if kind == QEvent.Type.MouseButtonRelease:
            if self._drag is not None:
                self._drag = None
                self.session.end_merge()
                return True
            press, self._press = self._press, None
            moved = press is not None and press[0] == role and (
                (press[1].x() - pos.x()) ** 2 + (press[1].y() - pos.y()) ** 2) ** 0.5 > 4
            # a ruler may be dragged: the release is its second point
            if moved and self.tool == "ruler" and self.pending is not None and len(self.pending["points"]) == 1:
                self.place_point(role, x, y)
            return True
        return True  # double clicks place nothing more

    # ----------------------------------------------------------------- drawing

    def _paint(self, painter: QPainter, view) -> None:
        role = view.role
        values = self.session.annotation_values(role) if role in ROLES else []
        pending = self.pending if self.pending is not None and self.pending["role"] == role else None
        if not values and pending is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        font = QFont(view.font().family(), 10)
        font.setBold(True)
        painter.setFont(font)
        for i, (label, annotation, value) in enumerate(values):
            colour = QColor(*(SELECTED_RGB if self.selected == (role, i) else ANNOTATION_RGB))
            pts = [view.image_to_widget(x, y) for x, y in annotation.points_px]
            _draw_shape(painter, pts, colour)
            anchor = pts[1] if len(pts) == 3 else (pts[0] + pts[1]) / 2
            text = f"{label} {short_text(value)}"
            if value.unit == "px":
                text += " (uncalibrated)"
            rect = QRectF(anchor.x() + 8, anchor.y() - 22, painter.fontMetrics().horizontalAdvance(text) + 8, 18)
            painter.fillRect(rect, QColor(0, 0, 0, 170))
            painter.setPen(colour)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        if pending is not None:
            pts = [view.image_to_widget(x, y) for x, y in pending["points"]]
            pointer = self._pointer.get(role)
            if pointer is not None:
                pts.append(view.image_to_widget(*pointer))
            _draw_shape(painter, pts, QColor(*SELECTED_RGB), dashed=True)
        painter.restore()


def _draw_shape(painter: QPainter, pts: Sequence[QPointF], colour: QColor, dashed: bool = False) -> None:
    """Lines of a ruler (2 points), an angle (3) or two lines (4), with point markers."""
    pairs = [(0, 1)] if len(pts) <= 2 else [(0, 1), (1, 2)] if len(pts) == 3 else [(0, 1), (2, 3)]
    pairs = [(a, b) for a, b in pairs if b < len(pts)]
    for pen in (QPen(QColor(0, 0, 0), 4.0), QPen(colour, 2.0, Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)):
        painter.setPen(pen)
        for a, b in pairs:
            painter.drawLine(pts[a], pts[b])
    painter.setPen(QPen(QColor(0, 0, 0), 1.0))
    painter.setBrush(colour)
    for p in pts:
        painter.drawEllipse(p, 3.5, 3.5)
    painter.setBrush(Qt.BrushStyle.NoBrush)


def install_annotation_tools(window) -> QtAnnotationTools:
    """Add the ruler and angle tools to a main window's Tools menu and film views."""
    return QtAnnotationTools(window)
