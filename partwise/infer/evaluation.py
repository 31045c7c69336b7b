"""``partwise run --gt FILE``: the run's rows scored in-process against AVA-format ground truth.

Two numbers, both with :func:`partwise.eval.ava.evaluate` (official ActivityNet 2020 profile: only keyframes named
in the GT file count, IoU 0.5, VOC all-points AP):

* **person detection AP@0.5**: the run's person boxes (score = the row's ``score``, 1 when absent) against the GT
  person boxes (one per distinct box of a GT keyframe), as the AVA evaluator with a single class ``person``;
* **AVA frame mAP** (actions) when the run's rows have ``action_scores`` (a model with actions was given): one
  detection per person and evaluated class (the ``--labelmap`` pbtxt, default partwise's shipped ``ava60`` list),
  next to the *label-frequency prior* on the same boxes (every box scores each class by its share of the GT persons:
  the chance level; it reads the GT's own frequencies, so it is an optimistic baseline).

Only the GT rows of videos the run processed count (the GT's video ids must equal the run's video ids, the input
file stems); the run's keyframe times must be on the GT's clock (``--timestamp-start``; with ``--boxes`` from an
AVA-style file the default already is). A Kinetics-TPS ground truth is not evaluated here (``partwise eval tps``).
"""
from __future__ import annotations

import base64
import io
import os
from typing import Any

import numpy as np
import pyarrow as pa


def _percent(value: float | None) -> dict[str, Any]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return {"value": None, "percent": None, "text": "n/a"}
    return {"value": float(value), "percent": round(100 * float(value), 2), "text": f"{100 * float(value):.2f}"}


def _label_map(path: str | os.PathLike | None) -> tuple[dict[int, str], str]:
    if path:
        from partwise.vocab import read_label_map

        return {int(k): str(v) for k, v in read_label_map(path).items()}, os.fspath(path)
    from partwise import vocab

    v = vocab.load("ava60")
    return dict(zip((int(i) for i in v.ids), v.names)), "ava60 (shipped AVA v2.2 60-class list)"


