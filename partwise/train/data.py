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
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from partwise.errors import ConfigError
from partwise.train.engine import sample_rng

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")


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


def check_sampling(cfg) -> None:
    """One-line errors for values no run could use (before any work)."""
    if len(cfg.scale_range) != 2 or not 0 < cfg.scale_range[0] <= cfg.scale_range[1]:
        raise ConfigError(f"data.scale_range: expected [low, high] with 0 < low <= high, got {cfg.scale_range}")
    if cfg.test_short_side <= 0:
        raise ConfigError(f"data.test_short_side: expected a positive size, got {cfg.test_short_side}")
    if cfg.source not in ("auto", "frames", "video"):
        raise ConfigError(f"data.source: expected auto, frames or video, got {cfg.source!r}")
    if not 0 <= cfg.flip <= 1:
        raise ConfigError(f"data.flip: expected a probability in [0, 1], got {cfg.flip}")
    for key in ("clip_len", "frame_interval"):
        if getattr(cfg, key, 1) < 1:
            raise ConfigError(f"data.{key}: expected at least 1, got {getattr(cfg, key)}")
    if len(getattr(cfg, "mean", [0, 0, 0])) != 3 or len(getattr(cfg, "std", [1, 1, 1])) != 3:
        raise ConfigError("data.mean / data.std: expected three values (R, G, B)")


def _check_root_and_annotations(cfg) -> Path:
    """The sampling options, ``data.root`` and ``data.annotations`` (one-line errors); -> the root folder."""
    check_sampling(cfg)
    root = Path(cfg.root)
    if not root.is_dir():
        raise ConfigError(f"data.root: {cfg.root} is not a folder")
    if not (root / cfg.annotations).exists():
        raise ConfigError(f"data.annotations: {root / cfg.annotations} does not exist")
    return root


def check_data_paths(cfg: ClipDataConfig) -> None:
    """Fail early, in one line, when the dataset folder or the annotations are missing."""
    root = _check_root_and_annotations(cfg)
    needed = {"auto": ("frames", "videos"), "frames": ("frames",), "video": ("videos",)}[cfg.source]
    if not any((root / name).is_dir() for name in needed):
        raise ConfigError(f"data.root: {cfg.root} has no {' or '.join(n + '/' for n in needed)}")
    for split in (cfg.train_split, cfg.val_split):
        if cfg.proposals and not (root / cfg.proposals.format(split=split)).exists():
            raise ConfigError(f"data.proposals: {root / cfg.proposals.format(split=split)} does not exist")


def load_records(cfg: ClipDataConfig, split: str) -> pa.Table:
    """Person records (PERSON_SCHEMA) of ``split``, from a parquet file or a format reader."""
    path = Path(cfg.root) / cfg.annotations
    if cfg.format == "records":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        table = table.filter(pc.equal(table.column("split"), split))
    else:
        from partwise.data.formats import FORMATS
        from partwise.data.store import read_source

        if cfg.format not in FORMATS:
            raise ConfigError(f"data.format: unknown format {cfg.format!r} (records, {', '.join(FORMATS)})")
        table = read_source(cfg.format, path, split=split)
    if table.num_rows == 0:
        raise ConfigError(f"data: no records of split {split!r} in {path}")
    return table


