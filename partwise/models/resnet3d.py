"""3D ResNets for video: SlowOnly (``ResNet3d``) and SlowFast (``SlowFast``), as in mmaction2 1.x.

Module names follow mmaction2's ``ResNet3dSlowOnly`` / ``ResNet3dSlowFast`` (``conv1.conv``, ``conv1.bn``,
``layer{1..4}.{i}.conv{1,2,3}``, ``downsample``, ``non_local_block.{g.0,theta,phi.0,conv_out}``,
``slow_path.*``, ``fast_path.*``, ``slow_path.{conv1,layer1,layer2,layer3}_lateral``), so mmaction2 backbone
weights load without renaming (``ava_detector_mmaction2_seed_configs`` in the tests checks every seed config).

Architecture facts (``ava_mmaction2.md`` §3.1, §7):

* stem: conv ``conv1_kernel`` (SlowOnly ``(1,7,7)``, SlowFast fast path ``(5,7,7)``) with stride
  ``(conv1_stride_t, 2, 2)``, BN, ReLU; max-pool ``(1,3,3)`` stride ``(pool1_stride_t, 2, 2)`` padding ``(0,1,1)``;
  no temporal pooling after res2 (``with_pool2=False`` in the detection backbones);
* bottleneck (expansion 4): an *inflated* block has a ``(3,1,1)`` first conv and a ``(1,3,3)`` second conv;
  otherwise ``(1,1,1)`` and ``(1,3,3)``; the spatial stride sits on the second conv and on the 1x1x1 downsample;
* detection: ``spatial_strides=(1,2,2,1)`` so the output stride is 16 and res5 is not dilated;
* non-local (mmcv ``NonLocal3d`` embedded Gaussian, ``sub_sample=True``, scaled by ``1/sqrt(C')``): added
  after the ReLU of the flagged blocks; ``g`` and ``phi`` are followed by a ``(1,2,2)`` max-pool.

All convolutions have no bias (they are followed by BN) except the non-local ``g``/``theta``/``phi`` and none of
the lateral convs has BN. BN: eps 1e-5, momentum 0.1.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from partwise.models.resnet import conv_pointwise, fusable

DEPTH_BLOCKS = {18: None, 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
EXPANSION = 4


class ConvBN(nn.Module):
    """``conv`` (3D, optional bias) -> optional ``bn`` -> optional ReLU; names match mmcv ``ConvModule``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int],
                 stride: tuple[int, int, int] = (1, 1, 1), padding: tuple[int, int, int] = (0, 0, 0),
                 dilation: tuple[int, int, int] = (1, 1, 1), norm: bool = True, relu: bool = True,
                 bias: bool | None = None):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, padding, dilation,
                              bias=(not norm) if bias is None else bias)
        self.bn = nn.BatchNorm3d(out_channels) if norm else None
        self.relu = relu
        #: set by :func:`partwise.models.fuse.to_inference` when there is no BN (left): one oneDNN call
        self.fused = False

    def forward(self, x: Tensor) -> Tensor:
        if self.fused and fusable(self.conv, x):
            return conv_pointwise(self.conv, x, self.relu)
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True) if self.relu else x


def pool_time(features: Tensor, mode: str = "avg") -> Tensor:
    """``(N, C, T, H, W)`` -> ``(N, C, H, W)`` by mean (``"avg"``) or max over ``T``, fast in either memory layout.

    torch reduces a ``channels_last_3d`` tensor over ``T`` some 40x slower than the same memory viewed as
    ``(N, T, H, W, C)`` (one thread, torch 2.13), and the backbones of :func:`partwise.models.fuse.to_inference`
    return that layout; the result is then a ``channels_last`` 4D tensor.
    """
    if mode not in ("avg", "max"):
        raise ValueError(f"temporal pool mode must be 'avg' or 'max', got {mode!r}")
    if features.dim() != 5:
        raise ValueError(f"expected (N, C, T, H, W) features, got shape {tuple(features.shape)}")
    if not features.is_contiguous() and features.is_contiguous(memory_format=torch.channels_last_3d):
        nthwc = features.movedim(1, -1)
        return (nthwc.mean(dim=1) if mode == "avg" else nthwc.amax(dim=1)).movedim(-1, 1)
    return features.mean(dim=2) if mode == "avg" else features.amax(dim=2)


