"""Coverage of the 95 % intervals on phantom studies no test uses (issue 11 §2).

Run by hand (tens of minutes; the corners are cached, the fit and tables take seconds)::

    .venv/bin/python benchmarks/bench_coverage.py --cache /tmp/coverage --fit --markdown

A 95 % interval must contain the truth about 95 % of the time (target 93-97 %).
For every placement method the corners are produced as the viewer produces them
(``app.autolandmarks`` with the film's calibration: the per-corner SDs the app
would store), measured with ``measure.segmental_motion`` with the SDs of
``measure.placement_uncertainty`` (the measured error model,
``measure.ERROR_MODEL``), and each segment's interval of translation (mm),
translation (% of endplate depth) and angulation (°) is checked against the
motion of the true corners.

Methods:

- ``manual``: true corners moved by a Gaussian of the manual SD (0.6 mm per
  axis, ``measure.PlacementMethod.MANUAL``, from the literature on reader
  error); it checks the propagation only (the error model is the stated one);
- ``refined``: true corners moved by 1.5 mm per axis (quick clicks), then
  ``app.autolandmarks.refine_film`` on both films (a body it cannot refine
  keeps the clicks: ``manual`` with SD 1.5 mm);
- ``tracked``: true flexion corners (exact, SD 0; a body with a corner off the
  film is not given) carried to the extension film by
  ``app.autolandmarks.track_film``, whose per-body SD (``measure.tracking_sd``
  of the registration's correlation) is restated from the cached correlation
  with the current model;
- ``detected``: ``app.autolandmarks.detect_film`` on both films from nothing
  (a body at the wrong level is not excluded: that is the point).

Seeds (no test uses any): tuning 82000-82059 and realistic tuning 82500-82547
(``--fit`` fits the tracking SD model and the error model of each automatic
method on these only, each kind of phantom weighing the same), reporting
83000-83079 and realistic reporting 83500-83571 (never used to choose
anything); ``--studies`` takes other counts (each set holds 100 seeds).
Standard studies cycle through facing, rotation 0/15°,
magnification change 1.00/1.10 and added noise 0/2/5 %
(``benchmarks/_phantom_setup.py``, shared with ``bench_accuracy.py``);
realistic ones are ``make_study(realistic=True)`` (their own anatomy, motion
and film look) with the same facing and noise cycle.

``--cache DIR`` keeps the rendered films and every method's corners, so that
the fit and the tables take seconds; after a change to one method,
``--redo detected`` (etc.) re-runs only that method on the cached films.
Collecting in parallel: one process per set with ``--only SET``.
Figures and the fitted models: README "Coverage of the 95 % intervals".
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.autolandmarks import detect_study, refine_film, track_film, tracked_sd_px
from app.phantom import MEASURED_LEVELS
from benchmarks._phantom_setup import PreparedStudy, prepare
from measure import (
    ERROR_MODEL,
    TRACKING_SD_MODEL,
    Z95,
    Calibration,
    CalibrationSource,
    ErrorModel,
    PlacementMethod,
    TrackingSDModel,
    placement_uncertainty,
    segmental_motion,
    wilson_interval,
)

SETS = {
    "tuning": (range(82000, 82060), False),
    "realistic-tuning": (range(82500, 82600), True),
    "reporting": (range(83000, 83100), False),
    "realistic-reporting": (range(83500, 83600), True),
}
DEFAULT_STUDIES = (60, 48, 80, 72)
"""How many studies of each set are used by default (``--studies`` to change; the README's figures)."""
METHODS = ("manual", "refined", "tracked", "detected")
AUTOMATIC = ("refined", "tracked", "detected")
QUANTITIES = ("translation_mm", "translation_pct", "angulation_deg")
SD_NAMES = ("translation_sd_mm", "translation_sd_pct", "angulation_sd_deg")
TRANSLATION = ("translation_mm", "translation_pct")
CLICK_SD_MM = 1.5
AS_STORED = {m: ErrorModel() for m in PlacementMethod}
"""Independent corner SDs exactly as the app stores them (no error model)."""


def _sd(result, fallback: float) -> np.ndarray:
    sd = np.asarray(result.sd_mm, dtype=float)
    return np.where(np.isfinite(sd), sd, fallback)


def corners_by_method(p: PreparedStudy, methods=METHODS) -> dict[str, tuple]:
    """{method: (flex corners px, ext corners px, flex SD mm, ext SD mm)} as the app stores them.

    ``detected`` also gets ``(..., needs_review)``: the study-level check of
    :func:`app.autolandmarks.detect_study` (what batch uses) flagged it.
    """
    levels = list(MEASURED_LEVELS)
    sp = dict(zip("fe", p.spacing_mm, strict=True))
    cal = {k: Calibration(v, v, CalibrationSource.CALIBRATED, "phantom") for k, v in sp.items()}
    img = dict(zip("fe", p.images, strict=True))
    true = dict(zip("fe", p.truth, strict=True))
    rng = p.rng
    out = {}
    manual = PlacementMethod.MANUAL.default_sd_mm
    # the random draws happen whichever methods are run, so that each method sees the same clicks
    clicked = [true[k] + rng.normal(0, manual / sp[k], true[k].shape) for k in "fe"]
    clicks = {k: true[k] + rng.normal(0, CLICK_SD_MM / sp[k], true[k].shape) for k in "fe"}
    if "manual" in methods:
        out["manual"] = (*clicked, np.full((6, 4), manual), np.full((6, 4), manual))
    if "refined" in methods:
        refined, sds = [], []
        for k in "fe":
            r = refine_film(img[k], clicks[k], levels=levels, calibration=cal[k])
            if r:
                ok = np.isfinite(r.corners).all(axis=-1)
                refined.append(np.where(ok[..., None], r.corners, clicks[k]))
                sds.append(np.where(ok, _sd(r, PlacementMethod.REFINED.default_sd_mm), np.nan))
            else:
                refined.append(clicks[k])
                sds.append(np.full((6, 4), np.nan))
        # a body refinement could not place keeps the clicks: a reader's corners, 1.5 mm
        out["refined"] = (*refined, *sds)
    if "tracked" in methods:
        # the reader outlines the bodies on the film: a body with a corner off the film is not given
        h, w = img["f"].shape
        off = ((true["f"] < -0.5) | (true["f"] > np.array([w - 0.5, h - 0.5]))).any(axis=(-1, -2))
        outline = np.where(off[:, None, None], np.nan, true["f"])
        t = track_film(img["f"], outline, img["e"], levels=levels, target_calibration=cal["e"])
        if t:
            out["tracked"] = (outline, t.corners, np.zeros((6, 4)),
                              _sd(t, PlacementMethod.TRACKED.default_sd_mm), False,
                              {"placement": (np.full((6, 4), "manual", object), _placement(t)),
                               "quality": (np.full(6, np.nan), np.asarray(t.quality, float)),
                               "sd_px": (np.zeros((6, 4)), np.asarray(t.sd_px, float))})
    if "detected" in methods:
        det = detect_study(img["f"], img["e"], levels=levels, calibrations=(cal["f"], cal["e"]))
        if all(det):
            review = any(bool(d.details.get("needs_review")) for d in det)
            out["detected"] = (det[0].corners, det[1].corners,
                               _sd(det[0], PlacementMethod.DETECTED.default_sd_mm),
                               _sd(det[1], PlacementMethod.DETECTED.default_sd_mm), review,
                               {"placement": tuple(_placement(d) for d in det),
                                "quality": tuple(np.asarray(d.quality, float) for d in det),
                                "label_confidence": tuple(
                                    np.array([d.details.get("label_confidence", {}).get(lv, np.nan)
                                              for lv in levels], float) for d in det),
                                "film_review": tuple(bool(d.details.get("needs_review")) for d in det),
                                "sd_px": tuple(np.asarray(d.sd_px, float) for d in det)})
    return out


def _placement(result) -> np.ndarray:
    """Placement per corner as the result states it (a detected study may hold tracked bodies)."""
    return np.asarray(result.placement, dtype=object)


def collect(seeds, scale: float, realistic: bool, verbose: bool, methods=METHODS,
            film_cache: Path | None = None, start: int = 0) -> list[dict]:
    """Raw corners of ``methods`` on every study (the expensive part; cached).

    ``start``: index of ``seeds[0]`` in its set (the cycle of conditions).
    """
    records = []
    t0 = time.time()
    for k, seed in enumerate(seeds, start):
        p = prepare(seed, k, scale, realistic, film_cache)
        records.append({"seed": seed, "realistic": realistic, "spacing_mm": p.spacing_mm,
                        "truth": p.truth, "methods": corners_by_method(p, methods)})
        if verbose:
            print(f"seed {seed} ({p.label}): {time.time() - t0:.0f} s", file=sys.stderr)
    return records


# --------------------------------------------------------------------------- evaluation


def _flagged(record: dict, method: str) -> bool:
    """The method's own check marked this study for review (detection only)."""
    got = record["methods"].get(method)
    return got is not None and len(got) > 4 and bool(got[4])


def _extras(record: dict, method: str) -> dict:
    """Per-body figures the method reported besides its corners (quality, placement, ...)."""
    got = record["methods"].get(method)
    return got[5] if got is not None and len(got) > 5 else {}


def _batch(records: list[dict], method: str, unflagged: bool = False) -> dict | None:
    """Every study that has ``method``'s corners, stacked for one ``segmental_motion`` call.

    Placement per corner: the method, except corners the method could not
    place (refinement keeps the clicks: ``manual`` with the clicks' 1.5 mm).
    ``unflagged``: leave out studies the method marked for review.
    """
    rows = [r for r in records if method in r["methods"] and not (unflagged and _flagged(r, method))]
    if not rows:
        return None
    cf, ce, sf, se = (np.stack([np.asarray(r["methods"][method][i], float) for r in rows]) for i in range(4))
    placement, stated = {}, {}
    for i, (key, corners, sd) in enumerate((("f", cf, sf), ("e", ce, se))):
        unplaced = ~np.isfinite(sd)
        place = np.full(sd.shape, method, dtype=object)
        if method == "tracked" and key == "f":
            place[...] = "manual"  # the reader's exact outline: SD 0
        for j, r in enumerate(rows):  # as the result stated it (a detected study may hold tracked bodies)
            stated_place = _extras(r, method).get("placement")
            if stated_place is not None:
                place[j] = np.where(stated_place[i] == "", place[j], stated_place[i])
        place[unplaced] = "manual"
        placement[key] = place
        stated[key] = np.where(unplaced, CLICK_SD_MM, sd)
        corners[~np.isfinite(corners).all(axis=-1)] = np.nan
    spacing = np.array([r["spacing_mm"] for r in rows], float)
    truth_f = np.stack([r["truth"][0] for r in rows])
    truth_e = np.stack([r["truth"][1] for r in rows])
    return {"cf": cf, "ce": ce, "placement": placement, "stated": stated, "spacing": spacing,
            "truth": (truth_f, truth_e), "studies": len(rows)}


def errors_and_sds(batch: dict, models: dict | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{quantity: (error, SD)} over every measurable segment of ``batch``.

    ``models``: error model per method (:data:`AS_STORED` for the corner SDs as stored).
    """
    sp = batch["spacing"]
    spacing = {"flexion_spacing_mm": np.repeat(sp[:, :1], 2, 1), "extension_spacing_mm": np.repeat(sp[:, 1:], 2, 1)}
    truth = segmental_motion(*batch["truth"], **spacing, levels=MEASURED_LEVELS)
    kwargs = {}
    for key, film in (("f", "flexion"), ("e", "extension")):
        u = placement_uncertainty(batch["placement"][key], batch["stated"][key], models)
        kwargs.update(u.motion_kwargs(film))
    out = {}
    try:
        r = segmental_motion(batch["cf"], batch["ce"], **spacing, levels=MEASURED_LEVELS, **kwargs)
    except ValueError:
        # a degenerate study (e.g. detection put two corners together): measure one by one
        parts = []
        for i in range(batch["studies"]):
            one = {k: v[i] for k, v in kwargs.items()}
            sp_i = {k: v[i] for k, v in spacing.items()}
            try:
                parts.append(segmental_motion(batch["cf"][i], batch["ce"][i], **sp_i,
                                              levels=MEASURED_LEVELS, **one))
            except ValueError:
                parts.append(None)
        for q, sd_name in zip(QUANTITIES, SD_NAMES, strict=True):
            err = [getattr(p, q) - getattr(truth, q)[i] for i, p in enumerate(parts) if p is not None]
            sd = [getattr(p, sd_name) for p in parts if p is not None]
            err, sd = np.concatenate(err), np.concatenate(sd)
            ok = np.isfinite(err) & np.isfinite(sd)
            out[q] = (err[ok], sd[ok])
        return out
    for q, sd_name in zip(QUANTITIES, SD_NAMES, strict=True):
        err = (getattr(r, q) - getattr(truth, q)).ravel()
        sd = getattr(r, sd_name).ravel()
        ok = np.isfinite(err) & np.isfinite(sd)
        out[q] = (err[ok], sd[ok])
    return out


def coverage(err: np.ndarray, sd: np.ndarray) -> float:
    """Share of segments whose 95 % interval (value ± 1.96 SD) contains the truth."""
    return float(np.mean(np.abs(err) <= Z95 * sd)) if err.size else float("nan")


def _with(models: dict, method: str, **change) -> dict:
    return {**models, PlacementMethod(method): replace(models[PlacementMethod(method)], **change)}


def _smallest(f, lo: float, hi: float, target: float = 0.95, steps: int = 30) -> float:
    """Smallest x in [lo, hi] with f(x) >= target (f non-decreasing); hi when none."""
    if f(lo) >= target:
        return lo
    if f(hi) < target:
        return hi
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if f(mid) >= target else (mid, hi)
    return hi


STRUCTURE = {"refined": "anisotropic", "tracked": "rigid", "detected": "anisotropic"}
"""Which error structure each method's fit uses, chosen from the corner errors of
the tuning studies (:func:`rigid_decomposition`): a tracked body moves as one
(its two endplates' angle errors correlate at 1.00), so its error is a body
shift and rotation plus a residual; refined and detected corners err
independently (correlation -0.1 to -0.2) but more across the endplate than
along it for detection, so their SD is split along/across the endplate."""


def _angle_deg(v: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(v[..., 1], v[..., 0]))


def rigid_decomposition(records: list[dict], method: str) -> dict:
    """Corner errors of ``method``'s bodies split into a rigid part and a residual (mm).

    Per body with four corners: least-squares shift (mean error) and rotation
    about the centroid, residual = the rest.  Returns RMS and robust
    (1.4826 × median |x|) shift per axis and rotation (°), the residual scale
    relative to the stated SDs (``corner_factor``, from the median of the
    per-body ratio: robust to wrong-level bodies), the correlation of the
    angle errors of a body's two endplates (1 = the body moves as one), and
    the RMS corner error along x and y of the film.
    """
    from scipy.stats import chi2

    shifts, rots, ratios, tilts = [], [], [], []
    for r in records:
        if method not in r["methods"]:
            continue
        got = r["methods"][method]
        for i, (corners, sd) in enumerate(((got[0], got[2]), (got[1], got[3]))):
            if method == "tracked" and i == 0:
                continue
            sp = r["spacing_mm"][i]
            truth = r["truth"][i]
            for v in range(truth.shape[0]):
                c, t, s = corners[v] * sp, truth[v] * sp, sd[v]
                if not (np.isfinite(c).all() and np.isfinite(t).all() and np.isfinite(s).all()):
                    continue
                e = c - t
                shift = e.mean(axis=0)
                rel = t - t.mean(axis=0)
                perp = np.stack([-rel[:, 1], rel[:, 0]], axis=1)
                rot = float(np.sum(perp * (e - shift)) / np.sum(rel * rel))
                res = e - shift - rot * perp
                shifts.append(shift)
                rots.append(np.degrees(rot))
                ratios.append(float(np.sum(res * res) / np.sum(s * s)))
                sup = _angle_deg(c[0] - c[1]) - _angle_deg(t[0] - t[1])
                inf = _angle_deg(c[3] - c[2]) - _angle_deg(t[3] - t[2])
                tilts.append(((sup + 180) % 360 - 180, (inf + 180) % 360 - 180))
    if not shifts:
        return {}
    shifts, rots, ratios, tilts = np.array(shifts), np.array(rots), np.array(ratios), np.array(tilts)
    # per body sum of squared residuals ~ k² (5/4) sum(s²) chi²_5 / 5 (8 coordinates, 3 fitted)
    k = float(np.sqrt(np.median(ratios) / (1.25 * chi2.median(5) / 5)))
    mad = 1.4826
    return {
        "bodies": len(rots),
        "shift_rms_mm": round(float(np.sqrt(np.mean(shifts**2))), 4),
        "shift_robust_mm": round(float(mad * np.median(np.abs(shifts))), 4),
        "rotation_rms_deg": round(float(np.sqrt(np.mean(rots**2))), 4),
        "rotation_robust_deg": round(float(mad * np.median(np.abs(rots))), 4),
        "residual_factor": round(k, 4),
        "endplate_angle_error_correlation": round(float(np.corrcoef(tilts.T)[0, 1]), 3),
    }


def restate_tracked_sd(records: list[dict], model: TrackingSDModel) -> None:
    """Set the stored SD of every tracked body to what the app stores with ``model``.

    The app stores :func:`app.autolandmarks.tracked_sd_px` (from the body's
    registration correlation, kept in the cache); restating it lets a fitted
    :class:`measure.TrackingSDModel` be evaluated without tracking again.
    """
    for r in records:
        got = r["methods"].get("tracked")
        quality = _extras(r, "tracked").get("quality")
        if got is None or quality is None:
            continue
        sd = tracked_sd_px(got[1], quality[1], model) * r["spacing_mm"][1]
        r["methods"]["tracked"] = (got[0], got[1], got[2], sd, *got[4:])


def fit_tracking_sd(records: list[dict]) -> tuple[TrackingSDModel, dict]:
    """The :class:`measure.TrackingSDModel` of the tracked bodies of ``records`` (tuning seeds only).

    Maximum likelihood: each tracked body's shift error (the mean of its corner
    errors, per axis, as a fraction of its true endplate depth) is taken as
    Gaussian with SD ``fraction * (1 - quality) ** power``.
    """
    from scipy.optimize import minimize

    err, mismatch = [], []
    floor = TRACKING_SD_MODEL.min_mismatch
    for r in records:
        got = r["methods"].get("tracked")
        quality = _extras(r, "tracked").get("quality")
        if got is None or quality is None:
            continue
        truth, corners = r["truth"][1], got[1]
        for v in range(truth.shape[0]):
            ok = np.isfinite(corners[v]).all(axis=1) & np.isfinite(truth[v]).all(axis=1)
            if ok.sum() < 2 or not np.isfinite(quality[1][v]):
                continue
            t = truth[v]
            sup = np.linalg.norm(t[0] - t[1])
            inf = np.linalg.norm(t[3] - t[2])
            depth = (sup + inf) / 2 if np.isfinite(inf) else sup
            err.append((corners[v][ok] - t[ok]).mean(axis=0) / depth)
            mismatch.append(max(1.0 - quality[1][v], floor))
    if not err:
        return TRACKING_SD_MODEL, {}
    e2 = np.sum(np.square(err), axis=1)
    log_u = np.log(mismatch)

    def nll(p: np.ndarray) -> float:
        log_sd = p[0] + p[1] * log_u
        return float(np.sum(e2 / (2 * np.exp(2 * log_sd)) + 2 * log_sd))

    fit = minimize(nll, np.array([np.log(1e-3), 0.5]), method="Nelder-Mead",
                   options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 4000})
    model = TrackingSDModel(fraction=round(float(np.exp(fit.x[0])), 5), power=round(float(fit.x[1]), 3),
                            min_mismatch=floor)
    z = np.asarray(err) / (model.fraction * np.asarray(mismatch) ** model.power)[:, None]
    return model, {"bodies": len(err), "rms_z_per_axis": round(float(np.sqrt(np.mean(z**2))), 3)}


def fit_error_model(records: list[dict], method: str, models: dict) -> tuple[ErrorModel, dict]:
    """The error model of ``method`` whose intervals cover 95 % on ``records`` (tuning seeds only).

    Coverage here is the mean of the standard and the realistic studies' coverage
    (each kind counts the same).

    ``rigid`` (:data:`STRUCTURE`): the residual factor of the rigid decomposition,
    then the smallest rotation SD that brings angulation to 95 % (a rotation
    leaves depths alone), then the smallest shift SD that brings translation
    (mean of mm and %) to 95 %.  ``anisotropic``: the smallest factor across
    the endplate that brings angulation to 95 % (angles see nothing else), then
    the smallest factor along it that brings translation to 95 %.
    """
    # each kind of phantom (standard, realistic) weighs the same, whatever its number of
    # segments: the target holds for each kind, not for their mixture
    kinds = [b for b in (_batch([r for r in records if r["realistic"] == k], method) for k in (False, True))
             if b is not None]
    if not kinds:
        return models[PlacementMethod(method)], {}
    decomposition = rigid_decomposition(records, method)

    def cov(model: ErrorModel, quantities) -> float:
        use = {**models, PlacementMethod(method): model}
        per_kind = [errors_and_sds(batch, use) for batch in kinds]
        return float(np.mean([coverage(*data[q]) for data in per_kind for q in quantities]))

    if STRUCTURE[method] == "rigid":
        # the shared terms scale with the body's stated SD (tracking's per-body SD)
        base = ErrorModel(corner_factor=decomposition.get("residual_factor", 1.0))
        rot = _smallest(lambda x: cov(replace(base, rotation_deg_per_mm=x), ("angulation_deg",)), 0.0, 500.0)
        base = replace(base, rotation_deg_per_mm=rot)
        shift = _smallest(lambda x: cov(replace(base, shift_factor=x), TRANSLATION), 0.0, 50.0)
        model = replace(base, shift_factor=shift)
    else:
        across = _smallest(lambda x: cov(ErrorModel(corner_factor=1.0, across_factor=x), ("angulation_deg",)),
                           0.0, 50.0)
        along = _smallest(lambda x: cov(ErrorModel(corner_factor=x, across_factor=across), TRANSLATION),
                          0.0, 50.0)
        model = ErrorModel(corner_factor=along, across_factor=across)
    return model, decomposition


# --------------------------------------------------------------------------- driver


def records_of(name: str, n: int, scale: float, cache: Path | None, verbose: bool,
               redo: tuple[str, ...] = ()) -> list[dict]:
    """The first ``n`` studies of seed set ``name``, from the cache when there.

    ``redo``: methods to run again on cached studies (after a change to them).
    """
    seeds, realistic = SETS[name]
    path = None if cache is None else cache / f"{name}-{n}-{scale:g}.pkl"
    films = None if cache is None else cache / "films"
    shorter = None if cache is None else sorted(
        (int(f.name.split("-")[-2]), f) for f in cache.glob(f"{name}-*-{scale:g}.pkl")
        if f.name.split("-")[-2].isdigit() and int(f.name.split("-")[-2]) < n)
    if path is not None and not path.exists() and shorter:
        # more studies of the same set than cached: keep the cached ones, collect the rest
        m, found = shorter[-1]
        records = pickle.loads(found.read_bytes())
        records += collect(seeds[m:n], scale, realistic, verbose, METHODS, films, start=m)
        path.write_bytes(pickle.dumps(records))
    if path is not None and path.exists():
        records = pickle.loads(path.read_bytes())
        if not redo:
            return records
        fresh = collect(seeds[:n], scale, realistic, verbose, redo, films)
        for old, new in zip(records, fresh, strict=True):
            for m in redo:
                old["methods"].pop(m, None)
            old["methods"].update(new["methods"])
    else:
        records = collect(seeds[:n], scale, realistic, verbose, METHODS, films)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(records))
    return records


def figures(records: list[dict], models: dict) -> dict:
    """Per method: segments, coverage and its Wilson 95 % CI, RMS(error / SD), per quantity.

    Detection has two rows: every study, and the studies it did not mark for
    review (batch counts only those; the viewer shows a review banner).
    """
    out = {}
    rows = [(m, m, False) for m in METHODS] + [("detected, not flagged for review", "detected", True)]
    for label, m, unflagged in rows:
        batch = _batch(records, m, unflagged)
        if batch is None:
            continue
        data = errors_and_sds(batch, models)
        row = {"studies": batch["studies"], "segments": int(data["angulation_deg"][0].size)}
        for q in QUANTITIES:
            err, sd = data[q]
            hits = int(np.sum(np.abs(err) <= Z95 * sd))
            lo, hi = wilson_interval(hits, err.size)
            with np.errstate(divide="ignore", invalid="ignore"):
                z = err / sd
            row[q] = {"coverage": hits / err.size if err.size else float("nan"), "ci95": [float(lo), float(hi)],
                      "n": int(err.size), "rms_z": float(np.sqrt(np.nanmean(z[np.isfinite(z)] ** 2)))}
        out[label] = row
    return out


def table(fig: dict, label: str) -> list[str]:
    lines = [f"| method ({label}) | studies | segments | translation mm | translation % | angulation |",
             "|---|---|---|---|---|---|"]
    for m, row in fig.items():
        cells = []
        for q in QUANTITIES:
            c = row[q]
            flag = "" if 0.93 <= c["coverage"] <= 0.97 else "**"
            cells.append(f"{flag}{100 * c['coverage']:.1f} %{flag} [{100 * c['ci95'][0]:.0f}-"
                         f"{100 * c['ci95'][1]:.0f}]")
        lines.append(f"| {m} | {row['studies']} | {row['segments']} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--cache", type=Path, help="keep the corners here (re-runs take seconds)")
    parser.add_argument("--fit", action="store_true",
                        help="fit the automatic methods' error models on the tuning seeds and print them")
    parser.add_argument("--fit-on", choices=("standard", "realistic", "both"), default="both",
                        help="which tuning studies the fit uses")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--studies", type=int, nargs=4, metavar=("TUNE", "RTUNE", "REPORT", "RREPORT"),
                        default=list(DEFAULT_STUDIES), help="how many of each seed set")
    parser.add_argument("--only", choices=tuple(SETS), help="only collect this set (for parallel runs)")
    parser.add_argument("--redo", nargs="+", choices=METHODS, default=(),
                        help="run these methods again on the cached studies")
    args = parser.parse_args()
    counts = dict(zip(SETS, args.studies, strict=True))
    t0 = time.time()
    if args.only:
        records_of(args.only, counts[args.only], args.scale, args.cache, not args.quiet, tuple(args.redo))
        return
    recs = {k: records_of(k, n, args.scale, args.cache, not args.quiet) for k, n in counts.items() if n}
    for rs in recs.values():  # tracked SDs as the app stores them now (the model may be newer than the cache)
        restate_tracked_sd(rs, TRACKING_SD_MODEL)
    result: dict = {"counts": counts, "scale": args.scale, "models": {m.value: asdict(v) for m, v in ERROR_MODEL.items()}}
    lines = []
    models = dict(ERROR_MODEL)
    if args.fit:
        pool = {"standard": ["tuning"], "realistic": ["realistic-tuning"],
                "both": ["tuning", "realistic-tuning"]}[args.fit_on]
        tuning = [r for k in pool for r in recs.get(k, [])]
        fitted = {}
        tracking_model, info = fit_tracking_sd(tuning)
        fitted["tracking_sd"] = {"model": asdict(tracking_model), **info}
        lines.append(f"tracking SD: {tracking_model}  ({json.dumps(info)})")
        for rs in recs.values():
            restate_tracked_sd(rs, tracking_model)
        for m in AUTOMATIC:
            model, decomposition = fit_error_model(tuning, m, models)
            models[PlacementMethod(m)] = model
            fitted[m] = {"model": asdict(model), "rigid_decomposition": decomposition}
            lines.append(f"{m}: {model}  (tuning corner errors: {json.dumps(decomposition)})")
        result["fitted"] = fitted
        lines.append("")
    for name in ("tuning", "realistic-tuning", "reporting", "realistic-reporting"):
        if name not in recs:
            continue
        for label, use in (("SDs as stored", AS_STORED), ("error model", models)):
            fig = figures(recs[name], use)
            result.setdefault(name, {})[label] = fig
            lines += [*table(fig, f"{name}, {label}"), ""]
    seeds = ", ".join(f"{k} {SETS[k][0].start}-{SETS[k][0].start + n - 1}" for k, n in counts.items() if n)
    lines.insert(0, f"Seeds: {seeds}; scale {args.scale}; {time.time() - t0:.0f} s.\n")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
