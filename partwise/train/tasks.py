"""The training tasks behind ``partwise train CONFIG.yaml``: one dataclass config per task, how to build its model,
data and loss, and how to evaluate it at the end.

A config file names its task with ``task:`` (``ava_detector``, ``st_activity2vec``, ``activity2vec``,
``clip_activity2vec``, ``tin``); the other top-level keys are the task's dataclass fields. Model sections are the
model's own config dataclass (``AVADetectorConfig``, ``STActivity2VecConfig``, ...), validated key by key like the
rest, so a typo is a one-line :class:`ConfigError` before any work starts.

Evaluation at the end (rank 0; ``eval.json`` + ``eval_*.png`` in ``run.out_dir``, printed side by side with a
frequency prior that scores every evaluated box with each class's training frequency): AVA frame mAP of the actions
and (ST-Activity2Vec) the PaSta frame mAP, over the classes present in the val ground truth; Activity2Vec and
CLIP-Activity2Vec: Activity2Vec's PaSta / verb instance AP on the val persons; TIN: the validation loss and, on
HICO-DET data, the HICO-DET mAP and interactiveness AP on ground-truth boxes (:meth:`TINRunner.evaluate`).

Loss normalisation: every clip-level loss is the mean over clips of that clip's loss (mmaction2 averages over the
positive RoIs of a GPU's batch). A clip-wise mean makes the loss of a global batch independent of how it is split
across ``torchrun`` processes, so N processes follow the same curve as one (given no batch-dependent layers:
``norm_eval`` freezes BatchNorm statistics, and dropout draws differ per process).
"""
from __future__ import annotations

import abc
import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from partwise.errors import ConfigError
from partwise.train import config as config_mod
from partwise.train.data import (ClipDataConfig, ImageDataConfig, KeyframeClipDataset, check_data_paths,
                                 collate_clips, group_keyframes, load_records, read_proposal_file, rois_from_boxes)
from partwise.train.engine import OptimConfig, RunConfig, ScheduleConfig, build_optimizer, train

# ---------------------------------------------------------------------------------------------------------------
# model sections: the models' own dataclasses, validated with the config loader's rules


def _is_tuple_type(tp: Any) -> bool:
    return tp is tuple or typing.get_origin(tp) is tuple


def _tuplify(value: Any) -> Any:
    return tuple(_tuplify(v) for v in value) if isinstance(value, (list, tuple)) else value


def build_model_config(cls: type, values: dict, where: str, types: dict[str, type] | None = None) -> Any:
    """Construct a model config dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types (one-line
    :class:`ConfigError` naming the dotted key). ``types`` picks the class of union-typed sub-configs."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in values.items():
        key = f"{where}.{name}"
        tp = (types or {}).get(name, hints[name])
        if dataclasses.is_dataclass(tp):
            kwargs[name] = build_model_config(tp, value, key)
        elif _is_tuple_type(tp):
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{key}: expected a list, got {value!r}")
            args = typing.get_args(tp)
            item = args[0] if args and (len(args) == 2 and args[1] is Ellipsis) else None
            if item is not None:
                kwargs[name] = tuple(config_mod.coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value))
            else:
                kwargs[name] = _tuplify(value)
        else:
            kwargs[name] = config_mod.coerce(value, tp, key)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


# ---------------------------------------------------------------------------------------------------------------
# shared pieces


@dataclass
class EvalConfig:
    """End-of-run evaluation on the validation split (rank 0)."""

    enabled: bool = True
    boxes: str = "proposals"  # proposals (score >= proposal_thr) | gt
    proposal_thr: float = 0.9
    action_profile: str = "mmaction2"
    pasta_profile: str = "slowfast"
    max_keyframes: int = 0  # 0: all


class TrainModel(nn.Module):
    """The trained network plus the layers kept in eval mode during training (frozen BatchNorm statistics with
    ``norm_eval``, and frozen sub-networks): ``train()`` re-applies them, since the engine calls it."""

    def __init__(self, net: nn.Module, norm_eval: bool = False, frozen: tuple[str, ...] = ()):
        super().__init__()
        self.net, self.norm_eval, self.frozen = net, norm_eval, frozen

    def train(self, mode: bool = True) -> "TrainModel":
        super().train(mode)
        if mode:
            if self.norm_eval:
                for m in self.net.modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm):
                        m.eval()
            for name in self.frozen:
                self.net.get_submodule(name).eval()
        return self

    def forward(self, *args, **kwargs):
        return self.net(*args, **kwargs)


def load_init(net: nn.Module, path: str, where: str = "init") -> None:
    """Initialise ``net`` from a partwise model file (``model.pt``) or a training ``checkpoint.pt``; strict
    (every parameter present with its shape)."""
    from partwise.models.checkpoint import read_checkpoint

    if not Path(path).exists():
        raise ConfigError(f"{where}: {path} does not exist")
    record = read_checkpoint(path)
    if record.get("format") == "partwise":
        state = record["state_dict"]
    elif "model" in record and isinstance(record["model"], dict):
        state = {k[len("net."):] if k.startswith("net.") else k: v for k, v in record["model"].items()}
    else:
        raise ConfigError(f"{where}: {path} is neither a partwise model nor a partwise training checkpoint")
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        first = (missing or unexpected)[0]
        raise ConfigError(f"{where}: {path} does not match the model ({'missing' if missing else 'unexpected'} {first})")




def _slices(counts: list[int]) -> list[slice]:
    bounds = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def class_frequencies(multi_hot: np.ndarray) -> np.ndarray:
    """Fraction of training persons carrying each class: the frequency prior's score (C,)."""
    return multi_hot.mean(axis=0) if len(multi_hot) else np.zeros(multi_hot.shape[1])


# ---------------------------------------------------------------------------------------------------------------
# AVA-style keyframe tasks


@dataclass
class AvaDetectorTask:
    """mmaction2 AVA-Kinetics SlowOnly R50 recipe (``ava_mmaction2.md`` §3.2-3.4): SGD lr 0.1 (batch 64), momentum
    0.9, wd 1e-5, clip 40, linear warm-up from 0.1 over 2 of 10 epochs then cosine; rescale 256-320, crop 256,
    flip; 8x8 clips; 32 RoIs per clip, IoU 0.9 assignment. The tricks are ``model`` switches: ``context``,
    ``temporal_pool: max``, ``mlp_head``, ``focal_gamma``."""

    data: ClipDataConfig
    task: str = "ava_detector"
    model: dict = field(default_factory=dict)  # AVADetectorConfig fields
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=64, grad_clip=40.0))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=0.1, weight_decay=1e-5))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(name="cosine", warmup_steps=0))
    eval: EvalConfig = field(default_factory=EvalConfig)
    init: str = ""
    norm_eval: bool = False


@dataclass
class STActivity2VecTask:
    """ST-Activity2Vec (``hake.md`` §5): stage 1 trains the PaSta heads (backbone and action layers frozen), SGD lr
    0.004; stage 2 trains the action layers from the stage-1 weights (``init``), lr 0.004 steps x0.1, wd 1e-7.
    ``stage: 0`` trains everything (used for the synthetic demo, which has no pretrained backbone). GT boxes for
    training; evaluation on proposals with score >= 0.8 (the predicted val boxes)."""

    data: ClipDataConfig
    task: str = "st_activity2vec"
    model: dict = field(default_factory=dict)  # STActivity2VecConfig fields
    stage: int = 1
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=32))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=0.004, weight_decay=1e-4))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(name="constant"))
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(proposal_thr=0.8))
    init: str = ""
    norm_eval: bool = False


def _ava_model_config(cfg: AvaDetectorTask):
    from partwise.models.ava_detector import AVADetectorConfig
    from partwise.models.resnet3d import ResNet3dConfig, SlowFastConfig

    kind = cfg.model.get("backbone_type", "slowonly")
    if kind not in ("slowonly", "slowfast"):
        raise ConfigError(f"model.backbone_type: expected slowonly or slowfast, got {kind!r}")
    backbone = ResNet3dConfig if kind == "slowonly" else SlowFastConfig
    return build_model_config(AVADetectorConfig, cfg.model, "model", types={"backbone": backbone})


def _st_model_config(cfg: STActivity2VecTask):
    from partwise.models.st_activity2vec import STActivity2VecConfig

    return build_model_config(STActivity2VecConfig, cfg.model, "model")


