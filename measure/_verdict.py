"""One verdict rule for every output: a segment's value and 95 % interval against its thresholds.

The viewer, the ``measure`` table and JSON, the CSV/JSON tables, the PDF, the SR
and review mode all call :func:`segment_verdict` (arrays) or
:func:`verdict_of_record` (one JSON result row), so that a segment reads the
same everywhere.  Categories and their meaning: ``docs/measurement-methods.md``
("Verdict").
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "VERDICT_KINDS",
    "Verdict",
    "quantity_verdicts",
    "quantity_verdicts_of_record",
    "segment_verdict",
    "verdict_of_record",
]

VERDICT_KINDS = ("translation_mm", "translation_pct", "angulation_deg")
"""The quantities a criterion can threshold (keys of :attr:`measure.Criteria.thresholds`)."""


class Verdict(enum.IntEnum):
    """Verdict of one segment (or one quantity of it) against the criteria.

    Ordered by severity, so the verdict of a segment is the maximum over its
    quantities and the worst segment of a study is the maximum over segments.
    ``int`` codes are what :func:`segment_verdict` returns in arrays;
    :attr:`key` is written to JSON, CSV and session files; :attr:`label` is the
    text every output shows.
    """

    NOT_MEASURED = 0
    """The segment has no motion value: one of its two bodies lacks landmarks on
    a film."""

    NOT_ASSESSED = 1
    """Measured, but no criterion could be applied (no threshold for this
    segment, or only a millimetre threshold and no calibration)."""

    WITHIN = 2
    """Every applied criterion's 95 % interval lies within its threshold
    (``|low|, |high| <= threshold``): confidently not unstable."""

    BORDERLINE_BELOW = 3
    """No value exceeds its threshold, but some 95 % interval reaches beyond it:
    below the thresholds, yet instability is not excluded."""

    BORDERLINE_ABOVE = 4
    """Some value exceeds its threshold, but its 95 % interval straddles the
    threshold (and no other criterion is exceeded beyond its interval):
    probably unstable, not certain."""

    UNSTABLE = 5
    """Some criterion's whole 95 % interval lies beyond its threshold
    (``low > threshold`` or ``high < -threshold``): unstable beyond the
    landmark uncertainty.  Without landmark uncertainty the interval is the
    value itself."""

    @property
    def key(self) -> str:
        """Stable string code for files: ``unstable``, ``borderline-above``, ..."""
        return _KEYS[self]

    @property
    def label(self) -> str:
        """The text every output shows for this verdict."""
        return _LABELS[self]

    @property
    def is_borderline(self) -> bool:
        """Whether the 95 % interval straddles a threshold (either side)."""
        return self in (Verdict.BORDERLINE_BELOW, Verdict.BORDERLINE_ABOVE)

    @classmethod
    def from_key(cls, key: str) -> Verdict:
        """The verdict whose :attr:`key` (or :attr:`label`, any case) is ``key``.

        Raises
        ------
        ValueError
            For an unknown key.
        """
        text = str(key).strip().lower()
        for member in cls:
            if text in (member.key, member.label.lower(), member.name.lower()):
                return member
        raise ValueError(f"verdict: unknown value {key!r} (known: {', '.join(m.key for m in cls)})")


_KEYS = {
    Verdict.NOT_MEASURED: "not-measured",
    Verdict.NOT_ASSESSED: "not-assessed",
    Verdict.WITHIN: "within",
    Verdict.BORDERLINE_BELOW: "borderline-below",
    Verdict.BORDERLINE_ABOVE: "borderline-above",
    Verdict.UNSTABLE: "unstable",
}
_LABELS = {
    Verdict.NOT_MEASURED: "not measured",
    Verdict.NOT_ASSESSED: "not assessed",
    Verdict.WITHIN: "within thresholds",
    Verdict.BORDERLINE_BELOW: "BORDERLINE (below thresholds)",
    Verdict.BORDERLINE_ABOVE: "BORDERLINE (ABOVE threshold)",
    Verdict.UNSTABLE: "UNSTABLE",
}


def _quantity(value: np.ndarray, low: np.ndarray, high: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Verdict codes of one quantity; every array broadcasts to the segment shape."""
    with np.errstate(invalid="ignore"):
        used = np.isfinite(value) & np.isfinite(threshold)
        above = np.abs(value) > threshold
        beyond = (low > threshold) | (high < -threshold)
        inside = (low >= -threshold) & (high <= threshold)
    code = np.where(inside, Verdict.WITHIN, Verdict.BORDERLINE_BELOW)
    code = np.where(above, Verdict.BORDERLINE_ABOVE, code)
    code = np.where(beyond, Verdict.UNSTABLE, code)
    return np.where(used, code, Verdict.NOT_ASSESSED).astype(np.int8)


