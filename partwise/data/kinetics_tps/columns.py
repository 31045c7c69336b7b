"""Person records of one chunk of frames: the column lists of the Python path, the arrays both paths produce,
and their assembly into :data:`partwise.data.records.PERSON_SCHEMA` (vectorized).

Records: one row per human per frame; ``frame_index`` is the img number, ``video_label`` the class folder name,
``pasta`` the ``"<part>: <state>"`` strings (vocabulary ``kinetics-tps``), ``part_boxes`` one entry per part with
its state, parts ordered by name. Pixel boxes only: ``x1..y2`` stay null unless ``frame_sizes`` gives the frame
size; ``time_s`` stays null unless ``fps`` is given (``time_s = (frame_index - 1) / fps``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from partwise.data.kinetics_tps.checks import _OBJECT_NAME_KEYS, _objects_problems
from partwise.data.kinetics_tps.layout import DATASET, PASTA_VOCAB, VideoDir, frame_index
from partwise.data.records import OBJECT_TYPE, PART_BOX_TYPE, PERSON_SCHEMA

class _Malformed(Exception):
    """Raised inside the fast path; the caller re-parses file by file to name the problem."""


@dataclass
class _Columns:
    """Column lists for one chunk of videos (pixel boxes as flat number lists, 4 per box)."""

    video_id: list
    label: list
    split: list
    frame_index: list
    person_id: list
    source: list
    hbox: list
    part_offsets: list
    part_name: list
    part_state: list
    pbox: list
    object_offsets: list
    object_name: list
    object_id: list
    obox: list

    def add_person(self, number: Any, video_id: str, label: str, split: str, frame_index: int, source: str) -> None:
        """The per-person columns of one human entry (its boxes, parts and objects are added by the caller)."""
        self.person_id.append(number)
        self.video_id.append(video_id)
        self.label.append(label)
        self.split.append(split)
        self.frame_index.append(frame_index)
        self.source.append(source)


def _object_fields(objects: list, cols: _Columns) -> None:
    for obj in objects:
        box = obj["box"]
        if len(box) != 4:
            raise _Malformed
        cols.obox.extend(box)
        name = None
        for key in _OBJECT_NAME_KEYS:
            if key in obj:
                name = obj[key]
                break
        cols.object_name.append(name)
        cols.object_id.append(obj.get("number"))


def _collect(video: VideoDir, frames: list[Any], cols: _Columns, rel_root: str) -> None:
    """Append one video's parsed frames to ``cols``; any structural surprise raises (caller re-validates)."""
    vid, label, split = video.video_id, video.label, video.split
    rel_folder = os.path.relpath(video.folder, rel_root) if rel_root else video.folder
    hbox, pbox, pnames, pstates = cols.hbox, cols.pbox, cols.part_name, cols.part_state
    for path, frame in zip(video.files, frames):
        humans = frame["humans"]
        if type(humans) is not list:
            raise _Malformed
        frame_objects = frame.get("objects")
        if frame_objects is not None and _objects_problems(frame_objects, path, "objects"):
            raise _Malformed
        if not humans:
            continue
        name = os.path.basename(path)
        index = frame_index(name)
        for i, human in enumerate(humans):
            box = human["box"]
            if type(box) is not list or len(box) != 4:
                raise _Malformed
            hbox.extend(box)
            parts = human["parts"]
            if type(parts) is not dict:
                raise _Malformed
            for part_name in sorted(parts):
                part = parts[part_name]
                pb = part["box"]
                if type(pb) is not list or len(pb) != 4:
                    raise _Malformed
                pbox.extend(pb)
                pnames.append(part_name)
                pstates.append(part["verb"])
            cols.part_offsets.append(len(pnames))
            if "objects" in human:
                objects = human["objects"]
                if objects is not None and _objects_problems(objects, path, f"humans[{i}].objects"):
                    raise _Malformed
            else:
                objects = frame_objects
            if objects:
                _object_fields(objects, cols)
            cols.object_offsets.append(len(cols.object_name))
            cols.add_person(human.get("number"), vid, label, split, index, f"{rel_folder}/{name}:humans[{i}]")


