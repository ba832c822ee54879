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
from app.palette import FINDING_RGB, FINDING_TEXT_RGB, PLACEMENT_RGB, hex_colour
from app.report_data import (
    CRITERIA_TEXT,
    DISCLAIMER,
    REFERENCES,
    VIEWS,
    ReportData,
    finding_of,
    is_missing,
    reader_fields,
    verdict_of,
)
from app.report_tables import encode_png, films_panel, report_annotations
from measure import Verdict

__all__ = ["ANONYMISED_PATIENT", "PLACEMENT_MEANING", "finding_of", "pdf_bytes", "summary_lines", "write_pdf"]


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


ANONYMISED_PATIENT = "anonymised (name, ID, birth date and accession number left out)"
"""What an anonymised report prints in place of the patient."""


def _identity(report: ReportData, loaded: Mapping[str, Any],
              sr_identity: Mapping[str, str] | None, anonymise: bool = False) -> list[tuple[str, str]]:
    ident = None
    for view in VIEWS:
        if view in loaded:
            ident = loaded[view].identity
            break
    rows: list[tuple[str, str]] = []
    if anonymise:
        study = getattr(ident, "study_date", None) if ident is not None else None
        day = study.isoformat() if study else (sr_identity or {}).get("study_date") or "-"
        uid = (getattr(ident, "study_instance_uid", None) if ident is not None
               else (sr_identity or {}).get("study_instance_uid"))
        rows += [("Patient", ANONYMISED_PATIENT), ("Study", f"date {day}"),
                 ("Study UID", uid or "-")]
    elif ident is not None:
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


_VERDICT_TEXT = {v.key: v.label for v in Verdict}
"""What the PDF prints per verdict: the labels every output shares (``measure.Verdict``)."""

PLACEMENT_MEANING: dict[str, str] = {
    "manual": "clicked by the reader",
    "edited": "moved by the reader after automatic placement",
    "refined": "moved by the software to the nearest cortical edge from an earlier position "
               "(a click, a detection or a tracked corner)",
    "tracked": "carried over from the other film by registering each body (not clicked on "
               "this film)",
    "detected": "found by the software from the image alone (not clicked)",
}
"""What each placement method says about who put a corner there (PDF legend)."""


def _half_width(interval: Any) -> float | None:
    if not isinstance(interval, list | tuple) or len(interval) != 2 or any(
            is_missing(v) for v in interval):
        return None
    return (float(interval[1]) - float(interval[0])) / 2


def _value_pm(value: Any, interval: Any, unit: str) -> str:
    if is_missing(value):
        return "not measured"
    half = _half_width(interval)
    pm = "" if half is None else f" ± {half:.1f}"
    return f"{float(value):+.1f}{pm}{unit}"


def summary_lines(report: ReportData) -> list[tuple[str, str]]:
    """The answer first: one ``(verdict, sentence)`` per segment that needs attention.

    Unstable and borderline (above) segments get a sentence each, e.g.
    ``"L4-L5: translation +6.2 ± 1.2 mm, angulation +13.1 ± 4.7° — above 4 mm
    and 10°"``; borderline (below) and stable segments are listed together.
    """
    mm_state = _mm_state(report)
    star = "*" if mm_state == "detector" else ""
    out: list[tuple[str, str]] = []
    grouped: dict[str, list[str]] = {}
    for row in report.rows:
        verdict = verdict_of(row).key
        segment = str(row.get("segment", "?"))
        if verdict not in ("unstable", "borderline-above"):
            grouped.setdefault(verdict, []).append(segment)
            continue
        thresholds = row.get("thresholds") if isinstance(row.get("thresholds"), dict) else {}
        if mm_state != "none" and not is_missing(row.get("translation_mm")):
            translation = _value_pm(row.get("translation_mm"), row.get("translation_mm_ci95"),
                                    f" mm{star}")
            t_limit = thresholds.get("translation_mm")
            t_unit = " mm"
        else:
            translation = _value_pm(row.get("translation_pct"), row.get("translation_pct_ci95"),
                                    " % of endplate depth")
            t_limit = thresholds.get("translation_pct")
            t_unit = " %"
        angulation = _value_pm(row.get("angulation_deg"), row.get("angulation_deg_ci95"), "°")
        above, within = [], []
        for fired, limit, unit in ((row.get("translation_unstable"), t_limit, t_unit),
                                   (row.get("angulation_unstable"), thresholds.get(
                                       "angulation_deg"), "°")):
            if is_missing(limit):
                continue
            (above if fired else within).append(f"{float(limit):g}{unit}")
        tail = ""
        if above:
            tail = " — above " + " and ".join(above)
            if within:
                tail += "; within " + " and ".join(within)
        note = (" (the 95 % interval reaches below the threshold)"
                if verdict == "borderline-above" else "")
        out.append((verdict, f"{segment}: translation {translation}, angulation {angulation}"
                    f"{tail}{note}"))
    labels = {"borderline-below": "Borderline, below the thresholds (a 95 % interval "
                                  "reaches a threshold)",
              "within": "Within the thresholds",
              "not-assessed": "Not assessed (no criterion applies)",
              "not-measured": "Not measured"}
    for verdict, label in labels.items():
        if grouped.get(verdict):
            out.append((verdict, f"{label}: {', '.join(grouped[verdict])}"))
    if not report.rows:
        out.append(("not-measured", "Nothing was measured."))
    return out


