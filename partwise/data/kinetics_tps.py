"""Kinetics-TPS (Kinetics Temporal Part State): the annotation tree, the list files and the evaluator's JSON files.

Layout as the dataset distributes it::

    Kinetics-TPS/
      train_annotations/<class>/<video>/<video>/img_00001.json     one JSON per frame, 1-based img_%05d
      list/body_part.txt, part_stat.txt, object.txt                one name per line
      list/video_train_flist.csv, video_test_flist.csv             frames per video (layout not public)

Per-frame JSON (core keys; all boxes are ``[x1, y1, x2, y2]`` in pixels of the extracted frames)::

    {"humans": [{"box": [x1, y1, x2, y2],
                 "parts": {"left_arm": {"box": [x1, y1, x2, y2], "verb": "bend"}, ...}}, ...]}

Optional keys are kept when present: ``number`` on humans (-> ``person_id``) and on parts, ``name`` on parts, and
``objects`` (a list of ``{"box", "name", "number"}``) either on the frame (then every human of the frame carries
them) or on a human. Unknown keys are tolerated and ignored. Missing core keys, wrong types and inverted boxes
(``x2 < x1`` or ``y2 < y1``) are errors naming the file and the key path, e.g.
``.../img_00006.json:humans[1].parts.left_arm.verb: missing key``.

The tree can be given as the dataset root (every ``<split>_annotations`` folder in it is read, the split taken
from the folder name), as an annotation folder (split ``train`` unless given), as one per-frame JSON file, or as
one of the evaluator files ``gt_part_result.json`` / ``pred_part_result.json`` (see :func:`read_part_result`).

Records: one row per human per frame; ``frame_index`` is the img number, ``video_label`` the class folder name,
``pasta`` the ``"<part>: <state>"`` strings (vocabulary ``kinetics-tps``), ``part_boxes`` one entry per part with
its state, parts ordered by name. Pixel boxes only: ``x1..y2`` stay null unless ``frame_sizes`` gives the frame size; ``time_s`` stays
null unless ``fps`` is given (``time_s = (frame_index - 1) / fps``). Frames without humans have no record, so a
tree -> records -> tree round trip drops them; :func:`read_tree` / :func:`write_tree` keep every file as is.

Speed: files are read as raw bytes (plain ``os`` calls, the next chunk read by a helper thread while the current one
is parsed) and about 10,000 files at a time go through Arrow's C++ JSON reader as newline-delimited JSON, parsed in
1 MiB blocks on Arrow's thread pool. Schema discovery as the dataset notes advise: the first chunk's inferred
schema is passed as the explicit schema of the next ones (a chunk that does not fit is inferred again). Columns are
then built with vectorized Arrow/numpy operations. Every file must start with ``{`` and end with ``}`` and yield
exactly one row, which proves no file borrowed text from a neighbour. A chunk the fast path cannot take (bad or
unusual content, human-level objects) goes through Python's decoder, which also names the file and key of a
real problem. (One leniency of the fast path: a part or ``number`` given as JSON ``null`` reads as absent;
:func:`validate` reports the null part.) ``benchmarks/ingest.py`` times this against a plain ``json.load`` loop.
"""
from __future__ import annotations

import csv
import gc
import json
import json.decoder
import json.scanner
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from partwise.data.records import OBJECT_TYPE, PART_BOX_TYPE, PERSON_SCHEMA
from partwise.errors import InputError, Problem
from partwise.io import atomic_dir, atomic_write
from partwise.vocab import Vocabulary

DATASET = "kinetics-tps"
PASTA_VOCAB = "kinetics-tps"
FRAME_RE = re.compile(r"^img_(\d+)\.json$")
ANNOTATION_SUFFIX = "_annotations"
LIST_FILES = {"parts": "body_part.txt", "states": "part_stat.txt", "objects": "object.txt"}
#: The evaluator scores every 5th frame starting at img_00001 (img_00001, img_00006, ...).
GT_STRIDE = 5
#: With ``workers > 1``, trees of at least this many files are spread over worker processes.
PARALLEL_MIN_FILES = 20000
#: Files parsed per Arrow JSON call (about 10 MB): enough 1 MiB blocks to keep every core busy.
FILES_PER_CHUNK = 5000
FIRST_CHUNK_FILES = 1000
_OBJECT_NAME_KEYS = ("name", "class", "category", "label", "tag")

_SCAN = json.scanner.make_scanner(json.decoder.JSONDecoder())
_WS = json.decoder.WHITESPACE
_WS_CHARS = " \t\n\r"


def frame_name(index: int) -> str:
    """Per-frame JSON name of the 1-based frame ``index``: ``img_00006.json``."""
    return f"img_{index:05d}.json"


def frame_index(name: str) -> int | None:
    """1-based frame number of ``img_00006.json`` (6), or None when the name does not follow ``img_%05d.json``."""
    match = FRAME_RE.match(name)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------------------------------------------
# Tree discovery


@dataclass(frozen=True)
class VideoDir:
    """One video's folder of per-frame JSON: ``files`` (paths) sorted by frame number, ``indices`` their numbers."""

    split: str
    label: str
    video_id: str
    folder: str
    files: tuple[str, ...]
    indices: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.indices:
            object.__setattr__(self, "indices", tuple(frame_index(os.path.basename(f)) for f in self.files))


def _subdirs(path: str) -> list[os.DirEntry]:
    return sorted((e for e in os.scandir(path) if e.is_dir() and not e.name.startswith(".")), key=lambda e: e.name)


