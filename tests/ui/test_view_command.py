"""``lumbar-instability view``: argument checks (the window itself: tests/ui)."""

import pytest

from ui.launcher import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["view", "--sample", "x.dcm"], "--sample: give either --sample, FILES or --session"),
        (["view", "a.dcm", "--session", "s.json"], "--session: give either FILES or --session"),
        (["view", "nope.dcm"], "nope.dcm: no such file or folder"),
        (["view", "--session", "nope.json"], "nope.json: no such session file"),
    ],
)
def test_bad_arguments_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lumbar-instability: {message}")
    assert err.count("\n") == 1  # one line, no traceback


def test_landmarks_need_films(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.json").write_text("{}")
    assert main(["view", "--landmarks", "m.json"]) == 2
    assert "--landmarks: give the films too" in capsys.readouterr().err


def test_no_display_is_a_clear_message(tmp_path, capsys, monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    film = tmp_path / "a.dcm"
    film.write_bytes(b"x")
    assert main(["view", str(film)]) == 2
    assert "no display to open the viewer on" in capsys.readouterr().err


def test_headless_install_says_how_to_get_the_viewer():
    """No PySide6 (``install.sh --headless``): one line naming the install, no traceback."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; sys.modules['PySide6'] = None\n"  # as if PySide6 were not installed
        "from ui.launcher import main; sys.exit(main(['view', '--sample']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("lumbar-instability: the viewer needs PySide6")
    assert "scripts/install.sh" in done.stderr and "[viewer]" in done.stderr
    # the other commands of the script need no Qt at all
    code = "import sys; sys.modules['PySide6'] = None\nfrom ui.launcher import main; sys.exit(main(['--help']))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 0 and "usage: lumbar-instability" in done.stdout
