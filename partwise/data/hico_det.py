"""HICO-DET annotations: ``anno_bbox.mat``, ``anno.mat`` and the PPDM/QPIC ``trainval_hico.json``/``test_hico.json``.

Three files are read and written at the format level (their full content, not just what canonical records hold):

``anno_bbox.mat`` (the HICO-DET release; :func:`read_anno_bbox`, :func:`write_anno_bbox`)
    ``bbox_train`` (1x38118) and ``bbox_test`` (1x9658) struct arrays with ``filename``, ``size`` (struct
    ``width``, ``height``, ``depth``) and ``hoi`` (struct array: ``id`` 1..600, ``bboxhuman`` and ``bboxobject``
    struct arrays with fields ``x1, x2, y1, y2`` -- that order, so they are addressed by name, never by position --
    ``connection`` Kx2 1-based (human index, object index) and ``invis``, 1 when the HOI is present but its boxes
    are not visible). ``list_action`` (600x1 struct: ``nname``, ``vname``, ``vname_ing``, ``syn``, ``def``,
    ``synset``, ``add_def``) is kept as-is. Coordinates are 1-based inclusive pixel indices.
``anno.mat`` (HICO image-level labels; :func:`read_anno_labels`)
    ``list_train``/``list_test`` file names and ``anno_train``/``anno_test`` (600 x images) with 1 positive,
    0 ambiguous, -1 negative and NaN unknown. Needed only by the Known-Object evaluation setting.
``trainval_hico.json`` / ``test_hico.json`` (PPDM/QPIC; :func:`read_hoi_json`, :func:`write_hoi_json`)
    a list of images ``{"file_name", "annotations": [{"bbox": [x1, y1, x2, y2], "category_id": COCO-91 id}],
    "hoi_annotation": [{"subject_id", "object_id", "category_id": verb 1..117}]}`` with optional ``img_id``,
    ``height``, ``width`` (and any further keys, kept). The boxes' convention is not documented by its authors;
    PPDM's evaluator adds 1 to predictions before comparing them with this file, so partwise treats these boxes
    like ``anno_bbox.mat``'s: 1-based inclusive pixel indices.

Object classes. The JSON uses COCO-91 category ids. They map to the 80 HICO objects (``hico_objects80``, alphabetical)
through the COCO category *names*: COCO-91 id -> COCO name (:data:`COCO91_NAMES`, the 80 COCO categories with their
91-id numbering) -> name with spaces as underscores -> ``hico_objects80`` id. :data:`COCO91_TO_HICO_OBJECT` is that
mapping computed from the two name lists; e.g. COCO 1 ``person`` -> HICO 50, COCO 5 ``airplane`` -> HICO 1, COCO 72
``tv`` -> HICO 76. The HOI id of (verb, object) comes from ``hico_hoi600`` (:func:`hoi_id_of`).

Canonical records (:func:`read_records`). One record per *distinct human box* (exact coordinates) per image: the
union of the HOIs it takes part in. ``actions`` = the sorted distinct HOI ids (``hico_hoi600``), ``objects`` = one
entry per (human, object, HOI) connection with the HICO object id and name, the HOI id as ``action`` and the index of
the distinct object box in the image as ``object_id``; ``person_id`` = the index of the distinct human box.
Pixel boxes are converted from 1-based inclusive indices to continuous 0-based coordinates: ``px1 = x1 - 1``,
``px2 = x2`` (likewise y), so a box covering pixels 1..10 becomes [0, 10]; normalized boxes divide by the image size
when known. ``dataset`` is ``"hico-det"``, ``split`` ``"train"`` or ``"test"`` (``bbox_train``/``bbox_test``; for
JSON from the file name: ``trainval_hico.json`` is the train split). HOIs flagged ``invis`` have no box and so no
record. :func:`write_records` inverts this (``x1 = px1 + 1``, ``x2 = px2``).
"""
from __future__ import annotations

import contextlib
import gc
import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa

from partwise.errors import InputError, Problem
from partwise.io import atomic_write

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
_BOX_NAMES = ("x1", "y1", "x2", "y2")


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


# ---------------------------------------------------------------------------------------------------------------------
# anno_bbox.mat

@dataclass
class HicoHoi:
    """One ``hoi`` entry of an image: ``id`` 1..600, ``humans``/``objects`` (H,4)/(O,4) float64 boxes as
    [x1, y1, x2, y2] 1-based inclusive, ``connection`` (K,2) int64 1-based (human, object), ``invis`` 0/1."""

    id: int
    humans: np.ndarray
    objects: np.ndarray
    connection: np.ndarray
    invis: int = 0


@dataclass
class HicoImage:
    """One element of ``bbox_train``/``bbox_test``."""

    filename: str
    width: int
    height: int
    depth: int = 3
    hois: list[HicoHoi] = field(default_factory=list)


