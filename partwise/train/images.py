"""Training data of the image tasks (Activity2Vec, CLIP-Activity2Vec, TIN, the person detector): whole images or
keyframes with their persons, part boxes and objects (:class:`ImageRecordsDataset`), their PaSta / verb targets,
and Activity2Vec's negatives (person boxes that are not ground truth)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from partwise.errors import ConfigError
from partwise.ops.resize import resize_clip, short_side_size
from partwise.train.sources import (FrameSource, check_root_and_annotations, draw_short_side, read_image,
                                    sample_of)


@dataclass
class ImageDataConfig:
    """Images with person records: ``images/<video_id>`` files (HAKE / HICO-DET layouts: ``video_id`` is the image
    file name) or, when that file does not exist, the keyframe ``frame_index`` of ``videos``/``frames`` (AVA and the
    synthetic layout). Training: short side random in ``scale_range`` and horizontal flip; test: ``test_short_side``."""

    root: str  # required
    annotations: str = "truth.parquet"
    format: str = "records"  # records | hake-instance | hake-image | hico-det | ...
    images: str = "images"
    train_split: str = "train"
    val_split: str = "val"
    scale_range: list[int] = field(default_factory=lambda: [600, 600])
    test_short_side: int = 600
    flip: float = 0.5
    source: str = "auto"
    cache_frames: bool = True
    # person detections to draw training negatives from (Activity2Vec): an AVA dense-proposals pickle relative to
    # root, ``{split}`` replaced (``ava/ava_dense_proposals_{split}.FAIR.recall_93.9.pkl`` in the synthetic layout);
    # "" for none
    proposals: str = ""


def check_image_paths(cfg: ImageDataConfig) -> None:
    """Fail early, in one line, when the image dataset's folder or annotations are missing."""
    root = check_root_and_annotations(cfg)
    if not any((root / name).is_dir() for name in (cfg.images, "frames", "videos")):
        raise ConfigError(f"data.root: {cfg.root} has no {cfg.images}/, frames/ or videos/")
    if getattr(cfg, "proposals", ""):
        for split in (cfg.train_split, cfg.val_split):
            if not (root / cfg.proposals.format(split=split)).exists():
                raise ConfigError(f"data.proposals: {root / cfg.proposals.format(split=split)} does not exist")


@dataclass
class ImageItem:
    """One image and its persons: boxes (G, 4) normalized; part boxes (G, 10, 4) normalized (NaN = unknown);
    pasta names per person; action ids and their vocabulary; objects per person ``[(class_id, action, box)]``;
    ``keypoints`` (G, 17, 3) COCO ``[x, y, score]`` in pixels of the record's ``width x height`` (NaN rows = the
    record has none; None when no record has any); ``time_s`` of the keyframe (None for images); ``proposals``
    (P, 4) normalized person detections of the image (None = no detection source)."""

    video: str
    frame_index: int
    width: int
    height: int
    boxes: np.ndarray
    part_boxes: np.ndarray
    pasta: list
    actions: list
    action_vocab: str
    objects: list
    keypoints: np.ndarray | None = None
    time_s: float | None = None
    proposals: np.ndarray | None = None


def group_images(table: pa.Table) -> list[ImageItem]:
    """Person records grouped by (video_id, time_s): one item per image / keyframe."""
    from partwise.vocab import BODY_PARTS

    part_index = {name: i for i, name in enumerate(BODY_PARTS)}
    columns = ["video_id", "time_s", "frame_index", "width", "height", "x1", "y1", "x2", "y2", "pasta",
               "actions", "action_vocab", "part_boxes", "objects"]
    has_keypoints = "keypoints" in table.column_names  # records written before the column existed lack it
    rows = table.select(columns + (["keypoints"] if has_keypoints else [])).to_pylist()
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["video_id"], row["time_s"]), []).append(row)
    out = []
    for (video, _), persons in groups.items():
        first = persons[0]
        if not first["width"] or not first["height"]:
            raise ConfigError(f"data: record of {video} has no image size (width/height)")
        parts = np.full((len(persons), 10, 4), np.nan)
        for g, p in enumerate(persons):
            for pb in p["part_boxes"] or []:
                if pb["part"] in part_index and pb["x1"] is not None:
                    parts[g, part_index[pb["part"]]] = (pb["x1"], pb["y1"], pb["x2"], pb["y2"])
        objects = [[(o["class_id"], o["action"], (o["x1"], o["y1"], o["x2"], o["y2"])) for o in (p["objects"] or [])
                    if o["x1"] is not None] for p in persons]
        keypoints = None
        if has_keypoints and any(p["keypoints"] is not None for p in persons):
            keypoints = np.full((len(persons), 17, 3), np.nan)
            for g, p in enumerate(persons):
                if p["keypoints"] is not None:
                    if len(p["keypoints"]) != 51:
                        raise ConfigError(f"data: record of {video} has {len(p['keypoints'])} keypoint values, "
                                          "expected 51 (17 x (x, y, score))")
                    keypoints[g] = np.asarray(p["keypoints"], np.float64).reshape(17, 3)
        out.append(ImageItem(video, int(first["frame_index"] if first["frame_index"] is not None else 0),
                             int(first["width"]), int(first["height"]),
                             np.array([[p["x1"], p["y1"], p["x2"], p["y2"]] for p in persons], np.float64),
                             parts, [p["pasta"] or [] for p in persons], [p["actions"] or [] for p in persons],
                             first["action_vocab"] or "", objects, keypoints, first["time_s"]))
    return out