def annotation_roots(path: str | os.PathLike, split: str | None = None) -> list[tuple[str, str]]:
    """``[(split, annotation folder)]`` for a dataset root (its ``*_annotations`` folders) or one annotation folder."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise InputError(path, None, "not a folder")
    found = [(e.name[: -len(ANNOTATION_SUFFIX)], e.path) for e in _subdirs(path) if e.name.endswith(ANNOTATION_SUFFIX)]
    if found:
        if split is not None:
            found = [(s, p) for s, p in found if s == split] or [(split, p) for _, p in found]
        return found
    name = os.path.basename(os.path.normpath(path))
    default = name[: -len(ANNOTATION_SUFFIX)] if name.endswith(ANNOTATION_SUFFIX) else "train"
    return [(split or default, path)]


def _frame_files(folder: str) -> tuple[list[str], list[int], list[str]]:
    """Per-frame JSON paths in ``folder`` sorted by frame number, those numbers, and other ``.json`` names."""
    frames, others = [], []
    for entry in os.scandir(folder):
        name = entry.name
        if name.endswith(".json"):
            match = FRAME_RE.match(name)
            if match:
                frames.append((int(match.group(1)), name))
            else:
                others.append(name)
    frames.sort()
    prefix = folder + os.sep
    return [prefix + n for _, n in frames], [i for i, _ in frames], sorted(others)


def iter_videos(path: str | os.PathLike, split: str | None = None,
                problems: list[Problem] | None = None) -> Iterator[VideoDir]:
    """Every video folder of the tree, classes discovered from the listing (no hard-coded class names).

    The frames sit in ``<class>/<video>/<video>/`` (the doubled folder as distributed) or directly in
    ``<class>/<video>/``. Stray ``.json`` files whose names are not ``img_<n>.json`` are problems: appended to
    ``problems`` when given, else raised as :class:`InputError`.
    """
    found = False
    for split_name, root in annotation_roots(path, split):
        for cls in _subdirs(root):
            for video in _subdirs(cls.path):
                inner = os.path.join(video.path, video.name)
                folder = inner if os.path.isdir(inner) else video.path
                files, indices, others = _frame_files(folder)
                for name in others:
                    problem = Problem(os.path.join(folder, name), None, "unexpected file name (expected img_<n>.json)")
                    if problems is None:
                        raise InputError.from_problem(problem)
                    problems.append(problem)
                if files:
                    found = True
                    yield VideoDir(split_name, cls.name, video.name, folder, tuple(files), tuple(indices))
    if not found:  # an empty folder or another dataset's: nothing read is an error, not 0 persons / "valid"
        problem = Problem(os.fspath(path), None, "no Kinetics-TPS frame files "
                          "(<split>_annotations/<class>/<video>/img_<n>.json) in this folder")
        if problems is None:
            raise InputError.from_problem(problem)
        problems.append(problem)


# --------------------------------------------------------------------------------------------------------------
# Per-frame validation (the slow, precise path)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_id(value: Any) -> bool:
    """An id the records can hold: an integer within int64 (a larger one was blamed on a chunk's first file)."""
    return isinstance(value, int) and not isinstance(value, bool) and -2 ** 63 <= value < 2 ** 63


def _box_problem(box: Any) -> str | None:
    if not isinstance(box, list):
        return f"box must be a list [x1, y1, x2, y2], got {type(box).__name__}"
    if len(box) != 4:
        return f"box must have 4 numbers, got {len(box)}"
    if not all(_is_number(v) for v in box):
        return f"box values must be numbers, got {box!r}"
    if box[2] < box[0] or box[3] < box[1]:
        return f"box {box!r} has x2 < x1 or y2 < y1"
    return None


def _required_box_problems(entry: dict, path: str, key: str) -> list[Problem]:
    """The ``box`` of a human or object entry: present and a valid ``[x1, y1, x2, y2]``."""
    if "box" not in entry:
        return [Problem(path, f"{key}.box", "missing key")]
    reason = _box_problem(entry["box"])
    return [] if reason is None else [Problem(path, f"{key}.box", reason)]


def _objects_problems(objects: Any, path: str, where: str) -> list[Problem]:
    """Problems of an ``objects`` value (frame- or human-level); null means no objects, as in Arrow's reading.
    The one check of ``objects`` for validate and for both ingest paths."""
    if objects is None:
        return []
    if not isinstance(objects, list):
        return [Problem(path, where, f"must be a list, got {type(objects).__name__}")]
    out = []
    for k, obj in enumerate(objects):
        key = f"{where}[{k}]"
        if not isinstance(obj, dict):
            out.append(Problem(path, key, f"must be an object, got {type(obj).__name__}"))
            continue
        out += _required_box_problems(obj, path, key)
        if "number" in obj and not _is_id(obj["number"]):
            out.append(Problem(path, f"{key}.number", f"must be an integer within 64 bits, got {obj['number']!r}"))
    return out


def frame_problems(frame: Any, path: str) -> list[Problem]:
    """Every schema problem of one parsed per-frame JSON value (core keys strict, optional keys type-checked)."""
    if not isinstance(frame, dict):
        return [Problem(path, None, f"top level must be a JSON object, got {type(frame).__name__}")]
    if "humans" not in frame:
        return [Problem(path, "humans", "missing key")]
    humans = frame["humans"]
    if not isinstance(humans, list):
        return [Problem(path, "humans", f"must be a list, got {type(humans).__name__}")]
    out: list[Problem] = []
    if "objects" in frame:
        out += _objects_problems(frame["objects"], path, "objects")
    for i, human in enumerate(humans):
        key = f"humans[{i}]"
        if not isinstance(human, dict):
            out.append(Problem(path, key, f"must be an object, got {type(human).__name__}"))
            continue
        out += _required_box_problems(human, path, key)
        number = human.get("number")
        if number is not None and not _is_id(number):
            out.append(Problem(path, f"{key}.number", f"must be an integer within 64 bits, got {number!r}"))
        if "objects" in human:
            out += _objects_problems(human["objects"], path, f"{key}.objects")
        if "parts" not in human:
            out.append(Problem(path, f"{key}.parts", "missing key"))
            continue
        parts = human["parts"]
        if not isinstance(parts, dict):
            out.append(Problem(path, f"{key}.parts", f"must be an object keyed by part name, got {type(parts).__name__}"))
            continue
        for name, part in parts.items():
            pkey = f"{key}.parts.{name}"
            if not isinstance(part, dict):
                out.append(Problem(path, pkey, f"must be an object, got {type(part).__name__}"))
                continue
            out += _required_box_problems(part, path, pkey)
            if "verb" not in part:
                out.append(Problem(path, f"{pkey}.verb", "missing key"))
            elif not isinstance(part["verb"], str):
                out.append(Problem(path, f"{pkey}.verb", f"must be a string, got {type(part['verb']).__name__}"))
    return out


def parse_frame_bytes(data: bytes, path: str) -> Any:
    """Parse one per-frame file's bytes; :class:`InputError` (with the JSON line) when empty or not valid JSON."""
    from partwise.data import safe_json

    return safe_json.loads(data, path, label="invalid JSON")


def load_frame(path: str | os.PathLike) -> dict:
    """One per-frame JSON, parsed and checked; :class:`InputError` naming the file and key on the first problem."""
    from partwise.data import safe_json

    path = os.fspath(path)
    frame = parse_frame_bytes(safe_json.read_bytes(path), path)
    problems = frame_problems(frame, path)
    if problems:
        raise InputError.from_problem(problems[0])
    return frame


# --------------------------------------------------------------------------------------------------------------
# Fast reading


def _read_bytes(paths: Iterable[str]) -> list[bytes]:
    """Raw bytes of each file (plain os calls: no Python file object per file), checked for deep nesting before
    any parser sees them (:func:`partwise.data.safe_json.check_nesting_many`); :class:`InputError` naming a file
    that cannot be read (a directory, a dangling link)."""
    from partwise.data import safe_json

    read = []
    out = []
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
    block = 1 << 16  # per-frame files are ~1 KB: one read, no fstat
    for path in paths:
        try:
            fd = os.open(path, flags)
            try:
                data = os.read(fd, block)
                if len(data) == block:
                    parts = [data]
                    while chunk := os.read(fd, block):
                        parts.append(chunk)
                    data = b"".join(parts)
            finally:
                os.close(fd)
        except OSError as exc:
            raise InputError(path, None, f"cannot read: {exc.strerror or exc}") from None
        out.append(data)
        read.append(path)
    safe_json.check_nesting_many(out, read)
    return out


class _Malformed(Exception):
    """Raised inside the fast path; the caller re-parses file by file to name the problem."""


def _parse_many(blobs: list[bytes]) -> list[Any]:
    """Parse many JSON documents in one decoder pass; each must span exactly its own bytes (else ``_Malformed``).

    One decode of the concatenated bytes, then the C scanner from each file's offset: unlike parsing the files
    joined into one array, a truncated file cannot borrow text from its neighbour and still parse.
    """
    try:
        text = b" ".join(blobs).decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed from None
    out = []
    start = 0
    for blob in blobs:
        # Byte and character offsets agree only for ASCII; for other text, find the boundary in characters.
        stop = start + len(blob) if blob.isascii() else start + len(blob.decode("utf-8"))
        idx = start
        try:
            if text[idx] in _WS_CHARS:
                idx = _WS.match(text, idx).end()
            value, end = _SCAN(text, idx)
        except (StopIteration, ValueError, IndexError):
            raise _Malformed from None
        if end != stop and (end > stop or not text[end:stop].isspace()):
            raise _Malformed
        out.append(value)
        start = stop + 1
    return out


def _first_problem(files: list[str]) -> Problem:
    for path in files:
        with open(path, "rb") as fh:
            try:
                frame = parse_frame_bytes(fh.read(), path)
            except InputError as exc:
                return exc.problem
        problems = frame_problems(frame, path)
        if problems:
            return problems[0]
    return Problem(", ".join(files) if len(files) < 4 else f"{files[0]} ...", None,
                   "values the records cannot hold (e.g. an integer beyond 64 bits or a non-string object name)")


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
            cols.person_id.append(human.get("number"))
            cols.video_id.append(vid)
            cols.label.append(label)
            cols.split.append(split)
            cols.frame_index.append(index)
            cols.source.append(f"{rel_folder}/{name}:humans[{i}]")


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
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
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
        raise _Malformed from None
    if arr.null_count or not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        raise _Malformed
    return arr.to_numpy(zero_copy_only=False).astype(np.float64).reshape(n_boxes, 4)


# ---- Arrow fast path: the C++ JSON reader parses a whole chunk; any surprise hands it to the Python path.


def _list_boxes(boxes: pa.Array) -> np.ndarray:
    """A ``list<number>`` array with exactly 4 non-null numbers per row -> (n, 4) float64, else ``_Malformed``."""
    if not (pa.types.is_list(boxes.type) or pa.types.is_large_list(boxes.type)):
        raise _Malformed
    value_type = boxes.type.value_type
    if not (pa.types.is_integer(value_type) or pa.types.is_floating(value_type) or pa.types.is_null(value_type)):
        raise _Malformed
    if boxes.null_count:
        raise _Malformed
    lengths = pc.list_value_length(boxes).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != 4).any():
        raise _Malformed
    values = boxes.flatten()
    if values.null_count:
        raise _Malformed
    return _check_boxes(values.to_numpy(zero_copy_only=False).astype(np.float64).reshape(len(boxes), 4))


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
    options = pj.ReadOptions(use_threads=False, block_size=1 << 20)
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


