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
   embedded real weights; more than 6 people through two overlapping halves, or, with CenterNet installed, crops
   around its person boxes; people only CenterNet finds refined by SinglePose crops when installed), or MediaPipe's single-person detector run repeatedly, blanking each
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
7. **Frames** are decoded :data:`PREFETCH_KEYFRAMES` keyframes at a time, only those the steps above read; with
   the annotated video on (``partwise run``), a video whose frames fit in
   :data:`partwise.infer.inputs.SHARED_FRAMES_BYTES` is decoded once, whole, and its frames serve the steps above
   and the renderer (no second decode).
8. **Evaluation** (optional, ``--gt FILE``, an AVA CSV): after the merge, the rows are scored in-process
   (:mod:`partwise.infer.evaluation`): person detection AP@0.5 and, with action scores, AVA frame mAP (official
   profile) of the ``--labelmap`` classes -> ``run.json`` ``evaluation`` and the page's Evaluation section.

See :mod:`partwise.infer.outputs` for the files written.

Stages, one module each (this one only wires them; their public names are re-exported here), with the typed
hand-off each passes on per keyframe: :mod:`partwise.infer.inputs` (inputs, boxes from a file, keyframes, frame
access: :class:`_Frames`) -> :mod:`partwise.infer.people` (:class:`KeyframePeople`) -> :mod:`partwise.infer.poses`
(:func:`estimate_poses` -> :class:`KeyframePoses`: keypoints, kinematic states of
:mod:`partwise.infer.kinematics`, velocities; the pose sources are :mod:`partwise.infer.movenet_pose` and
:mod:`partwise.infer.pose`) -> :mod:`partwise.infer.tracking` (:func:`track_keyframe`: track ids) -> part boxes
(:func:`partwise.infer.poses._part_boxes`) -> :mod:`partwise.infer.objects` (``keyframe_relations``) ->
:mod:`partwise.infer.run_models` (:func:`keyframe_outputs`; ``--model``, ``--detector``, ``--video-model``) ->
:mod:`partwise.infer.rows` (:func:`keyframe_rows`) -> :mod:`partwise.infer.outputs` and
:mod:`partwise.infer.render` (files and the annotated video). :mod:`partwise.infer.timings` holds the per-stage
seconds.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from partwise.errors import ConfigError, InputError, PartwiseError  # noqa: F401
from partwise.infer.inputs import (AVA_TIMESTAMP_START, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS,  # noqa: F401
                                   InputItem, Keyframe, _Frames, discover_inputs, keyframes_for, load_boxes,
                                   select_boxes)
from partwise.infer.people import KeyframePeople, PeopleSource  # noqa: F401
from partwise.infer.poses import (PREFETCH_KEYFRAMES, VELOCITY_MIN_SCORE, KeyframePoses, _frames_needed,  # noqa: F401
                                  _part_boxes, _pose_windows, buffered_boxes, estimate_poses, window_velocities)
from partwise.infer.rows import VideoContext, keyframe_rows
from partwise.infer.run_models import (FAMILY_PASTA_VOCAB, RUN_MODEL_FAMILIES, TPS_STATE_VOCABS,  # noqa: F401
                                       VIDEO_TOPK, ClipSpec, LoadedDetector, LoadedModel, LoadedVideoModel, _rois,
                                       classify_video, clip_tensor, load_detector, load_run_model, load_video_model,
                                       keyframe_outputs, run_image_model, run_model, top_states,
                                       tps_state_overrides)
from partwise.infer.timings import Timings
from partwise.infer.tracking import track_keyframe


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
    max_people: int = 50  # a bound, not a filter: a street or a stadium holds more than 10
    pose: str = "auto"  # auto (= movenet) | movenet | mediapipe | none
    person_detector: str | None = "auto"  # MoveNet's extra person boxes: auto (centernet when installed) | name | None
    single_pose: str | None = "auto"  # SinglePose for missed people: auto (thunder, lightning when installed) | None
    objects: str | None = "auto"  # objects parts touch (infer.objects): auto (centernet when installed) | none | name
    object_threshold: float = 0.4  # minimum object score (partwise.infer.objects.OBJECT_THRESHOLD)
    # pose at the keyframe and 0.4 s before and after it: a walker's velocity for tracking needs the 0.8 s span
    # (over 0.4 s, two walkers side by side swapped identities on the real clip), the kinematic states' derivatives
    # take the same two samples, and each extra pose costs about a tenth of a second of a 10 fps video on one core
    # (real time is the goal)
    pose_fps: float = 2.5
    pose_window_s: float = 0.4
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


# --------------------------------------------------------------------------------------------------------------
# Per-video processing


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
    frames: list[np.ndarray] | None = None  # every decoded frame, kept for the annotated video (_Frames.shared)


