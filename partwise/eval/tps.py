"""The official Kinetics-TPS score: action accuracy conditioned on part-state correctness (PSC), as an area.

Semantics are those of the organisers' evaluator code (which differ from its README prose):

* Box IoU uses the "+1 pixel" convention: width = x2 - x1 + 1; no overlap (intersection width or height <= 0)
  gives IoU **-1**. Human IoUs are computed and stored in float32 (as the evaluator does), part IoUs in float64.
* Humans are matched per frame by the Hungarian assignment (``scipy.optimize.linear_sum_assignment``) on
  1 - IoU, the matrix padded to square with IoU-0 dummies; a pair is kept when its IoU is **>** the human
  threshold (compared in float32).
* A GT part of a matched human earns 1/N_p when any of the N_p predicted proposals for that part has IoU **>=**
  the part threshold and exactly the GT state string. Proposals may be lists (2021 evaluator) or one box and one
  state (2022 evaluator).
* Frame score = credits / number of GT parts of all GT humans in the frame. Frames with no GT humans are not
  counted; frames whose humans have no parts are not counted **when the frame is predicted** -- a GT frame
  missing from the prediction always counts, with score 0 (the evaluator skips it before counting parts).
* PSC_v = mean frame score over counted frames; 1.0 when no frame counts.
* Acc(t) = fraction of GT videos whose predicted class is right and PSC_v >= t.
* Score = sum_{k=1}^{9999} 1e-4 * Acc(k / 1e4), accumulated in that order (so the float result matches the
  evaluator's bit for bit); :func:`closed_form_score` gives the same value in closed form up to rounding.

``per_class`` of the result maps each GT action class to that class's score (the same area over the class's
videos only); per-video PSC values are in :class:`TpsScores`.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from partwise.data.kinetics_tps import proposals, read_part_result, read_vid_result
from partwise.errors import InputError
from partwise.eval.report import EvalResult

HUMAN_IOU = 0.5
PART_IOU = 0.3
STEPS = 10000
MAX_HUMANS = 10
MAX_PROPOSALS = 5
GRID_IOUS = (0.001, 0.3, 0.5, 0.9, 0.99)
GRID_THRESHOLDS = (0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def iou_plus1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a`` (n, 4) and ``b`` (m, 4) -> (n, m), +1-pixel areas, -1 where they do not overlap.

    Arithmetic happens in the arrays' dtype (float32 for human boxes, float64 for parts), in the evaluator's order.
    """
    a = a[:, None, :]
    b = b[None, :, :]
    one = a.dtype.type(1)
    inter_w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + one
    inter_h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + one
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0] + one) * (a[..., 3] - a[..., 1] + one)
    area_b = (b[..., 2] - b[..., 0] + one) * (b[..., 3] - b[..., 1] + one)
    union = area_a + area_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter.astype(np.float64) / union.astype(np.float64)
    return np.where((inter_w <= 0) | (inter_h <= 0), -1.0, iou)


def match_humans(gt_boxes: np.ndarray, pred_boxes: np.ndarray, threshold: float = HUMAN_IOU) -> dict[int, tuple[int, float]]:
    """Hungarian human matching of one frame: ``{gt index: (pred index, IoU)}`` for pairs with IoU > threshold.

    ``gt_boxes`` (n, 4), ``pred_boxes`` (m, 4). IoUs are float32 like the evaluator's matrix; the matrix is padded
    with IoU-0 dummy rows/columns to square and the assignment minimises the total 1 - IoU.
    """
    n, m = len(gt_boxes), len(pred_boxes)
    if m:
        ious = iou_plus1(gt_boxes.astype(np.float32), pred_boxes.astype(np.float32)).astype(np.float32)
    else:
        ious = np.zeros((n, 0), np.float32)
    if m > n:
        ious = np.concatenate([ious, np.zeros((m - n, m))], axis=0)
    elif n > m:
        ious = np.concatenate([ious, np.zeros((n, n - m))], axis=1)
    rows, cols = linear_sum_assignment(1 - ious)
    real = (rows < n) & (cols < m)
    rows, cols = rows[real], cols[real]
    values = ious[rows, cols].astype(np.float32)
    keep = values > np.float32(threshold)
    return {int(r): (int(c), float(v)) for r, c, v in zip(rows[keep], cols[keep], values[keep])}


def part_credit(gt_box: list, gt_verb: str, boxes: list, verbs: list, threshold: float = PART_IOU) -> float:
    """1/N_p when any of the N_p proposals has IoU >= threshold with ``gt_box`` and state ``gt_verb``; else 0."""
    if not verbs:
        return 0.0
    if boxes:
        ious = iou_plus1(np.asarray([gt_box], np.float64), np.asarray(boxes, np.float64))[0]
        for iou, verb in zip(ious, verbs):
            if iou >= threshold and verb == gt_verb:
                return 1.0 / len(verbs)
    return 0.0