def _arrow_arrays(videos: list[VideoDir], blobs: list[bytes], rel_root: str,
                  schema_box: list | None = None) -> _Arrays:
    """Parse a chunk with ``pyarrow.json``: one line per file (newlines inside JSON text are never inside a
    string, so they can become spaces). Every file must start with ``{`` and end with ``}``: then a value can only
    end at a file boundary, and one row per file proves each file held exactly one object.

    ``schema_box``: a one-element list holding the schema found so far (None at first), updated in place.
    """
    lines = []
    for blob in blobs:
        blob = blob.strip()
        if not (blob.startswith(b"{") and blob.endswith(b"}")):
            raise _Malformed
        lines.append(blob.replace(b"\n", b" ").replace(b"\r", b" "))
    data = b"\n".join(lines)
    table = _parse_lines(data, schema_box[0] if schema_box else None)
    if schema_box is not None:
        schema_box[0] = table.schema
    if table.num_rows != len(blobs) or "humans" not in table.column_names:
        raise _Malformed
    humans_col = table.column("humans").combine_chunks()
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
    rows, keys, boxes, states = [], [], [], []
    for rank, part_name in enumerate(part_fields):
        part = _struct_field(parts, part_name)
        if not pa.types.is_struct(part.type) and not pa.types.is_null(part.type):
            raise _Malformed
        present = part.is_valid().to_numpy(zero_copy_only=False) if not pa.types.is_null(part.type) else np.zeros(n, bool)
        if not present.any():
            continue
        sub = part.filter(pa.array(present))
        part_box, verb = _struct_field(sub, "box"), _struct_field(sub, "verb")
        if part_box is None or verb is None or not pa.types.is_string(verb.type) or verb.null_count:
            raise _Malformed
        idx = np.nonzero(present)[0]
        rows.append(idx)
        keys.append(idx * len(part_fields) + rank)
        boxes.append(_list_boxes(part_box))
        states.append(verb)
    if rows:
        order = np.argsort(np.concatenate(keys), kind="stable")
        part_rows = np.concatenate(rows)[order]
        pbox = np.concatenate(boxes)[order]
        all_states = pa.concat_arrays(states).take(pa.array(order))
        part_name = pa.array(np.asarray(part_fields, dtype=object)[(np.concatenate(keys) % len(part_fields))[order]],
                             pa.string())
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
    column = table.column("objects").combine_chunks()
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


