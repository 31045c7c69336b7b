"""``partwise run``'s first stage: what to process and which frames -- inputs (videos and images), person boxes
from a file, keyframes, and frame access (decoded once per group of keyframes, or the whole video once when its
frames are kept for the annotated video).

Hand-offs: :class:`InputItem` (one input), ``{video_id: {timestamp: (N, 5)}}`` boxes, :class:`Keyframe` (seconds,
reported time, 0-based frame index), :class:`_Frames` (``read(indices) -> (T, H, W, 3)`` uint8 RGB).
See :mod:`partwise.infer.pipeline` for the whole run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from partwise.errors import ConfigError, InputError

if TYPE_CHECKING:
    from partwise.infer.pipeline import RunOptions

# what cameras, phones and datasets write (camcorders: MPEG-TS .mts/.m2ts; old phones: .3gp), in any letter case
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".3gp",
                    ".flv", ".wmv", ".ogv")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
AVA_TIMESTAMP_START = 900.0


@dataclass(frozen=True)
class InputItem:
    """One thing to process: ``kind`` ``video`` or ``image``; ``video_id`` is the file stem (images: file name)."""

    path: Path
    video_id: str
    kind: str


def discover_inputs(path: str | os.PathLike) -> list[InputItem]:
    """Videos and images at ``path`` (a file, or a folder scanned non-recursively, sorted by name).

    Raises :class:`ConfigError` when nothing usable is found or two inputs share a video id."""
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        raise ConfigError(f"{path}: no such file or folder")
    items = []
    for file in files:
        suffix = file.suffix.lower()
        if suffix in VIDEO_EXTENSIONS:
            items.append(InputItem(file, file.stem, "video"))
        elif suffix in IMAGE_EXTENSIONS:
            items.append(InputItem(file, file.name, "image"))
        elif path.is_file():
            raise ConfigError(f"{path}: not a video ({', '.join(VIDEO_EXTENSIONS)}) or image "
                              f"({', '.join(IMAGE_EXTENSIONS)}) file")
    if not items:
        raise ConfigError(f"{path}: no videos or images found")
    seen: dict[str, Path] = {}
    for item in items:
        if item.video_id in seen:
            raise ConfigError(f"{item.path} and {seen[item.video_id]} would share the video id {item.video_id!r}")
        seen[item.video_id] = item.path
    return items


# --------------------------------------------------------------------------------------------------------------
# Person boxes from a file


def load_boxes(path: str | os.PathLike) -> dict[str, dict[float, np.ndarray]]:
    """``{video_id: {timestamp: (N, 5) [x1, y1, x2, y2, score]}}`` (normalized boxes) from an AVA CSV (one box per
    distinct box; ground truth gets score 1) or a dense-proposals ``.pkl`` (restricted unpickler)."""
    from partwise.data import ava

    path = Path(path)
    out: dict[str, dict[float, np.ndarray]] = {}
    if path.suffix == ".pkl":
        for key, array in ava.read_proposals(path).items():
            vid, ts = key.split(",")
            try:
                out.setdefault(vid, {})[float(ts)] = np.asarray(array, np.float64)
            except ValueError:
                raise InputError(path, key, f"timestamp {ts!r} is not a number") from None
        return out
    if path.suffix != ".csv":
        raise ConfigError(f"--boxes {path}: expected an AVA .csv or a proposals .pkl")
    table = ava.read_csv(path)
    has_box = ~np.isnan(table.boxes).any(axis=1)
    scores = np.where(np.isnan(table.score), 1.0, table.score) if table.kind == "det" else np.ones(len(table))
    vids = table.video_ids
    rows = np.column_stack([table.video_codes, table.timestamp, table.boxes, scores])[has_box]
    # One row per (person, action): keep each distinct box of a keyframe once, with its highest score.
    order = np.lexsort((-rows[:, 6], rows[:, 5], rows[:, 4], rows[:, 3], rows[:, 2], rows[:, 1], rows[:, 0]))
    rows, names = rows[order], vids[has_box][order]
    _, first = np.unique(rows[:, :6], axis=0, return_index=True)
    for i in np.sort(first):
        out.setdefault(str(names[i]), {}).setdefault(float(rows[i, 1]), []).append(rows[i, 2:7])
    return {vid: {ts: np.asarray(b) for ts, b in frames.items()} for vid, frames in out.items()}


def select_boxes(boxes: np.ndarray, threshold: float, nms_iou: float, max_people: int) -> np.ndarray:
    """Rows of ``(N, 5)`` ``[x1, y1, x2, y2, score]`` scoring at least ``threshold``, NMS at ``nms_iou``, the best
    ``max_people``, in decreasing score order."""
    import torch

    from partwise.ops.nms import nms

    boxes = np.asarray(boxes, np.float64).reshape(-1, 5)
    boxes = boxes[boxes[:, 4] >= threshold]
    if len(boxes) == 0:
        return boxes
    keep = nms(torch.from_numpy(boxes[:, :4]), torch.from_numpy(boxes[:, 4]), nms_iou).numpy()
    return boxes[keep[:max_people]]


# --------------------------------------------------------------------------------------------------------------
# Keyframes


@dataclass
class Keyframe:
    seconds: float  # into the video
    time_s: float  # as reported (timestamp_start + seconds)
    frame_index: int


def keyframes_for(num_frames: int, video_fps: float, options: RunOptions,
                  box_times: list[float] | None) -> tuple[list[Keyframe], float]:
    """Keyframes of a video (see the module docstring) and the timestamp start used."""
    duration = num_frames / video_fps if video_fps else 0.0
    start = options.timestamp_start
    if box_times is not None:
        if start is None:
            start = AVA_TIMESTAMP_START if box_times and min(box_times) >= max(AVA_TIMESTAMP_START, duration) else 0.0
        seconds = [t - start for t in sorted(box_times)]
    else:
        start = 0.0 if start is None else start
        seconds = list(np.arange(0.0, duration, 1.0 / options.fps)) if num_frames > 1 else [0.0]
    out = []
    for s in seconds:
        index = int(round(s * video_fps)) if num_frames > 1 else 0
        if 0 <= index < num_frames:
            out.append(Keyframe(float(s), float(s + start), index))
    return out, float(start)


#: the whole video is decoded once and kept for the annotated video when all its RGB frames fit in this many bytes
#: (a 15 s 768x576 clip at 10 fps: 200 MB); longer videos are decoded twice (keyframe groups, then the renderer),
#: in bounded memory
SHARED_FRAMES_BYTES = 256 * 2**20


class _Frames:
    """Frame access for a video or an image with the same interface.

    ``share``: keep every frame of a video for the renderer (:meth:`shared`) when they fit in
    :data:`SHARED_FRAMES_BYTES`: one sequential decode then serves the keyframes, their pose windows and the
    annotated video, instead of keyframe groups plus a second full decode."""

    def __init__(self, item: InputItem, share: bool = False):
        self.item = item
        self._all: list[np.ndarray] | None = None
        if item.kind == "image":
            from PIL import Image, ImageOps, UnidentifiedImageError

            try:
                with Image.open(item.path) as im:
                    # upright as viewers show it: a phone stores a portrait photo sideways with an EXIF orientation
                    self.image = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
            except (OSError, UnidentifiedImageError) as exc:
                raise InputError(item.path, None, f"cannot read image ({exc})") from None
            self.height, self.width = self.image.shape[:2]
            self.fps, self.num_frames = 1.0, 1
        else:
            from partwise.data import video

            info = video.probe(item.path)
            if info.num_frames < 1:
                raise InputError(item.path, None, "the video has no frames")
            self.width, self.height, self.fps, self.num_frames = info.width, info.height, info.fps or 30.0, info.num_frames
        self.share = (share and item.kind == "video"
                      and self.num_frames * self.width * self.height * 3 <= SHARED_FRAMES_BYTES)
        self.cache: dict[int, np.ndarray] = {}

    def _decode_all(self) -> list[np.ndarray]:
        if self._all is None:
            from partwise.data import video

            # every frame is kept, so iter_frames never recycles one of these arrays
            self._all = [frame for _, frame in video.iter_frames(self.item.path)]
        return self._all

    def shared(self) -> list[np.ndarray] | None:
        """Every frame in order (``[(H, W, 3)]`` uint8 RGB) when they are kept (``share``), else None."""
        return self._decode_all() if self.share else None

    def prefetch(self, indices: np.ndarray) -> None:
        """Decode ``indices`` in one pass (one container open and index build) and keep only them in memory."""
        if self.item.kind == "image":
            return
        if self.share:
            self._decode_all()
            return
        from partwise.data import video

        wanted = np.unique(np.asarray(indices, np.int64))
        self.cache = dict(zip(wanted.tolist(), video.read_frames(self.item.path, wanted))) if len(wanted) else {}

    def read(self, indices: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB frames at 0-based ``indices`` (from the prefetched ones when possible)."""
        if self.item.kind == "image":
            return np.repeat(self.image[None], len(indices), axis=0)
        indices = np.asarray(indices, np.int64).reshape(-1)
        if self.share:
            frames = self._decode_all()
            if all(0 <= int(i) < len(frames) for i in indices):
                return np.stack([frames[int(i)] for i in indices])
        if all(int(i) in self.cache for i in indices):
            return np.stack([self.cache[int(i)] for i in indices])
        from partwise.data import video

        return video.read_frames(self.item.path, indices)
