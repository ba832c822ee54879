"""Results: the criteria in force and the segmental motion recomputed from the
landmarks after every edit, as rows for the table, the reports and the file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

import measure
from app.errors import UserError
from app.report_data import finding_of
from app.safety import implausible_spacing
from app.session._model import FilmState

if TYPE_CHECKING:
    from app.session import Session


class ResultsMixin:
    """The criteria and results of a :class:`~app.session.Session`."""

    _criteria: measure.Criteria
    _results: Any

    @property
    def criteria(self) -> str:
        """Name of the criteria in force (a preset name, or the custom criteria's name)."""
        return self._criteria.name

    @property
    def criteria_spec(self) -> measure.Criteria:
        """The :class:`measure.Criteria` in force (thresholds per segment)."""
        return self._criteria

    @property
    def results(self) -> Any:
        """The last :class:`measure.SegmentalMotion`, or None when it cannot be computed."""
        return self._results

    def set_criteria(self, criteria: str | measure.Criteria | dict[str, Any]) -> None:
        """Choose the criteria: a preset name, a :class:`measure.Criteria`, or custom
        thresholds as a mapping (``measure.Criteria.from_dict``)."""
        try:
            new = measure.get_criteria(criteria)
        except ValueError as exc:
            raise UserError(f"criteria: {exc}") from None
        if new is not self._criteria:
            self._edit(f"Criteria: {new.name}", lambda films: None, criteria=new)

    # ----------------------------------------------------------------- results

    def _recompute(self) -> None:
        self._results = _compute_motion(self)
        if self._recompute_safety() and hasattr(self, "events"):
            self.events.messages(value=list(self.messages))

    def segment_details(self, segment: int) -> dict[str, Any]:
        """What the numbers of one segment mean on the films (QMA-style extras).

        Returns
        -------
        dict
            ``rotation_centre``: fractions of the lower body's endplate depth
            (see ``measure.SegmentalMotion``) or None, with
            ``rotation_centre_note`` saying why; ``rotation_centre_px``: that
            point on the flexion film, pixels, or None;
            ``translation_per_degree_mm``: translation (mm) per degree of
            angulation, None without millimetres or below the angulation for a
            centre of rotation; ``disc_heights``: per film ``{"anterior",
            "posterior", "unit"}`` (mm, or px when uncalibrated).
        """
        from app.stabilise import rotation_centre_px

        out: dict[str, Any] = {
            "rotation_centre": None,
            "rotation_centre_note": "no motion computed",
            "rotation_centre_px": None,
            "translation_per_degree_mm": None,
            "disc_heights": {},
        }
        for role in self.roles:
            state = self.film(role)
            spacing = state.calibration.spacing_mm
            heights = measure.disc_heights(state.landmarks, spacing)[segment]
            out["disc_heights"][role] = {
                "anterior": None if not np.isfinite(heights[0]) else float(heights[0]),
                "posterior": None if not np.isfinite(heights[1]) else float(heights[1]),
                "unit": "mm" if spacing is not None else "px",
            }
        motion = self._results
        if motion is None or len(self.roles) != 2:
            return out
        centre = np.asarray(motion.rotation_centre[segment], float)
        note = str(motion.rotation_centre_note[segment])
        if np.isfinite(centre).all():
            flex = self.film("flexion")
            out["rotation_centre"] = (float(centre[0]), float(centre[1]))
            xy = rotation_centre_px(
                flex.landmarks[segment + 1], flex.landmarks[segment], centre, flex.calibration.spacing_mm
            )
            out["rotation_centre_px"] = (float(xy[0]), float(xy[1]))
            out["rotation_centre_note"] = ""
            row = self.result_rows()[segment]
            mm, deg = row.get("translation_mm"), row.get("angulation_deg")
            if mm is not None and deg:
                out["translation_per_degree_mm"] = float(mm) / float(deg)
        else:
            out["rotation_centre_note"] = note or "centre of rotation undefined"
        return out

    def result_rows(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per segment (the ``results.segments`` of the session file).

        Computed once per state of the results (the rows of a motion take ~15 ms,
        and one edit asks for them from the table, the hints and the banners);
        each call returns a copy the caller may change.
        """
        motion, key = self.results, _rows_key(self)
        cached = getattr(self, "_rows_cache", None)
        if cached is None or cached[0] is not motion or cached[1] != key:
            cached = (motion, key, _result_rows(self))
            self._rows_cache = cached
        return _copy_rows(cached[2])


# --------------------------------------------------------------------------- motion adapter


def _uncertainty(state: FilmState) -> measure.LandmarkUncertainty:
    """The measured error model of a film's corners (``measure.placement_uncertainty``):
    saved SDs, else the placement method's default."""
    return measure.placement_uncertainty(state.placement, state.landmark_sd_mm)


def _compute_motion(session: Session) -> Any:
    """``measure.segmental_motion`` on the session's films, or None (with the reason kept)."""
    roles = session.roles
    session._motion_error = None
    session._spacing_reasons = {}
    if not roles or len(session.levels) < 2:
        return None
    states = {r: session.film(r) for r in roles}
    lm = {r: measure.usable_corners(s.landmarks) for r, s in states.items()}
    spacing = {r: s.calibration.spacing_mm for r, s in states.items()}
    # issue 14 §1: a spacing that makes the bodies implausibly large or small is not the
    # patient's; that film's millimetres are not used (the safety warning says why)
    shapes = {r: s.image_shape for r, s in states.items()}
    session._spacing_reasons = {r: implausible_spacing(lm[r], spacing[r], shapes[r]) for r in roles}
    spacing = {r: None if session._spacing_reasons[r] else sp for r, sp in spacing.items()}
    sds = {r: _uncertainty(s) for r, s in states.items()}
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
            **sds[flex_role].motion_kwargs("flexion"),
            **sds[ext_role].motion_kwargs("extension"),
        )
    except ValueError as exc:
        session._motion_error = str(exc)
        return None


_ONE_FILM_KEYS = ("angle_deg", "translation_mm", "translation_pct")


def _copy_rows(value: Any) -> Any:
    """A copy of JSON-like rows (dicts and lists copied, other values immutable): 20x faster
    than ``copy.deepcopy``, which took 6 ms per call for five rows."""
    if isinstance(value, dict):
        return {k: _copy_rows(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_rows(v) for v in value]
    return value


def _rows_key(session: Session) -> tuple:
    """Besides the motion object (new at every recompute), everything :func:`_result_rows`
    reads: the roles, each film's calibration, the spacing reasons and the label review."""
    roles = session.roles
    return (
        roles,
        tuple(session.film(r).calibration for r in roles),
        tuple(sorted((session._spacing_reasons or {}).items())),
        session.label_review,
        tuple(session.segments),
    )


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
    implausible = [r for r in roles if cal[r].is_calibrated and session._spacing_reasons.get(r)]
    note = None
    if uncalibrated:
        note = f"no mm: the {' and '.join(uncalibrated)} film has no usable pixel spacing"
    elif implausible:
        note = (f"no mm: the {' and '.join(implausible)} film's pixel spacing gives implausible "
                "endplate depths or field of view (see the safety warning)")
    review = session.label_review
    for row in rows:
        row["finding"] = finding_of(row)
        row["calibration_source"] = source
        row["translation_mm_note"] = note
        if review is not None:  # the verdict does not count until the reader confirms the labels
            row["needs_review"] = True
            row["needs_review_reason"] = review
    return rows

