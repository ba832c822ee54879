"""File › Export…: one dialog for PDF, SR, CSV and PNG, names from the study, anonymise,
last folder remembered, overwrite asked, safety gate kept, written off the UI thread."""

from __future__ import annotations

import json
import shutil
import subprocess

import pydicom
import pytest

from tests.ui.conftest import SAMPLE_DIR
from tests.ui.test_sample_study import truth_arrays
from ui.export_dialog import ExportChoice, QtExportController

pytestmark = pytest.mark.skipif(not (SAMPLE_DIR / "truth.json").exists(), reason="sample study absent")

STEM = "2024-02-12_flexion-extension_S1-2"  # the sample: acquired 2024-02-12, series 1 and 2


@pytest.fixture
def films(tmp_path):
    folder = tmp_path / "films"
    folder.mkdir()
    for name in ("flexion.dcm", "extension.dcm"):
        shutil.copyfile(SAMPLE_DIR / name, folder / name)
    return folder


@pytest.fixture
def window(make_window, films):
    from app.dicom_io import load_film

    window = make_window(loader=load_film)
    assert window.open_paths([str(films / "flexion.dcm"), str(films / "extension.dcm")])
    truth = json.loads((SAMPLE_DIR / "truth.json").read_text())
    for role in ("flexion", "extension"):
        window.session.set_landmarks(role, truth_arrays(truth, role))
    return window


def _export(qtbot, window, choice) -> bool:
    with qtbot.waitSignal(window.tasks.finished, timeout=120_000) as done:
        assert window.exporter.export(choice)
    assert done.args[1] == "done"
    return True


def test_dialog_defaults_from_the_study_and_the_films_folder(qtbot, window, films):
    exporter = window.exporter
    assert window.actions_by_name["export_report"].shortcut().toString() == "Ctrl+E"
    dialog = exporter.make_dialog()
    choice = dialog.choice()
    assert choice.folder == films.resolve()  # never the current directory
    assert choice.stem == STEM
    assert choice.formats == ("pdf", "sr", "csv", "png") and not choice.anonymise
    assert [p.name for p in choice.paths()] == [f"{STEM}.pdf", f"{STEM}_SR.dcm", f"{STEM}.csv",
                                                f"{STEM}_films.png"]
    # nothing ticked: Export is disabled
    for box in dialog.format_boxes.values():
        box.setChecked(False)
    assert not dialog.buttons.buttons()[0].isEnabled() or "Tick at least one" in dialog.preview.text()
    dialog.close()


def test_export_writes_every_format_and_remembers_the_folder(qtbot, window, films, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    choice = ExportChoice(out, STEM, ("pdf", "sr", "csv", "png"), False)
    _export(qtbot, window, choice)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in choice.paths())
    status = window.exporter.last_status
    assert status.startswith(f"Exported to {out}:") and all(n in status for n in names)
    assert window.statusBar().currentMessage() == status
    # the SR is valid and names the patient (not anonymised)
    assert str(pydicom.dcmread(out / f"{STEM}_SR.dcm").PatientName) == "PHANTOM^SEED42"
    # the CSV has the five segments
    assert len((out / f"{STEM}.csv").read_text().splitlines()) == 6
    # the next dialog (even of a new window) starts in the folder last exported to
    again = QtExportController(window)
    assert again.default_folder() == out.resolve()
    assert again.default_formats() == ["pdf", "sr", "csv", "png"]


def test_existing_files_are_replaced_only_when_the_reader_agrees(qtbot, window, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{STEM}.csv").write_text("keep me\n")
    asked = []
    window.exporter.ask_overwrite = lambda paths: asked.append([p.name for p in paths]) or False
    choice = ExportChoice(out, STEM, ("csv", "png"), False)
    assert not window.exporter.export(choice)
    assert asked == [[f"{STEM}.csv"]]
    assert (out / f"{STEM}.csv").read_text() == "keep me\n" and not (out / f"{STEM}_films.png").exists()
    window.exporter.ask_overwrite = lambda paths: True
    _export(qtbot, window, choice)
    assert (out / f"{STEM}.csv").read_text().startswith("segment,")


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_anonymised_export_from_the_dialog(qtbot, window, tmp_path):
    out = tmp_path / "anon"
    out.mkdir()
    dialog = window.exporter.make_dialog()
    dialog.folder_edit.setText(str(out))
    assert not dialog.burned_in_note.isVisibleTo(dialog)
    dialog.anonymise_box.setChecked(True)
    assert dialog.burned_in_note.isVisibleTo(dialog) and "burned into" in dialog.burned_in_note.text()
    choice = dialog.choice()
    dialog.close()
    assert choice.anonymise and choice.stem == STEM  # dates and series numbers only
    _export(qtbot, window, choice)
    assert "(anonymised)" in window.exporter.last_status
    text = subprocess.run(["pdftotext", str(out / f"{STEM}.pdf"), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    assert "anonymised" in text and "SEED42" not in text and "PHANTOM-42" not in text
    sr = pydicom.dcmread(out / f"{STEM}_SR.dcm")
    assert str(sr.PatientName) == "" and sr.PatientID == "" and sr.PatientIdentityRemoved == "YES"
    for path in out.iterdir():
        data = path.read_bytes()
        assert b"SEED42" not in data and b"PHANTOM-42" not in data, path.name


def test_failure_names_the_file_and_the_others_are_written(qtbot, window, films, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (films / "extension.dcm").unlink()  # the SR must reference the films on disk
    _export(qtbot, window, ExportChoice(out, "case", ("pdf", "sr", "csv"), False))
    assert sorted(p.name for p in out.iterdir()) == ["case.csv", "case.pdf"]
    status = window.exporter.last_status
    assert "case.pdf, case.csv" in status and "FAILED: case_SR.dcm (" in status
    assert any(m.startswith(f"{out / 'case_SR.dcm'}: not written:") for m in window.banner.messages("error"))


def test_safety_gate_blocks_the_dialog_export(qtbot, make_window, tmp_path):
    from app.dicom_io import load_film

    window = make_window(loader=load_film)
    flexion = str(SAMPLE_DIR / "flexion.dcm")
    assert window.open_paths([flexion, flexion])
    out = tmp_path / "out"
    out.mkdir()
    choice = ExportChoice(out, "case", ("pdf", "csv"), False)
    assert not window.exporter.export(choice)
    assert list(out.iterdir()) == []
    assert any("export refused" in m for m in window.banner.messages("error"))
    window.session.acknowledge_safety()
    _export(qtbot, window, choice)
    assert sorted(p.name for p in out.iterdir()) == ["case.csv", "case.pdf"]


def test_file_export_action_opens_the_dialog(qtbot, window):
    shown = []
    window.exporter.ask_choice = lambda dialog: shown.append(dialog.choice()) or None
    window.actions_by_name["export_report"].trigger()
    assert len(shown) == 1 and shown[0].stem == STEM  # cancelled: nothing written, no task
    assert not window.tasks.busy
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    assert window.actions_by_name["export_report"] in file_menu.actions()
