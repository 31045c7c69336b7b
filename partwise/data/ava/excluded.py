"""Excluded-timestamp files ``video,second``."""
from __future__ import annotations

import os
from typing import Iterable

import numpy as np

from partwise.data.ava.fields import _split
from partwise.data.ava.parse import _parse
from partwise.data.ava.table import AvaCsv, _empty_table
from partwise.data.ava.write import write_csv
from partwise.errors import InputError


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
