"""History: every edit as one undoable step (before/after snapshots), undo,
redo, merged drags, and the events announcing what an edit changed."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import measure
from app.errors import UserError
from app.session._model import ROLES, FilmState, _check_role, _same_landmarks


@dataclass(frozen=True)
class _Snapshot:
    films: tuple[FilmState | None, FilmState | None]
    levels: tuple[str, ...]
    criteria: Any


@dataclass
class _Step:
    description: str
    before: _Snapshot
    after: _Snapshot
    merge_id: Hashable | None = None


class HistoryMixin:
    """Undo/redo of a :class:`~app.session.Session`; :meth:`_edit` is the one way to change it."""

    _films: dict[str, FilmState | None]
    _levels: tuple[str, ...]
    _criteria: measure.Criteria
    _undo: list[_Step]
    _redo: list[_Step]
    _open_merge: Hashable | None
    _dirty: bool

    @property
    def dirty(self) -> bool:
        """True when there are edits not saved to :attr:`path`."""
        return self._dirty

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_text(self) -> str:
        """What Undo would undo ("" when nothing)."""
        return self._undo[-1].description if self._undo else ""

    @property
    def redo_text(self) -> str:
        return self._redo[-1].description if self._redo else ""

    # ----------------------------------------------------------------- undo machinery

    def _require(self, role: str) -> FilmState:
        state = self._films[_check_role(role)]
        if state is None:
            raise UserError(f"no {role} film is open")
        return state

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(
            films=tuple(None if self._films[r] is None else self._films[r].copy() for r in ROLES),  # type: ignore[arg-type]
            levels=self._levels,
            criteria=self._criteria,
        )

    def _restore(self, snap: _Snapshot) -> None:
        before = self._snapshot()
        self._films = {r: (None if s is None else s.copy()) for r, s in zip(ROLES, snap.films, strict=True)}
        self._levels = snap.levels
        self._criteria = snap.criteria
        self._announce(before, snap)

    def _edit(
        self,
        description: str,
        apply: Callable[[dict[str, FilmState | None]], None],
        *,
        merge_id: Hashable | None = None,
        roles: Sequence[str] = (),
        levels: tuple[str, ...] | None = None,
        criteria: measure.Criteria | None = None,
        films_changed: bool = False,
    ) -> None:
        before = self._snapshot()
        films = {r: (None if s is None else s.copy()) for r, s in self._films.items()}
        apply(films)
        self._films = films
        if levels is not None:
            self._levels = levels
        if criteria is not None:
            self._criteria = criteria
        after = self._snapshot()
        last = self._undo[-1] if self._undo else None
        if merge_id is not None and last is not None and last.merge_id == merge_id and self._open_merge == merge_id:
            last.after = after
        else:
            self._undo.append(_Step(description, before, after, merge_id))
        self._open_merge = merge_id
        self._redo.clear()
        self._announce(before, after)
        self._set_dirty(True)
        self.events.history()
        if merge_id is None or (isinstance(merge_id, tuple) and merge_id[:1] == ("nudge",)):
            self.autosave()

    def end_merge(self) -> None:
        """Close the current merged step (end of a drag) and autosave it."""
        if self._open_merge is not None:
            self._open_merge = None
            self.autosave()

    def undo(self) -> None:
        """Undo the last edit (no-op when there is none)."""
        if not self._undo:
            return
        step = self._undo.pop()
        self._redo.append(step)
        self._open_merge = None
        self._restore(step.before)
        self._set_dirty(True)
        self.events.history()
        self.autosave()

    def redo(self) -> None:
        """Redo the last undone edit."""
        if not self._redo:
            return
        step = self._redo.pop()
        self._undo.append(step)
        self._open_merge = None
        self._restore(step.after)
        self._set_dirty(True)
        self.events.history()
        self.autosave()

    def _announce(self, before: _Snapshot, after: _Snapshot) -> None:
        films_changed = any(
            (a is None) != (b is None) or (a is not None and a.film is not b.film)
            for a, b in zip(before.films, after.films, strict=True)
        )
        self._recompute()
        if self._selected_segment is not None and self._selected_segment >= len(self.segments):
            self._selected_segment = None
            self.events.selected_segment(value=None)
        if films_changed:
            self.events.films()
        if before.levels != after.levels:
            self.events.levels(value=after.levels)
        if before.criteria != after.criteria:
            self.events.criteria(value=after.criteria.name)
        calibration_changed = films_changed
        for i, role in enumerate(ROLES):
            a, b = before.films[i], after.films[i]
            if films_changed or (a is not None and b is not None and not _same_landmarks(a, b)):
                self.events.landmarks(role=role)
            if films_changed or (a is not None and b is not None and a.annotations != b.annotations):
                self.events.annotations(role=role)
            if films_changed or (
                a is not None and b is not None and a.manual_calibration != b.manual_calibration
            ):
                calibration_changed = True
                self.events.calibration(role=role)
        if calibration_changed:
            self.events.messages(value=self.messages)
        self.events.results(value=self._results)

    def _set_dirty(self, dirty: bool) -> None:
        if dirty != self._dirty:
            self._dirty = dirty
            self.events.dirty(value=dirty)
