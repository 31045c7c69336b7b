"""The PPDM/QPIC ``trainval_hico.json`` / ``test_hico.json`` (:func:`read_hoi_json`, :func:`write_hoi_json`),
validated entry by entry with one-line errors naming the file and the image index."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from partwise.data.hico_det.classes import _coco_to_hico, hoi_id_of
from partwise.data.hico_det.files import _load_json
from partwise.errors import InputError
from partwise.io import atomic_write


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _coco_category(box: Any, coco: dict[int, int]) -> int | None:
    """The HICO object of an annotation's ``category_id``; None when it is no COCO id (a list or an object
    included: they cannot even be looked up)."""
    category = box.get("category_id") if isinstance(box, dict) else None
    try:
        return coco.get(category)
    except TypeError:
        return None


def _json_image_problems(entry: Any, i: int) -> list[tuple[str, str]]:
    """(key path, reason) for every problem of one image entry."""
    where = f"[{i}]"
    if not isinstance(entry, dict):
        return [(where, "image entry is not an object")]
    out = []
    if not isinstance(entry.get("file_name"), str):
        out.append((f"{where}.file_name", "missing or not a string"))
    for key in ("width", "height"):
        value = entry.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 31):
            out.append((f"{where}.{key}", f"{value!r} is not a size in pixels (an integer 0..2^31-1)"))
    boxes = entry.get("annotations")
    if not isinstance(boxes, list):
        return out + [(f"{where}.annotations", "missing or not a list")]
    coco = _coco_to_hico()
    for j, box in enumerate(boxes):
        bw = f"{where}.annotations[{j}]"
        if not isinstance(box, dict):
            out.append((bw, "not an object"))
            continue
        bbox = box.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox)):
            out.append((f"{bw}.bbox", "expected 4 finite numbers"))
        elif bbox[2] < bbox[0] or bbox[3] < bbox[1]:
            out.append((f"{bw}.bbox", "x2 < x1 or y2 < y1"))
        if _coco_category(box, coco) is None:
            out.append((f"{bw}.category_id", f"unknown COCO category id {box.get('category_id')!r}"))
    hois = entry.get("hoi_annotation", [])
    if not isinstance(hois, list):
        return out + [(f"{where}.hoi_annotation", "not a list")]
    for j, hoi in enumerate(hois):
        hw = f"{where}.hoi_annotation[{j}]"
        if not isinstance(hoi, dict):
            out.append((hw, "not an object"))
            continue
        ok = True
        for key in ("subject_id", "object_id"):
            value = hoi.get(key)
            if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(boxes)):
                out.append((f"{hw}.{key}", f"{value!r} is not an index into annotations (0..{len(boxes) - 1})"))
                ok = False
        verb = hoi.get("category_id")
        if not (isinstance(verb, int) and 1 <= verb <= 117):
            out.append((f"{hw}.category_id", f"verb id {verb!r} outside 1..117"))
        elif ok:
            obj = _coco_category(boxes[hoi["object_id"]], coco)
            if obj is not None and hoi_id_of(verb, obj) is None:
                out.append((hw, f"verb {verb} with object {obj} is not one of the 600 HOIs"))
    return out


def read_hoi_json(path: str | os.PathLike) -> list[dict]:
    """The image list of ``trainval_hico.json``/``test_hico.json``, checked; InputError names the key path."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, list):
        raise InputError(path, None, "expected a list of images")
    for i, entry in enumerate(data):
        problems = _json_image_problems(entry, i)
        if problems:
            raise InputError(path, *problems[0])
    return data


def write_hoi_json(images: list[dict], path: str | os.PathLike) -> None:
    """Write a PPDM/QPIC image list atomically (compact, like the distributed files)."""
    with atomic_write(path, "w") as fh:
        json.dump(images, fh, separators=(",", ":"))


def json_hoi_ids(image: dict) -> list[int]:
    """HOI ids (1..600) of an image entry's ``hoi_annotation``, in order."""
    coco = _coco_to_hico()
    boxes = image["annotations"]
    return [hoi_id_of(h["category_id"], coco[boxes[h["object_id"]]["category_id"]]) for h in image.get("hoi_annotation", [])]