class KeyframeTask(abc.ABC):
    """Shared machinery of the two clip tasks (data, evaluation, baseline)."""

    name = ""
    config_cls: type = object

    def __init__(self, cfg):
        self.cfg = cfg

    # -- building (all validation happens here, before any work)
    @abc.abstractmethod
    def model_config(self):
        """Implemented by each task."""

    def validate(self) -> None:
        self.model_config()
        if self.cfg.eval.boxes not in ("proposals", "gt"):
            raise ConfigError(f"eval.boxes: expected proposals or gt, got {self.cfg.eval.boxes!r}")
        from partwise.eval.ava import PROFILES

        for key in ("action_profile", "pasta_profile"):
            if getattr(self.cfg.eval, key) not in PROFILES:
                raise ConfigError(f"eval.{key}: expected one of {', '.join(PROFILES)}, got {getattr(self.cfg.eval, key)!r}")
        check_data_paths(self.cfg.data)
        if self.cfg.init and not Path(self.cfg.init).exists():
            raise ConfigError(f"init: {self.cfg.init} does not exist")

    @abc.abstractmethod
    def build_net(self) -> nn.Module:
        """Implemented by each task."""

    def build_model(self) -> TrainModel:
        torch.manual_seed(self.cfg.run.seed)
        net = self.build_net()
        if self.cfg.init:
            load_init(net, self.cfg.init)
        return self.wrap(net)

    def wrap(self, net: nn.Module) -> TrainModel:
        return TrainModel(net, self.cfg.norm_eval)

    def datasets(self) -> tuple[KeyframeClipDataset, KeyframeClipDataset]:
        data = self.cfg.data
        train_kf = group_keyframes(load_records(data, data.train_split), read_proposal_file(data, data.train_split))
        val_kf = group_keyframes(load_records(data, data.val_split), read_proposal_file(data, data.val_split))
        train_ds = KeyframeClipDataset(data, train_kf, train=True, seed=self.cfg.run.seed,
                                       proposal_thr=self.train_proposal_thr())
        val_ds = KeyframeClipDataset(data, val_kf, train=False, proposal_thr=self.cfg.eval.proposal_thr)
        return train_ds, val_ds

    def train_proposal_thr(self) -> float:
        return 0.9

    # -- evaluation
    def validation_loss(self, model: nn.Module, dataset: KeyframeClipDataset, batch_size: int = 4) -> float:
        """The training loss over ``dataset`` (test-time clips, fixed RoI sampling) in eval mode, clip-weighted."""
        from partwise.train.engine import to_device

        model.eval()
        device = next(model.parameters()).device
        total, count = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(dataset), batch_size):
                items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
                loss, _ = self.loss_fn(model, to_device(collate_clips(items), device))
                total += float(loss) * len(items)
                count += len(items)
        return total / max(count, 1)

    @abc.abstractmethod
    def predict(self, model: nn.Module, batch: dict, rois: torch.Tensor) -> dict[str, np.ndarray]:
        """Implemented by each task."""

    def evaluate(self, model: nn.Module, train_ds: KeyframeClipDataset, val_ds: KeyframeClipDataset,
                 out_dir: Path | None, progress: bool = False) -> dict:
        """Frame mAP of the actions (classes present in the val GT) and, where the model has them, of the PaSta;
        the same for the frequency prior on the same boxes. Writes ``eval.json`` and ``eval_*.png``."""
        from partwise.eval.ava import evaluate as ava_evaluate

        cfg = self.cfg
        model.eval()
        rows: dict[str, list] = {"video": [], "time": [], "boxes": [], "scores": {}}
        n = len(val_ds) if not cfg.eval.max_keyframes else min(len(val_ds), cfg.eval.max_keyframes)
        indices = range(n)
        if progress:
            from tqdm import tqdm

            indices = tqdm(indices, desc="eval", unit="clip", dynamic_ncols=True)
        with torch.no_grad():
            for i in indices:
                item = val_ds[i]
                boxes = item["gt_boxes"] if cfg.eval.boxes == "gt" else item["proposals"]
                if len(boxes) == 0:
                    continue
                device = next(model.parameters()).device
                batch = {"clip": item["clip"][None].to(device)}
                rois = rois_from_boxes([boxes]).to(device)
                scores = self.predict(model, batch, rois)
                h, w = item["clip"].shape[-2:]
                kf = val_ds.keyframes[i]
                rows["video"] += [kf.video] * len(boxes)
                rows["time"] += [kf.time_s] * len(boxes)
                rows["boxes"].append(boxes.numpy() / np.array([w, h, w, h], np.float64))
                for key, value in scores.items():
                    rows["scores"].setdefault(key, []).append(value)
        if not rows["boxes"]:
            raise ConfigError("eval: no boxes to evaluate in the validation split")
        boxes = np.concatenate(rows["boxes"])
        train_kf = train_ds.keyframes
        val_kf = val_ds.keyframes[:n]
        results: dict[str, Any] = {}
        for kind, scores in rows["scores"].items():
            scores = np.concatenate(scores)
            if kind == "actions":
                gt_hot = np.concatenate([k.actions[:, 1:] for k in val_kf])
                prior = class_frequencies(np.concatenate([k.actions[:, 1:] for k in train_kf]))
                from partwise import vocab

                v = vocab.load("ava80")
                ids = np.asarray(v.ids)
                names = list(v.names)
                profile, pasta = cfg.eval.action_profile, False
            else:
                gt_hot = np.concatenate([k.pasta for k in val_kf])
                prior = class_frequencies(np.concatenate([k.pasta for k in train_kf]))
                from partwise import vocab

                v = vocab.load("pasta_ava87")
                ids = np.asarray(v.ids)
                names = list(v.names)
                profile, pasta = cfg.eval.pasta_profile, True
            present = np.flatnonzero(gt_hot.sum(0) > 0)
            label_map = {int(ids[c]): names[c] for c in present}
            gt = _gt_rows(val_kf, gt_hot, ids)
            model_rows = _det_rows(rows["video"], rows["time"], boxes, scores, present, ids)
            prior_rows = _det_rows(rows["video"], rows["time"], boxes,
                                   np.broadcast_to(prior, scores.shape), present, ids)
            ours = ava_evaluate(gt, model_rows, label_map, profile=profile, pasta=pasta, curves=True)
            base = ava_evaluate(gt, prior_rows, label_map, profile=profile, pasta=pasta)
            results[kind] = {"model": ours.to_json_dict(), "frequency_prior": base.to_json_dict(),
                             "mAP": ours.value, "prior_mAP": base.value, "classes": len(present)}
            if out_dir is not None:
                ours.plot(str(out_dir / f"eval_{kind}.png"))
        if out_dir is not None:
            from partwise.io import atomic_write

            with atomic_write(out_dir / "eval.json") as fh:
                json.dump(_clean(results), fh, indent=2)
        return results


def _gt_rows(keyframes, gt_hot: np.ndarray, ids: np.ndarray):
    """GT rows: one per (person, positive class)."""
    from partwise.eval.ava import make_rows

    video = np.concatenate([[k.video] * len(k.boxes) for k in keyframes])
    time = np.concatenate([[k.time_s] * len(k.boxes) for k in keyframes])
    boxes = np.concatenate([k.boxes for k in keyframes])
    person, cls = np.nonzero(gt_hot)
    return make_rows(video[person], time[person], boxes[person], ids[cls])


def _det_rows(video: list, time: list, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, ids: np.ndarray):
    """Detection rows: every box x every evaluated class, with its score."""
    from partwise.eval.ava import make_rows

    video = np.asarray(video, dtype=object)
    time = np.asarray(time, dtype=np.float64)
    k = len(video)
    box_index = np.repeat(np.arange(k), len(classes))
    cls = np.tile(classes, k)
    return make_rows(video[box_index], time[box_index], boxes[box_index], ids[cls], scores[box_index, cls])


def _clean(value):
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


