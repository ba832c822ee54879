"""``lumbar-instability report``: every output, SR input, bad input."""

from __future__ import annotations

import json
import shutil

import pytest

from app.cli import main
from app.report_sr import read_sr
from tests.app import _report_fixtures as fx


@pytest.fixture
def study(tmp_path):
    return fx.make_study(tmp_path / "study", measured=True)


def test_every_output(study, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["report", str(study), "--pdf", str(out / "r.pdf"), "--sr", str(out / "r.dcm"),
                   "--csv", str(out / "r.csv"), "--json", str(out / "r.json"),
                   "--png", str(out / "r.png")])
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ["r.csv", "r.dcm", "r.json", "r.pdf",
                                                     "r.png"]
    assert (out / "r.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "r.png").read_bytes().startswith(b"\x89PNG")
    assert dict(read_sr(out / "r.dcm")) == fx.without_paths(json.loads(study.read_text()))
    table = json.loads((out / "r.json").read_text())
    assert table["segments"] == json.loads(study.read_text())["results"]["segments"]
    assert table["stored_values_differ"] == [] and table["measured_from_landmarks"] is False
    assert capsys.readouterr().err == ""


def test_sr_as_input_finds_films_by_uid(study, tmp_path):
    out = tmp_path / "out"
    assert main(["report", str(study), "--sr", str(out / "r.dcm"), "--csv",
                 str(out / "a.csv")]) == 0
    moved = tmp_path / "elsewhere" / "deep"
    moved.mkdir(parents=True)
    for name in ("flexion.dcm", "extension.dcm"):  # renamed: only the UID can match them
        shutil.move(study.parent / name, moved / f"IMG{name[:3]}")
    assert main(["report", str(out / "r.dcm"), "--csv", str(out / "b.csv"),
                 "--images", str(tmp_path / "elsewhere")]) == 0
    assert (out / "a.csv").read_text() == (out / "b.csv").read_text()
    assert ",ok," in (out / "b.csv").read_text()


def test_changed_image_flagged_and_sr_refused(study, tmp_path, capsys):
    with open(study.parent / "flexion.dcm", "ab") as handle:
        handle.write(b"\0\0")
    assert main(["report", str(study), "--csv", str(tmp_path / "t.csv")]) == 1
    err = capsys.readouterr().err
    assert "CHANGED since it was measured" in err
    assert ",changed," in (tmp_path / "t.csv").read_text()
    status = main(["report", str(study), "--sr", str(tmp_path / "r.dcm"), "--pdf",
                   str(tmp_path / "r.pdf")])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SHA-256 mismatch" in err
    assert not (tmp_path / "r.dcm").exists() and not (tmp_path / "r.pdf").exists()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]",
                                     '{"format": "something-else"}',
                                     '{"levels": ["L1"], "flexion": {}}'])
def test_corrupt_session_one_line_and_keeps_last_good_file(tmp_path, capsys, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "r.csv"
    out.write_text("last good\n")
    assert main(["report", str(bad), "--csv", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err
    assert "Traceback" not in err
    assert out.read_text() == "last good\n"


def test_corrupt_sr_input(tmp_path, capsys):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    assert main(["report", str(bad), "--csv", str(tmp_path / "r.csv")]) == 2
    assert str(bad) in capsys.readouterr().err


def test_needs_an_output(study, capsys):
    assert main(["report", str(study)]) == 2
    assert "nothing to write" in capsys.readouterr().err


def test_refuses_to_overwrite_its_input(study, capsys):
    assert main(["report", str(study), "--json", str(study)]) == 2
    assert "overwrite the input" in capsys.readouterr().err


def test_pdf_from_sr_without_films_identifies_the_patient_from_the_sr(study, tmp_path):
    import subprocess

    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils not installed")
    sr = tmp_path / "r.dcm"
    assert main(["report", str(study), "--sr", str(sr)]) == 0
    (study.parent / "flexion.dcm").unlink()
    (study.parent / "extension.dcm").unlink()
    assert main(["report", str(sr), "--pdf", str(tmp_path / "r.pdf")]) == 0
    text = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    flat = " ".join(text.split())
    assert "PHANTOM, Lumbar; ID PHANTOM-001" in flat
    assert "The films are not shown" in flat
    assert "image not found" in flat


def test_unwritable_output_is_one_line_and_writes_nothing(study, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    good = tmp_path / "r.csv"
    status = main(["report", str(study), "--csv", str(good),
                   "--pdf", str(blocker / "sub" / "r.pdf")])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert "\n" not in err and "internal error" not in err
    assert str(blocker / "sub" / "r.pdf") in err and "cannot write here" in err
    assert not good.exists()
