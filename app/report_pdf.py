"""The PDF report (A4, one or two pages) of a session.

Page 1: patient and study identification, any warning (changed or missing
images, uncalibrated films, different patients), both films with landmarks,
endplate lines and level labels, and the per-segment table (translation in mm
and % of endplate depth, angulation, 95 % intervals, finding and the criterion
that fired).  Then: per-film values, the criteria and their references, the
calibration of each film with its warning, how the landmarks were placed, the
method, the software version and dates, and the statement that the report is a
measurement aid and not a diagnosis (also in every page footer).

Millimetres are printed only for calibrated films; detector-plane values carry
a mark and the warning; an uncalibrated film shows "n/a" and the % column.
"""

from __future__ import annotations

import datetime as _dt
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app import __version__
from app.atomic import atomic_write_bytes
from app.report_data import (
    CORNERS,
    CRITERIA_TEXT,
    DISCLAIMER,
    REFERENCES,
    VIEWS,
    ReportData,
    finding_of,
    is_missing,
)
from app.report_tables import PLACEMENT_COLOURS, encode_png, films_panel

__all__ = ["finding_of", "pdf_bytes", "write_pdf"]

_FINDING_COLOURS = {"unstable": "#c62828", "borderline": "#ef8f00", "stable": "#2e7d32",
                    "not measured": "#757575"}


def _fmt(value: Any, digits: int = 1) -> str:
    if is_missing(value):
        return "-"
    return f"{float(value):+.{digits}f}" if float(value) != 0 else f"{0:.{digits}f}"


def _ci(value: Any) -> str:
    if not isinstance(value, list | tuple) or len(value) != 2 or any(is_missing(v) for v in value):
        return ""
    return f"[{float(value[0]):.1f}, {float(value[1]):.1f}]"


def _mm_state(report: ReportData) -> str:
    """``ok``, ``detector`` (mm at the detector plane) or ``none`` (uncalibrated)."""
    films = [report.films[v] for v in VIEWS if v in report.films]
    if not films or any(not f.calibration.is_calibrated for f in films):
        return "none"
    if any(str(f.calibration.source) == "detector" for f in films):
        return "detector"
    return "ok"


def _identity(report: ReportData, loaded: Mapping[str, Any],
              sr_identity: Mapping[str, str] | None) -> list[tuple[str, str]]:
    ident = None
    for view in VIEWS:
        if view in loaded:
            ident = loaded[view].identity
            break
    rows: list[tuple[str, str]] = []
    if ident is not None:
        birth = ident.patient_birth_date.isoformat() if ident.patient_birth_date else "-"
        study = ident.study_date.isoformat() if ident.study_date else "-"
        rows += [
            ("Patient", f"{_person_name(ident.patient_name)}; ID {ident.patient_id or '-'}; "
                        f"born {birth}"),
            ("Study", f"date {study}; accession {ident.accession_number or '-'}"),
            ("Study UID", ident.study_instance_uid or "-"),
        ]
    elif sr_identity:
        rows += [
            ("Patient", f"{_person_name(sr_identity.get('patient_name'))}; ID "
                        f"{sr_identity.get('patient_id') or '-'}"),
            ("Study", f"date {sr_identity.get('study_date') or '-'}"),
            ("Study UID", sr_identity.get("study_instance_uid") or "-"),
        ]
    else:
        rows.append(("Patient", "not available: the images were not found"))
    for view in VIEWS:
        film = report.films.get(view)
        if film is None:
            continue
        status = {"ok": "image verified (SHA-256)", "changed": "IMAGE CHANGED (SHA-256 mismatch)",
                  "missing": "image not found", "unverified": "image not verified (no hash)",
                  "none": "no image recorded"}[film.image_status]
        rows.append((f"{view.capitalize()} film",
                     f"SOP Instance UID {film.sop_instance_uid or '-'} ({status})"))
    return rows


def _patient_warning(loaded: Mapping[str, Any]) -> str | None:
    if "flexion" in loaded and "extension" in loaded:
        try:
            diff = loaded["flexion"].identity.patient_differences(loaded["extension"].identity)
        except AttributeError:
            return None
        if diff:
            return ("The two films belong to DIFFERENT PATIENTS (" + ", ".join(diff)
                    + " differ): the results must not be used.")
    return None


