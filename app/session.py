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

The file format is documented in ``docs/session-format.md``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import math
import os
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import measure
from app import __version__
from app.atomic import atomic_write_text
from app.errors import InputFileError, UserError
from app.events import EmitterGroup
from app.report_data import finding_of
from measure import Calibration, CalibrationSource

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ROLES",
    "FilmState",
    "ImageRef",
    "ManualCalibration",
    "Session",
    "assign_roles",
    "default_recovery_path",
    "identity_mismatch",
    "shifted_levels",
]

_log = logging.getLogger(__name__)

FORMAT = "lumbar-instability-session"
FORMAT_VERSION = 1
ROLES: tuple[str, str] = ("flexion", "extension")
_LEVEL_SEQUENCE = ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "L6")


# --------------------------------------------------------------------------- value objects


@dataclass(frozen=True)
class ImageRef:
    """Which image a film's landmarks belong to.

    Parameters
    ----------
    path : str
        Path of the DICOM file (as given, or relative to the session file once saved).
    sop_instance_uid, series_instance_uid, study_instance_uid : str
        DICOM identity of the image ("" when unknown).
    sha256 : str
        Hex digest of the file content ("" when unknown).
    """

    path: str = ""
    sop_instance_uid: str = ""
    series_instance_uid: str = ""
    study_instance_uid: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class ManualCalibration:
    """A line drawn over an object of known length.

    Parameters
    ----------
    p0, p1 : tuple of float
        End points ``(x, y)`` in pixels (column, row; origin at the centre of the
        top-left pixel).
    length_mm : float
        The object's true length, mm.
    """

    p0: tuple[float, float]
    p1: tuple[float, float]
    length_mm: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.length_mm) and self.length_mm > 0):
            raise UserError(f"calibration length must be a positive number of mm, got {self.length_mm!r}")
        if math.dist(self.p0, self.p1) < 1.0:
            raise UserError("calibration line is shorter than one pixel: draw it over the whole object")

    def calibration(self, reference: Calibration | None = None) -> Calibration:
        """The film's calibration implied by the line (source ``manual``).

        The ratio of row to column spacing of ``reference`` is kept (square pixels
        when it has none), and the scale is chosen so that the line measures
        ``length_mm``: ``sqrt((dx * col)^2 + (dy * row)^2) = length_mm``.
        """
        ratio = 1.0
        if reference is not None and reference.is_calibrated:
            ratio = float(reference.row_spacing_mm) / float(reference.column_spacing_mm)
        dx = self.p1[0] - self.p0[0]
        dy = self.p1[1] - self.p0[1]
        column = self.length_mm / math.hypot(dx, dy * ratio)
        return Calibration(
            column * ratio,
            column,
            CalibrationSource.MANUAL,
            f"line of {math.hypot(dx, dy):.1f} px drawn over {self.length_mm:g} mm",
        )

    def to_json(self) -> dict[str, Any]:
        return {"p0": list(self.p0), "p1": list(self.p1), "length_mm": self.length_mm}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ManualCalibration:
        return cls(
            tuple(float(v) for v in data["p0"]),  # type: ignore[arg-type]
            tuple(float(v) for v in data["p1"]),  # type: ignore[arg-type]
            float(data["length_mm"]),
        )


@dataclass
class FilmState:
    """One film of the session and everything placed on it.

    Parameters
    ----------
    film : object or None
        The loaded image (:class:`app.dicom_io.Film`), None when the session was
        opened without its images.
    image : ImageRef
        Identity of the image.
    landmarks : ndarray of shape (V, 4, 2)
        Corners ``AS, PS, PI, AI`` of each body in pixels; NaN where absent.
    placement : ndarray of shape (V, 4), dtype object
        How each corner was placed (``measure.PlacementMethod`` value) or None.
    dicom_calibration : Calibration
        Calibration read from the DICOM header.
    manual_calibration : ManualCalibration or None
        The user's line, which then overrides the DICOM calibration.
    landmark_sd_mm : ndarray of shape (V, 4)
        Positional standard deviation of each corner, mm (NaN: the default of
        its placement method).
    """

    film: Any
    image: ImageRef
    landmarks: np.ndarray
    placement: np.ndarray
    dicom_calibration: Calibration
    manual_calibration: ManualCalibration | None = None
    landmark_sd_mm: np.ndarray = field(default_factory=lambda: np.empty((0, 4)))

    @property
    def calibration(self) -> Calibration:
        """The calibration in force: manual when drawn, else the DICOM's."""
        if self.manual_calibration is not None:
            return self.manual_calibration.calibration(self.dicom_calibration)
        return self.dicom_calibration

    def copy(self) -> FilmState:
        return dataclasses.replace(
            self,
            landmarks=self.landmarks.copy(),
            placement=self.placement.copy(),
            landmark_sd_mm=self.landmark_sd_mm.copy(),
        )


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


