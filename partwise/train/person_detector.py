"""Training task ``person_detector``: the single-class CenterNet-style detector of
:mod:`partwise.models.person_detector` on the person boxes of image / keyframe records (``ImageDataConfig``: the
synthetic layout's ``truth.parquet`` keyframes, AVA, HAKE images...).

Targets (per image, on the stride-``s`` output map of an ``h x w`` cell grid): a box with centre ``c`` (in cells)
puts a 1 at cell ``floor(c)`` of the heatmap and an elliptical Gaussian around it (TTFNet: ``sigma = alpha * box
side / 6`` per axis; overlapping people take the maximum); the offset target is ``c - floor(c)`` and the size target
``log(box side / s)``. Loss per image: CenterNet's penalty-reduced focal loss over the heatmap divided by the number
of people (alpha 2, beta 4), plus L1 on offset and log-size and the GIoU loss of the decoded box at each person's
centre cell, averaged over the people; the batch loss is the mean over images (so it does not depend on how a
global batch is split across ``torchrun`` processes).

Augmentation (training): short side random in ``data.scale_range`` and horizontal flip with ``data.flip``, drawn
from the per-sample generator (exact resume). Evaluation (rank 0, ``eval.json`` + ``eval_person.png``): the
validation loss and person AP at IoU ``eval.iou_threshold`` (VOC all-points AP, greedy argmax matching as the AVA
tools do) of :func:`partwise.models.person_detector.detect_people` on the val frames, next to two image-blind
baselines: the *box prior* (k-means clusters of the training boxes, each scored by its cluster's share of the
training people, predicted on every frame) and one whole-frame box per frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from partwise.errors import ConfigError
from partwise.train.base import ImageTask, TrainModel, build_model_config, write_eval_json
from partwise.train.data import FrameSource, ImageDataConfig, load_records, resize_clip, short_side_size
from partwise.train.engine import OptimConfig, RunConfig, ScheduleConfig
from partwise.train.sources import draw_short_side, read_image, sample_of

# ---------------------------------------------------------------------------------------------------------------
# config


@dataclass
class DetectorLossConfig:
    """Weights of the loss terms and the Gaussian's extent."""

    heatmap: float = 1.0
    offset: float = 1.0
    size: float = 0.5
    giou: float = 1.0
    gaussian_alpha: float = 0.54  # sigma = alpha * side / 6 (TTFNet)


@dataclass
class DetectorEvalConfig:
    """End-of-run evaluation on the val split (rank 0)."""

    enabled: bool = True
    iou_threshold: float = 0.5
    score_threshold: float = 0.01  # low: AP needs the whole ranking
    nms_iou: float = 0.5
    max_people: int = 20
    prior_boxes: int = 8  # clusters of the box-prior baseline
    max_images: int = 0  # 0: all val images


@dataclass
class PersonDetectorTask:
    """Person detector on image/keyframe person boxes; ``model`` holds :class:`PersonDetectorConfig` fields except
    ``test_short_side``, which comes from ``data.test_short_side`` (the validation resize) so that the saved model
    detects at the size it was evaluated at."""

    data: ImageDataConfig
    task: str = "person_detector"
    model: dict = field(default_factory=dict)
    loss: DetectorLossConfig = field(default_factory=DetectorLossConfig)
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=16, max_steps=600, grad_clip=10.0))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adamw", lr=2e-3, weight_decay=1e-4))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(name="cosine", warmup_steps=20))
    eval: DetectorEvalConfig = field(default_factory=DetectorEvalConfig)
    init: str = ""


# ---------------------------------------------------------------------------------------------------------------
# data


@dataclass
class PersonFrame:
    """One image / keyframe: ``boxes`` (G, 4) normalized x1, y1, x2, y2 of its people."""

    video: str
    frame_index: int
    time_s: float | None
    boxes: np.ndarray


