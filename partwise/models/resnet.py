"""2D ResNet (bottleneck, v1 layout) as the HAKE/TIN image models use it: a stride-16 trunk (conv1..layer3) on the
whole image and ``layer4`` applied to RoI crops.

Parameter names follow the common PyTorch layout (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``
...), which is also the layout of HAKE's ``resnet50.*`` keys.

Where a strided bottleneck puts its stride (the parameters are the same either way, so only a forward comparison
tells them apart): ``stride_in_1x1=True`` is the original ResNet layout (MSRA's Caffe models), which
HAKE-Action-Torch (Activity2Vec, TIN-Torch) uses -- the stride on the first 1x1 convolution (``conv1``), the 3x3 at
stride 1; ``stride_in_1x1=False`` is torchvision's "ResNet v1.5" layout, the stride on the 3x3 (``conv2``). Weights
trained in one layout give different features in the other (HAKE's pasta_res50 on the forward fixture of
``tests/fixtures/hake_originals``: PaSta and verb probabilities up to 0.28 off).
:func:`set_stride_in_1x1` switches a built network in place.
"""
from __future__ import annotations

import torch
from torch import nn


def fusable(conv: nn.Module, x: torch.Tensor) -> bool:
    """Whether :func:`conv_pointwise` may run ``conv`` on ``x``: a float32 CPU tensor, oneDNN present and enabled
    (``torch.backends.mkldnn``), and no autograd graph to build (the fused oneDNN op has no backward)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and conv.weight.dtype == torch.float32
            and _MKLDNN_POINTWISE is not None and torch.backends.mkldnn.enabled
            and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
            and not (torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad)))


def conv_pointwise(conv: nn.Module, x: torch.Tensor, relu: bool, residual: torch.Tensor | None = None) -> torch.Tensor:
    """``relu?(conv(x) [+ residual])`` for a Conv2d/Conv3d as one oneDNN call (bias, residual add and ReLU as
    post-ops), the fused form :func:`partwise.models.fuse.to_inference` switches modules to. Check
    :func:`fusable` first.

    Besides saving the separate add/ReLU passes over the activations, this always takes oneDNN: plain
    ``F.conv3d`` sends 1x1x1 and (3,1,1) convolutions to the slow im2col path when torch runs one thread.
    """
    args = (conv.weight, conv.bias, conv.padding, conv.stride, conv.dilation, conv.groups)
    if residual is None:
        return _MKLDNN_POINTWISE.default(x, *args, "relu" if relu else "none", [], "")
    return _MKLDNN_POINTWISE.binary(x, residual, *args, "add", 1.0, "relu" if relu else "none", [], "")


def _mkldnn_pointwise():
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._convolution_pointwise
    except (AttributeError, RuntimeError):  # a torch build without the oneDNN fusion ops
        return None


_MKLDNN_POINTWISE = _mkldnn_pointwise()


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1, stride_in_1x1: bool = False):
        super().__init__()
        out_channels = width * self.expansion
        self.stride = stride
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(in_channels, width, 1, stride=stride_1x1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride_3x3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels))
        #: set by :func:`partwise.models.fuse.to_inference` once the BNs are folded: oneDNN fused convolutions
        self.fused = False

    def set_stride_in_1x1(self, flag: bool) -> None:
        """Put this block's stride on ``conv1`` (True) or on ``conv2`` (False); nothing changes at stride 1."""
        s = self.stride
        self.conv1.stride, self.conv2.stride = ((s, s), (1, 1)) if flag else ((1, 1), (s, s))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused and fusable(self.conv1, x):
            return self._fused_forward(x)
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)

    def _fused_forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else conv_pointwise(self.downsample[0], x, relu=False)
        out = conv_pointwise(self.conv2, conv_pointwise(self.conv1, x, relu=True), relu=True)
        return conv_pointwise(self.conv3, out, relu=True, residual=identity)


class ResNet(nn.Module):
    """ResNet trunk without the classifier.

    ``stem_and_trunk(x (B,3,H,W)) -> (B, 1024, H/16, W/16)`` (conv1..layer3); ``layer4`` maps (K,1024,h,w) to
    (K, 2048, h/s, w/s) with ``s = res5_stride`` (1 keeps the RoI resolution, as detection heads usually do).
    """

    def __init__(self, layers: tuple[int, int, int, int] = (3, 4, 6, 3), res5_stride: int = 1,
                 stride_in_1x1: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = 64
        stages = []
        for index, (blocks, width, stride) in enumerate(zip(layers, (64, 128, 256, 512), (1, 2, 2, res5_stride))):
            stage = []
            for block in range(blocks):
                stage.append(Bottleneck(channels, width, stride if block == 0 else 1, stride_in_1x1))
                channels = width * Bottleneck.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages

    def stem_and_trunk(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.stem_and_trunk(x))


def resnet50(res5_stride: int = 1, stride_in_1x1: bool = False) -> ResNet:
    """ResNet-50 trunk; ``stride_in_1x1`` False (torchvision's layout) unless asked: HAKE's models ask for True."""
    return ResNet((3, 4, 6, 3), res5_stride, stride_in_1x1)


def set_stride_in_1x1(module: nn.Module, flag: bool = True) -> None:
    """Move the stride of every strided :class:`Bottleneck` in ``module`` to its 1x1 ``conv1`` (True) or its 3x3
    ``conv2`` (False), in place (for a network built in the other layout; weights are unaffected)."""
    for m in module.modules():
        if isinstance(m, Bottleneck):
            m.set_stride_in_1x1(flag)


def freeze_batchnorm(module: nn.Module) -> None:
    """Put every BatchNorm in eval mode with frozen affine parameters (detection-style fine-tuning)."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
            m.weight.requires_grad_(False)
            m.bias.requires_grad_(False)


class BasicBlock(nn.Module):
    """ResNet-18/34 residual block: two 3x3 convolutions (stride on the first), projection shortcut when the shape
    changes."""

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels))
        #: set by :func:`partwise.models.fuse.to_inference` once the BNs are folded: oneDNN fused convolutions
        self.fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused and fusable(self.conv1, x):
            identity = x if self.downsample is None else conv_pointwise(self.downsample[0], x, relu=False)
            return conv_pointwise(self.conv2, conv_pointwise(self.conv1, x, relu=True), relu=True, residual=identity)
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class BasicResNet(nn.Module):
    """ResNet-18-style trunk of :class:`BasicBlock` stages with a channel ``width`` (64 = the standard ResNet-18).

    ``forward(x (B, 3, H, W))`` -> list of the ``len(blocks)`` stage outputs; stage ``i`` (0-based) has
    ``width * 2**i`` channels at stride ``4 * 2**i`` (spatial sizes rounded up, as the convolutions pad).
    """

    def __init__(self, blocks: tuple[int, ...] = (2, 2, 2, 2), width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels, stages = width, []
        for index, count in enumerate(blocks):
            out_channels = width * 2**index
            stage = [BasicBlock(channels if b == 0 else out_channels, out_channels, 2 if (b == 0 and index) else 1)
                     for b in range(count)]
            channels = out_channels
            stages.append(nn.Sequential(*stage))
        self.stages = nn.ModuleList(stages)
        self.out_channels = [width * 2**i for i in range(len(blocks))]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs


def resnet18(width: int = 64, num_stages: int = 4) -> BasicResNet:
    """ResNet-18 (two BasicBlocks per stage) with ``width`` stem channels, keeping the first ``num_stages`` stages."""
    return BasicResNet((2, 2, 2, 2)[:num_stages], width)
