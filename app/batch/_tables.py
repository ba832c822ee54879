"""Tidy tables: CSV and Parquet, each written atomically.

A table is a list of dict rows plus an ordered column list with types.  The
CSV writes floats with the shortest representation that round-trips (so the
CSV and the Parquet file hold the same numbers), NaN and None as an empty cell,
booleans as ``true``/``false``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from app.atomic import atomic_write_bytes, atomic_write_text

__all__ = ["read_parquet_rows", "write_csv", "write_parquet"]

# Column type names understood by write_parquet.
COLUMN_TYPES = ("string", "float64", "int64", "bool")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    return str(value)


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Write ``rows`` as a CSV with the given column order, atomically.

    Parameters
    ----------
    path : path-like
        Destination (its folder is created).
    rows : sequence of mapping
        One mapping per row; missing keys give empty cells.
    columns : sequence of str
        Column order; keys not listed are not written.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in columns])
    atomic_write_text(path, buffer.getvalue())


def write_parquet(
    path: str | Path,
    rows: Sequence[Mapping[str, Any]],
    schema: Sequence[tuple[str, str]],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write ``rows`` as a Parquet file with an explicit schema, atomically.

    Parameters
    ----------
    path : path-like
        Destination.
    rows : sequence of mapping
    schema : sequence of (name, type)
        Column names in order and their types (``string``, ``float64``,
        ``int64``, ``bool``).  Types are fixed even for an empty table, so
        every run's file has the same schema.
    metadata : mapping of str to str, optional
        Key-value metadata stored in the file (software version, options).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64(),
             "bool": pa.bool_()}
    arrays = []
    fields = []
    for name, kind in schema:
        values = [row.get(name) for row in rows]
        if kind == "string":
            values = [None if v is None else _cell(v) for v in values]
        elif kind == "float64":
            values = [None if v is None else float(v) for v in values]
        arrays.append(pa.array(values, type=types[kind], from_pandas=True))
        fields.append(pa.field(name, types[kind]))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=dict(metadata or {})))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def read_parquet_rows(path: str | Path) -> list[dict[str, Any]]:
    """Read a Parquet table back as a list of dict rows (for tests and tools)."""
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()
