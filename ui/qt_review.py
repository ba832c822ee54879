"""Review mode and report export for the viewer.

Opening a saved session (``.json``) or an SR written by this tool (``.dcm``)
shows the films with the saved landmarks and the result table *exactly as
reported* (the saved rows, not a recomputation), read-only: landmarks cannot
be moved, the criteria cannot be changed, nothing can be saved over the file.
"Edit" ends review mode; the next save writes a new version beside the
original (``session.v2.json``, ``session.v3.json`` …), never over it.

When the films are not where the session says, the user is asked for a folder
and the films are found in it by SOP Instance UID, preferring the file whose
SHA-256 matches the one recorded.  A film whose content changed is flagged.

Integration (one hook in :class:`ui.qt_main_window.QtMainWindow`):
``install_review(window)`` adds File → "Open report for review…", "Export
report…" and routes ``window.open_session`` / ``window.open_paths`` of a
session or SR file through review mode.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QAction, QBrush, QColor, QKeySequence, QMouseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.errors import UserError
from app.report_data import (
    VIEWS,
    ReportData,
    find_images_by_uid,
    read_session_file,
    reader_fields,
    report_from_session,
)
from app.report_verify import STORED_VALUES_DIFFER
from ui.qt_film_view import PLACEMENT_COLOURS
from ui.qt_results import COLUMNS, format_row, table_cell

__all__ = ["QtReviewController", "QtReviewPanel", "install_review", "local_time", "next_version_path"]

_EDIT_ACTIONS = ("save", "save_as", "undo", "redo", "guided", "shift_up", "shift_down", "swap",
                 "calibrate_flexion", "calibrate_extension", "uncalibrate",
                 "tool_ruler", "tool_angle", "tool_lines", "tool_delete", "reader")
_VIEW_KEYS = {Qt.Key.Key_F, Qt.Key.Key_1, Qt.Key.Key_I, Qt.Key.Key_R}
_FINDING_COLOURS = {"unstable": QColor(150, 30, 30), "borderline": QColor(140, 100, 0)}


def local_time(iso: Any) -> str:
    """An ISO 8601 time (as saved, UTC) shown in the local time zone, e.g. ``2026-12-03 18:40 CET``."""
    import datetime as dt

    if not iso:
        return "at an unknown time"
    try:
        when = dt.datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()


def _html(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def next_version_path(path: str | os.PathLike[str]) -> Path:
    """The first free ``stem.vN.json`` beside ``path`` (N >= 2), e.g. for
    ``study.json`` -> ``study.v2.json``; ``study.v2.json`` -> ``study.v3.json``;
    ``report.dcm`` -> ``report.v2.json``."""
    path = Path(path)
    stem = path.stem
    base, n = stem, 2
    head, dot, tail = stem.rpartition(".v")
    if dot and tail.isdigit():
        base, n = head, int(tail) + 1
    while (candidate := path.with_name(f"{base}.v{n}.json")).exists():
        n += 1
    return candidate


def _is_sr(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9,
                                                                 abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


class QtReviewPanel(QWidget):
    """The result table exactly as reported, with where it came from and an Edit button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        top = QHBoxLayout()
        self.source_label = QLabel()
        self.source_label.setObjectName("review-source")
        self.source_label.setWordWrap(True)
        top.addWidget(self.source_label, 1)
        self.edit_button = QPushButton("Edit (saves as a new version)")
        self.edit_button.setObjectName("review-edit")
        top.addWidget(self.edit_button)
        layout.addLayout(top)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("review-table")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table, 1)
        self.calibration_label = QLabel()
        self.calibration_label.setObjectName("review-calibration")
        self.calibration_label.setWordWrap(True)
        layout.addWidget(self.calibration_label)
        self.legend_label = QLabel()
        self.legend_label.setObjectName("review-legend")
        layout.addWidget(self.legend_label)
        self.warnings_label = QLabel()
        self.warnings_label.setObjectName("review-warnings")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet("color: #8a4b00;")
        layout.addWidget(self.warnings_label)

    def show_report(self, report: ReportData, source: Path) -> None:
        """Fill the table with the saved rows of ``report``, who measured it, when, and every warning."""
        roles = tuple(v for v in VIEWS if v in report.films)
        reader, comment = reader_fields(report.session)
        by = f"measured by <b>{_html(reader)}</b>" if reader else "reader not recorded"
        if comment:
            by += f" ({_html(comment)})"
        self.source_label.setText(
            f"<b>Review (read-only)</b>: {_html(source.name)} — {by}, saved "
            f"{local_time(report.session.get('saved_at'))} with lumbar-instability "
            f"{report.software_version}; criteria {report.criteria}. The table shows the values as reported.")
        self.table.setRowCount(len(report.rows))
        for r, row in enumerate(report.rows):
            # the status follows the one verdict rule (measure.verdict_of_record), as the viewer
            texts, tips, finding = format_row(dict(row), roles)
            for c, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if tips[c]:
                    item.setToolTip(tips[c])
                if finding in _FINDING_COLOURS and c == len(texts) - 1:
                    item.setForeground(QBrush(_FINDING_COLOURS[finding]))
                self.table.setItem(r, c, item)
        parts = []
        for view in roles:
            cal = report.films[view].calibration
            text = f"{view}: {cal.source}"
            if cal.warning:
                text += f" ({cal.warning})"
            parts.append(text)
        self.calibration_label.setText("Calibration — " + "; ".join(parts))
        # how each corner was placed (the colours of the films) and every warning of the report
        methods = sorted({
            str(m) for view in roles
            for marks in ((report.session.get(view) or {}).get("placement") or {}).values()
            for m in (marks or {}).values()
        })
        self.legend_label.setText("Corners: " + "  ".join(
            f"<span style='color:{PLACEMENT_COLOURS.get(m, PLACEMENT_COLOURS['manual']).name()}'>●</span> {m}"
            for m in methods) if methods else "")
        warnings = list(dict.fromkeys([*report.warnings, *report.measurement_warnings]))
        self.warnings_label.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warnings_label.setVisible(bool(warnings))

    def cell(self, segment: str, column: str) -> str:
        """Text shown for ``segment`` in ``column`` (a name of :data:`ui.qt_results.COLUMNS`)."""
        return table_cell(self.table, segment, column)


