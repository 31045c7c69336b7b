"""Checkpoints: foreign state dicts mapped to partwise modules, and partwise's own model+config format.

Foreign checkpoints are read with ``torch.load(weights_only=True)`` only (no arbitrary unpickling). Their keys are
renamed by an explicit rule table per source (:data:`KEY_RULES`: ordered ``(regex, replacement)`` pairs, first match
wins; a key no rule matches is reported as unexpected). :func:`load_state_dict` then reports missing, unexpected
and shape-mismatched keys and, when ``strict`` (the default), refuses to load anything if there is any.

partwise's format (:func:`save_model` / :func:`load_model`) is one file holding
``{"format": "partwise", "version": 1, "family": ..., "config": <dataclass as dict>, "state_dict": ...}``.
"""
from __future__ import annotations

import importlib
import os
import re
import zipfile
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from partwise.errors import InputError, MissingFileError
from partwise.io import atomic_write

#: key renaming per source: ordered (pattern, replacement) rules, applied with ``re.sub`` on the first match.
#: A replacement of ``None`` drops the key silently (non-parameter entries such as OpenAI's ``input_resolution``).
#: Several keys may map to one model key only if their tensors are identical (HAKE registers the ResNet modules
#: three times); a differing duplicate is reported as unexpected.
KEY_RULES: dict[str, list[tuple[str, str | None]]] = {
    "mmaction2": [
        (r"^roi_head\.bbox_head\.", "head."),
        (r"^cls_head\.", "head."),  # recognizers (Recognizer3D: I3DHead / SlowFastHead ``fc_cls``)
        (r"^backbone\.", "backbone."),
    ],
    "openai_clip": [
        (r"^(input_resolution|context_length|vocab_size)$", None),
        (r"^", ""),
    ],
    "hake_activity2vec": [
        (r"^resnet50\.", "backbone."),
        (r"^image_to_head\.2\.", "backbone.conv1."),
        (r"^image_to_head\.3\.", "backbone.bn1."),
        (r"^image_to_head\.8\.", "backbone.layer1."),
        (r"^image_to_head\.9\.", "backbone.layer2."),
        (r"^image_to_head\.10\.", "backbone.layer3."),
        (r"^resnet_layer4\.", "backbone.layer4."),
        (r"^(fc7_parts|part_cls_scores|verb_cls_scores|pool2_flat_pose_maps)\.", r"\1."),
    ],
    "partwise": [(r"^", "")],
}

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


