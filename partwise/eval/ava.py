"""AVA frame-mAP @ IoU 0.5 under three protocols, and the PaSta variant of HAKE-AVA.

Three stages, vectorized with numpy (no Python loop per detection row):

* **match** -- per (keyframe, class): each detection, in the protocol's order, looks at its argmax-IoU ground-truth
  box of that class only (first maximum on ties, no fallback to the second best); it is a true positive if that
  IoU is >= 0.5 and the box is not matched yet, else a false positive.
* **accumulate** -- per class, the detections' scores and TP flags concatenated over keyframes in the protocol's
  keyframe order, then ranked with ``argsort(scores)[::-1]`` exactly as the original tools do (so score ties
  fall the same way).
* **summarize** -- VOC all-points AP per class (precision envelope from the right, summed where recall changes)
  and their mean.

Profiles (``profile=``):

``official``
    ActivityNet ``get_ava_performance.py`` as of 2020: the top 50 (score, class, box) entries per keyframe across
    classes are kept with the original heap's tie behaviour; only keyframes present in the GT file are evaluated
    (a 2-column row, or rows of non-evaluated classes only, make a keyframe present: its detections are false
    positives); detections with zero width or height are dropped; a class with GT and no detections has AP 0;
    no exclusions.
``mmaction2``
    mmaction2 1.x ``ava_eval``: exclusions; no cap; only keyframes with GT of an evaluated class count (other
    detections are ignored); boxes and scores in float32; zero-area detections stay (as false positives); GT of
    excluded keyframes still counts; classes without any detection are left out of the mean. Group means:
    person movement (id <= 14), object manipulation (15..63), person interaction (>= 64).
``slowfast``
    the SlowFast / 2018-2019 ActivityNet protocol: exclusions; no cap; detections on every non-excluded keyframe
    count (false positives where there is no GT); detections are matched in file order, not score order; GT of
    excluded keyframes does not count; classes with GT and no detections count 0.

mmaction2 and SlowFast key keyframes by ``int(timestamp)``; the official tool by the timestamp to the
microsecond. 2-column rows carry no box: they only mark keyframes, which matters to the official profile.

The PaSta variant (``pasta=True``) evaluates the 87 HAKE-AVA part states (label map ``part_state.pbtxt``; the
action column holds the PaSta id) the way ST-Activity2Vec reports it: its evaluator is SlowFast's (default profile
``slowfast``), per-part mAP = mean AP over the items whose name starts with ``"<part>:"``, headline = mean of the
six part mAPs.
"""
from __future__ import annotations

import csv
import heapq
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from partwise.data.ava import AvaCsv
from partwise.errors import ConfigError, InputError
from partwise.eval.report import EvalResult

PROFILES: tuple[str, ...] = ("official", "mmaction2", "slowfast")
IOU_THRESHOLD = 0.5
#: detections kept per keyframe by the official evaluator (ActivityNet PR #42)
OFFICIAL_TOP_K = 50
#: mmaction2's group means: (name, lowest id, highest id), inclusive.
MMACTION2_GROUPS: tuple[tuple[str, int, int], ...] = (
    ("person_movement", 1, 14), ("object_manipulation", 15, 63), ("person_interaction", 64, 10**9),
)
PASTA_PARTS: tuple[str, ...] = ("foot", "leg", "hip", "hand", "arm", "head")


@dataclass(frozen=True)
class Profile:
    """What distinguishes one protocol from another (see the module docstring)."""

    name: str
    top_k: int                 # per-keyframe cap across classes; 0 = none
    key: str                   # "us": timestamp to the microsecond; "int": int(timestamp)
    det_order: str             # within a keyframe: "heap" (official), "stable" (score desc, file order), "file"
    gt_order: str              # within a keyframe: "heap", "stable" (by the 8th column desc), "file"
    frames: str                # evaluated keyframes: "gt_file", "gt_evaluated", "all"
    float32: bool              # boxes and scores rounded to float32 before matching (mmaction2)
    drop_invalid: bool         # detections with x2 <= x1 or y2 <= y1 removed
    exclusions: bool           # accepts an exclusions file
    gt_of_excluded_counts: bool
    classes_without_dets: str  # "zero" (AP 0, in the mean) or "drop" (left out of the mean)
    keyframe_order: str        # per-class concatenation order of keyframes: "det" or "gt" first appearance


