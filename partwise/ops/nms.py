"""Greedy non-maximum suppression.

Semantics: boxes are visited by score, highest first (ties keep their input order: the sort is stable); a box is
kept unless a box kept before it overlaps it with IoU strictly greater than ``iou_threshold``. So a pair with IoU
exactly at the threshold both survive.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from partwise.ops.boxes import box_iou


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices (int64, into ``boxes``) of the boxes kept, in decreasing score order.

    ``boxes``: ``(N, 4)`` xyxy; ``scores``: ``(N,)``. Memory is ``O(N^2)`` (the IoU matrix).
    """
    return _greedy_nms(boxes, scores, None, iou_threshold)


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float) -> Tensor:
    """NMS independently within each group id (e.g. class or image); indices kept, in decreasing score order.

    ``groups``: ``(N,)`` integer ids; boxes of different groups never suppress each other.
    """
    return _greedy_nms(boxes, scores, groups, iou_threshold)


def _greedy_nms(boxes: Tensor, scores: Tensor, groups: Tensor | None, iou_threshold: float) -> Tensor:
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_boxes = boxes[order]
    over = box_iou(sorted_boxes, sorted_boxes) > iou_threshold
    if groups is not None:
        g = groups[order]
        over &= g[:, None] == g[None, :]
    # The greedy pass is sequential by nature; on a numpy bool matrix each step is one vector operation.
    over = over.cpu().numpy()
    n = len(order)
    suppressed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed[i + 1:] |= over[i, i + 1:]
    return order[torch.as_tensor(keep, dtype=torch.int64, device=order.device)]
