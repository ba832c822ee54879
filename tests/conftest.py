"""Shared test set-up: Qt renders offscreen unless a test starts a real window under Xvfb."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
