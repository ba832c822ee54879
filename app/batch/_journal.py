"""The resume journal: one small JSON file per finished study.

``RESULTS_DIR/.work/studies/<key>.json`` holds the worker's outcome for the
study with that key (see :func:`app.batch._pairing.study_key`).  Each file is
written atomically as soon as its study finishes, so an interrupted run keeps
every finished study, and a rerun reads the journal instead of redoing them.
A file that cannot be parsed (it cannot be half-written, but it may be
tampered with) is ignored and the study redone.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from app.atomic import atomic_write_text
from app.batch._records import StudyOutcome

__all__ = ["Journal"]


class Journal:
    """Finished studies under ``RESULTS_DIR/.work/studies``."""

    def __init__(self, results_dir: Path) -> None:
        self.folder = results_dir / ".work" / "studies"

    def path(self, key: str) -> Path:
        """The journal file of a study key."""
        return self.folder / f"{key}.json"

    def load(self, key: str) -> StudyOutcome | None:
        """The journaled outcome of ``key``, or None when absent or unreadable."""
        path = self.path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            outcome = StudyOutcome.from_json(data)
        except (OSError, ValueError, TypeError):
            return None
        if outcome.key != key:
            return None
        outcome.flexion_landmarks = _none_to_nan(outcome.flexion_landmarks)
        outcome.extension_landmarks = _none_to_nan(outcome.extension_landmarks)
        outcome.flexion_sd_mm = _none_to_nan(outcome.flexion_sd_mm)
        outcome.extension_sd_mm = _none_to_nan(outcome.extension_sd_mm)
        outcome.flexion_fit_quality = _none_to_nan(outcome.flexion_fit_quality)
        outcome.extension_fit_quality = _none_to_nan(outcome.extension_fit_quality)
        return outcome

    def save(self, outcome: StudyOutcome) -> None:
        """Record a finished study (atomic write; raises OSError on a write error)."""
        atomic_write_text(self.path(outcome.key), json.dumps(outcome.to_json(), allow_nan=False))


def _none_to_nan(value):
    if value is None:
        return math.nan
    if isinstance(value, list):
        return [_none_to_nan(v) for v in value]
    return value
