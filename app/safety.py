"""Safety checks before any result counts (issue 11 §1, issue 14 §1).

Pure functions over the two films (headers, pixels) and the measured motion:
they return structured :class:`SafetyWarning` s.  The session holds them and the
reader's acknowledgement; the viewer shows them with an acknowledge action; the
reports print them; ``report`` and ``batch`` refuse to export an
unacknowledged one unless ``--acknowledge-safety`` is given.

Checks (:class:`SafetyCheck`): the same image twice (SOP Instance UID), the same
pixels (hash), near-identical pixels, different patients or studies, both films
the same view, an incomplete decode, implausibly small motion at every level,
and endplate depths outside the adult range (the film's millimetres are then
not used).  Messages never contain a patient name.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ADULT_ENDPLATE_DEPTH_MM",
    "ENDPLATE_DEPTH_RANGE_MM",
    "NEAR_IDENTICAL_MAD",
    "NO_MOTION_ANGULATION_DEG",
    "NO_MOTION_TRANSLATION_PCT",
    "SafetyCheck",
    "SafetyWarning",
    "borderline_hint",
    "check_films",
    "check_motion",
    "check_rows",
    "check_spacing",
    "image_shape_of",
    "implausible_spacing",
    "pixel_digest",
    "require_acknowledged",
    "safety_checks",
    "session_safety",
    "unacknowledged",
]

NEAR_IDENTICAL_MAD = 0.015
"""Mean absolute difference (fraction of each film's 1st–99th percentile range,
on a 128 × 128 area-downsampled copy) below which two films are near-identical.
The sample's flexion and extension differ by 0.18, the viewer tests' toy pair
(boxes shifted by 15 px) by 0.03; one film re-encoded as JPEG quality 50 by
0.001 (the same film with 2 % Gaussian noise added: 0.019, not caught)."""

NO_MOTION_ANGULATION_DEG = 2.0
"""Every measured segment moving less than this (degrees) ..."""

NO_MOTION_TRANSLATION_PCT = 3.0
"""... and less than this (% of endplate depth) looks like the same posture twice.
Normal motion is 7–14° and 3–8 % per level (measurement.md §4: Hayes 1989,
Abbott 2006)."""

ADULT_ENDPLATE_DEPTH_MM = (25.0, 60.0)
"""Adult superior endplate depth of L1–S1 in mm (about; issue 14 §1)."""

ENDPLATE_DEPTH_RANGE_MM = (20.0, 75.0)
"""Median superior endplate depth in mm outside which a film's pixel spacing is
not the patient's and its millimetres are not used.  The adult 25–60 mm
(L1–S1), widened for detector-plane spacing, which enlarges the bodies by the
geometric magnification of a lateral lumbar film (1.1–1.25: 60 mm reads up to
75 mm), and by 5 mm below for small adults.  ImagerPixelSpacing 1\\1 on a film
of 0.1–0.5 mm pixels gives bodies of 80–600 mm; on coarser films (0.5–0.7 mm)
the depths alone can look adult and the field of view tells (see
:data:`DETECTOR_FIELD_MM`)."""

DETECTOR_FIELD_MM = (450.0, 500.0)
"""A film's field of view (rows × row spacing, columns × column spacing) that no
single lateral lumbar exposure exceeds: the largest detectors and cassettes are
43 × 43 and 35 × 43 cm.  A film is implausible when its shorter side exceeds
the first value, or its longer side the second while it is not a tall
stitched long-length image (long/short ≥ :data:`STITCHED_ASPECT`).  1\\1 on a
35 × 43 cm film of 0.7 mm pixels claims 50 × 61 cm."""

STITCHED_ASPECT = 1.6
"""Long/short side ratio from which a film may be a stitched long-length image."""



class SafetyCheck(enum.StrEnum):
    """What a safety warning is about; the string values are written to files."""

    SAME_INSTANCE = "same-instance"
    """Both films carry the same SOP Instance UID: one image loaded twice."""

    SAME_PIXELS = "same-pixels"
    """Both films have identical pixel data (SHA-256 of the decoded pixels): two
    copies of one image."""

    NEAR_IDENTICAL = "near-identical-pixels"
    """The films differ by less than :data:`NEAR_IDENTICAL_MAD`: one image
    re-encoded, or the same posture twice."""

    DIFFERENT_PATIENT = "different-patient"
    """Patient ID, other patient attributes or Study Instance UID differ."""

    SAME_VIEW = "same-view"
    """Both films say the same view (e.g. two flexion films)."""

    INCOMPLETE_DECODE = "incomplete-decode"
    """A film's pixel data were not decoded completely."""

    NO_MOTION = "no-motion"
    """Every measured segment moves less than 2° and 3 % of endplate depth: the
    same posture twice, or a fused spine."""

    IMPLAUSIBLE_SPACING = "implausible-spacing"
    """Endplate depths in mm outside the adult range: the film's millimetres
    are not used (% and angles remain)."""