@dataclass
class LoadReport:
    """What happened to each key when mapping a foreign state dict onto a model."""

    source: str
    mapped: dict[str, str] = field(default_factory=dict)  # checkpoint key -> model key
    missing: list[str] = field(default_factory=list)  # model keys the checkpoint lacks
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys (original names) with no model key
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # (model key, ckpt shape, model shape)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def format(self, limit: int = 20) -> str:
        lines = [f"source: {self.source}; mapped keys: {len(self.mapped)}; missing: {len(self.missing)}; "
                 f"unexpected: {len(self.unexpected)}; shape mismatches: {len(self.mismatched)}"]
        renamed = [(k, v) for k, v in self.mapped.items() if k != v]
        if renamed:
            lines.append(f"renamed: {len(renamed)} keys, e.g. {renamed[0][0]} -> {renamed[0][1]}")
        for title, items in (("missing", self.missing), ("unexpected", self.unexpected)):
            for key in items[:limit]:
                lines.append(f"  {title}: {key}")
            if len(items) > limit:
                lines.append(f"  ... {len(items) - limit} more {title}")
        for key, got, want in self.mismatched[:limit]:
            lines.append(f"  shape mismatch: {key}: checkpoint {list(got)} vs model {list(want)}")
        return "\n".join(lines)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint file safely (``weights_only=True``); errors name the file."""
    if not os.path.exists(path):
        raise MissingFileError(f"{path}: checkpoint not found")
    if not zipfile.is_zipfile(path):
        raise InputError(path, None, "not a torch checkpoint (torch.save writes a zip archive)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors of many kinds; report them as bad input, one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(path, None, f"cannot read as a weights-only torch checkpoint: {reason}") from None
    if not isinstance(obj, dict):
        raise InputError(path, None, f"expected a dict checkpoint, got {type(obj).__name__}")
    return obj


def state_dict_of(checkpoint: dict) -> dict[str, Tensor]:
    """The tensor dict inside a checkpoint (``state_dict`` / ``model`` wrappers or a bare state dict)."""
    for key in ("state_dict", "model_state_dict", "model_state", "model"):
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


def detect_source(checkpoint: dict) -> str:
    """``"partwise"``, ``"mmaction2"``, ``"openai_clip"``, ``"hake_activity2vec"`` or ``"unknown"`` from the file's
    structure and key names."""
    if checkpoint.get("format") == "partwise":
        return "partwise"
    if isinstance(checkpoint.get("model_state_dict"), dict):
        keys = set(checkpoint["model_state_dict"])
        if "verb_cls_scores.weight" in keys and any(k.startswith("resnet50.") for k in keys):
            return "hake_activity2vec"
    keys = list(state_dict_of(checkpoint))
    if "visual.conv1.weight" in keys and "visual.proj" in keys:
        return "openai_clip"
    if keys and any(k.startswith("backbone.") for k in keys) and (
            any(k.startswith(("roi_head.", "cls_head.")) for k in keys) or "meta" in checkpoint):
        return "mmaction2"
    return "unknown"


def map_keys(state_dict: dict[str, Tensor], source: str) -> tuple[dict[str, Tensor], dict[str, str], list[str]]:
    """Rename keys by ``KEY_RULES[source]`` -> (renamed dict, original -> new names, keys no rule matched)."""
    if source not in KEY_RULES:
        raise ValueError(f"no key rules for source {source!r}; known: {', '.join(KEY_RULES)}")
    rules = [(re.compile(p), r) for p, r in KEY_RULES[source]]
    out, names, unmatched = {}, {}, []
    for key, value in state_dict.items():
        for pattern, repl in rules:
            if pattern.search(key):
                if repl is None:
                    break
                new = pattern.sub(repl, key, count=1)
                if new in out and not (out[new].shape == value.shape and torch.equal(out[new], value)):
                    unmatched.append(key)  # an alias whose tensor differs from the key it duplicates
                else:
                    out[new] = value
                    names[key] = new
                break
        else:
            unmatched.append(key)
    return out, names, unmatched


def load_state_dict(model: nn.Module, state_dict: dict[str, Tensor], source: str = "mmaction2",
                    strict: bool = True, path: str | os.PathLike | None = None,
                    dry_run: bool = False) -> LoadReport:
    """Map ``state_dict`` from ``source`` naming onto ``model`` and load it.

    ``strict``: any missing, unexpected or mis-shaped key raises :class:`InputError` (naming the file and the first
    offending key) and nothing is loaded. Non-strict: loads every key that matches in name and shape.
    ``dry_run``: only build the report (nothing is loaded, nothing raised). Returns the :class:`LoadReport`.
    """
    mapped, names, unmatched = map_keys(state_dict, source)
    report = LoadReport(source, mapped=names, unexpected=list(unmatched))
    target = model.state_dict()
    inverse = {}
    for original, new in names.items():
        inverse.setdefault(new, original)
    usable = {}
    for key, value in mapped.items():
        if key not in target:
            report.unexpected.append(inverse[key])
        elif tuple(value.shape) != tuple(target[key].shape):
            report.mismatched.append((key, tuple(value.shape), tuple(target[key].shape)))
        else:
            usable[key] = value
    report.missing = [k for k in target if k not in mapped]
    if dry_run:
        return report
    if strict and not report.ok:
        key, reason = _first_problem(report)
        raise InputError(path, key, f"{reason} (loading {source} weights into {type(model).__name__}; "
                                    f"{len(report.missing)} missing, {len(report.unexpected)} unexpected, "
                                    f"{len(report.mismatched)} mis-shaped keys)")
    model.load_state_dict(usable, strict=False)
    return report


def _first_problem(report: LoadReport) -> tuple[str, str]:
    if report.mismatched:
        key, got, want = report.mismatched[0]
        return key, f"shape {list(got)} in the checkpoint, {list(want)} in the model"
    if report.missing:
        return report.missing[0], "missing from the checkpoint"
    return report.unexpected[0], "not a parameter of the model"


def parameter_count(model_or_state: nn.Module | dict) -> int:
    """Learnable parameters of a module, or of a state dict (BN running statistics and counters excluded)."""
    if isinstance(model_or_state, nn.Module):
        return sum(p.numel() for p in model_or_state.parameters())
    skip = ("running_mean", "running_var", "num_batches_tracked")
    total = 0
    for key, value in model_or_state.items():
        if key.endswith(skip):
            continue
        shape = value if isinstance(value, (list, tuple)) else value.shape
        count = 1
        for s in shape:
            count *= int(s)
        total += count
    return total


# ---------------------------------------------------------------------------------------------------------------
# mmaction2 AVA detector checkpoints -> partwise AVADetector


def mmaction2_detector_config(state_dict: dict[str, Tensor]):
    """Infer the :class:`AVADetectorConfig` of an mmaction2 AVA checkpoint from its key names and shapes.

    Recovered: SlowOnly vs SlowFast, depth, base channels, non-local blocks, MLP head, context (head input =
    twice the backbone output). Not recoverable from weights, left at the defaults: the extractor's temporal pool
    (avg) and the loss options; SlowFast rates follow the fusion kernel (5: the 4x16 configs, rates 8/8; 7: the
    8x8 configs, rates 4/4).
    """
    from partwise.models.ava_detector import AVADetectorConfig
    from partwise.models.resnet3d import ResNet3dConfig, SlowFastConfig

    def blocks(prefix: str) -> list[int]:
        counts = []
        for stage in range(1, 5):
            pat = re.compile(rf"^{re.escape(prefix)}layer{stage}\.(\d+)\.conv1\.conv\.weight$")
            idx = [int(m.group(1)) for k in state_dict if (m := pat.match(k))]
            counts.append(max(idx) + 1 if idx else 0)
        return counts

    def non_local(prefix: str, counts: list[int]) -> tuple:
        """Per-block flags for every stage (mmaction2's ``non_local`` layout), or all-0 stages when none."""
        flags = tuple(tuple(int(f"{prefix}layer{stage}.{j}.non_local_block.theta.conv.weight" in state_dict)
                            for j in range(n)) for stage, n in enumerate(counts, start=1))
        return flags if any(any(f) for f in flags) else (0,) * len(counts)

    depth_of = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}
    if "backbone.slow_path.conv1.conv.weight" in state_dict:
        counts = blocks("backbone.slow_path.")
        slow_base = state_dict["backbone.slow_path.conv1.conv.weight"].shape[0]
        fast_base = state_dict["backbone.fast_path.conv1.conv.weight"].shape[0]
        fusion = state_dict["backbone.slow_path.conv1_lateral.conv.weight"].shape[2]
        rate = 8 if fusion == 5 else 4
        backbone = SlowFastConfig(depth=depth_of.get(tuple(counts), 0), resample_rate=rate, speed_ratio=rate,
                                  channel_ratio=slow_base // fast_base, fusion_kernel=fusion,
                                  base_channels=slow_base,
                                  slow_non_local=non_local("backbone.slow_path.", counts),
                                  fast_non_local=non_local("backbone.fast_path.", counts))
        kind, channels = "slowfast", backbone.slow_config().out_channels + backbone.fast_config().out_channels
    elif "backbone.conv1.conv.weight" in state_dict:
        counts = blocks("backbone.")
        base = state_dict["backbone.conv1.conv.weight"].shape[0]
        backbone = ResNet3dConfig(depth=depth_of.get(tuple(counts), 0), base_channels=base,
                                  non_local=non_local("backbone.", counts))
        kind, channels = "slowonly", backbone.out_channels
    else:
        raise ValueError("not an mmaction2 SlowOnly/SlowFast checkpoint (no backbone.conv1 or "
                         "backbone.slow_path.conv1 weights)")
    if backbone.depth == 0:
        raise ValueError(f"unsupported block counts per stage {counts}")
    mlp = "roi_head.bbox_head.fc_cls.0.weight" in state_dict
    head_w = state_dict["roi_head.bbox_head.fc_cls.0.weight" if mlp else "roi_head.bbox_head.fc_cls.weight"]
    last = state_dict["roi_head.bbox_head.fc_cls.2.weight" if mlp else "roi_head.bbox_head.fc_cls.weight"]
    return AVADetectorConfig(backbone_type=kind, backbone=backbone, num_classes=last.shape[0],
                             context=head_w.shape[1] == 2 * channels, mlp_head=mlp)


def load_mmaction2_detector(path: str | os.PathLike, strict: bool = True, **overrides):
    """Build an :class:`AVADetector` matching an mmaction2 AVA checkpoint and load it -> (model, report).

    ``overrides``: detector-config fields the weights cannot tell (``temporal_pool="max"``, ``focal_gamma``...).
    """
    from dataclasses import replace

    from partwise.models.ava_detector import AVADetector

    state = state_dict_of(read_checkpoint(path))
    try:
        cfg = mmaction2_detector_config(state)
    except (ValueError, KeyError) as exc:
        raise InputError(path, None, str(exc)) from None
    model = AVADetector(replace(cfg, **overrides))
    report = load_state_dict(model, state, "mmaction2", strict=strict, path=path)
    return model, report


# ---------------------------------------------------------------------------------------------------------------
# partwise's own format


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
