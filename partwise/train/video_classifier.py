"""Training task ``video_classifier``: whole-video action classes (Kinetics-TPS's ``pred_vid_result.json``) with a
:class:`partwise.models.video_classifier.VideoClassifier`.

Videos and their classes come from ``data.annotations`` under ``data.root``:

* ``format: records`` -- a records ``.parquet`` (``truth.parquet`` of ``partwise synth``): one class per video in
  the ``video_label`` column, the split in ``split``;
* ``format: kinetics-tps`` -- a Kinetics-TPS annotation tree (``<split>_annotations/<class>/<video>/``): the class
  is the folder name.

Frames are read from ``frames/<video>/img_%05d.jpg`` or ``videos/<video>.<ext>`` (:class:`FrameSource`). Class
names: ``data.classes`` when given, else the sorted labels of the train and val videos; ``model.num_classes`` and
``model.class_names`` are filled in from them (given ones must agree).

Training (mmaction2 Kinetics recipe, simplified): one clip per video per sample, ``SampleFrames(num_clips=1)``
(a uniformly random start; :func:`train_clip_indices`), short side rescaled to a random size in
``data.scale_range``, a random ``data.crop`` square crop (0: none), horizontal flip with probability ``data.flip``,
optional per-channel gain/shift colour jitter (``data.color_jitter``; not in the mmaction2 recipe);
every draw comes from the per-sample generator of :func:`partwise.train.engine.sample_rng` (exact resume); softmax
cross-entropy, mean over the clips of the batch.

End-of-run evaluation (rank 0; ``eval.json`` + ``eval_confusion.png``): every val video classified with
:func:`predict_video` (``model.num_clips`` evenly spaced clips, probabilities averaged), top-1 / top-k accuracy
(k = 5, or the number of classes when fewer: ``top4`` on the 4 synthetic classes, trivially 1) and mean class accuracy
(over the classes present in val), next to the majority-class prior (the training set's class frequencies used as
every video's scores; ties ranked by class order).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from partwise.errors import ConfigError
from partwise.train.base import Task, TrainModel, build_model_config, load_init, write_eval_json
from partwise.train.data import FrameSource, resize_clip, short_side_size
from partwise.train.engine import OptimConfig, RunConfig, ScheduleConfig, sample_rng
from partwise.train.sources import read_records_file


@dataclass
class VideoDataConfig:
    """Where the videos and their classes are, and the training augmentation. Clip sampling (``clip_len``,
    ``frame_interval``, test clips and size, mean/std) is the model's (``model.*``)."""

    root: str  # required: the dataset folder (frames/ or videos/ inside)
    annotations: str = "truth.parquet"  # relative to root: records .parquet, or a Kinetics-TPS tree
    format: str = "records"  # records | kinetics-tps
    train_split: str = "train"
    val_split: str = "val"
    classes: list[str] = field(default_factory=list)  # empty: sorted labels of the train and val videos
    scale_range: list[int] = field(default_factory=lambda: [256, 320])  # training short side, inclusive
    crop: int = 224  # training random square crop; 0 keeps the whole rescaled frame
    flip: float = 0.5
    color_jitter: float = 0.0  # c > 0: per clip and channel, gain in [1-c, 1+c] and shift in [-c, c] x 128 levels
    source: str = "auto"  # auto (frames/ when present, else videos/) | frames | video
    cache_frames: bool = False  # random clips rarely repeat frames: caching mostly costs memory


@dataclass
class VideoEvalConfig:
    enabled: bool = True
    max_videos: int = 0  # 0: every val video


