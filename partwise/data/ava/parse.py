"""The full AVA CSV parser: every field count, empty and non-numeric fields, how numbers were written
(so :func:`~partwise.data.ava.write.write_csv` reproduces files byte for byte), one error or every problem.

:func:`read_csv` takes the typed streaming path of :mod:`partwise.data.ava.typed` first when formats are not kept."""
from __future__ import annotations

import os
from typing import Collection, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from partwise.data.ava.checks import _INT_RE, _Checks, _check_values, _parse_numbers
from partwise.data.ava.fields import _Fields, _split
from partwise.data.ava.table import AVA_ID_LENGTH, MAX_PROBLEMS, AvaCsv
from partwise.errors import InputError, Problem


def _number_format(cols: Sequence[pa.Array | None], masks: Sequence[np.ndarray],
                   values: Sequence[np.ndarray]) -> tuple[int, int] | np.ndarray | None:
    """How the given string fields were written (see :attr:`AvaCsv.formats`).

    ``(width, decimals)`` when every field (where its mask is set) has the same number of decimals;
    otherwise an int8 array of per-row decimals (-1: no decimal point; shape (N,) or (N, len(cols))) when every
    field is plain unpadded unsigned decimal text; otherwise ``None`` (written back in shortest repr).
    """
    if all(c is not None for c in cols) and all(m.all() for m in masks):
        uniform = _uniform_format_all_rows(cols)
        if uniform is not None:
            return uniform
    stats = []
    for col, mask in zip(cols, masks):
        if col is None or not mask.any():
            stats.append(None)
            continue
        length = pc.fill_null(pc.binary_length(col), 0).to_numpy(zero_copy_only=False)
        dot = pc.fill_null(pc.find_substring(col, "."), -1).to_numpy(zero_copy_only=False)
        stats.append((length, dot))
    used = [(st, m) for st, m in zip(stats, masks) if st is not None]
    if not used:
        return None
    lo, hi, padded, min_int = 1 << 30, -(1 << 30), False, 1 << 30
    for (length, dot), mask in used:
        decimals = np.where(dot >= 0, length - dot - 1, -1)[mask]
        int_len = np.where(dot >= 0, dot, length)[mask]
        lo, hi = min(lo, int(decimals.min())), max(hi, int(decimals.max()))
        min_int = min(min_int, int(int_len.min()))
    if lo == hi:
        for col, st, mask in zip(cols, stats, masks):
            if st is not None:
                first = pc.fill_null(pc.starts_with(col, "0"), False).to_numpy(zero_copy_only=False)
                int_len = np.where(st[1] >= 0, st[1], st[0])
                padded |= bool((first & (int_len > 1) & mask).any())
        return (min_int if padded else 1), max(lo, 0)
    per_col = []
    for st, mask, value in zip(stats, masks, values):
        if st is None:
            per_col.append(np.zeros(len(mask), np.int8))
            continue
        length, dot = st
        has_dot = dot >= 0
        int_len = np.where(has_dot, dot, length)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.abs(value)
            natural = np.where(v < 1, 1, np.floor(np.log10(np.maximum(np.floor(v), 1))) + 1)
            plain = (int_len == natural) & (value >= 0) & (has_dot | (v == np.floor(v)))
        if not plain[mask].all():
            return None
        per_col.append(np.where(mask, np.where(has_dot, length - dot - 1, -1), 0).astype(np.int8))
    return per_col[0] if len(cols) == 1 else np.stack(per_col, axis=1)


