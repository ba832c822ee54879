"""Preloaded in the fork server: it ends when the batch process ends (``app.batch._lifeline``)."""

from __future__ import annotations

import os

from app.batch._lifeline import PARENT_ENV, end_with_parent

if os.environ.get(PARENT_ENV, "").isdigit():
    end_with_parent(int(os.environ[PARENT_ENV]))
