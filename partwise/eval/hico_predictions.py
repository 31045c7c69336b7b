"""Reading HICO-DET predictions for :mod:`partwise.eval.hico`: JSON, Parquet, ho-rcnn ``detections_XX.mat`` and
iCAN/TIN pickles (the formats are described there) into :class:`Pairs`, every bad value named by file, image and
key; and writing them back as ``detections_XX.mat``.
"""
from __future__ import annotations

import itertools
import json
import operator
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from partwise.errors import InputError

N_HOI = 600


@dataclass
class Pairs:
    """Human-object pairs as arrays: ``image`` (N,) int64 0-based image index, ``cls`` (N,) int64 0-based class,
    ``boxes`` (N,8) float64 [hx1 hy1 hx2 hy2 ox1 oy1 ox2 oy2], ``score`` (N,) float64 (None for GT)."""

    image: np.ndarray
    cls: np.ndarray
    boxes: np.ndarray
    score: np.ndarray | None = None

    def take(self, index: np.ndarray) -> "Pairs":
        return Pairs(self.image[index], self.cls[index], self.boxes[index],
                     None if self.score is None else self.score[index])

    def __len__(self) -> int:
        return len(self.image)


def _error_where(image_key: str, j: int | None, key: str | None) -> str:
    where = image_key
    if j is not None:
        where += f"[{j}]"
    if key:
        where += f".{key}"
    return where