def group_person_frames(table) -> list[PersonFrame]:
    """Person records grouped into frames by (video_id, frame_index, time_s), in first-appearance order."""
    columns = table.select(["video_id", "frame_index", "time_s", "x1", "y1", "x2", "y2"]).to_pydict()
    groups: dict[tuple, list[int]] = {}
    for row, key in enumerate(zip(columns["video_id"], columns["frame_index"], columns["time_s"])):
        groups.setdefault(key, []).append(row)
    coords = np.stack([np.asarray(columns[k], np.float64) for k in ("x1", "y1", "x2", "y2")], 1) \
        if columns["x1"] else np.zeros((0, 4))
    out = []
    for (video, frame_index, time_s), rows in groups.items():
        boxes = coords[rows]
        boxes = boxes[np.isfinite(boxes).all(1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
        out.append(PersonFrame(str(video), int(frame_index) if frame_index is not None else 0, time_s, boxes))
    return out


class PersonFramesDataset(Dataset):
    """Frames with their people. Item: ``{"image": (3, h, w) float32 normalized with the model's mean / std,
    "boxes": (G, 4) float32 pixels of the transformed image, "index"}``. Training items draw the short side from
    ``scale_range`` and the flip from the per-sample generator; test items use ``test_short_side``."""

    def __init__(self, cfg: ImageDataConfig, frames: list[PersonFrame], *, train: bool, mean, std, seed: int = 0):
        self.cfg, self.items, self.train, self.seed = cfg, frames, train, seed
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.source = FrameSource(cfg.root, cfg.cache_frames, source=cfg.source)

    def __len__(self) -> int:
        return len(self.items)

    def raw_frame(self, index: int) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB: ``images/<video_id>`` when that file exists, else the record's video frame."""
        item = self.items[index]
        return read_image(self.cfg, self.source, item.video, item.frame_index)

    def __getitem__(self, encoded: int) -> dict:
        index, rng = sample_of(self.train, self.seed, encoded, len(self))
        frame = self.raw_frame(index)
        height, width = frame.shape[:2]
        short = draw_short_side(self.cfg, rng)
        h, w = short_side_size(height, width, short)
        image = resize_clip(frame[None], (h, w))[:, 0]
        boxes = self.items[index].boxes * np.array([w, h, w, h], np.float64)
        if rng is not None and rng.random() < self.cfg.flip:
            image = image.flip(-1)
            boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
        return {"image": (image - self.mean) / self.std,
                "boxes": torch.from_numpy(boxes.astype(np.float32).reshape(-1, 4)), "index": index}


def collate_frames(items: list[dict]) -> dict:
    """Images zero-padded at the right / bottom to the largest (zero = the mean colour after normalisation; boxes
    keep their pixel coordinates); per-image box lists."""
    h = max(it["image"].shape[-2] for it in items)
    w = max(it["image"].shape[-1] for it in items)
    images = torch.stack([F.pad(it["image"], (0, w - it["image"].shape[-1], 0, h - it["image"].shape[-2]))
                          for it in items])
    return {"image": images, "boxes": [it["boxes"] for it in items], "index": [it["index"] for it in items]}


# ---------------------------------------------------------------------------------------------------------------
# targets and loss


def center_targets(boxes: Tensor, height: int, width: int, stride: int, alpha: float = 0.54) -> dict[str, Tensor]:
    """Targets of one image on an ``height x width`` cell grid from ``boxes`` (G, 4) pixels.

    Returns ``heatmap`` (height, width) in [0, 1], ``cells`` (G,) flat index ``y * width + x`` of each centre cell
    (clamped into the grid), ``offset`` (G, 2) sub-cell centre in cells, ``size`` (G, 2) ``log(side / stride)``,
    ``boxes`` (G, 4) in cell units.
    """
    device = boxes.device
    cell_boxes = boxes.float() / stride
    centre = (cell_boxes[:, :2] + cell_boxes[:, 2:]) / 2
    sides = (cell_boxes[:, 2:] - cell_boxes[:, :2]).clamp(min=1e-3)
    ix = centre[:, 0].floor().clamp(0, width - 1)
    iy = centre[:, 1].floor().clamp(0, height - 1)
    heatmap = torch.zeros(height, width, device=device)
    if len(boxes):
        sigma = (alpha * sides / 6).clamp(min=1 / 3)
        xs = torch.arange(width, device=device, dtype=torch.float32)
        ys = torch.arange(height, device=device, dtype=torch.float32)
        gx = torch.exp(-(xs[None] - ix[:, None]) ** 2 / (2 * sigma[:, :1] ** 2))  # (G, W)
        gy = torch.exp(-(ys[None] - iy[:, None]) ** 2 / (2 * sigma[:, 1:] ** 2))  # (G, H)
        heatmap = (gy[:, :, None] * gx[:, None, :]).amax(0)
    cells = (iy * width + ix).long()
    offset = centre - torch.stack([ix, iy], 1)
    return {"heatmap": heatmap, "cells": cells, "offset": offset, "size": sides.log(), "boxes": cell_boxes}


def focal_heatmap_loss(logits: Tensor, target: Tensor, positive: Tensor) -> Tensor:
    """CenterNet's penalty-reduced pixel focal loss (alpha 2, beta 4) summed over the map and divided by the number
    of positives (at least 1). ``logits``, ``target`` (h, w); ``positive`` (h, w) bool: the people's centre cells."""
    p = torch.sigmoid(logits)
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    pos = positive.float()
    pos_loss = (1 - p) ** 2 * log_p * pos
    neg_loss = (1 - target) ** 4 * p ** 2 * log_not_p * (1 - pos)
    return -(pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


def giou_loss(pred: Tensor, target: Tensor) -> Tensor:
    """``1 - GIoU`` of paired xyxy boxes (N, 4) -> (N,)."""
    area_p = (pred[:, 2] - pred[:, 0]).clamp(min=0) * (pred[:, 3] - pred[:, 1]).clamp(min=0)
    area_t = (target[:, 2] - target[:, 0]).clamp(min=0) * (target[:, 3] - target[:, 1]).clamp(min=0)
    lt = torch.maximum(pred[:, :2], target[:, :2])
    rb = torch.minimum(pred[:, 2:], target[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    union = area_p + area_t - inter
    iou = inter / union.clamp(min=1e-9)
    hull = (torch.maximum(pred[:, 2:], target[:, 2:]) - torch.minimum(pred[:, :2], target[:, :2])).clamp(min=0).prod(1)
    return 1 - iou + (hull - union) / hull.clamp(min=1e-9)


def detector_loss(outputs: dict[str, Tensor], boxes: list[Tensor], stride: int,
                  weights: DetectorLossConfig) -> tuple[Tensor, dict[str, float]]:
    """Mean over images of ``w_h * focal + w_o * L1(offset) + w_s * L1(log size) + w_g * (1 - GIoU)`` (box terms
    averaged over the image's people). ``outputs``: the network's dict; ``boxes``: per image (G_i, 4) pixels of the
    network input. -> (loss, {"heatmap", "box"} batch means for the log)."""
    height, width = outputs["heatmap"].shape[-2:]
    per_image, heat_terms, box_terms = [], [], []
    for b, gt in enumerate(boxes):
        t = center_targets(gt.to(outputs["heatmap"].device), height, width, stride, weights.gaussian_alpha)
        positive = torch.zeros(height * width, dtype=torch.bool, device=t["cells"].device)
        positive[t["cells"]] = True
        heat = focal_heatmap_loss(outputs["heatmap"][b, 0].float(), t["heatmap"], positive.view(height, width))
        box = heat.new_zeros(())
        if len(gt):
            offset = torch.sigmoid(outputs["offset"][b].float().flatten(1)[:, t["cells"]].t())  # (G, 2)
            log_size = outputs["size"][b].float().flatten(1)[:, t["cells"]].t()
            cell_xy = torch.stack([t["cells"] % width, t["cells"] // width], 1).float()
            centre, half = cell_xy + offset, log_size.clamp(max=12).exp() / 2
            decoded = torch.cat([centre - half, centre + half], 1)
            box = (weights.offset * (offset - t["offset"]).abs().sum(1)
                   + weights.size * (log_size - t["size"]).abs().sum(1)
                   + weights.giou * giou_loss(decoded, t["boxes"])).mean()
        per_image.append(weights.heatmap * heat + box)
        heat_terms.append(float(heat.detach()))
        box_terms.append(float(box.detach()))
    return torch.stack(per_image).mean(), {"heatmap": float(np.mean(heat_terms)), "box": float(np.mean(box_terms))}


# ---------------------------------------------------------------------------------------------------------------
# average precision and the baselines


def person_ap(det_image: np.ndarray, det_boxes: np.ndarray, det_scores: np.ndarray, gt_image: np.ndarray,
              gt_boxes: np.ndarray, iou_threshold: float = 0.5) -> dict[str, Any]:
    """Single-class VOC all-points AP.

    Detections ``det_image`` (n,) int image ids, ``det_boxes`` (n, 4) xyxy, ``det_scores`` (n,); ground truth
    ``gt_image`` (m,), ``gt_boxes`` (m, 4) (same coordinates as the detections). Within an image, detections are
    visited by score; each takes its highest-IoU GT box and is a true positive when that IoU >= ``iou_threshold`` and
    no better-scored detection took the box (:func:`partwise.eval.ava.match`). -> ``{"AP", "precision",
    "recall", "num_gt", "num_det"}``.
    """
    from partwise.eval.ava import match, precision_recall, voc_ap

    det_image, gt_image = np.asarray(det_image, np.int64), np.asarray(gt_image, np.int64)
    det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    det_scores = np.asarray(det_scores, np.float64)
    order = np.lexsort((-det_scores, det_image))
    gt_order = np.argsort(gt_image, kind="stable")
    tp, _ = match(det_image[order], det_boxes[order], gt_image[gt_order], gt_boxes[gt_order], threshold=iou_threshold)
    num_gt = len(gt_image)
    if num_gt == 0:
        raise ValueError("person_ap: no ground-truth boxes")
    precision, recall = precision_recall(det_scores[order], tp, num_gt)
    return {"AP": voc_ap(precision, recall), "precision": precision, "recall": recall, "num_gt": num_gt,
            "num_det": len(det_image)}


def box_prior(boxes: np.ndarray, k: int, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """k-means (IoU-free, on normalized ``cx, cy, w, h``; deterministic farthest-point start) of (N, 4) normalized
    xyxy boxes -> (centroids (k', 4) xyxy, share of the boxes in each cluster (k',)), k' = min(k, N)."""
    if len(boxes) == 0:
        raise ValueError("box_prior: no training boxes")
    points = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1)
    k = min(k, len(points))
    centres = [points.mean(0)]
    for _ in range(k - 1):
        distance = ((points[:, None] - np.asarray(centres)[None]) ** 2).sum(-1).min(1)
        centres.append(points[int(distance.argmax())])
    centres = np.asarray(centres)
    for _ in range(iterations):
        assign = ((points[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        updated = np.stack([points[assign == j].mean(0) if np.any(assign == j) else centres[j] for j in range(k)])
        if np.allclose(updated, centres):
            break
        centres = updated
    share = np.bincount(assign, minlength=k) / len(points)
    xyxy = np.concatenate([centres[:, :2] - centres[:, 2:] / 2, centres[:, :2] + centres[:, 2:] / 2], 1)
    return np.clip(xyxy, 0, 1), share


# ---------------------------------------------------------------------------------------------------------------
# the runner


class PersonDetectorRunner(ImageTask):
    name = "person_detector"
    config_cls = PersonDetectorTask

    def model_config(self):
        from partwise.models.person_detector import PersonDetectorConfig

        if "test_short_side" in self.cfg.model:
            raise ConfigError("model.test_short_side: set data.test_short_side instead (the model is saved with the "
                              "size it was validated at)")
        values = {**self.cfg.model, "test_short_side": self.cfg.data.test_short_side}
        return build_model_config(PersonDetectorConfig, values, "model")

    def validate(self) -> None:
        super().validate()
        for key in ("heatmap", "offset", "size", "giou"):
            if getattr(self.cfg.loss, key) < 0:
                raise ConfigError(f"loss.{key}: expected a non-negative weight, got {getattr(self.cfg.loss, key)}")
        if self.cfg.loss.gaussian_alpha <= 0:
            raise ConfigError(f"loss.gaussian_alpha: expected a positive number, got {self.cfg.loss.gaussian_alpha}")
        ev = self.cfg.eval
        if not 0 < ev.iou_threshold <= 1:
            raise ConfigError(f"eval.iou_threshold: expected a value in (0, 1], got {ev.iou_threshold}")
        if not 0 <= ev.score_threshold < 1:
            raise ConfigError(f"eval.score_threshold: expected a value in [0, 1), got {ev.score_threshold}")
        if ev.max_people < 1 or ev.prior_boxes < 1 or ev.max_images < 0:
            raise ConfigError("eval.max_people / eval.prior_boxes: expected at least 1; eval.max_images: at least 0")
        if self.cfg.run.batch_size < 2:
            raise ConfigError(f"run.batch_size: the detector's BatchNorm needs at least 2 images, got "
                              f"{self.cfg.run.batch_size}")

    def build_net(self) -> nn.Module:
        from partwise.models.person_detector import PersonDetector

        return PersonDetector(self.model_config())

    def wrap(self, net):
        return TrainModel(net, False)

    def datasets(self):
        data, mcfg = self.cfg.data, self.net_config
        train_frames = group_person_frames(load_records(data, data.train_split))
        val_frames = group_person_frames(load_records(data, data.val_split))
        return (PersonFramesDataset(data, train_frames, train=True, mean=mcfg.mean, std=mcfg.std,
                                    seed=self.cfg.run.seed),
                PersonFramesDataset(data, val_frames, train=False, mean=mcfg.mean, std=mcfg.std))

    @staticmethod
    def collate(items: list[dict]) -> dict:
        return collate_frames(items)

    def loss_fn(self, model, batch):
        return detector_loss(model(batch["image"]), batch["boxes"], self.net_config.stride, self.cfg.loss)

    def evaluate(self, model, train_ds, val_ds, out_dir: Path | None, progress: bool = False) -> dict:
        """Validation loss; person AP of the model, of the box prior and of whole-frame boxes on the val frames
        (``eval.json``: ``{"val_loss": {"value"}, "person": {"mAP", "prior_mAP", "whole_frame_AP", ...}}``)."""
        from partwise.models.person_detector import detect_people

        ev = self.cfg.eval
        results: dict[str, Any] = {"val_loss": {"value": self.validation_loss(model, val_ds)}}
        net = model.net if isinstance(model, TrainModel) else model
        net.eval()
        n = len(val_ds) if not ev.max_images else min(len(val_ds), ev.max_images)
        indices = range(n)
        if progress:
            from partwise.progress import bar as tqdm

            indices = tqdm(indices, desc="eval", unit="frame", dynamic_ncols=True)
        det_image, det_boxes, det_scores, gt_image, gt_boxes, sizes = [], [], [], [], [], []
        for i in indices:
            frame = val_ds.raw_frame(i)
            height, width = frame.shape[:2]
            sizes.append((width, height))
            det = detect_people(net, frame[None], ev.score_threshold, ev.nms_iou, ev.max_people)[0]
            det_image += [i] * len(det)
            det_boxes.append(det[:, :4])
            det_scores.append(det[:, 4])
            gt = val_ds.items[i].boxes * np.array([width, height, width, height])
            gt_image += [i] * len(gt)
            gt_boxes.append(gt)
        if not gt_image:
            raise ConfigError("eval: no person boxes in the validation split")
        gt_image_a, gt_boxes_a = np.asarray(gt_image), np.concatenate(gt_boxes)
        ours = person_ap(np.asarray(det_image), np.concatenate(det_boxes), np.concatenate(det_scores),
                         gt_image_a, gt_boxes_a, ev.iou_threshold)
        prior_xyxy, share = box_prior(np.concatenate([f.boxes for f in train_ds.items]), ev.prior_boxes)
        scale = np.asarray(sizes, np.float64)[:, [0, 1, 0, 1]]  # (n, 4) per frame
        k = len(prior_xyxy)
        prior = person_ap(np.repeat(np.arange(n), k), (prior_xyxy[None] * scale[:, None]).reshape(-1, 4),
                          np.tile(share, n), gt_image_a, gt_boxes_a, ev.iou_threshold)
        frame_boxes = np.concatenate([np.zeros((n, 2)), scale[:, :2]], 1)  # (0, 0, W, H)
        whole = person_ap(np.arange(n), frame_boxes, np.ones(n), gt_image_a, gt_boxes_a, ev.iou_threshold)
        protocol = f"VOC AP@{ev.iou_threshold:g}, {n} val frames; baseline = {k}-cluster training box prior"
        results["person"] = {
            "mAP": ours["AP"], "prior_mAP": prior["AP"], "whole_frame_AP": whole["AP"], "classes": 1,
            "baseline": "box prior",
            "model": {"protocol": protocol, "AP": ours["AP"], "num_gt": ours["num_gt"], "num_det": ours["num_det"],
                      "max_recall": float(ours["recall"][-1]) if len(ours["recall"]) else 0.0},
            "box_prior": {"AP": prior["AP"], "boxes": prior_xyxy.tolist(), "share": share.tolist()},
            "whole_frame": {"AP": whole["AP"]}}
        if out_dir is not None:
            self._plot(out_dir / "eval_person.png", ours, prior)
            write_eval_json(out_dir, results)
        return results

    @staticmethod
    def _plot(path: Path, ours: dict, prior: dict) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from partwise.io import atomic_write

        fig, ax = plt.subplots(figsize=(5, 4))
        for res, label in ((ours, "detector"), (prior, "box prior")):
            ax.plot(res["recall"], res["precision"], label=f"{label} (AP {100 * res['AP']:.1f})")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        with atomic_write(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=100)
        plt.close(fig)
        from partwise.progress import wrote

        wrote(path)
