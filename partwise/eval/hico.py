"""HICO-DET mAP: Full / Rare / Non-rare, Default and Known-Object settings, two profiles.

Profiles
--------
``official`` -- ho-rcnn's MATLAB evaluation (``eval_one.m`` + ``VOCevaldet_bboxpair.m``), reproduced exactly:

* per HOI class, GT = one pair per connection of every visible HOI over all test images (duplicates kept, images
  without GT included, so their detections are false positives); npos = their number;
* detections are ordered by a *stable* descending sort of the score (MATLAB ``sort(-conf)``): ties keep (image
  index in the GT's image list, row) order; NaN scores last;
* a detection takes the GT pair of its image with the largest ``min(IoU_h, IoU_o)`` (first one on ties); it is a
  true positive when that overlap is >= 0.5 and the pair is not taken yet, otherwise a false positive (duplicates
  and misses alike, no fall-back to the second-best GT). IoU is the inclusive-pixel one on 1-based boxes:
  ``w = x2 - x1 + 1`` (a zero-area box x1 == x2 is one pixel wide);
* AP = 11-point interpolated with MATLAB's ``0:0.1:1`` values (0.30000000000000004 at 0.3 but 0.6 and 0.7 exact),
  summed ``ap += p / 11`` in order; a class without detections has AP 0; Full = mean over the 600 classes,
  Rare / Non-rare = mean over classes with < 10 / >= 10 training instances;
* mean recall (``mRec``, printed by ho-rcnn as ``mAP / mRec``): per class the recall after the last detection
  (``rec(end)``, 0 without detections), averaged like the APs; reported beside each setting's mAP;
* what ho-rcnn scores and partwise's ``legacy`` profile (and strict readers) reject is scored as ho-rcnn does:
  **NaN scores** are kept and ranked after every number (MATLAB's ``sort`` puts NaN last; ties among them keep
  their order) and still match GT, so they add TPs/FPs at the end of the curve and count in the recall; infinite
  scores rank first / last as numbers; **degenerate boxes** (x2 < x1 or y2 < y1) go through the same inclusive IoU
  formula (no overlap unless ``iw > 0`` and ``ih > 0``; otherwise the possibly negative or infinite ratio is used
  as is, exactly like the MATLAB arithmetic). Non-finite coordinates are still refused;
* **duplicate HOI entries** in one test image of ``anno_bbox.mat``: ho-rcnn stores each visible entry's pairs with
  ``gt_all{hoi_id, i} = boxes``, so a later visible entry with the same HOI id *replaces* the earlier one -- only
  the last visible entry counts, and a last entry without connections leaves that HOI with no GT in the image
  (invisible entries change nothing). The official profile does the same (:func:`official_gt_pairs`); the legacy
  profile and JSON ground truth (one pair per ``hoi_annotation``) keep every pair.

``legacy`` -- the QPIC/CDN Python port (``hico_eval.py``; GEN-VLKT and HOICLIP copy it): the top 100 detections
per image (stable sort by score), matched image by image in that order; boxes compared as given (no +1 shift) with
the continuous IoU that is 0 unless the boxes overlap strictly (QPIC's ``left >= right -> 0``), each box IoU >= 0.5,
best GT by ``min`` overlap, duplicates false positives; the per-class ranking by ``numpy.argsort(-score)`` (its
default kind, applied to the flags listed in image order and by descending score within an image, as QPIC appends
them), 11-point AP with ``np.arange(0, 1.1, 0.1)`` thresholds (0.6000000000000001, 0.7000000000000001), and means
over the classes that have GT. Rare/Non-rare as above.

Known-Object setting: a detection of HOI class c (object n) in image i counts only when ``anno.mat``'s ``anno_test``
labels some HOI of object n in image i as 1 (positive); npos is unchanged. ``--json`` gives its per-class APs
under ``per_class_known_object.ap`` and per-class recalls under ``per_class_recall.known_object``. (ho-rcnn also
asserts that every GT image is in that set; partwise does not check it.) Images are aligned by file name between
``list_test`` and the GT.

Not part of the evaluator: the detection pipeline's per-class top-19,999 cut and ``Generate_detection.m``'s box
rounding (``--round`` reproduces the latter).

Prediction files
----------------
JSON, either a list ``[{"image": IMG, "detections": [DET, ...]}, ...]`` or a dict ``{IMG: [DET, ...], ...}``, where
IMG is the image file name (``HICO_test2015_00000001.jpg``) or its 1-based index in the GT's image list, and DET is
``{"hoi": 1..600, "human_box": [x1, y1, x2, y2], "object_box": [x1, y1, x2, y2], "score": s}``; instead of
``"hoi"`` a DET may give ``"verb"`` (``hico_verbs117`` id) and ``"object"`` (``hico_objects80`` id).

ho-rcnn's ``detections_XX.mat`` (a folder of the 80 files, XX = COCO class order 01..80, each ``all_boxes`` = one
row per HOI of that object in HOI id order x one column per test image in the GT's image order; or one such file,
giving only its object's HOIs) or ``detections.mat`` (``all_boxes`` 600 x images). Each cell is an N x 9 matrix
``[hx1 hy1 hx2 hy2 ox1 oy1 ox2 oy2 score]``, 0-based. :func:`write_detections_mat` writes them (round trip).

iCAN/TIN-style prediction pickles (``.pkl``, read with the restricted unpickler :mod:`partwise.data.safe_pickle`):
``{image_id: [[human box, object box, object class (COCO order 1..80), 600 HOI scores, human score, object
score, ...], ...]}`` with ``image_id`` the number of ``HICO_test2015_%08d.jpg``. Each entry is scored for the HOIs
of its object only, ``score = hoi_score * human_score * object_score`` as iCAN's ``Generate_HICO_detection.py``
does (``--pkl-score hoi``: the HOI score alone; TIN's NIS/LIS post-processing is not applied), without the
per-class top-19,999 cut.

Parquet with columns ``image`` (string file name or integer 1-based index), ``hoi_id`` (1..600), ``hx1, hy1, hx2,
hy2, ox1, oy1, ox2, oy2`` and ``score``.

Coordinates are **0-based pixels** (what detectors and ho-rcnn's ``detections_XX.mat`` hold). The ``official``
profile adds 1 to every prediction coordinate (ho-rcnn's ``det_bb + 1``) to compare them with the 1-based GT of
``anno_bbox.mat`` / ``test_hico.json``; ``--pred-one-based`` skips that. ``--round`` first rounds prediction boxes
half away from zero as ho-rcnn's ``Generate_detection.m`` does. ``legacy`` compares predictions and GT as given.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from partwise.errors import InputError
from partwise.eval.hico_predictions import N_HOI, Pairs, read_predictions  # noqa: F401 (public here too)
from partwise.eval.hico_predictions import read_predictions_json, read_predictions_parquet  # noqa: F401
from partwise.eval.hico_predictions import write_detections_mat  # noqa: F401

IOU_THRESHOLD = 0.5
RARE_THRESHOLD = 10
LEGACY_MAX_PER_IMAGE = 100


def matlab_thresholds() -> np.ndarray:
    """MATLAB's ``0:0.1:1``: first half ``k*0.1``, second half ``1 - (10-k)*0.1`` (its symmetric colon rule)."""
    return np.array([k * 0.1 if k <= 5 else 1.0 - (10 - k) * 0.1 for k in range(11)], dtype=np.float64)