def _parse_video(video: VideoDir, blobs: list[bytes]) -> list[Any]:
    """All frames of a video: one decoder pass, or file by file (naming the file) when that pass fails."""
    try:
        return _parse_many(blobs)
    except _Malformed:
        return [parse_frame_bytes(blob, path) for blob, path in zip(blobs, video.files)]


def _python_chunk(videos: list[VideoDir], blobs: list[list[bytes]], rel_root: str, frame_sizes: dict | None,
                  fps: Any) -> pa.Table:
    cols = _empty_columns()
    for video, video_blobs in zip(videos, blobs):
        frames = _parse_video(video, video_blobs)
        try:
            _collect(video, frames, cols, rel_root)
        except (_Malformed, KeyError, TypeError, AttributeError, ValueError, IndexError):
            raise InputError.from_problem(_first_problem(video.files)) from None
    try:
        return _columns_to_table(cols, frame_sizes, fps)
    except _Malformed:
        raise InputError.from_problem(_first_problem([f for v in videos for f in v.files])) from None


def _chunk_bytes(videos: list[VideoDir]) -> list[list[bytes]]:
    return [_read_bytes(video.files) for video in videos]


def _read_chunk(videos: list[VideoDir], rel_root: str, frame_sizes: dict | None, fps: Any,
                blobs: list[list[bytes]] | None = None, schema_box: list | None = None) -> pa.Table | Problem:
    """Records of a chunk of videos, or the first :class:`Problem` in it (returned, so it crosses processes).

    Arrow's JSON reader first; a chunk it cannot take as is (unusual types, human-level objects, any error) goes
    through the Python decoder, which names the file and key of a real problem. ``blobs``: the files' bytes when
    already read; ``schema_box``: see :func:`_arrow_arrays`.
    """
    if blobs is None:
        blobs = _chunk_bytes(videos)
    try:
        return _assemble(_arrow_arrays(videos, [b for vb in blobs for b in vb], rel_root, schema_box), frame_sizes, fps)
    except _Malformed:
        pass
    enabled = gc.isenabled()
    gc.disable()  # the parsed dicts are short-lived: cyclic GC passes over them are pure overhead
    try:
        return _python_chunk(videos, blobs, rel_root, frame_sizes, fps)
    except InputError as exc:
        return exc.problem
    finally:
        if enabled:
            gc.enable()


def _lazy_chunks(videos: Iterable[VideoDir], first_files: int, files_per_chunk: int) -> Iterator[list[VideoDir]]:
    """Chunks of whole videos as the walk yields them: the first of about ``first_files`` files, then
    ``files_per_chunk``."""
    current: list[VideoDir] = []
    count, limit = 0, first_files
    for video in videos:
        current.append(video)
        count += len(video.files)
        if count >= limit:
            yield current
            current, count, limit = [], 0, files_per_chunk
    if current:
        yield current


def _chunks(videos: list[VideoDir], files_per_chunk: int) -> list[list[VideoDir]]:
    out, current, count = [], [], 0
    for video in videos:
        current.append(video)
        count += len(video.files)
        if count >= files_per_chunk:
            out.append(current)
            current, count = [], 0
    if current:
        out.append(current)
    return out


