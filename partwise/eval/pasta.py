"""PaSta and verb instance AP as HAKE-Activity2Vec reports it (``tools/benchmark.py``, hake.md section 3.5).

Protocol, per class (each of the 93 PaSta classes and each of the 157 verbs):

* detections (person boxes with a score for every class) are ranked by that class's score, highest first; every
  detection is ranked for every class, score 0 included. Ties keep a fixed order: the detection that comes
  **later** in the input ranks first (a stable ascending sort, reversed; the original reverses numpy's default
  ``argsort``, which gives this order whenever that sort keeps ties in input order, e.g. on small inputs);
* a detection is a hit when its IoU with a ground-truth human box of the same image that has the label and is not
  yet matched is **strictly greater** than 0.3; among several such boxes it takes the one with the highest IoU (the
  first one in ground-truth order on equal IoU), which is then matched. Anything else is a false positive
  (including detections in images without ground truth, and a second detection of an already matched person);
* AP is the VOC **11-point** AP: the mean over recall thresholds 0, 0.1, ..., 1 of the highest precision at a
  recall >= the threshold (0 when no point reaches it); recall = hits / number of ground-truth boxes with the label.

IoU convention: continuous coordinates, **no +1 pixel** -- area = (x2 - x1) * (y2 - y1). The original benchmark
computes areas that way (hake.md gives no +1 for this protocol); boxes of zero union get IoU 0.

Classes without any ground-truth box get AP NaN and are left out of every mean (``nanmean``, as the original);
classes with ground truth but no hit (or no detections at all) get AP 0. Summaries, all NaN-skipping means:
part mAP = mean over that part's classes with and without its last class (no_interaction); PaSta mAP = mean of the
six part mAPs (headline ``mAP`` = with no_interaction, like Activity2Vec's "PaSta avg"); verb mAP over the 157 verbs
and over the first 117 (HICO) verbs, each also without index 57 (no_interaction).

Stages: :func:`match_detections` (hits per detection and class, vectorized over all classes and images at once:
one numpy pass per within-image rank) -> :func:`accumulate` (precision/recall per class) -> :func:`ap_11point` ->
:func:`summarize`. :func:`evaluate` runs them on in-memory :class:`Detections` and :class:`GroundTruth`.

Inputs of the CLI (``partwise eval pasta PRED --gt GT``):

* predictions: Parquet or JSON Lines with columns ``image`` (image file name, as the GT keys it), ``box``
  ``[x1, y1, x2, y2]`` in pixels, ``pasta`` (93 scores, ``pasta93`` order) and/or ``verb`` (157 scores,
  ``verbs157`` order);
* ground truth: a HAKE instance-level JSON (``hake_instance`` format), or a Parquet records table
  (:data:`~partwise.data.records.PERSON_SCHEMA`) whose ``pasta_vocab`` is ``pasta93`` or ``pasta76`` (converted to
  93 by name) and whose ``actions`` are ``hico_hoi600`` (-> verb of the HOI), ``hico_verbs117`` or ``verbs157`` ids.
  The instance-level JSON never lists no_interaction; by default a ground-truth person whose part has no state gets
  that part's no_interaction class (``--no-fill-no-interaction`` turns this off). Activity2Vec's own ground-truth
  files are not public, so this default is an assumption (every no_interaction class then has ground truth).
"""
from __future__ import annotations

import argparse
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from partwise import vocab
from partwise.errors import InputError
from partwise.eval.report import EvalResult

N_PASTA = 93
N_VERBS = 157
N_HICO_VERBS = 117
NO_INTERACTION_VERB = 57
IOU_THRESHOLD = 0.3
#: recall thresholds of the 11-point AP; k / 10 is the same float as the literal 0.k
RECALL_POINTS = np.arange(11) / 10


