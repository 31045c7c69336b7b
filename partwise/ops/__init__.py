"""Tensor operations shared by the models: boxes, NMS, RoIAlign (2D/3D) and temporal pooling.

Boxes are ``(x1, y1, x2, y2)`` in pixels unless a function says otherwise; width is ``x2 - x1`` (no ``+1``).
"""
from partwise.ops.boxes import (
    box_area,
    box_iou,
    clip_boxes,
    cxcywh_to_xyxy,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)
from partwise.ops.nms import batched_nms, nms
from partwise.ops.pooling import temporal_pool
from partwise.ops.roi_align import roi_align, roi_align_3d

__all__ = [
    "batched_nms", "box_area", "box_iou", "clip_boxes", "cxcywh_to_xyxy", "nms", "roi_align", "roi_align_3d",
    "temporal_pool", "xywh_to_xyxy", "xyxy_to_cxcywh", "xyxy_to_xywh",
]