def read_records(path: str | os.PathLike, *, split: str | None = None, progress: bool = False,
                 frame_sizes: dict[str, tuple[int, int]] | None = None, fps: float | dict[str, float] | None = None,
                 workers: int | None = None) -> pa.Table:
    """Person records (:data:`PERSON_SCHEMA`) of a Kinetics-TPS tree, per-frame file or ``*_part_result.json``.

    ``frame_sizes`` maps video id -> (width, height) to fill the normalized boxes; ``fps`` (one number or a dict
    per video) fills ``time_s``. Parsing already uses every core through Arrow's thread pool; ``workers > 1``
    additionally spreads videos over processes (useful when the per-file Python fallback path dominates).
    Raises :class:`InputError` naming the file and key of the first problem.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        if frame_index(os.path.basename(path)) is not None:
            return _read_single_frame(path, split, frame_sizes, fps)
        return records_from_part_result(read_part_result(path), split=split or "test", source=path,
                                        frame_sizes=frame_sizes, fps=fps)
    rel_root = path
    workers = 1 if workers is None else max(1, workers)
    if workers > 1:
        videos = list(iter_videos(path, split))
        total = sum(len(v.files) for v in videos)
        parallel = total >= PARALLEL_MIN_FILES
        chunks: Iterable[list[VideoDir]] = _chunks(videos, max(500, min(5000, total // (workers * 8) + 1)) if parallel
                                                   else FILES_PER_CHUNK)
    else:
        # Chunks come straight from the directory walk, so parsing starts while the listing goes on; a small
        # first chunk runs alone (schema discovery) before the pool starts.
        parallel, total = False, None
        chunks = _lazy_chunks(iter_videos(path, split), FIRST_CHUNK_FILES, FILES_PER_CHUNK)
    bar = None
    if progress:
        from partwise.progress import bar as tqdm

        bar = tqdm(total=total, unit="file", desc="kinetics-tps")
    tables = []
    try:
        if parallel:
            # forkserver: forking a process that runs Arrow's thread pools is not safe.
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
                futures = [pool.submit(_read_chunk, chunk, rel_root, frame_sizes, fps) for chunk in chunks]
                for chunk, future in zip(chunks, futures):
                    result = future.result()
                    if isinstance(result, Problem):
                        for other in futures:
                            other.cancel()
                        raise InputError.from_problem(result)
                    tables.append(result)
                    if bar is not None:
                        bar.update(sum(len(v.files) for v in chunk))
        else:
            # This thread reads the files; a pool of threads parses chunks (Arrow's JSON parser releases the GIL),
            # so both cores work without the start-up and pickling costs of processes. The first chunk runs alone
            # and discovers the JSON schema that the others reuse.
            schema_box: list = [None]
            threads = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2, 4))

            def one(chunk, blobs=None):
                return _read_chunk(chunk, rel_root, frame_sizes, fps, blobs, schema_box)

            def collect(chunk, result):
                if isinstance(result, Problem):
                    raise InputError.from_problem(result)
                tables.append(result)
                if bar is not None:
                    bar.update(sum(len(v.files) for v in chunk))

            chunk_iter = iter(chunks)
            first = next(chunk_iter, None)
            if first is not None:
                collect(first, one(first))
            with ThreadPoolExecutor(max_workers=threads) as pool:
                # at most 2 chunks in flight per thread: bounded memory, results in order
                pending: list = []
                for chunk in chunk_iter:
                    # many small reads contend for the GIL: read here, parse (GIL-free) on the pool
                    pending.append((chunk, pool.submit(one, chunk, _chunk_bytes(chunk))))
                    if len(pending) >= 2 * threads:
                        done_chunk, future = pending.pop(0)
                        collect(done_chunk, future.result())
                for done_chunk, future in pending:
                    collect(done_chunk, future.result())
    finally:
        if bar is not None:
            bar.close()
    if not tables:
        return PERSON_SCHEMA.empty_table()
    return pa.concat_tables(tables).combine_chunks()


def _read_single_frame(path: str, split: str | None, frame_sizes: dict | None, fps: Any) -> pa.Table:
    """Records of one per-frame file; class and video come from its folders when laid out as distributed."""
    frame = load_frame(path)
    folder = os.path.dirname(os.path.abspath(path))
    video_id = os.path.basename(folder)
    parent = os.path.dirname(folder)
    label_dir = os.path.dirname(parent) if os.path.basename(parent) == video_id else parent
    video = VideoDir(split or "train", os.path.basename(label_dir), video_id, folder, (path,))
    cols = _empty_columns()
    _collect(video, [frame], cols, "")
    return _columns_to_table(cols, frame_sizes, fps)


def validate(path: str | os.PathLike) -> list[Problem]:
    """Every problem in a tree, a per-frame file, a ``*_part_result.json`` / ``*_vid_result.json`` or a list folder.

    Each file is parsed on its own; the first file's keys are the reference schema (core keys ``humans``,
    ``box``, ``parts``, ``verb`` are always required); unknown keys are not problems.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        return [Problem(path, None, "does not exist")]
    if os.path.isfile(path):
        name = os.path.basename(path)
        if frame_index(name) is not None:
            with open(path, "rb") as fh:
                try:
                    frame = parse_frame_bytes(fh.read(), path)
                except InputError as exc:
                    return [exc.problem]
            return frame_problems(frame, path)
        if name.endswith("vid_result.json"):
            try:
                read_vid_result(path)
            except InputError as exc:
                return [exc.problem]
            return []
        try:
            data = _load_json(path)
        except InputError as exc:
            return [exc.problem]
        return part_result_problems(data, path, pred=name.startswith("pred"))
    problems: list[Problem] = []
    try:
        videos = list(iter_videos(path, problems=problems))
    except InputError as exc:
        return [exc.problem]
    for video in videos:
        for file in video.files:
            with open(file, "rb") as fh:
                try:
                    frame = parse_frame_bytes(fh.read(), file)
                except InputError as exc:
                    problems.append(exc.problem)
                    continue
            problems.extend(frame_problems(frame, file))
    list_dir = os.path.join(path, "list")
    if os.path.isdir(list_dir):
        for key, name in LIST_FILES.items():
            file = os.path.join(list_dir, name)
            if os.path.exists(file):
                try:
                    read_name_list(file)
                except InputError as exc:
                    problems.append(exc.problem)
    return problems


# --------------------------------------------------------------------------------------------------------------
# Format-level tree API (keeps every file, including frames without humans and unknown keys)


def read_tree(path: str | os.PathLike) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """``{split: {class: {video: {"img_00001.json": frame}}}}`` with every frame as parsed (checked)."""
    tree: dict = {}
    for video in iter_videos(path):
        frames = {}
        for file in video.files:
            frames[os.path.basename(file)] = load_frame(file)
        tree.setdefault(video.split, {}).setdefault(video.label, {})[video.video_id] = frames
    return tree


def write_tree(tree: dict[str, dict[str, dict[str, dict[str, Any]]]], root: str | os.PathLike,
               overwrite: bool = False) -> None:
    """Write ``{split: {class: {video: {frame_name: frame}}}}`` as ``root/<split>_annotations/...`` (atomic per split)."""
    root = Path(root)
    for split, classes in tree.items():
        with atomic_dir(root / f"{split}{ANNOTATION_SUFFIX}", overwrite=overwrite) as tmp:
            for label, videos in classes.items():
                for video_id, frames in videos.items():
                    folder = tmp / label / video_id / video_id
                    folder.mkdir(parents=True, exist_ok=True)
                    for name, frame in frames.items():
                        with open(folder / name, "w", encoding="utf-8") as fh:  # inside the atomic temp dir
                            json.dump(frame, fh, separators=(",", ":"))


# --------------------------------------------------------------------------------------------------------------
# Records -> tree