def _resolve_image(path: Path, where: str, value: Any, index_of: dict[str, int], n_images: int) -> int:
    if isinstance(value, bool):
        raise InputError(path, where, f"bad image {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit() and value not in index_of):
        k = int(value)
        if not 1 <= k <= n_images:
            raise InputError(path, where, f"image index {k} outside 1..{n_images}")
        return k - 1
    if isinstance(value, str) and value in index_of:
        return index_of[value]
    raise InputError(path, where, f"unknown image {value!r} (not in the GT image list)")


_DET_KEYS = operator.itemgetter("hoi", "human_box", "object_box", "score")
_PAIR_KEYS = operator.itemgetter("human_box", "object_box", "score")


def _det_rows(path: Path, image_key: str, dets: Any, vo_lookup: dict | None) -> list[tuple]:
    """(hoi, human box, object box, score) per detection of one image (without ``hoi`` when ``vo_lookup`` is
    None: class-agnostic pairs); InputError at the bad key."""
    if not isinstance(dets, list):
        raise InputError(path, image_key, "detections must be a list")
    try:
        return list(map(_DET_KEYS if vo_lookup is not None else _PAIR_KEYS, dets))
    except (KeyError, TypeError):
        pass
    rows = []
    for j, d in enumerate(dets):
        if not isinstance(d, dict):
            raise InputError(path, _error_where(image_key, j, None), "detection is not an object")
        for key in ("human_box", "object_box", "score"):
            if key not in d:
                raise InputError(path, _error_where(image_key, j, key), "missing")
        if vo_lookup is None:
            rows.append((d["human_box"], d["object_box"], d["score"]))
            continue
        if "hoi" in d:
            hoi = d["hoi"]
        elif "verb" in d and "object" in d:
            try:
                hoi = vo_lookup.get((d["verb"], d["object"]), -1)
            except TypeError:  # unhashable values
                hoi = -1
        else:
            raise InputError(path, _error_where(image_key, j, "hoi"), "missing (give hoi, or verb and object)")
        rows.append((hoi, d["human_box"], d["object_box"], d["score"]))
    return rows


def read_predictions_json(path: str | os.PathLike, image_names: list[str], *, with_class: bool = True,
                          strict: bool = True) -> Pairs:
    """Predictions from a JSON file (format: module docstring); rows keep the file's order. ``cls`` = HOI id - 1,
    boxes as in the file."""
    from partwise.data.hico_det import gc_paused

    # a million small dicts and lists: the cyclic GC would rescan them all repeatedly (2-3x slower)
    with gc_paused():
        return _read_predictions_json(Path(path), image_names, with_class, strict)


def _read_predictions_json(path: Path, image_names: list[str], with_class: bool, strict: bool = True) -> Pairs:
    from partwise.data.hico_det import _hoi_tables, _load_json

    data = _load_json(path)
    if isinstance(data, dict):
        entries = [(f"[{json.dumps(k)}]", f"[{json.dumps(k)}]", k, v) for k, v in data.items()]
    elif isinstance(data, list):
        entries = []
        for i, e in enumerate(data):
            if not isinstance(e, dict) or "image" not in e or "detections" not in e:
                raise InputError(path, f"[{i}]", "expected an object with 'image' and 'detections'")
            entries.append((f"[{i}].image", f"[{i}].detections", e["image"], e["detections"]))
    else:
        raise InputError(path, None, "expected a list of images or a dict image -> detections")
    index_of = {name: i for i, name in enumerate(image_names)}
    vo_lookup = _hoi_tables()[0] if with_class else None
    rows: list[tuple] = []
    counts = np.zeros(len(entries), dtype=np.int64)
    image_index = np.zeros(len(entries), dtype=np.int64)
    for e, (image_where, dets_where, image_value, dets) in enumerate(entries):
        image_index[e] = _resolve_image(path, image_where, image_value, index_of, len(image_names))
        image_rows = _det_rows(path, dets_where, dets, vo_lookup)
        counts[e] = len(image_rows)
        rows.extend(image_rows)
    del data
    locate = _Locator([w for _, w, _, _ in entries], counts)
    n = len(rows)
    if with_class:
        hoi, hb, ob, sc = (list(col) for col in zip(*rows)) if n else ([], [], [], [])
    else:
        hb, ob, sc = (list(col) for col in zip(*rows)) if n else ([], [], [])
        hoi = [1] * n
    del rows
    hoi_arr = _numeric(path, locate, "hoi", hoi, integer=True)
    _locate_bad(path, locate, "hoi", (hoi_arr < 1) | (hoi_arr > N_HOI),
                "unknown HOI class (hoi outside 1..600, or verb/object not one of the 600 HOIs)")
    h_arr = _boxes(path, locate, "human_box", hb)
    o_arr = _boxes(path, locate, "object_box", ob)
    s_arr = _numeric(path, locate, "score", sc, integer=False)
    return _finish(path, locate, np.repeat(image_index, counts), hoi_arr, h_arr, o_arr, s_arr, strict)


class _Locator:
    """Maps a flat detection index back to its key path (image entry, position) without a per-row table."""

    def __init__(self, image_keys: list[str], counts: np.ndarray):
        self.image_keys = image_keys
        self.starts = np.cumsum(counts) - counts

    def __call__(self, k: int, column: str | None = None) -> str:
        # the last entry starting at or before k; empty entries share their start with the next one
        e = int(np.searchsorted(self.starts, k, side="right") - 1)
        return _error_where(self.image_keys[e], int(k - self.starts[e]), column)


def _locate_bad(path: Path, locate: _Locator, column: str, bad: np.ndarray, reason: str) -> None:
    if bad.any():
        raise InputError(path, locate(int(np.flatnonzero(bad)[0]), column), reason)


def _numeric(path: Path, locate: _Locator, column: str, values: list, *, integer: bool) -> np.ndarray:
    """(N,) int64 or float64 from JSON scalars; InputError naming the first bad entry otherwise."""
    try:
        arr = np.array(values)
        if arr.ndim == 1 and (arr.dtype.kind == "i" if integer else arr.dtype.kind in "if"):
            return arr.astype(np.int64 if integer else np.float64)
    except (ValueError, TypeError, OverflowError):
        pass
    if not values:
        return np.zeros(0, dtype=np.int64 if integer else np.float64)
    for k, v in enumerate(values):
        ok = type(v) is int if integer else (_is_number(v) or v is None)
        if not ok:
            expected = "an integer" if integer else "a number"
            raise InputError(path, locate(k, column), f"expected {expected}, got {v!r}")
    if not integer:  # None (JSON null) scores
        k = next(k for k, v in enumerate(values) if v is None)
        raise InputError(path, locate(k, column), "expected a number, got null")
    raise InputError(path, column, "malformed values")


def _boxes(path: Path, locate: _Locator, column: str, values: list) -> np.ndarray:
    """(N,4) float64 from JSON lists of 4 numbers; InputError naming the first bad entry otherwise."""
    n = len(values)
    try:
        if all(len(v) == 4 for v in values) and all(type(v) is list for v in values):
            flat = np.fromiter(itertools.chain.from_iterable(values), dtype=np.float64, count=4 * n)
            return flat.reshape(n, 4)
    except (ValueError, TypeError):
        pass
    for k, v in enumerate(values):
        if not (isinstance(v, list) and len(v) == 4 and all(_is_number(x) for x in v)):
            raise InputError(path, locate(k, column), f"expected a list of 4 numbers, got {v!r}")
    raise InputError(path, column, "malformed boxes")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finish(path: Path, locate: _Locator, img: np.ndarray, hoi: np.ndarray, hb: np.ndarray, ob: np.ndarray,
            score: np.ndarray, strict: bool = True) -> Pairs:
    if strict:
        _locate_bad(path, locate, "score", ~np.isfinite(score), "score is NaN or infinite")
    for column, box in (("human_box", hb), ("object_box", ob)):
        _locate_bad(path, locate, column, ~np.isfinite(box).all(axis=1), "non-finite coordinate")
        if strict:
            _locate_bad(path, locate, column, (box[:, 2] < box[:, 0]) | (box[:, 3] < box[:, 1]),
                        "x2 < x1 or y2 < y1")
    boxes = np.hstack([hb, ob]) if len(hoi) else np.zeros((0, 8))
    return Pairs(img, hoi - 1, boxes, score)


PARQUET_COLUMNS = ("image", "hoi_id", "hx1", "hy1", "hx2", "hy2", "ox1", "oy1", "ox2", "oy2", "score")


def read_predictions_parquet(path: str | os.PathLike, image_names: list[str], *, with_class: bool = True,
                             strict: bool = True) -> Pairs:
    """Predictions from Parquet (columns in :data:`PARQUET_COLUMNS`; ``hoi_id`` not needed without class);
    InputError names the column and row."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "no such file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(path, None, f"not a readable Parquet file ({exc})") from None
    needed = PARQUET_COLUMNS if with_class else tuple(c for c in PARQUET_COLUMNS if c != "hoi_id")
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise InputError(path, f"column {missing[0]}", f"missing (need {', '.join(PARQUET_COLUMNS)})")
    n = table.num_rows
    for column in needed:
        nulls = table.column(column).null_count
        if nulls:
            row = int(np.flatnonzero(table.column(column).is_null().to_numpy(zero_copy_only=False))[0])
            raise InputError(path, f"row {row + 1}.{column}", "null value")
    image_col = table.column("image")
    if pa.types.is_integer(image_col.type):
        idx = image_col.to_numpy().astype(np.int64) - 1
        bad = (idx < 0) | (idx >= len(image_names))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(path, f"row {row + 1}.image", f"image index {idx[row] + 1} outside 1..{len(image_names)}")
    elif pa.types.is_string(image_col.type) or pa.types.is_large_string(image_col.type):
        idx_arr = pc.index_in(image_col, value_set=pa.array(image_names, type=image_col.type))
        if idx_arr.null_count:
            row = int(np.flatnonzero(idx_arr.is_null().to_numpy(zero_copy_only=False))[0])
            raise InputError(path, f"row {row + 1}.image", f"unknown image {image_col[row].as_py()!r}")
        idx = idx_arr.to_numpy().astype(np.int64)
    else:
        raise InputError(path, "column image", f"must be string or integer, got {image_col.type}")
    hoi_col = table.column("hoi_id") if with_class else pa.array(np.ones(n, dtype=np.int64))
    if not pa.types.is_integer(hoi_col.type):
        raise InputError(path, "column hoi_id", f"must be integer, got {hoi_col.type}")
    hoi = hoi_col.to_numpy().astype(np.int64)
    bad = (hoi < 1) | (hoi > N_HOI)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(path, f"row {row + 1}.hoi_id", f"unknown HOI class {hoi[row]} (outside 1..600)")
    numeric = []
    for column in PARQUET_COLUMNS[2:]:
        col = table.column(column)
        if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
            raise InputError(path, f"column {column}", f"must be numeric, got {col.type}")
        numeric.append(col.to_numpy().astype(np.float64))
    boxes = np.stack(numeric[:8], axis=1) if n else np.zeros((0, 8))
    return _finish_rows(path, idx, hoi, boxes, numeric[8], strict)


def _finish_rows(path: Path, img: np.ndarray, hoi: np.ndarray, boxes: np.ndarray, score: np.ndarray,
                 strict: bool = True) -> Pairs:
    checks = (("score", ~np.isfinite(score) if strict else np.zeros(len(score), bool), "score is NaN or infinite"),
              ("hx1..hy2", ~np.isfinite(boxes[:, :4]).all(axis=1), "non-finite coordinate"),
              ("ox1..oy2", ~np.isfinite(boxes[:, 4:]).all(axis=1), "non-finite coordinate"))
    if strict:
        checks += (("hx1..hy2", (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]), "x2 < x1 or y2 < y1"),
                   ("ox1..oy2", (boxes[:, 6] < boxes[:, 4]) | (boxes[:, 7] < boxes[:, 5]), "x2 < x1 or y2 < y1"))
    for column, bad, reason in checks:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(path, f"row {row + 1}.{column}", reason)
    return Pairs(img, hoi - 1, boxes, score)


def read_predictions(path: str | os.PathLike, image_names: list[str], *, with_class: bool = True,
                     strict: bool = True, score_mode: str = "product") -> Pairs:
    """Predictions from ``.parquet``, JSON, ho-rcnn ``detections_XX.mat`` / ``detections.mat`` (a ``.mat`` file or
    a folder of them) or an iCAN/TIN-style ``.pkl`` (by suffix), in file order. ``strict=False`` (the official
    profile) accepts what ho-rcnn's evaluation scores: NaN/infinite scores and boxes with x2 < x1 or y2 < y1."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return read_predictions_parquet(path, image_names, with_class=with_class, strict=strict)
    if suffix in (".mat", ".pkl", ".pickle") or path.is_dir():
        from partwise.data import hico_det

        if suffix in (".pkl", ".pickle"):
            rows = hico_det.read_detections_pickle(path, image_names, score_mode=score_mode)
        else:
            rows = hico_det.read_detections_mat(path, len(image_names))
        return _finish_rows(path, rows.image, rows.hoi, rows.boxes, rows.score, strict)
    return read_predictions_json(path, image_names, with_class=with_class, strict=strict)


def write_detections_mat(det: Pairs, n_images: int, path: str | os.PathLike, *, per_object: bool = True) -> list:
    """Write predictions (0-based boxes, as read) as ho-rcnn's ``detections_XX.mat`` files into folder ``path``
    (or one ``detections.mat`` when not ``per_object``); reading them back gives the same evaluation."""
    from partwise.data import hico_det

    score = det.score if det.score is not None else np.zeros(len(det))
    rows = hico_det.DetectionRows(det.image, det.cls + 1, det.boxes, score)
    return hico_det.write_detections_mat(rows, n_images, path, per_object=per_object)
