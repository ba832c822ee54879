"""Long work off the UI thread: Detect, Track, Refine, opening films, export.

One task runs at a time on Qt's global thread pool.  The work function gets a
``checkpoint(fraction)`` callable (:data:`measure.Checkpoint`): it reports
progress to the status bar and raises :class:`measure.Cancelled` once the user
pressed Esc or the cancel button.  The work must not touch the session or any
widget: it computes from copies and returns a value; ``on_done(value)`` then
runs on the UI thread and applies it (one undoable edit).  A cancelled or
failed task applies nothing, so the landmarks stay as they were.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QProgressBar, QToolButton

from app.errors import UserError
from measure import Cancelled

__all__ = ["QtTaskRunner", "Task"]


@dataclass
class Task:
    """One run: its name, cancel flag and last progress (read by the UI thread)."""

    name: str
    cancel_event: threading.Event = field(default_factory=threading.Event)
    fraction: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def checkpoint(self, fraction: float) -> None:
        """Called by the work between bodies: records progress, raises when cancelled."""
        if self.cancel_event.is_set():
            raise Cancelled
        self.fraction = float(fraction)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


class _Relay(QObject):
    """Carries the outcome of the worker thread to the UI thread (queued signals)."""

    finished = Signal(object, object, object)  # task, value, error


class _Runnable(QRunnable):
    def __init__(self, task: Task, work: Callable[[Callable[[float], None]], Any], relay: _Relay) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.task, self.work, self.relay = task, work, relay

    def run(self) -> None:
        try:
            value = self.work(self.task.checkpoint)
        except BaseException as exc:  # handed to the UI thread, never lost in the pool
            self.relay.finished.emit(self.task, None, exc)
        else:
            self.relay.finished.emit(self.task, value, None)


class QtTaskRunner(QObject):
    """Runs one background task of a main window and shows it in the status bar.

    Signals
    -------
    started(str)
        A task started (its name).
    finished(str, str)
        A task ended: its name and ``"done"``, ``"cancelled"`` or ``"failed"``.
    """

    started = Signal(str)
    finished = Signal(str, str)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.task: Task | None = None
        self._callbacks: tuple[Callable[[Any], None], Callable[[BaseException], None] | None] | None = None
        self._relay = _Relay(self)
        self._relay.finished.connect(self._on_finished, Qt.ConnectionType.QueuedConnection)
        self.pool = QThreadPool.globalInstance()
        bar = window.statusBar()
        self.label = QLabel()
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(True)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        for widget in (self.label, self.progress, self.cancel_button):
            bar.addWidget(widget)
            widget.hide()
        # the bar keeps its height when the progress shows: no relayout (and rescaling) of the films
        bar.setMinimumHeight(
            max(bar.sizeHint().height(), self.progress.sizeHint().height(), self.cancel_button.sizeHint().height()) + 4
        )
        self.cancel_action = QAction("Cancel the running task", window)
        self.cancel_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.cancel_action.setEnabled(False)
        self.cancel_action.triggered.connect(self.cancel)
        window.addAction(self.cancel_action)
        self._timer_id = 0

    @property
    def busy(self) -> bool:
        """True while a task runs (including one cancelled but not yet stopped)."""
        return self.task is not None

    def start(
        self,
        name: str,
        work: Callable[[Callable[[float], None]], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> bool:
        """Run ``work(checkpoint)`` in the pool; ``on_done(value)`` on the UI thread.

        Returns False (and says so in the window) when another task still runs.
        """
        if self.task is not None:
            self.window.statusBar().showMessage(
                f"{self.task.name} is still running: wait or press Esc to cancel it", 5000
            )
            return False
        self.task = Task(name)
        self._callbacks = (on_done, on_error)
        self.window.statusBar().clearMessage()  # a previous "done" message would overlap the progress
        self.label.setText(f"{name}…")
        self.progress.setValue(0)
        for widget in (self.label, self.progress, self.cancel_button):
            widget.show()
        self.cancel_button.setEnabled(True)
        self.cancel_action.setEnabled(True)
        self._timer_id = self.startTimer(50)
        self.started.emit(name)
        self.pool.start(_Runnable(self.task, work, self._relay))
        return True

    def cancel(self) -> None:
        """Ask the running task to stop at its next checkpoint; nothing of it is applied."""
        if self.task is None or self.task.cancelled:
            return
        self.task.cancel_event.set()
        self.label.setText(f"{self.task.name}: cancelling…")
        self.cancel_button.setEnabled(False)

    def wait(self, timeout_s: float = 120.0) -> bool:
        """Process events until no task runs (tests, benchmarks, closing); True if it ended."""
        from PySide6.QtWidgets import QApplication

        end = time.perf_counter() + timeout_s
        while self.task is not None and time.perf_counter() < end:
            QApplication.processEvents()
            time.sleep(0.005)
        return self.task is None

    def timerEvent(self, event) -> None:
        if self.task is not None:
            self.progress.setValue(round(100 * self.task.fraction))

    def _on_finished(self, task: Task, value: Any, error: BaseException | None) -> None:
        if task is not self.task:
            return
        on_done, on_error = self._callbacks or (None, None)
        self.task, self._callbacks = None, None
        if self._timer_id:
            self.killTimer(self._timer_id)
            self._timer_id = 0
        for widget in (self.label, self.progress, self.cancel_button):
            widget.hide()
        self.cancel_action.setEnabled(False)
        seconds = time.perf_counter() - task.started
        bar = self.window.statusBar()
        if task.cancelled or isinstance(error, Cancelled):
            bar.showMessage(f"{task.name} cancelled: nothing was changed", 8000)
            self.finished.emit(task.name, "cancelled")
            return
        if error is not None:
            if on_error is not None:
                on_error(error)
            elif isinstance(error, (UserError, OSError, ValueError)):
                self.window.show_error(f"{task.name}: {error}")
            else:
                self.window.report_internal_error(type(error), error, error.__traceback__)
            self.finished.emit(task.name, "failed")
            return
        bar.showMessage(f"{task.name} done in {seconds:.1f} s", 5000)
        try:
            on_done(value)
        except UserError as exc:
            self.window.show_error(str(exc))
            self.finished.emit(task.name, "failed")
            return
        self.finished.emit(task.name, "done")
