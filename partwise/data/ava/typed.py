"""The typed streaming fast path for well-formed 8-column AVA CSVs (detections, GT with person ids).

pyarrow's streaming CSV reader parses typed columns block by block (video ids dictionary-encoded per block and
mapped to one global code list); each block is checked and its numbers copied straight into preallocated output
arrays, so the peak memory is the final arrays plus one block -- no whole-file Arrow table and no second numpy copy.
Anything unusual (another field count, an empty or non-numeric field, NaN, a blank line, invalid UTF-8) makes the
reader give up (``None``) so that the full parser (:mod:`partwise.data.ava.parse`) reports it by line; range
problems are raised here with the same text and line as the full parser gives.
"""
from __future__ import annotations

import os
from typing import Collection

import numpy as np

from partwise.data.ava.table import MAX_TIMESTAMP, AvaCsv
from partwise.errors import InputError

#: bytes per streamed block: blocks in flight and the Arrow pool it leaves behind are the reader's overhead over
#: its output (1 MiB: ~60 MiB on AVA val; 8 MiB: ~200 MiB, no faster)
BLOCK_SIZE = 1 << 20
#: files up to this size are checked for other field counts before the typed parse (:func:`_maybe_uniform`)
PRECHECK_BYTES = 64 << 20
_NAMES = tuple(f"c{k}" for k in range(8))


def _first_line_fields(path: str) -> int:
    try:
        with open(path, "rb") as fh:
            first = fh.readline(1 << 16)
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    return first.rstrip(b"\r\n").count(b",") + 1 if first.strip() else 0


def _maybe_uniform(path: str) -> bool:
    """False when a small file surely has rows of other field counts (AVA 2020 GT with 2-column keyframe rows,
    blank lines): one count of commas and line ends, instead of a typed parse that fails at the end."""
    if os.path.getsize(path) > PRECHECK_BYTES:
        return True
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    return data.count(b",") == 7 * lines


