"""TIN binary interactiveness AP: one class, "is this human-object pair interacting?".

Ground truth: the distinct (image, human box, object box) pairs of the HICO-DET test set that carry at least one
HOI other than ``no_interaction`` (from ``anno_bbox.mat`` or ``test_hico.json``; pairs annotated only with
``no_interaction`` are not interactive; identical boxes labelled with several HOIs form one pair).

Predictions: pair detections scored by the interactiveness probability P_int, in the HICO-DET prediction formats
of :mod:`partwise.eval.hico` without the class (JSON ``{"human_box", "object_box", "score"}`` per pair, or Parquet
without ``hoi_id``); 0-based pixel boxes, shifted +1 onto the 1-based GT unless ``--pred-one-based``.

Matching as TIN/TPAMI describe it: stable descending score order, the GT pair of the image with the largest
min(IoU_h, IoU_o) (inclusive +1 IoU, first on ties) is taken when that overlap is >= 0.5 (``--strict``: > 0.5 as
TIN's ``HICO_Benchmark_Binary.py``) and it is still free; duplicates are false positives. AP is 11-point with the
thresholds ``i / 10`` (0.3 exact) of TIN's scripts.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from partwise.eval import hico


def tin_thresholds() -> np.ndarray:
    """``[i / 10.0 for i in range(11)]`` as TIN's evaluation scripts compute them."""
    return np.array([i / 10.0 for i in range(11)], dtype=np.float64)


def interactive_pairs(gt: hico.Pairs) -> hico.Pairs:
    """Distinct (image, boxes) pairs having a HOI other than no_interaction; class 0 for all."""
    from partwise.data.hico_det import hoi_verb_object
    from partwise import vocab

    verb_of, _ = hoi_verb_object()
    no_interaction = vocab.load("hico_verbs117").id_of("no_interaction")
    keep = verb_of[gt.cls + 1] != no_interaction
    rows = np.column_stack([gt.image[keep].astype(np.float64), gt.boxes[keep]])
    if rows.size == 0:
        return hico.Pairs(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros((0, 8)))
    _, first = np.unique(rows, axis=0, return_index=True)
    first = np.sort(first)  # keep the annotation order of the first occurrence
    rows = rows[first]
    return hico.Pairs(rows[:, 0].astype(np.int64), np.zeros(len(rows), dtype=np.int64), rows[:, 1:])


def interactiveness_ap(gt_pairs: hico.Pairs, det: hico.Pairs, n_images: int, *, strict: bool = False
                       ) -> tuple[float, np.ndarray, np.ndarray, int]:
    """AP of class-agnostic pair detections (boxes in GT coordinates) against interactive GT pairs.
    Returns (ap, precision, recall, npos)."""
    det = hico.Pairs(det.image, np.zeros(len(det), dtype=np.int64), det.boxes, det.score)
    gt_pairs = hico.Pairs(gt_pairs.image, np.zeros(len(gt_pairs), dtype=np.int64), gt_pairs.boxes)
    order = np.lexsort((np.arange(len(det)), -det.score))
    ranked = det.take(order)
    threshold = np.nextafter(hico.IOU_THRESHOLD, 1.0) if strict else hico.IOU_THRESHOLD
    tp = hico.match_pairs(ranked, gt_pairs, n_images, inclusive=True, threshold=threshold)
    ap, prec, rec = hico.ap_11_point(tp, len(gt_pairs), tin_thresholds())
    return ap, prec, rec, len(gt_pairs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, help="anno_bbox.mat (bbox_test) or test_hico.json")
    parser.add_argument("--pred", required=True, help="pair detections scored by P_int (.json or .parquet)")
    parser.add_argument("--pred-one-based", action="store_true", help="prediction boxes are already 1-based")
    parser.add_argument("--strict", action="store_true", help="IoU > 0.5 instead of >= 0.5")


def run(args: argparse.Namespace):
    from partwise.eval.report import EvalResult

    names, gt = hico.read_gt(Path(args.gt))
    det = hico.read_predictions(args.pred, names, with_class=False)
    if not args.pred_one_based:
        det.boxes = det.boxes + 1.0
    order = np.argsort(det.image, kind="stable")  # image order, then file order, as the MATLAB-style listing
    det = det.take(order)
    positives = interactive_pairs(gt)
    ap, prec, rec, npos = interactiveness_ap(positives, det, len(names), strict=args.strict)
    return EvalResult(protocol="tin interactiveness", value=ap, per_class={"1": ap},
                      class_names={"1": "interactive"}, extra={"npos": npos, "n_detections": int(len(det))},
                      curves={"1": (prec, rec)} if rec.size else {})
