"""Landmarks: the level labels, the corners placed on each film and the edits
that place, move, delete, import or relabel them (each one undoable step)."""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

import measure
from app.errors import UserError
from app.session._model import _LEVEL_SEQUENCE, ROLES, FilmState, _empty_landmarks


def shifted_levels(levels: Sequence[str], step: int) -> tuple[str, ...]:
    """Level labels moved ``step`` places down the spine (negative: up).

    The sacrum stays ``S1``; the other labels move along
    ``T10 … T12, L1 … L6``.  Used for transitional anatomy (a T12 counted as L1,
    a sixth lumbar body).

    Raises
    ------
    UserError
        When a label would leave ``T10 … L6``.
    """
    labels = list(levels)
    sacral = labels and labels[-1] == "S1"
    movable = labels[:-1] if sacral else labels
    try:
        index = [_LEVEL_SEQUENCE.index(label) + step for label in movable]
    except ValueError as exc:
        raise UserError(f"cannot shift level labels {labels}: {exc}") from None
    if index and (min(index) < 0 or max(index) >= len(_LEVEL_SEQUENCE)):
        raise UserError(
            f"cannot shift the level labels further {'up' if step < 0 else 'down'} "
            f"(labels run from {_LEVEL_SEQUENCE[0]} to {_LEVEL_SEQUENCE[-1]})"
        )
    out = [_LEVEL_SEQUENCE[i] for i in index]
    return (*out, "S1") if sacral else tuple(out)


