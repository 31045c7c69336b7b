"""TIN, the Transferable Interactiveness Network (``tin_hoi.md`` §1), as released: an iCAN-style HOI classifier C
plus an interactiveness discriminator P, with Non-Interaction Suppression (NIS) and Low-grade Instance Suppression
(LIS); and TIN++'s part-level interactiveness (§1.10).

Shapes and conventions:

* images (B, 3, H, W): BGR minus the pixel means, original resolution (:func:`partwise.models.activity2vec.preprocess`);
* human_rois, object_rois (P, 5): ``[batch_index, x1, y1, x2, y2]`` in image pixels, one row per human-object pair;
* patterns (P, 3, 64, 64): :func:`interaction_pattern` -- channels 0/1 human/object masks (spatial stream, C and P),
  channel 2 the pose map (P only);
* RoI features are TF ``crop_and_resize`` crops (7x7, bilinear, samples on the box edges inclusive), not RoIAlign.

ResNet-50: the stride of a stage's first bottleneck sits on its 1x1 ``conv1`` (``stride_in_1x1``, default True), as in
HAKE-Action-Torch's ``resnet_v1`` that TIN-Torch builds on and every PyTorch TIN checkpoint carries; False builds
torchvision's layout (stride on the 3x3). TIN-Torch's checkpoints (``{"model_state_dict": ...}`` of
``lib/networks/TIN_HICO.py``'s ``TIN_ResNet50``) load by name with :func:`load_tin_torch_checkpoint`, which also
builds TIN-Torch's classifier stacks (``fc_batchnorm``: Linear without bias + BatchNorm1d) and its (H, W, C) flatten
order of the spatial and pose streams (``flatten_hwc``); checked against TIN-Torch's own network with seeded random
weights (``tests/fixtures/hake_originals``: every output within 2e-5). Both originals put a ReLU after the attention's
1x1 convolutions head_phi and head_g (``attention_relu``, default True). TIN-Torch pins torch 1.2, whose
``affine_grid`` / ``grid_sample`` behave as ``align_corners=True``: the TF ``crop_and_resize`` that
:func:`crop_and_resize` implements; the same code on torch >= 1.3 samples elsewhere (``align_corners=False``), and
its scores move by up to 0.6.

Outputs: ``hoi_scores`` S_C = sigmoid(s_sp) * (sigmoid(s_H) + sigmoid(s_O)) (P, 600) in [0, 2]; ``binary`` the two
independent sigmoids (P_interactive, P_non-interactive); logits of every branch for the loss
(:func:`weighted_logit_bce`: iCAN/TIN multiply the LOGITS by class weights during training, not the loss).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from partwise.models.activity2vec import sample_grids
from partwise.models.pose_parts import SKELETON_GRAY, SKELETON_LIMBS, _draw_segment
from partwise.models.resnet import resnet50

NUM_HOI = 600
PATTERN_SIZE = 64


# --- the 64x64 interaction pattern ------------------------------------------------------------------------------

def pattern_boxes(human_box, object_box, size: int = PATTERN_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Human and object boxes mapped into the (size x size) pattern frame, rounded (np.round).

    The union box U is moved to the origin and scaled by size / max(H, W) (inclusive +1 extents); the long side
    spans 0..size-1 exactly (the box reaching the far edge is snapped to size-1) and the short side is centred.
    """
    h = np.asarray(human_box, dtype=np.float64).copy()
    o = np.asarray(object_box, dtype=np.float64).copy()
    ux1, uy1 = min(h[0], o[0]), min(h[1], o[1])
    ux2, uy2 = max(h[2], o[2]), max(h[3], o[3])
    height, width = uy2 - uy1 + 1, ux2 - ux1 + 1
    for box in (h, o):
        box -= (ux1, uy1, ux1, uy1)
    if height > width:
        long_extent, short_extent, long_axis = height, width, 1
    else:
        long_extent, short_extent, long_axis = width, height, 0
    short_axis = 1 - long_axis
    for box in (h, o):
        box[long_axis] = size * box[long_axis] / long_extent
        box[short_axis] = size * box[short_axis] / long_extent
        box[2 + short_axis] = (size * short_extent / long_extent - 1) - size * (short_extent - 1 - box[2 + short_axis]) / long_extent
        box[2 + long_axis] = (size - 1) - size * (long_extent - 1 - box[2 + long_axis]) / long_extent
    short_far = max(h[2 + short_axis], o[2 + short_axis])
    if h[2 + long_axis] > o[2 + long_axis]:
        h[2 + long_axis] = size - 1
    else:
        o[2 + long_axis] = size - 1
    shift = size / 2 - (short_far + 1) / 2
    for box in (h, o):
        box[short_axis] += shift
        box[2 + short_axis] += shift
    return np.round(h), np.round(o)