@dataclass
class NonLocalConfig:
    """mmcv ``NonLocal3d`` options used by the mmaction2 NL configs (embedded Gaussian only)."""

    reduction: int = 2
    use_scale: bool = True
    sub_sample: bool = True


class NonLocal3d(nn.Module):
    """Embedded-Gaussian non-local block: ``x + BN(W_out(softmax(theta(x)^T phi(x) [/sqrt(C')]) g(x)))``.

    Input and output ``(N, C, T, H, W)``; ``C' = C // reduction``. ``conv_out``'s BN weight starts at 0, so a fresh
    block is the identity.
    """

    def __init__(self, channels: int, cfg: NonLocalConfig):
        super().__init__()
        self.inter_channels = max(channels // cfg.reduction, 1)
        self.use_scale = cfg.use_scale
        inter = self.inter_channels
        self.theta = ConvBN(channels, inter, (1, 1, 1), norm=False, relu=False)
        g = ConvBN(channels, inter, (1, 1, 1), norm=False, relu=False)
        phi = ConvBN(channels, inter, (1, 1, 1), norm=False, relu=False)
        if cfg.sub_sample:
            self.g = nn.Sequential(g, nn.MaxPool3d((1, 2, 2)))
            self.phi = nn.Sequential(phi, nn.MaxPool3d((1, 2, 2)))
        else:
            self.g, self.phi = nn.Sequential(g), nn.Sequential(phi)
        self.conv_out = ConvBN(inter, channels, (1, 1, 1), norm=True, relu=False)
        nn.init.zeros_(self.conv_out.bn.weight)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        g_x = self.g(x).reshape(n, self.inter_channels, -1).transpose(1, 2)  # (N, L', C')
        theta_x = self.theta(x).reshape(n, self.inter_channels, -1).transpose(1, 2)  # (N, L, C')
        phi_x = self.phi(x).reshape(n, self.inter_channels, -1)  # (N, C', L')
        affinity = theta_x @ phi_x
        if self.use_scale:
            affinity = affinity / self.inter_channels ** 0.5
        y = affinity.softmax(dim=-1) @ g_x  # (N, L, C')
        y = y.transpose(1, 2).reshape(n, self.inter_channels, *x.shape[2:])
        return x + self.conv_out(y)


class Bottleneck3d(nn.Module):
    """ResNet bottleneck (1x1 -> 3x3 -> 1x1, expansion 4) with optional temporal inflation and non-local block."""

    def __init__(self, in_channels: int, planes: int, spatial_stride: int = 1, temporal_stride: int = 1,
                 dilation: int = 1, inflate: bool = False, inflate_style: str = "3x1x1",
                 non_local: NonLocalConfig | None = None):
        super().__init__()
        if inflate and inflate_style == "3x1x1":
            k1, p1, k2, p2 = (3, 1, 1), (1, 0, 0), (1, 3, 3), (0, dilation, dilation)
        elif inflate and inflate_style == "3x3x3":
            k1, p1, k2, p2 = (1, 1, 1), (0, 0, 0), (3, 3, 3), (1, dilation, dilation)
        elif not inflate:
            k1, p1, k2, p2 = (1, 1, 1), (0, 0, 0), (1, 3, 3), (0, dilation, dilation)
        else:
            raise ValueError(f"inflate_style must be '3x1x1' or '3x3x3', got {inflate_style!r}")
        out_channels = planes * EXPANSION
        self.conv1 = ConvBN(in_channels, planes, k1, padding=p1)
        self.conv2 = ConvBN(planes, planes, k2, stride=(temporal_stride, spatial_stride, spatial_stride),
                            padding=p2, dilation=(1, dilation, dilation))
        self.conv3 = ConvBN(planes, out_channels, (1, 1, 1), relu=False)
        needs_projection = spatial_stride != 1 or temporal_stride != 1 or in_channels != out_channels
        self.downsample = (ConvBN(in_channels, out_channels, (1, 1, 1),
                                  stride=(temporal_stride, spatial_stride, spatial_stride), relu=False)
                           if needs_projection else None)
        self.non_local_block = NonLocal3d(out_channels, non_local) if non_local is not None else None
        #: set by :func:`partwise.models.fuse.to_inference` once conv3's BN is folded
        self.fused = False

    def forward(self, x: Tensor) -> Tensor:
        identity = self.downsample(x) if self.downsample is not None else x
        if self.fused and fusable(self.conv3.conv, x):
            # conv3 + residual + ReLU in one oneDNN call; a relu'd ConvBN would apply the ReLU too early
            out = conv_pointwise(self.conv3.conv, self.conv2(self.conv1(x)), relu=True, residual=identity)
        else:
            out = F.relu(self.conv3(self.conv2(self.conv1(x))) + identity, inplace=True)
        if self.non_local_block is not None:
            out = self.non_local_block(out)
        return out


def _per_block(value, blocks: int, name: str) -> tuple[int, ...]:
    """An int applies to every block of a stage; a sequence gives one flag per block."""
    if isinstance(value, int):
        return (value,) * blocks
    value = tuple(int(v) for v in value)
    if len(value) != blocks:
        raise ValueError(f"{name}: expected {blocks} per-block flags, got {len(value)}")
    return value


def _check_depth(depth) -> None:
    """``ValueError`` starting with the field name (``build_model_config`` turns it into the config key)."""
    if depth not in DEPTH_BLOCKS or DEPTH_BLOCKS[depth] is None:
        raise ValueError(f"depth: unsupported depth {depth!r}; use one of 50, 101, 152")


@dataclass
class ResNet3dConfig:
    """One ResNet3d pathway. Defaults = mmaction2 ``ResNet3dSlowOnly`` R50 as the AVA seed configs build it.

    ``inflate`` / ``non_local``: per stage, an int (all blocks) or a tuple of per-block 0/1 flags.
    ``lateral_in`` (SlowFast slow path only): channels of the fast path's lateral features concatenated before
    each stage, filled in by :class:`SlowFast`; 0 for a plain network.
    """

    depth: int = 50
    in_channels: int = 3
    base_channels: int = 64
    conv1_kernel: tuple[int, int, int] = (1, 7, 7)
    conv1_stride_t: int = 1
    pool1_stride_t: int = 1
    spatial_strides: tuple[int, ...] = (1, 2, 2, 1)
    temporal_strides: tuple[int, ...] = (1, 1, 1, 1)
    dilations: tuple[int, ...] = (1, 1, 1, 1)
    inflate: tuple = (0, 0, 1, 1)
    inflate_style: str = "3x1x1"
    non_local: tuple = (0, 0, 0, 0)
    non_local_cfg: NonLocalConfig = field(default_factory=NonLocalConfig)
    lateral_in: tuple[int, ...] = (0, 0, 0, 0)

    def __post_init__(self):
        _check_depth(self.depth)
        if self.base_channels < 1:
            raise ValueError(f"base_channels: expected a positive channel count, got {self.base_channels}")

    @classmethod
    def from_dict(cls, data: dict) -> "ResNet3dConfig":
        data = dict(data)
        data["non_local_cfg"] = NonLocalConfig(**data.get("non_local_cfg", {}))
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def out_channels(self) -> int:
        return self.base_channels * 2 ** (len(self.spatial_strides) - 1) * EXPANSION


class ResNet3d(nn.Module):
    """A 3D ResNet pathway: ``(N, 3, T, H, W)`` -> res5 features ``(N, 8*4*base, T', H/16, W/16)``.

    With the default (SlowOnly detection) config there is no temporal downsampling: ``T' = T``.
    """

    def __init__(self, cfg: ResNet3dConfig | None = None):
        super().__init__()
        cfg = cfg or ResNet3dConfig()
        if cfg.depth not in DEPTH_BLOCKS or DEPTH_BLOCKS[cfg.depth] is None:
            raise ValueError(f"unsupported depth {cfg.depth}; use one of 50, 101, 152")
        self.cfg = cfg
        stages = DEPTH_BLOCKS[cfg.depth][: len(cfg.spatial_strides)]
        k = cfg.conv1_kernel
        self.conv1 = ConvBN(cfg.in_channels, cfg.base_channels, tuple(k), stride=(cfg.conv1_stride_t, 2, 2),
                            padding=tuple((s - 1) // 2 for s in k))
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=(cfg.pool1_stride_t, 2, 2), padding=(0, 1, 1))
        self.res_layers = []
        channels = cfg.base_channels
        for i, blocks in enumerate(stages):
            planes = cfg.base_channels * 2 ** i
            inflate = _per_block(cfg.inflate[i], blocks, f"inflate[{i}]")
            non_local = _per_block(cfg.non_local[i], blocks, f"non_local[{i}]")
            layer = []
            for j in range(blocks):
                in_ch = channels + (cfg.lateral_in[i] if j == 0 else 0)
                layer.append(Bottleneck3d(
                    in_ch, planes,
                    spatial_stride=cfg.spatial_strides[i] if j == 0 else 1,
                    temporal_stride=cfg.temporal_strides[i] if j == 0 else 1,
                    dilation=cfg.dilations[i], inflate=bool(inflate[j]), inflate_style=cfg.inflate_style,
                    non_local=cfg.non_local_cfg if non_local[j] else None))
                channels = planes * EXPANSION
            name = f"layer{i + 1}"
            self.add_module(name, nn.Sequential(*layer))
            self.res_layers.append(name)
        self.out_channels = channels

    def stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.conv1(x))

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for name in self.res_layers:
            x = getattr(self, name)(x)
        return x


@dataclass
class SlowFastConfig:
    """mmaction2 ``ResNet3dSlowFast``. Defaults = the AVA 4x16 R50 configs (32 input frames).

    slow T = T_in / ``resample_rate``; fast T = T_in / (``resample_rate`` / ``speed_ratio``) (nearest sampling).
    ``speed_ratio`` = alpha (lateral temporal stride); ``channel_ratio`` = beta_inv (fast base channels = slow /
    beta_inv); ``fusion_kernel``: temporal kernel of the lateral convs.
    """

    depth: int = 50
    resample_rate: int = 8
    speed_ratio: int = 8
    channel_ratio: int = 8
    fusion_kernel: int = 5
    base_channels: int = 64
    spatial_strides: tuple[int, ...] = (1, 2, 2, 1)
    slow_non_local: tuple = (0, 0, 0, 0)
    fast_non_local: tuple = (0, 0, 0, 0)
    non_local_cfg: NonLocalConfig = field(default_factory=NonLocalConfig)

    def __post_init__(self):
        _check_depth(self.depth)
        if self.channel_ratio < 1 or self.base_channels < self.channel_ratio:
            raise ValueError(f"base_channels: expected at least channel_ratio ({self.channel_ratio}) so that the fast "
                             f"path has channels, got {self.base_channels}")

    @classmethod
    def from_dict(cls, data: dict) -> "SlowFastConfig":
        data = dict(data)
        data["non_local_cfg"] = NonLocalConfig(**data.get("non_local_cfg", {}))
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)

    def slow_config(self) -> ResNet3dConfig:
        fast_base = self.base_channels // self.channel_ratio
        # Lateral conv i maps the fast stage output (c) to 2c channels, concatenated to the slow input of stage i+1.
        fast_outs = [fast_base] + [fast_base * 2 ** i * EXPANSION for i in range(3)]
        return ResNet3dConfig(
            depth=self.depth, base_channels=self.base_channels, conv1_kernel=(1, 7, 7),
            spatial_strides=self.spatial_strides, inflate=(0, 0, 1, 1), non_local=self.slow_non_local,
            non_local_cfg=self.non_local_cfg, lateral_in=tuple(2 * c for c in fast_outs))

    def fast_config(self) -> ResNet3dConfig:
        return ResNet3dConfig(
            depth=self.depth, base_channels=self.base_channels // self.channel_ratio, conv1_kernel=(5, 7, 7),
            spatial_strides=self.spatial_strides, inflate=(1, 1, 1, 1), non_local=self.fast_non_local,
            non_local_cfg=self.non_local_cfg)


