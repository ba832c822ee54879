"""Safety checks before any result counts (issue 11 §1) and spacing plausibility
(issue 14 §1), on real file pairs made from the sample study: the same file twice,
two copies, a different patient, two flexion films, a near-identical re-export, the
same posture twice, and a 1\\1 pixel spacing.  Each is flagged in the session, the
saved file, the report (export refused without acknowledgement), and ``measure`` /
``batch`` where they apply."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from app.cli import main
from app.safety import (
    ENDPLATE_DEPTH_RANGE_MM,
    SafetyCheck,
    SafetyWarning,
    check_films,
    check_motion,
    image_shape_of,
    implausible_spacing,
    pixel_digest,
)
from app.session import Session

SAMPLE = Path(__file__).resolve().parents[2] / "sample_dicoms"
LEVELS = ["L1", "L2", "L3", "L4", "L5", "S1"]
C = SafetyCheck

pytestmark = pytest.mark.skipif(not (SAMPLE / "truth.json").exists(), reason="sample study absent")


def _truth() -> dict:
    return json.loads((SAMPLE / "truth.json").read_text())


def _corners(truth: dict, role: str) -> np.ndarray:
    lm = np.full((len(LEVELS), 4, 2), np.nan)
    for v, level in enumerate(LEVELS):
        for c, name in enumerate(("AS", "PS", "PI", "AI")):
            xy = truth[role]["landmarks"].get(level, {}).get(name)
            if xy is not None:
                lm[v, c] = xy
    return lm


def _rewrite(src: Path, dst: Path, *, new_uid: bool = True, view: str | None = None,
             patient: str | None = None, noise: float = 0.0) -> Path:
    """A copy of ``src`` with a new SOP Instance UID (unless told), optionally another
    view in every view attribute, another patient, or pixels with added noise."""
    ds = pydicom.dcmread(src)
    if new_uid:
        uid = generate_uid()
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
    if view is not None:
        other = "extension" if view == "flexion" else "flexion"
        for keyword in ("SeriesDescription", "ProtocolName", "ImageComments"):
            if keyword in ds:
                setattr(ds, keyword, str(ds.get(keyword)).replace(other.upper(), view.upper())
                        .replace(other, view))
        if "ViewCodeSequence" in ds:
            del ds.ViewCodeSequence
    if patient is not None:
        ds.PatientID = patient
    if noise:
        pixels = ds.pixel_array.astype(np.int32)
        rng = np.random.default_rng(0)
        pixels = np.clip(pixels + rng.integers(-noise, noise + 1, pixels.shape), 0,
                         2 ** ds.BitsStored - 1).astype(np.uint16)
        ds.PixelData = pixels.tobytes()
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(dst, enforce_file_format=True)
    return dst


def _session(flexion: Path, extension: Path, *, landmarks: str = "truth") -> Session:
    """The viewer's model on a file pair with the sample's true corners placed."""
    session = Session()
    session.open_paths([str(flexion), str(extension)])
    truth = _truth()
    roles = {"flexion": _corners(truth, "flexion"), "extension": _corners(truth, "extension")}
    if landmarks == "same":  # the flexion corners on both films: the same posture twice
        roles["extension"] = roles["flexion"]
    for role, lm in roles.items():
        session.set_landmarks(role, lm)
    return session


def _checks(warnings) -> set[SafetyCheck]:
    return {w.check for w in warnings}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """The real file pairs of the issue, written once."""
    d = tmp_path_factory.mktemp("pairs")
    flex, ext = SAMPLE / "flexion.dcm", SAMPLE / "extension.dcm"
    return {
        "normal": (flex, ext),
        "same file twice": (flex, flex),
        "two copies": (flex, _rewrite(flex, d / "copy.dcm", view="extension")),
        "different patient": (flex, _rewrite(ext, d / "other.dcm", patient="PHANTOM-99")),
        "two flexion films": (flex, _rewrite(ext, d / "flex2.dcm", view="flexion")),
        "near-identical": (flex, _rewrite(flex, d / "noisy.dcm", view="extension", noise=3)),
    }


# ----------------------------------------------------------------------------- pure checks


def test_pixel_digest_and_near_identical_threshold():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 4000, (300, 200)).astype(np.uint16)
    assert pixel_digest(a) == pixel_digest(a.copy())
    assert pixel_digest(a) != pixel_digest(a.astype(np.int32))  # dtype is part of the content
    assert pixel_digest(a) != pixel_digest(a.reshape(200, 300))  # and so is the shape

    class Film:
        def __init__(self, pixels, uid, view):
            self.pixels, self.view = pixels, view
            self.identity = type("I", (), {"sop_instance_uid": uid})()

    same = check_films(Film(a, "1", "flexion"), Film(a.copy(), "2", "extension"))
    assert _checks(same) == {C.SAME_PIXELS}
    shifted = np.roll(a, 100, axis=0)  # different content: nothing
    assert check_films(Film(a, "1", "flexion"), Film(shifted, "2", "extension")) == []
    assert _checks(check_films(Film(a, "1", "flexion"), Film(a, "1", "flexion"))) == {
        C.SAME_INSTANCE, C.SAME_VIEW}
    incomplete = Film(shifted, "2", "extension")
    incomplete.decode_incomplete = True
    assert _checks(check_films(Film(a, "1", "flexion"), incomplete)) == {C.INCOMPLETE_DECODE}


def test_no_motion_rule():
    assert _checks(check_motion([1.0, -1.5, 0.5], [1.0, 2.9, np.nan])) == {C.NO_MOTION}
    assert check_motion([1.0, 2.5, 0.5], [1.0, 1.0, 1.0]) == []  # one level moves 2.5 degrees
    assert check_motion([1.0, 1.0], [1.0, 3.5]) == []  # or 3.5 % of depth
    assert check_motion([1.0, np.nan], [0.0, np.nan]) == []  # one measured level is no evidence


def test_implausible_spacing_from_body_depths():
    truth = _truth()
    lm = _corners(truth, "flexion")
    true = truth["flexion"]["pixel_spacing_mm"]
    assert implausible_spacing(lm, true) is None
    assert implausible_spacing(lm, None) is None
    reason = implausible_spacing(lm, [1.0, 1.0])
    depth_px = np.median(np.hypot(*(lm[:, 0] - lm[:, 1]).T))
    assert reason is not None and f"{depth_px:.0f} mm" in reason  # 1 mm/px: depth = pixels
    assert depth_px > ENDPLATE_DEPTH_RANGE_MM[1]
    # depth / spacing in the adult range: 40 mm bodies at 0.2 mm/px and the same read as 1\1
    assert implausible_spacing(lm, [40 / depth_px] * 2) is None


def test_spacing_plausibility_bounds_by_hand():
    # two 40 px deep bodies (AS - PS along x)
    lm = np.full((2, 4, 2), np.nan)
    lm[:, 0] = [[40.0, 0.0], [40.0, 100.0]]
    lm[:, 1] = [[0.0, 0.0], [0.0, 100.0]]
    low, high = ENDPLATE_DEPTH_RANGE_MM
    assert (low, high) == (20.0, 75.0)
    assert implausible_spacing(lm, [0.5, 0.5]) is None  # 20 mm: the bound itself is plausible
    assert implausible_spacing(lm, [0.49, 0.49]).startswith("endplate depths of 20 mm")  # 19.6
    assert implausible_spacing(lm, [0.51, 0.51]) is None
    assert implausible_spacing(lm, [1.87, 1.87]) is None  # 74.8 mm
    assert implausible_spacing(lm, [1.9, 1.9]).startswith("endplate depths of 76 mm")
    # a row spacing acts on the rows only: bodies along x ignore it
    assert implausible_spacing(lm, [5.0, 1.0]) is None


def test_field_of_view_larger_than_any_detector():
    lm = np.full((2, 4, 2), np.nan)  # no bodies: the field alone decides
    assert implausible_spacing(lm, [0.14, 0.14], (3072, 3072)) is None  # 43 x 43 cm
    assert implausible_spacing(lm, [0.1, 0.1], (4300, 3500)) is None  # 35 x 43 cm
    # 1\\1 on a 35 x 43 cm film of 0.7 mm pixels: 614 x 500 px, 61 x 50 cm
    reason = implausible_spacing(lm, [1.0, 1.0], (614, 500))
    assert reason is not None and reason.startswith("a field of view of 50 x 61 cm")
    assert implausible_spacing(lm, [1.0, 1.0], (500, 460)) is not None  # short side 46 cm
    # a tall stitched long-length film (43 x 90 cm) is not refused for its length
    assert implausible_spacing(lm, [0.15, 0.15], (6000, 2866)) is None
    assert implausible_spacing(lm, [0.15, 0.15], None) is None


def test_image_size_of_a_record():
    assert image_shape_of({"image_size": [614, 500]}) == (614, 500)
    for bad in (None, {}, {"image_size": [614]}, {"image_size": [0, 5]},
                {"image_size": [1.5, 3]}, {"image_size": [True, 3]}, {"image_size": "614x500"}):
        assert image_shape_of(bad) is None


def test_warning_json_round_trip():
    w = SafetyWarning(C.SAME_VIEW, "Both films are flexion views")
    assert SafetyWarning.from_json(w.to_json()) == w
    with pytest.raises(ValueError, match=r"safety\.check"):
        SafetyWarning.from_json({"check": "nope", "message": "x"})


# ----------------------------------------------------------------------------- real file pairs


@pytest.mark.parametrize(("name", "expected"), [
    ("normal", set()),
    ("same file twice", {C.SAME_INSTANCE, C.SAME_VIEW}),
    ("two copies", {C.SAME_PIXELS}),
    ("different patient", {C.DIFFERENT_PATIENT}),
    ("two flexion films", {C.SAME_VIEW}),
    ("near-identical", {C.NEAR_IDENTICAL}),
])
def test_each_pair_is_flagged_and_export_waits_for_acknowledgement(pairs, tmp_path, capsys, name,
                                                                   expected):
    session = _session(*pairs[name])
    assert _checks(session.safety_warnings) == expected
    saved = session.save(tmp_path / "case.json")
    doc = json.loads(saved.read_text())
    assert {w["check"] for w in doc["safety"]["warnings"]} == {c.value for c in expected}
    assert doc["safety"]["acknowledged"] == []
    pdf = tmp_path / "r.pdf"
    status = main(["report", str(saved), "--pdf", str(pdf), "--json", str(tmp_path / "t.json")])
    err = capsys.readouterr().err
    if not expected:
        assert status == 0 and pdf.exists()
        return
    # refused: one line, nothing written
    assert status == 2 and not pdf.exists() and not (tmp_path / "t.json").exists()
    assert "export refused: safety warning(s) not acknowledged" in err
    assert len(err.strip().splitlines()) == 1
    # the override writes every output with the warnings and exits 1
    assert main(["report", str(saved), "--pdf", str(pdf), "--json", str(tmp_path / "t.json"),
                 "--acknowledge-safety"]) == 1
    table = json.loads((tmp_path / "t.json").read_text())
    assert sum(w.startswith("SAFETY: ") for w in table["warnings"]) == len(expected)
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert "SAFETY" in text
    # acknowledged by the reader in the session: export goes through
    session.acknowledge_safety()
    assert session.unacknowledged_safety == [] and session.dirty
    session.save(saved)
    capsys.readouterr()
    assert main(["report", str(saved), "--json", str(tmp_path / "t2.json")]) == 0
    table = json.loads((tmp_path / "t2.json").read_text())
    assert all("(acknowledged by the reader)" in w for w in table["warnings"] if w.startswith("SAFETY"))
    # reopened, the acknowledgement holds for the same films
    again = Session()
    again.load(saved)
    assert again.acknowledged_safety == sorted(c.value for c in expected)


def test_same_posture_twice(pairs):
    session = _session(*pairs["normal"], landmarks="same")
    assert _checks(session.safety_warnings) == {C.NO_MOTION}
    # once the extension corners are the real ones, the warning goes
    session.set_landmarks("extension", _corners(_truth(), "extension"))
    assert session.safety_warnings == []


def test_other_films_reset_the_acknowledgement(pairs):
    session = _session(*pairs["two flexion films"])
    session.acknowledge_safety()
    assert session.acknowledged_safety == [C.SAME_VIEW.value]
    session.open_paths([str(p) for p in pairs["same file twice"]])
    assert session.acknowledged_safety == [] and session.unacknowledged_safety


def test_truncated_film_is_refused_not_measured(tmp_path):
    """An incomplete decode never becomes a film: the loader refuses it (one line)."""
    data = (SAMPLE / "extension.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) * 2 // 3])
    session = Session()
    session.open_paths([str(SAMPLE / "flexion.dcm"), str(cut)])
    assert session.roles == ("flexion",)
    assert any("cut.dcm" in e and "truncated" in e for e in session.errors)


# ----------------------------------------------------------------------------- issue 14 §1: 1\1


# phantom scale -> detector pixels of 0.2 mm / scale: 0.3, 0.5 and 0.7 mm (bodies of about
# 37 mm, 45 mm at the detector: 150, 90 and 64 px, which 1\\1 turns into as many mm)
UNIT_SCALES = {"0.3 mm": "0.6667", "0.5 mm": "0.4", "0.7 mm": "0.2857"}


@pytest.fixture(scope="module", params=list(UNIT_SCALES))
def unit_spacing(tmp_path_factory, request) -> Path:
    """The phantom's ``--calibration unit-spacing`` study (ImagerPixelSpacing 1\\1)."""
    out = tmp_path_factory.mktemp("unit") / "study"
    assert main(["phantom", str(out), "--seed", "5", "--scale", UNIT_SCALES[request.param],
                 "--calibration", "unit-spacing"]) == 0
    return out


