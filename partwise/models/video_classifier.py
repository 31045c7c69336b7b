"""Video-level action classifier: mmaction2 1.x ``Recognizer3D`` (3D backbone + ``I3DHead`` / ``SlowFastHead``).

backbone (:class:`partwise.models.resnet3d.ResNet3d` SlowOnly or :class:`SlowFast`) -> global average pool over
(T, H, W) (SlowFast: each pathway pooled, then concatenated slow first) -> dropout -> ``fc_cls`` (Linear to
``num_classes``, weights ~ N(0, ``init_std``), zero bias). Facts from mmaction2's ``configs/_base_/models/
slowonly_r50.py`` and ``ResNet3dSlowOnly``: SlowOnly R50 with ``conv1_kernel (1,7,7)``, ``inflate (0,0,1,1)``, no
temporal pooling anywhere (the SlowOnly forward has no ``pool2``), spatial strides ``(1,2,2,2)`` (output stride
32, unlike the stride-16 detection backbones), ``I3DHead`` dropout 0.5, test-time ``average_clips='prob'``.

Test-time sampling (:func:`eval_clip_indices`) is mmaction2's ``SampleFrames(test_mode=True)`` for 3D recognizers
as in mmaction2 0.x: the video minus one clip span is split into ``num_clips`` equal segments and each clip starts
at the middle of its segment (evenly spaced clip centres); videos shorter than one clip span start every clip at 0
and wrap indices around (``out_of_bound_opt='loop'``). :func:`train_clip_indices` is the ``num_clips=1`` training
draw (a uniformly random start). Each test clip is resized to short side ``test_short_side`` and classified whole
(fully convolutional; mmaction2's ThreeCrop is not applied), softmax probabilities are averaged over the clips.

Module names: ``backbone.*`` as mmaction2; the head is ``head.fc_cls`` (mmaction2: ``cls_head.fc_cls``, mapped by
:mod:`partwise.models.checkpoint`); :func:`load_mmaction2_recognizer` infers the config from an mmaction2 file.
Fresh backbones get mmaction2's from-scratch init (:func:`init_backbone`: Kaiming convs, zero-init residuals).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from partwise.models.resnet3d import ResNet3d, ResNet3dConfig, SlowFast, SlowFastConfig, backbone_config_from_dict

#: The classifier trained by ``configs/synth_video_classifier.yaml`` on
#: ``partwise synth DATA --seed 102 --videos 96 --size 160x120``
#: (load with :func:`partwise.models.checkpoint.load_model`).
SYNTH_CHECKPOINT = Path(__file__).resolve().parent / "data" / "synth_video_classifier.pt"

#: mmaction2 Kinetics ``ActionDataPreprocessor`` normalization (RGB, 0..255 scale).
KINETICS_MEAN = (123.675, 116.28, 103.53)
KINETICS_STD = (58.395, 57.12, 57.375)


def _recognition_slowonly() -> ResNet3dConfig:
    return ResNet3dConfig(spatial_strides=(1, 2, 2, 2))


@dataclass
class VideoClassifierConfig:
    """The whole recognizer. ``backbone_type``: ``"slowonly"`` (``backbone`` a ResNet3dConfig) or ``"slowfast"``
    (a SlowFastConfig). Defaults = mmaction2 SlowOnly R50 8x8x1 Kinetics-400.

    ``class_names``: one name per output (empty: ``class_0 .. class_{n-1}`` are filled in). ``clip_len`` x
    ``frame_interval``: frames per clip and their spacing; ``num_clips``: clips averaged at test time;
    ``test_short_side``: test resize; ``mean`` / ``std``: RGB normalization on the 0..255 scale.
    """

    backbone_type: str = "slowonly"
    backbone: ResNet3dConfig | SlowFastConfig = field(default_factory=_recognition_slowonly)
    num_classes: int = 400
    class_names: list[str] = field(default_factory=list)
    clip_len: int = 8
    frame_interval: int = 8
    num_clips: int = 10
    test_short_side: int = 256
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    dropout: float = 0.5
    init_std: float = 0.01

    def __post_init__(self) -> None:
        if self.backbone_type not in ("slowonly", "slowfast"):
            raise ValueError(f"backbone_type must be 'slowonly' or 'slowfast', got {self.backbone_type!r}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {self.num_classes}")
        if not self.class_names:
            self.class_names = [f"class_{i}" for i in range(self.num_classes)]
        self.class_names = [str(n) for n in self.class_names]
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} names for {self.num_classes} classes")
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError("class_names must be distinct")
        for key in ("clip_len", "frame_interval", "num_clips", "test_short_side"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be at least 1, got {getattr(self, key)}")
        self.mean, self.std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std need three values (R, G, B)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "VideoClassifierConfig":
        data = dict(data)
        data["backbone"] = backbone_config_from_dict(data.get("backbone_type", "slowonly"), data.get("backbone", {}))
        return cls(**data)

    def feature_channels(self) -> int:
        """Channels entering ``fc_cls`` (SlowFast: slow + fast)."""
        if self.backbone_type == "slowfast":
            return self.backbone.slow_config().out_channels + self.backbone.fast_config().out_channels
        return self.backbone.out_channels


def kinetics_slowonly_r50_8x8_config() -> VideoClassifierConfig:
    """mmaction2 ``slowonly_r50_8xb16-8x8x1-256e_kinetics400-rgb``: SlowOnly R50, 8 frames every 8th, 400 classes,
    10 test clips at short side 256."""
    return VideoClassifierConfig()


#: The synthetic generator's video classes (``partwise.synth.generator.VIDEO_CLASSES``), sorted as the training
#: task orders class names.
SYNTH_CLASSES = ("front_raises", "lunge", "sitting_with_objects", "walking_around")


def synth_video_classifier_config() -> VideoClassifierConfig:
    """The narrow SlowOnly of ``configs/synth_video_classifier.yaml`` (and of the shipped
    ``partwise/models/data/synth_video_classifier.pt``): trains on one CPU thread in about 1.5 minutes."""
    backbone = ResNet3dConfig(depth=50, base_channels=8, spatial_strides=(2, 2, 2), inflate=(0, 1, 1))
    return VideoClassifierConfig(backbone=backbone, num_classes=len(SYNTH_CLASSES), class_names=list(SYNTH_CLASSES),
                                 clip_len=4, frame_interval=8, num_clips=5, test_short_side=96, dropout=0.0)


class ClsHead(nn.Module):
    """mmaction2 ``I3DHead`` / ``SlowFastHead``: ``(N, C, T, H, W)`` (or a (slow, fast) pair) -> ``(N, classes)``.

    Average pool over (T, H, W) per pathway, concatenate, dropout, ``fc_cls``.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.5, init_std: float = 0.01):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.fc_cls = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.fc_cls.weight, 0.0, init_std)
        nn.init.zeros_(self.fc_cls.bias)

    def forward(self, features: Tensor | tuple[Tensor, ...]) -> Tensor:
        feats = features if isinstance(features, (tuple, list)) else (features,)
        x = torch.cat([f.mean(dim=(2, 3, 4)) for f in feats], dim=1)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc_cls(x)


