"""PySide6 widgets of the lumbar-instability viewer.  No measurement logic lives here.

The model is :class:`app.session.Session`; these widgets subscribe to its events.
The names below are imported on first use, so that ``ui.launcher`` (the
``lumbar-instability`` script) runs the non-Qt commands on a headless install
and ``view`` can say how to install the viewer.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "QtAutoLandmarks",
    "QtFilmView",
    "QtMainWindow",
    "QtMessageBanner",
    "QtResultsPanel",
    "QtStabilisedComparison",
    "QtThresholdsDialog",
    "run_viewer",
]

_WHERE = {
    "QtAutoLandmarks": "ui.qt_auto",
    "QtMessageBanner": "ui.qt_banner",
    "QtStabilisedComparison": "ui.qt_compare",
    "QtFilmView": "ui.qt_film_view",
    "QtMainWindow": "ui.qt_main_window",
    "run_viewer": "ui.qt_main_window",
    "QtResultsPanel": "ui.qt_results",
    "QtThresholdsDialog": "ui.qt_results",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'ui' has no attribute {name!r}")
