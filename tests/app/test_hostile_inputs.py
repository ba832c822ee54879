"""Hostile files cost one file and a one-line reason: never a crash, a hang, a memory
blow-up, a measured garbage film or a leaked identifier (issue 10 §2, §3, §7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.dicom_io import load_film, memory_budget_bytes, read_film_header
from app.dicom_io._limits import run_guarded, silenced_stderr
from app.errors import InputFileError, UserError
from tests.app._hostile import (
    FAST_BUDGET_MB,
    SECRETS,
    _deflated_file,
    frame_of,
    hostile_films,
    noisy_film,
    privacy_phantom,
    with_frame,
    write_codec,
)

ROOT = Path(__file__).resolve().parents[2]
CODECS = ("native", "rle", "jpeg-ls", "j2k", "jpeg-lossless", "deflate")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return hostile_films(tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def fast_budget(monkeypatch):
    monkeypatch.setenv("LUMBAR_INSTABILITY_MEMORY_BUDGET_MB", str(FAST_BUDGET_MB))


def _outcome(read, path):
    try:
        return read(path)
    except InputFileError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"{path}: ")
        return exc


def _cli(*args: str, timeout: float = 120, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )


@pytest.mark.timeout(120)
def test_every_hostile_film_gets_its_reason(corpus, fast_budget):
    assert len(corpus) >= 45
    for case in corpus:
        for read in (read_film_header, load_film):
            outcome = _outcome(read, case.path)
            if not isinstance(outcome, InputFileError):
                assert case.expect is None or (case.header_may_pass and read is read_film_header), (
                    case.name, read.__name__)
                continue
            if case.expect is not None:
                assert case.expect in outcome.reason, (case.name, outcome.reason)
            for secret in SECRETS.values():
                assert secret not in str(outcome), (case.name, secret)


def test_batch_scan_reads_every_hostile_film_without_raising(corpus, fast_budget):
    from app.batch._records import Failure
    from app.batch._scan import _read_one

    for case in corpus:
        outcome = _read_one(case.path.parent, case.name)
        if case.expect:
            assert isinstance(outcome, Failure), case.name
            for secret in SECRETS.values():
                assert secret not in outcome.reason


@pytest.mark.timeout(180)
def test_info_on_the_whole_corpus_is_one_clean_run(corpus):
    """One ``info --json`` subprocess over every hostile film: exit 1, a record per file,
    nothing on stderr (no decoder noise, no pydicom warning), no identifier anywhere."""
    paths = [str(case.path) for case in corpus]
    env = {"LUMBAR_INSTABILITY_MEMORY_BUDGET_MB": str(FAST_BUDGET_MB)}
    for extra in ([], ["--header-only"]):
        done = _cli("info", "--json", *extra, *paths, env=env)
        assert done.returncode == 1, done.stderr
        assert done.stderr == ""
        records = json.loads(done.stdout)
        assert [r["path"] for r in records] == paths
        for case, record in zip(corpus, records, strict=True):
            if case.expect and not (extra and case.header_may_pass):
                assert case.expect in (record["error"] or ""), (case.name, record)
        for secret in SECRETS.values():
            assert secret not in done.stdout


@pytest.mark.timeout(240)
def test_privacy_phantom_leaves_no_identifier_in_any_output(tmp_path):
    """The corrupted-header phantoms through ``batch --anonymize``, ``info`` and ``detect``:
    every output file, stdout and stderr is searched for each identifier."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    phantoms = [privacy_phantom(inputs / "ts.dcm"),
                privacy_phantom(inputs / "spacing.dcm", (0x0018, 0x1164)),
                privacy_phantom(inputs / "sop.dcm", (0x0002, 0x0003)),
                _deflated_file(inputs / "bomb.dcm", 3000, 3000)]
    out = tmp_path / "out"
    runs = [
        _cli("batch", str(inputs), "--out", str(out), "--anonymize", "--workers", "1",
             timeout=200, env={"LUMBAR_INSTABILITY_MEMORY_BUDGET_MB": str(FAST_BUDGET_MB)}),
        _cli("info", *map(str, phantoms)),
        _cli("info", "--json", "--header-only", *map(str, phantoms)),
        _cli("detect", *map(str, phantoms), "--out", str(tmp_path / "detected.json")),
    ]
    assert [run.returncode for run in runs] == [1, 1, 1, runs[3].returncode]
    assert runs[3].returncode in (1, 2)
    assert (out / "failures.csv").exists()
    texts = [run.stdout + run.stderr for run in runs]
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.parent != inputs:
            texts.append(path.read_bytes().decode("latin-1"))
    assert len(texts) > 5
    for secret in SECRETS.values():
        for text in texts:
            assert secret not in text, secret
    failures = (out / "failures.csv").read_text()
    assert "TransferSyntaxUID (0002,0010) is not a valid UID" in failures


