"""The result table as CSV and JSON, and the annotated films as a PNG.

The table is the session's ``results.segments`` rows as last shown, flattened
for CSV (``translation_mm_ci95`` becomes ``translation_mm_ci95_low`` and
``_high``; ``thresholds`` becomes ``threshold_translation_mm`` ...), with the
calibration source of each film and the image check on every row so that a
row copied out of the file still says where its millimetres came from.

Drawing (:func:`annotate_film`) works on a downsampled 8-bit display image with
OpenCV: corner dots coloured by how they were placed, the superior (``AS-PS``)
and inferior (``PI-AI``) endplate lines, and the level label on the anterior
side of each body.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.annotations import session_annotations, short_text
from app.atomic import atomic_write_bytes, atomic_write_text
from app.palette import ANNOTATION_RGB, ENDPLATE_RGB, FINDING_RGB, FINDING_TEXT_RGB, PLACEMENT_RGB
from app.report_data import CORNERS, VIEWS, ReportData, is_missing, verdict_of
from measure import verdict_of_record

__all__ = [
    "PLACEMENT_COLOURS",
    "annotate_film",
    "annotated_films",
    "display_image",
    "flat_rows",
    "report_annotations",
    "safe_row",
    "table_json",
    "table_row",
    "write_csv",
    "write_json",
    "write_png",
]

PLACEMENT_COLOURS: dict[str, tuple[int, int, int]] = dict(PLACEMENT_RGB)
"""RGB colour of a corner dot by placement method: the viewer's (``app.palette``)."""

_MARKED = ("unstable", "borderline-above", "borderline-below")


# ----------------------------------------------------------------------------- table


def _flat(key: str, value: Any) -> list[tuple[str, Any]]:
    if key.endswith("_ci95") and (value is None or (isinstance(value, list) and len(value) == 2)):
        low, high = (None, None) if value is None else value
        return [(f"{key}_low", low), (f"{key}_high", high)]
    if isinstance(value, dict):
        prefix = "threshold" if key == "thresholds" else key
        return [(f"{prefix}_{k}", v) for k, v in value.items()]
    if isinstance(value, list):
        return [(f"{key}_{i}", v) for i, v in enumerate(value)]
    return [(key, value)]


def _is_numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, list) and all(_is_numeric(v) or v is None for v in value)


def safe_row(report: ReportData, row: Mapping[str, Any]) -> dict[str, Any]:
    """A result row with every millimetre value of an uncalibrated film set to None.

    The session's rows never hold such values; this guards the exports against a
    stale or edited session file (measurement.md §5: no mm without calibration).
    """
    uncalibrated = {v for v, f in report.films.items() if not f.calibration.is_calibrated}
    out = dict(row)
    for key, value in row.items() if uncalibrated else ():
        if "_mm" not in key or key == "thresholds" or not _is_numeric(value):
            continue
        view = next((v for v in VIEWS if key.startswith(f"{v}_")), None)
        if view is None or view in uncalibrated:
            out[key] = None
    return out