def interaction_pattern(human_box, object_box, keypoints: np.ndarray | None = None,
                        size: int = PATTERN_SIZE) -> np.ndarray:
    """(3, size, size) float32 pattern: channel 0 = 1 inside the human box, 1 = inside the object box (inclusive
    integer ranges), 2 = the pose map.

    The pose map draws the 17 skeleton limbs (COCO keypoints + neck = mean of the shoulders) with gray levels
    0.15..0.95, keypoints placed relative to the human box: ``x' = min(size-1, round((x - hx1) / (hx2 - hx1 + 1) *
    (HX2 - HX1 + 1) + HX1))`` with (HX1..HY2) the human box in the pattern. Keypoint scores are ignored (as in TIN).
    Without keypoints the human box region of channel 2 is 0.05. Lines are 1-pixel DDA lines (OpenCV's ``line`` may
    differ by a pixel at some slopes).
    """
    h, o = pattern_boxes(human_box, object_box, size)
    pattern = np.zeros((3, size, size), dtype=np.float32)
    for channel, box in ((0, h), (1, o)):
        x1, y1, x2, y2 = (int(v) for v in box)
        pattern[channel, max(y1, 0):y2 + 1, max(x1, 0):x2 + 1] = 1
    hx1, hy1, hx2, hy2 = (int(v) for v in h)
    if keypoints is None or len(np.asarray(keypoints).reshape(-1)) != 51:
        pattern[2, max(hy1, 0):hy2 + 1, max(hx1, 0):hx2 + 1] = 0.05
        return pattern
    k = np.asarray(keypoints, dtype=np.float64).reshape(17, 3)
    points = np.concatenate([k[:, :2], ((k[5, :2] + k[6, :2]) / 2)[None]], axis=0)
    bx1, by1, bx2, by2 = np.asarray(human_box, dtype=np.float64)
    rx = (points[:, 0] - bx1) / (bx2 - bx1 + 1)
    ry = (points[:, 1] - by1) / (by2 - by1 + 1)
    px = np.minimum(size - 1, np.round(rx * (hx2 - hx1 + 1) + hx1)).astype(int)
    py = np.minimum(size - 1, np.round(ry * (hy2 - hy1 + 1) + hy1)).astype(int)
    canvas = pattern[2]
    for (a, b), gray in zip(SKELETON_LIMBS, SKELETON_GRAY):
        _draw_segment(canvas, np.array([px[a], py[a]], float), np.array([px[b], py[b]], float), float(gray))
    return pattern


# --- NIS and LIS ------------------------------------------------------------------------------------------------

#: LIS constants of the released HICO-DET pipeline: L(x) = T / (1 + e^(k - w x)).
LIS_HICO = (6.0, 10.0, 1.4)
#: V-COCO: L(x) = 6 / (1 + e^(6 - 7 x)).
LIS_VCOCO = (6.0, 6.0, 7.0)
NIS_DEFAULT = (0.1, 0.9)  # (tau_interactive, tau_non_interactive)
#: per-object NIS thresholds (tau_int, tau_no) keyed by COCO-order object index 1..80.
NIS_OBJECT_OVERRIDES = {63: (0.15, 0.95), 43: (0.1, 0.85), 57: (0.2, 0.85), 48: (0.2, 0.85), 41: (0.15, 0.85),
                        2: (0.2, 0.85), 4: (0.15, 0.85), 31: (0.1, 0.85), 19: (0.2, 0.85), 1: (0.05, 0.85),
                        11: (0.15, 0.85)}


def lis(scores, constants: tuple[float, float, float] = LIS_HICO):
    """Low-grade Instance Suppression weight of detection scores (numpy or torch)."""
    t, k, w = constants
    e = 2.718281828459  # the released code's constant, not math.e
    if isinstance(scores, torch.Tensor):
        return t / (1 + torch.pow(torch.as_tensor(e, dtype=scores.dtype), k - w * scores))
    return t / (1 + np.power(e, k - w * np.asarray(scores, dtype=np.float64)))


