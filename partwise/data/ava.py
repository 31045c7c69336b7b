"""AVA v2.1 / v2.2 annotation files: CSV tables, excluded timestamps, frame lists, dense proposals, records.

File kinds (all without header unless said otherwise):

* **GT CSV** ``ava_{train,val}_v2.x.csv``: ``video,ts,x1,y1,x2,y2,action,person_id`` -- one row per (person box,
  action); a person with k labels has k rows with identical box values. The 2020 official format adds 2-column
  rows ``video,ts`` for keyframes that have no box.
* **Detection CSV** (mmaction2 / official evaluator input): ``video,ts,x1,y1,x2,y2,action,score``.
* **SlowFast box lists**: ``video,ts,x1,y1,x2,y2,,score`` -- empty action column.
* **AVA-Kinetics** rows: 7 columns ``video,ts,x1,y1,x2,y2,action`` (no person id), fractional timestamps.
* **Excluded timestamps** ``video,second``.
* **Frame lists** (SlowFast): space-separated with one header line ``original_video_id video_id frame_id path labels``.
* **Dense proposals** ``.pkl``: ``{"video,ts04d": float ndarray (N, 5) [x1, y1, x2, y2, score]}``; read with the
  restricted unpickler of :mod:`partwise.data.safe_pickle`, never with ``pickle.load``.

Conventions: boxes are normalized ``x1, y1, x2, y2`` in [0, 1]; AVA timestamps are integer seconds 902..1798;
the keyframe's frame index is ``(t - 900) * 30`` (:func:`keyframe_index`); action ids are AVA's own 1..80
(vocabulary ``ava80``).

:func:`read_csv` is the fast columnar reader (pyarrow's multi-threaded CSV parser when every row has the same
number of fields, a vectorized split of whole lines otherwise); :func:`validate_csv` runs the same checks and
lists every problem instead of raising on the first.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from partwise.errors import InputError, Problem
from partwise.io import atomic_write

#: AVA keyframe constants (SlowFast ``ava_helper``; mmaction2 ``AVADataset``).
AVA_FPS = 30
AVA_TIMESTAMP_START = 900
AVA_VALID_TIMESTAMPS = range(902, 1799)
AVA_NUM_ACTIONS = 80
AVA_ID_LENGTH = 11
#: How many problems :func:`validate_csv` lists before one final "... and N more" problem.
MAX_PROBLEMS = 200

_FLOAT_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(?i:nan|inf|infinity)$"
_INT_RE = r"^-?\d+$"
_FIELD_NAMES = ("video", "timestamp", "x1", "y1", "x2", "y2", "action", "person_id/score")


# --------------------------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------------------------

@dataclass
class AvaCsv:
    """An AVA CSV as columns; row i is line ``line[i]`` of ``path``.

    ``videos`` are the distinct video ids in first-seen order and ``video_codes`` (N,) int32 index into it.
    ``timestamp`` (N,) float64 seconds; ``boxes`` (N, 4) float64 normalized x1, y1, x2, y2 (NaN on 2-column
    keyframe rows); ``action`` (N,) int32 (-1 on 2-column rows and empty action fields); ``person_id`` (N,) int64
    (-1 when absent); ``score`` (N,) float64 (NaN when absent); ``n_columns`` (N,) int8 fields on the line
    (2, 7 or 8); ``line`` (N,) int64 1-based line numbers. ``kind`` says how an 8th column was read: ``"gt"``
    (person id) or ``"det"`` (score).

    ``formats`` records how numbers were written so :func:`write_csv` reproduces the file byte for byte (see
    :func:`write_csv`); keys ``ts_ava`` and ``ts_other`` (timestamps of rows whose video id has / has not 11
    characters), ``box`` and ``score``; values ``(width, decimals)`` (integer part zero-padded to ``width``,
    fixed ``decimals``) or ``None`` for the shortest representation. Missing keys get AVA's defaults.
    """

    path: str
    videos: list[str]
    video_codes: np.ndarray
    timestamp: np.ndarray
    boxes: np.ndarray
    action: np.ndarray
    person_id: np.ndarray
    score: np.ndarray
    n_columns: np.ndarray
    line: np.ndarray
    kind: str = "gt"
    formats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.video_codes.shape[0])

    @property
    def video_ids(self) -> np.ndarray:
        """(N,) object array of each row's video id."""
        return np.asarray(self.videos, dtype=object)[self.video_codes] if len(self.videos) else np.empty(0, object)

    def select(self, mask_or_index: np.ndarray) -> "AvaCsv":
        """The rows picked by a boolean mask or an index array (videos list unchanged)."""
        return AvaCsv(self.path, list(self.videos), self.video_codes[mask_or_index], self.timestamp[mask_or_index],
                      self.boxes[mask_or_index], self.action[mask_or_index], self.person_id[mask_or_index],
                      self.score[mask_or_index], self.n_columns[mask_or_index], self.line[mask_or_index],
                      self.kind, {key: value[mask_or_index] if isinstance(value, np.ndarray) else value
                                  for key, value in self.formats.items()})


