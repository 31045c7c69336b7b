"""AVA annotation folders and files <-> canonical person records; validating a whole folder."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from partwise.data.ava.excluded import read_excluded
from partwise.data.ava.parse import read_csv, validate_csv
from partwise.data.ava.proposals import read_proposals
from partwise.data.ava.table import AvaCsv, keyframe_index
from partwise.data.ava.write import keyframe_keys, write_csv
from partwise.errors import InputError, Problem


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
        first = int(np.argmax(missing))
        # the source (file:key) lets the user find the record; a record number alone names no input
        source = table.column("source")[first].as_py() if "source" in table.column_names else None
        raise ValueError(f"record {first} has no time_s or no normalized box (x1..y2); AVA files need both"
                         + (f" (from {source})" if source else ""))
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
