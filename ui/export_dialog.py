"""One export dialog: PDF, SR, CSV, PNG (and JSON) into one folder, names from the study.

File › Export… (Ctrl+E) opens :class:`QtExportDialog`: the reader ticks the
formats, picks one folder and may edit the file-name stem, which defaults to
the study's date, views and series (:func:`app.export_names.export_stem`, never
the patient's name).  *Anonymise* leaves the patient's name, ID and birth date
out of the file names and of the PDF and SR (the CSV and PNG never hold them).
The folder defaults to the last export folder, else the films' folder, never
the current directory.  Existing files are listed and the reader is asked
before any is replaced.  The files are written by the worker process
(:func:`app.report_export.write_export`, atomic writes) with progress and Esc
in the status bar; one status line then lists what was written, and each
failure names its file and the reason.  The safety acknowledgement gate stays:
nothing is written while a safety warning is unacknowledged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import UserError
from app.export_names import EXPORT_FORMATS, export_file_names, export_stem
from app.session import default_recovery_path

__all__ = ["ExportChoice", "QtExportController", "QtExportDialog", "install_export"]

_SETTINGS_FOLDER = "export/last_folder"
_SETTINGS_FORMATS = "export/formats"
_SETTINGS_ANONYMISE = "export/anonymise"


@dataclass(frozen=True)
class ExportChoice:
    """What the reader chose in the dialog.

    Attributes
    ----------
    folder : Path
    stem : str
        File-name stem (made safe by :func:`app.export_names.export_file_names`).
    formats : tuple of str
        Keys of :data:`app.export_names.EXPORT_FORMATS`, in the dialog's order.
    anonymise : bool
    """

    folder: Path
    stem: str
    formats: tuple[str, ...]
    anonymise: bool

    def paths(self) -> list[Path]:
        """The files to write, in the order of :attr:`formats`."""
        return [self.folder / name for name in export_file_names(self.stem, self.formats).values()]


def settings() -> QSettings:
    """The viewer's settings file (in the state folder, beside the recovery file)."""
    return QSettings(str(default_recovery_path().parent / "viewer.ini"), QSettings.Format.IniFormat)


