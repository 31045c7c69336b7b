"""HAKE-Action-Torch's CLIP-Activity2Vec checkpoints (branch ``CLIP-Activity2Vec``, ``hake.md`` §4) loaded by name
onto :class:`partwise.models.clip.ClipActivity2Vec`.

The original (``models/pasta_net.py``, ``models/backbone.py``): ``PaStaNet(backbone, head)`` with

* ``backbone = CLIP_VIT('ViT-B/16')``: OpenAI CLIP's image tower under ``backbone.image_model.*`` (``conv1``,
  ``class_embedding``, ``positional_embedding``, ``ln_pre``, ``transformer.resblocks.N.{attn,ln_1,mlp,ln_2}``,
  ``ln_post``, ``proj``), output 512;
* ``head = PaStaHead(512)``: eight ``MLP(512, 512, C, 3)`` (Linear-ReLU-Linear-ReLU-Linear) under
  ``head.<name>_fc.layers.{0,1,2}.*`` for ``verb`` 157, ``foot`` 16, ``leg`` 15, ``hip`` 6, ``hand`` 34, ``arm`` 8,
  ``head`` 14 and ``pasta_binary`` 6.

Its evaluation (``PaStaHead.simple_test``, one image at a time) returns the sigmoid of each head; partwise's
``ClipActivity2Vec.forward`` returns the same heads' logits for a batch (``torch.sigmoid`` gives the probabilities).
Input: the image resized to 224x224 (torchvision ``Resize((224, 224))``, bilinear) and normalized with CLIP's mean
and std (:data:`partwise.models.clip.CLIP_MEAN` / ``CLIP_STD``). ``main.py`` saves ``{'model', 'optimizer',
'lr_scheduler', 'epoch', 'args'}`` with ``args`` an ``argparse.Namespace``, which a weights-only load refuses unless
allowed: :func:`read_checkpoint` allows exactly that class. Checked against the original network with seeded random
weights (``tests/fixtures/hake_originals``): every head's logits agree to ~1e-6.
"""
from __future__ import annotations

import argparse
import os

import torch


SOURCE = "hake_clip_activity2vec"
#: the original's heads in its order (``PaStaHead.train_set``), each with its output count.
HEADS = ("verb", "foot", "leg", "hip", "hand", "arm", "head", "pasta_binary")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read a CLIP-Activity2Vec ``ckpt_<epoch>.pth`` weights-only, allowing the ``argparse.Namespace`` of its
    ``args`` entry (no other class); errors name the file (:func:`partwise.models.checkpoint.read_checkpoint`)."""
    from partwise.models.checkpoint import read_checkpoint as read

    with torch.serialization.safe_globals([argparse.Namespace]):
        return read(path)


def clip_activity2vec_config(state_dict: dict):
    """The :class:`~partwise.models.clip.ClipActivity2VecConfig` an original state dict fits: the ViT from the
    ``backbone.image_model.*`` shapes (64-wide attention heads, as CLIP's ViTs), the MLP width from the verb head."""
    from partwise.models.clip import ClipActivity2VecConfig, ClipConfig, config_from_openai_state_dict

    prefix = "backbone.image_model."
    visual = {"visual." + k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    try:
        vision = config_from_openai_state_dict(visual)
        hidden = state_dict["head.verb_fc.layers.0.weight"].shape[0]
    except KeyError as exc:
        raise ValueError(f"not a CLIP-Activity2Vec state dict: {exc.args[0]!r} is missing") from None
    return ClipActivity2VecConfig(ClipConfig(vision.embed_dim, vision.vision, None), hidden=hidden)


def load_clip_activity2vec_checkpoint(checkpoint, strict: bool = True):
    """Build the :class:`~partwise.models.clip.ClipActivity2Vec` of an original CLIP-Activity2Vec checkpoint and load
    it by name -> (model in eval mode, :class:`~partwise.models.checkpoint.LoadReport`).

    ``checkpoint``: a path (:func:`read_checkpoint`) or the loaded dict (``{'model': state_dict, ...}`` or the bare
    state dict). Keys map by the ``hake_clip_activity2vec`` rules of :data:`partwise.models.checkpoint.KEY_RULES`
    (``backbone.image_model.*`` -> ``visual.*``, ``head.<name>_fc.layers.{0,1,2}.*`` -> ``heads.<name>.{0,2,4}.*``);
    strict: any missing, unexpected or mis-shaped key raises (naming the file and the key), and the report lists
    them all when not strict."""
    from partwise.models.checkpoint import load_original
    from partwise.models.clip import ClipActivity2Vec

    return load_original(checkpoint, clip_activity2vec_config, ClipActivity2Vec, SOURCE, strict=strict,
                         reader=read_checkpoint)
