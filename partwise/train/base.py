"""The shared parts of the training tasks: model-config building (:func:`build_model_config`), the evaluation
config, :class:`TrainModel`, :func:`load_init`, and the runner bases :class:`Task`, :class:`KeyframeTask` (the AVA-style
clip tasks) and :class:`ImageTask` (the image tasks). The task modules (:mod:`partwise.train.ava`, ...) subclass these
and import nothing else from :mod:`partwise.train` above the data and engine layers; :mod:`partwise.train.tasks` holds
the table of tasks and the run.

Evaluation at the end (rank 0; ``eval.json`` + ``eval_*.png`` in ``run.out_dir``, printed side by side with a
frequency prior that scores every evaluated box with each class's training frequency): AVA frame mAP of the actions
and (ST-Activity2Vec) the PaSta frame mAP, over the classes present in the val ground truth; Activity2Vec and
CLIP-Activity2Vec: Activity2Vec's PaSta / verb instance AP on the val persons; TIN: the validation loss and, on
HICO-DET data, the HICO-DET mAP and interactiveness AP on ground-truth boxes
(:meth:`partwise.train.tin.TINRunner.evaluate`).

Loss normalisation: every clip-level loss is the mean over clips of that clip's loss (mmaction2 averages over the
positive RoIs of a GPU's batch). A clip-wise mean makes the loss of a global batch independent of how it is split
across ``torchrun`` processes, so N processes follow the same curve as one (given no batch-dependent layers:
``norm_eval`` freezes BatchNorm statistics, and dropout draws differ per process).
"""
from __future__ import annotations

import abc
import dataclasses
import functools
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from partwise.errors import ConfigError
from partwise.train import config as config_mod
from partwise.train.data import (KeyframeClipDataset, check_data_paths, collate_clips, group_keyframes, load_records,
                                 read_proposal_file, rois_from_boxes)

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
        # the model configs' checks start their message with the field ("depth: ..."): name the dotted key
        first, sep, reason = str(exc).partition(": ")
        if sep and first in fields:
            raise ConfigError(f"{where}.{first}: {reason}") from None
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


class Task(abc.ABC):
    """What every task runner has: its validated config (``config_cls``) and the model config built from it."""

    name = ""
    config_cls: type = object

    def __init__(self, cfg):
        self.cfg = cfg

    @abc.abstractmethod
    def model_config(self):
        """The model's config dataclass from ``cfg.model`` (raises :class:`ConfigError`); implemented by each task."""

    @functools.cached_property
    def net_config(self):
        """:meth:`model_config`, built once."""
        return self.model_config()

    def check_net(self) -> None:
        """Build the network on the meta device (no memory, no initialisation work): a value the model config
        accepts but a constructor refuses is a :class:`ConfigError` now, under ``--check`` too, not a traceback
        when training starts. The model configs check the values they know by key; this catches the rest."""
        try:
            with torch.device("meta"):
                self.build_net()
        except NotImplementedError:
            return  # an operation the meta device lacks: the real build is the judge
        except (ValueError, TypeError, RuntimeError) as exc:  # RuntimeError: e.g. a negative channel count
            raise ConfigError(f"model: {exc}") from None

    #: samples per batch of :meth:`validation_loss`
    val_batch_size = 4

    @staticmethod
    def collate(items: list[dict]) -> dict:
        """A batch from dataset items (the engine's ``collate_fn``): stacked clips, by default."""
        return collate_clips(items)

    def build_model(self) -> TrainModel:
        """The seeded network, initialised from ``cfg.init`` when set, wrapped by :meth:`wrap`."""
        torch.manual_seed(self.cfg.run.seed)
        net = self.build_net()
        if self.cfg.init:
            load_init(net, self.cfg.init)
        return self.wrap(net)

    def validation_loss(self, model: nn.Module, dataset, batch_size: int | None = None) -> float:
        """The training loss over ``dataset`` (its test-time samples) in eval mode, sample-weighted."""
        from partwise.train.engine import to_device

        batch_size = batch_size or self.val_batch_size
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


# ---------------------------------------------------------------------------------------------------------------
# AVA-style keyframe tasks: the shared base of ava_detector and st_activity2vec


class KeyframeTask(Task):
    """Shared machinery of the two clip tasks (data, evaluation, baseline)."""

    # -- building (all validation happens here, before any work)
    def validate(self) -> None:
        self.model_config()
        self.check_net()
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
            from partwise.progress import bar as tqdm

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
                ours.plot(str(out_dir / f"eval_{kind}.png"), baseline=base.value)
        if out_dir is not None:
            write_eval_json(out_dir, results)
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


def write_eval_json(out_dir: str | Path, results: dict) -> None:
    """``out_dir/eval.json`` (atomic), NaN and infinite figures written as null."""
    from partwise.io import atomic_write

    with atomic_write(Path(out_dir) / "eval.json") as fh:
        json.dump(_clean(results), fh, indent=2)


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


# ---------------------------------------------------------------------------------------------------------------
# image tasks: the shared base of Activity2Vec, CLIP-Activity2Vec, TIN and the person detector


def _pasta93():
    from partwise import vocab

    return vocab.load("pasta93")


class ImageTask(Task):
    """Shared machinery of the image tasks: records -> images with persons, validation loss as the end-of-run
    evaluation (``eval.json``: ``{"val_loss": ..., "initial_val_loss": ...}``)."""

    def validate(self) -> None:
        from partwise.train.data import check_image_paths

        self.model_config()
        self.check_net()
        check_image_paths(self.cfg.data)
        if self.cfg.init and not Path(self.cfg.init).exists():
            raise ConfigError(f"init: {self.cfg.init} does not exist")

    val_batch_size = 2

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
            write_eval_json(out_dir, results)
        return results