def nis_keep(p_interactive, p_non_interactive, object_index=None):
    """True where a pair survives NIS: it is dropped when P_non > tau_no and P_int < tau_int (per-object thresholds
    for the overridden COCO objects). Never apply it to the no_interaction HOI classes (the caller's job)."""
    p_int = np.asarray(p_interactive, dtype=np.float64)
    p_no = np.asarray(p_non_interactive, dtype=np.float64)
    tau_int = np.full(p_int.shape, NIS_DEFAULT[0])
    tau_no = np.full(p_int.shape, NIS_DEFAULT[1])
    if object_index is not None:
        obj = np.broadcast_to(np.asarray(object_index), p_int.shape)
        for index, (ti, tn) in NIS_OBJECT_OVERRIDES.items():
            tau_int = np.where(obj == index, ti, tau_int)
            tau_no = np.where(obj == index, tn, tau_no)
    return ~((p_no > tau_no) & (p_int < tau_int))


def final_hoi_scores(hoi_scores, human_scores, object_scores, lis_constants=LIS_HICO):
    """S(h, o, c) = S_C(h, o)[c] * L(s_h) * L(s_o) for surviving pairs; (P, 600)."""
    return np.asarray(hoi_scores) * lis(human_scores, lis_constants)[:, None] * lis(object_scores, lis_constants)[:, None]


def hoi_class_weights(counts) -> np.ndarray:
    """iCAN/TIN class weights w_c = ln(N / k_c) from per-class training counts k_c (N = their sum)."""
    counts = np.asarray(counts, dtype=np.float64)
    return np.log(counts.sum() / np.maximum(counts, 1))


def weighted_logit_bce(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean BCE of sigmoid(w * z) against targets: TIN scales the logits by the class weights (train only)."""
    if weights is not None:
        logits = logits * weights
    return F.binary_cross_entropy_with_logits(logits, targets)


# --- the network ------------------------------------------------------------------------------------------------

def crop_and_resize(features: torch.Tensor, rois: torch.Tensor, size: int, stride: int = 16) -> torch.Tensor:
    """TF ``crop_and_resize`` on a stride-``stride`` map: ``size`` x ``size`` bilinear samples spaced evenly from
    x1/stride to x2/stride inclusive (likewise y). features (B, C, h, w), rois (K, 5) pixels -> (K, C, size, size)."""
    if rois.numel() == 0:
        return features.new_zeros((0, features.shape[1], size, size))
    height, width = features.shape[-2:]
    steps = torch.linspace(0, 1, size, dtype=features.dtype, device=features.device)
    x1, y1, x2, y2 = (rois[:, i].to(features.dtype) / stride for i in range(1, 5))
    xs = x1[:, None] + (x2 - x1)[:, None] * steps  # (K, size) feature-pixel coordinates
    ys = y1[:, None] + (y2 - y1)[:, None] * steps
    gx = 2 * xs / max(width - 1, 1) - 1
    gy = 2 * ys / max(height - 1, 1) - 1
    grid = torch.stack([gx[:, None, :].expand(-1, size, -1), gy[:, :, None].expand(-1, -1, size)], dim=-1)
    return sample_grids(features, rois[:, 0].long(), grid, align_corners=True)


def _fc_stack(in_dim: int, hidden: int, out_dim: int, dropout: float, batchnorm: bool = False) -> nn.Sequential:
    """Linear-ReLU-Dropout twice, then the classifier (indices 0, 3, 6); with ``batchnorm`` TIN-Torch's
    Linear(no bias)-BatchNorm1d-ReLU-Dropout twice, then the classifier (indices 0/1, 4/5, 8)."""
    if batchnorm:
        return nn.Sequential(nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                             nn.Dropout(dropout), nn.Linear(hidden, hidden, bias=False), nn.BatchNorm1d(hidden),
                             nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, out_dim))
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(hidden, out_dim))


class FlattenHWC(nn.Module):
    """(N, C, H, W) -> (N, H * W * C), channels fastest: the order of TF's NHWC flatten and of TIN-Torch's
    ``flatten(x.permute(0, 2, 3, 1))``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1)