def keyframe_index(timestamp: np.ndarray | float, fps: int = AVA_FPS, start: float = AVA_TIMESTAMP_START):
    """Frame number of an AVA keyframe: ``(t - 900) * 30`` (SlowFast ``sec_to_frame``); int64 for arrays."""
    if np.ndim(timestamp):
        with np.errstate(invalid="ignore"):  # out of int64 range: records.check_values reports the time_s
            return np.rint((np.asarray(timestamp, np.float64) - start) * fps).astype(np.int64)
    return int(round((float(timestamp) - start) * fps))


# --------------------------------------------------------------------------------------------------------------
# reading: splitting lines into string fields
# --------------------------------------------------------------------------------------------------------------

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


def _first_line_fields(path: str) -> int:
    try:
        with open(path, "rb") as fh:
            first = fh.readline(1 << 16)
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    return first.rstrip(b"\r\n").count(b",") + 1 if first.strip() else 0


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


# --------------------------------------------------------------------------------------------------------------
# reading: numbers and checks
# --------------------------------------------------------------------------------------------------------------

class _Checks:
    """Collects (row mask, reason) pairs; reasons are callables of a row index so texts are built lazily."""

    def __init__(self, path: str, line: np.ndarray):
        self.path, self.line = path, line
        self.items: list[tuple[np.ndarray, object]] = []

    def add(self, mask: np.ndarray, reason) -> None:
        if mask.any():
            self.items.append((mask, reason))

    def _text(self, reason, row: int) -> str:
        return reason(row) if callable(reason) else reason

    def first(self) -> InputError | None:
        best = None
        for mask, reason in self.items:
            row = int(np.argmax(mask))
            if best is None or self.line[row] < self.line[best[0]]:
                best = (row, reason)
        if best is None:
            return None
        return InputError(self.path, int(self.line[best[0]]), self._text(best[1], best[0]))

    def problems(self, limit: int = MAX_PROBLEMS) -> list[Problem]:
        found = []
        for order, (mask, reason) in enumerate(self.items):
            rows = np.flatnonzero(mask)
            found.append((self.line[rows], np.full(rows.shape, order), rows))
        if not found:
            return []
        lines = np.concatenate([f[0] for f in found])
        orders = np.concatenate([f[1] for f in found])
        rows = np.concatenate([f[2] for f in found])
        sort = np.lexsort((orders, lines))
        out = [Problem(self.path, int(lines[i]), self._text(self.items[orders[i]][1], int(rows[i]))) for i in sort[:limit]]
        if len(sort) > limit:
            out.append(Problem(self.path, None, f"... and {len(sort) - limit} more problems"))
        return out


