"""The Kinetics-TPS tree as nested dicts, and records -> tree.

:func:`read_tree` / :func:`write_tree` keep every file as is (frames without humans, unknown keys);
:func:`write_records` writes canonical records as a tree (records have no row for a frame without humans, so a
tree -> records -> tree round trip drops those frames).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from partwise.data.kinetics_tps.checks import load_frame
from partwise.data.kinetics_tps.layout import ANNOTATION_SUFFIX, LIST_FILES, frame_index, frame_name, iter_videos
from partwise.data.kinetics_tps.lists import write_name_list
from partwise.errors import InputError
from partwise.io import atomic_dir


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
