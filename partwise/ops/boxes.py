"""Axis-aligned box utilities on torch tensors.

Convention: ``xyxy`` = ``(x1, y1, x2, y2)`` with ``x2 >= x1``; width = ``x2 - x1`` and height = ``y2 - y1``
(continuous coordinates, no ``+1``); ``xywh`` = ``(x1, y1, w, h)``; ``cxcywh`` = ``(cx, cy, w, h)``.
All functions take boxes of shape ``(..., 4)`` unless stated and keep dtype and device.
"""
from __future__ import annotations

import torch
from torch import Tensor


def box_area(boxes: Tensor) -> Tensor:
    """Area of ``(..., 4)`` xyxy boxes -> ``(...)``; degenerate boxes (``x2 < x1`` or ``y2 < y1``) have area 0."""
    w = (boxes[..., 2] - boxes[..., 0]).clamp(min=0)
    h = (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    return w * h


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes -> ``(N, M)``.

    A pair whose union is 0 (two empty boxes) has IoU 0 rather than NaN.
    """
    area1 = box_area(boxes1)
    area2 = box_area(boxes2)
    lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(inter.dtype).tiny), torch.zeros_like(inter))


def xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """``(x1, y1, x2, y2)`` -> ``(x1, y1, w, h)``."""
    return torch.cat([boxes[..., :2], boxes[..., 2:] - boxes[..., :2]], dim=-1)


def xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``(x1, y1, w, h)`` -> ``(x1, y1, x2, y2)``."""
    return torch.cat([boxes[..., :2], boxes[..., :2] + boxes[..., 2:]], dim=-1)


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """``(x1, y1, x2, y2)`` -> ``(cx, cy, w, h)``."""
    wh = boxes[..., 2:] - boxes[..., :2]
    return torch.cat([boxes[..., :2] + wh / 2, wh], dim=-1)


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``(cx, cy, w, h)`` -> ``(x1, y1, x2, y2)``."""
    half = boxes[..., 2:] / 2
    return torch.cat([boxes[..., :2] - half, boxes[..., :2] + half], dim=-1)


def clip_boxes(boxes: Tensor, height: float, width: float) -> Tensor:
    """Clamp xyxy boxes into the image ``[0, width] x [0, height]`` (pixel coordinates; use 1, 1 for normalized)."""
    x = boxes[..., 0::2].clamp(0, width)
    y = boxes[..., 1::2].clamp(0, height)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)
