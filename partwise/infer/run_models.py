"""``partwise run``'s learned models: ``--model`` (clip or image models on the people of each keyframe),
``--detector`` (person boxes) and ``--video-model`` (a class for the whole input), loaded once per run.

Hand-offs: :class:`LoadedModel` / :class:`LoadedDetector` / :class:`LoadedVideoModel` (a model and how to feed it);
:func:`run_model` / :func:`run_image_model` -> ``{"pasta", "actions" | "verbs", "features"}`` arrays per person.
See :mod:`partwise.infer.pipeline` for the whole run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from partwise.errors import InputError

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

    from partwise.models.fuse import to_inference

    loaded = weights.load(spec, RUN_MODEL_FAMILIES, "--model")
    # BatchNorm folded, fused convolutions, channels-last: 1.5x the unfused forward, outputs equal to 1e-5; in place,
    # since this copy is never trained or saved
    model = to_inference(loaded.model, inplace=True)
    family, extra = loaded.family, loaded.extra
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


def keyframe_outputs(model: LoadedModel | None, frames, frame_index: int, num_frames: int, boxes: np.ndarray,
                     parts: np.ndarray, keypoints: np.ndarray, timings) -> dict[str, np.ndarray] | None:
    """The model stage for one keyframe (frame ``frame_index`` of ``num_frames``): ``model``'s outputs for the
    persons in pixel ``boxes`` ``(N, 4)`` (``parts`` ``(N, 10, 4)`` and ``keypoints`` ``(N, 17, 3)`` for
    ``activity2vec``), read from ``frames`` (:class:`partwise.infer.inputs._Frames`: the keyframe, or the clip
    around it); None without a model. Raises :class:`InputError` when the PaSta scores do not match the model's
    vocabulary. ``timings``: :class:`partwise.infer.timings.Timings`."""
    if model is None:
        return None
    with timings.timing("decode"):
        if model.family == "activity2vec":
            image = frames.read(np.array([frame_index]))[0]
        else:
            from partwise.data.video import clip_around

            image = frames.read(clip_around(frame_index, model.clip.clip_len, model.clip.frame_interval, num_frames))
    with timings.timing("model"):
        if model.family == "activity2vec":
            outputs = run_image_model(model, image, boxes, parts, keypoints)
        else:
            outputs = run_model(model, image, boxes)
    if "pasta" in outputs and outputs["pasta"].shape[1] != len(model.pasta_names):
        raise InputError(model.path, "pasta", f"the model gives {outputs['pasta'].shape[1]} PaSta scores, its "
                                              f"vocabulary {model.pasta_vocab} has {len(model.pasta_names)}")
    return outputs