@dataclass
class VideoClassifierTask:
    """mmaction2 ``slowonly_r50_8xb16-8x8x1-256e_kinetics400-rgb`` defaults: SGD lr 0.1 for a global batch of 64
    (the 0.x config; 1.x: 0.2 for 128), momentum 0.9, wd 1e-4, grad clip 40, linear warm-up from 0.1 then cosine
    to 0 (set ``schedule.warmup_steps`` / ``run.max_steps`` from the epoch counts 34 / 256)."""

    data: VideoDataConfig
    task: str = "video_classifier"
    model: dict = field(default_factory=dict)  # VideoClassifierConfig fields
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=64, grad_clip=40.0))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=0.1, weight_decay=1e-4))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(name="cosine"))
    eval: VideoEvalConfig = field(default_factory=VideoEvalConfig)
    init: str = ""
    init_backbone_only: bool = False  # take only backbone.* from init (e.g. Kinetics-400 weights, new classes)
    norm_eval: bool = False


# ---------------------------------------------------------------------------------------------------------------
# the video list


@dataclass
class LabeledVideo:
    video: str
    label: str


def list_videos(cfg: VideoDataConfig, split: str) -> list[LabeledVideo]:
    """The videos of ``split`` with their class, in a stable order (first appearance / sorted folders)."""
    path = Path(cfg.root) / cfg.annotations
    if cfg.format == "records":
        import pyarrow.compute as pc

        columns = ["video_id", "split", "video_label"]
        table = read_records_file(path, columns, text_columns=tuple(columns))
        table = table.filter(pc.equal(table.column("split"), split))
        labels: dict[str, str] = {}
        for video, label in zip(table.column("video_id").to_pylist(), table.column("video_label").to_pylist()):
            if label is None or label == "":
                raise ConfigError(f"data.annotations: {path}: video {video} has no video_label")
            if labels.setdefault(video, label) != label:
                raise ConfigError(f"data.annotations: {path}: video {video} has two classes "
                                  f"({labels[video]!r}, {label!r})")
        return [LabeledVideo(v, c) for v, c in labels.items()]
    if cfg.format == "kinetics-tps":
        folder = path / f"{split}_annotations"
        if not folder.is_dir():
            return []
        out = []
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            out += [LabeledVideo(v.name, class_dir.name) for v in sorted(class_dir.iterdir()) if v.is_dir()]
        return out
    raise ConfigError(f"data.format: expected records or kinetics-tps, got {cfg.format!r}")


def class_names_of(cfg: VideoDataConfig, train: list[LabeledVideo], val: list[LabeledVideo]) -> list[str]:
    """``data.classes``, or the sorted labels of ``train`` and ``val``; every label must be among them."""
    names = list(cfg.classes) or sorted({v.label for v in train + val})
    known = set(names)
    for v in train + val:
        if v.label not in known:
            raise ConfigError(f"data.classes: class {v.label!r} of video {v.video} is not listed")
    return names


# ---------------------------------------------------------------------------------------------------------------
# clips


