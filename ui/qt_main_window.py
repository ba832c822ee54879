"""The viewer's main window: two films side by side, results, menus, banners.

All state lives in :class:`app.session.Session`; the window wires widgets to it.
Messages (bad files, mismatched patients, uncalibrated films) are banners in
the window, never only console output; modal questions go through the
overridable callables :attr:`QtMainWindow.ask_length`,
:attr:`QtMainWindow.ask_close` and :attr:`QtMainWindow.ask_save_path` so that
tests can answer them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

import measure
from app.atomic import atomic_write_text
from app.errors import UserError
from app.session import ROLES, ManualCalibration, Session, default_recovery_path
from ui.annotation_tools import install_annotation_tools
from ui.export_dialog import install_export
from ui.qt_auto import install_auto_landmarks
from ui.qt_banner import QtMessageBanner
from ui.qt_film_view import WINDOW_PRESETS, QtFilmView
from ui.qt_help import install_help
from ui.qt_results import QtResultsPanel
from ui.qt_review import install_review
from ui.qt_tasks import QtTaskRunner
from ui.reader_dialog import install_reader_dialog

__all__ = ["QtMainWindow"]

_log = logging.getLogger(__name__)
_MAX_RECENT = 8
_FILE_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recent-files")  # in order


def _looks_like_film(path: Path) -> bool:
    """Not a session (.json) nor a DICOM SR: a film to decode."""
    if path.suffix.lower() == ".json":
        return False
    try:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
    except Exception:  # not DICOM (PNG, JPEG, TIFF) or unreadable: load_film says why
        return True
    return ds.get("Modality") != "SR"


def _recent_path() -> Path:
    return default_recovery_path().parent / "recent.json"


class QtMainWindow(QMainWindow):
    """The lumbar-instability viewer.

    Parameters
    ----------
    session : Session, optional
        The model; a new one (autosaving to the default recovery file) by default.
    loader : callable, optional
        ``path -> Film`` (default :func:`app.dicom_io.load_film`).
    """

    def __init__(
        self,
        session: Session | None = None,
        loader: Callable[[str], object] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session if session is not None else Session(recovery_path=default_recovery_path())
        self.loader = loader
        self.setWindowTitle("lumbar-instability")
        self.resize(1500, 950)
        self.setAcceptDrops(True)
        # modal questions, replaceable by tests
        self.ask_length: Callable[[str, float], float | None] = self._ask_length_dialog
        self.ask_close: Callable[[], str] = self._ask_close_dialog
        self.ask_save_path: Callable[[], str | None] = self._ask_save_path_dialog

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.banner = QtMessageBanner()
        layout.addWidget(self.banner)
        # one line saying what to do next (issue #13: "one obvious path")
        self.hint_label = QLabel()
        self.hint_label.setObjectName("next-step-hint")
        self.hint_label.setStyleSheet(
            "QLabel#next-step-hint { background: #1d3b5c; color: white; padding: 4px 10px; font-size: 13px; }"
        )
        layout.addWidget(self.hint_label)
        self.views = {role: QtFilmView(self.session, role) for role in ROLES}
        self.film_splitter = QSplitter(Qt.Orientation.Horizontal)
        for role in ROLES:
            self.film_splitter.addWidget(self.views[role])
            self.views[role].cursorMoved.connect(self._on_cursor_moved)
            self.views[role].calibrationLineDrawn.connect(self._on_calibration_line)
            self.views[role].zoomChanged.connect(self._on_zoom_changed)
        self.results = QtResultsPanel(self.session, list(measure.CRITERIA_PRESETS))
        self.results.compareRequested.connect(self._on_compare_requested)
        self.main_splitter = QSplitter(Qt.Orientation.Vertical)
        self.main_splitter.addWidget(self.film_splitter)
        self.main_splitter.addWidget(self.results)
        self.main_splitter.setStretchFactor(0, 4)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setSizes([680, 260])
        layout.addWidget(self.main_splitter, 1)
        self.setCentralWidget(central)
        self.position_label = QLabel()
        self.statusBar().addPermanentWidget(self.position_label)

        self._build_actions()
        # Detect, Track, Refine, Auto, opening and export run off the UI thread (issue #13)
        self.tasks = QtTaskRunner(self)
        self.session.events.films.connect(self._on_films_change)
        self.session.events.messages.connect(self._on_messages_change)
        self.session.events.results.connect(self._update_borderline_hint)
        self.session.events.history.connect(self._on_history_change)
        self.session.events.dirty.connect(self._on_title_change)
        self.session.events.path.connect(self._on_title_change)
        self._recovery_file: Path | None = None
        # review mode (issue #6): a saved session or SR opens read-only; Edit makes a new version
        self.review = install_review(self)
        # one export dialog for PDF, SR, CSV and PNG (issue #13 §5)
        self.exporter = install_export(self)
        # the reader's free rulers and angles, and name/comment for the report
        self.annotation_tools = install_annotation_tools(self)
        self.reader_dialog = install_reader_dialog(self)
        # Track and Refine (issue #5): app.autolandmarks on the session's films
        self.auto = install_auto_landmarks(self)
        # Help: shortcuts generated from the actions, how to measure (issue #13)
        install_help(self)
        a = self.actions_by_name
        self.toolbar.insertActions(a["guided"], [a["auto"], a["detect"], a["track"]])
        self.toolbar.insertSeparator(a["guided"])
        self.session.events.label_review.connect(self._on_label_review)
        for name in ("films", "landmarks", "levels", "results"):
            getattr(self.session.events, name).connect(self.update_hint)
        self.tasks.started.connect(lambda _name: self.update_hint())
        self.tasks.finished.connect(lambda _name, _how: self.update_hint())
        self.actions_by_name["guided"].toggled.connect(lambda _on: self.update_hint())
        self._on_films_change()
        self._on_label_review()
        self._on_history_change()
        self._on_title_change()

    # ----------------------------------------------------------------- actions and menus

    def _action(self, text: str, slot, shortcut=None, checkable: bool = False, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(checkable)
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        a = self.actions_by_name = {}
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        a["open"] = self._action("&Open films…", self._open_files_dialog, QKeySequence.StandardKey.Open)
        a["open_folder"] = self._action("Open &folder…", self._open_folder_dialog)
        a["open_session"] = self._action("Open &session…", self._open_session_dialog, "Ctrl+Shift+O")
        a["save"] = self._action("&Save session", self.save, QKeySequence.StandardKey.Save)
        a["save_as"] = self._action("Save session &as…", self.save_as, "Ctrl+Shift+S")
        a["quit"] = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        for key in ("open", "open_folder", "open_session"):
            file_menu.addAction(a[key])
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        file_menu.addAction(a["save"])
        file_menu.addAction(a["save_as"])
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])
        self._refresh_recent_menu()

        edit = menu.addMenu("&Edit")
        a["undo"] = self._action("&Undo", self.session.undo, "Ctrl+Z")
        a["redo"] = self._action("&Redo", self.session.redo, "Ctrl+Shift+Z")
        a["undo"].setIconText("Undo")
        a["redo"].setIconText("Redo")
        edit.addAction(a["undo"])
        edit.addAction(a["redo"])

        view = menu.addMenu("&View")
        a["fit"] = self._action("&Fit to window", lambda: self._each_view("fit"))
        a["one_to_one"] = self._action("&1:1 pixels", lambda: self._each_view("one_to_one"))
        a["invert"] = self._action("&Invert", lambda: self._each_view("toggle_invert"))
        a["reset_window"] = self._action("&Reset window/level", lambda: self._each_view("reset_window"))
        for key in ("fit", "one_to_one", "invert", "reset_window"):
            view.addAction(a[key])
        presets = view.addMenu("Window &preset")
        for name in WINDOW_PRESETS:
            act = QAction(name, self)
            act.triggered.connect(lambda _=False, n=name: self._each_view("apply_window_preset", n))
            presets.addAction(act)
        a["link"] = self._action(
            "&Link the two films (zoom and pan)", lambda checked: None, "L", checkable=True,
            tip="Zooming or panning one film shows the same image point at the same zoom in the other",
        )
        view.addAction(a["link"])
        view.addSeparator()
        layout_group = QActionGroup(self)
        for key, text in (("both", "&Both films"), ("flexion", "Flexion &only"), ("extension", "E&xtension only")):
            act = QAction(text, self, checkable=True)
            act.triggered.connect(lambda _=False, k=key: self.set_layout(k))
            layout_group.addAction(act)
            view.addAction(act)
            a[f"layout_{key}"] = act
        a["layout_both"].setChecked(True)
        view.addSeparator()
        a["compare"] = self._action("&Stabilised comparison…", self.show_comparison, "Ctrl+K")
        view.addAction(a["compare"])

        marks = self.landmarks_menu = menu.addMenu("&Landmarks")
        a["guided"] = self._action(
            "&Guided placement", self._on_guided_toggled, "G", checkable=True,
            tip="Click each corner in turn: L1 AS, PS, PI, AI … S1 AS, PS",
        )
        a["shift_up"] = self._action("Shift level labels &up (e.g. T12)", lambda: self._try(self.session.shift_levels, -1), "[")
        a["shift_down"] = self._action("Shift level labels &down (e.g. L6)", lambda: self._try(self.session.shift_levels, 1), "]")
        a["confirm_labels"] = self._action(
            "&Confirm the level labels", self.session.confirm_labels, QKeySequence(Qt.Key.Key_Return),
            tip="The labels the detector was unsure of are right: the results count",
        )
        a["confirm_labels"].setShortcuts([QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter)])
        a["swap"] = self._action("S&wap flexion and extension", lambda: self._try(self.session.swap_films), "Ctrl+Shift+X")
        a["import_landmarks"] = self._action("&Import landmarks…", self._import_landmarks_dialog)
        for key in ("guided", "import_landmarks", "shift_up", "shift_down", "confirm_labels", "swap"):
            marks.addAction(a[key])

        tools = menu.addMenu("&Tools")
        for role in ROLES:
            a[f"calibrate_{role}"] = self._action(
                f"Calibrate {role} film (draw a known length)…", lambda _=False, r=role: self.start_calibration(r)
            )
            tools.addAction(a[f"calibrate_{role}"])
        a["uncalibrate"] = self._action("Remove manual calibrations", self._remove_manual_calibration)
        tools.addAction(a["uncalibrate"])

        toolbar = self.toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main-toolbar")
        for key in ("open", "save", "undo", "redo", "guided", "fit", "one_to_one", "invert", "swap", "compare"):
            toolbar.addAction(a[key])
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Window: "))
        self.window_combo = QComboBox()
        self.window_combo.addItems(list(WINDOW_PRESETS))
        self.window_combo.setToolTip("Window/level preset of both films (right-drag in a film to adjust)")
        self.window_combo.textActivated.connect(lambda name: self._each_view("apply_window_preset", name))
        toolbar.addWidget(self.window_combo)

    def _each_view(self, method: str, *args) -> None:
        for view in self.views.values():
            if view.isVisible() or not self.isVisible():
                getattr(view, method)(*args)

    # ----------------------------------------------------------------- model -> window

    def _on_films_change(self, event=None) -> None:
        roles = self.session.roles
        for key in ("save", "save_as", "guided", "swap", "compare", "shift_up", "shift_down", "import_landmarks"):
            self.actions_by_name[key].setEnabled(bool(roles))
        if len(roles) == 1:
            self.set_layout(roles[0])
        elif roles:
            self.set_layout("both")
        self._show_session_messages()

    def _show_session_messages(self) -> None:
        self.banner.clear(keep=("recovery",))
        mismatch = self.session.mismatch
        if mismatch:
            self.banner.show_message(
                "⚠ " + mismatch + " Check the patient and study before measuring.",
                "mismatch",
                key="mismatch",
                closable=False,
            )
        errors = self.session.errors
        for text in self.session.messages:
            if text != mismatch:
                self.banner.show_message(text, "error" if text in errors else "warning")
        self._show_safety()

    def _update_borderline_hint(self, event=None) -> None:
        """Most levels borderline: say what would resolve them (only when the text changes)."""
        hint = self.session.borderline_hint
        if hint == getattr(self, "_hint_text", None):
            return
        self._hint_text = hint
        if hint:
            self.banner.show_message(hint, "info", key="borderline-hint")
        else:
            self.banner.remove("borderline-hint")

    def _show_safety(self) -> None:
        """The session's safety warnings (app.safety): red until the reader acknowledges
        them (export waits for it), then amber and marked acknowledged."""
        self._hint_text = None
        self._update_borderline_hint()
        warnings = self.session.safety_warnings
        if not warnings:
            self.banner.remove("safety")
            return
        text = " ".join(w.message for w in warnings)
        if self.session.unacknowledged_safety:
            self.banner.show_message(
                "SAFETY: " + text + " Results do not count and export is blocked until you acknowledge.",
                "safety", key="safety", closable=False,
                action=("Acknowledge", self.session.acknowledge_safety),
            )
        else:
            self.banner.show_message("SAFETY (acknowledged): " + text, "warning", key="safety",
                                     closable=False)

    def _on_messages_change(self, event=None) -> None:
        self._show_session_messages()

    def _on_history_change(self, event=None) -> None:
        undo, redo = self.actions_by_name["undo"], self.actions_by_name["redo"]
        undo.setEnabled(self.session.can_undo)
        redo.setEnabled(self.session.can_redo)
        undo.setText(f"&Undo {self.session.undo_text}".rstrip())
        redo.setText(f"&Redo {self.session.redo_text}".rstrip())

    def _on_title_change(self, event=None) -> None:
        name = self.session.path.name if self.session.path else "untitled session"
        self.setWindowTitle(f"{'*' if self.session.dirty else ''}{name} — lumbar-instability")

    def _on_cursor_moved(self, role: str, x: float, y: float) -> None:
        film = self.views[role].film
        text = f"{role}: x {x:.2f}  y {y:.2f} px"
        if film is not None:
            rows, columns = film.pixels.shape[:2]
            i, j = round(x), round(y)  # the pixel whose centre is nearest
            if 0 <= i < columns and 0 <= j < rows:
                text += f"  value {film.pixels[j, i]:g}"
        self.position_label.setText(text)

    def _on_zoom_changed(self, role: str) -> None:
        if not self.actions_by_name["link"].isChecked() or getattr(self, "_linking", False):
            return
        source = self.views[role]
        other = self.views["extension" if role == "flexion" else "flexion"]
        if other.film is None:
            return
        x, y = source.transform.to_image(source.width() / 2, source.height() / 2)
        self._linking = True
        try:
            other.centre_on(x, y, source.transform.scale)
        finally:
            self._linking = False

    def _on_label_review(self, event=None) -> None:
        reason = self.session.label_review
        self.actions_by_name["confirm_labels"].setEnabled(reason is not None)
        if reason is None:
            self.banner.remove("labels")
        else:
            self.banner.show_message(
                f"Check the level labels: {reason}. Results do not count until you confirm them "
                "(Enter); [ and ] shift every label up or down first if they are wrong.",
                "warning",
                key="labels",
                action=("Confirm labels (Enter)", self.session.confirm_labels),
                closable=False,
            )
        self.update_hint()

    def update_hint(self, event=None) -> None:
        """Show the one-line hint of the next step (:func:`next_step_hint`)."""
        text = next_step_hint(
            self.session,
            busy=self.tasks.task.name if self.tasks.busy else None,
            guided=self.actions_by_name["guided"].isChecked(),
            review=bool(getattr(getattr(self, "review", None), "active", False)),
        )
        if self.hint_label.text() != text:
            self.hint_label.setText(text)

    def set_layout(self, which: str) -> None:
        """``"both"``, ``"flexion"`` or ``"extension"`` (one-film mode)."""
        for role, view in self.views.items():
            view.setVisible(which in ("both", role))
        self.actions_by_name[f"layout_{which}"].setChecked(True)

    # ----------------------------------------------------------------- opening

    def show_error(self, text: str) -> None:
        """A one-line error in the window (never only on the console)."""
        self.banner.show_message(text, "error")

    def report_internal_error(self, exc_type, exc, tb) -> None:
        """An unexpected exception in a slot: logged with its traceback, and a banner
        in the window (the viewer stays usable); installed as ``sys.excepthook``."""
        _log.error("internal error", exc_info=(exc_type, exc, tb))
        if isinstance(exc, UserError):
            self.show_error(str(exc))
            return
        self.show_error(
            f"Internal error: {exc_type.__name__}: {exc}. The action was not completed; "
            "your work is kept (autosaved)."
        )

    def _try(self, func, *args):
        try:
            return func(*args)
        except UserError as exc:
            self.show_error(str(exc))
        return None

    def open_paths(self, paths: Sequence[str | os.PathLike[str]]) -> bool:
        """Open DICOM files or a folder (or one session file); errors become banners."""
        paths = [str(p) for p in paths]
        if not paths:
            return False
        if not self._maybe_discard_changes():
            return False
        if len(paths) == 1 and paths[0].lower().endswith(".json"):
            return self.open_session(paths[0])
        try:
            self.session.open_paths(paths, loader=self.loader)
        except UserError as exc:
            self.show_error(str(exc))
            return False
        self._add_recent(paths)
        return True

    def open_films_in_background(self, paths: Sequence[str | os.PathLike[str]]) -> bool:
        """Open films (files or a folder) with the decoding off the UI thread; True when started.

        The files are read in the worker process (:func:`app.session.load_study`:
        decoding, the pair's safety checks and the display pictures), with
        progress in the status bar and Esc to cancel (the current films stay).
        A session or SR file opens at once (:meth:`open_paths`).  A file that
        cannot be read is one line in the window naming it; the others open.
        """
        from app.session import load_study

        paths = [str(p) for p in paths]
        if not paths:
            return False
        if len(paths) == 1 and Path(paths[0]).is_file() and not _looks_like_film(Path(paths[0])):
            return self.open_paths(paths)  # a session or SR: review mode decides
        if self.tasks.busy:
            self.statusBar().showMessage(
                f"{self.tasks.task.name} is still running: wait or press Esc to cancel it", 5000
            )
            return False
        if not self._maybe_discard_changes():
            return False
        loader = self.loader
        names = ", ".join(Path(p).name for p in paths)

        def work(checkpoint):
            if loader is not None:  # a loader of the caller's (tests): in this thread
                return load_study(paths, loader, display=True, checkpoint=checkpoint)
            from app.background import shared_worker

            return shared_worker().call(load_study, paths, display=True, checkpoint=checkpoint)

        def done(study) -> None:
            for role, view in self.views.items():
                view.use_prerendered(study.films.get(role), study.display.get(role))
            self.session.set_study(study)
            self._add_recent(paths)

        return self.tasks.start(f"Open {names}", work, done)

    def open_session(self, path: str | os.PathLike[str]) -> bool:
        try:
            self.session.load(path, loader=self.loader)
        except UserError as exc:
            self.show_error(str(exc))
            return False
        self._add_recent([str(path)])
        return True

    def _open_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open flexion and extension films", "", "DICOM (*.dcm *.dicom *.DCM);;All files (*)")
        if files:
            self.open_films_in_background(files)

    def _open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of films")
        if folder:
            self.open_films_in_background([folder])

    def _open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", "", "Session (*.json)")
        if path:
            self.open_paths([path])

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.open_films_in_background(paths))

    # recent files ---------------------------------------------------------

    def recent_files(self) -> list[list[str]]:
        if getattr(self, "_recent_items", None) is not None:  # written in the background, maybe not yet
            return [list(i) for i in self._recent_items]
        try:
            data = json.loads(_recent_path().read_text(encoding="utf-8"))
            return [list(map(str, item)) for item in data if isinstance(item, list)][:_MAX_RECENT]
        except (OSError, ValueError):
            return []

    def _add_recent(self, paths: Sequence[str]) -> None:
        entry = [str(Path(p).resolve()) for p in paths]
        items = ([entry] + [i for i in self.recent_files() if i != entry])[:_MAX_RECENT]
        self._recent_items = items
        text, target = json.dumps(items, indent=1), _recent_path()  # the path as of now

        def write() -> None:  # an atomic write syncs the disk: 10-20 ms, not on the UI thread
            try:
                atomic_write_text(target, text)
            except OSError as exc:
                _log.warning("cannot record recent files: %s", exc.strerror or exc)

        _FILE_WRITER.submit(write)
        self._refresh_recent_menu()

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = self.recent_files()
        for item in items:
            label = " + ".join(Path(p).name for p in item)
            act = self.recent_menu.addAction(label)
            act.setToolTip("\n".join(item))
            act.triggered.connect(lambda _=False, paths=item: self.open_films_in_background(paths))
        self.recent_menu.setEnabled(bool(items))

    # ----------------------------------------------------------------- landmarks

    def _on_guided_toggled(self, checked: bool) -> None:
        self.set_guided(bool(checked))

    def set_guided(self, on: bool) -> None:
        """Guided placement on or off in both views."""
        self.actions_by_name["guided"].setChecked(on)
        for view in self.views.values():
            view.state.mode = "guided" if on else "edit"
            view.update()

    def import_landmarks(self, path: str | os.PathLike[str]) -> bool:
        """Put a landmarks file's corners on the open films (one undoable edit)."""
        try:
            self.session.import_landmarks(path)
        except UserError as exc:
            self.show_error(str(exc))
            return False
        return True

    def _import_landmarks_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import landmarks", "", "Landmarks (*.json)")
        if path:
            self.import_landmarks(path)

    # ----------------------------------------------------------------- calibration

    def start_calibration(self, role: str) -> None:
        """Next drag in the ``role`` view draws the calibration line."""
        if role not in self.session.roles:
            self.show_error(f"no {role} film is open")
            return
        view = self.views[role]
        view.state.mode = "calibrate"
        view.state.calibration_line = None
        view.state.calibration_done = False
        view.setFocus()
        view.update()
        self.statusBar().showMessage(f"Drag a line over an object of known length on the {role} film", 8000)

    def _on_calibration_line(self, role: str) -> None:
        view = self.views[role]
        (x0, y0), (x1, y1) = view.state.calibration_line
        length_px = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
        length = self.ask_length(role, length_px)
        try:
            if length is not None:
                self.session.set_manual_calibration(role, ManualCalibration((x0, y0), (x1, y1), float(length)))
                self.statusBar().showMessage(f"{role} film calibrated: {length:g} mm over {length_px:.1f} px", 8000)
        except UserError as exc:
            self.show_error(str(exc))
        finally:
            view.state.mode = "guided" if self.actions_by_name["guided"].isChecked() else "edit"
            view.state.calibration_line = None
            view.state.calibration_done = False
            view.update()

    def _ask_length_dialog(self, role: str, length_px: float) -> float | None:
        value, ok = QInputDialog.getDouble(
            self, "Manual calibration", f"True length of the object on the {role} film (mm), line {length_px:.1f} px:",
            25.0, 0.01, 10000.0, 2,
        )
        return value if ok else None

    def _remove_manual_calibration(self) -> None:
        for role in self.session.roles:
            if self.session.film(role).manual_calibration is not None:
                self.session.set_manual_calibration(role, None)

    # ----------------------------------------------------------------- comparison

    def _on_compare_requested(self, segment: int) -> None:
        self.session.selected_segment = segment
        self.show_comparison()

    def show_comparison(self) -> None:
        from ui.qt_compare import QtStabilisedComparison

        if len(self.session.roles) != 2:
            self.show_error("the stabilised comparison needs a flexion and an extension film")
            return
        segment = self.session.selected_segment
        if segment is None:
            segment = len(self.session.segments) - 1
        self.comparison = QtStabilisedComparison(self.session, segment, self.views, self)
        if not self.comparison.ok:
            self.show_error(self.comparison.reason)
            return
        self.comparison.show()

    # ----------------------------------------------------------------- saving and closing

    def save(self) -> bool:
        if self.session.path is None:
            return self.save_as()
        return self._save_to(self.session.path)

    def save_as(self) -> bool:
        path = self.ask_save_path()
        return bool(path) and self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        try:
            self.session.save(path)
        except (UserError, OSError, ValueError) as exc:
            self.show_error(f"{path}: cannot save the session ({exc})")
            return False
        self._add_recent([str(path)])
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def _ask_save_path_dialog(self) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", "session.json", "Session (*.json)")
        return path or None

    def _ask_close_dialog(self) -> str:
        box = QMessageBox(self)
        box.setWindowTitle("Unsaved changes")
        box.setText("The session has unsaved changes. Save them?")
        box.setStandardButtons(
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel
        )
        answer = box.exec()
        return {
            QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard",
        }.get(QMessageBox.StandardButton(answer), "cancel")

    def _maybe_discard_changes(self) -> bool:
        """True when the current work may be replaced (saved, discarded or clean)."""
        if not self.session.dirty:
            return True
        answer = self.ask_close()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._maybe_discard_changes():
            event.ignore()
            return
        if self.tasks.busy:  # a background run must not outlive the window it reports to
            self.tasks.cancel()
            self.tasks.wait(30.0)
        self.session.discard_recovery()
        lock = getattr(self, "_instance_lock", None)
        if lock is not None:
            lock.release()
        event.accept()

    # ----------------------------------------------------------------- recovery

    def offer_recovery(self) -> bool:
        """If a previous run left unsaved work, move it aside and offer it in a banner.

        Not while another viewer is open (its recovery file is its live work):
        this window then autosaves to a file of its own.
        """
        from app.instance_lock import InstanceLock, other_instances

        state_dir = default_recovery_path().parent
        try:
            self._instance_lock = InstanceLock(state_dir)
            others = other_instances(state_dir)
        except OSError as exc:
            _log.warning("cannot write the instance lock in %s: %s", state_dir, exc.strerror or exc)
            others = []
        if others:
            if self.session.recovery_path is not None:
                self.session.recovery_path = self.session.recovery_path.with_name(
                    f"recovery.{os.getpid()}.autosave.json"
                )
            self.statusBar().showMessage(
                f"Another viewer is open (process {others[0]}): its unsaved work is not offered here", 10000
            )
            return False
        try:
            aside = self.session.set_aside_recovery()
        except OSError as exc:
            self.show_error(f"cannot read the recovery file: {exc.strerror or exc}")
            return False
        if aside is None:
            return False
        self._recovery_file = aside
        self.banner.show_message(
            "Unsaved work from a previous run was found (the viewer closed without saving).",
            "info",
            key="recovery",
            action=("Recover", self.recover),
        )
        return True

    def recover(self) -> None:
        """Reopen the work offered by :meth:`offer_recovery`."""
        try:
            self.session.recover(loader=self.loader, path=self._recovery_file)
        except (UserError, OSError, ValueError) as exc:
            self.show_error(f"cannot recover the previous work: {exc}")
            return
        self._recovery_file.unlink(missing_ok=True)


def next_step_hint(session: Session, busy: str | None = None, guided: bool = False, review: bool = False) -> str:
    """The one-line hint of what to do next, from the state of the session.

    Parameters
    ----------
    session : Session
    busy : str or None
        Name of the background task running, if any.
    guided : bool
        Guided placement is on.
    review : bool
        A report is shown read-only (review mode).
    """
    if busy:
        return f"{busy} is running: the films can be panned and zoomed meanwhile; Esc cancels (nothing is changed)."
    roles = session.roles
    if review and session.label_review is not None:
        return ("Review mode: the level labels wait for confirmation: Enter confirms them, [ or ] shifts them "
                "(starts a new version; the reviewed file is kept).")
    if review:
        return "Review mode (read-only): the values as reported. File › Edit the reviewed report to change it."
    if not roles:
        return "Next: open the flexion and extension films (File › Open films…, Ctrl+O, or drop them on the window)."
    placed = {r: int(np.isfinite(session.landmarks(r)).all(-1).sum()) for r in roles}
    needed = len(session.corner_order())
    if session.label_review is not None:
        return "Next: check the level labels on the films; Enter confirms them, [ or ] shifts them first."
    if all(n == 0 for n in placed.values()):
        if guided:
            return "Guided placement: click the corners in the order asked on the film (see the diagram)."
        return (
            "Next: press Auto (Ctrl+Shift+A) to find the bodies, or G for guided placement "
            "(click AS, PS, PI, AI of each body)."
        )
    if len(roles) == 2:
        short = [r for r in roles if placed[r] < needed]
        if len(short) == 1 and placed[short[0]] == 0:
            other = "flexion" if short[0] == "extension" else "extension"
            return f"Next: Track (T) carries the bodies from the {other} film to the {short[0]} film."
        if short:
            missing = ", ".join(f"{r} {needed - placed[r]}" for r in short)
            return f"Next: place the missing corners ({missing}); Auto or Track fill them from the other film."
    uncalibrated = [r for r in roles if not session.calibration(r).is_calibrated]
    if uncalibrated:
        return (
            f"Next: the {' and '.join(uncalibrated)} film has no pixel spacing: Tools › Calibrate for millimetres; "
            "% of endplate depth is shown meanwhile."
        )
    if len(roles) == 1:
        return "One film: its own angles are shown; open the other film to measure the motion."
    detected = any(
        m in ("detected", "tracked") for r in roles for m in session.film(r).placement.ravel() if m is not None
    )
    if detected:
        return "Next: check each automatic corner (drag to correct); then Ctrl+K shows the stabilised comparison."
    return "Done: the results are below. Ctrl+K shows the stabilised comparison, Ctrl+E exports the report."


def run_viewer(
    paths: Sequence[str] = (),
    session_path: str | None = None,
    *,
    landmarks: str | None = None,
    screenshot: str | None = None,
) -> int:
    """Start the Qt application with the viewer; returns the exit status.

    Parameters
    ----------
    paths : sequence of str
        Films or a folder to open.
    session_path : str, optional
        A session file to reopen instead.
    landmarks : str, optional
        A landmarks/session file whose corners are put on the opened films.
    screenshot : str, optional
        Save a PNG of the window once shown, then quit (tests, documentation).
    """
    app = QApplication.instance() or QApplication([])
    app.setApplicationName("lumbar-instability")
    window = QtMainWindow()
    sys.excepthook = window.report_internal_error  # never only a console traceback
    stall_log = os.environ.get("LUMBAR_INSTABILITY_STALL_LOG")
    if stall_log:  # diagnosis: log every UI stall above this many ms, with what ran
        from ui.stall_probe import install_stall_log

        install_stall_log(window, float(stall_log))
    window.show()
    if screenshot is None:
        window.offer_recovery()
    else:
        window.session.recovery_path = None  # a picture run leaves no recovery file
    if session_path:
        window.open_session(session_path)
    elif paths and screenshot is None and not landmarks:
        window.open_films_in_background(paths)  # the window paints while the films decode
    elif paths:
        window.open_paths(paths)
    if landmarks and window.session.roles:
        window.import_landmarks(landmarks)
    if screenshot:

        def shoot() -> None:
            window.grab().save(screenshot)
            window.ask_close = lambda: "discard"  # a picture run saves nothing
            app.quit()

        QTimer.singleShot(800, shoot)
    return app.exec()