@dataclass(frozen=True)
class SafetyWarning:
    """One safety finding: which check and a one-line message for the reader.

    Attributes
    ----------
    check : SafetyCheck
    message : str
        One line, no patient name.
    """

    check: SafetyCheck
    message: str

    def to_json(self) -> dict[str, str]:
        """``{"check": ..., "message": ...}``."""
        return {"check": self.check.value, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SafetyWarning:
        """Inverse of :meth:`to_json`; raises ValueError naming the key."""
        if not isinstance(data, Mapping):
            raise ValueError("safety warning: expected an object with 'check' and 'message'")
        try:
            check = SafetyCheck(data.get("check"))
        except ValueError:
            raise ValueError(f"safety.check: unknown value {data.get('check')!r}") from None
        message = data.get("message")
        if not isinstance(message, str) or not message:
            raise ValueError("safety.message: expected a non-empty string")
        return cls(check, message)


def pixel_digest(pixels: np.ndarray) -> str:
    """SHA-256 of a decoded image (shape, dtype and values), hex."""
    array = np.ascontiguousarray(pixels)
    h = hashlib.sha256(f"{array.shape}{array.dtype.str}".encode())
    h.update(array.data)
    return h.hexdigest()


def _thumbnail(pixels: np.ndarray) -> np.ndarray:
    """128 × 128 area-downsampled copy scaled by the 1st–99th percentile range."""
    import cv2

    p = np.asarray(pixels, dtype=np.float32)
    if p.ndim == 3:
        p = p.mean(axis=-1)
    lo, hi = np.percentile(p[:: max(1, p.shape[0] // 256), :: max(1, p.shape[1] // 256)], [1, 99])
    small = cv2.resize(p, (128, 128), interpolation=cv2.INTER_AREA)
    return np.clip((small - lo) / max(float(hi - lo), 1e-6), 0, 1)


def _view(film: Any) -> str:
    view = getattr(film, "view", "unknown")
    return str(getattr(view, "value", view) or "unknown").lower()


def _uid(film: Any) -> str:
    return str(getattr(getattr(film, "identity", None), "sop_instance_uid", "") or "")


def check_films(flexion: Any, extension: Any, *, mismatch: str | None = None) -> list[SafetyWarning]:
    """Header and pixel checks of a film pair.

    Parameters
    ----------
    flexion, extension : Film
        ``app.dicom_io.Film`` or any object with ``identity.sop_instance_uid``,
        ``pixels`` (ndarray of shape (rows, columns)), ``view`` and optionally
        ``decode_incomplete`` (bool).
    mismatch : str, optional
        The patient/study mismatch message (``app.session.identity_mismatch``).

    Returns
    -------
    list of SafetyWarning
        In the order of :class:`SafetyCheck`; empty when nothing is wrong.
    """
    out: list[SafetyWarning] = []
    uid_f, uid_e = _uid(flexion), _uid(extension)
    if uid_f and uid_f == uid_e:
        out.append(SafetyWarning(
            SafetyCheck.SAME_INSTANCE,
            "Both films are the same image (same SOP Instance UID): no motion can be measured.",
        ))
    pf, pe = getattr(flexion, "pixels", None), getattr(extension, "pixels", None)
    if pf is not None and pe is not None:
        same = pf.shape == pe.shape and pixel_digest(pf) == pixel_digest(pe)
        if same and not out:
            out.append(SafetyWarning(
                SafetyCheck.SAME_PIXELS,
                "Both films have identical pixels (two copies of one image): no motion can be measured.",
            ))
        elif not same:
            mad = float(np.abs(_thumbnail(pf) - _thumbnail(pe)).mean())
            if mad < NEAR_IDENTICAL_MAD:
                out.append(SafetyWarning(
                    SafetyCheck.NEAR_IDENTICAL,
                    f"The films are nearly identical (mean difference {100 * mad:.1f} % of the grey "
                    "range): one image twice, or the same posture twice.",
                ))
    if mismatch:
        out.append(SafetyWarning(SafetyCheck.DIFFERENT_PATIENT, mismatch))
    vf, ve = _view(flexion), _view(extension)
    if vf == ve and vf in ("flexion", "extension", "neutral"):
        out.append(SafetyWarning(
            SafetyCheck.SAME_VIEW,
            f"Both films are {vf} views according to their headers: the motion needs one flexion "
            "and one extension film.",
        ))
    for role, film in (("flexion", flexion), ("extension", extension)):
        if getattr(film, "decode_incomplete", False):
            out.append(SafetyWarning(
                SafetyCheck.INCOMPLETE_DECODE,
                f"The {role} film's pixel data were not decoded completely: its landmarks may sit "
                "on missing image.",
            ))
    return out


def check_motion(
    angulation_deg: Any, translation_pct: Any
) -> list[SafetyWarning]:
    """The same posture twice: every measured segment moves implausibly little.

    Parameters
    ----------
    angulation_deg, translation_pct : array_like of shape (S,)
        Motion per segment (degrees, % of endplate depth); NaN = not measured.

    Returns
    -------
    list of SafetyWarning
        ``NO_MOTION`` when at least two segments are measured and each moves
        less than :data:`NO_MOTION_ANGULATION_DEG` and
        :data:`NO_MOTION_TRANSLATION_PCT`.
    """
    a = np.abs(np.asarray(angulation_deg, dtype=np.float64))
    t = np.abs(np.asarray(translation_pct, dtype=np.float64))
    measured = np.isfinite(a)
    if measured.sum() < 2:
        return []
    t = np.where(np.isfinite(t), t, 0.0)
    if (a[measured] < NO_MOTION_ANGULATION_DEG).all() and (t[measured] < NO_MOTION_TRANSLATION_PCT).all():
        return [SafetyWarning(
            SafetyCheck.NO_MOTION,
            f"Every measured level moves less than {NO_MOTION_ANGULATION_DEG:g}° and "
            f"{NO_MOTION_TRANSLATION_PCT:g} % of endplate depth (largest {a[measured].max():.1f}°): "
            "the same posture twice? Normal motion is 7–14° per level.",
        )]
    return []


def check_rows(rows: Iterable[Mapping[str, Any]]) -> list[SafetyWarning]:
    """:func:`check_motion` on JSON result rows (a session's or an SR's)."""
    rows = list(rows)

    def col(key: str) -> list[float]:
        out = []
        for r in rows:
            v = r.get(key)
            out.append(float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan)
        return out

    return check_motion(col("angulation_deg"), col("translation_pct"))


def implausible_spacing(
    landmarks: Any,
    spacing_mm: Sequence[float] | None,
    image_shape: Sequence[int] | None = None,
) -> str | None:
    """Why a film's pixel spacing cannot be the patient's, from its body depths and
    its field of view; or None.

    Parameters
    ----------
    landmarks : array_like of shape (V, 4, 2), pixels
        Corners AS, PS, PI, AI of the bodies (NaN = absent).
    spacing_mm : (row, column) mm or None
        The film's spacing; None (uncalibrated) gives None.
    image_shape : (rows, columns) or None, optional
        The film's size in pixels, when known: its field of view at this
        spacing is checked against :data:`DETECTOR_FIELD_MM`.

    Returns
    -------
    str or None
        The reason (median superior endplate depth in mm outside
        :data:`ENDPLATE_DEPTH_RANGE_MM`, or a field of view larger than any
        detector), or None when plausible or not decidable (fewer than two
        bodies with a superior endplate and no image size).
    """
    if spacing_mm is None:
        return None
    row, col = float(spacing_mm[0]), float(spacing_mm[1])
    depth_reason = _implausible_depth(landmarks, row, col)
    if depth_reason is not None:
        return depth_reason
    return _implausible_field(image_shape, row, col)


def _implausible_depth(landmarks: Any, row: float, col: float) -> str | None:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[-2:] != (4, 2):
        return None
    d = lm[:, 0] - lm[:, 1]  # AS - PS, (V, 2) as (x, y)
    depth = np.hypot(d[:, 0] * col, d[:, 1] * row)
    depth = depth[np.isfinite(depth)]
    if depth.size < 2:
        return None
    median = float(np.median(depth))
    low, high = ENDPLATE_DEPTH_RANGE_MM
    if low <= median <= high:
        return None
    adult = ADULT_ENDPLATE_DEPTH_MM
    return (
        f"endplate depths of {median:.0f} mm (median of {depth.size} bodies) at the stated pixel "
        f"spacing {row:g} x {col:g} mm, where adults measure about {adult[0]:g}-{adult[1]:g} mm "
        f"({low:g}-{high:g} mm at the detector): the spacing is not the patient's, millimetres "
        "are not used (% and angles are)"
    )


def _implausible_field(image_shape: Sequence[int] | None, row: float, col: float) -> str | None:
    if image_shape is None or len(image_shape) != 2:
        return None
    try:
        height, width = float(image_shape[0]) * row, float(image_shape[1]) * col
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(height) and math.isfinite(width)) or min(height, width) <= 0:
        return None
    short, long = sorted((height, width))
    short_limit, long_limit = DETECTOR_FIELD_MM
    if short <= short_limit and (long <= long_limit or long / short >= STITCHED_ASPECT):
        return None
    return (
        f"a field of view of {width / 10:.0f} x {height / 10:.0f} cm at the stated pixel spacing "
        f"{row:g} x {col:g} mm, larger than any detector for a lateral lumbar film (43 x 43 cm): "
        "the spacing is not the patient's, millimetres are not used (% and angles are)"
    )


def image_shape_of(record: Mapping[str, Any] | None) -> tuple[int, int] | None:
    """``(rows, columns)`` from a film record's ``image_size`` key, or None.

    Landmarks files, sessions and phantom truth files may state the film's size
    in pixels (``"image_size": [rows, columns]``) so that the field-of-view
    check of :func:`implausible_spacing` also runs without the film.

    Parameters
    ----------
    record : mapping or None
        One film's entry of a landmarks file or session.

    Returns
    -------
    tuple of (int, int) or None
        None when absent or not two positive integers.
    """
    value = (record or {}).get("image_size")
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 10**6 for v in value):
        return None
    return (int(value[0]), int(value[1]))


def check_spacing(reasons: Mapping[str, str | None]) -> list[SafetyWarning]:
    """``IMPLAUSIBLE_SPACING`` warnings from :func:`implausible_spacing` per film role."""
    return [
        SafetyWarning(SafetyCheck.IMPLAUSIBLE_SPACING, f"{role} film: {reason}")
        for role, reason in reasons.items()
        if reason
    ]


def safety_checks(
    flexion: Any,
    extension: Any,
    *,
    angulation_deg: Any = None,
    translation_pct: Any = None,
    mismatch: str | None = None,
    spacing_reasons: Mapping[str, str | None] | None = None,
) -> list[SafetyWarning]:
    """Every check of a film pair and its motion (see :class:`SafetyCheck`).

    ``angulation_deg`` / ``translation_pct`` are the per-segment motion
    (``SegmentalMotion`` attributes of one study); the motion check is skipped
    when the films are already one image (it would only repeat it).
    """
    out = check_films(flexion, extension, mismatch=mismatch)
    same = {SafetyCheck.SAME_INSTANCE, SafetyCheck.SAME_PIXELS, SafetyCheck.NEAR_IDENTICAL}
    if angulation_deg is not None and not any(w.check in same for w in out):
        out += check_motion(angulation_deg, translation_pct)
    out += check_spacing(spacing_reasons or {})
    return out


def unacknowledged(warnings: Iterable[SafetyWarning], acknowledged: Iterable[str]) -> list[SafetyWarning]:
    """The warnings whose check is not in ``acknowledged`` (check values)."""
    done = {str(a) for a in acknowledged}
    return [w for w in warnings if w.check.value not in done]


def session_safety(
    session: Mapping[str, Any],
    rows: Iterable[Mapping[str, Any]],
    spacing_reasons: Mapping[str, str | None] | None = None,
) -> tuple[list[SafetyWarning], list[str]]:
    """The safety warnings of a saved session and the checks its reader acknowledged.

    The warnings the viewer saved (``safety.warnings``: they include the pixel
    checks, which need the films) together with what the file itself shows: the
    same SOP Instance UID or file hash on both films, motion implausibly small
    at every level (from ``rows``) and ``spacing_reasons`` per film.

    Returns
    -------
    warnings : list of SafetyWarning
        One per check.
    acknowledged : list of str
        Check values acknowledged in the file (only of checks in ``warnings``).
    """
    saved = session.get("safety") if isinstance(session.get("safety"), Mapping) else {}
    out: list[SafetyWarning] = []
    for item in saved.get("warnings") or []:
        try:
            out.append(SafetyWarning.from_json(item))
        except ValueError:
            continue

    def add(found: Iterable[SafetyWarning]) -> None:
        have = {w.check for w in out}
        out.extend(w for w in found if w.check not in have)

    images = [
        (session.get(v) or {}).get("image") or {} if isinstance(session.get(v), Mapping) else {}
        for v in ("flexion", "extension")
    ]
    uid_f, uid_e = (str(i.get("sop_instance_uid") or "") for i in images)
    sha_f, sha_e = (str(i.get("sha256") or "") for i in images)
    if uid_f and uid_f == uid_e:
        add([SafetyWarning(SafetyCheck.SAME_INSTANCE,
                           "Both films are the same image (same SOP Instance UID): no motion can be measured.")])
    elif sha_f and sha_f == sha_e:
        add([SafetyWarning(SafetyCheck.SAME_PIXELS,
                           "Both films are the same file (SHA-256): no motion can be measured.")])
    same = {SafetyCheck.SAME_INSTANCE, SafetyCheck.SAME_PIXELS, SafetyCheck.NEAR_IDENTICAL}
    if not any(w.check in same for w in out):
        add(check_rows(rows))
    add(check_spacing(spacing_reasons or {}))
    acknowledged = saved.get("acknowledged") or []
    checks = {w.check.value for w in out}
    acknowledged = sorted({a for a in acknowledged if isinstance(a, str)} & checks) if isinstance(
        acknowledged, list) else []
    return out, acknowledged


def require_acknowledged(
    warnings: Sequence[SafetyWarning], acknowledged: Iterable[str], *, override: bool = False
) -> None:
    """Raise :class:`app.errors.UserError` when a safety warning is not acknowledged.

    ``override`` is the ``--acknowledge-safety`` option: the person running the
    command acknowledges them.
    """
    from app.errors import UserError

    pending = unacknowledged(warnings, acknowledged)
    if pending and not override:
        raise UserError(
            "export refused: safety warning(s) not acknowledged: "
            + " ".join(w.message for w in pending)
            + " Acknowledge them in the viewer, or pass --acknowledge-safety."
        )


def _half_width(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """Median half-width of the ``key`` 95 % intervals of the measured rows, or None."""
    widths = [(hi - lo) / 2 for r in rows for lo, hi in [r.get(key) or (None, None)]
              if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi)]
    return float(np.median(widths)) if widths else None


def borderline_hint(
    rows: Iterable[Mapping[str, Any]], methods: Iterable[str] = (), sd_mm: Iterable[float] | None = None
) -> str | None:
    """What would resolve borderline results, when most measured levels are borderline.

    Parameters
    ----------
    rows : iterable of mapping
        Result rows (``verdict`` or the ``borderline`` flag, ``measured``; the
        ``*_ci95`` intervals when present).
    methods : iterable of str
        Placement methods of the corners (``measure.PlacementMethod`` values).
    sd_mm : iterable of float, optional
        The SD stored with each corner, in the order of ``methods`` (NaN: the
        method's default), mm.  The hint quotes the SDs actually used.

    Returns
    -------
    str or None
        One paragraph for the viewer and the reports, or None when at most one
        measured level (or fewer than half) is borderline.  It quotes the
        manual corners' SDs as used, the resulting median interval half-widths,
        and what tracking and refinement would use instead (their measured
        error models, ``measure.ERROR_MODEL`` and ``measure.tracking_sd``).
    """
    from measure import ERROR_MODEL, PlacementMethod, Verdict, tracking_sd, verdict_of_record

    rows = list(rows)
    verdicts = [verdict_of_record(r) for r in rows]
    measured = [v for v in verdicts if v is not Verdict.NOT_MEASURED]
    borderline = [v for v in measured if v.is_borderline]
    if len(borderline) < 2 or 2 * len(borderline) < len(measured):
        return None
    methods = [str(m) if m else "" for m in methods]
    stated = [math.nan] * len(methods) if sd_mm is None else [float(x) for x in sd_mm]
    if len(stated) != len(methods):
        raise ValueError(f"sd_mm: {len(stated)} SDs for {len(methods)} corners")
    used = {m for m in methods if m}
    manual = used & {"manual", "edited"} or not used
    text = (
        f"{len(borderline)} of {len(measured)} levels are borderline: their 95 % intervals "
        "reach a threshold, so the measurement cannot decide them. "
    )
    if manual:
        default = PlacementMethod.MANUAL.default_sd_mm
        sds = [s if math.isfinite(s) else default for m, s in zip(methods, stated, strict=True)
               if m in ("manual", "edited")] or [default]
        lo, hi = min(sds), max(sds)
        quoted = f"an SD of {lo:g} mm each" if hi - lo < 1e-9 else (
            f"SDs of {lo:g}-{hi:g} mm (median {float(np.median(sds)):g} mm)")
        source = (" (inter-observer error, Eur J Radiol 1994;18:227-231)"
                  if abs(lo - default) < 1e-9 and abs(hi - default) < 1e-9 else "")
        text += f"Manually placed corners carry {quoted}{source}, of the order of the thresholds"
        t95, a95 = _half_width(rows, "translation_mm_ci95"), _half_width(rows, "angulation_deg_ci95")
        if t95 is not None or a95 is not None:
            parts = [f"±{t95:.1f} mm" if t95 is not None else "", f"±{a95:.1f}°" if a95 is not None else ""]
            text += f": intervals of {' and '.join(p for p in parts if p)} here (median)"
        text += ". "
    tracked = ERROR_MODEL[PlacementMethod.TRACKED]
    refined = ERROR_MODEL[PlacementMethod.REFINED]
    # a tracked body's shift SD for a 35 mm body matched at correlation 0.95 and 0.8
    good, poor = (float(tracked.shift_factor * tracking_sd(q, 35.0)) for q in (0.95, 0.8))
    text += (
        "To narrow the intervals: track the bodies from one film to the other (Landmarks > "
        f"Track; each body carries the SD of its own registration, a shift of {good:.2f}-{poor:.2f} mm "
        "for a match of 0.95-0.8, measured on phantoms) or refine the corners (the fit's own SD, "
        f"scaled by {refined.corner_factor:.2f} along and {refined.across:.2f} across the endplate as measured), "
        "check each automatic corner, or add a second independent reading."
    )
    return text