def _box_struct_fields(px: np.ndarray, sizes: tuple[np.ndarray, np.ndarray] | None) -> list[pa.Array]:
    """The eight ``x1..y2, px1..py2`` arrays; normalized ones null unless per-row (width, height) are known."""
    out = []
    if sizes is None:
        out += [pa.nulls(len(px), pa.float64())] * 4
    else:
        width, height = sizes
        ok = ~(np.isnan(width) | np.isnan(height))
        for col, denom in ((0, width), (1, height), (2, width), (3, height)):
            with np.errstate(invalid="ignore", divide="ignore"):
                out.append(pa.array(px[:, col] / denom, mask=~ok))
    out += [pa.array(px[:, k]) for k in range(4)]
    return out


@dataclass
class _Arrays:
    """One chunk as arrays: per human (n) ``video_id``, ``label``, ``split``, ``source`` (Arrow strings),
    ``frame_index`` (n,), ``person_id`` (Arrow int64), ``hbox`` (n, 4); parts (k) ``part_offsets`` (n+1,),
    ``part_name``/``part_state`` (Arrow strings), ``pbox`` (k, 4); objects (m) ``object_offsets`` (n+1,),
    ``object_name`` (Arrow string), ``object_id`` (Arrow int64), ``obox`` (m, 4)."""

    video_id: pa.Array
    label: pa.Array
    split: pa.Array
    source: pa.Array
    frame_index: np.ndarray
    person_id: pa.Array
    hbox: np.ndarray
    part_offsets: np.ndarray
    part_name: pa.Array
    part_state: pa.Array
    pbox: np.ndarray
    object_offsets: np.ndarray
    object_name: pa.Array
    object_id: pa.Array
    obox: np.ndarray


def _check_boxes(boxes: np.ndarray) -> np.ndarray:
    if len(boxes) and (np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1])):
        raise _Malformed
    return boxes


