"""``partwise run``: from videos or images to people, tracks, part boxes, part states, actions and activity vectors.

Per input (a video, or an image seen as a one-frame video):

1. **Keyframes.** With ``--boxes``, the keyframes are the file's timestamps for that video (AVA's 1 Hz); else every
   ``1/fps`` seconds from the start (``fps`` = 1, AVA's rate, by default). ``time_s`` in the outputs is
   ``timestamp_start + seconds into the video``; ``timestamp_start`` is 900 (AVA's clip start) when the box file's
   timestamps for the video are all at or past 900 s and past the video's end, else 0 (``--timestamp-start``
   overrides). ``frame_index`` is the 0-based frame of the keyframe, ``round(seconds * video fps)``.
2. **People**, from the first source given. ``--boxes`` (an AVA CSV, ground truth or detections, or a
   dense-proposals ``.pkl``): boxes scoring at least ``box_threshold``, non-maximum suppressed at ``nms_iou``, at
   most ``max_people`` per keyframe. Else ``--detector CKPT|NAME`` (family ``person_detector``,
   :func:`partwise.models.person_detector.detect_people` on the keyframes, :data:`PREFETCH_KEYFRAMES` per batch,
   ``detector_threshold``, ``detector_nms_iou``, ``max_people``). Else the pose source (``--pose``): by default
   MoveNet MultiPose on the whole frame at its own resolution (:class:`partwise.infer.movenet_pose.MoveNetPose`:
   embedded real weights; more than 6 people through two overlapping halves; CenterNet person boxes refined by
   SinglePose crops when those are installed), or MediaPipe's single-person detector run repeatedly, blanking each
   person found (the optional pose extra, :meth:`partwise.infer.pose.PoseEstimator.detect_all`).
3. **Tracks.** :class:`partwise.infer.tracking.IoUTracker` over the keyframes of each video, on the person boxes
   grown by ``track_buffer`` box sizes per side (:func:`buffered_boxes`: at 1 Hz a walker moves more than a body
   width), each new or matched track taking its person's velocity measured over the pose window
   (:func:`window_velocities`), so the prediction to the next keyframe follows the walker; the track id is
   ``person_id`` and ``track_id`` in every output.
4. **Pose and part boxes.** With a pose source, COCO-17 keypoints per person at the keyframe and at ``pose_fps``
   within ``+-pose_window_s`` of it (crops around the keyframe box), the ten part boxes by the Activity2Vec rule
   (:func:`partwise.models.pose_parts.part_boxes_from_keypoints`, then clipped to the person box), and the kinematic
   TPS-style states (:func:`partwise.infer.kinematics.kinematic_states`) of that short keypoint sequence at the
   keyframe: the offline default. Without pose every part box is the person box (the rule's own fallback for
   unreliable joints) and there are no kinematic states.
5. **Model** (optional, ``--model CKPT|NAME``: a checkpoint file or a name from ``partwise models list``, see
   :mod:`partwise.models.weights`), one of :data:`RUN_MODEL_FAMILIES`:

   * ``st_activity2vec``: a clip centred on each keyframe, resized and normalized as training evaluated it
     (``clip_len``, ``frame_interval``, ``test_short_side``, ``mean``, ``std`` from the checkpoint's
     ``extra["data"]``, which ``partwise train`` writes; see :class:`ClipSpec`), the persons as RoIs -> 87 PaSta
     (``pasta_ava87``) and 80 AVA action probabilities and the pooled person feature, the row's activity vector;
   * ``ava_detector`` (partwise or mmaction2 AVA checkpoints): the same clip (mmaction2 files: the table's sampling,
     short side 256) -> the 80 AVA action probabilities only;
   * ``activity2vec`` (partwise or HAKE's released model): the keyframe image, person boxes, the part boxes of step
     4 and (HAKE's model) skeleton maps from the keypoints -> 93 PaSta (``pasta93``) and 157 verb probabilities, and
     ``f_pasta`` (visual + language with the shipped MiniLM matrix) as the activity vector.

   PaSta names go to the PaSta columns (and the annotated video); the part states (``part_boxes[].state``, the
   Kinetics-TPS JSON) stay Kinetics-TPS tags: the kinematic states, overridden only by a model whose vocabulary is
   a Kinetics-TPS state list (:data:`TPS_STATE_VOCABS`, :func:`tps_state_overrides`), when its best state for a
   part scores at least ``state_threshold``.
6. **Video class** (optional, ``--video-model CKPT|NAME``, family ``video_classifier``):
   :func:`partwise.models.video_classifier.predict_video` on the whole input -> its top :data:`VIDEO_TOPK` classes
   (``video_label`` of every row, ``run.json``, the HTML summary, ``pred_vid_result.json`` with ``--tps-json``).
7. **Frames** are decoded :data:`PREFETCH_KEYFRAMES` keyframes at a time, only those the steps above read.
8. **Evaluation** (optional, ``--gt FILE``, an AVA CSV): after the merge, the rows are scored in-process
   (:mod:`partwise.infer.evaluation`): person detection AP@0.5 and, with action scores, AVA frame mAP (official
   profile) of the ``--labelmap`` classes -> ``run.json`` ``evaluation`` and the page's Evaluation section.

See :mod:`partwise.infer.outputs` for the files written.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from partwise.errors import ConfigError, InputError, PartwiseError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
AVA_TIMESTAMP_START = 900.0
@dataclass
class RunOptions:
    """Everything ``partwise run`` can be told (see the module docstring for the meaning)."""

    fps: float = 1.0
    model: str | None = None
    boxes: str | None = None
    detector: str | None = None
    detector_threshold: float = 0.3
    detector_nms_iou: float = 0.5
    video_model: str | None = None
    box_threshold: float = 0.9
    nms_iou: float = 0.7
    track_buffer: float = 1.0
    max_people: int = 10
    pose: str = "auto"  # auto (= movenet) | movenet | mediapipe | none
    person_detector: str | None = "auto"  # MoveNet's extra person boxes: auto (centernet when installed) | name | None
    single_pose: str | None = "auto"  # SinglePose for missed people: auto (thunder, lightning when installed) | None
    objects: str | None = "auto"  # objects parts touch (infer.objects): auto (centernet when installed) | none | name
    object_threshold: float = 0.4  # minimum object score (partwise.infer.objects.OBJECT_THRESHOLD)
    pose_fps: float = 10.0
    pose_window_s: float = 0.3
    topk: int = 5
    state_threshold: float = 0.5
    action_threshold: float = 0.5
    timestamp_start: float | None = None
    # what the annotated video's labels show (partwise.infer.render.Style): --state-thr, --action-thr, --top-k
    label_state_thr: float = 0.3
    label_action_thr: float = 0.5
    label_top_k: int = 3
    # ground truth scored after the merge (partwise.infer.evaluation): an AVA CSV, the evaluated classes' pbtxt
    gt: str | None = None
    gt_labelmap: str | None = None  # default: the shipped ava60 list
    video: bool = True
    progress: bool = True

    def check(self) -> None:
        if not 0 < self.fps < math.inf:  # NaN and infinity too: every video would fail later
            raise ConfigError(f"--fps must be a positive number, got {self.fps}")
        if self.pose not in ("auto", "movenet", "mediapipe", "none"):
            raise ConfigError(f"--pose must be auto, movenet, mediapipe or none, got {self.pose!r}")
        if not 0 < self.pose_fps < math.inf or not 0 <= self.pose_window_s < math.inf:
            raise ConfigError("--pose-fps must be positive and --pose-window non-negative")
        if self.topk < 1 or self.max_people < 1:
            raise ConfigError("--topk and --max-people must be at least 1")
        if not 0 <= self.detector_threshold <= 1 or not 0 < self.detector_nms_iou <= 1:
            raise ConfigError("--detector-threshold must be in [0, 1] and the detector's NMS IoU in (0, 1]")
        if not 0 <= self.object_threshold <= 1:
            raise ConfigError(f"--object-threshold must be in [0, 1], got {self.object_threshold}")
        if not 0 <= self.label_state_thr <= 1 or not 0 <= self.label_action_thr <= 1 or self.label_top_k < 0:
            raise ConfigError("--state-thr and --action-thr must be in [0, 1] and --top-k at least 0")
        for flag, path in (("--gt", self.gt), ("--labelmap", self.gt_labelmap)):
            if path is not None and not os.path.isfile(path):
                raise ConfigError(f"{flag} {path}: no such file")
        if self.gt_labelmap is not None and self.gt is None:
            raise ConfigError("--labelmap is the evaluated classes of --gt: give --gt too")


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
    def from_extra(cls, extra: dict, base: "ClipSpec | None" = None) -> "ClipSpec":
        """From a checkpoint's ``extra``: the first of ``extra["clip"]``, ``extra["data"]``,
        ``extra["config"]["data"]`` that is a dict (``partwise train`` stores its data config), with the keys
        ``clip_len``, ``frame_interval``, ``short_side`` or ``test_short_side``, ``mean``, ``std``; keys it lacks
        come from ``base`` (default: the class defaults)."""
        config = extra.get("config") if isinstance(extra.get("config"), dict) else {}
        found = next((d for d in (extra.get("clip"), extra.get("data"), config.get("data")) if isinstance(d, dict)), {})
        values = {k: found[k] for k in ("clip_len", "frame_interval", "short_side", "mean", "std") if k in found}
        if "short_side" not in values and "test_short_side" in found:
            values["short_side"] = found["test_short_side"]
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        return replace(base, **values) if base is not None else cls(**values)


#: model families ``--model`` accepts.
RUN_MODEL_FAMILIES = ("st_activity2vec", "ava_detector", "activity2vec")
#: PaSta vocabulary of each family's PaSta head (None: the family predicts actions only). A checkpoint may declare
#: another one in ``extra["pasta_vocab"]`` with its state names in ``extra["pasta_names"]``.
FAMILY_PASTA_VOCAB = {"st_activity2vec": "pasta_ava87", "activity2vec": "pasta93", "ava_detector": None}
#: vocabularies whose states are Kinetics-TPS part states (``"<tps part>: <state>"``): only these may decide the
#: part states that go to the Kinetics-TPS JSON; PaSta vocabularies (pasta_ava87, pasta93) never do.
TPS_STATE_VOCABS = ("kinetics-tps",)


@dataclass
class LoadedModel:
    """A ``--model`` ready to run: ``family`` one of :data:`RUN_MODEL_FAMILIES`; ``clip`` how to sample and scale
    its input (image models: ``short_side`` only); ``pasta_vocab`` / ``pasta_names`` the vocabulary of its PaSta
    outputs (None / empty for action-only models); ``skeletons``: feed Activity2Vec skeleton maps drawn from the
    keypoints (HAKE's model was trained with them; partwise's Activity2Vec training feeds zero maps, so its models
    get zero maps here too)."""

    model: Any
    family: str
    clip: ClipSpec
    name: str | None = None
    path: str = ""
    pasta_vocab: str | None = None
    pasta_names: tuple[str, ...] = ()
    skeletons: bool = False


def load_run_model(spec: str | os.PathLike) -> LoadedModel:
    """``--model CKPT|NAME`` (a checkpoint path or a name from :data:`partwise.models.weights.KNOWN_WEIGHTS`) of a
    family in :data:`RUN_MODEL_FAMILIES`, in eval mode on the CPU."""
    from partwise import vocab
    from partwise.models import weights

    loaded = weights.load(spec, RUN_MODEL_FAMILIES, "--model")
    model, family, extra = loaded.model, loaded.family, loaded.extra
    if family == "ava_detector":
        classes = model.cfg.num_classes
        if classes not in (80, 81):
            raise InputError(loaded.path, "config.num_classes", "partwise run reads the 80 AVA actions (81 with "
                                                               f"mmaction2's background column 0), got {classes}")
        base = ClipSpec(clip_len=model.cfg.clip_len, frame_interval=model.cfg.frame_interval,
                        short_side=weights.MMACTION2_TEST_SHORT_SIDE)
    elif family == "activity2vec":
        base = ClipSpec(clip_len=1, frame_interval=1, short_side=0)  # HAKE: no resizing at test time
    else:
        base = ClipSpec()
    pasta_vocab = extra.get("pasta_vocab", FAMILY_PASTA_VOCAB[family])
    if pasta_vocab is None:
        names: tuple[str, ...] = ()
    elif isinstance(extra.get("pasta_names"), (list, tuple)):
        names = tuple(str(n) for n in extra["pasta_names"])
    elif pasta_vocab in TPS_STATE_VOCABS:
        raise InputError(loaded.path, "extra.pasta_names", f"a {pasta_vocab} model must list its state names")
    else:
        names = vocab.load(pasta_vocab).names
    skeletons = family == "activity2vec" and (loaded.loader == "hake_activity2vec" or bool(extra.get("skeletons")))
    return LoadedModel(model, family, ClipSpec.from_extra(extra, base), loaded.name, str(loaded.path),
                       pasta_vocab, names, skeletons)


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


def _rois(boxes_px: np.ndarray, scale: tuple[float, float]):
    """(K, 4) pixel boxes of the original frame -> (K, 5) ``[0, x1, y1, x2, y2]`` float RoIs in the resized input."""
    import torch

    boxes = np.asarray(boxes_px, np.float64)
    rois = torch.zeros(boxes.shape[:-1] + (5,))
    factor = np.array([scale[0], scale[1], scale[0], scale[1]])
    rois[..., 1:] = torch.from_numpy(boxes * factor).float()
    return rois


def run_model(loaded: LoadedModel, frames: np.ndarray, boxes_px: np.ndarray) -> dict[str, np.ndarray]:
    """A video model on a clip (T, H, W, 3) with pixel ``boxes_px`` (K, 4): ``st_activity2vec`` -> ``pasta``
    (K, 87), ``actions`` (K, 80) probabilities and ``features`` (K, D); ``ava_detector`` -> ``actions`` (K, 80)
    (mmaction2's background column 0 dropped)."""
    import torch

    clip, scale = clip_tensor(frames, loaded.clip)
    rois = _rois(boxes_px, scale)
    with torch.inference_mode():
        if loaded.family == "ava_detector":
            scores = torch.sigmoid(loaded.model(clip, rois))
            return {"actions": (scores[:, 1:] if scores.shape[1] == 81 else scores).numpy()}
        out = loaded.model(clip, rois)
    return {"pasta": out["pasta"].numpy(), "actions": out["actions"].numpy(), "features": out["features"].numpy()}


def run_image_model(loaded: LoadedModel, frame: np.ndarray, boxes_px: np.ndarray, parts_px: np.ndarray,
                    keypoints: np.ndarray) -> dict[str, np.ndarray]:
    """Activity2Vec on one frame (H, W, 3) uint8 RGB: person boxes (K, 4), part boxes (K, 10, 4) in HAKE body-part
    order, COCO-17 keypoints (K, 17, 3) (pixels; zeros without pose) -> ``pasta`` (K, 93), ``verbs`` (K, 157)
    probabilities and ``features`` = ``f_pasta`` (K, 3072 + language width), the activity vector."""
    import torch

    from partwise.models.activity2vec import PIXEL_MEANS_BGR
    from partwise.models.pose_parts import skeleton_map

    spec = replace(loaded.clip, clip_len=1, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    clip, scale = clip_tensor(frame[None], spec)  # 1, 3, 1, H', W' RGB 0..255
    image = clip[:, :, 0].flip(1) - torch.tensor(PIXEL_MEANS_BGR).view(1, 3, 1, 1)  # BGR minus means
    height, width = frame.shape[:2]
    size = loaded.model.config.skeleton_size
    maps = np.zeros((len(boxes_px), 1, size, size), np.float32)
    if loaded.skeletons:
        for i, k in enumerate(keypoints):
            maps[i, 0] = skeleton_map(k, (width, height), size)
    with torch.inference_mode():
        out = loaded.model(image, _rois(boxes_px, scale), _rois(parts_px, scale), torch.from_numpy(maps))
    return {"pasta": out["p_pasta"].numpy(), "verbs": out["p_verb"].numpy(), "features": out["f_pasta"].numpy()}


# --------------------------------------------------------------------------------------------------------------
# Person detector and video classifier


@dataclass
class LoadedDetector:
    """``--detector``: a ``person_detector`` model and its ``detect_people(model, frames (B, H, W, 3) uint8 RGB,
    score_threshold, nms_iou, max_people) -> [(K, 5) pixel x1, y1, x2, y2, score]``."""

    model: Any
    detect: Callable[..., list]
    name: str | None = None
    path: str = ""


def load_detector(spec: str | os.PathLike) -> LoadedDetector:
    from partwise.models import weights

    from partwise.models.person_detector import detect_people

    loaded = weights.load(spec, ("person_detector",), "--detector")
    return LoadedDetector(loaded.model, detect_people, loaded.name, str(loaded.path))


@dataclass
class LoadedVideoModel:
    """``--video-model``: a ``video_classifier`` model, its ``predict_video(model, read_frames, num_frames) ->
    (num_classes,)`` probabilities, and its class names."""

    model: Any
    predict: Callable[..., np.ndarray]
    class_names: tuple[str, ...]
    name: str | None = None
    path: str = ""


def load_video_model(spec: str | os.PathLike) -> LoadedVideoModel:
    from partwise.models import weights

    from partwise.models.video_classifier import predict_video

    loaded = weights.load(spec, ("video_classifier",), "--video-model")
    names = tuple(str(n) for n in getattr(loaded.model.cfg, "class_names", ()) or ())
    if not names:
        raise InputError(loaded.path, "config.class_names", "the video classifier names no classes")
    return LoadedVideoModel(loaded.model, predict_video, names, loaded.name, str(loaded.path))


#: video classes reported per input.
VIDEO_TOPK = 5


def classify_video(video_model: LoadedVideoModel, read_frames: Callable[[np.ndarray], np.ndarray],
                   num_frames: int) -> list[tuple[str, float]]:
    """The input's :data:`VIDEO_TOPK` most probable classes ``[(name, probability)]``, best first."""
    probs = np.asarray(video_model.predict(video_model.model, read_frames, num_frames), np.float64).reshape(-1)
    if len(probs) != len(video_model.class_names):
        raise ValueError(f"video classifier gave {len(probs)} scores for {len(video_model.class_names)} classes")
    top = np.argsort(-probs, kind="stable")[:VIDEO_TOPK]
    return [(video_model.class_names[i], float(probs[i])) for i in top]


# --------------------------------------------------------------------------------------------------------------
# Per-video processing


@dataclass
class Timings:
    """Seconds spent per stage (summed over inputs)."""

    decode: float = 0.0
    detect: float = 0.0
    pose: float = 0.0
    model: float = 0.0
    write: float = 0.0
    frames: int = 0

    def add(self, other: "Timings") -> None:
        for key in ("decode", "detect", "pose", "model", "write", "frames"):
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
    video_classes: list[tuple[str, float]] | None = None  # with --video-model: top classes, best first


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


#: keypoints scoring at least this much locate a person in the velocity estimate
VELOCITY_MIN_SCORE = 0.3


def window_velocities(tracks: np.ndarray, frame_indices: np.ndarray) -> np.ndarray:
    """``(N, 2)`` pixels per frame of each person over a pose window ``tracks`` ``(N, W, 17, 3)`` sampled at
    ``frame_indices`` ``(W,)``: the mean displacement of the keypoints seen (score >= :data:`VELOCITY_MIN_SCORE`)
    in both the first and the last frame where the person was seen; NaN when it cannot be told."""
    tracks = np.asarray(tracks, np.float64)
    frame_indices = np.asarray(frame_indices, np.float64)
    out = np.full((len(tracks), 2), np.nan)
    for i, track in enumerate(tracks):
        seen = track[:, :, 2] >= VELOCITY_MIN_SCORE
        frames_seen = np.flatnonzero(seen.sum(axis=1) >= 4)
        if len(frames_seen) < 2:
            continue
        first, last = frames_seen[0], frames_seen[-1]
        both = seen[first] & seen[last]
        span = frame_indices[last] - frame_indices[first]
        if both.sum() < 4 or span <= 0:
            continue
        out[i] = (track[last, both, :2] - track[first, both, :2]).mean(axis=0) / span
    return out


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


def top_states(probs: np.ndarray, names, k: int) -> np.ndarray:
    """Indices of the ``k`` most probable classes (stable order on ties), skipping ``no_interaction`` classes: they
    say a part does nothing, which is not a state worth listing (their scores stay in the full probability columns)."""
    order = np.argsort(-np.asarray(probs), kind="stable")
    return np.array([j for j in order if not str(names[j]).endswith("no_interaction")][:k], dtype=np.int64)


def tps_state_overrides(probs: np.ndarray, names: tuple[str, ...], threshold: float) -> dict[str, str]:
    """``{tps part: state}`` from one person's probabilities over Kinetics-TPS part states (``names[i]`` =
    ``"<tps part>: <state>"``, e.g. ``"right_hand: raise"``): each part's best state when it scores at least
    ``threshold``. Only a model whose vocabulary is in :data:`TPS_STATE_VOCABS` is asked: PaSta states (HAKE's
    vocabularies) are another label set and stay in the PaSta columns, out of the Kinetics-TPS JSON."""
    from partwise.infer.kinematics import TPS_PARTS

    best: dict[str, tuple[float, str]] = {}
    for p, name in zip(np.asarray(probs, np.float64), names):
        part, _, state = name.partition(": ")
        if part in TPS_PARTS and state and p >= threshold and p > best.get(part, (-1.0, ""))[0]:
            best[part] = (float(p), state)
    return {part: state for part, (_, state) in best.items()}


#: keyframes whose frames are decoded together (bounds memory: a few dozen frames per keyframe).
PREFETCH_KEYFRAMES = 8


def _frames_needed(keyframes: list[Keyframe], fps: float, n: int, options: RunOptions, model: LoadedModel | None,
                   use_pose: bool, keyframe_image: bool) -> np.ndarray:
    """0-based indices of every frame the pipeline reads for ``keyframes`` (``keyframe_image``: the keyframes
    themselves, for a detector or an image model)."""
    from partwise.data.video import clip_around

    needed = [np.array([kf.frame_index for kf in keyframes], np.int64)] if keyframe_image else []
    for kf in keyframes:
        if use_pose:
            needed.append(_pose_windows(kf, fps, n, options)[0])
        if model is not None and model.family != "activity2vec":
            needed.append(clip_around(kf.frame_index, model.clip.clip_len, model.clip.frame_interval, n))
    return np.concatenate(needed) if needed else np.zeros(0, np.int64)


def process_item(item: InputItem, options: RunOptions, boxes: dict | None = None, model: LoadedModel | None = None,
                 pose=None, progress_position: int = 1, detector: LoadedDetector | None = None,
                 video_model: LoadedVideoModel | None = None, objects=None) -> VideoResult:
    """Run the pipeline on one input (see the module docstring); raises :class:`InputError` for a bad input.

    People come from ``boxes`` (``{video_id: {timestamp: (N, 5)}}``, :func:`load_boxes`), else ``detector``, else
    ``pose``'s own person finder."""
    import time

    from partwise.progress import bar as tqdm

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
    elif detector is None and pose is None:
        raise ConfigError("no source of people: give --boxes or --detector, or leave --pose at auto (MoveNet)")
    keyframes, _ = keyframes_for(n, fps, options, None if video_boxes is None else list(video_boxes))
    result = VideoResult(item, width, height, fps, n, timings=timings)
    if video_model is not None:
        t0 = time.perf_counter()
        result.video_classes = classify_video(video_model, frames.read, n)
        timings.model += time.perf_counter() - t0
    video_label = result.video_classes[0][0] if result.video_classes else None
    tracker = IoUTracker()
    verb_vocab = vocab.load("verbs157") if model is not None and model.family == "activity2vec" else None
    body_parts = vocab.BODY_PARTS
    scale = np.array([width, height, width, height], np.float64)
    keyframe_image = (video_boxes is None or objects is not None
                      or (model is not None and model.family == "activity2vec"))
    detections: dict[int, np.ndarray] = {}
    bar = tqdm(keyframes, desc=item.video_id[:24], unit="kf", leave=False, position=progress_position,
               disable=not options.progress)
    for k, kf in enumerate(bar):
        if k % PREFETCH_KEYFRAMES == 0:  # decode the frames of the next keyframes in one pass
            group = keyframes[k:k + PREFETCH_KEYFRAMES]
            t0 = time.perf_counter()
            frames.prefetch(_frames_needed(group, fps, n, options, model, pose is not None, keyframe_image))
            timings.decode += time.perf_counter() - t0
            if video_boxes is None and detector is not None:  # one detector batch per group of keyframes
                t0 = time.perf_counter()
                batch = frames.read(np.array([g.frame_index for g in group]))
                timings.decode += time.perf_counter() - t0
                t0 = time.perf_counter()
                found = detector.detect(detector.model, batch, score_threshold=options.detector_threshold,
                                        nms_iou=options.detector_nms_iou, max_people=options.max_people)
                timings.detect += time.perf_counter() - t0
                detections = {k + j: np.asarray(d, np.float64).reshape(-1, 5) for j, d in enumerate(found)}
        # People at this keyframe.
        keypoints = None
        if video_boxes is not None:
            chosen = select_boxes(video_boxes.get(kf.time_s, np.zeros((0, 5))), options.box_threshold,
                                  options.nms_iou, options.max_people)
            person_px, scores = chosen[:, :4] * scale, chosen[:, 4]
        elif detector is not None:
            found_here = detections.get(k, np.zeros((0, 5)))
            person_px = np.clip(found_here[:, :4], 0, scale)
            scores = found_here[:, 4]
        else:
            t0 = time.perf_counter()
            frame = frames.read(np.array([kf.frame_index]))[0]
            timings.decode += time.perf_counter() - t0
            t0 = time.perf_counter()
            found = pose.detect_all(frame, options.max_people)
            timings.pose += time.perf_counter() - t0
            person_px = np.array([person[0] for person in found]).reshape(-1, 4)
            # the pose source's person score, else (MediaPipe) the mean keypoint score
            scores = np.array([person[2] if len(person) > 2 else float(person[1][:, 2].mean()) for person in found])
        if len(person_px) == 0:
            tracker.update(person_px)
            continue
        # Pose over a short window around the keyframe: part boxes and kinematic states.
        kinematic: list[dict[str, str]] = [{} for _ in range(len(person_px))]
        if pose is not None:
            indices, centre = _pose_windows(kf, fps, n, options)
            t0 = time.perf_counter()
            window = frames.read(indices)
            timings.decode += time.perf_counter() - t0
            t0 = time.perf_counter()
            if hasattr(pose, "estimate_many"):  # one pass per frame for all people (MoveNet MultiPose)
                tracks = np.stack([pose.estimate_many(f, person_px) for f in window], axis=1)  # N, W, 17, 3
            else:
                tracks = np.stack([np.stack([pose.estimate(f, box) for f in window]) for box in person_px])
            timings.pose += time.perf_counter() - t0
            keypoints = tracks[:, centre]
            kinematic = [kinematic_states(track, fps / max(1, int(round(fps / options.pose_fps))))[centre]
                         for track in tracks]
            timings.frames += len(indices)
            velocities = window_velocities(tracks, indices) * (fps / options.fps)
        else:
            timings.frames += 1
            velocities = None
        ids = tracker.update(buffered_boxes(person_px, options.track_buffer), velocities)
        kp = keypoints if keypoints is not None else np.zeros((len(person_px), 17, 3))
        parts = _part_boxes(kp, person_px, width, height)
        relations: list[list[dict]] = [[] for _ in person_px]  # objects each person's parts touch
        if objects is not None:
            from partwise.infer.objects import part_object_relations

            t0 = time.perf_counter()
            found_objects = objects.detect(frames.read(np.array([kf.frame_index]))[0])
            relations = part_object_relations(kp, parts, person_px, found_objects)
            timings.detect += time.perf_counter() - t0
        # Learned model.
        outputs = None
        if model is not None:
            t0 = time.perf_counter()
            if model.family == "activity2vec":
                image = frames.read(np.array([kf.frame_index]))[0]
            else:
                from partwise.data.video import clip_around

                image = frames.read(clip_around(kf.frame_index, model.clip.clip_len, model.clip.frame_interval, n))
            timings.decode += time.perf_counter() - t0
            t0 = time.perf_counter()
            if model.family == "activity2vec":
                outputs = run_image_model(model, image, person_px, parts, kp)
            else:
                outputs = run_model(model, image, person_px)
            timings.model += time.perf_counter() - t0
            if "pasta" in outputs and outputs["pasta"].shape[1] != len(model.pasta_names):
                raise InputError(model.path, "pasta", f"the model gives {outputs['pasta'].shape[1]} PaSta scores, its "
                                                      f"vocabulary {model.pasta_vocab} has {len(model.pasta_names)}")
        for i in range(len(person_px)):
            states = dict(kinematic[i])  # Kinetics-TPS part states: what the TPS JSON reports
            kinematic_names = [f"{p}: {states[p]}" for p in TPS_PARTS if p in states]
            row: dict[str, Any] = {
                "video_id": item.video_id, "time_s": kf.time_s, "frame_index": kf.frame_index,
                "width": width, "height": height, "box_px": person_px[i].tolist(), "score": float(scores[i]),
                "track_id": int(ids[i]), "keypoints": None if keypoints is None else keypoints[i].tolist(),
                "kinematic": kinematic_names,
                # without a PaSta model the part states are the kinematic ones, in the Kinetics-TPS vocabulary
                "pasta": kinematic_names, "pasta_vocab": "kinetics-tps" if kinematic_names else None,
                "pasta_scores": None, "pasta_probs": None, "actions": [], "action_scores": None,
                "verbs": [], "verb_scores": None, "activity_vector": None, "video_label": video_label,
                "source": f"{item.path}:{kf.frame_index}",
            }
            if outputs is not None and "pasta" in outputs:
                p = outputs["pasta"][i]
                top = top_states(p, model.pasta_names, options.topk)
                row["pasta"] = [model.pasta_names[j] for j in top]
                row["pasta_vocab"] = model.pasta_vocab
                row["pasta_scores"] = [float(p[j]) for j in top]
                row["pasta_probs"] = p.astype(np.float32).tolist()
                if model.pasta_vocab in TPS_STATE_VOCABS:
                    states.update(tps_state_overrides(p, model.pasta_names, options.state_threshold))
            if outputs is not None and "actions" in outputs:
                a = outputs["actions"][i]
                row["actions"] = [int(j + 1) for j in np.flatnonzero(a >= options.action_threshold)]
                row["action_scores"] = a.astype(np.float32).tolist()
            if outputs is not None and "verbs" in outputs:
                v = outputs["verbs"][i]
                row["verbs"] = [verb_vocab.names[j] for j in top_states(v, verb_vocab.names, options.topk)]
                row["verb_scores"] = v.astype(np.float32).tolist()
            if outputs is not None and "features" in outputs:
                row["activity_vector"] = outputs["features"][i].astype(np.float32).tolist()
            row["part_boxes"] = [{"part": name, "box_px": parts[i, j].tolist(), "state": states.get(name)}
                                 for j, name in enumerate(body_parts)]
            row["objects"] = relations[i]
            result.rows.append(row)
    bar.close()
    return result


# --------------------------------------------------------------------------------------------------------------
# Many inputs


def make_pose(options: RunOptions):
    """The pose source the options ask for: MoveNet (``auto``, the default: embedded, real weights), MediaPipe (the
    optional pose extra), or None (``none``)."""
    if options.pose == "none":
        return None
    if options.pose == "mediapipe":
        from partwise.infer.pose import PoseEstimator

        return PoseEstimator()
    from partwise.infer.movenet_pose import MoveNetPose

    return MoveNetPose(detector=options.person_detector, single=options.single_pose)


@dataclass
class _WorkerState:
    options: RunOptions
    out: Path
    boxes: dict | None
    model: LoadedModel | None
    pose: Any
    detector: LoadedDetector | None = None
    video_model: LoadedVideoModel | None = None
    objects: Any = None  # partwise.infer.objects.ObjectSource


def _load_state(options: RunOptions, out: Path) -> _WorkerState:
    from partwise.infer.objects import make_object_source

    state = _WorkerState(options, out, load_boxes(options.boxes) if options.boxes else None,
                        load_run_model(options.model) if options.model else None, make_pose(options),
                        load_detector(options.detector) if options.detector and not options.boxes else None,
                        load_video_model(options.video_model) if options.video_model else None)
    state.objects = make_object_source(options.objects, options.object_threshold, state.pose, options.person_detector)
    return state


_STATE: _WorkerState | None = None


def _init_worker(options: RunOptions, out: str, single_thread: bool = True, state: _WorkerState | None = None) -> None:
    global _STATE
    import torch

    if single_thread:  # worker processes share the cores
        torch.set_num_threads(1)
    _STATE = state or _load_state(options, Path(out))


def _check_sources(options: RunOptions, out: Path) -> _WorkerState:
    """Load the boxes, the models and the pose source once, so a bad file or a missing extra is one error before
    any input is touched."""
    if not options.boxes and not options.detector and options.pose == "none":
        raise ConfigError("no source of people: --pose none needs --boxes FILE or --detector CKPT|NAME")
    return _load_state(options, out)


def _run_one(item: InputItem, position: int = 1) -> tuple[str, str | None, Timings]:
    """Process and write one input in the current worker; ``(video_id, error line or None, timings)``."""
    import time

    from partwise.infer import outputs

    state = _STATE
    try:
        result = process_item(item, state.options, state.boxes, state.model, state.pose, position,
                              detector=state.detector, video_model=state.video_model, objects=state.objects)
        t0 = time.perf_counter()
        outputs.write_video_outputs(result, state.out, video=state.options.video, style=label_style(state.options),
                                    progress=state.options.progress)
        result.timings.write += time.perf_counter() - t0
    except PartwiseError as exc:
        return item.video_id, str(exc), Timings()
    except (OSError, ValueError, RuntimeError) as exc:  # a decoder or library failing on a damaged file
        return item.video_id, f"{item.path}: {type(exc).__name__}: {exc}", Timings()
    return item.video_id, None, result.timings


def label_style(options: RunOptions):
    """The annotated video's :class:`partwise.infer.render.Style` from ``options``."""
    from partwise.infer.render import Style

    return Style(state_thr=options.label_state_thr, action_thr=options.label_action_thr, top_k=options.label_top_k)


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
    notes: list[str] = field(default_factory=list)  # one-line remarks for the user (not errors)
    warnings: list[str] = field(default_factory=list)  # e.g. a model trained on synthetic data (also in run.json)
    metadata: dict = field(default_factory=dict)  # what run.json says produced the outputs (run_metadata)


def run_metadata(options: RunOptions, state: _WorkerState | None) -> dict:
    """What produced the outputs (``run.json``): where people came from, each model's spec, file, family and
    output vocabularies (from the loaded models when ``state`` has them, else the specs alone), ``sources``: for
    the pose source, the person detector, the object detector, the model and the video model, the weights' name,
    file, family, domain (real / synthetic / unknown), licence and where they are published
    (:mod:`partwise.infer.provenance`), and ``warnings``: one line per source trained on synthetic data."""
    from partwise.infer import provenance

    def describe(spec, loaded, **vocabs):
        if spec is None:
            return None
        if loaded is None:
            return {"spec": str(spec)}
        return {"spec": str(spec), "name": loaded.name, "path": loaded.path, **vocabs}

    def source(spec, loaded, family):
        if spec is None:
            return None
        return provenance.describe_weights(spec, getattr(loaded, "path", None) or None,
                                           getattr(loaded, "family", None) or family)

    model = state.model if state is not None else None
    model_info = describe(options.model, model)
    if model is not None:
        model_info.update(family=model.family, pasta_vocab=model.pasta_vocab,
                          action_vocab="ava80" if model.family in ("st_activity2vec", "ava_detector") else None,
                          verb_vocab="verbs157" if model.family == "activity2vec" else None)
    video_model = state.video_model if state is not None else None
    detector_spec = options.detector if not options.boxes else None
    detector = state.detector if state is not None else None
    objects, objects_spec = provenance.object_source(options, state)
    sources = {  # run.json "sources": what each output came from
        "pose": provenance.describe_pose(options, state.pose if state is not None else None),
        "detector": source(detector_spec, detector, "person_detector"),
        "object_detector": source(objects_spec, objects, "object_detector"),
        "model": source(options.model, model, None),
        "video_model": source(options.video_model, video_model, "video_classifier"),
    }
    info = {
        "persons_from": "boxes" if options.boxes else "detector" if options.detector else "pose",
        "boxes": options.boxes,
        "model": model_info,
        "detector": describe(detector_spec, detector, family="person_detector"),
        "video_model": describe(options.video_model, video_model, family="video_classifier",
                                classes=len(video_model.class_names) if video_model is not None else None),
        # part_boxes[].state and the Kinetics-TPS JSON hold Kinetics-TPS part states only
        "part_state_vocab": "kinetics-tps",
        # what the annotated video's labels and the page's timeline show (--state-thr, --action-thr, --top-k)
        "label_state_thr": options.label_state_thr,
        "label_action_thr": options.label_action_thr,
        "label_top_k": options.label_top_k,
        "gt": options.gt,
        "warnings": provenance.synthetic_warnings({option: sources[key] for key, option in (
            ("pose", "--pose"), ("detector", "--detector"), ("object_detector", "--objects"), ("model", "--model"),
            ("video_model", "--video-model"))}),
        "sources": sources,
    }
    for key in ("model", "detector", "video_model"):
        if info[key] is not None and sources[key] is not None:
            info[key].update({k: sources[key][k] for k in ("domain", "licence")})
    return info


def run(inputs: str | os.PathLike, out: str | os.PathLike, options: RunOptions, *, workers: int = 1,
        tps_json: bool = False, ava_csv: bool = False, overwrite: bool = False,
        err: Callable[[str], None] | None = None, warn: Callable[[str], None] | None = None) -> RunSummary:
    """Process every input under ``out`` and merge the results (see :mod:`partwise.infer.outputs`).

    Inputs whose results already exist are skipped (unless ``overwrite``). A bad input is reported through ``err``
    (one line) and skipped. Each warning of :func:`run_metadata` (a model trained on synthetic data) goes to ``warn``
    once, before any input is processed (default: ``partwise: warning: ...`` on stderr), on rank 0 only; it is also
    in the summary, ``run.json`` and ``index.html``. Under ``torchrun`` each rank takes every ``world_size``-th
    input; rank 0 merges after a barrier (other ranks return with an empty ``merged``)."""
    from partwise.infer import outputs
    from partwise.progress import bar as tqdm
    from partwise.progress import write as progress_write

    options.check()
    from partwise.io import check_output

    check_output(out, "dir")
    err = err or progress_write
    items = discover_inputs(inputs)
    out = Path(out)
    rank, world = distributed_rank()
    mine = items[rank::world]
    todo = [it for it in mine if overwrite or not outputs.video_done(out, it.video_id)]
    skipped = [it.video_id for it in mine if it not in todo]
    state = _check_sources(options, out) if todo else None
    metadata = run_metadata(options, state)
    if rank == 0:
        for line in metadata["warnings"]:
            (warn or (lambda text: err(f"partwise: warning: {text}")))(line)
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
            return RunSummary(done, skipped, failed, timings, {}, warnings=metadata["warnings"], metadata=metadata)
    import time

    t0 = time.perf_counter()
    notes: list[str] = []
    metadata["failed"] = [{"input": str(vid), "error": str(error)} for vid, error in failed]  # also in run.json
    merged = outputs.merge(out, [it.video_id for it in items], tps_json=tps_json, ava_csv=ava_csv,
                           metadata=metadata, notes=notes, failed=failed, gt=options.gt,
                           gt_labelmap=options.gt_labelmap)
    timings.write += time.perf_counter() - t0
    return RunSummary(done, skipped, failed, timings, merged, notes, metadata["warnings"], metadata)


def _barrier() -> None:
    """Wait for every torchrun rank, then take the gloo process group down: one left alive at interpreter exit
    aborts the process ("terminate called without an active exception") on some runs."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()
    dist.destroy_process_group()
