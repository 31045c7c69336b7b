"""AVA-Kinetics annotations in mmaction2's merged layout (AVA v2.2 + Kinetics-700 clips).

* Kinetics rows have **7 fields** ``video,ts,x1,y1,x2,y2,action`` (no person id) and the timestamp is a (possibly
  fractional) second of the original YouTube video. mmaction2's rewrite gives the id as
  ``<ytid>_<start:06d>_<end:06d>`` (the clip's window in the YouTube video), the timestamp truncated to an int
  and person id -1; both spellings are read. 2-column ``video,ts`` rows mark keyframes without boxes.
* An id of exactly 11 characters is an AVA movie (start/end 900/1800); any other id is a Kinetics clip whose
  start and end are the last two ``_`` fields.
* Keyframe frame index: AVA ``(t - 900) * 30``; Kinetics clips ``30 * (t - start)`` (:func:`keyframe_frame_index`;
  mmaction2's ``AVAKineticsDataset`` reads ``img_{30(t-start)}`` with ``start_index=0``).
* Proposal keys: AVA ``"<id>,<ts:04d>"``; Kinetics ``"<ytid>,<int(ts):04d>"`` (:func:`proposal_key`).

The three format functions are those of :mod:`partwise.data.ava` with dataset ``"ava-kinetics"``; ``path`` is a
folder (AVA ``ava_*_v2.2.csv`` files and Kinetics ``kinetics_*_v1.0.csv`` files) or one CSV.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from partwise.data import ava
from partwise.errors import InputError, Problem

DATASET = "ava-kinetics"
_KINETICS_NAME = re.compile(r"^kinetics_(train|val|test)_v(\d+)\.(\d+)\.csv$")
_CLIP_ID = re.compile(r"^(?P<ytid>.+)_(?P<start>\d+)_(?P<end>\d+)$")


def parse_video_id(video_id: str) -> tuple[str, float, float]:
    """``(youtube_id, start, end)`` seconds of a video id: AVA ids (11 characters) span 900..1800; Kinetics
    clip ids ``<ytid>_<start:06d>_<end:06d>`` carry their window; a bare Kinetics YouTube id (the original
    ``kinetics_*.csv`` rows) has an unknown window, returned as ``(id, nan, nan)``."""
    if len(video_id) == ava.AVA_ID_LENGTH:
        return video_id, float(ava.AVA_TIMESTAMP_START), 1800.0
    found = _CLIP_ID.match(video_id)
    if found is None:
        return video_id, float("nan"), float("nan")
    return found.group("ytid"), float(found.group("start")), float(found.group("end"))


def clip_starts(videos: list[str]) -> np.ndarray:
    """(V,) float64 window start per distinct video id (900 for AVA, NaN when unknown)."""
    return np.array([parse_video_id(v)[1] for v in videos], np.float64)


def keyframe_frame_index(video_id: str, timestamp: float, fps: int = ava.AVA_FPS) -> int | None:
    """Frame number of a keyframe: AVA ids ``(t - 900) * 30``; Kinetics clips ``30 * (t - start)`` (mmaction2
    ``AVAKineticsDataset``: ``img_{30(t-start)}``); None when the clip window is unknown."""
    _, start, _ = parse_video_id(video_id)
    if np.isnan(start):
        return None
    return int(round((float(timestamp) - start) * fps))


def frame_indices(table: ava.AvaCsv, fps: int = ava.AVA_FPS) -> np.ndarray:
    """(N,) int64 keyframe frame index per row (:func:`keyframe_frame_index`, vectorized); -1 when unknown."""
    start = clip_starts(table.videos)[table.video_codes] if len(table) else np.empty(0)
    known = np.isfinite(start)
    out = np.full(len(table), -1, np.int64)
    out[known] = np.rint((table.timestamp[known] - start[known]) * fps).astype(np.int64)
    return out


def proposal_key(video_id: str, timestamp: float) -> str:
    """The dense-proposal dict key: ``"<id>,<ts:04d>"`` for AVA; ``"<ytid>,<int(ts):04d>"`` for Kinetics clips."""
    ytid = video_id if len(video_id) == ava.AVA_ID_LENGTH else parse_video_id(video_id)[0]
    return f"{ytid},{int(timestamp):04d}"


def annotation_files(folder: str | os.PathLike, split: str | None = None) -> list[Path]:
    """AVA v2.x and Kinetics v1.x CSVs of an AVA-Kinetics folder (newest version per split and source)."""
    folder = Path(folder)
    best: dict[tuple[str, str], tuple[tuple[int, int], Path]] = {}
    for entry in sorted(folder.iterdir()):
        for source, pattern in (("ava", ava._GT_NAME), ("kinetics", _KINETICS_NAME)):
            found = pattern.match(entry.name)
            if found and (split is None or found.group(1) == split):
                version = (int(found.group(2)), int(found.group(3)))
                key = (source, found.group(1))
                if key not in best or version > best[key][0]:
                    best[key] = (version, entry)
    if not best:
        raise InputError(str(folder), None, "no AVA-Kinetics annotation CSV (ava_*_v2.x.csv, kinetics_*_v1.x.csv) here")
    return [best[key][1] for key in sorted(best)]


def read_records(path: str | os.PathLike, *, split: str | None = None, progress: bool = False) -> pa.Table:
    """AVA-Kinetics annotations -> canonical person table, dataset ``"ava-kinetics"``.

    Rows are grouped into persons like :func:`partwise.data.ava.read_records` (identical boxes at one keyframe);
    ``frame_index`` follows :func:`keyframe_frame_index` (null when a Kinetics id carries no window);
    ``person_id`` is null for 7-column rows and for mmaction2's -1."""
    path = Path(path)
    files = annotation_files(path, split) if path.is_dir() else [path]
    iterator = files
    if progress:
        from partwise.progress import bar as tqdm
        iterator = tqdm(files, desc=DATASET, unit="file")
    tables = []
    for csv_path in iterator:
        table = ava.read_csv(csv_path, kind="gt" if _is_gt_name(csv_path) else "auto")
        per_row = table.kind == "det" or bool((table.action[table.n_columns >= 7] < 0).any())
        records = ava.table_to_records(table, dataset=DATASET, split=split or ava.split_from_name(csv_path.name),
                                       frame_index=frame_indices(table), per_row=per_row)
        frame = records.column("frame_index")
        records = records.set_column(records.schema.get_field_index("frame_index"), "frame_index",
                                     pc.if_else(pc.less(frame, 0), pa.scalar(None, pa.int64()), frame))
        tables.append(records)
    return pa.concat_tables(tables)