def _parse_numbers(col: pa.Array | None, present: np.ndarray, dtype: str, name: str, checks: _Checks,
                   allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Cast string field ``col`` to float64 (NaN fill) or int64 (-1 fill) where ``present``.

    Returns ``(values, valid)``: ``valid`` marks fields that parsed. Empty fields (unless ``allow_empty``),
    non-numeric fields and NaN values are added to ``checks``.
    """
    float_type = dtype == "float"
    n = len(present)
    fill = np.nan if float_type else -1
    if col is None or not present.any():
        return np.full(n, fill, np.float64 if float_type else np.int64), np.zeros(n, bool)
    if not present.all():
        col = pc.if_else(pa.array(present), col, pa.scalar(None, pa.string()))
    empty = pc.fill_null(pc.equal(pc.binary_length(col), 0), False).to_numpy(zero_copy_only=False)
    if empty.any():
        if not allow_empty:
            checks.add(empty, f"empty {name} field")
        col = pc.if_else(pa.array(empty), pa.scalar(None, pa.string()), col)
    bad = np.zeros(n, bool)
    try:
        values = pc.cast(col, pa.float64() if float_type else pa.int64())
    except pa.ArrowInvalid:
        ok = pc.fill_null(pc.match_substring_regex(col, _FLOAT_RE if float_type else _INT_RE), True)
        bad = ~ok.to_numpy(zero_copy_only=False)
        text = col
        expected = "a number" if float_type else "an integer"
        checks.add(bad, lambda row: f"{name} is not {expected}: {text[row].as_py()!r}")
        values = pc.cast(pc.if_else(ok, col, pa.scalar(None, pa.string())), pa.float64() if float_type else pa.int64())
    valid = present & ~empty & ~bad
    if float_type:
        out = np.asarray(values.to_numpy(zero_copy_only=False), np.float64)
        nan = valid & np.isnan(out)
        checks.add(nan, f"{name} is NaN")
        valid &= ~nan
    else:
        out = pc.fill_null(values, -1).to_numpy().astype(np.int64)
    return out, valid


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


def _check_values(boxes, box_valid, action, action_valid, timestamp, ts_valid, valid_actions,
                  checks: _Checks) -> None:
    """Range checks shared by :func:`read_csv` and :func:`validate_csv` (vectorized masks over parsed fields)."""
    for k, name in enumerate(("x1", "y1", "x2", "y2")):
        col = boxes[:, k]
        checks.add(box_valid[:, k] & ((col < 0) | (col > 1)),
                   lambda row, k=k, name=name: f"{name}={float(boxes[row, k])!r} outside [0, 1]")
    both_x = box_valid[:, 0] & box_valid[:, 2]
    both_y = box_valid[:, 1] & box_valid[:, 3]
    checks.add(both_x & (boxes[:, 2] < boxes[:, 0]), lambda row: f"x2={float(boxes[row, 2])!r} < x1={float(boxes[row, 0])!r}")
    checks.add(both_y & (boxes[:, 3] < boxes[:, 1]), lambda row: f"y2={float(boxes[row, 3])!r} < y1={float(boxes[row, 1])!r}")
    checks.add(ts_valid & np.isinf(timestamp), "timestamp is infinite")
    if valid_actions is None:
        bad = action_valid & ((action < 1) | (action > AVA_NUM_ACTIONS))
        allowed_text = f"1..{AVA_NUM_ACTIONS}"
    else:
        allowed = np.asarray(sorted(int(a) for a in valid_actions), np.int64)
        bad = action_valid & ~np.isin(action, allowed)
        allowed_text = "the given action ids"
    checks.add(bad, lambda row: f"action id {int(action[row])} not in {allowed_text}")


def _read_typed(path: str, kind: str, valid_actions: Collection[int] | None) -> AvaCsv | None:
    """Fast path for well-formed 8-column files: pyarrow parses typed columns directly. ``None`` whenever anything
    is unusual (other field counts, empty or non-numeric fields, NaN, blank lines), so the full parser can report it
    with its line number; range problems are reported here the same way."""
    if kind not in ("gt", "det") or _first_line_fields(path) != 8:
        return None
    names = [f"c{k}" for k in range(8)]
    types = {"c0": pa.dictionary(pa.int32(), pa.string()), "c1": pa.float64(), "c2": pa.float64(), "c3": pa.float64(), "c4": pa.float64(),
             "c5": pa.float64(), "c6": pa.int64(), "c7": pa.float64() if kind == "det" else pa.int64()}
    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(quote_char=False, escape_char=False, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types=types, strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowException, UnicodeError):
        return None
    rows = table.num_rows
    if rows == 0 or any(table.column(c).null_count for c in names):
        return None
    video = table.column("c0").combine_chunks()
    if isinstance(video, pa.ChunkedArray):  # several dictionary chunks: unify them
        video = video.unify_dictionaries().combine_chunks()
    if pc.any(pc.equal(pc.binary_length(video.dictionary), 0)).as_py():
        return None
    values = {c: table.column(c).to_numpy() for c in names[1:]}
    boxes = np.stack([values[f"c{k}"] for k in range(2, 6)], axis=1)
    score = values["c7"] if kind == "det" else np.full(rows, np.nan)
    if np.isnan(boxes).any() or np.isnan(values["c1"]).any() or (kind == "det" and np.isnan(score).any()):
        return None
    line = np.arange(1, rows + 1, dtype=np.int64)
    checks = _Checks(path, line)
    action = values["c6"].astype(np.int64)
    everywhere = np.ones(rows, bool)
    _check_values(boxes, np.ones((rows, 4), bool), action, everywhere, values["c1"], everywhere, valid_actions, checks)
    error = checks.first()
    if error is not None:
        raise error
    return AvaCsv(path=path, videos=video.dictionary.to_pylist(),
                  video_codes=video.indices.to_numpy().astype(np.int32), timestamp=values["c1"], boxes=boxes,
                  action=action.astype(np.int32),
                  person_id=values["c7"].astype(np.int64) if kind == "gt" else np.full(rows, -1, np.int64),
                  score=score, n_columns=np.full(rows, 8, np.int8), line=line, kind=kind, formats={})


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
    twice as fast; the arrays and the errors are the same.
    """
    path = os.fspath(path)
    if not keep_formats:
        fast = _read_typed(path, kind, valid_actions)
        if fast is not None:
            return fast
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


# --------------------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------
# excluded timestamps
# --------------------------------------------------------------------------------------------------------------

def read_excluded(path: str | os.PathLike) -> AvaCsv:
    """Read ``ava_*_excluded_timestamps_v2.x.csv`` (``video,second`` per line) as 2-column :class:`AvaCsv` rows.

    Raises :class:`InputError` for lines with another number of fields or a non-numeric second. An empty file is
    valid (no exclusions)."""
    path = os.fspath(path)
    fields = _split(path)
    if len(fields.n_columns) == 0:
        return _empty_table(path)
    wrong = fields.n_columns != 2
    if wrong.any():
        row = int(np.argmax(wrong))
        raise InputError(path, int(fields.line[row]), f"expected 2 fields 'video,second', got {int(fields.n_columns[row])}")
    table, checks = _parse(path, kind="gt", allow_keyframe_rows=True, valid_actions=None, fields=fields)
    error = checks.first()
    if error is not None:
        raise error
    return table


def write_excluded(pairs: AvaCsv | Iterable[tuple[str, float]], path: str | os.PathLike) -> None:
    """Write excluded keyframes ``video,second`` (AVA ids ``%04d``), atomically, from an :class:`AvaCsv` or pairs."""
    if not isinstance(pairs, AvaCsv):
        pairs = list(pairs)
        videos = list(dict.fromkeys(v for v, _ in pairs))
        index = {v: i for i, v in enumerate(videos)}
        n = len(pairs)
        pairs = AvaCsv(os.fspath(path), videos, np.array([index[v] for v, _ in pairs], np.int32),
                       np.array([t for _, t in pairs], np.float64), np.full((n, 4), np.nan), np.full(n, -1, np.int32),
                       np.full(n, -1, np.int64), np.full(n, np.nan), np.full(n, 2, np.int8), np.arange(1, n + 1))
    write_csv(pairs, path)


def _empty_table(path: str) -> AvaCsv:
    return AvaCsv(path, [], np.empty(0, np.int32), np.empty(0), np.empty((0, 4)), np.empty(0, np.int32),
                  np.empty(0, np.int64), np.empty(0), np.empty(0, np.int8), np.empty(0, np.int64))


# --------------------------------------------------------------------------------------------------------------
# SlowFast frame lists
# --------------------------------------------------------------------------------------------------------------

FRAME_LIST_HEADER = "original_video_id video_id frame_id path labels"


@dataclass
class FrameList:
    """A SlowFast frame list, one row per frame. String columns stay pyarrow arrays (train lists have millions
    of rows); ``labels`` is kept as written (usually the literal ``""``)."""

    path: str
    original_video_id: pa.Array  # (N,) string
    video_id: np.ndarray  # (N,) int64
    frame_id: np.ndarray  # (N,) int64
    frame_path: pa.Array  # (N,) string
    labels: pa.Array  # (N,) string
    header: str = FRAME_LIST_HEADER

    def __len__(self) -> int:
        return int(self.video_id.shape[0])


def read_frame_list(path: str | os.PathLike) -> FrameList:
    """Read a SlowFast frame list (space-separated, one header line). Raises :class:`InputError` on a line
    without 5 fields or with a non-integer ``video_id`` / ``frame_id``."""
    path = os.fspath(path)
    data = _read_bytes(path)
    if not data.strip():
        raise InputError(path, None, "empty file")
    header, _, body = data.partition(b"\n")
    header_text = header.decode("utf-8", "replace").rstrip("\r")
    if header_text.split() != FRAME_LIST_HEADER.split():
        raise InputError(path, 1, f"expected header {FRAME_LIST_HEADER!r}, got {header_text!r}")
    names = ["original_video_id", "video_id", "frame_id", "path", "labels"]
    try:
        table = pcsv.read_csv(
            pa.BufferReader(body),
            read_options=pcsv.ReadOptions(column_names=names),
            parse_options=pcsv.ParseOptions(delimiter=" ", quote_char=False, escape_char=False, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in names}, strings_can_be_null=False),
        )
    except pa.ArrowInvalid:
        raise _frame_list_error(path, body) from None
    blank = pc.and_(pc.equal(pc.binary_length(table.column("original_video_id")), 0),
                    pc.equal(pc.binary_length(table.column("path")), 0))
    if pc.any(blank).as_py():  # pyarrow reads a blank line as a row of empty fields
        raise _frame_list_error(path, body)
    checks = _Checks(path, np.arange(2, table.num_rows + 2, dtype=np.int64))
    present = np.ones(table.num_rows, bool)
    video_id, _ = _parse_numbers(table.column("video_id").combine_chunks(), present, "int", "video_id", checks)
    frame_id, _ = _parse_numbers(table.column("frame_id").combine_chunks(), present, "int", "frame_id", checks)
    error = checks.first()
    if error is not None:
        raise error
    column = lambda name: table.column(name).combine_chunks()
    return FrameList(path, column("original_video_id"), video_id, frame_id, column("path"), column("labels"), header_text)