class _ReadOnlyFilter(QObject):
    """Swallows what would edit landmarks in a film view; left-drag pans instead."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease,
                    QEvent.Type.MouseButtonDblClick):
            if event.button() == Qt.MouseButton.LeftButton:
                if kind == QEvent.Type.MouseButtonDblClick:
                    return True
                pan = QMouseEvent(kind, QPointF(event.position()), QPointF(event.globalPosition()),
                                  Qt.MouseButton.MiddleButton,
                                  Qt.MouseButton.MiddleButton if kind == QEvent.Type.MouseButtonPress
                                  else Qt.MouseButton.NoButton, event.modifiers())
                if kind == QEvent.Type.MouseButtonPress:
                    obj.mousePressEvent(pan)
                else:
                    obj.mouseReleaseEvent(pan)
                return True
        if kind == QEvent.Type.KeyPress and Qt.Key(event.key()) not in _VIEW_KEYS:
            return True
        return False


class QtReviewController(QObject):
    """Review mode and report export of one :class:`ui.qt_main_window.QtMainWindow`.

    Attributes
    ----------
    active : bool
        True while a report is shown read-only.
    report : ReportData or None
        The report under review (saved rows, calibration, image checks).
    source : Path or None
        The session or SR file under review.
    ask_folder : callable
        ``(message) -> folder or None``; asked when films are missing
        (replaceable by tests).
    """

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.active = False
        self.report: ReportData | None = None
        self.source: Path | None = None
        self._reviewed_doc: dict[str, Any] | None = None
        self._sr_identity: Mapping[str, str] | None = None
        self.ask_folder: Callable[[str], str | None] = self._ask_folder_dialog
        self._filter = _ReadOnlyFilter(self)
        self._loading = False
        self.panel = QtReviewPanel()
        self.panel.hide()
        self.panel.edit_button.clicked.connect(self.enter_edit)
        window.main_splitter.addWidget(self.panel)
        self._build_actions()
        # route session/SR opening through review mode
        self._open_session = window.open_session
        self._open_paths = window.open_paths
        window.open_session = self.open_review
        window.open_paths = self._open_paths_hook
        self.session.events.films.connect(self._on_films_change)
        for name in ("confirm_labels", "shift_up", "shift_down"):
            # connected after the window's own slot: the labels change, then the review
            # becomes an edit (a new version; the reviewed file is kept as reported)
            window.actions_by_name[name].triggered.connect(self._label_key)

    def _label_key(self, _checked: bool = False) -> None:
        """Enter, [ or ] pressed on a reviewed report whose labels wait for confirmation."""
        if self.active:
            self.enter_edit()

    # ----------------------------------------------------------------- menus

    def _build_actions(self) -> None:
        w = self.window
        self.open_action = QAction("Open report for &review (session or SR)…", w)
        self.open_action.setShortcut(QKeySequence("Ctrl+Shift+R"))
        self.open_action.triggered.connect(self._open_dialog)
        # File › Export… opens the export dialog (ui.export_dialog connects it)
        self.export_action = QAction("&Export report (PDF, SR, CSV, PNG)…", w)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.edit_action = QAction("&Edit the reviewed report", w)
        self.edit_action.triggered.connect(self.enter_edit)
        self.edit_action.setEnabled(False)
        for action in (self.open_action, self.export_action, self.edit_action):
            w.addAction(action)
        file_menu = next((a.menu() for a in w.menuBar().actions() if a.text() == "&File"), None)
        if file_menu is not None:
            anchor = w.actions_by_name.get("save")
            file_menu.insertAction(anchor, self.open_action)
            file_menu.insertAction(anchor, self.edit_action)
            file_menu.insertAction(anchor, self.export_action)
            file_menu.insertSeparator(anchor)
        w.actions_by_name.update(review_open=self.open_action, export_report=self.export_action,
                                 review_edit=self.edit_action)

    # ----------------------------------------------------------------- opening

    def _open_paths_hook(self, paths: Sequence[str | os.PathLike[str]]) -> bool:
        paths = [str(p) for p in paths]
        if len(paths) == 1 and Path(paths[0]).is_file() and (
            paths[0].lower().endswith(".json") or _is_sr(Path(paths[0]))
        ):
            if _is_sr(Path(paths[0])) and not self._looks_like_sr(Path(paths[0])):
                return self._open_paths(paths)
            if not self.window._maybe_discard_changes():
                return False
            return self.open_review(paths[0])
        return self._open_paths(paths)

    @staticmethod
    def _looks_like_sr(path: Path) -> bool:
        import pydicom

        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
        except Exception:
            return False
        return ds.get("Modality") == "SR"

    def open_review(self, path: str | os.PathLike[str]) -> bool:
        """Open a session or SR read-only; errors become a banner. Returns success."""
        path = Path(path)
        try:
            self._load(path)
        except UserError as exc:
            self.window.show_error(str(exc))
            return False
        self.window._add_recent([str(path)])
        return True

    def _load(self, path: Path) -> None:
        sr_identity = None
        coded = None
        if _is_sr(path):
            from app.report_sr import read_sr

            content = read_sr(path)
            doc, sr_identity, coded = dict(content), content.identity, content.coded_findings
            report = report_from_session(doc, path, search_dirs=[path.parent],
                                         coded_findings=coded)
        else:
            doc = read_session_file(path)
            report = report_from_session(doc, path)
        missing = {v: f for v, f in report.films.items() if f.path is None}
        if missing:
            views = " and ".join(missing)
            folder = self.ask_folder(
                f"The {views} film{'s' if len(missing) > 1 else ''} of {path.name} "
                f"{'are' if len(missing) > 1 else 'is'} not where the report says. "
                "Choose the folder that holds them (matched by SOP Instance UID).")
            if folder:
                found = find_images_by_uid(
                    {v: f.sop_instance_uid or "" for v, f in missing.items()}, [folder],
                    sha256={v: (f.record.get("image") or {}).get("sha256")
                            for v, f in missing.items()})
                paths = {v: f.path for v, f in report.films.items() if f.path is not None}
                paths.update(found)
                report = report_from_session(doc, path, image_paths=paths, coded_findings=coded)
                for view in missing:
                    if view not in found:
                        report.warnings.append(
                            f"The {view} film was not found in {folder} either.")
        # Load into the session: a copy of the document whose image paths are absolute.
        load_doc = json.loads(json.dumps(doc))
        for view, film in report.films.items():
            image = load_doc[view].setdefault("image", {}) or {}
            load_doc[view]["image"] = image
            image["path"] = str(film.path.resolve()) if film.path is not None else (
                image.get("path") or "")
        # the films were found in the session's folder or a folder the reader chose
        self._image_dirs = [f.path.resolve().parent for f in report.films.values()
                            if f.path is not None]
        with tempfile.TemporaryDirectory(prefix="lumbar-review-") as tmp:
            tmp_path = Path(tmp) / "review.json"
            tmp_path.write_text(json.dumps(load_doc), encoding="utf-8")
            self._loading = True
            try:
                self._open_session_model(tmp_path)
            except UserError as exc:
                raise UserError(f"{path}: {getattr(exc, 'reason', exc)}") from None
            finally:
                self._loading = False
        self.session.path = path if not _is_sr(path) else None
        self.session.events.path(value=self.session.path)
        self.report, self.source = report, path
        self._reviewed_doc, self._sr_identity = doc, sr_identity
        self._set_active(True)
        self._show_review_messages()

    def _open_session_model(self, path: Path) -> None:
        self.session.load(path, loader=self.window.loader,
                          image_dirs=getattr(self, "_image_dirs", ()))

    def _show_review_messages(self) -> None:
        banner = self.window.banner
        for text in self.report.warnings:
            # the report measured its landmarks again (app.report_verify): a stored value
            # that differs is an error, like a changed image
            level = ("error" if "CHANGED" in text or text.startswith(STORED_VALUES_DIFFER)
                     else "warning")
            banner.show_message(text, level)

    # ----------------------------------------------------------------- read-only

    def _set_active(self, active: bool) -> None:
        self.active = active
        for view in self.window.views.values():
            if active:
                view.installEventFilter(self._filter)
                view.state.mode = "edit"
            else:
                view.removeEventFilter(self._filter)
        for name in _EDIT_ACTIONS:
            action = self.window.actions_by_name.get(name)
            if action is not None:
                action.setEnabled(not active and (
                    name not in ("undo", "redo") or
                    (self.session.can_undo if name == "undo" else self.session.can_redo)))
        self.window.results.criteria_combo.setEnabled(not active)
        if active and self.session.label_review is not None:
            # the report asks for the labels to be confirmed (Enter) or shifted ([ ]): those
            # keys work here too, as the first edit of a new version (see _label_key)
            for name in ("shift_up", "shift_down", "confirm_labels"):
                self.window.actions_by_name[name].setEnabled(True)
        self.edit_action.setEnabled(active)
        self.window.results.setVisible(not active)
        self.panel.setVisible(active)
        update_hint = getattr(self.window, "update_hint", None)
        if update_hint is not None:  # the hint says what review mode allows
            update_hint()
        if active and self.report is not None:
            self.panel.show_report(self.report, self.source)
            self.window.setWindowTitle(f"{self.source.name} (review, read-only) — lumbar-instability")

    def _on_films_change(self, event=None) -> None:
        if not self.active:
            return
        if self._loading:
            # the main window re-enables its actions when films change: stay read-only
            self._set_active(True)
        else:
            # other films were opened (or work recovered): the review is over
            self._set_active(False)
            self.report = self.source = self._reviewed_doc = self._sr_identity = None

    def enter_edit(self) -> None:
        """Leave review mode; the next save writes a new version beside the reviewed file."""
        if not self.active:
            return
        self._set_active(False)
        self.session.path = next_version_path(self.source)
        self.session.events.path(value=self.session.path)
        self.window.banner.show_message(
            f"Editing: saving writes {self.session.path.name}; {self.source.name} is kept as "
            "reported.", "info")
        self.window._on_title_change()

    # ----------------------------------------------------------------- export

    def current_report(self) -> tuple[ReportData, dict[str, Any]]:
        """The report of what is on screen, and the loaded films by view.

        In review mode: the saved rows exactly as reported; otherwise the live session.
        """
        films = {role: self.session.film(role).film for role in self.session.roles
                 if self.session.film(role).film is not None}
        if self.active and self.report is not None:
            return self.report, films
        if not self.session.roles:
            raise UserError("no films are open: nothing to report")
        doc = self.session.to_json()
        paths = {role: self.session.film(role).image.path for role in self.session.roles
                 if self.session.film(role).image.path}
        report = report_from_session(doc, self.session.path, image_paths=paths)
        return report, films

    def report_request(self) -> tuple[Any, dict[str, Any]]:
        """What an export in the worker needs, without the slow part on the UI thread.

        Returns the report to write (in review mode the saved :class:`ReportData`;
        otherwise an :class:`app.report_export.SessionReport` that the worker
        builds: hashing the image files and measuring again take 60-130 ms) and
        the loaded films by view.

        Raises
        ------
        UserError
            Nothing to report, or a safety warning is not acknowledged (checked
            here for an immediate answer, and again where the report is built).
        """
        from app.report_export import SessionReport
        from app.safety import require_acknowledged

        films = {role: self.session.film(role).film for role in self.session.roles
                 if self.session.film(role).film is not None}
        if self.active and self.report is not None:  # review mode: the saved rows as reported
            require_acknowledged(self.report.safety, self.report.safety_acknowledged)
            return self.report, films
        if not self.session.roles:
            raise UserError("no films are open: nothing to report")
        require_acknowledged(self.session.safety_warnings, self.session.acknowledged_safety)
        paths = {role: self.session.film(role).image.path for role in self.session.roles
                 if self.session.film(role).image.path}
        return SessionReport(self.session.to_json(), self.session.path, paths), films

    def export(self, path: str | os.PathLike[str]) -> Path:
        """Write the report in the format of ``path``'s suffix (.pdf, .dcm, .csv, .json, .png)."""
        from app.safety import require_acknowledged

        report, films = self.current_report()
        # the reader acknowledges the safety warnings in the window (banner) first
        require_acknowledged(report.safety, report.safety_acknowledged)
        return self._write(Path(path), report, films)

    def export_in_background(self, paths: Sequence[str | os.PathLike[str]]) -> bool:
        """Write one report per path (format by suffix) off the UI thread; True when started.

        The report is taken from the session now (what is on screen); building
        it (hashing the image files, measuring again) and writing the files run
        in the worker process with progress and Esc to cancel (files not yet
        written are then skipped; each file is written atomically, so none is
        left half-written).
        """
        from app.report_export import write_reports

        targets = [Path(p) for p in paths]
        identity = self._sr_identity
        try:
            report, films = self.report_request()
        except UserError as exc:
            self.window.show_error(str(exc))
            return False

        def work(checkpoint):
            # in the worker process: PDF and PNG drawing hold the GIL for long stretches
            from app.background import shared_worker

            return shared_worker().call(write_reports, targets, report, films, sr_identity=identity,
                                        checkpoint=checkpoint)

        def done(written) -> None:
            self.last_written = list(written)
            names = ", ".join(w.name for w in written)
            self.window.statusBar().showMessage(f"Report written: {names} (in {written[0].parent})", 10000)

        name = "Export " + ", ".join(t.suffix.lstrip(".").upper() for t in targets)
        return self.window.tasks.start(name, work, done)

    def _write(self, path: Path, report: ReportData, films: dict[str, Any]) -> Path:
        from app.report_export import write_report

        return write_report(path, report, films, sr_identity=self._sr_identity)

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Open report for review", "",
            "Session or SR (*.json *.dcm);;All files (*)")
        if path and self.window._maybe_discard_changes():
            self.open_review(path)

    def _ask_folder_dialog(self, message: str) -> str | None:
        self.window.banner.show_message(message, "warning")
        folder = QFileDialog.getExistingDirectory(self.window, "Folder of the films")
        return folder or None


def install_review(window) -> QtReviewController:
    """Attach review mode and report export to a main window (the viewer's hook)."""
    return QtReviewController(window)
