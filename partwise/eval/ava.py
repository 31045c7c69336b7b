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

Modules: :mod:`partwise.eval.ava_rows` (inputs), :mod:`partwise.eval.ava_order` (keyframes and orders),
:mod:`partwise.eval.ava_match` (matching, AP, the official order replayed); this module holds the profiles,
:func:`evaluate` and the command line.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from partwise.data.ava.table import AvaCsv
from partwise.errors import ConfigError
from partwise.eval.ava_match import (IOU_THRESHOLD, OFFICIAL_TOP_K, _nanmean, _replay_official, match,  # noqa: F401
                                     official_keyframe, pairwise_iou, precision_recall, voc_ap)
from partwise.eval.ava_order import (_first_appearance_order, _heap_top_k, _Keyframes,  # noqa: F401
                                     _order_by_group, _order_by_group_then_score, _positions_in_runs,
                                     _run_starts, _stable_argsort_small, _timestamp_keys)
from partwise.eval.ava_rows import (_check_rows, _empty_rows, as_rows, make_rows, read_exclusions,  # noqa: F401
                                    read_rows, rows_from_records)
from partwise.eval.report import EvalResult

PROFILES: tuple[str, ...] = ("official", "mmaction2", "slowfast")

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
    with _no_huge_pages():
        return _evaluate(gt, pred, label_map, profile=profile, exclusions=exclusions, pasta=pasta, curves=curves,
                         progress=progress)


@contextlib.contextmanager
def _no_huge_pages():
    """numpy advises the kernel to back large arrays with transparent huge pages; where the kernel then compacts
    memory on page faults (THP defrag "madvise") that doubled the kernel time on AVA-val-sized input (1.6 -> 0.8 s
    of sys time, measured), for no gain in user time. Off for the call, restored after."""
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    setter = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if setter is None:
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)