def pdf_bytes(
    report: ReportData,
    *,
    films: Mapping[str, Any] | None = None,
    sr_identity: Mapping[str, str] | None = None,
    generated_at: _dt.datetime | None = None,
    anonymise: bool = False,
) -> bytes:
    """The PDF report of a session, as bytes (one A4 page when it fits).

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
    anonymise : bool
        Leave out the patient's name, ID and birth date and the accession
        number (the study date and UIDs stay: they find the films again).
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
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=7.6, leading=9.2,
                          alignment=TA_LEFT, spaceAfter=1)
    small = ParagraphStyle("small", parent=body, fontSize=6.5, leading=7.7, spaceAfter=0.5)
    h1 = ParagraphStyle("h1", parent=styles["Heading1"], fontSize=13, leading=15, spaceAfter=1)
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontSize=8.8, leading=10.5,
                        spaceBefore=3, spaceAfter=1.5, keepWithNext=1)
    warn = ParagraphStyle("warn", parent=body, textColor=colors.HexColor("#b71c1c"),
                          fontName="Helvetica-Bold")
    answer = ParagraphStyle("answer", parent=body, fontSize=9.4, leading=11.6,
                            fontName="Helvetica-Bold")
    head = ParagraphStyle("head", parent=small, fontName="Helvetica-Bold")
    page_width = A4[0] - 24 * mm

    story: list[Any] = [
        Paragraph("Lumbar instability: flexion-extension measurement report", h1),
        Paragraph(f"<i>{DISCLAIMER}</i>", small),
        Spacer(1, 1.5 * mm),
    ]

    # --- the answer first
    summary = []
    for verdict, text in summary_lines(report):
        if verdict in FINDING_RGB and verdict != "borderline-below":
            colour = hex_colour(FINDING_RGB[verdict])
            summary.append(Paragraph(
                f'<font color="{colour}">{_esc(_VERDICT_TEXT[verdict])}</font>  {_esc(text)}',
                answer))
        else:
            summary.append(Paragraph(_esc(text), body))
    criteria = report.criteria
    summary.append(Paragraph(
        f"Criteria: <b>{_esc(criteria)}</b> - "
        f"{_esc(CRITERIA_TEXT.get(criteria, 'user-defined thresholds, see the table'))}. "
        "Values are flexion minus extension (translation) and extension minus flexion "
        "(angulation), ± half the 95 % interval." + (
            " Measured from the landmarks file (it held no results)."
            if report.measured_from_landmarks else ""), small))
    box = Table([[summary]], colWidths=[page_width])
    box.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 0.8, colors.HexColor("#37474f")),
                             ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#f4f6f8")),
                             ("TOPPADDING", (0, 0), (-1, -1), 3),
                             ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]))
    story.append(box)

    # --- every warning, before anything else can be read as settled
    warnings = list(report.warnings)
    mismatch = _patient_warning(loaded)
    if mismatch:
        warnings.insert(0, mismatch)
    mm_state = _mm_state(report)
    if mm_state == "detector":
        warnings.append(
            "Millimetres (marked *) use the spacing at the detector, not corrected for "
            "magnification: they overstate patient distances (typically by 10-40 %).")
    for view in VIEWS:
        film = report.films.get(view)
        if film is not None and film.calibration.warning:
            warnings.append(f"{view.capitalize()} film: {film.calibration.warning}.")
    seen: set[str] = set()
    for text in warnings:
        if text not in seen:
            seen.add(text)
            story.append(Paragraph(_esc(text), warn))

    # --- identification: patient | study, then the two films
    pairs = dict(_identity(report, loaded, sr_identity, anonymise))
    film_cells = [Paragraph(f"<b>{_esc(k)}</b> {_esc(v)}", small) for k, v in pairs.items()
                  if k.endswith(" film")]
    first = [Paragraph(f"<b>{k}</b> {_esc(pairs[k])}", small) for k in ("Patient", "Study")
             if k in pairs]
    rows_ident = [first + [""] * (2 - len(first))]
    if "Study UID" in pairs:
        rows_ident.append([Paragraph(f"<b>Study UID</b> {_esc(pairs['Study UID'])}", small), ""])
    if film_cells:
        rows_ident.append(film_cells + [""] * (2 - len(film_cells)))
    ident = Table(rows_ident, colWidths=[page_width / 2] * 2)
    ident.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("TOPPADDING", (0, 0), (-1, -1), 0.3),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 0.3),
                               ("LEFTPADDING", (0, 0), (-1, -1), 2),
                               *([("SPAN", (0, 1), (1, 1))] if "Study UID" in pairs else []),
                               ("LINEBELOW", (0, -1), (-1, -1), 0.4, colors.grey)]))
    story.append(Spacer(1, 1 * mm))
    story.append(ident)

    # --- both films, flagged segments marked
    images = {v: f.display_image() for v, f in loaded.items() if hasattr(f, "display_image")}
    # the reader's rulers and angles: drawn on the films, listed under them with their values
    measured = [(view, label, value) for view, items in report_annotations(report).items()
                for label, _, value in items]
    listed = ("" if not measured else
              " <b>Reader's rulers and angles</b> (white; not used for the findings): "
              + "; ".join(f"<b>{_esc(label)}</b> {view} {_esc(value.text)}" for view, label, value in measured)
              + ".")
    if images:
        panel = films_panel(report, max_side=1000, images=images)
        h, w = panel.shape[:2]
        width, height = page_width, page_width * h / w
        max_height = (80 - 4 * bool(measured)) * mm  # their line must not push the signature over
        if height > max_height:
            width, height = width * max_height / height, max_height
        story.append(Spacer(1, 1.5 * mm))
        story.append(Image(io.BytesIO(encode_png(panel)), width=width, height=height))
        legend = "  ".join(
            f'<font color="{hex_colour(rgb)}"><b>\u25cf</b></font> {m}'
            for m, rgb in PLACEMENT_RGB.items())
        marks = "  ".join(
            f'<font color="{hex_colour(FINDING_RGB[v])}"><b>\u25a0</b></font> {_VERDICT_TEXT[v]}'
            for v in ("unstable", "borderline-above", "borderline-below"))
        story.append(Paragraph(
            f"Corners by how they were placed: {legend}. Endplate lines in the viewer's "
            f"cyan. Segments outlined: {marks}." + listed, small))
    else:
        story.append(Paragraph("The films are not shown: their images were not found.", warn))
        if listed:
            story.append(Paragraph(listed, small))

    # --- results table, per-film values folded in
    story.append(Paragraph("Segmental motion between flexion and extension", h2))
    star = "*" if mm_state == "detector" else ""
    header = [Paragraph(t, head) for t in (
        "Segment", f"Translation, mm{star} [95 % interval]",
        "Translation, % of endplate depth [95 %]", "Angulation, ° [95 %]",
        "Finding", "Criterion fired",
        "Angle flex / ext, °", f"Transl. flex / ext, mm{star}")]
    data: list[list[Any]] = [header]
    finding_styles = []
    for i, row in enumerate(report.rows, start=1):
        verdict = verdict_of(row).key
        if mm_state == "none":
            mm_value = "n/a (uncalibrated)"
        elif is_missing(row.get("translation_mm")):
            mm_value = "-"
        else:
            mm_value = (f"{_fmt(row.get('translation_mm'))}{star} "
                        f"{_ci(row.get('translation_mm_ci95'))}")
        data.append([
            str(row.get("segment", f"#{i}")),
            mm_value,
            f"{_fmt(row.get('translation_pct'))} {_ci(row.get('translation_pct_ci95'))}",
            f"{_fmt(row.get('angulation_deg'))} {_ci(row.get('angulation_deg_ci95'))}",
            _VERDICT_TEXT[verdict].replace(" (", "\n(")
            + ("" if _translation_assessed(report, row) else "\n(angulation only)"),
            str(row.get("criterion") or "-"),
            f"{_fmt(row.get('flexion_angle_deg'))} / {_fmt(row.get('extension_angle_deg'))}",
            f"{_film_mm(report, 'flexion', row.get('flexion_translation_mm'))} / "
            f"{_film_mm(report, 'extension', row.get('extension_translation_mm'))}",
        ])
        if verdict in FINDING_RGB:
            finding_styles += [
                ("BACKGROUND", (4, i), (4, i), colors.HexColor(hex_colour(FINDING_RGB[verdict]))),
                ("TEXTCOLOR", (4, i), (4, i),
                 colors.HexColor(hex_colour(FINDING_TEXT_RGB[verdict]))),
            ]
            if verdict != "borderline-below":
                finding_styles.append(("FONTNAME", (0, i), (0, i), "Helvetica-Bold"))
                finding_styles.append(("FONTNAME", (4, i), (4, i), "Helvetica-Bold"))
    widths = [15, 29, 30, 27, 27, 16, 19, 0]
    widths[-1] = page_width / mm - sum(widths)
    table = Table(data, colWidths=[w * mm for w in widths], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTSIZE", (0, 0), (-1, -1), 7),
        ("LEADING", (0, 0), (-1, -1), 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e3e7ee")),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),  # a two-line verdict starts on the row's line
        ("TOPPADDING", (0, 0), (-1, -1), 1.2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.2),
        *finding_styles,
    ]))
    story.append(table)
    story.append(Paragraph(
        "Translation: positive = the upper body slides forward in flexion; angulation: "
        "extension minus flexion, positive = normal motion. Classification uses magnitudes; "
        "exactly at a threshold is not above it. Unstable: the whole 95 % interval above a "
        "threshold; borderline (above): the value above, its interval reaching below; "
        "borderline (below): within, the interval reaching above. "
        + _thresholds_sentence(report)
        + ("" if all(_translation_assessed(report, r) for r in report.rows) else
           " Translation could not be classified without calibration (no % threshold in these "
           "criteria): those findings rest on angulation only."), small))

    # --- how it was measured: two columns of small print
    left: list[Any] = [Paragraph("Calibration", h2)]
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
        left.append(Paragraph(
            f"<b>{view.capitalize()}</b>: source <b>{cal.source}</b>; {spacing}"
            + (f"; {_esc(cal.detail)}" if cal.detail else ""), small))
    left.append(Paragraph("How the corners were placed", h2))
    for view in VIEWS:
        film = report.films.get(view)
        if film is not None:
            left.append(Paragraph(f"<b>{view.capitalize()}</b>: {_placement_text(film)}", small))
    used = sorted({m for f in report.films.values() for m in f.placement_summary()},
                  key=lambda m: list(PLACEMENT_MEANING).index(m) if m in PLACEMENT_MEANING
                  else 99)
    left.append(Paragraph("; ".join(
        f"<b>{m}</b>: {PLACEMENT_MEANING.get(m, 'method not known to this version')}"
        for m in used) + (". " if used else "")
        + "Only manual and edited corners were clicked by a reader.", small))
    right: list[Any] = [Paragraph("Criteria and method", h2)]
    right.append(Paragraph(
        f"<b>{_esc(criteria)}</b>: "
        f"{_esc(CRITERIA_TEXT.get(criteria, 'user-defined thresholds, see the table'))}. "
        + _esc(REFERENCES.get(criteria, "")), small))
    right.append(Paragraph(_esc(REFERENCES["translation"]) + " Angulation: change of the angle "
                           "between the upper body's inferior endplate and the lower body's "
                           "superior endplate. Translation in % of the lower body's endplate "
                           "depth needs no calibration and cancels magnification.", small))
    right.append(Paragraph(
        "Uncertainty: each corner has a positional standard deviation (from how it was "
        "placed), propagated to translation and angulation as a 95 % interval (manual "
        "reading error is of the order of 0.6-1.4 mm and 1.6-2.6°, Eur J Radiol "
        "1994;18:227-231).", small))
    saved = report.session.get("saved_at") or "-"
    right.append(Paragraph(
        f"Measured with lumbar-instability {_esc(report.software_version)}; session saved "
        f"{_esc(str(saved))}; report generated {generated_at.isoformat(timespec='seconds')} "
        f"by lumbar-instability {__version__}.", small))
    columns = Table([[left, right]], colWidths=[page_width / 2] * 2)
    columns.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                 ("LEFTPADDING", (0, 0), (-1, -1), 0),
                                 ("RIGHTPADDING", (0, 0), (0, -1), 4 * mm)]))
    story.append(columns)

    # --- reader, comment, signature
    name, comment = reader_fields(report.session)
    line = "_" * 28
    sign = Table([[Paragraph(f"<b>Reader</b> {_esc(name) if name else line}", body),
                   Paragraph(f"<b>Signature</b> {line}", body),
                   Paragraph(f"<b>Date</b> {'_' * 16}", body)],
                  [Paragraph(f"<b>Comment</b> {_esc(comment) if comment else ''}", body), "", ""]],
                 colWidths=[page_width * 0.42, page_width * 0.36, page_width * 0.22],
                 rowHeights=[None, None if comment else 7 * mm])
    sign.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 0.5, colors.grey),
                              ("SPAN", (0, 1), (-1, 1)),
                              ("VALIGN", (0, 0), (-1, -1), "TOP"),
                              ("TOPPADDING", (0, 0), (-1, -1), 2)]))
    story.append(Spacer(1, 2 * mm))
    story.append(KeepTogether([sign, Spacer(1, 1 * mm), Paragraph(f"<b>{DISCLAIMER}</b>", small)]))

    def footer(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 6.5)
        canvas.setFillColor(colors.grey)
        canvas.drawString(12 * mm, 7 * mm,
                          f"lumbar-instability {__version__} - measurement aid, not a diagnosis"
                          f" - generated {generated_at.strftime('%Y-%m-%d %H:%M UTC')}")
        canvas.drawRightString(A4[0] - 12 * mm, 7 * mm, f"page {doc.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=12 * mm, rightMargin=12 * mm,
                            topMargin=9 * mm, bottomMargin=11 * mm,
                            title="Lumbar instability measurement report",
                            author="lumbar-instability", subject="Flexion-extension radiographs",
                            creator=f"lumbar-instability {__version__}")
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def _placement_text(film: Any) -> str:
    counts = film.placement_summary()
    marks = film.record.get("landmarks") or {}
    total = sum(sum(xy is not None for xy in (c or {}).values()) for c in marks.values())
    if not counts:
        return (f"{total} corners; how they were placed was not recorded (treated as manual "
                "for the uncertainty)." if total else "no corners.")
    order = list(PLACEMENT_MEANING)
    parts = ", ".join(f"{n} {m}" for m, n in sorted(
        counts.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99))
    clicked = counts.get("manual", 0) + counts.get("edited", 0)
    return (f"{total} corners ({parts}); "
            + (f"{clicked} clicked or moved by the reader." if clicked
               else "none clicked by a reader."))


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
