"""The Qt binding must not corrupt Python's reference counts.

PySide6-Essentials 6.12.0 under Python 3.11 drops one reference to ``None`` on
every call of a C++ method returning void (``QWidget.update()``): a few
thousand calls later the interpreter aborts with "none_dealloc".  The viewer
makes thousands of such calls per second while painting, so pyproject.toml
pins PySide6 below 6.12; this test catches a binding with the bug.
"""

import sys

from PySide6.QtWidgets import QWidget


def test_void_calls_keep_none_refcount(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    before = sys.getrefcount(None)
    for _ in range(2000):
        widget.update()
        widget.setToolTip("")
    assert sys.getrefcount(None) - before > -100
