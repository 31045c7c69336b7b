"""Inputs of the AVA evaluator (:mod:`partwise.eval.ava`): rows from CSV paths, :class:`AvaCsv` objects,
person-record tables or plain sequences; exclusion files; the finiteness check of in-memory rows."""
from __future__ import annotations

import csv
import os
from typing import Any, Collection, Iterable, Mapping

import numpy as np

from partwise.data.ava.table import MAX_TIMESTAMP, AvaCsv
from partwise.errors import InputError


def make_rows(video_ids: Iterable[str], timestamps, boxes=None, actions=None, scores=None, person_ids=None,
              *, path: str = "<memory>") -> AvaCsv:
    """Rows from plain sequences: ``video_ids`` (N,), ``timestamps`` (N,) seconds, ``boxes`` (N, 4) x1, y1, x2, y2
    (NaN rows = 2-column keyframe rows), ``actions`` (N,) class ids, optional ``scores`` (N,) (detections) and
    ``person_ids`` (N,). Line numbers are 1..N."""
    names = np.asarray(list(video_ids), dtype=object)
    n = names.shape[0]
    videos, codes = (np.unique(names.astype(str), return_inverse=True) if n else (np.empty(0, str), np.empty(0, int)))
    box = np.full((n, 4), np.nan) if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(n, 4)
    action = np.full(n, -1, np.int32) if actions is None else np.asarray(actions, dtype=np.int32).reshape(n)
    has_box = ~np.isnan(box).any(axis=1)
    score = np.full(n, np.nan) if scores is None else np.asarray(scores, dtype=np.float64).reshape(n)
    pid = np.full(n, -1, np.int64) if person_ids is None else np.asarray(person_ids, dtype=np.int64).reshape(n)
    ncol = np.where(has_box, np.where(~np.isnan(score) | (pid >= 0), 8, 7), 2).astype(np.int8)
    timestamp = np.asarray(timestamps, np.float64).reshape(n)
    return AvaCsv(path, [str(v) for v in videos], codes.astype(np.int32), timestamp, box, action, pid, score, ncol,
                   np.arange(1, n + 1, dtype=np.int64))


def as_rows(source: Any, *, kind: str, valid_actions=None, label_ids_by_name: Mapping[str, int] | None = None,
            pasta: bool = False, keep_actions: Collection[int] | None = None) -> AvaCsv:
    """Accept an :class:`~partwise.data.ava.AvaCsv` (or anything with its fields), a path to an AVA CSV (read with
    :func:`read_rows`, ``keep_actions`` passed on) or a ``pyarrow.Table`` of person records (``PERSON_SCHEMA``)."""
    if isinstance(source, AvaCsv):
        return source
    if isinstance(source, (str, os.PathLike)):
        return read_rows(source, kind=kind, valid_actions=valid_actions, keep_actions=keep_actions)
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pa = None
    if pa is not None and isinstance(source, pa.Table):
        return rows_from_records(source, pasta=pasta, label_ids_by_name=label_ids_by_name)
    fields = ("videos", "video_codes", "timestamp", "boxes", "action", "person_id", "score", "n_columns", "line")
    if all(hasattr(source, f) for f in fields):
        return AvaCsv(str(getattr(source, "path", "<memory>")), list(source.videos),
                       *(np.asarray(getattr(source, f)) for f in fields[1:]))
    raise TypeError(f"cannot evaluate {type(source).__name__}: give a path, an AvaCsv or a records table")


def read_rows(path: str | os.PathLike, *, kind: str, valid_actions=None,
              keep_actions: Collection[int] | None = None) -> AvaCsv:
    """Read an AVA CSV with :func:`partwise.data.ava.read_csv` (``keep_formats=False``). An empty detection file
    is an empty input (no detections), not an error.

    Well-formed 8-column files take the typed streaming reader (:func:`partwise.data.ava.typed.read_typed`) in
    its compact form: ``line`` int32, ``n_columns`` and the absent ``person_id`` / ``score`` column read-only
    broadcast constants. With ``keep_actions`` only rows of those action ids are kept there (every row is still
    checked); the evaluator passes its classes for detections, whose other rows it never looks at.
    """
    from partwise.data.ava.typed import read_typed

    path = os.fspath(path)
    if kind == "det":
        try:
            with open(path, "rb") as fh:
                empty = not fh.read(1 << 16).strip() and os.path.getsize(path) < (1 << 16)
        except OSError as exc:
            raise InputError(path, None, f"cannot read: {exc.strerror}") from None
        if empty:
            return _empty_rows(path)
    table = read_typed(path, kind, valid_actions, keep_actions=keep_actions, compact=True)
    if table is None:
        from partwise.data.ava.parse import _read_parsed

        table = _read_parsed(path, kind, True, valid_actions)
    return table


