"""``partwise run``: from videos or images to people, tracks, part boxes, part states, actions and activity vectors.

Per input (a video, or an image seen as a one-frame video):

1. **Keyframes.** With ``--boxes``, the keyframes are the file's timestamps for that video (AVA's 1 Hz); else every
   ``1/fps`` seconds from the start (``fps`` = 1, AVA's rate, by default). ``time_s`` in the outputs is
   ``timestamp_start + seconds into the video``; ``timestamp_start`` is 900 (AVA's clip start) when the box file's
   timestamps for the video are all at or past 900 s and past the video's end, else 0 (``--timestamp-start``
   overrides). ``frame_index`` is the 0-based frame of the keyframe, ``round(seconds * video fps)``.
2. **People.** From ``--boxes`` (an AVA CSV, ground truth or detections, or a dense-proposals ``.pkl``): boxes scoring
   at least ``box_threshold``, non-maximum suppressed at ``nms_iou``, at most ``max_people`` per keyframe. Without
   boxes, from the pose extra: MediaPipe's single-person detector run repeatedly on the full frame, blanking each
   person found (:meth:`partwise.infer.pose.PoseEstimator.detect_all`); people who overlap much can be missed, so
   give boxes for crowded scenes (the pose is then run on a crop per box).
3. **Tracks.** :class:`partwise.infer.tracking.IoUTracker` over the keyframes of each video, on the person boxes
   grown by ``track_buffer`` box sizes per side (:func:`buffered_boxes`: at 1 Hz a walker moves more than a body
   width); the track id is ``person_id`` and ``track_id`` in every output.
4. **Pose and part boxes.** With the pose extra, COCO-17 keypoints per person at the keyframe and at ``pose_fps``
   within ``+-pose_window_s`` of it (crops around the keyframe box), the ten part boxes by the Activity2Vec rule
   (:func:`partwise.models.pose_parts.part_boxes_from_keypoints`, then clipped to the person box), and the kinematic
   TPS-style states (:func:`partwise.infer.kinematics.kinematic_states`) of that short keypoint sequence at the
   keyframe: the offline default. Without pose every part box is the person box (the rule's own fallback for
   unreliable joints) and there are no kinematic states.
5. **Model** (optional, ``--model CKPT``, a partwise ``st_activity2vec`` checkpoint): a clip centred on each
   keyframe, resized and normalized as training evaluated it (``clip_len``, ``frame_interval``,
   ``test_short_side``, ``mean``, ``std`` from the checkpoint's ``extra["data"]``, which ``partwise train`` writes;
   see :class:`ClipSpec`), the persons as RoIs -> 87 PaSta and 80 AVA action probabilities and the pooled person
   feature, which is the row's activity vector. A learned model overrides the kinematic state of each part its
   PaSta head covers (foot -> both feet, ...) when its best state for that part scores at least ``state_threshold``;
   that state is the PaSta state name (``hold``, ``walk with``), so part states then mix the two vocabularies.
6. **Frames** are decoded :data:`PREFETCH_KEYFRAMES` keyframes at a time, only those the steps above read.

See :mod:`partwise.infer.outputs` for the files written.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from partwise.errors import ConfigError, InputError, PartwiseError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
AVA_TIMESTAMP_START = 900.0
#: PaSta body part (pasta_ava87 prefix) -> the TPS/HAKE body parts whose state it decides.
PASTA_PART_TO_PARTS = {"foot": ("right_foot", "left_foot"), "leg": ("right_leg", "left_leg"), "hip": ("hip",),
                       "hand": ("right_hand", "left_hand"), "arm": ("right_arm", "left_arm"), "head": ("head",)}


@dataclass
class RunOptions:
    """Everything ``partwise run`` can be told (see the module docstring for the meaning)."""

    fps: float = 1.0
    model: str | None = None
    boxes: str | None = None
    box_threshold: float = 0.9
    nms_iou: float = 0.7
    track_buffer: float = 1.0
    max_people: int = 10
    pose: str = "auto"  # auto | mediapipe | none
    pose_fps: float = 10.0
    pose_window_s: float = 0.3
    topk: int = 5
    state_threshold: float = 0.5
    action_threshold: float = 0.5
    timestamp_start: float | None = None
    video: bool = True
    progress: bool = True

    def check(self) -> None:
        if self.fps <= 0:
            raise ConfigError(f"--fps must be positive, got {self.fps}")
        if self.pose not in ("auto", "mediapipe", "none"):
            raise ConfigError(f"--pose must be auto, mediapipe or none, got {self.pose!r}")
        if self.pose_fps <= 0 or self.pose_window_s < 0:
            raise ConfigError("--pose-fps must be positive and --pose-window non-negative")
        if self.topk < 1 or self.max_people < 1:
            raise ConfigError("--topk and --max-people must be at least 1")


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
            raise ConfigError(f"{path}: not a video ({', '.join(VIDEO_EXTENSIONS)}) or image file")
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


# --------------------------------------------------------------------------------------------------------------
# Model


@dataclass
class ClipSpec:
    """How a video model wants its clips: ``clip_len`` frames every ``frame_interval`` frames around the keyframe,
    short side resized to ``short_side`` (0 = as decoded), RGB normalized by ``mean``/``std`` (0-255 scale)."""

    clip_len: int = 8
    frame_interval: int = 4
    short_side: int = 0
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)

    @classmethod
    def from_extra(cls, extra: dict) -> "ClipSpec":
        """From a checkpoint's ``extra``: the first of ``extra["clip"]``, ``extra["data"]``,
        ``extra["config"]["data"]`` that is a dict (``partwise train`` stores its data config), with the keys
        ``clip_len``, ``frame_interval``, ``short_side`` or ``test_short_side``, ``mean``, ``std``."""
        config = extra.get("config") if isinstance(extra.get("config"), dict) else {}
        found = next((d for d in (extra.get("clip"), extra.get("data"), config.get("data")) if isinstance(d, dict)), {})
        values = {k: found[k] for k in ("clip_len", "frame_interval", "short_side", "mean", "std") if k in found}
        if "short_side" not in values and "test_short_side" in found:
            values["short_side"] = found["test_short_side"]
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        return cls(**values)


@dataclass
class LoadedModel:
    model: Any
    family: str
    clip: ClipSpec


def load_run_model(path: str | os.PathLike) -> LoadedModel:
    """A partwise checkpoint usable by ``partwise run`` (family ``st_activity2vec``), in eval mode on the CPU."""
    from partwise.models.checkpoint import FAMILIES, load_model, read_checkpoint

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--model {path}: no such checkpoint file")
    record = read_checkpoint(path)
    family = record.get("family") if isinstance(record, dict) else None
    if family != "st_activity2vec":
        raise InputError(path, "family", f"partwise run needs an st_activity2vec checkpoint, got {family!r} "
                                         f"(families: {', '.join(FAMILIES)})")
    model = load_model(path)
    return LoadedModel(model, family, ClipSpec.from_extra(record.get("extra") or {}))


def clip_tensor(frames: np.ndarray, spec: ClipSpec):
    """(T, H, W, 3) uint8 RGB -> (1, 3, T, H', W') float tensor and the resize factors ``(W'/W, H'/H)``."""
    import torch
    import torch.nn.functional as F

    clip = torch.from_numpy(np.ascontiguousarray(frames)).float().permute(0, 3, 1, 2)  # T, 3, H, W
    h0, w0 = clip.shape[-2:]
    if spec.short_side:
        # the same resize as training's test transform (partwise.train.data): mmcv rounding, antialiased
        h, w = clip.shape[-2:]
        scale = spec.short_side / min(h, w)
        size = (int(h * scale + 0.5), int(w * scale + 0.5))
        if size != (h, w):
            clip = F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=True)
    clip = clip.permute(1, 0, 2, 3)  # 3, T, H, W
    scale = (clip.shape[-1] / w0, clip.shape[-2] / h0)
    mean = torch.tensor(spec.mean).view(3, 1, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1, 1)
    return ((clip - mean) / std)[None], scale


def run_model(loaded: LoadedModel, frames: np.ndarray, boxes_px: np.ndarray) -> dict[str, np.ndarray]:
    """PaSta (K, 87), action (K, 80) probabilities and features (K, D) for pixel ``boxes_px`` (K, 4) in a clip."""
    import torch

    clip, scale = clip_tensor(frames, loaded.clip)
    rois = torch.zeros(len(boxes_px), 5)
    factor = np.array([scale[0], scale[1], scale[0], scale[1]])
    rois[:, 1:] = torch.from_numpy(np.asarray(boxes_px, np.float64) * factor).float()
    with torch.inference_mode():
        out = loaded.model(clip, rois)
    return {"pasta": out["pasta"].numpy(), "actions": out["actions"].numpy(), "features": out["features"].numpy()}


# --------------------------------------------------------------------------------------------------------------
# Per-video processing


@dataclass
class Timings:
    """Seconds spent per stage (summed over inputs)."""

    decode: float = 0.0
    pose: float = 0.0
    model: float = 0.0
    write: float = 0.0
    frames: int = 0

    def add(self, other: "Timings") -> None:
        for key in ("decode", "pose", "model", "write", "frames"):
            setattr(self, key, getattr(self, key) + getattr(other, key))


@dataclass
class VideoResult:
    """What one input produced: ``rows`` (list of dicts, one per person per keyframe) plus what the renderer and
    writers need."""

    item: InputItem
    width: int
    height: int
    fps: float
    num_frames: int
    rows: list[dict] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)


class _Frames:
    """Frame access for a video or an image with the same interface."""

    def __init__(self, item: InputItem):
        self.item = item
        if item.kind == "image":
            from PIL import Image, UnidentifiedImageError

            try:
                with Image.open(item.path) as im:
                    self.image = np.asarray(im.convert("RGB"))
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

        self.cache: dict[int, np.ndarray] = {}

    def prefetch(self, indices: np.ndarray) -> None:
        """Decode ``indices`` in one pass (one container open and index build) and keep only them in memory."""
        if self.item.kind == "image":
            return
        from partwise.data import video

        wanted = np.unique(np.asarray(indices, np.int64))
        self.cache = dict(zip(wanted.tolist(), video.read_frames(self.item.path, wanted))) if len(wanted) else {}

    def read(self, indices: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB frames at 0-based ``indices`` (from the prefetched ones when possible)."""
        if self.item.kind == "image":
            return np.repeat(self.image[None], len(indices), axis=0)
        indices = np.asarray(indices, np.int64).reshape(-1)
        if all(int(i) in self.cache for i in indices):
            return np.stack([self.cache[int(i)] for i in indices])
        from partwise.data import video

        return video.read_frames(self.item.path, indices)