def _pixel_box(row: dict, prefix: str = "") -> list:
    """Pixel box of a record/part/object row (from px* or from normalized * frame size); ints kept as ints."""
    px = [row.get(f"p{k}") for k in ("x1", "y1", "x2", "y2")]
    if any(v is None for v in px):
        width, height = row.get("_width"), row.get("_height")
        norm = [row.get(k) for k in ("x1", "y1", "x2", "y2")]
        if width and height and all(v is not None for v in norm):
            px = [norm[0] * width, norm[1] * height, norm[2] * width, norm[3] * height]
        else:
            raise InputError(row.get("_source"), prefix or None, "no pixel box and no frame size to derive one")
    return [int(v) if float(v).is_integer() else float(v) for v in px]


def frames_from_records(table: pa.Table) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """Records -> ``{split: {class: {video: {frame_name: {"humans": [...]}}}}}`` (the per-frame JSON content)."""
    tree: dict = {}
    rows = table.select(["split", "video_id", "frame_index", "width", "height", "x1", "y1", "x2", "y2", "px1", "py1",
                         "px2", "py2", "person_id", "part_boxes", "objects", "video_label", "source"]).to_pylist()
    for k, row in enumerate(rows):
        where = row["source"] or f"row {k}"
        if row["video_label"] is None:
            raise InputError(where, "video_label", "Kinetics-TPS needs the class (video_label) to place the video")
        if row["frame_index"] is None:
            raise InputError(where, "frame_index", "Kinetics-TPS needs the frame number")
        row["_width"], row["_height"], row["_source"] = row["width"], row["height"], where
        human: dict[str, Any] = {}
        if row["person_id"] is not None:
            human["number"] = row["person_id"]
        human["box"] = _pixel_box(row)
        parts = {}
        for part in row["part_boxes"] or []:
            part.update(_width=row["width"], _height=row["height"], _source=where)
            if part["state"] is None:
                raise InputError(where, f"part_boxes.{part['part']}.state", "Kinetics-TPS parts need a state")
            parts[part["part"]] = {"box": _pixel_box(part, f"part_boxes.{part['part']}"), "verb": part["state"]}
        human["parts"] = parts
        frame = (tree.setdefault(row["split"] or "train", {}).setdefault(row["video_label"], {})
                 .setdefault(row["video_id"], {}).setdefault(frame_name(row["frame_index"]), {"humans": []}))
        if row["objects"]:
            objects = []
            for obj in row["objects"]:
                obj.update(_width=row["width"], _height=row["height"], _source=where)
                entry: dict[str, Any] = {"box": _pixel_box(obj, "objects")}
                if obj["class_name"] is not None:
                    entry["name"] = obj["class_name"]
                if obj["object_id"] is not None:
                    entry["number"] = obj["object_id"]
                objects.append(entry)
            human["objects"] = objects
        frame["humans"].append(human)
    for classes in tree.values():
        for videos in classes.values():
            for vid, frames in videos.items():
                for frame in frames.values():
                    _hoist_shared_objects(frame)
                videos[vid] = dict(sorted(frames.items(), key=lambda kv: frame_index(kv[0])))
    return tree


def _hoist_shared_objects(frame: dict) -> None:
    """Objects go on the human they belong to; when every human of the frame has the same ones they are written
    once, on the frame (the reader copies frame-level objects to every human, so both read back the same)."""
    humans = frame["humans"]
    if humans and all("objects" in h for h in humans) and all(h["objects"] == humans[0]["objects"] for h in humans):
        frame["objects"] = humans[0]["objects"]
        for human in humans:
            del human["objects"]


def write_records(table: pa.Table, path: str | os.PathLike) -> None:
    """Write records as a Kinetics-TPS tree under ``path`` (``<split>_annotations/`` + ``list/`` when absent).

    The list files are derived from the part, state and object names present (sorted). Needs ``video_label``,
    ``frame_index``, pixel boxes (or normalized boxes and the frame size) and a state per part.
    """
    tree = frames_from_records(table)
    write_tree(tree, path)
    list_dir = Path(path) / "list"
    parts, states, objects = set(), set(), set()
    for classes in tree.values():
        for videos in classes.values():
            for frames in videos.values():
                for frame in frames.values():
                    for obj in frame.get("objects", []):
                        objects.add(obj.get("name"))
                    for human in frame["humans"]:
                        for name, part in human["parts"].items():
                            parts.add(name)
                            states.add(part["verb"])
                        for obj in human.get("objects", []):
                            objects.add(obj.get("name"))
    objects.discard(None)
    for key, names in (("parts", parts), ("states", states), ("objects", objects)):
        file = list_dir / LIST_FILES[key]
        if not file.exists():
            write_name_list(sorted(names), file)


# --------------------------------------------------------------------------------------------------------------
# list/ files


@dataclass(frozen=True)
class TpsVocab:
    """The three vocabularies of ``list/``: body parts (10), part states (74), object classes (75)."""

    parts: Vocabulary
    states: Vocabulary
    objects: Vocabulary


def read_name_list(path: str | os.PathLike, vocab_name: str | None = None) -> Vocabulary:
    """One name per line, optionally preceded by an integer id (``3 left_arm`` or ``3,left_arm``).

    Ids are taken from the file when every line has one, else names are numbered 0, 1, ... in file order.
    Blank lines are skipped; duplicate names or ids are errors.
    """
    path = os.fspath(path)
    names, ids = [], []
    try:
        with open(path, encoding="utf-8-sig") as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"not UTF-8 text: {exc.reason}") from None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        match = re.match(r"^(\d+)[\s,:]+(\S.*)$", text)
        name = match.group(2).strip() if match else text
        if name in names:
            raise InputError(path, number, f"duplicate name {name!r}")
        names.append(name)
        ids.append(int(match.group(1)) if match else None)
    if any(i is None for i in ids):
        ids = list(range(len(names)))
    elif len(set(ids)) != len(ids):
        raise InputError(path, None, "duplicate ids")
    return Vocabulary(vocab_name or f"kinetics-tps-{Path(path).stem}", tuple(names), tuple(ids))


def write_name_list(names: Iterable[str], path: str | os.PathLike) -> None:
    """One name per line (the distributed layout), atomic."""
    with atomic_write(path) as fh:
        for name in names:
            fh.write(f"{name}\n")


