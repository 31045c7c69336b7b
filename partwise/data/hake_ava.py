"""HAKE-AVA part states: ``video_pasta_{train,val}.csv`` (the ST-Activity2Vec DATASET.md format).

File format (no header; one row per person box and AVA action, 14 comma-separated columns)::

    video, sec, x1, y1, x2, y2, action, human_id, foot, leg, hip, hand, arm, head
    -5KQ66BBWC4,902,0.077,0.151,0.283,0.811,9,1,14,13,-1,32,6,-1

* ``sec`` is the keyframe time in seconds (integer), the box is normalized to [0, 1], ``action`` is the AVA action
  id (1..80), ``human_id`` the AVA person id.
* A PaSta cell is ``-1`` (no state for this part) or one or more **0-based per-part local indices** joined by ``_``
  (``14_13``). Local index ``l`` of part ``p`` is the 1-based id ``to_global(p, l)`` of ``vocab.load("pasta_ava87")``
  (per-part sizes 15/14/5/33/7/13), whose names are ``"<part>: <state>"``.

Annotation folder (``hake_ava_annotations/``): ``video_pasta_train.csv``, ``video_pasta_val.csv`` and
``part_state.pbtxt`` (the 87-item label map); the other AVA files in it (``ava_val_v2.2.csv``, frame lists, ...)
belong to other formats and are ignored here.

Two APIs:

* Row API, exact: :func:`read_hake_ava` returns a :class:`PastaCsv` (one entry per line, columnar numpy arrays) and
  :func:`write_hake_ava` writes it back. The box text and the PaSta cells are kept as they appear in the file, so
  read -> write reproduces the file byte for byte provided its integers are canonical decimals (``902``, not
  ``0902``) and its lines end in ``\\n`` (``\\r\\n`` files are read, and written back with ``\\n``).
* Records: :func:`read_records` keys a person by ``(video, sec, "x1,y1,x2,y2" text)`` as the original loader does
  and takes the **union** over that key's rows of the actions and of the per-part PaSta. ``person_id`` is the
  ``human_id`` of the key's first row, ``source`` that row's ``file:line``.
  :func:`write_records` cannot restore which PaSta came with which action once they were unioned: it writes one row
  per (person, action) with the person's **whole PaSta union on every action row** (reading that back gives the same
  records). Persons without an action are not written (an AVA row needs one). Use the row API to keep the
  per-action PaSta.

Everything on the reading path is columnar (pyarrow CSV parsing, numpy grouping): no Python loop per row.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from partwise import vocab
from partwise.data.records import OBJECT_TYPE, PART_BOX_TYPE, PERSON_SCHEMA, conform
from partwise.errors import InputError, Problem
from partwise.io import atomic_write

COLUMNS = ("video", "sec", "x1", "y1", "x2", "y2", "action", "human_id",
           "foot", "leg", "hip", "hand", "arm", "head")
PASTA_VOCAB = "pasta_ava87"
ACTION_VOCAB = "ava80"
DATASET = "hake-ava"
LABEL_MAP_NAME = "part_state.pbtxt"
#: AVA frames are extracted at 30 fps from the cut that starts at 900 s: frame = (sec - 900) * 30.
AVA_FPS = 30
AVA_START_S = 900

_INT = r"^-?[0-9]{1,18}$"  # 18 digits always fit int64
_FLOAT = r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$"
_PASTA_CELL = r"^(-1|[0-9]{1,9}(_[0-9]{1,9})*)$"


# --------------------------------------------------------------------------------------------------------------
# Generic columnar CSV helpers (shared with the GIO reader)

def read_csv_columns(path: str | os.PathLike, n_columns: int) -> tuple[list[pa.Array], np.ndarray, list[Problem]]:
    """Read a header-less, unquoted CSV as ``n_columns`` string arrays.

    Returns ``(columns, lines, problems)``: ``lines[i]`` is the 1-based line number of row ``i``; rows with the wrong
    number of fields are left out and reported in ``problems``. An empty file gives one problem.
    """
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from None
    if size == 0:
        return [pa.array([], pa.string()) for _ in range(n_columns)], np.zeros(0, np.int64), [Problem(path, None, "empty file")]
    from partwise.data.safe_json import read_bytes

    data = read_bytes(path)
    try:  # non-UTF-8 bytes must not reach pyarrow's row handler (it raises inside a callback: "Exception ignored")
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, data.count(b"\n", 0, exc.start) + 1, "not UTF-8 text") from None
    bad: list[tuple[int, int]] = []

    def on_invalid(row) -> str:
        bad.append((int(row.number), int(row.actual_columns)))
        return "skip"

    names = [f"c{i}" for i in range(n_columns)]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(quote_char=False, ignore_empty_lines=False, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"not a readable CSV file: {str(exc).splitlines()[0]}") from None
    problems = [Problem(path, number, f"expected {n_columns} comma-separated columns, got {count}") for number, count in bad]
    total = table.num_rows + len(bad)
    keep = np.ones(total, dtype=bool)
    if bad:
        keep[np.array([b[0] for b in bad]) - 1] = False
    lines = np.flatnonzero(keep).astype(np.int64) + 1
    columns = [table.column(n).combine_chunks() if table.num_rows else pa.array([], pa.string()) for n in names]
    # an empty line parses as a row of empty fields
    blank = np.ones(len(lines), dtype=bool)
    for column in columns:
        blank &= np.asarray(pc.equal(column, "").to_numpy(zero_copy_only=False), dtype=bool)
    if blank.any():
        problems.extend(Problem(path, int(number), "empty line") for number in lines[blank])
        keep_rows = pa.array(~blank)
        columns = [c.filter(keep_rows) for c in columns]
        lines = lines[~blank]
    if total == 0:
        problems.append(Problem(path, None, "empty file"))
    return columns, lines, problems


def parse_int_column(column: pa.Array, what: str, path: str, lines: np.ndarray, problems: list[Problem]) -> np.ndarray:
    """Integer values of a string column (0 where malformed; each malformed cell appended to ``problems``)."""
    ok = np.asarray(pc.match_substring_regex(column, _INT).to_numpy(zero_copy_only=False), dtype=bool)
    _report(~ok, column, what, "an integer", path, lines, problems)
    fixed = pc.if_else(pa.array(ok), column, pa.scalar("0"))
    return np.asarray(pc.cast(fixed, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def parse_float_column(column: pa.Array, what: str, path: str, lines: np.ndarray, problems: list[Problem]) -> np.ndarray:
    """Float values of a string column (NaN where malformed; each malformed cell appended to ``problems``)."""
    ok = np.asarray(pc.match_substring_regex(column, _FLOAT).to_numpy(zero_copy_only=False), dtype=bool)
    _report(~ok, column, what, "a number", path, lines, problems)
    fixed = pc.if_else(pa.array(ok), column, pa.scalar("nan"))
    return np.asarray(pc.cast(fixed, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _report(bad: np.ndarray, column: pa.Array, what: str, expected: str, path: str, lines: np.ndarray,
            problems: list[Problem]) -> None:
    for i in np.flatnonzero(bad):
        problems.append(Problem(path, int(lines[i]), f"{what} is not {expected}: {column[int(i)].as_py()!r}"))


def check_boxes(box: np.ndarray, what: str, path: str, lines: np.ndarray, problems: list[Problem]) -> None:
    """Append a problem for every normalized box ``(n, 4)`` outside [0, 1] or with x2 < x1 or y2 < y1 (NaN rows
    were already reported as malformed)."""
    finite = np.isfinite(box).all(axis=1)
    outside = finite & ((box < 0) | (box > 1)).any(axis=1)
    inverted = finite & ~outside & ((box[:, 2] < box[:, 0]) | (box[:, 3] < box[:, 1]))
    for i in np.flatnonzero(outside):
        problems.append(Problem(path, int(lines[i]), f"{what} {box[i].tolist()} is outside [0, 1]"))
    for i in np.flatnonzero(inverted):
        problems.append(Problem(path, int(lines[i]), f"{what} {box[i].tolist()} has x2 < x1 or y2 < y1"))


def format_float(values: np.ndarray) -> pa.Array:
    """Shortest decimal text that reads back to the same float64 (``0.077``, ``1``, ``0.5``, ``1e-7``)."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.float64)), pa.string())


