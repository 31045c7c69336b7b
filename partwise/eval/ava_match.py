"""Matching and AP of the AVA evaluator: paired IoU with the TF object-detection arithmetic, greedy argmax
matching per (class, keyframe) group, VOC all-points AP, and the official tool's per-keyframe order replayed
where its heap decides the result."""
from __future__ import annotations

import heapq

import numpy as np

from partwise.eval.ava_order import _run_starts

IOU_THRESHOLD = 0.5
#: detections kept per keyframe by the official evaluator (ActivityNet PR #42)
OFFICIAL_TOP_K = 50


def pairwise_iou(det: np.ndarray, gt: np.ndarray, float32: bool = False) -> np.ndarray:
    """IoU of paired boxes ``det[i]`` and ``gt[i]`` (n, 4) x1, y1, x2, y2, with the exact floating-point steps of
    the TF object-detection ``np_box_ops.iou`` the AVA tools use: continuous areas (no +1), union = area_det +
    area_gt - intersection. With ``float32`` the inputs are float32 and the intermediate precisions are those
    numpy gives that code (float32 differences and areas, float64 intersection and quotient). 0/0 gives NaN."""
    if float32:
        det = det.astype(np.float32)
        gt = gt.astype(np.float32)
    h = np.maximum(np.minimum(det[:, 3], gt[:, 3]) - np.maximum(det[:, 1], gt[:, 1]), 0).astype(np.float64)
    w = np.maximum(np.minimum(det[:, 2], gt[:, 2]) - np.maximum(det[:, 0], gt[:, 0]), 0).astype(np.float64)
    inter = h * w
    area_det = (det[:, 3] - det[:, 1]) * (det[:, 2] - det[:, 0])
    area_gt = (gt[:, 3] - gt[:, 1]) * (gt[:, 2] - gt[:, 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / ((area_det + area_gt) - inter)


def match(det_group: np.ndarray, det_boxes: np.ndarray, gt_group: np.ndarray, gt_boxes: np.ndarray,
          float32: bool = False, threshold: float = IOU_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Greedy argmax matching.

    ``det_group`` (n,) int64 (class, keyframe) group of each detection, detections in greedy order inside each
    group; ``gt_group`` (m,) sorted, GT boxes of a group in the order the tool lists them; boxes (., 4)
    x1, y1, x2, y2. Each detection takes its argmax-IoU GT of the group (first maximum; NaN counts as maximum);
    it is a TP iff IoU >= threshold and no earlier detection of the group took that GT.

    Returns ``tp`` (n,) bool and ``argmax_ties`` (n,) bool (the best IoU, >= threshold, is reached by more than
    one GT box, so the GT order decides).
    """
    n = det_group.shape[0]
    tp = np.zeros(n, dtype=bool)
    ties = np.zeros(n, dtype=bool)
    if n == 0 or gt_group.shape[0] == 0:
        return tp, ties
    start = np.searchsorted(gt_group, det_group, side="left")
    count = np.searchsorted(gt_group, det_group, side="right") - start
    active = np.flatnonzero(count)
    start, count = start[active], count[active]
    best = np.full(active.shape[0], -np.inf)
    best_gt = np.full(active.shape[0], -1, dtype=np.int64)
    n_best = np.zeros(active.shape[0], dtype=np.int64)
    det_active = det_boxes[active]
    live = np.arange(active.shape[0])
    j = 0
    while live.size:
        g = start[live] + j
        iou = pairwise_iou(det_active[live], gt_boxes[g], float32)
        current = best[live]
        take = (iou > current) | (np.isnan(iou) & ~np.isnan(current))
        best[live] = np.where(take, iou, current)
        best_gt[live] = np.where(take, g, best_gt[live])
        n_best[live] = np.where(take, 1, n_best[live] + (iou == current))
        j += 1
        live = live[count[live] > j]
    hit = np.flatnonzero(best >= threshold)
    ties[active[hit]] = n_best[hit] > 1
    # Detections are in greedy order within each group: the first to claim a GT box is the TP.
    _, first = np.unique(best_gt[hit], return_index=True)
    tp[active[hit[first]]] = True
    return tp, ties



def precision_recall(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Ranked precision and recall, ranking by ``argsort(scores)[::-1]`` (numpy's default sort, the tie order the
    AVA tools get). ``scores`` and ``tp`` (n,) in concatenation order."""
    order = np.argsort(scores)[::-1]
    hits = tp[order].astype(int)
    cum_tp = np.cumsum(hits)
    cum_fp = np.cumsum(1 - hits)
    precision = cum_tp.astype(float) / (cum_tp + cum_fp)
    recall = cum_tp.astype(float) / num_gt
    return precision, recall


def voc_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC all-points AP: pad recall with 0 and 1 and precision with 0 and 0, make precision non-increasing from
    the right, sum (r_i - r_{i-1}) * p_i where recall changes. 0.0 for no detections."""
    if precision.size == 0:
        return 0.0
    recall = np.concatenate([[0], recall, [1]])
    precision = np.concatenate([[0], precision, [0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    indices = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[indices] - recall[indices - 1]) * precision[indices]))


def _nanmean(values) -> float:
    values = np.asarray(list(values), dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")



def official_keyframe(det_entries: list[tuple], gt_entries: list[tuple], top_k: int = OFFICIAL_TOP_K,
                      threshold: float = IOU_THRESHOLD) -> list[tuple[int, float, bool]]:
    """One keyframe exactly as the official tool processes it.

    ``det_entries``: ``(score, class, y1, x1, y2, x2)`` of the keyframe's evaluated-class detection rows in file
    order; ``gt_entries``: ``(score, class, y1, x1, y2, x2)`` of its GT rows (score = the 8th column, or 1.0).
    Both go through a min-heap (detections capped at ``top_k``; a new entry displaces the minimum only with a
    strictly greater score), then a stable sort by descending score. Returns ``(class, score, tp)`` per kept
    valid detection, in that order.
    """
    heap: list = []
    for entry in det_entries:
        if top_k < 1 or len(heap) < top_k:
            heapq.heappush(heap, entry)
        elif entry[0] > heap[0][0]:
            heapq.heapreplace(heap, entry)
    dets = sorted(heap, key=lambda e: -e[0])
    gheap: list = []
    for entry in gt_entries:
        heapq.heappush(gheap, entry)
    gts = sorted(gheap, key=lambda e: -e[0])
    matched: set = set()
    out = []
    for score, cls, y1, x1, y2, x2 in dets:
        if not (y1 < y2 and x1 < x2):
            continue
        best, best_index = -np.inf, -1
        for index, (_, gcls, gy1, gx1, gy2, gx2) in enumerate(gts):
            if gcls != cls:
                continue
            h = max(0.0, min(y2, gy2) - max(y1, gy1))
            w = max(0.0, min(x2, gx2) - max(x1, gx1))
            inter = h * w
            union = ((y2 - y1) * (x2 - x1) + (gy2 - gy1) * (gx2 - gx1)) - inter
            iou = inter / union if union else float("nan")
            if iou > best or (iou != iou and best == best):
                best, best_index = iou, index
        hit = best_index >= 0 and best >= threshold and best_index not in matched
        if hit:
            matched.add(best_index)
        out.append((int(cls), float(score), bool(hit)))
    return out


def _replay_official(cls, kf, score, tp, ties, n_frames, det_rows, det_use, det_kf_rows, gt_rows, gt_use,
                     gt_kf_rows, progress):
    """Fix ``tp`` in place on the keyframes where the official tool's heap order decides it: a run of equal
    (class, score) detections holding both TPs and FPs (their order moves the TP inside the ranking), or an
    argmax IoU tie between GT boxes. Arrays are sorted by (class, keyframe, rank); returns the keyframes replayed."""
    n = cls.shape[0]
    if n == 0:
        return np.empty(0, np.int64)
    group = cls * (n_frames + 1) + kf
    run = np.cumsum(_run_starts(group) | _run_starts(score)) - 1
    hits = np.bincount(run, weights=tp)
    size = np.bincount(run)
    mixed = (hits > 0) & (hits < size)
    replay = np.unique(np.concatenate([kf[mixed[run]], kf[ties]]))
    if replay.size == 0:
        return replay
    wanted = np.zeros(n_frames + 2, dtype=bool)
    wanted[replay] = True
    det_sel = np.flatnonzero(det_use & wanted[np.minimum(det_kf_rows, n_frames + 1)])
    gt_sel = np.flatnonzero(gt_use & wanted[np.minimum(gt_kf_rows, n_frames + 1)])
    det_groups = _split_by(det_kf_rows[det_sel], det_sel)
    gt_groups = _split_by(gt_kf_rows[gt_sel], gt_sel)
    group_start = np.flatnonzero(_run_starts(group))
    group_end = np.append(group_start[1:], n)
    group_keys = group[group_start]
    iterator = replay.tolist()
    if progress:
        from partwise.progress import bar as tqdm

        iterator = tqdm(iterator, desc="official tie order", unit="keyframe")
    for frame in iterator:
        rows = det_groups.get(frame, np.empty(0, np.int64))
        grows = gt_groups.get(frame, np.empty(0, np.int64))
        b, gb = det_rows.boxes[rows], gt_rows.boxes[grows]
        d_score = np.where(det_rows.n_columns[rows] == 8, det_rows.score[rows], 1.0)  # replayed rows only
        g_score = np.where(gt_rows.n_columns[grows] == 8, gt_rows.person_id[grows].astype(np.float64), 1.0)
        d_entries = list(zip(d_score.tolist(), det_rows.action[rows].tolist(),
                             b[:, 1].tolist(), b[:, 0].tolist(), b[:, 3].tolist(), b[:, 2].tolist()))
        g_entries = list(zip(g_score.tolist(), gt_rows.action[grows].tolist(),
                             gb[:, 1].tolist(), gb[:, 0].tolist(), gb[:, 3].tolist(), gb[:, 2].tolist()))
        per_class: dict[int, list] = {}
        for c, s, hit in official_keyframe(d_entries, g_entries):
            per_class.setdefault(c, []).append((s, hit))
        for c, items in per_class.items():
            where = min(int(np.searchsorted(group_keys, c * (n_frames + 1) + frame)), group_keys.shape[0] - 1)
            lo, hi = int(group_start[where]), int(group_end[where])
            if hi - lo != len(items) or not np.array_equal(score[lo:hi], [s for s, _ in items]):
                raise RuntimeError(f"AVA evaluator: replay of keyframe {frame} class {c} disagrees")
            tp[lo:hi] = [hit for _, hit in items]
    return replay


def _split_by(keys: np.ndarray, values: np.ndarray) -> dict[int, np.ndarray]:
    """``{key: values with that key, in their original order}``."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(_run_starts(sorted_keys))
    ends = np.append(starts[1:], sorted_keys.shape[0])
    return {int(sorted_keys[s]): values[order[s:e]] for s, e in zip(starts, ends)}
