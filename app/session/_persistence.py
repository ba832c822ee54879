"""Persistence: the session file (save, load), the recovery file written after
every edit (autosave, recover, set aside) and their JSON conversion.

The file format is documented in ``docs/session-format.md``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import measure
from app import __version__
from app.annotations import annotations_from_json, annotations_to_json
from app.atomic import atomic_write_text
from app.errors import InputFileError, UserError
from app.safety import image_shape_of
from app.session._model import (
    FORMAT,
    FORMAT_VERSION,
    ROLES,
    FilmState,
    ImageRef,
    ManualCalibration,
    _empty_landmarks,
)
from measure import Calibration

_log = logging.getLogger("app.session")


def default_recovery_path() -> Path:
    """Where the recovery file is written (``LUMBAR_INSTABILITY_STATE_DIR`` or XDG state dir)."""
    base = os.environ.get("LUMBAR_INSTABILITY_STATE_DIR")
    if not base:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        base = str(Path(xdg) / "lumbar-instability")
    return Path(base) / "recovery.autosave.json"


class PersistenceMixin:
    """Saving, loading and recovering a :class:`~app.session.Session`."""

    _films: dict[str, FilmState | None]
    _levels: tuple[str, ...]
    _criteria: measure.Criteria
    _selected_segment: int | None
    _label_review: str | None
    path: Path | None
    recovery_path: Path | None

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
        drawn = {r: self._films[r].annotations for r in ROLES if self._films[r] is not None}
        if any(drawn.values()):  # absent when none: files stay as older versions wrote them
            doc["annotations"] = annotations_to_json(drawn)
        reader = getattr(self, "_reader", None)
        if reader is not None:
            doc["reader"] = dict(reader)
        if self._label_review is not None:
            doc["labels_need_review"] = self._label_review
        doc["results"] = {"segments": self.result_rows()}
        doc["safety"] = self._safety_to_json()
        return doc

    @property
    def reader(self) -> dict[str, str]:
        """The reader's ``name`` and ``comment`` (saved in the session, printed in the PDF,
        carried into the SR as the person observer and a comment); empty strings when unset."""
        return dict(getattr(self, "_reader", None) or {"name": "", "comment": ""})

    def set_reader(self, name: str | None = None, comment: str | None = None) -> None:
        """Set the reader's name and/or comment (not an undo step: it is not a measurement)."""
        reader = self.reader
        if name is not None:
            reader["name"] = str(name)
        if comment is not None:
            reader["comment"] = str(comment)
        if reader != self.reader:
            self._reader = reader
            self._set_dirty(True)

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
        image_dirs: Sequence[str | os.PathLike[str]] = (),
    ) -> list[str]:
        """Open a session (or landmarks) file and the films it names.

        Films whose file is missing or whose content changed (SHA-256) are reported;
        the landmarks are kept either way so no work is lost.  A film path that
        points outside the session's folder and ``image_dirs`` is not opened
        (``../../etc/passwd``, another patient's film): the message says so and
        the reader opens the film explicitly.  A recovery file (written by this
        software for an unsaved session) may name films anywhere.

        The document is checked first (:func:`app.session_format.check_session_document`):
        a duplicate key, a level spelt two ways, a number out of range or a
        value of the wrong type is an error naming the file and the key.

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
        from app.jsonfile import read_json
        from app.session_format import check_session_document

        path = Path(path)
        doc = read_json(path)
        levels = check_session_document(doc, path)
        allowed = None if recovered else [path.parent, *map(Path, image_dirs)]
        try:
            criteria = _criteria_from_json(doc.get("criteria"))
            states: dict[str, FilmState | None] = {"flexion": None, "extension": None}
            messages: list[str] = []
            base = path.parent
            for role in ROLES:
                if isinstance(doc.get(role), dict):
                    states[role] = _film_from_json(doc[role], levels, base, loader, messages, role,
                                                   allowed)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputFileError(path, f"malformed session file ({type(exc).__name__}: {exc})") from None
        if states["flexion"] is None and states["extension"] is None:
            raise InputFileError(path, "names neither a flexion nor an extension film")
        try:
            drawn = annotations_from_json(doc.get("annotations"), [r for r in ROLES if states[r] is not None])
        except ValueError as exc:
            raise InputFileError(path, str(exc)) from None
        for role, items in drawn.items():
            states[role].annotations = tuple(items)
        self._levels = levels
        self._criteria = criteria
        self._films = states
        self._undo.clear()
        self._redo.clear()
        self._open_merge = None
        self.path = None if recovered else path
        review = doc.get("labels_need_review")
        self._label_review = str(review) if review else None
        self._load_messages = list(messages)
        self._load_errors = []
        self.discard_recovery()  # read already; recover() writes it again
        self._recompute()
        self._safety_from_json(doc.get("safety"))
        selected = doc.get("selected_segment")
        self._selected_segment = self.segments.index(selected) if selected in self.segments else None
        reader = doc.get("reader")
        self._reader = None if not isinstance(reader, dict) else {
            "name": str(reader.get("name") or ""), "comment": str(reader.get("comment") or "")}
        self.events.levels(value=levels)
        self.events.criteria(value=criteria.name)
        self.events.films()
        for role in ROLES:
            self.events.landmarks(role=role)
            self.events.calibration(role=role)
        self.events.selected_segment(value=self._selected_segment)
        self.events.label_review(value=self._label_review)
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
        **({"image_size": list(state.image_shape)} if state.image_shape is not None else {}),
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
    allowed: Sequence[Path] | None = None,
) -> FilmState:
    image = data.get("image") or {}
    raw_path = str(image.get("path") or "")
    path = Path(raw_path)
    if raw_path and not path.is_absolute():
        path = (base / path).resolve()
    outside = ""
    if raw_path and allowed is not None:
        from app.session_format import resolve_image_path

        _, outside = resolve_image_path(
            raw_path, allowed[0], allowed[1:],
            sop_instance_uid=str(image.get("sop_instance_uid") or ""),
        )
        if outside:
            messages.append(f"the {role} film's {outside}; its landmarks are kept.")
    ref = ImageRef(
        path=str(path) if raw_path else "",
        sop_instance_uid=str(image.get("sop_instance_uid") or ""),
        series_instance_uid=str(image.get("series_instance_uid") or ""),
        study_instance_uid=str(image.get("study_instance_uid") or ""),
        sha256=str(image.get("sha256") or ""),
    )
    film = None
    if raw_path and not outside:
        if not path.is_file():
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
        image_size=image_shape_of(data),
    )