class QtExportDialog(QDialog):
    """The export dialog (modal); :meth:`choice` reads what was chosen.

    Parameters
    ----------
    identities : mapping of str to FilmIdentity
        The open films' identities by view (for the default file names).
    folder : Path
        Initial folder.
    formats : sequence of str
        Formats ticked initially.
    anonymise : bool
        Initial state of the *Anonymise* box.
    """

    def __init__(
        self,
        identities: Mapping[str, Any],
        folder: Path,
        formats: Sequence[str],
        anonymise: bool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export report")
        self.setObjectName("export-dialog")
        self.identities = dict(identities)
        self._stem_edited = False
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Formats</b>"))
        self.format_boxes: dict[str, QCheckBox] = {}
        for fmt in EXPORT_FORMATS:
            box = QCheckBox(fmt.label)
            box.setObjectName(f"export-{fmt.key}")
            box.setChecked(fmt.key in formats)
            box.toggled.connect(self._update)
            layout.addWidget(box)
            self.format_boxes[fmt.key] = box
        self.anonymise_box = QCheckBox("Anonymise: no patient name, ID or birth date in file names or contents")
        self.anonymise_box.setChecked(anonymise)
        self.anonymise_box.setToolTip(
            "The PDF and the SR leave out the patient's name, ID, birth date and accession number; "
            "the file names use dates and series numbers only. Text burned into the film pixels "
            "is not removed: check the PNG and the PDF's images."
        )
        self.anonymise_box.toggled.connect(self._on_anonymise)
        layout.addWidget(self.anonymise_box)
        self.burned_in_note = QLabel(
            "Text burned into the film pixels (names on the film) is not removed: look at the PNG "
            "and the PDF's images before sharing them.")
        self.burned_in_note.setWordWrap(True)
        self.burned_in_note.setStyleSheet("color: #8a4b00; margin-left: 22px;")
        self.burned_in_note.setVisible(anonymise)
        self.anonymise_box.toggled.connect(self.burned_in_note.setVisible)
        layout.addWidget(self.burned_in_note)
        form = QFormLayout()
        row = QHBoxLayout()
        self.folder_edit = QLineEdit(str(folder))
        self.folder_edit.textChanged.connect(self._update)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        form.addRow("Folder", row)
        self.stem_edit = QLineEdit(export_stem(self.identities, anonymised=anonymise))
        self.stem_edit.textEdited.connect(self._on_stem_edited)
        self.stem_edit.textChanged.connect(self._update)
        form.addRow("File names", self.stem_edit)
        layout.addLayout(form)
        self.preview = QLabel()
        self.preview.setObjectName("export-preview")
        self.preview.setTextFormat(Qt.TextFormat.RichText)
        self.preview.setWordWrap(True)
        layout.addWidget(self.preview)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.ask_folder: Callable[[str], str | None] = self._ask_folder_dialog
        self.resize(620, 0)
        self._update()

    # ----------------------------------------------------------------- state

    def choice(self) -> ExportChoice:
        """The formats, folder, stem and anonymisation as now set."""
        formats = tuple(k for k, box in self.format_boxes.items() if box.isChecked())
        return ExportChoice(Path(self.folder_edit.text().strip()).expanduser(), self.stem_edit.text(),
                            formats, self.anonymise_box.isChecked())

    def _on_stem_edited(self, _text: str) -> None:
        self._stem_edited = True

    def _on_anonymise(self, on: bool) -> None:
        # the default name follows the switch; a name the reader typed is kept unless it
        # would now be the non-anonymised default
        if not self._stem_edited or self.stem_edit.text() == export_stem(self.identities, anonymised=not on):
            self.stem_edit.setText(export_stem(self.identities, anonymised=on))
            self._stem_edited = False

    def _update(self) -> None:
        choice = self.choice()
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        if not choice.formats:
            self.preview.setText("<i>Tick at least one format.</i>")
            ok.setEnabled(False)
            return
        lines = []
        for path in choice.paths():
            mark = " <span style='color:#b71c1c'>(exists: will be replaced if you confirm)</span>" if path.exists() else ""
            lines.append(f"{_html(path.name)}{mark}")
        folder_ok = choice.folder.is_dir()
        note = "" if folder_ok else f"<br><span style='color:#b71c1c'>The folder {_html(str(choice.folder))} does not exist.</span>"
        self.preview.setText("Will write:<br>" + "<br>".join(lines) + note)
        ok.setEnabled(folder_ok)

    def _browse(self) -> None:
        folder = self.ask_folder(self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def _ask_folder_dialog(self, start: str) -> str | None:
        return QFileDialog.getExistingDirectory(self, "Export into folder", start) or None


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class QtExportController:
    """File › Export… of one main window.

    Attributes
    ----------
    ask_choice : callable
        ``(dialog) -> ExportChoice or None``: runs the dialog (replaceable by tests).
    ask_overwrite : callable
        ``(existing paths) -> bool``: may these files be replaced?
    settings : QSettings
        Last folder, formats and anonymisation.
    last_outcomes : list of app.report_export.ExportOutcome
        What the last export wrote or failed to write.
    """

    def __init__(self, window) -> None:
        self.window = window
        self.session = window.session
        self.settings = settings()
        self.ask_choice: Callable[[QtExportDialog], ExportChoice | None] = self._run_dialog
        self.ask_overwrite: Callable[[Sequence[Path]], bool] = self._ask_overwrite_dialog
        self.last_outcomes: list[Any] = []
        self.last_status = ""
        action = window.actions_by_name["export_report"]  # made by ui.qt_review, File menu
        action.setShortcut(QKeySequence("Ctrl+E"))
        action.triggered.connect(lambda _=False: self.open())
        self.action = action

    # ----------------------------------------------------------------- defaults

    def default_folder(self) -> Path:
        """The last export folder when it still exists, else the films' folder, else home."""
        last = self.settings.value(_SETTINGS_FOLDER, "", type=str)
        if last and Path(last).is_dir():
            return Path(last)
        for role in self.session.roles:
            path = self.session.film(role).image.path
            if path and Path(path).parent.is_dir():
                return Path(path).resolve().parent
        if self.session.path is not None:
            return Path(self.session.path).resolve().parent
        return Path.home()

    def default_formats(self) -> list[str]:
        saved = self.settings.value(_SETTINGS_FORMATS, "", type=str)
        known = [f.key for f in EXPORT_FORMATS]
        chosen = [k for k in saved.split(",") if k in known] if saved else []
        return chosen or [f.key for f in EXPORT_FORMATS if f.default]

    def identities(self) -> dict[str, Any]:
        return {
            role: getattr(self.session.film(role).film, "identity", None) for role in self.session.roles
        }

    def make_dialog(self) -> QtExportDialog:
        anonymise = self.settings.value(_SETTINGS_ANONYMISE, False, type=bool)
        return QtExportDialog(self.identities(), self.default_folder(), self.default_formats(), anonymise,
                              self.window)

    # ----------------------------------------------------------------- running

    def open(self) -> bool:
        """Show the dialog and start the export; True when it started."""
        if not self.session.roles:
            self.window.show_error("Export: no films are open: nothing to report")
            return False
        choice = self.ask_choice(self.make_dialog())
        if choice is None:
            return False
        return self.export(choice)

    def export(self, choice: ExportChoice) -> bool:
        """Write the chosen files in the background; True when the run started."""

        if not choice.formats:
            self.window.show_error("Export: no format chosen")
            return False
        if not choice.folder.is_dir():
            self.window.show_error(f"{choice.folder}: export folder does not exist")
            return False
        try:
            # the report is built in the worker (hashing the films, measuring again)
            report, films = self.window.review.report_request()
        except UserError as exc:
            self.window.show_error(str(exc))
            return False
        except OSError as exc:
            self.window.show_error(f"{exc.filename or 'export'}: cannot be read ({exc.strerror or exc})")
            return False
        targets = choice.paths()
        existing = [p for p in targets if p.exists()]
        if existing and not self.ask_overwrite(existing):
            self.window.statusBar().showMessage("Export cancelled: no file was replaced", 8000)
            return False
        self.settings.setValue(_SETTINGS_FOLDER, str(choice.folder.resolve()))
        self.settings.setValue(_SETTINGS_FORMATS, ",".join(choice.formats))
        self.settings.setValue(_SETTINGS_ANONYMISE, choice.anonymise)
        self.settings.sync()
        identity = None if choice.anonymise else getattr(self.window.review, "_sr_identity", None)
        anonymise = choice.anonymise

        def work(checkpoint):
            from app.background import shared_worker
            from app.report_export import write_export

            return shared_worker().call(write_export, targets, report, films, sr_identity=identity,
                                        checkpoint=checkpoint, anonymise=anonymise)

        name = "Export " + ", ".join(k.upper() for k in choice.formats)
        return self.window.tasks.start(name, work, lambda outcomes: self._done(choice, outcomes))

    def _done(self, choice: ExportChoice, outcomes: Sequence[Any]) -> None:
        self.last_outcomes = list(outcomes)
        written = [o.path.name for o in outcomes if o.ok]
        failed = [o for o in outcomes if not o.ok]
        text = f"Exported to {choice.folder}: " + (", ".join(written) if written else "nothing")
        if choice.anonymise:
            text += " (anonymised)"
        if failed:
            text += "; FAILED: " + "; ".join(f"{o.path.name} ({o.error})" for o in failed)
            for o in failed:
                self.window.show_error(f"{o.path}: not written: {o.error}")
        self.last_status = text
        self.window.statusBar().showMessage(text, 20000)

    def _run_dialog(self, dialog: QtExportDialog) -> ExportChoice | None:
        return dialog.choice() if dialog.exec() == QDialog.DialogCode.Accepted else None

    def _ask_overwrite_dialog(self, existing: Sequence[Path]) -> bool:
        names = "\n".join(p.name for p in existing)
        answer = QMessageBox.question(
            self.window, "Replace files?",
            f"These files already exist in {existing[0].parent}:\n{names}\n\nReplace them?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes


def install_export(window) -> QtExportController:
    """Route File › Export… (Ctrl+E) of a main window through the export dialog."""
    return QtExportController(window)
