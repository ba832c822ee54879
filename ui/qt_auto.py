"""Automatic landmarks in the viewer: Landmarks › Track, Refine and Detect actions.

The algorithms and their wiring to films are :mod:`app.autolandmarks` (issue
#5); this module only calls them on the session's films and puts the result in
the session as one undoable edit (:meth:`app.session.Session.merge_landmarks`).
A body the tool could not place keeps the reader's corners and its reason is
shown in the window, never hidden.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication

from app import autolandmarks
from app.session import ROLES

__all__ = ["QtAutoLandmarks", "install_auto_landmarks"]


def _other(role: str) -> str:
    return "extension" if role == "flexion" else "flexion"



@contextmanager
def _wait_cursor() -> Iterator[None]:
    """The busy cursor while an automatic landmark method runs."""
    QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        yield
    finally:
        QGuiApplication.restoreOverrideCursor()

class QtAutoLandmarks:
    """Track and Refine actions of one :class:`ui.qt_main_window.QtMainWindow`.

    Attributes
    ----------
    last_summary : list of str
        What the last run placed or could not place, one line per body.
    """

    def __init__(self, window) -> None:
        self.window = window
        self.session = window.session
        self.last_summary: list[str] = []
        menu = window.landmarks_menu
        menu.addSeparator()
        actions = window.actions_by_name
        for source in ROLES:
            target = _other(source)
            act = QAction(f"&Track {source} → {target} (carry the bodies over)", window)
            act.setStatusTip(
                f"Find each body outlined on the {source} film in the {target} film by rigid "
                "registration of its own pixels"
            )
            act.triggered.connect(lambda _=False, s=source: self.track(s))
            menu.addAction(act)
            actions[f"track_{source}"] = act
        for role in ROLES:
            act = QAction(f"&Refine corners on the {role} film (snap to the cortex)", window)
            act.triggered.connect(lambda _=False, r=role: self.refine(r))
            menu.addAction(act)
            actions[f"refine_{role}"] = act
        for role in ROLES:
            act = QAction(f"&Detect vertebrae on the {role} film (no clicks; review them)", window)
            act.triggered.connect(lambda _=False, r=role: self.detect(r))
            menu.addAction(act)
            actions[f"detect_{role}"] = act
        self.session.events.films.connect(self._on_films_change)
        self._on_films_change()

    def _on_films_change(self, event=None) -> None:
        roles = self.session.roles
        actions = self.window.actions_by_name
        for role in ROLES:
            actions[f"track_{role}"].setEnabled(len(roles) == 2)
            actions[f"refine_{role}"].setEnabled(role in roles)
            actions[f"detect_{role}"].setEnabled(role in roles)

    def _film(self, role: str) -> Any:
        state = self.session.film(role)
        if state is None or state.film is None:
            self.window.show_error(f"the {role} film is not open: its pixels are needed")
            return None
        return state.film

    def _apply(self, role: str, outcome, description: str) -> int:
        if not outcome:
            self.window.show_error(f"{description} ({role}): {outcome.reason}")
            self.last_summary = [outcome.reason]
            return 0
        n = self.session.merge_landmarks(role, outcome.corners, outcome.placement, outcome.sd_mm, description)
        self.last_summary = outcome.summary()
        failures = [f"{level}: {reason}" for level, reason in outcome.failures.items()]
        text = f"{description} ({role}): {n} corners placed"
        if failures:
            self.window.banner.show_message(
                f"{text}; not placed, your corners kept: " + "; ".join(failures), "warning"
            )
        self.window.statusBar().showMessage(text, 8000)
        return n

    def track(self, source: str) -> int:
        """Carry the bodies outlined on ``source`` to the other film; returns corners placed."""
        target = _other(source)
        films = self._film(source), self._film(target)
        if films[0] is None or films[1] is None:
            return 0
        corners = self.session.landmarks(source)
        if not np.isfinite(corners).any():
            self.window.show_error(f"track: outline the bodies on the {source} film first")
            return 0
        with _wait_cursor():
            outcome = autolandmarks.track_film(
                films[0], corners, films[1],
                levels=self.session.levels, target_calibration=self.session.calibration(target),
            )  # fmt: skip
        return self._apply(target, outcome, f"Track from {source}")

    def refine(self, role: str) -> int:
        """Snap the placed corners of ``role`` to the cortical corners; returns corners moved."""
        film = self._film(role)
        if film is None:
            return 0
        corners = self.session.landmarks(role)
        if not np.isfinite(corners).any():
            self.window.show_error(f"refine: place the corners on the {role} film first")
            return 0
        with _wait_cursor():
            outcome = autolandmarks.refine_film(
                film, corners, levels=self.session.levels, calibration=self.session.calibration(role)
            )
        return self._apply(role, outcome, "Refine")

    def detect(self, role: str) -> int:
        """Find the bodies on ``role`` without any click; returns corners placed.

        Detected corners replace the film's corners of the bodies found (one undo
        step); they are ``detected`` (unreviewed, larger SD) until moved.
        """
        film = self._film(role)
        if film is None:
            return 0
        with _wait_cursor():
            outcome = autolandmarks.detect_film(
                film, levels=self.session.levels, calibration=self.session.calibration(role)
            )
        return self._apply(role, outcome, "Detect")


def install_auto_landmarks(window) -> QtAutoLandmarks:
    """Add the automatic landmark actions to a main window's Landmarks menu."""
    return QtAutoLandmarks(window)