def _evaluate(gt: Any, pred: Any, label_map: Mapping[int, str], *, profile: str, exclusions: Any, pasta: bool,
              curves: bool, progress: bool) -> EvalResult:
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
    # detections of other classes never count in any profile (the tools drop them while reading)
    det_rows = as_rows(pred, kind="det", valid_actions=valid_actions, label_ids_by_name=names_to_ids, pasta=pasta,
                       keep_actions=class_ids.tolist())
    for rows, kind, source in ((gt_rows, "gt", gt), (det_rows, "det", pred)):
        if not isinstance(source, (str, os.PathLike)):  # the CSV readers have checked files already
            _check_rows(rows, kind)
    excl_videos, excl_seconds = [], np.empty(0)
    if exclusions is not None:
        excl_videos, excl_seconds = (read_exclusions(exclusions) if isinstance(exclusions, (str, os.PathLike))
                                     else (list(exclusions[0]), np.asarray(exclusions[1], np.float64)))
    frames = _Keyframes([(gt_rows.videos, gt_rows.video_codes, gt_rows.timestamp),
                         (det_rows.videos, det_rows.video_codes, det_rows.timestamp),
                         (excl_videos, np.arange(len(excl_videos), dtype=np.int64), excl_seconds)], spec.key)
    kf_gt, kf_det, kf_excl = frames.ids
    frames.ids = None  # row-length arrays are dropped as soon as they are used up: peak memory
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
    del source, det_white
    det_kf_rows = kf_rank[kf_det]
    del kf_det
    gt_kf_rows = kf_rank[kf_gt]

    # ---- detections: order inside keyframes, cap, then group by class keeping that order. Only the row index is
    # permuted at each step; keyframe and score are looked up again where needed (fewer full-length gathers)
    all_eight = _all_eight(det_rows.n_columns)

    def scores_of(rows: np.ndarray) -> np.ndarray:
        values = det_rows.score[rows]
        return values if all_eight else np.where(det_rows.n_columns[rows] == 8, values, 1.0)

    index = np.flatnonzero(det_use)
    kf = det_kf_rows[index]
    if spec.det_order == "file":
        if kf.size > 1 and not bool(np.all(kf[1:] >= kf[:-1])):  # a file written keyframe by keyframe: sorted
            index = index[_order_by_group(kf)]
    else:
        index = index[_order_by_group_then_score(kf, scores_of(index))]
    del kf
    if spec.top_k:
        kf = det_kf_rows[index]
        keep = _heap_top_k(kf, scores_of(index), _positions_in_runs(kf), index, det_rows.action, det_rows.boxes,
                           spec.top_k)
        index = index[keep]
        del kf, keep
    if spec.drop_invalid:
        b = det_rows.boxes
        index = index[((b[:, 1] < b[:, 3]) & (b[:, 0] < b[:, 2]))[index]]
    cls = det_rows.action[index].astype(np.int64)
    by_class = _stable_argsort_small(cls)
    index, cls = index[by_class], cls[by_class]
    del by_class
    kf, score = det_kf_rows[index], scores_of(index)
    if spec.det_order != "heap":
        del det_kf_rows  # only the official order's replay looks rows up again

    # ---- ground truth: grouped by (class, keyframe), in the order the tool lists them
    gindex = np.flatnonzero(gt_use)
    g_key = np.where(gt_rows.n_columns[gindex] == 8, gt_rows.person_id[gindex].astype(np.float64), 1.0)
    g_group = gt_rows.action[gindex].astype(np.int64) * (frames.count + 1) + gt_kf_rows[gindex]
    gorder = (np.lexsort((gindex, g_group)) if spec.gt_order == "file"
              else np.lexsort((gindex, -g_key, g_group)))
    gindex, g_group = gindex[gorder], g_group[gorder]

    # only detections whose (class, keyframe) group has GT can match: their boxes alone are gathered
    active = _with_gt(cls, kf, frames.count + 1, g_group)
    tp = np.zeros(cls.shape[0], dtype=bool)
    ties = np.zeros(cls.shape[0], dtype=bool)
    tp[active], ties[active] = match(cls[active] * (frames.count + 1) + kf[active], det_rows.boxes[index[active]],
                                     g_group, gt_rows.boxes[gindex], spec.float32)
    del active, index
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


def _all_eight(n_columns: np.ndarray) -> bool:
    """Every row has 8 fields; a broadcast constant (the typed reader's) is answered without a pass."""
    if n_columns.ndim == 1 and n_columns.strides == (0,):
        return n_columns.size == 0 or int(n_columns[0]) == 8
    return bool((n_columns == 8).all())


def _with_gt(cls: np.ndarray, kf: np.ndarray, stride: int, g_group: np.ndarray) -> np.ndarray:
    """Positions of the detections whose group ``cls * stride + kf`` is in the sorted ``g_group``: a bool table
    over all groups when it is small, else binary search."""
    size = (int(cls.max(initial=0)) + 1) * stride
    if size <= (1 << 26):
        table = np.zeros(size + 1, dtype=bool)
        table[g_group[g_group < size]] = True
        key = cls * stride
        key += kf
        return np.flatnonzero(table[key])
    group = cls * stride + kf
    return np.flatnonzero(np.searchsorted(g_group, group, side="right") > np.searchsorted(g_group, group))


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
    from partwise.memory import reuse_freed_memory
    from partwise.vocab import read_label_map

    reuse_freed_memory()  # the command's process only: large temporaries reused, not faulted in again (see there)

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


def main(argv: list[str] | None = None) -> int:
    """``python -m partwise.eval.ava ...``: ``partwise eval ava`` (same options, same output) without importing
    the other metrics, for scripts that evaluate many small files where start-up dominates."""
    import argparse
    import sys

    from partwise.errors import PartwiseError

    parser = argparse.ArgumentParser(prog="python -m partwise.eval.ava", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress output")
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except PartwiseError as exc:
        print(f"partwise: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(result.to_json() if args.json else result.format_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
