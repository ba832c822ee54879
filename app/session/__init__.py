"""The evented session model: two films, their landmarks and calibration, the
criteria, and the results, with undo/redo, save/load and autosave.

The model knows nothing of Qt (napari style): the viewer subscribes to
``session.events.<field>`` and calls the session's methods; the reports and the
batch pipeline use the same model without a display.

Every edit (placing, moving, nudging or deleting a corner, shifting the level
labels, a manual calibration, the criteria, swapping the films) goes through
:meth:`Session._edit`, which records an undoable step holding the state before
and after, recomputes the results, emits the events of what changed and writes
the recovery file.  Consecutive edits with the same ``merge_id`` (the moves of
one drag) form one undo step.

The class is composed of one part per concern, each in its own module:

- ``_model``: the value objects (:class:`FilmState`, :class:`ImageRef`,
  :class:`ManualCalibration`) and constants;
- ``_films``: films and calibration (open, roles, warnings, swap);
- ``_landmarks``: level labels and corner edits;
- ``_annotations``: the reader's free rulers and angles;
- ``_history``: undo/redo and the event announcements of each edit;
- ``_persistence``: save, load, autosave and recovery;
- ``_results``: criteria and the segmental motion;
- ``_safety``: the safety checks of the film pair and their acknowledgement.

The file format is documented in ``docs/session-format.md``.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import measure
from app.events import EmitterGroup
from app.session._annotations import AnnotationsMixin
from app.session._films import FilmsMixin, LoadedStudy, assign_roles, identity_mismatch, load_study
from app.session._history import HistoryMixin, _Step
from app.session._landmarks import LandmarksMixin, shifted_levels
from app.session._model import FORMAT, FORMAT_VERSION, ROLES, FilmState, ImageRef, ManualCalibration
from app.session._persistence import PersistenceMixin, default_recovery_path
from app.session._results import ResultsMixin
from app.session._safety import SafetyMixin

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ROLES",
    "FilmState",
    "ImageRef",
    "LoadedStudy",
    "ManualCalibration",
    "Session",
    "assign_roles",
    "default_recovery_path",
    "identity_mismatch",
    "load_study",
    "shifted_levels",
]


class Session(
    FilmsMixin, LandmarksMixin, AnnotationsMixin, HistoryMixin, ResultsMixin, SafetyMixin, PersistenceMixin
):
    """The state of one flexion/extension measurement, evented and undoable.

    Parameters
    ----------
    levels : sequence of str, optional
        Labels of the bodies, top to bottom (``measure.DEFAULT_LEVELS``).
    criteria : str, optional
        Name of the criteria preset (``"default"``, ``"white-panjabi"``).
    recovery_path : path or None, optional
        Recovery file written after every edit; None disables autosave.

    Attributes
    ----------
    events : EmitterGroup
        ``films``, ``landmarks`` (info ``role``), ``calibration`` (``role``),
        ``levels``, ``criteria``, ``selected_segment``, ``results``, ``dirty``,
        ``history`` (undo/redo availability), ``path``, ``messages``,
        ``label_review`` (the level labels await the reader's confirmation),
        ``annotations`` (info ``role``: a ruler or angle was drawn, moved or deleted).
    """

    def __init__(
        self,
        levels: Sequence[str] | None = None,
        criteria: str | measure.Criteria = "default",
        recovery_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.events = EmitterGroup(
            self,
            (
                "films",
                "landmarks",
                "calibration",
                "levels",
                "criteria",
                "selected_segment",
                "results",
                "dirty",
                "history",
                "path",
                "messages",
                "label_review",
                "annotations",
            ),
        )
        self._levels: tuple[str, ...] = tuple(levels or measure.DEFAULT_LEVELS)
        self._criteria: measure.Criteria = measure.get_criteria(criteria)
        self._films: dict[str, FilmState | None] = {"flexion": None, "extension": None}
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._open_merge: Hashable | None = None
        self._selected_segment: int | None = None
        self._label_review: str | None = None
        self._dirty = False
        self.path: Path | None = None
        self.recovery_path = Path(recovery_path) if recovery_path is not None else None
        self._load_messages: list[str] = []
        self._load_errors: list[str] = []
        self._results: Any = None
        self.motion_error: str | None = None
        self._init_safety()
        self._recompute()