def _is_gt_name(path: Path) -> bool:
    return bool(ava._GT_NAME.match(path.name) or _KINETICS_NAME.match(path.name))


def validate(path: str | os.PathLike) -> list[Problem]:
    """Every problem in an AVA-Kinetics folder or CSV (field counts, numbers, boxes, action ids)."""
    path = Path(path)
    if not path.is_dir():
        return ava.validate_csv(path, kind="gt" if _is_gt_name(path) else "auto")
    try:
        files = annotation_files(path)
    except InputError as err:
        return [err.problem]
    problems: list[Problem] = []
    for csv_path in files:
        problems += ava.validate_csv(csv_path, kind="gt")
    return problems


def write_records(table: pa.Table, path: str | os.PathLike) -> None:
    """Canonical records -> AVA-Kinetics CSV(s), atomically: AVA ids as 8-column rows (``%04d`` timestamps,
    person id or -1), Kinetics clips as 7-column rows without person id (timestamps ``%d`` when integral, with
    their shortest decimals otherwise). ``path`` ending in ``.csv``: one file; otherwise a folder in mmaction2's
    merged layout, one ``ava_<split>_v2.2.csv`` per split holding both sources (:func:`read_records` reads it)."""
    path = Path(path)
    if path.suffix == ".csv":
        targets = [(path, table)]
    else:
        splits = [s or "train" for s in table.column("split").to_pylist()]
        targets = [(path / f"ava_{name}_v2.2.csv", table.filter(pa.array([s == name for s in splits], pa.bool_())))
                   for name in sorted(set(splits))]
    for out, part in targets:
        csv = ava.records_to_csv_table(part, str(out))
        is_ava = np.array([len(v) == ava.AVA_ID_LENGTH for v in csv.videos], bool)[csv.video_codes] \
            if len(csv) else np.zeros(0, bool)
        if csv.kind == "gt":
            csv.n_columns = np.where((csv.n_columns == 8) & ~is_ava, 7, csv.n_columns).astype(np.int8)
        ava.write_csv(csv, out)