def _conv_stream(channels_in: int, first: int, second: int, hwc: bool = False) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels_in, first, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                         nn.Conv2d(first, second, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                         FlattenHWC() if hwc else nn.Flatten())


@dataclass
class TINConfig:
    num_classes: int = NUM_HOI
    pooling_size: int = 7
    hidden: int = 1024
    attention_dim: int = 512
    classifier_dropout: float = 0.5
    binary_dropout: float = 0.2  # keep probability 0.8 in the original
    part_level: bool = False
    part_channels: int = 64
    #: the ResNet-50's strided bottlenecks carry the stride on the 1x1 conv1 (True: TIN-Torch / HAKE, every PyTorch
    #: TIN checkpoint) or on the 3x3 (False: torchvision's layout).
    stride_in_1x1: bool = True
    #: TIN-Torch's classifier stacks (Linear without bias + BatchNorm1d before each ReLU) instead of the TF release's
    #: Linear + ReLU.
    fc_batchnorm: bool = False
    #: flatten the spatial and pose maps in (H, W, C) order (TF's NHWC, TIN-Torch's permute-then-flatten) instead of
    #: PyTorch's (C, H, W); only the layout of the first Linear after them depends on it.
    flatten_hwc: bool = False
    #: ReLU on the attention's 1x1 convolutions head_phi and head_g, as in both originals (TF ``slim.conv2d``'s default
    #: activation; TIN-Torch's ``Sequential(Conv2d, ReLU)``).
    attention_relu: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TINConfig":
        values = dict(values)
        # configs saved before these fields existed were built (and trained) with the stride on the 3x3 and without
        # the ReLU after head_phi / head_g
        values.setdefault("stride_in_1x1", False)
        values.setdefault("attention_relu", False)
        return cls(**values)


