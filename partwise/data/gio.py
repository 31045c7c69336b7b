"""HAKE-GIO / DIO: interacted objects of AVA persons, ``DIO_{train,test}.csv`` (HAKE-AVA@DIO DATASET.md).

File format (no header; one row per human-object pair, 14 comma-separated columns)::

    video, frame, h_x1, h_y1, h_x2, h_y2, o_x1, o_y1, o_x2, o_y2, action, object_name, human_id, object_id
    -5KQ66BBWC4,905,0.392,0.033,0.556,0.618,0.37,0.019,0.432,0.608,6,stick,12,0

``frame`` is the keyframe time in seconds, both boxes are normalized, ``action`` is the person's action label (the
upstream docs do not say whether its ids are AVA's 80 or GIO's 51 HOI classes, so records tag it ``"gio"``),
``object_id`` is documented as "category id of the object" and becomes the object's ``class_id``.
Package layout: ``DIO/DIO_annotation/DIO_{train,test}.csv`` (a folder holding these files is accepted as ``path``).

* Row API, exact: :func:`read_gio` -> :class:`GioCsv`, :func:`write_gio` (box texts kept as in the file; integers
  written as canonical decimals; ``\\n`` line ends).
* Records (:func:`read_records`): one per person ``(video, frame, human box text)``, dataset ``"gio"``, with one
  ``objects`` entry per row (``class_name`` = object_name, ``class_id`` = object_id, ``action`` = action, the
  object box) and ``actions`` = the union of the rows' actions.
* Joint view (:func:`joint_records`, :func:`read_joint`): HAKE-AVA PaSta persons with the GIO objects attached, see
  :func:`joint_records` for the matching rule.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from partwise.data.hake_ava import (
    check_boxes,
    empty_lists,
    first_appearance_groups,
    first_problem,
    format_boxes,
    group_lists,
    join_columns,
    parse_float_column,
    parse_int_column,
    read_csv_columns,
    source_column,
    split_from_name,
)
from partwise.data.records import OBJECT_TYPE, PART_BOX_TYPE, PERSON_SCHEMA, conform
from partwise.errors import InputError, Problem
from partwise.io import atomic_write

COLUMNS = ("video", "frame", "h_x1", "h_y1", "h_x2", "h_y2", "o_x1", "o_y1", "o_x2", "o_y2",
           "action", "object_name", "human_id", "object_id")
DATASET = "gio"
JOINT_DATASET = "hake-ava+gio"
ACTION_VOCAB = "gio"
#: File names of the releases: DIO branch ``DIO_{train,test}.csv``; main-branch doc ``hake_ava_{train,test}.csv``.
FILE_PATTERNS = ("DIO_*.csv", "GIO_*.csv", "hake_ava_train.csv", "hake_ava_test.csv")
#: Largest per-coordinate difference (normalized units) for a GIO human box to be the PaSta person's box.
BOX_TOLERANCE = 1e-3


@dataclass
class GioCsv:
    """Rows of a GIO/DIO CSV, column by column (``n`` rows); ``*_text`` keep the box text as in the file."""

    video: np.ndarray       # (n,) object
    sec: np.ndarray         # (n,) int64
    human_box: np.ndarray   # (n, 4) float64
    object_box: np.ndarray  # (n, 4) float64
    action: np.ndarray      # (n,) int64
    object_name: np.ndarray # (n,) object
    human_id: np.ndarray    # (n,) int64
    object_id: np.ndarray   # (n,) int64
    human_box_text: np.ndarray | None = None
    object_box_text: np.ndarray | None = None
    lines: np.ndarray | None = None
    path: str | None = None

    def __len__(self) -> int:
        return len(self.video)


def _text(column: pa.Array) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


def _parse_rows(path: str) -> tuple[GioCsv, list[Problem]]:
    columns, lines, problems = read_csv_columns(path, len(COLUMNS))
    n = len(lines)
    video = _text(columns[0])
    for i in np.flatnonzero(video == ""):
        problems.append(Problem(path, int(lines[i]), "empty video id"))
    sec = parse_int_column(columns[1], "frame (seconds)", path, lines, problems)

    def box(start: int) -> np.ndarray:
        if n == 0:
            return np.zeros((0, 4))
        return np.stack([parse_float_column(columns[start + k], COLUMNS[start + k], path, lines, problems)
                         for k in range(4)], axis=1)

    human_box, object_box = box(2), box(6)
    check_boxes(human_box, "human box", path, lines, problems)
    check_boxes(object_box, "object box", path, lines, problems)
    action = parse_int_column(columns[10], "action", path, lines, problems)
    for i in np.flatnonzero(action < 0):
        problems.append(Problem(path, int(lines[i]), f"negative action id {int(action[i])}"))
    object_name = _text(columns[11])
    for i in np.flatnonzero(object_name == ""):
        problems.append(Problem(path, int(lines[i]), "empty object_name"))
    human_id = parse_int_column(columns[12], "human_id", path, lines, problems)
    object_id = parse_int_column(columns[13], "object_id", path, lines, problems)
    for i in np.flatnonzero(object_id < 0):
        problems.append(Problem(path, int(lines[i]), f"negative object_id {int(object_id[i])}"))

    def joined(start: int) -> np.ndarray:
        return _text(pc.binary_join_element_wise(*columns[start:start + 4], ",")) if n else np.zeros(0, object)

    rows = GioCsv(video, sec, human_box, object_box, action, object_name, human_id, object_id,
                  joined(2), joined(6), lines, path)
    return rows, problems


def read_gio(path: str | os.PathLike) -> GioCsv:
    """Read one GIO/DIO CSV exactly (raises :class:`InputError` on the first problem)."""
    rows, problems = _parse_rows(os.fspath(path))
    first_problem(problems)
    return rows


def _box_text(text: np.ndarray | None, box: np.ndarray):
    """The kept ``"x1,y1,x2,y2"`` texts, or shortest round-trip floats when there are none."""
    if text is not None and len(text) == len(box):
        return text
    return format_boxes(box)


def format_gio(rows: GioCsv) -> str:
    """CSV text of ``rows`` (boxes from the kept text, else shortest round-trip floats)."""
    if len(rows) == 0:
        return ""
    columns = [rows.video, rows.sec, _box_text(rows.human_box_text, rows.human_box),
               _box_text(rows.object_box_text, rows.object_box), rows.action, rows.object_name, rows.human_id,
               rows.object_id]
    return join_columns(columns)


def write_gio(rows: GioCsv, path: str | os.PathLike) -> None:
    """Write ``rows`` as a GIO/DIO CSV, atomically."""
    text = format_gio(rows)
    with atomic_write(path, newline="") as fh:
        fh.write(text)


def _files(path: str | os.PathLike, split: str | None) -> list[tuple[Path, str | None]]:
    path = Path(path)
    if path.is_dir():
        for folder in (path, path / "DIO_annotation", path / "DIO" / "DIO_annotation", path / "hake_ava_annotation"):
            if not folder.is_dir():
                continue
            from partwise.io import present_file

            found = sorted(p for pattern in FILE_PATTERNS for p in folder.glob(pattern)
                           if (split is None or split_from_name(p) == split) and present_file(p))
            if found:
                return [(p, split_from_name(p)) for p in found]
        raise InputError(path, None, "no GIO/DIO CSV files (DIO_train.csv, DIO_test.csv) in this folder")
    if not path.exists():
        raise InputError(path, None, "no such file or folder")
    return [(path, split or split_from_name(path))]


def rows_to_records(rows: GioCsv, split: str | None = None) -> pa.Table:
    """One record per ``(video, frame, human box text)`` with an ``objects`` entry per row."""
    n = len(rows)
    if n == 0:
        return PERSON_SCHEMA.empty_table()
    keys = pc.binary_join_element_wise(pa.array(rows.video, pa.string()), pc.cast(pa.array(rows.sec), pa.string()),
                                       pa.array(_box_text(rows.human_box_text, rows.human_box), pa.string()), "|")
    group, first = first_appearance_groups(keys)
    g = len(first)
    order = np.argsort(group, kind="stable")  # rows of a person stay in file order
    counts = np.bincount(group, minlength=g)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    ob = rows.object_box[order]
    nulls = pa.nulls(n, pa.float64())
    objects = pa.StructArray.from_arrays(
        [pa.array(rows.object_name[order], pa.string()), pa.array(rows.object_id[order]).cast(pa.int32()),
         pa.array(rows.action[order]).cast(pa.int32()), pa.nulls(n, pa.int64()),
         pa.array(ob[:, 0]), pa.array(ob[:, 1]), pa.array(ob[:, 2]), pa.array(ob[:, 3]), nulls, nulls, nulls, nulls],
        fields=list(OBJECT_TYPE))
    src = rows.path or "<memory>"
    lines = rows.lines[first] if rows.lines is not None else first + 1
    sec = rows.sec[first]
    table = pa.table({
        "dataset": pa.array([DATASET] * g),
        "split": pa.array([split] * g, pa.string()),
        "video_id": pa.array(rows.video[first], pa.string()),
        "time_s": pa.array(sec.astype(np.float64)),
        "frame_index": pa.array((sec - 900) * 30),
        **{name: pa.array(rows.human_box[first, k]) for k, name in enumerate(("x1", "y1", "x2", "y2"))},
        "person_id": pa.array(rows.human_id[first]),
        "actions": group_lists(group, rows.action, g, pa.int32()),
        "action_vocab": pa.array([ACTION_VOCAB] * g),
        "pasta": empty_lists(g, pa.string()),
        "part_boxes": empty_lists(g, PART_BOX_TYPE),
        "objects": pa.ListArray.from_arrays(offsets, objects),
        "source": source_column(src, lines),
    })
    return conform(table)


def read_records(path: str | os.PathLike, *, split: str | None = None, progress: bool = False) -> pa.Table:
    """Person records (with objects) of a GIO/DIO CSV file or of a folder holding them."""
    files = _files(path, split)
    if progress:
        from partwise.progress import bar as tqdm

        files = tqdm(files, desc="gio", unit="file")
    tables = [rows_to_records(read_gio(f), split or s) for f, s in files]
    return pa.concat_tables(tables) if tables else PERSON_SCHEMA.empty_table()


def validate(path: str | os.PathLike) -> list[Problem]:
    """Every problem in the GIO/DIO CSV file(s)."""
    try:
        files = _files(path, None)
    except InputError as exc:
        return [exc.problem]
    problems: list[Problem] = []
    for file, _ in files:
        problems.extend(_parse_rows(os.fspath(file))[1])
    return problems


def records_to_rows(table: pa.Table) -> GioCsv:
    """GIO rows from records: one row per ``objects`` entry that has a normalized box (or pixels and the size).

    ``action`` is the object's ``action``; ``object_id`` its ``class_id`` (-1 when absent); ``human_id`` the
    record's ``person_id`` (-1 when absent).
    """
    recs = conform(table).select(["video_id", "time_s", "x1", "y1", "x2", "y2", "px1", "py1", "px2", "py2", "width",
                                  "height", "person_id", "objects", "source"]).to_pylist()
    out = {k: [] for k in ("video", "sec", "hb", "ob", "action", "name", "hid", "oid")}
    for i, rec in enumerate(recs):
        if not rec["objects"]:
            continue
        where = rec["source"] or f"row {i}"
        human = _norm(rec, rec["width"], rec["height"])
        if human is None or rec["time_s"] is None:
            raise InputError(None, where, "a GIO row needs the keyframe time and a normalized (or sized) human box")
        for obj in rec["objects"]:
            box = _norm(obj, rec["width"], rec["height"])
            if box is None:
                raise InputError(None, where, "a GIO row needs a normalized (or sized) object box")
            out["video"].append(rec["video_id"])
            out["sec"].append(int(round(rec["time_s"])))
            out["hb"].append(human)
            out["ob"].append(box)
            out["action"].append(-1 if obj["action"] is None else int(obj["action"]))
            out["name"].append(obj["class_name"] or "unknown")
            out["hid"].append(-1 if rec["person_id"] is None else int(rec["person_id"]))
            out["oid"].append(-1 if obj["class_id"] is None else int(obj["class_id"]))
    n = len(out["video"])
    return GioCsv(np.array(out["video"], object), np.array(out["sec"], np.int64), np.array(out["hb"], float).reshape(n, 4),
                  np.array(out["ob"], float).reshape(n, 4), np.array(out["action"], np.int64), np.array(out["name"], object),
                  np.array(out["hid"], np.int64), np.array(out["oid"], np.int64))


def _norm(box: dict, width, height) -> list[float] | None:
    """``[x1, y1, x2, y2]`` normalized, from the normalized fields or from pixels and the frame size."""
    if box["x1"] is not None:
        return [box["x1"], box["y1"], box["x2"], box["y2"]]
    if box["px1"] is not None and width and height:
        return [box["px1"] / width, box["py1"] / height, box["px2"] / width, box["py2"] / height]
    return None


def write_records(table: pa.Table, path: str | os.PathLike) -> None:
    """Write records' objects as GIO CSV: one ``.csv`` file, or a folder with ``DIO_<split>.csv`` per split (rows
    without a split go to ``train``). Persons without objects have no GIO row and are not written."""
    path = Path(path)
    table = conform(table)
    if path.suffix == ".csv":
        write_gio(records_to_rows(table), path)
        return
    splits = pc.fill_null(table.column("split"), "train")
    # all texts first: a bad record leaves the folder untouched; then one atomic replace per file
    texts = {f"DIO_{name}.csv": format_gio(records_to_rows(table.filter(pc.equal(splits, name))))
             for name in dict.fromkeys(splits.to_pylist())}
    for name, text in texts.items():
        with atomic_write(path / name, newline="") as fh:
            fh.write(text)


# --------------------------------------------------------------------------------------------------------------
# Joint view: HAKE-AVA PaSta persons + GIO objects

def joint_records(pasta_table: pa.Table, gio_table: pa.Table, tolerance: float = BOX_TOLERANCE) -> pa.Table:
    """HAKE-AVA PaSta records with the GIO objects of the same person attached (dataset ``"hake-ava+gio"``).

    Rule: a GIO person matches a PaSta person when ``video_id`` and ``time_s`` are equal AND either every box
    coordinate differs by at most ``tolerance`` (normalized units; the two releases round boxes differently) or the
    ``person_id`` (AVA person id = GIO human_id) is equal. The PaSta person's ``objects`` become the objects of all
    matching GIO persons (in GIO order). Every PaSta person is kept (``objects`` empty when nothing matches); GIO
    persons without a PaSta person are not in the view. Actions and PaSta stay those of the HAKE-AVA record (AVA
    ids); each object keeps its GIO ``action``.
    """
    pasta_table, gio_table = conform(pasta_table), conform(gio_table)
    n = pasta_table.num_rows
    left = pa.table({"video_id": pasta_table.column("video_id"), "time_s": pasta_table.column("time_s"),
                     "_p": pa.array(np.arange(n, dtype=np.int64))})
    right = pa.table({"video_id": gio_table.column("video_id"), "time_s": gio_table.column("time_s"),
                      "_g": pa.array(np.arange(gio_table.num_rows, dtype=np.int64))})
    pairs = left.join(right, keys=["video_id", "time_s"], join_type="inner")
    p = np.asarray(pairs.column("_p").to_numpy(), dtype=np.int64)
    g = np.asarray(pairs.column("_g").to_numpy(), dtype=np.int64)
    order = np.lexsort((g, p))
    p, g = p[order], g[order]

    def boxes(table: pa.Table) -> np.ndarray:
        return np.stack([np.asarray(table.column(k).to_numpy(zero_copy_only=False), dtype=np.float64)
                         for k in ("x1", "y1", "x2", "y2")], axis=1)

    def ids(table: pa.Table) -> np.ndarray:
        return np.asarray(table.column("person_id").fill_null(-(2 ** 62)).to_numpy(), dtype=np.int64)

    close = np.all(np.abs(boxes(pasta_table)[p] - boxes(gio_table)[g]) <= tolerance, axis=1)
    pid_p, pid_g = ids(pasta_table), ids(gio_table)
    same_id = (pid_p[p] == pid_g[g]) & (pid_p[p] != -(2 ** 62))
    keep = close | same_id
    p, g = p[keep], g[keep]
    gio_objects = gio_table.column("objects").combine_chunks() if gio_table.num_rows else pa.array([], pa.list_(OBJECT_TYPE))
    obj_offsets = np.asarray(gio_objects.offsets.to_numpy(), dtype=np.int64) if gio_table.num_rows else np.zeros(1, np.int64)
    starts, stops = obj_offsets[g], obj_offsets[g + 1]
    lengths = stops - starts
    # indices starts[j]..stops[j]-1 for every pair j, concatenated without a Python loop
    take = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
    per_person = np.bincount(p, weights=lengths, minlength=n).astype(np.int64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(per_person)]).astype(np.int32))
    values = gio_objects.flatten().take(pa.array(take, pa.int64())) if len(take) else pa.array([], OBJECT_TYPE)
    objects = pa.ListArray.from_arrays(offsets, values)
    out = pasta_table.set_column(pasta_table.schema.get_field_index("objects"), "objects", objects)
    out = out.set_column(out.schema.get_field_index("dataset"), "dataset", pa.array([JOINT_DATASET] * n))
    return conform(out)


def read_joint(pasta_path: str | os.PathLike, gio_path: str | os.PathLike, *, split: str | None = None,
               progress: bool = False) -> pa.Table:
    """The joint view of a HAKE-AVA PaSta folder/file and a GIO folder/file (see :func:`joint_records`)."""
    from partwise.data import hake_ava

    return joint_records(hake_ava.read_records(pasta_path, split=split, progress=progress),
                         read_records(gio_path, split=split, progress=progress))