def buffered_boxes(boxes: np.ndarray, buffer: float) -> np.ndarray:
    """Boxes (N, 4) grown by ``buffer`` times their width (height) on the left and right (top and bottom).

    The tracker matches these "buffered" boxes (the buffered IoU of C-BIoU tracking): at AVA's 1 Hz a walking
    person moves more than a body width between keyframes, so the plain boxes of one person no longer overlap,
    while the buffered ones do; the tracker's velocity prediction still separates people who cross."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    grow = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1) * buffer
    return boxes + grow * np.array([-1, -1, 1, 1])


def _part_boxes(keypoints: np.ndarray, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 10, 4) part boxes by the Activity2Vec rule, clipped to each person's box (a part cannot lie outside
    its person)."""
    from partwise.models.pose_parts import part_boxes_from_keypoints

    parts = part_boxes_from_keypoints(keypoints, boxes, (width, height))
    lo, hi = boxes[:, None, :2], boxes[:, None, 2:]
    parts[..., :2] = np.clip(parts[..., :2], lo, hi)
    parts[..., 2:] = np.clip(parts[..., 2:], lo, hi)
    return parts


def _pose_windows(kf: Keyframe, fps: float, num_frames: int, options: RunOptions) -> tuple[np.ndarray, int]:
    """Frame indices sampled at ``pose_fps`` within ``+-pose_window_s`` of a keyframe, and the keyframe's position."""
    step = max(1, int(round(fps / options.pose_fps)))
    half = int(round(options.pose_window_s * fps / step))
    offsets = np.arange(-half, half + 1) * step
    return np.clip(kf.frame_index + offsets, 0, num_frames - 1), half


