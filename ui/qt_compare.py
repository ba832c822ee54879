"""Stabilised comparison: the two films superimposed with one body held still.

The extension film is warped onto the flexion film by the transform that maps
the segment's lower body onto itself (:func:`app.stabilise.stabilising_transform`),
then shown blended (slider) or flickering (timer), so that only the upper
body's motion remains visible.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPainter, QPixmap
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
        self.setMinimumSize(400, 400)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.black)
        if self.pixmap is not None:
            scaled = self.pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            painter.drawPixmap((self.width() - scaled.width()) // 2, (self.height() - scaled.height()) // 2, scaled)
        painter.end()


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
        self._compose()

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
