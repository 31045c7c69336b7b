"""Activity2Vec (HAKE-Action-Torch ``pasta_res50``; ``hake.md`` §3): PaSta and verbs per person, and the activity vector.

Per image: a ResNet-50 stride-16 trunk gives a 1024-channel map. Per person:

* scene feature: the map's global mean (1024);
* human feature: the person box cropped 7x7 from the map, ``layer4``, spatial mean (2048);
* part features: each of the 10 part boxes cropped 7x7, spatial mean (10 x 1024);
* skeleton feature per PaSta part: Conv(1->32, 5)-ReLU-MaxPool2-Conv(32->16, 5)-ReLU-MaxPool2 over the 64x64
  skeleton map (16*13*13 = 2704);
* per PaSta part p (foot, leg, hip, hand, arm, head, merging body parts by ``PART_AGG_RULE``): the concatenation
  [part features of its body parts, human, scene, skeleton_p] (7824 or 6800) -> Linear-ReLU-Dropout-Linear-ReLU-
  Dropout -> f_part (512) -> Linear -> PaSta logits of that part (16/15/6/34/8/14, the 93 list);
* verbs: Linear(6*512 -> 157) over the six f_part.

Activity vector ``f_pasta = [f_visual (6*512 = 3072), f_language]`` with ``f_language = sigmoid(pasta logits) @ L``,
L the (93, D) text-embedding matrix of the 93 PaSta names. partwise ships L computed with all-MiniLM-L6-v2
(``scripts/make_pasta_language_matrix.py``): D = 768 = 384 (part name) + 384 (state name), so f_pasta is 3840-d. The
original used BERT-base, D = 1536 (f_pasta 4608-d); pass its matrix as ``language_matrix`` to reproduce it.

Light trunk (``Activity2VecConfig(trunk="resnet18", trunk_width=w)``, not in the original): the stride-16 map is
stage 3 of a ResNet-18 of stem width w (4w channels) and the human crop goes through its stage 4 (8w channels,
stride ``res5_stride``) instead of ``layer4``; the part heads' input widths follow (part features 4w each, human 8w,
scene 4w), as does the skeleton width for another ``skeleton_size`` S (16 * (((S - 4) // 2 - 4) // 2)**2). f_part
and f_visual have ``hidden`` and 6 * ``hidden`` units. It exists for models trained from scratch, where no
pretrained ResNet-50 is available, small enough to ship (e.g. the ``synth-activity2vec`` weights).

HAKE's ResNet-50 (``activity2vec/networks/resnet_v1/resnetv1_torch.py``) puts the stride of a stage's first
bottleneck on its 1x1 ``conv1`` (3x3 at stride 1), not on the 3x3 as torchvision does: ``stride_in_1x1`` (default True
for the resnet50 trunk), and :func:`load_hake_checkpoint` switches a model built the other way before it takes HAKE
weights. ``layer4`` runs at stride ``res5_stride`` 1 (HAKE's ``cfg.FPN`` False). Checked against HAKE's own network
with seeded random weights (``tests/fixtures/hake_originals``): f_pasta, p_pasta, p_verb agree to float32
rounding (bit-identical on that fixture); with the stride on the 3x3 they are up to 0.28 (probabilities) off.

Boxes: ``[batch_index, x1, y1, x2, y2]`` in input-image pixels. RoIs are cropped with an affine sampling grid
(``grid_sample``, ``align_corners=False``) from the stride-16 map, as the original does -- not RoIAlign.
Input images: BGR, 0..255, minus ``PIXEL_MEANS`` (see :func:`preprocess`), no resizing at test time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from partwise.models.resnet import BasicBlock, resnet18, resnet50
from partwise.vocab.core import PART_AGG_RULE

#: Activity2Vec's BGR pixel means.
PIXEL_MEANS_BGR = (102.9801, 115.9465, 122.7717)
PASTA_PART_SIZES = (16, 15, 6, 34, 8, 14)
NUM_VERBS = 157
LANGUAGE_MATRIX_FILE = "pasta93_minilm_l6_768.npy"
TRUNKS = ("resnet50", "resnet18")


@dataclass
class Activity2VecConfig:
    pooling_size: int = 7
    hidden: int = 512
    dropout: float = 0.5
    res5_stride: int = 1
    #: resnet50 trunk: the stride of a stage's first bottleneck on its 1x1 conv1 (True, HAKE's pasta_res50 and every
    #: HAKE checkpoint) or on the 3x3 (False, torchvision's layout). None: the trunk's own (True for resnet50; the
    #: resnet18 trunk has no bottlenecks, False).
    stride_in_1x1: bool | None = None
    skeleton_size: int = 64
    language_dim: int = 768
    trunk: str = "resnet50"  # resnet50 (HAKE's) | resnet18 (the light trunk of :class:`LightTrunk`)
    trunk_width: int = 64  # resnet18 only: stem channels; stages have width * (1, 2, 4, 8)

    def __post_init__(self):
        if not 0 <= self.dropout <= 1:  # nn.Dropout refuses it only when the net is built
            raise ValueError(f"dropout: expected a probability in [0, 1], got {self.dropout!r}")
        if self.trunk not in TRUNKS:
            raise ValueError(f"trunk: expected one of {', '.join(TRUNKS)}, got {self.trunk!r}")
        if self.stride_in_1x1 is None:
            self.stride_in_1x1 = self.trunk == "resnet50"
        if self.trunk_width < 1:
            raise ValueError(f"trunk_width: expected a positive channel count, got {self.trunk_width}")
        if self.trunk == "resnet18" and self.stride_in_1x1:
            raise ValueError("stride_in_1x1: the resnet18 trunk has no 1x1 convolutions (a resnet50 setting)")

    @property
    def head_channels(self) -> int:
        """Channels of the stride-16 'head' map (scene and part features)."""
        return 1024 if self.trunk == "resnet50" else 4 * self.trunk_width

    @property
    def human_channels(self) -> int:
        """Channels of the res5 output on the human crop (human feature)."""
        return 2048 if self.trunk == "resnet50" else 8 * self.trunk_width

    @property
    def skeleton_dim(self) -> int:
        """Flattened pose-net output: 16 maps of ((S - 4) // 2 - 4) // 2 squared (2704 for S = 64)."""
        return 16 * (((self.skeleton_size - 4) // 2 - 4) // 2) ** 2

    @classmethod
    def from_dict(cls, values: dict) -> "Activity2VecConfig":
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


def preprocess(image_rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float32 BGR minus the pixel means."""
    bgr = np.ascontiguousarray(image_rgb[..., ::-1], dtype=np.float32) - np.array(PIXEL_MEANS_BGR, dtype=np.float32)
    return torch.from_numpy(bgr).permute(2, 0, 1).unsqueeze(0)


def crop_rois_affine(features: torch.Tensor, rois: torch.Tensor, size: int, spatial_scale: float) -> torch.Tensor:
    """Crop-and-resize by an affine sampling grid.

    ``features`` (B, C, H, W); ``rois`` (K, 5) ``[batch_index, x1, y1, x2, y2]`` in input pixels; returns (K, C, size,
    size). The box, scaled by ``spatial_scale``, is mapped to the grid's [-1, 1] range with the ``(W - 1)``
    normalization of the original (corner pixels of the map at -1 and 1), sampled bilinearly with zero padding.
    """
    if rois.numel() == 0:
        return features.new_zeros((0, features.shape[1], size, size))
    height, width = features.shape[-2:]
    x1, y1, x2, y2 = (rois[:, i] * spatial_scale for i in range(1, 5))
    theta = rois.new_zeros((rois.shape[0], 2, 3))
    theta[:, 0, 0] = (x2 - x1) / (width - 1)
    theta[:, 0, 2] = (x1 + x2 - width + 1) / (width - 1)
    theta[:, 1, 1] = (y2 - y1) / (height - 1)
    theta[:, 1, 2] = (y1 + y2 - height + 1) / (height - 1)
    grid = F.affine_grid(theta.to(features.dtype), [rois.shape[0], 1, size, size], align_corners=False)
    return sample_grids(features, rois[:, 0].long(), grid, align_corners=False)


def sample_grids(features: torch.Tensor, batch_index: torch.Tensor, grid: torch.Tensor,
                 align_corners: bool) -> torch.Tensor:
    """Bilinear samples of ``features`` (B, C, H, W) at ``grid`` (K, h, w, 2) (normalized coordinates), RoI k from
    image ``batch_index[k]`` -> (K, C, h, w). RoIs of one image are sampled in a single call with their grids stacked
    along the height, so the feature map is never copied per RoI."""
    count, h, w, _ = grid.shape
    out = features.new_empty((count, features.shape[1], h, w))
    for b in torch.unique(batch_index).tolist():
        rows = torch.nonzero(batch_index == b).flatten()
        stacked = grid[rows].reshape(1, len(rows) * h, w, 2)
        sampled = F.grid_sample(features[b:b + 1], stacked, mode="bilinear", padding_mode="zeros",
                                align_corners=align_corners)
        out[rows] = sampled.view(features.shape[1], len(rows), h, w).transpose(0, 1)
    return out


def _pose_net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                         nn.Conv2d(32, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2))


def load_language_matrix() -> torch.Tensor:
    """The shipped (93, 768) PaSta text-embedding matrix (float32)."""
    with resources.files("partwise.models").joinpath("data", LANGUAGE_MATRIX_FILE).open("rb") as fh:
        return torch.from_numpy(np.load(fh).astype(np.float32))


class LightTrunk(nn.Module):
    """The ``trunk: resnet18`` backbone: ResNet-18 (:func:`partwise.models.resnet.resnet18`) split like HAKE's ResNet-50.

    ``stem_and_trunk(x (B, 3, H, W)) -> (B, 4 * width, ceil(H/16), ceil(W/16))`` (stem and stages 1-3);
    ``layer4`` (stage 4: two BasicBlocks, the first with stride ``res5_stride`` and a projection shortcut) maps the
    (K, 4 * width, h, w) RoI crops to (K, 8 * width, h / res5_stride, w / res5_stride). ``res5_stride`` 1 keeps the 7x7
    crop, as the ResNet-50 path does, where the plain ResNet-18 would halve it.
    """

    def __init__(self, width: int = 64, res5_stride: int = 1):
        super().__init__()
        self.body = resnet18(width, num_stages=3)
        self.layer4 = nn.Sequential(BasicBlock(4 * width, 8 * width, res5_stride), BasicBlock(8 * width, 8 * width))

    def stem_and_trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)[-1]


class Activity2Vec(nn.Module):
    """See the module docstring. ``forward(images, human_rois, part_rois, skeletons)``:

    * images (B, 3, H, W) from :func:`preprocess`;
    * human_rois (N, 5); part_rois (N, 10, 5) in HAKE body-part order; skeletons (N, 1, S, S), S =
      ``config.skeleton_size`` (64).

    Training mode returns ``{"pasta_logits": (N, 93), "verb_logits": (N, 157)}``; eval mode adds ``p_pasta``,
    ``p_verb`` (sigmoids), ``f_visual`` (N, 6 * hidden; 3072 for HAKE's) and ``f_pasta`` (N, 6 * hidden +
    language_dim).

    ``backbone`` is HAKE's :class:`~partwise.models.resnet.ResNet` (``trunk: resnet50``; its ``backbone.*`` keys are
    what the HAKE checkpoint adapter maps onto) or a :class:`LightTrunk` (``trunk: resnet18``); both expose
    ``stem_and_trunk`` (stride-16 map) and ``layer4`` (applied to the human crop).
    """

    def __init__(self, config: Activity2VecConfig | None = None, language_matrix: torch.Tensor | None = None):
        super().__init__()
        self.config = config = config or Activity2VecConfig()
        if config.trunk == "resnet50":
            self.backbone = resnet50(res5_stride=config.res5_stride, stride_in_1x1=config.stride_in_1x1)
        else:
            self.backbone = LightTrunk(config.trunk_width, config.res5_stride)
        head, human = config.head_channels, config.human_channels
        in_dims = [len(members) * head + human + head + config.skeleton_dim for members in PART_AGG_RULE]
        self.pool2_flat_pose_maps = nn.ModuleList([_pose_net() for _ in PART_AGG_RULE])
        self.fc7_parts = nn.ModuleList([
            nn.Sequential(nn.Linear(d, config.hidden), nn.ReLU(inplace=True), nn.Dropout(config.dropout),
                          nn.Linear(config.hidden, config.hidden), nn.ReLU(inplace=True), nn.Dropout(config.dropout))
            for d in in_dims])
        self.part_cls_scores = nn.ModuleList([nn.Linear(config.hidden, n) for n in PASTA_PART_SIZES])
        self.verb_cls_scores = nn.Linear(len(PART_AGG_RULE) * config.hidden, NUM_VERBS)
        if language_matrix is None:
            language_matrix = torch.zeros(sum(PASTA_PART_SIZES), config.language_dim)
        if tuple(language_matrix.shape) != (sum(PASTA_PART_SIZES), config.language_dim):
            raise ValueError(f"language matrix must be (93, {config.language_dim}), got {tuple(language_matrix.shape)}")
        self.register_buffer("language_matrix", language_matrix.float(), persistent=False)

    def part_features(self, images, human_rois, part_rois, skeletons) -> torch.Tensor:
        """(N, 6, hidden) f_part for every person."""
        scale = 1.0 / 16
        size = self.config.pooling_size
        head = self.backbone.stem_and_trunk(images)
        scene = head.mean(dim=(2, 3))[human_rois[:, 0].long()]
        human = self.backbone.layer4(crop_rois_affine(head, human_rois, size, scale)).mean(dim=(2, 3))
        n = human_rois.shape[0]
        parts = crop_rois_affine(head, part_rois.reshape(-1, 5), size, scale).mean(dim=(2, 3)).view(n, 10, -1)
        out = []
        for p, members in enumerate(PART_AGG_RULE):
            skeleton = self.pool2_flat_pose_maps[p](skeletons).flatten(1)
            joined = torch.cat([parts[:, i] for i in members] + [human, scene, skeleton], dim=1)
            out.append(self.fc7_parts[p](joined))
        return torch.stack(out, dim=1)

    def forward(self, images, human_rois, part_rois, skeletons) -> dict[str, torch.Tensor]:
        f_parts = self.part_features(images, human_rois, part_rois, skeletons)
        pasta_logits = torch.cat([cls(f_parts[:, p]) for p, cls in enumerate(self.part_cls_scores)], dim=1)
        f_visual = f_parts.flatten(1)
        verb_logits = self.verb_cls_scores(f_visual)
        out = {"pasta_logits": pasta_logits, "verb_logits": verb_logits}
        if not self.training:
            p_pasta = torch.sigmoid(pasta_logits)
            out.update(p_pasta=p_pasta, p_verb=torch.sigmoid(verb_logits), f_visual=f_visual,
                       f_pasta=torch.cat([f_visual, p_pasta @ self.language_matrix.to(p_pasta.dtype)], dim=1))
        return out


def load_hake_checkpoint(model: Activity2Vec, checkpoint: dict, strict: bool = True, path=None):
    """Load a HAKE checkpoint (``{"model_state_dict": ...}`` or the bare state dict) through the checkpoint adapter
    (source ``hake_activity2vec``: ``resnet50.*`` -> ``backbone.*``; HAKE's duplicate registrations
    ``image_to_head.*`` / ``resnet_layer4.*`` must hold the same tensors and are otherwise unexpected). Returns the
    :class:`partwise.models.checkpoint.LoadReport`. ``path``: the file, named in the one-line error of a strict load.

    HAKE's bottlenecks carry their stride on the 1x1 conv: a resnet50-trunk model built with ``stride_in_1x1=False``
    is switched to that layout (its config too) once the weights are loaded; key coverage alone cannot tell the two
    layouts apart."""
    from partwise.models.checkpoint import load_state_dict, state_dict_of
    from partwise.models.resnet import set_stride_in_1x1

    report = load_state_dict(model, state_dict_of(checkpoint), "hake_activity2vec", strict=strict, path=path)
    if model.config.trunk == "resnet50" and not model.config.stride_in_1x1:
        set_stride_in_1x1(model.backbone, True)
        model.config.stride_in_1x1 = True
    return report