def state_overrides(pasta: np.ndarray, threshold: float) -> dict[str, str]:
    """``{body part: state}`` from one person's (87,) PaSta probabilities: for each PaSta part, its best state if it
    scores at least ``threshold``, given to the body parts that PaSta part covers (``hand`` -> both hands)."""
    from partwise import vocab

    v = vocab.load("pasta_ava87")
    out = {}
    for part, body_parts in PASTA_PART_TO_PARTS.items():
        sl = v.part_slice(part)
        best = int(np.argmax(pasta[sl])) + sl.start
        if pasta[best] >= threshold:
            state = v.names[best].split(": ", 1)[1]
            out.update({p: state for p in body_parts})
    return out


#: keyframes whose frames are decoded together (bounds memory: a few dozen frames per keyframe).
PREFETCH_KEYFRAMES = 8


def _frames_needed(keyframes: list[Keyframe], fps: float, n: int, options: RunOptions, model: LoadedModel | None,
                   use_pose: bool, detect: bool) -> np.ndarray:
    """0-based indices of every frame the pipeline reads for ``keyframes``."""
    from partwise.data.video import clip_around

    needed = [np.array([kf.frame_index for kf in keyframes], np.int64)] if detect else []
    for kf in keyframes:
        if use_pose:
            needed.append(_pose_windows(kf, fps, n, options)[0])
        if model is not None:
            needed.append(clip_around(kf.frame_index, model.clip.clip_len, model.clip.frame_interval, n))
    return np.concatenate(needed) if needed else np.zeros(0, np.int64)