def _frame_list_error(path: str, body: bytes) -> InputError:
    """The first line of a frame list body that pyarrow refused (field count or encoding)."""
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, 2):
        fields = raw.rstrip(b"\r").split(b" ")
        if len(fields) != 5:
            return InputError(path, number, f"expected 5 space-separated fields, got {len(fields) if raw.strip() else 0}")
        if not _is_utf8(raw):
            return InputError(path, number, "not valid UTF-8 text")
    return InputError(path, None, "cannot parse frame list")


def write_frame_list(frames: FrameList, path: str | os.PathLike) -> None:
    """Write a SlowFast frame list (header line, then space-separated rows), atomically."""
    as_strings = lambda values: values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values), pa.string())
    lines = pc.binary_join_element_wise(
        as_strings(frames.original_video_id),
        pc.cast(pa.array(np.asarray(frames.video_id, np.int64)), pa.string()),
        pc.cast(pa.array(np.asarray(frames.frame_id, np.int64)), pa.string()),
        as_strings(frames.frame_path),
        as_strings(frames.labels),
        " ",
    )
    _write_lines(pa.concat_arrays([pa.array([frames.header], pa.string()), lines]), path)


# --------------------------------------------------------------------------------------------------------------
# dense proposals
# --------------------------------------------------------------------------------------------------------------