def pdf_bytes(
    report: ReportData,
    *,
    films: Mapping[str, Any] | None = None,
    sr_identity: Mapping[str, str] | None = None,
    generated_at: _dt.datetime | None = None,
) -> bytes:
    """The PDF report of a session, as bytes.

    Parameters
    ----------
    report : ReportData
    films : mapping of str to app.dicom_io.Film, optional
        Loaded films (the viewer has them); otherwise loaded from ``report``.
    sr_identity : mapping, optional
        Patient/study from an SR (:class:`app.report_sr.SrContent`), used when
        the films are not available.
    generated_at : datetime, optional
        Report date (default: now, UTC).
    """
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_LEFT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Image,
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    loaded = dict(films or {})
    if films is None:
        from app.dicom_io import load_film
        from app.errors import InputFileError

        for view, film in report.films.items():
            if film.path is not None:
                try:
                    loaded[view] = load_film(str(film.path))
                except InputFileError as exc:
                    report.warnings.append(f"The {view} image cannot be read: {exc.reason}")
    generated_at = generated_at or _dt.datetime.now(_dt.UTC)
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=8.2, leading=10,
                          alignment=TA_LEFT, spaceAfter=1.5)
    small = ParagraphStyle("small", parent=body, fontSize=7.2, leading=8.6)
    h1 = ParagraphStyle("h1", parent=styles["Heading1"], fontSize=14, leading=17, spaceAfter=2)
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontSize=10, leading=12, spaceBefore=5,
                        spaceAfter=2, keepWithNext=1)
    warn = ParagraphStyle("warn", parent=body, textColor=colors.HexColor("#b71c1c"),
                          fontName="Helvetica-Bold")
    page_width = A4[0] - 28 * mm

    story: list[Any] = [
        Paragraph("Lumbar instability: flexion-extension measurement report", h1),
        Paragraph(f"<i>{DISCLAIMER}</i>", small),
        Spacer(1, 2 * mm),
    ]
    ident = Table([[Paragraph(f"<b>{k}</b>", body), Paragraph(_esc(v), body)]
                   for k, v in _identity(report, loaded, sr_identity)],
                  colWidths=[28 * mm, page_width - 28 * mm])
    ident.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 0.5),
                               ("TOPPADDING", (0, 0), (-1, -1), 0.5),
                               ("BOX", (0, 0), (-1, -1), 0.4, colors.grey)]))
    story.append(ident)

    warnings = list(report.warnings)
    mismatch = _patient_warning(loaded)
    if mismatch:
        warnings.insert(0, mismatch)
    mm_state = _mm_state(report)
    if mm_state == "detector":
        warnings.append(
            "Millimetres (marked *) use the spacing at the detector, not corrected for "
            "magnification: they overstate patient distances (typically by 10-40 %).")
    for text in warnings:
        story.append(Paragraph(_esc(text), warn))

    images = {v: f.display_image() for v, f in loaded.items() if hasattr(f, "display_image")}
    if images:
        panel = films_panel(report, max_side=1000, images=images)
        h, w = panel.shape[:2]
        width = page_width
        height = width * h / w
        max_height = 120 * mm
        if height > max_height:
            width, height = width * max_height / height, max_height
        story.append(Spacer(1, 2 * mm))
        story.append(Image(io.BytesIO(encode_png(panel)), width=width,
                           height=height))
        legend = "  ".join(f'<font color="#{r:02x}{g:02x}{b:02x}"><b>o</b></font> {m}'
                           for m, (r, g, b) in PLACEMENT_COLOURS.items())
        story.append(Paragraph(
            "Corners coloured by how they were placed: " + legend
            + ". Red line: superior endplate (AS-PS); blue line: inferior endplate (PI-AI).",
            small))
    else:
        story.append(Paragraph("The films are not shown: their images were not found.", warn))

    # --- results table
    story.append(Paragraph("Segmental motion between flexion and extension", h2))
    star = "*" if mm_state == "detector" else ""
    head = ParagraphStyle("head", parent=small, fontName="Helvetica-Bold")
    header = [Paragraph(t, head) for t in (
        "Segment", f"Translation, mm{star} [95 % interval]",
        "Translation, % of endplate depth [95 % interval]",
        "Angulation, deg [95 % interval]", "Finding", "Criterion fired")]
    data: list[list[Any]] = [header]
    finding_styles = []
    for i, row in enumerate(report.rows, start=1):
        finding = finding_of(row)
        if mm_state == "none":
            mm_value = "n/a (uncalibrated)"
        elif is_missing(row.get("translation_mm")):
            mm_value = "-"
        else:
            mm_value = (f"{_fmt(row.get('translation_mm'))}{star}  "
                        f"{_ci(row.get('translation_mm_ci95'))}")
        data.append([
            str(row.get("segment", f"#{i}")),
            mm_value,
            f"{_fmt(row.get('translation_pct'))}  {_ci(row.get('translation_pct_ci95'))}",
            f"{_fmt(row.get('angulation_deg'))}  {_ci(row.get('angulation_deg_ci95'))}",
            (finding.upper() if finding in ("unstable", "borderline") else finding)
            + ("" if _translation_assessed(report, row) else "\n(angulation only)"),
            str(row.get("criterion") or "-"),
        ])
        finding_styles.append(("TEXTCOLOR", (4, i), (4, i),
                               colors.HexColor(_FINDING_COLOURS.get(finding, "#000000"))))
        if finding in ("unstable", "borderline"):
            finding_styles.append(("FONTNAME", (4, i), (4, i), "Helvetica-Bold"))
    widths = [16, 34, 40, 34, 30, 0]
    widths[-1] = page_width / mm - sum(widths)
    table = Table(data, colWidths=[w * mm for w in widths], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e3e7ee")),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("FONTNAME", (0, 1), (0, -1), "Helvetica-Bold"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        *finding_styles,
    ]))
    story.append(table)
    story.append(Paragraph(
        "Translation: positive = the upper body slides forward in flexion; angulation: "
        "extension minus flexion, positive = normal motion. Classification uses magnitudes. "
        "Borderline: the 95 % interval straddles a threshold. "
        + _thresholds_sentence(report)
        + ("" if all(_translation_assessed(report, r) for r in report.rows) else
           " Translation could not be classified without calibration (no % threshold in these "
           "criteria): those findings rest on angulation only."), small))

    # --- page 2 material
    story.append(Paragraph("Per-film values", h2))
    film_header = [Paragraph(t, head) for t in (
        "Segment", "Flexion angle, deg", "Extension angle, deg",
        f"Flexion translation, mm{_star(report, 'flexion')}",
        f"Extension translation, mm{_star(report, 'extension')}",
        "Flexion translation, %", "Extension translation, %")]
    film_rows: list[list[Any]] = [film_header]
    for i, row in enumerate(report.rows, start=1):
        film_rows.append([
            str(row.get("segment", f"#{i}")),
            _fmt(row.get("flexion_angle_deg")),
            _fmt(row.get("extension_angle_deg")),
            _film_mm(report, "flexion", row.get("flexion_translation_mm")),
            _film_mm(report, "extension", row.get("extension_translation_mm")),
            _fmt(row.get("flexion_translation_pct")),
            _fmt(row.get("extension_translation_pct")),
        ])
    per_film = Table(film_rows, colWidths=[page_width / 7] * 7)
    per_film.setStyle(TableStyle([
        ("FONTSIZE", (0, 0), (-1, -1), 7.6),
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e3e7ee")),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
        ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.0),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.0),
    ]))
    story.append(per_film)

    story.append(Paragraph("Calibration of each film", h2))
    for view in VIEWS:
        film = report.films.get(view)
        if film is None:
            continue
        cal = film.calibration
        if cal.is_calibrated:
            spacing = (f"{cal.row_spacing_mm:.4g} x {cal.column_spacing_mm:.4g} mm/pixel "
                       "(row x column)")
        else:
            spacing = "no pixel spacing: no millimetre value is given for this film"
        text = (f"<b>{view.capitalize()}</b>: source <b>{cal.source}</b>; {spacing}"
                + (f"; {_esc(cal.detail)}" if cal.detail else ""))
        story.append(Paragraph(text, body))
        if cal.warning:
            story.append(Paragraph(f"Warning: {_esc(cal.warning)}.", warn))

    story.append(Paragraph("How the landmarks were placed", h2))
    for view in VIEWS:
        film = report.films.get(view)
        if film is None:
            continue
        counts = film.placement_summary()
        total = sum(counts.values())
        parts = ", ".join(f"{n} {m}" for m, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        edited = counts.get("edited", 0)
        story.append(Paragraph(
            f"<b>{view.capitalize()}</b>: {total} corners ({parts or 'none'}); "
            + (f"{edited} edited by hand after automatic placement." if edited
               else "none edited after placement."), body))
    story.append(Paragraph(
        "manual: placed by the reader; refined: placed by the reader and snapped to the "
        "bone edge; tracked: carried from the other film by rigid registration of the body; "
        "detected: found automatically; edited: moved by the reader after automatic placement. "
        f"Corners: {', '.join(CORNERS)} (anterior/posterior, superior/inferior).", small))

    story.append(Paragraph("Criteria and method", h2))
    criteria = report.criteria
    story.append(Paragraph(
        f"<b>Criteria: {criteria}</b> - {_esc(CRITERIA_TEXT.get(criteria, 'user-defined thresholds, see the table'))}."
        " Exactly at the threshold is not unstable.", body))
    story.append(Paragraph(_esc(REFERENCES.get(criteria, "")), body))
    story.append(Paragraph(_esc(REFERENCES["translation"]) + " Angulation: change of the angle "
                           "between the upper body's inferior endplate and the lower body's "
                           "superior endplate. Translation in % of the lower body's endplate "
                           "depth needs no calibration and cancels magnification.", body))
    story.append(Paragraph(
        "Uncertainty: each corner has a positional standard deviation (from how it was placed); "
        "it is propagated to translation and angulation as a 95 % interval (normal manual "
        "error is of the order of 0.6-1.4 mm and 1.6-2.6 deg, Eur J Radiol 1994;18:227-231).",
        body))
    story.append(Spacer(1, 2 * mm))
    saved = report.session.get("saved_at") or "-"
    story.append(KeepTogether([
        Paragraph(
            f"Measured with lumbar-instability {_esc(report.software_version)}; session saved "
            f"{_esc(str(saved))}; report generated {generated_at.isoformat(timespec='seconds')} "
            f"by lumbar-instability {__version__}.", body),
        Paragraph(f"<b>{DISCLAIMER}</b>", body),
    ]))

    def footer(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 6.8)
        canvas.setFillColor(colors.grey)
        canvas.drawString(14 * mm, 8 * mm,
                          f"lumbar-instability {__version__} - measurement aid, not a diagnosis"
                          f" - generated {generated_at.strftime('%Y-%m-%d %H:%M UTC')}")
        canvas.drawRightString(A4[0] - 14 * mm, 8 * mm, f"page {doc.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=14 * mm, rightMargin=14 * mm,
                            topMargin=12 * mm, bottomMargin=14 * mm,
                            title="Lumbar instability measurement report",
                            author="lumbar-instability", subject="Flexion-extension radiographs",
                            creator=f"lumbar-instability {__version__}")
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def _star(report: ReportData, view: str) -> str:
    film = report.films.get(view)
    return "*" if film is not None and str(film.calibration.source) == "detector" else ""


def _film_mm(report: ReportData, view: str, value: Any) -> str:
    film = report.films.get(view)
    if film is None or not film.calibration.is_calibrated:
        return "n/a"
    return _fmt(value) + ("" if is_missing(value) else _star(report, view))


def _translation_assessed(report: ReportData, row: Mapping[str, Any]) -> bool:
    """False when neither a mm nor a % translation threshold could be applied."""
    if isinstance(row.get("translation_assessed"), bool):
        return row["translation_assessed"]
    if _mm_state(report) != "none":
        return True
    thresholds = row.get("thresholds")
    return isinstance(thresholds, dict) and not is_missing(thresholds.get("translation_pct"))


def _thresholds_sentence(report: ReportData) -> str:
    rows = [r for r in report.rows if isinstance(r.get("thresholds"), dict)]
    if not rows:
        return ""
    parts = []
    for kind, unit in (("translation_mm", " mm"), ("translation_pct", " %"),
                       ("angulation_deg", " deg")):
        values = {str(r.get("segment")): r["thresholds"].get(kind) for r in rows}
        present = {k: v for k, v in values.items() if not is_missing(v)}
        if not present:
            continue
        distinct = sorted(set(present.values()))
        name = kind.split("_")[0]
        if len(distinct) == 1:
            parts.append(f"{name} > {distinct[0]:g}{unit}")
        else:
            parts.append(f"{name} > " + ", ".join(f"{v:g}{unit} ({k})" for k, v in present.items()))
    return "Thresholds used: " + "; ".join(parts) + "." if parts else ""


def _person_name(name: str | None) -> str:
    """DICOM PN ``Family^Given^Middle`` as ``FAMILY, Given Middle``."""
    if not name:
        return "-"
    parts = [p for p in str(name).split("=")[0].split("^")]
    family, rest = parts[0], " ".join(p for p in parts[1:3] if p)
    return f"{family.upper()}, {rest}" if rest else family.upper()


def _esc(text: str) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def write_pdf(report: ReportData, path: str | Path, **kwargs: Any) -> Path:
    """Write the PDF report atomically (see :func:`pdf_bytes`)."""
    atomic_write_bytes(path, pdf_bytes(report, **kwargs))
    return Path(path)
