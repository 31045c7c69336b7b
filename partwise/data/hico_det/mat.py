"""The ``.mat`` files of the HICO-DET release: ``anno_bbox.mat`` (boxes and HOIs per image, :func:`read_anno_bbox`,
:func:`write_anno_bbox`) and HICO's ``anno.mat`` (image-level labels, :func:`read_anno_labels`); layouts in
:mod:`partwise.data.hico_det`."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from partwise.data.hico_det.files import _loadmat, gc_paused
from partwise.errors import InputError, Problem
from partwise.io import atomic_write


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


_BOX_NAMES = ("x1", "y1", "x2", "y2")
_LIST_ACTION_FIELDS = ("nname", "vname", "vname_ing", "syn", "def", "synset", "add_def")


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
