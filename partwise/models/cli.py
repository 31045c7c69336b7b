"""``partwise models list`` and ``partwise models inspect CKPT``."""
from __future__ import annotations

import argparse
import json
import os
import zipfile

import torch

from partwise.clihelp import examples
from partwise.errors import InputError
from partwise.models import MODELS
from partwise.models.checkpoint import (FAMILIES, detect_source, load_state_dict, mmaction2_detector_config,
                                        parameter_count, read_checkpoint, state_dict_of)


def register(subparsers) -> None:
    parser = subparsers.add_parser("models", help="list model constructors, inspect checkpoints",
                                   **examples("partwise models list", "partwise models inspect demo/model/model.pt"))
    sub = parser.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    p_list = sub.add_parser("list", help="model constructors with their parameter counts; weights by name with "
                                         "domain, licence and whether installed",
                         **examples("partwise models list", "partwise models list --json"))
    p_list.add_argument("--json", action="store_true", help="print JSON")
    p_list.set_defaults(func=run_list)
    p_inspect = sub.add_parser("inspect", help="source, keys, shapes and mapping report of a checkpoint",
                               **examples("partwise models inspect demo/model/model.pt",
                                          "partwise models inspect slowonly_r50.pth --keys --json"))
    p_inspect.add_argument("checkpoint", help="a checkpoint file (partwise model.pt, mmaction2/SlowFast .pth/.pkl, "
                                              "Activity2Vec/TIN weights)")
    p_inspect.add_argument("--keys", action="store_true", help="list every key with its shape")
    p_inspect.add_argument("--json", action="store_true", help="print JSON")
    p_inspect.set_defaults(func=run_inspect)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def model_parameter_counts() -> dict[str, int]:
    """Parameters of each constructor's default model, counted on the meta device (no memory, no init cost)."""
    counts = {}
    for name, build in MODELS.items():
        with torch.device("meta"):
            counts[name] = parameter_count(build())
    return counts


def run_list(args: argparse.Namespace) -> int:
    """Two separate tables, because the two kinds of name are not interchangeable: a constructor name builds an
    untrained model in Python (``partwise.models.create_model``), a weights name is what ``--model NAME`` loads."""
    from partwise.models import weights
    from partwise.models.weights_cli import weights_header, weights_table

    counts = model_parameter_counts()
    known = weights.status()
    if args.json:
        print(json.dumps({"constructors": counts, "weights": known}, indent=1))
        return 0
    print("constructors (build with partwise.models.create_model(NAME); not loadable by name):")
    width = max(map(len, counts))
    for name, count in counts.items():
        doc = (MODELS[name].__doc__ or "").strip().splitlines()[0] if MODELS[name].__doc__ else ""
        print(f"  {name:<{width}}  {count:>12,}  {doc}")
    print()
    print(weights_header())
    for line in weights_table(known):
        print(f"  {line}")
    return 0


def _read_weights(path: str) -> tuple[dict, dict]:
    """(checkpoint, its tensor dict), or a one-line :class:`InputError` naming the file and the key when the file
    is not a weights file: another zip format (a NumPy ``.npz``), keys that are not names, no tensors."""
    if os.path.isdir(path):
        raise InputError(path, None, "a folder, not a checkpoint file")
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (OSError, zipfile.BadZipFile, ValueError):
            names = []
        # torch.save writes <archive>/data.pkl; a NumPy .npz holds bare .npy members
        if names and not any(n.endswith("/data.pkl") for n in names):
            kind = "a NumPy .npz archive" if all(n.endswith(".npy") for n in names) else "a zip archive"
            raise InputError(path, None, f"{kind}, not a torch checkpoint (no data.pkl inside)")
    ckpt = read_checkpoint(path)
    for where, mapping in (("", ckpt), ("state dict", state_dict_of(ckpt))):
        bad = next((k for k in mapping if not isinstance(k, str)), None)
        if bad is not None:
            raise InputError(path, where or None, f"key {bad!r} ({type(bad).__name__}) is not a name: not a "
                                                  "checkpoint (parameter names are strings)")
    state = state_dict_of(ckpt)
    if not any(isinstance(v, torch.Tensor) for v in state.values()):
        kinds = sorted({type(v).__name__ for v in state.values()})
        raise InputError(path, None, "no tensors in it: not a weights file"
                         + (f" (values: {', '.join(kinds[:4])})" if kinds else " (empty)"))
    if ckpt.get("format") == "partwise":
        family = ckpt.get("family")
        if not isinstance(family, str) or family not in FAMILIES:
            raise InputError(path, "family", f"unknown partwise model family {family!r}; known: {', '.join(FAMILIES)}")
        if not isinstance(ckpt.get("config"), dict):
            raise InputError(path, "config", f"expected the model config as a mapping, got "
                                             f"{type(ckpt.get('config')).__name__}")
    return ckpt, state