def read_lists(path: str | os.PathLike) -> TpsVocab:
    """The three vocabularies from a ``list/`` folder (or a dataset root that contains ``list/``)."""
    folder = Path(path)
    if (folder / "list").is_dir():
        folder = folder / "list"
    vocabs = {}
    for key, name in LIST_FILES.items():
        file = folder / name
        if not file.exists():
            raise InputError(file, None, "missing list file")
        vocabs[key] = read_name_list(file, f"kinetics-tps-{key}")
    return TpsVocab(**vocabs)


def write_lists(vocab: TpsVocab, path: str | os.PathLike) -> None:
    """Write the three list files into the folder ``path`` (names only, in id order)."""
    for key, name in LIST_FILES.items():
        voc: Vocabulary = getattr(vocab, key)
        order = np.argsort(np.asarray(voc.ids, dtype=np.int64), kind="stable")
        write_name_list([voc.names[i] for i in order], Path(path) / name)


def read_frame_counts(path: str | os.PathLike) -> dict[str, int]:
    """``video_{train,test}_flist.csv`` -> ``{video: frame count}``.

    The official layout is not public, so this reader is tolerant: each line holds a video reference and an
    integer frame count, separated by a comma, tab or spaces; a first line whose count is not an integer is taken
    as a header; the video reference may be a path (``class/video.mp4`` or a frame folder) and is reduced to its
    base name without extension. When a line has several integers the last one is the count.
    """
    path = os.fspath(path)
    counts: dict[str, int] = {}
    with open(path, encoding="utf-8-sig") as fh:
        text = fh.read()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in re.split(r"[,\t ]+", line.strip()) if f.strip()]
        if len(fields) < 2 or not fields[-1].isdigit():
            if number == 1 and not counts:
                continue  # header
            raise InputError(path, number, f"expected '<video>,<frame count>', got {line.strip()!r}")
        video = os.path.splitext(os.path.basename(fields[0].rstrip("/")))[0]
        if video in counts:
            raise InputError(path, number, f"duplicate video {video!r}")
        counts[video] = int(fields[-1])
    return counts


def write_frame_counts(counts: dict[str, int], path: str | os.PathLike) -> None:
    """Write ``{video: frames}`` as CSV with the header ``video,num_frames`` (the layout :func:`read_frame_counts`
    reads back)."""
    with atomic_write(path, newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["video", "num_frames"])
        for video, count in counts.items():
            writer.writerow([video, int(count)])


# --------------------------------------------------------------------------------------------------------------
# The evaluator's JSON files


def _load_json(path: str | os.PathLike) -> Any:
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise InputError(path, None, "file not found") from None
    return parse_frame_bytes(data, path)


def _pred_box_problem(box: Any) -> str | None:
    """Prediction boxes: 4 numbers; inverted boxes are allowed (the scorer gives them IoU -1)."""
    if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
        return f"box must be 4 numbers [x1, y1, x2, y2], got {box!r}"
    return None


def proposals(part: dict) -> tuple[list, list]:
    """A predicted part's ``(boxes, verbs)`` as lists: a single box / state string (2022 evaluator) is wrapped."""
    boxes, verbs = part["box"], part["verb"]
    if isinstance(verbs, str):
        verbs = [verbs]
    if isinstance(boxes, list) and boxes and not isinstance(boxes[0], list):
        boxes = [boxes]
    return boxes, verbs


def part_result_problems(data: Any, path: str, pred: bool = False) -> list[Problem]:
    """Problems of a ``gt_part_result.json`` (``pred=False``) or ``pred_part_result.json`` value.

    GT parts hold one box and one state; predicted parts hold a list of boxes and a list of states of the same
    length (or a single box and state), and predicted humans must have a ``box``.
    """
    if not isinstance(data, dict):
        return [Problem(path, None, "top level must be an object {video: {frame: {...}}}")]
    out: list[Problem] = []
    for vid, frames in data.items():
        if not isinstance(frames, dict):
            out.append(Problem(path, vid, "must be an object {img_XXXXX.json: {...}}"))
            continue
        for name, frame in frames.items():
            where = f"{vid}.{name}"
            if not pred:
                out += [Problem(path, f"{where}.{p.where}" if p.where else where, p.reason)
                        for p in frame_problems(frame, path)]
                continue
            if not isinstance(frame, dict) or not isinstance(frame.get("humans"), list):
                out.append(Problem(path, f"{where}.humans", "missing key or not a list"))
                continue
            for i, human in enumerate(frame["humans"]):
                hkey = f"{where}.humans[{i}]"
                if not isinstance(human, dict):
                    out.append(Problem(path, hkey, "must be an object"))
                    continue
                if "box" not in human:
                    out.append(Problem(path, f"{hkey}.box", "missing key (the scorer matches humans by box)"))
                elif (reason := _pred_box_problem(human["box"])) is not None:
                    out.append(Problem(path, f"{hkey}.box", reason))
                parts = human.get("parts", {})
                if not isinstance(parts, dict):
                    out.append(Problem(path, f"{hkey}.parts", "must be an object keyed by part name"))
                    continue
                for pname, part in parts.items():
                    pkey = f"{hkey}.parts.{pname}"
                    if not isinstance(part, dict) or "box" not in part or "verb" not in part:
                        out.append(Problem(path, pkey, "must be an object with 'box' and 'verb'"))
                        continue
                    boxes, verbs = proposals(part)
                    if not isinstance(boxes, list) or not isinstance(verbs, list):
                        out.append(Problem(path, pkey, "'box' and 'verb' must be lists (or one box and one state)"))
                        continue
                    if len(boxes) != len(verbs):
                        out.append(Problem(path, pkey, f"{len(boxes)} boxes but {len(verbs)} verbs"))
                    for j, box in enumerate(boxes):
                        if (reason := _pred_box_problem(box)) is not None:
                            out.append(Problem(path, f"{pkey}.box[{j}]", reason))
                    for j, verb in enumerate(verbs):
                        if not isinstance(verb, str):
                            out.append(Problem(path, f"{pkey}.verb[{j}]", f"must be a string, got {verb!r}"))
    return out


