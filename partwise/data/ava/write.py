"""Writing AVA CSVs: vectorized number formatting (fixed decimals, shortest repr, per-row decimals), rows
joined by pyarrow, atomic writes; and the ``"video,ts04d"`` keyframe keys."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from partwise.data.ava.table import AVA_ID_LENGTH, AvaCsv
from partwise.io import atomic_write


def format_fixed(values: np.ndarray, decimals: int, width: int = 1) -> pa.Array:
    """(N,) float -> strings with exactly ``decimals`` decimals (Python's correctly rounded ``'%.{d}f'``) and the
    integer part zero-padded to ``width`` digits (``width=4, decimals=0``: AVA timestamps ``0902``).

    Vectorized: ``q = rint(|v| * 10**d)`` as digits, left-padded, with the point inserted ``d`` digits from the
    right; values whose scaled magnitude lies within 1e-6 of a rounding tie (where binary rounding could differ
    from Python's) or that are not finite go through Python.
    """
    v = np.asarray(values, np.float64)
    neg = np.signbit(v)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.abs(v) * 10.0 ** decimals
        slow = ~np.isfinite(scaled) | (scaled >= 2.0 ** 52) | (np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    q = np.rint(np.where(slow, 0.0, scaled)).astype(np.int64)
    text = pc.utf8_lpad(pc.cast(pa.array(q), pa.string()), width + decimals, "0")
    if decimals > 0:
        text = pc.binary_replace_slice(text, -decimals, -decimals, ".")
    if neg.any():
        text = pc.if_else(pa.array(neg), pc.binary_join_element_wise(pa.scalar("-"), text, ""), text)
    if slow.any():
        idx = np.flatnonzero(slow)
        fixed = [_python_fixed(float(v[i]), decimals, width) for i in idx]
        text = pc.replace_with_mask(text, pa.array(slow), pa.array(fixed, pa.string()))
    return text


def _python_fixed(x: float, decimals: int, width: int) -> str:
    if not np.isfinite(x):
        return repr(x)
    body = f"{abs(x):.{decimals}f}"
    head, dot, tail = body.partition(".")
    return ("-" if np.signbit(x) else "") + head.rjust(width, "0") + dot + tail


def format_shortest(values: np.ndarray) -> pa.Array:
    """(N,) float -> Python ``repr`` strings (shortest round-trip: ``0.5``, ``1.0``, ``1e-05``), vectorized."""
    v = np.asarray(values, np.float64)
    text = pc.cast(pa.array(v), pa.string())
    with np.errstate(invalid="ignore"):
        mag = np.abs(v)
        integral = np.isfinite(v) & (v == np.floor(v)) & (mag < 1e16)
        slow = ~np.isfinite(v) | ((mag < 1e-4) & (mag > 0)) | (mag >= 1e16)
    if integral.any():
        text = pc.if_else(pa.array(integral), pc.binary_join_element_wise(text, pa.scalar(".0"), ""), text)
    if slow.any():
        idx = np.flatnonzero(slow)
        text = pc.replace_with_mask(text, pa.array(slow), pa.array([repr(float(v[i])) for i in idx], pa.string()))
    return text


def format_per_row(values: np.ndarray, decimals: np.ndarray) -> pa.Array:
    """(N,) float with (N,) per-row decimal counts (-1: integer without a point) -> strings."""
    values = np.asarray(values, np.float64)
    decimals = np.asarray(decimals, np.int64)
    parts, order = [], []
    for d in np.unique(decimals):
        idx = np.flatnonzero(decimals == d)
        parts.append(format_fixed(values[idx], max(int(d), 0)))
        order.append(idx)
    if not parts:
        return pa.array([], pa.string())
    joined = pa.concat_arrays(parts)
    return joined.take(pa.array(np.argsort(np.concatenate(order), kind="stable")))


def _format_numbers(values: np.ndarray, fmt) -> pa.Array:
    if fmt is None:
        return format_shortest(values)
    if isinstance(fmt, np.ndarray):
        return format_per_row(values, fmt)
    width, decimals = fmt
    return format_fixed(values, decimals, width)


def _default_ts_format(timestamp: np.ndarray, width: int) -> tuple[int, int] | np.ndarray | None:
    """Integer timestamps: ``(width, 0)``; otherwise per-row decimals: integral values without a point,
    fractional ones with their shortest-repr decimals (``15`` beside ``16.5``); ``None`` if repr needs exponents."""
    finite = np.isfinite(timestamp)
    integral = finite & (timestamp == np.round(timestamp))
    if integral[finite].all():
        return width, 0
    text = format_shortest(np.where(finite, timestamp, 0.0))
    if pc.any(pc.match_substring(text, "e")).as_py():
        return None
    length = pc.binary_length(text).to_numpy()
    dot = pc.find_substring(text, ".").to_numpy()
    return np.where(integral, -1, length - dot - 1).astype(np.int8)


def _null_where(text: pa.Array, mask: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), text) if mask.any() else text


def write_csv(table: AvaCsv, path: str | os.PathLike) -> None:
    """Write ``table`` as an AVA CSV (no header, ``\n`` line ends), atomically.

    Each row is written with ``n_columns`` fields: 2 -> ``video,ts``; 7 -> ``video,ts,x1,y1,x2,y2,action``;
    8 -> plus ``person_id`` (``kind == "gt"``) or ``score`` (``kind == "det"``). An action of -1 is written as an
    empty field (SlowFast box lists).

    Number formatting follows ``table.formats`` (filled by :func:`read_csv` from the file's own text, so files
    round-trip byte for byte): ``(width, decimals)`` = fixed decimals (Python's correctly rounded ``%.{d}f``)
    with the integer part zero-padded to ``width``; a per-row int8 array of decimals = each value with its own
    number of decimals (files mixing ``0.317`` and ``0.1950`` in one column); ``None`` = Python's shortest
    ``repr``. Defaults (tables built in memory): timestamps of 11-character AVA ids ``%04d``, other integer
    timestamps ``%d``, fractional timestamps shortest repr; boxes ``%.3f``; scores shortest repr. Action ids and
    person ids are plain integers. Not reproduced byte for byte: CRLF line ends, blank lines, exponent or
    ``+``-signed numbers mixed with plain ones in one column.
    """
    n = np.asarray(table.n_columns, np.int64)
    bad = ~np.isin(n, (2, 7, 8))
    if bad.any():
        raise ValueError(f"n_columns must be 2, 7 or 8; row {int(np.argmax(bad))} has {int(n[np.argmax(bad)])}")
    if table.kind not in ("gt", "det"):
        raise ValueError(f"kind must be 'gt' or 'det', got {table.kind!r}")
    rows = len(table)
    unsafe = [v for v in table.videos if any(c in v for c in ",\r\n")]
    if unsafe:
        raise ValueError(f"video id {unsafe[0]!r} contains a comma or line break; AVA CSVs cannot hold it")
    videos = pa.array(list(table.videos), pa.string())
    video_col = videos.take(pa.array(np.asarray(table.video_codes, np.int64))) if rows else pa.array([], pa.string())
    is_ava = (pc.binary_length(video_col).to_numpy(zero_copy_only=False) == AVA_ID_LENGTH) if rows else np.zeros(0, bool)
    formats = dict(table.formats)
    ts = np.asarray(table.timestamp, np.float64)
    if "ts_ava" not in formats:
        formats["ts_ava"] = _default_ts_format(np.where(is_ava, ts, 902.0), 4)
    if "ts_other" not in formats:
        formats["ts_other"] = _default_ts_format(np.where(is_ava, 0.0, ts), 1)
    formats.setdefault("box", (1, 3))
    formats.setdefault("score", None)

    ts_text = _format_numbers(ts, formats["ts_ava"]) if is_ava.any() else None
    if not is_ava.all():
        other = _format_numbers(ts, formats["ts_other"])
        ts_text = other if ts_text is None else pc.if_else(pa.array(is_ava), ts_text, other)
    columns = [video_col, ts_text]
    has_box = n >= 7
    if has_box.any():
        boxes = np.where(has_box[:, None], np.asarray(table.boxes, np.float64), 0.0)
        box_fmt = formats["box"]
        for k in range(4):
            fmt_k = box_fmt[:, k] if isinstance(box_fmt, np.ndarray) and box_fmt.ndim == 2 else box_fmt
            columns.append(_null_where(_format_numbers(boxes[:, k], fmt_k), ~has_box))
        action = np.asarray(table.action, np.int64)
        action_text = pc.if_else(pa.array(action < 0), pa.scalar(""), pc.cast(pa.array(action), pa.string()))
        columns.append(_null_where(action_text, ~has_box))
        eight = n == 8
        if eight.any():
            if table.kind == "gt":
                last = pc.cast(pa.array(np.asarray(table.person_id, np.int64)), pa.string())
            else:
                score = np.where(eight, np.asarray(table.score, np.float64), 0.0)
                last = _format_numbers(score, formats["score"])
            columns.append(_null_where(last, ~eight))
    if rows and (n == n[0]).all() and _write_columns(columns, path):
        return
    else:
        lines = pc.binary_join_element_wise(*columns, ",", null_handling="skip") if rows else pa.array([], pa.string())
        _write_lines(lines, path)


def _write_columns(columns: Sequence[pa.Array], path: str | os.PathLike) -> bool:
    """Rows of equal field count: pyarrow's CSV writer, unquoted, no header, atomically. False (nothing
    written) when a value holds a character that writer refuses unquoted (a double quote)."""
    table = pa.table({f"c{k}": col for k, col in enumerate(columns)})
    options = pcsv.WriteOptions(include_header=False, quoting_style="none")
    try:
        with atomic_write(path, "wb") as fh:
            pcsv.write_csv(table, fh, options)
    except pa.ArrowInvalid:
        return False
    return True


def _write_lines(lines: pa.Array, path: str | os.PathLike) -> None:
    """Write strings as ``\n``-terminated lines (the joined buffer, no per-line Python), atomically."""
    lines = pc.binary_join_element_wise(lines, pa.scalar(""), "\n").cast(pa.large_string())
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    with atomic_write(path, "wb") as fh:
        if len(lines):
            offsets = np.frombuffer(lines.buffers()[1], np.int64)[lines.offset: lines.offset + len(lines) + 1]
            fh.write(memoryview(lines.buffers()[2])[int(offsets[0]): int(offsets[-1])])


def keyframe_keys(table: AvaCsv) -> np.ndarray:
    """(N,) object array of ``"video,ts"`` keys, ``ts`` written ``%04d`` for integer seconds (AVA proposal keys)."""
    ts = table.timestamp
    integral = np.isfinite(ts) & (ts == np.round(ts))
    ts_text = pc.if_else(pa.array(integral), format_fixed(np.where(integral, ts, 0), 0, 4), format_shortest(ts))
    videos = pa.array(list(table.videos), pa.string()).take(pa.array(np.asarray(table.video_codes, np.int64)))
    return np.asarray(pc.binary_join_element_wise(videos, ts_text, ",").to_pylist(), dtype=object)
