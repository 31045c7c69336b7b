"""HAKE instance-level JSON (HAKE-HICO-DET ``hico-det-training-set-instance-level.json``; HAKE-Large is the same).

Format: one JSON object keyed by image file name::

    {"HICO_train2015_00000001.jpg": {"dataset": "hico-det", "path_prefix": "hico_20160224_det/images/train2015",
      "labels": [{"hoi_id": 153, "human_bbox": [x1, y1, x2, y2], "object_bbox": [x1, y1, x2, y2],
                  "height": 480, "width": 640,
                  "action_labels": [{"human_part": 6, "partstate": 0}, ...]}, ...]}, ...}

* One ``labels`` entry per human-object pair (a person appears once per HOI); boxes in pixels; ``hoi_id`` is the
  1-based HICO HOI (``hico_hoi600``).
* ``human_part`` is one of the 10 HAKE body parts (``vocab.BODY_PARTS``); ``partstate`` is the 0-based local index
  within the merged PaSta part's ``pasta76`` list **excluding** no_interaction (``vocab.body_part_to_pasta_part``
  gives the merged part). ``action_labels`` may be absent or empty.

Row API (exact content): :func:`read_hake_instance` -> the parsed ``dict`` in file order; :func:`write_hake_instance`
writes it with ``json.dumps`` defaults (separators ``", "``/``": "``, no indent, ASCII escapes, no trailing newline).

Records: one per **distinct human box** of an image (boxes equal in all four pixel values), in order of first
appearance, with the union of its pairs' HOIs (``actions``, ``hico_hoi600``) and PaSta (``pasta76`` names), one
``objects`` entry per pair (box, ``class_id``/``class_name`` = the HOI's HICO object, ``action`` = ``hoi_id``), the
image size so both pixel and normalized boxes are filled, dataset ``"hake-instance"``, ``source`` =
``"<file>:<image>/labels/<first pair index>"``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa

from partwise import vocab
from partwise.data.hake_ava import split_from_name
from partwise.data.hake_image import find_json, is_int, load_json, read_keyed_json, write_compact_json
from partwise.data.records import RecordBuilder, conform
from partwise.errors import InputError, Problem

DATASET = "hake-instance"
PASTA_VOCAB = "pasta76"
ACTION_VOCAB = "hico_hoi600"
IMAGE_KEYS = ("dataset", "path_prefix", "labels")
LABEL_KEYS = ("hoi_id", "human_bbox", "object_bbox", "height", "width")
#: largest image side (the records' int32 width and height)
MAX_SIDE = 2**31 - 1


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_box(path: str, where: str, box: object) -> list[Problem]:
    if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
        return [Problem(path, where, "expected [x1, y1, x2, y2] in pixels")]
    if min(box) < 0:
        return [Problem(path, where, f"negative coordinate in {box}")]
    if box[2] < box[0] or box[3] < box[1]:
        return [Problem(path, where, f"box {box} has x2 < x1 or y2 < y1")]
    return []


def check_image(path: str, name: str, entry: object) -> list[Problem]:
    """Problems of one image entry (``where`` = ``"<image>/labels/<i>/<key>"``)."""
    if not isinstance(entry, dict):
        return [Problem(path, name, "image entry is not an object")]
    missing = [k for k in IMAGE_KEYS if k not in entry]
    if missing:
        return [Problem(path, name, f"missing keys {', '.join(missing)}")]
    labels = entry["labels"]
    if not isinstance(labels, list):
        return [Problem(path, f"{name}/labels", "not a list")]
    problems: list[Problem] = []
    hois = vocab.load(ACTION_VOCAB)
    sizes = vocab.load(PASTA_VOCAB).part_sizes
    for i, label in enumerate(labels):
        where = f"{name}/labels/{i}"
        if not isinstance(label, dict):
            problems.append(Problem(path, where, "label is not an object"))
            continue
        missing = [k for k in LABEL_KEYS if k not in label]
        if missing:
            problems.append(Problem(path, where, f"missing keys {', '.join(missing)}"))
            continue
        if not is_int(label["hoi_id"]) or label["hoi_id"] not in hois:
            problems.append(Problem(path, f"{where}/hoi_id", f"unknown HICO HOI id {label['hoi_id']!r} (expected 1..600)"))
        for key in ("height", "width"):
            if not is_int(label[key]) or label[key] <= 0:
                problems.append(Problem(path, f"{where}/{key}", f"not a positive integer: {label[key]!r}"))
            elif label[key] > MAX_SIDE:  # the record's width and height are int32
                problems.append(Problem(path, f"{where}/{key}", f"{label[key]} pixels is too large (at most {MAX_SIDE})"))
        problems.extend(_check_box(path, f"{where}/human_bbox", label["human_bbox"]))
        problems.extend(_check_box(path, f"{where}/object_bbox", label["object_bbox"]))
        parts = label.get("action_labels") or []
        if not isinstance(parts, list):
            problems.append(Problem(path, f"{where}/action_labels", "not a list"))
            continue
        for j, item in enumerate(parts):
            at = f"{where}/action_labels/{j}"
            if not isinstance(item, dict) or not is_int(item.get("human_part")) or not is_int(item.get("partstate")):
                problems.append(Problem(path, at, "expected {\"human_part\": int, \"partstate\": int}"))
                continue
            if not 0 <= item["human_part"] < len(vocab.BODY_PARTS):
                problems.append(Problem(path, f"{at}/human_part", f"body part {item['human_part']} not in 0..9"))
                continue
            p = vocab.PASTA_PARTS.index(vocab.body_part_to_pasta_part(item["human_part"]))
            if not 0 <= item["partstate"] < sizes[p] - 1:
                problems.append(Problem(path, f"{at}/partstate",
                                        f"{vocab.PASTA_PARTS[p]} state {item['partstate']} not in 0..{sizes[p] - 2}"))
    return problems


def read_hake_instance(path: str | os.PathLike) -> dict:
    """The instance-level JSON object, in file order (:class:`InputError` on the first problem)."""
    return read_keyed_json(path, check_image)


def format_hake_instance(data: dict) -> str:
    """JSON text as :func:`write_hake_instance` writes it."""
    return json.dumps(data)


def write_hake_instance(data: dict, path: str | os.PathLike) -> None:
    """Write the instance-level object (``json.dumps`` defaults), atomically."""
    write_compact_json(data, path)


def _file(path: str | os.PathLike) -> Path:
    return find_json(path, "instance-level")


def label_pasta_ids(label: dict) -> list[int]:
    """``pasta76`` ids of one pair's ``action_labels`` (body part -> merged part, local index -> id)."""
    pasta = vocab.load(PASTA_VOCAB)
    return [pasta.to_global(vocab.body_part_to_pasta_part(item["human_part"]), item["partstate"])
            for item in label.get("action_labels") or []]