class AvaDetectorRunner(KeyframeTask):
    name = "ava_detector"
    config_cls = AvaDetectorTask

    def model_config(self):
        return _ava_model_config(self.cfg)

    def build_net(self) -> nn.Module:
        from partwise.models.ava_detector import AVADetector

        return AVADetector(self.model_config())

    def loss_fn(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        """Per clip: GT + proposals -> assigned RoIs (the clip's own generator) -> focal BCE over positive RoIs;
        the loss is the mean over clips."""
        from partwise.models.ava_detector import action_loss, assign_targets

        mcfg = self.net_config
        boxes, labels = [], []
        for gt, props, actions, seed in zip(batch["gt_boxes"], batch["proposals"], batch["actions"], batch["seed"]):
            g = torch.Generator().manual_seed(int(seed))
            b, l = assign_targets(props, gt, actions, mcfg.pos_iou_thr, mcfg.rois_per_clip, g)
            boxes.append(b)
            labels.append(l)
        logits = model(batch["clip"], rois_from_boxes(boxes).to(batch["clip"].device))
        per_clip = [action_loss(logits[s], labels[i].to(logits.device), mcfg.focal_alpha, mcfg.focal_gamma)
                    for i, s in enumerate(_slices([len(b) for b in boxes]))]
        return torch.stack(per_clip).mean(), {"rois": float(sum(len(b) for b in boxes)) / len(boxes)}

    @property
    def net_config(self):
        if not hasattr(self, "_net_config"):
            self._net_config = self.model_config()
        return self._net_config

    def predict(self, model, batch, rois):
        return {"actions": torch.sigmoid(model(batch["clip"], rois))[:, 1:].float().cpu().numpy()}


class STActivity2VecRunner(KeyframeTask):
    name = "st_activity2vec"
    config_cls = STActivity2VecTask

    def validate(self) -> None:
        super().validate()
        if self.cfg.stage not in (0, 1, 2):
            raise ConfigError(f"stage: expected 0, 1 or 2, got {self.cfg.stage}")

    def model_config(self):
        return _st_model_config(self.cfg)

    def build_net(self) -> nn.Module:
        from partwise.models.st_activity2vec import STActivity2Vec

        return STActivity2Vec(self.model_config())

    def build_model(self) -> TrainModel:
        model = super().build_model()
        model.net.set_stage(self.cfg.stage)
        return model

    def wrap(self, net):
        # frozen parts keep their BatchNorm statistics (the original trains heads on a frozen backbone)
        frozen = {1: ("backbone",), 2: ("backbone", "pasta_heads")}.get(self.cfg.stage, ())
        return TrainModel(net, self.cfg.norm_eval, frozen)

    def train_proposal_thr(self) -> float:
        return 2.0  # GT boxes only for training

    def loss_fn(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        from partwise.models.st_activity2vec import st_a2v_loss

        boxes = batch["gt_boxes"]
        keep = [i for i, b in enumerate(boxes) if len(b)]
        if model.training and sum(len(b) for b in boxes) < 2:
            # the PaSta heads' BatchNorm needs two RoIs; a batch without them is skipped (zero loss). Under DDP this
            # would desynchronise the ranks: keep run.batch_size large enough that it does not happen.
            return sum(p.sum() * 0 for p in model.parameters() if p.requires_grad), {"skipped": 1.0}
        out = model(batch["clip"], rois_from_boxes(boxes).to(batch["clip"].device))
        pasta = torch.cat(batch["pasta"]).to(out["pasta_logits"].device)
        actions = torch.cat([a[:, 1:] for a in batch["actions"]]).to(out["pasta_logits"].device)
        per_clip = []
        for s in _slices([len(b) for b in boxes]):
            if s.stop > s.start:
                part = {k: v[s] for k, v in out.items()}
                per_clip.append(st_a2v_loss(part, pasta[s], actions[s], stage=self.cfg.stage))
        loss = torch.stack(per_clip).sum() / len(boxes) if keep else out["pasta_logits"].sum() * 0
        return loss, {}

    def predict(self, model, batch, rois):
        out = model(batch["clip"], rois)
        return {"actions": out["actions"].float().cpu().numpy(), "pasta": out["pasta"].float().cpu().numpy()}


# ---------------------------------------------------------------------------------------------------------------
# image tasks: Activity2Vec (staged), CLIP-Activity2Vec, TIN


def _pasta93():
    from partwise import vocab

    return vocab.load("pasta93")


class ImageTask(abc.ABC):
    """Shared machinery of the image tasks: records -> images with persons, validation loss as the end-of-run
    evaluation (``eval.json``: ``{"val_loss": ..., "initial_val_loss": ...}``)."""

    name = ""
    config_cls: type = object

    def __init__(self, cfg):
        self.cfg = cfg

    @abc.abstractmethod
    def model_config(self):
        """Implemented by each task."""

    def validate(self) -> None:
        from partwise.train.data import check_image_paths

        self.model_config()
        check_image_paths(self.cfg.data)
        if self.cfg.init and not Path(self.cfg.init).exists():
            raise ConfigError(f"init: {self.cfg.init} does not exist")

    def build_model(self) -> TrainModel:
        torch.manual_seed(self.cfg.run.seed)
        net = self.build_net()
        if self.cfg.init:
            load_init(net, self.cfg.init)
        return self.wrap(net)

    def wrap(self, net):
        return TrainModel(net, False)

    def datasets(self):
        from partwise.train.data import ImageRecordsDataset, group_images, load_records

        data = self.cfg.data
        train_items = group_images(load_records(data, data.train_split))
        val_items = group_images(load_records(data, data.val_split))
        return (ImageRecordsDataset(data, train_items, train=True, seed=self.cfg.run.seed, extra=self.extra_fields),
                ImageRecordsDataset(data, val_items, train=False, extra=self.extra_fields))

    @staticmethod
    def collate(items: list[dict]) -> dict:
        from partwise.train.data import collate_images

        return collate_images(items)

    def extra_fields(self, item, sample: dict, rng) -> dict:
        """More per-sample fields (TIN: its human-object pairs); none by default."""
        return {}

    def validation_loss(self, model, dataset, batch_size: int = 2) -> float:
        from partwise.train.engine import to_device

        model.eval()
        device = next(model.parameters()).device
        total, count = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(dataset), batch_size):
                items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
                loss, _ = self.loss_fn(model, to_device(self.collate(items), device))
                total += float(loss) * len(items)
                count += len(items)
        return total / max(count, 1)

    def predict_instances(self, model, batch: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(PaSta (N, 93), verb (N, 157)) probabilities of the batch's person boxes; None where not predicted."""
        return None, None

    def evaluate(self, model, train_ds, val_ds, out_dir: Path | None, progress: bool = False) -> dict:
        """Validation loss and, where the task predicts per-person PaSta/verbs, Activity2Vec's instance AP
        (:mod:`partwise.eval.pasta`) on the ground-truth person boxes of the val split, with the frequency prior
        (every box scored with each class's training frequency) on the same boxes."""
        from partwise.train.data import pasta93_targets, verb_targets
        from partwise.train.engine import to_device

        results: dict[str, Any] = {"val_loss": {"value": self.validation_loss(model, val_ds)}}
        model.eval()
        device = next(model.parameters()).device
        images, boxes, pasta, verbs = [], [], [], []
        with torch.no_grad():
            for i in range(len(val_ds)):
                item = val_ds[i]
                p, v = self.predict_instances(model, to_device(self.collate([item]), device))
                if p is None and v is None:
                    break
                images += [f"{val_ds.items[i].video}@{val_ds.items[i].frame_index}"] * len(item["boxes"])
                boxes.append(item["boxes"].numpy())
                pasta.append(p)
                verbs.append(v)
        if boxes:
            from partwise.eval.pasta import Detections, GroundTruth, evaluate as pasta_evaluate
            from partwise import vocab

            def labels(items):
                p = np.concatenate([pasta93_targets(it.pasta) for it in items]).astype(bool)
                for part in vocab.PASTA_PARTS:  # a part without a state is no_interaction (the evaluator's rule)
                    span = vocab.load("pasta93").part_slice(part)
                    p[~p[:, span].any(axis=1), span.stop - 1] = True
                v = np.concatenate([verb_targets(it.actions, it.action_vocab) for it in items]).astype(bool)
                return p, v

            gt_pasta, gt_verb = labels(val_ds.items)
            train_pasta, train_verb = labels(train_ds.items)
            box_array = np.concatenate(boxes)
            gt = GroundTruth(np.asarray(images, dtype=object), box_array, gt_pasta, gt_verb)
            p = np.concatenate(pasta) if pasta[0] is not None else None
            v = np.concatenate(verbs) if verbs[0] is not None else None
            ours = pasta_evaluate(Detections(np.asarray(images, dtype=object), box_array, p, v), gt)
            n = len(box_array)
            prior = pasta_evaluate(Detections(
                np.asarray(images, dtype=object), box_array,
                None if p is None else np.broadcast_to(train_pasta.mean(0), (n, 93)),
                None if v is None else np.broadcast_to(train_verb.mean(0), (n, 157))), gt)
            results["instance"] = {"model": ours.to_json_dict(), "frequency_prior": prior.to_json_dict(),
                                   "mAP": ours.value, "prior_mAP": prior.value,
                                   "classes": int(np.count_nonzero(gt_pasta.any(0)))}
            if out_dir is not None:
                ours.plot(str(out_dir / "eval_instance.png"))
        if out_dir is not None:
            from partwise.io import atomic_write

            with atomic_write(out_dir / "eval.json") as fh:
                json.dump(_clean(results), fh, indent=2)
        return results


#: index of ``no_interaction`` in the 157-verb list (0-based)
NO_INTERACTION_VERB = 57
A2V_MODULES = ("foot", "leg", "hip", "hand", "arm", "head", "verb")


def a2v_target_fill(pasta93: np.ndarray, verbs: np.ndarray, fill: bool = True) -> tuple:
    """Activity2Vec's targets for ground-truth persons (copies): with ``fill``, ``pasta93`` (G, 93) gets
    ``no_interaction`` for every part without a state (the evaluator's rule) and ``verbs`` (G, 157) verb 57
    ``no_interaction`` for a person without verbs (hake.md §3.4: "positives without verbs get 57"; records
    whose actions are not HAKE verbs, e.g. AVA ids, thus train the verb head on no_interaction only)."""
    pasta93, verbs = np.array(pasta93, np.float32), np.array(verbs, np.float32)
    if fill:
        v = _pasta93()
        for part in Activity2VecRunner.PARTS:
            span = v.part_slice(part)
            pasta93[pasta93[:, span].sum(axis=1) == 0, span.stop - 1] = 1
        verbs[verbs.sum(axis=1) == 0, NO_INTERACTION_VERB] = 1
    return pasta93, verbs


def negative_targets(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 93), (count, 157) targets of non-GT boxes: the last (no_interaction) class of every part, verb 57."""
    pasta = np.zeros((count, 93), np.float32)
    v = _pasta93()
    for part in Activity2VecRunner.PARTS:
        pasta[:, v.part_slice(part).stop - 1] = 1
    verbs = np.zeros((count, 157), np.float32)
    verbs[:, NO_INTERACTION_VERB] = 1
    return pasta, verbs


def frequency_loss_weights(pasta93: np.ndarray, verbs: np.ndarray, k: float = 2.0) -> dict[str, np.ndarray]:
    """Per-class BCE weights from training label frequencies, per Activity2Vec module (foot..head, verb).

    ``w_c = k * log(k * N / n_c)`` with ``N`` the number of training persons and ``n_c`` the persons carrying class
    ``c``; ``w_c = 0`` for classes no training person carries. Rare classes weigh more (logarithmically), and
    ``k = 2`` (``LOSS_WEIGHT_K``) is the setting the released file was made for. The formula behind HAKE's
    ``loss_weights.npy`` is not published; this one is inferred from HAKE-Action-Torch's ``loss_reweight``
    (``activity2vec/ult/misc.py``), which maps the stored weights ``w`` to ``k * log(k * exp(w / 2) / 2)`` for
    another ``k`` (identity at ``k = 2``) and keeps zeros -- i.e. stored weights of the form ``2 * log(2 * g_c)``;
    partwise takes ``g_c = N / n_c`` (inverse frequency)."""
    out = {}
    v = _pasta93()
    for name in A2V_MODULES:
        labels = verbs if name == "verb" else pasta93[:, v.part_slice(name)]
        n = labels.shape[0]
        counts = (labels > 0).sum(axis=0).astype(np.float64)
        with np.errstate(divide="ignore"):
            weights = np.where(counts > 0, k * np.log(k * n / np.maximum(counts, 1)), 0.0)
        out[name] = weights.astype(np.float32)
    return out


def load_loss_weights(path: str | Path, k: float = 2.0) -> dict[str, np.ndarray]:
    """Per-module class weights from a file: HAKE's ``loss_weights.npy`` (a pickled dict ``{foot: (16,), leg: (15,),
    hip: (6,), hand: (34,), arm: (8,), head: (14,), verb: (157,)}``, read with the restricted unpickler of
    :mod:`partwise.data.safe_pickle`, never plain pickle), an ``.npz`` with those keys, or a plain ``.npy`` float
    array of 250 values (the 93 PaSta classes, then the 157 verbs). ``k != 2`` rescales like the original's
    ``loss_reweight``: ``k * log(k * exp(w / 2) / 2)``, zeros kept. Bad files: one-line :class:`InputError`."""
    from partwise.data import safe_pickle
    from partwise.errors import InputError

    path = Path(path)
    sizes = dict(zip(Activity2VecRunner.PARTS, (16, 15, 6, 34, 8, 14)), verb=157)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                values = {name: archive[name] for name in archive.files}
        else:
            try:
                array = np.load(path, allow_pickle=False)
            except ValueError:  # an object array (HAKE's pickled dict): restricted unpickler on the payload
                with open(path, "rb") as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        np.lib.format.read_array_header_1_0(fh)
                    else:
                        np.lib.format.read_array_header_2_0(fh)
                    array = safe_pickle.loads(fh.read(), str(path))
            if isinstance(array, np.ndarray) and array.dtype == object and array.shape == ():
                array = array.item()
            if isinstance(array, dict):
                values = dict(array)
            else:
                flat = np.asarray(array, np.float64).reshape(-1)
                if flat.size != 250:
                    raise InputError(path, None, f"expected 250 weights (93 PaSta + 157 verbs), got {flat.size}")
                bounds = np.cumsum([0, *sizes.values()])
                values = {name: flat[a:b] for name, a, b in zip(sizes, bounds[:-1], bounds[1:])}
    except InputError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(path, None, f"cannot read loss weights: {exc}") from None
    out = {}
    for name, size in sizes.items():
        if name not in values:
            raise InputError(path, name, f"missing (need {', '.join(sizes)})")
        try:
            weights = np.asarray(values[name], np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise InputError(path, name, "not an array of numbers") from None
        if weights.size != size:
            raise InputError(path, name, f"expected {size} weights, got {weights.size}")
        if k != 2:
            rescaled = k * np.log(k * np.exp(weights / 2) / 2)
            weights = np.where(weights == 0, 0.0, rescaled)
        out[name] = weights.astype(np.float32)
    return out


@dataclass
class Activity2VecTask:
    """HAKE Activity2Vec training (``hake.md`` §3.4).

    Stages: ``stage: parts`` trains the part heads named in ``parts`` (the original trains each part alone with its
    own lr: foot 1e-4 cosine, leg 2e-5, hip 2e-5 cosine, hand 1e-4, arm 5e-5, head 5e-5), backbone frozen;
    ``stage: verb`` trains the verb head (lr 2.5e-3 cosine) on the frozen part features; ``stage: all`` trains the
    part heads of ``parts`` and the verb head together (not in the original: for small demos). SGD momentum 0.9,
    one image per step; cosine = warm restarts (T_0 = 2 epochs, T_mult 2).

    Recipe switches (defaults = the original):

    * ``keypoints``: skeleton maps and part boxes from the records' COCO-17 ``keypoints`` where a person has them
      (the §3.2 rule); zero maps and the records' part boxes (else the person box) otherwise.
    * ``human_per_image`` / ``pos_ratio`` (HUMAN_PER_IM 10, POS_RATIO 0.1): every GT person is a positive (resampled
      up to ``int(human_per_image * pos_ratio)`` when there are fewer), plus up to ``human_per_image - positives``
      non-GT boxes as negatives, labelled with the last (no_interaction) class of every part and verb 57.
      ``negatives``: ``auto`` = person detections from ``data.proposals`` when set (as the original's non-GT boxes
      come from a detector), else ``sampled`` = random person-like boxes; ``proposals``; ``sampled``; ``none``.
      Every negative has IoU < ``negative_max_iou`` (0.5) with every GT person. Negatives are training-only (the
      validation loss and evaluation use the GT persons).
    * ``fill_no_interaction``: a GT person's part without a state is labelled that part's no_interaction (the
      evaluator's rule), a GT person without verbs verb 57.
    * ``loss_weights``: ``frequency`` = per-class BCE weights from the training split's label frequencies
      (:func:`frequency_loss_weights`), a path = HAKE's ``loss_weights.npy`` (:func:`load_loss_weights`), ``none``
      = plain BCE; ``loss_weight_k`` = LOSS_WEIGHT_K (2). The loss is the sum over trained modules of each module's
      weighted BCE mean over the image's boxes and classes, averaged over the images of a batch.

    ``train_backbone`` (not in the original, default off): the trunk is trained too (BatchNorm in training mode)
    with the part heads (stages ``parts`` and ``all``), for a trunk trained from scratch (``model.trunk: resnet18``)."""

    data: ImageDataConfig
    task: str = "activity2vec"
    stage: str = "parts"
    parts: list[str] = field(default_factory=lambda: ["foot", "leg", "hip", "hand", "arm", "head"])
    model: dict = field(default_factory=dict)
    keypoints: bool = True
    human_per_image: int = 10
    pos_ratio: float = 0.1
    negatives: str = "auto"  # auto | proposals | sampled | none
    negative_max_iou: float = 0.5
    fill_no_interaction: bool = True
    loss_weights: str = "frequency"  # frequency | none | path to loss_weights.npy
    loss_weight_k: float = 2.0
    train_backbone: bool = False
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=1))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, weight_decay=1e-4))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(name="cosine_restarts", restart_mult=2))
    eval: EvalConfig = field(default_factory=EvalConfig)
    init: str = ""


class Activity2VecRunner(ImageTask):
    name = "activity2vec"
    config_cls = Activity2VecTask
    PARTS = ("foot", "leg", "hip", "hand", "arm", "head")

    def model_config(self):
        from partwise.models.activity2vec import Activity2VecConfig

        return build_model_config(Activity2VecConfig, self.cfg.model, "model")

    def validate(self) -> None:
        super().validate()
        cfg = self.cfg
        if cfg.stage not in ("parts", "verb", "all"):
            raise ConfigError(f"stage: expected parts, verb or all, got {cfg.stage!r}")
        bad = [p for p in cfg.parts if p not in self.PARTS]
        if bad or not cfg.parts:
            raise ConfigError(f"parts: expected some of {', '.join(self.PARTS)}, got {cfg.parts}")
        if cfg.negatives not in ("auto", "proposals", "sampled", "none"):
            raise ConfigError(f"negatives: expected auto, proposals, sampled or none, got {cfg.negatives!r}")
        if cfg.negatives == "proposals" and not cfg.data.proposals:
            raise ConfigError("negatives: proposals needs data.proposals (a person-detection file)")
        if cfg.human_per_image < 1 or not 0 <= cfg.pos_ratio <= 1:
            raise ConfigError(f"human_per_image / pos_ratio: expected >= 1 and in [0, 1], got "
                              f"{cfg.human_per_image} / {cfg.pos_ratio}")
        if not 0 < cfg.negative_max_iou <= 1:
            raise ConfigError(f"negative_max_iou: expected a value in (0, 1], got {cfg.negative_max_iou}")
        if cfg.loss_weight_k <= 0:
            raise ConfigError(f"loss_weight_k: expected a positive number, got {cfg.loss_weight_k}")
        if cfg.train_backbone and cfg.stage == "verb":
            raise ConfigError("train_backbone: the verb stage keeps the part features fixed; use stage parts or all")
        if cfg.loss_weights not in ("frequency", "none") and not Path(cfg.loss_weights).is_file():
            raise ConfigError(f"loss_weights: expected frequency, none or a loss_weights.npy file, got {cfg.loss_weights!r}")

    def trained_modules(self) -> list[str]:
        stage = self.cfg.stage
        return (list(self.cfg.parts) if stage != "verb" else []) + (["verb"] if stage != "parts" else [])

    def negative_source(self) -> str:
        if self.cfg.negatives == "auto":
            return "proposals" if self.cfg.data.proposals else "sampled"
        return self.cfg.negatives

    def build_net(self):
        from partwise.models.activity2vec import Activity2Vec

        net = Activity2Vec(self.model_config())
        net.requires_grad_(False)
        if self.cfg.stage != "verb":
            for p in (self.PARTS.index(name) for name in self.cfg.parts):
                for module in (net.pool2_flat_pose_maps[p], net.fc7_parts[p], net.part_cls_scores[p]):
                    module.requires_grad_(True)
        if self.cfg.stage != "parts":
            net.verb_cls_scores.requires_grad_(True)
        if self.cfg.train_backbone:
            net.backbone.requires_grad_(True)
        return net

    def wrap(self, net):
        frozen = ("backbone",) if self.cfg.stage != "verb" else ("backbone", "pool2_flat_pose_maps", "fc7_parts")
        return TrainModel(net, False, () if self.cfg.train_backbone else frozen)

    def datasets(self):
        from partwise.train.data import ImageRecordsDataset, group_images, load_records

        data = self.cfg.data
        size = self.model_config().skeleton_size
        built = []
        for split, train in ((data.train_split, True), (data.val_split, False)):
            items = group_images(load_records(data, split))
            if data.proposals:
                from partwise.data.ava import read_proposals

                props = read_proposals(Path(data.root) / data.proposals.format(split=split))
                for it in items:
                    key = f"{it.video},{int(round(it.time_s)):04d}" if it.time_s is not None else it.video
                    found = props.get(key)
                    it.proposals = np.zeros((0, 4)) if found is None else np.asarray(found, np.float64)[:, :4]
            built.append(ImageRecordsDataset(data, items, train=train, seed=self.cfg.run.seed if train else 0,
                                             extra=self.extra_fields, keypoint_inputs=self.cfg.keypoints,
                                             skeleton_size=size))
        self._class_weights = self.class_weights(built[0].items)
        return built[0], built[1]

    def class_weights(self, train_items) -> dict[str, torch.Tensor] | None:
        """Per-module class weights (see :class:`Activity2VecTask`), or None for plain BCE."""
        from partwise.train.data import pasta93_targets, verb_targets

        cfg = self.cfg
        if cfg.loss_weights == "none":
            return None
        if cfg.loss_weights == "frequency":
            pasta, verbs = [], []
            for it in train_items:
                p, v = a2v_target_fill(pasta93_targets(it.pasta), verb_targets(it.actions, it.action_vocab),
                                       cfg.fill_no_interaction)
                pasta.append(p)
                verbs.append(v)
            weights = frequency_loss_weights(np.concatenate(pasta), np.concatenate(verbs), cfg.loss_weight_k)
        else:
            weights = load_loss_weights(cfg.loss_weights, cfg.loss_weight_k)
        return {name: torch.from_numpy(w) for name, w in weights.items()}

    def extra_fields(self, item, sample: dict, rng) -> dict:
        """Training samples: the positives (indices into the GT persons, resampled up to ``human_per_image *
        pos_ratio``) and the negative boxes ``neg_boxes`` (K, 4) pixels of the transformed image."""
        from partwise.train.data import proposal_negative_boxes, sample_negative_boxes

        cfg = self.cfg
        out = {"has_verbs": item.action_vocab == "verbs157"}
        if rng is None:
            return out
        gt = sample["boxes"].numpy().astype(np.float64)
        positives = np.arange(len(gt))
        minimum = int(cfg.human_per_image * cfg.pos_ratio)
        if 0 < len(gt) < minimum:
            positives = np.concatenate([positives, rng.choice(len(gt), size=minimum - len(gt))])
        room = max(cfg.human_per_image - len(positives), 0)
        h, w = sample["image"].shape[-2:]
        source = self.negative_source()
        negatives = np.zeros((0, 4))
        if room and source == "sampled":
            negatives = sample_negative_boxes(gt, (w, h), room, rng, cfg.negative_max_iou)
        elif room and source == "proposals" and item.proposals is not None and len(item.proposals):
            props = item.proposals * np.array([w, h, w, h], np.float64)
            if sample["flipped"]:
                props = np.stack([w - props[:, 2], props[:, 1], w - props[:, 0], props[:, 3]], -1)
            negatives = proposal_negative_boxes(props, gt, room, rng, cfg.negative_max_iou)
        out.update(positives=torch.from_numpy(positives.astype(np.int64)),
                   neg_boxes=torch.from_numpy(negatives.astype(np.float32)))
        return out

    def inputs(self, batch, with_negatives: bool = False):
        """(images, human RoIs (N, 5), part RoIs (N, 10, 5), skeletons (N, 1, S, S)) of the batch's persons; with
        ``with_negatives`` (training batches) the resampled positives then each image's negatives (part boxes = the
        box itself, zero skeleton map)."""
        from partwise.models.activity2vec import PIXEL_MEANS_BGR

        device = batch["image"].device
        images = batch["image"].flip(1) - torch.tensor(PIXEL_MEANS_BGR, device=device).view(1, 3, 1, 1)
        size = self.model_config().skeleton_size
        boxes, parts, maps = [], [], []
        for i, gt in enumerate(batch["boxes"]):
            gt_parts = batch["part_boxes"][i]
            gt_maps = batch["skeletons"][i] if "skeletons" in batch else torch.zeros(len(gt), 1, size, size, device=device)
            if with_negatives and "positives" in batch:
                pos = batch["positives"][i]
                neg = batch["neg_boxes"][i]
                boxes.append(torch.cat([gt[pos], neg]))
                parts.append(torch.cat([gt_parts[pos], neg[:, None, :].expand(-1, 10, -1)]))
                maps.append(torch.cat([gt_maps[pos], torch.zeros(len(neg), 1, size, size, device=device)]))
            else:
                boxes.append(gt)
                parts.append(gt_parts)
                maps.append(gt_maps)
        human = rois_from_boxes(boxes).to(device)
        part_rois = torch.cat([torch.cat([torch.full((len(p), 10, 1), float(i), device=device), p], -1)
                               for i, p in enumerate(parts)])
        return images, human, part_rois, torch.cat(maps)

    def targets(self, batch, with_negatives: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per image ``(pasta93 (n, 93), verbs (n, 157))`` aligned with :meth:`inputs`."""
        out = []
        for i, pasta in enumerate(batch["pasta93"]):
            p, v = a2v_target_fill(pasta.cpu().numpy(), batch["verbs"][i].cpu().numpy(), self.cfg.fill_no_interaction)
            if with_negatives and "positives" in batch:
                pos = batch["positives"][i].cpu().numpy()
                neg_p, neg_v = negative_targets(len(batch["neg_boxes"][i]))
                p, v = np.concatenate([p[pos], neg_p]), np.concatenate([v[pos], neg_v])
            device = pasta.device
            out.append((torch.from_numpy(p).to(device), torch.from_numpy(v).to(device)))
        return out

    def predict_instances(self, model, batch):
        out = model(*self.inputs(batch))
        with_verbs = self.cfg.stage != "parts" and any(batch["has_verbs"])
        return (torch.sigmoid(out["pasta_logits"]).float().cpu().numpy(),
                torch.sigmoid(out["verb_logits"]).float().cpu().numpy() if with_verbs else None)

    def loss_fn(self, model, batch):
        import torch.nn.functional as F

        with_negatives = model.training
        out = model(*self.inputs(batch, with_negatives))
        targets = self.targets(batch, with_negatives)
        weights = getattr(self, "_class_weights", None)
        v = _pasta93()
        counts = [len(t[0]) for t in targets]
        per_image = []
        for s, (pasta, verbs) in zip(_slices(counts), targets):
            if s.stop == s.start:
                continue
            total = 0
            for name in self.trained_modules():
                if name == "verb":
                    logits, labels = out["verb_logits"][s], verbs
                else:
                    span = v.part_slice(name)
                    logits, labels = out["pasta_logits"][s, span], pasta[:, span]
                weight = None if weights is None else weights[name].to(logits.device).expand_as(logits)
                total = total + F.binary_cross_entropy_with_logits(logits, labels, weight=weight)
            per_image.append(total)
        if not per_image:
            return out["pasta_logits"].sum() * 0, {}
        return torch.stack(per_image).sum() / len(counts), {}

    def model_extra(self) -> dict:
        """Extra fields saved with ``model.pt``: whether ``partwise run`` must feed skeleton maps."""
        return {"skeletons": bool(self.cfg.keypoints)}