def _empty_rows(path: str) -> AvaCsv:
    return AvaCsv(path, [], np.empty(0, np.int32), np.empty(0), np.empty((0, 4)), np.empty(0, np.int32),
                   np.empty(0, np.int64), np.empty(0), np.empty(0, np.int8), np.empty(0, np.int64))


def rows_from_records(table, *, pasta: bool = False, label_ids_by_name: Mapping[str, int] | None = None) -> AvaCsv:
    """Explode person records (``PERSON_SCHEMA``) into one row per (person, class): the ``actions`` ids, or with
    ``pasta`` the ``pasta`` names mapped to ids by ``label_ids_by_name`` (default: the ``pasta_ava87`` vocabulary).
    The record's ``score`` (null for GT) is each row's score; line = record index + 1."""
    import pyarrow.compute as pc

    column = table.column("pasta" if pasta else "actions").combine_chunks()
    parents = np.asarray(pc.list_parent_indices(column), dtype=np.int64)
    values = pc.list_flatten(column)
    if pasta:
        if label_ids_by_name is None:
            from partwise import vocab

            v = vocab.load("pasta_ava87")
            label_ids_by_name = dict(zip(v.names, v.ids))
        import pyarrow as pa

        known = list(label_ids_by_name)
        position = np.asarray(pc.index_in(values, value_set=pa.array(known, pa.string())).fill_null(-1),
                              dtype=np.int64)
        if (position < 0).any():
            first = int(np.flatnonzero(position < 0)[0])
            record = int(parents[first])
            where = (table.column("source")[record].as_py() if "source" in table.column_names else None) \
                or f"record {record}"
            raise InputError("<records>", where, f"unknown part state {values[first].as_py()!r}")
        action = np.asarray([label_ids_by_name[name] for name in known], dtype=np.int32)[position]
    else:
        action = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int32)
    video = table.column("video_id").combine_chunks()
    videos_dict = pc.dictionary_encode(video)
    codes = np.asarray(videos_dict.indices.to_numpy(zero_copy_only=False), np.int32)[parents]
    videos = videos_dict.dictionary.to_pylist()

    def col(name, fill):
        return np.asarray(table.column(name).fill_null(fill).to_numpy(), dtype=np.float64)[parents]

    boxes = np.stack([col(k, np.nan) for k in ("x1", "y1", "x2", "y2")], axis=1)
    score = col("score", np.nan)
    pid = np.asarray(table.column("person_id").fill_null(-1).to_numpy(), np.int64)[parents]
    ncol = np.where(~np.isnan(score) | (pid >= 0), 8, 7).astype(np.int8)
    return AvaCsv("<records>", videos, codes, col("time_s", np.nan), boxes, action, pid, score, ncol,
                   parents + 1)


def read_exclusions(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """An exclusions CSV (``video_id,second`` per line) -> (video ids, seconds float64). Raises InputError."""
    path = os.fspath(path)
    videos, seconds = [], []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for number, row in enumerate(csv.reader(fh), 1):
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != 2:
                    raise InputError(path, number, f"expected 2 columns (video_id,second), got {len(row)}")
                try:
                    second = float(row[1])
                except ValueError:
                    raise InputError(path, number, f"timestamp is not a number: {row[1]!r}") from None
                if not np.isfinite(second):
                    raise InputError(path, number, f"timestamp is not finite: {row[1]!r}")
                if abs(second) >= MAX_TIMESTAMP:
                    raise InputError(path, number, f"timestamp {row[1]} out of range (|t| < {MAX_TIMESTAMP:.0e} s)")
                if not row[0].strip():
                    raise InputError(path, number, "empty video id")
                videos.append(row[0].strip())
                seconds.append(second)
    except OSError as exc:
        raise InputError(path, None, f"cannot read exclusions: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(path, None, "not UTF-8 text") from None
    return videos, np.asarray(seconds, dtype=np.float64)


def _check_rows(rows: AvaCsv, kind: str) -> None:
    """Reject what would break the arithmetic (in-memory inputs skip the CSV reader's checks): non-finite
    timestamps or boxes, 8-column detections without a score. Raises InputError naming the first bad line."""
    bad = ~np.isfinite(rows.timestamp) | (np.abs(rows.timestamp) >= MAX_TIMESTAMP)
    bad |= (rows.n_columns != 2) & ~np.isfinite(rows.boxes).all(axis=1)
    reason = f"timestamp or box is not a finite number (timestamps: |t| < {MAX_TIMESTAMP:.0e} s)"
    if kind == "det":
        no_score = (rows.n_columns == 8) & np.isnan(rows.score)
        if no_score.any() and not bad.any():
            bad, reason = no_score, "detection without a score (8th column)"
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(rows.path, int(rows.line[first]), reason)