@dataclass
class Detections:
    """``N`` scored person boxes: ``image`` (N,) names, ``boxes`` (N, 4) pixels x1, y1, x2, y2, ``pasta`` (N, 93)
    and ``verb`` (N, 157) scores (either may be ``None``)."""

    image: np.ndarray
    boxes: np.ndarray
    pasta: np.ndarray | None = None
    verb: np.ndarray | None = None


@dataclass
class GroundTruth:
    """``M`` ground-truth persons: ``image`` (M,), ``boxes`` (M, 4) pixels, ``pasta`` (M, 93) and ``verb`` (M, 157)
    boolean label matrices."""

    image: np.ndarray
    boxes: np.ndarray
    pasta: np.ndarray
    verb: np.ndarray


# --------------------------------------------------------------------------------------------------------------
# match

def box_iou_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of row-aligned boxes ``a`` (P, 4) and ``b`` (P, 4), continuous coordinates (no +1); 0 for empty unions."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def descending_order(scores: np.ndarray) -> np.ndarray:
    """(K, N) detection indices per class (rows), highest score first; ties: later detection first.

    ``scores`` is (N, K); sorting runs on the contiguous transpose (row-wise sorts are much faster than strided)."""
    by_class = np.ascontiguousarray(np.asarray(scores, dtype=np.float64).T)
    return np.ascontiguousarray(np.argsort(by_class, axis=1, kind="stable")[:, ::-1])


def _expand(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For runs ``starts[i] .. starts[i] + counts[i] - 1``: (owner i of each element, element index), no Python loop."""
    owner = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return owner, np.repeat(starts - first, counts) + np.arange(int(counts.sum()))


def same_image_pairs(det_image: np.ndarray, gt_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (detection, ground truth) index pairs of the same image, as two (P,) arrays (GT in input order)."""
    names, codes = np.unique(np.concatenate([det_image, gt_image]).astype(str), return_inverse=True)
    det_code, gt_code = codes[:len(det_image)], codes[len(det_image):]
    gt_sorted = np.argsort(gt_code, kind="stable")
    counts = np.bincount(gt_code, minlength=len(names))
    starts = np.cumsum(counts) - counts
    owner, position = _expand(starts[det_code], counts[det_code])
    return owner, gt_sorted[position]


def match_detections(det_image: np.ndarray, det_boxes: np.ndarray, scores: np.ndarray, gt_image: np.ndarray,
                     gt_boxes: np.ndarray, gt_labels: np.ndarray, threshold: float = IOU_THRESHOLD,
                     order: np.ndarray | None = None) -> np.ndarray:
    """Hits (N, K) bool: ``hits[j, k]`` when detection ``j`` matches a ground-truth box for class ``k``.

    ``scores`` (N, K), ``gt_labels`` (M, K) bool, ``order`` (K, N) = :func:`descending_order` (computed when
    omitted). Greedy in rank order per (class, image), see the module docstring.
    All classes and images advance together: round ``r`` settles the ``r``-th ranked candidate detection of every
    (class, image) group, so the loop runs as many times as the largest number of candidate detections in a group.
    """
    n, k_classes = scores.shape
    hits = np.zeros((n, k_classes), dtype=bool)
    if n == 0 or len(gt_image) == 0:
        return hits
    if order is None:
        order = descending_order(scores)
    rank = np.empty((k_classes, n), dtype=np.int32)  # rank[k, j] = position of detection j in class k's ranking
    rank[np.arange(k_classes)[:, None], order] = np.arange(n, dtype=np.int32)[None, :]
    det_idx, gt_idx = same_image_pairs(det_image, gt_image)
    iou = box_iou_pairs(det_boxes[det_idx], gt_boxes[gt_idx])
    keep = iou > threshold
    det_idx, gt_idx, iou = det_idx[keep], gt_idx[keep], iou[keep]
    # one candidate per (pair, label of the pair's GT box); "entry" = a (GT box, class) label
    entry_gt, entry_class = np.nonzero(gt_labels)
    per_gt = np.bincount(entry_gt, minlength=len(gt_image))
    entry_start = np.cumsum(per_gt) - per_gt
    pair, entry = _expand(entry_start[gt_idx], per_gt[gt_idx])
    cand_det, cand_gt, cand_iou = det_idx[pair], gt_idx[pair], iou[pair]
    cand_class = entry_class[entry]
    if len(cand_det) == 0:
        return hits
    _, image_code = np.unique(det_image.astype(str), return_inverse=True)
    # units = distinct (class, detection); their round = rank among the units of the same (class, image)
    unit_key = cand_class * n + cand_det
    units, cand_unit = np.unique(unit_key, return_inverse=True)
    unit_class, unit_det = units // n, units % n
    unit_image = image_code[unit_det]
    order = np.lexsort((rank[unit_class, unit_det], unit_image, unit_class))
    group = np.stack([unit_class[order], unit_image[order]], axis=1)
    new_group = np.ones(len(order), dtype=bool)
    new_group[1:] = np.any(group[1:] != group[:-1], axis=1)
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(order)), 0))
    unit_round = np.empty(len(units), dtype=np.int64)
    unit_round[order] = np.arange(len(order)) - group_start
    cand_round = unit_round[cand_unit]
    by_round = np.argsort(cand_round, kind="stable")
    bounds = np.searchsorted(cand_round[by_round], np.arange(int(unit_round.max()) + 2))
    matched = np.zeros(len(entry_gt), dtype=bool)
    for r in range(len(bounds) - 1):
        live = by_round[bounds[r]:bounds[r + 1]]
        live = live[~matched[entry[live]]]
        if len(live) == 0:
            continue
        # best remaining GT per unit: highest IoU, then first GT in input order
        pick = live[np.lexsort((cand_gt[live], -cand_iou[live], cand_unit[live]))]
        _, first = np.unique(cand_unit[pick], return_index=True)
        chosen = pick[first]
        hits[cand_det[chosen], cand_class[chosen]] = True
        matched[entry[chosen]] = True
    return hits


