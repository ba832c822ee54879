"""One film on screen: zoom, pan, window/level, landmarks, overlays and a loupe.

The widget paints a QImage of the film's display picture with a
:class:`ui._viewport.ViewTransform` (image coordinate (0, 0) is the centre of
the top-left pixel).  Landmark edits go through the plain functions of
:mod:`ui._interaction` into the session; the widget repaints on the session's
events.

Mouse: left-drag on a corner moves it, elsewhere pans (or places the next corner
in guided mode, or draws the calibration line); middle-drag pans; right-drag
changes window (horizontal) and level (vertical); wheel zooms about the cursor.
Keys: see :mod:`ui._interaction`; also ``F`` fit, ``1`` 1:1, ``I`` invert,
``R`` reset window/level.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.display import downscale_grey
from app.palette import ENDPLATE_RGB, OUTLINE_RGBA, PLACEMENT_RGB, SELECTED_RGB
from ui._interaction import (
    EditorState,
    KeyEvent,
    PointerEvent,
    key_press,
    pointer_move,
    pointer_press,
    pointer_release,
)
from ui._viewport import ViewTransform, mouse_to_widget, window_after_drag

__all__ = ["PLACEMENT_COLOURS", "WINDOW_PRESETS", "QtFilmView", "grey_qimage"]

WINDOW_PRESETS = ("DICOM default", "Bone", "Soft tissue", "Full range")
"""Window/level presets offered for every film (see :meth:`QtFilmView.apply_window_preset`)."""

PLACEMENT_COLOURS = {method: QColor(*rgb) for method, rgb in PLACEMENT_RGB.items()}
"""Corner marker fill by placement method (``app.palette``: the reports use the same)."""
_SELECTED = QColor(*SELECTED_RGB)
_NOT_CORRECTED = "not corrected for magnification"
_CORNER_NAMES = ("AS", "PS", "PI", "AI")
_CORNER_LONG = {
    "AS": "anterior-superior",
    "PS": "posterior-superior",
    "PI": "posterior-inferior",
    "AI": "anterior-inferior",
}

_KEYS = {
    Qt.Key.Key_Left: "left",
    Qt.Key.Key_Right: "right",
    Qt.Key.Key_Up: "up",
    Qt.Key.Key_Down: "down",
    Qt.Key.Key_Delete: "delete",
    Qt.Key.Key_Backspace: "delete",
    Qt.Key.Key_Tab: "tab",
    Qt.Key.Key_Backtab: "backtab",
    Qt.Key.Key_Escape: "escape",
}


#: One thread resamples the zoomed-out pictures (OpenCV releases the GIL: the UI keeps painting).
_SCALER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="film-downscale")


def grey_qimage(grey: np.ndarray) -> QImage:
    """A QImage owning a copy of an 8-bit grey picture of shape (rows, columns)."""
    h, w = grey.shape
    image = QImage(w, h, QImage.Format.Format_Grayscale8)
    buffer = np.frombuffer(image.bits(), dtype=np.uint8).reshape(h, image.bytesPerLine())
    buffer[:, :w] = grey
    return image


def _modifiers(mods: Qt.KeyboardModifier) -> frozenset[str]:
    out = set()
    if mods & Qt.KeyboardModifier.ShiftModifier:
        out.add("shift")
    if mods & Qt.KeyboardModifier.ControlModifier:
        out.add("control")
    if mods & Qt.KeyboardModifier.AltModifier:
        out.add("alt")
    return frozenset(out)


def _button(button: Qt.MouseButton) -> str:
    return {
        Qt.MouseButton.LeftButton: "left",
        Qt.MouseButton.RightButton: "right",
        Qt.MouseButton.MiddleButton: "middle",
    }.get(button, "none")


class QtFilmView(QWidget):
    """Shows the ``role`` film of ``session`` and edits its landmarks.

    Parameters
    ----------
    session : app.session.Session
    role : {"flexion", "extension"}

    Signals
    -------
    cursorMoved(str, float, float)
        Role and image ``(x, y)`` under the pointer.
    calibrationLineDrawn(str)
        The calibration line of this view is finished; the window asks the length.
    zoomChanged(str)
        The transform changed (for linked views and the status bar).
    """

    cursorMoved = Signal(str, float, float)
    calibrationLineDrawn = Signal(str)
    zoomChanged = Signal(str)
    selectionChanged = Signal(str)
    _scaledReady = Signal(object, object)  # (cache key, uint8 array) from the resampling thread
    bodyClicked = Signal(str)  # one-click mode: a point was taken inside the next body

    def __init__(self, session, role: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.state = EditorState(role=role)
        self.transform = ViewTransform()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(200, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._film = None
        self._image: QImage | None = None
        self._grey: np.ndarray | None = None
        self._window: tuple[float, float] | None = None  # None: the film's own default
        self._invert: bool | None = None
        self._preset = WINDOW_PRESETS[0]
        self._stats: tuple[float, ...] | None = None
        self._scaled_cache: tuple | None = None
        self._scaled_pending: object = None  # the cache key being resampled in the background
        self._prerendered: tuple | None = None  # (film, its default display picture) made off the UI thread
        self._pointer: QPointF | None = None
        self._drag: tuple[str, QPointF, object] | None = None
        self._needs_fit = True
        self.show_loupe = True
        self.show_corner_diagram = True
        # extra drawings over the film (e.g. the reader's rulers and angles,
        # ui.annotation_tools): callables (painter, view), after the landmarks
        self.overlay_painters: list = []
        session.events.films.connect(self._on_films_change)
        session.events.landmarks.connect(self._on_landmarks_change)
        session.events.calibration.connect(self._on_landmarks_change)
        session.events.levels.connect(self._on_any_change)
        session.events.selected_segment.connect(self._on_any_change)
        self._scaledReady.connect(self._on_scaled_ready, Qt.ConnectionType.QueuedConnection)
        self._on_films_change()

    # ----------------------------------------------------------------- properties

    @property
    def role(self) -> str:
        return self.state.role

    @property
    def film(self):
        """The film shown (``app.dicom_io.Film``) or None."""
        return self._film

    @property
    def window(self) -> tuple[float, float] | None:
        """``(center, width)`` in pixel units, or None for the film's default display."""
        return self._window

    @property
    def inverted(self) -> bool:
        """True when the grey levels are inverted relative to the film's default display."""
        return self._displayed_inverted() != bool(getattr(self._film, "invert", False))

    @property
    def window_preset(self) -> str:
        return self._preset

    @property
    def display_array(self) -> np.ndarray | None:
        """The 8-bit picture shown (window and inversion applied), shape (rows, columns)."""
        return self._grey

    # ----------------------------------------------------------------- session events

    def _on_films_change(self, event=None) -> None:
        state = self.session.film(self.role) if self.role in ("flexion", "extension") else None
        film = None if state is None else state.film
        if film is not self._film:
            self._film = film
            self._window = None
            self._invert = None
            self._preset = WINDOW_PRESETS[0]
            self._stats = None
            self._render()
            self._needs_fit = True
            self.state.selected = None
            self.state.dragging = None
            if self.width() > 0:
                self.fit()
        self.update()

    def _on_landmarks_change(self, event=None) -> None:
        if event is None or getattr(event, "info", {}).get("role") in (None, self.role):
            self.update()

    def _on_any_change(self, event=None) -> None:
        self.update()

    # ----------------------------------------------------------------- display

    def use_prerendered(self, film, grey: np.ndarray | None) -> None:
        """Use ``grey`` as ``film``'s default display picture when it is shown next
        (made with the loading, off the UI thread)."""
        self._prerendered = None if film is None or grey is None else (film, grey)

    def _render(self) -> None:
        if self._film is None:
            self._image = None
            self._grey = None
            return
        pre, self._prerendered = self._prerendered, None
        if pre is not None and pre[0] is self._film and self._window is None and self._invert is None:
            grey = pre[1]
        else:
            grey = self._film.display_image(self._window, self._invert)
        self._grey = np.ascontiguousarray(grey)
        self._image = grey_qimage(self._grey)
        self.update()

    def _percentiles(self) -> tuple[float, ...]:
        if self._stats is None:
            sample = np.asarray(self._film.pixels)[::4, ::4].astype(np.float64)
            self._stats = tuple(np.percentile(sample, [0, 2, 40, 60, 99.5, 100]))
        return self._stats

    def set_window(self, center: float, width: float) -> None:
        """Display with window ``(center, width)`` in pixel units."""
        if self._film is None:
            return
        self._window = (float(center), max(float(width), 1.0))
        self._preset = "Custom"
        self._render()

    def apply_window_preset(self, name: str) -> None:
        """One of :data:`WINDOW_PRESETS`.

        ``DICOM default`` is the film's own window (or VOI LUT); ``Full range``
        spans every pixel value; ``Bone`` and ``Soft tissue`` are heuristic
        windows over the bright (bone) or dark (soft tissue) part of the
        displayed histogram (40th-99.5th and 2nd-60th percentiles, mirrored for
        MONOCHROME1 films).
        """
        if self._film is None:
            return
        if name not in WINDOW_PRESETS:
            raise ValueError(f"name: unknown window preset {name!r}")
        if name == "DICOM default":
            self._window = None
        else:
            p0, p2, p40, p60, p995, p100 = self._percentiles()
            mono1 = bool(getattr(self._film, "invert", False))
            if name == "Full range":
                lo, hi = p0, p100
            elif name == "Bone":
                lo, hi = (p0, p60) if mono1 else (p40, p995)
            else:
                lo, hi = (p40, p995) if mono1 else (p2, p60)
            self._window = ((lo + hi) / 2, max(hi - lo + 1, 1.0))
        self._preset = name
        self._render()

    def reset_window(self) -> None:
        """Back to the film's default window and inversion."""
        self._invert = None
        self.apply_window_preset("DICOM default")

    def set_inverted(self, inverted: bool) -> None:
        """Show bone black (True) or white (False), independently of MONOCHROME1."""
        if self._film is None:
            return
        self._invert = bool(inverted)
        self._render()

    def toggle_invert(self) -> None:
        self.set_inverted(not self._displayed_inverted())

    def _displayed_inverted(self) -> bool:
        return bool(getattr(self._film, "invert", False)) if self._invert is None else self._invert

    def fit(self) -> None:
        """Whole film in the view."""
        if self._film is None:
            return
        rows, columns = self._film.pixels.shape[:2]
        self.transform = ViewTransform.fit(rows, columns, self.width(), self.height())
        self._needs_fit = False
        self.zoomChanged.emit(self.role)
        self.update()

    def one_to_one(self) -> None:
        """One screen pixel per image pixel, about the view's centre."""
        self.zoom_to(1.0)

    def zoom_to(self, scale: float, wx: float | None = None, wy: float | None = None) -> None:
        """Set the scale, keeping the image point under ``(wx, wy)`` (default: centre) still."""
        wx = self.width() / 2 if wx is None else wx
        wy = self.height() / 2 if wy is None else wy
        self.transform = self.transform.zoomed(scale / self.transform.scale, wx, wy)
        self.zoomChanged.emit(self.role)
        self.update()

    def centre_on(self, x: float, y: float, scale: float | None = None) -> None:
        """Put image point ``(x, y)`` at the centre of the view."""
        self.transform = self.transform.centred_on(x, y, self.width(), self.height(), scale)
        self.zoomChanged.emit(self.role)
        self.update()

    def image_to_widget(self, x: float, y: float) -> QPointF:
        return QPointF(*self.transform.to_widget(x, y))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._needs_fit or self._was_fitted(event.oldSize()):
            self.fit()  # a fitted film stays fitted and centred (one-film mode, window resize)

    def _was_fitted(self, old) -> bool:
        """Whether the view showed the film fitted to its previous size (not zoomed or panned since)."""
        if self._film is None or old.width() <= 0 or old.height() <= 0:
            return False
        rows, columns = self._film.pixels.shape[:2]
        before = ViewTransform.fit(rows, columns, old.width(), old.height())
        now = self.transform
        return bool(
            np.isclose(before.scale, now.scale, rtol=1e-9)
            and np.allclose(before.to_widget(0.0, 0.0), now.to_widget(0.0, 0.0), atol=1e-6)
        )

    # ----------------------------------------------------------------- mouse and keys

    def _pointer_event(self, pos: QPointF, button: str, mods) -> PointerEvent:
        wx, wy = mouse_to_widget(pos.x(), pos.y())
        return PointerEvent(self.transform.to_image(wx, wy), button, _modifiers(mods), self.transform.scale)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        pos = event.position()
        button = _button(event.button())
        if button == "right":
            self._drag = ("window", pos, self._window or self._current_window())
            return
        if button == "middle":
            self._drag = ("pan", pos, self.transform)
            return
        selected = self.state.selected
        used = pointer_press(self.session, self.state, self._pointer_event(pos, button, event.modifiers()))
        if used and self.state.mode == "clicks":
            self.bodyClicked.emit(self.role)
        elif used:
            self._drag = ("edit", pos, None)
        elif button == "left":
            self._drag = ("pan", pos, self.transform)
        if self.state.selected != selected:
            self.selectionChanged.emit(self.role)
        self.update()

    def _current_window(self) -> tuple[float, float]:
        if self._window is not None:
            return self._window
        return tuple(float(v) for v in getattr(self._film, "window", (0.0, 1.0)))  # type: ignore[return-value]

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        self._pointer = pos
        if self._drag is not None:
            kind, start, saved = self._drag
            if kind == "pan":
                self.transform = saved.panned(pos.x() - start.x(), pos.y() - start.y())
                self.zoomChanged.emit(self.role)
            elif kind == "window" and self._film is not None:
                p = self._percentiles()
                c, w = window_after_drag(saved, pos.x() - start.x(), pos.y() - start.y(), p[-1] - p[0])
                self.set_window(c, w)
            elif kind == "edit":
                pointer_move(self.session, self.state, self._pointer_event(pos, "left", event.modifiers()))
        x, y = self.transform.to_image(*mouse_to_widget(pos.x(), pos.y()))
        self.cursorMoved.emit(self.role, x, y)
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag is not None and self._drag[0] == "edit":
            pointer_release(self.session, self.state, self._pointer_event(event.position(), "left", event.modifiers()))
            if self.state.mode == "calibrate" and self.state.calibration_done:
                self.calibrationLineDrawn.emit(self.role)
        self._drag = None
        self.update()

    def leaveEvent(self, event) -> None:
        self._pointer = None
        self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if not steps:
            return
        pos = event.position()
        wx, wy = mouse_to_widget(pos.x(), pos.y())
        self.transform = self.transform.zoomed(1.25**steps, wx, wy)
        self.zoomChanged.emit(self.role)
        self.update()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = _KEYS.get(Qt.Key(event.key()))
        if key is not None:
            selected = self.state.selected
            if key_press(self.session, self.state, KeyEvent(key, _modifiers(event.modifiers()))):
                if self.state.selected != selected:
                    self.selectionChanged.emit(self.role)
                self.update()
                return
        text = event.text().lower()
        if text == "f":
            self.fit()
        elif text == "1":
            self.one_to_one()
        elif text == "i":
            self.toggle_invert()
        elif text == "r":
            self.reset_window()
        else:
            super().keyPressEvent(event)

    def focusNextPrevChild(self, next: bool) -> bool:
        return False  # Tab selects corners, it does not leave the view

    # ----------------------------------------------------------------- painting

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(0, 0, 0))
        if self._image is None:
            painter.setPen(QColor(170, 170, 170))
            painter.setFont(QFont(self.font().family(), 12))
            state = self.session.film(self.role)
            text = f"No {self.role} film"
            if state is not None and state.film is None:
                text = f"{self.role} film not found:\n{Path(state.image.path).name}"
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, text + "\n\nFile > Open films… or drop DICOM files here")
            painter.end()
            return
        self._draw_image(painter, self.transform, QRectF(self.rect()))
        self._draw_landmarks(painter, self.transform)
        if self.state.clicks:
            self._draw_clicks(painter, self.transform)
        for paint in self.overlay_painters:
            paint(painter, self)
        if self.state.calibration_line is not None:
            self._draw_calibration_line(painter, self.transform)
        self._draw_overlays(painter)
        if self.show_loupe and self._pointer is not None and (
            self.state.mode in ("guided", "calibrate") or self.state.dragging is not None
        ):
            self._draw_loupe(painter)
        painter.end()

    def _draw_clicks(self, painter: QPainter, t: ViewTransform) -> None:
        """The one-click points (a ring and the level it was taken for)."""
        painter.save()
        painter.setPen(QPen(QColor(255, 230, 0), 2))
        painter.setFont(QFont(self.font().family(), 10))
        for level, (x, y) in zip(self.session.levels, self.state.clicks, strict=False):
            wx, wy = t.to_widget(x, y)
            painter.drawEllipse(QPointF(wx, wy), 6.0, 6.0)
            painter.drawText(QPointF(wx + 9, wy + 4), level)
        painter.restore()

    def _scaled_image(self, scale: float) -> QImage | None:
        """The picture resampled smoothly to ``scale`` < 1, cached until zoom or window change.

        A new scale is resampled in a background thread (:func:`app.display.downscale_grey`);
        until it arrives this returns None and the film is drawn unsmoothed, then repainted.
        """
        key = (scale, self._image.cacheKey())
        if self._scaled_cache is not None and self._scaled_cache[0] == key:
            return self._scaled_cache[1]
        if self._scaled_pending != key:
            self._scaled_pending = key
            w = max(math.ceil(self._image.width() * scale), 1)
            h = max(math.ceil(self._image.height() * scale), 1)
            future = _SCALER.submit(downscale_grey, self._grey, w, h)
            future.add_done_callback(lambda f, k=key: self._deliver_scaled(k, f))
        return None

    def _deliver_scaled(self, key: object, future: Future) -> None:
        """In the resampling thread: hand the picture to the UI thread (queued signal)."""
        if future.cancelled() or future.exception() is not None:
            return
        try:
            self._scaledReady.emit(key, future.result())
        except RuntimeError:  # the view was deleted meanwhile
            pass

    def _on_scaled_ready(self, key: object, grey: np.ndarray) -> None:
        if self._scaled_pending != key:
            return  # zoom or window changed again: a newer picture is on its way
        self._scaled_pending = None
        self._scaled_cache = (key, grey_qimage(grey))
        self.update()

    def _draw_image(self, painter: QPainter, t: ViewTransform, clip: QRectF) -> None:
        rows, columns = self._grey.shape
        if t.scale < 1.0:
            # zoomed out: blit a smoothly downscaled copy (a smooth transform of the full
            # film on every paint costs ~8 ms; a drag repaints at every mouse move)
            scaled = self._scaled_image(t.scale)
            x0, y0 = t.to_widget(-0.5, -0.5)
            if scaled is None:  # the smooth picture is being made: unsmoothed meanwhile (~2 ms)
                painter.save()
                painter.setClipRect(clip)
                painter.drawImage(QRectF(x0, y0, columns * t.scale, rows * t.scale), self._image)
                painter.restore()
                return
            sx = scaled.width() / columns
            sy = scaled.height() / rows
            painter.save()
            painter.setClipRect(clip)
            painter.drawImage(
                QRectF(x0, y0, columns * t.scale, rows * t.scale),
                scaled,
                QRectF(0, 0, columns * sx, rows * sy),
            )
            painter.restore()
            return
        i0, j0, i1, j1 = t.visible_image_rect(clip.right() + 1, clip.bottom() + 1, rows, columns)
        if i1 <= i0 or j1 <= j0:
            return
        painter.save()
        painter.setClipRect(clip)
        smooth = t.scale < 2.0
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        x0, y0 = t.to_widget(i0 - 0.5, j0 - 0.5)
        target = QRectF(x0, y0, (i1 - i0) * t.scale, (j1 - j0) * t.scale)
        painter.drawImage(target, self._image, QRectF(i0, j0, i1 - i0, j1 - j0))
        painter.restore()

    def _draw_landmarks(self, painter: QPainter, t: ViewTransform, loupe: bool = False) -> None:
        state = self.session.film(self.role)
        if state is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        lm = state.landmarks
        placed = np.isfinite(lm).all(axis=-1)
        levels = self.session.levels
        selected_segment = self.session.selected_segment
        highlighted = set()
        if selected_segment is not None:
            highlighted = {(selected_segment, "inferior"), (selected_segment + 1, "superior")}

        def w(v: int, c: int) -> QPointF:
            return QPointF(*t.to_widget(*lm[v, c]))

        thin = QPen(QColor(*OUTLINE_RGBA), 1.0)
        for v in range(lm.shape[0]):
            # body outline
            corners = [c for c in range(4) if placed[v, c]]
            if len(corners) == 4:
                path = QPainterPath(w(v, 0))
                for c in (1, 2, 3, 0):
                    path.lineTo(w(v, c))
                painter.setPen(thin)
                painter.drawPath(path)
            for (a, b), side in (((0, 1), "superior"), ((2, 3), "inferior")):
                if placed[v, a] and placed[v, b]:
                    hl = (v, side) in highlighted
                    painter.setPen(QPen(_SELECTED if hl else QColor(*ENDPLATE_RGB), 3.0 if hl else 1.6))
                    painter.drawLine(w(v, a), w(v, b))
                    if hl and side == "superior":
                        # the lower endplate line, extended: the reference of the translation
                        pa, pb = np.asarray(lm[v, a]), np.asarray(lm[v, b])
                        d = pa - pb
                        ext_a, ext_b = pa + 0.6 * d, pb - 0.6 * d
                        painter.setPen(QPen(_SELECTED, 1.0, Qt.PenStyle.DashLine))
                        painter.drawLine(QPointF(*t.to_widget(*ext_a)), QPointF(*t.to_widget(*ext_b)))
            # level label beside the body
            if corners and not loupe:
                centre = lm[v, corners].mean(axis=0)
                px, py = t.to_widget(*centre)
                painter.setPen(QColor(255, 255, 255))
                font = QFont(self.font().family(), 11)
                font.setBold(True)
                painter.setFont(font)
                label = levels[v] if v < len(levels) else "?"
                rect = QRectF(px - 20, py - 10, 40, 20)
                painter.fillRect(rect, QColor(0, 0, 0, 140))
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)
        # corner markers
        r = 4.0 if not loupe else 5.0
        for v, c in np.argwhere(placed):
            method = state.placement[v, c] or "manual"
            colour = PLACEMENT_COLOURS.get(str(method), PLACEMENT_COLOURS["manual"])
            p = w(int(v), int(c))
            sel = self.state.selected == (int(v), int(c))
            painter.setPen(QPen(_SELECTED if sel else QColor(0, 0, 0), 2.0 if sel else 1.0))
            painter.setBrush(QBrush(colour))
            painter.drawEllipse(p, r + (2 if sel else 0), r + (2 if sel else 0))
            if loupe:
                painter.setPen(QPen(QColor(0, 0, 0), 1.0))
                painter.drawLine(QPointF(p.x() - r, p.y()), QPointF(p.x() + r, p.y()))
                painter.drawLine(QPointF(p.x(), p.y() - r), QPointF(p.x(), p.y() + r))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.restore()

    def _draw_calibration_line(self, painter: QPainter, t: ViewTransform) -> None:
        (x0, y0), (x1, y1) = self.state.calibration_line
        a, b = QPointF(*t.to_widget(x0, y0)), QPointF(*t.to_widget(x1, y1))
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(255, 0, 255), 2.0))
        painter.drawLine(a, b)
        for p in (a, b):
            painter.drawEllipse(p, 4, 4)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(b + QPointF(8, -8), f"{math.hypot(x1 - x0, y1 - y0):.1f} px")
        painter.restore()

    def overlay_texts(self) -> dict[str, list[str]]:
        """The four corner texts, as DICOM viewers show them (patient ID, never the name)."""
        film = self._film
        identity = getattr(film, "identity", None)
        state = self.session.film(self.role)
        study_date = getattr(identity, "study_date", None)
        view = str(getattr(getattr(film, "view", None), "value", getattr(film, "view", "")) or "unknown")
        fmt = str(getattr(film, "source_format", "dicom") or "dicom")
        dicom = fmt == "dicom"
        top_left = [
            f"ID: {getattr(identity, 'patient_id', None) or '—'}",
            f"Study date: {study_date.isoformat() if hasattr(study_date, 'isoformat') else (study_date or '—')}",
            f"DICOM view: {view}" if dicom else f"View: {view} ({fmt.upper()} file)",
        ]
        rows, columns = film.pixels.shape[:2]
        top_right = [Path(str(getattr(film, "path", "") or "")).name, f"{columns} × {rows} px"]
        cal = state.calibration if state is not None else None
        if cal is None or not cal.is_calibrated:
            bottom_left = ["UNCALIBRATED: no mm values", "Tools > Calibrate to draw a known length"]
        else:
            bottom_left = [
                f"{cal.column_spacing_mm:.4g} × {cal.row_spacing_mm:.4g} mm/px",
                f"Calibration: {cal.source}",
            ]
            if cal.warning:
                bottom_left.append(_NOT_CORRECTED)
        if self._window is None and getattr(film, "voi_lut", None) is not None:
            wl = "W/L: VOI LUT"
        else:
            c, wdt = self._current_window()
            wl = f"W {wdt:.0f}  L {c:.0f}"
        bottom_right = [
            f"Zoom {self.transform.scale * 100:.0f} %",
            f"{wl} ({self._preset if dicom or self._preset != 'DICOM default' else fmt.upper() + ' file range'})",
        ]
        if self._displayed_inverted() != bool(getattr(film, "invert", False)):
            bottom_right.append("Inverted")
        return {"top_left": top_left, "top_right": top_right, "bottom_left": bottom_left, "bottom_right": bottom_right}

    def prompt_text(self) -> str | None:
        """What the guided mode asks for next in this view, or None."""
        if self.state.mode == "calibrate":
            if self.state.calibration_done:
                return "Type the object's length"
            return "Calibrate: drag a line over an object of known length"
        if self.state.mode == "clicks":
            levels, n = self.session.levels, len(self.state.clicks)
            if n >= len(levels):
                return "Every body clicked"
            return (
                f"Click inside {levels[n]} (one click per body; or {levels[0]} and {levels[-1]} only, then O)"
            )
        if self.state.mode != "guided":
            return None
        target = self.session.next_missing_corner(self.role)
        if target is None:
            return "All corners placed (drag to adjust)"
        v, c = target
        name = _CORNER_NAMES[c]
        return f"Click {self.session.levels[v]} {name} ({_CORNER_LONG[name]})"

    def _draw_overlays(self, painter: QPainter) -> None:
        painter.save()
        font = QFont(self.font().family(), 10)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        line_h = metrics.height()
        texts = self.overlay_texts()
        margin = 8
        for key, lines in texts.items():
            right = key.endswith("right")
            bottom = key.startswith("bottom")
            for i, text in enumerate(lines):
                y = (self.height() - margin - (len(lines) - i) * line_h) if bottom else margin + i * line_h
                width = metrics.horizontalAdvance(text)
                x = self.width() - margin - width if right else margin
                colour = QColor(235, 235, 235)
                if key == "bottom_left" and (text.startswith("UNCALIBRATED") or text == _NOT_CORRECTED):
                    colour = QColor(255, 120, 90)
                painter.fillRect(QRectF(x - 3, y, width + 6, line_h), QColor(0, 0, 0, 150))
                painter.setPen(colour)
                painter.drawText(QRectF(x, y, width + 1, line_h), Qt.AlignmentFlag.AlignLeft, text)
        # the role, large, top centre, and the guided prompt below it
        big = QFont(self.font().family(), 14)
        big.setBold(True)
        painter.setFont(big)
        role = self.role.upper()
        m = painter.fontMetrics()
        width = m.horizontalAdvance(role) + 16
        rect = QRectF((self.width() - width) / 2, margin, width, m.height())
        painter.fillRect(rect, QColor(0, 0, 0, 170))
        painter.setPen(QColor(255, 210, 80))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, role)
        prompt = self.prompt_text()
        if prompt:
            painter.setFont(QFont(self.font().family(), 12))
            m = painter.fontMetrics()
            wdt = m.horizontalAdvance(prompt) + 16
            box = QRectF((self.width() - wdt) / 2, rect.bottom() + 6, wdt, m.height() + 8)
            painter.fillRect(box, QColor(20, 60, 120, 220))
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, prompt)
        if self.state.mode == "guided" and self.show_corner_diagram:
            self._draw_corner_diagram(painter)
        painter.restore()

    def corner_diagram_rect(self) -> QRectF:
        """Where the corner diagram goes: left edge, mid-height (clear of the corner texts)."""
        w, h = 170.0, 124.0
        return QRectF(8.0, max((self.height() - h) / 2, 8.0), w, h)

    def _anterior_left(self) -> bool:
        """Whether the front of the bodies is on the left, from the corners placed (default left)."""
        lm = self.session.landmarks(self.role)
        dx = lm[:, 0, 0] - lm[:, 1, 0]  # AS.x - PS.x per body
        dx = dx[np.isfinite(dx)]
        return True if dx.size == 0 else bool(np.median(dx) < 0)

    def _draw_corner_diagram(self, painter: QPainter) -> None:
        from ui.qt_help import draw_corner_diagram

        target = self.session.next_missing_corner(self.role)
        draw_corner_diagram(
            painter, self.corner_diagram_rect(), None if target is None else target[1], self._anterior_left()
        )

    def loupe_scale(self) -> float:
        """Loupe magnification, screen px per image px: 3 times the view's zoom, 1 to 16.

        Relative to the view, so at fit zoom it shows the body's corner (a few
        mm around the pointer) rather than single pixels of noise.
        """
        return min(max(self.transform.scale * 3.0, 1.0), 16.0)

    def loupe_rect(self, wx: float, wy: float, size: float = 180.0) -> QRectF:
        """The loupe's box for a pointer at widget ``(wx, wy)``: on the side away from the
        pointer, and clear of the overlay texts in the four corners."""
        texts = self.overlay_texts()
        line_h = QFontMetricsF(QFont(self.font().family(), 10)).height()
        right = wx < self.width() / 2
        side = "right" if right else "left"
        top_lines = len(texts.get(f"top_{side}", ()))
        bottom_lines = len(texts.get(f"bottom_{side}", ()))
        left = self.width() - size - 10 if right else 10.0
        upper = 8 + top_lines * line_h + 6
        lower = self.height() - 8 - bottom_lines * line_h - 6 - size
        if self.state.mode == "guided" and not right:  # keep the corner diagram visible
            diagram = self.corner_diagram_rect()
            upper, lower = upper, min(lower, diagram.top() - size - 4)
            if lower < upper:
                upper = lower = diagram.bottom() + 4
        top = lower if wy < self.height() / 2 else upper
        return QRectF(left, max(top, 0.0), size, size)

    def _draw_loupe(self, painter: QPainter) -> None:
        size = 180.0
        wx, wy = mouse_to_widget(self._pointer.x(), self._pointer.y())
        x, y = self.transform.to_image(wx, wy)
        scale = self.loupe_scale()
        box = self.loupe_rect(wx, wy, size)
        left, top = box.left(), box.top()
        t = ViewTransform(scale, 0, 0).centred_on(x, y, size, size)
        t = t.panned(left, top)
        painter.save()
        painter.setClipRect(box)
        painter.fillRect(box, QColor(0, 0, 0))
        self._draw_image(painter, t, box)
        self._draw_landmarks(painter, t, loupe=True)
        centre = QPointF(left + size / 2, top + size / 2)
        painter.setPen(QPen(QColor(255, 60, 60), 1.0))
        painter.drawLine(centre - QPointF(12, 0), centre - QPointF(3, 0))
        painter.drawLine(centre + QPointF(3, 0), centre + QPointF(12, 0))
        painter.drawLine(centre - QPointF(0, 12), centre - QPointF(0, 3))
        painter.drawLine(centre + QPointF(0, 3), centre + QPointF(0, 12))
        painter.setClipping(False)
        painter.setPen(QPen(QColor(255, 210, 80), 2.0))
        painter.drawRect(box)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(QRectF(left, top + size + 2, size, 18), Qt.AlignmentFlag.AlignHCenter, f"x {x:.2f}  y {y:.2f}  ×{scale:.0f}")
        painter.restore()
