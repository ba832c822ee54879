"""The results panel: one row per segment, live, with the criteria flags.

The rows are the session's :meth:`app.session.Session.result_rows` (the same
rows a report prints); this widget only formats them.  A millimetre value is
shown only with its calibration source and never for an uncalibrated film
("—" and the reason in the tooltip).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.errors import UserError
from app.palette import FINDING_RGB
from measure import Verdict, quantity_verdicts_of_record, verdict_of_record

__all__ = ["COLUMNS", "DISCLAIMER", "QtResultsPanel", "QtThresholdsDialog"]

DISCLAIMER = "A measurement aid, not a diagnosis: results must be interpreted by a qualified clinician with the images."

COLUMNS = (
    "Segment",
    "Translation (mm)",
    "Calibration",
    "Translation (%)",
    "Angulation (°)",
    "Flexion angle (°)",
    "Extension angle (°)",
    "Flexion transl. (mm)",
    "Extension transl. (mm)",
    "Result",
)
_DASH = "—"
_HEADER_TIPS = {
    1: "t_flex - t_ext along the lower body's superior endplate; ± half the 95 % interval",
    2: "where each film's pixel spacing came from (measurement.md §5)",
    3: "translation as % of the lower body's endplate depth (needs no calibration); ± 95 %",
    4: "theta_ext - theta_flex; positive = normal motion; ± half the 95 % interval",
}
_UNSTABLE = QColor(*FINDING_RGB["unstable"])
_BORDERLINE = QColor(*FINDING_RGB["borderline-below"])  # pale amber, dark text: only uncertain
_BORDERLINE_ABOVE = QColor(*FINDING_RGB["borderline-above"])
_STATUS = {
    Verdict.UNSTABLE: "unstable",
    Verdict.BORDERLINE_ABOVE: "borderline",
    Verdict.BORDERLINE_BELOW: "borderline",
    Verdict.WITHIN: "stable",
    Verdict.NOT_ASSESSED: "stable",
    Verdict.NOT_MEASURED: "not measured",
}


def _fmt(value: Any, digits: int = 1, signed: bool = True) -> str:
    if value is None:
        return _DASH
    value = round(float(value), digits) + 0.0  # no "-0.0"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _with_ci(value: Any, ci: Any, digits: int = 1) -> str:
    text = _fmt(value, digits)
    if value is not None and ci:
        half = (ci[1] - ci[0]) / 2
        text += f" ± {half:.{digits}f}"
    return text


_SHORT_SOURCE = {"magnification-corrected": "magn.-corrected"}
_SHORT_ROLE = {"flexion": "flex.", "extension": "ext."}


def calibration_cell(source: str) -> tuple[str, str]:
    """Text and tooltip of the Calibration cell for a row's ``calibration_source``.

    One source for both films is shown as is (``detector``); two different
    ones compactly, one line (``flex. manual / ext. magn.-corrected``), the
    full wording in the tooltip, so the column never crowds out the Result.
    """
    tip = "Where the pixel spacing came from (measurement.md §5)"
    if ", " not in source:
        return source, f"{tip}: {source}." if source else tip + "."
    parts = []
    for part in source.split(", "):
        role, _, name = part.partition(" ")
        parts.append(f"{_SHORT_ROLE.get(role, role)} {_SHORT_SOURCE.get(name, name)}".strip())
    return " / ".join(parts), f"{tip}: {source}."


def format_row(row: dict[str, Any], roles: tuple[str, ...]) -> tuple[list[str], list[str], str]:
    """Cell texts, cell tooltips and the row status for one result row.

    Returns
    -------
    texts, tooltips : list of str, one per column of :data:`COLUMNS`
    status : {"unstable", "borderline", "stable", "not measured", "single film", "to confirm"}
    """
    texts = [row["segment"]] + [_DASH] * (len(COLUMNS) - 1)
    tips = [""] * len(COLUMNS)
    if len(roles) == 1:
        role = roles[0]
        col = {"flexion": (5, 7), "extension": (6, 8)}[role]
        texts[col[0]] = _fmt(row.get(f"{role}_angle_deg"))
        texts[col[1]] = _fmt(row.get(f"{role}_translation_mm"))
        texts[2] = row.get("calibration_source", "")
        texts[9] = "one film only"
        tips[9] = "The motion needs a flexion and an extension film."
        return texts, tips, "single film"
    if not row.get("measured"):
        texts[9] = "not measured"
        tips[9] = "Place the corners of both bodies on both films."
        return texts, tips, "not measured"
    mm = row.get("translation_mm")
    texts[1] = _with_ci(mm, row.get("translation_mm_ci95"))
    if mm is None:
        tips[1] = row.get("translation_mm_note") or "no millimetre value"
    texts[2], tips[2] = calibration_cell(row.get("calibration_source", ""))
    texts[3] = _with_ci(row.get("translation_pct"), row.get("translation_pct_ci95"))
    texts[4] = _with_ci(row.get("angulation_deg"), row.get("angulation_deg_ci95"))
    texts[5] = _fmt(row.get("flexion_angle_deg"))
    texts[6] = _fmt(row.get("extension_angle_deg"))
    texts[7] = _fmt(row.get("flexion_translation_mm"))
    texts[8] = _fmt(row.get("extension_translation_mm"))
    for col in (7, 8):
        if texts[col] == _DASH:
            tips[col] = "no usable pixel spacing on this film"
    if row.get("needs_review"):
        # the detector was unsure of the level labels: no verdict until the reader confirms them
        texts[9] = "labels to confirm (Enter)"
        tips[9] = f"Not counted: {row.get('needs_review_reason') or 'the level labels are uncertain'}"
        return texts, tips, "to confirm"
    # the one verdict rule (measure.verdict_of_record), as in the tables, reports and review
    verdict = verdict_of_record(row)
    status = _STATUS[verdict]
    texts[9] = verdict.label
    if verdict in (Verdict.UNSTABLE, Verdict.BORDERLINE_ABOVE):
        # which quantity is at that level (not merely above its threshold)
        which = [name for name, v in quantity_verdicts_of_record(row).items() if v is verdict]
        if which:
            texts[9] += f": {' and '.join(which)}"
    if row.get("translation_assessed") is False and verdict is not Verdict.UNSTABLE:
        # "within thresholds" must not read as "translation checked" when it was not
        texts[9] += " (angulation only)"
    th = row.get("thresholds") or {}
    limits = [
        f"{k.replace('_', ' ')} > {v:g}" for k, v in th.items() if v is not None
    ]
    tips[9] = texts[9] + (". Thresholds: " + ", ".join(limits) if limits else "")
    if verdict.is_borderline:
        tips[9] += "; the 95 % interval straddles a threshold"
    if row.get("translation_assessed") is False:
        if th.get("translation_mm") is None and th.get("translation_pct") is None:
            tips[9] += "; these criteria set no translation threshold: translation is not classified"
        else:
            tips[9] += "; translation criterion not applied: these criteria need millimetres"
    return texts, tips, status


class _KeepColoursDelegate(QStyledItemDelegate):
    """Shows the selected row with a yellow frame instead of the selection colour,
    so an unstable or borderline row keeps its colour when selected."""

    def paint(self, painter, option, index) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        opt = QStyleOptionViewItem(option)
        opt.state &= ~QStyle.StateFlag.State_Selected
        super().paint(painter, opt, index)
        if selected:
            painter.save()
            painter.setPen(QPen(QColor(255, 210, 0), 3))
            rect = option.rect.adjusted(0, 1, 0, -2)
            painter.drawLine(rect.topLeft(), rect.topRight())
            painter.drawLine(rect.bottomLeft(), rect.bottomRight())
            painter.restore()


class QtResultsPanel(QWidget):
    """Live table of the session's results with the criteria chooser.

    Parameters
    ----------
    session : app.session.Session
    presets : sequence of str
        Criteria preset names offered.
    """

    compareRequested = Signal(int)
    """A row was double-clicked: show the stabilised comparison of that segment."""

    def __init__(self, session, presets, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._presets = tuple(presets)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        top.addWidget(QLabel("Criteria:"))
        self.criteria_combo = QComboBox()
        self.criteria_combo.addItems(list(presets))
        self.criteria_combo.setObjectName("criteria")
        top.addWidget(self.criteria_combo)
        self.thresholds_button = QPushButton("Thresholds…")
        self.thresholds_button.setToolTip("Set custom thresholds (applied to every segment)")
        self.thresholds_button.clicked.connect(self.edit_thresholds)
        top.addWidget(self.thresholds_button)
        self.thresholds_label = QLabel()
        self.thresholds_label.setWordWrap(True)
        top.addWidget(self.thresholds_label, 1)
        layout.addLayout(top)
        self._table = QTableWidget(0, len(COLUMNS))
        self._table.setHorizontalHeaderLabels(list(COLUMNS))
        self._table.verticalHeader().setVisible(False)
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._table.setItemDelegate(_KeepColoursDelegate(self._table))
        header = self._table.horizontalHeader()
        # sized to the contents when the layout changes, not on every value of a drag
        # (ResizeToContents re-measures the column on each cell change: ~0.5 ms per cell)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self._layout_key: tuple = ()
        for c, tip in _HEADER_TIPS.items():
            self._table.horizontalHeaderItem(c).setToolTip(tip)
        layout.addWidget(self._table, 1)
        self._warnings_label = QLabel()
        self._warnings_label.setWordWrap(True)
        self._warnings_label.setStyleSheet("color: #b35c00;")
        layout.addWidget(self._warnings_label)
        self.disclaimer = QLabel(DISCLAIMER)
        font = self.disclaimer.font()
        font.setItalic(True)
        self.disclaimer.setFont(font)
        layout.addWidget(self.disclaimer)
        self._statuses: list[str] = []
        self.criteria_combo.currentTextChanged.connect(self._on_combo_change)
        self._table.itemSelectionChanged.connect(self._on_table_selection)
        self._table.cellDoubleClicked.connect(lambda row, _column: self.compareRequested.emit(row))
        session.events.results.connect(self._on_results_change)
        session.events.criteria.connect(self._on_criteria_change)
        session.events.selected_segment.connect(self._on_selected_segment_change)
        self._refresh_pending = False
        self._on_criteria_change()
        self._refresh()

    # ----------------------------------------------------------------- model -> widget

    def _on_criteria_change(self, event=None) -> None:
        name = self.session.criteria
        self.criteria_combo.blockSignals(True)
        if self.criteria_combo.findText(name) < 0:
            self.criteria_combo.addItem(name)
        self.criteria_combo.setCurrentText(name)
        self.criteria_combo.blockSignals(False)
        spec = self.session.criteria_spec
        self.thresholds_label.setText(spec.describe())

    @property
    def table(self) -> QTableWidget:
        """The results table, up to date (a pending refresh is done first)."""
        self.flush()
        return self._table

    @property
    def statuses(self) -> list[str]:
        """Status of each row (:func:`format_row`), up to date."""
        self.flush()
        return self._statuses

    @property
    def warnings_label(self) -> QLabel:
        self.flush()
        return self._warnings_label

    def flush(self) -> None:
        """Do a pending refresh now (readers of the table; normally the event loop does it)."""
        if self._refresh_pending:
            self._refresh()

    def _on_results_change(self, event=None) -> None:
        # refreshed on the next turn of the event loop: the edit that changed the results
        # (a Track or Auto result, a drag) returns first, so the window never does both in
        # one stretch, and several changes in one turn cost one refresh
        if not self._refresh_pending:
            self._refresh_pending = True
            QTimer.singleShot(0, self.flush)

    def _refresh(self) -> None:
        self._refresh_pending = False
        rows = self.session.result_rows()
        roles = self.session.roles
        self._table.blockSignals(True)
        self._table.setRowCount(len(rows))
        self._statuses = []
        bold = QFont(self._table.font())
        bold.setBold(True)
        for r, row in enumerate(rows):
            if roles:
                texts, tips, status = format_row(row, roles)
            else:
                texts = [row["segment"]] + [_DASH] * (len(COLUMNS) - 1)
                tips, status = [""] * len(COLUMNS), "not measured"
            self._statuses.append(status)
            for c, text in enumerate(texts):
                item = self._table.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    item.setData(Qt.ItemDataRole.UserRole, "")
                    item.setTextAlignment(
                        (Qt.AlignmentFlag.AlignLeft if c in (0, 2, 9) else Qt.AlignmentFlag.AlignRight)
                        | Qt.AlignmentFlag.AlignVCenter
                    )
                    self._table.setItem(r, c, item)
                if item.text() != text:
                    item.setText(text)
                if item.toolTip() != tips[c]:
                    item.setToolTip(tips[c])
                shade = status + ("-above" if texts[9].startswith(Verdict.BORDERLINE_ABOVE.label) else "")
                if item.data(Qt.ItemDataRole.UserRole) == shade:
                    continue  # colours unchanged: a drag only changes numbers
                item.setData(Qt.ItemDataRole.UserRole, shade)
                if status == "unstable":
                    item.setBackground(QBrush(_UNSTABLE))
                    item.setForeground(QBrush(QColor(255, 255, 255)))
                elif shade == "borderline-above":
                    # above a threshold but not confidently: strong orange, bold
                    item.setBackground(QBrush(_BORDERLINE_ABOVE))
                    item.setForeground(QBrush(QColor(255, 255, 255)))
                elif status == "borderline":
                    # below every threshold, the interval reaching one: a pale tint, so these
                    # rows do not look like the above-threshold ones
                    item.setBackground(QBrush(_BORDERLINE))
                    item.setForeground(QBrush(QColor(0, 0, 0)))
                else:
                    item.setBackground(QBrush())
                    item.setForeground(self._table.palette().text())
                strong = status == "unstable" or shade == "borderline-above"
                item.setFont(bold if c in (0, 9) and strong else self._table.font())
        self._table.blockSignals(False)
        # the layout follows the longest texts too (a manual calibration, a longer verdict)
        key = (len(rows), tuple(self._statuses), roles,
               tuple(max((len(self._table.item(r, c).text()) for r in range(len(rows))), default=0)
                     for c in (2, 9)))
        if key != self._layout_key:
            self._layout_key = key
            # every segment visible without scrolling
            height = self._table.horizontalHeader().height() + 2 * self._table.frameWidth()
            height += sum(self._table.rowHeight(r) for r in range(len(rows)))
            self._table.setMinimumHeight(height + 2)
            self._table.resizeColumnsToContents()
            for c in range(len(COLUMNS) - 1):  # room for wider values while dragging
                self._table.setColumnWidth(c, self._table.columnWidth(c) + 14)
            # a verdict longer than its column wraps onto more lines instead of being cut
            self._table.setWordWrap(True)
            self._table.resizeRowsToContents()
            height = self._table.horizontalHeader().height() + 2 * self._table.frameWidth()
            height += sum(self._table.rowHeight(r) for r in range(len(rows)))
            self._table.setMinimumHeight(height + 2)
        self._on_selected_segment_change()
        warnings = []
        motion = self.session.results
        if motion is not None and len(roles) == 2:
            warnings = motion.warnings()
        cautions: dict[str, list[str]] = {}
        for role in roles:
            cal = self.session.calibration(role)
            if cal.is_calibrated and cal.warning:
                cautions.setdefault(cal.warning, []).append(role)
        for text, which in cautions.items():
            films = " and ".join(which).capitalize() + (" films" if len(which) > 1 else " film")
            warnings.append(f"{films}: {text}.")
        if self.session.motion_error:
            warnings.append(f"Cannot compute: {self.session.motion_error}")
        self._warnings_label.setText("\n".join(warnings))
        self._warnings_label.setVisible(bool(warnings))

    def _on_selected_segment_change(self, event=None) -> None:
        index = self.session.selected_segment
        self._table.blockSignals(True)
        if index is None:
            self._table.clearSelection()
        else:
            self._table.selectRow(index)
        self._table.blockSignals(False)

    # ----------------------------------------------------------------- widget -> model

    def _on_combo_change(self, name: str) -> None:
        if name in self._presets and name != self.session.criteria:
            self.session.set_criteria(name)

    def _on_table_selection(self) -> None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        self.session.selected_segment = min(rows) if rows else None

    def edit_thresholds(self) -> QtThresholdsDialog:
        """Open (non-modal) the custom thresholds dialog, filled with the criteria in force."""
        self.thresholds_dialog = QtThresholdsDialog(self.session, self)
        self.thresholds_dialog.show()
        return self.thresholds_dialog

    # ----------------------------------------------------------------- reading (tests, reports)

    def cell(self, segment: str, column: str) -> str:
        """The text shown for ``segment`` in ``column`` (a name of :data:`COLUMNS`)."""
        return table_cell(self.table, segment, column)


def table_cell(table: QTableWidget, segment: str, column: str) -> str:
    """The text of a results table (columns :data:`COLUMNS`) for ``segment`` in ``column``."""
    c = COLUMNS.index(column)
    for r in range(table.rowCount()):
        if table.item(r, 0).text() == segment:
            return table.item(r, c).text()
    raise KeyError(segment)


class QtThresholdsDialog(QDialog):
    """Custom thresholds for every segment: translation (mm, %) and angulation (°).

    A criterion left unticked is not used.  *Apply* sets the session's criteria
    (undoable) to ``{"name": "custom", ...}`` (``measure.Criteria.from_dict``).
    """

    _KINDS = (
        ("translation_mm", "Translation (mm) >", 4.0, 0.1),
        ("translation_pct", "Translation (% of depth) >", 15.0, 0.5),
        ("angulation_deg", "Angulation (°) >", 10.0, 0.5),
    )

    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Custom thresholds")
        self.session = session
        form = QFormLayout(self)
        self.boxes: dict[str, tuple[QCheckBox, QDoubleSpinBox]] = {}
        current = session.criteria_spec
        for kind, label, default, step in self._KINDS:
            value = current.threshold(kind, "*")
            check = QCheckBox(label)
            spin = QDoubleSpinBox()
            spin.setRange(0.01, 1000.0)
            spin.setDecimals(2)
            spin.setSingleStep(step)
            used = value == value  # not NaN
            check.setChecked(used)
            spin.setValue(value if used else default)
            spin.setEnabled(used)
            check.toggled.connect(spin.setEnabled)
            form.addRow(check, spin)
            self.boxes[kind] = (check, spin)
        form.addRow(QLabel("Applied to every segment; a strict '>' decides."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Apply | QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(self.apply)
        buttons.rejected.connect(self.close)
        form.addRow(buttons)
        self.error = QLabel()
        self.error.setStyleSheet("color: #b00;")
        form.addRow(self.error)

    def apply(self) -> bool:
        """Set the session's criteria from the boxes; False (and a message) when none is ticked."""
        spec: dict = {"name": "custom", "source": "thresholds set in the viewer"}
        for kind, (check, spin) in self.boxes.items():
            if check.isChecked():
                spec[kind] = float(spin.value())
        try:
            self.session.set_criteria(spec)
        except UserError as exc:
            self.error.setText(str(exc))
            return False
        self.error.setText("")
        return True
