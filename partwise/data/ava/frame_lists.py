"""SlowFast frame lists: space-separated, one header line."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from partwise.data.ava.checks import _Checks, _parse_numbers
from partwise.data.ava.fields import _is_utf8, _read_bytes
from partwise.data.ava.write import _write_lines
from partwise.errors import InputError

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