class ImageRecordsDataset(Dataset):
    """Images with pixel boxes. Item: ``{"image": (3, H, W) float32 RGB 0..255, "boxes": (G, 4), "part_boxes":
    (G, 10, 4) (unknown parts = the person box), "index"}`` plus the flip flag; boxes in pixels of the
    transformed image. Training items draw scale and flip from the per-sample generator.

    With ``keypoint_inputs`` (Activity2Vec) items also carry ``"keypoints"`` (G, 17, 3) (pixels of the transformed
    image, NaN rows = none) and ``"skeletons"`` (G, 1, S, S) maps (:func:`partwise.models.pose_parts.skeleton_map`,
    zero without keypoints), and a person with keypoints gets its part boxes from them by the Activity2Vec rule
    (:func:`partwise.models.pose_parts.part_boxes_from_keypoints`, as ``partwise run`` derives them) instead of
    the record's. A flip mirrors keypoints like boxes, without swapping left and right: labels stay with the
    pixels, as they do for the part boxes."""

    def __init__(self, cfg: ImageDataConfig, items: list[ImageItem], *, train: bool, seed: int = 0, extra=None,
                 keypoint_inputs: bool = False, skeleton_size: int = 64):
        self.cfg, self.items, self.train, self.seed = cfg, items, train, seed
        self.extra = extra  # extra(item, sample, rng or None) -> dict of more fields (drawn after the augmentation)
        self.frames = FrameSource(cfg.root, cfg.cache_frames, source=cfg.source)
        self.keypoint_inputs, self.skeleton_size = keypoint_inputs, skeleton_size

    def __len__(self) -> int:
        return len(self.items)

    def _image(self, item: ImageItem) -> np.ndarray:
        return read_image(self.cfg, self.frames, item.video, item.frame_index)

    def __getitem__(self, encoded: int) -> dict:
        index, rng = sample_of(self.train, self.seed, encoded, len(self))
        item = self.items[index]
        frame = self._image(item)
        height, width = frame.shape[:2]
        short = draw_short_side(self.cfg, rng)
        h, w = short_side_size(height, width, short)
        image = resize_clip(frame[None], (h, w))[:, 0]  # (3, h, w)
        scale = np.array([w, h, w, h], np.float64)
        boxes = item.boxes * scale
        parts = np.where(np.isnan(item.part_boxes), item.boxes[:, None, :], item.part_boxes) * scale
        flipped = rng is not None and rng.random() < self.cfg.flip
        if flipped:
            image = image.flip(-1)
            boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], -1)
            parts = np.stack([w - parts[..., 2], parts[..., 1], w - parts[..., 0], parts[..., 3]], -1)
        sample = {"image": image, "boxes": torch.from_numpy(boxes.astype(np.float32)),
                  "part_boxes": torch.from_numpy(parts.astype(np.float32)), "index": index, "flipped": flipped,
                  "pasta93": torch.from_numpy(pasta93_targets(item.pasta)),
                  "verbs": torch.from_numpy(verb_targets(item.actions, item.action_vocab))}
        if self.keypoint_inputs:
            sample.update(self._keypoint_fields(item, boxes, parts, (w, h), flipped))
        if self.extra is not None:
            sample.update(self.extra(item, sample, rng))
        return sample


    def _keypoint_fields(self, item: ImageItem, boxes: np.ndarray, parts: np.ndarray, size: tuple[int, int],
                         flipped: bool) -> dict:
        """Keypoints in transformed pixels, skeleton maps, and part boxes from keypoints where a person has them."""
        from partwise.models.pose_parts import part_boxes_from_keypoints, skeleton_map

        w, h = size
        count = len(boxes)
        maps = np.zeros((count, 1, self.skeleton_size, self.skeleton_size), np.float32)
        keypoints = np.full((count, 17, 3), np.nan)
        if item.keypoints is not None:
            keypoints = item.keypoints.copy()
            keypoints[..., 0] *= w / item.width
            keypoints[..., 1] *= h / item.height
            if flipped:
                keypoints[..., 0] = w - keypoints[..., 0]
            present = ~np.isnan(keypoints).any(axis=(1, 2))
            if present.any():
                derived = part_boxes_from_keypoints(keypoints[present], boxes[present], image_size=(w, h))
                parts = parts.copy()
                parts[present] = derived
                for g in np.flatnonzero(present):
                    maps[g, 0] = skeleton_map(keypoints[g], (w, h), self.skeleton_size)
        return {"keypoints": torch.from_numpy(keypoints.astype(np.float32)),
                "part_boxes": torch.from_numpy(parts.astype(np.float32)),
                "skeletons": torch.from_numpy(maps)}


