"""Splitting an AVA CSV into string fields: pyarrow's CSV reader when every row has the same number of
fields, a vectorized split of whole lines otherwise."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from partwise.data.ava.typed import _first_line_fields
from partwise.errors import InputError


@dataclass
class _Fields:
    """String fields of a CSV: ``cols[k]`` is a (N,) pyarrow string array (null where the row has <= k fields)."""

    n_columns: np.ndarray  # (N,) int64
    line: np.ndarray  # (N,) int64, 1-based
    cols: list


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror or exc}") from None


def _fields_uniform(path: str, n: int) -> _Fields | None:
    """All rows have ``n`` fields: pyarrow's parallel CSV reader, strings only. ``None`` if that fails."""
    names = [f"c{k}" for k in range(n)]
    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(quote_char=False, escape_char=False, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in names}, strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowException, UnicodeError):
        return None
    rows = table.num_rows
    cols = [table.column(c).combine_chunks() for c in names] + [None] * (8 - n)
    # pyarrow reads a blank line as a row of empty fields; the line splitter skips blank lines instead
    if pc.any(pc.and_(pc.equal(pc.binary_length(cols[0]), 0), pc.equal(pc.binary_length(cols[1]), 0))).as_py():
        return None
    return _Fields(np.full(rows, n, np.int64), np.arange(1, rows + 1, dtype=np.int64), cols)


def _fields_ragged(path: str) -> _Fields:
    """Any mix of field counts: split the file into lines (numpy), then lines into fields (pyarrow)."""
    data = _read_bytes(path)
    if data and not data.endswith(b"\n"):
        data += b"\n"
    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == 10)
    offsets = np.concatenate([[0], ends + 1]).astype(np.int64)
    raw = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    try:
        lines = raw.cast(pa.large_string())
    except pa.ArrowInvalid:
        bad = next(i for i in range(len(ends)) if not _is_utf8(raw[i].as_py()))
        raise InputError(path, bad + 1, "not valid UTF-8 text") from None
    lines = pc.utf8_rtrim(lines, characters="\r\n")
    line_no = np.arange(1, len(ends) + 1, dtype=np.int64)
    keep = pc.binary_length(lines).to_numpy() > 0  # blank lines are not rows
    if not keep.all():
        lines = lines.filter(pa.array(keep))
        line_no = line_no[keep]
    parts = pc.split_pattern(lines, ",")
    part_offsets = parts.offsets.to_numpy().astype(np.int64)
    counts = np.diff(part_offsets)
    values = parts.values
    cols = []
    for k in range(8):
        present = counts > k
        index = pa.array(part_offsets[:-1] + k, mask=~present)
        cols.append(values.take(index).cast(pa.string()) if present.any() else None)
    return _Fields(counts, line_no, cols)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _split(path: str) -> _Fields:
    n = _first_line_fields(path)
    if n in (7, 8, 2):
        fields = _fields_uniform(path, n)
        if fields is not None:
            return fields
    return _fields_ragged(path)