@dataclass
class AnnoBbox:
    """The content of ``anno_bbox.mat``: ``train`` and ``test`` images (None when the variable is absent) and
    ``list_action``: a list of dicts with the 7 string fields per HOI (empty when absent)."""

    train: list[HicoImage] | None
    test: list[HicoImage] | None
    list_action: list[dict[str, str]] = field(default_factory=list)


_LIST_ACTION_FIELDS = ("nname", "vname", "vname_ing", "syn", "def", "synset", "add_def")


def _loadmat(path: Path, variables: Iterable[str] | None = None) -> dict:
    import scipy.io

    from partwise.io import present_file

    if not present_file(path):
        raise InputError(path, None, "no such file")
    try:
        with gc_paused():  # hundreds of thousands of small arrays
            return scipy.io.loadmat(str(path), squeeze_me=False, struct_as_record=True,
                                    variable_names=list(variables) if variables else None)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise InputError(path, None, f"not a readable MATLAB file ({type(exc).__name__}: {exc})") from None


def _flat(value: Any) -> np.ndarray:
    return np.asarray(value).reshape(-1, order="F")


def _scalar(value: Any) -> float:
    flat = _flat(value)
    if flat.size != 1:
        raise ValueError(f"expected one number, got {flat.size}")
    return float(flat[0])


def _string(value: Any) -> str:
    flat = _flat(value)
    if flat.size == 0:
        return ""
    if flat.dtype.kind in "US":
        return str(flat[0])
    return str(_flat(flat[0])[0]) if flat.dtype == object else str(flat[0])


def _item(value: Any) -> float:
    """The single number of a MATLAB 1x1 array (any dtype); ValueError otherwise."""
    try:
        return float(value.item())
    except (ValueError, AttributeError):
        return _scalar(value)


def _box_rows(struct: Any) -> list[tuple[float, float, float, float]]:
    """[(x1, y1, x2, y2), ...] from a struct array with fields x1, x2, y1, y2 addressed by name."""
    arr = _flat(struct)
    if arr.size == 0:
        return []
    names = arr.dtype.names or ()
    missing = [n for n in _BOX_NAMES if n not in names]
    if missing:
        raise ValueError(f"box struct lacks field(s) {', '.join(missing)}")
    return [(_item(r["x1"]), _item(r["y1"]), _item(r["x2"]), _item(r["y2"])) for r in arr]


def _boxes(struct: Any, where: str = "") -> np.ndarray:
    """(N,4) float64 [x1, y1, x2, y2] of a MATLAB box struct array."""
    return np.array(_box_rows(struct), dtype=np.float64).reshape(-1, 4)


def _parse_images(path: Path, var: str, value: Any, problems: list[Problem] | None) -> list[HicoImage]:
    """Images of one ``bbox_*`` variable; problems appended to ``problems`` or raised when it is None.
    Plain Python on the tiny per-HOI arrays: numpy calls on 1x1 arrays would dominate (150k HOIs in train)."""
    images: list[HicoImage] = []

    def report(where: str, reason: str) -> None:
        if problems is None:
            raise InputError(path, where, reason)
        problems.append(Problem(str(path), where, reason))

    arr = _flat(value)
    names = arr.dtype.names or ()
    for need in ("filename", "size", "hoi"):
        if need not in names:
            report(var, f"struct array lacks field {need!r}")
            return images
    for i, rec in enumerate(arr):
        where = f"{var}[{i + 1}]"
        try:
            filename = _string(rec["filename"])
            size = _flat(rec["size"])
            width = int(_item(size[0]["width"])) if size.size else 0
            height = int(_item(size[0]["height"])) if size.size else 0
            depth = int(_item(size[0]["depth"])) if size.size and "depth" in (size.dtype.names or ()) else 3
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            report(where, f"bad filename/size: {exc}")
            continue
        image = HicoImage(filename, width, height, depth)
        hoi_arr = _flat(rec["hoi"])
        has_invis = "invis" in (hoi_arr.dtype.names or ())
        for k, hrec in enumerate(hoi_arr):
            hwhere = f"{where}.hoi[{k + 1}]"
            try:
                hoi_id = _item(hrec["id"])
                humans = _box_rows(hrec["bboxhuman"])
                objects = _box_rows(hrec["bboxobject"])
                conn_arr = np.asarray(hrec["connection"], dtype=np.float64)
                conn = conn_arr.reshape(-1, 2).tolist() if conn_arr.size else []
                invis_arr = hrec["invis"] if has_invis else None
                invis = int(_item(invis_arr)) if invis_arr is not None and np.size(invis_arr) else 0
            except (ValueError, KeyError, TypeError) as exc:
                report(hwhere, str(exc))
                continue
            bad = _hoi_problems(hoi_id, humans, objects, conn, invis)
            for reason in bad:
                report(hwhere, reason)
            if bad:
                continue
            image.hois.append(HicoHoi(int(hoi_id), np.array(humans, dtype=np.float64).reshape(-1, 4),
                                      np.array(objects, dtype=np.float64).reshape(-1, 4),
                                      np.array(conn, dtype=np.int64).reshape(-1, 2), invis))
        images.append(image)
    return images