PROFILE_SPECS: dict[str, Profile] = {
    "official": Profile("official", OFFICIAL_TOP_K, "us", "heap", "heap", "gt_file", False, True, False, False,
                        "zero", "det"),
    "mmaction2": Profile("mmaction2", 0, "int", "stable", "stable", "gt_evaluated", True, False, True, True,
                         "drop", "gt"),
    "slowfast": Profile("slowfast", 0, "int", "file", "file", "all", False, True, True, False, "zero", "det"),
}


# --------------------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------------------

def make_rows(video_ids: Iterable[str], timestamps, boxes=None, actions=None, scores=None, person_ids=None,
              *, path: str = "<memory>") -> AvaCsv:
    """Rows from plain sequences: ``video_ids`` (N,), ``timestamps`` (N,) seconds, ``boxes`` (N, 4) x1, y1, x2, y2
    (NaN rows = 2-column keyframe rows), ``actions`` (N,) class ids, optional ``scores`` (N,) (detections) and
    ``person_ids`` (N,). Line numbers are 1..N."""
    names = np.asarray(list(video_ids), dtype=object)
    n = names.shape[0]
    videos, codes = (np.unique(names.astype(str), return_inverse=True) if n else (np.empty(0, str), np.empty(0, int)))
    box = np.full((n, 4), np.nan) if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(n, 4)
    action = np.full(n, -1, np.int32) if actions is None else np.asarray(actions, dtype=np.int32).reshape(n)
    has_box = ~np.isnan(box).any(axis=1)
    score = np.full(n, np.nan) if scores is None else np.asarray(scores, dtype=np.float64).reshape(n)
    pid = np.full(n, -1, np.int64) if person_ids is None else np.asarray(person_ids, dtype=np.int64).reshape(n)
    ncol = np.where(has_box, np.where(~np.isnan(score) | (pid >= 0), 8, 7), 2).astype(np.int8)
    timestamp = np.asarray(timestamps, np.float64).reshape(n)
    return AvaCsv(path, [str(v) for v in videos], codes.astype(np.int32), timestamp, box, action, pid, score, ncol,
                   np.arange(1, n + 1, dtype=np.int64))


def as_rows(source: Any, *, kind: str, valid_actions=None, label_ids_by_name: Mapping[str, int] | None = None,
            pasta: bool = False) -> AvaCsv:
    """Accept an :class:`~partwise.data.ava.AvaCsv` (or anything with its fields), a path to an AVA CSV (read with
    :func:`partwise.data.ava.read_csv`) or a ``pyarrow.Table`` of person records (``PERSON_SCHEMA``)."""
    if isinstance(source, AvaCsv):
        return source
    if isinstance(source, (str, os.PathLike)):
        return read_rows(source, kind=kind, valid_actions=valid_actions)
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pa = None
    if pa is not None and isinstance(source, pa.Table):
        return rows_from_records(source, pasta=pasta, label_ids_by_name=label_ids_by_name)
    fields = ("videos", "video_codes", "timestamp", "boxes", "action", "person_id", "score", "n_columns", "line")
    if all(hasattr(source, f) for f in fields):
        return AvaCsv(str(getattr(source, "path", "<memory>")), list(source.videos),
                       *(np.asarray(getattr(source, f)) for f in fields[1:]))
    raise TypeError(f"cannot evaluate {type(source).__name__}: give a path, an AvaCsv or a records table")


def read_rows(path: str | os.PathLike, *, kind: str, valid_actions=None) -> AvaCsv:
    """Read an AVA CSV with :func:`partwise.data.ava.read_csv`. An empty detection file is an empty input (no
    detections), not an error."""
    from partwise.data.ava import read_csv

    path = os.fspath(path)
    if kind == "det":
        try:
            with open(path, "rb") as fh:
                empty = not fh.read(1 << 16).strip() and os.path.getsize(path) < (1 << 16)
        except OSError as exc:
            raise InputError(path, None, f"cannot read: {exc.strerror}") from None
        if empty:
            return _empty_rows(path)
    table = read_csv(path, kind=kind, valid_actions=valid_actions, keep_formats=False)
    return as_rows(table, kind=kind)