# --------------------------------------------------------------------------- pure helpers


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


def identity_mismatch(first: Any, second: Any) -> str | None:
    """Why two films look like different patients or studies, or None.

    Compares the patient ID and the Study Instance UID of ``film.identity``.
    The message never contains a patient name.
    """
    a = getattr(first, "identity", None)
    b = getattr(second, "identity", None)
    if a is None or b is None:
        return None
    reasons = []
    pa, pb = getattr(a, "patient_id", "") or "", getattr(b, "patient_id", "") or ""
    if pa != pb:
        reasons.append(f"different patient IDs ({pa or 'none'} / {pb or 'none'})")
    differences = getattr(a, "patient_differences", None)
    if callable(differences):
        other = [d.replace("_", " ") for d in differences(b) if d != "patient_id"]
        reasons.extend(f"different {d}s" for d in other)
    sa, sb = getattr(a, "study_instance_uid", "") or "", getattr(b, "study_instance_uid", "") or ""
    if sa != sb:
        reasons.append("different studies (Study Instance UID)")
    if not reasons:
        return None
    return "The two films may not belong together: " + " and ".join(reasons) + "."


def _view_of(film: Any) -> str:
    view = getattr(film, "view", "unknown")
    return str(getattr(view, "value", view) or "unknown").lower()


def assign_roles(films: Sequence[Any], names: Sequence[str]) -> tuple[dict[str, int], list[str]]:
    """Decide which loaded film is the flexion and which the extension one.

    Parameters
    ----------
    films : sequence of Film
        Loaded films (``film.view`` is ``flexion``, ``extension``, ``neutral`` or
        ``unknown``).
    names : sequence of str
        A display name per film (file name), for the messages.

    Returns
    -------
    roles : dict of str to int
        ``{"flexion": i, "extension": j}``, with one key only in one-film mode.
    warnings : list of str
        One line each, to show in the window.

    Raises
    ------
    UserError
        No film, or more than two films without exactly one flexion and one
        extension among them.
    """
    views = [_view_of(f) for f in films]
    if not films:
        raise UserError("no film to open")
    if len(films) == 1:
        role = "extension" if views[0] == "extension" else "flexion"
        warn = [f"Only one film ({names[0]}): the motion needs a flexion and an extension film."]
        if views[0] not in ROLES:
            warn.append(f"{names[0]}: the DICOM does not say flexion or extension; shown as {role}.")
        return {role: 0}, warn
    if len(films) > 2:
        flex = [i for i, v in enumerate(views) if v == "flexion"]
        ext = [i for i, v in enumerate(views) if v == "extension"]
        if len(flex) == 1 and len(ext) == 1:
            ignored = [n for i, n in enumerate(names) if i not in (flex[0], ext[0])]
            return {"flexion": flex[0], "extension": ext[0]}, [
                f"{len(films)} films given: using the flexion and extension films; ignored {', '.join(ignored)}."
            ]
        raise UserError(
            f"{len(films)} films given ({', '.join(names)}): open exactly one flexion and one extension film"
        )
    v0, v1 = views
    if {v0, v1} == {"flexion", "extension"}:
        return ({"flexion": 0, "extension": 1} if v0 == "flexion" else {"flexion": 1, "extension": 0}), []
    if v0 == v1 and v0 in ROLES:
        return {"flexion": 0, "extension": 1}, [
            f"Both films are {v0} views according to the DICOM ({names[0]}, {names[1]}): "
            f"shown as flexion = {names[0]}, extension = {names[1]}; check the films."
        ]
    # at most one recognised view: place the other one opposite to it
    if v0 in ROLES:
        roles = {v0: 0, ("extension" if v0 == "flexion" else "flexion"): 1}
    elif v1 in ROLES:
        roles = {v1: 1, ("extension" if v1 == "flexion" else "flexion"): 0}
    else:
        roles = {"flexion": 0, "extension": 1}
    unknown = [names[i] for i, v in enumerate(views) if v not in ROLES]
    return roles, [
        f"The DICOM does not say flexion or extension for {', '.join(unknown)}: "
        f"flexion = {names[roles['flexion']]}, extension = {names[roles['extension']]}; swap if wrong."
    ]


