"""Films and calibration: opening DICOM files, deciding flexion/extension,
the warnings about the films, manual calibration and swapping."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import InputFileError, UserError
from app.session._model import (
    ROLES,
    FilmState,
    ImageRef,
    ManualCalibration,
    _check_role,
    _empty_landmarks,
)
from measure import Calibration


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


@dataclass
class LoadedStudy:
    """Films read by :func:`load_study`, ready for :meth:`FilmsMixin.set_study`.

    Attributes
    ----------
    films : dict of str to Film
        By role (``"flexion"``, ``"extension"``; one key in one-film mode).
    paths : dict of str to str
        The file of each film.
    warnings, errors : list of str
        About the films (roles, ignored files); the files that could not be read (``PATH: reason``).
    film_checks : list of SafetyWarning or None
        The film pair's safety checks (:func:`app.safety.check_films`: pixel
        digests and thumbnails, 60+ ms) done with the loading, off the UI thread.
    display : dict of str to ndarray
        By role, the film's default 8-bit display picture (``film.display_image()``), when asked.
    """

    films: dict[str, Any]
    paths: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    film_checks: list[Any] | None = None
    display: dict[str, Any] = field(default_factory=dict)


def load_study(
    paths: Sequence[str | os.PathLike[str]],
    loader: Callable[[str], Any] | None = None,
    *,
    display: bool = False,
    checkpoint: Callable[[float], None] | None = None,
) -> LoadedStudy:
    """Read films (files, or every DICOM file of one folder) and decide their roles.

    No session is touched: the viewer runs this in its worker process.

    Parameters
    ----------
    paths : sequence of path
        Files, or one folder.
    loader : callable, optional
        ``path -> Film`` (default :func:`app.dicom_io.load_film`).
    display : bool
        Also make each film's default display picture (``LoadedStudy.display``).
    checkpoint : callable, optional
        ``checkpoint(fraction)`` before each file (:data:`measure.Checkpoint`; raises to cancel).

    Raises
    ------
    UserError
        No file could be read (the message names each file and its problem), or
        the set of films makes no sense.
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
    for k, f in enumerate(files):
        if checkpoint is not None:
            checkpoint(0.9 * k / len(files))
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
    study = LoadedStudy(
        {role: films[i] for role, i in roles.items()},
        {role: loaded[i] for role, i in roles.items()},
        warnings,
        errors,
    )
    if checkpoint is not None:
        checkpoint(0.9)
    if len(study.films) == 2:
        from app.safety import check_films

        flex, ext = study.films["flexion"], study.films["extension"]
        checks = check_films(flex, ext, mismatch=identity_mismatch(flex, ext))
        study.film_checks = checks
    for film in study.films.values():  # hashed here (off the UI thread), carried with the film
        try:
            getattr(film, "sha256", None)
        except InputFileError as exc:  # the file changed since it was decoded
            raise UserError(str(exc)) from None
    if display:
        study.display = {
            role: film.display_image() for role, film in study.films.items() if hasattr(film, "display_image")
        }
    return study


class FilmsMixin:
    """The films of a :class:`~app.session.Session` and their calibration."""

    _films: dict[str, FilmState | None]
    _levels: tuple[str, ...]
    _load_messages: list[str]
    _load_errors: list[str]

    def film(self, role: str) -> FilmState | None:
        """The film shown as ``role`` (``"flexion"`` or ``"extension"``), or None."""
        return self._films[_check_role(role)]

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles that have a film."""
        return tuple(r for r in ROLES if self._films[r] is not None)

    def calibration(self, role: str) -> Calibration:
        """The calibration in force for ``role``."""
        state = self.film(role)
        return Calibration.uncalibrated("no film") if state is None else state.calibration

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
        self._label_review = None
        self._load_messages = list(messages)
        self._load_errors = list(errors)
        self.discard_recovery()  # the previous work was saved or discarded before this
        self._recompute()
        self.events.films()
        for role in ROLES:
            self.events.landmarks(role=role)
            self.events.calibration(role=role)
        self.events.selected_segment(value=None)
        self.events.label_review(value=None)
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
        when at least one film could be read and the set makes sense.  The same
        as ``set_study(load_study(paths, loader))`` (the viewer runs
        :func:`load_study` in its worker process).

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
        return self.set_study(load_study(paths, loader))

    def set_study(self, study: LoadedStudy) -> list[str]:
        """Make the films of :func:`load_study` the session's films; returns the messages shown."""
        if study.film_checks is not None and len(study.films) == 2:
            pair = (id(study.films["flexion"]), id(study.films["extension"]))
            self._precomputed_film_checks = (*pair, study.film_checks)
        self.set_films(study.films, study.paths, messages=study.warnings, errors=study.errors)
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

    def set_manual_calibration(
        self, role: str, calibration: ManualCalibration | None
    ) -> None:
        """Calibrate ``role`` by a drawn line (None: back to the DICOM calibration)."""
        self._require(role)

        def apply(films: dict[str, FilmState | None]) -> None:
            films[role].manual_calibration = calibration

        text = "Remove manual calibration" if calibration is None else "Calibrate"
        self._edit(f"{text} ({role})", apply, roles=(role,))

    def swap_films(self) -> None:
        """Exchange the flexion and extension films (with their landmarks)."""

        def apply(films: dict[str, FilmState | None]) -> None:
            films["flexion"], films["extension"] = films["extension"], films["flexion"]

        self._edit("Swap flexion and extension", apply, roles=ROLES, films_changed=True)

