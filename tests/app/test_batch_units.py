"""Units of the batch pipeline that need no DICOM: pairing, manifest, tables,
progress, pseudonyms, journal, executors."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import pytest

from app.batch import (
    FAILURE_SCHEMA,
    Failure,
    FilmRecord,
    Progress,
    Pseudonymizer,
    SerialExecutor,
    StudyOutcome,
    format_duration,
    group_studies,
    load_or_create_salt,
    make_executor,
    measure_studies,
    pair_films,
    read_manifest,
    read_parquet_rows,
    write_csv,
    write_parquet,
)
from app.batch._journal import Journal
from app.errors import InputFileError, UserError


def film(path, view="unknown", *, patient="P1", study="1.2.3", time="", number=None, sop=None):
    return FilmRecord(
        path=path,
        patient_id=patient,
        study_instance_uid=study,
        series_instance_uid=study + ".1",
        sop_instance_uid=sop or f"{study}.9.{path}",
        acquisition_datetime=time,
        instance_number=number,
        view=view,
    )


def pair_one(films, manifest=()):
    pairs, failures = pair_films(group_studies(films), manifest)
    return pairs, failures


def test_pairs_recognised_views_and_ignores_neutral():
    films = [
        film("s/a.dcm", "extension", time="20240101100500"),
        film("s/b.dcm", "flexion", time="20240101100000"),
        film("s/c.dcm", "neutral", time="20240101095500"),
    ]
    (pair,), failures = pair_one(films)
    assert failures == []
    assert (pair[0].path, pair[1].path, pair[2]) == ("s/b.dcm", "s/a.dcm", "views")
    assert pair[3] == ("ignored 1 other film(s) of the study (neutral)",)


def test_unknown_views_fall_back_to_acquisition_order():
    # later acquisition listed first on disk: order must come from the header, not the name
    films = [film("s/a.dcm", time="20240101101000"), film("s/b.dcm", time="20240101100000")]
    (pair,), _ = pair_one(films)
    assert (pair[0].path, pair[1].path, pair[2]) == ("s/b.dcm", "s/a.dcm", "acquisition-order")
    # same time: InstanceNumber decides
    films = [
        film("s/a.dcm", time="20240101100000", number=2),
        film("s/b.dcm", time="20240101100000", number=1),
    ]
    (pair,), _ = pair_one(films)
    assert (pair[0].path, pair[1].path) == ("s/b.dcm", "s/a.dcm")


def test_unknown_views_without_order_fail():
    films = [film("s/a.dcm"), film("s/b.dcm")]
    pairs, (failure,) = pair_one(films)
    assert pairs == []
    assert failure.category == "pairing"
    assert "acquisition order unknown" in failure.reason
    assert failure.files == ("s/a.dcm", "s/b.dcm")


def test_one_recognised_view_and_one_unknown_by_elimination():
    films = [film("s/a.dcm", "extension", time="1"), film("s/b.dcm", time="2")]
    (pair,), _ = pair_one(films)
    assert (pair[0].path, pair[1].path, pair[2]) == ("s/b.dcm", "s/a.dcm", "views+elimination")


@pytest.mark.parametrize(
    ("views", "expected"),
    [
        (["flexion"], "1 film in the study (a.dcm): needs a flexion and an extension film"),
        (["flexion", "flexion", "extension"], "2 films recognised as flexion (a.dcm, b.dcm)"),
        (["flexion", "unknown", "unknown"], "3 candidate films"),
        (["neutral", "flexion"], "2 films in the study (a.dcm, b.dcm, 1 neutral)"),
    ],
)
def test_unpairable_studies_name_the_reason(views, expected):
    names = "abc"
    films = [film(f"s/{names[i]}.dcm", v, time=str(i)) for i, v in enumerate(views)]
    pairs, (failure,) = pair_one(films)
    assert pairs == []
    assert failure.kind == "study" and failure.path == "s"
    assert expected in failure.reason
    assert failure.reason.startswith("pairing: ")


def test_mixed_patients_in_one_study_fail_but_separate_studies_pair():
    mixed = [film("m/a.dcm", "flexion", patient="P1"), film("m/b.dcm", "extension", patient="P2")]
    pairs, (failure,) = pair_one(mixed)
    assert "films of 2 patients share this StudyInstanceUID" in failure.reason
    folder = [
        film("f/a.dcm", "flexion", patient="P1", study="1.1"),
        film("f/b.dcm", "extension", patient="P1", study="1.1"),
        film("f/c.dcm", "flexion", patient="P2", study="2.2"),
        film("f/d.dcm", "extension", patient="P2", study="2.2"),
    ]
    pairs, failures = pair_one(folder)
    assert failures == []
    assert [(p[0].patient_id, p[0].path, p[1].path) for p in pairs] == [
        ("P1", "f/a.dcm", "f/b.dcm"),
        ("P2", "f/c.dcm", "f/d.dcm"),
    ]


def test_manifest_overrides_pairing(tmp_path: Path):
    films = [
        film("s/a.dcm", "flexion", sop="9.1"),
        film("s/b.dcm", "flexion", sop="9.2"),
        film("s/c.dcm", "extension", sop="9.3"),
    ]
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "# chosen by hand\nstudy_instance_uid,flexion,extension,note\n1.2.3,s/b.dcm,9.3,retake\n"
    )
    rows = read_manifest(manifest)
    assert [(r.line, r.flexion, r.extension) for r in rows] == [(2, "s/b.dcm", "9.3")]
    (pair,), failures = pair_one(films, rows)
    assert failures == []
    assert (pair[0].path, pair[1].path, pair[2], pair[3]) == ("s/b.dcm", "s/c.dcm", "manifest", ())


def test_manifest_warns_on_different_patients_and_reports_missing_films(tmp_path: Path):
    films = [
        film("a.dcm", "flexion", patient="P1", study="1"),
        film("b.dcm", "extension", patient="P2", study="2"),
    ]
    manifest = tmp_path / "m.csv"
    manifest.write_text("flexion,extension\na.dcm,b.dcm\na.dcm,nothere.dcm\n")
    pairs, failures = pair_one(films, read_manifest(manifest))
    assert len(pairs) == 1
    assert "the flexion and extension films belong to different patients" in pairs[0][3]
    assert [f.reason for f in failures] == [
        "manifest: line 3: extension film 'nothere.dcm' is not among the readable films of the "
        "input folder"
    ]


def test_manifest_without_columns_is_a_usage_error(tmp_path: Path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("a,b\n1,2\n")
    with pytest.raises(InputFileError, match="manifest lacks the column"):
        read_manifest(manifest)
    with pytest.raises(InputFileError, match="cannot read the manifest"):
        read_manifest(tmp_path / "absent.csv")


def test_tables_round_trip_csv_and_parquet(tmp_path: Path):
    rows = [
        {
            "kind": "file",
            "path": "a/b.dcm",
            "reason": "read: truncated",
            "reason_category": "read",
            "patient_id": None,
            "study_instance_uid": "",
        },
    ]
    write_parquet(tmp_path / "f.parquet", rows, FAILURE_SCHEMA)
    write_csv(tmp_path / "f.csv", rows, [n for n, _ in FAILURE_SCHEMA])
    assert read_parquet_rows(tmp_path / "f.parquet") == [
        {
            "kind": "file",
            "path": "a/b.dcm",
            "reason_category": "read",
            "reason": "read: truncated",
            "patient_id": None,
            "study_instance_uid": "",
        }
    ]
    assert (tmp_path / "f.csv").read_text() == (
        "kind,path,reason_category,reason,patient_id,study_instance_uid\n"
        "file,a/b.dcm,read,read: truncated,,\n"
    )
    schema = [("x", "float64"), ("ok", "bool"), ("n", "int64")]
    values = [{"x": 0.1 + 0.2, "ok": True, "n": 3}, {"x": math.nan, "ok": False, "n": None}]
    write_parquet(tmp_path / "v.parquet", values, schema)
    write_csv(tmp_path / "v.csv", values, ["x", "ok", "n"])
    back = read_parquet_rows(tmp_path / "v.parquet")
    assert back[0] == {"x": 0.30000000000000004, "ok": True, "n": 3}
    assert back[1] == {"x": None, "ok": False, "n": None}  # NaN is a missing value (null)
    assert (tmp_path / "v.csv").read_text() == "x,ok,n\n0.30000000000000004,true,3\n,false,\n"
    # empty tables keep their schema
    write_parquet(tmp_path / "e.parquet", [], schema)
    import pyarrow.parquet as pq

    assert pq.read_schema(tmp_path / "e.parquet").names == ["x", "ok", "n"]


def test_progress_rate_and_eta_with_a_fake_clock():
    now = [100.0]
    stream = io.StringIO()
    progress = Progress(10, "studies", stream=stream, clock=lambda: now[0])
    now[0] = 104.0
    progress.advance(2)
    assert progress.rate == pytest.approx(0.5)
    assert progress.eta_seconds == pytest.approx(16.0)
    assert progress.line(width=10) == "studies: 2/10 [==>       ]  20% 0.50 studies/s ETA 0:16"
    now[0] = 120.0
    progress.advance(8, failed=True)
    assert stream.getvalue().splitlines()[-1] == (
        "studies: 10/10, 8 failed [========================] 100% 0.50 studies/s ETA 0:00"
    )
    assert format_duration(3725) == "1:02:05"
    assert format_duration(float("inf")) == "--:--"


def test_pseudonyms_are_salted_stable_and_distinct(tmp_path: Path):
    salt = load_or_create_salt(tmp_path)
    assert load_or_create_salt(tmp_path) == salt  # rerun: same salt, same pseudonyms
    assert (tmp_path / ".work" / "salt").stat().st_mode & 0o077 == 0
    first, other = Pseudonymizer(salt), Pseudonymizer(b"another-salt-of-16+")
    assert first("PAT-1", "patient") == first("PAT-1", "patient")
    assert first("PAT-1", "patient") != other("PAT-1", "patient")
    assert first("PAT-1", "patient") != first("PAT-2", "patient")
    assert (
        first("PAT-1", "patient").startswith("patient-")
        and "PAT" not in first("PAT-1", "patient")[8:]
    )
    assert first("", "patient") == ""
    assert Pseudonymizer(None)("PAT-1") == "PAT-1"
    with pytest.raises(UserError, match="salt file not found"):
        load_or_create_salt(tmp_path, str(tmp_path / "none"))


def test_journal_round_trips_nan_and_rejects_foreign_files(tmp_path: Path):
    journal = Journal(tmp_path)
    landmarks = np.arange(6 * 4 * 2, dtype=float).reshape(6, 4, 2)
    landmarks[5, 2:] = np.nan
    outcome = StudyOutcome(
        key="k1",
        ok=True,
        levels=["L1", "L2", "L3", "L4", "L5", "S1"],
        flexion_landmarks=landmarks.tolist(),
        flexion_spacing_mm=[0.2, 0.25],
    )
    journal.save(outcome)
    back = journal.load("k1")
    np.testing.assert_array_equal(np.array(back.flexion_landmarks), landmarks)
    assert back.flexion_spacing_mm == [0.2, 0.25]
    journal.path("k2").write_text(journal.path("k1").read_text())  # key mismatch
    assert journal.load("k2") is None
    journal.path("k3").write_text("{not json")
    assert journal.load("k3") is None


def _square_spine(shift_px: float) -> np.ndarray:
    """Six 100 px square bodies 20 px apart; every upper body shifted by shift_px along x."""
    bodies = []
    for v in range(6):
        top = v * 120.0
        x0 = 0.0 if v == 5 else shift_px
        bodies.append([[x0, top], [x0 + 100, top], [x0 + 100, top + 100], [x0, top + 100]])
    marks = np.array(bodies)
    marks[5, 2:] = np.nan  # S1 has no inferior corners
    return marks


def test_measure_studies_is_one_stack_with_per_study_spacing_and_failures():
    # Facing +x: AS is at larger x. Corners AS, PS, PI, AI: AS=(x0+100, top)... build so
    # anterior = +x: AS=(x0+100,top), PS=(x0,top), PI=(x0,top+100), AI=(x0+100,top+100).
    def spine(shift):
        m = _square_spine(shift)
        return m[:, [1, 0, 3, 2]]

    good = StudyOutcome(
        key="a",
        ok=True,
        levels=["L1", "L2", "L3", "L4", "L5", "S1"],
        flexion_landmarks=spine(10.0).tolist(),
        extension_landmarks=spine(0.0).tolist(),
        flexion_sd_mm=np.full((6, 4), np.nan).tolist(),
        extension_sd_mm=np.full((6, 4), np.nan).tolist(),
        flexion_spacing_mm=[0.5, 0.5],
        extension_spacing_mm=[0.5, 0.5],
        flexion_fit_quality=[1, 1, 1, 1, 0.5, 1],
        extension_fit_quality=[np.nan] * 6,
    )
    uncalibrated = StudyOutcome(**{f: getattr(good, f) for f in good.__dataclass_fields__})
    uncalibrated.key = "b"
    uncalibrated.extension_spacing_mm = None
    broken = StudyOutcome(**{f: getattr(good, f) for f in good.__dataclass_fields__})
    broken.key = "c"
    marks = spine(0.0)
    marks[2, 0] = np.nan  # half a body: the measurement rejects this study alone
    broken.flexion_landmarks = marks.tolist()
    a, b, c = measure_studies([good, uncalibrated, broken])
    # upper body 10 px = 5 mm anterior in flexion relative to the lower, except L5-S1
    assert [r["segment"] for r in a] == ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    assert [r["translation_mm"] for r in a] == pytest.approx([0, 0, 0, 0, 5.0])
    assert [r["translation_pct"] for r in a] == pytest.approx([0, 0, 0, 0, 10.0])
    assert [r["unstable"] for r in a] == [False] * 4 + [True]
    assert a[4]["criterion"] == "translation"
    assert [r["flexion_fit_quality"] for r in a] == [1, 1, 1, 0.5, 0.5]
    assert math.isnan(b[4]["translation_mm"]) and b[4]["translation_pct"] == pytest.approx(10.0)
    assert any("no usable pixel spacing on the extension film" in w for w in b[0]["warnings"])
    assert len(c) == 1 and c[0]["failure"].startswith("measure: ")


def test_serial_executor_and_option_checks():
    results = list(SerialExecutor().imap_unordered(lambda x: x * x, [1, 2, 3]))
    assert results == [(0, 1, None), (1, 4, None), (2, 9, None)]
    with pytest.raises(UserError, match="--workers: must be at least 1"):
        make_executor(0)
    with pytest.raises(UserError, match="is not 'local' or an address"):
        make_executor(2, "localhost:8786")
    assert Failure("study", "x", "landmarks: detection failed: blur").category == "landmarks"


def test_anonymized_failure_rows_carry_no_path_or_identifier(tmp_path: Path):
    from app.batch._run import _Scrubber

    pseudo = Pseudonymizer(b"0123456789abcdef-salt")
    scrub = _Scrubber(pseudo, tmp_path)
    failure = Failure(
        "study", "DOE^JOHN/study1",
        f"landmarks: 1.2.840.99.7.json: key flexion.landmarks.L3.PS: missing; {tmp_path}/x",
        "MRN-123456", "1.2.840.99.7", ("DOE^JOHN/study1/flex.dcm", "DOE^JOHN/study1/ext.dcm"),
    )
    row = scrub.failure_row(failure)
    text = " ".join(str(v) for v in row.values())
    for secret in ("DOE", "JOHN", "MRN-123456", "1.2.840.99.7", str(tmp_path)):
        assert secret not in text
    assert row["path"] == pseudo("DOE^JOHN/study1", "file")
    assert row["reason"] == (f"landmarks: {pseudo('1.2.840.99.7', 'study')}.json: key "
                             "flexion.landmarks.L3.PS: missing; INPUT_DIR/x")
    assert row["reason_category"] == "landmarks"
    plain = _Scrubber(Pseudonymizer(None), tmp_path).failure_row(failure)
    assert plain["path"] == "DOE^JOHN/study1" and plain["patient_id"] == "MRN-123456"


def test_anonymized_reasons_of_top_level_studies_are_not_garbled(tmp_path: Path):
    # Films at the top of INPUT_DIR form a study whose folder is "." (no name):
    # an empty name once put the pseudonym between every two characters.
    from app.batch._run import _Scrubber

    pseudo = Pseudonymizer(b"0123456789abcdef-salt")
    scrub = _Scrubber(pseudo, tmp_path)
    reason = "pairing: both films look like flexion (flex.dcm, 7); 2.5 s. Check the views."
    failure = Failure("study", ".", reason, "P1", "1.2", ("flex.dcm", "7"))
    row = scrub.failure_row(failure)
    flex, seven = pseudo("flex.dcm", "file"), pseudo("7", "file")
    assert row["reason"] == (f"pairing: both films look like flexion ({flex}, {seven}); 2.5 s. "
                             "Check the views.")
    assert row["path"] == pseudo(".", "file")
    # a short file name inside a longer word or number is left alone
    assert scrub.text("17 x7 7.5 7", ["7"]) == f"17 x7 7.5 {seven}"


def _square_or_die(value: int) -> int:
    if value == 3:
        os._exit(1)  # a decoder that takes its process down
    return value * value


def test_process_pool_survives_a_dying_worker():
    from app.batch import PoolExecutor

    with PoolExecutor(2) as pool:
        results = sorted(pool.imap_unordered(_square_or_die, range(7)))
    assert results == [
        (0, 0, None), (1, 1, None), (2, 4, None),
        (3, None, "worker: the worker process ended unexpectedly"),
        (4, 16, None), (5, 25, None), (6, 36, None),
    ]


def test_landmark_index_matches_films_in_role_order_or_by_study_name(tmp_path: Path):
    import json

    from app.batch._landmark_files import LandmarkIndex

    def write(name, **films):
        doc = {"format": "lumbar-instability-landmarks"}
        for role in ("flexion", "extension"):
            doc[role] = {"landmarks": {}, **({"image": films[role]} if role in films else {})}
        (tmp_path / name).write_text(json.dumps(doc))
        return str(tmp_path / name)

    named = write("a.json", flexion={"sop_instance_uid": "1.1"},
                  extension={"sop_instance_uid": "1.2", "study_instance_uid": "9.9"})
    by_name = write("7.7.json")
    (tmp_path / "truth.json").write_text(json.dumps(
        {"format": "lumbar-instability-phantom-truth", "flexion": {}, "extension": {}}))
    index = LandmarkIndex.build(tmp_path, [], [(tmp_path / "r.dcm", "8.8")])
    assert index.lookup("1.1", "1.2", "9.9") == (named, "landmarks-dir")
    assert index.lookup("1.2", "1.1", "9.9") == ("", "")  # swapped roles: never applied
    assert index.lookup("3.1", "3.2", "9.9") == ("", "")  # other films of that study
    assert index.lookup("5.1", "5.2", "7.7") == (by_name, "landmarks-dir")
    assert index.lookup("5.1", "5.2", "truth") == ("", "")
    assert index.lookup("5.1", "5.2", "8.8") == (str(tmp_path / "r.dcm"), "sr")


def test_unsure_detections_are_flagged_and_their_verdicts_not_counted():
    from app.batch._run import BatchSummary, count_verdicts

    rows = [
        {"study_instance_uid": "A", "segment": "L4-L5", "unstable": True, "borderline": False, "needs_review": False},
        {"study_instance_uid": "A", "segment": "L5-S1", "unstable": False, "borderline": True, "needs_review": False},
        {"study_instance_uid": "B", "segment": "L4-L5", "unstable": True, "borderline": True, "needs_review": True},
        {"study_instance_uid": "C", "segment": "L3-L4", "unstable": True, "borderline": False, "needs_review": True},
    ]
    summary = BatchSummary()
    count_verdicts(summary, rows)
    assert (summary.segments, summary.unstable_segments, summary.unstable_studies) == (4, 1, 1)
    assert summary.borderline_segments == 1 and summary.review_studies == 2
    assert summary.to_json()["needs_review_studies"] == 2
    assert "not counting 2 studies whose detected landmarks need review" in summary.text()


def test_result_rows_carry_needs_review_and_its_reasons():
    from app.batch._measure import RESULT_SCHEMA
    from app.batch._records import StudyOutcome

    names = [name for name, _ in RESULT_SCHEMA]
    assert ("needs_review", "bool") in RESULT_SCHEMA and "review_reasons" in names
    outcome = StudyOutcome(key="k", ok=True, needs_review=True, review_reasons=["labels unsure"])
    again = StudyOutcome.from_json(outcome.to_json())  # journaled outcomes keep the flag
    assert again.needs_review and again.review_reasons == ["labels unsure"]