# --------------------------------------------------------------------------------------------------------------
# accumulate and summarize

def accumulate(order: np.ndarray, hits: np.ndarray, n_positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall (K, N) along each class's ranking ``order`` (K, N) given ``hits`` (N, K) and the
    number of ground-truth boxes per class (K,); recall is NaN for classes without ground truth."""
    k, n = order.shape
    tp = np.cumsum(np.take_along_axis(np.ascontiguousarray(hits.T), order, axis=1), axis=1, dtype=np.int64)
    precision = tp / np.arange(1, n + 1)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp / np.where(n_positive > 0, n_positive, np.nan)[:, None]
    return precision, recall


def ap_11point(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """VOC 11-point AP per row of (K, N) precision/recall; NaN where recall is NaN (no ground truth).

    Precision at recall >= t is maximal at the first point reaching t or later; a reverse running maximum of
    precision gives it for every threshold with one ``searchsorted`` (recall is non-decreasing along a row)."""
    k, n = precision.shape
    ap = np.zeros(k)
    if n:
        best_after = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
        filled = np.nan_to_num(recall, nan=-1.0)
        for c in range(k):
            first = np.searchsorted(filled[c], RECALL_POINTS, side="left")
            reached = first < n
            ap[c] = best_after[c, first[reached]].sum() / len(RECALL_POINTS)
    no_gt = np.isnan(recall[:, 0]) if n else np.zeros(k, bool)
    return np.where(no_gt, np.nan, ap)


def class_ap(det_image, det_boxes, scores, gt_image, gt_boxes, gt_labels, threshold=IOU_THRESHOLD):
    """AP (K,), precision and recall (K, N) for one score matrix (N, K) against one label matrix (M, K)."""
    scores = np.asarray(scores, dtype=np.float64)
    gt_labels = np.asarray(gt_labels, dtype=bool)
    n_positive = gt_labels.sum(axis=0)
    order = descending_order(scores)
    hits = match_detections(det_image, det_boxes, scores, gt_image, gt_boxes, gt_labels, threshold, order)
    precision, recall = accumulate(order, hits, n_positive)
    ap = ap_11point(precision, recall)
    if scores.shape[0] == 0:
        ap = np.where(n_positive > 0, 0.0, np.nan)
    return ap, precision, recall


def _nanmean(values: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(values)) if len(values) else float("nan")


def summarize(pasta_ap: np.ndarray | None, verb_ap: np.ndarray | None) -> dict:
    """Headline figures from per-class APs (93,) and (157,): part mAPs with/without no_interaction, PaSta mAPs,
    verb mAPs over 157 / 117 with/without index 57."""
    out: dict = {}
    if pasta_ap is not None:
        pasta93 = vocab.load("pasta93")
        with_ni, without_ni = {}, {}
        for part in vocab.PASTA_PARTS:
            span = pasta_ap[pasta93.part_slice(part)]
            with_ni[part] = _nanmean(span)
            without_ni[part] = _nanmean(span[:-1])
        out["pasta_mAP"] = _nanmean(np.array(list(with_ni.values())))
        out["pasta_mAP_without_no_interaction"] = _nanmean(np.array(list(without_ni.values())))
        out["part_mAP"] = with_ni
        out["part_mAP_without_no_interaction"] = without_ni
    if verb_ap is not None:
        keep = np.arange(N_VERBS) != NO_INTERACTION_VERB
        out["verb_mAP_157"] = _nanmean(verb_ap)
        out["verb_mAP_157_without_no_interaction"] = _nanmean(verb_ap[keep])
        out["verb_mAP_117"] = _nanmean(verb_ap[:N_HICO_VERBS])
        out["verb_mAP_117_without_no_interaction"] = _nanmean(verb_ap[:N_HICO_VERBS][keep[:N_HICO_VERBS]])
    return out


def evaluate(detections: Detections, gt: GroundTruth, threshold: float = IOU_THRESHOLD) -> EvalResult:
    """PaSta and verb instance AP of ``detections`` against ``gt`` (in memory)."""
    det_image = np.asarray(detections.image).astype(str)
    gt_image = np.asarray(gt.image).astype(str)
    det_boxes = np.asarray(detections.boxes, dtype=np.float64).reshape(-1, 4)
    gt_boxes = np.asarray(gt.boxes, dtype=np.float64).reshape(-1, 4)
    pasta93, verbs = vocab.load("pasta93"), vocab.load("verbs157")
    per_class, names, curves = {}, {}, {}
    pasta_ap = verb_ap = None
    if detections.pasta is not None:
        pasta_ap, precision, recall = class_ap(det_image, det_boxes, np.asarray(detections.pasta).reshape(-1, N_PASTA),
                                               gt_image, gt_boxes, gt.pasta, threshold)
        for c in range(N_PASTA):
            key = str(pasta93.ids[c])
            per_class[key] = float(pasta_ap[c])
            names[key] = pasta93.names[c]
            if not np.isnan(pasta_ap[c]) and precision.shape[1]:
                curves[key] = (precision[c], recall[c])
    if detections.verb is not None:
        verb_ap, _, _ = class_ap(det_image, det_boxes, np.asarray(detections.verb).reshape(-1, N_VERBS),
                                 gt_image, gt_boxes, gt.verb, threshold)
    extra = summarize(pasta_ap, verb_ap)
    if verb_ap is not None:
        # nested so that the readable table shows the verb means, not 157 more lines; JSON keeps every AP
        extra["verb_per_class"] = {str(verbs.ids[c]): {"name": verbs.names[c], "AP": float(verb_ap[c])} for c in range(N_VERBS)}
    headline = extra.pop("pasta_mAP", float("nan")) if pasta_ap is not None else extra.get("verb_mAP_157", float("nan"))
    protocol = "pasta (Activity2Vec instance AP, IoU > %g, 11-point)" % threshold
    return EvalResult(protocol, headline, "mAP", per_class, names, extra, curves)


# --------------------------------------------------------------------------------------------------------------
# inputs

def _matrix(table: pa.Table, column: str, width: int, path: str, where) -> np.ndarray | None:
    if column not in table.column_names:
        return None
    array = table.column(column).combine_chunks()
    if not (pa.types.is_list(array.type) or pa.types.is_large_list(array.type) or pa.types.is_fixed_size_list(array.type)):
        raise InputError(path, column, f"column {column!r} is not a list of numbers")
    lengths = np.asarray(pc.list_value_length(array).fill_null(-1).to_numpy(zero_copy_only=False))
    bad = np.flatnonzero(lengths != width)
    if len(bad):
        raise InputError(path, where(int(bad[0])), f"{column} has {int(lengths[bad[0]])} values, expected {width}")
    values = np.asarray(pc.list_flatten(array).cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False))
    matrix = values.reshape(len(lengths), width)
    nonfinite = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(nonfinite):
        raise InputError(path, where(int(nonfinite[0])), f"{column} has a missing or non-finite value")
    return matrix


def _json_kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "an object"


def _read_jsonl(path: str) -> pa.Table:
    """JSON Lines through Arrow's reader, after the nesting guard (deep nesting must never reach it); when Arrow
    refuses the file, the first offending line is found and named: bad JSON, not an object, or a field whose type
    differs from an earlier line's."""
    import pyarrow.json as pajson

    from partwise.data.safe_json import check_nesting, read_bytes

    data = read_bytes(path)
    check_nesting(data, path)
    try:
        return pajson.read_json(pa.BufferReader(data))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"not UTF-8 text (byte {exc.start})") from None
    first_kind: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(path, number, f"bad JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise InputError(path, number, "line is not a JSON object")
        for key, value in obj.items():
            if value is None:
                continue
            kind = _json_kind(value)
            seen = first_kind.setdefault(key, (kind, number))
            if seen[0] != kind:
                raise InputError(path, f"line {number}.{key}", f"{kind} here, {seen[0]} on line {seen[1]}")
    raise InputError(path, None, "inconsistent column types between lines")


def read_predictions(path: str | os.PathLike) -> Detections:
    """Detections from a Parquet or JSON Lines file (columns ``image``, ``box``, ``pasta`` and/or ``verb``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(path, None, "no such file")
    if os.path.getsize(path) == 0:
        raise InputError(path, None, "empty file")
    is_parquet = path.endswith((".parquet", ".pq"))
    if is_parquet:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(path, None, f"not a Parquet file: {exc}") from None

        def where(i: int) -> str:
            return f"row {i}"
    else:
        table = _read_jsonl(path)

        def where(i: int) -> int:
            return i + 1  # JSON Lines written one object per line, no blank lines
    for column in ("image", "box"):
        if column not in table.column_names:
            raise InputError(path, None, f"missing column {column!r}")
    image = table.column("image")
    if not pa.types.is_string(image.type) and not pa.types.is_large_string(image.type):
        raise InputError(path, "image", "column 'image' is not text")
    if image.null_count:
        raise InputError(path, where(int(np.flatnonzero(np.asarray(image.is_null()))[0])), "missing image name")
    boxes = _matrix(table, "box", 4, path, where)
    bad = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
    if len(bad):
        raise InputError(path, where(int(bad[0])), f"box {boxes[bad[0]].tolist()} has x2 < x1 or y2 < y1")
    pasta = _matrix(table, "pasta", N_PASTA, path, where)
    verb = _matrix(table, "verb", N_VERBS, path, where)
    if pasta is None and verb is None:
        raise InputError(path, None, "needs a 'pasta' (93 scores) or a 'verb' (157 scores) column")
    return Detections(np.asarray(image.to_pylist(), dtype=object), boxes, pasta, verb)


def _verb_columns(actions: list[int], action_vocab: str | None) -> list[int]:
    """0-based verbs157 columns of a record's actions."""
    if action_vocab == "hico_hoi600":
        table = vocab.hico_hoi_table()
        return [table[a - 1][1] - 1 for a in actions]
    if action_vocab == "hico_verbs117":
        return [a - 1 for a in actions]
    if action_vocab == "verbs157":
        return list(actions)
    return []


def records_to_ground_truth(table: pa.Table, fill_no_interaction: bool = True) -> GroundTruth:
    """Ground truth from person records (``pasta76``/``pasta93`` names; HICO HOI, HICO verb or 157-verb actions).

    With ``fill_no_interaction`` a person's part without any state is labelled with that part's no_interaction class.
    """
    from partwise.data.records import conform

    pasta93 = vocab.load("pasta93")
    records = conform(table).to_pylist()
    m = len(records)
    boxes = np.zeros((m, 4))
    pasta = np.zeros((m, N_PASTA), dtype=bool)
    verb = np.zeros((m, N_VERBS), dtype=bool)
    for i, rec in enumerate(records):
        where = rec["source"] or f"row {i}"
        if rec["px1"] is not None:
            boxes[i] = [rec["px1"], rec["py1"], rec["px2"], rec["py2"]]
        elif rec["x1"] is not None and rec["width"] and rec["height"]:
            boxes[i] = [rec["x1"] * rec["width"], rec["y1"] * rec["height"], rec["x2"] * rec["width"], rec["y2"] * rec["height"]]
        else:
            raise InputError(None, where, "ground-truth person without a pixel box (or normalized box and image size)")
        if rec["pasta"] and rec["pasta_vocab"] not in ("pasta93", "pasta76"):
            raise InputError(None, where, f"PaSta vocabulary {rec['pasta_vocab']!r}; expected pasta93 or pasta76")
        for name in rec["pasta"] or []:
            name = name.replace("no interaction", "no_interaction")
            if not pasta93.has_name(name):
                raise InputError(None, where, f"PaSta {name!r} is not a pasta93 class")
            pasta[i, pasta93.index_of(pasta93.id_of(name))] = True
        try:
            verb[i, _verb_columns(rec["actions"] or [], rec["action_vocab"])] = True
        except (IndexError, KeyError):
            raise InputError(None, where, f"action ids {rec['actions']} out of range for {rec['action_vocab']}") from None
    if fill_no_interaction:
        for part in vocab.PASTA_PARTS:
            span = pasta93.part_slice(part)
            empty = ~pasta[:, span].any(axis=1)
            pasta[empty, span.stop - 1] = True
    image = np.array([r["video_id"] for r in records], dtype=object)
    return GroundTruth(image, boxes, pasta, verb)


def read_ground_truth(path: str | os.PathLike, fill_no_interaction: bool = True) -> GroundTruth:
    """Ground truth from a HAKE instance-level JSON (or a folder with one) or a Parquet records table."""
    path = Path(path)
    if path.suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(path, None, f"not a Parquet file: {exc}") from None
    else:
        from partwise.data import hake_instance

        table = hake_instance.read_records(path)
    return records_to_ground_truth(table, fill_no_interaction)


# --------------------------------------------------------------------------------------------------------------
# CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", help="Parquet or JSON Lines: image, box [x1,y1,x2,y2] px, pasta (93), verb (157)")
    parser.add_argument("--gt", required=True, help="HAKE instance-level JSON, or a Parquet records table (pasta93/pasta76)")
    parser.add_argument("--iou-threshold", type=float, default=IOU_THRESHOLD,
                        help="a hit needs IoU strictly above this (default 0.3)")
    parser.add_argument("--no-fill-no-interaction", action="store_true",
                        help="do not label a GT person's parts without states as no_interaction")


def run(args: argparse.Namespace) -> EvalResult:
    detections = read_predictions(args.predictions)
    gt = read_ground_truth(args.gt, fill_no_interaction=not args.no_fill_no_interaction)
    return evaluate(detections, gt, args.iou_threshold)
