"""MobileNetV3 CenterNet, a COCO-80 object detector (TF.js graph model ``centernet``, installed with
``partwise weights install centernet``): the original preprocessing and the decoding of its detections.

Input float32 ``(1, 512, 512, 3)``: the RGB image resized to 512 x 512 with TF's *legacy* bilinear rule, values
0..255, no normalisation and no padding (the aspect ratio is not kept). Outputs: ``tower_0/detections``
``(1, 100, 6)`` = ``x1, y1, x2, y2`` in input pixels, score, class ``0..79`` (COCO-80 order, vocabulary
``coco80``: 0 person, 32 sports_ball); ``tower_0/keypoints`` ``(1, 128, 128, 80)`` class heatmaps (sigmoid);
``tower_0/wh`` ``(1, 128, 128, 4)``. The original (``@vladmandic/human``) then keeps the detections with score
> 0.2 after class-agnostic NMS at IoU 0.4, at most 10: the defaults of :func:`decode`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from partwise.models.movenet import as_rgb
from partwise.ops.nms import batched_nms, nms
from partwise.ops.tf import resize_bilinear

INPUT_SIZE = 512
DETECTIONS = "tower_0/detections"
PERSON = 0
SPORTS_BALL = 32


def preprocess(rgb: np.ndarray) -> Tensor:
    """The float32 ``(1, 512, 512, 3)`` tensor the original feeds CenterNet for an ``(H, W, 3)`` uint8 image."""
    image = torch.from_numpy(np.ascontiguousarray(as_rgb(rgb)))[None]
    return resize_bilinear(image, (INPUT_SIZE, INPUT_SIZE))


@dataclass
class Objects:
    """Objects found in one image: ``boxes`` ``(K, 4)`` xyxy image pixels, ``scores``, ``classes`` (COCO-80
    index) and ``names``."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, keep) -> "Objects":
        keep = np.asarray(keep, dtype=np.int64)
        return Objects(self.boxes[keep], self.scores[keep], self.classes[keep], [self.names[i] for i in keep])


def decode(detections: Tensor | np.ndarray, image_size: tuple[int, int], min_score: float = 0.2,
           iou_threshold: float = 0.4, max_detections: int = 10, class_agnostic: bool = True) -> Objects:
    """``tower_0/detections`` ``(1, 100, 6)`` -> objects in the pixels of an image of ``image_size = (width,
    height)``: score > ``min_score``, greedy NMS (suppress IoU > ``iou_threshold``; across classes unless
    ``class_agnostic`` is False), best first, at most ``max_detections``."""
    from partwise import vocab

    det = torch.as_tensor(np.asarray(detections, dtype=np.float32)).reshape(-1, 6)
    det = det[det[:, 4] > min_score]
    boxes, scores, classes = det[:, :4], det[:, 4], det[:, 5].round().long()
    keep = nms(boxes, scores, iou_threshold) if class_agnostic else batched_nms(boxes, scores, classes,
                                                                                iou_threshold)
    keep = keep[:max_detections]
    width, height = image_size
    scale = torch.tensor([width, height, width, height], dtype=torch.float64) / INPUT_SIZE
    pixel_boxes = (boxes[keep].double() * scale).numpy()
    names = vocab.load("coco80").names
    cls = classes[keep].numpy()
    return Objects(pixel_boxes, scores[keep].double().numpy(), cls, [names[c] for c in cls])


class CenterNet:
    """The CenterNet graph with its preprocessing and decoding: ``CenterNet.load().detect(rgb)``."""

    def __init__(self, graph):
        self.graph = graph

    @classmethod
    def load(cls, spec: str = "centernet") -> "CenterNet":
        from partwise.models.tfjs import load_graph_model
        from partwise.models.weights import resolve

        path, _ = resolve(spec, "--objects")
        return cls(load_graph_model(path))

    def detect(self, rgb: np.ndarray, **decode_options) -> Objects:
        rgb = as_rgb(rgb)
        out = self.graph(preprocess(rgb))
        return decode(out[DETECTIONS], (rgb.shape[1], rgb.shape[0]), **decode_options)