def read_proposals(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a dense proposals ``.pkl``: ``{"video,ts04d": float64 (N, 5) [x1, y1, x2, y2, score]}`` (normalized).

    Uses the restricted unpickler (:mod:`partwise.data.safe_pickle`); raises :class:`InputError` naming the file
    and key for a value that is not an (N, 5) numeric array or a key that is not ``"video,timestamp"``."""
    from partwise.data import safe_pickle

    path = os.fspath(path)
    data = safe_pickle.load(path)
    if not isinstance(data, dict):
        raise InputError(path, None, f"expected a dict of proposals, got {type(data).__name__}")
    out: dict[str, np.ndarray] = {}
    for key, value in data.items():
        if not isinstance(key, str) or key.count(",") != 1:
            raise InputError(path, repr(key), "proposal key must be 'video,timestamp'")
        try:
            array = np.asarray(value)
        except ValueError:  # ragged rows
            raise InputError(path, key, "expected a numeric (N, 5) array, got rows of different lengths") from None
        if array.dtype.kind not in "fiu" or array.ndim != 2 or array.shape[1] != 5:
            raise InputError(path, key, f"expected a numeric (N, 5) array, got {array.dtype} {array.shape}")
        array = array.astype(np.float64, copy=False)
        if not np.isfinite(array).all():
            raise InputError(path, key, "NaN or infinite box coordinate or score")
        out[key] = array
    return out


def write_proposals(proposals: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Write proposals as a pickled ``{key: float64 (N, 5)}`` dict (protocol 4, readable by mmaction2), atomically."""
    import pickle

    clean = {}
    for key, value in proposals.items():
        array = np.asarray(value, np.float64)
        if array.ndim != 2 or array.shape[1] != 5:
            raise ValueError(f"proposals[{key!r}]: expected (N, 5), got {array.shape}")
        clean[str(key)] = array
    with atomic_write(path, "wb") as fh:
        pickle.dump(clean, fh, protocol=4)


# --------------------------------------------------------------------------------------------------------------
# canonical records
# --------------------------------------------------------------------------------------------------------------

_GT_NAME = re.compile(r"^ava_(train|val|test)_v(\d+)\.(\d+)\.csv$")
_EXCLUDED_NAME = re.compile(r"^ava_(train|val|test)_excluded_timestamps_v(\d+)\.(\d+)\.csv$")
_SPLIT_TOKEN = re.compile(r"(?:^|[_.\-])(train|val|test)(?:[_.\-]|$)")


def split_from_name(name: str) -> str | None:
    """``train`` / ``val`` / ``test`` when the file name carries that token (``ava_val_v2.2.csv``), else None."""
    found = _SPLIT_TOKEN.search(Path(name).name)
    return found.group(1) if found else None


def annotation_files(folder: str | os.PathLike, split: str | None = None) -> list[tuple[Path, Path | None]]:
    """The GT CSVs of an AVA annotation folder, newest version per split (``ava_val_v2.2.csv`` over v2.1), each
    with its excluded-timestamps file (or None). Raises :class:`InputError` when the folder has none."""
    folder = Path(folder)
    best: dict[str, tuple[tuple[int, int], Path]] = {}
    for entry in sorted(folder.iterdir()):
        found = _GT_NAME.match(entry.name)
        if not found or (split is not None and found.group(1) != split):
            continue
        version = (int(found.group(2)), int(found.group(3)))
        if found.group(1) not in best or version > best[found.group(1)][0]:
            best[found.group(1)] = (version, entry)
    if not best:
        wanted = f"ava_{split or '{train,val}'}_v2.x.csv"
        raise InputError(str(folder), None, f"no AVA annotation CSV ({wanted}) in this folder")
    out = []
    for name in ("train", "val", "test"):
        if name in best:
            (major, minor), csv_path = best[name]
            excluded = folder / f"ava_{name}_excluded_timestamps_v{major}.{minor}.csv"
            from partwise.io import present_file

            out.append((csv_path, excluded if present_file(excluded) else None))
    return out


def group_persons(table: AvaCsv) -> tuple[np.ndarray, np.ndarray]:
    """Group box rows into persons like mmaction2: rows of one keyframe (video, timestamp) with identical box
    values are one person. Returns ``(group, first_rows)``: ``group`` (N,) int64 person index per row (-1 for rows
    without a box), numbered in order of first appearance; ``first_rows`` (P,) the first row of each person."""
    rows = len(table)
    has_box = table.n_columns >= 7
    idx = np.flatnonzero(has_box)
    group = np.full(rows, -1, np.int64)
    if idx.size == 0:
        return group, np.empty(0, np.int64)
    b = table.boxes[idx]
    order = np.lexsort((idx, b[:, 3], b[:, 2], b[:, 1], b[:, 0], table.timestamp[idx], table.video_codes[idx]))
    keys = np.stack([table.video_codes[idx].astype(np.float64), table.timestamp[idx], *b.T], axis=1)[order]
    new = np.ones(len(order), bool)
    new[1:] = np.any(keys[1:] != keys[:-1], axis=1)
    sorted_group = np.cumsum(new) - 1
    first_sorted = idx[order][new]  # first row (smallest index) of each group, groups in key order
    rank = np.empty(len(first_sorted), np.int64)
    rank[np.argsort(first_sorted, kind="stable")] = np.arange(len(first_sorted))
    group[idx[order]] = rank[sorted_group]
    return group, np.sort(first_sorted)


def _actions_lists(table: AvaCsv, group: np.ndarray, n_groups: int) -> pa.Array:
    """list<int32> per person: the sorted distinct action ids of its rows (empty actions skipped)."""
    valid = (group >= 0) & (table.action > 0)
    stride = int(table.action.max(initial=0)) + 1
    pairs = np.unique(group[valid] * stride + table.action[valid])  # sorted by (person, action), distinct
    person, action = np.divmod(pairs, stride)
    counts = np.bincount(person, minlength=n_groups)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(action.astype(np.int32), pa.int32()))


