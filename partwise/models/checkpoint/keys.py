"""Foreign checkpoint keys -> partwise module keys: one rule table per original (:data:`KEY_RULES`), the
detection of a file's original from its structure (:func:`detect_source`) and the renaming (:func:`map_keys`).

Originals: mmaction2 (AVA detectors, recognizers), OpenAI CLIP, HAKE-Action-Torch (Activity2Vec, TIN-Torch,
CLIP-Activity2Vec) and partwise itself. Rules are ordered ``(regex, replacement)`` pairs, first match wins; a key
no rule matches is reported as unexpected by the loader (:mod:`partwise.models.checkpoint.load`).
"""
from __future__ import annotations

import re

import torch
from torch import Tensor

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
