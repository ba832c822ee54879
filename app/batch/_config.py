"""The batch configuration file (TOML): options and criteria, ``--config batch.toml``.

Example (every key optional; command-line flags override the file)::

    input_dir = "export"              # relative paths: from the config file's folder
    out = "results"
    landmarks = "landmarks"
    workers = 2
    scheduler = "local"               # or "tcp://HOST:PORT"
    anonymize = true
    plots = true

    [criteria]                        # or: criteria = "white-panjabi" / "clinic.json"
    name = "clinic 2026"
    translation_mm = 4.0
    angulation_deg = { "L4-L5" = 12.0, "L5-S1" = 15.0, "*" = 10.0 }

See ``docs/batch.md`` (Configuration file).
"""

from __future__ import annotations

import tomllib
from os import PathLike
from pathlib import Path
from typing import Any

from app.errors import InputFileError

__all__ = ["CONFIG_KEYS", "DEFAULTS", "batch_options", "load_config"]

#: TOML key -> (kind, BatchOptions field).  Kinds: path, int, str, bool, criteria.
CONFIG_KEYS: dict[str, tuple[str, str]] = {
    "input_dir": ("path", "input_dir"),
    "out": ("path", "out_dir"),
    "landmarks": ("path", "landmarks_dir"),
    "manifest": ("path", "manifest"),
    "workers": ("int", "workers"),
    "scheduler": ("str", "scheduler"),
    "criteria": ("criteria", "criteria"),
    "anonymize": ("bool", "anonymize"),
    "salt_file": ("path", "salt_file"),
    "pdf": ("bool", "pdf"),
    "sr": ("bool", "sr"),
    "retry_failed": ("bool", "retry_failed"),
    "acknowledge_safety": ("bool", "acknowledge_safety"),
    "quiet": ("bool", "quiet"),
    "plots": ("bool", "plots"),
    "force": ("bool", "force"),
}


#: Values of the options neither the caller nor the file sets (BatchOptions fields).
DEFAULTS: dict[str, Any] = {
    "workers": 1, "scheduler": None, "landmarks_dir": None, "manifest": None,
    "criteria": "default", "anonymize": False, "salt_file": None, "pdf": False, "sr": False,
    "retry_failed": False, "acknowledge_safety": False, "quiet": False, "plots": True, "force": False,
}  # fmt: skip


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            dict: "a table", list: "an array"}.get(type(value), type(value).__name__)


def _criteria(value: Any, base: Path, path: Path):
    from app.landmarks_io import read_criteria
    from measure import Criteria

    if isinstance(value, str):
        candidate = base / value
        # a settings file next to the config, else a preset name (or an absolute path)
        try:
            return read_criteria(candidate if candidate.suffix.lower() == ".json" else value)
        except InputFileError as exc:
            raise InputFileError(path, f"key criteria: {exc}") from None
    if isinstance(value, dict):
        try:
            return Criteria.from_dict(value, name="custom")
        except (TypeError, ValueError) as exc:
            text = str(exc)
            where = "" if text.startswith("criteria:") else "criteria."
            raise InputFileError(path, f"key {where}{text}") from None
    raise InputFileError(
        path, f"key criteria: expected a preset name, a settings file or a table, got {_type_name(value)}"
    )


def load_config(path: str | PathLike[str]) -> dict[str, Any]:
    """Read and check a batch configuration file.

    Parameters
    ----------
    path : path-like
        The TOML file.

    Returns
    -------
    dict
        :class:`app.batch.BatchOptions` field names to values: paths resolved
        against the file's folder, criteria as :class:`measure.Criteria`.

    Raises
    ------
    InputFileError
        One line naming the file and the key: not TOML, an unknown key (with
        the known ones), a value of the wrong type.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"cannot be read ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputFileError(path, f"not a TOML file: {exc}") from None
    base = path.resolve().parent
    options: dict[str, Any] = {}
    for key, value in data.items():
        if key not in CONFIG_KEYS:
            raise InputFileError(
                path, f"unknown key {key!r} (known: {', '.join(CONFIG_KEYS)})"
            )
        kind, name = CONFIG_KEYS[key]
        if kind == "criteria":
            options[name] = _criteria(value, base, path)
            continue
        expected = {"path": str, "str": str, "int": int, "bool": bool}[kind]
        if not isinstance(value, expected) or (kind == "int" and isinstance(value, bool)):
            raise InputFileError(
                path, f"key {key}: expected {_type_name(expected())}, got {_type_name(value)}"
            )
        if kind == "int" and value < 1:
            raise InputFileError(path, f"key {key}: must be at least 1, got {value}")
        if kind == "path":
            if not value.strip():
                raise InputFileError(path, f"key {key}: empty path")
            value = base / Path(value).expanduser()
            if key == "salt_file":
                value = str(value)
        options[name] = value
    return options



def batch_options(config: str | PathLike[str] | None = None, **given: Any):
    """:class:`app.batch.BatchOptions` from a config file, overridden by ``given``.

    Parameters
    ----------
    config : path-like, optional
        The TOML file (:func:`load_config`).
    **given
        BatchOptions fields; a value of None means "not given" (the file's
        value, else :data:`DEFAULTS`, applies).  ``criteria`` may be a preset
        name, a settings file, a mapping or a :class:`measure.Criteria`.

    Raises
    ------
    UserError
        No input or results folder, fewer than one worker, bad criteria.
    """
    from app.batch._run import BatchOptions
    from app.errors import UserError
    from app.landmarks_io import read_criteria
    from measure import get_criteria

    settings: dict[str, Any] = dict(DEFAULTS)
    if config is not None:
        settings.update(load_config(config))
    settings.update({k: v for k, v in given.items() if v is not None})
    criteria = settings["criteria"]
    if isinstance(criteria, str | PathLike):
        settings["criteria"] = read_criteria(criteria)
    else:
        try:
            settings["criteria"] = get_criteria(criteria)
        except ValueError as exc:
            raise UserError(f"criteria: {exc}") from None
    if settings.get("input_dir") is None:
        raise UserError("INPUT_DIR is required (on the command line or as input_dir in --config)")
    if settings.get("out_dir") is None:
        raise UserError("--out is required (on the command line or as out in --config)")
    if int(settings["workers"]) < 1:
        raise UserError(f"--workers: must be at least 1, got {settings['workers']}")
    unknown = sorted(set(settings) - set(BatchOptions.__dataclass_fields__))
    if unknown:
        raise UserError(f"unknown batch option {unknown[0]!r}")
    return BatchOptions(**settings)