def pasta93_targets(pasta: list[list[str]]) -> np.ndarray:
    """(G, 93) multi-hot over the HAKE 93 PaSta list; names are matched as written ("part: state"), other names
    (no counterpart in the 93 list) are dropped."""
    from partwise import vocab

    names = vocab.load("pasta93").names
    index = {n: i for i, n in enumerate(names)}
    out = np.zeros((len(pasta), len(names)), np.float32)
    for g, states in enumerate(pasta):
        for name in states:
            if name in index:
                out[g, index[name]] = 1
    return out


def verb_targets(actions: list[list[int]], action_vocab: str) -> np.ndarray:
    """(G, 157) multi-hot of HAKE verbs when the records carry ``verbs157`` ids (0-based index = id - 1 when the
    vocabulary's ids start at 1); all zero for other vocabularies."""
    out = np.zeros((len(actions), 157), np.float32)
    if action_vocab != "verbs157":
        return out
    from partwise import vocab

    v = vocab.load("verbs157")
    position = {int(i): k for k, i in enumerate(v.ids)}
    for g, ids in enumerate(actions):
        for a in ids:
            if int(a) in position:
                out[g, position[int(a)]] = 1
    return out


def collate_images(items: list[dict]) -> dict:
    """Images zero-padded to the largest (right/bottom), per-image box lists."""
    images = [it["image"] for it in items]
    h = max(i.shape[-2] for i in images)
    w = max(i.shape[-1] for i in images)
    out = {"image": torch.stack([F.pad(i, (0, w - i.shape[-1], 0, h - i.shape[-2])) for i in images])}
    for key in items[0]:
        if key != "image":
            out[key] = [it[key] for it in items]
    return out


# ---------------------------------------------------------------------------------------------------------------
# Activity2Vec negatives: person boxes that are not ground truth


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (A, B) of ``[x1, y1, x2, y2]`` boxes (continuous coordinates, no +1)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def sample_negative_boxes(gt: np.ndarray, size: tuple[int, int], count: int, rng: np.random.Generator,
                          max_iou: float = 0.5, tries: int = 50, min_size: float = 8.0) -> np.ndarray:
    """Up to ``count`` random boxes (K, 4) pixels inside the ``size = (width, height)`` image whose IoU with every
    ground-truth box ``gt`` (G, 4) is below ``max_iou``: person-like boxes (a random GT's width and height times
    0.5-1.5, or 10-50 % of the image without GT) at uniform positions; a box that fails ``tries`` draws is skipped,
    so crowded images may get fewer."""
    width, height = size
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    out = []
    for _ in range(count):
        for _ in range(tries):
            if len(gt):
                template = gt[int(rng.integers(len(gt)))]
                bw, bh = (template[2:] - template[:2]) * rng.uniform(0.5, 1.5, 2)
            else:
                bw, bh = rng.uniform(0.1, 0.5, 2) * (width, height)
            bw, bh = float(np.clip(bw, min_size, width)), float(np.clip(bh, min_size, height))
            x1, y1 = rng.uniform(0, width - bw), rng.uniform(0, height - bh)
            box = np.array([x1, y1, x1 + bw, y1 + bh])
            if not len(gt) or box_iou(box, gt).max() < max_iou:
                out.append(box)
                break
    return np.asarray(out, np.float64).reshape(-1, 4)


def proposal_negative_boxes(proposals: np.ndarray, gt: np.ndarray, count: int, rng: np.random.Generator,
                            max_iou: float = 0.5, min_size: float = 2.0) -> np.ndarray:
    """Up to ``count`` detections (K, 4) of ``proposals`` (P, 4) whose IoU with every ground-truth box is below
    ``max_iou``, drawn without replacement (pixels in, pixels out)."""
    proposals = np.asarray(proposals, np.float64).reshape(-1, 4)
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    keep = ((proposals[:, 2] - proposals[:, 0]) >= min_size) & ((proposals[:, 3] - proposals[:, 1]) >= min_size)
    if len(gt) and len(proposals):
        keep &= box_iou(proposals, gt).max(axis=1) < max_iou
    candidates = proposals[keep]
    if len(candidates) > count:
        candidates = candidates[np.sort(rng.choice(len(candidates), size=count, replace=False))]
    return candidates