def default_recovery_path() -> Path:
    """Where the recovery file is written (``LUMBAR_INSTABILITY_STATE_DIR`` or XDG state dir)."""
    base = os.environ.get("LUMBAR_INSTABILITY_STATE_DIR")
    if not base:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        base = str(Path(xdg) / "lumbar-instability")
    return Path(base) / "recovery.autosave.json"


def _empty_landmarks(n_levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.full((n_levels, 4, 2), np.nan),
        np.full((n_levels, 4), None, dtype=object),
        np.full((n_levels, 4), np.nan),
    )


# --------------------------------------------------------------------------- the model


class Session:
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
        ``history`` (undo/redo availability), ``path``, ``messages``.
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
            ),
        )
        self._levels: tuple[str, ...] = tuple(levels or measure.DEFAULT_LEVELS)
        self._criteria: measure.Criteria = measure.get_criteria(criteria)
        self._films: dict[str, FilmState | None] = {"flexion": None, "extension": None}
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._open_merge: Hashable | None = None
        self._selected_segment: int | None = None
        self._dirty = False
        self.path: Path | None = None
        self.recovery_path = Path(recovery_path) if recovery_path is not None else None
        self._load_messages: list[str] = []
        self._load_errors: list[str] = []
        self._results: Any = None
        self.motion_error: str | None = None
        self._recompute()

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
    def criteria(self) -> str:
        """Name of the criteria in force (a preset name, or the custom criteria's name)."""
        return self._criteria.name

    @property
    def criteria_spec(self) -> measure.Criteria:
        """The :class:`measure.Criteria` in force (thresholds per segment)."""
        return self._criteria

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

    def film(self, role: str) -> FilmState | None:
        """The film shown as ``role`` (``"flexion"`` or ``"extension"``), or None."""
        return self._films[_check_role(role)]

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles that have a film."""
        return tuple(r for r in ROLES if self._films[r] is not None)

    def landmarks(self, role: str) -> np.ndarray:
        """Landmarks of ``role``, shape (V, 4, 2), pixels (a copy; NaN where absent)."""
        state = self.film(role)
        if state is None:
            return _empty_landmarks(len(self._levels))[0]
        return state.landmarks.copy()

    def calibration(self, role: str) -> Calibration:
        """The calibration in force for ``role``."""
        state = self.film(role)
        return Calibration.uncalibrated("no film") if state is None else state.calibration

    @property
    def results(self) -> Any:
        """The last :class:`measure.SegmentalMotion`, or None when it cannot be computed."""
        return self._results

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

    # ----------------------------------------------------------------- films

    def set_films(
        self,
        films: dict[str, Any],
        paths: dict[str, str] | None = None,
        messages: Sequence[str] = (),
        errors: Sequence[str] = (),
    ) -> None:
        """Replace the films (a new study): clears landmarks and history.

        Parameters
        ----------
        films : dict of str to Film
            ``{"flexion": film, "extension": film}`` (one key in one-film mode).
        paths : dict of str to str, optional
            Path of each film's file (default ``film.path``).
        messages : sequence of str
            Warnings about the films, shown by the viewer.
        """
        new: dict[str, FilmState | None] = {"flexion": None, "extension": None}
        for role, film in films.items():
            path = (paths or {}).get(role) or str(getattr(film, "path", "") or "")
            new[_check_role(role)] = self._state_for(film, path)
        self._films = new
        self._undo.clear()
        self._redo.clear()
        self._open_merge = None
        self.path = None
        self._selected_segment = None
        self._load_messages = list(messages)
        self._load_errors = list(errors)
        self.discard_recovery()  # the previous work was saved or discarded before this
        self._recompute()
        self.events.films()
        for role in ROLES:
            self.events.landmarks(role=role)
            self.events.calibration(role=role)
        self.events.selected_segment(value=None)
        self.events.results(value=self._results)
        self.events.messages(value=list(self.messages))
        self.events.path(value=None)
        self._set_dirty(False)
        self.events.history()

    def open_paths(
        self, paths: Sequence[str | os.PathLike[str]], loader: Callable[[str], Any] | None = None
    ) -> list[str]:
        """Load DICOM files (or every file of a folder) and make them the session's films.

        Unreadable files are reported and skipped; the session is only replaced
        when at least one film could be read and the set makes sense.

        Parameters
        ----------
        paths : sequence of path
            Files, or one folder.
        loader : callable, optional
            ``path -> Film`` (default :func:`app.dicom_io.load_film`).

        Returns
        -------
        list of str
            The messages now shown (warnings and skipped files).

        Raises
        ------
        UserError
            Nothing usable was given; the session is unchanged.
        """
        if loader is None:
            from app.dicom_io import load_film as loader
        files: list[Path] = []
        for p in map(Path, paths):
            if p.is_dir():
                files.extend(sorted(q for q in p.iterdir() if q.is_file() and _looks_like_dicom(q)))
            else:
                files.append(p)
        if not files:
            raise UserError(f"{', '.join(map(str, paths)) or 'nothing'}: no DICOM file to open")
        films, names, loaded, errors = [], [], [], []
        for f in files:
            try:
                films.append(loader(str(f)))
                names.append(f.name)
                loaded.append(str(f))
            except InputFileError as exc:
                errors.append(str(exc))
            except OSError as exc:
                errors.append(f"{f}: cannot be read ({exc.strerror or exc})")
        if not films:
            raise UserError(errors[0] if len(errors) == 1 else "; ".join(errors))
        try:
            roles, warnings = assign_roles(films, names)
        except UserError as exc:
            raise UserError("; ".join([str(exc), *errors])) from None
        self.set_films(
            {role: films[i] for role, i in roles.items()},
            {role: loaded[i] for role, i in roles.items()},
            messages=warnings,
            errors=errors,
        )
        return list(self.messages)

    def _state_for(self, film: Any, path: str) -> FilmState:
        identity = getattr(film, "identity", None)
        lm, placement, sd = _empty_landmarks(len(self._levels))
        return FilmState(
            film=film,
            image=ImageRef(
                path=path,
                sop_instance_uid=str(getattr(identity, "sop_instance_uid", "") or ""),
                series_instance_uid=str(getattr(identity, "series_instance_uid", "") or ""),
                study_instance_uid=str(getattr(identity, "study_instance_uid", "") or ""),
                sha256=str(getattr(film, "sha256", "") or ""),
            ),
            landmarks=lm,
            placement=placement,
            dicom_calibration=getattr(film, "calibration", None) or Calibration.uncalibrated(),
            landmark_sd_mm=sd,
        )

    def _film_warnings(self) -> list[str]:
        out = []
        flex, ext = self._films["flexion"], self._films["extension"]
        if flex is not None and ext is not None and flex.film is not None and ext.film is not None:
            mismatch = identity_mismatch(flex.film, ext.film)
            if mismatch:
                out.append(mismatch)
        for role in ROLES:
            state = self._films[role]
            if state is not None and not state.calibration.is_calibrated:
                name = Path(state.image.path).name or role
                out.append(
                    f"{name} ({role}): no usable pixel spacing, translations in mm are not "
                    "available (% of endplate depth is); calibrate by hand with Tools > Calibrate."
                )
        return out

    @property
    def messages(self) -> list[str]:
        """What the viewer shows about the films: load problems, then the current
        warnings (patient/study mismatch, uncalibrated film)."""
        return [*self._load_errors, *self._load_messages, *self._film_warnings()]

    @property
    def errors(self) -> list[str]:
        """The files of the last open that could not be read (``PATH: reason``); also in :attr:`messages`."""
        return list(self._load_errors)

    @property
    def mismatch(self) -> str | None:
        """The patient/study mismatch warning, or None."""
        flex, ext = self._films["flexion"], self._films["extension"]
        if flex is None or ext is None or flex.film is None or ext.film is None:
            return None
        return identity_mismatch(flex.film, ext.film)

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

    def set_manual_calibration(
        self, role: str, calibration: ManualCalibration | None
    ) -> None:
        """Calibrate ``role`` by a drawn line (None: back to the DICOM calibration)."""
        self._require(role)

        def apply(films: dict[str, FilmState | None]) -> None:
            films[role].manual_calibration = calibration

        text = "Remove manual calibration" if calibration is None else "Calibrate"
        self._edit(f"{text} ({role})", apply, roles=(role,))

    def set_criteria(self, criteria: str | measure.Criteria | dict[str, Any]) -> None:
        """Choose the criteria: a preset name, a :class:`measure.Criteria`, or custom
        thresholds as a mapping (``measure.Criteria.from_dict``)."""
        try:
            new = measure.get_criteria(criteria)
        except ValueError as exc:
            raise UserError(f"criteria: {exc}") from None
        if new is not self._criteria:
            self._edit(f"Criteria: {new.name}", lambda films: None, criteria=new)

    def swap_films(self) -> None:
        """Exchange the flexion and extension films (with their landmarks)."""

        def apply(films: dict[str, FilmState | None]) -> None:
            films["flexion"], films["extension"] = films["extension"], films["flexion"]

        self._edit("Swap flexion and extension", apply, roles=ROLES, films_changed=True)

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

    # ----------------------------------------------------------------- results

    def _recompute(self) -> None:
        self._results = _compute_motion(self)

    def result_rows(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per segment (the ``results.segments`` of the session file)."""
        return _result_rows(self)

    # ----------------------------------------------------------------- files

    def to_json(self, relative_to: Path | None = None) -> dict[str, Any]:
        """The session file's content (see ``docs/session-format.md``)."""
        doc: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "software_version": __version__,
            "saved_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "levels": list(self._levels),
            "criteria": _criteria_to_json(self._criteria),
        }
        for role in ROLES:
            state = self._films[role]
            if state is not None:
                doc[role] = _film_to_json(state, self._levels, relative_to)
        doc["selected_segment"] = (
            None if self._selected_segment is None else self.segments[self._selected_segment]
        )
        doc["results"] = {"segments": self.result_rows()}
        return doc

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the session file atomically; it becomes :attr:`path` and the session is clean."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise UserError("no file name to save the session to")
        text = json.dumps(self.to_json(relative_to=target.parent.resolve()), indent=2, allow_nan=False)
        atomic_write_text(target, text + "\n")
        self.path = target
        self._set_dirty(False)
        self.events.path(value=target)
        self.discard_recovery()
        return target

    def autosave(self) -> None:
        """Write the recovery file (absolute image paths) if autosave is on."""
        if self.recovery_path is None or not self.roles:
            return
        doc = self.to_json()
        doc["recovery_of"] = None if self.path is None else str(Path(self.path).resolve())
        try:
            atomic_write_text(self.recovery_path, json.dumps(doc, allow_nan=False) + "\n")
        except OSError as exc:  # autosave must never break editing
            _log.warning("autosave to %s failed: %s", self.recovery_path, exc.strerror or exc)

    def discard_recovery(self) -> None:
        """Remove the recovery file (after a save or a clean close)."""
        if self.recovery_path is not None:
            try:
                self.recovery_path.unlink()
            except FileNotFoundError:
                pass

    def load(
        self,
        path: str | os.PathLike[str],
        loader: Callable[[str], Any] | None = None,
        *,
        recovered: bool = False,
    ) -> list[str]:
        """Open a session (or landmarks) file and the films it names.

        Films whose file is missing or whose content changed (SHA-256) are reported;
        the landmarks are kept either way so no work is lost.

        Returns
        -------
        list of str
            Messages shown by the viewer.

        Raises
        ------
        InputFileError
            The file is not a readable session or landmarks file.
        """
        if loader is None:
            from app.dicom_io import load_film as loader
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputFileError(path, f"cannot be read ({exc.strerror or exc})") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(path, f"not a JSON file ({exc})") from None
        if not isinstance(doc, dict):
            raise InputFileError(path, "not a session file (top level is not an object)")
        version = doc.get("format_version", FORMAT_VERSION) if doc.get("format") == FORMAT else FORMAT_VERSION
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise InputFileError(
                path,
                f"session format version {version!r} is newer than this software reads "
                f"({FORMAT_VERSION}): update lumbar-instability",
            )
        try:
            levels = tuple(str(v) for v in doc.get("levels") or measure.DEFAULT_LEVELS)
            criteria = _criteria_from_json(doc.get("criteria"))
            states: dict[str, FilmState | None] = {"flexion": None, "extension": None}
            messages: list[str] = []
            base = path.parent
            for role in ROLES:
                if isinstance(doc.get(role), dict):
                    states[role] = _film_from_json(doc[role], levels, base, loader, messages, role)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputFileError(path, f"malformed session file ({type(exc).__name__}: {exc})") from None
        if states["flexion"] is None and states["extension"] is None:
            raise InputFileError(path, "names neither a flexion nor an extension film")
        self._levels = levels
        self._criteria = criteria
        self._films = states
        self._undo.clear()
        self._redo.clear()
        self._open_merge = None
        self.path = None if recovered else path
        self._load_messages = list(messages)
        self._load_errors = []
        self.discard_recovery()  # read already; recover() writes it again
        self._recompute()
        selected = doc.get("selected_segment")
        self._selected_segment = self.segments.index(selected) if selected in self.segments else None
        self.events.levels(value=levels)
        self.events.criteria(value=criteria.name)
        self.events.films()
        for role in ROLES:
            self.events.landmarks(role=role)
            self.events.calibration(role=role)
        self.events.selected_segment(value=self._selected_segment)
        self.events.results(value=self._results)
        self.events.messages(value=list(self.messages))
        self.events.path(value=self.path)
        self._set_dirty(recovered)
        self.events.history()
        return list(self.messages)

    def recover(
        self, loader: Callable[[str], Any] | None = None, path: str | os.PathLike[str] | None = None
    ) -> list[str]:
        """Reopen a recovery file (default :attr:`recovery_path`); the session is then unsaved."""
        source = Path(path) if path is not None else self.recovery_path
        if source is None or not source.exists():
            raise UserError("there is no unsaved work to recover")
        try:
            doc = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputFileError(source, f"recovery file unreadable ({exc})") from None
        messages = self.load(source, loader, recovered=True)
        original = doc.get("recovery_of") if isinstance(doc, dict) else None
        if original:
            self.path = Path(original)
            self.events.path(value=self.path)
        self.autosave()
        return messages

    def set_aside_recovery(self) -> Path | None:
        """Move an existing recovery file aside (so new edits do not overwrite it); returns its new path."""
        if self.recovery_path is None or not self.recovery_path.exists():
            return None
        aside = self.recovery_path.with_name(self.recovery_path.stem + ".previous.json")
        os.replace(self.recovery_path, aside)
        return aside


