"""PySide6 widgets of the lumbar-instability viewer.  No measurement logic lives here.

The model is :class:`app.session.Session`; these widgets subscribe to its events.
"""

from ui.qt_auto import QtAutoLandmarks
from ui.qt_banner import QtMessageBanner
from ui.qt_compare import QtStabilisedComparison
from ui.qt_film_view import QtFilmView
from ui.qt_main_window import QtMainWindow, run_viewer
from ui.qt_results import QtResultsPanel, QtThresholdsDialog

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