def _hoi_problems(hoi_id: float, humans: list[tuple], objects: list[tuple], conn: list[list[float]],
                  invis: int) -> list[str]:
    """Reasons one ``hoi`` entry is malformed (boxes as (x1, y1, x2, y2) tuples, connection as [h, o] rows)."""
    out = []
    if not (hoi_id == int(hoi_id) and 1 <= hoi_id <= 600):
        out.append(f"HOI id {hoi_id:g} outside 1..600")
    for name, boxes in (("bboxhuman", humans), ("bboxobject", objects)):
        if not all(math.isfinite(v) for box in boxes for v in box):
            out.append(f"{name}: non-finite coordinate")
        elif any(x2 < x1 or y2 < y1 for x1, y1, x2, y2 in boxes):
            out.append(f"{name}: x2 < x1 or y2 < y1")
    if conn:
        if not all(math.isfinite(v) and v == int(v) for row in conn for v in row):
            out.append("connection: not integer indices")
        elif any(not 1 <= h <= len(humans) for h, _ in conn):
            out.append(f"connection: human index outside 1..{len(humans)}")
        elif any(not 1 <= o <= len(objects) for _, o in conn):
            out.append(f"connection: object index outside 1..{len(objects)}")
    elif not invis and (humans or objects):
        out.append("visible HOI without connection")
    return out


def read_anno_bbox(path: str | os.PathLike, splits: Iterable[str] = ("train", "test")) -> AnnoBbox:
    """Read ``anno_bbox.mat``; ``splits`` limits which of ``bbox_train``/``bbox_test`` are parsed (faster)."""
    path = Path(path)
    splits = tuple(splits)
    wanted = [f"bbox_{s}" for s in splits] + ["list_action"]
    data = _loadmat(path, wanted)
    if not any(f"bbox_{s}" in data for s in splits):
        raise InputError(path, None, f"none of {', '.join(wanted[:-1])} in the file")
    result = AnnoBbox(None, None, _parse_list_action(data.get("list_action")))
    for split in splits:
        if f"bbox_{split}" in data:
            with gc_paused():
                setattr(result, split, _parse_images(path, f"bbox_{split}", data[f"bbox_{split}"], None))
    return result


