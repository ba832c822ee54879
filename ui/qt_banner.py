"""Messages shown inside the window (never only on the console): a stack of
coloured banners, each with an optional action button and a close button."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

__all__ = ["QtMessageBanner"]

_STYLES = {
    "error": "background: #8e1b1b; color: white;",
    "mismatch": "background: #c40000; color: white; font-weight: bold; font-size: 15px;",
    "safety": "background: #c40000; color: white; font-weight: bold;",
    "warning": "background: #f2c14e; color: #222;",
    "info": "background: #2d5d8a; color: white;",
}


class QtMessageBanner(QWidget):
    """A vertical stack of one-line messages.

    ``show_message(text, level, key=...)`` adds (or replaces, by key) a banner;
    ``messages()`` lists what is shown, for tests and screen readers.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(1)
        self._items: dict[str, tuple[QFrame, str, str]] = {}
        self._counter = 0

    def show_message(
        self,
        text: str,
        level: str = "warning",
        key: str | None = None,
        action: tuple[str, Callable[[], None]] | None = None,
        closable: bool = True,
    ) -> str:
        """Show ``text``; returns its key (reuse it to replace or remove the banner)."""
        if key is None:
            self._counter += 1
            key = f"message-{self._counter}"
        self.remove(key)
        frame = QFrame()
        frame.setObjectName(key)
        frame.setStyleSheet(f"QFrame#{key} {{ {_STYLES.get(level, _STYLES['info'])} }}")
        row = QHBoxLayout(frame)
        row.setContentsMargins(8, 4, 8, 4)
        label = QLabel(text)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setStyleSheet(_STYLES.get(level, _STYLES["info"]))
        row.addWidget(label, 1)
        if action is not None:
            button = QPushButton(action[0])
            button.setObjectName(f"{key}-action")
            button.clicked.connect(lambda: (self.remove(key), action[1]()))
            row.addWidget(button)
        if closable:
            close = QPushButton("✕")
            close.setFlat(True)
            close.setFixedWidth(28)
            close.setToolTip("Dismiss")
            close.clicked.connect(lambda: self.remove(key))
            row.addWidget(close)
        self._layout.addWidget(frame)
        self._items[key] = (frame, text, level)
        return key

    def remove(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            item[0].setParent(None)
            item[0].deleteLater()

    def clear(self, keep: tuple[str, ...] = ()) -> None:
        for key in list(self._items):
            if key not in keep:
                self.remove(key)

    def messages(self, level: str | None = None) -> list[str]:
        """Texts shown, optionally only those of ``level``."""
        return [text for _, text, lv in self._items.values() if level is None or lv == level]

    def action_button(self, key: str) -> QPushButton | None:
        item = self._items.get(key)
        return None if item is None else item[0].findChild(QPushButton, f"{key}-action")
