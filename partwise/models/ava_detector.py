"""AVA spatio-temporal action detector (mmaction2 1.x ``FastRCNN`` + ``AVARoIHead``), in plain torch.

backbone (SlowOnly / SlowFast) -> RoI extractor (``SingleRoIExtractor3D``) -> ``BBoxHeadAVA``; the person boxes
(proposals) are inputs; there is no box regression. Facts from ``ava_mmaction2.md`` §3:

* extractor: a SlowFast pair is nearest-resized in time to the larger T and concatenated on channels; features are
  pooled over time (``temporal_pool``: avg, or max for the "+temporal max pooling" trick) *before* RoIAlign
  (8x8, scale 1/16, adaptive sampling, aligned); "+context" concatenates ``AdaptiveAvgPool2d(8)`` of the whole
  frame feature after the RoI feature (channels double);
* head: dropout(0.5) -> temporal avg -> spatial max -> flatten -> ``fc_cls`` (Linear to 81, index 0 = background,
  unused) or, with ``mlp_head``, Linear(C, C) -> ReLU -> Linear(C, 81); xavier-normal init, zero bias;
* loss: drop column 0, keep only RoIs with at least one positive label, element-wise BCE with logits, focal factor
  ``alpha * (1 - exp(-bce)) ** gamma``, mean over (#positive RoIs x 80);
* targets: GT boxes are added as proposals, a proposal takes the multi-hot labels of a GT with IoU >= 0.9, up to
  32 RoIs per clip.

Module names: ``backbone.*`` as mmaction2; the head is ``head.fc_cls`` (mmaction2: ``roi_head.bbox_head.fc_cls``,
mapped by :mod:`partwise.models.checkpoint`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from partwise.ops.boxes import box_iou
from partwise.ops.roi_align import roi_align
from partwise.models.resnet3d import (ResNet3d, ResNet3dConfig, SlowFast, SlowFastConfig, backbone_config_from_dict,
                                      pool_time)

#: ActionDataPreprocessor normalization (RGB, 0..255 scale).
AVA_MEAN = (123.675, 116.28, 103.53)
AVA_STD = (58.395, 57.12, 57.375)


@dataclass
class AVADetectorConfig:
    """The whole detector. ``backbone_type``: ``"slowonly"`` (``backbone`` is a ResNet3dConfig) or ``"slowfast"``.

    ``clip_len`` x ``frame_interval`` describe the input sampling (4x16, 8x8, 16x4; SlowFast: 32x2) for the data
    pipeline; they do not change the network. The trick switches: ``context``, ``temporal_pool="max"``,
    ``mlp_head``, ``focal_gamma`` (and ``focal_alpha``).
    """

    backbone_type: str = "slowonly"
    backbone: ResNet3dConfig | SlowFastConfig = field(default_factory=ResNet3dConfig)
    clip_len: int = 8
    frame_interval: int = 8
    num_classes: int = 81
    roi_output_size: int = 8
    featmap_stride: int = 16
    sampling_ratio: int = 0
    aligned: bool = True
    temporal_pool: str = "avg"
    context: bool = False
    head_temporal_pool: str = "avg"
    head_spatial_pool: str = "max"
    dropout: float = 0.5
    dropout_before_pool: bool = True
    mlp_head: bool = False
    focal_alpha: float = 1.0
    focal_gamma: float = 0.0
    pos_iou_thr: float = 0.9
    rois_per_clip: int = 32

    def __post_init__(self):
        # nn.Dropout refuses it only when the net is built; here it is a config error naming the key
        if not 0 <= self.dropout <= 1:
            raise ValueError(f"dropout: expected a probability in [0, 1], got {self.dropout!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AVADetectorConfig":
        data = dict(data)
        data["backbone"] = backbone_config_from_dict(data.get("backbone_type", "slowonly"), data.get("backbone", {}))
        return cls(**data)

    def feature_channels(self) -> int:
        """Channels of the RoI feature fed to the head (context doubles them)."""
        if self.backbone_type == "slowfast":
            slow = self.backbone.slow_config().out_channels
            fast = self.backbone.fast_config().out_channels
            channels = slow + fast
        else:
            channels = self.backbone.out_channels
        return channels * (2 if self.context else 1)


def build_backbone(cfg: AVADetectorConfig) -> nn.Module:
    if cfg.backbone_type == "slowonly":
        return ResNet3d(cfg.backbone)
    if cfg.backbone_type == "slowfast":
        return SlowFast(cfg.backbone)
    raise ValueError(f"backbone_type must be 'slowonly' or 'slowfast', got {cfg.backbone_type!r}")


def pooled_frame(features: Tensor | tuple[Tensor, ...], temporal_pool_mode: str = "avg") -> Tensor:
    """The extractor's input: ``(N, C, T, H, W)`` features (or a SlowFast tuple, nearest-resized in time to the
    largest T and concatenated on channels) pooled over time -> ``(N, C, H, W)``."""
    feats = list(features) if isinstance(features, (tuple, list)) else [features]
    if len(feats) > 1:
        max_t = max(f.shape[2] for f in feats)
        feats = [F.interpolate(f, size=(max_t,) + tuple(feats[0].shape[3:])) for f in feats]
    return torch.cat([pool_time(f, temporal_pool_mode) for f in feats], dim=1)


def extract_roi_features(features: Tensor | tuple[Tensor, ...], rois: Tensor, output_size: int = 8,
                         spatial_scale: float = 1 / 16, sampling_ratio: int = 0, aligned: bool = True,
                         temporal_pool_mode: str = "avg", context: bool = False) -> Tensor:
    """mmaction2 ``SingleRoIExtractor3D`` with temporal pooling: -> ``(K, C, 1, out, out)``.

    ``features``: ``(N, C, T, H, W)`` or a tuple of them (SlowFast: each is nearest-resized in time to the largest
    T, then concatenated on channels). ``rois``: ``(K, 5)`` ``[batch_index, x1, y1, x2, y2]`` in input pixels.
    With ``context`` the frame-level ``adaptive_avg_pool2d(out)`` of the RoI's image is appended (2C channels).
    """
    frame = pooled_frame(features, temporal_pool_mode)
    roi_feat = roi_align(frame, rois, output_size, spatial_scale, sampling_ratio, aligned)
    if context:
        global_feat = F.adaptive_avg_pool2d(frame, output_size)[rois[:, 0].long()]
        roi_feat = torch.cat([roi_feat, global_feat], dim=1)
    return roi_feat.unsqueeze(2)


def _spatial_pool(x: Tensor, mode: str) -> Tensor:
    """``(K, C, h, w)`` -> ``(K, C)`` by mean (``"avg"``) or max."""
    return x.mean(dim=(2, 3)) if mode == "avg" else x.amax(dim=(2, 3))


class BBoxHeadAVA(nn.Module):
    """``(K, C, T, h, w)`` RoI features -> ``(K, num_classes)`` logits (column 0 = background, unused)."""

    def __init__(self, in_channels: int, num_classes: int = 81, dropout: float = 0.5,
                 dropout_before_pool: bool = True, temporal_pool: str = "avg", spatial_pool: str = "max",
                 mlp_head: bool = False):
        super().__init__()
        if temporal_pool not in ("avg", "max") or spatial_pool not in ("avg", "max"):
            raise ValueError("head pooling modes must be 'avg' or 'max'")
        self.temporal_pool_mode = temporal_pool
        self.spatial_pool_mode = spatial_pool
        self.dropout_before_pool = dropout_before_pool
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        if mlp_head:
            self.fc_cls = nn.Sequential(nn.Linear(in_channels, in_channels), nn.ReLU(),
                                        nn.Linear(in_channels, num_classes))
        else:
            self.fc_cls = nn.Linear(in_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.dropout is not None and self.dropout_before_pool:
            x = self.dropout(x)
        x = x.mean(dim=2) if self.temporal_pool_mode == "avg" else x.amax(dim=2)
        x = x.mean(dim=(2, 3)) if self.spatial_pool_mode == "avg" else x.amax(dim=(2, 3))
        if self.dropout is not None and not self.dropout_before_pool:
            x = self.dropout(x)
        return self.fc_cls(x)


def action_loss(logits: Tensor, labels: Tensor, focal_alpha: float = 1.0, focal_gamma: float = 0.0) -> Tensor:
    """mmaction2 ``BBoxHeadAVA`` multi-label loss (``loss_action_cls``).

    ``logits``, ``labels``: ``(K, 81)`` (column 0 = background, dropped); ``labels`` multi-hot 0/1. Only RoIs with
    at least one positive label count; the result is the mean of ``alpha * (1 - p_t) ** gamma * bce`` over
    (#positive RoIs x 80). With no positive RoI the loss is 0 (connected to the graph) instead of mmaction2's NaN.
    """
    logits, labels = logits[:, 1:], labels[:, 1:].to(logits.dtype)
    positive = labels.sum(dim=1) > 0
    if not bool(positive.any()):
        return logits.sum() * 0.0
    logits, labels = logits[positive], labels[positive]
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    focal = focal_alpha * (1 - torch.exp(-bce)) ** focal_gamma * bce
    return focal.mean()


def assign_targets(proposals: Tensor, gt_boxes: Tensor, gt_labels: Tensor, pos_iou_thr: float = 0.9,
                   num_samples: int = 32, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Training RoIs and their multi-hot labels for one clip (mmaction2 ``MaxIoUAssignerAVA`` + ``RandomSampler``).

    ``proposals``: ``(P, 4)``, ``gt_boxes``: ``(G, 4)`` xyxy pixels; ``gt_labels``: ``(G, num_classes)`` multi-hot.
    GT boxes are prepended to the proposals; a candidate is positive when its best IoU with a GT is
    ``>= pos_iou_thr`` (and, for each GT whose best candidate IoU reaches the threshold, every candidate with that
    IoU is assigned to it), otherwise negative with all-zero labels. Up to ``num_samples`` positives are drawn at
    random, then negatives fill the remaining slots. Returns ``(boxes (S, 4), labels (S, num_classes))``.
    """
    candidates = torch.cat([gt_boxes, proposals.to(gt_boxes.dtype)])
    num_classes = gt_labels.shape[1]
    if gt_boxes.shape[0] == 0:
        assigned = torch.zeros(candidates.shape[0], dtype=torch.int64)
    else:
        overlaps = box_iou(gt_boxes, candidates)  # (G, P')
        max_overlap, argmax = overlaps.max(dim=0)
        assigned = torch.where(max_overlap >= pos_iou_thr, argmax + 1, torch.zeros_like(argmax))
        gt_best = overlaps.max(dim=1).values
        for g in range(gt_boxes.shape[0]):
            if gt_best[g] >= pos_iou_thr:
                assigned[overlaps[g] == gt_best[g]] = g + 1
    pos = torch.nonzero(assigned > 0).flatten()
    neg = torch.nonzero(assigned == 0).flatten()
    pos = pos[torch.randperm(pos.numel(), generator=generator)[:num_samples]]
    neg = neg[torch.randperm(neg.numel(), generator=generator)[: max(num_samples - pos.numel(), 0)]]
    keep = torch.cat([pos, neg])
    labels = torch.zeros((keep.numel(), num_classes), dtype=gt_labels.dtype)
    labels[: pos.numel()] = gt_labels[assigned[pos] - 1]
    return candidates[keep], labels


class AVADetector(nn.Module):
    """Clip + person boxes -> per-box action logits.

    ``forward(clips, rois)``: ``clips`` ``(N, 3, T, H, W)`` normalized (see :meth:`normalize`); ``rois`` ``(K, 5)``
    ``[batch_index, x1, y1, x2, y2]`` in pixels of the clip -> logits ``(K, num_classes)``.
    """

    def __init__(self, cfg: AVADetectorConfig | None = None):
        super().__init__()
        cfg = cfg or AVADetectorConfig()
        self.cfg = cfg
        self.backbone = build_backbone(cfg)
        self.head = BBoxHeadAVA(cfg.feature_channels(), cfg.num_classes, cfg.dropout, cfg.dropout_before_pool,
                                cfg.head_temporal_pool, cfg.head_spatial_pool, cfg.mlp_head)
        self.register_buffer("mean", torch.tensor(AVA_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(AVA_STD).view(1, 3, 1, 1, 1), persistent=False)
        #: set by :meth:`fuse_roi_head`: the eval-mode forward takes :meth:`fused_roi_logits`
        self.roi_head_fused = False

    def normalize(self, frames: Tensor) -> Tensor:
        """RGB frames ``(N, 3, T, H, W)`` on the 0..255 scale -> normalized float clips."""
        return (frames.to(self.mean.dtype) - self.mean) / self.std

    def roi_features(self, features: Tensor | tuple[Tensor, Tensor], rois: Tensor) -> Tensor:
        cfg = self.cfg
        return extract_roi_features(features, rois, cfg.roi_output_size, 1.0 / cfg.featmap_stride,
                                    cfg.sampling_ratio, cfg.aligned, cfg.temporal_pool, cfg.context)

    def forward(self, clips: Tensor, rois: Tensor) -> Tensor:
        features = self.backbone(clips)
        if self.roi_head_fused and not self.training:
            return self.fused_roi_logits(features, rois)
        return self.head(self.roi_features(features, rois))

    def fuse_roi_head(self, enabled: bool = True) -> None:
        """Make the eval-mode forward use :meth:`fused_roi_logits` (training mode keeps the two-stage path)."""
        self.roi_head_fused = enabled

    def fused_roi_logits(self, features: Tensor | tuple[Tensor, Tensor], rois: Tensor) -> Tensor:
        """Eval-mode ``head(roi_features(features, rois))`` as one stage: ``(K, num_classes)`` logits.

        In eval mode the head's dropout is the identity and its temporal pool sees the single time step the
        extractor leaves, so RoIAlign goes straight into the spatial pool and ``fc_cls``; with context, the
        frame-level ``adaptive_avg_pool2d`` is pooled once per image instead of once per RoI. Equal to the
        two-stage path up to float rounding.
        """
        cfg, head = self.cfg, self.head
        frame = pooled_frame(features, cfg.temporal_pool)
        crops = roi_align(frame, rois, cfg.roi_output_size, 1.0 / cfg.featmap_stride, cfg.sampling_ratio,
                          cfg.aligned)  # (K, C, out, out)
        mode = head.spatial_pool_mode
        pooled = _spatial_pool(crops, mode)
        if cfg.context:
            frame_feat = _spatial_pool(F.adaptive_avg_pool2d(frame, cfg.roi_output_size), mode)  # (N, C)
            pooled = torch.cat([pooled, frame_feat[rois[:, 0].long()]], dim=1)
        return head.fc_cls(pooled)

    def training_targets(self, proposals: Tensor, gt_boxes: Tensor, gt_labels: Tensor,
                         generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """:func:`assign_targets` with this config's IoU threshold and RoIs per clip."""
        return assign_targets(proposals, gt_boxes, gt_labels, self.cfg.pos_iou_thr, self.cfg.rois_per_clip,
                              generator)

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        return action_loss(logits, labels, self.cfg.focal_alpha, self.cfg.focal_gamma)

    @torch.no_grad()
    def predict(self, clips: Tensor, rois: Tensor) -> Tensor:
        """Sigmoid scores ``(K, num_classes)`` in eval mode (column 0 is meaningless)."""
        was_training = self.training
        self.eval()
        try:
            return torch.sigmoid(self(clips, rois))
        finally:
            self.train(was_training)