def inspect_checkpoint(path: str) -> dict:
    """Summary of a checkpoint: source, keys with shapes, parameter count, and the mapping report when the
    source is known (the model the weights fit is inferred from them, then the keys are mapped onto it).
    Entries that are not tensors are listed under ``non_tensors`` (name -> type), never dropped silently."""
    ckpt, state = _read_weights(path)
    source = detect_source(ckpt)
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    info = {"path": str(path), "source": source, "num_keys": len(tensors),
            "parameters": parameter_count(tensors),
            "shapes": {k: list(v.shape) for k, v in tensors.items()}}
    others = {k: type(v).__name__ for k, v in state.items() if not isinstance(v, torch.Tensor)}
    if others:
        info["non_tensors"] = others
    try:
        _describe_model(info, tensors, source, path)
    except (ValueError, KeyError, IndexError, TypeError, RuntimeError) as exc:
        # the architecture is read off the weights' names and shapes: partial or inconsistent weights of a known
        # source (a truncated state dict, a missing layer) end here, as bad input
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, KeyError):
            reason = f"no {reason}"
        raise InputError(path, None, f"looks like {source} weights, but its model cannot be inferred from them: "
                                     f"{reason}") from None
    if source == "partwise":
        info["family"] = ckpt.get("family")
        info["config"] = ckpt.get("config")
    return info


def _describe_model(info: dict, tensors: dict, source: str, path: str) -> None:
    """Adds the inferred model and the mapping report of ``tensors`` (from ``source``) to ``info``."""
    if source == "mmaction2" and any(k.startswith("cls_head.") for k in tensors):
        from partwise.models.video_classifier import VideoClassifier, mmaction2_recognizer_config
        cfg = mmaction2_recognizer_config(tensors)
        with torch.device("meta"):
            model = VideoClassifier(cfg)
        report = load_state_dict(model, tensors, "mmaction2", strict=False, path=path, dry_run=True)
        info["model"] = {"family": "video_classifier", "num_classes": cfg.num_classes}
        info["report"] = report.format()
        info["ok"] = report.ok
    elif source == "mmaction2":
        from partwise.models.ava_detector import AVADetector
        cfg = mmaction2_detector_config(tensors)
        with torch.device("meta"):
            model = AVADetector(cfg)
        report = load_state_dict(model, tensors, "mmaction2", strict=False, path=path, dry_run=True)
        info["model"] = {"family": "ava_detector", "backbone_type": cfg.backbone_type,
                         "depth": cfg.backbone.depth, "base_channels": cfg.backbone.base_channels,
                         "context": cfg.context, "mlp_head": cfg.mlp_head}
        info["report"] = report.format()
        info["ok"] = report.ok
    elif source in ("openai_clip", "hake_activity2vec"):
        if source == "openai_clip":
            from partwise.models.clip import CLIP, config_from_openai_state_dict
            config = config_from_openai_state_dict(tensors)
            with torch.device("meta"):
                model = CLIP(config)
            info["model"] = {"family": "clip", "image_size": config.vision.image_size,
                             "patch_size": config.vision.patch_size, "width": config.vision.width,
                             "layers": config.vision.layers, "text": config.text is not None}
        else:
            from partwise.models.activity2vec import Activity2Vec
            with torch.device("meta"):
                model = Activity2Vec()
            info["model"] = {"family": "activity2vec"}
        report = load_state_dict(model, tensors, source, strict=False, path=path, dry_run=True)
        # HAKE stores the trunk three times: count the model's parameters, not the file's tensors.
        info["parameters"] = parameter_count(model) if report.ok else info["parameters"]
        info["report"] = report.format()
        info["ok"] = report.ok


def run_inspect(args: argparse.Namespace) -> int:
    info = inspect_checkpoint(args.checkpoint)
    if args.json:
        print(json.dumps(info, indent=1, default=str))
        return 0
    print(f"checkpoint: {info['path']}")
    print(f"source: {info['source']}")
    print(f"keys: {info['num_keys']}  parameters: {info['parameters']:,}")
    if "model" in info:
        print("model: " + ", ".join(f"{k}={v}" for k, v in info["model"].items()))
        print(info["report"])
    if "family" in info:
        print(f"family: {info['family']}")
    if info.get("non_tensors"):
        names = list(info["non_tensors"].items())
        print(f"non-tensor entries: {len(names)} (" + ", ".join(f"{k}: {t}" for k, t in names[:5])
              + (", ..." if len(names) > 5 else "") + ")")
    if args.keys:
        for key, shape in info["shapes"].items():
            print(f"  {key}  {shape}")
    return 0