class LandmarksMixin:
    """The corners of a :class:`~app.session.Session`, level labels and segment selection."""

    _films: dict[str, FilmState | None]
    _levels: tuple[str, ...]
    _selected_segment: int | None
    _label_review: str | None

    # ----------------------------------------------------------------- read access

    @property
    def levels(self) -> tuple[str, ...]:
        """Labels of the bodies, top to bottom."""
        return self._levels

    @property
    def segments(self) -> tuple[str, ...]:
        """Labels of the segments, e.g. ``"L4-L5"``."""
        return tuple(f"{a}-{b}" for a, b in zip(self._levels[:-1], self._levels[1:], strict=True))

    @property
    def selected_segment(self) -> int | None:
        """Index of the highlighted segment (not an edit: not undoable)."""
        return self._selected_segment

    @selected_segment.setter
    def selected_segment(self, index: int | None) -> None:
        if index is not None and not 0 <= int(index) < len(self.segments):
            raise ValueError(f"selected_segment: {index} is not a segment index")
        index = None if index is None else int(index)
        if index != self._selected_segment:
            self._selected_segment = index
            self.events.selected_segment(value=index)

    def landmarks(self, role: str) -> np.ndarray:
        """Landmarks of ``role``, shape (V, 4, 2), pixels (a copy; NaN where absent)."""
        state = self.film(role)
        if state is None:
            return _empty_landmarks(len(self._levels))[0]
        return state.landmarks.copy()

    def corner_order(self) -> list[tuple[int, int]]:
        """``(level, corner)`` in the order the guided mode asks for them.

        Top to bottom, corners ``AS, PS, PI, AI``; the sacrum only ``AS, PS``.
        """
        order = []
        for v, label in enumerate(self._levels):
            corners = (0, 1) if label.startswith("S") else (0, 1, 2, 3)
            order.extend((v, c) for c in corners)
        return order

    def next_missing_corner(self, role: str) -> tuple[int, int] | None:
        """The first corner of the guided order not placed on ``role``, or None."""
        state = self.film(role)
        if state is None:
            return None
        placed = np.isfinite(state.landmarks).all(axis=-1)
        for v, c in self.corner_order():
            if not placed[v, c]:
                return v, c
        return None

    def corner_name(self, level: int, corner: int) -> str:
        """``"L4 PI"``: the label of a corner."""
        return f"{self._levels[level]} {measure.CORNERS[corner]}"

    # ----------------------------------------------------------------- edits

    def set_corner(
        self,
        role: str,
        level: int,
        corner: int,
        xy: Sequence[float],
        *,
        method: str | None = None,
        merge_id: Hashable | None = None,
    ) -> None:
        """Place or move one corner.

        Parameters
        ----------
        role : str
            ``"flexion"`` or ``"extension"``.
        level, corner : int
            Body index (top to bottom) and corner index (``AS, PS, PI, AI``).
        xy : sequence of 2 float
            ``(x, y)`` in pixels.
        method : str, optional
            Placement method; by default ``manual`` for a new corner, and a moved
            corner keeps ``manual`` or becomes ``edited``.
        merge_id : hashable, optional
            Consecutive edits with the same id form one undo step (one drag).
        """
        state = self._require(role)
        x, y = (float(v) for v in xy)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"xy: must be finite, got {xy!r}")
        existing = np.isfinite(state.landmarks[level, corner]).all()
        if method is None:
            previous = state.placement[level, corner]
            method = "manual" if (not existing or previous in (None, "manual")) else "edited"
        verb = "Move" if existing else "Place"

        def apply(films: dict[str, FilmState | None]) -> None:
            s = films[role]
            s.landmarks[level, corner] = (x, y)
            s.placement[level, corner] = str(method)
            s.landmark_sd_mm[level, corner] = np.nan

        self._edit(f"{verb} {self.corner_name(level, corner)} ({role})", apply, merge_id=merge_id, roles=(role,))

    def nudge_corner(self, role: str, level: int, corner: int, dxdy: Sequence[float]) -> None:
        """Move a placed corner by ``(dx, dy)`` pixels; consecutive nudges of it are one undo step."""
        state = self._require(role)
        old = state.landmarks[level, corner]
        if not np.isfinite(old).all():
            raise UserError(f"{self.corner_name(level, corner)} is not placed on the {role} film")
        self.set_corner(role, level, corner, old + np.asarray(dxdy, float), merge_id=("nudge", role, level, corner))

    def delete_corner(self, role: str, level: int, corner: int) -> None:
        """Remove one corner (it becomes NaN)."""
        self._require(role)

        def apply(films: dict[str, FilmState | None]) -> None:
            s = films[role]
            s.landmarks[level, corner] = np.nan
            s.placement[level, corner] = None
            s.landmark_sd_mm[level, corner] = np.nan

        self._edit(f"Delete {self.corner_name(level, corner)} ({role})", apply, roles=(role,))

    def set_landmarks(
        self,
        role: str,
        landmarks: np.ndarray,
        method: str | np.ndarray = "manual",
        landmark_sd_mm: np.ndarray | None = None,
        description: str = "Set landmarks",
    ) -> None:
        """Replace every corner of ``role`` at once (automatic tools, import).

        Parameters
        ----------
        landmarks : ndarray of shape (V, 4, 2)
            Pixels; NaN where absent.
        method : str or ndarray of shape (V, 4)
            Placement method of each corner.
        landmark_sd_mm : ndarray of shape (V, 4), optional
            Positional SD per corner, mm (NaN: the method's default).
        """
        self._require(role)
        lm = np.array(landmarks, dtype=float)
        if lm.shape != (len(self._levels), 4, 2):
            raise ValueError(f"landmarks: expected shape {(len(self._levels), 4, 2)}, got {lm.shape}")
        placed = np.isfinite(lm).all(axis=-1)
        placement = np.broadcast_to(np.asarray(method, dtype=object), placed.shape).copy()
        placement[~placed] = None
        sd = np.full(placed.shape, np.nan) if landmark_sd_mm is None else np.array(landmark_sd_mm, float)

        def apply(films: dict[str, FilmState | None]) -> None:
            s = films[role]
            s.landmarks = lm.copy()
            s.placement = placement.copy()
            s.landmark_sd_mm = sd.copy()

        self._edit(f"{description} ({role})", apply, roles=(role,))

    def merge_landmarks(
        self,
        role: str,
        corners: np.ndarray,
        placement: np.ndarray,
        landmark_sd_mm: np.ndarray | None = None,
        description: str = "Automatic landmarks",
    ) -> int:
        """Put automatically placed corners on ``role``, keeping the others: one undoable edit.

        Parameters
        ----------
        corners : ndarray of shape (V, 4, 2)
            Pixels; NaN where the tool placed nothing (the existing corner stays).
        placement : ndarray of shape (V, 4)
            ``measure.PlacementMethod`` value of each corner placed.
        landmark_sd_mm : ndarray of shape (V, 4), optional
            The tool's positional SD per corner, mm (NaN: the method's default).

        Returns
        -------
        int
            How many corners were placed.
        """
        self._require(role)
        new = np.asarray(corners, dtype=float)
        if new.shape != (len(self._levels), 4, 2):
            raise ValueError(f"corners: expected shape {(len(self._levels), 4, 2)}, got {new.shape}")
        placed = np.isfinite(new).all(axis=-1)
        if not placed.any():
            return 0
        methods = np.asarray(placement, dtype=object)
        sd = np.full(placed.shape, np.nan) if landmark_sd_mm is None else np.asarray(landmark_sd_mm, float)

        def apply(films: dict[str, FilmState | None]) -> None:
            state = films[role]
            state.landmarks[placed] = new[placed]
            state.placement[placed] = [str(m) for m in methods[placed]]
            state.landmark_sd_mm[placed] = sd[placed]

        self._edit(f"{description} ({role})", apply, roles=(role,))
        return int(placed.sum())

    def import_landmarks(self, path: str | os.PathLike[str]) -> None:
        """Put the corners of a landmarks (or session) file on the open films, as one undoable edit.

        The file's levels replace the session's; its placement methods and SDs
        are kept; its calibration is not used (the films' own calibration stays).

        Raises
        ------
        InputFileError
            The file is not a readable landmarks file.
        UserError
            No film is open.
        """
        from app.landmarks_io import read_landmarks

        study = read_landmarks(path)
        roles = self.roles
        if not roles:
            raise UserError(f"{path}: open the films before importing landmarks")
        marks = {}
        for role in roles:
            film = study.film(role)
            placed = np.isfinite(film.corners).all(axis=-1)
            placement = np.where(placed, film.placement if film.placement is not None else "", "")
            placement = np.where(placement == "", "manual", placement).astype(object)
            placement[~placed] = None
            sd = (
                np.full(placed.shape, np.nan)
                if film.landmark_sd_mm is None
                else np.array(film.landmark_sd_mm, dtype=float)
            )
            marks[role] = (np.array(film.corners, dtype=float), placement, sd)

        def apply(films: dict[str, FilmState | None]) -> None:
            for role, (lm, placement, sd) in marks.items():
                films[role].landmarks = lm.copy()
                films[role].placement = placement.copy()
                films[role].landmark_sd_mm = sd.copy()
            for role in ROLES:
                if films[role] is not None and role not in marks:
                    lm, placement, sd = _empty_landmarks(len(study.levels))
                    films[role].landmarks, films[role].placement = lm, placement
                    films[role].landmark_sd_mm = sd

        self._selected_segment = None
        self._edit(
            f"Import landmarks from {Path(path).name}", apply, roles=roles, levels=tuple(study.levels)
        )

    def shift_levels(self, step: int) -> None:
        """Relabel every body ``step`` places down (negative: up); see :func:`shifted_levels`."""
        new = shifted_levels(self._levels, step)
        self._edit(
            f"Shift level labels {'down' if step > 0 else 'up'}", lambda films: None, levels=new
        )

    # ----------------------------------------------------------------- label review

    @property
    def label_review(self) -> str | None:
        """Why the level labels await the reader's confirmation, or None when they do not.

        Set when automatic detection is unsure of the labels; until the reader
        confirms them (:meth:`confirm_labels`, after shifting them if needed)
        every result row carries ``needs_review = True`` and its verdict does
        not count.
        """
        return self._label_review

    def request_label_review(self, reason: str) -> None:
        """Ask the reader to confirm the level labels (``reason`` says why they are uncertain)."""
        reason = str(reason).strip() or "the level labels are uncertain"
        if reason != self._label_review:
            self._label_review = reason
            self._recompute()
            self.events.label_review(value=reason)
            self.events.results(value=self._results)
            self._set_dirty(True)
            self.autosave()

    def confirm_labels(self) -> None:
        """The reader checked the level labels: the results count again."""
        if self._label_review is not None:
            self._label_review = None
            self._recompute()
            self.events.label_review(value=None)
            self.events.results(value=self._results)
            self._set_dirty(True)
            self.autosave()

    def merge_landmarks_of(
        self,
        marks: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]],
        description: str,
    ) -> int:
        """:meth:`merge_landmarks` on several films at once, as one undoable edit.

        Parameters
        ----------
        marks : dict of str to (corners, placement, landmark_sd_mm)
            Per role: corners (V, 4, 2) in pixels (NaN: the existing corner
            stays), placement (V, 4) and SD (V, 4) in mm or None.
        description : str
            The undo step's text.

        Returns
        -------
        int
            How many corners were placed in all.
        """
        shape = (len(self._levels), 4, 2)
        prepared = {}
        for role, (corners, placement, sd) in marks.items():
            self._require(role)
            new = np.asarray(corners, dtype=float)
            if new.shape != shape:
                raise ValueError(f"corners ({role}): expected shape {shape}, got {new.shape}")
            placed = np.isfinite(new).all(axis=-1)
            if placed.any():
                sd = np.full(placed.shape, np.nan) if sd is None else np.asarray(sd, float)
                prepared[role] = (new, placed, np.asarray(placement, dtype=object), sd)
        if not prepared:
            return 0

        def apply(films: dict[str, FilmState | None]) -> None:
            for role, (new, placed, methods, sd) in prepared.items():
                state = films[role]
                state.landmarks[placed] = new[placed]
                state.placement[placed] = [str(m) for m in methods[placed]]
                state.landmark_sd_mm[placed] = sd[placed]

        self._edit(description, apply, roles=tuple(prepared))
        return int(sum(p[1].sum() for p in prepared.values()))
