"""Instability criteria: thresholds per segment (measurement.md §4).

"More than" is strict: a segment whose translation is exactly 4.000 mm is not
unstable under the ``default`` preset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from measure._levels import level_sort_key

__all__ = ["CRITERIA_PRESETS", "Criteria", "get_criteria"]

ANY_LEVEL = "*"
_KINDS = ("translation_mm", "translation_pct", "angulation_deg")


def _is_segment(label: str) -> bool:
    """``"U-L"``: two labels joined by one hyphen, no spaces; U above L when both are
    vertebral levels (other labels are data the caller chose)."""
    parts = label.split("-")
    if len(parts) != 2 or any(not part or part != part.strip() for part in parts):
        return False
    try:
        return level_sort_key(parts[0]) < level_sort_key(parts[1])
    except ValueError:
        return True


def _thresholds(value: Any, key: str) -> Mapping[str, float | None]:
    """Validate one threshold table: a number (every segment) or {segment or '*': number|None}."""
    if value is None:
        return MappingProxyType({})
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = {ANY_LEVEL: value}
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}: expected a number or an object mapping segments to numbers")
    table: dict[str, float | None] = {}
    for segment, threshold in value.items():
        if not isinstance(segment, str) or not segment:
            raise ValueError(f"{key}: segment labels must be non-empty strings, got {segment!r}")
        if segment != ANY_LEVEL and not _is_segment(segment):
            # a typo ("L4L5") would otherwise leave that segment silently without a threshold
            raise ValueError(
                f"{key}.{segment}: not a segment label such as 'L4-L5' (upper level first) or '*'"
            )
        if threshold is None:
            table[segment] = None
            continue
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or (
            isinstance(threshold, int) and abs(threshold) > 1e300  # float() would overflow
        ):
            raise ValueError(f"{key}.{segment}: expected a positive number or null, got {threshold!r}")
        if not math.isfinite(float(threshold)) or threshold <= 0:
            raise ValueError(f"{key}.{segment}: expected a positive number or null, got {threshold!r}")
        table[segment] = float(threshold)
    return MappingProxyType(table)


@dataclass(frozen=True, eq=False)
class Criteria:
    """Thresholds above which a segment is reported unstable.

    Each table maps a segment label (``"L4-L5"``) or ``"*"`` (every other
    segment) to a threshold; a segment without a threshold (or mapped to None)
    does not use that criterion.  A segment is unstable when any used
    criterion is exceeded, strictly: ``|value| > threshold``.

    Parameters
    ----------
    name : str
        Preset name or a user's name for custom thresholds.
    translation_mm : mapping of str to float, mm
        Threshold on ``|translation_mm|`` (needs calibrated films).
    translation_pct : mapping of str to float, % of endplate depth
        Threshold on ``|translation_pct|``.
    angulation_deg : mapping of str to float, degrees
        Threshold on ``|angulation_deg|``.
    source : str
        Citation of where the thresholds come from.

    Examples
    --------
    >>> c = Criteria.from_dict({"translation_mm": 4, "angulation_deg": {"*": 10, "L5-S1": 15}})
    >>> c.thresholds(["L4-L5", "L5-S1"])["angulation_deg"]
    array([10., 15.])
    """

    name: str
    translation_mm: Mapping[str, float | None] = field(default_factory=dict)
    translation_pct: Mapping[str, float | None] = field(default_factory=dict)
    angulation_deg: Mapping[str, float | None] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name: criteria need a non-empty name")
        for kind in _KINDS:
            object.__setattr__(self, kind, _thresholds(getattr(self, kind), kind))

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], name: str = "custom") -> Criteria:
        """Criteria from a settings mapping (the JSON settings file format).

        Keys: ``translation_mm``, ``translation_pct``, ``angulation_deg`` (each a
        number for every segment, or ``{"L4-L5": 4.0, "*": 4.5, "L5-S1": null}``),
        optional ``name`` and ``source``.  Unknown keys raise ``ValueError``.
        """
        if not isinstance(mapping, Mapping):
            raise ValueError("criteria: expected an object with threshold tables")
        unknown = sorted(set(mapping) - {*_KINDS, "name", "source"})
        if unknown:
            raise ValueError(
                f"{unknown[0]}: unknown key (expected {', '.join(_KINDS)}, name, source)"
            )
        if all(mapping.get(kind) in (None, {}) for kind in _KINDS):  # 0 is a bad threshold, not none
            raise ValueError(f"criteria: at least one of {', '.join(_KINDS)} is needed")
        source = mapping.get("source", "user settings")
        label = mapping.get("name", name)
        if not isinstance(source, str):
            raise ValueError("source: expected a string")
        if not isinstance(label, str) or not label:
            raise ValueError("name: expected a non-empty string")
        return cls(label, *(mapping.get(kind) for kind in _KINDS), source=source)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready settings mapping (inverse of :meth:`from_dict`)."""
        out: dict[str, Any] = {"name": self.name, "source": self.source}
        out.update({kind: dict(getattr(self, kind)) for kind in _KINDS})
        return out

    def threshold(self, kind: str, segment: str) -> float:
        """One threshold, NaN when the criterion is not used for ``segment``."""
        table = getattr(self, kind)
        value = table[segment] if segment in table else table.get(ANY_LEVEL)
        return math.nan if value is None else value

    def thresholds(self, segments: Sequence[str]) -> dict[str, np.ndarray]:
        """Threshold arrays of shape (V-1,) per kind; NaN where not used."""
        return {
            kind: np.array([self.threshold(kind, s) for s in segments], dtype=np.float64)
            for kind in _KINDS
        }

    def describe(self) -> str:
        """One line: the preset name and its source, for report footers."""
        return f"{self.name} ({self.source})" if self.source else self.name


CRITERIA_PRESETS: Mapping[str, Criteria] = MappingProxyType(
    {
        "default": Criteria(
            "default",
            translation_mm={ANY_LEVEL: 4.0},
            angulation_deg={ANY_LEVEL: 10.0},
            source="Dupuis et al., Spine 1985;10:262-276; as used by Pearson et al., "
            "Spine 2011;36:572-580",
        ),
        "white-panjabi": Criteria(
            "white-panjabi",
            translation_mm={ANY_LEVEL: 4.5},
            translation_pct={ANY_LEVEL: 15.0},
            angulation_deg={
                "L1-L2": 15.0,
                "L2-L3": 15.0,
                "L3-L4": 15.0,
                "L4-L5": 20.0,
                "L5-S1": 25.0,
            },
            source="White & Panjabi, Clinical Biomechanics of the Spine, 2nd ed., 1990",
        ),
    }
)
"""Named presets of measurement.md §4: ``default`` and ``white-panjabi``."""


def get_criteria(criteria: str | Criteria | Mapping[str, Any]) -> Criteria:
    """Resolve a preset name, a :class:`Criteria` or a settings mapping.

    Raises
    ------
    ValueError
        Naming ``criteria`` when the preset is unknown.
    """
    if isinstance(criteria, Criteria):
        return criteria
    if isinstance(criteria, str):
        try:
            return CRITERIA_PRESETS[criteria]
        except KeyError:
            raise ValueError(
                f"criteria: unknown preset {criteria!r} (known: {', '.join(CRITERIA_PRESETS)})"
            ) from None
    if isinstance(criteria, Mapping):
        return Criteria.from_dict(criteria)
    raise ValueError(f"criteria: expected a preset name or Criteria, got {type(criteria).__name__}")