def frame_score(gt_humans: list, pred_humans: list, human_iou: float = HUMAN_IOU,
                part_iou: float = PART_IOU) -> float | None:
    """Part-state correctness of one predicted frame, or None when the frame does not count (no GT parts)."""
    n_parts = sum(len(h["parts"]) for h in gt_humans)
    if not gt_humans or n_parts == 0:
        return None
    gt_boxes = np.asarray([h["box"] for h in gt_humans], np.float64).reshape(-1, 4)
    pred_boxes = np.asarray([h["box"] for h in pred_humans], np.float64).reshape(-1, 4)
    matches = match_humans(gt_boxes, pred_boxes, human_iou)
    credit = 0.0
    for i, (pred_index, _) in matches.items():
        pred_parts = pred_humans[pred_index].get("parts", {})
        for part_name, gt_part in gt_humans[i]["parts"].items():
            if part_name in pred_parts:
                boxes, verbs = proposals(pred_parts[part_name])
                credit += part_credit(gt_part["box"], gt_part["verb"], boxes, verbs, part_iou)
    return credit / n_parts


def video_psc(gt_frames: dict, pred_frames: dict, human_iou: float = HUMAN_IOU, part_iou: float = PART_IOU) -> float:
    """PSC of one video: mean frame score over counted GT frames (missing predicted frames score 0); 1.0 if none."""
    total, count = 0.0, 0
    for name, frame in gt_frames.items():
        gt_humans = frame["humans"]
        if not gt_humans:
            continue
        if name not in pred_frames:
            count += 1
            continue
        score = frame_score(gt_humans, pred_frames[name]["humans"], human_iou, part_iou)
        if score is not None:
            total += score
            count += 1
    return total / count if count else 1.0


def conditioned_accuracy(psc: np.ndarray, correct: np.ndarray, t: float) -> float:
    """Acc(t): fraction of videos with the right class and PSC >= t."""
    return int(np.count_nonzero(correct & (psc >= t))) / len(psc) if len(psc) else 0.0


def official_score(psc: np.ndarray, correct: np.ndarray, steps: int = STEPS) -> float:
    """Area under Acc(t) as the evaluator sums it: sum over k = 1..steps-1 of (1/steps) * Acc(k/steps), in order.

    Acc for every threshold comes from one sort; the running float sum reproduces the evaluator's rounding.
    """
    if not len(psc):
        return 0.0
    thresholds = np.arange(1, steps) / steps
    right = np.sort(np.asarray(psc, np.float64)[np.asarray(correct, bool)])
    counts = len(right) - np.searchsorted(right, thresholds, side="left")  # videos with psc >= t
    terms = 1.0 / steps * (counts / len(psc))
    return float(np.cumsum(terms)[-1])


def closed_form_score(psc: np.ndarray, correct: np.ndarray, steps: int = STEPS) -> float:
    """The same area in closed form: mean over videos of correct * (number of k in 1..steps-1 with k/steps <= PSC)
    / steps, i.e. about mean(correct * PSC), capped at (steps-1)/steps."""
    if not len(psc):
        return 0.0
    thresholds = np.arange(1, steps) / steps
    levels = np.searchsorted(thresholds, np.asarray(psc, np.float64), side="right")
    return float(np.sum(np.asarray(correct, bool) * levels) / (steps * len(psc)))


@dataclass
class TpsScores:
    """Per-video outcome: ``videos`` (GT order), ``labels`` (GT class), ``psc`` and ``correct`` (bool) arrays."""

    videos: list[str]
    labels: list[str]
    psc: np.ndarray
    correct: np.ndarray

    @property
    def score(self) -> float:
        return official_score(self.psc, self.correct)


def score_videos(gt_parts: dict, gt_videos: dict, pred_parts: dict, pred_videos: dict, *,
                 human_iou: float = HUMAN_IOU, part_iou: float = PART_IOU, missing_as_zero: bool = False,
                 names: tuple[str, str] = ("pred_part_result.json", "pred_vid_result.json")) -> TpsScores:
    """PSC and class correctness of every video of ``gt_videos``.

    A GT video absent from the prediction is an :class:`InputError` naming it, unless ``missing_as_zero`` (then
    its class is wrong and every counted frame scores 0). Predicted videos that are not in the GT are ignored.
    """
    videos, labels, psc, correct = [], [], [], []
    for vid, label in gt_videos.items():
        if vid not in gt_parts:
            raise InputError("gt_part_result.json", vid, "video of gt_vid_result.json missing from gt_part_result.json")
        for name, pred in zip(names, (pred_parts, pred_videos)):
            if vid not in pred and not missing_as_zero:
                raise InputError(name, vid, "video missing from the prediction (use --missing-as-zero to score it 0)")
        pred_frames = pred_parts.get(vid, {})
        for frame in pred_frames.values():
            humans = frame["humans"]
            if len(humans) > MAX_HUMANS:
                raise InputError(names[0], vid, f"{len(humans)} humans in a frame; the evaluator allows {MAX_HUMANS}")
            for human in humans:
                for part_name, part in human.get("parts", {}).items():
                    if len(proposals(part)[1]) > MAX_PROPOSALS:
                        raise InputError(names[0], f"{vid}.{part_name}",
                                         f"more than {MAX_PROPOSALS} proposals for a part")
        videos.append(vid)
        labels.append(label)
        psc.append(video_psc(gt_parts[vid], pred_frames, human_iou, part_iou))
        correct.append(pred_videos.get(vid) == label)
    return TpsScores(videos, labels, np.asarray(psc, np.float64), np.asarray(correct, bool))


