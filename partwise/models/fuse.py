"""Inference-time rewrites of partwise models: BatchNorm folding, channels-last layout, optional ``torch.compile``.

What a deployment does to a trained network, done here once after loading:

* :func:`fold_batchnorm`: every BatchNorm that directly follows a convolution or linear layer (eval-mode running
  statistics) is folded into that layer's weight and bias, ``w' = w * g / sqrt(var + eps)``,
  ``b' = (b - mean) * g / sqrt(var + eps) + beta``, and removed. Only pairs whose adjacency is guaranteed are folded:
  :class:`~partwise.models.resnet3d.ConvBN` (``conv`` -> ``bn``), the 2D ResNet blocks of
  :mod:`partwise.models.resnet` (``convN`` -> ``bnN``, stem ``conv1`` -> ``bn1``), ST-Activity2Vec's PaSta heads
  (``fc1`` -> ``bn``) and consecutive ``(Conv/Linear, BatchNorm)`` entries of an ``nn.Sequential``.
* :func:`to_channels_last`: convolution weights in ``channels_last_3d`` (Conv3d) / ``channels_last`` (Conv2d).
  oneDNN then runs each convolution in NDHWC, and its output stays channels-last, so the input needs no conversion.
* :func:`fuse_pointwise`: the folded blocks run as oneDNN convolutions with bias, residual add and ReLU fused
  (also keeps 1x1x1 and (3,1,1) convolutions on oneDNN, which ``F.conv3d`` leaves to the slow im2col path at
  one thread).

  SlowOnly-R50 8x8 detector, 1x3x8x256x256 clip, one thread, torch 2.13 CPU (AVX-512), forward CPU seconds:
  unfused 2.6, folded 2.3, + fused oneDNN 1.95, + channels-last 1.6 (``benchmarks/models.py``).
* :func:`to_inference`: all of these, in eval mode, plus the AVA detector's fused RoI head
  (:meth:`partwise.models.ava_detector.AVADetector.fuse_roi_head`) and optionally ``torch.compile``.

All functions return a new module and leave their argument untouched unless ``inplace=True`` (the loaders use that
to avoid holding two copies of the weights). A folded module keeps its class and attributes (``cfg``, ``config``,
``predict`` ...), so callers use it exactly as before; its state dict lacks the folded BatchNorm entries, so save
the unfolded model, never the folded one. Folding is for inference only: a folded copy in training mode would no
longer normalise by batch statistics, so :func:`fold_batchnorm` puts the result in eval mode.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from partwise.models import resnet, resnet3d

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

#: ``(layer attribute, BatchNorm attribute)`` pairs whose forward applies the BN directly to the layer's output.
_NAMED_PAIRS: dict[type, tuple[tuple[str, str], ...]] = {
    resnet.Bottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
    resnet.BasicBlock: (("conv1", "bn1"), ("conv2", "bn2")),
    resnet.ResNet: (("conv1", "bn1"),),
    resnet.BasicResNet: (("conv1", "bn1"),),
}


def _named_pairs(module: nn.Module) -> tuple[tuple[str, str], ...]:
    pairs = _NAMED_PAIRS.get(type(module), ())
    if not pairs:
        # imported lazily: st_activity2vec pulls in the RoIAlign ops, which the 3D/2D ResNets do not need
        from partwise.models.st_activity2vec import PastaHead

        if type(module) is PastaHead:
            pairs = (("fc1", "bn"),)
    return pairs


@torch.no_grad()
def fold_into(layer: nn.Module, bn: nn.Module) -> None:
    """Fold ``bn`` (eval mode: running statistics) into ``layer`` (Conv1d/2d/3d or Linear), in place.

    The output channel of ``layer`` (weight dim 0) is the BN's channel. ``layer`` gains a bias if it had none.
    Computed in float64 and cast back, so the folded layer matches ``bn(layer(x))`` to float32 rounding.
    """
    if not isinstance(layer, _FOLDABLE) or not isinstance(bn, _BN):
        raise TypeError(f"cannot fold {type(bn).__name__} into {type(layer).__name__}")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics (track_running_stats=False)")
    if layer.weight.shape[0] != bn.num_features:
        raise ValueError(f"BatchNorm of {bn.num_features} channels after a layer of {layer.weight.shape[0]} outputs")
    dtype = layer.weight.dtype
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    bias = layer.bias.double() * scale + shift if layer.bias is not None else shift
    view = (-1,) + (1,) * (layer.weight.dim() - 1)
    layer.weight.copy_((layer.weight.double() * scale.view(view)).to(dtype))
    if layer.bias is None:
        layer.bias = nn.Parameter(bias.to(dtype), requires_grad=layer.weight.requires_grad)
    else:
        layer.bias.copy_(bias.to(dtype))


def _fold_children(module: nn.Module) -> int:
    """Fold the known (layer, BN) pairs among ``module``'s direct children, in place; returns how many."""
    folded = 0
    if isinstance(module, resnet3d.ConvBN):
        if module.bn is not None:
            fold_into(module.conv, module.bn)
            module.bn = None  # ConvBN.forward skips a missing BN
            folded += 1
        return folded
    for layer_name, bn_name in _named_pairs(module):
        layer, bn = getattr(module, layer_name), getattr(module, bn_name)
        if isinstance(layer, _FOLDABLE) and isinstance(bn, _BN):
            fold_into(layer, bn)
            setattr(module, bn_name, nn.Identity())
            folded += 1
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        for a, b in zip(names, names[1:]):
            layer, bn = module._modules[a], module._modules[b]
            if isinstance(layer, _FOLDABLE) and isinstance(bn, _BN):
                fold_into(layer, bn)
                module._modules[b] = nn.Identity()  # keeps the indices of the later entries
                folded += 1
    return folded