class FrameSource:
    """RGB frames ``(H, W, 3)`` uint8 of a video by 0-based index, from JPEG frames or a video file, with a cache."""

    def __init__(self, root: str | os.PathLike, cache: bool = True, max_cached: int = 20000, source: str = "auto"):
        if source not in ("auto", "frames", "video"):
            raise ConfigError(f"data.source: expected auto, frames or video, got {source!r}")
        self.root, self.source = Path(root), source
        self.cache: OrderedDict | None = OrderedDict() if cache else None
        self.max_cached = max_cached
        self._counts: dict[str, int] = {}

    def _frames_dir(self, video: str) -> Path | None:
        """The video's JPEG folder, or None when videos are to be decoded instead."""
        folder = self.root / "frames" / video
        return folder if self.source != "video" and folder.is_dir() else None

    def _video_file(self, video: str) -> Path | None:
        for ext in VIDEO_EXTENSIONS:
            path = self.root / "videos" / f"{video}{ext}"
            if path.exists():
                return path
        return None

    def num_frames(self, video: str) -> int:
        if video not in self._counts:
            folder = self._frames_dir(video)
            if folder is not None:
                self._counts[video] = sum(1 for name in os.listdir(folder) if name.startswith("img_"))
            else:
                path = self._video_file(video)
                if path is None:
                    raise ConfigError(f"data.root: no frames/{video}/ and no videos/{video}.* in {self.root}")
                from partwise.data.video import probe

                self._counts[video] = int(probe(path).num_frames)
        return self._counts[video]

    def read(self, video: str, indices: np.ndarray) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 frames at 0-based ``indices``."""
        indices = [int(i) for i in indices]
        missing = sorted({i for i in indices if self.cache is None or (video, i) not in self.cache})
        got: dict[int, np.ndarray] = {}
        if missing:
            folder = self._frames_dir(video)
            if folder is not None:
                from PIL import Image

                for i in missing:
                    with Image.open(folder / f"img_{i + 1:05d}.jpg") as im:
                        got[i] = np.asarray(im.convert("RGB"))
            else:
                from partwise.data.video import read_frames

                path = self._video_file(video)
                if path is None:
                    raise ConfigError(f"data.root: no frames/{video}/ and no videos/{video}.* in {self.root}")
                for i, frame in zip(missing, read_frames(path, missing)):
                    got[i] = frame
            if self.cache is not None:
                for i, frame in got.items():
                    self.cache[(video, i)] = frame
                while len(self.cache) > self.max_cached:
                    self.cache.popitem(last=False)
        frames = [got[i] if i in got else self.cache[(video, i)] for i in indices]
        return np.stack(frames)


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


def resize_clip(frames: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 -> ``(3, T, h, w)`` float32 (0..255) resized bilinearly to ``size = (h, w)``."""
    # .float() copies anyway; going through a writable view keeps torch from warning about read-only caches
    frames = np.ascontiguousarray(frames)
    if not frames.flags.writeable:
        frames = frames.copy()
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    if clip.shape[-2:] != size:
        clip = F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=True)
    return clip.permute(1, 0, 2, 3).contiguous()


def prepare_clip(frames: np.ndarray, short_side: int, mean, std) -> tuple[torch.Tensor, np.ndarray]:
    """Inference input as the tasks evaluate: ``(T, H, W, 3)`` uint8 RGB frames -> ``((1, 3, T, h, w)`` normalized
    clip, ``scale (4,)``) with the short side ``short_side``; multiply x1, y1, x2, y2 pixel boxes of the original
    frames by ``scale`` (= ``(w/W, h/H, w/W, h/H)``; normalized boxes: by ``(w, h, w, h)``) to get the model's RoIs."""
    height, width = frames.shape[1:3]
    h, w = short_side_size(height, width, short_side)
    clip = resize_clip(frames, (h, w))
    clip = (clip - torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1)) / torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1)
    return clip.unsqueeze(0), np.array([w / width, h / height] * 2)


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """(h, w) with the short side ``short`` and the aspect ratio kept (rounded like mmcv ``rescale_size``)."""
    scale = short / min(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


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
        if self.train:
            index, rng = sample_rng(self.seed, encoded, len(self))
        else:
            index, rng = int(encoded), None
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
            short = int(rng.integers(self.cfg.scale_range[0], self.cfg.scale_range[1] + 1))
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


# ---------------------------------------------------------------------------------------------------------------
# image tasks: whole images or keyframes with their persons, part boxes and objects


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
    root = _check_root_and_annotations(cfg)
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
        path = Path(self.cfg.root) / self.cfg.images / item.video
        if path.is_file():
            from PIL import Image

            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        return self.frames.read(item.video, np.array([item.frame_index]))[0]

    def __getitem__(self, encoded: int) -> dict:
        if self.train:
            index, rng = sample_rng(self.seed, encoded, len(self))
        else:
            index, rng = int(encoded), None
        item = self.items[index]
        frame = self._image(item)
        height, width = frame.shape[:2]
        short = int(rng.integers(self.cfg.scale_range[0], self.cfg.scale_range[1] + 1)) if rng is not None \
            else self.cfg.test_short_side
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