def _empty_rows(path: str) -> AvaCsv:
    return AvaCsv(path, [], np.empty(0, np.int32), np.empty(0), np.empty((0, 4)), np.empty(0, np.int32),
                   np.empty(0, np.int64), np.empty(0), np.empty(0, np.int8), np.empty(0, np.int64))


def rows_from_records(table, *, pasta: bool = False, label_ids_by_name: Mapping[str, int] | None = None) -> AvaCsv:
    """Explode person records (``PERSON_SCHEMA``) into one row per (person, class): the ``actions`` ids, or with
    ``pasta`` the ``pasta`` names mapped to ids by ``label_ids_by_name`` (default: the ``pasta_ava87`` vocabulary).
    The record's ``score`` (null for GT) is each row's score; line = record index + 1."""
    import pyarrow.compute as pc

    column = table.column("pasta" if pasta else "actions").combine_chunks()
    parents = np.asarray(pc.list_parent_indices(column), dtype=np.int64)
    values = pc.list_flatten(column)
    if pasta:
        if label_ids_by_name is None:
            from partwise import vocab

            v = vocab.load("pasta_ava87")
            label_ids_by_name = dict(zip(v.names, v.ids))
        import pyarrow as pa

        known = list(label_ids_by_name)
        position = np.asarray(pc.index_in(values, value_set=pa.array(known, pa.string())).fill_null(-1),
                              dtype=np.int64)
        if (position < 0).any():
            first = int(np.flatnonzero(position < 0)[0])
            record = int(parents[first])
            where = (table.column("source")[record].as_py() if "source" in table.column_names else None) \
                or f"record {record}"
            raise InputError("<records>", where, f"unknown part state {values[first].as_py()!r}")
        action = np.asarray([label_ids_by_name[name] for name in known], dtype=np.int32)[position]
    else:
        action = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int32)
    video = table.column("video_id").combine_chunks()
    videos_dict = pc.dictionary_encode(video)
    codes = np.asarray(videos_dict.indices.to_numpy(zero_copy_only=False), np.int32)[parents]
    videos = videos_dict.dictionary.to_pylist()

    def col(name, fill):
        return np.asarray(table.column(name).fill_null(fill).to_numpy(), dtype=np.float64)[parents]

    boxes = np.stack([col(k, np.nan) for k in ("x1", "y1", "x2", "y2")], axis=1)
    score = col("score", np.nan)
    pid = np.asarray(table.column("person_id").fill_null(-1).to_numpy(), np.int64)[parents]
    ncol = np.where(~np.isnan(score) | (pid >= 0), 8, 7).astype(np.int8)
    return AvaCsv("<records>", videos, codes, col("time_s", np.nan), boxes, action, pid, score, ncol,
                   parents + 1)


