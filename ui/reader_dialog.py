"""The reader's name and comment (File › Reader and comment…).

Saved in the session (``reader: {name, comment}``, :meth:`app.session.Session.set_reader`),
printed in the PDF's signature block and carried into the SR as the person
observer and a comment.  The name last typed is offered again for the next
session (viewer settings), the comment never is.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from ui.export_dialog import settings

__all__ = ["QtReaderDialog", "QtReaderField", "install_reader_dialog"]

_SETTINGS_NAME = "reader/name"
NAME_LIMIT = 200  # app.session_format: reader.name at most 200 characters
COMMENT_LIMIT = 10000


class QtReaderDialog(QDialog):
    """Name and comment of the reader (modal); :meth:`values` reads them."""

    def __init__(self, name: str, comment: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Reader and comment")
        self.setObjectName("reader-dialog")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Printed in the report's signature block and carried into the SR."))
        form = QFormLayout()
        self.name_edit = QLineEdit(name)
        self.name_edit.setMaxLength(NAME_LIMIT)
        self.name_edit.setPlaceholderText("e.g. Dr Jane Smith, radiologist")
        form.addRow("Reader", self.name_edit)
        self.comment_edit = QPlainTextEdit(comment)
        self.comment_edit.setPlaceholderText("Comment for the report (optional)")
        self.comment_edit.setMinimumHeight(90)
        form.addRow("Comment", self.comment_edit)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(480, 0)

    def values(self) -> tuple[str, str]:
        """``(name, comment)`` as typed (spaces around the name removed, comment cut at 10 000 characters)."""
        return self.name_edit.text().strip(), self.comment_edit.toPlainText().strip()[:COMMENT_LIMIT]


class QtReaderField:
    """File › Reader and comment… of one main window.

    Attributes
    ----------
    ask : callable
        ``(dialog) -> (name, comment) or None``: runs the dialog (replaceable by tests).
    """

    def __init__(self, window) -> None:
        self.window = window
        self.session = window.session
        self.ask: Callable[[QtReaderDialog], tuple[str, str] | None] = self._run
        action = QAction("Reader and &comment…", window)
        action.setStatusTip("Your name and a comment for the report (saved in the session)")
        action.triggered.connect(lambda _=False: self.edit())
        window.addAction(action)
        file_menu = next((m.menu() for m in window.menuBar().actions() if m.text() == "&File"), None)
        if file_menu is not None:
            file_menu.insertAction(window.actions_by_name.get("save"), action)
        window.actions_by_name["reader"] = self.action = action
        self.session.events.films.connect(self._on_films)
        self._on_films()

    def _on_films(self, event=None) -> None:
        review = getattr(self.window, "review", None)
        self.action.setEnabled(bool(self.session.roles) and not (review is not None and review.active))

    def make_dialog(self) -> QtReaderDialog:
        reader = self.session.reader
        name = reader["name"] or settings().value(_SETTINGS_NAME, "", type=str)
        return QtReaderDialog(name, reader["comment"], self.window)

    def edit(self) -> bool:
        """Ask the reader's name and comment and put them in the session; True when changed."""
        answer = self.ask(self.make_dialog())
        if answer is None:
            return False
        name, comment = answer
        before = self.session.reader
        self.session.set_reader(name, comment)
        if name:
            store = settings()
            store.setValue(_SETTINGS_NAME, name)
            store.sync()
        changed = self.session.reader != before
        if changed:
            self.window.statusBar().showMessage(
                f"Reader: {name or '(none)'}" + ("; comment saved" if comment else ""), 8000)
        return changed

    def _run(self, dialog: QtReaderDialog) -> tuple[str, str] | None:
        return dialog.values() if dialog.exec() == QDialog.DialogCode.Accepted else None


def install_reader_dialog(window) -> QtReaderField:
    """Add File › Reader and comment… to a main window."""
    return QtReaderField(window)
