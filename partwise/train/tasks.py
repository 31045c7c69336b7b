"""The training tasks behind ``partwise train CONFIG.yaml``: one dataclass config per task, how to build its model,
data and loss, and how to evaluate it at the end.

A config file names its task with ``task:`` (``ava_detector``, ``st_activity2vec``, ``activity2vec``,
``clip_activity2vec``, ``tin``); the other top-level keys are the task's dataclass fields. Model sections are the
model's own config dataclass (``AVADetectorConfig``, ``STActivity2VecConfig``, ...), validated key by key like the
rest, so a typo is a one-line :class:`ConfigError` before any work starts.

Evaluation at the end (rank 0; ``eval.json`` + ``eval_*.png`` in ``run.out_dir``, printed side by side with a
frequency prior that scores every evaluated box with each class's training frequency): AVA frame mAP of the actions
and (ST-Activity2Vec) the PaSta frame mAP, over the classes present in the val ground truth; Activity2Vec and
CLIP-Activity2Vec: Activity2Vec's PaSta / verb instance AP on the val persons; TIN: the validation loss only.

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


@dataclass
class Activity2VecTask:
    """HAKE Activity2Vec training (``hake.md`` §3.4), staged: ``stage: parts`` trains the part heads named in
    ``parts`` (the original trains each part alone with its own lr: foot 1e-4 cosine, leg 2e-5, hip 2e-5 cosine,
    hand 1e-4, arm 5e-5, head 5e-5), backbone frozen; ``stage: verb`` trains the verb head (lr 2.5e-3 cosine) on the
    frozen part features. SGD momentum 0.9, one image per step; cosine = warm restarts (T_0 = 2 epochs, T_mult 2).
    Skeleton maps are zero (records carry no keypoints); part boxes missing from a record are the person box."""

    data: ImageDataConfig
    task: str = "activity2vec"
    stage: str = "parts"
    parts: list[str] = field(default_factory=lambda: ["foot", "leg", "hip", "hand", "arm", "head"])
    model: dict = field(default_factory=dict)
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
        if self.cfg.stage not in ("parts", "verb"):
            raise ConfigError(f"stage: expected parts or verb, got {self.cfg.stage!r}")
        bad = [p for p in self.cfg.parts if p not in self.PARTS]
        if bad or not self.cfg.parts:
            raise ConfigError(f"parts: expected some of {', '.join(self.PARTS)}, got {self.cfg.parts}")

    def build_net(self):
        from partwise.models.activity2vec import Activity2Vec

        net = Activity2Vec(self.model_config())
        net.requires_grad_(False)
        if self.cfg.stage == "parts":
            for p in (self.PARTS.index(name) for name in self.cfg.parts):
                for module in (net.pool2_flat_pose_maps[p], net.fc7_parts[p], net.part_cls_scores[p]):
                    module.requires_grad_(True)
        else:
            net.verb_cls_scores.requires_grad_(True)
        return net

    def wrap(self, net):
        frozen = ("backbone",) if self.cfg.stage == "parts" else ("backbone", "pool2_flat_pose_maps", "fc7_parts")
        return TrainModel(net, False, frozen)

    def inputs(self, batch):
        from partwise.models.activity2vec import PIXEL_MEANS_BGR

        device = batch["image"].device
        images = batch["image"].flip(1) - torch.tensor(PIXEL_MEANS_BGR, device=device).view(1, 3, 1, 1)
        human = rois_from_boxes(batch["boxes"])
        parts = torch.cat([torch.cat([torch.full((len(p), 10, 1), float(i), device=device), p], -1)
                           for i, p in enumerate(batch["part_boxes"])])
        skeletons = torch.zeros(len(human), 1, 64, 64, device=device)
        return images, human, parts, skeletons

    def predict_instances(self, model, batch):
        out = model(*self.inputs(batch))
        return (torch.sigmoid(out["pasta_logits"]).float().cpu().numpy(),
                torch.sigmoid(out["verb_logits"]).float().cpu().numpy() if self.cfg.stage == "verb" else None)

    def loss_fn(self, model, batch):
        import torch.nn.functional as F

        out = model(*self.inputs(batch))
        counts = [len(b) for b in batch["boxes"]]
        if self.cfg.stage == "parts":
            v = _pasta93()
            columns = torch.cat([torch.arange(v.part_slice(p).start, v.part_slice(p).stop) for p in self.cfg.parts])
            columns = columns.to(out["pasta_logits"].device)
            logits, targets = out["pasta_logits"][:, columns], torch.cat(batch["pasta93"])[:, columns]
        else:
            logits, targets = out["verb_logits"], torch.cat(batch["verbs"])
        per_image = [F.binary_cross_entropy_with_logits(logits[s], targets[s]) for s in _slices(counts) if s.stop > s.start]
        return torch.stack(per_image).sum() / len(counts), {}


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
    x2), momentum 0.9, gradient norm clipped to 1 (global here; the original clips per tensor); seed 3.
    ``pos_augment`` jittered copies of each positive (scale 1 +- 10 %, shift +- 10 %, IoU > 0.7)."""

    data: ImageDataConfig
    task: str = "tin"
    model: dict = field(default_factory=dict)
    neg_per_image: int = 60
    pos_augment: int = 15
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=1, grad_clip=1.0, seed=3))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, weight_decay=1e-4))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(name="cosine_restarts",
                                                                             restart_period=80000, restart_mult=2))
    eval: EvalConfig = field(default_factory=EvalConfig)
    init: str = ""


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


