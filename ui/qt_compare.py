"""Stabilised comparison: the two films superimposed with one body held still.

The extension film is warped onto the flexion film by the transform that maps
the segment's lower body onto itself (:func:`app.stabilise.stabilising_transform`),
then shown blended (slider) or flickering (timer), so that only the upper
body's motion remains visible.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.stabilise import stabilising_transform, warp_to
from ui.qt_film_view import grey_qimage

__all__ = ["QtStabilisedComparison"]


class _Canvas(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.pixmap: QPixmap | None = None
        self.marker: tuple[float, float] | None = None  # centre of rotation, picture pixels
        self.marker_label = ""
        self.setMinimumSize(400, 400)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.black)
        if self.pixmap is not None:
            scaled = self.pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            left, top = (self.width() - scaled.width()) // 2, (self.height() - scaled.height()) // 2
            painter.drawPixmap(left, top, scaled)
            if self.marker is not None:
                k = scaled.width() / self.pixmap.width()
                self._draw_marker(painter, QPointF(left + (self.marker[0] + 0.5) * k, top + (self.marker[1] + 0.5) * k))
        painter.end()

    def _draw_marker(self, painter: QPainter, at: QPointF) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for colour, width in ((QColor(0, 0, 0), 4.0), (QColor(255, 80, 60), 2.0)):
            painter.setPen(QPen(colour, width))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(at, 9, 9)
            painter.drawLine(at - QPointF(16, 0), at + QPointF(16, 0))
            painter.drawLine(at - QPointF(0, 16), at + QPointF(0, 16))
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        m = painter.fontMetrics()
        box = QRectF(at.x() + 14, at.y() + 10, m.horizontalAdvance(self.marker_label) + 10, m.height() + 4)
        painter.fillRect(box, QColor(0, 0, 0, 180))
        painter.setPen(QColor(255, 120, 100))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self.marker_label)


class QtStabilisedComparison(QDialog):
    """Blend or flicker of the two films for one segment.

    Attributes
    ----------
    ok : bool
        False when the lower body lacks corners on a film; ``reason`` says why.
    blended : ndarray of shape (rows, columns), uint8
        The picture currently shown (cropped around the segment).
    """

    def __init__(self, session, segment: int, views: dict, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Stabilised comparison")
        self.setModal(False)
        self.session = session
        self.views = views
        self.ok = True
        self.reason = ""
        layout = QVBoxLayout(self)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Segment:"))
        self.segment_combo = QComboBox()
        self.segment_combo.addItems(list(session.segments))
        controls.addWidget(self.segment_combo)
        controls.addWidget(QLabel("Flexion"))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setValue(50)
        controls.addWidget(self.slider, 1)
        controls.addWidget(QLabel("Extension"))
        self.flicker = QCheckBox("Flicker")
        controls.addWidget(self.flicker)
        layout.addLayout(controls)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        layout.addWidget(self.caption)
        # what the numbers mean: centre of rotation, translation per degree, disc heights
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.details)
        self.canvas = _Canvas()
        layout.addWidget(self.canvas, 1)
        self.resize(800, 800)
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._on_tick)
        self._phase = False
        self._flex: np.ndarray | None = None
        self._ext: np.ndarray | None = None
        self.blended: np.ndarray | None = None
        self._crop_origin = (0, 0)
        self.segment_combo.currentIndexChanged.connect(self.set_segment)
        self.slider.valueChanged.connect(self._compose)
        self.flicker.toggled.connect(self._on_flicker)
        self.segment_combo.setCurrentIndex(segment)
        self.set_segment(segment)

    def set_segment(self, segment: int) -> None:
        flex_state, ext_state = self.session.film("flexion"), self.session.film("extension")
        lower = segment + 1
        matrix = stabilising_transform(flex_state.landmarks, ext_state.landmarks, lower)
        if not np.isfinite(matrix).all():
            self.ok = False
            self.reason = (
                f"stabilised comparison of {self.session.segments[segment]}: place at least two corners of "
                f"{self.session.levels[lower]} on both films"
            )
            self.caption.setText(self.reason)
            return
        self.ok = True
        flex_img = self.views["flexion"].display_array
        ext_img = self.views["extension"].display_array
        warped = warp_to(ext_img, matrix, flex_img.shape)
        # crop around the two bodies of the segment (on the flexion film), with a margin
        pts = flex_state.landmarks[segment : segment + 2].reshape(-1, 2)
        pts = pts[np.isfinite(pts).all(axis=1)]
        rows, cols = flex_img.shape
        if len(pts):
            size = max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]), 50.0)
            x0, y0 = np.maximum(pts.min(axis=0) - size * 0.6, 0).astype(int)
            x1, y1 = np.minimum(pts.max(axis=0) + size * 0.6, [cols - 1, rows - 1]).astype(int) + 1
        else:
            x0, y0, x1, y1 = 0, 0, cols, rows
        self._crop_origin = (int(x0), int(y0))
        self._flex = np.ascontiguousarray(flex_img[y0:y1, x0:x1])
        self._ext = np.ascontiguousarray(warped[y0:y1, x0:x1])
        angle = np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))
        scale = np.hypot(matrix[0, 0], matrix[1, 0])
        self.caption.setText(
            f"{self.session.levels[lower]} held still (extension rotated {angle:+.1f}°, scaled ×{scale:.3f} onto flexion); "
            f"the motion of {self.session.levels[segment]} is what moves."
        )
        self._show_details(segment, x0, y0)
        self._compose()

    def _show_details(self, segment: int, x0: int, y0: int) -> None:
        d = self.session.segment_details(segment)
        lower = self.session.levels[segment + 1]
        lines = []
        if d["rotation_centre_px"] is not None:
            u, v = d["rotation_centre"]
            x, y = d["rotation_centre_px"]
            self.canvas.marker = (x - x0, y - y0)
            self.canvas.marker_label = "centre of rotation"
            lines.append(
                f"Centre of rotation (red cross): {100 * u:.0f} % of {lower}'s endplate depth from its posterior "
                f"corner, {100 * v:+.0f} % of the depth above its superior endplate."
            )
        else:
            self.canvas.marker = None
            lines.append(f"Centre of rotation: not shown ({d['rotation_centre_note']}).")
        per_degree = d["translation_per_degree_mm"]
        if per_degree is not None:
            lines.append(f"Translation per degree of rotation: {per_degree:+.2f} mm/°.")
        heights = []
        for role, h in d["disc_heights"].items():
            if h["anterior"] is not None or h["posterior"] is not None:
                a = "—" if h["anterior"] is None else f"{h['anterior']:.1f}"
                p = "—" if h["posterior"] is None else f"{h['posterior']:.1f}"
                heights.append(f"{role} anterior {a} / posterior {p} {h['unit']}")
        if heights:
            lines.append("Disc height: " + "; ".join(heights) + ".")
        self.details.setText("\n".join(lines))

    def _on_flicker(self, on: bool) -> None:
        if on:
            self._timer.start()
        else:
            self._timer.stop()
            self._compose()

    def _on_tick(self) -> None:
        self._phase = not self._phase
        self._compose()

    def _compose(self) -> None:
        if self._flex is None:
            return
        if self.flicker.isChecked():
            self.blended = self._ext if self._phase else self._flex
        else:
            alpha = self.slider.value() / 100.0
            self.blended = np.rint((1 - alpha) * self._flex + alpha * self._ext).astype(np.uint8)
        self.canvas.pixmap = QPixmap.fromImage(grey_qimage(self.blended))
        self.canvas.update()

    def closeEvent(self, event) -> None:
        self._timer.stop()
        super().closeEvent(event)
