"""Safety checks of the session's film pair (``app.safety``) and the reader's
acknowledgement of them, which export requires."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.safety import (
    SafetyCheck,
    SafetyWarning,
    check_films,
    check_motion,
    check_spacing,
    unacknowledged,
)
from app.session._films import identity_mismatch
from app.session._model import FilmState

_FILM_CHECKS = frozenset({
    SafetyCheck.SAME_INSTANCE, SafetyCheck.SAME_PIXELS, SafetyCheck.NEAR_IDENTICAL,
    SafetyCheck.DIFFERENT_PATIENT, SafetyCheck.SAME_VIEW, SafetyCheck.INCOMPLETE_DECODE,
})


class _RefFilm:
    """A film that could not be loaded, seen through its saved image reference."""

    def __init__(self, state: FilmState) -> None:
        self.identity = state.image
        self.view = "unknown"


class SafetyMixin:
    """Safety warnings of a :class:`~app.session.Session` and their acknowledgement."""

    _films: dict[str, FilmState | None]
    _results: Any
    _safety: list[SafetyWarning]
    _safety_ack: set[str]
    _safety_key: tuple[int, int] | None
    _film_checks: list[SafetyWarning]
    _spacing_reasons: dict[str, str | None]

    def _init_safety(self) -> None:
        self._safety = []
        self._safety_ack = set()
        self._safety_key = None
        self._film_checks = []
        self._spacing_reasons = {}

    @property
    def safety_warnings(self) -> list[SafetyWarning]:
        """Every safety warning of the current films and landmarks (``app.safety``)."""
        return list(self._safety)

    @property
    def unacknowledged_safety(self) -> list[SafetyWarning]:
        """The safety warnings the reader has not acknowledged: export waits for them."""
        return unacknowledged(self._safety, self._safety_ack)

    @property
    def borderline_hint(self) -> str | None:
        """What would resolve borderline results when most levels are (``app.safety.borderline_hint``)."""
        from app.safety import borderline_hint

        if len(self.roles) < 2:
            return None
        films = [self.film(role) for role in self.roles]
        methods = [str(m) for f in films for m in f.placement.ravel()]
        sds = [float(x) for f in films for x in np.broadcast_to(f.landmark_sd_mm, f.placement.shape).ravel()]
        return borderline_hint(self.result_rows(), methods, sds)

    @property
    def acknowledged_safety(self) -> list[str]:
        """Check values (``SafetyCheck``) the reader acknowledged for these films."""
        return sorted(self._safety_ack & {w.check.value for w in self._safety})

    def acknowledge_safety(self, checks: list[str] | None = None) -> None:
        """The reader has seen the warnings (all, or the given check values) and proceeds.

        Saved in the session file; reset when other films are opened.
        """
        current = {w.check.value for w in self._safety}
        wanted = current if checks is None else {str(SafetyCheck(c).value) for c in checks} & current
        if wanted - self._safety_ack:
            self._safety_ack |= wanted
            self._set_dirty(True)
            self.events.messages(value=list(self.messages))

    def _recompute_safety(self) -> bool:
        """Refresh the warnings; True when they changed."""
        flex, ext = self._films["flexion"], self._films["extension"]
        key = None if flex is None or ext is None else (id(flex.film), id(ext.film))
        if key != self._safety_key:  # other films: film checks anew, nothing acknowledged
            self._safety_key = key
            self._safety_ack = set()
            self._film_checks = []
            if flex is not None and ext is not None:
                a = flex.film if flex.film is not None else _RefFilm(flex)
                b = ext.film if ext.film is not None else _RefFilm(ext)
                done = getattr(self, "_precomputed_film_checks", None)
                self._precomputed_film_checks = None
                if done is not None and done[:2] == key:  # made with the loading, off the UI thread
                    self._film_checks = list(done[2])
                else:
                    mismatch = identity_mismatch(flex.film, ext.film) if flex.film and ext.film else None
                    self._film_checks = check_films(a, b, mismatch=mismatch)
                same_file = flex.image.sha256 and flex.image.sha256 == ext.image.sha256
                if same_file and not self._film_checks:
                    self._film_checks.insert(0, SafetyWarning(
                        SafetyCheck.SAME_PIXELS,
                        "Both films are the same file (SHA-256): no motion can be measured.",
                    ))
        new = list(self._film_checks)
        same = {SafetyCheck.SAME_INSTANCE, SafetyCheck.SAME_PIXELS, SafetyCheck.NEAR_IDENTICAL}
        motion = self._results
        if motion is not None and key is not None and not any(w.check in same for w in new):
            new += check_motion(motion.angulation_deg, motion.translation_pct)
        new += check_spacing(self._spacing_reasons)
        changed = new != self._safety
        self._safety = new
        return changed

    def _safety_to_json(self) -> dict[str, Any]:
        return {
            "warnings": [w.to_json() for w in self._safety],
            "acknowledged": self.acknowledged_safety,
        }

    def _safety_from_json(self, value: Any) -> None:
        """Restore the acknowledgement saved with the same films, and the saved film
        checks that cannot be redone because a film could not be opened."""
        if not isinstance(value, dict):
            return
        if any(s is not None and s.film is None for s in self._films.values()):
            have = {w.check for w in self._film_checks}
            for item in value.get("warnings") or []:
                try:
                    warning = SafetyWarning.from_json(item)
                except ValueError:
                    continue
                if warning.check in _FILM_CHECKS and warning.check not in have:
                    self._film_checks.append(warning)
            self._recompute_safety()
        acknowledged = value.get("acknowledged") or []
        if isinstance(acknowledged, list):
            current = {w.check.value for w in self._safety}
            self._safety_ack = {str(a) for a in acknowledged if isinstance(a, str)} & current
