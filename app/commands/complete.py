"""``lumbar-instability complete FLEX [EXT] --clicks CLICKS.json --out OUT.json``.

The one-click-per-body path (issue 12 §4): from one click inside each body
(or inside the first and the last body only, e.g. L1 and S1, the bodies in
between being found along the column) every corner is placed and refined
(``app.autolandmarks.complete_film``).  With two films, a film without clicks
gets its corners by tracking from the completed one; a film with clicks is
completed on its own, and both must then face the same way.

``CLICKS.json``::

    {"levels": ["L1", "L2", "L3", "L4", "L5", "S1"],        (optional; this is the default)
     "flexion":   {"L1": [412.0, 300.5], "S1": [520.0, 1410.0]},
     "extension": {"L1": [...], "L2": [...], ..., "S1": [...]}}

With one film the file may instead be a bare ``{"L1": [x, y], ...}``; the
film is written under its view (``--view``, else the film's own view, else
``flexion``).  ``OUT.json`` is a landmarks file (``docs/landmarks-format.md``)
with ``placement`` (``refined``, ``detected`` for a body whose outline could
not be refined, ``tracked``) and ``landmark_sd_mm`` per corner, each loaded
film's ``image_size`` (``[rows, columns]``), and under each
completed film a ``completion`` object: ``facing``, ``facing_evidence``,
``clicked``, ``found_along_column``, ``unrefined``, ``failures``.

The film tracked from the completed one is cross-checked with a detection on
that film (``app.autolandmarks.track_checked``): a body where tracking and
detection disagree is left unplaced, with its reason.

Exit status 0 when every body was placed and refined, 1 when some were not or
the tracked film's labels need review (the file is still written, with the
reasons), 2 on bad input (nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "all the corners from one click inside each body (or inside L1 and S1 only)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``complete``."""
    parser.add_argument("films", nargs="+", metavar="FILM", help="FLEX [EXT]: one or two films (DICOM, PNG, JPEG, TIFF)")
    parser.add_argument("--clicks", required=True, metavar="CLICKS.json", help="one point inside each clicked body")
    parser.add_argument("--out", required=True, metavar="OUT.json", help="landmarks file written")
    parser.add_argument(
        "--facing", choices=("left", "right"), default=None,
        help="side of the image the patient faces (default: from the anatomy)",
    )  # fmt: skip
    parser.add_argument(
        "--view", choices=("flexion", "extension"), default=None,
        help="with one film: the key it is written under (default: its view, else flexion)",
    )  # fmt: skip


def _point(value: Any, key: str, path: str) -> tuple[float, float]:
    from app.errors import InputFileError

    ok = (
        isinstance(value, list | tuple) and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )  # fmt: skip
    if not ok:
        raise InputFileError(path, f"key {key}: expected [x, y] numbers, got {json.dumps(value)[:40]}")
    return float(value[0]), float(value[1])


def read_clicks(path: str, n_films: int) -> tuple[tuple[str, ...], dict[str, dict[str, tuple[float, float]]]]:
    """Levels and ``{film key: {level: (x, y)}}`` of a clicks file; one line naming the key on error."""
    from app.errors import InputFileError
    from app.jsonfile import read_json
    from measure import DEFAULT_LEVELS, level_sort_key

    doc = read_json(path)  # duplicate keys, NaN, overflow: one line naming the key
    if not isinstance(doc, dict):
        raise InputFileError(path, "expected a JSON object")
    levels = doc.get("levels", list(DEFAULT_LEVELS))
    if not isinstance(levels, list) or len(levels) < 2 or not all(isinstance(v, str) for v in levels):
        raise InputFileError(path, "key levels: expected a list of at least two level labels")
    for label in levels:
        try:
            level_sort_key(label)
        except ValueError:
            raise InputFileError(path, f"key levels: {label!r} is not a level label (e.g. L4, S1)") from None
    films = {k: v for k, v in doc.items() if k in ("flexion", "extension")}
    if not films:
        if n_films != 1:
            raise InputFileError(path, "expected a 'flexion' and/or 'extension' object of clicks")
        films = {"": {k: v for k, v in doc.items() if k != "levels"}}
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name, clicks in films.items():
        prefix = f"{name}." if name else ""
        if isinstance(clicks, dict) and isinstance(clicks.get("clicks"), dict):
            clicks = clicks["clicks"]  # the batch/session layout: {"flexion": {"clicks": {...}}}
            prefix += "clicks."
        if not isinstance(clicks, dict):
            raise InputFileError(path, f"key {name}: expected {{level: [x, y]}}")
        for level in clicks:
            if level not in levels:
                raise InputFileError(path, f"key {prefix}{level}: not one of the levels {', '.join(levels)}")
        out[name] = {level: _point(v, f"{prefix}{level}", path) for level, v in clicks.items()}
        if levels[0] not in out[name] or levels[-1] not in out[name]:
            raise InputFileError(
                path, f"key {name or 'clicks'}: the first and the last level ({levels[0]}, {levels[-1]}) "
                "must be clicked; the bodies between may be left out",
            )  # fmt: skip
    return tuple(levels), out