class VideoClipDataset(Dataset):
    """One clip per video.

    Training items (``train=True``; the engine passes encoded indices): ``{"clip": (3, T, S, S) or (3, T, h, w)
    normalized float32, "label": int}`` with a random start, scale, crop and flip drawn from the sample's generator.
    Evaluation items (plain indices): the centre clip (``num_clips=1`` test sampling) at the test size, plus
    ``"index"``. :meth:`read_frames` / :meth:`num_frames` give whole-video access for :func:`predict_video`.
    """

    def __init__(self, data: VideoDataConfig, model_cfg, videos: list[LabeledVideo], class_names: list[str], *,
                 train: bool, seed: int = 0, frames: FrameSource | None = None):
        self.data, self.model_cfg, self.videos, self.train, self.seed = data, model_cfg, videos, train, seed
        self.class_index = {name: i for i, name in enumerate(class_names)}
        self.labels = np.array([self.class_index[v.label] for v in videos], np.int64)
        self.frames = frames or FrameSource(data.root, data.cache_frames, source=data.source)
        self.mean = torch.tensor(model_cfg.mean, dtype=torch.float32).view(3, 1, 1, 1)
        self.std = torch.tensor(model_cfg.std, dtype=torch.float32).view(3, 1, 1, 1)

    def __len__(self) -> int:
        return len(self.videos)

    def num_frames(self, index: int) -> int:
        return self.frames.num_frames(self.videos[index].video)

    def read_frames(self, index: int, indices: np.ndarray) -> np.ndarray:
        """``(K, H, W, 3)`` uint8 frames of video ``index`` at 0-based ``indices``."""
        return self.frames.read(self.videos[index].video, indices)

    def __getitem__(self, encoded: int) -> dict:
        from partwise.models.video_classifier import eval_clip_indices, train_clip_indices

        mc = self.model_cfg
        if self.train:
            index, rng = sample_rng(self.seed, encoded, len(self))
            indices = train_clip_indices(self.num_frames(index), mc.clip_len, mc.frame_interval, rng)
        else:
            index, rng = int(encoded), None
            indices = eval_clip_indices(self.num_frames(index), mc.clip_len, mc.frame_interval, 1)[0]
        frames = self.read_frames(index, indices)
        height, width = frames.shape[1:3]
        if rng is None:
            clip = resize_clip(frames, short_side_size(height, width, mc.test_short_side))
        else:
            short = int(rng.integers(self.data.scale_range[0], self.data.scale_range[1] + 1))
            clip = resize_clip(frames, short_side_size(height, width, short))
            h, w = clip.shape[-2:]
            size = self.data.crop
            if size > 0 and (h > size or w > size):
                y0 = int(rng.integers(0, max(h - size, 0) + 1))
                x0 = int(rng.integers(0, max(w - size, 0) + 1))
                clip = clip[:, :, y0:y0 + size, x0:x0 + size]
            if rng.random() < self.data.flip:
                clip = clip.flip(-1)
            c = self.data.color_jitter
            if c > 0:
                gain = torch.from_numpy(rng.uniform(1 - c, 1 + c, size=3).astype(np.float32)).view(3, 1, 1, 1)
                shift = torch.from_numpy(rng.uniform(-c, c, size=3).astype(np.float32) * 128).view(3, 1, 1, 1)
                clip = (clip * gain + shift).clamp(0, 255)
        item = {"clip": (clip - self.mean) / self.std, "label": int(self.labels[index])}
        if rng is None:
            item["index"] = index
        return item


# ---------------------------------------------------------------------------------------------------------------
# metrics


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the ``k`` highest scores (ties broken by class order: a stable
    descending sort, so a constant prior ranks classes by index)."""
    if len(labels) == 0:
        return float("nan")
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean([labels[i] in order[i] for i in range(len(labels))]))


def mean_class_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy per class present in ``labels``, averaged (mmaction2 ``mean_class_accuracy``)."""
    pred = np.argmax(scores, axis=1)
    present = np.unique(labels)
    if len(present) == 0:
        return float("nan")
    return float(np.mean([np.mean(pred[labels == c] == c) for c in present]))


# ---------------------------------------------------------------------------------------------------------------
# the runner