def init_backbone(backbone: nn.Module) -> None:
    """mmaction2 ``ResNet3d.init_weights`` for training from scratch: Kaiming-normal convs (fan_out, ReLU), BN
    weight 1 / bias 0, and ``zero_init_residual``: each bottleneck's last BN weight 0, so every residual block
    starts as the identity (deep narrow nets otherwise sit at chance for hundreds of steps). The non-local blocks
    keep their own init (their output BN already starts at 0)."""
    from partwise.models.resnet3d import Bottleneck3d, NonLocal3d

    non_local = {id(m) for nl in backbone.modules() if isinstance(nl, NonLocal3d) for m in nl.modules()}
    for m in backbone.modules():
        if id(m) in non_local:
            continue
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in backbone.modules():
        if isinstance(m, Bottleneck3d):
            nn.init.zeros_(m.conv3.bn.weight)


class VideoClassifier(nn.Module):
    """Clip -> class logits. ``forward(clips)``: ``(N, 3, T, H, W)`` normalized (see :meth:`normalize`) ->
    ``(N, num_classes)`` logits."""

    def __init__(self, cfg: VideoClassifierConfig | None = None):
        super().__init__()
        cfg = cfg or VideoClassifierConfig()
        self.cfg = cfg
        self.backbone = ResNet3d(cfg.backbone) if cfg.backbone_type == "slowonly" else SlowFast(cfg.backbone)
        init_backbone(self.backbone)
        self.head = ClsHead(cfg.feature_channels(), cfg.num_classes, cfg.dropout, cfg.init_std)
        self.register_buffer("mean", torch.tensor(cfg.mean).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.std).view(1, 3, 1, 1, 1), persistent=False)

    def normalize(self, frames: Tensor) -> Tensor:
        """RGB clips ``(N, 3, T, H, W)`` on the 0..255 scale -> normalized float clips."""
        return (frames.to(self.mean.dtype) - self.mean) / self.std

    def forward(self, clips: Tensor) -> Tensor:
        return self.head(self.backbone(clips))


