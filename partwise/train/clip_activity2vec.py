"""The ``clip_activity2vec`` task of ``partwise train``: CLIP-Activity2Vec (frozen CLIP image tower, MLP heads) on
image-level PaSta / verb targets (:class:`~partwise.train.base.ImageTask`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from partwise.train.base import EvalConfig, ImageTask, _pasta93, build_model_config
from partwise.train.data import ImageDataConfig, rois_from_boxes
from partwise.train.engine import OptimConfig, RunConfig, ScheduleConfig


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

        size = self.net_config.clip.vision.image_size
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