def read_part_result(path: str | os.PathLike, pred: bool | None = None) -> dict[str, dict[str, dict]]:
    """Load and check a ``gt_part_result.json`` / ``pred_part_result.json`` (``pred`` guessed from the name)."""
    path = os.fspath(path)
    data = _load_json(path)
    if pred is None:
        pred = os.path.basename(path).startswith("pred")
    problems = part_result_problems(data, path, pred=pred)
    if problems:
        raise InputError.from_problem(problems[0])
    return data


def read_vid_result(path: str | os.PathLike) -> dict[str, str]:
    """Load and check ``gt_vid_result.json`` / ``pred_vid_result.json``: ``{video: class name}``."""
    path = os.fspath(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise InputError(path, None, "top level must be an object {video: class}")
    for vid, label in data.items():
        if not isinstance(label, str):
            raise InputError(path, vid, f"class must be a string, got {label!r}")
    return data


def write_json(data: Any, path: str | os.PathLike) -> None:
    """Write one JSON value atomically (used for the four evaluator files)."""
    with atomic_write(path) as fh:
        json.dump(data, fh)


write_part_result = write_json
write_vid_result = write_json


def _sampled(name: str, stride: int, start: int) -> bool:
    index = frame_index(name)
    return index is not None and index >= start and (index - start) % stride == 0


def gt_from_tree(path: str | os.PathLike, split: str | None = None, stride: int = GT_STRIDE,
                 start: int = 1) -> tuple[dict, dict]:
    """``(gt_part_result, gt_vid_result)`` from a tree: frames start, start+stride, ... with humans' box/parts."""
    parts: dict = {}
    videos: dict = {}
    for video in iter_videos(path, split):
        frames = {}
        for file in video.files:
            name = os.path.basename(file)
            if _sampled(name, stride, start):
                frame = load_frame(file)
                frames[name] = {"humans": [{"box": h["box"], "parts": {p: {"box": v["box"], "verb": v["verb"]}
                                                                         for p, v in h["parts"].items()}}
                                           for h in frame["humans"]]}
        parts[video.video_id] = frames
        videos[video.video_id] = video.label
    return parts, videos


def part_result_from_records(table: pa.Table, pred: bool = False, stride: int | None = None,
                             start: int = 1) -> dict[str, dict[str, dict]]:
    """Records -> ``{video: {img_XXXXX.json: {"humans": [...]}}}``.

    ``pred=False`` gives the GT layout (one box and state per part); ``pred=True`` the submission layout
    (``number`` per human and part, ``box``/``verb`` as one-element lists, ``name``). ``stride`` keeps only frames
    ``start, start+stride, ...`` (the evaluator's GT uses 5).
    """
    tree = frames_from_records(table)
    out: dict = {}
    for classes in tree.values():
        for videos in classes.values():
            for vid, frames in videos.items():
                kept = out.setdefault(vid, {})
                for name, frame in frames.items():
                    if stride is not None and not _sampled(name, stride, start):
                        continue
                    humans = []
                    for n, human in enumerate(frame["humans"], 1):
                        if pred:
                            humans.append({"number": human.get("number", n), "box": human["box"], "parts": {
                                p: {"number": 1, "box": [v["box"]], "verb": [v["verb"]], "name": p}
                                for p, v in human["parts"].items()}})
                        else:
                            humans.append({"box": human["box"], "parts": human["parts"]})
                    kept[name] = {"humans": humans}
    return out


def vid_result_from_records(table: pa.Table) -> dict[str, str]:
    """``{video: class}`` from ``video_label`` (one label per video, else :class:`InputError`)."""
    out: dict[str, str] = {}
    for vid, label, source in zip(*(table.column(c).to_pylist() for c in ("video_id", "video_label", "source"))):
        if label is None:
            raise InputError(source, "video_label", "missing video label")
        if out.setdefault(vid, label) != label:
            raise InputError(source, "video_label", f"video {vid} has two labels: {out[vid]!r} and {label!r}")
    return out


def _first_box_problem(part_result: dict, source: str) -> Problem:
    """The first human box or first part proposal that records cannot hold (e.g. x2 < x1), with its key."""
    for vid, frames in part_result.items():
        for name, frame in frames.items():
            for i, human in enumerate(frame["humans"]):
                key = f"{vid}.{name}.humans[{i}]"
                if (reason := _box_problem(human["box"])) is not None:
                    return Problem(source, f"{key}.box", reason)
                for pname, part in human.get("parts", {}).items():
                    boxes, verbs = proposals(part)
                    if boxes and (reason := _box_problem(boxes[0])) is not None:
                        return Problem(source, f"{key}.parts.{pname}.box[0]", reason)
    return Problem(source, None, "boxes must be 4 numbers with x1 <= x2 and y1 <= y2")


def records_from_part_result(part_result: dict, vid_result: dict | None = None, *, split: str = "test",
                             source: str = "", frame_sizes: dict | None = None, fps: Any = None,
                             dataset: str = DATASET) -> pa.Table:
    """Records of a ``*_part_result.json`` value; predicted parts keep their first proposal.

    ``video_label`` comes from ``vid_result`` when given (a ``*_vid_result.json`` value), else stays null.
    """
    cols = _empty_columns()
    for vid, frames in part_result.items():
        label = (vid_result or {}).get(vid)
        for name, frame in frames.items():
            index = frame_index(name)
            for i, human in enumerate(frame["humans"]):
                box = human["box"]
                cols.hbox.extend(box)
                for pname, part in human.get("parts", {}).items():
                    boxes, verbs = proposals(part)
                    if not boxes:
                        continue
                    cols.pbox.extend(boxes[0])
                    cols.part_name.append(pname)
                    cols.part_state.append(verbs[0])
                cols.part_offsets.append(len(cols.part_name))
                cols.object_offsets.append(0)
                cols.person_id.append(human.get("number"))
                cols.video_id.append(vid)
                cols.label.append(label)
                cols.split.append(split)
                cols.frame_index.append(index)
                cols.source.append(f"{source}:{vid}.{name}.humans[{i}]")
    try:
        table = _columns_to_table(cols, frame_sizes, fps)
    except _Malformed:
        raise InputError.from_problem(_first_box_problem(part_result, source)) from None
    if dataset != DATASET:
        table = table.set_column(0, "dataset", pa.array([dataset] * table.num_rows, pa.string()))
    return table