@dataclass
class ClipActivity2VecTask:
    """CLIP-Activity2Vec (``hake.md`` §4): frozen CLIP ViT-B/16 image tower, eight MLP heads on the whole image
    resized to 224x224 + flip; image-level labels with the no_interaction states (and verb 57) zeroed, a binary
    "part is active" label per part; focal-modulated BCE alpha 3 gamma 1, mean per head, summed over heads; AdamW
    lr 1e-3 wd 1e-5, cosine to 1e-6, 5 epochs, batch 4 x 8 GPUs."""

    data: ImageDataConfig
    task: str = "clip_activity2vec"
    model: dict = field(default_factory=dict)
    focal_alpha: float = 3.0
    focal_gamma: float = 1.0
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=32))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adamw", lr=1e-3, weight_decay=1e-5))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(name="cosine", min_lr_factor=1e-3))
    eval: EvalConfig = field(default_factory=EvalConfig)
    init: str = ""


def clip_image_targets(pasta93: torch.Tensor, verbs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Image-level targets from the persons' (G, 93) PaSta and (G, 157) verbs: per head multi-hot with
    no_interaction zeroed, and ``pasta_binary`` (6,) = the part has a state other than no_interaction."""
    v = _pasta93()
    image_pasta = pasta93.amax(0) if len(pasta93) else torch.zeros(93, device=pasta93.device)
    image_verbs = verbs.amax(0) if len(verbs) else torch.zeros(157, device=verbs.device)
    image_verbs[57] = 0
    out = {"verb": image_verbs}
    binary = []
    for part in ("foot", "leg", "hip", "hand", "arm", "head"):
        target = image_pasta[v.part_slice(part)].clone()
        target[-1] = 0  # no_interaction is the last state of every part
        out[part] = target
        binary.append(target.amax())
    out["pasta_binary"] = torch.stack(binary)
    return out


class ClipActivity2VecRunner(ImageTask):
    name = "clip_activity2vec"
    config_cls = ClipActivity2VecTask

    def model_config(self):
        from partwise.models.clip import ClipActivity2VecConfig

        return build_model_config(ClipActivity2VecConfig, self.cfg.model, "model")

    def build_net(self):
        from partwise.models.clip import ClipActivity2Vec

        return ClipActivity2Vec(self.model_config())

    def predict_instances(self, model, batch):
        """Instance level as CLIP-Activity2Vec's ``forward_instances``: each person crop resized to the tower's
        input and classified like an image."""
        from partwise.models.clip import CLIP_MEAN, CLIP_STD

        mean = torch.tensor(CLIP_MEAN, device=batch["image"].device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=batch["image"].device).view(1, 3, 1, 1)
        net = model.net if hasattr(model, "net") else model
        out = net.forward_instances((batch["image"] / 255 - mean) / std, rois_from_boxes(batch["boxes"]))
        return torch.sigmoid(out["pasta"]).float().cpu().numpy(), torch.sigmoid(out["verb"]).float().cpu().numpy()

    def loss_fn(self, model, batch):
        import torch.nn.functional as F

        from partwise.models.clip import CLIP_MEAN, CLIP_STD

        size = self.model_config_cached.clip.vision.image_size
        images = torch.stack([F.interpolate(img[None], size=(size, size), mode="bilinear", align_corners=False)[0]
                              for img in batch["image"]])
        mean = torch.tensor(CLIP_MEAN, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=images.device).view(1, 3, 1, 1)
        images = (images / 255 - mean) / std
        out = model(images)
        targets = [clip_image_targets(p, v) for p, v in zip(batch["pasta93"], batch["verbs"])]
        loss = out["verb"].new_zeros(())
        for head in ("verb", "foot", "leg", "hip", "hand", "arm", "head", "pasta_binary"):
            y = torch.stack([t[head] for t in targets])
            bce = F.binary_cross_entropy_with_logits(out[head], y, reduction="none")
            loss = loss + (self.cfg.focal_alpha * (1 - torch.exp(-bce)) ** self.cfg.focal_gamma * bce).mean()
        return loss, {}

    @property
    def model_config_cached(self):
        if not hasattr(self, "_mc"):
            self._mc = self.model_config()
        return self._mc


@dataclass
class TINTask:
    """TIN (``tin_hoi.md`` §1.6-1.7): per image all GT human-object pairs (positives, HOI multi-hot + interactive)
    and up to ``neg_per_image`` negatives (a person with another person's object or with another person:
    non-interactive); L = L_H + L_O (positives) + L_sp + L_D; cosine with restarts from 1e-3 (first period 80k,
    x2), momentum 0.9, each gradient tensor clipped to norm 1 on its own (``run.clip_mode: per_tensor``, TF's
    ``clip_by_norm`` per variable); seed 3. ``pos_augment`` jittered copies of each positive (scale 1 +- 10 %,
    shift +- 10 %, IoU > 0.7).

    Data: any image format; HICO-DET (``data.format: hico-det``) gives the HOI targets directly (records carry
    ``hico_hoi600`` ids; the HOIs of one human-object box pair form one multi-hot positive, as TIN's GT entries
    do). ``data.images`` may contain ``{split}`` (e.g. ``images/{split}2015`` for HICO-DET's ``train2015`` /
    ``test2015`` folders). End-of-run evaluation on HICO-DET: see :meth:`TINRunner.evaluate`."""

    data: ImageDataConfig
    task: str = "tin"
    model: dict = field(default_factory=dict)
    neg_per_image: int = 60
    pos_augment: int = 15
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=1, grad_clip=1.0, clip_mode="per_tensor",
                                                             seed=3))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, weight_decay=1e-4))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(name="cosine_restarts",
                                                                             restart_period=80000, restart_mult=2))
    eval: EvalConfig = field(default_factory=EvalConfig)
    init: str = ""
    frozen: list[str] = field(default_factory=list)  # sub-networks kept fixed (eval mode, no gradient)
    #: ``frequency``: TIN's HOI class weights w_c = ln(N / k_c) (k_c positive pairs of HOI c in the training split,
    #: N their sum; unseen classes count 1) multiplying the HOI logits (``tin_hoi.md`` §1.6); ``none``: all 1.
    hoi_weights: str = "frequency"


def tin_hoi_weights(counts: np.ndarray) -> np.ndarray:
    """(600,) TIN class weights ln(N / k_c) from (600,) positive-pair counts; a class never seen counts as 1. The
    weights are floored at 0.1: a class holding nearly every positive would otherwise get a zero weight, which
    freezes its sigmoid at 0.5 (the original's smallest weight is 0.63)."""
    counts = np.asarray(counts, np.float64)
    return np.maximum(np.log(counts.sum() / np.maximum(counts, 1.0)), 0.1).astype(np.float32)


def jitter_box(box: np.ndarray, rng: np.random.Generator, width: float, height: float, tries: int = 150) -> np.ndarray:
    """A copy of ``box`` (x1, y1, x2, y2) scaled by 1 +- U{0..10} % and shifted by +- 10 % of its size, clipped to
    the image, accepted when its IoU with the original is > 0.7 (the original box after ``tries`` failures)."""
    from partwise.ops.boxes import box_iou

    w, h = box[2] - box[0], box[3] - box[1]
    for _ in range(tries):
        scale = 1 + rng.integers(-10, 11) / 100
        dx, dy = rng.uniform(-0.1, 0.1) * w, rng.uniform(-0.1, 0.1) * h
        cx, cy = (box[0] + box[2]) / 2 + dx, (box[1] + box[3]) / 2 + dy
        new = np.array([cx - w * scale / 2, cy - h * scale / 2, cx + w * scale / 2, cy + h * scale / 2])
        new = np.clip(new, 0, [width, height, width, height])
        if float(box_iou(torch.tensor(box[None]), torch.tensor(new[None]))[0, 0]) > 0.7:
            return new
    return box.copy()


def _coco_order_of_hico_object() -> np.ndarray:
    """(81,) COCO-order index 1..80 (what TIN's NIS overrides are keyed by) of each ``hico_objects80`` id."""
    from partwise.data.hico_det import COCO91_TO_HICO_OBJECT

    out = np.zeros(81, np.int64)
    for order, coco91 in enumerate(sorted(COCO91_TO_HICO_OBJECT), start=1):
        out[COCO91_TO_HICO_OBJECT[coco91]] = order
    return out


class TINRunner(ImageTask):
    name = "tin"
    config_cls = TINTask

    def model_config(self):
        from partwise.models.tin import TINConfig

        return build_model_config(TINConfig, self.cfg.model, "model")

    def build_net(self):
        from partwise.models.tin import TIN

        return TIN(self.model_config())

    def wrap(self, net):
        for name in self.cfg.frozen:
            try:
                net.get_submodule(name).requires_grad_(False)
            except AttributeError:
                raise ConfigError(f"frozen: TIN has no sub-network {name!r}") from None
        return TrainModel(net, False, tuple(self.cfg.frozen))

    def split_data(self, split: str) -> ImageDataConfig:
        """``data`` with ``{split}`` in ``data.images`` replaced by ``split``."""
        data = self.cfg.data
        return dataclasses.replace(data, images=data.images.format(split=split)) if "{split}" in data.images else data

    def validate(self) -> None:
        from partwise.train.data import check_image_paths

        self.model_config()
        for split in (self.cfg.data.train_split, self.cfg.data.val_split):
            check_image_paths(self.split_data(split))
        if self.cfg.init and not Path(self.cfg.init).exists():
            raise ConfigError(f"init: {self.cfg.init} does not exist")
        if self.cfg.hoi_weights not in ("frequency", "none"):
            raise ConfigError(f"hoi_weights: expected frequency or none, got {self.cfg.hoi_weights!r}")

    def datasets(self):
        from partwise.train.data import ImageRecordsDataset, group_images

        data = self.cfg.data
        train_items = group_images(load_records(data, data.train_split))
        val_items = group_images(load_records(data, data.val_split))
        self.hoi_weights = None
        if self.cfg.hoi_weights == "frequency":
            counts = np.zeros(600)
            for item in train_items:
                for objects in item.objects:
                    for target, _ in self.hoi_targets(item, objects).values():
                        counts += target
            if counts.sum() > 0:
                self.hoi_weights = torch.from_numpy(tin_hoi_weights(counts))
        return (ImageRecordsDataset(self.split_data(data.train_split), train_items, train=True, seed=self.cfg.run.seed,
                                    extra=self.extra_fields),
                ImageRecordsDataset(self.split_data(data.val_split), val_items, train=False, extra=self.extra_fields))

    @staticmethod
    def hoi_targets(item, objects: list) -> dict[tuple, tuple[np.ndarray, Any]]:
        """One person's objects grouped by box: {normalized box: ((600,) multi-hot HOI target, class id)}. Records
        in ``hico_hoi600`` carry the HOI id as the action, ``hico_verbs117`` records the verb (mapped with the
        object); other vocabularies give all-zero targets (interactiveness only)."""
        from partwise.vocab import hico_hoi_table

        hoi_of = {}
        if item.action_vocab == "hico_verbs117":
            hoi, verb, obj = hico_hoi_table()
            hoi_of = {(int(v), int(o)): int(i) for i, v, o in zip(hoi, verb, obj)}
        merged: dict[tuple, tuple[np.ndarray, Any]] = {}
        for class_id, action, box in objects:
            target, _ = merged.setdefault(tuple(float(v) for v in box), (np.zeros(600, np.float32), class_id))
            if item.action_vocab == "hico_hoi600":
                if action is not None and 1 <= int(action) <= 600:
                    target[int(action) - 1] = 1
                continue
            key = (int(action) if action is not None else -1, int(class_id) if class_id is not None else -1)
            if key in hoi_of:
                target[hoi_of[key] - 1] = 1
        return merged

    def pairs(self, item, sample: dict, rng: np.random.Generator | None):
        """(human boxes (P, 4), object boxes (P, 4), HOI targets (P, 600), binary targets (P, 2), #positives) in
        pixels of the transformed image; positives first. A person's object is never one of its negatives."""
        h, w = sample["image"].shape[-2:]
        scale = np.array([w, h, w, h], np.float64)

        def to_pixels(box):
            b = np.asarray(box, np.float64) * scale
            return np.array([w - b[2], b[1], w - b[0], b[3]]) if sample["flipped"] else b

        humans = sample["boxes"].numpy().astype(np.float64)
        pos_h, pos_o, pos_t, neg_h, neg_o = [], [], [], [], []
        own = [self.hoi_targets(item, objects) for objects in item.objects]
        for g, merged in enumerate(own):
            for box, (target, _) in merged.items():
                copies = [(humans[g], to_pixels(box))]
                if rng is not None:
                    copies += [(jitter_box(humans[g], rng, w, h), jitter_box(to_pixels(box), rng, w, h))
                               for _ in range(self.cfg.pos_augment)]
                for hb, ob in copies:
                    pos_h.append(hb)
                    pos_o.append(ob)
                    pos_t.append(target)
        for g in range(len(humans)):
            for other, objects in enumerate(item.objects):
                if other == g:
                    continue
                neg_h.append(humans[g])
                neg_o.append(humans[other])
                for _, _, box in objects:
                    if tuple(float(v) for v in box) not in own[g]:
                        neg_h.append(humans[g])
                        neg_o.append(to_pixels(box))
        if neg_h and len(neg_h) > self.cfg.neg_per_image:
            pick = (rng.permutation(len(neg_h)) if rng is not None else np.arange(len(neg_h)))[: self.cfg.neg_per_image]
            neg_h, neg_o = [neg_h[i] for i in sorted(pick)], [neg_o[i] for i in sorted(pick)]
        n_pos, n_neg = len(pos_h), len(neg_h)
        hb = np.array(pos_h + neg_h, np.float32).reshape(-1, 4)
        ob = np.array(pos_o + neg_o, np.float32).reshape(-1, 4)
        hoi = np.concatenate([np.array(pos_t, np.float32).reshape(-1, 600), np.zeros((n_neg, 600), np.float32)])
        binary = np.concatenate([np.tile([1, 0], (n_pos, 1)), np.tile([0, 1], (n_neg, 1))]).astype(np.float32)
        return hb, ob, hoi, binary, n_pos

    def extra_fields(self, item, sample: dict, rng) -> dict:
        hb, ob, hoi, binary, n_pos = self.pairs(item, sample, rng)
        return {"pair_h": torch.from_numpy(hb), "pair_o": torch.from_numpy(ob), "hoi": torch.from_numpy(hoi),
                "binary": torch.from_numpy(binary), "n_pos": n_pos}

    @staticmethod
    def forward_pairs(model, image: torch.Tensor, hb: torch.Tensor, ob: torch.Tensor) -> dict:
        """TIN on one RGB 0..255 image ``(1, 3, H, W)`` and its pairs ``hb``, ``ob`` ``(P, 4)`` (pixels)."""
        from partwise.models.activity2vec import PIXEL_MEANS_BGR
        from partwise.models.tin import interaction_pattern

        device = image.device
        images = image.flip(1) - torch.tensor(PIXEL_MEANS_BGR, device=device).view(1, 3, 1, 1)
        patterns = torch.from_numpy(np.stack([interaction_pattern(h.numpy(), o.numpy())
                                              for h, o in zip(hb.cpu(), ob.cpu())])).to(device)
        index = torch.zeros((len(hb), 1), device=device)
        return model(images, torch.cat([index, hb], 1), torch.cat([index, ob], 1), patterns)

    def loss_fn(self, model, batch):
        from partwise.models.tin import tin_loss

        device = batch["image"].device
        binary_weights = torch.tensor([math.log(5.0), math.log(1.25)], device=device)
        losses = []
        for i in range(len(batch["pair_h"])):
            hb, ob = batch["pair_h"][i], batch["pair_o"][i]
            if len(hb) == 0:
                continue
            out = self.forward_pairs(model, batch["image"][i:i + 1], hb, ob)
            hoi_weights = getattr(self, "hoi_weights", None)
            losses.append(tin_loss(out, batch["hoi"][i], batch["binary"][i], int(batch["n_pos"][i]),
                                   hoi_weights=None if hoi_weights is None else hoi_weights.to(device),
                                   binary_weights=binary_weights))
        if not losses:
            return sum(p.sum() * 0 for p in model.parameters() if p.requires_grad), {}
        return torch.stack(losses).sum() / len(batch["pair_h"]), {}

    # --- evaluation ----------------------------------------------------------------------------------------------

    def hico_files(self) -> tuple[Path, Path]:
        """(GT file of the val split, file of the train split's counts) of a HICO-DET ``data.annotations``: the
        folder's ``anno_bbox.mat`` (both), else its ``test_hico.json`` / ``trainval_hico.json``; a file: itself for
        ``.mat``, the JSON pair beside it otherwise."""
        path = Path(self.cfg.data.root) / self.cfg.data.annotations
        if path.is_file() and path.suffix.lower() == ".mat":
            return path, path
        folder = path if path.is_dir() else path.parent
        if (folder / "anno_bbox.mat").is_file() and path.is_dir():
            return folder / "anno_bbox.mat", folder / "anno_bbox.mat"
        return folder / "test_hico.json", folder / "trainval_hico.json"

    def candidate_pairs(self, item) -> list[tuple[int, tuple, int]]:
        """Every (person index, distinct object box (normalized), HICO object id) of an image: the GT persons times
        every annotated object of the image (its own and the other persons') and every other GT person (class
        ``person``: TIN pairs humans with every other detection, humans included)."""
        from partwise.vocab import load

        person = load("hico_objects80").id_of("person")
        objects: dict[tuple, int] = {}
        for objs in item.objects:
            for class_id, _, box in objs:
                objects.setdefault(tuple(float(v) for v in box), int(class_id))
        humans = [tuple(float(v) for v in box) for box in item.boxes]
        out = []
        for g in range(len(humans)):
            out += [(g, box, cls) for box, cls in objects.items()]
            out += [(g, humans[k], person) for k in range(len(humans)) if k != g and humans[k] not in objects]
        return out

    def evaluate(self, model, train_ds, val_ds, out_dir: Path | None, progress: bool = False) -> dict:
        """Validation loss; on HICO-DET records (``hico_hoi600``) also the HICO-DET mAP (:mod:`partwise.eval.hico`,
        ``official`` profile, Default setting) and TIN's interactiveness AP (:mod:`partwise.eval.interactiveness`)
        of the val split, each next to a frequency prior on the same pairs.

        Pairs: the **ground-truth** person boxes times the ground-truth object boxes of each image (no detector is
        run), so these are oracle-box figures, higher than detector-box HICO-DET numbers. Each pair is scored for
        every HOI of its object's class with S_C (``model``), with S_C after TIN's NIS (``model_nis``: the pair is
        dropped for the interaction classes when P_non > tau_no and P_int < tau_int), or with P(HOI | object) of
        the training annotations (``frequency_prior``); P_int scores the pair for the interactiveness AP, next to
        the training fraction of interactive pairs per object class. The official Full/Rare/Non-rare means run over
        all 600 classes (classes without test GT count as AP 0); ``present_*`` over the classes with test GT, which
        is the figure reported as ``mAP``. Predictions go to ``hico_predictions.parquet`` (0-based boxes, readable
        by ``partwise eval hico``)."""
        if not val_ds.items or any(it.action_vocab != "hico_hoi600" for it in val_ds.items):
            return super().evaluate(model, train_ds, val_ds, out_dir, progress)
        results: dict[str, Any] = {"val_loss": {"value": self.validation_loss(model, val_ds)}}
        results.update(self.evaluate_hico(model, train_ds, val_ds, out_dir, progress))
        if out_dir is not None:
            from partwise.io import atomic_write

            with atomic_write(out_dir / "eval.json") as fh:
                json.dump(_clean(results), fh, indent=2)
        return results

    def evaluate_hico(self, model, train_ds, val_ds, out_dir: Path | None, progress: bool = False) -> dict:
        from partwise import vocab
        from partwise.data.hico_det import hoi_verb_object, read_gt_pairs, training_counts
        from partwise.eval import hico as hico_eval
        from partwise.eval.interactiveness import interactive_pairs, interactiveness_ap
        from partwise.models.tin import nis_keep
        from partwise.train.engine import to_device

        gt_file, train_file = self.hico_files()
        gt_raw = read_gt_pairs(gt_file, self.cfg.data.val_split)
        gt = hico_eval.Pairs(gt_raw.image, gt_raw.hoi - 1, gt_raw.boxes)
        index_of = {name: i for i, name in enumerate(gt_raw.images)}
        counts = training_counts(train_file)
        rare = counts[1:] < hico_eval.RARE_THRESHOLD
        verb_of, object_of = hoi_verb_object()
        no_interaction = verb_of == vocab.load("hico_verbs117").id_of("no_interaction")
        hois_of = {o: np.flatnonzero(object_of == o) for o in range(1, 81)}  # HOI ids (1-based) per object
        prior_hoi = np.zeros(601)
        for o, ids in hois_of.items():
            prior_hoi[ids] = counts[ids] / max(int(counts[ids].sum()), 1)
        interactive_seen, candidates_seen = np.zeros(81), np.zeros(81)
        for item in train_ds.items:
            own = [self.hoi_targets(item, objects) for objects in item.objects]
            for g, box, cls in self.candidate_pairs(item):
                candidates_seen[cls] += 1
                if box in own[g] and (own[g][box][0][~no_interaction[1:]] > 0).any():
                    interactive_seen[cls] += 1
        prior_int = interactive_seen / np.maximum(candidates_seen, 1)
        coco_order = _coco_order_of_hico_object()

        rows: dict[str, list] = {k: [] for k in ("image", "cls", "box", "model", "prior", "nis")}
        pair_rows: dict[str, list] = {k: [] for k in ("image", "box", "p_int", "prior")}
        model.eval()
        device = next(model.parameters()).device
        iterator = range(len(val_ds))
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, desc="eval hico-det", unit="img")
        with torch.no_grad():
            for i in iterator:
                item = val_ds.items[i]
                pairs = self.candidate_pairs(item)
                if not pairs or item.video not in index_of:
                    continue
                sample = val_ds[i]
                h, w = sample["image"].shape[-2:]
                scale = np.array([w, h, w, h], np.float64)
                hb = torch.from_numpy(np.array([sample["boxes"][g].numpy() for g, _, _ in pairs], np.float32))
                ob = torch.from_numpy(np.array([np.asarray(box) * scale for _, box, _ in pairs], np.float32))
                out = self.forward_pairs(model, to_device(sample["image"][None], device), hb, ob)
                scores = out["hoi_scores"].float().cpu().numpy().astype(np.float64)
                binary = out["binary"].float().cpu().numpy().astype(np.float64)
                size = np.array([item.width, item.height] * 2, np.float64)
                for k, (g, box, cls) in enumerate(pairs):
                    # continuous pixel boxes -> 0-based inclusive pixel indices (x2 - 1), HICO-DET's detection format
                    boxes8 = np.concatenate([item.boxes[g] * size, np.asarray(box) * size]) - [0, 0, 1, 1] * 2
                    ids = hois_of[cls]
                    keep = nis_keep(binary[k, 0], binary[k, 1], coco_order[cls]) | no_interaction[ids]
                    rows["image"].append(np.full(len(ids), index_of[item.video]))
                    rows["cls"].append(ids - 1)
                    rows["box"].append(np.tile(boxes8, (len(ids), 1)))
                    rows["model"].append(scores[k, ids - 1])
                    rows["prior"].append(prior_hoi[ids])
                    rows["nis"].append(keep)
                    pair_rows["image"].append(index_of[item.video])
                    pair_rows["box"].append(boxes8)
                    pair_rows["p_int"].append(binary[k, 0])
                    pair_rows["prior"].append(prior_int[cls])
        n_images = len(gt_raw.images)
        if not rows["image"]:
            return {}
        image = np.concatenate(rows["image"]).astype(np.int64)
        cls = np.concatenate(rows["cls"]).astype(np.int64)
        boxes = np.concatenate(rows["box"])
        nis = np.concatenate(rows["nis"])

        def hoi_map(score: np.ndarray, keep: np.ndarray | None = None) -> dict:
            det = hico_eval.Pairs(image, cls, boxes, score)
            if keep is not None:
                det = det.take(np.flatnonzero(keep))
            res = hico_eval.evaluate_hico(gt, det, n_images, profile="official", rare=rare)["default"]
            present = res.classes.npos > 0

            def mean(mask):
                return float(res.classes.ap[mask].mean()) if mask.any() else None

            return {"protocol": "hico-det official (Default), ground-truth boxes (oracle)",
                    "full": res.full, "rare": res.rare, "non_rare": res.non_rare,
                    "present_full": mean(present), "present_rare": mean(present & rare),
                    "present_non_rare": mean(present & ~rare),
                    "per_class": {str(c + 1): float(res.classes.ap[c]) for c in np.flatnonzero(present)},
                    "recall": {str(c + 1): float(res.classes.recall[c]) for c in np.flatnonzero(present)}}

        model_score = np.concatenate(rows["model"])
        ours, ours_nis = hoi_map(model_score), hoi_map(model_score, nis)
        prior = hoi_map(np.concatenate(rows["prior"]))
        present = int(np.count_nonzero(np.bincount(gt.cls, minlength=600)))
        out: dict[str, Any] = {"hoi": {
            "mAP": ours["present_full"], "prior_mAP": prior["present_full"], "nis_mAP": ours_nis["present_full"],
            "classes": present, "boxes": "ground-truth person and object boxes (oracle-box mAP)",
            "model": ours, "model_nis": ours_nis, "frequency_prior": prior,
            "n_images": n_images, "n_gt_pairs": int(len(gt)), "n_pairs": len(pair_rows["image"]),
            "rare_classes_present": int(np.count_nonzero(np.bincount(gt.cls, minlength=600).astype(bool) & rare))}}

        positives = interactive_pairs(gt)
        pair_image = np.asarray(pair_rows["image"], np.int64)
        order = np.argsort(pair_image, kind="stable")

        def int_ap(score) -> dict:
            det = hico_eval.Pairs(pair_image, np.zeros(len(pair_image), np.int64),
                                  np.asarray(pair_rows["box"]) + 1.0, np.asarray(score, np.float64)).take(order)
            ap, _, rec, npos = interactiveness_ap(positives, det, n_images)
            return {"protocol": "tin interactiveness AP, ground-truth boxes (oracle)", "ap": ap, "npos": npos,
                    "recall": float(rec[-1]) if rec.size else 0.0}

        ours_int, prior_int_res = int_ap(pair_rows["p_int"]), int_ap(pair_rows["prior"])
        out["interactiveness"] = {"mAP": ours_int["ap"], "prior_mAP": prior_int_res["ap"], "classes": 1,
                                  "model": ours_int, "frequency_prior": prior_int_res}
        if out_dir is not None:
            import pyarrow as pa
            import pyarrow.parquet as pq

            from partwise.io import atomic_write

            table = pa.table({"image": [gt_raw.images[i] for i in image], "hoi_id": cls + 1,
                              **{name: boxes[:, j] for j, name in enumerate(
                                  ("hx1", "hy1", "hx2", "hy2", "ox1", "oy1", "ox2", "oy2"))},
                              "score": model_score})
            with atomic_write(out_dir / "hico_predictions.parquet", "wb") as fh:
                pq.write_table(table, fh)
        return out


# ---------------------------------------------------------------------------------------------------------------
# registry and the run


TASKS: dict[str, type] = {"ava_detector": AvaDetectorRunner, "st_activity2vec": STActivity2VecRunner,
                          "activity2vec": Activity2VecRunner, "clip_activity2vec": ClipActivity2VecRunner,
                          "tin": TINRunner}


def register_task(runner: type) -> None:
    TASKS[runner.name] = runner


import partwise.train.person_detector  # noqa: E402,F401  (registers the person_detector task)
import partwise.train.video_classifier  # noqa: E402,F401  (registers the video_classifier task)


def load_task(path: str | None, overrides: list[str] | None = None, base: dict | None = None):
    """Read the config (file, then ``key=value`` overrides), pick the task, validate everything; -> runner."""
    values = dict(base or {})
    if path is not None:
        values.update(config_mod.load_yaml(path))
    values = config_mod.apply_overrides(values, overrides or [])
    prefix = f"{path}: " if path is not None else ""
    name = values.get("task")
    if name is None:
        raise ConfigError(f"{prefix}task: required key is missing (one of {', '.join(TASKS)})")
    if name not in TASKS:
        raise ConfigError(f"{prefix}task: unknown task {name!r} (one of {', '.join(TASKS)})")
    runner_cls = TASKS[name]
    try:
        cfg = config_mod.build(runner_cls.config_cls, values)
        runner = runner_cls(cfg)
        runner.validate()
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
    return runner


def run_task(runner, *, resume: bool = False, progress: bool = True, evaluate: bool = True) -> dict:
    """Train (one process or under torchrun), then on rank 0 evaluate and write ``model.pt``; -> summary dict."""
    from partwise.models.checkpoint import save_model

    cfg = runner.cfg
    train_ds, val_ds = runner.datasets()
    model = runner.build_model()
    collate = runner.collate if isinstance(runner, ImageTask) else collate_clips
    result = train(model, train_ds, runner.loss_fn, cfg.run, cfg.optim, cfg.schedule, config_mod.to_dict(cfg),
                   resume=resume, collate_fn=collate, progress=progress)
    summary: dict[str, Any] = {"steps": result.step, "final_loss": result.history[-1]["loss"] if result.history else None}
    if result.checkpoint is None:  # not rank 0
        return summary
    out_dir = Path(cfg.run.out_dir)
    extra = {"task": runner.name, "data": dataclasses.asdict(cfg.data)}
    extra.update(runner.model_extra() if hasattr(runner, "model_extra") else {})
    save_model(model.net, out_dir / "model.pt", extra=extra)
    summary["seconds"] = result.history[-1].get("seconds") if result.history else 0.0
    if evaluate and cfg.eval.enabled:
        summary["eval"] = runner.evaluate(model, train_ds, val_ds, out_dir, progress=progress)
    return summary


def build_optimizer_for(runner) -> torch.optim.Optimizer:
    """The optimizer the run would use (for config checks)."""
    model = runner.build_model()
    return build_optimizer(model.parameters(), runner.cfg.optim)


def format_summary(summary: dict) -> str:
    """The end-of-run lines: steps, final loss, and per evaluated kind the model's and the prior's frame mAP."""
    if "eval" not in summary and "seconds" not in summary:
        return ""
    loss = summary["final_loss"]
    lines = [f"trained {summary['steps']} steps, final loss " + ("-" if loss is None else f"{loss:.4f}")
             + (f", {summary['seconds']:.0f} s" if summary.get("seconds") else "")]
    for kind, res in summary.get("eval", {}).items():
        if "mAP" not in res:
            lines.append(f"{kind:8s} {res['value']:.4f}")
            continue
        baseline = res.get("baseline", "frequency prior")
        lines.append(f"{kind:8s} mAP {100 * res['mAP']:6.2f}   {baseline} {100 * res['prior_mAP']:6.2f}"
                     f"   ({res['classes']} classes present in val; {res['model']['protocol']})")
    return "\n".join(lines)
