"""Screenshots of the viewer for the docs and for looking at it (run under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb \\
        .venv/bin/python scripts/viewer_screenshots.py OUT_DIR [--films sample_dicoms]

Writes ``first-launch.png``, ``films-open-hint.png``, ``auto-in-progress.png``,
``auto-done.png``, ``guided-diagram.png``, ``help-shortcuts.png``,
``stabilised-centre-of-rotation.png``, ``export-ruler-angle.png``,
``export-reader-dialog.png``, ``export-dialog.png``, ``export-dialog-anonymised.png``,
``export-status.png`` (and the exported files in ``export/``) and ``review-warnings.png``.  Uses a
throw-away state directory (no recovery file of the user is touched).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--films", type=Path, default=ROOT / "sample_dicoms")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    state = tempfile.TemporaryDirectory()
    os.environ["LUMBAR_INSTABILITY_STATE_DIR"] = state.name

    import numpy as np
    from PySide6.QtWidgets import QApplication

    from app.landmarks_io import read_landmarks
    from app.session import Session
    from ui.qt_main_window import QtMainWindow

    app = QApplication.instance() or QApplication([])
    window = QtMainWindow(Session(recovery_path=Path(state.name) / "recovery.autosave.json"))
    window.ask_close = lambda: "discard"
    window.resize(1500, 950)
    window.show()

    def settle(seconds: float = 0.3) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)

    def shoot(name: str, widget=None) -> None:
        settle()
        (widget or window).grab().save(str(args.out / name))
        print(args.out / name)

    shoot("first-launch.png")
    films = [str(args.films / "flexion.dcm"), str(args.films / "extension.dcm")]
    window.auto.worker.warm_up().result()  # the worker process is started with the window
    window.open_films_in_background(films)  # decoded in the worker: progress, Esc cancels
    settle(0.1)
    (window.grab()).save(str(args.out / "open-in-progress.png"))
    print(args.out / "open-in-progress.png")
    window.tasks.wait(120)
    shoot("films-open-hint.png", None)

    window.actions_by_name["auto"].trigger()
    deadline = time.perf_counter() + 120
    while window.tasks.busy and (window.tasks.task.fraction < 0.45) and time.perf_counter() < deadline:
        settle(0.05)
    shoot("auto-in-progress.png")
    window.tasks.wait(180)
    shoot("auto-done.png")

    # guided placement on an empty session: the corner diagram and the loupe
    truth = read_landmarks(args.films / "truth.json")
    window.session.undo()
    window.set_guided(True)
    for v in range(2):
        for c in range(4):
            window.session.set_corner("flexion", v, c, truth.flexion.corners[v, c])
    view = window.views["flexion"]
    target = truth.flexion.corners[2, 2]
    from PySide6.QtCore import QPointF

    view._pointer = QPointF(*view.image_to_widget(*target).toTuple())
    view.update()
    shoot("guided-diagram.png")
    view._pointer = None
    window.set_guided(False)

    window.actions_by_name["help_shortcuts"].trigger()
    settle()
    shoot("help-shortcuts.png", window.help_dialog)
    window.help_dialog.close()

    for role in ("flexion", "extension"):
        window.session.set_landmarks(role, np.asarray(truth.film(role).corners, float))
    window.session.selected_segment = 3
    window.show_comparison()
    comparison = getattr(window, "comparison", None)
    if comparison is not None and comparison.isVisible():
        comparison.resize(1100, 800)
        shoot("stabilised-centre-of-rotation.png", comparison)
        comparison.close()

    # the reader's own ruler and angle (issue #13 §4): a ruler across L3's superior endplate
    # and the angle between L1's superior and S1's superior endplates (lumbar lordosis)
    ext = np.asarray(truth.extension.corners, float)
    flex = np.asarray(truth.flexion.corners, float)
    window.session.add_annotation("flexion", "ruler", [flex[2, 0], flex[2, 1]])
    window.session.add_annotation("flexion", "angle", [flex[3, 1], flex[3, 2], flex[4, 1]])
    window.session.add_annotation("extension", "angle", [ext[0, 0], ext[0, 1], ext[5, 0], ext[5, 1]])
    window.annotation_tools.set_tool("ruler")
    window.session.set_reader("Dr Example", "Ruler across L3's superior endplate; lordosis L1-S1.")
    shoot("export-ruler-angle.png")
    window.annotation_tools.set_tool(None)
    reader = window.reader_dialog.make_dialog()
    reader.show()
    shoot("export-reader-dialog.png", reader)
    reader.close()
    dialog = window.exporter.make_dialog()
    dialog.show()
    shoot("export-dialog.png", dialog)
    dialog.anonymise_box.setChecked(True)
    shoot("export-dialog-anonymised.png", dialog)
    choice = dialog.choice()
    dialog.close()
    exported = args.out / "export"
    exported.mkdir(exist_ok=True)
    window.exporter.ask_overwrite = lambda paths: True
    window.exporter.export(type(choice)(exported, choice.stem, ("pdf", "sr", "csv", "png"), False))
    window.tasks.wait(120)
    settle(0.5)
    print(window.exporter.last_status)
    shoot("export-status.png")

    # the Calibration cell with two different sources (it used to be cut off)
    from app.session import ManualCalibration

    window.session.set_manual_calibration("flexion", ManualCalibration((10.0, 10.0), (110.0, 10.0), 15.0))
    shoot("calibration-cell.png", window.results)
    window.session.undo()

    session_file = Path(state.name) / "review" / "session.json"
    session_file.parent.mkdir()
    window.session.save(session_file)
    doc = json.loads(session_file.read_text())
    doc["reader"] = doc.get("reader") or {"name": "Dr Example", "comment": "screenshot"}
    session_file.write_text(json.dumps(doc))
    window.review.open_review(session_file)
    shoot("review-warnings.png")

    # a report saved with labels still to confirm: Enter works in review mode too
    window.review.enter_edit()
    window.session.request_label_review("extension film: low label confidence (L1 0.40 < 0.50)")
    labels_file = session_file.with_name("labels.json")
    window.session.save(labels_file)
    window.review.open_review(labels_file)
    shoot("review-labels-to-confirm.png")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
