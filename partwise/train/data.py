"""Training data for the partwise tasks: keyframe clips for the AVA-style detectors, from a dataset folder in the
synthetic layout (``partwise synth``) or the real AVA / HAKE-AVA layout, read through the partwise format readers.

Dataset folder (``data.root``)::

    frames/<vid>/img_%05d.jpg    1-based JPEG frames (preferred: fast to decode), else
    videos/<vid>.<ext>           any video PyAV reads (frame-exact seeks through partwise.data.video)
    <annotations>                canonical records: a ``.parquet`` file (PERSON_SCHEMA, e.g. ``truth.parquet``)
                                 or an annotation folder read with ``data.format`` (``ava``, ``hake-ava``, ...)
    <proposals_{split}>          AVA dense-proposals pickle (restricted unpickler), optional

A keyframe item is every person of one (video, second). Clip frames follow mmaction2 ``SampleAVAFrames``: ``clip_len``
frames ``frame_interval`` apart centred on the keyframe's ``frame_index`` (0-based, clamped to the video), with
training jitter. Augmentation (training): short side rescaled to a random size in ``scale_range``, optional random
square crop, horizontal flip with probability ``flip``; every draw comes from the per-sample generator of
:func:`partwise.train.engine.sample_rng`, so resumed runs are bitwise identical. Decoded frames are cached per
process (``cache_frames``): decoding dominates the CPU budget and keyframe clips overlap.

Clips are returned normalized: ``(3, T, H, W)`` float32 ``(rgb_0_255 - mean) / std``; boxes are in pixels of the
transformed clip.

The image tasks' data lives in :mod:`partwise.train.images`, the records and frame sources both use in
:mod:`partwise.train.sources`; their names are importable from here too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from partwise.errors import ConfigError
from partwise.ops.resize import resize_clip, short_side_size
# the image tasks' data and the shared sources, importable from here as before the split
from partwise.train.images import (ImageDataConfig, ImageItem, ImageRecordsDataset, box_iou, check_image_paths,
                                   collate_images, group_images, pasta93_targets, proposal_negative_boxes,
                                   sample_negative_boxes, verb_targets)
from partwise.train.sources import (VIDEO_EXTENSIONS, FrameSource, check_root_and_annotations, check_sampling,
                                    draw_short_side, load_records, read_image, sample_of)


@dataclass
class ClipDataConfig:
    """Where the data is and how clips are sampled and augmented (defaults: mmaction2 AVA SlowOnly 8x8)."""

    root: str  # required: the dataset folder
    annotations: str = "truth.parquet"  # relative to root: records .parquet, or a format folder (see ``format``)
    format: str = "records"  # records | ava | ava-kinetics | hake-ava
    proposals: str = "ava/ava_dense_proposals_{split}.FAIR.recall_93.9.pkl"  # "" for none; {split} is replaced
    train_split: str = "train"
    val_split: str = "val"
    clip_len: int = 8
    frame_interval: int = 8
    scale_range: list[int] = field(default_factory=lambda: [256, 320])  # training short side, inclusive
    crop: int = 256  # training random square crop; 0 keeps the whole rescaled frame
    flip: float = 0.5
    test_short_side: int = 256
    mean: list[float] = field(default_factory=lambda: [123.675, 116.28, 103.53])
    std: list[float] = field(default_factory=lambda: [58.395, 57.12, 57.375])
    cache_frames: bool = True
    source: str = "auto"  # auto (frames/ when present, else videos/) | frames | video
    min_box_size: float = 2.0  # GT boxes narrower or lower than this after the crop are dropped (pixels)


def check_data_paths(cfg: ClipDataConfig) -> None:
    """Fail early, in one line, when the dataset folder or the annotations are missing."""
    root = check_root_and_annotations(cfg)
    needed = {"auto": ("frames", "videos"), "frames": ("frames",), "video": ("videos",)}[cfg.source]
    if not any((root / name).is_dir() for name in needed):
        raise ConfigError(f"data.root: {cfg.root} has no {' or '.join(n + '/' for n in needed)}")
    for split in (cfg.train_split, cfg.val_split):
        if cfg.proposals and not (root / cfg.proposals.format(split=split)).exists():
            raise ConfigError(f"data.proposals: {root / cfg.proposals.format(split=split)} does not exist")


@dataclass
class Keyframe:
    """One (video, second) with its persons: normalized GT boxes (G, 4), multi-hot actions (G, 81: column 0 unused),
    multi-hot PaSta (G, 87), proposals (P, 5) normalized boxes + score, frame index, frame size."""

    video: str
    time_s: float
    frame_index: int
    width: int
    height: int
    boxes: np.ndarray
    actions: np.ndarray
    pasta: np.ndarray
    proposals: np.ndarray


def _pasta_index() -> dict[str, int]:
    from partwise import vocab

    v = vocab.load("pasta_ava87")
    return {name: i for i, name in enumerate(v.names)}


def group_keyframes(table: pa.Table, proposals: dict[str, np.ndarray] | None = None,
                    num_actions: int = 80) -> list[Keyframe]:
    """Group person records by (video, second), in first-appearance order; targets as multi-hot arrays."""
    video = np.asarray(table.column("video_id").to_pylist(), dtype=object)
    time_s = np.asarray(table.column("time_s").to_numpy(), dtype=np.float64)
    frame_index = np.asarray(table.column("frame_index").fill_null(-1).to_numpy(), dtype=np.int64)
    width = np.asarray(table.column("width").fill_null(0).to_numpy(), dtype=np.int64)
    height = np.asarray(table.column("height").fill_null(0).to_numpy(), dtype=np.int64)
    boxes = np.stack([np.asarray(table.column(k).to_numpy(), np.float64) for k in ("x1", "y1", "x2", "y2")], 1)
    actions = _multi_hot_ids(table.column("actions"), num_actions + 1)
    pasta = _multi_hot_names(table.column("pasta"), _pasta_index())
    keys = [f"{v},{int(round(t)):04d}" for v, t in zip(video, time_s)]
    order: dict[str, list[int]] = {}
    for row, key in enumerate(keys):
        order.setdefault(key, []).append(row)
    out = []
    for key, rows in order.items():
        r = rows[0]  # width/height may be unknown (0): clips are scaled by the decoded frame size
        fi = int(frame_index[r]) if frame_index[r] >= 0 else int(round((time_s[r] - 900) * 30))
        props = proposals.get(key, np.zeros((0, 5))) if proposals is not None else np.zeros((0, 5))
        out.append(Keyframe(str(video[r]), float(time_s[r]), fi, int(width[r]), int(height[r]), boxes[rows],
                            actions[rows], pasta[rows], np.asarray(props, np.float64)))
    return out


def _multi_hot_ids(column: pa.ChunkedArray, size: int) -> np.ndarray:
    column = column.combine_chunks()
    parents = np.asarray(pc.list_parent_indices(column), np.int64)
    values = np.asarray(pc.list_flatten(column).to_numpy(zero_copy_only=False), np.int64)
    out = np.zeros((len(column), size), np.float32)
    ok = (values >= 0) & (values < size)
    out[parents[ok], values[ok]] = 1
    return out


def _multi_hot_names(column: pa.ChunkedArray, index: dict[str, int]) -> np.ndarray:
    column = column.combine_chunks()
    parents = np.asarray(pc.list_parent_indices(column), np.int64)
    names = pc.list_flatten(column)
    position = np.asarray(pc.index_in(names, value_set=pa.array(list(index), pa.string())).fill_null(-1)
                          .to_numpy(zero_copy_only=False), np.int64)
    out = np.zeros((len(column), len(index)), np.float32)
    ok = position >= 0
    out[parents[ok], position[ok]] = 1
    return out


def read_proposal_file(cfg: ClipDataConfig, split: str) -> dict[str, np.ndarray] | None:
    if not cfg.proposals:
        return None
    from partwise.data.ava import read_proposals

    return read_proposals(Path(cfg.root) / cfg.proposals.format(split=split))


def prepare_clip(frames: np.ndarray, short_side: int, mean, std) -> tuple[torch.Tensor, np.ndarray]:
    """Inference input as the tasks evaluate: ``(T, H, W, 3)`` uint8 RGB frames -> ``((1, 3, T, h, w)`` normalized
    clip, ``scale (4,)``) with the short side ``short_side``; multiply x1, y1, x2, y2 pixel boxes of the original
    frames by ``scale`` (= ``(w/W, h/H, w/W, h/H)``; normalized boxes: by ``(w, h, w, h)``) to get the model's RoIs."""
    height, width = frames.shape[1:3]
    h, w = short_side_size(height, width, short_side)
    clip = resize_clip(frames, (h, w))
    clip = (clip - torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1)) / torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1)
    return clip.unsqueeze(0), np.array([w / width, h / height] * 2)