def process_item(item: InputItem, options: RunOptions, boxes: dict | None = None, model: LoadedModel | None = None,
                 pose=None, progress_position: int = 1, detector: LoadedDetector | None = None,
                 video_model: LoadedVideoModel | None = None, objects=None,
                 keep_frames: bool = False) -> VideoResult:
    """Run the pipeline on one input (see the module docstring); raises :class:`InputError` for a bad input.

    ``keep_frames``: decode a video once, whole, and hand its frames on in ``result.frames`` for the annotated
    video (when they fit in :data:`partwise.infer.inputs.SHARED_FRAMES_BYTES`; the caller drops them after
    writing), instead of keyframe groups now and a second decode by the renderer.

    People come from ``boxes`` (``{video_id: {timestamp: (N, 5)}}``, :func:`load_boxes`), else ``detector``, else
    ``pose``'s own person finder. Per keyframe the stages hand on: frames (:class:`_Frames`) -> people
    (:class:`KeyframePeople`) -> poses (:class:`KeyframePoses`) -> track ids -> part boxes -> objects -> model
    outputs -> rows (:func:`keyframe_rows`)."""
    from partwise.progress import bar as tqdm

    from partwise import vocab
    from partwise.infer.objects import keyframe_relations  # imports the object detector's code: only when asked
    from partwise.infer.tracking import IoUTracker

    timings = Timings()
    with timings.timing("decode"):
        frames = _Frames(item, share=keep_frames)
    width, height, fps, n = frames.width, frames.height, frames.fps, frames.num_frames
    video_boxes = None
    if boxes is not None:
        video_boxes = boxes.get(item.video_id, {})
    elif detector is None and pose is None:
        raise ConfigError("no source of people: give --boxes or --detector, or leave --pose at auto (MoveNet)")
    keyframes, _ = keyframes_for(n, fps, options, None if video_boxes is None else list(video_boxes))
    result = VideoResult(item, width, height, fps, n, timings=timings)
    if video_model is not None:
        with timings.timing("model"):
            result.video_classes = classify_video(video_model, frames.read, n)
    ctx = VideoContext(item, width, height, result.video_classes[0][0] if result.video_classes else None, model,
                       vocab.load("verbs157") if model is not None and model.family == "activity2vec" else None)
    people_source = PeopleSource(options, width, height, video_boxes, detector, pose)
    tracker = IoUTracker()
    keyframe_image = (video_boxes is None or objects is not None
                      or (model is not None and model.family == "activity2vec"))
    bar = tqdm(keyframes, desc=item.video_id[:24], unit="kf", leave=False, position=progress_position,
               disable=not options.progress)
    for k, kf in enumerate(bar):
        if k % PREFETCH_KEYFRAMES == 0:  # decode the frames of the next keyframes in one pass
            group = keyframes[k:k + PREFETCH_KEYFRAMES]
            with timings.timing("decode"):
                frames.prefetch(_frames_needed(group, fps, n, options, model, pose is not None, keyframe_image))
            people_source.start_group(k, group, frames, timings)
        people = people_source.at(k, kf, frames, timings)
        if len(people) == 0:
            tracker.update(people.boxes)
            continue
        poses = estimate_poses(pose, frames, kf, people.boxes, fps, n, options, timings)
        timings.frames += poses.frames
        with timings.timing("track"):
            ids = track_keyframe(tracker, people.boxes, poses.velocities, options.track_buffer)
            keypoints = poses.keypoints_or_zeros
            parts = _part_boxes(keypoints, people.boxes, width, height)
        relations: list[list[dict]] = [[] for _ in people.boxes]  # objects each person's parts touch
        if objects is not None:
            with timings.timing("detect"):
                relations = keyframe_relations(objects, frames.read(np.array([kf.frame_index]))[0], keypoints,
                                               parts, people.boxes)
        outputs = keyframe_outputs(model, frames, kf.frame_index, n, people.boxes, parts, keypoints, timings)
        result.rows += keyframe_rows(ctx, kf, people, poses, ids, parts, relations, outputs, options)
    bar.close()
    result.frames = frames.shared()
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
    from partwise.memory import reuse_freed_memory
    from partwise.infer.movenet_pose import MoveNetPose

    reuse_freed_memory()  # MultiPose's large activations: see partwise.memory
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
                              detector=state.detector, video_model=state.video_model, objects=state.objects,
                              keep_frames=state.options.video)
        t0 = time.perf_counter()
        outputs.write_video_outputs(result, state.out, video=state.options.video, style=label_style(state.options),
                                    progress=state.options.progress)
        result.timings.write += time.perf_counter() - t0
        result.frames = None  # the decoded video: hundreds of MB
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
                           gt_labelmap=options.gt_labelmap, max_people=options.max_people)
    timings.write += time.perf_counter() - t0
    return RunSummary(done, skipped, failed, timings, merged, notes, metadata["warnings"], metadata)


def _barrier() -> None:
    """Wait for every torchrun rank, then take the gloo process group down (:mod:`partwise.distributed`)."""
    import torch.distributed as dist

    from partwise.distributed import shut_down_process_group

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    shut_down_process_group()