def table_to_records(table: AvaCsv, *, dataset: str, split: str | None, frame_index: np.ndarray,
                     per_row: bool, excluded: set[str] | None = None) -> pa.Table:
    """:class:`AvaCsv` -> canonical person table (PERSON_SCHEMA). ``per_row`` (detections): one record per box
    row with its score; otherwise rows are grouped into persons (:func:`group_persons`). ``frame_index`` (N,) is
    the keyframe frame number per row. Keyframes whose ``"video,ts04d"`` key is in ``excluded`` are dropped."""
    from partwise.data.records import PERSON_SCHEMA, conform

    keep = table.n_columns >= 7
    if excluded:
        keep &= ~np.isin(keyframe_keys(table), np.asarray(sorted(excluded), dtype=object))
    if per_row:
        first = np.flatnonzero(keep)
        labelled = table.action[first] > 0  # SlowFast box lists have no action
        offsets = np.concatenate([[0], np.cumsum(labelled)]).astype(np.int32)
        actions = pa.ListArray.from_arrays(pa.array(offsets), pa.array(table.action[first][labelled], pa.int32()))
    else:
        sub = table.select(keep) if not keep.all() else table
        group, first_sub = group_persons(sub)
        actions = _actions_lists(sub, group, len(first_sub))
        first = np.flatnonzero(keep)[first_sub]
    n = len(first)
    videos = pa.array(list(table.videos), pa.string()).take(pa.array(table.video_codes[first].astype(np.int64)))
    path_name = Path(table.path).name
    source = pc.binary_join_element_wise(pa.scalar(path_name + ":"), pc.cast(pa.array(table.line[first]), pa.string()), "")
    person_id = table.person_id[first]
    score = table.score[first]
    columns = {
        "dataset": pa.array([dataset] * n, pa.string()),
        "split": pa.array([split] * n, pa.string()),
        "video_id": videos,
        "time_s": pa.array(table.timestamp[first]),
        "frame_index": pa.array(np.asarray(frame_index)[first].astype(np.int64)),
        "x1": pa.array(table.boxes[first, 0]), "y1": pa.array(table.boxes[first, 1]),
        "x2": pa.array(table.boxes[first, 2]), "y2": pa.array(table.boxes[first, 3]),
        "person_id": pa.array(person_id, mask=person_id < 0),
        "score": pa.array(score, mask=np.isnan(score)),
        "actions": actions,
        "action_vocab": pa.array(["ava80"] * n, pa.string()),
        "source": source,
    }
    return conform(pa.table(columns)).cast(PERSON_SCHEMA)