def _uniform_format_all_rows(cols: Sequence[pa.Array]) -> tuple[int, int] | None:
    """Fast path of :func:`_number_format` when every row has the fields: pyarrow reductions, no numpy
    temporaries. ``None`` when the decimals are not uniform (the caller then looks row by row)."""
    lo = hi = None
    min_int, padded = None, False
    for col in cols:
        if col.null_count:
            return None
        length = pc.binary_length(col)
        dot = pc.find_substring(col, ".")
        dot_range = pc.min_max(dot).as_py()
        if dot_range["min"] < 0:
            if dot_range["max"] >= 0:
                return None  # some fields with a point, some without
            decimals = {"min": 0, "max": 0}
            int_len = length
        else:
            decimals = pc.min_max(pc.subtract(pc.subtract(length, dot), 1)).as_py()
            int_len = dot
        lo = decimals["min"] if lo is None else min(lo, decimals["min"])
        hi = decimals["max"] if hi is None else max(hi, decimals["max"])
        if lo != hi:
            return None
        col_min_int = pc.min(int_len).as_py()
        min_int = col_min_int if min_int is None else min(min_int, col_min_int)
        padded = padded or bool(pc.any(pc.and_(pc.starts_with(col, "0"), pc.greater(int_len, 1))).as_py())
    return (min_int if padded else 1), lo


def _decide_kind(col8: pa.Array | None, present: np.ndarray) -> str:
    if col8 is None or not present.any():
        return "gt"
    sub = col8 if present.all() else col8.filter(pa.array(present))
    # a failing pyarrow cast is slow (it scans everything); a '.' search is cheap and settles usual score files
    if pc.max(pc.find_substring(sub, ".")).as_py() >= 0:
        return "det"
    return "gt" if pc.all(pc.match_substring_regex(sub, _INT_RE)).as_py() else "det"


def _parse(path: str, *, kind: str, allow_keyframe_rows: bool, valid_actions: Collection[int] | None,
           fields: _Fields | None = None) -> tuple[AvaCsv, _Checks]:
    if kind not in ("gt", "det", "auto"):
        raise ValueError(f"kind must be 'gt', 'det' or 'auto', got {kind!r}")
    fields = _split(path) if fields is None else fields
    n = fields.n_columns
    checks = _Checks(path, fields.line)
    rows = len(n)
    allowed = (n == 7) | (n == 8) | ((n == 2) if allow_keyframe_rows else False)
    expected = "7 or 8 fields" + (" (or 2 for a keyframe row)" if allow_keyframe_rows else "")
    checks.add(~allowed, lambda row: f"expected {expected}, got {int(n[row])}")
    full = allowed & (n >= 7)
    ok_rows = allowed

    video_col = fields.cols[0]
    video_col = pc.if_else(pa.array(ok_rows), video_col, pa.scalar(None, pa.string())) if rows else pa.array([], pa.string())
    checks.add(pc.fill_null(pc.equal(pc.binary_length(video_col), 0), False).to_numpy(zero_copy_only=False),
               "empty video id")
    encoded = pc.dictionary_encode(video_col) if rows else None
    if rows:
        videos = encoded.dictionary.to_pylist()
        codes = pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int32)
    else:
        videos, codes = [], np.empty(0, np.int32)

    timestamp, ts_valid = _parse_numbers(fields.cols[1], ok_rows, "float", "timestamp", checks)
    boxes = np.full((rows, 4), np.nan)
    box_valid = np.zeros((rows, 4), bool)
    for k, name in enumerate(("x1", "y1", "x2", "y2")):
        boxes[:, k], box_valid[:, k] = _parse_numbers(fields.cols[2 + k], full, "float", name, checks)

    if kind == "auto":
        kind = _decide_kind(fields.cols[7], full & (n == 8))
    action, action_valid = _parse_numbers(fields.cols[6], full, "int", "action", checks, allow_empty=kind == "det")
    eighth = full & (n == 8)
    if kind == "gt":
        person_id, _ = _parse_numbers(fields.cols[7], eighth, "int", "person_id", checks)
        score = np.full(rows, np.nan)
    else:
        score, _ = _parse_numbers(fields.cols[7], eighth, "float", "score", checks)
        person_id = np.full(rows, -1, np.int64)
    action = np.where(action_valid, action, -1)

    _check_values(boxes, box_valid, action, action_valid, timestamp, ts_valid, valid_actions, checks)

    formats = {}
    if rows:
        is_ava = (pc.fill_null(pc.binary_length(video_col), 0).to_numpy(zero_copy_only=False) == AVA_ID_LENGTH)
        formats["ts_ava"] = _number_format([fields.cols[1]], [ts_valid & is_ava], [timestamp])
        formats["ts_other"] = _number_format([fields.cols[1]], [ts_valid & ~is_ava], [timestamp])
        formats["box"] = _number_format(fields.cols[2:6], list(box_valid.T), list(boxes.T))
        if kind == "det":
            formats["score"] = _number_format([fields.cols[7]], [eighth & ~np.isnan(score)], [score])
        formats = {k: v for k, v in formats.items() if v is not None or _any_rows(k, ok_rows, full, eighth, is_ava)}
    table = AvaCsv(path=path, videos=videos, video_codes=codes, timestamp=timestamp, boxes=boxes,
                   action=action.astype(np.int32), person_id=person_id, score=score,
                   n_columns=n.astype(np.int8), line=fields.line, kind=kind, formats=formats)
    return table, checks


