"""HICO-DET detections: ho-rcnn's ``detections_XX.mat`` / ``detections.mat`` (:func:`read_detections_mat`,
:func:`write_detections_mat`) and iCAN/TIN-style prediction pickles (:func:`read_detections_pickle`), as flat
:class:`DetectionRows`."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from partwise.data.hico_det.classes import coco80_to_hico_object, object_hoi_range
from partwise.data.hico_det.files import _loadmat
from partwise.errors import InputError
from partwise.io import atomic_write


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
