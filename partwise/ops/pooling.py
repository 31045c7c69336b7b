"""Temporal pooling of video feature maps."""
from __future__ import annotations

from torch import Tensor


def temporal_pool(features: Tensor, mode: str = "avg", keepdim: bool = True) -> Tensor:
    """Pool ``(N, C, T, H, W)`` over ``T`` -> ``(N, C, 1, H, W)`` (``keepdim``) or ``(N, C, H, W)``.

    ``mode``: ``"avg"`` (mean) or ``"max"``.
    """
    if features.dim() != 5:
        raise ValueError(f"temporal_pool expects (N, C, T, H, W), got shape {tuple(features.shape)}")
    if mode == "avg":
        return features.mean(dim=2, keepdim=keepdim)
    if mode == "max":
        return features.amax(dim=2, keepdim=keepdim)
    raise ValueError(f"temporal pool mode must be 'avg' or 'max', got {mode!r}")
