"""``batch --config batch.toml``: options and criteria from a TOML file, flags override."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.batch._config import DEFAULTS, batch_options, load_config
from app.cli import build_parser
from app.commands.batch import options_from_args
from app.errors import InputFileError, UserError


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_keys_paths_and_criteria_table(tmp_path: Path):
    (tmp_path / "conf").mkdir()
    cfg = _write(tmp_path / "conf" / "batch.toml", """
input_dir = "../export"
out = "results"
landmarks = "/abs/landmarks"
workers = 3
scheduler = "local"
anonymize = true
plots = false

[criteria]
name = "clinic"
translation_mm = 4.5
angulation_deg = { "L4-L5" = 12.0, "*" = 10.0 }
""")
    options = load_config(cfg)
    assert options["input_dir"] == (tmp_path / "conf" / "../export")
    assert options["out_dir"] == tmp_path / "conf" / "results"
    assert options["landmarks_dir"] == Path("/abs/landmarks")
    assert (options["workers"], options["scheduler"], options["anonymize"], options["plots"]) == (
        3, "local", True, False
    )
    criteria = options["criteria"]
    assert criteria.name == "clinic"
    assert criteria.threshold("translation_mm", "L2-L3") == 4.5
    assert criteria.threshold("angulation_deg", "L4-L5") == 12.0
    assert criteria.threshold("angulation_deg", "L5-S1") == 10.0


def test_criteria_as_preset_or_settings_file(tmp_path: Path):
    (tmp_path / "clinic.json").write_text(json.dumps({"name": "json clinic", "translation_mm": 3.0}))
    assert load_config(_write(tmp_path / "a.toml", 'criteria = "white-panjabi"'))[
        "criteria"].name == "white-panjabi"
    from_file = load_config(_write(tmp_path / "b.toml", 'criteria = "clinic.json"'))["criteria"]
    assert (from_file.name, from_file.threshold("translation_mm", "L4-L5")) == ("json clinic", 3.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wokers = 2", "unknown key 'wokers' (known: input_dir, out, landmarks"),
        ('workers = "two"', "key workers: expected an integer, got a string"),
        ("workers = 0", "key workers: must be at least 1"),
        ("anonymize = 1", "key anonymize: expected a boolean, got an integer"),
        ("out = 5", "key out: expected a string, got an integer"),
        ("[criteria]\ntranslation_mm = -1", "key criteria.translation_mm"),
        ("[criteria]\nname = 'x'", "key criteria: at least one of"),
        ('criteria = "strict"', "key criteria: strict: neither a criteria preset"),
        ("workers = ", "not a TOML file"),
    ],
)
def test_bad_files_name_the_file_and_the_key(tmp_path: Path, text, message):
    cfg = _write(tmp_path / "bad.toml", text)
    with pytest.raises(UserError) as info:
        load_config(cfg)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    if isinstance(info.value, InputFileError):
        assert str(cfg) in str(info.value)


def test_flags_override_the_file_and_defaults_fill_the_rest(tmp_path: Path):
    cfg = _write(tmp_path / "batch.toml", """
input_dir = "export"
out = "results"
workers = 2
anonymize = true
criteria = "white-panjabi"
""")
    parser = build_parser()
    args = parser.parse_args(["batch", "--config", str(cfg)])
    options = options_from_args(args)
    assert options.input_dir == tmp_path / "export" and options.out_dir == tmp_path / "results"
    assert (options.workers, options.anonymize, options.criteria.name) == (2, True, "white-panjabi")
    assert (options.pdf, options.plots, options.quiet) == (DEFAULTS["pdf"], True, False)
    args = parser.parse_args(["batch", "other/", "--config", str(cfg), "--out", "elsewhere",
                              "--workers", "1", "--no-anonymize", "--criteria", "default",
                              "--no-plots"])
    options = options_from_args(args)
    assert options.input_dir == Path("other/") and options.out_dir == Path("elsewhere")
    assert (options.workers, options.anonymize, options.criteria.name, options.plots) == (
        1, False, "default", False
    )
    # without a config, the command line alone
    options = options_from_args(parser.parse_args(["batch", "in/", "--out", "res/"]))
    assert (options.workers, options.criteria.name, options.plots) == (1, "default", True)
    with pytest.raises(UserError, match="--out is required"):
        options_from_args(parser.parse_args(["batch", "in/"]))
    with pytest.raises(UserError, match="INPUT_DIR is required"):
        options_from_args(parser.parse_args(["batch", "--out", "res/"]))
    with pytest.raises(UserError, match="--workers: must be at least 1"):
        options_from_args(parser.parse_args(["batch", "in/", "--out", "r", "--workers", "0"]))


def test_api_style_options_and_mapping_criteria(tmp_path: Path):
    options = batch_options(None, input_dir=tmp_path, out_dir=tmp_path / "r",
                            criteria={"translation_mm": 5.0, "name": "five"})
    assert (options.criteria.name, options.criteria.threshold("translation_mm", "L1-L2")) == (
        "five", 5.0
    )
    with pytest.raises(UserError, match="criteria: "):
        batch_options(None, input_dir=tmp_path, out_dir=tmp_path / "r", criteria={"bad": 1})
    with pytest.raises(UserError, match="unknown batch option 'colour'"):
        batch_options(None, input_dir=tmp_path, out_dir=tmp_path / "r", colour="red")