def test_unit_spacing_is_flagged_in_the_session(unit_spacing):
    truth = json.loads((unit_spacing / "truth.json").read_text())
    session = Session()
    session.open_paths([str(unit_spacing / "flexion.dcm"), str(unit_spacing / "extension.dcm")])
    assert session.calibration("flexion").spacing_mm == (1.0, 1.0)
    for role in ("flexion", "extension"):
        session.set_landmarks(role, _corners(truth, role))
    assert _checks(session.safety_warnings) == {C.IMPLAUSIBLE_SPACING}
    assert len(session.safety_warnings) == 2  # one per film
    rows = session.result_rows()
    assert all(r["translation_mm"] is None for r in rows)  # no mm from a wrong spacing
    assert "implausible" in rows[0]["translation_mm_note"]
    l45 = next(r for r in rows if r["segment"] == "L4-L5")
    true = truth["motion"]["L4-L5"] if "motion" in truth else None
    assert l45["angulation_deg"] is not None and l45["translation_pct"] is not None
    if true is not None and "angulation_deg" in true:
        assert l45["angulation_deg"] == pytest.approx(true["angulation_deg"], abs=0.05)


def test_unit_spacing_is_flagged_by_measure(unit_spacing, tmp_path, capsys, request):
    truth = json.loads((unit_spacing / "truth.json").read_text())
    doc = {"levels": LEVELS}
    for role in ("flexion", "extension"):
        marks = {lv: truth[role]["landmarks"][lv] for lv in LEVELS}
        doc[role] = {"pixel_spacing_mm": [1.0, 1.0], "calibration_source": "detector",
                     "landmarks": marks, "image_size": truth[role]["image_size"]}
    path = tmp_path / "lm.json"
    path.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["measure", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {w["check"] for w in out["safety"]} == {"implausible-spacing"}
    assert all(s["translation_mm"] is None for s in out["segments"])
    assert out["calibration"]["flexion"]["spacing_used"] is False
    assert main(["measure", str(path)]) == 0
    table = capsys.readouterr().out
    assert "NOT USED: implausible endplate depths" in table and "SAFETY: flexion film" in table
    # without the film's size, the depths alone tell at 0.3 and 0.5 mm pixels (150 and 90 mm
    # bodies), not at 0.7 mm (64 mm: the top of the adult range at the detector)
    for role in ("flexion", "extension"):
        del doc[role]["image_size"]
    path.write_text(json.dumps(doc))
    assert main(["measure", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    coarse = request.node.callspec.params["unit_spacing"] == "0.7 mm"
    assert out["safety"] == [] if coarse else {w["check"] for w in out["safety"]} == {"implausible-spacing"}
    # the true spacing (patient plane) and the detector spacing (bodies magnified 1.2x) are
    # plausible: mm come back, no warning
    for key in ("pixel_spacing_mm", "detector_spacing_mm"):
        for role in ("flexion", "extension"):
            spacing = truth[role][key]
            doc[role]["pixel_spacing_mm"] = spacing if isinstance(spacing, list) else [spacing] * 2
            doc[role]["image_size"] = truth[role]["image_size"]
        path.write_text(json.dumps(doc))
        assert main(["measure", str(path), "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["safety"] == [] and out["segments"][3]["translation_mm"] is not None


def _landmarks_for_batch(study_dir: Path, landmarks_dir: Path) -> None:
    truth = json.loads((study_dir / "truth.json").read_text())
    (study_dir / "truth.json").rename(study_dir.parent / f"{study_dir.name}.truth.json")
    headers = {r: pydicom.dcmread(study_dir / f"{r}.dcm", stop_before_pixels=True)
               for r in ("flexion", "extension")}
    uid = headers["flexion"].StudyInstanceUID
    doc = {"format": "lumbar-instability-landmarks", "format_version": 1, "levels": LEVELS}
    for role, ds in headers.items():
        marks = {lv: truth[role]["landmarks"][lv] for lv in LEVELS}
        doc[role] = {"image": {"sop_instance_uid": ds.SOPInstanceUID, "study_instance_uid": uid},
                     "landmarks": marks,
                     "placement": {lv: {c: "manual" for c in marks[lv]} for lv in marks}}
    landmarks_dir.mkdir(exist_ok=True)
    (landmarks_dir / f"{uid}.json").write_text(json.dumps(doc))


def test_batch_flags_unit_spacing_and_a_duplicated_film(tmp_path, capsys):
    archive, marks = tmp_path / "archive", tmp_path / "marks"
    # scale 0.5: 0.33 mm pixels, bodies of ~120 px that 1\1 turns into ~120 mm
    # scale 0.2857: 0.7 mm pixels, bodies of ~64 px: 64 mm at 1\\1 look adult, but the
    # 55 x 44 cm field of view is larger than any detector
    for seed, name, scale, extra in ((11, "good", "0.5", []),
                                     (11, "unit", "0.5", ["--calibration", "unit-spacing"]),
                                     (13, "coarse", "0.2857", ["--calibration", "unit-spacing"]),
                                     (12, "copy", "0.5", [])):
        assert main(["phantom", str(archive / name), "--seed", str(seed), "--scale", scale, *extra]) == 0
        if name == "copy":  # the flexion film again as the extension (new UID, extension view)
            _rewrite(archive / name / "flexion.dcm", archive / name / "extension.dcm", view="extension")
        _landmarks_for_batch(archive / name, marks)
    capsys.readouterr()
    out = tmp_path / "out"
    status = main(["batch", str(archive), "--out", str(out), "--landmarks", str(marks),
                   "--workers", "1", "--quiet"])
    assert status == 1
    import csv

    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_file = {}
    for r in rows:
        by_file.setdefault(r["flexion_file"].split("/")[0], []).append(r)
    assert {r["safety"] for r in by_file["good"]} == {""}
    assert {r["safety"] for r in by_file["unit"]} == {"implausible-spacing"}
    assert {r["safety"] for r in by_file["coarse"]} == {"implausible-spacing"}
    assert all(r["translation_mm"] == "" for r in by_file["coarse"])
    assert {r["safety"] for r in by_file["copy"]} == {"same-pixels"}
    assert all(r["translation_mm"] == "" for r in by_file["unit"])  # no mm from 1 mm/px
    assert all(r["translation_mm"] != "" for r in by_file["good"])
    # the two studies agree on everything that needs no millimetres
    # (seed 11 twice: one patient, the calibration variant changes only the headers)
    good = {r["segment"]: float(r["angulation_deg"]) for r in by_file["good"]}
    unit = {r["segment"]: float(r["angulation_deg"]) for r in by_file["unit"]}
    assert unit == pytest.approx(good, abs=1e-9)
    with open(out / "failures.csv", newline="") as handle:
        failures = list(csv.DictReader(handle))
    assert sorted((f["path"], f["reason"].split(":")[0]) for f in failures) == [
        ("coarse", "safety"), ("copy", "safety"), ("unit", "safety")]
    # accepted explicitly: exit 0, the column still names the check
    out2 = tmp_path / "out2"
    assert main(["batch", str(archive), "--out", str(out2), "--landmarks", str(marks),
                 "--workers", "1", "--quiet", "--acknowledge-safety"]) == 0
    summary = json.loads((out2 / "summary.json").read_text())
    assert summary["safety_studies"] == 3


# ----------------------------------------------------------------------------- borderline hint


def test_borderline_hint_when_most_levels_are_borderline(pairs):
    from app.safety import borderline_hint

    session = _session(*pairs["normal"])  # true corners, manual SD 0.6 mm: 5 of 5 borderline
    rows = session.result_rows()
    assert sum(r["verdict"].startswith("borderline") for r in rows) == 5
    hint = session.borderline_hint
    assert hint.startswith("5 of 5 levels are borderline")
    assert "0.6 mm" in hint and "Track" in hint and "second independent reading" in hint
    # tracked corners (SD 0.1 mm): the intervals shrink, the hint goes
    session.set_landmarks("extension", _corners(_truth(), "extension"),
                          method="tracked")
    session.set_landmarks("flexion", _corners(_truth(), "flexion"),
                          method="tracked")
    assert session.borderline_hint is None
    # one borderline level out of five is not "most"
    one = [dict(r, verdict="within") for r in rows]
    one[3]["verdict"] = "borderline-above"
    assert borderline_hint([{k: v for k, v in r.items() if k != "thresholds"} | {
        "borderline": r["verdict"].startswith("borderline"), "unstable": False} for r in one]) is None


def test_borderline_hint_quotes_the_sds_actually_used():
    """The hint quotes the manual corners' stated SDs (not the default), the intervals' median
    half-widths, and tracking's and refinement's measured models (measure.ERROR_MODEL)."""
    from app.safety import borderline_hint
    from measure import ERROR_MODEL, PlacementMethod, tracking_sd

    rows = [{"borderline": True, "unstable": False, "measured": True,
             "translation_mm_ci95": [1.0 - w, 1.0 + w], "angulation_deg_ci95": [5.0 - a, 5.0 + a]}
            for w, a in ((1.0, 3.0), (1.5, 4.0), (2.0, 5.0))]
    methods = ["manual"] * 4 + ["edited"] * 2 + ["tracked"] * 4 + [""] * 2
    sds = [0.3, 0.3, 0.4, float("nan"), 0.3, 0.3] + [0.01] * 4 + [9.0, 9.0]
    hint = borderline_hint(rows, methods, sds)
    # manual 0.3 x4, 0.4, default 0.6 for the NaN: 0.3-0.6 mm, median 0.3; unplaced corners ignored
    assert "SDs of 0.3-0.6 mm (median 0.3 mm)" in hint and "9 mm" not in hint
    assert "Eur J Radiol" not in hint  # not the literature's default SD
    assert "intervals of ±1.5 mm and ±4.0° here (median)" in hint
    model = ERROR_MODEL[PlacementMethod.TRACKED]
    good = model.shift_factor * float(tracking_sd(0.95, 35.0))
    poor = model.shift_factor * float(tracking_sd(0.8, 35.0))
    assert f"a shift of {good:.2f}-{poor:.2f} mm" in hint
    refined = ERROR_MODEL[PlacementMethod.REFINED]
    assert f"{refined.corner_factor:.2f} along and {refined.across:.2f} across" in hint
    with pytest.raises(ValueError, match="sd_mm"):
        borderline_hint(rows, methods, sds[:3])