def _columns_to_arrays(cols: _Columns) -> _Arrays:
    """The Python path's lists -> :class:`_Arrays` (``_Malformed`` on wrong types)."""
    n, k, m = len(cols.video_id), len(cols.part_name), len(cols.object_name)
    try:
        states = pa.array(cols.part_state, pa.string())
        arrays = _Arrays(
            video_id=pa.array(cols.video_id, pa.string()), label=pa.array(cols.label, pa.string()),
            split=pa.array(cols.split, pa.string()), source=pa.array(cols.source, pa.string()),
            frame_index=np.asarray(cols.frame_index, np.int64),
            person_id=pa.array(cols.person_id, pa.int64()),  # rejects booleans and non-integers
            hbox=_check_boxes(_numbers(cols.hbox, n)),
            part_offsets=np.concatenate([[0], np.asarray(cols.part_offsets, np.int64)]),
            part_name=pa.array(cols.part_name, pa.string()), part_state=states,
            pbox=_check_boxes(_numbers(cols.pbox, k)),
            object_offsets=np.concatenate([[0], np.asarray(cols.object_offsets, np.int64)]),
            object_name=pa.array(cols.object_name, pa.string()), object_id=pa.array(cols.object_id, pa.int64()),
            obox=_check_boxes(_numbers(cols.obox, m)),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
        # UnicodeEncodeError: a lone surrogate (JSON's "\\ud800" escape) has no UTF-8 form
        raise _Malformed from None
    if states.null_count:
        raise _Malformed
    return arrays


def _numbers(values: list, n_boxes: int) -> np.ndarray:
    """Flat box values -> (n_boxes, 4) float64; ``_Malformed`` on non-numbers (booleans included) or nulls."""
    if not values:
        return np.zeros((n_boxes, 4))
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # Integers beyond +-2^53 beside floats: Arrow refuses to convert them inexactly, Arrow's JSON reader (the
        # ingest fast path) reads them as float64; take them the same way so that validate and ingest agree
        if values and all(type(v) in (int, float) for v in values):
            try:
                return np.asarray(values, dtype=np.float64).reshape(n_boxes, 4)
            except OverflowError:  # beyond float64 itself
                pass
        raise _Malformed from None
    if arr.null_count or not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        raise _Malformed
    return arr.to_numpy(zero_copy_only=False).astype(np.float64).reshape(n_boxes, 4)


def _assemble(a: _Arrays, frame_sizes: dict | None, fps: Any) -> pa.Table:
    """Build the :data:`PERSON_SCHEMA` table of one chunk from its arrays (vectorized)."""
    n = len(a.hbox)
    n_objects = len(a.object_name)
    video_ids = a.video_id.to_numpy(zero_copy_only=False) if (frame_sizes or isinstance(fps, dict)) else None
    width = height = None
    if frame_sizes:
        lookup = {v: frame_sizes.get(v, (np.nan, np.nan)) for v in set(video_ids)}
        wh = np.array([lookup[v] for v in video_ids], dtype=np.float64).reshape(n, 2)
        width, height = wh[:, 0], wh[:, 1]
    part_rows = np.repeat(np.arange(n), np.diff(a.part_offsets))
    obj_rows = np.repeat(np.arange(n), np.diff(a.object_offsets))
    person_sizes = (width, height) if width is not None else None
    part_sizes = (width[part_rows], height[part_rows]) if width is not None else None
    obj_sizes = (width[obj_rows], height[obj_rows]) if width is not None else None

    part_offsets = pa.array(a.part_offsets.astype(np.int32))
    part_struct = pa.StructArray.from_arrays([a.part_name, *_box_struct_fields(a.pbox, part_sizes), a.part_state],
                                             fields=list(PART_BOX_TYPE))
    part_boxes = pa.ListArray.from_arrays(part_offsets, part_struct)
    pasta = pa.ListArray.from_arrays(part_offsets, pc.binary_join_element_wise(a.part_name, a.part_state, ": "))
    object_struct = pa.StructArray.from_arrays(
        [a.object_name, pa.nulls(n_objects, pa.int32()), pa.nulls(n_objects, pa.int32()), a.object_id,
         *_box_struct_fields(a.obox, obj_sizes)], fields=list(OBJECT_TYPE))
    objects = pa.ListArray.from_arrays(pa.array(a.object_offsets.astype(np.int32)), object_struct)

    if fps is None:
        time_s = pa.nulls(n, pa.float64())
    else:
        if isinstance(fps, dict):
            lookup = {v: fps.get(v, np.nan) for v in set(video_ids)}
            rate = np.array([lookup[v] for v in video_ids], dtype=np.float64)
        else:
            rate = np.full(n, float(fps))
        times = (a.frame_index - 1) / rate
        time_s = pa.array(times, mask=np.isnan(times))
    person_box = _box_struct_fields(a.hbox, person_sizes)

    def size_col(values: np.ndarray | None) -> pa.Array:
        if values is None:
            return pa.nulls(n, pa.int32())
        return pa.array(np.nan_to_num(values).astype(np.int32), mask=np.isnan(values))

    columns = {
        "dataset": pa.array([DATASET] * n, pa.string()),
        "split": a.split,
        "video_id": a.video_id,
        "time_s": time_s,
        "frame_index": pa.array(a.frame_index, pa.int64()),
        "width": size_col(width),
        "height": size_col(height),
        "x1": person_box[0], "y1": person_box[1], "x2": person_box[2], "y2": person_box[3],
        "px1": person_box[4], "py1": person_box[5], "px2": person_box[6], "py2": person_box[7],
        "person_id": a.person_id,
        "score": pa.nulls(n, pa.float64()),
        "actions": pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.int32())),
        "action_vocab": pa.nulls(n, pa.string()),
        "pasta": pasta,
        "pasta_vocab": pa.array([PASTA_VOCAB] * n, pa.string()),
        "part_boxes": part_boxes,
        "objects": objects,
        "video_label": a.label,
        "source": a.source,
        "keypoints": pa.nulls(n, pa.list_(pa.float32())),
    }
    return pa.Table.from_arrays([columns[f.name].cast(f.type) for f in PERSON_SCHEMA], schema=PERSON_SCHEMA)


def _columns_to_table(cols: _Columns, frame_sizes: dict | None, fps: Any) -> pa.Table:
    """The Python path's lists -> the person table (``_Malformed`` on wrong types or inverted boxes)."""
    return _assemble(_columns_to_arrays(cols), frame_sizes, fps)


def _empty_columns() -> _Columns:
    return _Columns(*[[] for _ in range(15)])
