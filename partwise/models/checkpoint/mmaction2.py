"""mmaction2 AVA detector checkpoints -> partwise :class:`~partwise.models.ava_detector.AVADetector`.

The weights tell the architecture (SlowOnly/SlowFast, depth, widths, non-local blocks, context, MLP head). What
they cannot tell (the extractor's temporal pool, the clip sampling, the test short side, dropout, the focal loss,
SlowFast's exact rates) comes, later sources winning, from: partwise's defaults, the recipe in the file name, the
model table's entry (``fallback``), the config text mmengine saves in ``meta['cfg']`` (mmcv: ``meta['config']``),
and explicit overrides (flags). :class:`MMAction2Options` records where each option came from.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from torch import Tensor

from partwise.errors import InputError
from partwise.models.checkpoint.load import load_state_dict, read_checkpoint, state_dict_of
from partwise.models.checkpoint.mmaction2_config import _known, _sub, _type_name, parse_config_text

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