class InstanceAttention(nn.Module):
    """iCAN instance-centric attention: context feature (N, 1024) of one instance over the whole head map."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(2048, dim), nn.ReLU(inplace=True), nn.Dropout(dropout))

    def forward(self, instance: torch.Tensor, head_phi: torch.Tensor, head_g: torch.Tensor, batch_index: torch.Tensor,
                bottleneck: nn.Module) -> torch.Tensor:
        a = self.embed(instance)  # (N, 512)
        phi, g = head_phi[batch_index], head_g[batch_index]  # (N, 512, h, w)
        attention = (phi * a[:, :, None, None]).mean(dim=1).flatten(1).softmax(dim=1).view_as(phi[:, 0])
        context = bottleneck(g * attention[:, None])
        return context.mean(dim=(2, 3))


class TIN(nn.Module):
    """See the module docstring. ``forward(images, human_rois, object_rois, patterns)`` -> dict with ``hoi_scores``
    (P, 600), ``binary`` (P, 2) sigmoids, the logits ``s_h``, ``s_o``, ``s_sp`` (P, 600) and ``binary_logits``
    (P, 2); with ``part_level`` and ``part_rois`` (P, 10, 5) also ``part_binary_logits`` (P, 10, 2)."""

    def __init__(self, config: TINConfig | None = None):
        super().__init__()
        self.config = config = config or TINConfig()
        trunk = resnet50(res5_stride=1, stride_in_1x1=config.stride_in_1x1)
        self.backbone = trunk  # conv1..layer3 shared; layer4 = human res5
        # a separate copy, initialised from the human res5
        self.object_res5 = resnet50(res5_stride=1, stride_in_1x1=config.stride_in_1x1).layer4
        self.object_res5.load_state_dict(trunk.layer4.state_dict())
        self.head_phi = nn.Conv2d(1024, config.attention_dim, 1)
        self.head_g = nn.Conv2d(1024, config.attention_dim, 1)
        self.bottleneck = nn.Sequential(nn.Conv2d(config.attention_dim, 1024, 1), nn.ReLU(inplace=True))
        self.attention_h = InstanceAttention(config.attention_dim, 1 - 0.8)
        self.attention_o = InstanceAttention(config.attention_dim, 1 - 0.8)
        self.spatial = _conv_stream(2, 64, 32, config.flatten_hwc)  # 13*13*32 = 5408
        self.pose = _conv_stream(1, 32, 16, config.flatten_hwc)  # 13*13*16 = 2704
        c, hidden, bn = config.num_classes, config.hidden, config.fc_batchnorm
        self.cls_h = _fc_stack(2048 + 1024, hidden, c, config.classifier_dropout, bn)
        self.cls_o = _fc_stack(2048 + 1024, hidden, c, config.classifier_dropout, bn)
        self.cls_sp = _fc_stack(2048 + 5408, hidden, c, config.classifier_dropout, bn)
        part_dim = 10 * config.part_channels if config.part_level else 0
        self.binary_h = nn.Sequential(nn.Linear(2048 + 1024 + 5408 + 2704 + part_dim, hidden), nn.ReLU(inplace=True),
                                      nn.Dropout(config.binary_dropout))
        self.binary_o = nn.Sequential(nn.Linear(2048 + 1024, hidden), nn.ReLU(inplace=True), nn.Dropout(config.binary_dropout))
        self.binary_head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(inplace=True),
                                         nn.Dropout(config.binary_dropout), nn.Linear(hidden, 2))
        for branch in (self.cls_h, self.cls_o, self.cls_sp):
            nn.init.normal_(branch[-1].weight, std=0.01)
            nn.init.zeros_(branch[-1].bias)
        if config.part_level:
            pc = config.part_channels
            self.part_compress = nn.Conv2d(1024, pc, 1)
            pooled = config.pooling_size * config.pooling_size * pc
            self.part_attention = nn.Sequential(nn.Linear(10 * pooled, hidden), nn.ReLU(inplace=True),
                                                nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 10))
            self.part_binary_h = nn.ModuleList([
                nn.Sequential(nn.Linear(2048 + 1024 + pc + 5408 + 2704, hidden), nn.ReLU(inplace=True),
                              nn.Dropout(config.binary_dropout)) for _ in range(10)])
            self.part_binary_head = nn.ModuleList([
                nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(config.binary_dropout),
                              nn.Linear(hidden, 2)) for _ in range(10)])

    def forward(self, images, human_rois, object_rois, patterns, part_rois=None) -> dict[str, torch.Tensor]:
        size = self.config.pooling_size
        head = self.backbone.stem_and_trunk(images)
        batch_index = human_rois[:, 0].long()
        fc7_h = self.backbone.layer4(crop_and_resize(head, human_rois, size)).mean(dim=(2, 3))
        fc7_o = self.object_res5(crop_and_resize(head, object_rois, size)).mean(dim=(2, 3))
        phi, g = self.head_phi(head), self.head_g(head)
        if self.config.attention_relu:
            phi, g = F.relu(phi), F.relu(g)
        fc7_sh = self.attention_h(fc7_h, phi, g, batch_index, self.bottleneck)
        fc7_so = self.attention_o(fc7_o, phi, g, object_rois[:, 0].long(), self.bottleneck)
        sp = self.spatial(patterns[:, :2])
        pose = self.pose(patterns[:, 2:3])
        s_h = self.cls_h(torch.cat([fc7_h, fc7_sh], 1))
        s_o = self.cls_o(torch.cat([fc7_o, fc7_so], 1))
        s_sp = self.cls_sp(torch.cat([fc7_h, sp], 1))
        human_in = [fc7_h, fc7_sh, sp, pose]
        out = {"s_h": s_h, "s_o": s_o, "s_sp": s_sp}
        b2 = self.binary_o(torch.cat([fc7_o, fc7_so], 1))
        if self.config.part_level:
            if part_rois is None:  # without part boxes every part is the human box (as in TIN++)
                part_rois = human_rois[:, None, :].expand(-1, 10, -1)
            compressed = self.part_compress(head)
            crops = crop_and_resize(compressed, part_rois.reshape(-1, 5), size).view(len(human_rois), 10, -1, size, size)
            weights = torch.sigmoid(self.part_attention(crops.flatten(1)))
            pooled = crops.mean(dim=(3, 4))  # (P, 10, pc)
            human_in.append((pooled * weights[..., None]).flatten(1))
            part_logits = [self.part_binary_head[k](torch.cat([
                self.part_binary_h[k](torch.cat([fc7_h, fc7_sh, pooled[:, k], sp, pose], 1)), b2], 1)) for k in range(10)]
            out["part_binary_logits"] = torch.stack(part_logits, dim=1)
            out["part_weights"] = weights
        b1 = self.binary_h(torch.cat(human_in, 1))
        binary_logits = self.binary_head(torch.cat([b1, b2], 1))
        out["binary_logits"] = binary_logits
        out["hoi_scores"] = torch.sigmoid(s_sp) * (torch.sigmoid(s_h) + torch.sigmoid(s_o))
        out["binary"] = torch.sigmoid(binary_logits)
        if self.config.part_level:
            out["part_max_binary"] = torch.sigmoid(out["part_binary_logits"].max(dim=1).values)
        return out


def tin_loss(out: dict, hoi_targets: torch.Tensor, binary_targets: torch.Tensor, num_positive: int,
             hoi_weights: torch.Tensor | None = None, binary_weights: torch.Tensor | None = None) -> torch.Tensor:
    """L = L_H + L_O (positive rows only) + L_sp (all rows) + L_D (all rows), each a logit-weighted mean BCE.
    ``binary_targets`` (P, 2): (interactive, non-interactive). The default binary weights are (ln 5, ln 1.25)."""
    if binary_weights is None:
        logits = out["binary_logits"]
        binary_weights = torch.tensor([math.log(5.0), math.log(1.25)], dtype=logits.dtype, device=logits.device)
    pos = slice(0, num_positive)
    loss = weighted_logit_bce(out["s_sp"], hoi_targets, hoi_weights) + weighted_logit_bce(out["binary_logits"], binary_targets, binary_weights)
    if num_positive > 0:
        loss = loss + weighted_logit_bce(out["s_h"][pos], hoi_targets[pos], hoi_weights)
        loss = loss + weighted_logit_bce(out["s_o"][pos], hoi_targets[pos], hoi_weights)
    if "part_binary_logits" in out:
        max_logits = out["part_binary_logits"].max(dim=1).values
        loss = loss + weighted_logit_bce(max_logits, binary_targets, binary_weights)
        loss = loss + F.mse_loss(max_logits * binary_weights, out["binary_logits"] * binary_weights)
    return loss


def tin_torch_config(state_dict: dict) -> TINConfig:
    """The :class:`TINConfig` a TIN-Torch (``TIN_ResNet50``) state dict fits: its class count, FC width and attention
    width from the weights' shapes; the stride on the 1x1, BatchNorm1d classifier stacks, (H, W, C) flatten."""
    try:
        return TINConfig(num_classes=state_dict["cls_score_H.weight"].shape[0],
                         hidden=state_dict["fc8_SH.0.weight"].shape[0],
                         attention_dim=state_dict["head_phi.0.weight"].shape[0],
                         stride_in_1x1=True, fc_batchnorm=True, flatten_hwc=True)
    except KeyError as exc:
        raise ValueError(f"not a TIN-Torch state dict: {exc.args[0]!r} is missing") from None