def process_item(item: InputItem, options: RunOptions, boxes: dict | None = None, model: LoadedModel | None = None,
                 pose=None, progress_position: int = 1) -> VideoResult:
    """Run the pipeline on one input (see the module docstring); raises :class:`InputError` for a bad input."""
    import time

    from tqdm import tqdm

    from partwise import vocab
    from partwise.infer.kinematics import TPS_PARTS, kinematic_states
    from partwise.infer.tracking import IoUTracker

    timings = Timings()
    t0 = time.perf_counter()
    frames = _Frames(item)
    timings.decode += time.perf_counter() - t0
    width, height, fps, n = frames.width, frames.height, frames.fps, frames.num_frames
    video_boxes = None
    if boxes is not None:
        video_boxes = boxes.get(item.video_id, {})
    elif pose is None:
        raise ConfigError("no source of people: give --boxes or install the pose extra (pip install 'partwise[pose]')")
    keyframes, _ = keyframes_for(n, fps, options, None if video_boxes is None else list(video_boxes))
    result = VideoResult(item, width, height, fps, n, timings=timings)
    tracker = IoUTracker()
    pasta_vocab = vocab.load("pasta_ava87")
    body_parts = vocab.BODY_PARTS
    scale = np.array([width, height, width, height], np.float64)
    bar = tqdm(keyframes, desc=item.video_id[:24], unit="kf", leave=False, position=progress_position,
               disable=not options.progress)
    for k, kf in enumerate(bar):
        if k % PREFETCH_KEYFRAMES == 0:  # decode the frames of the next keyframes in one pass
            t0 = time.perf_counter()
            frames.prefetch(_frames_needed(keyframes[k:k + PREFETCH_KEYFRAMES], fps, n, options, model,
                                           pose is not None, video_boxes is None))
            timings.decode += time.perf_counter() - t0
        # People at this keyframe.
        keypoints = None
        if video_boxes is not None:
            chosen = select_boxes(video_boxes.get(kf.time_s, np.zeros((0, 5))), options.box_threshold,
                                  options.nms_iou, options.max_people)
            person_px, scores = chosen[:, :4] * scale, chosen[:, 4]
        else:
            t0 = time.perf_counter()
            frame = frames.read(np.array([kf.frame_index]))[0]
            timings.decode += time.perf_counter() - t0
            t0 = time.perf_counter()
            found = pose.detect_all(frame, options.max_people)
            timings.pose += time.perf_counter() - t0
            person_px = np.array([box for box, _ in found]).reshape(-1, 4)
            scores = np.array([float(k[:, 2].mean()) for _, k in found])
        ids = tracker.update(buffered_boxes(person_px, options.track_buffer))
        if len(person_px) == 0:
            continue
        # Pose over a short window around the keyframe: part boxes and kinematic states.
        kinematic: list[dict[str, str]] = [{} for _ in range(len(person_px))]
        if pose is not None:
            indices, centre = _pose_windows(kf, fps, n, options)
            t0 = time.perf_counter()
            window = frames.read(indices)
            timings.decode += time.perf_counter() - t0
            t0 = time.perf_counter()
            tracks = np.stack([np.stack([pose.estimate(f, box) for f in window]) for box in person_px])  # N, W, 17, 3
            timings.pose += time.perf_counter() - t0
            keypoints = tracks[:, centre]
            kinematic = [kinematic_states(track, fps / max(1, int(round(fps / options.pose_fps))))[centre]
                         for track in tracks]
            timings.frames += len(indices)
        else:
            timings.frames += 1
        kp = keypoints if keypoints is not None else np.zeros((len(person_px), 17, 3))
        parts = _part_boxes(kp, person_px, width, height)
        # Learned model.
        outputs = None
        if model is not None:
            from partwise.data.video import clip_around

            t0 = time.perf_counter()
            clip = frames.read(clip_around(kf.frame_index, model.clip.clip_len, model.clip.frame_interval, n))
            timings.decode += time.perf_counter() - t0
            t0 = time.perf_counter()
            outputs = run_model(model, clip, person_px)
            timings.model += time.perf_counter() - t0
        for i in range(len(person_px)):
            states = dict(kinematic[i])
            row: dict[str, Any] = {
                "video_id": item.video_id, "time_s": kf.time_s, "frame_index": kf.frame_index,
                "width": width, "height": height, "box_px": person_px[i].tolist(), "score": float(scores[i]),
                "track_id": int(ids[i]), "keypoints": None if keypoints is None else keypoints[i].tolist(),
                "kinematic": [f"{p}: {states[p]}" for p in TPS_PARTS if p in states],
                "pasta": [], "pasta_scores": [], "pasta_probs": None, "actions": [], "action_scores": None, "activity_vector": None,
                "source": f"{item.path}:{kf.frame_index}",
            }
            if outputs is not None:
                p = outputs["pasta"][i]
                top = np.argsort(-p, kind="stable")[: options.topk]
                row["pasta"] = [pasta_vocab.names[j] for j in top]
                row["pasta_scores"] = [float(p[j]) for j in top]
                row["pasta_probs"] = p.astype(np.float32).tolist()
                a = outputs["actions"][i]
                row["actions"] = [int(j + 1) for j in np.flatnonzero(a >= options.action_threshold)]
                row["action_scores"] = a.astype(np.float32).tolist()
                row["activity_vector"] = outputs["features"][i].astype(np.float32).tolist()
                states.update(state_overrides(p, options.state_threshold))
            row["part_boxes"] = [{"part": name, "box_px": parts[i, j].tolist(), "state": states.get(name)}
                                 for j, name in enumerate(body_parts)]
            result.rows.append(row)
    bar.close()
    return result


