"""Screen <-> image coordinate mapping and window/level arithmetic of a film view.

Pure Python (no Qt), so the half-pixel convention is tested without a display.

Image coordinates are ``(x, y)`` = (column, row) with the origin at the *centre*
of the top-left pixel: pixel ``(i, j)`` covers ``[i - 0.5, i + 0.5) x
[j - 0.5, j + 0.5)``.  Widget coordinates are Qt's logical coordinates, where a
widget pixel ``(p, q)`` covers ``[p, p + 1) x [q, q + 1)``; a mouse position is
a pixel index, so the pointer's hotspot is that pixel's centre ``(p + 0.5, q + 0.5)``
(:func:`mouse_to_widget`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "MAX_SCALE",
    "MIN_SCALE",
    "ViewTransform",
    "mouse_to_widget",
    "window_after_drag",
]

MIN_SCALE = 0.02
MAX_SCALE = 64.0


def mouse_to_widget(px: float, py: float) -> tuple[float, float]:
    """The widget point a mouse position stands for: the centre of its pixel."""
    return px + 0.5, py + 0.5


@dataclass(frozen=True)
class ViewTransform:
    """Where the image lies in the widget.

    Parameters
    ----------
    scale : float
        Widget pixels per image pixel (1.0 is 1:1).
    origin_x, origin_y : float
        Widget position of the image's top-left *edge*, i.e. of image
        coordinate ``(-0.5, -0.5)``.

    Notes
    -----
    ``widget = (image + 0.5) * scale + origin`` and its inverse
    ``image = (widget - origin) / scale - 0.5``.
    """

    scale: float = 1.0
    origin_x: float = 0.0
    origin_y: float = 0.0

    def to_widget(self, x: float, y: float) -> tuple[float, float]:
        """Image ``(x, y)`` -> widget point."""
        return ((x + 0.5) * self.scale + self.origin_x, (y + 0.5) * self.scale + self.origin_y)

    def to_image(self, wx: float, wy: float) -> tuple[float, float]:
        """Widget point -> image ``(x, y)``."""
        return ((wx - self.origin_x) / self.scale - 0.5, (wy - self.origin_y) / self.scale - 0.5)

    def zoomed(self, factor: float, wx: float, wy: float) -> ViewTransform:
        """Zoom by ``factor`` keeping the image point under widget point ``(wx, wy)`` still."""
        scale = min(max(self.scale * factor, MIN_SCALE), MAX_SCALE)
        x, y = self.to_image(wx, wy)
        return ViewTransform(scale, wx - (x + 0.5) * scale, wy - (y + 0.5) * scale)

    def panned(self, dx: float, dy: float) -> ViewTransform:
        """Move the image by ``(dx, dy)`` widget pixels."""
        return ViewTransform(self.scale, self.origin_x + dx, self.origin_y + dy)

    def centred_on(self, x: float, y: float, width: float, height: float, scale: float | None = None) -> ViewTransform:
        """Put image point ``(x, y)`` at the centre of a ``width x height`` widget."""
        s = self.scale if scale is None else min(max(scale, MIN_SCALE), MAX_SCALE)
        return ViewTransform(s, width / 2 - (x + 0.5) * s, height / 2 - (y + 0.5) * s)

    @classmethod
    def fit(cls, rows: int, columns: int, width: float, height: float, margin: float = 4.0) -> ViewTransform:
        """The whole image, centred, as large as fits in ``width x height``."""
        avail_w, avail_h = max(width - 2 * margin, 1.0), max(height - 2 * margin, 1.0)
        scale = min(avail_w / max(columns, 1), avail_h / max(rows, 1))
        scale = min(max(scale, MIN_SCALE), MAX_SCALE)
        return cls(scale, (width - columns * scale) / 2, (height - rows * scale) / 2)

    def visible_image_rect(self, width: float, height: float, rows: int, columns: int) -> tuple[int, int, int, int]:
        """Pixel index range ``(i0, j0, i1, j1)`` (end exclusive) drawn in the widget."""
        x0, y0 = self.to_image(0.0, 0.0)
        x1, y1 = self.to_image(width, height)
        i0 = max(math.floor(x0 + 0.5), 0)
        j0 = max(math.floor(y0 + 0.5), 0)
        i1 = min(math.ceil(x1 + 0.5), columns)
        j1 = min(math.ceil(y1 + 0.5), rows)
        return i0, j0, max(i1, i0), max(j1, j0)


def window_after_drag(
    window: tuple[float, float], dx: float, dy: float, value_range: float
) -> tuple[float, float]:
    """Window ``(center, width)`` after a right-drag of ``(dx, dy)`` widget pixels.

    Dragging right widens the window, dragging down raises the level (the
    convention of most DICOM workstations); 1 pixel moves by 0.2 % of the data's
    value range, so a drag across a screen covers the whole range.
    """
    step = max(float(value_range), 1.0) * 0.002
    center, width = window
    return (center + dy * step, max(width + dx * step, 1.0))
