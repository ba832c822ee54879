"""Strict reading of the project's JSON files (landmarks, sessions, criteria, batch inputs).

Python's ``json`` module accepts what these files must not hold: a key given
twice (the last copy silently wins), ``NaN`` and ``Infinity``, numbers such as
``1e999`` that overflow to infinity, and nesting deep enough to raise
``RecursionError``.  :func:`read_json` and :func:`parse_json` refuse each with an
:class:`~app.errors.InputFileError` naming the file and the key, so that a bad
file costs that file and never the run.
"""

from __future__ import annotations

import json
import math
import os
import stat
from os import PathLike
from pathlib import Path
from typing import Any

from app.errors import InputFileError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "key_path", "parse_json", "read_json"]

#: Deepest nesting of objects and arrays accepted (a session file needs 5).
MAX_DEPTH = 64
#: Largest file read (a session of a few studies is a few hundred kB).
MAX_BYTES = 64 * 1024 * 1024

class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def key_path(parts: list[str | int]) -> str:
    """``["flexion", "landmarks", "L4"]`` -> ``"flexion.landmarks.L4"``; ``[... 0]`` -> ``"levels[0]"``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text or "(top level)"


class _NotFinite:
    """Stands for a number that is not allowed, until its key is known."""

    def __init__(self, text: str) -> None:
        self.text = text


def _check_tree(doc: Any, path: str | PathLike[str]) -> None:
    """Depth and numbers of a parsed document, walked without recursion."""
    stack: list[tuple[Any, list[str | int]]] = [(doc, [])]
    while stack:
        node, parts = stack.pop()
        if isinstance(node, _NotFinite):
            raise InputFileError(
                path, f"key {key_path(parts)}: {node.text} is not allowed (numbers must be finite)"
            )
        if not isinstance(node, dict | list):
            continue
        if len(parts) >= MAX_DEPTH:
            raise InputFileError(path, f"JSON nested more than {MAX_DEPTH} levels deep: not a file of this tool")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend((v, [*parts, k]) for k, v in reversed(list(items)))


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _float(text: str) -> float | _NotFinite:
    value = float(text)
    return value if math.isfinite(value) else _NotFinite(text)


def _int(text: str) -> int | _NotFinite:
    # Python refuses to convert integers of more than 4300 digits; none of ours
    # needs more than 20, and 300 digits no longer fits a float.
    return int(text) if len(text) <= 300 else _NotFinite(f"an integer of {len(text)} digits")


def _constant(name: str) -> _NotFinite:
    return _NotFinite(name)


def _duplicate_location(raw: bytes, key: str) -> str:
    """The key path of the first object holding ``key`` twice (parsing again, leniently)."""
    doc = json.loads(raw, object_pairs_hook=lambda pairs: _Marked(pairs))
    stack: list[tuple[Any, list[str | int]]] = [(doc, [])]
    while stack:
        node, parts = stack.pop()
        if isinstance(node, _Marked):
            if node.duplicate == key:
                return key_path([*parts, key])
            stack.extend((v, [*parts, k]) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, [*parts, i]) for i, v in reversed(list(enumerate(node))))
    return key


class _Marked(dict):
    """An object remembering the first key it held twice (for the message)."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.duplicate: str | None = None
        for k, v in pairs:
            if k in self and self.duplicate is None:
                self.duplicate = k
            self[k] = v


def parse_json(raw: bytes | str, path: str | PathLike[str] = "<json>") -> Any:
    """Parse JSON text strictly.

    Parameters
    ----------
    raw : bytes or str
        The document (UTF-8 when bytes).
    path : path-like
        Named in the error.

    Returns
    -------
    Any
        The document; objects are plain dicts.

    Raises
    ------
    InputFileError
        ``"PATH: key flexion.landmarks.L4: given twice"``, ``"PATH: not valid JSON: ..."``,
        ``"PATH: nested deeper than 64 levels"``, NaN/Infinity/overflowing numbers.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(path, f"not valid JSON: not UTF-8 text (byte {exc.start})") from None
    try:
        doc = json.loads(text, object_pairs_hook=_pairs, parse_float=_float, parse_int=_int,
                         parse_constant=_constant)
    except _DuplicateKey as exc:
        try:
            where = _duplicate_location(raw, exc.key)
        except (ValueError, RecursionError):
            where = exc.key
        raise InputFileError(path, f"key {where}: given twice (a key may appear only once)") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:  # Python's parser stops near 1000 levels
        raise InputFileError(path, f"JSON nested more than {MAX_DEPTH} levels deep: not a file of this tool") from None
    _check_tree(doc, path)
    return doc


def read_json(path: str | PathLike[str], *, max_bytes: int = MAX_BYTES) -> Any:
    """Read and strictly parse a JSON file (see :func:`parse_json`).

    Only regular files are opened (a named pipe would block forever), and at
    most ``max_bytes`` are read.

    Raises
    ------
    InputFileError
        Missing, not a regular file, too large, unreadable, or not strict JSON.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputFileError(path, "is a directory, expected a JSON file")
    if not stat.S_ISREG(info.st_mode):
        raise InputFileError(path, "not a regular file (a pipe, socket or device), expected a JSON file")
    if info.st_size > max_bytes:
        raise InputFileError(path, f"too large for a JSON file here ({info.st_size} bytes, at most {max_bytes})")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise InputFileError(path, f"too large for a JSON file here (more than {max_bytes} bytes)")
    return parse_json(raw, path)
