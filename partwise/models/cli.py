"""``partwise models list`` and ``partwise models inspect CKPT``."""
from __future__ import annotations

import argparse
import json

import torch

from partwise.clihelp import examples
from partwise.models import MODELS
from partwise.models.checkpoint import (detect_source, load_state_dict, mmaction2_detector_config,
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


def inspect_checkpoint(path: str) -> dict:
    """Summary of a checkpoint: source, keys with shapes, parameter count, and the mapping report when the
    source is known (the model the weights fit is inferred from them, then the keys are mapped onto it)."""
    ckpt = read_checkpoint(path)
    source = detect_source(ckpt)
    state = state_dict_of(ckpt)
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    info = {"path": str(path), "source": source, "num_keys": len(tensors),
            "parameters": parameter_count(tensors),
            "shapes": {k: list(v.shape) for k, v in tensors.items()}}
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
    elif source == "partwise":
        info["family"] = ckpt.get("family")
        info["config"] = ckpt.get("config")
    return info


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
    if args.keys:
        for key, shape in info["shapes"].items():
            print(f"  {key}  {shape}")
    return 0
