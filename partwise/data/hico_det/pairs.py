"""Ground-truth human-object pairs for evaluation, from ``anno_bbox.mat`` or the JSON (:func:`read_gt_pairs`),
and the per-HOI training counts that split HICO-DET's classes into rare and non-rare (:func:`training_counts`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from partwise.data.hico_det.files import _loadmat, gc_paused
from partwise.data.hico_det.hoi_json import json_hoi_ids, read_hoi_json
from partwise.data.hico_det.mat import HicoImage, _flat, _item, read_anno_bbox
from partwise.errors import InputError


@dataclass
class GtPairs:
    """Ground-truth human-object pairs of one split, for evaluation.

    ``images``: the file names in split order (index = the image index used below; MATLAB's ``list_test`` order);
    ``image`` (M,) int64 0-based image index; ``hoi`` (M,) int64 1..600; ``boxes`` (M,8) float64
    [hx1 hy1 hx2 hy2 ox1 oy1 ox2 oy2] in the file's coordinates (1-based inclusive). Duplicates are kept.
    """

    images: list[str]
    image: np.ndarray
    hoi: np.ndarray
    boxes: np.ndarray


def pairs_from_images(images: list[HicoImage]) -> GtPairs:
    """One pair per connection of every visible HOI (``invis`` skipped), as ho-rcnn's evaluation builds them."""
    img, hoi, rows = [], [], []
    for i, image in enumerate(images):
        for h in image.hois:
            if h.invis or not len(h.connection):
                continue
            conn = np.asarray(h.connection, dtype=np.int64) - 1
            rows.append(np.hstack([h.humans[conn[:, 0]], h.objects[conn[:, 1]]]))
            img.extend([i] * len(conn))
            hoi.extend([h.id] * len(conn))
    boxes = np.vstack(rows) if rows else np.zeros((0, 8))
    return GtPairs([im.filename for im in images], np.asarray(img, dtype=np.int64), np.asarray(hoi, dtype=np.int64),
                   boxes.astype(np.float64))


def pairs_from_json(images: list[dict]) -> GtPairs:
    """One pair per ``hoi_annotation`` entry (validated images from :func:`read_hoi_json`)."""
    img, hoi, rows = [], [], []
    for i, image in enumerate(images):
        boxes = image["annotations"]
        for h, hoi_id in zip(image.get("hoi_annotation", []), json_hoi_ids(image)):
            rows.append(list(boxes[h["subject_id"]]["bbox"]) + list(boxes[h["object_id"]]["bbox"]))
            img.append(i)
            hoi.append(hoi_id)
    return GtPairs([im["file_name"] for im in images], np.asarray(img, dtype=np.int64),
                   np.asarray(hoi, dtype=np.int64), np.asarray(rows, dtype=np.float64).reshape(-1, 8))


def read_gt_pairs(path: str | os.PathLike, split: str = "test") -> GtPairs:
    """GT pairs of ``split`` from ``anno_bbox.mat`` (``bbox_<split>``) or a PPDM/QPIC JSON file."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        anno = read_anno_bbox(path, splits=(split,))
        images = getattr(anno, split)
        if images is None:
            raise InputError(path, f"bbox_{split}", "variable not in the file")
        return pairs_from_images(images)
    return pairs_from_json(read_hoi_json(path))


def training_counts(path: str | os.PathLike) -> np.ndarray:
    """(601,) int64 number of training instances per HOI id (index 0 unused): connections of visible HOIs in
    ``bbox_train`` of ``anno_bbox.mat`` (ho-rcnn's rule), or ``hoi_annotation`` entries of a train JSON."""
    path = Path(path)
    if path.suffix.lower() != ".mat":
        return np.bincount(pairs_from_json(read_hoi_json(path)).hoi, minlength=601)[:601].astype(np.int64)
    data = _loadmat(path, ["bbox_train"])
    if "bbox_train" not in data:
        raise InputError(path, "bbox_train", "variable not in the file")
    counts = np.zeros(601, dtype=np.int64)
    # only id, invis and the number of connections matter: skip the boxes (most of the parsing time)
    with gc_paused():
        for i, rec in enumerate(_flat(data["bbox_train"])):
            hois = _flat(rec["hoi"])
            has_invis = "invis" in (hois.dtype.names or ())
            for k, hrec in enumerate(hois):
                try:
                    hoi_id = _item(hrec["id"])
                    invis = has_invis and np.size(hrec["invis"]) and _item(hrec["invis"])
                except (ValueError, TypeError) as exc:
                    raise InputError(path, f"bbox_train[{i + 1}].hoi[{k + 1}]", str(exc)) from None
                if not (hoi_id == int(hoi_id) and 1 <= hoi_id <= 600):
                    raise InputError(path, f"bbox_train[{i + 1}].hoi[{k + 1}]", f"HOI id {hoi_id:g} outside 1..600")
                if not invis:
                    counts[int(hoi_id)] += np.size(hrec["connection"]) // 2
    return counts
