"""The evented session model: edits, undo/redo, results, save/load, autosave."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from app.errors import InputFileError, UserError
from app.session import (
    ManualCalibration,
    Session,
    assign_roles,
    identity_mismatch,
    shifted_levels,
)
from measure import Calibration, CalibrationSource

LEVELS = ("L4", "L5", "S1")


@dataclass
class FakeIdentity:
    patient_id: str = "PHANTOM-1"
    study_instance_uid: str = "1.2.3"
    series_instance_uid: str = "1.2.3.4"
    sop_instance_uid: str = "1.2.3.4.5"
    patient_name: str = "Doe^Jane"


@dataclass
class FakeFilm:
    path: str
    view: str
    calibration: Calibration
    identity: FakeIdentity = field(default_factory=FakeIdentity)
    sha256: str = ""
    pixels: np.ndarray = field(default_factory=lambda: np.zeros((4, 4), np.uint16))


def _cal(mm=0.5, source="detector"):
    return Calibration(mm, mm, CalibrationSource(source), "test")


def hand_case():
    """L4 over L5 over S1, lower endplates along +x (anterior = +x), y down.

    Flexion: L4's PI is 10 px anterior of L5's PS, L4's inferior endplate parallel
    (angle 0).  Extension: no translation, L4's inferior endplate tilted so the
    disc opens anteriorly by atan(8/40) = 11.31 deg.
    At 0.5 mm/px: translation = 10 px * 0.5 = 5 mm, angulation = 11.31 deg.
    """
    flex = np.full((3, 4, 2), np.nan)
    ext = np.full((3, 4, 2), np.nan)
    l5 = [[100, 200], [60, 200], [60, 240], [100, 240]]  # AS, PS, PI, AI
    s1 = [[100, 250], [60, 250]]
    flex[1], ext[1] = l5, l5
    flex[2, :2], ext[2, :2] = s1, s1
    flex[0] = [[110, 150], [70, 150], [70, 190], [110, 190]]
    ext[0] = [[100, 150], [60, 150], [60, 190], [100, 182]]
    return flex, ext


def make_session(tmp_path, cal_flex=None, cal_ext=None, recovery=True):
    files = {}
    for role, cal in (("flexion", cal_flex or _cal()), ("extension", cal_ext or _cal())):
        path = tmp_path / f"{role}.dcm"
        path.write_bytes(role.encode())
        import hashlib

        files[str(path)] = FakeFilm(
            str(path), role, cal, sha256=hashlib.sha256(role.encode()).hexdigest()
        )
    session = Session(
        LEVELS, recovery_path=(tmp_path / "state" / "recovery.json") if recovery else None
    )
    session.open_paths(list(files), loader=files.__getitem__)
    return session, files


def place_all(session, flex, ext):
    for role, lm in (("flexion", flex), ("extension", ext)):
        for v in range(lm.shape[0]):
            for c in range(4):
                if np.isfinite(lm[v, c]).all():
                    session.set_corner(role, v, c, lm[v, c])


def row(session, label="L4-L5"):
    return next(r for r in session.result_rows() if r["segment"] == label)


def test_hand_case_results(tmp_path):
    session, _ = make_session(tmp_path)
    place_all(session, *hand_case())
    r = row(session)
    assert r["translation_mm"] == pytest.approx(5.0)
    assert r["angulation_deg"] == pytest.approx(math.degrees(math.atan2(8, 40)))
    assert r["translation_pct"] == pytest.approx(100 * 10 / 40)
    assert r["calibration_source"] == "detector"
    assert r["unstable"] is True
    assert r["criterion"] == "both"


def test_uncalibrated_film_never_gives_mm(tmp_path):
    session, _ = make_session(tmp_path, cal_ext=Calibration.uncalibrated())
    assert any("no usable pixel spacing" in m for m in session.messages)
    place_all(session, *hand_case())
    r = row(session)
    assert r["translation_mm"] is None
    assert r["extension_translation_mm"] is None
    assert r["translation_pct"] == pytest.approx(25.0)


def test_manual_calibration_sets_source_and_scale(tmp_path):
    session, _ = make_session(tmp_path, cal_flex=Calibration.uncalibrated(), cal_ext=_cal(0.75))
    seen = []
    session.events.calibration.connect(lambda e: seen.append(e.role))
    # 80 px line over a 60 mm object: 0.75 mm/px, like the extension film (the hand case's
    # 40 px bodies are then 30 mm deep: at 0.25 mm/px they would be 10 mm, an implausible
    # spacing whose millimetres are not used)
    session.set_manual_calibration("flexion", ManualCalibration((10.0, 10.0), (10.0, 90.0), 60.0))
    assert seen == ["flexion"]
    cal = session.calibration("flexion")
    assert cal.source is CalibrationSource.MANUAL
    assert cal.row_spacing_mm == pytest.approx(0.75)
    place_all(session, *hand_case())
    assert row(session)["translation_mm"] == pytest.approx(7.5)
    assert row(session)["calibration_source"] == "flexion manual, extension detector"


def test_manual_calibration_keeps_pixel_aspect():
    ref = Calibration(0.2, 0.1, CalibrationSource.DETECTOR)
    # a vertical line of 100 px: row spacing 0.2 * k, so 100 * 0.2k = 10 mm -> k = 0.5
    cal = ManualCalibration((0.0, 0.0), (0.0, 100.0), 10.0).calibration(ref)
    assert (cal.row_spacing_mm, cal.column_spacing_mm) == pytest.approx((0.1, 0.05))


def test_manual_calibration_rejects_bad_length():
    with pytest.raises(UserError, match="positive"):
        ManualCalibration((0, 0), (0, 10), 0.0)
    with pytest.raises(UserError, match="shorter than one pixel"):
        ManualCalibration((0, 0), (0, 0.5), 10.0)


def test_undo_redo_every_edit(tmp_path):
    session, _ = make_session(tmp_path)
    flex, ext = hand_case()
    place_all(session, flex, ext)
    before = row(session)["translation_mm"]
    session.set_corner("flexion", 0, 2, (75.0, 190.0))  # PI of L4 5 px further
    assert row(session)["translation_mm"] == pytest.approx(7.5)
    assert session.undo_text == "Move L4 PI (flexion)"
    session.undo()
    assert row(session)["translation_mm"] == pytest.approx(before)
    session.redo()
    assert row(session)["translation_mm"] == pytest.approx(7.5)
    session.delete_corner("flexion", 0, 2)
    assert row(session)["translation_mm"] is None
    session.undo()
    assert row(session)["translation_mm"] == pytest.approx(7.5)
    # undo every placement: no landmark left
    while session.can_undo:
        session.undo()
    assert np.isnan(session.landmarks("flexion")).all()
    assert not session.can_undo and session.can_redo


def test_drag_is_one_undo_step_and_edit_clears_redo(tmp_path):
    session, _ = make_session(tmp_path)
    session.set_corner("flexion", 0, 0, (1.0, 1.0))
    for x in range(2, 10):
        session.set_corner("flexion", 0, 0, (float(x), 1.0), merge_id="drag-1")
    session.end_merge()
    assert session.landmarks("flexion")[0, 0].tolist() == [9.0, 1.0]
    session.undo()
    assert session.landmarks("flexion")[0, 0].tolist() == [1.0, 1.0]
    session.redo()
    session.undo()
    session.set_corner("flexion", 0, 1, (5.0, 5.0))
    assert not session.can_redo


def test_placement_method_manual_then_edited(tmp_path):
    session, _ = make_session(tmp_path)
    lm = np.full((3, 4, 2), np.nan)
    lm[0, 0] = (3.0, 4.0)
    session.set_landmarks("flexion", lm, method="tracked", description="Track")
    session.set_corner("flexion", 0, 0, (3.5, 4.0))
    session.set_corner("flexion", 0, 1, (9.0, 4.0))
    doc = session.to_json()
    assert doc["flexion"]["placement"]["L4"] == {"AS": "edited", "PS": "manual"}


def test_nudge_moves_and_merges(tmp_path):
    session, _ = make_session(tmp_path)
    session.set_corner("extension", 1, 3, (10.0, 20.0))
    for _ in range(4):
        session.nudge_corner("extension", 1, 3, (0.25, 0.0))
    session.nudge_corner("extension", 1, 3, (0.0, -1.0))
    assert session.landmarks("extension")[1, 3].tolist() == [11.0, 19.0]
    session.undo()
    assert session.landmarks("extension")[1, 3].tolist() == [10.0, 20.0]
    with pytest.raises(UserError, match="not placed"):
        session.nudge_corner("extension", 0, 0, (1, 0))


def test_events_report_what_changed(tmp_path):
    session, _ = make_session(tmp_path)
    seen = []
    session.events.connect(lambda e: seen.append((e.type, e.info.get("role"))))
    session.set_corner("extension", 0, 0, (1.0, 2.0))
    assert ("landmarks", "extension") in seen
    assert ("landmarks", "flexion") not in seen
    assert ("results", None) in seen
    assert ("dirty", None) in seen
    seen.clear()
    session.selected_segment = 1
    assert seen == [("selected_segment", None)]
    with pytest.raises(ValueError, match="selected_segment"):
        session.selected_segment = 5


def test_shift_levels_and_undo(tmp_path):
    session, _ = make_session(tmp_path)
    session.shift_levels(-1)
    assert session.levels == ("L3", "L4", "S1")
    assert session.segments == ("L3-L4", "L4-S1")
    session.undo()
    assert session.levels == LEVELS
    assert shifted_levels(("L1", "L2", "L3", "L4", "L5", "S1"), -1) == (
        "T12",
        "L1",
        "L2",
        "L3",
        "L4",
        "S1",
    )
    assert shifted_levels(("L1", "L2", "L3", "L4", "L5", "S1"), 1) == (
        "L2",
        "L3",
        "L4",
        "L5",
        "L6",
        "S1",
    )
    with pytest.raises(UserError, match="further down"):
        shifted_levels(("L5", "L6", "S1"), 1)


def test_swap_films(tmp_path):
    session, _ = make_session(tmp_path)
    session.set_corner("flexion", 0, 0, (1.0, 2.0))
    flex_film = session.film("flexion").film
    session.swap_films()
    assert session.film("extension").film is flex_film
    assert session.landmarks("extension")[0, 0].tolist() == [1.0, 2.0]
    session.undo()
    assert session.film("flexion").film is flex_film


def test_guided_order_and_next_missing(tmp_path):
    session, _ = make_session(tmp_path)
    order = session.corner_order()
    assert [session.corner_name(*vc) for vc in order] == [
        "L4 AS",
        "L4 PS",
        "L4 PI",
        "L4 AI",
        "L5 AS",
        "L5 PS",
        "L5 PI",
        "L5 AI",
        "S1 AS",
        "S1 PS",
    ]
    assert session.next_missing_corner("flexion") == (0, 0)
    session.set_corner("flexion", 0, 0, (1, 1))
    session.set_corner("flexion", 0, 2, (1, 1))
    assert session.next_missing_corner("flexion") == (0, 1)


def test_save_load_round_trip(tmp_path):
    session, files = make_session(tmp_path)
    place_all(session, *hand_case())
    session.set_manual_calibration("extension", ManualCalibration((0.0, 0.0), (30.0, 40.0), 25.0))
    session.set_criteria("white-panjabi")
    session.selected_segment = 0
    rows = session.result_rows()
    out = tmp_path / "sub" / "case.session.json"
    session.save(out)
    assert not session.dirty
    doc = json.loads(out.read_text())
    assert doc["format"] == "lumbar-instability-session"
    assert doc["flexion"]["image"]["path"] == "../flexion.dcm"
    assert doc["flexion"]["landmarks"]["L4"]["PI"] == [70.0, 190.0]
    assert "PI" not in doc["flexion"]["landmarks"]["S1"]
    assert doc["extension"]["calibration_source"] == "manual"
    assert doc["extension"]["manual_calibration"] == {
        "p0": [0.0, 0.0],
        "p1": [30.0, 40.0],
        "length_mm": 25.0,
    }
    assert doc["results"]["segments"] == json.loads(json.dumps(rows))

    # the films lie outside the session's folder: named, not opened, until their folder is given
    other = Session(recovery_path=None)
    msgs = other.load(out, loader=files.__getitem__)
    assert msgs == [
        f"the {role} film's image path \"../{role}.dcm\" points outside the session's folder: not "
        "opened (open the film explicitly, or give its folder); its landmarks are kept."
        for role in ("flexion", "extension")
    ]
    assert other.film("flexion").film is None and other.result_rows() == rows
    other = Session(recovery_path=None)
    msgs = other.load(out, loader=files.__getitem__, image_dirs=[tmp_path])
    assert msgs == []
    assert other.film("flexion").film is files[str(tmp_path / "flexion.dcm")]
    assert other.levels == LEVELS and other.criteria == "white-panjabi"
    assert other.selected_segment == 0
    assert other.result_rows() == rows
    assert other.calibration("extension").source is CalibrationSource.MANUAL
    assert other.path == out and not other.dirty


def test_load_reports_missing_and_changed_images(tmp_path):
    session, files = make_session(tmp_path)
    place_all(session, *hand_case())
    out = tmp_path / "s.json"
    session.save(out)
    Path(session.film("flexion").image.path).write_bytes(b"changed")
    Path(session.film("extension").image.path).unlink()
    other = Session(recovery_path=None)
    msgs = other.load(out, loader=files.__getitem__)
    assert any("content changed" in m and "flexion" in m for m in msgs)
    assert any("missing" in m and "extension" in m for m in msgs)
    # the landmarks are kept and the mm values still come from the saved calibration
    assert other.result_rows()[0]["translation_mm"] == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{", "not valid JSON"),
        ("[1]", "top level"),
        ('{"format": "x"}', 'key format: "x" is not a format this tool reads'),
        ('{"format": "lumbar-instability-session"}', "neither a flexion"),
        ('{"format": "lumbar-instability-session", "format_version": 2}', "newer than this software"),
    ],
)
def test_load_bad_file(tmp_path, text, match):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    with pytest.raises(InputFileError, match=match):
        Session(recovery_path=None).load(bad, loader=lambda p: None)


def test_autosave_after_each_edit_and_recover(tmp_path):
    session, files = make_session(tmp_path)
    recovery = session.recovery_path
    assert not recovery.exists()  # nothing edited yet
    session.set_corner("flexion", 0, 0, (12.5, 7.25))
    assert json.loads(recovery.read_text())["flexion"]["landmarks"]["L4"]["AS"] == [12.5, 7.25]
    session.set_corner("flexion", 0, 0, (20.0, 7.0), merge_id="drag")
    session.end_merge()
    assert json.loads(recovery.read_text())["flexion"]["landmarks"]["L4"]["AS"] == [20.0, 7.0]
    # a new session (after a crash) recovers the work
    fresh = Session(recovery_path=recovery)
    fresh.recover(loader=files.__getitem__)
    assert fresh.landmarks("flexion")[0, 0].tolist() == [20.0, 7.0]
    assert fresh.dirty
    fresh.save(tmp_path / "saved.json")
    assert not recovery.exists()


def test_open_paths_errors(tmp_path):
    good = {str(tmp_path / "a.dcm"): FakeFilm("a", "flexion", _cal())}

    def loader(path):
        if path in good:
            return good[path]
        raise InputFileError(path, "not a DICOM file")

    (tmp_path / "a.dcm").write_bytes(b"x")
    (tmp_path / "b.dcm").write_bytes(b"x")
    session = Session(recovery_path=None)
    msgs = session.open_paths([tmp_path / "b.dcm", tmp_path / "a.dcm"], loader=loader)
    assert session.roles == ("flexion",)
    assert session.film("flexion").image.path == str(tmp_path / "a.dcm")
    msgs = session.open_paths([tmp_path], loader=loader)
    assert session.roles == ("flexion",)
    assert any("b.dcm: not a DICOM file" in m for m in msgs)
    assert any("Only one film" in m for m in msgs)
    with pytest.raises(UserError, match="not a DICOM file"):
        session.open_paths([tmp_path / "b.dcm"], loader=loader)
    assert session.roles == ("flexion",)  # unchanged


def _films(*views):
    return [FakeFilm(f"{i}.dcm", v, _cal()) for i, v in enumerate(views)]


def test_assign_roles():
    names = ["a", "b", "c"]
    assert assign_roles(_films("extension", "flexion"), names[:2]) == (
        {"flexion": 1, "extension": 0},
        [],
    )
    roles, warn = assign_roles(_films("flexion", "flexion"), names[:2])
    assert roles == {"flexion": 0, "extension": 1} and "Both films are flexion" in warn[0]
    roles, warn = assign_roles(_films("unknown", "flexion"), names[:2])
    assert roles == {"flexion": 1, "extension": 0} and "does not say" in warn[0]
    roles, warn = assign_roles(_films("neutral", "extension", "flexion"), names)
    assert roles == {"flexion": 2, "extension": 1} and "ignored a" in warn[0]
    with pytest.raises(UserError, match="3 films given"):
        assign_roles(_films("flexion", "flexion", "extension"), names)
    assert assign_roles(_films("extension"), names[:1])[0] == {"extension": 0}


def test_identity_mismatch_never_names_the_patient():
    a, b = _films("flexion", "extension")
    assert identity_mismatch(a, b) is None
    b.identity = FakeIdentity(patient_id="OTHER", study_instance_uid="9.9", patient_name="Roe^Rick")
    message = identity_mismatch(a, b)
    assert "PHANTOM-1" in message and "OTHER" in message and "studies" in message
    assert "Doe" not in message and "Roe" not in message


def test_session_file_is_a_landmarks_file(tmp_path):
    """The session format extends the landmarks format: the landmarks reader takes it."""
    from app.landmarks_io import read_landmarks

    session, _ = make_session(tmp_path)
    flex, ext = hand_case()
    place_all(session, flex, ext)
    session.set_corner("flexion", 0, 0, (111.0, 150.0))
    out = session.save(tmp_path / "s.json")
    study = read_landmarks(out)
    assert study.levels == LEVELS
    np.testing.assert_array_equal(study.flexion.corners[0, 0], [111.0, 150.0])
    np.testing.assert_array_equal(study.extension.corners, ext)
    assert study.flexion.calibration.source is CalibrationSource.DETECTOR
    assert study.flexion.placement[0, 0] == "manual"


def test_import_landmarks_is_one_undoable_edit(tmp_path):
    session, _ = make_session(tmp_path)
    flex, ext = hand_case()
    place_all(session, flex, ext)
    path = session.save(tmp_path / "marks.json")
    (tmp_path / "other").mkdir()
    other, _ = make_session(tmp_path / "other")
    other.shift_levels(-1)
    other.import_landmarks(path)
    assert other.levels == LEVELS
    np.testing.assert_array_equal(other.landmarks("extension"), ext)
    assert row(other)["translation_mm"] == pytest.approx(5.0)
    other.undo()
    assert other.levels == ("L3", "L4", "S1")
    assert np.isnan(other.landmarks("flexion")).all()


def test_manual_calibration_clears_the_uncalibrated_warning(tmp_path):
    session, _ = make_session(tmp_path, cal_flex=Calibration.uncalibrated())
    shown = []
    session.events.messages.connect(lambda e: shown.append(e.value))
    assert any("flexion" in m and "no usable pixel spacing" in m for m in session.messages)
    session.set_manual_calibration("flexion", ManualCalibration((0.0, 0.0), (100.0, 0.0), 20.0))
    assert not any("no usable pixel spacing" in m for m in session.messages)
    assert shown and not any("no usable" in m for m in shown[-1])
    session.undo()
    assert any("no usable pixel spacing" in m for m in session.messages)


def test_merge_landmarks_keeps_what_the_tool_did_not_place(tmp_path):
    session, _ = make_session(tmp_path)
    flex, _ = hand_case()
    place_all(session, flex, flex)
    tool = np.full((3, 4, 2), np.nan)
    tool[1] = flex[1] + 0.5  # the tool moved L5 only
    methods = np.where(np.isfinite(tool[..., 0]), "refined", "")
    sd = np.where(np.isfinite(tool[..., 0]), 0.2, np.nan)
    assert session.merge_landmarks("extension", tool, methods, sd, "Refine") == 4
    lm = session.landmarks("extension")
    np.testing.assert_array_equal(lm[1], flex[1] + 0.5)
    np.testing.assert_array_equal(lm[0], flex[0])
    doc = session.to_json()["extension"]
    assert doc["placement"]["L5"] == dict.fromkeys(("AS", "PS", "PI", "AI"), "refined")
    assert doc["placement"]["L4"]["AS"] == "manual"
    assert doc["landmark_sd_mm"]["L5"]["AS"] == 0.2
    assert doc["landmark_sd_mm"]["L4"]["AS"] == 0.6  # manual default (measure.PlacementMethod)
    assert session.undo_text == "Refine (extension)"
    session.undo()
    np.testing.assert_array_equal(session.landmarks("extension"), flex)
    assert session.merge_landmarks("extension", np.full((3, 4, 2), np.nan), methods) == 0
    assert not session.can_redo or session.redo_text == "Refine (extension)"


def test_image_paths_outside_the_session_folder_are_never_opened(tmp_path):
    session, files = make_session(tmp_path)
    place_all(session, *hand_case())
    out = tmp_path / "s" / "case.json"
    session.save(out)
    doc = json.loads(out.read_text())
    doc["flexion"]["image"]["path"] = "../../../../../../../../etc/passwd"
    doc["extension"]["image"]["path"] = str(tmp_path / "extension.dcm")  # absolute, outside
    out.write_text(json.dumps(doc))
    opened = []
    other = Session(recovery_path=None)
    msgs = other.load(out, loader=lambda p: opened.append(p) or files[p])
    assert opened == []  # neither read nor hashed
    assert len(msgs) == 2 and all("points outside the session's folder: not opened" in m for m in msgs)
    assert other.result_rows() == session.result_rows()  # the landmarks are kept
    # the reader names the folder explicitly: the film inside it is opened, /etc is not
    msgs = other.load(out, loader=lambda p: opened.append(p) or files[p], image_dirs=[tmp_path])
    assert opened == [str(tmp_path / "extension.dcm")]
    assert len(msgs) == 1 and "passwd" in msgs[0]


def test_films_outside_the_folder_open_only_when_their_header_names_the_saved_film(tmp_path):
    """A reader saves the session away from the films (the usual case): the saved SOP
    Instance UID, read from the DICOM header alone, vouches for the film; a path to
    any other file (another film, /etc/passwd) stays unopened."""
    import shutil

    from app.dicom_io import load_film, read_film_header

    sample = Path(__file__).resolve().parents[2] / "sample_dicoms"
    films = tmp_path / "films"
    films.mkdir()
    for view in ("flexion", "extension"):
        shutil.copy(sample / f"{view}.dcm", films / f"{view}.dcm")
    session = Session(recovery_path=None)
    session.open_paths([str(films / "flexion.dcm"), str(films / "extension.dcm")])
    out = tmp_path / "reports" / "case.json"
    session.save(out)

    opened: list[str] = []
    other = Session(recovery_path=None)
    assert other.load(out, loader=lambda p: opened.append(p) or load_film(p)) == []
    assert sorted(opened) == sorted(str(films / f"{v}.dcm") for v in ("flexion", "extension"))

    # the flexion entry now names the extension film (another SOP Instance UID): refused
    doc = json.loads(out.read_text())
    doc["flexion"]["image"]["path"] = str(films / "extension.dcm")
    doc["extension"]["image"]["path"] = "/etc/passwd"
    out.write_text(json.dumps(doc))
    assert doc["flexion"]["image"]["sop_instance_uid"] != (
        read_film_header(films / "extension.dcm").identity.sop_instance_uid
    )
    opened.clear()
    msgs = Session(recovery_path=None).load(out, loader=lambda p: opened.append(p) or load_film(p))
    assert opened == []
    assert len(msgs) == 2 and all("points outside the session's folder" in m for m in msgs)