def _csv_kind(path: Path) -> str:
    return "gt" if _GT_NAME.match(path.name) else "auto"


def _excluded_keys(path: Path | None) -> set[str]:
    if path is None:
        return set()
    table = read_excluded(path)
    return set(keyframe_keys(table).tolist()) if len(table) else set()


def read_records(path: str | os.PathLike, *, split: str | None = None, progress: bool = False) -> pa.Table:
    """AVA annotations -> canonical person table (:data:`partwise.data.records.PERSON_SCHEMA`).

    ``path``: an AVA annotation folder (``ava_{train,val}_v2.{1,2}.csv``, the newest version per split, with its
    excluded-timestamps file; keyframes listed there are dropped like mmaction2 does) or one CSV. GT rows are
    grouped into one record per person per keyframe (identical box values, :func:`group_persons`): ``actions``
    are the person's sorted distinct AVA ids (vocabulary ``ava80``), ``frame_index = (t - 900) * 30``,
    ``time_s = t``, ``split`` from the file name unless given, ``source = "file:line"`` of the person's first
    row. Detection CSVs (8th column a score, or empty action fields) give one record per row with ``score``.
    2-column keyframe rows carry no person and give no record. Raises :class:`InputError` on the first problem.
    """
    path = Path(path)
    if path.is_dir():
        files = annotation_files(path, split)
    else:
        files = [(path, None)]
    tables = []
    iterator = files
    if progress:
        from partwise.progress import bar as tqdm
        iterator = tqdm(files, desc="ava", unit="file")
    for csv_path, excluded_path in iterator:
        table = read_csv(csv_path, kind=_csv_kind(csv_path))
        per_row = table.kind == "det" or bool((table.action[table.n_columns >= 7] < 0).any())
        tables.append(table_to_records(
            table, dataset="ava", split=split or split_from_name(csv_path.name),
            frame_index=keyframe_index(table.timestamp), per_row=per_row, excluded=_excluded_keys(excluded_path)))
    return pa.concat_tables(tables)


def validate(path: str | os.PathLike) -> list[Problem]:
    """Every problem in an AVA annotation folder (all GT CSVs, excluded-timestamp files, label maps, proposal
    pickles) or in one CSV. Empty list when valid."""
    path = Path(path)
    if not path.is_dir():
        return validate_csv(path, kind=_csv_kind(path))
    problems: list[Problem] = []
    found = False
    for entry in sorted(path.iterdir()):
        name = entry.name
        if _GT_NAME.match(name):
            found = True
            problems += validate_csv(entry, kind="gt")
        elif _EXCLUDED_NAME.match(name):
            problems += _validate_with(read_excluded, entry)
        elif name.endswith(".pbtxt") or name.endswith(".pbtxt.txt"):
            from partwise.vocab import read_label_map
            problems += _validate_with(read_label_map, entry)
        elif name.endswith(".pkl") and "proposal" in name:
            problems += _validate_with(read_proposals, entry)
    if not found:
        problems.append(Problem(str(path), None, "no AVA annotation CSV (ava_{train,val}_v2.x.csv) in this folder"))
    return problems


def _validate_with(reader, path: Path) -> list[Problem]:
    try:
        reader(path)
    except InputError as err:
        return [err.problem]
    return []