def read_exclusions(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """An exclusions CSV (``video_id,second`` per line) -> (video ids, seconds float64). Raises InputError."""
    path = os.fspath(path)
    videos, seconds = [], []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for number, row in enumerate(csv.reader(fh), 1):
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != 2:
                    raise InputError(path, number, f"expected 2 columns (video_id,second), got {len(row)}")
                try:
                    second = float(row[1])
                except ValueError:
                    raise InputError(path, number, f"timestamp is not a number: {row[1]!r}") from None
                if not np.isfinite(second):
                    raise InputError(path, number, f"timestamp is not finite: {row[1]!r}")
                videos.append(row[0].strip())
                seconds.append(second)
    except OSError as exc:
        raise InputError(path, None, f"cannot read exclusions: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(path, None, "not UTF-8 text") from None
    return videos, np.asarray(seconds, dtype=np.float64)


# --------------------------------------------------------------------------------------------------------------
# keyframes and orderings
# --------------------------------------------------------------------------------------------------------------

def _timestamp_keys(timestamp: np.ndarray, mode: str) -> np.ndarray:
    """Integer keyframe time: microseconds (``"us"``, the official ``"%.6f"`` key) or ``int(ts)`` (``"int"``)."""
    if mode == "us":
        return np.rint(timestamp * 1e6).astype(np.int64)
    return np.trunc(timestamp).astype(np.int64)


def _run_starts(values: np.ndarray) -> np.ndarray:
    """(n,) bool: True where a run of equal consecutive values starts."""
    flags = np.ones(values.shape[0], dtype=bool)
    if values.shape[0] > 1:
        np.not_equal(values[1:], values[:-1], out=flags[1:])
    return flags


def _positions_in_runs(values: np.ndarray) -> np.ndarray:
    """(n,) int64: position of each element inside its run of equal consecutive values (0, 1, 2, ...)."""
    n = values.shape[0]
    starts = np.flatnonzero(_run_starts(values))
    return np.arange(n, dtype=np.int64) - np.repeat(starts, np.diff(np.append(starts, n)))


class _Keyframes:
    """Joint keyframe ids for several row sets: ``ids[i]`` (n_i,) int64 in 0..count-1, equal iff same video and
    same timestamp key. Rows of one keyframe usually come together, so the ids are found on runs, not rows."""

    def __init__(self, sources: list[tuple[list, np.ndarray, np.ndarray]], mode: str):
        names = sorted({str(v) for videos, _, _ in sources for v in videos})
        lookup = np.asarray(names, dtype=object)
        codes, times = [], []
        for videos, video_codes, timestamp in sources:
            remap = (np.searchsorted(lookup, np.asarray([str(v) for v in videos], dtype=object)).astype(np.int64)
                     if len(videos) else np.empty(0, np.int64))
            codes.append(remap[video_codes] if len(video_codes) else np.empty(0, np.int64))
            times.append(_timestamp_keys(timestamp, mode))
        lo = min((int(t.min()) for t in times if t.size), default=0)
        hi = max((int(t.max()) for t in times if t.size), default=0)
        span = hi - lo + 1
        if span * max(len(names), 1) >= 2**62:
            raise ConfigError("timestamps span too wide to key keyframes")
        keys = [c * span + (t - lo) for c, t in zip(codes, times)]
        run_keys, run_lengths = [], []
        for k in keys:
            starts = np.flatnonzero(_run_starts(k))
            run_keys.append(k[starts])
            run_lengths.append(np.diff(np.append(starts, k.shape[0])))
        uniq, inverse = np.unique(np.concatenate(run_keys), return_inverse=True)
        self.count = int(uniq.shape[0])
        self.ids, offset = [], 0
        for rk, lengths in zip(run_keys, run_lengths):
            self.ids.append(np.repeat(inverse[offset:offset + rk.shape[0]].astype(np.int64), lengths))
            offset += rk.shape[0]


def _first_appearance_order(kf: np.ndarray, count: int) -> np.ndarray:
    """(count,) int64: rank of each keyframe id by its first row in ``kf`` (rows in file order); ``count`` for
    keyframes that do not occur."""
    order = np.full(count + 1, count, dtype=np.int64)
    starts = np.flatnonzero(_run_starts(kf))
    uniq, first = np.unique(kf[starts], return_index=True)
    order[uniq[np.argsort(first, kind="stable")]] = np.arange(uniq.shape[0])
    return order


def _stable_argsort_small(values: np.ndarray) -> np.ndarray:
    """Stable argsort; radix sort when the values fit in int16."""
    if values.size and values.min() >= -32768 and values.max() < 32768:
        return np.argsort(values.astype(np.int16), kind="stable")
    return np.argsort(values, kind="stable")


def _order_by_group(group: np.ndarray) -> np.ndarray:
    """Stable order by ``group`` (skipped when already sorted, as in a file written keyframe by keyframe)."""
    if group.size < 2 or bool(np.all(group[1:] >= group[:-1])):
        return np.arange(group.shape[0])
    return np.argsort(group, kind="stable")


def _order_by_group_then_score(group: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Order rows by (group ascending, score descending, input position): one stable float sort of a composite
    key, verified, with ``np.lexsort`` as the fallback when the composite merges distinct scores out of order."""
    n = group.shape[0]
    if n < 2:
        return np.arange(n)
    lo, hi = float(score.min()), float(score.max())
    if hi == lo:
        return _order_by_group(group)
    if not np.isfinite(hi - lo):
        return np.lexsort((-score, group))
    composite = group.astype(np.float64) * 4.0 + (hi - score) * (2.0 / (hi - lo))
    order = np.argsort(composite, kind="stable")
    g, s = group[order], score[order]
    same = g[1:] == g[:-1]
    if np.any(g[1:] < g[:-1]) or np.any(same & (s[1:] > s[:-1])):
        order = np.lexsort((-score, group))
    return order


def _heap_top_k(kf: np.ndarray, score: np.ndarray, rank: np.ndarray, row: np.ndarray, action: np.ndarray,
                boxes: np.ndarray, k: int) -> np.ndarray:
    """Which detections the official per-keyframe min-heap of capacity ``k`` keeps, as a (n,) bool mask.

    Rows are sorted by (keyframe, score descending, file order); ``rank`` is the position inside the keyframe,
    ``row`` the file position. The heap keeps everything above the k-th score s*. Entries scoring exactly s* are
    all admitted until k entries >= s* have arrived (moment T); after T an s* entry is refused (not strictly
    greater) and each later entry above s* evicts the smallest remaining s* entry in tuple order
    (class, y1, x1, y2, x2). Only keyframes whose k-th and (k+1)-th scores tie need this; the rest keep rank < k.
    """
    keep = rank < k
    edge = np.flatnonzero(rank == k)
    tied = edge[score[edge] == score[edge - 1]]
    if tied.size == 0:
        return keep
    starts = tied - k
    ends = np.searchsorted(kf, kf[tied], side="right")
    lengths = ends - starts
    boundary = np.repeat(np.arange(tied.shape[0]), lengths)
    idx = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
    s_star = score[tied - 1][boundary]
    # arrival (file) order inside each boundary keyframe
    arrival = np.lexsort((row[idx], boundary))
    idx, boundary, s_star = idx[arrival], boundary[arrival], s_star[arrival]
    sc = score[idx]
    above, at = sc > s_star, sc == s_star
    at_least = above | at
    group_start = np.flatnonzero(_run_starts(boundary))
    cum = np.cumsum(at_least)
    offset = np.repeat(cum[group_start] - at_least[group_start], np.diff(np.append(group_start, idx.shape[0])))
    arrived_before = cum - at_least - offset          # entries >= s* that arrived before this one
    by_t = arrived_before < k                         # arrives no later than T
    above_total = np.bincount(boundary, weights=above, minlength=tied.shape[0])
    above_by_t = np.bincount(boundary, weights=above & by_t, minlength=tied.shape[0])
    evictions = (above_total - above_by_t).astype(np.int64)
    candidates = np.flatnonzero(at & by_t)
    cand_rows = row[idx[candidates]]
    b = boxes[cand_rows]
    smallest_first = np.lexsort((b[:, 2], b[:, 3], b[:, 0], b[:, 1], action[cand_rows], boundary[candidates]))
    candidates = candidates[smallest_first]
    evicted = _positions_in_runs(boundary[candidates]) < evictions[boundary[candidates]]
    kept_at = np.zeros(idx.shape[0], dtype=bool)
    kept_at[candidates[~evicted]] = True
    keep[idx] = above | kept_at
    return keep


# --------------------------------------------------------------------------------------------------------------
# match
# --------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------
# accumulate and summarize
# --------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------
# the official evaluator's order, replayed for the few keyframes where it decides the result
# --------------------------------------------------------------------------------------------------------------

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
    d_score = np.where(det_rows.n_columns == 8, det_rows.score, 1.0)
    g_score = np.where(gt_rows.n_columns == 8, gt_rows.person_id.astype(np.float64), 1.0)
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
        d_entries = list(zip(d_score[rows].tolist(), det_rows.action[rows].tolist(),
                             b[:, 1].tolist(), b[:, 0].tolist(), b[:, 3].tolist(), b[:, 2].tolist()))
        g_entries = list(zip(g_score[grows].tolist(), gt_rows.action[grows].tolist(),
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


def _check_rows(rows: AvaCsv, kind: str) -> None:
    """Reject what would break the arithmetic (in-memory inputs skip the CSV reader's checks): non-finite
    timestamps or boxes, 8-column detections without a score. Raises InputError naming the first bad line."""
    bad = ~np.isfinite(rows.timestamp)
    bad |= (rows.n_columns != 2) & ~np.isfinite(rows.boxes).all(axis=1)
    reason = "timestamp or box is not a finite number"
    if kind == "det":
        no_score = (rows.n_columns == 8) & np.isnan(rows.score)
        if no_score.any() and not bad.any():
            bad, reason = no_score, "detection without a score (8th column)"
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(rows.path, int(rows.line[first]), reason)


def _split_by(keys: np.ndarray, values: np.ndarray) -> dict[int, np.ndarray]:
    """``{key: values with that key, in their original order}``."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(_run_starts(sorted_keys))
    ends = np.append(starts[1:], sorted_keys.shape[0])
    return {int(sorted_keys[s]): values[order[s:e]] for s, e in zip(starts, ends)}


# --------------------------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------------------------

def evaluate(gt: Any, pred: Any, label_map: Mapping[int, str], *, profile: str = "official",
             exclusions: Any = None, pasta: bool = False, curves: bool = False, progress: bool = False) -> EvalResult:
    """AVA frame mAP @ IoU 0.5.

    ``gt`` and ``pred``: paths to AVA CSVs, :class:`~partwise.data.ava.AvaCsv` objects or person-record tables.
    ``label_map`` ``{class id: name}``: the evaluated classes (60 for AVA, 87 with ``pasta``). ``exclusions``: a
    path or ``(video ids, seconds)`` (mmaction2 and slowfast profiles). ``curves`` keeps per-class PR curves for
    plotting. Returns an :class:`EvalResult` with protocol ``"ava-<profile>"`` (``"ava-pasta-<profile>"``),
    ``per_class`` AP by class id string (NaN: no GT, or left out of the mean by the mmaction2 profile).
    """
    if profile not in PROFILE_SPECS:
        raise ConfigError(f"unknown AVA profile {profile!r} (choose from {', '.join(PROFILES)})")
    spec = PROFILE_SPECS[profile]
    class_ids = np.asarray(sorted(int(k) for k in label_map), dtype=np.int64)
    if class_ids.size == 0:
        raise ConfigError("the label map has no classes")
    if class_ids.min() < 1:
        raise ConfigError(f"label-map ids must be >= 1, got {int(class_ids.min())}")
    valid_actions = range(1, int(class_ids.max()) + 1) if (pasta or class_ids.max() > 80) else None
    names_to_ids = {str(v): int(k) for k, v in label_map.items()}
    if exclusions is not None and not spec.exclusions:
        raise ConfigError("the official (2020) protocol has no exclusions file: its GT marks excluded keyframes; "
                          "use --profile mmaction2 or slowfast to apply exclusions")
    gt_rows = as_rows(gt, kind="gt", valid_actions=valid_actions, label_ids_by_name=names_to_ids, pasta=pasta)
    det_rows = as_rows(pred, kind="det", valid_actions=valid_actions, label_ids_by_name=names_to_ids, pasta=pasta)
    _check_rows(gt_rows, "gt")
    _check_rows(det_rows, "det")
    excl_videos, excl_seconds = [], np.empty(0)
    if exclusions is not None:
        excl_videos, excl_seconds = (read_exclusions(exclusions) if isinstance(exclusions, (str, os.PathLike))
                                     else (list(exclusions[0]), np.asarray(exclusions[1], np.float64)))
    frames = _Keyframes([(gt_rows.videos, gt_rows.video_codes, gt_rows.timestamp),
                         (det_rows.videos, det_rows.video_codes, det_rows.timestamp),
                         (excl_videos, np.arange(len(excl_videos), dtype=np.int64), excl_seconds)], spec.key)
    kf_gt, kf_det, kf_excl = frames.ids
    excluded = np.zeros(frames.count, dtype=bool)
    excluded[kf_excl] = True

    evaluated_class = np.zeros(int(class_ids.max()) + 1, dtype=bool)
    evaluated_class[class_ids] = True

    def whitelisted(rows: AvaCsv) -> np.ndarray:
        a = rows.action.astype(np.int64)
        ok = (rows.n_columns != 2) & (a >= 1) & (a < evaluated_class.shape[0])
        ok[ok] = evaluated_class[a[ok]]
        return ok

    gt_white, det_white = whitelisted(gt_rows), whitelisted(det_rows)
    if spec.frames == "gt_file":        # every keyframe named in the GT file, 2-column rows included
        present = np.zeros(frames.count, dtype=bool)
        present[kf_gt] = True
        gt_use, det_use = gt_white, det_white & present[kf_det]
    elif spec.frames == "gt_evaluated":  # keyframes with GT of an evaluated class, minus exclusions
        present = np.zeros(frames.count, dtype=bool)
        present[kf_gt[gt_white]] = True
        present &= ~excluded
        gt_use, det_use = gt_white & present[kf_gt], det_white & present[kf_det]
    else:                                # every non-excluded keyframe
        gt_use, det_use = gt_white & ~excluded[kf_gt], det_white & ~excluded[kf_det]
    gt_counted = gt_white if spec.gt_of_excluded_counts else gt_use
    num_gt = np.bincount(gt_rows.action[gt_counted].astype(np.int64), minlength=evaluated_class.shape[0])

    # keyframe rank in the per-class concatenation order (first appearance in the detection or GT file)
    source = kf_det[det_white] if spec.keyframe_order == "det" else kf_gt[gt_white]
    kf_rank = _first_appearance_order(source, frames.count)
    det_kf_rows = kf_rank[kf_det]
    gt_kf_rows = kf_rank[kf_gt]

    # ---- detections: order inside keyframes, cap, then group by class keeping that order
    index = np.flatnonzero(det_use)
    kf = det_kf_rows[index]
    score = np.where(det_rows.n_columns[index] == 8, det_rows.score[index], 1.0)
    order = _order_by_group(kf) if spec.det_order == "file" else _order_by_group_then_score(kf, score)
    index, kf, score = index[order], kf[order], score[order]
    if spec.top_k:
        rank = _positions_in_runs(kf)
        keep = _heap_top_k(kf, score, rank, index, det_rows.action, det_rows.boxes, spec.top_k)
        index, kf, score = index[keep], kf[keep], score[keep]
    if spec.drop_invalid:
        b = det_rows.boxes[index]
        valid = (b[:, 1] < b[:, 3]) & (b[:, 0] < b[:, 2])
        index, kf, score = index[valid], kf[valid], score[valid]
    cls = det_rows.action[index].astype(np.int64)
    by_class = _stable_argsort_small(cls)
    index, kf, score, cls = index[by_class], kf[by_class], score[by_class], cls[by_class]
    group = cls * (frames.count + 1) + kf

    # ---- ground truth: grouped by (class, keyframe), in the order the tool lists them
    gindex = np.flatnonzero(gt_use)
    g_key = np.where(gt_rows.n_columns[gindex] == 8, gt_rows.person_id[gindex].astype(np.float64), 1.0)
    g_group = gt_rows.action[gindex].astype(np.int64) * (frames.count + 1) + gt_kf_rows[gindex]
    gorder = (np.lexsort((gindex, g_group)) if spec.gt_order == "file"
              else np.lexsort((gindex, -g_key, g_group)))
    gindex, g_group = gindex[gorder], g_group[gorder]

    tp, ties = match(group, det_rows.boxes[index], g_group, gt_rows.boxes[gindex], spec.float32)
    replayed = np.empty(0, np.int64)
    if spec.det_order == "heap":
        replayed = _replay_official(cls, kf, score, tp, ties, frames.count, det_rows, det_use, det_kf_rows,
                                    gt_rows, gt_use, gt_kf_rows, progress)
    ranked_scores = score.astype(np.float32) if spec.float32 else score

    # ---- accumulate + summarize per class
    ap: dict[int, float] = {}
    counted: list[int] = []
    class_curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    bounds = np.searchsorted(cls, np.stack([class_ids, class_ids + 1]))
    iterator = range(class_ids.shape[0])
    if progress:
        from partwise.progress import bar as tqdm

        iterator = tqdm(iterator, desc="AVA AP per class", unit="class")
    for i in iterator:
        cid = int(class_ids[i])
        lo, hi = int(bounds[0, i]), int(bounds[1, i])
        if spec.classes_without_dets == "drop" and hi == lo:
            ap[cid] = float("nan")
            continue
        counted.append(cid)
        if num_gt[cid] == 0:
            ap[cid] = float("nan")
            continue
        precision, recall = precision_recall(ranked_scores[lo:hi], tp[lo:hi], int(num_gt[cid]))
        ap[cid] = voc_ap(precision, recall)
        if curves and precision.size:
            step = max(1, precision.size // 2000)
            class_curves[str(cid)] = (precision[::step].copy(), recall[::step].copy())

    per_class = {str(c): ap[int(c)] for c in class_ids}
    names = {str(k): str(v) for k, v in label_map.items()}
    extra: dict[str, Any] = {}
    if pasta:
        parts = {}
        for part in PASTA_PARTS:
            part_ids = [int(k) for k, v in label_map.items() if str(v).startswith(f"{part}:")]
            parts[part] = _nanmean(ap[c] for c in part_ids if c in counted)
        value = _nanmean(parts.values())
        extra["parts"] = parts
        extra["mAP_classes"] = _nanmean(ap[c] for c in counted)
        protocol = f"ava-pasta-{profile}"
    else:
        value = _nanmean(ap[c] for c in counted)
        protocol = f"ava-{profile}"
        if profile == "mmaction2":
            extra["groups"] = {name: _nanmean(ap[c] for c in counted if lo <= c <= hi)
                               for name, lo, hi in MMACTION2_GROUPS}
    extra["classes_with_gt"] = int(np.count_nonzero(num_gt[class_ids]))
    extra["gt_boxes"] = int(num_gt[class_ids].sum())
    extra["detections_evaluated"] = int(cls.shape[0])
    seen = np.zeros(frames.count + 1, dtype=bool)
    seen[kf] = True
    extra["keyframes_with_detections"] = int(np.count_nonzero(seen))
    extra["keyframes_replayed"] = int(replayed.shape[0])
    return EvalResult(protocol=protocol, value=value, per_class=per_class, class_names=names, extra=extra,
                      curves=class_curves)


# --------------------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------------------

def add_arguments(parser) -> None:
    parser.add_argument("--gt", required=True, metavar="GT.csv", help="ground truth in AVA CSV format")
    parser.add_argument("--pred", required=True, metavar="DET.csv",
                        help="detections: video,timestamp,x1,y1,x2,y2,action,score")
    parser.add_argument("--labelmap", metavar="MAP.pbtxt",
                        help="label map of the evaluated classes (AVA's 60-class pbtxt; part_state.pbtxt with "
                             "--pasta, default the 87 HAKE-AVA part states)")
    parser.add_argument("--exclusions", metavar="EXCL.csv", help="excluded keyframes (mmaction2, slowfast)")
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="protocol: official (ActivityNet 2020, default), mmaction2 (1.x ava_eval) or slowfast "
                             "(default with --pasta)")
    parser.add_argument("--pasta", action="store_true",
                        help="evaluate HAKE-AVA part states (action column = PaSta id 1..87) as ST-Activity2Vec")
    parser.add_argument("--progress", action="store_true", help="show progress bars")


def run(args) -> EvalResult:
    from partwise.vocab import read_label_map

    pasta = bool(getattr(args, "pasta", False))
    if args.labelmap:
        label_map = read_label_map(args.labelmap)
    elif pasta:
        from partwise import vocab

        v = vocab.load("pasta_ava87")
        label_map = dict(zip(v.ids, v.names))
    else:
        raise ConfigError("--labelmap is required (the 60-class AVA map, e.g. "
                          "ava_action_list_v2.2_for_activitynet_2019.pbtxt)")
    profile = args.profile or ("slowfast" if pasta else "official")
    return evaluate(args.gt, args.pred, label_map, profile=profile, exclusions=args.exclusions, pasta=pasta,
                    curves=bool(getattr(args, "plot", None)), progress=bool(getattr(args, "progress", False)))
