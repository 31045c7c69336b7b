"""The official V-COCO release files (s-gupta/v-coco) and its detections pickle, read with the official rules.

Ground truth = three files, as ``vsrl_eval.VCOCOeval(vsrl_annot_file, coco_annot_file, split_file)`` takes them:

``vcoco_{train,val,trainval,test}.json``
    a list with one dict per action (26): ``action_name``, ``role_name`` (``["agent"]``, ``["agent", "obj"]``,
    ``["agent", "instr", "obj"]`` ...), ``include`` (object category names per role; not used for scoring) and
    the per-person columns ``image_id``, ``ann_id``, ``label`` (1 positive, 0 negative) and ``role_object_id``, a
    flat list of ``len(role_name) * N`` COCO annotation ids stored role-major (the official reshapes it to
    ``(len(role_name), N).T``): column 0 is the person's own ann_id, column j >= 1 the object of role j (0: none).
``instances_vcoco_all_2014.json``
    the COCO instances file restricted to V-COCO's images (``images`` with ``width``/``height``, ``annotations``
    with ``bbox`` [x, y, w, h], ``area``, ``iscrowd``, optional ``ignore``, ``categories``).
``vcoco_{split}.ids`` (optional)
    one COCO image id per line: the images evaluated, in this order. Without it, the sorted distinct image ids of
    the V-COCO json (the official asserts the two agree; partwise checks it when both are given).

Official ground-truth rules (``VCOCOeval._add_gt_annotations`` / ``_get_vsrl_data``), applied here:

* every COCO annotation of the image is visited in file order, crowd ones included; ``ignore == 1`` ones dropped;
* box ``[x, y, w, h]`` -> ``x2 = x + max(0, w - 1)``, ``y2 = y + max(0, h - 1)``, then each coordinate clipped to
  ``[0, width - 1]`` / ``[0, height - 1]``; the annotation is kept only when ``area > 0`` and ``x2 > x1`` and
  ``y2 > y1`` (zero-area segmentations and boxes of <= 1 px dropped); boxes are stored as float32;
* GT persons are the kept annotations of the *first* category of the ``categories`` list (COCO's person, the
  official's contiguous class 1);
* a person whose ann_id is not in the V-COCO json (first action's ``ann_id``) is *unannotated*: detections matched
  to it are skipped by the evaluation; annotated persons have action label 1 where ``label == 1``;
* a role object id of 0 means "no object for this role"; any other id must be a kept annotation of the same image
  (the official asserts; partwise raises :class:`~partwise.errors.InputError`).

:func:`read_official` returns partwise's V-COCO GT JSON structure (format: :mod:`partwise.eval.vcoco`), which
``partwise data convert vcoco-official DIR_OR_FILE vcoco OUT.json`` writes.

Detections: the official pickle (``pickle.dump`` of a list of dicts, one per detected person: ``image_id``,
``person_box`` [x1, y1, x2, y2], ``<action>_agent`` score and ``<action>_<role>`` = [x1, y1, x2, y2, score], usually
numpy arrays) is read with :mod:`partwise.data.safe_pickle`, which builds only containers and numpy arrays.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from partwise.data.id_list import read_id_list
from partwise.errors import InputError


def _load_json(path: Path) -> Any:
    from partwise.data.hico_det import _load_json as load

    return load(path)


def read_split_ids(path: str | os.PathLike) -> list[int]:
    """Image ids of a ``vcoco_*.ids`` file (one number per line, as ``np.loadtxt`` reads it)."""
    return read_id_list(path, "image id")


def _vcoco_actions(path: Path, data: Any) -> list[dict]:
    if not isinstance(data, list) or not data:
        raise InputError(path, None, "expected a list of per-action dicts")
    out = []
    for a, x in enumerate(data):
        keys = ("action_name", "role_name", "image_id", "ann_id", "label", "role_object_id")
        if not isinstance(x, dict) or any(k not in x for k in keys):
            raise InputError(path, f"[{a}]", f"expected an object with {', '.join(keys)}")
        roles = list(x["role_name"])
        n = len(x["ann_id"])
        if len(x["image_id"]) != n or len(x["label"]) != n or len(x["role_object_id"]) != n * len(roles):
            raise InputError(path, f"[{a}]", "image_id/ann_id/label/role_object_id lengths do not agree")
        if not roles or roles[0] != "agent" or len(roles) > 3:
            raise InputError(path, f"[{a}].role_name", f"expected ['agent', ...] with at most 2 roles, got {roles}")
        rid = np.asarray(x["role_object_id"], dtype=np.int64).reshape(len(roles), n).T
        out.append({"name": x["action_name"], "roles": tuple(roles[1:]), "image_id": np.asarray(x["image_id"]),
                    "ann_id": np.asarray(x["ann_id"], dtype=np.int64), "label": np.asarray(x["label"]),
                    "role_object_id": rid})
    return out


def _clean_box(bbox: Any, width: float, height: float) -> tuple[float, float, float, float]:
    x1, y1 = float(bbox[0]), float(bbox[1])
    x2 = x1 + max(0.0, float(bbox[2]) - 1.0)
    y2 = y1 + max(0.0, float(bbox[3]) - 1.0)
    x1, x2 = (min(width - 1.0, max(0.0, v)) for v in (x1, x2))
    y1, y2 = (min(height - 1.0, max(0.0, v)) for v in (y1, y2))
    return x1, y1, x2, y2


def read_official(vcoco_json: str | os.PathLike, instances_json: str | os.PathLike,
                  split_ids: str | os.PathLike | None = None) -> dict:
    """Partwise's V-COCO GT structure ``{"actions": [...], "images": [...]}`` from the official files, with the
    official ground-truth rules (module docstring)."""
    vpath, cpath = Path(vcoco_json), Path(instances_json)
    actions = _vcoco_actions(vpath, _load_json(vpath))
    coco = _load_json(cpath)
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list)
                                            for k in ("images", "annotations", "categories")):
        raise InputError(cpath, None, "expected a COCO instances file (images, annotations, categories)")
    if not coco["categories"]:
        raise InputError(cpath, "categories", "empty")
    person_cat = coco["categories"][0].get("id")
    vcoco_ids = sorted({int(v) for v in actions[0]["image_id"].tolist()})
    if split_ids is not None:
        image_ids = read_split_ids(split_ids)
        if sorted(set(image_ids)) != vcoco_ids:
            raise InputError(split_ids, None, f"the split's image ids differ from those of {vpath.name}")
    else:
        image_ids = vcoco_ids
    images = {}
    for k, im in enumerate(coco["images"]):
        if isinstance(im, dict) and "id" in im:
            images[int(im["id"])] = im
    anns_of: dict[int, list[tuple[int, dict]]] = {i: [] for i in image_ids}
    for k, ann in enumerate(coco["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann:
            raise InputError(cpath, f"annotations[{k}]", "expected an object with image_id")
        bucket = anns_of.get(int(ann["image_id"]))
        if bucket is not None:
            bucket.append((k, ann))
    annotated_ids = set(actions[0]["ann_id"].tolist())
    # ann_id -> (action index -> row) for positive labels
    positives: dict[int, dict[int, int]] = {}
    for a, act in enumerate(actions):
        for row in np.flatnonzero(act["label"] == 1):
            ann_id = int(act["ann_id"][row])
            if a in positives.setdefault(ann_id, {}):
                raise InputError(vpath, f"[{a}]", f"ann_id {ann_id} labelled twice for {act['name']}")
            positives[ann_id][a] = int(row)
    out_images = []
    for image_id in image_ids:
        im = images.get(image_id)
        if im is None:
            raise InputError(cpath, "images", f"image {image_id} of the split is missing")
        width, height = float(im["width"]), float(im["height"])
        kept: dict[int, tuple[dict, list[float]]] = {}
        order = []
        for k, ann in anns_of[image_id]:
            if ann.get("ignore") == 1:
                continue
            try:
                box = _clean_box(ann["bbox"], width, height)
                area = float(ann["area"])
            except (KeyError, TypeError, ValueError, IndexError):
                raise InputError(cpath, f"annotations[{k}]", "expected bbox [x, y, w, h] and area") from None
            x1, y1, x2, y2 = box
            if area > 0 and x2 > x1 and y2 > y1:
                f32 = [float(v) for v in np.asarray(box, dtype=np.float32)]
                kept[int(ann["id"])] = (ann, f32)
                order.append(int(ann["id"]))
        persons = []
        for ann_id in order:
            ann, box = kept[ann_id]
            if ann.get("category_id") != person_cat:
                continue
            if ann_id not in annotated_ids:
                persons.append({"box": box, "actions": None})
                continue
            acts = {}
            for a, row in sorted(positives.get(ann_id, {}).items()):
                act = actions[a]
                roles = {}
                for j, role in enumerate(act["roles"], 1):
                    rid = int(act["role_object_id"][row, j])
                    if rid == 0:
                        roles[role] = None
                        continue
                    if rid not in kept:
                        raise InputError(vpath, f"[{a}]", f"{act['name']}-{role} object {rid} of person {ann_id} "
                                                          f"is not a valid annotation of image {image_id}")
                    roles[role] = kept[rid][1]
                acts[act["name"]] = roles
            persons.append({"box": box, "actions": acts})
        out_images.append({"image_id": image_id, "persons": persons})
    return {"actions": [{"name": act["name"], "roles": list(act["roles"])} for act in actions],
            "images": out_images}


def find_official_files(path: str | os.PathLike, split: str | None = None) -> tuple[Path, Path, Path | None]:
    """(vcoco json, instances json, split ids or None) from a file or a release folder.

    ``path`` may be a ``vcoco_<split>.json`` (the instances file and ids are looked for beside it, in its parent
    and in ``../splits``) or the release's ``data`` folder (then ``split`` names the json: default ``test``).
    """
    path = Path(path)
    if path.is_dir():
        split = split or "test"
        candidates = [path / "vcoco" / f"vcoco_{split}.json", path / f"vcoco_{split}.json"]
        vjson = next((c for c in candidates if c.is_file()), None)
        if vjson is None:
            raise InputError(path, None, f"no vcoco/vcoco_{split}.json in this folder")
    elif path.is_file():
        vjson = path
        split = split or vjson.stem.replace("vcoco_", "")
    else:
        raise InputError(path, None, "no such file or directory")
    folders = [vjson.parent, vjson.parent.parent]
    inst = next((f / "instances_vcoco_all_2014.json" for f in folders
                 if (f / "instances_vcoco_all_2014.json").is_file()), None)
    if inst is None:
        raise InputError(vjson, None, "instances_vcoco_all_2014.json not found beside it or in its parent")
    ids = next((f / d / f"vcoco_{split}.ids" for f in folders for d in ("splits", ".")
                if (f / d / f"vcoco_{split}.ids").is_file()), None)
    return vjson, inst, ids


def convert(path: str | os.PathLike, out: str | os.PathLike, split: str | None = None) -> dict:
    """Write partwise's V-COCO GT JSON from the official files (``partwise data convert vcoco-official``)."""
    vjson, inst, ids = find_official_files(path, split)
    data = read_official(vjson, inst, ids)
    from partwise.io import atomic_write

    with atomic_write(out) as fh:
        fh.write(json.dumps(data))
    return data


def read_detections_pickle(path: str | os.PathLike) -> list[dict]:
    """The official detections pickle as a list of dicts with plain Python values (numpy arrays -> lists)."""
    from partwise.data import safe_pickle

    data = safe_pickle.load(path)
    if not isinstance(data, list):
        raise InputError(path, None, f"expected a list of detection dicts, got {type(data).__name__}")
    out = []
    for k, det in enumerate(data):
        if not isinstance(det, dict):
            raise InputError(path, f"[{k}]", "detection is not a dict")
        out.append({str(key): _plain(v) for key, v in det.items()})
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [float(v) for v in value.ravel()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