def quantity_verdicts(
    values: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    ci95: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Verdict codes per quantity, vectorised over segments and studies.

    Parameters
    ----------
    values : mapping of str to array_like of shape (..., S)
        ``translation_mm`` (mm), ``translation_pct`` (% of endplate depth),
        ``angulation_deg`` (degrees); signed; NaN = not available.  Missing
        keys are not assessed.
    thresholds : mapping of str to array_like broadcastable to (..., S)
        Threshold per quantity and segment, same units, NaN = criterion not
        used (:meth:`measure.Criteria.thresholds`).
    ci95 : mapping of str to array_like of shape (..., S, 2), optional
        95 % interval (low, high) per quantity; NaN or absent = no uncertainty
        known, the interval is the value itself.

    Returns
    -------
    dict of str to ndarray of int8, shape (..., S)
        :class:`Verdict` codes per quantity; ``NOT_ASSESSED`` where the value
        or the threshold is missing.
    """
    out = {}
    for kind in VERDICT_KINDS:
        if kind not in values or values[kind] is None:
            continue
        value = np.asarray(values[kind], dtype=np.float64)
        threshold = np.asarray(thresholds.get(kind, np.nan), dtype=np.float64)
        interval = None if ci95 is None else ci95.get(kind)
        if interval is None:
            low = high = value
        else:
            interval = np.asarray(interval, dtype=np.float64)
            known = np.isfinite(interval).all(axis=-1)
            low = np.where(known, interval[..., 0], value)
            high = np.where(known, interval[..., 1], value)
        out[kind] = _quantity(value, low, high, threshold)
    return out


def segment_verdict(
    values: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    ci95: Mapping[str, Any] | None = None,
    *,
    measured: Any = None,
) -> np.ndarray:
    """Verdict codes of segments: the most severe verdict over the quantities.

    Parameters
    ----------
    values, thresholds, ci95
        As in :func:`quantity_verdicts`.
    measured : array_like of bool, shape (..., S), optional
        Whether the segment's motion exists; default: ``angulation_deg`` is finite.

    Returns
    -------
    ndarray of int8, shape (..., S)
        :class:`Verdict` codes (``Verdict(int(code))`` gives the member).

    Notes
    -----
    Per quantity with value ``v``, interval ``[lo, hi]`` and threshold ``T``
    ("more than" is strict, measurement.md §4): ``UNSTABLE`` when
    ``lo > T`` or ``hi < -T``; else ``BORDERLINE_ABOVE`` when ``|v| > T``; else
    ``WITHIN`` when ``-T <= lo`` and ``hi <= T``; else ``BORDERLINE_BELOW``.
    The segment takes the maximum, so it is ``UNSTABLE`` when any criterion is
    exceeded beyond its interval, and ``WITHIN`` only when every applied
    criterion is confidently within.

    Examples
    --------
    >>> v = segment_verdict({"angulation_deg": [12.0, 10.2, 9.0, 3.0]},
    ...                     {"angulation_deg": 10.0},
    ...                     {"angulation_deg": [[11, 13], [8.2, 12.2], [7, 11], [1, 5]]})
    >>> [Verdict(int(c)).key for c in v]
    ['unstable', 'borderline-above', 'borderline-below', 'within']
    """
    per = quantity_verdicts(values, thresholds, ci95)
    if measured is None:
        angle = values.get("angulation_deg")
        if angle is None:
            raise ValueError("measured: needed when values have no 'angulation_deg'")
        measured = np.isfinite(np.asarray(angle, dtype=np.float64))
    measured = np.asarray(measured, dtype=bool)
    code = np.full(measured.shape, Verdict.NOT_ASSESSED, dtype=np.int8)
    for quantity in per.values():
        code = np.maximum(code, quantity)
    return np.where(measured, code, np.int8(Verdict.NOT_MEASURED)).astype(np.int8)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _interval(value: Any) -> tuple[float, float]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return _number(value[0]), _number(value[1])
    return math.nan, math.nan


def _record_inputs(row: Mapping[str, Any]):
    thresholds = row["thresholds"]
    values = {kind: _number(row.get(kind)) for kind in VERDICT_KINDS}
    limits = {kind: _number(thresholds.get(kind)) for kind in VERDICT_KINDS}
    ci95 = {kind: _interval(row.get(f"{kind}_ci95")) for kind in VERDICT_KINDS}
    measured = math.isfinite(values["angulation_deg"]) or row.get("measured") is True
    return values, limits, ci95, measured


def verdict_of_record(row: Mapping[str, Any]) -> Verdict:
    """The verdict of one JSON result row (``SegmentalMotion.to_records``, a session or SR row).

    Recomputed from the row's values, ``*_ci95`` intervals and ``thresholds``
    with :func:`segment_verdict`; a row without a ``thresholds`` table (an old
    file) falls back to its ``unstable`` / ``borderline`` flags, which follow
    the same rule.
    """
    if row.get("measured") is False:
        return Verdict.NOT_MEASURED
    if not isinstance(row.get("thresholds"), Mapping):
        if row.get("unstable") is None:
            return Verdict.NOT_MEASURED
        if row.get("borderline"):
            return Verdict.BORDERLINE_ABOVE if row.get("unstable") else Verdict.BORDERLINE_BELOW
        return Verdict.UNSTABLE if row.get("unstable") else Verdict.WITHIN
    values, limits, ci95, measured = _record_inputs(row)
    return Verdict(int(segment_verdict(values, limits, ci95, measured=measured)))


def quantity_verdicts_of_record(row: Mapping[str, Any]) -> dict[str, Verdict]:
    """``{"translation": ..., "angulation": ...}`` verdicts of one JSON result row.

    Translation is the more severe of its mm and % criteria.  Empty for a row
    without ``thresholds`` or not measured.
    """
    if row.get("measured") is False or not isinstance(row.get("thresholds"), Mapping):
        return {}
    values, limits, ci95, measured = _record_inputs(row)
    if not measured:
        return {}
    per = quantity_verdicts(values, limits, ci95)
    return {
        "translation": Verdict(int(max(per["translation_mm"], per["translation_pct"]))),
        "angulation": Verdict(int(per["angulation_deg"])),
    }
