"""V-COCO role AP (s-gupta/v-coco ``vsrl_eval.py``, ``_do_role_eval``), scenario 1 and 2, and agent AP.

Ground truth (self-contained JSON; the original reads COCO plus the V-COCO annotation json)::

    {"actions": [{"name": "hit", "roles": ["instr", "obj"]}, ...],     # optional; default: the 26 V-COCO actions
     "images": [{"image_id": 165, "persons": [
         {"box": [x1, y1, x2, y2],                                    # pixels, V-COCO's x2 = x + max(0, w - 1)
          "actions": {"hit": {"instr": [x1, y1, x2, y2], "obj": null},  # null: the role has no object
                      "stand": {}}},                                  # actions not listed: label 0
         {"box": [...], "actions": null}]}]}                          # null: person without V-COCO annotation

Detections: the original pickle's list of dicts, as JSON: ``[{"image_id": 165, "person_box": [x1, y1, x2, y2],
"hit_agent": s, "hit_instr": [x1, y1, x2, y2, s], "hit_obj": [x1, y1, x2, y2, s], ...}, ...]``. A missing role key
or a null / NaN role score means "no prediction for that role" (the original requires every key). Detections of
images not in the GT are ignored, as the original only visits GT images.

Matching, per image and action-role, in descending score order: the detection's person box goes to the GT person
with the largest IoU (inclusive +1 IoU, first on ties). A GT person without annotation -> the detection is skipped.
TP when the GT person has the action, person IoU >= 0.5, role IoU >= 0.5 and that person is not yet covered
(covered -> FP). A GT person whose role has no object: scenario 1 counts the role correct only when the predicted
role box is all zeros or NaN; scenario 2 always. npos = GT persons with the action. AP = VOC all-point interpolated.
Arrays are float32 as in the original (boxes, scores, cumulative sums, precision with ``max(tp + fp, eps)``, AP
stored as float32).

Ties. The original orders by ``argsort()[::-1]`` on float32 scores: numpy's default *unstable* quicksort/introsort,
reversed, whose order among equal scores depends on the numpy version and the CPU's SIMD sort. Partwise fixes one
order: descending score, ties in *reverse* listing order (within an image: reverse detection order; globally:
reverse of the per-image appended order) -- what that expression gives whenever the sort keeps ties in place. With
tied scores the official's per-role AP is therefore not reproducible even between two numpy builds; between such
runs and partwise it moved by up to ~0.055 (5.5 AP points) on a role. With distinct scores the results agree.
An image without GT persons makes its detections false positives (the original fails on it).

Agent AP (``_do_agent_eval``): per action, detections ranked by ``<action>_agent``; TP = person match (as above)
to an uncovered GT person with the action; same AP. The official prints it per action and "Average Agent AP" =
``nansum(AP) / 26``.

Reported (``partwise eval vcoco``), with the official's names: per-role AP of the chosen ``--scenario`` (key
``"<action>-<role>"``); the headline (``mAP``) = the official's printed "Average Role [scenario_N] AP",
``np.nanmean`` over the 25 roles it averages (point-instr included); ``average_role_ap_scenario_1`` and ``_2``;
``role_ap_24_without_point_instr_scenario_N`` = the 24-role mean papers report (iCAN's script:
``(mean25 * 25 - AP_point) / 24``), which the official does *not* print; ``agent_ap`` per action and
``average_agent_ap``.

Official files: ``--gt vcoco_test.json --instances instances_vcoco_all_2014.json [--split-ids vcoco_test.ids]``
reads the release with the official ground-truth rules (:mod:`partwise.data.vcoco_official`); ``--pred`` may be
the official detections pickle (restricted unpickler, :mod:`partwise.data.safe_pickle`).
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from partwise.errors import InputError

#: V-COCO's 26 actions and their roles besides "agent" (order of the release's ``vcoco_*.json``).
VCOCO_ACTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hold", ("obj",)), ("stand", ()), ("sit", ("instr",)), ("ride", ("instr",)), ("walk", ()), ("look", ("obj",)),
    ("hit", ("instr", "obj")), ("eat", ("obj", "instr")), ("jump", ("instr",)), ("lay", ("instr",)),
    ("talk_on_phone", ("instr",)), ("carry", ("obj",)), ("throw", ("obj",)), ("catch", ("obj",)),
    ("cut", ("instr", "obj")), ("run", ()), ("work_on_computer", ("instr",)), ("ski", ("instr",)),
    ("surf", ("instr",)), ("skateboard", ("instr",)), ("smile", ()), ("drink", ("instr",)), ("kick", ("obj",)),
    ("point", ("instr",)), ("read", ("obj",)), ("snowboard", ("instr",)),
)
EXCLUDED_ROLE = "point-instr"
IOU_THRESHOLD = 0.5


@dataclass
class VcocoGt:
    """GT persons as arrays: ``image`` (P,) index into ``image_ids``; ``boxes`` (P,4) float32; ``annotated`` (P,)
    bool; ``labels`` (P, A) bool; ``roles`` (P, A, 2, 4) float32, NaN where the role has no object."""

    actions: list[tuple[str, tuple[str, ...]]]
    image_ids: list[Any]
    image: np.ndarray
    boxes: np.ndarray
    annotated: np.ndarray
    labels: np.ndarray
    roles: np.ndarray


def _load_json(path: Path) -> Any:
    from partwise.data.hico_det import _load_json as load

    return load(path)


def _box(path: Path, where: str, value: Any, n: int = 4) -> list[float]:
    if not (isinstance(value, list) and len(value) == n and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise InputError(path, where, f"expected a list of {n} numbers, got {value!r}")
    return value


def read_gt(path: str | Path, instances: str | Path | None = None, split_ids: str | Path | None = None) -> VcocoGt:
    """Parse the GT JSON (format: module docstring), or the official files: ``path`` = ``vcoco_<split>.json``
    with ``instances`` = ``instances_vcoco_all_2014.json`` (and optionally the split's ``.ids`` file), read with
    the official ground-truth rules (:mod:`partwise.data.vcoco_official`). A ``vcoco_*.json`` given alone is read
    as official when it holds the official per-action list; its instances file is then looked up beside it."""
    path = Path(path)
    if instances is not None:
        from partwise.data.vcoco_official import read_official

        return parse_gt(read_official(path, instances, split_ids), path)
    data = _load_json(path)
    if isinstance(data, list):  # the official per-action list
        from partwise.data.vcoco_official import find_official_files, read_official

        vjson, inst, ids = find_official_files(path)
        return parse_gt(read_official(vjson, inst, split_ids or ids), path)
    return parse_gt(data, path)


def parse_gt(data: Any, path: str | Path = "<gt>") -> VcocoGt:
    """:func:`read_gt` on an already loaded structure."""
    path = Path(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise InputError(path, "images", "expected an object with an 'images' list")
    actions = list(VCOCO_ACTIONS)
    if "actions" in data:
        try:
            actions = [(a["name"], tuple(a.get("roles", ()))) for a in data["actions"]]
        except (TypeError, KeyError):
            raise InputError(path, "actions", "expected a list of {name, roles}") from None
        if any(len(r) > 2 for _, r in actions):
            raise InputError(path, "actions", "at most 2 roles per action")
    index = {name: a for a, (name, _) in enumerate(actions)}
    image_ids, img, boxes, annotated, labels, roles = [], [], [], [], [], []
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "image_id" not in image or not isinstance(image.get("persons"), list):
            raise InputError(path, f"images[{i}]", "expected {image_id, persons: [...]}")
        image_ids.append(image["image_id"])
        for p, person in enumerate(image["persons"]):
            where = f"images[{i}].persons[{p}]"
            if not isinstance(person, dict):
                raise InputError(path, where, "not an object")
            boxes.append(_box(path, f"{where}.box", person.get("box")))
            img.append(i)
            lab = np.zeros(len(actions), dtype=bool)
            rol = np.full((len(actions), 2, 4), np.nan, dtype=np.float32)
            acts = person.get("actions")
            annotated.append(acts is not None)
            if acts is not None:
                if not isinstance(acts, dict):
                    raise InputError(path, f"{where}.actions", "expected an object action -> roles, or null")
                for name, role_boxes in acts.items():
                    if name not in index:
                        raise InputError(path, f"{where}.actions.{name}", "unknown action")
                    a = index[name]
                    lab[a] = True
                    for role, value in (role_boxes or {}).items():
                        if role not in actions[a][1]:
                            raise InputError(path, f"{where}.actions.{name}.{role}", f"unknown role of {name}")
                        if value is not None:
                            rol[a, actions[a][1].index(role)] = _box(path, f"{where}.actions.{name}.{role}", value)
            labels.append(lab)
            roles.append(rol)
    n_actions = len(actions)
    return VcocoGt(actions, image_ids, np.asarray(img, dtype=np.int64),
                   np.asarray(boxes, dtype=np.float32).reshape(-1, 4), np.asarray(annotated, dtype=bool),
                   np.asarray(labels, dtype=bool).reshape(-1, n_actions),
                   np.asarray(roles, dtype=np.float32).reshape(-1, n_actions, 2, 4))


@dataclass
class VcocoDets:
    """Detections: ``image`` (D,) GT image index; ``person`` (D,4) float32; ``roles`` (D, A, 2, 5) float32
    [x1 y1 x2 y2 score], score NaN where not predicted; ``agent`` (D, A) float32 ``<action>_agent`` scores, NaN
    where not given."""

    image: np.ndarray
    person: np.ndarray
    roles: np.ndarray
    ignored: int
    agent: np.ndarray | None = None


def read_detections(path: str | Path, gt: VcocoGt) -> VcocoDets:
    """Parse the detection JSON (format: module docstring), or the official pickle (``.pkl``/``.pickle``, read
    with the restricted unpickler of :mod:`partwise.data.safe_pickle`)."""
    path = Path(path)
    if path.suffix.lower() in (".pkl", ".pickle", ".p"):
        from partwise.data.vcoco_official import read_detections_pickle

        data = read_detections_pickle(path)
    else:
        data = _load_json(path)
    return parse_detections(data, gt, path)


def parse_detections(data: Any, gt: VcocoGt, path: str | Path = "<detections>") -> VcocoDets:
    """:func:`read_detections` on an already loaded list of dicts."""
    path = Path(path)
    if not isinstance(data, list):
        raise InputError(path, None, "expected a list of detections")
    index = {image_id: i for i, image_id in enumerate(gt.image_ids)}
    img, person, roles, agents = [], [], [], []
    ignored = 0
    keys = [[f"{name}_{role}" for role in rs] for name, rs in gt.actions]
    agent_keys = [f"{name}_agent" for name, _ in gt.actions]
    for k, det in enumerate(data):
        if not isinstance(det, dict) or "image_id" not in det:
            raise InputError(path, f"[{k}]", "expected an object with image_id")
        image = index.get(det["image_id"])
        if image is None:
            ignored += 1
            continue
        box = _box(path, f"[{k}].person_box", det.get("person_box"))
        rol = np.full((len(gt.actions), 2, 5), np.nan, dtype=np.float32)
        for a, names in enumerate(keys):
            for r, key in enumerate(names):
                value = det.get(key)
                if value is None:
                    continue
                if not (isinstance(value, list) and len(value) == 5):
                    raise InputError(path, f"[{k}].{key}", f"expected [x1, y1, x2, y2, score], got {value!r}")
                try:
                    rol[a, r] = np.array([np.nan if v is None else v for v in value], dtype=np.float32)
                except (TypeError, ValueError):
                    raise InputError(path, f"[{k}].{key}", f"expected numbers, got {value!r}") from None
        ag = np.full(len(gt.actions), np.nan, dtype=np.float32)
        for a, key in enumerate(agent_keys):
            value = det.get(key)
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            if value is None:
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise InputError(path, f"[{k}].{key}", f"expected a score, got {value!r}")
            ag[a] = value
        img.append(image)
        person.append(box)
        roles.append(rol)
        agents.append(ag)
    n_actions = len(gt.actions)
    return VcocoDets(np.asarray(img, dtype=np.int64), np.asarray(person, dtype=np.float32).reshape(-1, 4),
                     np.asarray(roles, dtype=np.float32).reshape(-1, n_actions, 2, 5), ignored,
                     np.asarray(agents, dtype=np.float32).reshape(-1, n_actions))


def overlap(boxes: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Row-wise inclusive (+1) IoU in float32 as ``vsrl_eval.get_overlap`` (boxes, ref: (N,4) float32)."""
    one = np.float32(1.0)
    ixmin = np.maximum(boxes[:, 0], ref[:, 0])
    iymin = np.maximum(boxes[:, 1], ref[:, 1])
    ixmax = np.minimum(boxes[:, 2], ref[:, 2])
    iymax = np.minimum(boxes[:, 3], ref[:, 3])
    iw = np.maximum(ixmax - ixmin + one, np.float32(0.0))
    ih = np.maximum(iymax - iymin + one, np.float32(0.0))
    inters = iw * ih
    uni = ((ref[:, 2] - ref[:, 0] + one) * (ref[:, 3] - ref[:, 1] + one)
           + (boxes[:, 2] - boxes[:, 0] + one) * (boxes[:, 3] - boxes[:, 1] + one) - inters)
    with np.errstate(divide="ignore", invalid="ignore"):
        return inters / uni


def voc_ap(rec: np.ndarray, prec: np.ndarray) -> float:
    """VOC all-point interpolated AP (precision envelope, sum of recall steps x precision)."""
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def role_ap(gt: VcocoGt, det: VcocoDets, a: int, r: int | None, scenario: int) -> tuple[float, int]:
    """AP (float32 value) and npos of action ``a``, role ``r``; AP is NaN when no GT person has the action.
    ``r=None``: the agent AP of action ``a`` (``_do_agent_eval``: person match only, ``<action>_agent`` scores)."""
    npos = int(gt.labels[:, a].sum())
    if npos == 0:
        return math.nan, 0
    if r is None:
        scores = det.agent[:, a] if det.agent is not None else np.full(len(det.image), np.nan, dtype=np.float32)
    else:
        scores = det.roles[:, a, r, 4]
    valid = np.flatnonzero(~np.isnan(scores))
    n_images = len(gt.image_ids)
    # per-image order: descending score, ties in reverse listing order (argsort()[::-1] of a stable sort)
    order = valid[np.lexsort((-valid, -scores[valid], det.image[valid]))]
    img = det.image[order]
    person_order = np.argsort(gt.image, kind="stable")
    starts = np.searchsorted(gt.image[person_order], np.arange(n_images + 1))
    start, stop = starts[img], starts[img + 1]
    counts = stop - start
    has = np.flatnonzero(counts)
    jmax = np.full(order.size, -1, dtype=np.int64)
    ovmax = np.zeros(order.size, dtype=np.float32)
    if has.size:
        c = counts[has]
        offsets = np.cumsum(c) - c
        rep = np.repeat(has, c)
        local = np.arange(int(c.sum())) - np.repeat(offsets, c)
        persons = person_order[np.repeat(start[has], c) + local]
        ov = overlap(gt.boxes[persons], det.person[order[rep]])
        best = np.maximum.reduceat(ov, offsets)
        first = np.minimum.reduceat(np.where(ov == np.repeat(best, c), local, c.sum()), offsets)
        jmax[has] = person_order[start[has] + first]
        ovmax[has] = best
    matched = jmax >= 0
    keep = ~matched | gt.annotated[np.where(matched, jmax, 0)]  # matched to an unannotated person: skipped
    order, jmax, ovmax, matched = order[keep], jmax[keep], ovmax[keep], matched[keep]
    j = np.where(matched, jmax, 0)
    if r is None:
        ok = matched & gt.labels[j, a] & (ovmax >= IOU_THRESHOLD)
        return _ranked_ap(order, jmax, ok, scores, npos), npos
    gt_role = gt.roles[j, a, r]
    pred_role = det.roles[order, a, r, :4]
    no_gt_role = np.isnan(gt_role).all(axis=1)
    if scenario == 1:
        empty = (pred_role == 0).all(axis=1) | np.isnan(pred_role).all(axis=1)
        role_ok_missing = empty
    else:
        role_ok_missing = np.ones(order.size, dtype=bool)
    ov_role = overlap(np.nan_to_num(gt_role), pred_role) if order.size else np.zeros(0, dtype=np.float32)
    role_ok = np.where(no_gt_role, role_ok_missing, ov_role >= IOU_THRESHOLD)
    ok = matched & gt.labels[j, a] & (ovmax >= IOU_THRESHOLD) & role_ok
    return _ranked_ap(order, jmax, ok, scores, npos), npos


def _ranked_ap(order: np.ndarray, jmax: np.ndarray, ok: np.ndarray, scores: np.ndarray, npos: int) -> float:
    """AP of detections ``order`` (appended per image in processing order) with per-detection ``ok`` flags: the
    first ok detection per GT person is the TP, later ones FP (covered); then the global float32 ranking."""
    tp = np.zeros(order.size, dtype=bool)
    cand = np.flatnonzero(ok)
    _, first = np.unique(jmax[cand], return_index=True)
    tp[cand[first]] = True
    # global ranking: float32 scores, descending, ties in reverse of the appended (image, per-image) order
    sc = scores[order].astype(np.float32)
    pos = np.arange(order.size)
    rank = np.lexsort((-pos, -sc))
    tp_f = tp[rank].astype(np.float32)
    a_tp = np.cumsum(tp_f, dtype=np.float32)
    a_fp = np.cumsum(np.float32(1.0) - tp_f, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        rec = a_tp / np.float32(npos)
    prec = a_tp / np.maximum(a_tp + a_fp, np.float32(np.finfo(np.float64).eps))
    return float(np.float32(voc_ap(rec, prec)))


@dataclass
class VcocoResult:
    per_role: dict[str, float]
    npos: dict[str, int]
    mean_25: float
    mean_24: float


def evaluate(gt: VcocoGt, det: VcocoDets, scenario: int = 1) -> VcocoResult:
    """Role APs of every (action, role) pair, and the 25- and 24-role means."""
    if scenario not in (1, 2):
        raise ValueError("scenario must be 1 or 2")
    per_role, npos = {}, {}
    for a, (name, roles) in enumerate(gt.actions):
        for r, role in enumerate(roles):
            ap, n = role_ap(gt, det, a, r, scenario)
            per_role[f"{name}-{role}"], npos[f"{name}-{role}"] = ap, n
    values = np.array(list(per_role.values()), dtype=np.float32)
    mean_all = float(np.nanmean(values)) if values.size and not np.isnan(values).all() else math.nan
    n_valid = int((~np.isnan(values)).sum())
    point = per_role.get(EXCLUDED_ROLE)
    if point is not None and not math.isnan(point) and n_valid > 1:
        mean_24 = (mean_all * n_valid - point) / (n_valid - 1)
    else:
        mean_24 = mean_all
    return VcocoResult(per_role, npos, mean_all, mean_24)


@dataclass
class AgentResult:
    per_action: dict[str, float]
    npos: dict[str, int]
    average: float  #: the official's "Average Agent AP": nansum over the actions / number of actions


def evaluate_agent(gt: VcocoGt, det: VcocoDets) -> AgentResult:
    """Agent AP of every action (``_do_agent_eval``): a detection with ``<action>_agent`` score s is a TP when its
    person box matches (IoU >= 0.5, largest IoU, unannotated persons skipped) a not yet covered GT person with the
    action. NaN for an action without GT persons (the official fails on it)."""
    per_action, npos = {}, {}
    for a, (name, _) in enumerate(gt.actions):
        per_action[name], npos[name] = role_ap(gt, det, a, None, 1)
    values = np.array(list(per_action.values()), dtype=np.float32)
    average = float(np.nansum(values) / len(values)) if values.size else math.nan
    return AgentResult(per_action, npos, average)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True,
                        help="V-COCO GT: partwise's JSON (format: partwise.eval.vcoco), or the official "
                             "vcoco_<split>.json (then --instances, or instances_vcoco_all_2014.json beside it or "
                             "in its parent)")
    parser.add_argument("--instances", metavar="JSON", help="the official instances_vcoco_all_2014.json")
    parser.add_argument("--split-ids", metavar="IDS", help="the official vcoco_<split>.ids (image order)")
    parser.add_argument("--pred", required=True,
                        help="detections: the official pickle (.pkl, read with a restricted unpickler) or the "
                             "same list of dicts as JSON")
    parser.add_argument("--scenario", type=int, choices=(1, 2), default=1,
                        help="role AP scenario of the per-role table (both averages are always reported)")


def run(args: argparse.Namespace):
    from partwise.eval.report import EvalResult

    gt = read_gt(args.gt, getattr(args, "instances", None), getattr(args, "split_ids", None))
    det = read_detections(args.pred, gt)
    results = {s: evaluate(gt, det, s) for s in (1, 2)}
    res = results[args.scenario]
    agent = evaluate_agent(gt, det)
    extra = {f"average_role_ap_scenario_{s}": r.mean_25 for s, r in results.items()}
    extra[f"role_ap_24_without_point_instr_scenario_{args.scenario}"] = res.mean_24
    extra["average_agent_ap"] = agent.average
    extra["agent_ap"] = agent.per_action
    extra["npos"] = res.npos
    extra["ignored_detections"] = det.ignored
    # the headline (JSON "mAP", table "mAP") is the official's printed "Average Role [scenario_N] AP"
    return EvalResult(protocol=f"v-coco role AP scenario {args.scenario}", value=res.mean_25,
                      per_class=res.per_role, extra=extra)
