"""Clip resizing shared by training, the video classifier and ``partwise run``: one rule for the short side and
one resampling (bilinear, antialiased), so a model sees at inference the pixels it was trained on."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resize_clip(frames: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 -> ``(3, T, h, w)`` float32 (0..255) resized bilinearly to ``size = (h, w)``."""
    # .float() copies anyway; going through a writable view keeps torch from warning about read-only caches
    frames = np.ascontiguousarray(frames)
    if not frames.flags.writeable:
        frames = frames.copy()
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    if clip.shape[-2:] != size:
        clip = F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=True)
    return clip.permute(1, 0, 2, 3).contiguous()


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """(h, w) with the short side ``short`` and the aspect ratio kept (rounded like mmcv ``rescale_size``)."""
    scale = short / min(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)
