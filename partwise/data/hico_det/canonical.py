"""HICO-DET <-> canonical records (:func:`read_records`, :func:`write_records`, :func:`validate`): one record per
distinct human box per image, the rules in :mod:`partwise.data.hico_det`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from partwise.data.hico_det.classes import ACTION_VOCAB, DATASET, _coco_to_hico, _hoi_tables, _objects80
from partwise.data.hico_det.files import _load_json, _loadmat
from partwise.data.hico_det.hoi_json import _json_image_problems, json_hoi_ids, read_hoi_json, write_hoi_json
from partwise.data.hico_det.mat import AnnoBbox, HicoHoi, HicoImage, _parse_images, read_anno_bbox, write_anno_bbox
from partwise.errors import InputError, Problem


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