def _parse_list_action(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    arr = _flat(value)
    names = [n for n in _LIST_ACTION_FIELDS if n in (arr.dtype.names or ())]
    return [{n: _string(rec[n]) for n in names} for rec in arr]


def _box_struct(boxes: np.ndarray) -> np.ndarray:
    out = np.empty((1, len(boxes)), dtype=[("x1", "O"), ("x2", "O"), ("y1", "O"), ("y2", "O")])
    for j, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        out[0, j] = (np.array([[x1]]), np.array([[x2]]), np.array([[y1]]), np.array([[y2]]))
    return out


def _images_struct(images: list[HicoImage]) -> np.ndarray:
    out = np.empty((1, len(images)), dtype=[("filename", "O"), ("size", "O"), ("hoi", "O")])
    size_dtype = [("width", "O"), ("height", "O"), ("depth", "O")]
    hoi_dtype = [("id", "O"), ("bboxhuman", "O"), ("bboxobject", "O"), ("connection", "O"), ("invis", "O")]
    for i, image in enumerate(images):
        size = np.empty((1, 1), dtype=size_dtype)
        size[0, 0] = (np.array([[float(image.width)]]), np.array([[float(image.height)]]),
                      np.array([[float(image.depth)]]))
        hois = np.empty((1, len(image.hois)), dtype=hoi_dtype)
        for k, h in enumerate(image.hois):
            conn = np.asarray(h.connection, dtype=np.float64).reshape(-1, 2)
            hois[0, k] = (np.array([[float(h.id)]]), _box_struct(h.humans), _box_struct(h.objects), conn,
                          np.array([[float(h.invis)]]))
        out[0, i] = (np.array([image.filename]), size, hois)
    return out


def write_anno_bbox(anno: AnnoBbox, path: str | os.PathLike) -> None:
    """Write ``anno_bbox.mat`` (MATLAB 5 format, readable by MATLAB and scipy) atomically."""
    import scipy.io

    variables: dict[str, Any] = {}
    if anno.train is not None:
        variables["bbox_train"] = _images_struct(anno.train)
    if anno.test is not None:
        variables["bbox_test"] = _images_struct(anno.test)
    if anno.list_action:
        names = [n for n in _LIST_ACTION_FIELDS if n in anno.list_action[0]]
        actions = np.empty((len(anno.list_action), 1), dtype=[(n, "O") for n in names])
        for i, entry in enumerate(anno.list_action):
            actions[i, 0] = tuple(np.array([entry.get(n, "")]) for n in names)
        variables["list_action"] = actions
    with atomic_write(path, "wb") as fh:
        scipy.io.savemat(fh, variables, do_compression=True, oned_as="column")


# ---------------------------------------------------------------------------------------------------------------------
# anno.mat

@dataclass
class AnnoLabels:
    """``anno.mat``: file name lists and the 600 x images label matrices (1, 0, -1, NaN)."""

    list_train: list[str]
    list_test: list[str]
    anno_train: np.ndarray
    anno_test: np.ndarray


def read_anno_labels(path: str | os.PathLike) -> AnnoLabels:
    """Read ``anno.mat`` (HICO classification labels, used for the Known-Object setting)."""
    path = Path(path)
    data = _loadmat(path, ["list_train", "list_test", "anno_train", "anno_test"])
    out = {}
    for key in ("list_train", "list_test"):
        out[key] = [_string(v) for v in _flat(data[key])] if key in data else []
    for key in ("anno_train", "anno_test"):
        arr = np.asarray(data.get(key, np.zeros((600, 0))), dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] != 600:
            raise InputError(path, key, f"expected a 600 x images matrix, got shape {arr.shape}")
        out[key] = arr
    for split in ("train", "test"):
        if out[f"anno_{split}"].shape[1] != len(out[f"list_{split}"]):
            raise InputError(path, f"anno_{split}", f"{out[f'anno_{split}'].shape[1]} columns but "
                             f"{len(out[f'list_{split}'])} names in list_{split}")
        values = out[f"anno_{split}"]
        finite = values[np.isfinite(values)]
        if not np.isin(finite, (-1.0, 0.0, 1.0)).all():
            raise InputError(path, f"anno_{split}", "labels must be 1, 0, -1 or NaN")
    return AnnoLabels(**out)


def write_anno_labels(labels: AnnoLabels, path: str | os.PathLike) -> None:
    """Write ``anno.mat`` with the four variables (used by tests and synthetic data)."""
    import scipy.io

    variables = {
        "list_train": np.array([[np.array([n])] for n in labels.list_train], dtype=object).reshape(-1, 1),
        "list_test": np.array([[np.array([n])] for n in labels.list_test], dtype=object).reshape(-1, 1),
        "anno_train": np.asarray(labels.anno_train, dtype=np.float64),
        "anno_test": np.asarray(labels.anno_test, dtype=np.float64),
    }
    with atomic_write(path, "wb") as fh:
        scipy.io.savemat(fh, variables, do_compression=True)


# ---------------------------------------------------------------------------------------------------------------------
# PPDM/QPIC JSON

@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of small containers (JSON parsing), which
    would otherwise rescan them all on every generation-2 pass; restores the previous state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load_json(path: Path) -> Any:
    from partwise.data import safe_json
    from partwise.io import present_file

    if not present_file(path):
        raise InputError(path, None, "no such file")
    data = safe_json.read_bytes(path)
    with gc_paused():
        return safe_json.loads(data, path, label="invalid JSON")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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
        if box.get("category_id") not in coco:
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
            obj = coco.get(boxes[hoi["object_id"]].get("category_id")) if isinstance(boxes[hoi["object_id"]], dict) else None
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


# ---------------------------------------------------------------------------------------------------------------------
# GT pairs for evaluation

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


# ---------------------------------------------------------------------------------------------------------------------
# canonical records

def _split_of_json(path: Path) -> str:
    name = path.name.lower()
    return "test" if "test" in name else "train" if "train" in name else name.split(".")[0]


def _sources(path: Path, split: str | None) -> list[tuple[Path, str]]:
    """(file, split) pairs to read for ``path`` (a folder or a file)."""
    from partwise.io import present_file

    if path.is_dir():
        mat = path / "anno_bbox.mat"
        if present_file(mat):
            return [(mat, s) for s in (("train", "test") if split is None else (split,))]
        found = [(p, _split_of_json(p)) for p in (path / "trainval_hico.json", path / "test_hico.json")
                 if present_file(p)]
        found = [(p, s) for p, s in found if split is None or s == split]
        if not found:
            raise InputError(path, None, "no anno_bbox.mat, trainval_hico.json or test_hico.json in the folder")
        return found
    if not present_file(path):
        raise InputError(path, None, "no such file or folder")
    if path.suffix.lower() == ".mat":
        return [(path, s) for s in (("train", "test") if split is None else (split,))]
    return [(path, split or _split_of_json(path))]


def _append_image(builder, *, filename: str, width: int | None, height: int | None, split: str, source: str,
                  pairs: list[tuple[tuple, tuple, int, int]]) -> None:
    """Records of one image from (human box, object box, hoi id, object id) connections, 1-based boxes."""
    names = _objects80().names
    _, _, object_of = _hoi_tables()
    humans: dict[tuple, int] = {}
    objects: dict[tuple, int] = {}
    per_human: dict[int, list] = {}
    for hbox, obox, hoi, _ in pairs:
        hid = humans.setdefault(hbox, len(humans))
        oid = objects.setdefault(obox, len(objects))
        per_human.setdefault(hid, []).append((obox, hoi, oid))
    w = width or None
    h = height or None
    for hbox, hid in humans.items():
        px = _pixel_box(hbox)
        objs = []
        for obox, hoi, oid in per_human[hid]:
            opx = _pixel_box(obox)
            obj = int(object_of[hoi])
            objs.append({"class_name": names[obj - 1], "class_id": obj, "action": int(hoi), "object_id": oid,
                         **opx, **_norm_box(opx, w, h)})
        builder.append(dataset=DATASET, split=split, video_id=filename, width=w, height=h, **px, **_norm_box(px, w, h),
                       person_id=hid, actions=sorted({o["action"] for o in objs}), action_vocab=ACTION_VOCAB,
                       objects=objs, source=source)


def _pixel_box(box: tuple) -> dict[str, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return {"px1": x1 - 1.0, "py1": y1 - 1.0, "px2": x2, "py2": y2}


def _norm_box(px: dict[str, float], width: int | None, height: int | None) -> dict[str, float | None]:
    if not width or not height:
        return {"x1": None, "y1": None, "x2": None, "y2": None}
    return {"x1": px["px1"] / width, "y1": px["py1"] / height, "x2": px["px2"] / width, "y2": px["py2"] / height}


def _iter_progress(items: list, progress: bool, desc: str) -> Iterator:
    if not progress:
        return iter(items)
    from partwise.progress import bar as tqdm

    return iter(tqdm(items, desc=desc, unit="img"))


def _has_variable(path: Path, name: str) -> bool:
    import scipy.io

    try:
        return any(entry[0] == name for entry in scipy.io.whosmat(str(path)))
    except Exception:
        return True  # let the reader report the problem


def read_records(path: str | os.PathLike, *, split: str | None = None, progress: bool = False) -> pa.Table:
    """Canonical person records of HICO-DET (see the module docstring). ``path``: the annotation folder
    (with ``anno_bbox.mat``, else the JSON files), ``anno_bbox.mat`` or one JSON file; ``split`` selects
    ``train``/``test``. Raises InputError on the first problem."""
    from partwise.data.records import RecordBuilder

    builder = RecordBuilder()
    path = Path(path)
    sources = _sources(path, split)
    for file in dict.fromkeys(f for f, _ in sources if f.suffix.lower() == ".mat"):
        # validate's rule: a .mat with neither split variable is an error, never 0 persons
        if split is None and not any(_has_variable(file, f"bbox_{s}") for s in ("train", "test")):
            raise InputError(file, None, "neither bbox_train nor bbox_test in the file")
    for file, file_split in sources:
        if file.suffix.lower() == ".mat":
            if split is None and not _has_variable(file, f"bbox_{file_split}"):
                continue  # a file with one of the two splits only
            images = getattr(read_anno_bbox(file, splits=(file_split,)), file_split)
            if images is None:
                raise InputError(file, f"bbox_{file_split}", "variable not in the file")
            for i, image in enumerate(_iter_progress(images, progress, f"bbox_{file_split}")):
                pairs = []
                for h in image.hois:
                    if h.invis:
                        continue
                    for hi, oi in np.asarray(h.connection, dtype=np.int64).reshape(-1, 2) - 1:
                        pairs.append((tuple(h.humans[hi]), tuple(h.objects[oi]), h.id, oi))
                _append_image(builder, filename=image.filename, width=image.width, height=image.height,
                              split=file_split, source=f"{file.name}:bbox_{file_split}[{i + 1}]", pairs=pairs)
        else:
            images = read_hoi_json(file)
            for i, image in enumerate(_iter_progress(images, progress, file.name)):
                boxes = image["annotations"]
                pairs = [(tuple(boxes[h["subject_id"]]["bbox"]), tuple(boxes[h["object_id"]]["bbox"]), hoi,
                          h["object_id"]) for h, hoi in zip(image.get("hoi_annotation", []), json_hoi_ids(image))]
                _append_image(builder, filename=image["file_name"], width=image.get("width"),
                              height=image.get("height"), split=file_split, source=f"{file.name}:[{i}]", pairs=pairs)
    return builder.to_table()


def validate(path: str | os.PathLike) -> list[Problem]:
    """Every problem of the HICO-DET annotation file(s) at ``path`` (folder, ``.mat`` or ``.json``)."""
    path = Path(path)
    problems: list[Problem] = []
    try:
        sources = _sources(path, None)
    except InputError as exc:
        return [exc.problem]
    seen: set[Path] = set()
    for file, _ in sources:
        if file in seen:
            continue
        seen.add(file)
        if file.suffix.lower() == ".mat":
            try:
                data = _loadmat(file, ["bbox_train", "bbox_test"])
            except InputError as exc:
                problems.append(exc.problem)
                continue
            if not any(k in data for k in ("bbox_train", "bbox_test")):
                problems.append(Problem(str(file), None, "neither bbox_train nor bbox_test in the file"))
            for var in ("bbox_train", "bbox_test"):
                if var in data:
                    _parse_images(file, var, data[var], problems)
        else:
            try:
                data = _load_json(file)
            except InputError as exc:
                problems.append(exc.problem)
                continue
            if not isinstance(data, list):
                problems.append(Problem(str(file), None, "expected a list of images"))
                continue
            for i, entry in enumerate(data):
                problems.extend(Problem(str(file), w, r) for w, r in _json_image_problems(entry, i))
    return problems


def _table_images(table: pa.Table) -> dict[str, dict[str, Any]]:
    """Group canonical rows by (split, image) into {key: {split, filename, width, height, pairs}}."""
    images: dict[tuple, dict[str, Any]] = {}
    for r, row in enumerate(table.select(["split", "video_id", "width", "height", "px1", "py1", "px2", "py2",
                                          "action_vocab", "objects"]).to_pylist()):
        if row["px1"] is None:
            raise InputError(None, f"row {r + 1}", "person box without pixel coordinates")
        key = (row["split"] or "test", row["video_id"])
        image = images.setdefault(key, {"split": key[0], "filename": key[1], "width": row["width"] or 0,
                                        "height": row["height"] or 0, "pairs": []})
        hbox = (row["px1"] + 1.0, row["py1"] + 1.0, row["px2"], row["py2"])
        for obj in row["objects"] or []:
            if row["action_vocab"] != ACTION_VOCAB or obj["action"] is None or not 1 <= obj["action"] <= 600:
                raise InputError(None, f"row {r + 1}", f"object action {obj['action']!r} is not a {ACTION_VOCAB} id")
            if obj["px1"] is None:
                raise InputError(None, f"row {r + 1}", "object box without pixel coordinates")
            obox = (obj["px1"] + 1.0, obj["py1"] + 1.0, obj["px2"], obj["py2"])
            image["pairs"].append((hbox, obox, int(obj["action"])))
    return images


def _as_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _image_to_json(image: dict[str, Any]) -> dict:
    coco_of = {hico: coco for coco, hico in _coco_to_hico().items()}
    _, verb_of, object_of = _hoi_tables()
    annotations: list[dict] = []
    index: dict[tuple, int] = {}

    def box_id(box: tuple, coco: int) -> int:
        key = (box, coco)
        if key not in index:
            index[key] = len(annotations)
            annotations.append({"bbox": [_as_number(v) for v in box], "category_id": coco})
        return index[key]

    hois = []
    for hbox, obox, hoi in image["pairs"]:
        sid = box_id(hbox, 1)
        oid = box_id(obox, coco_of[int(object_of[hoi])])
        hois.append({"subject_id": sid, "object_id": oid, "category_id": int(verb_of[hoi])})
    out = {"file_name": image["filename"]}
    if image["width"] and image["height"]:
        out["width"], out["height"] = image["width"], image["height"]
    out["annotations"] = annotations
    out["hoi_annotation"] = hois
    return out


def _image_to_mat(image: dict[str, Any]) -> HicoImage:
    by_hoi: dict[int, list] = {}
    for hbox, obox, hoi in image["pairs"]:
        by_hoi.setdefault(hoi, []).append((hbox, obox))
    hois = []
    for hoi, pairs in by_hoi.items():
        humans: dict[tuple, int] = {}
        objects: dict[tuple, int] = {}
        conn = [(humans.setdefault(h, len(humans)) + 1, objects.setdefault(o, len(objects)) + 1) for h, o in pairs]
        hois.append(HicoHoi(hoi, np.array(list(humans), dtype=np.float64).reshape(-1, 4),
                            np.array(list(objects), dtype=np.float64).reshape(-1, 4),
                            np.array(conn, dtype=np.int64).reshape(-1, 2), 0))
    return HicoImage(image["filename"], int(image["width"]), int(image["height"]), 3, hois)


def write_records(table: pa.Table, path: str | os.PathLike) -> None:
    """Write canonical records as HICO-DET annotations (atomic). ``path`` ending in ``.mat``: ``anno_bbox.mat``
    with ``bbox_train``/``bbox_test`` from the ``split`` column (no ``list_action``); ending in ``.json``: one
    PPDM/QPIC file with every row; otherwise a folder receiving ``trainval_hico.json`` (train) and
    ``test_hico.json`` (test). Requires ``hico_hoi600`` actions on the objects; person records without objects
    (no HOI) cannot be represented and are dropped."""
    path = Path(path)
    images = _table_images(table)
    if path.suffix.lower() == ".mat":
        split_images: dict[str, list[HicoImage]] = {}
        for image in images.values():
            if image["split"] not in ("train", "test"):
                raise InputError(None, "split", f"anno_bbox.mat holds train and test only, got {image['split']!r}")
            split_images.setdefault(image["split"], []).append(_image_to_mat(image))
        write_anno_bbox(AnnoBbox(split_images.get("train"), split_images.get("test")), path)
        return
    if path.suffix.lower() == ".json":
        write_hoi_json([_image_to_json(im) for im in images.values()], path)
        return
    other = sorted({im["split"] for im in images.values()} - {"train", "test"})
    if other:
        raise InputError(None, "split", f"the JSON folder layout holds train and test only, got {other[0]!r}; "
                         "write one .json file instead")
    path.mkdir(parents=True, exist_ok=True)
    for split, name in (("train", "trainval_hico.json"), ("test", "test_hico.json")):
        chosen = [_image_to_json(im) for im in images.values() if im["split"] == split]
        if chosen:
            write_hoi_json(chosen, path / name)


# ---------------------------------------------------------------------------------------------------------------------
# detections: ho-rcnn's detections_XX.mat / detections.mat, iCAN/TIN-style prediction pickles

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


@dataclass
class DetectionRows:
    """Flat detections: ``image`` (N,) 0-based column of ``all_boxes`` / image index, ``hoi`` (N,) 1..600,
    ``boxes`` (N,8) float64 [hx1 hy1 hx2 hy2 ox1 oy1 ox2 oy2] as stored, ``score`` (N,) float64. Row order: per
    class, image (column) order, then row order within the cell."""

    image: np.ndarray
    hoi: np.ndarray
    boxes: np.ndarray
    score: np.ndarray


def _cells_to_rows(path: Path, cells: Any, hois: np.ndarray, n_images: int | None) -> list[tuple]:
    arr = np.asarray(cells, dtype=object)
    if arr.ndim != 2 or arr.shape[0] != len(hois):
        raise InputError(path, "all_boxes", f"expected a {len(hois)} x images cell array, got shape {arr.shape}")
    if n_images is not None and arr.shape[1] != n_images:
        raise InputError(path, "all_boxes", f"{arr.shape[1]} image columns, the GT has {n_images} images")
    out = []
    for r, hoi in enumerate(hois):
        for j in range(arr.shape[1]):
            cell = np.asarray(arr[r, j], dtype=np.float64) if arr[r, j] is not None else np.zeros((0, 9))
            if cell.size == 0:
                continue
            if cell.ndim != 2 or cell.shape[1] != 9:
                raise InputError(path, f"all_boxes{{{r + 1},{j + 1}}}", f"expected an N x 9 matrix, got {cell.shape}")
            out.append((j, int(hoi), cell))
    return out


def _rows_result(rows: list[tuple]) -> DetectionRows:
    if not rows:
        return DetectionRows(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 8)), np.zeros(0))
    image = np.concatenate([np.full(len(c), j, dtype=np.int64) for j, _, c in rows])
    hoi = np.concatenate([np.full(len(c), h, dtype=np.int64) for _, h, c in rows])
    cells = np.vstack([c for _, _, c in rows])
    return DetectionRows(image, hoi, cells[:, :8].copy(), cells[:, 8].copy())