def table_row(report: ReportData, row: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`safe_row` with ``verdict`` set by the one verdict rule.

    :func:`measure.verdict_of_record` recomputes it from the values as exported:
    an old file's rows have none, and a stored one never overrides what the
    values say.
    """
    out = safe_row(report, row)
    out["verdict"] = verdict_of_record(out).key
    return out


def flat_rows(report: ReportData) -> list[dict[str, Any]]:
    """The rows for CSV: one flat dict per segment.

    Adds ``criteria``, ``flexion_calibration_source``,
    ``extension_calibration_source`` and ``flexion_image_check`` /
    ``extension_image_check`` (``ok``, ``changed``, ``missing``, ``unverified``).
    """
    extra: dict[str, Any] = {"criteria": report.criteria}
    for view in VIEWS:
        film = report.films.get(view)
        extra[f"{view}_calibration_source"] = None if film is None else str(
            film.calibration.source)
        extra[f"{view}_image_check"] = None if film is None else film.image_status
    out = []
    for row in report.rows:
        flat: dict[str, Any] = {}
        for key, value in table_row(report, row).items():
            flat.update(_flat(key, value))
        flat.update({k: v for k, v in extra.items() if k not in flat})
        out.append(flat)
    return out


def _csv_cell(value: Any) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def write_csv(report: ReportData, path: str | Path) -> Path:
    """Write the flat table (:func:`flat_rows`) as CSV (UTF-8, header row) atomically.

    Empty cells are values that do not exist (e.g. millimetres of an
    uncalibrated film); floats are written with every digit (``repr``).
    """
    atomic_write_text(path, csv_text(report))
    return Path(path)


def table_json(report: ReportData) -> dict[str, Any]:
    """The JSON table: the rows as saved plus what a reader needs to trust them."""
    films = {}
    for view, film in report.films.items():
        cal = film.calibration
        films[view] = {
            "calibration_source": str(cal.source),
            "calibration_detail": cal.detail,
            "calibration_warning": cal.warning,
            "pixel_spacing_mm": None if cal.spacing_mm is None else list(cal.spacing_mm),
            "sop_instance_uid": film.sop_instance_uid,
            "image_check": film.image_status,
            "placement": film.placement_summary(),
        }
    return {
        "format": "lumbar-instability-report-table",
        "format_version": 1,
        "software_version": report.software_version,
        "session_saved_at": report.session.get("saved_at"),
        "criteria": report.criteria,
        "levels": report.levels,
        "films": films,
        "warnings": list(report.warnings),
        "stored_values_differ": list(report.stored_differences),
        "measured_from_landmarks": report.measured_from_landmarks,
        "segments": [table_row(report, r) for r in report.rows],
    }


def write_json(report: ReportData, path: str | Path) -> Path:
    """Write :func:`table_json` atomically (NaN written as null)."""
    doc = _nan_to_none(table_json(report))
    atomic_write_text(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")
    return Path(path)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


# ----------------------------------------------------------------------------- pictures


def display_image(path: str | Path) -> np.ndarray:
    """The film as an 8-bit display image, bone white (:meth:`app.dicom_io.Film.display_image`).

    Returns
    -------
    ndarray of uint8, shape (rows, columns)
    """
    from app.dicom_io import load_film

    return load_film(str(path)).display_image()


def annotate_film(
    image: np.ndarray,
    landmarks: np.ndarray,
    levels: Sequence[str],
    *,
    placement: Mapping[str, Mapping[str, str]] | None = None,
    max_side: int = 900,
    verdicts: Mapping[str, str] | None = None,
    annotations: Sequence[tuple[str, Any, Any]] = (),
) -> np.ndarray:
    """Draw landmarks, endplate lines, level labels and flagged segments on a downsampled film.

    Parameters
    ----------
    image : ndarray of uint8, shape (rows, columns)
        Display image (bone white).
    landmarks : ndarray of shape (V, 4, 2)
        Pixels ``(x, y)`` of the corners ``AS, PS, PI, AI``; NaN where absent.
    levels : sequence of str
        Labels of the V bodies.
    placement : mapping, optional
        ``placement[level][corner]`` method, which colours the dot.
    max_side : int
        Longest side of the output, pixels (the image is only ever shrunk).
    verdicts : mapping of str to str, optional
        ``{"L4-L5": "unstable", ...}`` (``measure.Verdict.key``): an
        unstable or borderline segment is outlined (upper body's ``PI-AI``, lower
        body's ``AS-PS``) in the colour of its finding; unstable and borderline
        (above) segments also get their label in a box on the posterior side.
    annotations : sequence of (str, Annotation, AnnotationValue)
        The reader's rulers and angles (:func:`app.annotations.session_annotations`),
        drawn with their label and value (``R1 42.1 mm``).

    Returns
    -------
    ndarray of uint8, shape (h, w, 3)
        RGB picture; ``h / rows == w / columns`` = the scale applied.
    """
    import cv2

    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image: expected a 2-D grey image, got shape {image.shape}")
    rows, cols = image.shape
    scale = min(1.0, max_side / max(rows, cols))
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image
    rgb = np.ascontiguousarray(np.repeat(small[..., None], 3, axis=2).astype(np.uint8))
    lm = np.asarray(landmarks, dtype=float)
    # map pixel centres: x' = (x + 0.5) * s - 0.5
    pts = (lm + 0.5) * np.array([size[0] / cols, size[1] / rows]) - 0.5
    thick = max(1, round(max(size) / 450))
    radius = max(2, round(max(size) / 200))
    shift = 4  # sub-pixel drawing
    f = 1 << shift

    def ipt(p: np.ndarray) -> tuple[int, int]:
        return (round(float(p[0]) * f), round(float(p[1]) * f))

    ok = np.isfinite(pts).all(axis=-1)
    for v in range(len(pts)):
        for a, b in ((0, 1), (2, 3)):
            if ok[v, a] and ok[v, b]:
                cv2.line(rgb, ipt(pts[v, a]), ipt(pts[v, b]), ENDPLATE_RGB, thick, cv2.LINE_AA,
                         shift)
    _mark_segments(rgb, pts, ok, levels, verdicts or {}, thick, shift)
    for v in range(len(pts)):
        level = levels[v] if v < len(levels) else str(v)
        for c, corner in enumerate(CORNERS):
            if not ok[v, c]:
                continue
            method = ((placement or {}).get(level) or {}).get(corner, "manual")
            colour = PLACEMENT_COLOURS.get(method, (255, 255, 255))
            cv2.circle(rgb, ipt(pts[v, c]), radius * f, (0, 0, 0), -1, cv2.LINE_AA, shift)
            cv2.circle(rgb, ipt(pts[v, c]), max(1, radius - 1) * f, colour, -1, cv2.LINE_AA,
                       shift)
        present = pts[v][ok[v]]
        if len(present) == 0:
            continue
        centre = present.mean(axis=0)
        anterior = [pts[v, c] for c in (0, 3) if ok[v, c]]
        posterior = [pts[v, c] for c in (1, 2) if ok[v, c]]
        direction = np.array([-1.0, 0.0])
        if anterior and posterior:
            d = np.mean(anterior, axis=0) - np.mean(posterior, axis=0)
            if np.linalg.norm(d) > 0:
                direction = d / np.linalg.norm(d)
        width = np.ptp(present[:, 0]) if len(present) > 1 else 20.0
        font = cv2.FONT_HERSHEY_SIMPLEX
        font_scale = max(0.35, max(size) / 1500)
        (tw, th), _ = cv2.getTextSize(level, font, font_scale, thick)
        anchor = centre + direction * (0.5 * width + 0.8 * tw + 4)
        org = (int(anchor[0] - tw / 2), int(anchor[1] + th / 2))
        org = (min(max(org[0], 1), size[0] - tw - 1), min(max(org[1], th + 1), size[1] - 2))
        cv2.putText(rgb, level, org, font, font_scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(rgb, level, org, font, font_scale, (255, 255, 0), thick, cv2.LINE_AA)
    scale_xy = np.array([size[0] / cols, size[1] / rows])
    for label, annotation, value in annotations:
        _draw_annotation(rgb, (np.asarray(annotation.points_px, float) + 0.5) * scale_xy - 0.5,
                         f"{label} {short_text(value)}", thick, shift)
    return rgb


def _draw_annotation(rgb: np.ndarray, pts: np.ndarray, text: str, thick: int, shift: int) -> None:
    """One ruler (2 points), angle (3: A, vertex, B) or pair of lines (4) with its label, in place."""
    import cv2

    f = 1 << shift
    segments = [(0, 1)] if len(pts) == 2 else [(0, 1), (1, 2)] if len(pts) == 3 else [(0, 1), (2, 3)]
    ipts = [(round(float(x) * f), round(float(y) * f)) for x, y in pts]
    for halo, colour, width in ((True, (0, 0, 0), thick + 2), (False, ANNOTATION_RGB, thick)):
        for a, b in segments:
            cv2.line(rgb, ipts[a], ipts[b], colour, width, cv2.LINE_AA, shift)
        for p in ipts:
            cv2.circle(rgb, p, (thick + 1 + (2 if halo else 0)) * f // 2 + f, colour, -1, cv2.LINE_AA, shift)
    anchor = pts[1] if len(pts) == 3 else pts[:2].mean(axis=0)
    font = cv2.FONT_HERSHEY_SIMPLEX
    font_scale = max(0.35, max(rgb.shape[:2]) / 1700)
    (tw, th), base = cv2.getTextSize(text, font, font_scale, thick)
    x0 = int(min(max(anchor[0] + 6, 1), rgb.shape[1] - tw - 2))
    y0 = int(min(max(anchor[1] - 6, th + 2), rgb.shape[0] - base - 2))
    cv2.putText(rgb, text, (x0, y0), font, font_scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(rgb, text, (x0, y0), font, font_scale, ANNOTATION_RGB, thick, cv2.LINE_AA)


def _mark_segments(rgb: np.ndarray, pts: np.ndarray, ok: np.ndarray, levels: Sequence[str],
                   verdicts: Mapping[str, str], thick: int, shift: int) -> None:
    """Outline each flagged segment's disc space (upper PI-AI, lower AS-PS) in place."""
    import cv2

    f = 1 << shift
    font = cv2.FONT_HERSHEY_SIMPLEX
    font_scale = max(0.35, max(rgb.shape[:2]) / 1700)
    for v in range(len(pts) - 1):
        segment = f"{levels[v]}-{levels[v + 1]}" if v + 1 < len(levels) else ""
        verdict = verdicts.get(segment)
        if verdict not in _MARKED or not (ok[v, 2:].all() and ok[v + 1, :2].all()):
            continue
        quad = np.array([pts[v, 3], pts[v, 2], pts[v + 1, 1], pts[v + 1, 0]])  # AI PI PS AS
        centre = quad.mean(axis=0)
        grown = centre + 1.25 * (quad - centre)  # around the endplates, not on them
        poly = np.round(grown * f).astype(np.int32).reshape(-1, 1, 2)
        colour = FINDING_RGB[verdict]
        strong = verdict != "borderline-below"
        width = thick * (3 if strong else 1)
        cv2.polylines(rgb, [poly], True, (0, 0, 0), width + 2, cv2.LINE_AA, shift)
        cv2.polylines(rgb, [poly], True, colour, width, cv2.LINE_AA, shift)
        if not strong:
            continue
        text = f"{segment} {verdict.split('-')[0].upper()}"
        (tw, th), base = cv2.getTextSize(text, font, font_scale, thick)
        posterior = (quad[1] + quad[2]) / 2  # PI of the upper, PS of the lower body
        direction = posterior - centre
        norm = np.linalg.norm(direction)
        direction = direction / norm if norm > 0 else np.array([1.0, 0.0])
        anchor = posterior + direction * (0.3 * norm + 0.6 * tw + 6)
        x0 = int(min(max(anchor[0] - tw / 2, 1), rgb.shape[1] - tw - 5))
        y0 = int(min(max(anchor[1] - th / 2, 3), rgb.shape[0] - th - base - 3))
        cv2.rectangle(rgb, (x0 - 3, y0 - 3), (x0 + tw + 3, y0 + th + base + 1), colour, -1)
        cv2.putText(rgb, text, (x0, y0 + th), font, font_scale, FINDING_TEXT_RGB[verdict],
                    thick, cv2.LINE_AA)


def annotated_films(
    report: ReportData,
    *,
    max_side: int = 900,
    images: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The annotated RGB picture of every film whose image was found.

    ``images`` may give the display images already loaded (the viewer has them).
    """
    out = {}
    verdicts = {str(r.get("segment")): verdict_of(r).key for r in report.rows}
    drawn = report_annotations(report)
    for view, film in report.films.items():
        image = (images or {}).get(view)
        if image is None:
            if film.path is None:
                continue
            image = display_image(film.path)
        out[view] = annotate_film(image, film.landmarks, report.levels,
                                  placement=film.record.get("placement"), max_side=max_side,
                                  verdicts=verdicts, annotations=drawn.get(view, ()))
    return out


def report_annotations(report: ReportData) -> dict[str, list[tuple[str, Any, Any]]]:
    """The reader's rulers and angles of a report by film, labelled and measured with each
    film's calibration (:func:`app.annotations.session_annotations`)."""
    return session_annotations(report.session, {v: f.calibration for v, f in report.films.items()})


def _caption(report: ReportData, view: str) -> str:
    film = report.films[view]
    text = f"{view.upper()}  calibration: {film.calibration.source}"
    if film.image_status == "changed":
        text += "  IMAGE CHANGED"
    return text


def films_panel(report: ReportData, *, max_side: int = 900,
                images: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """Both annotated films side by side with a caption strip, RGB uint8 (h, w, 3)."""
    import cv2

    pictures = annotated_films(report, max_side=max_side, images=images)
    if not pictures:
        raise ValueError("images: no film image was found")
    height = max(p.shape[0] for p in pictures.values())
    factor = max(1.0, height / 560)  # captions readable once the panel is printed
    strip = round(28 * factor)
    font_scale = 0.5 * factor
    thickness = max(1, round(factor))
    gap = np.full((height + strip, max(8, round(8 * factor)), 3), 40, np.uint8)
    tiles = []
    for view, pic in pictures.items():
        tile = np.zeros((height + strip, pic.shape[1], 3), np.uint8)
        tile[strip: strip + pic.shape[0]] = pic
        colour = (255, 80, 80) if report.films[view].image_status == "changed" else (255, 255, 255)
        cv2.putText(tile, _caption(report, view), (round(6 * factor), round(19 * factor)),
                    cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, thickness, cv2.LINE_AA)
        tiles += [tile, gap]
    return np.hstack(tiles[:-1])


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 picture."""
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
        raise ValueError("rgb: could not be encoded as PNG")
    return data.tobytes()


def write_png(report: ReportData, path: str | Path, *, max_side: int = 1200,
              images: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write both annotated films side by side as a PNG, atomically."""
    atomic_write_bytes(path, encode_png(films_panel(report, max_side=max_side, images=images)))
    return Path(path)


def csv_text(report: ReportData) -> str:
    """The CSV table as a string (what :func:`write_csv` writes)."""
    buffer = io.StringIO()
    rows = flat_rows(report)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return buffer.getvalue()