class VideoClassifierRunner(Task):
    name = "video_classifier"
    config_cls = VideoClassifierTask

    def __init__(self, cfg: VideoClassifierTask):
        super().__init__(cfg)
        self._videos: dict[str, list[LabeledVideo]] = {}

    # -- building (all validation happens here, before any work)
    def videos(self, split: str) -> list[LabeledVideo]:
        if split not in self._videos:
            self._videos[split] = list_videos(self.cfg.data, split)
        return self._videos[split]

    def class_names(self) -> list[str]:
        data = self.cfg.data
        return class_names_of(data, self.videos(data.train_split), self.videos(data.val_split))

    def model_config(self):
        from partwise.models.resnet3d import ResNet3dConfig, SlowFastConfig
        from partwise.models.video_classifier import VideoClassifierConfig

        values = dict(self.cfg.model)
        kind = values.get("backbone_type", "slowonly")
        if kind not in ("slowonly", "slowfast"):
            raise ConfigError(f"model.backbone_type: expected slowonly or slowfast, got {kind!r}")
        names = self.class_names()
        given = values.get("class_names")
        if given is not None and list(given) != names:
            raise ConfigError(f"model.class_names: {given} differ from the data's classes {names}")
        if values.get("num_classes", len(names)) != len(names):
            raise ConfigError(f"model.num_classes: {values['num_classes']} but the data has {len(names)} classes")
        values["num_classes"], values["class_names"] = len(names), names
        if "backbone" not in values and kind == "slowonly":
            values["backbone"] = {"spatial_strides": [1, 2, 2, 2]}  # recognition: output stride 32
        backbone = ResNet3dConfig if kind == "slowonly" else SlowFastConfig
        return build_model_config(VideoClassifierConfig, values, "model", types={"backbone": backbone})

    def validate(self) -> None:
        data = self.cfg.data
        if data.format not in ("records", "kinetics-tps"):
            raise ConfigError(f"data.format: expected records or kinetics-tps, got {data.format!r}")
        root = Path(data.root)
        if not root.is_dir():
            raise ConfigError(f"data.root: {data.root} is not a folder")
        if not (root / data.annotations).exists():
            raise ConfigError(f"data.annotations: {root / data.annotations} does not exist")
        if data.source not in ("auto", "frames", "video"):
            raise ConfigError(f"data.source: expected auto, frames or video, got {data.source!r}")
        needed = {"auto": ("frames", "videos"), "frames": ("frames",), "video": ("videos",)}[data.source]
        if not any((root / name).is_dir() for name in needed):
            raise ConfigError(f"data.root: {data.root} has no {' or '.join(n + '/' for n in needed)}")
        if len(data.scale_range) != 2 or not 0 < data.scale_range[0] <= data.scale_range[1]:
            raise ConfigError(f"data.scale_range: expected [low, high] with 0 < low <= high, got {data.scale_range}")
        if data.crop < 0:
            raise ConfigError(f"data.crop: expected 0 (no crop) or a positive size, got {data.crop}")
        if not 0 <= data.color_jitter < 1:
            raise ConfigError(f"data.color_jitter: expected a value in [0, 1), got {data.color_jitter}")
        if not 0 <= data.flip <= 1:
            raise ConfigError(f"data.flip: expected a probability in [0, 1], got {data.flip}")
        if not self.videos(data.train_split):
            raise ConfigError(f"data.train_split: no {data.train_split!r} videos in {root / data.annotations}")
        if not self.videos(data.val_split) and self.cfg.eval.enabled:
            raise ConfigError(f"data.val_split: no {data.val_split!r} videos in {root / data.annotations}")
        self.net_config
        if self.cfg.init and not Path(self.cfg.init).exists():
            raise ConfigError(f"init: {self.cfg.init} does not exist")

    def build_net(self) -> nn.Module:
        from partwise.models.video_classifier import VideoClassifier

        return VideoClassifier(self.net_config)

    def build_model(self) -> TrainModel:
        torch.manual_seed(self.cfg.run.seed)
        net = self.build_net()
        if self.cfg.init and self.cfg.init_backbone_only:
            # load_init on the backbone alone: every backbone tensor must be there, the head stays fresh
            prefixed = nn.Module()
            prefixed.backbone = net.backbone
            load_init(_StripHead(prefixed), self.cfg.init)
        elif self.cfg.init:
            try:
                load_init(net, self.cfg.init)
            except RuntimeError as exc:  # torch's shape-mismatch report: several lines
                first = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line][:1]
                raise ConfigError(f"init: {self.cfg.init} does not match the model ({first[0] if first else exc}; "
                                  "init_backbone_only=true keeps a fresh head for other classes)") from None
        return TrainModel(net, self.cfg.norm_eval)

    def datasets(self) -> tuple[VideoClipDataset, VideoClipDataset]:
        data, names = self.cfg.data, self.class_names()
        train_ds = VideoClipDataset(data, self.net_config, self.videos(data.train_split), names, train=True,
                                    seed=self.cfg.run.seed)
        val_ds = VideoClipDataset(data, self.net_config, self.videos(data.val_split), names, train=False)
        return train_ds, val_ds

    # -- training
    def loss_fn(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        """Softmax cross-entropy, mean over the batch's clips."""
        labels = torch.as_tensor(batch["label"], dtype=torch.int64, device=batch["clip"].device)
        logits = model(batch["clip"])
        loss = F.cross_entropy(logits.float(), labels)
        return loss, {"acc": float((logits.argmax(1) == labels).float().mean())}

    # -- evaluation
    def predict(self, model: nn.Module, dataset: VideoClipDataset, progress: bool = False) -> np.ndarray:
        """Multi-clip class probabilities ``(V, num_classes)`` of the dataset's videos (:func:`predict_video`)."""
        from partwise.models.video_classifier import predict_video

        net = model.net if isinstance(model, TrainModel) else model
        n = len(dataset) if not self.cfg.eval.max_videos else min(len(dataset), self.cfg.eval.max_videos)
        indices = range(n)
        if progress:
            from partwise.progress import bar as tqdm

            indices = tqdm(indices, desc="eval", unit="video", dynamic_ncols=True)
        out = [predict_video(net, lambda idx, i=i: dataset.read_frames(i, idx), dataset.num_frames(i))
               for i in indices]
        return np.stack(out) if out else np.zeros((0, net.cfg.num_classes))

    def evaluate(self, model: nn.Module, train_ds: VideoClipDataset, val_ds: VideoClipDataset,
                 out_dir: Path | None, progress: bool = False) -> dict:
        """Top-1 / top-5 / mean class accuracy and the multi-clip log loss of the val videos, with the majority
        prior's; writes ``eval.json`` (also per-video predictions) and ``eval_confusion.png``."""
        probs = self.predict(model, val_ds, progress)
        labels = val_ds.labels[: len(probs)]
        names = list(self.net_config.class_names)
        k = min(5, len(names))
        counts = np.bincount(train_ds.labels, minlength=len(names)).astype(np.float64)
        prior = np.broadcast_to(counts / counts.sum(), probs.shape)
        eps = 1e-12
        metrics = {
            "top1": topk_accuracy(probs, labels, 1), "top1_prior": topk_accuracy(prior, labels, 1),
            f"top{k}": topk_accuracy(probs, labels, k), f"top{k}_prior": topk_accuracy(prior, labels, k),
            "mean_class_acc": mean_class_accuracy(probs, labels),
            "mean_class_acc_prior": mean_class_accuracy(prior, labels),
            "log_loss": float(-np.mean(np.log(probs[np.arange(len(labels)), labels] + eps))),
            "log_loss_prior": float(-np.mean(np.log(prior[np.arange(len(labels)), labels] + eps))),
        }
        results = {key: {"value": value} for key, value in metrics.items()}
        if out_dir is not None:
            pred = probs.argmax(1)
            report = {"metrics": metrics, "videos": len(labels), "classes": names,
                      "num_clips": self.net_config.num_clips,
                      "predictions": {val_ds.videos[i].video: {"label": names[labels[i]], "pred": names[pred[i]],
                                                               "prob": float(probs[i, pred[i]])}
                                      for i in range(len(labels))}}
            write_eval_json(out_dir, report)
            plot_confusion(labels, pred, names, Path(out_dir) / "eval_confusion.png")
        return results


class _StripHead(nn.Module):
    """Wraps a module holding only ``backbone`` so that :func:`load_init` ignores a checkpoint's ``head.*``."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        return self.inner.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.")}, strict=strict)


def plot_confusion(labels: np.ndarray, pred: np.ndarray, names: list[str], path: Path) -> None:
    """Confusion matrix (rows: true class, columns: predicted) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from partwise.io import atomic_write

    n = len(names)
    matrix = np.zeros((n, n), np.int64)
    np.add.at(matrix, (labels, pred), 1)
    size = min(2 + 0.4 * n, 14)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7)
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)
    from partwise.progress import wrote

    wrote(path)