# --------------------------------------------------------------------------------------------------------------
# Many inputs


def make_pose(options: RunOptions):
    """A :class:`~partwise.infer.pose.PoseEstimator` when the options ask for pose and it is available, else None."""
    from partwise.infer.pose import PoseEstimator, mediapipe_available

    if options.pose == "none" or (options.pose == "auto" and not mediapipe_available()):
        return None
    return PoseEstimator()


@dataclass
class _WorkerState:
    options: RunOptions
    out: Path
    boxes: dict | None
    model: LoadedModel | None
    pose: Any


_STATE: _WorkerState | None = None


def _init_worker(options: RunOptions, out: str, single_thread: bool = True, state: _WorkerState | None = None) -> None:
    global _STATE
    import torch

    if single_thread:  # worker processes share the cores
        torch.set_num_threads(1)
    _STATE = state or _WorkerState(options, Path(out), load_boxes(options.boxes) if options.boxes else None,
                                   load_run_model(options.model) if options.model else None, make_pose(options))


def _check_sources(options: RunOptions, out: Path) -> _WorkerState:
    """Load the boxes, the model and the pose extra once, so a bad file or a missing extra is one error before any
    input is touched."""
    from partwise.infer.pose import mediapipe_available

    if not options.boxes and (options.pose == "none" or (options.pose == "auto" and not mediapipe_available())):
        raise ConfigError("no source of people: give --boxes FILE, or install the pose extra "
                          "(pip install 'partwise[pose]') and leave --pose at auto")
    return _WorkerState(options, out, load_boxes(options.boxes) if options.boxes else None,
                        load_run_model(options.model) if options.model else None, make_pose(options))