def arange_thresholds() -> np.ndarray:
    """``np.arange(0, 1.1, 0.1)`` as the Python ports use (0.6000000000000001 and 0.7000000000000001)."""
    return np.arange(0.0, 1.1, 0.1)


@dataclass
class ClassResult:
    """Per-class outcome: ``ap``, ``recall`` (final recall), ``npos`` (n_classes,) and PR curves per class."""

    ap: np.ndarray
    recall: np.ndarray
    npos: np.ndarray
    curves: dict[int, tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------------------------------------------------------------
# core

def _iou(a: np.ndarray, b: np.ndarray, inclusive: bool) -> np.ndarray:
    """Row-wise IoU of (N,4) boxes. ``inclusive``: +1 pixel widths, overlap when iw > 0 and ih > 0 (ho-rcnn);
    otherwise continuous widths, overlap only when strictly positive (QPIC's ``left >= right -> 0``)."""
    one = 1.0 if inclusive else 0.0
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + one
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + one
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
    area_b = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    valid = (iw > 0) & (ih > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(valid, inter / (area_a + area_b - inter), 0.0)
    return out


def match_pairs(det: Pairs, gt: Pairs, n_images: int, *, inclusive: bool, threshold: float = IOU_THRESHOLD
                ) -> np.ndarray:
    """True-positive flags (len(det),) for detections listed in ranking order.

    Each detection takes the GT pair of the same (class, image) with the largest ``min(IoU_h, IoU_o)``, the first
    in GT order on ties; it is a TP when that overlap is >= 0.5 and no earlier detection took the same GT. Since a
    detection's choice does not depend on which GT are taken, "earlier took the same GT" is "first occurrence of
    that GT among the accepted detections", computed without a sequential loop. (QPIC's rule "each box IoU >= 0.5,
    then the best min overlap" is the same as "best min overlap >= 0.5".)
    """
    n_det = len(det)
    tp = np.zeros(n_det, dtype=bool)
    if n_det == 0 or len(gt) == 0:
        return tp
    gt_key = gt.cls * n_images + gt.image
    gt_order = np.argsort(gt_key, kind="stable")
    sorted_keys = gt_key[gt_order]
    det_key = det.cls * n_images + det.image
    start = np.searchsorted(sorted_keys, det_key, side="left")
    stop = np.searchsorted(sorted_keys, det_key, side="right")
    counts = stop - start
    has = np.flatnonzero(counts)
    if has.size == 0:
        return tp
    counts_h = counts[has]
    total = int(counts_h.sum())
    offsets = np.cumsum(counts_h) - counts_h
    det_rep = np.repeat(has, counts_h)
    local = np.arange(total) - np.repeat(offsets, counts_h)
    gt_rep = gt_order[np.repeat(start[has], counts_h) + local]
    db, gb = det.boxes[det_rep], gt.boxes[gt_rep]
    ov_h = _iou(db[:, :4], gb[:, :4], inclusive)
    ov_o = _iou(db[:, 4:], gb[:, 4:], inclusive)
    ov = np.minimum(ov_h, ov_o)
    best = np.maximum.reduceat(ov, offsets)
    is_best = ov == np.repeat(best, counts_h)
    first_local = np.minimum.reduceat(np.where(is_best, local, total), offsets)
    chosen = gt_order[start[has] + first_local]
    accepted = best >= threshold
    cand_det, cand_gt = has[accepted], chosen[accepted]
    # `has` is increasing, i.e. in ranking order: the first occurrence of each GT is the detection that takes it.
    _, first = np.unique(cand_gt, return_index=True)
    tp[cand_det[first]] = True
    return tp


def ap_11_point(tp: np.ndarray, npos: int, thresholds: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """11-point interpolated AP of ranked TP flags: ``sum_t max(prec[rec >= t]) / 11`` summed sequentially as
    ho-rcnn's loop does, max over nothing = 0. Returns (ap, precision, recall); AP 0 without detections."""
    if tp.size == 0:
        return 0.0, np.zeros(0), np.zeros(0)
    ctp = np.cumsum(tp, dtype=np.float64)
    cfp = np.cumsum(~tp, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rec = ctp / float(npos)
    prec = ctp / (ctp + cfp)
    envelope = np.maximum.accumulate(prec[::-1])[::-1]  # max precision over each suffix
    ap = 0.0
    for t in thresholds:
        idx = np.searchsorted(rec, t, side="left") if npos > 0 else rec.size
        p = float(envelope[idx]) if idx < rec.size else 0.0
        ap = ap + p / 11
    return ap, prec, rec


def evaluate_pairs(gt: Pairs, det: Pairs, n_classes: int, n_images: int, *, profile: str = "official",
                   keep_curves: bool = False) -> ClassResult:
    """Per-class AP of ``det`` against ``gt`` (both already in GT coordinates for the chosen profile).

    Official ranking: stable descending sort of the score, so tied detections keep the order of ``det`` (pass them
    in (image index, row) order to match ho-rcnn's ``eval_one.m``, as :func:`evaluate_hico` does; the fixture of
    ``VOCevaldet_bboxpair.m`` passes them in file order). The legacy profile applies its per-image top-100 cap here.
    Classes are 0..n_classes-1.
    """
    if profile not in ("official", "legacy"):
        raise ValueError(f"unknown profile {profile!r}")
    official = profile == "official"
    npos = np.bincount(gt.cls, minlength=n_classes)[:n_classes] if len(gt) else np.zeros(n_classes, dtype=np.int64)
    scores = det.score if det.score is not None else np.zeros(len(det))
    n = len(det)
    rows = np.arange(n)
    if official:
        order = np.lexsort((rows, -scores, det.cls))
        ranked = det.take(order)
        tp_ranked = match_pairs(ranked, gt, n_images, inclusive=True)
    else:
        # QPIC: per image, stable sort by score descending, keep the top 100, match in that order; the flags are
        # appended per triplet in image order, then ranked per triplet with numpy's default argsort.
        per_image = np.lexsort((rows, -scores, det.image))
        img_sorted = det.image[per_image]
        first = np.searchsorted(img_sorted, img_sorted, side="left")
        rank = np.arange(n) - first
        kept = per_image[rank < LEGACY_MAX_PER_IMAGE]
        listing = kept[np.argsort(det.cls[kept], kind="stable")]
        tp_listing = match_pairs(det.take(listing), gt, n_images, inclusive=False)
        perm = _legacy_class_ranking(det.cls[listing], scores[listing])
        ranked = det.take(listing[perm])
        tp_ranked = tp_listing[perm]
    thresholds = matlab_thresholds() if official else arange_thresholds()
    bounds = np.searchsorted(ranked.cls, np.arange(n_classes + 1))
    ap = np.zeros(n_classes)
    recall = np.zeros(n_classes)
    curves = {}
    for c in range(n_classes):
        lo, hi = bounds[c], bounds[c + 1]
        ap[c], prec, rec = ap_11_point(tp_ranked[lo:hi], int(npos[c]), thresholds)
        recall[c] = rec[-1] if rec.size and npos[c] > 0 else 0.0
        if keep_curves and rec.size:
            curves[c] = (prec, rec)
    return ClassResult(ap, recall, npos.astype(np.int64), curves)


def _legacy_class_ranking(classes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Permutation of a class-grouped listing that applies ``np.argsort(-score)`` (numpy's default kind) inside
    each class block, as QPIC ranks each triplet's appended scores. ``classes`` must be grouped (sorted)."""
    perm = np.arange(classes.size)
    bounds = np.flatnonzero(np.diff(classes)) + 1
    starts = np.concatenate([[0], bounds]).astype(np.int64)
    stops = np.concatenate([bounds, [classes.size]]).astype(np.int64)
    for lo, hi in zip(starts, stops):
        if hi > lo:
            perm[lo:hi] = lo + np.argsort(-scores[lo:hi])
    return perm


# ---------------------------------------------------------------------------------------------------------------------
# HICO-DET specifics: GT, predictions, rare split, known-object mask

def _matlab_round(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def rare_mask_from_counts(counts: np.ndarray) -> np.ndarray:
    """(600,) bool: HOI classes with fewer than 10 training instances (``counts`` indexed by HOI id, (601,))."""
    return np.asarray(counts[1:N_HOI + 1]) < RARE_THRESHOLD


def read_rare(path: str | os.PathLike) -> np.ndarray:
    """Rare mask (600,) bool from a train annotation (``anno_bbox.mat`` -> ``bbox_train``, ``trainval_hico.json``)
    or from a list of rare HOI ids (JSON list, or a text file with one id per line)."""
    from partwise.data import hico_det

    path = Path(path)
    if path.suffix.lower() == ".mat":
        return rare_mask_from_counts(hico_det.training_counts(path))
    if path.suffix.lower() == ".json":
        data = hico_det._load_json(path)
        if isinstance(data, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in data):
            return _rare_from_ids(path, data)
        return rare_mask_from_counts(hico_det.training_counts(path))
    from partwise.data.id_list import read_id_list

    return _rare_from_ids(path, read_id_list(path, "HOI id", low=1, high=N_HOI))


def _rare_from_ids(path: Path, ids: list[int]) -> np.ndarray:
    mask = np.zeros(N_HOI, dtype=bool)
    for k, v in enumerate(ids):
        if not 1 <= v <= N_HOI:
            raise InputError(path, f"[{k}]", f"HOI id {v} outside 1..600")
        mask[v - 1] = True
    return mask


def known_object_mask(labels_test: np.ndarray, image_names: list[str], label_names: list[str],
                      path: str | os.PathLike = "anno.mat") -> np.ndarray:
    """(80, n_images) bool: object n is known present in image i (some HOI of n labelled 1 in ``anno_test``).
    Columns of ``labels_test`` (600 x len(label_names)) are aligned to ``image_names`` by file name."""
    from partwise.data.hico_det import hoi_verb_object

    _, object_of = hoi_verb_object()
    positive = labels_test == 1.0
    per_object = np.zeros((80, labels_test.shape[1]), dtype=bool)
    np.logical_or.at(per_object, object_of[1:N_HOI + 1] - 1, positive)
    column = {name: j for j, name in enumerate(label_names)}
    missing = [n for n in image_names if n not in column]
    if missing:
        raise InputError(path, "list_test", f"{len(missing)} GT images missing, e.g. {missing[0]!r}")
    return per_object[:, [column[n] for n in image_names]]


def read_gt(path: str | os.PathLike, profile: str = "legacy") -> tuple[list[str], Pairs]:
    """Test-split GT pairs from ``anno_bbox.mat`` (``bbox_test``) or ``test_hico.json``: (image names, pairs).
    ``profile="official"`` with ``anno_bbox.mat``: ho-rcnn's ``gt_all{hoi_id, i} = boxes`` -- per image and HOI id
    only the last visible entry counts (module docstring)."""
    from partwise.data import hico_det

    path = Path(path)
    if profile == "official" and path.suffix.lower() == ".mat":
        anno = hico_det.read_anno_bbox(path, splits=("test",))
        if anno.test is None:
            raise InputError(path, "bbox_test", "variable not in the file")
        return [im.filename for im in anno.test], official_gt_pairs(anno.test)
    gt = hico_det.read_gt_pairs(path, "test")
    return gt.images, Pairs(gt.image, gt.hoi - 1, gt.boxes)


def official_gt_pairs(images: list) -> Pairs:
    """GT pairs as ho-rcnn's ``eval_one.m`` builds them: for each image, the visible ``hoi`` entries in order, each
    one *replacing* the pairs of its HOI id in that image (``gt_all{hoi_id, i} = boxes``) -- so with the same id
    listed twice only the last visible entry counts, and a last entry without connections leaves none."""
    img, cls, rows = [], [], []
    for i, image in enumerate(images):
        last: dict[int, np.ndarray] = {}
        for h in image.hois:
            if h.invis:
                continue
            conn = np.asarray(h.connection, dtype=np.int64).reshape(-1, 2) - 1
            last[int(h.id)] = (np.hstack([np.asarray(h.humans)[conn[:, 0]], np.asarray(h.objects)[conn[:, 1]]])
                               if len(conn) else np.zeros((0, 8)))
        for hoi_id, boxes in last.items():
            rows.append(boxes)
            img.extend([i] * len(boxes))
            cls.extend([hoi_id - 1] * len(boxes))
    boxes = np.vstack(rows).astype(np.float64) if rows else np.zeros((0, 8))
    return Pairs(np.asarray(img, dtype=np.int64), np.asarray(cls, dtype=np.int64), boxes.reshape(-1, 8))


@dataclass
class HicoResult:
    """Per-class APs and the Full/Rare/Non-rare means of one setting; ``mrec`` the same means of the per-class
    final recall (ho-rcnn's ``mean(REC)``, printed as ``mAP / mRec``)."""

    classes: ClassResult
    full: float
    rare: float | None
    non_rare: float | None
    mrec: dict[str, float | None] = field(default_factory=dict)


def summarize(classes: ClassResult, rare: np.ndarray | None, profile: str) -> HicoResult:
    """Full/Rare/Non-rare means; ``legacy`` averages only over classes with GT (QPIC's ``gt_triplets``)."""
    present = classes.npos > 0 if profile == "legacy" else np.ones(len(classes.ap), dtype=bool)
    full = float(np.mean(classes.ap[present])) if present.any() else 0.0
    mrec = {"full": float(np.mean(classes.recall[present])) if present.any() else 0.0}
    if rare is None:
        return HicoResult(classes, full, None, None, mrec)
    r, nr = present & rare, present & ~rare
    mrec["rare"] = float(np.mean(classes.recall[r])) if r.any() else None
    mrec["non_rare"] = float(np.mean(classes.recall[nr])) if nr.any() else None
    return HicoResult(classes, full, float(np.mean(classes.ap[r])) if r.any() else None,
                      float(np.mean(classes.ap[nr])) if nr.any() else None, mrec)


def evaluate_hico(gt: Pairs, det: Pairs, n_images: int, *, profile: str = "official", pred_one_based: bool = False,
                  round_boxes: bool = False, rare: np.ndarray | None = None,
                  known_object: np.ndarray | None = None, keep_curves: bool = False) -> dict[str, HicoResult]:
    """HICO-DET evaluation of predictions (0-based unless ``pred_one_based``) against 1-based GT.

    Returns ``{"default": ...}`` and, when ``known_object`` ((80, n_images) bool) is given, ``"known_object"``.
    """
    boxes = det.boxes
    if round_boxes:
        boxes = _matlab_round(boxes)
    if profile == "official" and not pred_one_based:
        boxes = boxes + 1.0
    # list detections in (image, file row) order: MATLAB concatenates per-image cells in image order
    order = np.argsort(det.image, kind="stable")
    det = Pairs(det.image[order], det.cls[order], boxes[order], det.score[order])
    out = {"default": summarize(evaluate_pairs(gt, det, N_HOI, n_images, profile=profile, keep_curves=keep_curves),
                                rare, profile)}
    if known_object is not None:
        from partwise.data.hico_det import hoi_verb_object

        _, object_of = hoi_verb_object()
        keep = known_object[object_of[det.cls + 1] - 1, det.image]
        out["known_object"] = summarize(evaluate_pairs(gt, det.take(np.flatnonzero(keep)), N_HOI, n_images,
                                                       profile=profile), rare, profile)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, help="anno_bbox.mat (bbox_test) or test_hico.json")
    parser.add_argument("--pred", required=True,
                        help="predictions: .json, .parquet, ho-rcnn detections_XX.mat files (a folder, one file, or "
                             "detections.mat) or an iCAN/TIN-style .pkl (format: partwise.eval.hico)")
    parser.add_argument("--pkl-score", choices=("product", "hoi"), default="product",
                        help=".pkl predictions: HOI score x human score x object score (iCAN, default) or the HOI "
                             "score alone")
    parser.add_argument("--anno", help="anno.mat: adds the Known-Object setting")
    parser.add_argument("--profile", choices=("official", "legacy"), default="official",
                        help="official = ho-rcnn MATLAB semantics; legacy = the QPIC/CDN Python port")
    parser.add_argument("--rare-from", metavar="TRAIN",
                        help="anno_bbox.mat / trainval_hico.json (counted) or a list of rare HOI ids; default: "
                             "bbox_train of --gt when it is anno_bbox.mat, else trainval_hico.json beside --gt")
    parser.add_argument("--pred-one-based", action="store_true", help="prediction boxes are already 1-based")
    parser.add_argument("--round", action="store_true", help="round prediction boxes as Generate_detection.m does")
    parser.add_argument("--progress", action="store_true", help="show progress")


def _default_rare_source(gt_path: Path) -> Path | None:
    if gt_path.suffix.lower() == ".mat":
        return gt_path
    sibling = gt_path.with_name("trainval_hico.json")
    return sibling if sibling.is_file() else None


def run(args: argparse.Namespace):
    from partwise.data.hico_det import read_anno_labels
    from partwise.eval.report import EvalResult
    from partwise import vocab

    gt_path = Path(args.gt)
    image_names, gt = read_gt(gt_path, args.profile)
    det = read_predictions(args.pred, image_names, strict=args.profile != "official",
                           score_mode=getattr(args, "pkl_score", "product"))
    rare_source = Path(args.rare_from) if args.rare_from else _default_rare_source(gt_path)
    rare = None
    if rare_source is not None:
        try:
            rare = read_rare(rare_source)
        except InputError:
            if args.rare_from:
                raise
            rare = None  # anno_bbox.mat without bbox_train: no rare split
    known = None
    if args.anno:
        labels = read_anno_labels(args.anno)
        known = known_object_mask(labels.anno_test, image_names, labels.list_test, args.anno)
    results = evaluate_hico(gt, det, len(image_names), profile=args.profile, pred_one_based=args.pred_one_based,
                            round_boxes=args.round, rare=rare, known_object=known, keep_curves=bool(args.plot))
    names = vocab.load("hico_hoi600")
    default = results["default"]
    extra: dict[str, Any] = {}
    for setting, res in results.items():
        extra[setting] = {"full": res.full, "rare": res.rare, "non_rare": res.non_rare,
                          **{f"mrec_{k}": v for k, v in res.mrec.items()}}
    # nested dicts: in --json only, not as 600-entry lines of the table
    extra["per_class_recall"] = {setting: {str(c + 1): float(res.classes.recall[c]) for c in range(N_HOI)}
                                 for setting, res in results.items()}
    if "known_object" in results:
        ko = results["known_object"].classes
        extra["per_class_known_object"] = {"ap": {str(c + 1): float(ko.ap[c]) for c in range(N_HOI)}}
    extra["n_images"] = len(image_names)
    extra["n_gt_pairs"] = int(len(gt))
    extra["n_detections"] = int(len(det))
    per_class = {str(c + 1): float(default.classes.ap[c]) for c in range(N_HOI)}
    return EvalResult(protocol=f"hico-det {args.profile}", value=default.full, per_class=per_class,
                      class_names={str(i): n for i, n in zip(names.ids, names.names)}, extra=extra,
                      curves={str(c + 1): v for c, v in default.classes.curves.items()},
                      gt_counts={str(c + 1): int(default.classes.npos[c]) for c in range(N_HOI)})