def fold_batchnorm(module: nn.Module, inplace: bool = False) -> nn.Module:
    """``module`` with every BatchNorm that directly follows a conv/linear layer folded into it, in eval mode.

    Returns a deep copy (``inplace=False``) or ``module`` itself. BatchNorms that cannot be folded (none of the
    known patterns) stay as they are. The number of folded BatchNorms is stored as ``folded_batchnorms``.
    """
    model = module if inplace else copy.deepcopy(module)
    model.eval()
    folded = sum(_fold_children(m) for m in list(model.modules()))
    model.folded_batchnorms = folded
    return model


@torch.no_grad()
def to_channels_last(module: nn.Module, inplace: bool = False) -> nn.Module:
    """``module`` with Conv3d weights in ``channels_last_3d`` and Conv2d weights in ``channels_last``.

    Parameters stay the same values and shapes (only their strides change), so state dicts and outputs are as
    before; outputs of the convolutions come out channels-last (``.contiguous()`` restores the default layout).
    """
    model = module if inplace else copy.deepcopy(module)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            fmt = torch.channels_last_3d if isinstance(m, nn.Conv3d) else torch.channels_last
            m.weight.data = m.weight.data.contiguous(memory_format=fmt)
    return model


def _bn_free(*modules: nn.Module | None) -> bool:
    return all(not isinstance(m, _BN) for m in modules)


def fuse_pointwise(module: nn.Module, inplace: bool = False) -> nn.Module:
    """Switch the blocks whose BatchNorms are folded (see :func:`fold_batchnorm`) to oneDNN convolutions with the
    bias, residual add and ReLU fused as post-ops (:func:`partwise.models.resnet.conv_pointwise`): every BN-free
    :class:`~partwise.models.resnet3d.ConvBN`, and the 3D/2D bottlenecks and 2D basic blocks whose BNs are all
    folded. Blocks fall back to their plain forward where the fused op cannot run (not float32 on the CPU, no
    oneDNN, or autograd needs a graph), so this never changes results beyond float rounding.
    """
    model = module if inplace else copy.deepcopy(module)
    for m in model.modules():
        if isinstance(m, resnet3d.ConvBN):
            m.fused = m.bn is None
        elif isinstance(m, resnet3d.Bottleneck3d):
            m.fused = m.conv3.bn is None
        elif isinstance(m, resnet.Bottleneck):
            m.fused = _bn_free(m.bn1, m.bn2, m.bn3, *(m.downsample or ()))
        elif isinstance(m, resnet.BasicBlock):
            m.fused = _bn_free(m.bn1, m.bn2, *(m.downsample or ()))
    return model


def to_inference(model: nn.Module, channels_last: bool = True, compile: bool = False,
                 inplace: bool = False) -> nn.Module:
    """The deployment form of a loaded model: eval mode, BatchNorm folded (:func:`fold_batchnorm`), fused oneDNN
    convolutions (:func:`fuse_pointwise`), convolution weights channels-last (:func:`to_channels_last`, with
    ``channels_last=True``), the AVA detector's RoI extractor and head fused
    (:meth:`~partwise.models.ava_detector.AVADetector.fuse_roi_head`), and with ``compile=True`` the backbone's
    forward (the model's, for a model without a ``backbone``) wrapped by ``torch.compile`` (inductor; the first call
    of each new input shape compiles, minutes on a loaded CPU, and needs a C++ compiler). torch 2.13 CPU compiles
    and runs it with the same outputs, but it was no faster than the eager fused form here, so it stays off.

    Same class, attributes and call signature as ``model``; outputs equal the eval-mode outputs of ``model`` up to
    float32 rounding (~1e-5 relative). Do not train or save the result (its state dict lacks the folded BNs).
    """
    from partwise.models.ava_detector import AVADetector

    out = fold_batchnorm(model, inplace=inplace)
    fuse_pointwise(out, inplace=True)
    if channels_last:
        to_channels_last(out, inplace=True)
    for m in out.modules():
        if isinstance(m, AVADetector):
            m.fuse_roi_head()
    if compile:
        # the backbone only: the RoI stages check their boxes in Python (data-dependent graph breaks) and are cheap
        target = out.backbone if isinstance(getattr(out, "backbone", None), nn.Module) else out
        target.forward = torch.compile(target.forward, dynamic=False)
    return out
