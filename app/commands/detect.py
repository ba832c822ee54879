"""``lumbar-instability detect IMAGE... --out OUT.json``: find L1-S1 on single films.

Each film is searched for the lumbar bodies and S1, labelled from the sacrum
upwards, with a confidence per body (``docs/auto-landmarks.md``).  When exactly
one flexion and one extension film are given (their DICOM view), the two are
detected as a study (``app.autolandmarks.detect_study``): facing and labels must
agree, and a film refused or unsure gets its sure partner's bodies by guarded
tracking (placement ``tracked``).  ``OUT.json``:

- ``format`` ``"lumbar-instability-detections"``, ``format_version`` 1,
  ``levels``;
- ``films``: one object per image, in the order given, with the keys of a film
  of the landmarks format (``pixel_spacing_mm``, ``calibration_source``,
  ``landmarks``, ``placement`` = ``detected``, ``landmark_sd_mm``) plus
  ``image`` (``path``, ``sha256``), ``image_size`` (``[rows, columns]``),
  ``view``, ``detection`` (``confidence``
  per level, ``failures``, ``facing``, ``needs_review``, ``review_reasons``,
  and ``tracked_from`` / ``obtained`` for a film given its partner's bodies)
  and ``failure`` (the reason when nothing was found, else null);
- ``flexion`` and ``extension``: when exactly one film of each view was
  detected, the two films again, so that the file is a landmarks file that
  ``measure`` and ``track`` read directly.

Exit status 0 when every level was found on every film, 1 when some were not
(the file is still written, with the reasons), 2 when no film could be read.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "detect the L1-S1 bodies on lateral films and propose their corners"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``detect``."""
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="lateral films (DICOM, PNG, JPEG, TIFF)")
    parser.add_argument("--out", required=True, metavar="OUT.json", help="detections written (JSON)")


def _film_entry(path: str, film: Any, outcome: Any, levels: tuple[str, ...]) -> dict[str, Any]:
    import numpy as np

    from app.landmarks_io import FilmLandmarks, StudyLandmarks

    entry: dict[str, Any] = {"image": {"path": path, "sha256": film.sha256}, "view": str(film.view.value)}
    if not outcome:
        corners = np.full((len(levels), 4, 2), np.nan)
        placement, sd = None, None
    else:
        corners, placement, sd = outcome.corners, outcome.placement, outcome.sd_mm
    marks = FilmLandmarks(
        corners, film.calibration, placement, sd if sd is not None and np.any(np.isfinite(sd)) else None
    )
    marks = marks.with_image_size(film.shape)  # the field-of-view check needs it (issue 14 §1)
    doc = StudyLandmarks(levels, marks, marks).to_dict()["flexion"]
    entry.update(doc)
    entry["calibration_source"] = film.calibration.source.value
    if film.calibration.detail:
        entry["calibration_detail"] = film.calibration.detail
    if outcome:
        entry["detection"] = {
            "confidence": outcome.to_json()["quality"],
            "failures": outcome.failures,
            "facing": outcome.details.get("facing"),
            "needs_review": bool(outcome.details.get("needs_review", False)),
            "review_reasons": list(outcome.details.get("review_reasons", [])),
        }
        if outcome.details.get("tracked_from"):
            # a film detection refused or was unsure of, given its sure partner's bodies
            entry["detection"]["tracked_from"] = outcome.details["tracked_from"]
            entry["detection"]["obtained"] = outcome.details["obtained"]
        entry["failure"] = None
    else:
        entry["failure"] = outcome.reason
    return entry


def _pair_outcomes(loaded: list[Any], levels: tuple[str, ...]) -> dict[int, Any]:
    """Detections of the study's two films together (``detect_study``), by index in ``loaded``.

    Only when exactly one flexion and one extension film were read (their
    DICOM view); every other film is detected alone by the caller.
    """
    from app.autolandmarks import detect_study

    views = [getattr(getattr(f, "view", None), "value", None) for f in loaded]
    if views.count("flexion") != 1 or views.count("extension") != 1:
        return {}
    i, j = views.index("flexion"), views.index("extension")
    flex, ext = detect_study(loaded[i], loaded[j], levels=levels)
    return {i: flex, j: ext}


def run(args: argparse.Namespace) -> int:
    """Detect on every image, write ``--out``, print one line per film."""
    import json

    from app.atomic import atomic_write_text
    from app.autolandmarks import detect_film
    from app.dicom_io import load_film
    from app.errors import InputFileError, UserError
    from measure import DEFAULT_LEVELS

    levels = tuple(DEFAULT_LEVELS)
    films: list[dict[str, Any]] = []
    incomplete = False
    unreadable = 0
    loaded: list[Any] = []
    for path in args.images:
        try:
            loaded.append(load_film(path))
        except InputFileError as exc:
            loaded.append(exc)
    outcomes = _pair_outcomes(loaded, levels)
    for k, (path, film) in enumerate(zip(args.images, loaded, strict=True)):
        if isinstance(film, InputFileError):
            print(f"lumbar-instability: {film}", file=sys.stderr)
            films.append({"image": {"path": path, "sha256": None}, "failure": film.reason})
            unreadable += 1
            incomplete = True
            continue
        outcome = outcomes[k] if k in outcomes else detect_film(film, levels=levels)
        entry = _film_entry(path, film, outcome, levels)
        films.append(entry)
        if not outcome:
            print(f"{path}: {outcome.reason}")
            incomplete = True
            continue
        found = ", ".join(outcome.placed)
        how = outcome.details.get("obtained")
        print(f"{path}: {found} found, facing {outcome.details.get('facing')}" + (f", {how}" if how else ""))
        for reason in outcome.details.get("review_reasons", []):
            print(f"{path}: needs review: {reason}", file=sys.stderr)
        for level, reason in outcome.failures.items():
            print(f"{path}: {level}: {reason}", file=sys.stderr)
            incomplete = True
    if unreadable == len(args.images):
        raise UserError(f"{args.images[0]}: no film could be read")
    doc: dict[str, Any] = {
        "format": "lumbar-instability-detections",
        "format_version": 1,
        "levels": list(levels),
        "films": films,
    }
    views = [f.get("view") for f in films if f.get("failure") is None]
    if views.count("flexion") == 1 and views.count("extension") == 1:
        for entry in films:
            if entry.get("failure") is None and entry.get("view") in ("flexion", "extension"):
                doc[entry["view"]] = {
                    k: entry[k]
                    for k in ("pixel_spacing_mm", "calibration_source", "calibration_detail",
                              "landmarks", "placement", "landmark_sd_mm", "image_size")
                    if k in entry
                }
    atomic_write_text(args.out, json.dumps(doc, indent=2, allow_nan=False) + "\n")
    print(f"wrote {args.out}")
    return 1 if incomplete else 0