# --------------------------------------------------------------------------- JSON helpers


def _criteria_to_json(criteria: measure.Criteria) -> str | dict[str, Any]:
    if measure.CRITERIA_PRESETS.get(criteria.name) is criteria:
        return criteria.name
    return criteria.to_dict()


def _criteria_from_json(value: Any) -> measure.Criteria:
    if value is None:
        return measure.get_criteria("default")
    if isinstance(value, str):
        return measure.get_criteria(value)
    return measure.Criteria.from_dict(value, name=str(value.get("name") or "custom"))


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role: must be 'flexion' or 'extension', got {role!r}")
    return role


def _looks_like_dicom(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    if path.suffix.lower() in (".dcm", ".dicom", ".ima", ""):
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _same_landmarks(a: FilmState, b: FilmState) -> bool:
    return bool(
        np.array_equal(a.landmarks, b.landmarks, equal_nan=True)
        and np.array_equal(a.placement, b.placement)
    )


def _film_to_json(state: FilmState, levels: Sequence[str], relative_to: Path | None) -> dict[str, Any]:
    cal = state.calibration
    path = state.image.path
    if relative_to is not None and path:
        try:
            path = os.path.relpath(Path(path).resolve(), relative_to)
        except ValueError:  # another drive on Windows
            path = str(Path(path).resolve())
    elif path:
        path = str(Path(path).resolve())
    landmarks: dict[str, dict[str, list[float]]] = {}
    placement: dict[str, dict[str, str]] = {}
    sds: dict[str, dict[str, float]] = {}
    for v, label in enumerate(levels):
        for c, name in enumerate(measure.CORNERS):
            xy = state.landmarks[v, c]
            if not np.isfinite(xy).all():
                continue
            landmarks.setdefault(label, {})[name] = [float(xy[0]), float(xy[1])]
            method = state.placement[v, c] or "manual"
            placement.setdefault(label, {})[name] = str(method)
            sds.setdefault(label, {})[name] = float(_corner_sd_mm(state, v, c))
    return {
        "pixel_spacing_mm": None if cal.spacing_mm is None else list(cal.spacing_mm),
        "calibration_source": str(cal.source),
        "calibration_detail": cal.detail,
        "dicom_calibration": {
            "pixel_spacing_mm": None
            if state.dicom_calibration.spacing_mm is None
            else list(state.dicom_calibration.spacing_mm),
            "calibration_source": str(state.dicom_calibration.source),
            "calibration_detail": state.dicom_calibration.detail,
        },
        "manual_calibration": None
        if state.manual_calibration is None
        else state.manual_calibration.to_json(),
        "image": {
            "path": path,
            "sop_instance_uid": state.image.sop_instance_uid,
            "series_instance_uid": state.image.series_instance_uid,
            "study_instance_uid": state.image.study_instance_uid,
            "sha256": state.image.sha256,
        },
        "landmarks": landmarks,
        "placement": placement,
        "landmark_sd_mm": sds,
    }


def _corner_sd_mm(state: FilmState, level: int, corner: int) -> float:
    sd = state.landmark_sd_mm[level, corner]
    if np.isfinite(sd):
        return float(sd)
    method = measure.PlacementMethod(state.placement[level, corner] or "manual")
    return float(method.default_sd_mm)


def _film_from_json(
    data: dict[str, Any],
    levels: Sequence[str],
    base: Path,
    loader: Callable[[str], Any],
    messages: list[str],
    role: str,
) -> FilmState:
    image = data.get("image") or {}
    raw_path = str(image.get("path") or "")
    path = Path(raw_path)
    if raw_path and not path.is_absolute():
        path = (base / path).resolve()
    ref = ImageRef(
        path=str(path) if raw_path else "",
        sop_instance_uid=str(image.get("sop_instance_uid") or ""),
        series_instance_uid=str(image.get("series_instance_uid") or ""),
        study_instance_uid=str(image.get("study_instance_uid") or ""),
        sha256=str(image.get("sha256") or ""),
    )
    film = None
    if raw_path:
        if not path.exists():
            messages.append(f"{path}: the {role} film is missing; its landmarks are kept but not shown.")
        else:
            from app.dicom_io import file_sha256

            if ref.sha256 and file_sha256(path) != ref.sha256:
                messages.append(
                    f"{path}: the {role} film's content changed since the session was saved "
                    "(SHA-256 differs): check the landmarks."
                )
            try:
                film = loader(str(path))
            except InputFileError as exc:
                messages.append(str(exc))
    if film is not None:
        sop = str(getattr(getattr(film, "identity", None), "sop_instance_uid", "") or "")
        if ref.sop_instance_uid and sop and sop != ref.sop_instance_uid:
            messages.append(f"{path}: SOP Instance UID differs from the one saved with the {role} landmarks.")
    dicom = data.get("dicom_calibration") or data
    spacing = dicom.get("pixel_spacing_mm")
    source = str(dicom.get("calibration_source") or "uncalibrated")
    if source == "manual" or film is not None:
        # the DICOM calibration is re-read from the film when it is there
        dicom_cal = getattr(film, "calibration", None) if film is not None else None
        if dicom_cal is None:
            dicom_cal = Calibration.uncalibrated("film missing")
    elif spacing is None or source == "uncalibrated":
        dicom_cal = Calibration.uncalibrated(str(dicom.get("calibration_detail") or ""))
    else:
        dicom_cal = Calibration(
            float(spacing[0]), float(spacing[1]), source, str(dicom.get("calibration_detail") or "")
        )
    manual = data.get("manual_calibration")
    lm, placement, sd = _empty_landmarks(len(levels))
    marks = data.get("landmarks") or {}
    methods = data.get("placement") or {}
    sds = data.get("landmark_sd_mm") or {}
    for v, label in enumerate(levels):
        for c, name in enumerate(measure.CORNERS):
            xy = (marks.get(label) or {}).get(name)
            if xy is None:
                continue
            lm[v, c] = (float(xy[0]), float(xy[1]))
            placement[v, c] = str(measure.PlacementMethod((methods.get(label) or {}).get(name, "manual")))
            value = (sds.get(label) or {}).get(name)
            if value is not None:
                sd[v, c] = float(value)
    return FilmState(
        film=film,
        image=ref,
        landmarks=lm,
        placement=placement,
        dicom_calibration=dicom_cal,
        manual_calibration=None if manual is None else ManualCalibration.from_json(manual),
        landmark_sd_mm=sd,
    )


# --------------------------------------------------------------------------- motion adapter


def _usable(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks with every body lacking a corner the motion needs set to NaN.

    A segment needs its upper body's ``PI, AI`` and its lower body's ``AS, PS``;
    a body being placed (guided mode) is left out until it has them.
    """
    finite = np.isfinite(landmarks).all(axis=-1)  # (V, 4)
    required = np.ones(finite.shape, dtype=bool)
    required[0, :2] = False
    required[-1, 2:] = False
    complete = (finite | ~required).all(axis=-1)
    out = landmarks.copy()
    out[~complete] = np.nan
    return out


def _sd_mm(state: FilmState) -> np.ndarray:
    """Per-corner SD in mm: the saved value, else the default of its placement method."""
    sd = state.landmark_sd_mm.copy()
    methods = state.placement
    default = np.vectorize(
        lambda m: measure.PlacementMethod(m or "manual").default_sd_mm, otypes=[float]
    )(methods)
    return np.where(np.isfinite(sd), sd, default)


def _compute_motion(session: Session) -> Any:
    """``measure.segmental_motion`` on the session's films, or None (with the reason kept)."""
    roles = session.roles
    session._motion_error = None
    if not roles or len(session.levels) < 2:
        return None
    states = {r: session.film(r) for r in roles}
    lm = {r: _usable(s.landmarks) for r, s in states.items()}
    spacing = {r: s.calibration.spacing_mm for r, s in states.items()}
    sds = {r: _sd_mm(s) for r, s in states.items()}
    flex_role = "flexion" if "flexion" in roles else roles[0]
    ext_role = "extension" if "extension" in roles else roles[0]
    try:
        return measure.segmental_motion(
            lm[flex_role],
            lm[ext_role],
            flexion_spacing_mm=spacing[flex_role],
            extension_spacing_mm=spacing[ext_role],
            criteria=session.criteria_spec,
            levels=session.levels,
            flexion_landmark_sd_mm=sds[flex_role],
            extension_landmark_sd_mm=sds[ext_role],
        )
    except ValueError as exc:
        session._motion_error = str(exc)
        return None


_ONE_FILM_KEYS = ("angle_deg", "translation_mm", "translation_pct")


def _result_rows(session: Session) -> list[dict[str, Any]]:
    motion = session.results
    if motion is None:
        return [{"segment": s, "measured": False} for s in session.segments]
    rows = motion.to_records()
    roles = session.roles
    cal = {r: session.film(r).calibration for r in roles}
    if len(roles) == 1:  # one-film mode: only that film's own values
        role = roles[0]
        out = []
        for row in rows:
            one = {"segment": row["segment"], "upper": row["upper"], "lower": row["lower"]}
            one["measured"] = row["flexion_angle_deg"] is not None
            for key in _ONE_FILM_KEYS:
                one[f"{role}_{key}"] = row[f"flexion_{key}"]
            one["calibration_source"] = str(cal[role].source)
            out.append(one)
        return out
    sources = {str(cal[r].source) for r in roles}
    source = sources.pop() if len(sources) == 1 else ", ".join(f"{r} {cal[r].source}" for r in roles)
    uncalibrated = [r for r in roles if not cal[r].is_calibrated]
    for row in rows:
        row["finding"] = finding_of(row)
        row["calibration_source"] = source
        row["translation_mm_note"] = (
            None
            if not uncalibrated
            else f"no mm: the {' and '.join(uncalibrated)} film has no usable pixel spacing"
        )
    return rows