def eval_clip_indices(num_frames: int, clip_len: int, frame_interval: int, num_clips: int) -> np.ndarray:
    """0-based frame indices ``(num_clips, clip_len)`` of mmaction2 ``SampleFrames(test_mode=True)``.

    With span ``L = clip_len * frame_interval`` and ``a = (num_frames - L + 1) / num_clips``, clip ``k`` starts at
    ``int(k * a + a / 2)`` when ``num_frames >= L``, else at 0; indices past the end wrap around (``loop``).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    span = clip_len * frame_interval
    if num_frames > span - 1:
        interval = (num_frames - span + 1) / float(num_clips)
        offsets = (np.arange(num_clips) * interval + interval / 2.0).astype(np.int64)
    else:
        offsets = np.zeros(num_clips, np.int64)
    indices = offsets[:, None] + np.arange(clip_len, dtype=np.int64)[None, :] * frame_interval
    return np.mod(indices, num_frames)


def train_clip_indices(num_frames: int, clip_len: int, frame_interval: int, rng: np.random.Generator) -> np.ndarray:
    """0-based frame indices ``(clip_len,)`` of one training clip (``SampleFrames(num_clips=1)``): the start is
    uniform in ``[0, num_frames - span]`` (0 when the video is shorter than the span; indices then wrap)."""
    span = clip_len * frame_interval
    room = num_frames - span + 1
    start = int(rng.integers(room)) if room > 0 else 0
    return np.mod(start + np.arange(clip_len, dtype=np.int64) * frame_interval, num_frames)


def short_side_resize(frames: np.ndarray, short_side: int) -> Tensor:
    """``(T, H, W, 3)`` uint8 RGB -> ``(3, T, h, w)`` float32 (0..255), short side ``short_side`` (bilinear,
    antialiased), aspect ratio kept (rounded like mmcv ``rescale_size``)."""
    from partwise.ops.resize import resize_clip, short_side_size

    height, width = frames.shape[1:3]
    return resize_clip(frames, short_side_size(height, width, short_side))


@torch.no_grad()
def predict_clips(model: VideoClassifier, clips: list[Tensor]) -> np.ndarray:
    """Softmax probabilities ``(num_classes,)`` averaged over ``clips`` (each ``(3, T, h, w)`` on 0..255)."""
    was_training = model.training
    model.eval()
    try:
        device = model.mean.device
        probs = [F.softmax(model(model.normalize(c[None].to(device))), dim=1)[0] for c in clips]
        return torch.stack(probs).mean(0).float().cpu().numpy()
    finally:
        model.train(was_training)


def predict_video(model: VideoClassifier, read_frames: Callable[[np.ndarray], np.ndarray],
                  num_frames: int) -> np.ndarray:
    """Class probabilities ``(num_classes,)`` of a whole video (names: ``model.cfg.class_names``).

    ``read_frames(indices (K,) int64, sorted, distinct) -> (K, H, W, 3)`` uint8 RGB frames; ``num_frames``: the
    video's frame count. ``model.cfg.num_clips`` clips of :func:`eval_clip_indices`, each resized to short side
    ``model.cfg.test_short_side``; softmax scores averaged over the clips (``average_clips='prob'``).
    """
    cfg = model.cfg
    indices = eval_clip_indices(int(num_frames), cfg.clip_len, cfg.frame_interval, cfg.num_clips)
    wanted = np.unique(indices)
    frames = np.asarray(read_frames(wanted))
    if frames.ndim != 4 or frames.shape[0] != len(wanted) or frames.shape[-1] != 3:
        raise ValueError(f"read_frames returned shape {frames.shape} for {len(wanted)} indices; "
                         "expected (K, H, W, 3)")
    position = np.searchsorted(wanted, indices)
    clips = [short_side_resize(frames[row], cfg.test_short_side) for row in position]
    return predict_clips(model, clips)


def mmaction2_recognizer_config(state_dict: dict[str, Tensor], **overrides) -> VideoClassifierConfig:
    """The :class:`VideoClassifierConfig` of an mmaction2 ``Recognizer3D`` checkpoint (``backbone.*`` +
    ``cls_head.fc_cls``), from its key names and shapes.

    Recovered: SlowOnly vs SlowFast, depth (block counts), base channels, SlowFast channel ratio and fusion kernel
    (5: the 4x16 rates 8/8, 7: the 8x8 rates 4/4, as :func:`partwise.models.checkpoint.mmaction2_detector_config`),
    number of classes. Not recoverable, so mmaction2's Kinetics defaults unless given in ``overrides``: spatial
    strides (1, 2, 2, 2), clip sampling, test clips and size, class names.
    """
    import re

    depth_of = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}

    def blocks(prefix: str) -> tuple[int, ...]:
        counts = []
        for stage in range(1, 5):
            pat = re.compile(rf"^{re.escape(prefix)}layer{stage}\.(\d+)\.conv1\.conv\.weight$")
            idx = [int(m.group(1)) for k in state_dict if (m := pat.match(k))]
            counts.append(max(idx) + 1 if idx else 0)
        return tuple(counts)

    if "cls_head.fc_cls.weight" not in state_dict:
        raise ValueError("not an mmaction2 recognizer checkpoint (no cls_head.fc_cls.weight)")
    num_classes = int(state_dict["cls_head.fc_cls.weight"].shape[0])
    if "backbone.slow_path.conv1.conv.weight" in state_dict:
        counts = blocks("backbone.slow_path.")
        slow_base = int(state_dict["backbone.slow_path.conv1.conv.weight"].shape[0])
        fast_base = int(state_dict["backbone.fast_path.conv1.conv.weight"].shape[0])
        fusion = int(state_dict["backbone.slow_path.conv1_lateral.conv.weight"].shape[2])
        rate = 8 if fusion == 5 else 4
        backbone = SlowFastConfig(depth=depth_of.get(counts, 0), resample_rate=rate, speed_ratio=rate,
                                  channel_ratio=slow_base // fast_base, fusion_kernel=fusion, base_channels=slow_base,
                                  spatial_strides=(1, 2, 2, 2))
        kind = "slowfast"
    elif "backbone.conv1.conv.weight" in state_dict:
        counts = blocks("backbone.")
        backbone = ResNet3dConfig(depth=depth_of.get(counts, 0),
                                  base_channels=int(state_dict["backbone.conv1.conv.weight"].shape[0]),
                                  spatial_strides=(1, 2, 2, 2))
        kind = "slowonly"
    else:
        raise ValueError("not an mmaction2 SlowOnly/SlowFast recognizer (no backbone.conv1 or "
                         "backbone.slow_path.conv1 weights)")
    if backbone.depth == 0:
        raise ValueError(f"unsupported block counts per stage {list(counts)}")
    values = {"backbone_type": kind, "backbone": backbone, "num_classes": num_classes, **overrides}
    return VideoClassifierConfig(**values)


def load_mmaction2_recognizer(path, strict: bool = True, **overrides):
    """Build a :class:`VideoClassifier` matching an mmaction2 recognizer checkpoint and load it -> (model in eval
    mode, :class:`partwise.models.checkpoint.LoadReport`). ``overrides``: config fields the weights cannot tell
    (``class_names``, ``clip_len``, ``frame_interval``, ``num_clips``, ``test_short_side``...)."""
    from partwise.errors import InputError
    from partwise.models.checkpoint import load_state_dict, read_checkpoint, state_dict_of

    state = state_dict_of(read_checkpoint(path))
    try:
        cfg = mmaction2_recognizer_config(state, **overrides)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(path, None, str(exc)) from None
    model = VideoClassifier(cfg)
    report = load_state_dict(model, state, "mmaction2", strict=strict, path=path)
    return model.eval(), report