def _png(result) -> str:
    """The AP bar chart of ``result`` (:func:`partwise.eval.report.ap_figure`) as a ``data:image/png`` URI."""
    import matplotlib.pyplot as plt

    from partwise.eval.report import ap_figure

    fig, _ = ap_figure(result)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def evaluate_run(table: pa.Table, gt: str | os.PathLike, labelmap: str | os.PathLike | None = None
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """Score ``table`` (the run's merged rows) against the AVA CSV ``gt``. Returns ``(evaluation, charts)``:
    ``evaluation`` for ``run.json`` (``results``: one entry per metric with ``value`` (fraction), ``percent``
    (2 decimals), ``text``, and per class where sensible; ``notes``: what was skipped and why) and ``charts``
    ``{metric name: data URI}`` (the AP bar chart as an inline PNG)."""
    from partwise.eval import ava as ava_eval

    label_map, labelmap_name = _label_map(labelmap)
    gt_all = ava_eval.read_rows(gt, kind="gt")
    gt_video = np.asarray([gt_all.videos[c] for c in gt_all.video_codes], dtype=object)
    run_videos = sorted(set(table.column("video_id").to_pylist()))
    keep = np.isin(gt_video.astype(str), np.asarray(run_videos, dtype=str)) if len(gt_video) else np.zeros(0, bool)
    evaluation: dict[str, Any] = {"gt": os.fspath(gt), "labelmap": labelmap_name, "profile": "official",
                                  "iou": ava_eval.IOU_THRESHOLD, "results": [], "notes": []}
    notes = evaluation["notes"]
    charts: dict[str, str] = {}
    gt_videos = sorted(set(gt_video.astype(str)))
    matched = sorted(set(gt_videos) & set(run_videos))
    evaluation["videos"] = {"gt": len(gt_videos), "run": len(run_videos), "matched": matched}
    if not matched:
        notes.append("no video id of the ground truth is a video id of the run (input file stems): nothing "
                     "evaluated")
        return evaluation, charts
    if len(matched) < len(gt_videos):
        notes.append(f"{len(gt_videos) - len(matched)} GT videos are not in the run and are left out")
    # GT rows of the run's videos
    g_vid, g_ts = gt_video[keep].astype(str), gt_all.timestamp[keep]
    g_box, g_act, g_pid = gt_all.boxes[keep], gt_all.action[keep], gt_all.person_id[keep]
    has_box = ~np.isnan(g_box).any(axis=1)
    # run rows
    vids = np.asarray(table.column("video_id").to_pylist(), dtype=object).astype(str)
    times = np.asarray(table.column("time_s").to_pylist(), np.float64)
    boxes = np.stack([np.asarray(table.column(c).to_pylist(), np.float64) for c in ("x1", "y1", "x2", "y2")], 1) \
        if table.num_rows else np.zeros((0, 4))
    scores = np.asarray(table.column("score").fill_null(1.0).to_pylist(), np.float64) if table.num_rows \
        else np.zeros(0)
    gt_keys = set(zip(g_vid.tolist(), np.rint(g_ts * 1e6).astype(np.int64).tolist()))
    run_keys = set(zip(vids.tolist(), np.rint(times * 1e6).astype(np.int64).tolist()))
    evaluation["keyframes"] = {"gt": len(gt_keys), "with_run_rows": len(gt_keys & run_keys)}
    if gt_keys and not gt_keys & run_keys:
        notes.append("no GT keyframe has run rows at the same time: the run's keyframe times are not on the GT's "
                     "clock (give --boxes from the GT, or --timestamp-start)")

    # (a) person detection AP@0.5: one GT box per distinct (video, time, box)
    _, g_code = np.unique(g_vid, return_inverse=True)
    g_us = np.rint(g_ts * 1e6).astype(np.int64)
    boxed = np.flatnonzero(has_box)
    keys = np.column_stack([g_code[boxed], g_us[boxed], np.rint(g_box[boxed] * 1e6).astype(np.int64)])
    box_rows = np.sort(boxed[np.unique(keys, axis=0, return_index=True)[1]]) if boxed.size else boxed
    with_boxes = set(zip(g_code[box_rows].tolist(), g_us[box_rows].tolist()))
    markers: dict[tuple, int] = {}
    for i in np.flatnonzero(~has_box):  # keyframes named without a box (2-column rows): no person there
        key = (int(g_code[i]), int(g_us[i]))
        if key not in with_boxes:
            markers.setdefault(key, int(i))
    idx = np.concatenate([box_rows, np.asarray(list(markers.values()), np.int64)]).astype(np.int64)
    n_box = int(box_rows.size)
    person_gt = ava_eval.make_rows(g_vid[idx], g_ts[idx], g_box[idx],
                                   np.where(np.arange(idx.size) < n_box, 1, -1), path=os.fspath(gt))
    person_det = ava_eval.make_rows(vids, times, boxes, np.ones(len(vids), np.int32), scores, path="<run>")
    if n_box:
        person = ava_eval.evaluate(person_gt, person_det, {1: "person"}, profile="official")
        evaluation["results"].append({"name": "person detection", "metric": "AP@0.5",
                                      "protocol": "AVA evaluator (official), single class person",
                                      **_percent(person.value), "gt_boxes": n_box,
                                      "detections": int(len(vids))})
    else:
        notes.append("person detection: the ground truth has no boxes in the run's videos")

    # (b) actions: AVA frame mAP when the rows have action scores
    action_scores = table.column("action_scores").to_pylist() if "action_scores" in table.column_names else []
    with_actions = [i for i, s in enumerate(action_scores) if s is not None and len(s) >= 80]
    if not with_actions:
        notes.append("actions: the run's rows have no action scores (no --model with actions): no action mAP")
        return evaluation, charts
    class_ids = np.asarray(sorted(label_map), np.int64)
    class_ids = class_ids[class_ids <= 80]
    label_map = {int(c): label_map[int(c)] for c in class_ids}
    rows = np.asarray(with_actions, np.int64)
    s = np.asarray([action_scores[i] for i in with_actions], np.float64)[:, class_ids - 1]
    rep = np.repeat(rows, class_ids.size)
    cls = np.tile(class_ids, rows.size)
    det = ava_eval.make_rows(vids[rep], times[rep], boxes[rep], cls, s.reshape(-1), path="<run>")
    action_gt = ava_eval.make_rows(g_vid, g_ts, g_box, g_act, person_ids=g_pid, path=os.fspath(gt))
    ours = ava_eval.evaluate(action_gt, det, label_map, profile="official")
    # label-frequency prior: each class's share of the GT persons (of the run's videos), on the same boxes
    persons = max(n_box, 1)
    counts = {int(c): int(np.count_nonzero((g_act == c) & has_box)) for c in class_ids}
    freq = np.asarray([counts[int(c)] / persons for c in class_ids], np.float64)
    prior_det = ava_eval.make_rows(vids[rep], times[rep], boxes[rep], cls, np.tile(freq, rows.size), path="<prior>")
    prior = ava_eval.evaluate(action_gt, prior_det, label_map, profile="official")
    ours.baseline, ours.baseline_name = prior.value, "label-frequency prior (GT)"
    ours.gt_counts = {str(c): n for c, n in counts.items()}
    per_class = {str(c): {"name": label_map[c], "gt": counts[c], **_percent(ours.per_class[str(c)])}
                 for c in label_map if counts[c] > 0}
    evaluation["results"].append({"name": "actions", "metric": "mAP@0.5", "protocol": "AVA frame mAP (official)",
                                  **_percent(ours.value), "classes_with_gt": len(per_class),
                                  "prior": _percent(prior.value), "per_class": per_class})
    if per_class:
        charts["actions"] = _png(ours)
    return evaluation, charts
