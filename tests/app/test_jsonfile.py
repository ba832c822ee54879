"""Strict JSON: duplicate keys, non-finite numbers, depth, non-regular files, size."""

from __future__ import annotations

import os

import pytest

from app.errors import InputFileError
from app.jsonfile import MAX_DEPTH, parse_json, read_json


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1, "b": {"L4": 1, "L4": 2}}', "key b.L4: given twice"),
        ('{"x": [0, {"y": 1, "y": 1}]}', "key x[1].y: given twice"),
        ('{"a": {"b": [1, NaN]}}', "key a.b[1]: NaN is not allowed"),
        ('{"a": Infinity}', "key a: Infinity is not allowed"),
        ('{"a": 1e999}', "key a: 1e999 is not allowed"),
        ('{"a": -1E+400}', "key a: -1E+400 is not allowed"),
        ('{"a": ' + "9" * 5000 + "}", "key a: an integer of 5000 digits is not allowed"),
        ("[" * 100_000 + "]" * 100_000, f"JSON nested more than {MAX_DEPTH} levels deep"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"JSON nested more than {MAX_DEPTH} levels deep"),
        ('{"a": 1', "not valid JSON: Expecting ',' delimiter at line 1 column 8"),
        (b'{"a": "\xff"}', "not valid JSON: not UTF-8 text (byte 7)"),
    ],
)
def test_refused_with_the_key(text, message):
    with pytest.raises(InputFileError) as info:
        parse_json(text, "f.json")
    assert str(info.value) == f"f.json: {message}" or str(info.value).startswith(f"f.json: {message}")


def test_accepted_documents_are_plain_values():
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, "f") == eval("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert parse_json('\ufeff{"a": [1, 2.5, -1e308, null, "NaN"]}', "f") == {"a": [1, 2.5, -1e308, None, "NaN"]}
    assert parse_json('{"a": ' + "9" * 300 + "}", "f") == {"a": int("9" * 300)}


def test_files_that_are_not_regular_or_too_large(tmp_path):
    fifo = tmp_path / "p.json"
    os.mkfifo(fifo)
    with pytest.raises(InputFileError, match="not a regular file"):
        read_json(fifo)
    with pytest.raises(InputFileError, match="is a directory"):
        read_json(tmp_path)
    with pytest.raises(InputFileError, match="no such file"):
        read_json(tmp_path / "absent.json")
    big = tmp_path / "big.json"
    big.write_text("[" + "0," * 600 + "0]")
    with pytest.raises(InputFileError, match=r"too large for a JSON file here \(1203 bytes, at most 1000\)"):
        read_json(big, max_bytes=1000)
    assert len(read_json(big)) == 601