def image_persons(name: str, entry: dict, source: str, split: str | None = None) -> list[dict]:
    """Record column dicts for the distinct human boxes of one image entry (see the module docstring)."""
    pasta = vocab.load(PASTA_VOCAB)
    objects80 = vocab.load("hico_objects80")
    hoi_rows = vocab.hico_hoi_table()
    persons: dict[tuple, dict] = {}
    for i, label in enumerate(entry["labels"]):
        box = tuple(float(v) for v in label["human_bbox"])
        width, height = label["width"], label["height"]
        person = persons.get(box)
        if person is None:
            person = persons[box] = {
                "dataset": DATASET, "split": split, "video_id": name, "width": width, "height": height,
                "px1": box[0], "py1": box[1], "px2": box[2], "py2": box[3],
                "x1": box[0] / width, "y1": box[1] / height, "x2": box[2] / width, "y2": box[3] / height,
                "actions": set(), "action_vocab": ACTION_VOCAB, "pasta": set(), "pasta_vocab": PASTA_VOCAB,
                "objects": [], "source": f"{source}:{name}/labels/{i}",
            }
        hoi = label["hoi_id"]
        person["actions"].add(hoi)
        person["pasta"].update(label_pasta_ids(label))
        object_id = hoi_rows[hoi - 1][2]
        ob = [float(v) for v in label["object_bbox"]]
        person["objects"].append({
            "class_name": objects80.name_of(object_id), "class_id": object_id, "action": hoi, "object_id": None,
            "px1": ob[0], "py1": ob[1], "px2": ob[2], "py2": ob[3],
            "x1": ob[0] / width, "y1": ob[1] / height, "x2": ob[2] / width, "y2": ob[3] / height,
        })
    out = []
    for person in persons.values():
        person["actions"] = sorted(person["actions"])
        person["pasta"] = [pasta.name_of(i) for i in sorted(person["pasta"])]
        out.append(person)
    return out


