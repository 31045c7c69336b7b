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

#: HAKE-Action-Torch's ResNet-50 trunk (``image_to_head`` = conv1, bn1, relu, maxpool, layer1-3 inside a Sequential
#: with padding modules at 0, 1, 4..7; ``resnet_layer4``), shared by its Activity2Vec and TIN-Torch networks
_HAKE_TRUNK = [
        (r"^image_to_head\.2\.", "backbone.conv1."),
        (r"^image_to_head\.3\.", "backbone.bn1."),
        (r"^image_to_head\.8\.", "backbone.layer1."),
        (r"^image_to_head\.9\.", "backbone.layer2."),
        (r"^image_to_head\.10\.", "backbone.layer3."),
        (r"^resnet_layer4\.", "backbone.layer4."),
]
#: key renaming per source: ordered (pattern, replacement) rules, applied with ``re.sub`` on the first match.
#: A replacement of ``None`` drops the key silently (non-parameter entries such as OpenAI's ``input_resolution``).
#: Several keys may map to one model key only if their tensors are identical (HAKE registers the ResNet modules
#: three times); a differing duplicate is reported as unexpected.
KEY_RULES: dict[str, list[tuple[str, str | None]]] = {
    "mmaction2": [
        # ActionDataPreprocessor's mean/std buffers (older checkpoints; mmaction2's publish script drops them)
        (r"^data_preprocessor\.", None),
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
        *_HAKE_TRUNK,
        (r"^(fc7_parts|part_cls_scores|verb_cls_scores|pool2_flat_pose_maps)\.", r"\1."),
    ],
    # HAKE-Action-Torch TIN-Torch (lib/networks/TIN_HICO.py TIN_ResNet50) -> partwise.models.tin.TIN built by
    # tin_torch_config (fc_batchnorm: fc8/fc9 are Linear + BatchNorm1d pairs, Sequential indices 0/1 and 4/5).
    "tin_torch": [
        # ``resnet50.layer5``: a deep copy of layer4 the constructor registers and forward never calls (the object
        # stream runs ``resnet_layer5``); in weights converted from TF it is the same tensors as resnet_layer5.
        (r"^resnet50\.layer5\.", None),
        (r"^resnet50\.", "backbone."),
        *_HAKE_TRUNK,
        (r"^resnet_layer5\.", "object_res5."),
        (r"^head_phi\.0\.", "head_phi."),
        (r"^head_g\.0\.", "head_g."),
        (r"^head_bottleneck\.0\.", "bottleneck.0."),
        (r"^attention_pool_layer_H_network\.0\.", "attention_h.embed.0."),
        (r"^attention_pool_layer_O_network\.0\.", "attention_o.embed.0."),
        (r"^sp_to_head\.([03])\.", r"spatial.\1."),
        (r"^pool2_flat_pose_map\.([03])\.", r"pose.\1."),
        (r"^fc8_SH\.([01])\.", r"cls_h.\1."),
        (r"^fc9_SH\.0\.", "cls_h.4."),
        (r"^fc9_SH\.1\.", "cls_h.5."),
        (r"^cls_score_H\.", "cls_h.8."),
        (r"^fc8_SO\.([01])\.", r"cls_o.\1."),
        (r"^fc9_SO\.0\.", "cls_o.4."),
        (r"^fc9_SO\.1\.", "cls_o.5."),
        (r"^cls_score_O\.", "cls_o.8."),
        (r"^Concat_SHsp\.([01])\.", r"cls_sp.\1."),
        (r"^fc7_SHsp\.0\.", "cls_sp.4."),
        (r"^fc7_SHsp\.1\.", "cls_sp.5."),
        (r"^cls_score_sp\.", "cls_sp.8."),
        (r"^fc8_binary_1\.0\.", "binary_h.0."),
        (r"^fc8_binary_2\.0\.", "binary_o.0."),
        (r"^fc9_binary\.0\.", "binary_head.0."),
        (r"^cls_score_binary\.", "binary_head.3."),
    ],
    # HAKE-Action-Torch CLIP-Activity2Vec (models/pasta_net.py PaStaNet: backbone CLIP_VIT, head PaStaHead) ->
    # partwise.models.clip.ClipActivity2Vec. Each head is an MLP(512, 512, C, 3) (``layers.0..2``).
    "hake_clip_activity2vec": [
        (r"^backbone\.image_model\.", "visual."),
        (r"^head\.(verb|foot|leg|hip|hand|arm|head|pasta_binary)_fc\.layers\.0\.", r"heads.\1.0."),
        (r"^head\.(verb|foot|leg|hip|hand|arm|head|pasta_binary)_fc\.layers\.1\.", r"heads.\1.2."),
        (r"^head\.(verb|foot|leg|hip|hand|arm|head|pasta_binary)_fc\.layers\.2\.", r"heads.\1.4."),
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


def _load_failure(exc: Exception) -> str:
    """One line for a failed ``torch.load(weights_only=True)``: the refused global when the unpickler refused one
    (never torch's advice to load with ``weights_only=False``: the file is not trusted), else the first line."""
    import re

    text = str(exc)
    refused = re.search(r"Unsupported global: GLOBAL ([\w.<>]+)", text) or re.search(r"GLOBAL ([\w.<>]+)", text)
    if refused:
        return (f"refused: the checkpoint's pickle calls {refused.group(1)}, which a weights-only checkpoint never "
                "does (not loaded; nothing in it was run)")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    lines = [line for line in lines if "weights_only" not in line and "trust" not in line] or lines
    reason = re.sub(r"\x1b\[[0-9;]*m", "", lines[0]) if lines else type(exc).__name__
    return f"cannot read as a weights-only torch checkpoint: {reason}"


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint file safely (``weights_only=True``); errors name the file."""
    if not os.path.exists(path):
        raise MissingFileError(f"{path}: checkpoint not found")
    if not zipfile.is_zipfile(path):
        raise InputError(path, None, "not a torch checkpoint (torch.save writes a zip archive)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors of many kinds; report them as bad input, one line
        raise InputError(path, None, _load_failure(exc)) from None
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
    """``"partwise"``, ``"mmaction2"``, ``"openai_clip"``, ``"hake_activity2vec"``, ``"tin_torch"``,
    ``"hake_clip_activity2vec"`` or ``"unknown"`` from the file's structure and key names."""
    if checkpoint.get("format") == "partwise":
        return "partwise"
    if isinstance(checkpoint.get("model_state_dict"), dict):
        keys = set(checkpoint["model_state_dict"])
        if "verb_cls_scores.weight" in keys and any(k.startswith("resnet50.") for k in keys):
            return "hake_activity2vec"
    keys = list(state_dict_of(checkpoint))
    if "cls_score_binary.weight" in keys and any(k.startswith("resnet_layer5.") for k in keys):
        return "tin_torch"
    if "backbone.image_model.conv1.weight" in keys and "head.verb_fc.layers.0.weight" in keys:
        return "hake_clip_activity2vec"
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


def load_original(checkpoint, infer_config, build, source: str, *, strict: bool = True, reader=None):
    """An original checkpoint (a path, read by ``reader`` or :func:`read_checkpoint`, or the loaded dict) -> the
    partwise model whose config ``infer_config(state_dict)`` reads off the weights, built by ``build(config)`` and
    loaded by ``source``'s key rules: ``(model in eval mode, LoadReport)``. A config the weights cannot give is a
    one-line :class:`InputError` naming the file."""
    path = None
    if not isinstance(checkpoint, dict):
        path, checkpoint = checkpoint, (reader or read_checkpoint)(checkpoint)
    state = state_dict_of(checkpoint)
    try:
        config = infer_config(state)
    except ValueError as exc:
        raise InputError(path, None, str(exc)) from None
    model = build(config)
    report = load_state_dict(model, state, source, strict=strict, path=path)
    return model.eval(), report


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
#
# The weights tell the architecture (SlowOnly/SlowFast, depth, widths, non-local blocks, context, MLP head). What
# they cannot tell (the extractor's temporal pool, the clip sampling, the test short side, dropout, the focal loss,
# SlowFast's exact rates) comes, later sources winning, from: partwise's defaults, the recipe in the file name, the
# model table's entry (``fallback``), the config text mmengine saves in ``meta['cfg']`` (mmcv: ``meta['config']``),
# and explicit overrides (flags). :class:`MMAction2Options` records where each option came from.


def mmaction2_detector_config(state_dict: dict[str, Tensor]):
    """Infer the :class:`AVADetectorConfig` of an mmaction2 AVA checkpoint from its key names and shapes.

    Recovered: SlowOnly vs SlowFast, depth, base channels, non-local blocks, MLP head, context (head input =
    twice the backbone output). Not recoverable from weights, left at the defaults: the extractor's temporal pool
    (avg), the clip sampling and the loss options; SlowFast rates follow the fusion kernel (5: the 4x16 configs,
    rates 8/8; 7: the 8x8 configs, rates 4/4). :func:`load_mmaction2_detector` fills these in from the
    checkpoint's config text or file name (:func:`mmaction2_options`).
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


class _Opaque:
    """A config value that cannot be known without running the config (a call, an import, an attribute...)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"<not evaluated: {self.text}>"


#: config text longer than this is not parsed (a real mmengine ``pretty_text`` is ~10 kB).
CONFIG_TEXT_LIMIT = 2_000_000
_NUMBER_LIMIT = 1e15
_SEQUENCE_LIMIT = 100_000


def _cfg_value(node, env: dict, depth: int = 0):
    """Evaluate one expression of a Python config WITHOUT executing anything (see :func:`parse_config_text`)."""
    import ast

    if depth > 100:
        return _Opaque("nesting too deep")

    def ev(n):
        return _cfg_value(n, env, depth + 1)

    def describe(n) -> str:
        try:
            return ast.unparse(n)[:80]
        except Exception:  # unparse of an odd tree; the description is only for messages
            return type(n).__name__

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items: list = []
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                value = ev(elt.value)
                if not isinstance(value, (list, tuple)):
                    return _Opaque(describe(node))
                items.extend(value)
            else:
                items.append(ev(elt))
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        out: dict = {}
        for key_node, value_node in zip(node.keys, node.values):
            if key_node is None:  # {**mapping}
                value = ev(value_node)
                if isinstance(value, dict):
                    out.update(value)
                continue
            key = ev(key_node)
            try:
                out[key] = ev(value_node)
            except TypeError:  # an unhashable key (a list, or a tuple holding one)
                continue
        return out
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
            out = {}
            for kw in node.keywords:
                value = ev(kw.value)
                if kw.arg is None:  # dict(**mapping)
                    if isinstance(value, dict):
                        out.update(value)
                else:
                    out[kw.arg] = value
            return out
        return _Opaque(describe(node))
    if isinstance(node, ast.Name):
        return env[node.id] if node.id in env else _Opaque(node.id)
    if isinstance(node, ast.UnaryOp):
        value = ev(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(node.op, ast.USub):
                return -value
            if isinstance(node.op, ast.UAdd):
                return value
        if isinstance(node.op, ast.Not) and isinstance(value, (bool, int, float, str, type(None))):
            return not value
        return _Opaque(describe(node))
    if isinstance(node, ast.BinOp):
        left, right = ev(node.left), ev(node.right)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < _NUMBER_LIMIT
                      for v in (left, right))
        if numbers:
            ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
                   ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b}
            op = ops.get(type(node.op))
            if op is not None:
                try:
                    return op(left, right)
                except ZeroDivisionError:
                    return _Opaque(describe(node))
        if isinstance(node.op, ast.Add) and type(left) is type(right) and isinstance(left, (str, list, tuple)) \
                and len(left) + len(right) <= _SEQUENCE_LIMIT:
            return left + right
        return _Opaque(describe(node))
    if isinstance(node, ast.JoinedStr):  # f-strings of known strings and numbers
        parts = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                parts.append(str(part.value))
                continue
            value = ev(part.value) if isinstance(part, ast.FormattedValue) else None
            if (not isinstance(part, ast.FormattedValue) or part.conversion != -1 or part.format_spec is not None
                    or not isinstance(value, (str, int, float))):
                return _Opaque(describe(node))
            parts.append(str(value))
        text = "".join(parts)
        return text if len(text) <= _SEQUENCE_LIMIT else _Opaque("long f-string")
    return _Opaque(describe(node))


def parse_config_text(text: str) -> tuple[dict, list[str]]:
    """The top-level names of an mmengine / mmcv Python config -> ``(values, notes)``, WITHOUT executing it.

    Evaluated with :mod:`ast`: literals, lists, tuples, dicts, ``dict(...)`` calls (keywords and ``**`` of a
    known dict), names assigned earlier in the text, unary minus and arithmetic on numbers, ``+`` of strings,
    lists or tuples, f-strings of known values. Anything else (other calls, attribute access, imported names)
    stays a placeholder that option readers skip. ``_base_`` inheritance (and the lazy ``with read_base():``
    imports) cannot be resolved offline, as the base files are not in the checkpoint: ``notes`` says so, and
    options only a base sets stay unknown. (mmengine's ``pretty_text``, what its runner saves in ``meta['cfg']``,
    is already merged: it has no ``_base_``.) Raises ValueError for text that is not Python.
    """
    import ast

    if len(text) > CONFIG_TEXT_LIMIT:
        raise ValueError(f"config text of {len(text)} characters (more than {CONFIG_TEXT_LIMIT})")
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ValueError(f"config text is not Python: {type(exc).__name__}: {exc}") from None
    env: dict = {}
    notes: list[str] = []

    def bind_imports(stmt) -> None:
        for alias in stmt.names:
            name = alias.asname or alias.name.split(".")[0]
            if name != "*":
                env[name] = _Opaque(alias.name)

    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            value = _cfg_value(stmt.value, env)
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    env[target.id] = value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None and isinstance(stmt.target, ast.Name):
            env[stmt.target.id] = _cfg_value(stmt.value, env)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            bind_imports(stmt)
        elif isinstance(stmt, ast.With):
            lazy_base = [s for s in stmt.body if isinstance(s, ast.ImportFrom)]
            for s in lazy_base:
                bind_imports(s)
            if lazy_base:
                bases = ", ".join("." * s.level + (s.module or "") for s in lazy_base)
                notes.append(f"inherits {bases} (lazy import), which cannot be resolved offline")
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring
        else:
            notes.append(f"line {stmt.lineno}: statement not evaluated")
    base = env.get("_base_")
    if base is not None:
        names = base if isinstance(base, (list, tuple)) else [base]
        notes.insert(0, f"inherits _base_ = {[b if isinstance(b, str) else repr(b) for b in names]}, "
                        "which cannot be resolved offline")
    return env, notes


def _type_name(value) -> str:
    """``type`` of a config dict without its registry scope (``'mmaction.ResNet3dSlowOnly'`` ->
    ``'ResNet3dSlowOnly'``); for an imported class (lazy configs) the imported name."""
    text = value if isinstance(value, str) else value.text if isinstance(value, _Opaque) else ""
    return text.rsplit(".", 1)[-1]


def _known(value) -> bool:
    """Whether a config value was evaluated (no placeholder anywhere inside)."""
    if isinstance(value, _Opaque):
        return False
    if isinstance(value, (list, tuple)):
        return all(_known(v) for v in value)
    if isinstance(value, dict):
        return all(_known(v) for v in value.values())
    return True


def _sub(mapping, *keys) -> dict:
    """``mapping[k1][k2]...`` when every level is a dict, else ``{}``."""
    for key in keys:
        mapping = mapping.get(key) if isinstance(mapping, dict) else None
    return mapping if isinstance(mapping, dict) else {}


def _test_pipeline(env: dict) -> list | None:
    """The test-time pipeline of a config: mmengine's ``test_dataloader`` / ``val_dataloader`` dataset (also
    wrapped datasets), the ``test_pipeline`` / ``val_pipeline`` variables, or mmcv's ``data.test`` /
    ``data.val``; the first that holds a ``SampleAVAFrames`` step."""

    def pipeline_in(node, depth=0):
        if not isinstance(node, dict) or depth > 5:
            return None
        if isinstance(node.get("pipeline"), (list, tuple)):
            return list(node["pipeline"])
        for key in ("dataset", "datasets"):
            inner = node.get(key)
            for candidate in (inner if isinstance(inner, (list, tuple)) else [inner]):
                found = pipeline_in(candidate, depth + 1)
                if found is not None:
                    return found
        return None

    candidates = [pipeline_in(_sub(env, "test_dataloader")), env.get("test_pipeline"),
                  pipeline_in(_sub(env, "val_dataloader")), env.get("val_pipeline"),
                  pipeline_in(_sub(env, "data", "test")), pipeline_in(_sub(env, "data", "val"))]
    for steps in candidates:
        if isinstance(steps, (list, tuple)) and any(
                isinstance(s, dict) and _type_name(s.get("type")) == "SampleAVAFrames" for s in steps):
            return list(steps)
    return None


#: mmaction2 constructor defaults of ``SingleRoIExtractor3D`` and ``BBoxHeadAVA`` (a merged config leaves out
#: what the constructor's default decides).
_MM_EXTRACTOR_DEFAULTS = {"roi_layer_type": "RoIAlign", "featmap_stride": 16, "output_size": 16,
                          "sampling_ratio": 0, "pool_mode": "avg", "aligned": True, "with_temporal_pool": True,
                          "temporal_pool_mode": "avg", "with_global": False}
_MM_HEAD_DEFAULTS = {"temporal_pool_type": "avg", "spatial_pool_type": "max", "focal_gamma": 0.0,
                     "focal_alpha": 1.0, "dropout_ratio": 0.0, "dropout_before_pool": True, "multilabel": True,
                     "mlp_head": False}
#: config key -> AVADetectorConfig field
_MM_EXTRACTOR_FIELDS = {"temporal_pool_mode": "temporal_pool", "with_global": "context",
                        "output_size": "roi_output_size", "featmap_stride": "featmap_stride",
                        "sampling_ratio": "sampling_ratio", "aligned": "aligned"}
_MM_HEAD_FIELDS = {"mlp_head": "mlp_head", "dropout_ratio": "dropout", "focal_gamma": "focal_gamma",
                   "focal_alpha": "focal_alpha", "temporal_pool_type": "head_temporal_pool",
                   "spatial_pool_type": "head_spatial_pool", "dropout_before_pool": "dropout_before_pool",
                   "num_classes": "num_classes"}
#: mmaction2 ``ResNet3dSlowFast`` defaults (resample_rate, speed_ratio, channel_ratio; slow pathway fusion_kernel)
_MM_SLOWFAST_DEFAULTS = {"resample_rate": 8, "speed_ratio": 8, "channel_ratio": 8, "fusion_kernel": 5}


def mmaction2_options_from_config(env: dict, complete: bool = True) -> tuple[dict, list[str]]:
    """Options of an mmaction2 AVA detector config (the names :func:`parse_config_text` returns, or a config
    dict) -> ``({option: value}, notes)``.

    Options: the :class:`AVADetectorConfig` fields ``temporal_pool``, ``context``, ``roi_output_size``,
    ``featmap_stride``, ``sampling_ratio``, ``aligned`` (``roi_head.bbox_roi_extractor``), ``mlp_head``,
    ``dropout``, ``focal_gamma``, ``focal_alpha``, ``head_temporal_pool``, ``head_spatial_pool``,
    ``dropout_before_pool``, ``num_classes`` (``roi_head.bbox_head``), ``clip_len``, ``frame_interval`` (the test
    pipeline's ``SampleAVAFrames``); ``short_side`` (its ``Resize`` scale), ``mean`` / ``std``
    (``model.data_preprocessor``, mmcv: ``img_norm_cfg``); ``backbone_type`` and ``backbone.<field>`` (depth,
    SlowFast ``resample_rate`` / ``speed_ratio`` / ``channel_ratio`` / ``fusion_kernel``, SlowOnly strides).
    ``complete``: the config is merged (no unresolved base), so a key a present section leaves out takes
    mmaction2's constructor default. Raises ValueError for settings partwise does not implement (RoIPool, max
    RoIAlign, no temporal pooling, single-label heads, shared heads such as ACRN / LFB).
    """
    out: dict = {}
    notes: list[str] = []
    model = _sub(env, "model")
    extractor = _sub(model, "roi_head", "bbox_roi_extractor")
    head = _sub(model, "roi_head", "bbox_head")
    if _sub(model, "roi_head", "shared_head"):
        raise ValueError(f"roi_head.shared_head ({_type_name(_sub(model, 'roi_head', 'shared_head').get('type'))})"
                         " is not supported by partwise's AVA detector")

    def take(section: dict, defaults: dict, fields: dict, where: str) -> None:
        if not section:
            return
        values = {**defaults, **section} if complete else dict(section)
        for key, name in fields.items():
            if key in values and _known(values[key]):
                out[name] = values[key]
            elif key in values:
                notes.append(f"{where}.{key} not evaluated")
        return values

    ext = take(extractor, _MM_EXTRACTOR_DEFAULTS, _MM_EXTRACTOR_FIELDS, "bbox_roi_extractor") or {}
    unsupported = [(k, v) for k, v in (("roi_layer_type", "RoIAlign"), ("pool_mode", "avg"),
                                       ("with_temporal_pool", True)) if k in ext and ext[k] != v]
    hd = take(head, _MM_HEAD_DEFAULTS, _MM_HEAD_FIELDS, "bbox_head") or {}
    if "multilabel" in hd and hd["multilabel"] is not True:
        unsupported.append(("multilabel", True))
    if head and _type_name(head.get("type")) not in ("", "BBoxHeadAVA"):
        unsupported.append(("bbox_head.type", "BBoxHeadAVA"))
    if unsupported:
        key, want = unsupported[0]
        got = ext.get(key, hd.get(key, _type_name(head.get("type"))))
        raise ValueError(f"config sets {key}={got!r}; partwise's AVA detector implements only {want!r}")
    if out.get("temporal_pool") not in (None, "avg", "max"):
        raise ValueError(f"config sets temporal_pool_mode={out['temporal_pool']!r} (avg or max)")

    backbone = _sub(model, "backbone")
    kind = _type_name(backbone.get("type"))
    if kind == "ResNet3dSlowFast":
        out["backbone_type"] = "slowfast"
        slow = _sub(backbone, "slow_pathway")
        values = {**_MM_SLOWFAST_DEFAULTS, **backbone, **{k: slow[k] for k in ("fusion_kernel",) if k in slow}} \
            if complete else {**backbone, **{k: slow[k] for k in ("fusion_kernel",) if k in slow}}
        for key in ("resample_rate", "speed_ratio", "channel_ratio", "fusion_kernel"):
            if isinstance(values.get(key), int):
                out[f"backbone.{key}"] = values[key]
        for key in ("depth", "spatial_strides"):
            if key in slow and _known(slow[key]):
                out[f"backbone.{key}"] = tuple(slow[key]) if isinstance(slow[key], list) else slow[key]
    elif kind == "ResNet3dSlowOnly":
        out["backbone_type"] = "slowonly"
        for key in ("depth", "spatial_strides", "temporal_strides", "dilations", "conv1_stride_t",
                    "pool1_stride_t", "inflate"):
            if key in backbone and _known(backbone[key]):
                value = backbone[key]
                out[f"backbone.{key}"] = tuple(value) if isinstance(value, list) else value
    elif kind:
        raise ValueError(f"config backbone {kind!r}: partwise loads ResNet3dSlowOnly and ResNet3dSlowFast")

    steps = _test_pipeline(env)
    if steps is not None:
        for step in steps:
            name = _type_name(step.get("type")) if isinstance(step, dict) else ""
            if name == "SampleAVAFrames":
                if isinstance(step.get("clip_len"), int):
                    out["clip_len"] = step["clip_len"]
                interval = step.get("frame_interval", 2)  # SampleAVAFrames' default
                if isinstance(interval, int):
                    out["frame_interval"] = interval
            elif name == "Resize" and "short_side" not in out:
                scale = step.get("scale")
                if isinstance(scale, (list, tuple)) and len(scale) == 2 and all(isinstance(s, int) for s in scale):
                    if -1 in scale:  # (-1, 256): the short side to 256, aspect kept
                        out["short_side"] = max(scale)
                    else:
                        out["short_side"] = min(scale)
                        notes.append(f"Resize scale {tuple(scale)} read as short side {min(scale)}")
                elif scale is not None:
                    notes.append(f"Resize scale {scale!r} not read")
    norm = _sub(model, "data_preprocessor") or _sub(env, "img_norm_cfg")
    for key in ("mean", "std"):
        value = norm.get(key)
        if isinstance(value, (list, tuple)) and len(value) == 3 and all(
                isinstance(v, (int, float)) for v in value):
            out[key] = tuple(float(v) for v in value)
    return out, notes


_RECIPE = re.compile(r"(?<![0-9a-z])(\d+)x(\d+)x(\d+)(?![0-9])")


def mmaction2_options_from_name(name: str, backbone_type: str) -> dict:
    """Options of an mmaction2 AVA config / checkpoint file name (``slowonly_kinetics400-pretrained-r50_8xb16-
    4x16x1-20e_ava21-rgb_20201217-40061d5f.pth``): its ``TxIx1`` recipe gives the clip (SlowOnly: ``T`` frames
    ``I`` apart; SlowFast: ``T*I/2`` frames 2 apart, rates ``T*I/2 / T``, as every mmaction2 SlowFast AVA config),
    ``temporal-max`` the max temporal pool, ``focal`` (``alpha3-gamma1``) the focal loss, ``tricks`` both
    (mmaction2's "all tricks" recipe). ``context`` / MLP head are read from the weights, not the name. ``{}`` for a
    name without a recipe."""
    base = os.path.basename(str(name)).lower()
    out: dict = {}
    match = _RECIPE.search(base)
    if match:
        frames, interval = int(match.group(1)), int(match.group(2))
        if frames > 0 and interval > 0:
            if backbone_type == "slowfast":
                span = frames * interval
                out.update(clip_len=span // 2, frame_interval=2)
                if (span // 2) % frames == 0:
                    rate = span // 2 // frames
                    out.update({"backbone.resample_rate": rate, "backbone.speed_ratio": rate})
            else:
                out.update(clip_len=frames, frame_interval=interval)
    if "temporal-max" in base or "tricks" in base:
        out["temporal_pool"] = "max"
    if "focal" in base or "tricks" in base:
        gamma = re.search(r"gamma(\d+(?:\.\d+)?)", base)
        alpha = re.search(r"alpha(\d+(?:\.\d+)?)", base)
        out["focal_gamma"] = float(gamma.group(1)) if gamma else 1.0
        out["focal_alpha"] = float(alpha.group(1)) if alpha else 1.0
    return out


#: the options the one-line summary names, in this order
MMACTION2_SUMMARY_OPTIONS = ("temporal_pool", "context", "mlp_head", "clip_len", "frame_interval", "short_side",
                             "dropout", "focal_gamma", "focal_alpha", "backbone.resample_rate",
                             "backbone.speed_ratio")
#: sources, later ones win; the label each has in the summary line
_SOURCE_LABELS = {"default": "assumed (defaults)", "weights": "from the weights",
                  "file name": "assumed from the file name's recipe", "model table": "assumed from the model table",
                  "meta cfg": "from meta['cfg']", "flag": "given"}
ASSUMED_SOURCES = ("default", "file name", "model table")


@dataclass
class MMAction2Options:
    """The options an mmaction2 AVA checkpoint was loaded with and where each came from.

    ``values``: option -> value (:class:`AVADetectorConfig` fields, ``backbone.<field>``, ``short_side``,
    ``mean``, ``std``); ``sources``: option -> ``default`` / ``weights`` / ``file name`` / ``model table`` /
    ``meta cfg`` / ``flag``; ``config``: what the checkpoint's config text gave (``"meta['cfg']"``, or ``None``
    when it has none); ``notes``: what could not be read. :attr:`line` is the one-line summary."""

    path: str
    values: dict
    sources: dict
    config: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def assumed(self) -> list[str]:
        """Summary options that neither the weights, the config text nor a flag decided."""
        return [k for k in MMACTION2_SUMMARY_OPTIONS if self.sources.get(k) in ASSUMED_SOURCES]

    @property
    def clip(self) -> dict:
        """How ``partwise run`` samples and scales clips for this model."""
        clip = {k: self.values[k] for k in ("clip_len", "frame_interval", "short_side") if k in self.values}
        clip.update({k: list(self.values[k]) for k in ("mean", "std") if k in self.values})
        return clip

    @property
    def line(self) -> str:
        """One line: which options were read or assumed, and from where."""
        groups: dict[str, list[str]] = {}
        for key in MMACTION2_SUMMARY_OPTIONS:
            if key in self.values:
                groups.setdefault(self.sources.get(key, "default"), []).append(f"{key}={self.values[key]}")
        if self.config is None:
            unread = [n for n in self.notes if n.startswith("meta[") and " not read: " in n]
            prefix = f"{unread[0]}; " if unread else "no meta['cfg'] in the checkpoint; "
        else:
            base = [n for n in self.notes if "cannot be resolved offline" in n]
            prefix = f"{self.config} {base[0]}; " if base else ""
        labels = dict(_SOURCE_LABELS, **({"meta cfg": f"from {self.config}"} if self.config else {}))
        order = ("meta cfg", "flag", "weights", "model table", "file name", "default")
        parts = [f"{labels[src]}: {', '.join(groups[src])}" for src in order if src in groups]
        return f"{os.path.basename(self.path)}: {prefix}mmaction2 options {'; '.join(parts)}"


def _config_of_checkpoint(checkpoint: dict) -> tuple[dict | None, str | None, list[str]]:
    """The config in a checkpoint's ``meta`` -> ``(names, where, notes)``: mmengine's ``meta['cfg']`` (text), or
    mmcv's ``meta['config']`` / a dict ``meta['cfg']``; ``(None, None, notes)`` when there is none or it cannot
    be read (the notes say why)."""
    meta = checkpoint.get("meta")
    if not isinstance(meta, dict):
        return None, None, []
    for key in ("cfg", "config"):
        value = meta.get(key)
        if isinstance(value, dict):
            return value, f"meta[{key!r}]", []
        if isinstance(value, str) and value.strip():
            try:
                env, notes = parse_config_text(value)
            except ValueError as exc:
                return None, None, [f"meta[{key!r}] not read: {exc}"]
            return env, f"meta[{key!r}]", notes
    return None, None, []


def mmaction2_options(checkpoint: dict, path: str | os.PathLike, weights_cfg, overrides: dict | None = None,
                      fallback: dict | None = None) -> MMAction2Options:
    """Resolve the options of an mmaction2 AVA checkpoint (see the section comment): ``weights_cfg`` is
    :func:`mmaction2_detector_config` of its weights, ``fallback`` the model table's clip settings,
    ``overrides`` explicit settings (option names as in :class:`MMAction2Options`; backbone fields as
    ``backbone.<field>`` or given directly for the SlowFast rates). Raises ValueError where the config text and
    the weights disagree on the architecture."""
    values: dict = {}
    sources: dict = {}

    def put(items: dict, source: str) -> None:
        for key, value in items.items():
            values[key] = value
            sources[key] = source

    put({"temporal_pool": "avg", "clip_len": 8, "frame_interval": 8, "short_side": 256, "dropout": 0.5,
         "focal_gamma": 0.0, "focal_alpha": 1.0}, "default")
    put({"context": weights_cfg.context, "mlp_head": weights_cfg.mlp_head, "num_classes": weights_cfg.num_classes,
         "backbone_type": weights_cfg.backbone_type}, "weights")
    slowfast = weights_cfg.backbone_type == "slowfast"
    if slowfast:
        put({"backbone.resample_rate": weights_cfg.backbone.resample_rate,
             "backbone.speed_ratio": weights_cfg.backbone.speed_ratio}, "weights")
    # the recipe in the file name, then the model table: what the config text (if any) does not say
    put(mmaction2_options_from_name(str(path), weights_cfg.backbone_type), "file name")
    put({k: v for k, v in (fallback or {}).items() if k in ("clip_len", "frame_interval", "short_side")},
        "model table")
    notes: list[str] = []
    env, where, cfg_notes = _config_of_checkpoint(checkpoint)
    notes.extend(cfg_notes)
    if env is not None:
        # an unresolvable _base_: keys the text leaves out may be set there, so they keep the sources above
        complete = not any("cannot be resolved offline" in n for n in cfg_notes)
        found, more = mmaction2_options_from_config(env, complete)
        notes.extend(more)
        for key, weight_value in (("context", weights_cfg.context), ("mlp_head", weights_cfg.mlp_head),
                                  ("backbone_type", weights_cfg.backbone_type)):
            if key in found and found[key] != weight_value:
                raise ValueError(f"{where} sets {key}={found[key]!r} but the weights are of a model with "
                                 f"{key}={weight_value!r}")
        depth = found.get("backbone.depth")
        if depth is not None and depth != weights_cfg.backbone.depth:
            raise ValueError(f"{where} sets backbone depth {depth} but the weights are a ResNet-"
                             f"{weights_cfg.backbone.depth}")
        if "num_classes" in found and found["num_classes"] != weights_cfg.num_classes:
            notes.append(f"{where} num_classes={found['num_classes']}, weights {weights_cfg.num_classes}: "
                         "the weights' count is used")
            del found["num_classes"]
        put(found, "meta cfg")
    overrides = dict(overrides or {})
    for key in ("resample_rate", "speed_ratio", "channel_ratio", "fusion_kernel"):
        if key in overrides:
            overrides[f"backbone.{key}"] = overrides.pop(key)
    put(overrides, "flag")
    if not slowfast:
        for key in ("backbone.resample_rate", "backbone.speed_ratio", "backbone.channel_ratio",
                    "backbone.fusion_kernel"):
            values.pop(key, None)
            sources.pop(key, None)
    return MMAction2Options(str(path), values, sources, where, notes)


def load_mmaction2_detector(path: str | os.PathLike, strict: bool = True, fallback: dict | None = None,
                            **overrides):
    """Build an :class:`AVADetector` matching an mmaction2 AVA checkpoint and load it -> (model, report).

    The architecture comes from the weights; the options the weights cannot tell from the checkpoint's config
    text (``meta['cfg']``), else the file name's recipe, else ``fallback`` (the model table's ``clip_len`` /
    ``frame_interval`` / ``short_side``), else defaults (:func:`mmaction2_options`). ``overrides``: detector-config
    fields given explicitly (``temporal_pool="max"``, ``clip_len=16``, ``focal_gamma``...), which win. The model's
    ``mmaction2_options`` (:class:`MMAction2Options`) says what was used and from where (``.line``).
    """
    from dataclasses import fields, replace

    from partwise.models.ava_detector import AVADetector, AVADetectorConfig

    checkpoint = read_checkpoint(path)
    state = state_dict_of(checkpoint)
    try:
        cfg = mmaction2_detector_config(state)
        options = mmaction2_options(checkpoint, path, cfg, overrides, fallback)
    except (ValueError, KeyError) as exc:
        raise InputError(path, None, str(exc)) from None
    detector_fields = {f.name for f in fields(AVADetectorConfig)} - {"backbone", "backbone_type"}
    backbone_fields = {f.name for f in fields(type(cfg.backbone))}
    unknown = [k for k in options.values if k not in detector_fields | {"backbone_type", "short_side", "mean", "std"}
               and not (k.startswith("backbone.") and k[len("backbone."):] in backbone_fields)]
    if unknown:
        raise TypeError(f"load_mmaction2_detector: unknown option {unknown[0]!r}")
    backbone = replace(cfg.backbone, **{k[len("backbone."):]: v for k, v in options.values.items()
                                        if k.startswith("backbone.")})
    model = AVADetector(replace(cfg, backbone=backbone,
                                **{k: v for k, v in options.values.items() if k in detector_fields}))
    model.mmaction2_options = options
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