class TINRunner(ImageTask):
    name = "tin"
    config_cls = TINTask

    def model_config(self):
        from partwise.models.tin import TINConfig

        return build_model_config(TINConfig, self.cfg.model, "model")

    def build_net(self):
        from partwise.models.tin import TIN

        return TIN(self.model_config())

    def pairs(self, item, sample: dict, rng: np.random.Generator | None):
        """(human boxes (P, 4), object boxes (P, 4), HOI targets (P, 600), binary targets (P, 2), #positives) in
        pixels of the transformed image; positives first."""
        from partwise.vocab import hico_hoi_table

        h, w = sample["image"].shape[-2:]
        scale = np.array([w, h, w, h], np.float64)

        def to_pixels(box):
            b = np.asarray(box, np.float64) * scale
            return np.array([w - b[2], b[1], w - b[0], b[3]]) if sample["flipped"] else b

        humans = sample["boxes"].numpy().astype(np.float64)
        hoi_of = {}
        if item.action_vocab == "hico_verbs117":
            hoi, verb, obj = hico_hoi_table()
            hoi_of = {(int(v), int(o)): int(i) for i, v, o in zip(hoi, verb, obj)}
        pos_h, pos_o, pos_t, neg_h, neg_o = [], [], [], [], []
        for g, objects in enumerate(item.objects):
            for class_id, action, box in objects:
                target = np.zeros(600, np.float32)
                key = (int(action) if action is not None else -1, int(class_id) if class_id is not None else -1)
                if key in hoi_of:
                    target[hoi_of[key] - 1] = 1
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

    def loss_fn(self, model, batch):
        from partwise.models.tin import interaction_pattern, tin_loss

        from partwise.models.activity2vec import PIXEL_MEANS_BGR

        device = batch["image"].device
        images = batch["image"].flip(1) - torch.tensor(PIXEL_MEANS_BGR, device=device).view(1, 3, 1, 1)
        binary_weights = torch.tensor([math.log(5.0), math.log(1.25)], device=device)
        losses = []
        for i in range(len(batch["pair_h"])):
            hb, ob = batch["pair_h"][i], batch["pair_o"][i]
            if len(hb) == 0:
                continue
            patterns = torch.from_numpy(np.stack([interaction_pattern(h.numpy(), o.numpy())
                                                  for h, o in zip(hb.cpu(), ob.cpu())])).to(device)
            index = torch.full((len(hb), 1), 0.0, device=device)
            out = model(images[i:i + 1], torch.cat([index, hb], 1), torch.cat([index, ob], 1), patterns)
            losses.append(tin_loss(out, batch["hoi"][i], batch["binary"][i], int(batch["n_pos"][i]),
                                   binary_weights=binary_weights))
        if not losses:
            return sum(p.sum() * 0 for p in model.parameters() if p.requires_grad), {}
        return torch.stack(losses).sum() / len(batch["pair_h"]), {}


# ---------------------------------------------------------------------------------------------------------------
# registry and the run


TASKS: dict[str, type] = {"ava_detector": AvaDetectorRunner, "st_activity2vec": STActivity2VecRunner,
                          "activity2vec": Activity2VecRunner, "clip_activity2vec": ClipActivity2VecRunner,
                          "tin": TINRunner}


def register_task(runner: type) -> None:
    TASKS[runner.name] = runner


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
    save_model(model.net, out_dir / "model.pt", extra={"task": runner.name, "data": dataclasses.asdict(cfg.data)})
    summary["seconds"] = result.history[-1].get("seconds")
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
    lines = [f"trained {summary['steps']} steps, final loss {summary['final_loss']:.4f}"
             + (f", {summary['seconds']:.0f} s" if summary.get("seconds") else "")]
    for kind, res in summary.get("eval", {}).items():
        if "mAP" not in res:
            lines.append(f"{kind:8s} {res['value']:.4f}")
            continue
        lines.append(f"{kind:8s} mAP {100 * res['mAP']:6.2f}   frequency prior {100 * res['prior_mAP']:6.2f}"
                     f"   ({res['classes']} classes present in val; {res['model']['protocol']})")
    return "\n".join(lines)
