"""Mouse and keyboard interaction with the landmarks, as plain functions of
``(session, state, event)`` (napari style): no Qt, testable with a fake event.

The Qt view translates its events into :class:`PointerEvent` (positions already
in image coordinates) and :class:`KeyEvent`, and calls these functions; what
they change goes into the session (undoable) or into the view's
:class:`EditorState` (selection, drag, calibration line).

Keys (documented in docs/viewer.md): arrows nudge the selected corner by
0.25 image pixel, with Shift by 1 pixel; Delete/Backspace removes it; Tab and
Shift+Tab select the next/previous placed corner; Escape clears the selection
or cancels a calibration line.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "NUDGE_PX",
    "NUDGE_SHIFT_PX",
    "EditorState",
    "KeyEvent",
    "PointerEvent",
    "hit_corner",
    "key_press",
    "pointer_move",
    "pointer_press",
    "pointer_release",
]

NUDGE_PX = 0.25
"""Arrow-key step, image pixels."""
NUDGE_SHIFT_PX = 1.0
"""Shift+arrow step, image pixels."""

_drag_ids = itertools.count(1)


@dataclass(frozen=True)
class PointerEvent:
    """A mouse event in image coordinates.

    Parameters
    ----------
    position : tuple of float
        ``(x, y)`` image pixels (origin at the centre of the top-left pixel).
    button : {"left", "right", "middle", "none"}
    modifiers : frozenset of str
        Any of ``"shift"``, ``"control"``, ``"alt"``.
    scale : float
        Widget pixels per image pixel (to turn the pick radius into pixels).
    """

    position: tuple[float, float]
    button: str = "left"
    modifiers: frozenset[str] = frozenset()
    scale: float = 1.0


@dataclass(frozen=True)
class KeyEvent:
    """A key press: ``key`` is ``"left"``, ``"right"``, ``"up"``, ``"down"``,
    ``"delete"``, ``"tab"``, ``"backtab"``, ``"escape"`` or a character."""

    key: str
    modifiers: frozenset[str] = frozenset()


@dataclass
class EditorState:
    """What one film view is doing (not part of the session, not undoable).

    Attributes
    ----------
    role : str
        The film this view shows (``"flexion"`` or ``"extension"``).
    mode : {"edit", "guided", "calibrate", "clicks"}
        ``guided``: a press on empty image places the next missing corner, which
        follows the pointer until the button is released.
        ``calibrate``: a drag draws the calibration line.
        ``clicks``: one press inside each body, top to bottom (or inside the
        first and the last only), recorded in ``clicks`` (the one-click path).
    selected : tuple of int or None
        ``(level, corner)`` of the selected corner.
    dragging : tuple of int or None
        The corner being dragged.
    calibration_line : tuple of (x, y) pairs or None
        The line drawn in calibrate mode.
    calibration_done : bool
        True once the line is finished (the view then asks for the length).
    pick_radius_px : float
        How close (widget pixels) a press must be to grab a corner.
    """

    role: str
    mode: str = "edit"
    selected: tuple[int, int] | None = None
    dragging: tuple[int, int] | None = None
    drag_id: tuple[str, int] | None = None
    calibration_line: tuple[tuple[float, float], tuple[float, float]] | None = None
    calibration_done: bool = False
    pick_radius_px: float = 8.0
    messages: list[str] = field(default_factory=list)
    clicks: list[tuple[float, float]] = field(default_factory=list)


def hit_corner(landmarks: np.ndarray, xy: tuple[float, float], radius: float) -> tuple[int, int] | None:
    """The placed corner nearest to ``xy`` within ``radius``, or None.

    Parameters
    ----------
    landmarks : ndarray of shape (V, 4, 2)
        Pixels; NaN where absent.
    xy : tuple of float
        ``(x, y)`` pixels.
    radius : float
        Pick radius, image pixels.
    """
    d2 = ((landmarks - np.asarray(xy, float)) ** 2).sum(axis=-1)
    d2 = np.where(np.isfinite(d2), d2, np.inf)
    flat = int(np.argmin(d2))
    if not d2.flat[flat] <= radius * radius:
        return None
    v, c = np.unravel_index(flat, d2.shape)
    return int(v), int(c)


def pointer_press(session, state: EditorState, event: PointerEvent) -> bool:
    """Handle a button press; True when it was used (the view must not pan)."""
    if event.button != "left" or state.role not in session.roles:
        return False
    if state.mode == "clicks":  # a point inside the next body; corners are not grabbed
        if len(state.clicks) < len(session.levels):
            state.clicks.append((float(event.position[0]), float(event.position[1])))
        return True
    if state.mode == "calibrate":
        state.calibration_line = (event.position, event.position)
        state.calibration_done = False
        return True
    hit = hit_corner(session.landmarks(state.role), event.position, state.pick_radius_px / event.scale)
    if hit is not None:
        state.selected = hit
        state.dragging = hit
        state.drag_id = ("drag", next(_drag_ids))
        return True
    if state.mode == "guided":
        target = session.next_missing_corner(state.role)
        if target is None:
            return False
        # placed at the press and dragged until the release (adjust with the loupe):
        # placing and adjusting are one undo step
        state.drag_id = ("drag", next(_drag_ids))
        session.set_corner(state.role, *target, event.position, merge_id=state.drag_id)
        state.selected = target
        state.dragging = target
        return True
    state.selected = None
    return False


def pointer_move(session, state: EditorState, event: PointerEvent) -> bool:
    """Handle a move with the button held; True when it was used."""
    if state.mode == "calibrate" and state.calibration_line is not None and not state.calibration_done:
        state.calibration_line = (state.calibration_line[0], event.position)
        return True
    if state.dragging is not None:
        session.set_corner(state.role, *state.dragging, event.position, merge_id=state.drag_id)
        return True
    return False


def pointer_release(session, state: EditorState, event: PointerEvent) -> bool:
    """Handle a button release; True when it was used.

    In calibrate mode a finished line sets ``state.calibration_done``; the view
    then asks for the object's length.
    """
    if state.mode == "calibrate" and state.calibration_line is not None and not state.calibration_done:
        state.calibration_line = (state.calibration_line[0], event.position)
        state.calibration_done = True
        return True
    if state.dragging is not None:
        state.dragging = None
        state.drag_id = None
        session.end_merge()
        return True
    return False


_ARROWS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


def key_press(session, state: EditorState, event: KeyEvent) -> bool:
    """Handle a key; True when it was used."""
    if state.role not in session.roles:
        return False
    if event.key == "escape":
        used = state.selected is not None or state.calibration_line is not None or bool(state.clicks)
        state.clicks.clear()
        state.selected = None
        state.calibration_line = None
        state.calibration_done = False
        return used
    if event.key in ("tab", "backtab"):
        placed = np.argwhere(np.isfinite(session.landmarks(state.role)).all(axis=-1))
        if not len(placed):
            return False
        keys = [tuple(map(int, p)) for p in placed]
        if state.selected in keys:
            step = 1 if event.key == "tab" else -1
            state.selected = keys[(keys.index(state.selected) + step) % len(keys)]
        else:
            state.selected = keys[0] if event.key == "tab" else keys[-1]
        return True
    if state.selected is None:
        return False
    if not np.isfinite(session.landmarks(state.role)[state.selected]).all():
        state.selected = None  # undone since it was selected
        return False
    if event.key in _ARROWS:
        step = NUDGE_SHIFT_PX if "shift" in event.modifiers else NUDGE_PX
        dx, dy = _ARROWS[event.key]
        session.nudge_corner(state.role, *state.selected, (dx * step, dy * step))
        return True
    if event.key == "delete":
        session.delete_corner(state.role, *state.selected)
        state.selected = None
        return True
    return False
