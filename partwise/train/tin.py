"""The ``tin`` task of ``partwise train``: TIN (Transferable Interactiveness Network) on human-object pairs, with
its HOI class weights and box jitter; HICO-DET mAP and interactiveness AP at the end
(:meth:`TINRunner.evaluate`)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from partwise.errors import ConfigError
from partwise.train.base import EvalConfig, ImageTask, TrainModel, build_model_config, write_eval_json
from partwise.train.data import ImageDataConfig, load_records
from partwise.train.engine import OptimConfig, RunConfig, ScheduleConfig


@dataclass
class TINTask:
    """TIN (``tin_hoi.md`` §1.6-1.7): per image all GT human-object pairs (positives, HOI multi-hot + interactive)
    and up to ``neg_per_image`` negatives (a person with another person's object or with another person:
    non-interactive); L = L_H + L_O (positives) + L_sp + L_D; cosine with restarts from 1e-3 (first period 80k,
    x2), momentum 0.9, each gradient tensor clipped to norm 1 on its own (``run.clip_mode: per_tensor``, TF's
    ``clip_by_norm`` per variable); seed 3. ``pos_augment`` jittered copies of each positive (scale 1 +- 10 %,
    shift +- 10 %, IoU > 0.7).

    Data: any image format; HICO-DET (``data.format: hico-det``) gives the HOI targets directly (records carry
    ``hico_hoi600`` ids; the HOIs of one human-object box pair form one multi-hot positive, as TIN's GT entries
    do). ``data.images`` may contain ``{split}`` (e.g. ``images/{split}2015`` for HICO-DET's ``train2015`` /
    ``test2015`` folders). End-of-run evaluation on HICO-DET: see :meth:`TINRunner.evaluate`."""

    data: ImageDataConfig
    task: str = "tin"
    model: dict = field(default_factory=dict)
    neg_per_image: int = 60
    pos_augment: int = 15
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=1, grad_clip=1.0, clip_mode="per_tensor",
                                                             seed=3))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, weight_decay=1e-4))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(name="cosine_restarts",
                                                                             restart_period=80000, restart_mult=2))
    eval: EvalConfig = field(default_factory=EvalConfig)
    init: str = ""
    frozen: list[str] = field(default_factory=list)  # sub-networks kept fixed (eval mode, no gradient)
    #: ``frequency``: TIN's HOI class weights w_c = ln(N / k_c) (k_c positive pairs of HOI c in the training split,
    #: N their sum; unseen classes count 1) multiplying the HOI logits (``tin_hoi.md`` §1.6); ``none``: all 1.
    hoi_weights: str = "frequency"


def tin_hoi_weights(counts: np.ndarray) -> np.ndarray:
    """(600,) TIN class weights ln(N / k_c) from (600,) positive-pair counts; a class never seen counts as 1. The
    weights are floored at 0.1: a class holding nearly every positive would otherwise get a zero weight, which
    freezes its sigmoid at 0.5 (the original's smallest weight is 0.63)."""
    counts = np.asarray(counts, np.float64)
    return np.maximum(np.log(counts.sum() / np.maximum(counts, 1.0)), 0.1).astype(np.float32)


def jitter_box(box: np.ndarray, rng: np.random.Generator, width: float, height: float, tries: int = 150) -> np.ndarray:
    """A copy of ``box`` (x1, y1, x2, y2) scaled by 1 +- U{0..10} % and shifted by +- 10 % of its size, clipped to
    the image, accepted when its IoU with the original is > 0.7 (the original box after ``tries`` failures)."""
    from partwise.ops.boxes import box_iou

    w, h = box[2] - box[0], box[3] - box[1]
    for _ in range(tries):
        scale = 1 + rng.integers(-10, 11) / 100
        dx, dy = rng.uniform(-0.1, 0.1) * w, rng.uniform(-0.1, 0.1) * h
        cx, cy = (box[0] + box[2]) / 2 + dx, (box[1] + box[3]) / 2 + dy
        new = np.array([cx - w * scale / 2, cy - h * scale / 2, cx + w * scale / 2, cy + h * scale / 2])
        new = np.clip(new, 0, [width, height, width, height])
        if float(box_iou(torch.tensor(box[None]), torch.tensor(new[None]))[0, 0]) > 0.7:
            return new
    return box.copy()


def _coco_order_of_hico_object() -> np.ndarray:
    """(81,) COCO-order index 1..80 (what TIN's NIS overrides are keyed by) of each ``hico_objects80`` id."""
    from partwise.data.hico_det import COCO91_TO_HICO_OBJECT

    out = np.zeros(81, np.int64)
    for order, coco91 in enumerate(sorted(COCO91_TO_HICO_OBJECT), start=1):
        out[COCO91_TO_HICO_OBJECT[coco91]] = order
    return out


class TINRunner(ImageTask):
    name = "tin"
    config_cls = TINTask

    def model_config(self):
        from partwise.models.tin import TINConfig

        return build_model_config(TINConfig, self.cfg.model, "model")

    def build_net(self):
        from partwise.models.tin import TIN

        return TIN(self.model_config())

    def wrap(self, net):
        for name in self.cfg.frozen:
            try:
                net.get_submodule(name).requires_grad_(False)
            except AttributeError:
                raise ConfigError(f"frozen: TIN has no sub-network {name!r}") from None
        return TrainModel(net, False, tuple(self.cfg.frozen))

    def split_data(self, split: str) -> ImageDataConfig:
        """``data`` with ``{split}`` in ``data.images`` replaced by ``split``."""
        data = self.cfg.data
        return dataclasses.replace(data, images=data.images.format(split=split)) if "{split}" in data.images else data

    def validate(self) -> None:
        from partwise.train.data import check_image_paths

        self.model_config()
        for split in (self.cfg.data.train_split, self.cfg.data.val_split):
            check_image_paths(self.split_data(split))
        if self.cfg.init and not Path(self.cfg.init).exists():
            raise ConfigError(f"init: {self.cfg.init} does not exist")
        if self.cfg.hoi_weights not in ("frequency", "none"):
            raise ConfigError(f"hoi_weights: expected frequency or none, got {self.cfg.hoi_weights!r}")

    def datasets(self):
        from partwise.train.data import ImageRecordsDataset, group_images

        data = self.cfg.data
        train_items = group_images(load_records(data, data.train_split))
        val_items = group_images(load_records(data, data.val_split))
        self.hoi_weights = None
        if self.cfg.hoi_weights == "frequency":
            counts = np.zeros(600)
            for item in train_items:
                for objects in item.objects:
                    for target, _ in self.hoi_targets(item, objects).values():
                        counts += target
            if counts.sum() > 0:
                self.hoi_weights = torch.from_numpy(tin_hoi_weights(counts))
        return (ImageRecordsDataset(self.split_data(data.train_split), train_items, train=True, seed=self.cfg.run.seed,
                                    extra=self.extra_fields),
                ImageRecordsDataset(self.split_data(data.val_split), val_items, train=False, extra=self.extra_fields))

    @staticmethod
    def hoi_targets(item, objects: list) -> dict[tuple, tuple[np.ndarray, Any]]:
        """One person's objects grouped by box: {normalized box: ((600,) multi-hot HOI target, class id)}. Records
        in ``hico_hoi600`` carry the HOI id as the action, ``hico_verbs117`` records the verb (mapped with the
        object); other vocabularies give all-zero targets (interactiveness only)."""
        from partwise.vocab import hico_hoi_table

        hoi_of = {}
        if item.action_vocab == "hico_verbs117":
            hoi, verb, obj = hico_hoi_table()
            hoi_of = {(int(v), int(o)): int(i) for i, v, o in zip(hoi, verb, obj)}
        merged: dict[tuple, tuple[np.ndarray, Any]] = {}
        for class_id, action, box in objects:
            target, _ = merged.setdefault(tuple(float(v) for v in box), (np.zeros(600, np.float32), class_id))
            if item.action_vocab == "hico_hoi600":
                if action is not None and 1 <= int(action) <= 600:
                    target[int(action) - 1] = 1
                continue
            key = (int(action) if action is not None else -1, int(class_id) if class_id is not None else -1)
            if key in hoi_of:
                target[hoi_of[key] - 1] = 1
        return merged

    def pairs(self, item, sample: dict, rng: np.random.Generator | None):
        """(human boxes (P, 4), object boxes (P, 4), HOI targets (P, 600), binary targets (P, 2), #positives) in
        pixels of the transformed image; positives first. A person's object is never one of its negatives."""
        h, w = sample["image"].shape[-2:]
        scale = np.array([w, h, w, h], np.float64)

        def to_pixels(box):
            b = np.asarray(box, np.float64) * scale
            return np.array([w - b[2], b[1], w - b[0], b[3]]) if sample["flipped"] else b

        humans = sample["boxes"].numpy().astype(np.float64)
        pos_h, pos_o, pos_t, neg_h, neg_o = [], [], [], [], []
        own = [self.hoi_targets(item, objects) for objects in item.objects]
        for g, merged in enumerate(own):
            for box, (target, _) in merged.items():
                copies = [(humans[g], to_pixels(box))]
                if rng is not None:
                    copies += [(jitter_box(humans[g], rng, w, h), jitter_box(to_pixels(box), rng, w, h))
                               for _ in range(self.cfg.pos_augment)]
                for hb, ob in copies:
                    pos_h.append(hb)
                    pos_o.append(ob)
                    pos_t.append(target)
        for g in range(len(humans)):
            for other, objects in enumerate(item.objects):
                if other == g:
                    continue
                neg_h.append(humans[g])
                neg_o.append(humans[other])
                for _, _, box in objects:
                    if tuple(float(v) for v in box) not in own[g]:
                        neg_h.append(humans[g])
                        neg_o.append(to_pixels(box))
        if neg_h and len(neg_h) > self.cfg.neg_per_image:
            pick = (rng.permutation(len(neg_h)) if rng is not None else np.arange(len(neg_h)))[: self.cfg.neg_per_image]
            neg_h, neg_o = [neg_h[i] for i in sorted(pick)], [neg_o[i] for i in sorted(pick)]
        n_pos, n_neg = len(pos_h), len(neg_h)
        hb = np.array(pos_h + neg_h, np.float32).reshape(-1, 4)
        ob = np.array(pos_o + neg_o, np.float32).reshape(-1, 4)
        hoi = np.concatenate([np.array(pos_t, np.float32).reshape(-1, 600), np.zeros((n_neg, 600), np.float32)])
        binary = np.concatenate([np.tile([1, 0], (n_pos, 1)), np.tile([0, 1], (n_neg, 1))]).astype(np.float32)
        return hb, ob, hoi, binary, n_pos

    def extra_fields(self, item, sample: dict, rng) -> dict:
        hb, ob, hoi, binary, n_pos = self.pairs(item, sample, rng)
        return {"pair_h": torch.from_numpy(hb), "pair_o": torch.from_numpy(ob), "hoi": torch.from_numpy(hoi),
                "binary": torch.from_numpy(binary), "n_pos": n_pos}

    @staticmethod
    def forward_pairs(model, image: torch.Tensor, hb: torch.Tensor, ob: torch.Tensor) -> dict:
        """TIN on one RGB 0..255 image ``(1, 3, H, W)`` and its pairs ``hb``, ``ob`` ``(P, 4)`` (pixels)."""
        from partwise.models.activity2vec import PIXEL_MEANS_BGR
        from partwise.models.tin import interaction_pattern

        device = image.device
        images = image.flip(1) - torch.tensor(PIXEL_MEANS_BGR, device=device).view(1, 3, 1, 1)
        patterns = torch.from_numpy(np.stack([interaction_pattern(h.numpy(), o.numpy())
                                              for h, o in zip(hb.cpu(), ob.cpu())])).to(device)
        index = torch.zeros((len(hb), 1), device=device)
        return model(images, torch.cat([index, hb], 1), torch.cat([index, ob], 1), patterns)

    def loss_fn(self, model, batch):
        from partwise.models.tin import tin_loss

        device = batch["image"].device
        binary_weights = torch.tensor([math.log(5.0), math.log(1.25)], device=device)
        losses = []
        for i in range(len(batch["pair_h"])):
            hb, ob = batch["pair_h"][i], batch["pair_o"][i]
            if len(hb) == 0:
                continue
            out = self.forward_pairs(model, batch["image"][i:i + 1], hb, ob)
            hoi_weights = getattr(self, "hoi_weights", None)
            losses.append(tin_loss(out, batch["hoi"][i], batch["binary"][i], int(batch["n_pos"][i]),
                                   hoi_weights=None if hoi_weights is None else hoi_weights.to(device),
                                   binary_weights=binary_weights))
        if not losses:
            return sum(p.sum() * 0 for p in model.parameters() if p.requires_grad), {}
        return torch.stack(losses).sum() / len(batch["pair_h"]), {}

    # --- evaluation ----------------------------------------------------------------------------------------------

    def hico_files(self) -> tuple[Path, Path]:
        """(GT file of the val split, file of the train split's counts) of a HICO-DET ``data.annotations``: the
        folder's ``anno_bbox.mat`` (both), else its ``test_hico.json`` / ``trainval_hico.json``; a file: itself for
        ``.mat``, the JSON pair beside it otherwise."""
        path = Path(self.cfg.data.root) / self.cfg.data.annotations
        if path.is_file() and path.suffix.lower() == ".mat":
            return path, path
        folder = path if path.is_dir() else path.parent
        if (folder / "anno_bbox.mat").is_file() and path.is_dir():
            return folder / "anno_bbox.mat", folder / "anno_bbox.mat"
        return folder / "test_hico.json", folder / "trainval_hico.json"

    def candidate_pairs(self, item) -> list[tuple[int, tuple, int]]:
        """Every (person index, distinct object box (normalized), HICO object id) of an image: the GT persons times
        every annotated object of the image (its own and the other persons') and every other GT person (class
        ``person``: TIN pairs humans with every other detection, humans included)."""
        from partwise.vocab import load

        person = load("hico_objects80").id_of("person")
        objects: dict[tuple, int] = {}
        for objs in item.objects:
            for class_id, _, box in objs:
                objects.setdefault(tuple(float(v) for v in box), int(class_id))
        humans = [tuple(float(v) for v in box) for box in item.boxes]
        out = []
        for g in range(len(humans)):
            out += [(g, box, cls) for box, cls in objects.items()]
            out += [(g, humans[k], person) for k in range(len(humans)) if k != g and humans[k] not in objects]
        return out

    def evaluate(self, model, train_ds, val_ds, out_dir: Path | None, progress: bool = False) -> dict:
        """Validation loss; on HICO-DET records (``hico_hoi600``) also the HICO-DET mAP (:mod:`partwise.eval.hico`,
        ``official`` profile, Default setting) and TIN's interactiveness AP (:mod:`partwise.eval.interactiveness`)
        of the val split, each next to a frequency prior on the same pairs.

        Pairs: the **ground-truth** person boxes times the ground-truth object boxes of each image (no detector is
        run), so these are oracle-box figures, higher than detector-box HICO-DET numbers. Each pair is scored for
        every HOI of its object's class with S_C (``model``), with S_C after TIN's NIS (``model_nis``: the pair is
        dropped for the interaction classes when P_non > tau_no and P_int < tau_int), or with P(HOI | object) of
        the training annotations (``frequency_prior``); P_int scores the pair for the interactiveness AP, next to
        the training fraction of interactive pairs per object class. The official Full/Rare/Non-rare means run over
        all 600 classes (classes without test GT count as AP 0); ``present_*`` over the classes with test GT, which
        is the figure reported as ``mAP``. Predictions go to ``hico_predictions.parquet`` (0-based boxes, readable
        by ``partwise eval hico``)."""
        if not val_ds.items or any(it.action_vocab != "hico_hoi600" for it in val_ds.items):
            return super().evaluate(model, train_ds, val_ds, out_dir, progress)
        results: dict[str, Any] = {"val_loss": {"value": self.validation_loss(model, val_ds)}}
        results.update(self.evaluate_hico(model, train_ds, val_ds, out_dir, progress))
        if out_dir is not None:
            write_eval_json(out_dir, results)
        return results

    def evaluate_hico(self, model, train_ds, val_ds, out_dir: Path | None, progress: bool = False) -> dict:
        from partwise import vocab
        from partwise.data.hico_det import hoi_verb_object, read_gt_pairs, training_counts
        from partwise.eval import hico as hico_eval
        from partwise.eval.interactiveness import interactive_pairs, interactiveness_ap
        from partwise.models.tin import nis_keep
        from partwise.train.engine import to_device

        gt_file, train_file = self.hico_files()
        gt_raw = read_gt_pairs(gt_file, self.cfg.data.val_split)
        gt = hico_eval.Pairs(gt_raw.image, gt_raw.hoi - 1, gt_raw.boxes)
        index_of = {name: i for i, name in enumerate(gt_raw.images)}
        counts = training_counts(train_file)
        rare = counts[1:] < hico_eval.RARE_THRESHOLD
        verb_of, object_of = hoi_verb_object()
        no_interaction = verb_of == vocab.load("hico_verbs117").id_of("no_interaction")
        hois_of = {o: np.flatnonzero(object_of == o) for o in range(1, 81)}  # HOI ids (1-based) per object
        prior_hoi = np.zeros(601)
        for o, ids in hois_of.items():
            prior_hoi[ids] = counts[ids] / max(int(counts[ids].sum()), 1)
        interactive_seen, candidates_seen = np.zeros(81), np.zeros(81)
        for item in train_ds.items:
            own = [self.hoi_targets(item, objects) for objects in item.objects]
            for g, box, cls in self.candidate_pairs(item):
                candidates_seen[cls] += 1
                if box in own[g] and (own[g][box][0][~no_interaction[1:]] > 0).any():
                    interactive_seen[cls] += 1
        prior_int = interactive_seen / np.maximum(candidates_seen, 1)
        coco_order = _coco_order_of_hico_object()

        rows: dict[str, list] = {k: [] for k in ("image", "cls", "box", "model", "prior", "nis")}
        pair_rows: dict[str, list] = {k: [] for k in ("image", "box", "p_int", "prior")}
        model.eval()
        device = next(model.parameters()).device
        iterator = range(len(val_ds))
        if progress:
            from partwise.progress import bar as tqdm

            iterator = tqdm(iterator, desc="eval hico-det", unit="img")
        with torch.no_grad():
            for i in iterator:
                item = val_ds.items[i]
                pairs = self.candidate_pairs(item)
                if not pairs or item.video not in index_of:
                    continue
                sample = val_ds[i]
                h, w = sample["image"].shape[-2:]
                scale = np.array([w, h, w, h], np.float64)
                hb = torch.from_numpy(np.array([sample["boxes"][g].numpy() for g, _, _ in pairs], np.float32))
                ob = torch.from_numpy(np.array([np.asarray(box) * scale for _, box, _ in pairs], np.float32))
                out = self.forward_pairs(model, to_device(sample["image"][None], device), hb, ob)
                scores = out["hoi_scores"].float().cpu().numpy().astype(np.float64)
                binary = out["binary"].float().cpu().numpy().astype(np.float64)
                size = np.array([item.width, item.height] * 2, np.float64)
                for k, (g, box, cls) in enumerate(pairs):
                    # continuous pixel boxes -> 0-based inclusive pixel indices (x2 - 1), HICO-DET's detection format
                    boxes8 = np.concatenate([item.boxes[g] * size, np.asarray(box) * size]) - [0, 0, 1, 1] * 2
                    ids = hois_of[cls]
                    keep = nis_keep(binary[k, 0], binary[k, 1], coco_order[cls]) | no_interaction[ids]
                    rows["image"].append(np.full(len(ids), index_of[item.video]))
                    rows["cls"].append(ids - 1)
                    rows["box"].append(np.tile(boxes8, (len(ids), 1)))
                    rows["model"].append(scores[k, ids - 1])
                    rows["prior"].append(prior_hoi[ids])
                    rows["nis"].append(keep)
                    pair_rows["image"].append(index_of[item.video])
                    pair_rows["box"].append(boxes8)
                    pair_rows["p_int"].append(binary[k, 0])
                    pair_rows["prior"].append(prior_int[cls])
        n_images = len(gt_raw.images)
        if not rows["image"]:
            return {}
        image = np.concatenate(rows["image"]).astype(np.int64)
        cls = np.concatenate(rows["cls"]).astype(np.int64)
        boxes = np.concatenate(rows["box"])
        nis = np.concatenate(rows["nis"])

        def hoi_map(score: np.ndarray, keep: np.ndarray | None = None) -> dict:
            det = hico_eval.Pairs(image, cls, boxes, score)
            if keep is not None:
                det = det.take(np.flatnonzero(keep))
            res = hico_eval.evaluate_hico(gt, det, n_images, profile="official", rare=rare)["default"]
            present = res.classes.npos > 0

            def mean(mask):
                return float(res.classes.ap[mask].mean()) if mask.any() else None

            return {"protocol": "hico-det official (Default), ground-truth boxes (oracle)",
                    "full": res.full, "rare": res.rare, "non_rare": res.non_rare,
                    "present_full": mean(present), "present_rare": mean(present & rare),
                    "present_non_rare": mean(present & ~rare),
                    "per_class": {str(c + 1): float(res.classes.ap[c]) for c in np.flatnonzero(present)},
                    "recall": {str(c + 1): float(res.classes.recall[c]) for c in np.flatnonzero(present)}}

        model_score = np.concatenate(rows["model"])
        ours, ours_nis = hoi_map(model_score), hoi_map(model_score, nis)
        prior = hoi_map(np.concatenate(rows["prior"]))
        present = int(np.count_nonzero(np.bincount(gt.cls, minlength=600)))
        out: dict[str, Any] = {"hoi": {
            "mAP": ours["present_full"], "prior_mAP": prior["present_full"], "nis_mAP": ours_nis["present_full"],
            "classes": present, "boxes": "ground-truth person and object boxes (oracle-box mAP)",
            "model": ours, "model_nis": ours_nis, "frequency_prior": prior,
            "n_images": n_images, "n_gt_pairs": int(len(gt)), "n_pairs": len(pair_rows["image"]),
            "rare_classes_present": int(np.count_nonzero(np.bincount(gt.cls, minlength=600).astype(bool) & rare))}}

        positives = interactive_pairs(gt)
        pair_image = np.asarray(pair_rows["image"], np.int64)
        order = np.argsort(pair_image, kind="stable")

        def int_ap(score) -> dict:
            det = hico_eval.Pairs(pair_image, np.zeros(len(pair_image), np.int64),
                                  np.asarray(pair_rows["box"]) + 1.0, np.asarray(score, np.float64)).take(order)
            ap, _, rec, npos = interactiveness_ap(positives, det, n_images)
            return {"protocol": "tin interactiveness AP, ground-truth boxes (oracle)", "ap": ap, "npos": npos,
                    "recall": float(rec[-1]) if rec.size else 0.0}

        ours_int, prior_int_res = int_ap(pair_rows["p_int"]), int_ap(pair_rows["prior"])
        out["interactiveness"] = {"mAP": ours_int["ap"], "prior_mAP": prior_int_res["ap"], "classes": 1,
                                  "model": ours_int, "frequency_prior": prior_int_res}
        if out_dir is not None:
            import pyarrow as pa
            import pyarrow.parquet as pq

            from partwise.io import atomic_write

            table = pa.table({"image": [gt_raw.images[i] for i in image], "hoi_id": cls + 1,
                              **{name: boxes[:, j] for j, name in enumerate(
                                  ("hx1", "hy1", "hx2", "hy2", "ox1", "oy1", "ox2", "oy2"))},
                              "score": model_score})
            with atomic_write(out_dir / "hico_predictions.parquet", "wb") as fh:
                pq.write_table(table, fh)
        return out