def format_boxes(boxes: np.ndarray) -> pa.Array:
    """``"x1,y1,x2,y2"`` texts of (n, 4) boxes with :func:`format_float` numbers."""
    return pc.binary_join_element_wise(*(format_float(boxes[:, k]) for k in range(4)), ",")


def text_column(values) -> pa.Array:
    """A string array from numpy integers (canonical decimals) or text values."""
    if isinstance(values, pa.Array):
        return values.cast(pa.string())
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return pc.cast(pa.array(values.astype(np.int64)), pa.string())
    return pa.array(values, pa.string())


def join_columns(columns: list, sep: str = ",") -> str:
    """CSV text (``\\n`` line ends) from equal-length columns (numpy arrays, lists or string arrays)."""
    if not columns or len(columns[0]) == 0:
        return ""
    rows = pc.binary_join_element_wise(*(text_column(c) for c in columns), sep)
    return "\n".join(rows.to_pylist()) + "\n"


def first_problem(problems: list[Problem]) -> None:
    """Raise the earliest problem (by line) as :class:`InputError`."""
    if problems:
        ordered = sorted(problems, key=lambda p: (p.where if isinstance(p.where, int) else -1))
        raise InputError.from_problem(ordered[0])


def split_from_name(path: str | os.PathLike, default: str | None = None) -> str | None:
    """``train``/``val``/``test`` from a file name like ``video_pasta_val.csv`` or ``DIO_test.csv``."""
    match = re.search(r"(?:^|[_\-.])(train|val|test|training|testing)(?:[_\-.]|$)", Path(path).name)
    if not match:
        return default
    return {"training": "train", "testing": "test"}.get(match.group(1), match.group(1))