def _run_one(item: InputItem, position: int = 1) -> tuple[str, str | None, Timings]:
    """Process and write one input in the current worker; ``(video_id, error line or None, timings)``."""
    import time

    from partwise.infer import outputs

    state = _STATE
    try:
        result = process_item(item, state.options, state.boxes, state.model, state.pose, position)
        t0 = time.perf_counter()
        outputs.write_video_outputs(result, state.out, video=state.options.video)
        result.timings.write += time.perf_counter() - t0
    except PartwiseError as exc:
        return item.video_id, str(exc), Timings()
    except (OSError, ValueError, RuntimeError) as exc:  # a decoder or library failing on a damaged file
        return item.video_id, f"{item.path}: {type(exc).__name__}: {exc}", Timings()
    return item.video_id, None, result.timings


def _run_in_pool(items: list[InputItem], options: RunOptions, out: Path, workers: int,
                 on_done: Callable[[tuple[str, str | None, Timings]], None]) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    worker_options = replace(options, progress=False)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(worker_options, str(out))) as pool:
        futures = [pool.submit(_run_one, item) for item in items]
        for future in as_completed(futures):
            on_done(future.result())


def distributed_rank() -> tuple[int, int]:
    """``(rank, world_size)`` from torchrun's environment (``(0, 1)`` outside torchrun)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


@dataclass
class RunSummary:
    done: list[str]
    skipped: list[str]
    failed: list[tuple[str, str]]
    timings: Timings
    merged: dict[str, Path]


def run(inputs: str | os.PathLike, out: str | os.PathLike, options: RunOptions, *, workers: int = 1,
        tps_json: bool = False, ava_csv: bool = False, overwrite: bool = False,
        err: Callable[[str], None] | None = None) -> RunSummary:
    """Process every input under ``out`` and merge the results (see :mod:`partwise.infer.outputs`).

    Inputs whose results already exist are skipped (unless ``overwrite``). A bad input is reported through ``err``
    (one line) and skipped. Under ``torchrun`` each rank takes every ``world_size``-th input; rank 0 merges after a
    barrier (other ranks return with an empty ``merged``)."""
    from tqdm import tqdm

    from partwise.infer import outputs

    options.check()
    err = err or (lambda line: tqdm.write(line, file=sys.stderr))
    items = discover_inputs(inputs)
    out = Path(out)
    rank, world = distributed_rank()
    mine = items[rank::world]
    todo = [it for it in mine if overwrite or not outputs.video_done(out, it.video_id)]
    skipped = [it.video_id for it in mine if it not in todo]
    state = _check_sources(options, out) if todo else None
    out.mkdir(parents=True, exist_ok=True)
    done: list[str] = []
    failed: list[tuple[str, str]] = []
    timings = Timings()
    bar = tqdm(total=len(todo), desc="videos", unit="video", disable=not options.progress, position=0)

    def on_done(res: tuple[str, str | None, Timings]) -> None:
        vid, error, t = res
        if error is None:
            done.append(vid)
            timings.add(t)
        else:
            failed.append((vid, error))
            err(f"partwise: error: {error} (skipped)")
        bar.update(1)

    if todo:
        if workers > 1 and len(todo) > 1:
            _run_in_pool(todo, options, out, min(workers, len(todo)), on_done)
        else:
            _init_worker(options, str(out), single_thread=False, state=state)
            for item in todo:
                on_done(_run_one(item))
    bar.close()
    if world > 1:
        _barrier()
        if rank != 0:
            return RunSummary(done, skipped, failed, timings, {})
    import time

    t0 = time.perf_counter()
    merged = outputs.merge(out, [it.video_id for it in items], tps_json=tps_json, ava_csv=ava_csv)
    timings.write += time.perf_counter() - t0
    return RunSummary(done, skipped, failed, timings, merged)


def _barrier() -> None:
    """Wait for every torchrun rank (gloo process group, created once)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()
