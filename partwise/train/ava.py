"""AVA-style keyframe tasks of ``partwise train``: ``ava_detector`` (the mmaction2 AVA actor-action detector) and
``st_activity2vec`` (HAKE-AVA's ST-Activity2Vec), with their model-config helpers. Both run on
:class:`~partwise.train.base.KeyframeTask` (clips around annotated keyframes, AVA frame mAP at the end)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from partwise.errors import ConfigError
from partwise.train.base import EvalConfig, KeyframeTask, TrainModel, _slices, build_model_config
from partwise.train.data import ClipDataConfig, rois_from_boxes
from partwise.train.engine import OptimConfig, RunConfig, ScheduleConfig


@dataclass
class AvaDetectorTask:
    """mmaction2 AVA-Kinetics SlowOnly R50 recipe (``ava_mmaction2.md`` §3.2-3.4): SGD lr 0.1 (batch 64), momentum
    0.9, wd 1e-5, clip 40, linear warm-up from 0.1 over 2 of 10 epochs then cosine; rescale 256-320, crop 256,
    flip; 8x8 clips; 32 RoIs per clip, IoU 0.9 assignment. The tricks are ``model`` switches: ``context``,
    ``temporal_pool: max``, ``mlp_head``, ``focal_gamma``."""

    data: ClipDataConfig
    task: str = "ava_detector"
    model: dict = field(default_factory=dict)  # AVADetectorConfig fields
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=64, grad_clip=40.0))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=0.1, weight_decay=1e-5))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(name="cosine", warmup_steps=0))
    eval: EvalConfig = field(default_factory=EvalConfig)
    init: str = ""
    norm_eval: bool = False


@dataclass
class STActivity2VecTask:
    """ST-Activity2Vec (``hake.md`` §5): stage 1 trains the PaSta heads (backbone and action layers frozen), SGD lr
    0.004; stage 2 trains the action layers from the stage-1 weights (``init``), lr 0.004 steps x0.1, wd 1e-7.
    ``stage: 0`` trains everything (used for the synthetic demo, which has no pretrained backbone). GT boxes for
    training; evaluation on proposals with score >= 0.8 (the predicted val boxes)."""

    data: ClipDataConfig
    task: str = "st_activity2vec"
    model: dict = field(default_factory=dict)  # STActivity2VecConfig fields
    stage: int = 1
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=32))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=0.004, weight_decay=1e-4))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(name="constant"))
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(proposal_thr=0.8))
    init: str = ""
    norm_eval: bool = False


def _ava_model_config(cfg: AvaDetectorTask):
    from partwise.models.ava_detector import AVADetectorConfig
    from partwise.models.resnet3d import ResNet3dConfig, SlowFastConfig

    kind = cfg.model.get("backbone_type", "slowonly")
    if kind not in ("slowonly", "slowfast"):
        raise ConfigError(f"model.backbone_type: expected slowonly or slowfast, got {kind!r}")
    backbone = ResNet3dConfig if kind == "slowonly" else SlowFastConfig
    return build_model_config(AVADetectorConfig, cfg.model, "model", types={"backbone": backbone})


def _st_model_config(cfg: STActivity2VecTask):
    from partwise.models.st_activity2vec import STActivity2VecConfig

    return build_model_config(STActivity2VecConfig, cfg.model, "model")


class AvaDetectorRunner(KeyframeTask):
    name = "ava_detector"
    config_cls = AvaDetectorTask

    def model_config(self):
        return _ava_model_config(self.cfg)

    def build_net(self) -> nn.Module:
        from partwise.models.ava_detector import AVADetector

        return AVADetector(self.model_config())

    def loss_fn(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        """Per clip: GT + proposals -> assigned RoIs (the clip's own generator) -> focal BCE over positive RoIs;
        the loss is the mean over clips."""
        from partwise.models.ava_detector import action_loss, assign_targets

        mcfg = self.net_config
        boxes, labels = [], []
        for gt, props, actions, seed in zip(batch["gt_boxes"], batch["proposals"], batch["actions"], batch["seed"]):
            g = torch.Generator().manual_seed(int(seed))
            b, l = assign_targets(props, gt, actions, mcfg.pos_iou_thr, mcfg.rois_per_clip, g)
            boxes.append(b)
            labels.append(l)
        logits = model(batch["clip"], rois_from_boxes(boxes).to(batch["clip"].device))
        per_clip = [action_loss(logits[s], labels[i].to(logits.device), mcfg.focal_alpha, mcfg.focal_gamma)
                    for i, s in enumerate(_slices([len(b) for b in boxes]))]
        return torch.stack(per_clip).mean(), {"rois": float(sum(len(b) for b in boxes)) / len(boxes)}

    def predict(self, model, batch, rois):
        return {"actions": torch.sigmoid(model(batch["clip"], rois))[:, 1:].float().cpu().numpy()}


class STActivity2VecRunner(KeyframeTask):
    name = "st_activity2vec"
    config_cls = STActivity2VecTask

    def validate(self) -> None:
        super().validate()
        if self.cfg.stage not in (0, 1, 2):
            raise ConfigError(f"stage: expected 0, 1 or 2, got {self.cfg.stage}")

    def model_config(self):
        return _st_model_config(self.cfg)

    def build_net(self) -> nn.Module:
        from partwise.models.st_activity2vec import STActivity2Vec

        return STActivity2Vec(self.model_config())

    def build_model(self) -> TrainModel:
        model = super().build_model()
        model.net.set_stage(self.cfg.stage)
        return model

    def wrap(self, net):
        # frozen parts keep their BatchNorm statistics (the original trains heads on a frozen backbone)
        frozen = {1: ("backbone",), 2: ("backbone", "pasta_heads")}.get(self.cfg.stage, ())
        return TrainModel(net, self.cfg.norm_eval, frozen)

    def train_proposal_thr(self) -> float:
        return 2.0  # GT boxes only for training

    def loss_fn(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        from partwise.models.st_activity2vec import st_a2v_loss

        boxes = batch["gt_boxes"]
        keep = [i for i, b in enumerate(boxes) if len(b)]
        if model.training and sum(len(b) for b in boxes) < 2:
            # the PaSta heads' BatchNorm needs two RoIs; a batch without them is skipped (zero loss). Under DDP this
            # would desynchronise the ranks: keep run.batch_size large enough that it does not happen.
            return sum(p.sum() * 0 for p in model.parameters() if p.requires_grad), {"skipped": 1.0}
        out = model(batch["clip"], rois_from_boxes(boxes).to(batch["clip"].device))
        pasta = torch.cat(batch["pasta"]).to(out["pasta_logits"].device)
        actions = torch.cat([a[:, 1:] for a in batch["actions"]]).to(out["pasta_logits"].device)
        per_clip = []
        for s in _slices([len(b) for b in boxes]):
            if s.stop > s.start:
                part = {k: v[s] for k, v in out.items()}
                per_clip.append(st_a2v_loss(part, pasta[s], actions[s], stage=self.cfg.stage))
        loss = torch.stack(per_clip).sum() / len(boxes) if keep else out["pasta_logits"].sum() * 0
        return loss, {}

    def predict(self, model, batch, rois):
        out = model(batch["clip"], rois)
        return {"actions": out["actions"].float().cpu().numpy(), "pasta": out["pasta"].float().cpu().numpy()}