def read_detections_mat(path: str | os.PathLike, n_images: int | None = None) -> DetectionRows:
    """ho-rcnn detections: a folder of ``detections_XX.mat`` (XX = COCO class 01..80; ``all_boxes`` = one row per
    HOI of that object, in HOI id order, x one column per test image), one such file (only its object's HOIs), or
    ``detections.mat`` (``all_boxes`` 600 x images). Each cell: N x 9 [hx1 hy1 hx2 hy2 ox1 oy1 ox2 oy2 score],
    0-based coordinates as ho-rcnn's ``eval_one.m`` expects them."""
    import re

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("detections_[0-9][0-9].mat"))
        if not files:
            if (path / "detections.mat").is_file():
                return read_detections_mat(path / "detections.mat", n_images)
            raise InputError(path, None, "no detections_XX.mat or detections.mat in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise InputError(path, None, "no such file or directory")
    coco_to_hico = coco80_to_hico_object()
    rows: list[tuple] = []
    for f in files:
        data = _loadmat(f, ["all_boxes"])
        if "all_boxes" not in data:
            raise InputError(f, "all_boxes", "variable not in the file")
        m = re.fullmatch(r"detections_(\d\d)\.mat", f.name)
        if m:
            k = int(m.group(1))
            if not 1 <= k <= 80:
                raise InputError(f, None, "object number outside 01..80")
            hois = object_hoi_range(int(coco_to_hico[k]))
        else:
            hois = np.arange(1, 601)
        rows.extend(_cells_to_rows(f, data["all_boxes"], hois, n_images))
    rows.sort(key=lambda t: t[1])  # class order (stable: image order within a class)
    return _rows_result(rows)


def write_detections_mat(det: DetectionRows, n_images: int, path: str | os.PathLike, *,
                         per_object: bool = True) -> list[Path]:
    """Write ``det`` as ho-rcnn's ``detections_XX.mat`` files into folder ``path`` (``per_object``) or as one
    ``detections.mat`` file ``path``. Cells keep the rows' order per (class, image)."""
    import scipy.io

    path = Path(path)
    order = np.lexsort((np.arange(len(det.hoi)), det.image, det.hoi))
    cells_of: dict[tuple[int, int], list[int]] = {}
    for k in order:
        cells_of.setdefault((int(det.hoi[k]), int(det.image[k])), []).append(int(k))
    full = np.hstack([det.boxes, det.score[:, None]]) if len(det.hoi) else np.zeros((0, 9))

    def cell_array(hois: np.ndarray) -> np.ndarray:
        arr = np.empty((len(hois), n_images), dtype=object)
        for r, hoi in enumerate(hois):
            for j in range(n_images):
                idx = cells_of.get((int(hoi), j))
                arr[r, j] = full[idx] if idx else np.zeros((0, 9))
        return arr

    written = []
    if per_object:
        path.mkdir(parents=True, exist_ok=True)
        coco_to_hico = coco80_to_hico_object()
        for k in range(1, 81):
            out = path / f"detections_{k:02d}.mat"
            with atomic_write(out, "wb") as fh:
                scipy.io.savemat(fh, {"all_boxes": cell_array(object_hoi_range(int(coco_to_hico[k])))})
            written.append(out)
    else:
        with atomic_write(path, "wb") as fh:
            scipy.io.savemat(fh, {"all_boxes": cell_array(np.arange(1, 601))})
        written.append(path)
    return written


def read_detections_pickle(path: str | os.PathLike, image_names: list[str], *,
                           score_mode: str = "product") -> DetectionRows:
    """iCAN/TIN-style per-image HOI predictions (``pickle.dump`` of ``{image_id: [entry, ...]}``), read with the
    restricted unpickler. ``entry`` = [human box (4), object box (4), object class (COCO order 1..80), HOI scores
    (600), human score, object score, ...further fields ignored]. Each entry gives one detection per HOI of its
    object (the other HOIs are not scored), as iCAN's ``Generate_HICO_detection.py`` builds them:
    ``score_mode="product"``: ``scores[hoi] * human score * object score`` (iCAN); ``"hoi"``: ``scores[hoi]``.
    ``image_id``: the number in the file name (``1`` -> ``HICO_test2015_00000001.jpg``) or the file name. Boxes
    as stored (0-based). The per-class top-19,999 cut of those scripts is not applied."""
    from partwise.data import safe_pickle

    if score_mode not in ("product", "hoi"):
        raise ValueError(f"unknown score mode {score_mode!r}")
    path = Path(path)
    data = safe_pickle.load(path)
    if not isinstance(data, dict):
        raise InputError(path, None, f"expected a dict image_id -> list of predictions, got {type(data).__name__}")
    index_of = {name: i for i, name in enumerate(image_names)}
    coco_to_hico = coco80_to_hico_object()
    ranges = {k: object_hoi_range(int(coco_to_hico[k])) for k in range(1, 81)}
    img_parts, hoi_parts, box_parts, score_parts = [], [], [], []
    for key, entries in data.items():
        where = f"[{key!r}]"
        name = key if isinstance(key, str) else None
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            name = f"HICO_test2015_{int(key):08d}.jpg"
        elif isinstance(key, str) and key.isdigit() and key not in index_of:
            name = f"HICO_test2015_{int(key):08d}.jpg"
        if name not in index_of:
            raise InputError(path, where, f"unknown image {key!r} (not in the GT image list)")
        j = index_of[name]
        if not isinstance(entries, (list, tuple)):
            raise InputError(path, where, "expected a list of predictions")
        for e, entry in enumerate(entries):
            try:
                hb = np.asarray(entry[0], dtype=np.float64).reshape(4)
                ob = np.asarray(entry[1], dtype=np.float64).reshape(4)
                obj = int(np.asarray(entry[2]).reshape(-1)[0])
                scores = np.asarray(entry[3], dtype=np.float64).reshape(-1)
                hs = float(np.asarray(entry[4]).reshape(-1)[0])
                os_ = float(np.asarray(entry[5]).reshape(-1)[0])
            except (TypeError, ValueError, IndexError):
                raise InputError(path, f"{where}[{e}]", "expected [human box, object box, object class, "
                                                       "600 HOI scores, human score, object score, ...]") from None
            if not 1 <= obj <= 80:
                raise InputError(path, f"{where}[{e}][2]", f"object class {obj} outside 1..80 (COCO order)")
            if scores.size != 600:
                raise InputError(path, f"{where}[{e}][3]", f"expected 600 HOI scores, got {scores.size}")
            hois = ranges[obj]
            s = scores[hois - 1] * (hs * os_ if score_mode == "product" else 1.0)
            img_parts.append(np.full(len(hois), j, dtype=np.int64))
            hoi_parts.append(hois)
            box_parts.append(np.tile(np.concatenate([hb, ob]), (len(hois), 1)))
            score_parts.append(s)
    if not hoi_parts:
        return _rows_result([])
    image, hoi = np.concatenate(img_parts), np.concatenate(hoi_parts)
    order = np.lexsort((np.arange(len(hoi)), image, hoi))  # class, image, then file order
    return DetectionRows(image[order], hoi[order], np.vstack(box_parts)[order], np.concatenate(score_parts)[order])
