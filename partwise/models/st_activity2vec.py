"""ST-Activity2Vec (HAKE-AVA, branch ST-Activity2Vec; ``hake.md`` §5): PaSta heads on a SlowFast person RoI, and AVA
actions gated by a PaSta path.

Per clip: SlowFast (R101 8x8 with non-local blocks in res4 in the original) gives slow (2048) and fast (256)
features. Per person box: each pathway is averaged over time, RoIAligned to 7x7 (spatial scale 1/16) and max-pooled
spatially; the two are concatenated (2304), then dropout 0.5. No pose and no part boxes: every part classifier sees
the whole-person feature.

* PaSta heads, one per part (foot, leg, hip, hand, arm, head) over the 87 HAKE-AVA classes (15/14/5/33/7/13):
  Linear(2304 -> d_p)-BatchNorm-ReLU-Linear(d_p -> n_p) with d = (512, 2048, 1024, 1024, 1024, 1024).
* Actions (80 AVA classes): ``mask * sigmoid(Linear(concat of the six hidden layers, 6656 -> 80)) + (1 - mask) *
  sigmoid(Linear(2304 -> 80))``; ``mask`` is 1 for the 12 actions the original routes through PaSta (answer phone,
  drink, drive, eat, push (an object), sail boat, smoke, touch (an object), watch (e.g., TV), work on a computer,
  listen to (a person), sing to).

Boxes: ``[batch_index, x1, y1, x2, y2]`` in input pixels. Training stages (``set_stage``): 1 = PaSta heads only
(backbone and action layers frozen), 2 = action layers only (PaSta heads frozen), 0 = everything trainable.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from partwise.models.resnet3d import NonLocalConfig, SlowFast, SlowFastConfig, pool_time
from partwise.ops.roi_align import roi_align

PASTA_CLASSES = (15, 14, 5, 33, 7, 13)
PASTA_HIDDEN = (512, 2048, 1024, 1024, 1024, 1024)
#: AVA action ids whose score comes through the PaSta path.
PASTA_PATH_ACTIONS = (15, 27, 28, 29, 46, 51, 54, 59, 61, 62, 74, 77)
NUM_ACTIONS = 80


def st_a2v_slowfast_r101_config() -> SlowFastConfig:
    """SlowFast R101 8x8 as ST-Activity2Vec uses it: 32 input frames, alpha 4, beta_inv 8, non-local in res4
    blocks 6, 13 and 20 of the slow pathway."""
    res4 = tuple(1 if i in (6, 13, 20) else 0 for i in range(23))
    return SlowFastConfig(depth=101, resample_rate=4, speed_ratio=4, channel_ratio=8, fusion_kernel=7,
                          slow_non_local=(0, 0, res4, 0), non_local_cfg=NonLocalConfig())


@dataclass
class STActivity2VecConfig:
    backbone: SlowFastConfig = field(default_factory=st_a2v_slowfast_r101_config)
    roi_size: int = 7
    spatial_scale: float = 1 / 16
    dropout: float = 0.5
    pasta_classes: tuple[int, ...] = PASTA_CLASSES
    pasta_hidden: tuple[int, ...] = PASTA_HIDDEN
    num_actions: int = NUM_ACTIONS
    pasta_path_actions: tuple[int, ...] = PASTA_PATH_ACTIONS

    def __post_init__(self):
        # nn.Dropout refuses it only when the net is built; here it is a config error naming the key
        if not 0 <= self.dropout <= 1:
            raise ValueError(f"dropout: expected a probability in [0, 1], got {self.dropout!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "STActivity2VecConfig":
        values = dict(values)
        if "backbone" in values and isinstance(values["backbone"], dict):
            values["backbone"] = SlowFastConfig.from_dict(values["backbone"])
        for key in ("pasta_classes", "pasta_hidden", "pasta_path_actions"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def pool_person_features(pathways: tuple[torch.Tensor, ...], rois: torch.Tensor, roi_size: int,
                         spatial_scale: float) -> torch.Tensor:
    """Per pathway (N, C, T, H, W): temporal mean -> RoIAlign (roi_size^2) -> spatial max; concatenated (K, sum C)."""
    pooled = []
    for features in pathways:
        frame = pool_time(features, "avg")
        crops = roi_align(frame, rois, roi_size, spatial_scale, sampling_ratio=0, aligned=True)
        pooled.append(crops.amax(dim=(2, 3)))
    return torch.cat(pooled, dim=1)


class PastaHead(nn.Module):
    def __init__(self, in_dim: int, hidden: int, classes: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = F.relu(self.bn(self.fc1(x)))
        return hidden, self.fc2(hidden)


class STActivity2Vec(nn.Module):
    """``forward(clips (N, 3, T, H, W), rois (K, 5))`` -> ``{"pasta_logits": (K, 87), "pasta": (K, 87) sigmoid,
    "actions": (K, 80) combined probabilities, "action_pasta_logits", "action_direct_logits": (K, 80),
    "features": (K, 2304)}``. Action column ``a - 1`` is AVA action ``a``."""

    def __init__(self, config: STActivity2VecConfig | None = None, backbone: nn.Module | None = None):
        super().__init__()
        self.config = config = config or STActivity2VecConfig()
        self.backbone = backbone if backbone is not None else SlowFast(config.backbone)
        in_dim = sum(self.backbone.out_channels)
        self.dropout = nn.Dropout(config.dropout)
        self.pasta_heads = nn.ModuleList([PastaHead(in_dim, d, n) for d, n in zip(config.pasta_hidden, config.pasta_classes)])
        self.action_from_pasta = nn.Linear(sum(config.pasta_hidden), config.num_actions)
        self.action_direct = nn.Linear(in_dim, config.num_actions)
        mask = torch.zeros(config.num_actions)
        mask[[a - 1 for a in config.pasta_path_actions]] = 1
        self.register_buffer("pasta_path_mask", mask)

    def forward(self, clips: torch.Tensor, rois: torch.Tensor) -> dict[str, torch.Tensor]:
        pathways = self.backbone(clips)
        pathways = pathways if isinstance(pathways, (tuple, list)) else (pathways,)
        features = self.dropout(pool_person_features(tuple(pathways), rois, self.config.roi_size, self.config.spatial_scale))
        hidden, logits = zip(*(head(features) for head in self.pasta_heads))
        pasta_logits = torch.cat(logits, dim=1)
        via_pasta = self.action_from_pasta(torch.cat(hidden, dim=1))
        direct = self.action_direct(features)
        mask = self.pasta_path_mask
        actions = mask * torch.sigmoid(via_pasta) + (1 - mask) * torch.sigmoid(direct)
        return {"pasta_logits": pasta_logits, "pasta": torch.sigmoid(pasta_logits), "actions": actions,
                "action_pasta_logits": via_pasta, "action_direct_logits": direct, "features": features}

    def set_stage(self, stage: int) -> None:
        """1: train the PaSta heads only; 2: train the action layers only; 0: train everything."""
        if stage not in (0, 1, 2):
            raise ValueError("stage must be 0, 1 or 2")
        self.requires_grad_(True)
        if stage == 1:
            self.backbone.requires_grad_(False)
            self.action_from_pasta.requires_grad_(False)
            self.action_direct.requires_grad_(False)
        elif stage == 2:
            self.backbone.requires_grad_(False)
            self.pasta_heads.requires_grad_(False)


def st_a2v_loss(out: dict, pasta_targets: torch.Tensor, action_targets: torch.Tensor | None = None,
                stage: int = 1) -> torch.Tensor:
    """BCE on the PaSta logits (stages 0, 1) and on the combined action probabilities (stages 0, 2)."""
    loss = out["pasta_logits"].new_zeros(())
    if stage in (0, 1):
        loss = loss + F.binary_cross_entropy_with_logits(out["pasta_logits"], pasta_targets)
    if stage in (0, 2) and action_targets is not None:
        loss = loss + F.binary_cross_entropy(out["actions"].clamp(1e-6, 1 - 1e-6), action_targets)
    return loss