def records_to_csv_table(table: pa.Table, path: str) -> AvaCsv:
    """Canonical records -> :class:`AvaCsv` with one row per (person, action), sorted by video, timestamp, box,
    action. Records with a score give detection rows (8th column = score, boxes ``%.4f`` like mmaction2's result
    files; a detection without actions gives one row with an empty action field, as in SlowFast box lists);
    otherwise GT rows with the person id (-1 when null, boxes ``%.3f``). A keyframe none of whose persons has
    an action gets one 2-column keyframe row. Raises ``ValueError`` for records without a normalized box or time."""
    n = table.num_rows
    video = np.asarray(table.column("video_id").to_pylist(), dtype=object)
    ts = pc.fill_null(table.column("time_s"), np.nan).to_numpy().astype(np.float64)
    boxes = np.stack([pc.fill_null(table.column(c), np.nan).to_numpy().astype(np.float64)
                      for c in ("x1", "y1", "x2", "y2")], 1).reshape(n, 4)
    missing = np.isnan(ts) | np.isnan(boxes).any(axis=1)
    if missing.any():
        raise ValueError(f"record {int(np.argmax(missing))} has no time_s or no normalized box (x1..y2); "
                         "AVA files need both")
    pid = pc.fill_null(table.column("person_id"), -1).to_numpy().astype(np.int64)
    score = pc.fill_null(table.column("score"), np.nan).to_numpy().astype(np.float64)
    is_det = bool(np.isfinite(score).any())
    actions = table.column("actions").combine_chunks()
    counts = pc.fill_null(pc.list_value_length(actions), 0).to_numpy().astype(np.int64)
    flat = pc.list_flatten(actions).to_numpy().astype(np.int64) if n else np.empty(0, np.int64)
    if is_det:  # a scored box without actions is still a detection row (empty action field)
        unlabelled = np.flatnonzero(counts == 0)
        rec = np.concatenate([np.repeat(np.arange(n), counts), unlabelled])
        flat = np.concatenate([flat, np.full(len(unlabelled), -1)])
    else:
        rec = np.repeat(np.arange(n), counts)
    videos, codes = np.unique(video, return_inverse=True) if n else (np.empty(0, object), np.empty(0, np.int64))
    codes = codes.reshape(-1)
    empty_rows = np.empty(0, np.int64)
    if n:  # keyframes without any row: one 2-column row each
        kf = np.unique(np.stack([codes.astype(np.float64), ts], 1), axis=0, return_inverse=True)[1].reshape(-1)
        covered = np.zeros(kf.max() + 1, bool)
        covered[kf[rec]] = True
        bare = np.flatnonzero(~covered[kf])
        empty_rows = bare[np.unique(kf[bare], return_index=True)[1]]
    src = np.concatenate([rec, empty_rows]).astype(np.int64)
    act = np.concatenate([flat, np.full(len(empty_rows), -1)])
    ncol = np.concatenate([np.full(len(rec), 8), np.full(len(empty_rows), 2)]).astype(np.int8)
    bx = boxes[src]
    bx[ncol == 2] = np.nan
    filled = np.nan_to_num(bx, nan=-1.0)
    order = np.lexsort((act, filled[:, 3], filled[:, 2], filled[:, 1], filled[:, 0], ts[src], codes[src]))
    src, act, ncol, bx = src[order], act[order], ncol[order], bx[order]
    return AvaCsv(path, list(videos), codes[src].astype(np.int32), ts[src], bx, act.astype(np.int32),
                  np.where(ncol == 8, pid[src], -1), np.where(ncol == 8, score[src], np.nan), ncol,
                  np.arange(1, len(src) + 1, dtype=np.int64), "det" if is_det else "gt",
                  {"box": (1, 4)} if is_det else {})


def write_records(table: pa.Table, path: str | os.PathLike) -> None:
    """Canonical records -> AVA CSV(s), atomically. ``path`` ending in ``.csv``: one file; otherwise a folder
    with one ``ava_<split>_v2.2.csv`` per split. Rows: one per (person, action), sorted by video, timestamp,
    box, action (:func:`records_to_csv_table`); boxes ``%.3f`` and timestamps ``%04d`` like AVA's files."""
    path = Path(path)
    if path.suffix == ".csv":
        write_csv(records_to_csv_table(table, str(path)), path)
        return
    splits = [s or "train" for s in table.column("split").to_pylist()]
    for name in sorted(set(splits)):
        mask = pa.array([s == name for s in splits], pa.bool_())
        out = path / f"ava_{name}_v2.2.csv"
        write_csv(records_to_csv_table(table.filter(mask), str(out)), out)