class KeyframeClipDataset(Dataset):
    """Keyframe clips for AVA-style training and evaluation.

    Training items (``train=True``; the engine passes encoded indices): ``{"clip": (3, T, H, W), "gt_boxes":
    (G, 4), "actions": (G, 81), "pasta": (G, 87), "proposals": (P, 4)}`` (pixels of the augmented clip; proposals
    with score >= ``proposal_thr``). Evaluation items (``train=False``, plain indices) use the test resize and add
    ``"index"``; :meth:`boxes_normalized` maps pixel boxes back.
    """

    def __init__(self, cfg: ClipDataConfig, keyframes: list[Keyframe], *, train: bool, seed: int = 0,
                 frames: FrameSource | None = None, proposal_thr: float = 0.0):
        self.cfg, self.keyframes, self.train, self.seed = cfg, keyframes, train, seed
        self.frames = frames or FrameSource(cfg.root, cfg.cache_frames, source=cfg.source)
        self.proposal_thr = proposal_thr
        self.mean = torch.tensor(cfg.mean, dtype=torch.float32).view(3, 1, 1, 1)
        self.std = torch.tensor(cfg.std, dtype=torch.float32).view(3, 1, 1, 1)

    def __len__(self) -> int:
        return len(self.keyframes)

    def clip_indices(self, kf: Keyframe, rng: np.random.Generator | None) -> np.ndarray:
        """0-based frame indices: ``clip_len`` frames ``frame_interval`` apart around the keyframe; with ``rng``
        each frame is jittered by an integer in ``[-I//2, (I+1)//2)`` (mmaction2's training jitter)."""
        cfg = self.cfg
        offsets = (np.arange(cfg.clip_len, dtype=np.int64) - cfg.clip_len // 2) * cfg.frame_interval
        if rng is not None:
            offsets = offsets + rng.integers((-cfg.frame_interval) // 2, (cfg.frame_interval + 1) // 2,
                                             size=cfg.clip_len)
        return np.clip(kf.frame_index + offsets, 0, self.frames.num_frames(kf.video) - 1)

    def __getitem__(self, encoded: int) -> dict:
        index, rng = sample_of(self.train, self.seed, encoded, len(self))
        kf = self.keyframes[index]
        frames = self.frames.read(kf.video, self.clip_indices(kf, rng))
        height, width = frames.shape[1:3]
        scale_xy = np.array([width, height, width, height], np.float64)
        gt = kf.boxes * scale_xy
        props = kf.proposals[kf.proposals[:, 4] >= self.proposal_thr, :4] * scale_xy if len(kf.proposals) else np.zeros((0, 4))
        actions, pasta = kf.actions, kf.pasta
        if rng is None:
            h, w = short_side_size(height, width, self.cfg.test_short_side)
            clip = resize_clip(frames, (h, w))
            factor = np.array([w / width, h / height] * 2)
            gt, props = gt * factor, props * factor
        else:
            short = draw_short_side(self.cfg, rng)
            h, w = short_side_size(height, width, short)
            clip = resize_clip(frames, (h, w))
            factor = np.array([w / width, h / height] * 2)
            gt, props = gt * factor, props * factor
            if self.cfg.crop > 0 and (h > self.cfg.crop or w > self.cfg.crop):
                size = self.cfg.crop
                y0 = int(rng.integers(0, max(h - size, 0) + 1))
                x0 = int(rng.integers(0, max(w - size, 0) + 1))
                clip = clip[:, :, y0:y0 + size, x0:x0 + size]
                h, w = clip.shape[2], clip.shape[3]
                shift = np.array([x0, y0, x0, y0], np.float64)
                limit = np.array([w, h, w, h], np.float64)
                gt = np.clip(gt - shift, 0, limit)
                props = np.clip(props - shift, 0, limit)
                keep = ((gt[:, 2] - gt[:, 0]) >= self.cfg.min_box_size) & ((gt[:, 3] - gt[:, 1]) >= self.cfg.min_box_size)
                gt, actions, pasta = gt[keep], actions[keep], pasta[keep]
                pkeep = ((props[:, 2] - props[:, 0]) >= self.cfg.min_box_size) & ((props[:, 3] - props[:, 1]) >= self.cfg.min_box_size)
                props = props[pkeep]
            if rng.random() < self.cfg.flip:
                clip = clip.flip(-1)
                gt = np.stack([w - gt[:, 2], gt[:, 1], w - gt[:, 0], gt[:, 3]], 1) if len(gt) else gt
                props = np.stack([w - props[:, 2], props[:, 1], w - props[:, 0], props[:, 3]], 1) if len(props) else props
        clip = (clip - self.mean) / self.std
        item = {"clip": clip, "gt_boxes": torch.from_numpy(np.asarray(gt, np.float32).reshape(-1, 4)),
                "actions": torch.from_numpy(np.ascontiguousarray(actions)),
                "pasta": torch.from_numpy(np.ascontiguousarray(pasta)),
                "proposals": torch.from_numpy(np.asarray(props, np.float32).reshape(-1, 4)),
                "seed": int(rng.integers(0, 2**62)) if rng is not None else 0}
        if rng is None:
            item["index"] = index
        return item

    def test_size(self, index: int) -> tuple[int, int]:
        kf = self.keyframes[index]
        return short_side_size(kf.height, kf.width, self.cfg.test_short_side)


def rois_from_boxes(boxes: list[torch.Tensor]) -> torch.Tensor:
    """Per-clip pixel boxes ``[(K_i, 4)]`` -> ``(sum K_i, 5)`` ``[batch_index, x1, y1, x2, y2]``."""
    parts = [torch.cat([torch.full((len(b), 1), float(i), device=b.device), b.float()], 1) for i, b in enumerate(boxes)]
    return torch.cat(parts) if parts else torch.zeros((0, 5))


def collate_clips(items: list[dict]) -> dict:
    """Stack clips, zero-padded at the right and bottom to the largest (zero = the mean colour after
    normalization; boxes keep their pixel coordinates), and keep per-clip box / target lists."""
    clips = [it["clip"] for it in items]
    h = max(c.shape[-2] for c in clips)
    w = max(c.shape[-1] for c in clips)
    clips = [F.pad(c, (0, w - c.shape[-1], 0, h - c.shape[-2])) if c.shape[-2:] != (h, w) else c for c in clips]
    out = {"clip": torch.stack(clips)}
    for key in items[0]:
        if key != "clip":
            out[key] = [it[key] for it in items]
    return out


__all__ = [
    "VIDEO_EXTENSIONS", "ClipDataConfig", "FrameSource", "ImageDataConfig", "ImageItem", "ImageRecordsDataset",
    "Keyframe", "KeyframeClipDataset", "box_iou", "check_data_paths", "check_image_paths", "check_sampling",
    "collate_clips", "collate_images", "draw_short_side", "group_images", "group_keyframes", "load_records",
    "pasta93_targets", "prepare_clip", "proposal_negative_boxes", "read_image", "read_proposal_file", "resize_clip",
    "rois_from_boxes", "sample_negative_boxes", "short_side_size", "verb_targets",
]