@pytest.mark.timeout(120)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_never_blocks_a_command(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pipe = folder / "pipe.dcm"
    os.mkfifo(pipe)
    write_codec(folder / "film.dcm", "native")
    info = _cli("info", str(pipe), timeout=60)
    assert info.returncode == 1 and "not a regular file (a named pipe)" in info.stdout
    detect = _cli("detect", str(pipe), "--out", str(tmp_path / "d.json"), timeout=60)
    assert "not a regular file (a named pipe)" in detect.stderr
    track = _cli("track", str(pipe), str(folder / "film.dcm"), "--landmarks",
                 str(tmp_path / "none.json"), "--out", str(tmp_path / "t.json"), timeout=60)
    assert track.returncode == 2 and "Traceback" not in track.stderr
    batch = _cli("batch", str(folder), "--out", str(tmp_path / "out"), "--workers", "1",
                 timeout=100)
    assert batch.returncode == 1, batch.stderr
    failures = (tmp_path / "out" / "failures.csv").read_text()
    assert "pipe.dcm" in failures and "not a regular file (a named pipe)" in failures


def test_truncated_jpeg_ls_is_never_a_film(tmp_path):
    """The issue's case: a JPEG-LS codestream cut in half used to load with garbage rows."""
    good = write_codec(tmp_path / "good.dcm", "jpeg-ls")
    frame = frame_of(good)
    np.testing.assert_array_equal(load_film(good).pixels, noisy_film())
    cut = with_frame(good, tmp_path / "cut.dcm", frame[: len(frame) // 2])
    for read in (read_film_header, load_film):
        assert _outcome(read, cut).reason == (
            "truncated: JPEG-LS codestream without its end-of-image marker")


def test_detection_and_tracking_answer_not_found_on_a_one_pixel_wide_film(tmp_path):
    from app.autolandmarks import detect_film, track_film

    film = load_film(write_codec(tmp_path / "thin.dcm", "native", noisy_film(200, 1)))
    assert detect_film(film).reason == "not found: the film is too small (1 x 200 pixels)"
    corners = np.full((6, 4, 2), 10.0)
    assert not track_film(film, corners, film)


def test_memory_budget_from_parameter_and_environment(tmp_path, monkeypatch):
    path = write_codec(tmp_path / "f.dcm", "native", noisy_film(200, 100))
    need = 200 * 100 * 13
    load_film(path, memory_budget_mb=need / 1e6)  # exactly enough
    with pytest.raises(InputFileError, match="image of 100 x 200 pixels would need about 0 MB"):
        load_film(path, memory_budget_mb=(need - 1) / 1e6)
    monkeypatch.setenv("LUMBAR_INSTABILITY_MEMORY_BUDGET_MB", "0.1")
    assert memory_budget_bytes() == 100_000
    with pytest.raises(InputFileError, match="memory budget of 0 MB"):
        read_film_header(path)
    monkeypatch.setenv("LUMBAR_INSTABILITY_MEMORY_BUDGET_MB", "lots")
    with pytest.raises(UserError, match="LUMBAR_INSTABILITY_MEMORY_BUDGET_MB must be a number"):
        load_film(path)
    monkeypatch.delenv("LUMBAR_INSTABILITY_MEMORY_BUDGET_MB")
    assert memory_budget_bytes() == 2048 * 10**6


def test_header_only_never_inflates_a_deflated_bomb(tmp_path):
    """3000 x 3000 zeros deflated to 18 kB: the header costs kilobytes, the film one array."""
    bomb = _deflated_file(tmp_path / "bomb.dcm", 3000, 3000)
    assert bomb.stat().st_size < 100_000
    tracemalloc.start()
    header = read_film_header(bomb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (header.rows, header.columns) == (3000, 3000)
    assert peak < 12e6  # inflated in 4 MiB blocks and counted, never kept (the film is 18 MB)
    film = load_film(bomb)
    assert film.pixels.shape == (3000, 3000) and not film.pixels.any()
    with pytest.raises(InputFileError, match="memory budget"):
        load_film(bomb, memory_budget_mb=100)


@pytest.mark.parametrize("codec", CODECS)
def test_every_codec_round_trips_through_the_chosen_decoder(tmp_path, codec):
    pixels = noisy_film(120, 90, seed=3)
    film = load_film(write_codec(tmp_path / f"{codec}.dcm", codec, pixels))
    np.testing.assert_array_equal(film.pixels, pixels)


def test_guarded_decoder_survives_an_abort_and_reports_it():
    shape = (3, 4)
    expected = np.arange(12, dtype=np.uint16).reshape(shape)
    np.testing.assert_array_equal(run_guarded(lambda: expected, shape, np.uint16), expected)
    with pytest.raises(RuntimeError, match=r"the decoder crashed \(SIGABRT\)"):
        run_guarded(os.abort, shape, np.uint16)
    with pytest.raises(RuntimeError, match="bad codestream"):
        run_guarded(lambda: (_ for _ in ()).throw(ValueError("bad codestream")), shape, np.uint16)
    with pytest.raises(RuntimeError, match="decoded shape"):
        run_guarded(lambda: np.zeros((2, 2)), shape, np.uint16)


@pytest.mark.timeout(30)
def test_guarded_decoder_is_killed_when_it_hangs():
    import time

    with pytest.raises(RuntimeError, match=r"did not finish within 0\.5 s"):
        run_guarded(lambda: time.sleep(30), (1,), np.uint8, timeout_s=0.5)


def test_silenced_stderr_restores_the_descriptor(capfd):
    with silenced_stderr(), silenced_stderr():
        os.write(2, b"decoder noise\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


# ----------------------------------------------------------------------------- properties


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    pixels = noisy_film(40, 36, seed=5)
    return pixels, {codec: write_codec(folder / f"{codec}.dcm", codec, pixels).read_bytes()
                    for codec in CODECS}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(codec=st.sampled_from(CODECS), fraction=st.floats(0.0, 1.0))
def test_a_truncated_film_is_an_error_or_the_exact_film(seeds, tmp_path, codec, fraction):
    pixels, files = seeds
    data = files[codec]
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: int(len(data) * fraction)])
    outcome = _outcome(load_film, cut)
    if not isinstance(outcome, InputFileError):  # only trailing padding was cut
        np.testing.assert_array_equal(outcome.pixels, pixels)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(codec=st.sampled_from(CODECS), flips=st.lists(
    st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), min_size=1,
    max_size=8))
def test_flipped_bytes_give_a_film_or_one_line(seeds, tmp_path, codec, flips):
    _, files = seeds
    data = bytearray(files[codec])
    for where, value in flips:
        data[int(where * len(data))] = value
    damaged = tmp_path / "damaged.dcm"
    damaged.write_bytes(bytes(data))
    for read in (read_film_header, load_film):
        _outcome(read, damaged)  # a Film or a one-line InputFileError, nothing else


def test_info_shows_free_text_only_when_asked(tmp_path):
    from app.commands.info import describe

    path = write_codec(tmp_path / "f.dcm", "native", SeriesDescription="LAT FLEX Mustermann",
                       WindowCenter=2000, WindowWidth=4000,
                       WindowCenterWidthExplanation="Dr Mustermann's window")
    quiet = describe(str(path))
    assert quiet["view_evidence"] == "SeriesDescription [text] -> flexion"
    assert quiet["series_description"] is None
    assert "Mustermann" not in json.dumps(quiet)
    loud = describe(str(path), free_text=True)
    assert loud["view_evidence"] == "SeriesDescription 'LAT FLEX Mustermann' -> flexion"
    assert loud["series_description"] == "LAT FLEX Mustermann"
    assert "Dr Mustermann's window" in loud["window_source"]


def test_track_refuses_a_deeply_nested_landmarks_file_in_one_line(tmp_path):
    from tests.app._hostile import deep_json

    films = [write_codec(tmp_path / f"{v}.dcm", "native") for v in ("flexion", "extension")]
    nested = tmp_path / "nested.json"
    nested.write_text(deep_json())
    done = _cli("track", *map(str, films), "--landmarks", str(nested), "--out",
                str(tmp_path / "out.json"), timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"lumbar-instability: {nested}: JSON nested more than 64 levels deep: not a file of "
        "this tool"]