def _any_rows(key: str, ok_rows, full, eighth, is_ava) -> bool:
    mask = {"ts_ava": ok_rows & is_ava, "ts_other": ok_rows & ~is_ava, "box": full, "score": eighth}[key]
    return bool(mask.any())


def read_csv(path: str | os.PathLike, *, kind: str = "auto", allow_keyframe_rows: bool = True,
             valid_actions: Collection[int] | None = None, keep_formats: bool = True) -> AvaCsv:
    """Read an AVA-style CSV (GT, detections, SlowFast box lists, AVA-Kinetics 7-column rows, 2-column keyframe
    rows) into an :class:`AvaCsv`. ``kind``: ``"gt"`` (8th column = person id), ``"det"`` (8th column = score) or
    ``"auto"`` (an 8th column that is not all integers means score).

    Raises :class:`InputError` (file, line, reason) for the first problem by line number: wrong field count,
    non-numeric or empty field, box coordinate outside [0, 1], x2 < x1 or y2 < y1, NaN score, action id outside
    1..80 (or outside ``valid_actions``), empty file. Blank lines are skipped (line numbers still count them).

    ``keep_formats=False`` (evaluation): skip recording how numbers were written (:func:`write_csv` then uses the
    AVA defaults) and, for well-formed 8-column files of a given ``kind``, parse typed columns directly -- about
    several times faster
    (:func:`partwise.data.ava.typed.read_typed`); the arrays and the errors are the same.
    """
    path = os.fspath(path)
    if not keep_formats:
        from partwise.data.ava.typed import read_typed

        fast = read_typed(path, kind, valid_actions)
        if fast is not None:
            return fast
    return _read_parsed(path, kind, allow_keyframe_rows, valid_actions)


def _read_parsed(path: str, kind: str, allow_keyframe_rows: bool, valid_actions: Collection[int] | None) -> AvaCsv:
    """:func:`read_csv` through the full parser only (the typed path already declined the file)."""
    table, checks = _parse(path, kind=kind, allow_keyframe_rows=allow_keyframe_rows, valid_actions=valid_actions)
    error = checks.first()
    if error is not None:
        raise error
    if len(table) == 0:
        raise InputError(path, None, "empty file: no rows")
    return table


def validate_csv(path: str | os.PathLike, *, kind: str = "auto", allow_keyframe_rows: bool = True,
                 valid_actions: Collection[int] | None = None, max_problems: int = MAX_PROBLEMS) -> list[Problem]:
    """Every problem :func:`read_csv` would raise on, one :class:`Problem` per offending line and check, sorted by
    line; at most ``max_problems`` then one final ``"... and N more problems"``. Empty list when the file is valid."""
    path = os.fspath(path)
    try:
        table, checks = _parse(path, kind=kind, allow_keyframe_rows=allow_keyframe_rows, valid_actions=valid_actions)
    except InputError as err:
        return [err.problem]
    problems = checks.problems(max_problems)
    if len(table) == 0:
        problems.append(Problem(path, None, "empty file: no rows"))
    return problems