def group_lists(groups: np.ndarray, values: np.ndarray, n_groups: int, value_type: pa.DataType) -> pa.ListArray:
    """``n_groups`` lists: the sorted distinct ``values`` of each group (``groups``, ``values``: ``(k,)``)."""
    groups, values = np.asarray(groups, np.int64), np.asarray(values, np.int64)
    if len(groups):
        # one int64 key per (group, value) pair: a 1-D unique is far faster than a row-wise one
        low = int(values.min())
        span = int(values.max()) - low + 1
        keys = np.sort(groups * span + (values - low))
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]  # sort-based unique (np.unique hashes: slower)
        pair_groups, pair_values = keys // span, keys % span + low
    else:
        pair_groups = pair_values = np.zeros(0, np.int64)
    counts = np.bincount(pair_groups, minlength=n_groups)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(pair_values).cast(value_type))


def source_column(path: str, lines: np.ndarray) -> pa.Array:
    """``"<path>:<line>"`` strings for 1-based line numbers ``lines`` (k,)."""
    numbers = pc.cast(pa.array(np.asarray(lines, np.int64)), pa.string())
    return pc.binary_join_element_wise(pa.scalar(path), numbers, ":")


def empty_lists(n: int, value_type: pa.DataType) -> pa.ListArray:
    """``n`` empty lists (records use ``[]``, not null, for list columns without content)."""
    return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], value_type))


