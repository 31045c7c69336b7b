"""partwise's own model format: one file holding ``{"format": "partwise", "version": 1, "family": ...,
"config": <dataclass as dict>, "state_dict": ...}``, written by :func:`save_model` (atomically) and rebuilt by
:func:`load_model`."""
from __future__ import annotations

import importlib
import os

import torch
from torch import nn

from partwise.errors import InputError
from partwise.io import atomic_write
from partwise.models.checkpoint.load import load_state_dict, read_checkpoint

#: partwise model families saved by :func:`save_model`: family -> (module, config class, model class).
FAMILIES: dict[str, tuple[str, str, str]] = {
    "ava_detector": ("partwise.models.ava_detector", "AVADetectorConfig", "AVADetector"),
    "activity2vec": ("partwise.models.activity2vec", "Activity2VecConfig", "Activity2Vec"),
    "clip": ("partwise.models.clip", "ClipConfig", "CLIP"),
    "clip_activity2vec": ("partwise.models.clip", "ClipActivity2VecConfig", "ClipActivity2Vec"),
    "tin": ("partwise.models.tin", "TINConfig", "TIN"),
    "st_activity2vec": ("partwise.models.st_activity2vec", "STActivity2VecConfig", "STActivity2Vec"),
    "person_detector": ("partwise.models.person_detector", "PersonDetectorConfig", "PersonDetector"),
    "video_classifier": ("partwise.models.video_classifier", "VideoClassifierConfig", "VideoClassifier"),
}

FORMAT_VERSION = 1



def _family_of(model: nn.Module) -> str:
    for family, (module, _, cls_name) in FAMILIES.items():
        if type(model).__module__ == module and type(model).__name__ == cls_name:
            return family
    raise ValueError(f"{type(model).__name__} is not a registered partwise model family ({', '.join(FAMILIES)})")


def _config_of(model: nn.Module):
    config = getattr(model, "cfg", None)
    return config if config is not None else model.config


def save_model(model: nn.Module, path: str | os.PathLike, extra: dict | None = None) -> None:
    """Write model weights and its config (``model.cfg`` or ``model.config``, a dataclass with ``to_dict``) to
    ``path`` atomically."""
    record = {"format": "partwise", "version": FORMAT_VERSION, "family": _family_of(model),
              "config": _config_of(model).to_dict(), "state_dict": model.state_dict(), "extra": dict(extra or {})}
    with atomic_write(path, "wb") as fh:
        torch.save(record, fh)


def load_model(path: str | os.PathLike, strict: bool = True) -> nn.Module:
    """Rebuild a model saved by :func:`save_model` (config + weights), in eval mode."""
    record = read_checkpoint(path)
    if record.get("format") != "partwise":
        raise InputError(path, "format", "not a partwise checkpoint (use load_state_dict with its source)")
    if record.get("version") != FORMAT_VERSION:
        raise InputError(path, "version", f"unsupported partwise checkpoint version {record.get('version')!r}")
    family = record.get("family")
    if family not in FAMILIES:
        raise InputError(path, "family", f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    module_name, cfg_name, cls_name = FAMILIES[family]
    module = importlib.import_module(module_name)
    try:
        cfg = getattr(module, cfg_name).from_dict(record["config"])
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(path, "config", f"invalid {cfg_name}: {exc}") from None
    model = getattr(module, cls_name)(cfg)
    load_state_dict(model, record["state_dict"], "partwise", strict=strict, path=path)
    return model.eval()
