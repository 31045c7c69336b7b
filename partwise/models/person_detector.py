"""A small single-class, anchor-free person detector (CenterNet-style) for ``partwise run`` and the synthetic demo.

Architecture: a ResNet-18-style trunk (:func:`partwise.models.resnet.resnet18` with a ``width`` multiplier) ->
top-down feature pyramid merged down to stride ``stride`` (4 by default) -> three heads on that map:

* ``heatmap`` (B, 1, h, w): logits of "a person's box centre falls in this cell";
* ``offset`` (B, 2, h, w): logits of the centre's sub-cell position, ``sigmoid`` -> [0, 1) of a cell (x, y);
* ``size`` (B, 2, h, w): ``log(box width / stride)``, ``log(box height / stride)``.

Decoding (:meth:`PersonDetector.decode`): sigmoid heatmap, 3x3 max-pool peak finder (a cell is a peak when it equals
the maximum of its neighbourhood), the best peaks above the score threshold, boxes from offset + size, then greedy NMS
(:func:`partwise.ops.nms`) to drop the rare duplicates of neighbouring peaks.

Boxes are ``(x1, y1, x2, y2)`` in pixels, width = ``x2 - x1`` (no ``+1``). Network input: ``(B, 3, H, W)`` float,
``(rgb_0_255 - mean) / std`` with the config's ``mean`` / ``std``; :func:`detect_people` does the resizing (short
side ``test_short_side``) and normalisation from uint8 frames, so a saved checkpoint is self-contained.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from partwise.models.resnet import resnet18
from partwise.ops.nms import nms

#: ImageNet RGB mean / std on the 0..255 scale (the usual ResNet input normalisation).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass
class PersonDetectorConfig:
    """Network shape and the test-time preprocessing (so a checkpoint needs nothing else to run)."""

    width: int = 16  # trunk stem channels (64 = a full ResNet-18)
    num_stages: int = 3  # ResNet stages used (3: strides 4, 8, 16; 4 adds stride 32)
    neck_channels: int = 32  # channels of the merged pyramid map
    head_channels: int = 32  # hidden channels of each head
    stride: int = 4  # output stride of the heads: 4, 8, ... (a stage's stride, at most that of the last stage)
    mean: tuple[float, ...] = IMAGENET_MEAN  # RGB, 0..255 scale
    std: tuple[float, ...] = IMAGENET_STD
    test_short_side: int = 128  # frames are resized to this short side (aspect kept) before the network
    heatmap_prior: float = 0.1  # initial heatmap probability (focal-loss initialisation of the heatmap bias)

    def __post_init__(self) -> None:
        self.mean, self.std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
        if self.width < 1 or self.neck_channels < 1 or self.head_channels < 1:
            raise ValueError("width, neck_channels and head_channels must be positive")
        if not 1 <= self.num_stages <= 4:
            raise ValueError(f"num_stages must be 1..4, got {self.num_stages}")
        strides = [4 * 2**i for i in range(self.num_stages)]
        if self.stride not in strides:
            raise ValueError(f"stride must be one of the stage strides {strides}, got {self.stride}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std must be three values (R, G, B), std positive")
        if self.test_short_side < 8:
            raise ValueError(f"test_short_side must be at least 8, got {self.test_short_side}")
        if not 0 < self.heatmap_prior < 1:
            raise ValueError(f"heatmap_prior must be in (0, 1), got {self.heatmap_prior}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "PersonDetectorConfig":
        return cls(**values)


def _head(in_channels: int, hidden: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(hidden, out_channels, 1))


class PersonDetector(nn.Module):
    """``forward(images (B, 3, H, W) normalized)`` -> ``{"heatmap": (B, 1, h, w) logits, "offset": (B, 2, h, w)
    logits, "size": (B, 2, h, w) log sizes in cells}`` with ``h = ceil(H / stride)``-ish (the trunk's rounding)."""

    def __init__(self, cfg: PersonDetectorConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or PersonDetectorConfig()
        self.backbone = resnet18(cfg.width, cfg.num_stages)
        self.level = int(math.log2(cfg.stride // 4))  # index of the stage whose stride the heads use
        used = self.backbone.out_channels[self.level:]
        self.lateral = nn.ModuleList(nn.Conv2d(c, cfg.neck_channels, 1) for c in used)
        self.smooth = nn.Sequential(nn.Conv2d(cfg.neck_channels, cfg.neck_channels, 3, padding=1, bias=False),
                                    nn.BatchNorm2d(cfg.neck_channels), nn.ReLU(inplace=True))
        self.heatmap = _head(cfg.neck_channels, cfg.head_channels, 1)
        self.offset = _head(cfg.neck_channels, cfg.head_channels, 2)
        self.size = _head(cfg.neck_channels, cfg.head_channels, 2)
        nn.init.constant_(self.heatmap[-1].bias, -math.log((1 - cfg.heatmap_prior) / cfg.heatmap_prior))
        self.register_buffer("mean", torch.tensor(cfg.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        features = self.backbone(images)[self.level:]
        x = self.lateral[-1](features[-1])
        for lateral, feature in zip(reversed(self.lateral[:-1]), reversed(features[:-1])):
            # FPN top-down path: upsample to the finer map's exact size (odd input sizes round differently)
            x = lateral(feature) + F.interpolate(x, size=feature.shape[-2:], mode="nearest")
        x = self.smooth(x)
        return {"heatmap": self.heatmap(x), "offset": self.offset(x), "size": self.size(x)}

    def normalize(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) RGB 0..255 -> the network's input."""
        return (images - self.mean) / self.std

    def decode(self, outputs: dict[str, Tensor], score_threshold: float = 0.3, nms_iou: float = 0.5,
               max_people: int = 10) -> list[Tensor]:
        """Network outputs -> per image a ``(K, 5)`` tensor ``x1, y1, x2, y2, score`` in pixels of the network
        input, score-descending, ``K <= max_people``."""
        return decode_heatmap(outputs, self.cfg.stride, score_threshold, nms_iou, max_people)


def decode_heatmap(outputs: dict[str, Tensor], stride: int, score_threshold: float = 0.3, nms_iou: float = 0.5,
                   max_people: int = 10) -> list[Tensor]:
    """Peaks of the sigmoid heatmap (equal to their 3x3 neighbourhood maximum, score >= ``score_threshold``), the
    best ``max_people`` of each image after greedy NMS at ``nms_iou``; box centre = ``(cell + sigmoid(offset)) *
    stride``, size = ``exp(size) * stride``. -> per image ``(K, 5)`` float32 ``x1, y1, x2, y2, score``."""
    heat = torch.sigmoid(outputs["heatmap"][:, 0].float())
    batch, height, width = heat.shape
    peaks = heat == F.max_pool2d(heat[:, None], 3, stride=1, padding=1)[:, 0]
    scores = torch.where(peaks, heat, torch.zeros_like(heat)).flatten(1)
    # more candidates than max_people so that NMS removals can be refilled by the next peaks
    k = min(scores.shape[1], max(4 * max_people, max_people + 16))
    top_scores, top_index = scores.topk(k, dim=1)
    offset = torch.sigmoid(outputs["offset"].float()).flatten(2)
    size = outputs["size"].float().clamp(max=math.log(4 * max(height, width))).exp().flatten(2)
    results = []
    for b in range(batch):
        keep = top_scores[b] >= score_threshold
        index, score = top_index[b][keep], top_scores[b][keep]
        cx = ((index % width).float() + offset[b, 0, index]) * stride
        cy = ((index // width).float() + offset[b, 1, index]) * stride
        w, h = size[b, 0, index] * stride, size[b, 1, index] * stride
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        kept = nms(boxes, score, nms_iou)[:max_people]
        results.append(torch.cat([boxes[kept], score[kept, None]], 1))
    return results


def resize_frames(frames: np.ndarray, short_side: int) -> tuple[Tensor, float, float]:
    """``(B, H, W, 3)`` uint8 -> ``((B, 3, h, w)`` float 0..255 with short side ``short_side`` (aspect kept, bilinear
    with antialiasing as the training data), ``sx = w / W``, ``sy = h / H``)."""
    height, width = frames.shape[1:3]
    scale = short_side / min(height, width)
    h, w = int(height * scale + 0.5), int(width * scale + 0.5)
    images = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if (h, w) != (height, width):
        images = F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return images, w / width, h / height


def detect_people(model: PersonDetector, frames: np.ndarray, score_threshold: float = 0.3, nms_iou: float = 0.5,
                  max_people: int = 10, batch_size: int = 16) -> list[np.ndarray]:
    """People in RGB frames.

    ``frames``: ``(B, H, W, 3)`` uint8 RGB (one size for the batch). Returns one float32 array ``(K, 5)`` per frame:
    ``x1, y1, x2, y2`` in pixels of the input frame (clipped to it) and the score in [0, 1], score-descending.
    Frames are resized to the config's ``test_short_side`` and normalized inside; runs under ``inference_mode`` on
    the model's device, ``batch_size`` frames at a time (the model should be in eval mode: ``load_model`` gives it).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected (B, H, W, 3) RGB, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames: expected uint8, got {frames.dtype}")
    height, width = frames.shape[1:3]
    device = next(model.parameters()).device
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(frames), batch_size):
            images, sx, sy = resize_frames(frames[start:start + batch_size], model.cfg.test_short_side)
            detections = model.decode(model(model.normalize(images.to(device))), score_threshold, nms_iou, max_people)
            scale = torch.tensor([1 / sx, 1 / sy, 1 / sx, 1 / sy, 1.0])
            limit = torch.tensor([width, height, width, height, 1.0])
            for det in detections:
                det = (det.cpu() * scale).clamp(min=0)
                det = torch.minimum(det, limit)
                out.append(det.numpy().astype(np.float32))
    return out


#: The detector trained on synthetic stick-figure data (``configs/synth_person_detector.yaml`` on ``partwise synth
#: --seed 101 --videos 24``), shipped with the package for demos and tests; load it with
#: :func:`partwise.models.checkpoint.load_model`.
SYNTH_CHECKPOINT = Path(__file__).parent / "data" / "synth_person_detector.pt"
