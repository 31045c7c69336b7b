"""The evaluator's JSON files: ``{gt,pred}_part_result.json`` and ``{gt,pred}_vid_result.json``.

``*_part_result.json`` is ``{video: {"img_XXXXX.json": {"humans": [...]}}}``: ground truth holds one box and one
state per part (the per-frame layout); a prediction holds, per part, a list of boxes and a list of states of the
same length (or one box and one state, the 2022 evaluator's layout) and a ``box`` on every human.
``*_vid_result.json`` is ``{video: class name}``.
"""
from __future__ import annotations

import json
import os
from typing import Any

import pyarrow as pa

from partwise.data.kinetics_tps.checks import _box_problem, _is_number, frame_problems, load_frame, parse_frame_bytes
from partwise.data.kinetics_tps.columns import _columns_to_table, _empty_columns, _Malformed
from partwise.data.kinetics_tps.layout import DATASET, GT_STRIDE, frame_index, iter_videos
from partwise.data.kinetics_tps.tree import frames_from_records
from partwise.errors import InputError, Problem
from partwise.io import atomic_write


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
                cols.add_person(human.get("number"), vid, label, split, index, f"{source}:{vid}.{name}.humans[{i}]")
    try:
        table = _columns_to_table(cols, frame_sizes, fps)
    except _Malformed:
        raise InputError.from_problem(_first_box_problem(part_result, source)) from None
    if dataset != DATASET:
        table = table.set_column(0, "dataset", pa.array([dataset] * table.num_rows, pa.string()))
    return table
