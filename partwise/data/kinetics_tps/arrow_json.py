"""The Arrow fast path: a chunk of per-frame files parsed by Arrow's C++ JSON reader as newline-delimited JSON,
then columns built with vectorized Arrow/numpy operations. Any surprise raises ``_Malformed`` and the caller hands
the chunk to the Python path (:mod:`partwise.data.kinetics_tps.ingest`), which names the file and key of a real
problem.

Schema discovery as the dataset notes advise: the first chunk's inferred schema is passed as the explicit schema of
the next ones (a chunk that does not fit is inferred again). Every file must start with ``{`` and end with ``}`` and
yield exactly one row, which proves no file borrowed text from a neighbour. One leniency: a part or ``number``
given as JSON ``null`` reads as absent (:func:`partwise.data.kinetics_tps.validate` reports the null part).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from partwise.data.kinetics_tps.columns import _OBJECT_NAME_KEYS, _Arrays, _check_boxes, _Malformed
from partwise.data.kinetics_tps.layout import VideoDir


def _check_number_lists(boxes: pa.Array) -> None:
    """``_Malformed`` unless ``boxes`` is a list array of numbers (or of nulls only)."""
    if not (pa.types.is_list(boxes.type) or pa.types.is_large_list(boxes.type)):
        raise _Malformed
    value_type = boxes.type.value_type
    if not (pa.types.is_integer(value_type) or pa.types.is_floating(value_type) or pa.types.is_null(value_type)):
        raise _Malformed


def _list_boxes(boxes: pa.Array) -> np.ndarray:
    """A ``list<number>`` array with exactly 4 non-null numbers per row -> (n, 4) float64, else ``_Malformed``."""
    _check_number_lists(boxes)
    if boxes.null_count:
        raise _Malformed
    lengths = pc.list_value_length(boxes).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != 4).any():
        raise _Malformed
    values = boxes.flatten()
    if values.null_count:
        raise _Malformed
    return _check_boxes(values.to_numpy(zero_copy_only=False).astype(np.float64).reshape(len(boxes), 4))


def _present_boxes(boxes: pa.Array, present: np.ndarray) -> np.ndarray:
    """:func:`_list_boxes` of the rows where ``present`` (a part of that name) is true, read from the values of the
    whole array instead of a filtered copy: the present rows must hold the boxes and the others be null (as Arrow's
    reader leaves the box of an absent part)."""
    _check_number_lists(boxes)
    valid = boxes.is_valid().to_numpy(zero_copy_only=False)
    if (present & ~valid).any():
        raise _Malformed
    if (valid & ~present).any():  # not what the reader gives: the general way
        return _list_boxes(boxes.filter(pa.array(present)))
    if (np.diff(boxes.offsets.to_numpy())[present] != 4).any():
        raise _Malformed
    values = boxes.flatten()  # the values of the non-null rows, i.e. of the present ones, in order
    if values.null_count or len(values) != 4 * int(present.sum()):
        raise _Malformed
    return _check_boxes(values.to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, 4))


def _one_array(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array; without a copy when it already is one chunk (the usual case, see
    :func:`_parse_lines`)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _struct_field(struct: pa.StructArray, name: str) -> pa.Array | None:
    index = struct.type.get_field_index(name)
    return struct.field(index) if index >= 0 else None


def _parse_lines(data: bytes, schema: pa.Schema | None) -> pa.Table:
    """``pyarrow.json`` over newline-delimited objects. With ``schema`` (discovered on an earlier chunk) the
    reader skips type inference; a chunk that does not fit it (new keys, other types) is parsed again with
    inference."""
    import pyarrow.json as pj

    # Single-threaded Arrow on an Arrow buffer: the caller runs chunks on a thread pool, and Arrow's own pool
    # nested inside it (or a Python file object as the source) serializes the work instead of spreading it.
    # One block for the whole chunk: the table comes back as one chunk per column (no copy to combine them). Arrow
    # takes an int32 block size: beyond 1 GiB a line may straddle blocks, Arrow refuses it and the Python path reads.
    options = pj.ReadOptions(use_threads=False, block_size=min(max(1 << 20, len(data) + 1), 1 << 30))
    if schema is not None:
        try:
            return pj.read_json(pa.BufferReader(data), read_options=options, parse_options=pj.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="error"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
    try:
        return pj.read_json(pa.BufferReader(data), read_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise _Malformed from None


def _one_object_per_line(data: bytes, blobs: list[bytes]) -> bool:
    """Whether ``data`` (the blobs joined by newlines) already is one ``{...}`` per line: no line break inside a
    blob, each starts with ``{`` and ends with ``}`` -- checked on the joined bytes at once (vectorized)."""
    if not blobs or b"\r" in data or data.count(b"\n") != len(blobs) - 1:
        return False
    lengths = np.fromiter(map(len, blobs), np.int64, len(blobs))
    if not lengths.all():
        return False
    ends = np.cumsum(lengths + 1) - 1  # the newline after each blob (len(data) after the last)
    text = np.frombuffer(data, np.uint8)
    return bool((text[ends - lengths] == ord("{")).all() and (text[ends - 1] == ord("}")).all())


def _arrow_arrays(videos: list[VideoDir], blobs: list[bytes], rel_root: str,
                  schema_box: list | None = None) -> _Arrays:
    """Parse a chunk with ``pyarrow.json``: one line per file (newlines inside JSON text are never inside a
    string, so they can become spaces). Every file must start with ``{`` and end with ``}``: then a value can only
    end at a file boundary, and one row per file proves each file held exactly one object.

    ``schema_box``: a one-element list holding the schema found so far (None at first), updated in place.
    """
    data = b"\n".join(blobs)
    if not _one_object_per_line(data, blobs):
        lines = []
        for blob in blobs:
            blob = blob.strip()
            if not (blob.startswith(b"{") and blob.endswith(b"}")):
                raise _Malformed
            lines.append(blob.replace(b"\n", b" ").replace(b"\r", b" "))
        data = b"\n".join(lines)
    # Arrow's reader checks string values but not keys: a non-UTF-8 key only fails later, as a UnicodeDecodeError
    # from a field name. The slow path names the file (isascii first: C speed, and almost every chunk is ASCII).
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise _Malformed from None
    table = _parse_lines(data, schema_box[0] if schema_box else None)
    if schema_box is not None:
        schema_box[0] = table.schema
    if table.num_rows != len(blobs) or "humans" not in table.column_names:
        raise _Malformed
    humans_col = _one_array(table.column("humans"))
    if humans_col.null_count or not pa.types.is_list(humans_col.type):
        raise _Malformed
    per_file = pc.list_value_length(humans_col).to_numpy(zero_copy_only=False).astype(np.int64)
    n = int(per_file.sum())
    file_of_human = np.repeat(np.arange(len(blobs)), per_file)
    humans = humans_col.flatten()
    if n and not pa.types.is_struct(humans.type):
        raise _Malformed
    if n and humans.null_count:
        raise _Malformed

    # Per-file facts come from the folder listing: per-video arrays repeated, no Python work per file.
    files_per_video = np.array([len(v.files) for v in videos], np.int64)
    video_of_file = np.repeat(np.arange(len(videos)), files_per_video)
    video_of_human = pa.array(video_of_file[file_of_human])
    indices = np.fromiter((i for v in videos for i in v.indices), np.int64, len(blobs))
    folders = pa.array([(os.path.relpath(v.folder, rel_root) if rel_root else v.folder) + "/" for v in videos])
    position = np.arange(n) - np.repeat(np.cumsum(per_file) - per_file, per_file)
    names = pa.array([f[len(v.folder) + 1:] for v in videos for f in v.files], pa.string())
    source = pc.binary_join_element_wise(
        folders.take(video_of_human), names.take(pa.array(file_of_human)), ":humans[",
        pa.array(position).cast(pa.string()), "]", "")

    objects = _arrow_frame_objects(table, file_of_human)  # checked even in frames without humans
    if n == 0:
        empty_s, empty_i = pa.array([], pa.string()), pa.array([], pa.int64())
        zero = np.zeros((0, 4))
        return _Arrays(empty_s, empty_s, empty_s, empty_s, np.zeros(0, np.int64), empty_i, zero, np.zeros(1, np.int64),
                       empty_s, empty_s, zero, np.zeros(1, np.int64), empty_s, empty_i, zero)
    box = _struct_field(humans, "box")
    parts = _struct_field(humans, "parts")
    if box is None or parts is None or _struct_field(humans, "objects") is not None:
        raise _Malformed
    hbox = _list_boxes(box)
    number = _struct_field(humans, "number")
    if number is None:
        person_id = pa.nulls(n, pa.int64())
    elif pa.types.is_integer(number.type) or pa.types.is_null(number.type):
        person_id = number.cast(pa.int64())
    else:
        raise _Malformed
    if parts.null_count or not pa.types.is_struct(parts.type):
        raise _Malformed

    # Parts: one struct field per part name seen in the chunk; collect present ones, then order by (human, name).
    part_fields = sorted(parts.type[i].name for i in range(parts.type.num_fields))
    kept, present_columns, boxes, states = [], [], [], []
    for part_name in part_fields:
        part = _struct_field(parts, part_name)
        if not pa.types.is_struct(part.type) and not pa.types.is_null(part.type):
            raise _Malformed
        present = part.is_valid().to_numpy(zero_copy_only=False) if not pa.types.is_null(part.type) else np.zeros(n, bool)
        if not present.any():
            continue
        part_box, verb = _struct_field(part, "box"), _struct_field(part, "verb")
        if part_box is None or verb is None or not pa.types.is_string(verb.type):
            raise _Malformed
        if (present & ~verb.is_valid().to_numpy(zero_copy_only=False)).any():
            raise _Malformed
        kept.append(part_name)
        present_columns.append(present)
        boxes.append(_present_boxes(part_box, present))
        states.append(verb)  # all n rows: picked below
    if kept:
        # The (human, part) pairs in row-major order of the presence matrix: by human, then by part name.
        matrix = np.column_stack(present_columns)
        part_rows, rank = np.nonzero(matrix)
        # The boxes came part by part: each pair's place in that order.
        by_part = (np.cumsum(matrix.T.ravel()) - 1).reshape(len(kept), n).T[matrix]
        pbox = np.concatenate(boxes)[by_part]
        all_states = pa.concat_arrays(states).take(pa.array(rank * n + part_rows))
        part_name = pa.array(kept, pa.string()).take(pa.array(rank))
    else:
        part_rows = np.zeros(0, np.int64)
        pbox = np.zeros((0, 4))
        all_states = part_name = pa.array([], pa.string())
    part_offsets = np.concatenate([[0], np.cumsum(np.bincount(part_rows, minlength=n))]).astype(np.int64)

    return _Arrays(
        video_id=pa.array([v.video_id for v in videos], pa.string()).take(video_of_human),
        label=pa.array([v.label for v in videos], pa.string()).take(video_of_human),
        split=pa.array([v.split for v in videos], pa.string()).take(video_of_human),
        source=source,
        frame_index=indices[file_of_human],
        person_id=person_id,
        hbox=hbox,
        part_offsets=part_offsets,
        part_name=part_name,
        part_state=all_states,
        pbox=pbox,
        **objects,
    )


def _arrow_frame_objects(table: pa.Table, file_of_human: np.ndarray) -> dict[str, Any]:
    """Frame-level ``objects`` copied to each human of the frame: ``object_offsets``, ``object_name``,
    ``object_id``, ``obox`` for :class:`_Arrays`."""
    n = len(file_of_human)
    none = {"object_offsets": np.zeros(n + 1, np.int64), "object_name": pa.array([], pa.string()),
            "object_id": pa.array([], pa.int64()), "obox": np.zeros((0, 4))}
    if "objects" not in table.column_names:
        return none
    column = _one_array(table.column("objects"))
    if pa.types.is_null(column.type):  # "objects": null everywhere
        return none
    if not pa.types.is_list(column.type):  # e.g. a string somewhere: the Python path names it
        raise _Malformed
    values = column.values
    if len(values):
        if not pa.types.is_struct(values.type) or values.null_count or _struct_field(values, "box") is None:
            raise _Malformed
        _list_boxes(_struct_field(values, "box"))
    raw_offsets = column.offsets.to_numpy().astype(np.int64)
    starts, counts = raw_offsets[:-1][file_of_human], np.diff(raw_offsets)[file_of_human]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    if offsets[-1] == 0:
        return none
    index = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1])
    values = values.take(pa.array(index, pa.int64()))
    box = _struct_field(values, "box")
    if box is None:
        raise _Malformed
    name = pa.nulls(len(values), pa.string())
    if sum(_struct_field(values, key) is not None for key in _OBJECT_NAME_KEYS) > 1:
        # objects named under different keys ("name" here, "class" there): per object the first key present wins,
        # which a struct column (absent = null) cannot tell -- the Python path can
        raise _Malformed
    for key in _OBJECT_NAME_KEYS:
        field = _struct_field(values, key)
        if field is not None:
            if not (pa.types.is_string(field.type) or pa.types.is_null(field.type)):
                raise _Malformed
            name = field.cast(pa.string())
            break
    number = _struct_field(values, "number")
    if number is not None and not (pa.types.is_integer(number.type) or pa.types.is_null(number.type)):
        raise _Malformed
    return {"object_offsets": offsets, "object_name": name,
            "object_id": pa.nulls(len(values), pa.int64()) if number is None else number.cast(pa.int64()),
            "obox": _list_boxes(box)}
