"""HICO-DET's object and HOI classes: COCO-91 ids (the PPDM/QPIC JSON's) -> the 80 HICO objects through the
category names, (verb, object) <-> HOI id (``hico_hoi600``), and the COCO-order classes of the detection files."""
from __future__ import annotations

from functools import lru_cache

import numpy as np


#: The 80 COCO categories with their COCO-91 ids (the ids the PPDM/QPIC JSON stores).
COCO91_NAMES: dict[int, str] = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train", 8: "truck", 9: "boat",
    10: "traffic light", 11: "fire hydrant", 13: "stop sign", 14: "parking meter", 15: "bench", 16: "bird", 17: "cat",
    18: "dog", 19: "horse", 20: "sheep", 21: "cow", 22: "elephant", 23: "bear", 24: "zebra", 25: "giraffe",
    27: "backpack", 28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase", 34: "frisbee", 35: "skis",
    36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat", 40: "baseball glove", 41: "skateboard",
    42: "surfboard", 43: "tennis racket", 44: "bottle", 46: "wine glass", 47: "cup", 48: "fork", 49: "knife",
    50: "spoon", 51: "bowl", 52: "banana", 53: "apple", 54: "sandwich", 55: "orange", 56: "broccoli", 57: "carrot",
    58: "hot dog", 59: "pizza", 60: "donut", 61: "cake", 62: "chair", 63: "couch", 64: "potted plant", 65: "bed",
    67: "dining table", 70: "toilet", 72: "tv", 73: "laptop", 74: "mouse", 75: "remote", 76: "keyboard",
    77: "cell phone", 78: "microwave", 79: "oven", 80: "toaster", 81: "sink", 82: "refrigerator", 84: "book",
    85: "clock", 86: "vase", 87: "scissors", 88: "teddy bear", 89: "hair drier", 90: "toothbrush",
}

DATASET = "hico-det"
ACTION_VOCAB = "hico_hoi600"


def _objects80():
    from partwise import vocab

    return vocab.load("hico_objects80")


@lru_cache(maxsize=None)
def _coco_to_hico() -> dict[int, int]:
    """COCO-91 category id -> ``hico_objects80`` id (1..80), derived from the category names."""
    objects = _objects80()
    return {coco: objects.id_of(name.replace(" ", "_")) for coco, name in COCO91_NAMES.items()}


#: COCO-91 id -> HICO object id (1..80), e.g. 1 (person) -> 50, 5 (airplane) -> 1.
COCO91_TO_HICO_OBJECT: dict[int, int] = dict(_coco_to_hico())


@lru_cache(maxsize=None)
def _hoi_tables() -> tuple[dict[tuple[int, int], int], np.ndarray, np.ndarray]:
    """``(verb, object) -> hoi`` and the arrays ``verb_of[hoi]``, ``object_of[hoi]`` (index 0 unused)."""
    from partwise import vocab

    table = vocab.hico_hoi_table()
    verb_of = np.zeros(len(table) + 1, dtype=np.int64)
    object_of = np.zeros(len(table) + 1, dtype=np.int64)
    lookup = {}
    for hoi, verb, obj in table:
        lookup[(verb, obj)] = hoi
        verb_of[hoi], object_of[hoi] = verb, obj
    return lookup, verb_of, object_of


def hoi_id_of(verb: int, obj: int) -> int | None:
    """The ``hico_hoi600`` id of (``hico_verbs117`` id, ``hico_objects80`` id); None for an invalid combination."""
    return _hoi_tables()[0].get((int(verb), int(obj)))


def hoi_verb_object() -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``verb_of``, ``object_of`` of length 601 indexed by HOI id (index 0 unused)."""
    _, verb_of, object_of = _hoi_tables()
    return verb_of.copy(), object_of.copy()


def coco80_to_hico_object() -> np.ndarray:
    """(81,) int64: COCO contiguous class 1..80 (COCO order, as ``detections_XX.mat``'s XX and iCAN's object class)
    -> HICO object id 1..80 (alphabetical); index 0 unused."""
    out = np.zeros(81, dtype=np.int64)
    out[1:] = [COCO91_TO_HICO_OBJECT[c] for c in sorted(COCO91_NAMES)]
    return out


def object_hoi_range(hico_object: int) -> np.ndarray:
    """The HOI ids (ascending) whose object is ``hico_object``: the rows of that object's ``all_boxes``."""
    _, object_of = hoi_verb_object()
    return np.flatnonzero(object_of == hico_object)