def load_tin_torch_checkpoint(checkpoint, strict: bool = True):
    """Build the TIN of a HAKE-Action-Torch TIN-Torch checkpoint and load it by name -> (model in eval mode,
    :class:`~partwise.models.checkpoint.LoadReport`).

    ``checkpoint``: a path (read weights-only) or the loaded dict (``{"epoch", "model_state_dict",
    "optimizer_state_dict", "loss"}`` as ``tools/train_HICO.py`` saves it, or the bare state dict). Keys map by the
    ``tin_torch`` rules of :data:`partwise.models.checkpoint.KEY_RULES` (``resnet50.*`` / ``image_to_head.*`` /
    ``resnet_layer4.*`` -> ``backbone.*``, ``resnet_layer5.*`` -> ``object_res5.*``, ``fc8_SH`` / ``fc9_SH`` /
    ``cls_score_H`` -> ``cls_h``, ...); strict: any missing, unexpected or mis-shaped key raises. Inputs as for
    :class:`TIN`: TIN-Torch's ``sp`` blob (P, 64, 64, 3) is ``patterns.permute(0, 2, 3, 1)``; its ``cls_prob_HO`` /
    ``cls_prob_H`` / ``cls_prob_O`` / ``cls_prob_sp`` / ``cls_prob_binary`` are ``hoi_scores``, sigmoid of ``s_h`` /
    ``s_o`` / ``s_sp``, ``binary``. (Dropout rates, which only training sees, stay partwise's: TIN-Torch drops 80 %
    where the TF release keeps 80 %.)"""
    from partwise.models.checkpoint import load_original

    return load_original(checkpoint, tin_torch_config, TIN, "tin_torch", strict=strict)