def diagnostics_grid(gt_parts: dict, gt_videos: dict, pred_parts: dict, pred_videos: dict,
                     missing_as_zero: bool = False) -> dict[str, dict[str, float]]:
    """The evaluator's 5x5 grid: for each (human IoU, part IoU) in ``GRID_IOUS``^2, Acc(t) for t in 0..0.9 and
    the area. Keys ``"human 0.5 / part 0.3"`` -> ``{"t0.0": ..., ..., "t0.9": ..., "area": ...}``."""
    grid = {}
    for hi in GRID_IOUS:
        for pi in GRID_IOUS:
            s = score_videos(gt_parts, gt_videos, pred_parts, pred_videos, human_iou=hi, part_iou=pi,
                             missing_as_zero=missing_as_zero)
            row = {f"t{t:.1f}": conditioned_accuracy(s.psc, s.correct, t) for t in GRID_THRESHOLDS}
            row["area"] = s.score
            grid[f"human {hi:g} / part {pi:g}"] = row
    return grid


def evaluate(gt_parts: dict, gt_videos: dict, pred_parts: dict, pred_videos: dict, *,
             human_iou: float = HUMAN_IOU, part_iou: float = PART_IOU, missing_as_zero: bool = False,
             grid: bool = False,
             names: tuple[str, str] = ("pred_part_result.json", "pred_vid_result.json")) -> EvalResult:
    """The official score as an :class:`EvalResult` (metric ``score``; ``per_class``: the score of each GT class's
    videos; extra: video accuracy, mean PSC, Acc(t) at 0, 0.1, ..., 0.9, and with ``grid`` the 5x5 diagnostics)."""
    s = score_videos(gt_parts, gt_videos, pred_parts, pred_videos, human_iou=human_iou, part_iou=part_iou,
                     missing_as_zero=missing_as_zero, names=names)
    labels = np.asarray(s.labels, dtype=object)
    per_class = {}
    for label in sorted(set(s.labels)):
        sel = labels == label
        per_class[label] = official_score(s.psc[sel], s.correct[sel])
    extra = {
        "videos": len(s.videos),
        "video_accuracy": float(np.mean(s.correct)) if len(s.videos) else 0.0,
        "mean_psc": float(np.mean(s.psc)) if len(s.videos) else 0.0,
        "accuracy_at": {f"t{t:.1f}": conditioned_accuracy(s.psc, s.correct, t) for t in GRID_THRESHOLDS},
    }
    if grid:
        for key, row in diagnostics_grid(gt_parts, gt_videos, pred_parts, pred_videos, missing_as_zero).items():
            extra[f"grid {key}"] = row
    protocol = f"kinetics-tps (human IoU > {human_iou:g}, part IoU >= {part_iou:g})"
    return EvalResult(protocol, s.score, metric="score", per_class=per_class,
                      class_names={k: k for k in per_class}, extra=extra)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt-parts", required=True, metavar="F", help="gt_part_result.json")
    parser.add_argument("--gt-videos", required=True, metavar="F", help="gt_vid_result.json")
    parser.add_argument("--pred-parts", required=True, metavar="F", help="pred_part_result.json")
    parser.add_argument("--pred-videos", required=True, metavar="F", help="pred_vid_result.json")
    parser.add_argument("--human-iou", type=float, default=HUMAN_IOU, help="human match threshold (IoU >, 0.5)")
    parser.add_argument("--part-iou", type=float, default=PART_IOU, help="part threshold (IoU >=, 0.3)")
    parser.add_argument("--missing-as-zero", action="store_true",
                        help="score GT videos missing from the prediction 0 instead of failing")
    parser.add_argument("--grid", action="store_true", help="add the evaluator's 5x5 IoU-threshold diagnostics")


def run(args: argparse.Namespace) -> EvalResult:
    gt_parts = read_part_result(args.gt_parts, pred=False)
    gt_videos = read_vid_result(args.gt_videos)
    pred_parts = read_part_result(args.pred_parts, pred=True)
    pred_videos = read_vid_result(args.pred_videos)
    return evaluate(gt_parts, gt_videos, pred_parts, pred_videos, human_iou=args.human_iou, part_iou=args.part_iou,
                    missing_as_zero=args.missing_as_zero, grid=args.grid,
                    names=(args.pred_parts, args.pred_videos))
