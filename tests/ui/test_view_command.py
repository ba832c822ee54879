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
