"""The colours the viewer and the reports share, as RGB tuples (no Qt here).

The viewer (``ui/qt_film_view.py``, ``ui/qt_results.py``) builds its ``QColor``
objects from these; the PDF and PNG reports draw with the same values, so a
corner, an endplate or a finding looks the same on the screen and on paper.
"""

from __future__ import annotations

__all__ = [
    "ANNOTATION_RGB",
    "ENDPLATE_RGB",
    "FINDING_RGB",
    "FINDING_TEXT_RGB",
    "OUTLINE_RGBA",
    "PLACEMENT_RGB",
    "SELECTED_RGB",
    "hex_colour",
]

PLACEMENT_RGB: dict[str, tuple[int, int, int]] = {
    "manual": (0, 220, 255),
    "edited": (90, 255, 120),
    "refined": (120, 160, 255),
    "tracked": (255, 170, 40),
    "detected": (255, 110, 200),
}
"""Fill of a corner marker by how the corner was placed (``measure.PlacementMethod``)."""

ENDPLATE_RGB: tuple[int, int, int] = (0, 230, 255)
"""Endplate lines (``AS-PS`` superior, ``PI-AI`` inferior)."""

OUTLINE_RGBA: tuple[int, int, int, int] = (0, 200, 255, 120)
"""Thin outline of a body with four corners (alpha 0-255)."""

SELECTED_RGB: tuple[int, int, int] = (255, 235, 0)
"""The selected corner or segment."""

FINDING_RGB: dict[str, tuple[int, int, int]] = {
    "unstable": (150, 30, 30),
    "borderline-above": (176, 70, 0),
    "borderline-below": (255, 236, 179),
}
"""Background of a verdict (``measure.Verdict.key``) in the results table, and its mark on
a report's films."""

FINDING_TEXT_RGB: dict[str, tuple[int, int, int]] = {
    "unstable": (255, 255, 255),
    "borderline-above": (255, 255, 255),
    "borderline-below": (0, 0, 0),
}
"""Text drawn on :data:`FINDING_RGB`."""


ANNOTATION_RGB: tuple[int, int, int] = (255, 255, 255)
"""The reader's free rulers and angles (white on a black halo: no placement method or finding uses it)."""


def hex_colour(rgb: tuple[int, ...]) -> str:
    """``#rrggbb`` of an RGB(A) tuple (alpha dropped)."""
    r, g, b = rgb[:3]
    return f"#{r:02x}{g:02x}{b:02x}"
