"""``lumbar-instability agreement``: readings matched across readers, tables against references."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import measure
from app.agreement import agreement
from app.cli import main
from tests.app._reader_study import SPACING, reader_study
from tests.measure.test_agreement import SHROUT_FLEISS, _pingouin_icc


def _direct_motion(corners):
    """The readers' motion computed straight from their corners (no file, no matching)."""
    flex, ext = corners
    return measure.segmental_motion(flex, ext, flexion_spacing_mm=SPACING, extension_spacing_mm=SPACING)


def test_two_readers_match_pingouin_and_scikit_learn(tmp_path, capsys):
    folders, _, corners = reader_study(tmp_path, {"alice": 2.0, "bob": 3.0}, n_studies=20, seed=1)
    out = tmp_path / "out"
    status = main(["agreement", str(folders["alice"]), str(folders["bob"]), "--out", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "20 studies (matched by study_instance_uid)" in printed
    icc = pd.read_csv(out / "agreement_icc.csv")
    ba = pd.read_csv(out / "agreement_bland_altman.csv")
    kappa = pd.read_csv(out / "agreement_kappa.csv")
    motion = {name: _direct_motion(c) for name, c in corners.items()}
    for j, segment in enumerate(["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]):
        for quantity, attribute in (
            ("translation_mm", "translation_mm"),
            ("angulation_deg", "angulation_deg"),
            ("flexion_angle_deg", "flexion_angle_deg"),
        ):
            table = np.stack([getattr(motion[r], attribute)[:, j] for r in ("alice", "bob")], axis=1)
            ref = _pingouin_icc(table)
            row = icc[(icc["segment"] == segment) & (icc["quantity"] == quantity)].iloc[0]
            assert row["n_studies"] == 20
            assert row["icc_2_1"] == pytest.approx(ref.at["ICC(A,1)", "ICC"], abs=1e-6)
            assert row["icc_3_1"] == pytest.approx(ref.at["ICC(C,1)", "ICC"], abs=1e-6)
            assert [row["icc_2_1_ci95_low"], row["icc_2_1_ci95_high"]] == pytest.approx(
                list(ref.at["ICC(A,1)", "CI95"]), abs=1e-6
            )
            assert [row["icc_3_1_ci95_low"], row["icc_3_1_ci95_high"]] == pytest.approx(
                list(ref.at["ICC(C,1)", "CI95"]), abs=1e-6
            )
            d = table[:, 1] - table[:, 0]
            pair = ba[(ba["segment"] == segment) & (ba["quantity"] == quantity)].iloc[0]
            assert (pair["reader_a"], pair["reader_b"]) == ("alice", "bob")
            assert pair["bias"] == pytest.approx(d.mean(), abs=1e-9)
            assert pair["loa_high"] == pytest.approx(d.mean() + 1.96 * d.std(ddof=1), abs=1e-9)
            # two readers: the consistency SDC is the half-width of the limits of agreement
            assert row["sdc_consistency"] == pytest.approx(1.96 * d.std(ddof=1), abs=1e-8)
        sklearn_metrics = pytest.importorskip("sklearn.metrics")
        a, b = motion["alice"].unstable[:, j], motion["bob"].unstable[:, j]
        k_row = kappa[kappa["segment"] == segment].iloc[0]
        assert k_row["method"] == "cohen"
        assert (k_row["unstable_alice"], k_row["unstable_bob"]) == (a.sum(), b.sum())
        if len(set(a) | set(b)) > 1:
            assert k_row["kappa"] == pytest.approx(sklearn_metrics.cohen_kappa_score(a, b), abs=1e-9)
    doc = json.loads((out / "agreement.json").read_text())
    assert doc["readers"] == ["alice", "bob"] and doc["studies"] == 20
    for quantity in ("translation_mm", "translation_pct", "angulation_deg"):
        png = (out / f"bland_altman_{quantity}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 20_000


def test_textbook_table_through_the_command(tmp_path, capsys):
    # Shrout & Fleiss' 6 targets x 4 judges as four "readers'" batch results tables:
    # the command must print ICC(2,1) = 0.29 and ICC(3,1) = 0.71 and match pingouin.
    paths = []
    rng = np.random.default_rng(0)
    for judge in range(4):
        rows = pd.DataFrame(
            {
                "study_instance_uid": [f"1.2.{i}" for i in range(6)],
                "segment": "L4-L5",
                "measured": True,
                "unstable": SHROUT_FLEISS[:, judge] > 5,
                "translation_mm": SHROUT_FLEISS[:, judge],
                "translation_pct": rng.normal(10, 3, 6),
                "angulation_deg": rng.normal(8, 2, 6),
                "flexion_angle_deg": rng.normal(2, 2, 6),
                "extension_angle_deg": rng.normal(10, 2, 6),
            }
        )
        path = tmp_path / f"judge{judge + 1}.csv"
        rows.to_csv(path, index=False)
        paths.append(str(path))
    assert main(["agreement", *paths, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = next(r for r in doc["icc"] if r["quantity"] == "translation_mm")
    assert round(row["icc_2_1"], 2) == 0.29 and round(row["icc_3_1"], 2) == 0.71
    ref = _pingouin_icc(SHROUT_FLEISS)
    assert row["icc_2_1"] == pytest.approx(ref.at["ICC(A,1)", "ICC"], abs=1e-6)
    assert row["icc_3_1_ci95_low"] == pytest.approx(ref.at["ICC(C,1)", "CI95"][0], abs=1e-6)
    assert len(doc["bland_altman"]) == 6 * 5  # 4 judges: 6 pairs per quantity
    assert doc["kappa"][0]["method"] == "fleiss"


def test_unmatched_studies_are_refused_with_a_clear_line(tmp_path, capsys):
    folders, _, _ = reader_study(tmp_path, {"alice": 1.0, "bob": 1.0}, n_studies=6)
    (folders["bob"] / "study05.json").unlink()
    status = main(["agreement", str(folders["alice"]), str(folders["bob"])])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1
    assert "studies do not match" in err and "bob: 1 of 6" in err and "--common" in err
    assert main(["agreement", str(folders["alice"]), str(folders["bob"]), "--common", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["studies"] == 5


def test_readings_without_uids_match_by_film_hashes_and_names(tmp_path):
    folders, _, _ = reader_study(tmp_path, {"r1": 1.0, "r2": 1.5}, n_studies=5, with_uid=False)
    result = agreement([folders["r1"], folders["r2"]], ["first", "second"])
    assert result.matched_by == "film_sha256"
    assert result.readers == ["first", "second"]
    assert len(result.studies) == 5
    # one reader's readings renamed: still matched by the films' hashes
    for path in folders["r2"].glob("*.json"):
        path.rename(path.with_name("renamed_" + path.name))
    assert len(agreement([folders["r1"], folders["r2"]]).studies) == 5


def test_same_reader_twice_is_intra_reader_agreement(tmp_path):
    folders, _, _ = reader_study(tmp_path, {"a": 1.0}, n_studies=8)
    result = agreement([folders["a"], folders["a"]], ["first", "repeat"])
    row = result.icc[result.icc["quantity"] == "translation_mm"].iloc[0]
    assert row["icc_2_1"] == pytest.approx(1.0) and row["sem"] == pytest.approx(0.0, abs=1e-9)
    assert (result.kappa["kappa"].dropna() == 1.0).all()


def test_bad_inputs(tmp_path, capsys):
    folders, _, _ = reader_study(tmp_path, {"a": 1.0, "b": 1.0}, n_studies=4)
    assert main(["agreement", str(folders["a"])]) == 2
    assert "at least two readers" in capsys.readouterr().err
    assert main(["agreement", str(folders["a"]), str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such file or folder" in capsys.readouterr().err
    broken = folders["b"] / "study01.json"
    doc = json.loads(broken.read_text())
    doc["flexion"]["landmarks"]["L3"]["PS"] = "left"
    broken.write_text(json.dumps(doc))
    assert main(["agreement", str(folders["a"]), str(folders["b"])]) == 2
    err = capsys.readouterr().err
    assert "study01.json" in err and "L3.PS" in err and "Traceback" not in err
    # a file of another kind in a reader's folder is listed as ignored, not an error
    broken.write_text(json.dumps({"format": "something-else"}))
    (folders["b"] / "study01.json").rename(folders["b"] / "notes.json")
    (folders["a"] / "study01.json").unlink()
    result = agreement([folders["a"], folders["b"]])
    assert len(result.studies) == 3
    assert any("notes.json" in line for line in result.ignored)