def backbone_config_from_dict(kind: str, values: dict) -> "ResNet3dConfig | SlowFastConfig":
    """The backbone config of a model config's ``backbone_type`` (``slowonly`` or ``slowfast``) from its dict."""
    if kind == "slowonly":
        return ResNet3dConfig.from_dict(values)
    if kind == "slowfast":
        return SlowFastConfig.from_dict(values)
    raise ValueError(f"backbone_type must be 'slowonly' or 'slowfast', got {kind!r}")


class SlowFast(nn.Module):
    """Two-pathway network: ``(N, 3, T, H, W)`` -> ``(slow (N, 2048, T/rr, H/16, W/16), fast (N, 256, ...))``.

    Lateral connections (time-strided ``(k,1,1)`` convs, no BN, no bias) feed the fast features into the slow path
    after the stem and after res2..res4; there is none after res5.
    """

    def __init__(self, cfg: SlowFastConfig | None = None):
        super().__init__()
        cfg = cfg or SlowFastConfig()
        self.cfg = cfg
        self.slow_path = ResNet3d(cfg.slow_config())
        self.fast_path = ResNet3d(cfg.fast_config())
        fast_base = cfg.base_channels // cfg.channel_ratio
        fast_outs = [fast_base] + [fast_base * 2 ** i * EXPANSION for i in range(3)]
        # conv1 and every stage but the last feed the slow path: one lateral per stage in all.
        names = ["conv1_lateral", "layer1_lateral", "layer2_lateral", "layer3_lateral"][:len(cfg.spatial_strides)]
        self.lateral_names = names
        for name, c in zip(names, fast_outs):
            conv = ConvBN(c, 2 * c, (cfg.fusion_kernel, 1, 1), stride=(cfg.speed_ratio, 1, 1),
                          padding=((cfg.fusion_kernel - 1) // 2, 0, 0), norm=False, relu=False, bias=False)
            self.slow_path.add_module(name, conv)
        self.out_channels = (self.slow_path.out_channels, self.fast_path.out_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        cfg = self.cfg
        x_slow = F.interpolate(x, mode="nearest", scale_factor=(1.0 / cfg.resample_rate, 1.0, 1.0))
        x_fast = F.interpolate(x, mode="nearest",
                               scale_factor=(1.0 / (cfg.resample_rate // cfg.speed_ratio), 1.0, 1.0))
        x_slow = self.slow_path.stem(x_slow)
        x_fast = self.fast_path.stem(x_fast)
        x_slow = torch.cat([x_slow, self.slow_path.conv1_lateral(x_fast)], dim=1)
        last = len(self.slow_path.res_layers) - 1
        for i, name in enumerate(self.slow_path.res_layers):
            x_slow = getattr(self.slow_path, name)(x_slow)
            x_fast = getattr(self.fast_path, name)(x_fast)
            if i != last:
                lateral = getattr(self.slow_path, self.lateral_names[i + 1])
                x_slow = torch.cat([x_slow, lateral(x_fast)], dim=1)
        return x_slow, x_fast