def _estimate_rows(path: str) -> int:
    """Rows in the file, estimated from the line length of its first MiB (an upper bound for usual files)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    lines = head.count(b"\n")
    if not lines or len(head) >= size:
        return max(lines, 1) + 1
    return int(size / (len(head) / lines) * 1.05) + 1024


class _Buffers:
    """Output columns written block by block; allocated for an estimate and grown when it is exceeded. The slack
    past the last row is never touched, so it costs address space, not memory."""

    def __init__(self, capacity: int, kind: str, compact: bool):
        self.n, self.kind, self.compact = 0, kind, compact
        self.codes = np.empty(capacity, np.int32)
        self.timestamp = np.empty(capacity, np.float64)
        self.boxes = np.empty((capacity, 4), np.float64)
        self.action = np.empty(capacity, np.int32)
        self.last = np.empty(capacity, np.float64 if kind == "det" else np.int64)
        self.line = np.empty(capacity, np.int32 if compact else np.int64)

    def _grow(self, need: int) -> None:
        capacity = max(need, int(self.codes.shape[0] * 1.25) + 1024)
        for name in ("codes", "timestamp", "boxes", "action", "last", "line"):
            old = getattr(self, name)
            new = np.empty((capacity,) + old.shape[1:], old.dtype)
            new[:self.n] = old[:self.n]
            setattr(self, name, new)

    def add(self, codes, timestamp, box_cols, action, last, first_line: int, keep: np.ndarray | None) -> None:
        """Append a block's columns, only the rows where ``keep`` is set (all when None), straight into the
        buffers (``np.compress`` with ``out=``: no per-block temporaries)."""
        rows = codes.shape[0]
        index = None if keep is None else np.flatnonzero(keep)
        k = rows if index is None else index.shape[0]
        if self.n + k > self.codes.shape[0]:
            self._grow(self.n + k)
        lo, hi = self.n, self.n + k
        pairs = [(codes, self.codes[lo:hi]), (timestamp, self.timestamp[lo:hi]), (action, self.action[lo:hi]),
                 (last, self.last[lo:hi])] + [(box_cols[j], self.boxes[lo:hi, j]) for j in range(4)]
        for source, target in pairs:
            if index is None:
                target[...] = source
            else:
                np.take(source, index, out=target)
        if index is None:
            self.line[lo:hi] = np.arange(first_line, first_line + rows, dtype=self.line.dtype)
        else:
            np.add(index, first_line, out=self.line[lo:hi], casting="unsafe")
        self.n = hi


def read_typed(path: str, kind: str, valid_actions: Collection[int] | None, *,
               keep_actions: Collection[int] | None = None, compact: bool = False,
               block_size: int = BLOCK_SIZE) -> AvaCsv | None:
    """Read a well-formed 8-column file of ``kind`` ``"gt"`` or ``"det"``; ``None`` when the full parser must.

    Arrays as :func:`partwise.data.ava.read_csv` returns them (float64 boxes and timestamps, int32 codes and
    actions). ``keep_actions``: only rows with these action ids are returned (every row is still checked); their
    ``line`` numbers say where they were. ``compact`` (evaluation): ``line`` int32, and the columns the kind does
    not have (``person_id`` of detections, ``score`` of GT) and ``n_columns`` are read-only broadcast constants
    that take no memory.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if kind not in ("gt", "det") or _first_line_fields(path) != 8 or not _maybe_uniform(path):
        return None
    types = {"c0": pa.dictionary(pa.int32(), pa.string()), "c1": pa.float64(), "c2": pa.float64(),
             "c3": pa.float64(), "c4": pa.float64(), "c5": pa.float64(), "c6": pa.int32(),
             "c7": pa.float64() if kind == "det" else pa.int64()}
    keep_table = None
    if keep_actions is not None:
        wanted = np.asarray(sorted({int(a) for a in keep_actions}), np.int64)
        if wanted.size and wanted.min() >= 0 and wanted.max() < (1 << 20):
            keep_table = np.zeros(int(wanted.max()) + 2, bool)
            keep_table[wanted] = True
    try:
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(column_names=list(_NAMES), block_size=block_size),
            parse_options=pcsv.ParseOptions(quote_char=False, escape_char=False, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types=types, strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowException, UnicodeError):
        return None
    out = _Buffers(_estimate_rows(path), kind, compact)
    videos: list[str] = []
    video_index: dict[str, int] = {}
    first_line = 1
    try:
        for batch in reader:
            rows = batch.num_rows
            if rows == 0:
                continue
            if any(batch.column(k).null_count for k in range(8)):
                return None
            video = batch.column(0)
            names = video.dictionary.to_pylist()
            if any(not name for name in names):
                return None
            remap = np.empty(len(names), np.int32)
            for j, name in enumerate(names):
                code = video_index.get(name)
                if code is None:
                    code = video_index[name] = len(videos)
                    videos.append(name)
                remap[j] = code
            codes = remap[video.indices.to_numpy()]
            timestamp = batch.column(1).to_numpy()
            box_cols = [batch.column(k).to_numpy() for k in range(2, 6)]
            action = batch.column(6).to_numpy()
            last = batch.column(7).to_numpy()
            # min and max propagate NaN: one pass per column finds NaN (-> the full parser) and range problems
            lows = [float(c.min()) for c in (timestamp, *box_cols)]
            highs = [float(c.max()) for c in (timestamp, *box_cols)]
            if np.isnan(lows + highs).any() or (kind == "det" and np.isnan(last.max())):
                return None
            x1, y1, x2, y2 = box_cols
            if (min(lows[1:]) < 0 or max(highs[1:]) > 1 or max(abs(lows[0]), abs(highs[0])) >= MAX_TIMESTAMP
                    or (x2 < x1).any() or (y2 < y1).any() or not _actions_allowed(action, valid_actions)):
                _raise_range_problem(path, first_line, box_cols, action, timestamp, valid_actions)
            keep = None
            if keep_actions is not None:
                if keep_table is None or int(action.min()) < 0 or int(action.max()) >= keep_table.shape[0]:
                    keep = np.isin(action, wanted)
                else:
                    keep = keep_table[action]
            out.add(codes, timestamp, box_cols, action, last, first_line, keep)
            first_line += rows
    except (pa.ArrowInvalid, pa.ArrowException, UnicodeError):
        return None
    if first_line == 1:  # no rows: the full parser says "empty file"
        return None
    n = out.n
    if kind == "det":
        score = out.last[:n]
        person_id = np.broadcast_to(np.int64(-1), (n,)) if compact else np.full(n, -1, np.int64)
    else:
        person_id = out.last[:n]
        score = np.broadcast_to(np.float64(np.nan), (n,)) if compact else np.full(n, np.nan)
    n_columns = np.broadcast_to(np.int8(8), (n,)) if compact else np.full(n, 8, np.int8)
    return AvaCsv(path=path, videos=videos, video_codes=out.codes[:n], timestamp=out.timestamp[:n],
                  boxes=out.boxes[:n], action=out.action[:n], person_id=person_id, score=score,
                  n_columns=n_columns, line=out.line[:n], kind=kind, formats={})


def _actions_allowed(action: np.ndarray, valid_actions: Collection[int] | None) -> bool:
    from partwise.data.ava.table import AVA_NUM_ACTIONS

    if valid_actions is None:
        return int(action.min()) >= 1 and int(action.max()) <= AVA_NUM_ACTIONS
    return bool(np.isin(action, np.asarray(sorted(int(a) for a in valid_actions), np.int64)).all())


def _raise_range_problem(path, first_line, box_cols, action, timestamp, valid_actions) -> None:
    """Raise the block's first range problem with the full parser's text and line (the block has one)."""
    from partwise.data.ava.checks import _Checks, _check_values  # pyarrow.compute: only on this error path

    rows = action.shape[0]
    checks = _Checks(path, np.arange(first_line, first_line + rows, dtype=np.int64))
    everywhere = np.ones(rows, bool)
    _check_values(np.stack(box_cols, axis=1), np.ones((rows, 4), bool), action.astype(np.int64), everywhere,
                 timestamp, everywhere, valid_actions, checks)
    error = checks.first()
    if error is not None:
        raise error
