"""``lumbar-instability track FLEX EXT --landmarks IN.json --out OUT.json``.

Carries the bodies outlined on one film to the other by rigid registration of
each body's own pixels (measurement.md §7).  ``IN.json`` is a landmarks file
(``docs/landmarks-format.md``) with the corners of at least one film (a file
with only a ``flexion`` or only an ``extension`` object is accepted).
``OUT.json`` is a landmarks file with both films: each corner's ``placement``
(``tracked`` for the carried ones) and ``landmark_sd_mm``, each film's
``image_size`` (``[rows, columns]``), and under the target
film's ``tracking`` key the source film, the fit quality per level, the
failures with their reasons and the common scale.

The tracked bodies are cross-checked with a detection on the target film
(``app.autolandmarks.track_checked``): a body that tracking and detection put
on different vertebrae is not filled (vertebrae look alike: tracking can lock
onto a neighbour with a high correlation), and its reason is given; when the
detection names the whole column one level apart, or finds the patient facing
the other way, the labels need review (``tracking.needs_review`` and
``tracking.review_reasons`` in ``OUT.json``, a warning on stderr).  Labels and
facing are never changed.

Exit status 0 when every body was tracked and nothing needs review, 1 when
some were not or the labels need review (the file is still written, with the
reasons), 2 on bad input (nothing written).
"""

from __future__ import annotations

import argparse
import sys

HELP = "track the bodies outlined on one film to the other film (rigid registration per body)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``track``."""
    parser.add_argument("flexion", metavar="FLEX", help="flexion film (DICOM, PNG, JPEG, TIFF)")
    parser.add_argument("extension", metavar="EXT", help="extension film")
    parser.add_argument(
        "--landmarks", required=True, metavar="IN.json",
        help="landmarks file with the corners of at least one film",
    )  # fmt: skip
    parser.add_argument("--out", required=True, metavar="OUT.json", help="landmarks file written")
    parser.add_argument(
        "--from", dest="source", choices=("flexion", "extension"), default=None,
        help="film whose corners are carried (default: the one with more corners)",
    )  # fmt: skip
    parser.add_argument(
        "--replace", action="store_true",
        help="also replace levels the other film already has (default: fill missing levels only)",
    )  # fmt: skip
    parser.add_argument(
        "--no-scale", action="store_true",
        help="assume the same magnification on both films (no common scale estimated)",
    )  # fmt: skip


def _read_study(path: str):
    """The landmarks file; a film left out is read as a film without landmarks."""
    from app.jsonfile import read_json
    from app.landmarks_io import FILMS, parse_landmarks

    # strict JSON: duplicate keys, NaN, nesting 100000 deep and pipes are one-line errors
    doc = read_json(path)
    if isinstance(doc, dict) and any(name in doc for name in FILMS):
        for name in FILMS:
            doc.setdefault(name, {"landmarks": {}})
    return parse_landmarks(doc, path)


def run(args: argparse.Namespace) -> int:
    """Track, write ``--out``, print one line per body."""
    from dataclasses import replace

    import numpy as np

    from app.autolandmarks import track_study
    from app.dicom_io import load_film
    from app.errors import InputFileError, UserError
    from app.landmarks_io import write_landmarks

    study = _read_study(args.landmarks)
    films = {"flexion": load_film(args.flexion), "extension": load_film(args.extension)}
    for name, film in films.items():
        corners = study.film(name).corners
        rows, cols = film.shape
        finite = corners[np.isfinite(corners[..., 0])]
        if finite.size and (
            np.any(finite < -0.5) or np.any(finite[:, 0] > cols - 0.5) or np.any(finite[:, 1] > rows - 0.5)
        ):
            raise InputFileError(
                args.landmarks, f"key {name}.landmarks: a corner lies outside the {name} film "
                f"({cols}x{rows} pixels, {film.path})",
            )  # fmt: skip
    outcome_study, outcome = track_study(
        study, films["flexion"], films["extension"], source=args.source,
        replace_existing=args.replace, estimate_scale=not args.no_scale,
    )  # fmt: skip
    if not outcome:
        raise UserError(f"{args.flexion}, {args.extension}: tracking failed: {outcome.reason}")
    if not outcome.placed:
        reasons = "; ".join(f"{k}: {v}" for k, v in outcome.failures.items())
        raise UserError(f"{args.flexion}, {args.extension}: no body could be tracked: {reasons}")
    # each film's size in pixels, for the field-of-view check of the spacing (issue 14 §1)
    outcome_study = replace(outcome_study, **{
        name: outcome_study.film(name).with_image_size(film.shape) for name, film in films.items()
    })
    write_landmarks(args.out, outcome_study)
    for line in outcome.summary():
        print(line)
    for level, reason in outcome.failures.items():
        print(f"lumbar-instability: warning: {level} not tracked: {reason}", file=sys.stderr)
    review = outcome.details.get("review_reasons", [])
    for reason in review:
        print(f"lumbar-instability: warning: needs review: {reason}", file=sys.stderr)
    print(f"wrote {args.out}")
    return 1 if outcome.failures or review else 0