def read_records(path: str | os.PathLike, *, split: str | None = None, progress: bool = False) -> pa.Table:
    """One record per distinct human box per image of an instance-level JSON (or the one such file in a folder)."""
    file = _file(path)
    data = read_hake_instance(file)
    split = split or split_from_name(file)
    items = data.items()
    if progress:
        from partwise.progress import bar as tqdm

        items = tqdm(items, desc="hake-instance", unit="image")
    builder = RecordBuilder()
    for name, entry in items:
        for person in image_persons(name, entry, str(file), split):
            builder.append(**person)
    return builder.to_table()


def validate(path: str | os.PathLike) -> list[Problem]:
    """Every problem in the instance-level JSON (bad JSON stops at the first syntax error)."""
    try:
        file = _file(path)
        data = load_json(file)
    except InputError as exc:
        return [exc.problem]
    if not isinstance(data, dict):
        return [Problem(os.fspath(file), None, "top level is not an object keyed by image name")]
    problems = []
    for name, entry in data.items():
        problems.extend(check_image(os.fspath(file), name, entry))
    return problems


def _pixels(box: dict, width, height) -> list | None:
    if box.get("px1") is not None:
        values = [box["px1"], box["py1"], box["px2"], box["py2"]]
    elif box.get("x1") is not None and width and height:
        values = [box["x1"] * width, box["y1"] * height, box["x2"] * width, box["y2"] * height]
    else:
        return None
    return [int(v) if float(v).is_integer() else float(v) for v in values]


def records_to_object(table: pa.Table) -> dict:
    """The instance-level object from records: one ``labels`` entry per object of a person (``hoi_id`` = the
    object's ``action``), each carrying the person's whole PaSta (``pasta76`` by name, no_interaction dropped) as
    ``action_labels`` with ``human_part`` = the first body part of the merged part (right side). ``dataset`` and
    ``path_prefix`` are not record columns and are written as ``""``. Persons without objects, objects without an
    action, and records without a frame size are not written."""
    target = vocab.load(PASTA_VOCAB)
    out: dict = {}
    for rec in conform(table).to_pylist():
        width, height = rec["width"], rec["height"]
        human = _pixels(rec, width, height)
        if not rec["objects"] or human is None or not width or not height:
            continue
        action_labels = []
        for name in rec["pasta"] or []:
            name = name.replace("no interaction", "no_interaction")
            if not target.has_name(name):
                continue
            part, local = target.to_local(target.id_of(name))
            p = vocab.PASTA_PARTS.index(part)
            if local == target.part_sizes[p] - 1:
                continue  # no_interaction is implicit in this format
            action_labels.append({"human_part": vocab.PART_AGG_RULE[p][0], "partstate": local})
        entry = out.setdefault(rec["video_id"], {"dataset": "", "path_prefix": "", "labels": []})
        for obj in rec["objects"]:
            box = _pixels(obj, width, height)
            if obj["action"] is None or box is None:
                continue
            entry["labels"].append({"hoi_id": int(obj["action"]), "human_bbox": human, "object_bbox": box,
                                    "height": int(height), "width": int(width),
                                    "action_labels": [dict(a) for a in action_labels]})
    return out


def write_records(table: pa.Table, path: str | os.PathLike) -> None:
    """Write records as an instance-level JSON (``path`` ending in ``.json``, else
    ``<path>/hake-instance-level.json``)."""
    path = Path(path)
    if path.suffix != ".json":
        path = path / "hake-instance-level.json"
    write_hake_instance(records_to_object(table), path)
