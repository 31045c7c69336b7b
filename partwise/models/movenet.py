"""Google's MoveNet (TF.js graph models run by :mod:`partwise.models.tfjs`): preprocessing as the original feeds it,
and decoding of its outputs into people in image pixels.

* **MultiPose Lightning** (``movenet-multipose``, embedded in partwise): up to 6 people per image in one pass.
  Input int32 ``(1, H, W, 3)``, ``H`` and ``W`` any multiples of 32. Output ``Identity`` ``(1, 6, 56)``: per
  candidate 17 x ``(y, x, score)``, then ``ymin, xmin, ymax, xmax, score``, normalized to the input image.
* **SinglePose Thunder / Lightning** (``movenet-thunder`` 256 px, ``movenet-lightning`` 192 px; installed with
  ``partwise weights install``): one person in a crop. Output ``(1, 1, 17, 3)`` ``(y, x, score)`` normalized to the
  crop.

The original preprocessing (``@vladmandic/human`` 3.x) pads the shorter side with zeros by ``trunc(|W - H| / 2)`` on
each side, resizes to the model size with TF's *legacy* bilinear rule and truncates to int32; :func:`preprocess`
reproduces it bit for bit (MoveNet is sensitive: 0.1% of input values off by one moves outputs by up to 0.015).

Keypoints are COCO-17 (:data:`KEYPOINTS`), returned as ``(17, 3)`` ``[x, y, score]`` in image pixels -- the layout
the rest of partwise uses (:mod:`partwise.models.pose_parts`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from partwise.ops.tf import resize_bilinear

KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
             "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
             "right_knee", "left_ankle", "right_ankle")
#: MultiPose returns this many candidates, always (low scores = nobody).
MULTIPOSE_SLOTS = 6


@dataclass(frozen=True)
class Frame:
    """Where the model input sits in the image: the image was padded by ``pad_y`` rows above (and below) and
    ``pad_x`` columns left (and right) to ``padded = (height, width)``, then resized to ``size = (height,
    width)``. Normalized model coordinates map back as ``x = u * padded_w - pad_x``."""

    pad_y: int
    pad_x: int
    padded: tuple[int, int]
    size: tuple[int, int]

    def to_pixels(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return y * self.padded[0] - self.pad_y, x * self.padded[1] - self.pad_x


def as_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` gray or ``(H, W, 3|4)`` uint8 -> ``(H, W, 3)`` (alpha dropped, gray repeated)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")
    return image[:, :, :3]


def square_padding(height: int, width: int) -> tuple[int, int]:
    """``(pad_y, pad_x)`` the original adds on each side: ``trunc(|W - H| / 2)`` to the shorter side."""
    diff = abs(width - height) // 2
    return (diff, 0) if width > height else (0, diff)


def preprocess(rgb: np.ndarray, size: int | tuple[int, int] | None = 256) -> tuple[Tensor, Frame]:
    """The int32 ``(1, S, S, 3)`` tensor the original feeds MoveNet for an ``(H, W, 3)`` uint8 image, and where it
    sits in the image.

    ``size``: the model input side (256 for MultiPose and Thunder, 192 for Lightning); ``None`` keeps the padded
    image's own size (no resize: MultiPose at native resolution; the padded side must then be a multiple of 32,
    see :func:`native_size`).
    """
    rgb = as_rgb(rgb)
    height, width = rgb.shape[:2]
    pad_y, pad_x = square_padding(height, width)
    padded = np.zeros((height + 2 * pad_y, width + 2 * pad_x, 3), dtype=np.int32)
    padded[pad_y:pad_y + height, pad_x:pad_x + width] = rgb
    out_size = padded.shape[:2] if size is None else ((size, size) if isinstance(size, int) else tuple(size))
    tensor = torch.from_numpy(padded)[None]
    if tuple(out_size) != padded.shape[:2]:
        tensor = resize_bilinear(tensor, out_size).to(torch.int32)  # float -> int32 truncates, as tf.cast does
    return tensor, Frame(pad_y, pad_x, padded.shape[:2], tuple(out_size))


def preprocess_native(rgb: np.ndarray, multiple: int = 32, max_side: int = 1024) -> tuple[Tensor, Frame]:
    """MultiPose input at the image's own resolution without squaring it: scaled down only when its longer side
    exceeds ``max_side``, then zero-padded below and to the right to multiples of ``multiple`` (the graph takes
    any). A 768x576 frame costs 576/768 of the square input's time and finds the same people."""
    rgb = as_rgb(rgb)
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    image = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.int32))[None]
    if (h, w) != (height, width):
        image = resize_bilinear(image, (h, w)).to(torch.int32)
    size = (-(-h // multiple) * multiple, -(-w // multiple) * multiple)
    tensor = torch.zeros((1, *size, 3), dtype=torch.int32)
    tensor[:, :h, :w] = image
    return tensor, Frame(0, 0, (size[0] * height / h, size[1] * width / w), size)


def native_size(height: int, width: int, multiple: int = 32, max_side: int = 1024) -> int:
    """Input side for MultiPose at (about) the image's own resolution: the padded square's side rounded up to a
    multiple of ``multiple``, at most ``max_side`` (very large frames are scaled down)."""
    side = max(height, width)
    side = -(-side // multiple) * multiple
    return min(side, max_side - max_side % multiple)


@dataclass
class People:
    """People found in one image: ``boxes`` ``(K, 4)`` xyxy pixels, ``scores`` ``(K,)``, ``keypoints``
    ``(K, 17, 3)`` ``[x, y, score]`` pixels."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, keep) -> "People":
        return People(self.boxes[keep], self.scores[keep], self.keypoints[keep])

    @classmethod
    def empty(cls) -> "People":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 17, 3)))


def decode_multipose(identity: Tensor | np.ndarray, frame: Frame, min_score: float = 0.0) -> People:
    """MultiPose ``Identity`` ``(1, 6, 56)`` -> the candidates with person score > ``min_score``, in image pixels,
    best first."""
    out = np.asarray(identity, dtype=np.float64).reshape(-1, 56)
    kp = out[:, :51].reshape(-1, 17, 3)
    ky, kx = frame.to_pixels(kp[:, :, 0], kp[:, :, 1])
    keypoints = np.stack([kx, ky, kp[:, :, 2]], axis=-1)
    y1, x1 = frame.to_pixels(out[:, 51], out[:, 52])
    y2, x2 = frame.to_pixels(out[:, 53], out[:, 54])
    people = People(np.stack([x1, y1, x2, y2], axis=1), out[:, 55], keypoints)
    keep = np.flatnonzero(people.scores > min_score)
    return people.select(keep[np.argsort(-people.scores[keep], kind="stable")])


@dataclass(frozen=True)
class Crop:
    """A square crop of side ``side`` pixels whose top-left corner is ``(x0, y0)`` in the image (may lie outside:
    the outside is zero), resized to ``size`` x ``size``."""

    x0: float
    y0: float
    side: float
    size: int


def crop_window(box, margin: float = 0.25) -> tuple[float, float, float]:
    """Square ``(x0, y0, side)`` centred on an xyxy ``box``, its side the box's longer side enlarged by ``margin``
    on each side (SinglePose wants the whole person with some context)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    return (x1 + x2) / 2 - side / 2, (y1 + y2) / 2 - side / 2, side


def preprocess_crop(rgb: np.ndarray, box, size: int = 256, margin: float = 0.25) -> tuple[Tensor, Crop]:
    """SinglePose input for one person box: the square window of :func:`crop_window` (zero outside the image),
    resized with TF's legacy bilinear rule to ``size`` and truncated to int32."""
    rgb = as_rgb(rgb)
    height, width = rgb.shape[:2]
    x0, y0, side = crop_window(box, margin)
    ix0, iy0, iside = int(np.floor(x0)), int(np.floor(y0)), max(1, int(np.ceil(side)))
    window = np.zeros((iside, iside, 3), dtype=np.float32)
    sx0, sy0 = max(ix0, 0), max(iy0, 0)
    sx1, sy1 = min(ix0 + iside, width), min(iy0 + iside, height)
    if sx1 > sx0 and sy1 > sy0:
        window[sy0 - iy0:sy1 - iy0, sx0 - ix0:sx1 - ix0] = rgb[sy0:sy1, sx0:sx1]
    tensor = resize_bilinear(torch.from_numpy(window)[None], (size, size)).to(torch.int32)
    return tensor, Crop(float(ix0), float(iy0), float(iside), size)


def decode_singlepose(output: Tensor | np.ndarray, crop: Crop) -> np.ndarray:
    """SinglePose ``(1, 1, 17, 3)`` ``(y, x, score)`` normalized to the crop -> ``(17, 3)`` ``[x, y, score]``
    image pixels."""
    kp = np.asarray(output, dtype=np.float64).reshape(17, 3)
    return np.stack([kp[:, 1] * crop.side + crop.x0, kp[:, 0] * crop.side + crop.y0, kp[:, 2]], axis=1)


class MoveNet:
    """A MoveNet graph with its preprocessing and decoding.

    ``MoveNet.load("movenet-multipose")`` (embedded) or ``"movenet-thunder"`` / ``"movenet-lightning"`` (after
    ``partwise weights install``), or a path to a ``.json``; ``detect(rgb)`` for MultiPose, ``refine(rgb, boxes)``
    for SinglePose crops.
    """

    def __init__(self, graph, input_size: int, multipose: bool):
        self.graph = graph
        self.input_size = input_size
        self.multipose = multipose

    @classmethod
    def load(cls, spec: str = "movenet-multipose") -> "MoveNet":
        from partwise.models.tfjs import load_graph_model
        from partwise.models.weights import resolve

        path, _ = resolve(spec, "--pose")
        graph = load_graph_model(path)
        shape = next(iter(graph.input_specs.values()))[1]
        input_size = shape[1] if len(shape) == 4 and shape[1] > 0 else 256
        # MultiPose's output is (1, 6, 56); SinglePose's (1, 1, 17, 3).
        multipose = (graph.output_shapes.get("Identity") or [0])[-1] == 56
        return cls(graph, input_size, multipose)

    def detect(self, rgb: np.ndarray, size: int | str | None = None, min_score: float = 0.0,
               max_side: int = 1024) -> People:
        """MultiPose on a whole image. ``size``: None for the original's 256 square, an int for another square side
        (a multiple of 32), ``"native"`` for the image's own resolution (:func:`preprocess_native`)."""
        if not self.multipose:
            raise ValueError("detect() needs MoveNet MultiPose; SinglePose models refine person boxes (refine())")
        if size == "native":
            tensor, frame = preprocess_native(rgb, max_side=max_side)
        else:
            tensor, frame = preprocess(rgb, size or self.input_size)
        return decode_multipose(self.graph(tensor)["Identity"], frame, min_score)

    def refine(self, rgb: np.ndarray, boxes, margin: float = 0.25) -> np.ndarray:
        """SinglePose keypoints ``(K, 17, 3)`` for each xyxy box (one crop per box)."""
        out = np.zeros((len(boxes), 17, 3))
        for i, box in enumerate(boxes):
            tensor, crop = preprocess_crop(rgb, box, self.input_size, margin)
            out[i] = decode_singlepose(next(iter(self.graph(tensor).values())), crop)
        return out