def first_appearance_groups(keys: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Group ids numbered by first appearance: returns ``(group (n,), first_row_of_group (g,))``."""
    encoded = pc.dictionary_encode(keys)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    # dictionary_encode numbers values in order of first appearance
    n = len(encoded.dictionary)
    first = np.full(n, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return codes, first


# --------------------------------------------------------------------------------------------------------------
# Row API

@dataclass
class PastaCsv:
    """Rows of a ``video_pasta_*.csv`` file, column by column (``n`` rows).

    ``box_text`` is the ``"x1,y1,x2,y2"`` text as in the file (the original loader's person key); ``pasta`` holds the
    six PaSta cells per row as text (``"-1"``, ``"14_13"``), columns in the order foot, leg, hip, hand, arm, head.
    ``lines`` are the 1-based line numbers in ``path`` (``None`` for tables built in memory).
    """

    video: np.ndarray      # (n,) object
    sec: np.ndarray        # (n,) int64
    box: np.ndarray        # (n, 4) float64, normalized
    box_text: np.ndarray   # (n,) object
    action: np.ndarray     # (n,) int64, AVA 1..80
    human_id: np.ndarray   # (n,) int64
    pasta: np.ndarray      # (n, 6) object
    lines: np.ndarray | None = None
    path: str | None = None

    def __len__(self) -> int:
        return len(self.video)

    def pasta_entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All labelled (row, part, local index) triples, as three ``(k,)`` int64 arrays."""
        rows, parts, locals_ = [], [], []
        for p in range(6):
            cells = pa.array(self.pasta[:, p], pa.string())
            pieces = pc.split_pattern(cells, "_")
            flat = np.asarray(pc.cast(pc.list_flatten(pieces), pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
            parent = np.asarray(pc.list_parent_indices(pieces).to_numpy(zero_copy_only=False), dtype=np.int64)
            keep = flat >= 0
            rows.append(parent[keep])
            parts.append(np.full(int(keep.sum()), p, np.int64))
            locals_.append(flat[keep])
        return np.concatenate(rows), np.concatenate(parts), np.concatenate(locals_)

    def pasta_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """``(row, id)`` pairs with the 1-based ``pasta_ava87`` ids of every labelled cell entry."""
        rows, parts, locals_ = self.pasta_entries()
        offsets = np.array(vocab.load(PASTA_VOCAB).part_offsets, np.int64)
        return rows, offsets[parts] + locals_ + 1


def _parse_rows(path: str) -> tuple[PastaCsv, list[Problem]]:
    columns, lines, problems = read_csv_columns(path, len(COLUMNS))
    video = np.asarray(columns[0].to_numpy(zero_copy_only=False), dtype=object)
    for i in np.flatnonzero(video == ""):
        problems.append(Problem(path, int(lines[i]), "empty video id"))
    sec = parse_int_column(columns[1], "frame (seconds)", path, lines, problems)
    box = np.stack([parse_float_column(columns[2 + k], COLUMNS[2 + k], path, lines, problems) for k in range(4)], axis=1) \
        if len(lines) else np.zeros((0, 4))
    check_boxes(box, "person box", path, lines, problems)
    action = parse_int_column(columns[6], "action", path, lines, problems)
    known = vocab.load(ACTION_VOCAB)
    valid_action = np.isin(action, np.array(known.ids))
    cell_ok_action = np.asarray(pc.match_substring_regex(columns[6], _INT).to_numpy(zero_copy_only=False), dtype=bool)
    for i in np.flatnonzero(~valid_action & cell_ok_action):
        problems.append(Problem(path, int(lines[i]), f"unknown AVA action id {int(action[i])} (expected 1..80)"))
    human_id = parse_int_column(columns[7], "human_id", path, lines, problems)
    pasta = np.empty((len(lines), 6), dtype=object)
    sizes = vocab.load(PASTA_VOCAB).part_sizes
    for p, part in enumerate(vocab.PASTA_PARTS):
        column = columns[8 + p]
        ok = np.asarray(pc.match_substring_regex(column, _PASTA_CELL).to_numpy(zero_copy_only=False), dtype=bool)
        text = np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
        for i in np.flatnonzero(~ok):
            problems.append(Problem(path, int(lines[i]),
                                    f"{part} PaSta cell {text[i]!r} is not -1 or local indices joined by '_'"))
        text[~ok] = "-1"
        pasta[:, p] = text
    box_text = (np.asarray(pc.binary_join_element_wise(*columns[2:6], ",").to_numpy(zero_copy_only=False), dtype=object)
                if len(lines) else np.zeros(0, object))
    rows = PastaCsv(video, sec, box, box_text, action, human_id, pasta, lines, path)
    entry_rows, entry_parts, entry_locals = rows.pasta_entries()
    too_big = entry_locals >= np.array(sizes)[entry_parts]
    for r, p, l in zip(entry_rows[too_big], entry_parts[too_big], entry_locals[too_big]):
        problems.append(Problem(path, int(lines[r]),
                                f"{vocab.PASTA_PARTS[p]} PaSta index {int(l)} out of range 0..{sizes[p] - 1}"))
    return rows, problems


def read_hake_ava(path: str | os.PathLike) -> PastaCsv:
    """Read one ``video_pasta_*.csv`` file exactly (raises :class:`InputError` on the first problem)."""
    rows, problems = _parse_rows(os.fspath(path))
    first_problem(problems)
    return rows


def format_hake_ava(rows: PastaCsv) -> str:
    """The CSV text of ``rows`` (``\\n`` line ends; box written from ``box_text`` when present, else shortest floats)."""
    if len(rows) == 0:
        return ""
    if rows.box_text is not None and len(rows.box_text) == len(rows):
        box_text = rows.box_text
    else:
        box_text = format_boxes(rows.box)
    columns = [rows.video, rows.sec, box_text, rows.action, rows.human_id] + [rows.pasta[:, p] for p in range(6)]
    return join_columns(columns)


def write_hake_ava(rows: PastaCsv, path: str | os.PathLike) -> None:
    """Write ``rows`` as a ``video_pasta_*.csv`` file, atomically."""
    text = format_hake_ava(rows)
    with atomic_write(path, newline="") as fh:
        fh.write(text)


# --------------------------------------------------------------------------------------------------------------
# Records

def _files(path: str | os.PathLike, split: str | None) -> list[tuple[Path, str | None]]:
    path = Path(path)
    if path.is_dir():
        splits = [split] if split else ["train", "val", "test"]
        names = [f"video_pasta_{s}.csv" for s in splits]
        from partwise.io import present_file

        found = [(path / n, split_from_name(n)) for n in names if present_file(path / n)]
        if not found:
            raise InputError(path, None, f"no {' or '.join(names)} in this folder")
        return found
    if not path.exists():
        raise InputError(path, None, "no such file or folder")
    return [(path, split or split_from_name(path))]


def rows_to_records(rows: PastaCsv, split: str | None = None) -> pa.Table:
    """Canonical person records of ``rows``: one per ``(video, sec, box text)`` key, union of actions and PaSta."""
    n = len(rows)
    if n == 0:
        return PERSON_SCHEMA.empty_table()
    keys = pc.binary_join_element_wise(pa.array(rows.video, pa.string()), pc.cast(pa.array(rows.sec), pa.string()),
                                       pa.array(rows.box_text, pa.string()), "|")
    group, first = first_appearance_groups(keys)
    g = len(first)
    actions = group_lists(group, rows.action, g, pa.int32())
    pasta_rows, ids = rows.pasta_ids()
    id_lists = group_lists(group[pasta_rows], ids, g, pa.int64())
    names = np.array(vocab.load(PASTA_VOCAB).names, dtype=object)
    flat_ids = np.asarray(id_lists.values.to_numpy(zero_copy_only=False), dtype=np.int64)
    pasta = pa.ListArray.from_arrays(id_lists.offsets, pa.array(names[flat_ids - 1], pa.string()))
    sec = rows.sec[first]
    src = rows.path or "<memory>"
    lines = rows.lines[first] if rows.lines is not None else first + 1
    table = pa.table({
        "dataset": pa.array([DATASET] * g),
        "split": pa.array([split] * g, pa.string()),
        "video_id": pa.array(rows.video[first], pa.string()),
        "time_s": pa.array(sec.astype(np.float64)),
        "frame_index": pa.array((sec - AVA_START_S) * AVA_FPS),
        **{name: pa.array(rows.box[first, k]) for k, name in enumerate(("x1", "y1", "x2", "y2"))},
        "person_id": pa.array(rows.human_id[first]),
        "actions": actions,
        "action_vocab": pa.array([ACTION_VOCAB] * g),
        "pasta": pasta,
        "pasta_vocab": pa.array([PASTA_VOCAB] * g),
        "part_boxes": empty_lists(g, PART_BOX_TYPE),
        "objects": empty_lists(g, OBJECT_TYPE),
        "source": source_column(src, lines),
    })
    return conform(table)


def read_records(path: str | os.PathLike, *, split: str | None = None, progress: bool = False) -> pa.Table:
    """Person records of a HAKE-AVA annotation folder (all ``video_pasta_*.csv`` in it) or of one such file."""
    tables = []
    files = _files(path, split)
    iterator = files
    if progress:
        from partwise.progress import bar as tqdm

        iterator = tqdm(files, desc="hake-ava", unit="file")
    for file, file_split in iterator:
        tables.append(rows_to_records(read_hake_ava(file), split or file_split))
    return pa.concat_tables(tables) if tables else PERSON_SCHEMA.empty_table()


def validate(path: str | os.PathLike) -> list[Problem]:
    """Every problem in the folder's ``video_pasta_*.csv`` files (or in one file), and in ``part_state.pbtxt``."""
    try:
        files = _files(path, None)
    except InputError as exc:
        return [exc.problem]
    problems: list[Problem] = []
    for file, _ in files:
        problems.extend(_parse_rows(os.fspath(file))[1])
    label_map = Path(path) / LABEL_MAP_NAME
    from partwise.io import present_file

    if Path(path).is_dir() and present_file(label_map):
        try:
            mapping = vocab.read_label_map(label_map)
        except InputError as exc:
            problems.append(exc.problem)
        else:
            expected = dict(zip(vocab.load(PASTA_VOCAB).ids, vocab.load(PASTA_VOCAB).names))
            if mapping != expected:
                problems.append(Problem(os.fspath(label_map), None, "label map differs from the 87 HAKE-AVA PaSta classes"))
    return problems


def _normalized_boxes(table: pa.Table) -> np.ndarray:
    """``(n, 4)`` normalized boxes, from ``x1..y2`` or from pixels and the frame size; NaN where neither exists."""
    def col(name):
        return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)

    box = np.stack([col(n) for n in ("x1", "y1", "x2", "y2")], axis=1)
    width = col("width")
    height = col("height")
    pixels = np.stack([col(n) for n in ("px1", "py1", "px2", "py2")], axis=1) / np.stack([width, height, width, height], axis=1)
    return np.where(np.isnan(box), pixels, box)


def records_to_rows(table: pa.Table) -> PastaCsv:
    """Rows for a ``video_pasta_*.csv`` from person records: one row per (person, action), each carrying the
    person's whole PaSta (converted by name to ``pasta_ava87``, written as sorted distinct local indices; names
    without a counterpart, such as ``no_interaction``, are dropped). Persons without actions are left out.
    ``person_id`` null is written as ``-1``; ``time_s`` is rounded to whole seconds."""
    table = conform(table)
    n = table.num_rows
    actions = table.column("actions").combine_chunks()
    has_actions = np.asarray(pc.list_value_length(actions).fill_null(0).to_numpy(zero_copy_only=False)) > 0
    action_vocab = table.column("action_vocab")
    ava_ids = np.asarray(pc.or_kleene(pc.is_null(action_vocab), pc.is_in(action_vocab, pa.array(["ava80", "ava60"])))
                         .fill_null(True).to_numpy(zero_copy_only=False), dtype=bool)
    time_s = np.asarray(table.column("time_s").fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)
    boxes = _normalized_boxes(table)
    sources = table.column("source")
    for mask, reason in ((has_actions & ~ava_ids, "actions are not AVA (ava80) ids"),
                         (has_actions & (np.isnan(time_s) | np.isnan(boxes).any(axis=1)),
                          "a HAKE-AVA row needs the keyframe time and a normalized (or sized) box")):
        bad = np.flatnonzero(mask)
        if len(bad):
            i = int(bad[0])
            raise InputError(None, sources[i].as_py() or f"row {i}", reason)
    cells = _pasta_cells(table.column("pasta").combine_chunks(), n)
    parent = np.asarray(pc.list_parent_indices(actions).to_numpy(zero_copy_only=False), dtype=np.int64)
    action = np.asarray(pc.list_flatten(actions).to_numpy(zero_copy_only=False), dtype=np.int64)
    human = np.asarray(table.column("person_id").fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    video = np.asarray(table.column("video_id").to_numpy(zero_copy_only=False), dtype=object)
    box = boxes[parent]
    box_text = np.asarray(format_boxes(box).to_numpy(zero_copy_only=False), dtype=object)
    return PastaCsv(video[parent], np.round(time_s[parent]).astype(np.int64), box, box_text, action, human[parent],
                    cells[parent])


def _pasta_cells(pasta: pa.ListArray, n: int) -> np.ndarray:
    """(n, 6) PaSta cell texts (``"-1"`` or ``"3_17"``) from a list<string> column of state names."""
    target = vocab.load(PASTA_VOCAB)
    flat = pc.replace_substring(pc.list_flatten(pasta), "no interaction", "no_interaction")
    owner = np.asarray(pc.list_parent_indices(pasta).to_numpy(zero_copy_only=False), dtype=np.int64)
    encoded = pc.dictionary_encode(flat)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    part_of, local_of = [], []
    for name in encoded.dictionary.to_pylist():  # the distinct names only (at most a few hundred)
        part, local = target.to_local(target.id_of(name)) if target.has_name(name) else (None, -1)
        part_of.append(vocab.PASTA_PARTS.index(part) if part else -1)
        local_of.append(local)
    part = np.array(part_of, np.int64)[codes] if len(codes) else np.zeros(0, np.int64)
    local = np.array(local_of, np.int64)[codes] if len(codes) else np.zeros(0, np.int64)
    cells = np.empty((n, 6), dtype=object)
    for p in range(6):
        mine = part == p
        lists = group_lists(owner[mine], local[mine], n, pa.int64())
        joined = pc.binary_join(pa.ListArray.from_arrays(lists.offsets, pc.cast(lists.values, pa.string())), "_")
        cells[:, p] = np.asarray(pc.if_else(pc.equal(joined, ""), "-1", joined).to_numpy(zero_copy_only=False), dtype=object)
    return cells


def write_records(table: pa.Table, path: str | os.PathLike) -> None:
    """Write records as HAKE-AVA: to one ``.csv`` file, or to an annotation folder with ``video_pasta_<split>.csv``
    per split (rows without a split go to ``train``) and ``part_state.pbtxt``. See the module docstring for how the
    PaSta union is written."""
    path = Path(path)
    table = conform(table)
    if path.suffix == ".csv":
        write_hake_ava(records_to_rows(table), path)
        return
    splits = pc.fill_null(table.column("split"), "train")
    # every file's text is built before the first one is written, so a bad record leaves the folder untouched;
    # each file is then replaced atomically and other files in the folder (AVA's own) are kept
    texts = {f"video_pasta_{name}.csv": format_hake_ava(records_to_rows(table.filter(pc.equal(splits, name))))
             for name in dict.fromkeys(splits.to_pylist())}
    for name, text in texts.items():
        with atomic_write(path / name, newline="") as fh:
            fh.write(text)
    pasta = vocab.load(PASTA_VOCAB)
    vocab.write_label_map(dict(zip(pasta.ids, pasta.names)), path / LABEL_MAP_NAME, "item")