def _film_landmarks(outcome: Any, film: Any) -> Any:
    import numpy as np

    from app.landmarks_io import FilmLandmarks

    sd = outcome.sd_mm if np.any(np.isfinite(outcome.sd_mm)) else None
    extra = {"completion": {**{k: v for k, v in outcome.details.items()}, "failures": dict(outcome.failures)}}
    marks = FilmLandmarks(outcome.corners, film.calibration, outcome.placement, sd, extra)
    return marks.with_image_size(film.shape)  # for the field-of-view check (issue 14 §1)


def run(args: argparse.Namespace) -> int:
    """Complete the clicked films, track the others, write ``--out``."""
    import numpy as np

    from app.autolandmarks import complete_film, track_study
    from app.dicom_io import load_film
    from app.errors import InputFileError, UserError
    from app.landmarks_io import FilmLandmarks, StudyLandmarks, write_landmarks

    if len(args.films) > 2:
        raise UserError("complete: give one film, or a flexion and an extension film")
    levels, clicks = read_clicks(args.clicks, len(args.films))
    loaded = [load_film(p) for p in args.films]
    if len(loaded) == 1:
        view = args.view or (loaded[0].view.value if loaded[0].view.value in ("flexion", "extension") else "flexion")
        if "" in clicks:
            clicks = {view: clicks.pop("")}
        if set(clicks) != {view}:
            raise InputFileError(args.clicks, f"one film given ({view}): expected clicks for {view} only")
        names = {view: (loaded[0], args.films[0])}
    else:
        names = {"flexion": (loaded[0], args.films[0]), "extension": (loaded[1], args.films[1])}
    for name, pts in clicks.items():
        film, path = names[name]
        rows, cols = film.shape
        for level, (x, y) in pts.items():
            if not (-0.5 <= x <= cols - 0.5 and -0.5 <= y <= rows - 0.5):
                raise InputFileError(
                    args.clicks, f"key {name}.{level}: the click lies outside the {name} film ({cols}x{rows}, {path})"
                )
    outcomes: dict[str, Any] = {}
    facing = args.facing
    for name in ("flexion", "extension"):
        if name in clicks:
            outcomes[name] = complete_film(names[name][0], clicks[name], levels=levels, facing=facing)
            out = outcomes[name]
            if not out:
                raise UserError(f"{names[name][1]}: {out.reason}")
    if facing is None and len(outcomes) == 2:
        faced = {n: o.details["facing"] for n, o in outcomes.items()}
        if faced["flexion"] != faced["extension"]:
            sure = [n for n, o in outcomes.items() if o.details["facing_evidence"].get("sure")]
            if len(sure) != 1:
                raise UserError(
                    f"{args.films[0]}, {args.films[1]}: the two films seem to face opposite ways and the "
                    "anatomy does not settle it: give --facing left or --facing right"
                )
            other = "extension" if sure[0] == "flexion" else "flexion"
            outcomes[other] = complete_film(
                names[other][0], clicks[other], levels=levels, facing=faced[sure[0]]
            )
    empty = FilmLandmarks(np.full((len(levels), 4, 2), np.nan))
    films = {
        n: _film_landmarks(outcomes[n], names[n][0]) if n in outcomes
        else empty.with_image_size(names[n][0].shape if n in names else None)
        for n in ("flexion", "extension")
    }
    study = StudyLandmarks(levels, films["flexion"], films["extension"])
    tracked = None
    if len(names) == 2 and len(outcomes) == 1:
        study, tracked = track_study(study, names["flexion"][0], names["extension"][0])
        if not tracked:
            print(f"lumbar-instability: warning: tracking to the other film failed: {tracked.reason}", file=sys.stderr)
    write_landmarks(args.out, study)
    incomplete = False
    for name, out in outcomes.items():
        ev = out.details["facing_evidence"]
        print(
            f"{names[name][1]} ({name}): {len(out.placed)} bodies placed, "
            f"{int(np.sum(out.placement[:, 0] == 'refined'))} refined, facing {out.details['facing']}"
            + ("" if ev.get("sure") else " (the anatomy does not settle it: check it)")
        )
        for level, reason in {**out.failures, **out.details["unrefined"]}.items():
            print(f"lumbar-instability: warning: {name} {level}: {reason}", file=sys.stderr)
            incomplete = True
    if tracked:
        print(f"tracked to the other film: {len(tracked.placed)} bodies")
        for level, reason in tracked.failures.items():
            print(f"lumbar-instability: warning: tracked film {level}: {reason}", file=sys.stderr)
        for reason in tracked.details.get("review_reasons", []):
            print(f"lumbar-instability: warning: needs review: {reason}", file=sys.stderr)
        incomplete |= bool(tracked.failures) or bool(tracked.details.get("needs_review"))
    elif tracked is not None:
        incomplete = True
    print(f"wrote {args.out}")
    return 1 if incomplete else 0
