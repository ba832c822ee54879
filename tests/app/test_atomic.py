from pathlib import Path

import pytest

from app.atomic import atomic_open, atomic_write_text


def test_atomic_write_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.json"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_failed_write_keeps_last_good_file(tmp_path: Path) -> None:
    target = tmp_path / "session.json"
    atomic_write_text(target, "good")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write("half-writ")
        raise RuntimeError("disk full")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["session.json"]


def test_written_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "report.csv", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "report.csv").stat().st_mode & 0o777 == 0o644
