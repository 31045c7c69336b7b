"""The ``activity2vec`` task of ``partwise train``: HAKE Activity2Vec trained in stages on person crops
(:class:`~partwise.train.base.ImageTask`), with its targets (no_interaction fill, negatives) and frequency loss
weights."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from partwise.errors import ConfigError
from partwise.train.base import EvalConfig, ImageTask, TrainModel, _pasta93, _slices, build_model_config
from partwise.train.data import ImageDataConfig, rois_from_boxes
from partwise.train.engine import OptimConfig, RunConfig, ScheduleConfig


#: index of ``no_interaction`` in the 157-verb list (0-based)
NO_INTERACTION_VERB = 57
A2V_MODULES = ("foot", "leg", "hip", "hand", "arm", "head", "verb")


def a2v_target_fill(pasta93: np.ndarray, verbs: np.ndarray, fill: bool = True) -> tuple:
    """Activity2Vec's targets for ground-truth persons (copies): with ``fill``, ``pasta93`` (G, 93) gets
    ``no_interaction`` for every part without a state (the evaluator's rule) and ``verbs`` (G, 157) verb 57
    ``no_interaction`` for a person without verbs (hake.md §3.4: "positives without verbs get 57"; records
    whose actions are not HAKE verbs, e.g. AVA ids, thus train the verb head on no_interaction only)."""
    pasta93, verbs = np.array(pasta93, np.float32), np.array(verbs, np.float32)
    if fill:
        v = _pasta93()
        for part in Activity2VecRunner.PARTS:
            span = v.part_slice(part)
            pasta93[pasta93[:, span].sum(axis=1) == 0, span.stop - 1] = 1
        verbs[verbs.sum(axis=1) == 0, NO_INTERACTION_VERB] = 1
    return pasta93, verbs


def negative_targets(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 93), (count, 157) targets of non-GT boxes: the last (no_interaction) class of every part, verb 57."""
    pasta = np.zeros((count, 93), np.float32)
    v = _pasta93()
    for part in Activity2VecRunner.PARTS:
        pasta[:, v.part_slice(part).stop - 1] = 1
    verbs = np.zeros((count, 157), np.float32)
    verbs[:, NO_INTERACTION_VERB] = 1
    return pasta, verbs


def frequency_loss_weights(pasta93: np.ndarray, verbs: np.ndarray, k: float = 2.0) -> dict[str, np.ndarray]:
    """Per-class BCE weights from training label frequencies, per Activity2Vec module (foot..head, verb).

    ``w_c = k * log(k * N / n_c)`` with ``N`` the number of training persons and ``n_c`` the persons carrying class
    ``c``; ``w_c = 0`` for classes no training person carries. Rare classes weigh more (logarithmically), and
    ``k = 2`` (``LOSS_WEIGHT_K``) is the setting the released file was made for. The formula behind HAKE's
    ``loss_weights.npy`` is not published; this one is inferred from HAKE-Action-Torch's ``loss_reweight``
    (``activity2vec/ult/misc.py``), which maps the stored weights ``w`` to ``k * log(k * exp(w / 2) / 2)`` for
    another ``k`` (identity at ``k = 2``) and keeps zeros -- i.e. stored weights of the form ``2 * log(2 * g_c)``;
    partwise takes ``g_c = N / n_c`` (inverse frequency)."""
    out = {}
    v = _pasta93()
    for name in A2V_MODULES:
        labels = verbs if name == "verb" else pasta93[:, v.part_slice(name)]
        n = labels.shape[0]
        counts = (labels > 0).sum(axis=0).astype(np.float64)
        with np.errstate(divide="ignore"):
            weights = np.where(counts > 0, k * np.log(k * n / np.maximum(counts, 1)), 0.0)
        out[name] = weights.astype(np.float32)
    return out


def load_loss_weights(path: str | Path, k: float = 2.0) -> dict[str, np.ndarray]:
    """Per-module class weights from a file: HAKE's ``loss_weights.npy`` (a pickled dict ``{foot: (16,), leg: (15,),
    hip: (6,), hand: (34,), arm: (8,), head: (14,), verb: (157,)}``, read with the restricted unpickler of
    :mod:`partwise.data.safe_pickle`, never plain pickle), an ``.npz`` with those keys, or a plain ``.npy`` float
    array of 250 values (the 93 PaSta classes, then the 157 verbs). ``k != 2`` rescales like the original's
    ``loss_reweight``: ``k * log(k * exp(w / 2) / 2)``, zeros kept. Bad files: one-line :class:`InputError`."""
    from partwise.data import safe_pickle
    from partwise.errors import InputError

    path = Path(path)
    sizes = dict(zip(Activity2VecRunner.PARTS, (16, 15, 6, 34, 8, 14)), verb=157)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                values = {name: archive[name] for name in archive.files}
        else:
            try:
                array = np.load(path, allow_pickle=False)
            except ValueError:  # an object array (HAKE's pickled dict): restricted unpickler on the payload
                with open(path, "rb") as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        np.lib.format.read_array_header_1_0(fh)
                    else:
                        np.lib.format.read_array_header_2_0(fh)
                    array = safe_pickle.loads(fh.read(), str(path))
            if isinstance(array, np.ndarray) and array.dtype == object and array.shape == ():
                array = array.item()
            if isinstance(array, dict):
                values = dict(array)
            else:
                flat = np.asarray(array, np.float64).reshape(-1)
                if flat.size != 250:
                    raise InputError(path, None, f"expected 250 weights (93 PaSta + 157 verbs), got {flat.size}")
                bounds = np.cumsum([0, *sizes.values()])
                values = {name: flat[a:b] for name, a, b in zip(sizes, bounds[:-1], bounds[1:])}
    except InputError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(path, None, f"cannot read loss weights: {exc}") from None
    out = {}
    for name, size in sizes.items():
        if name not in values:
            raise InputError(path, name, f"missing (need {', '.join(sizes)})")
        try:
            weights = np.asarray(values[name], np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise InputError(path, name, "not an array of numbers") from None
        if weights.size != size:
            raise InputError(path, name, f"expected {size} weights, got {weights.size}")
        if k != 2:
            rescaled = k * np.log(k * np.exp(weights / 2) / 2)
            weights = np.where(weights == 0, 0.0, rescaled)
        out[name] = weights.astype(np.float32)
    return out


@dataclass
class Activity2VecTask:
    """HAKE Activity2Vec training (``hake.md`` §3.4).

    Stages: ``stage: parts`` trains the part heads named in ``parts`` (the original trains each part alone with its
    own lr: foot 1e-4 cosine, leg 2e-5, hip 2e-5 cosine, hand 1e-4, arm 5e-5, head 5e-5), backbone frozen;
    ``stage: verb`` trains the verb head (lr 2.5e-3 cosine) on the frozen part features; ``stage: all`` trains the
    part heads of ``parts`` and the verb head together (not in the original: for small demos). SGD momentum 0.9,
    one image per step; cosine = warm restarts (T_0 = 2 epochs, T_mult 2).

    Recipe switches (defaults = the original):

    * ``keypoints``: skeleton maps and part boxes from the records' COCO-17 ``keypoints`` where a person has them
      (the §3.2 rule); zero maps and the records' part boxes (else the person box) otherwise.
    * ``human_per_image`` / ``pos_ratio`` (HUMAN_PER_IM 10, POS_RATIO 0.1): every GT person is a positive (resampled
      up to ``int(human_per_image * pos_ratio)`` when there are fewer), plus up to ``human_per_image - positives``
      non-GT boxes as negatives, labelled with the last (no_interaction) class of every part and verb 57.
      ``negatives``: ``auto`` = person detections from ``data.proposals`` when set (as the original's non-GT boxes
      come from a detector), else ``sampled`` = random person-like boxes; ``proposals``; ``sampled``; ``none``.
      Every negative has IoU < ``negative_max_iou`` (0.5) with every GT person. Negatives are training-only (the
      validation loss and evaluation use the GT persons).
    * ``fill_no_interaction``: a GT person's part without a state is labelled that part's no_interaction (the
      evaluator's rule), a GT person without verbs verb 57.
    * ``loss_weights``: ``frequency`` = per-class BCE weights from the training split's label frequencies
      (:func:`frequency_loss_weights`), a path = HAKE's ``loss_weights.npy`` (:func:`load_loss_weights`), ``none``
      = plain BCE; ``loss_weight_k`` = LOSS_WEIGHT_K (2). The loss is the sum over trained modules of each module's
      weighted BCE mean over the image's boxes and classes, averaged over the images of a batch.

    ``train_backbone`` (not in the original, default off): the trunk is trained too (BatchNorm in training mode)
    with the part heads (stages ``parts`` and ``all``), for a trunk trained from scratch (``model.trunk: resnet18``)."""

    data: ImageDataConfig
    task: str = "activity2vec"
    stage: str = "parts"
    parts: list[str] = field(default_factory=lambda: ["foot", "leg", "hip", "hand", "arm", "head"])
    model: dict = field(default_factory=dict)
    keypoints: bool = True
    human_per_image: int = 10
    pos_ratio: float = 0.1
    negatives: str = "auto"  # auto | proposals | sampled | none
    negative_max_iou: float = 0.5
    fill_no_interaction: bool = True
    loss_weights: str = "frequency"  # frequency | none | path to loss_weights.npy
    loss_weight_k: float = 2.0
    train_backbone: bool = False
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=1))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, weight_decay=1e-4))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(name="cosine_restarts", restart_mult=2))
    eval: EvalConfig = field(default_factory=EvalConfig)
    init: str = ""


class Activity2VecRunner(ImageTask):
    name = "activity2vec"
    config_cls = Activity2VecTask
    PARTS = ("foot", "leg", "hip", "hand", "arm", "head")

    def model_config(self):
        from partwise.models.activity2vec import Activity2VecConfig

        return build_model_config(Activity2VecConfig, self.cfg.model, "model")

    def validate(self) -> None:
        super().validate()
        cfg = self.cfg
        if cfg.stage not in ("parts", "verb", "all"):
            raise ConfigError(f"stage: expected parts, verb or all, got {cfg.stage!r}")
        bad = [p for p in cfg.parts if p not in self.PARTS]
        if bad or not cfg.parts:
            raise ConfigError(f"parts: expected some of {', '.join(self.PARTS)}, got {cfg.parts}")
        if cfg.negatives not in ("auto", "proposals", "sampled", "none"):
            raise ConfigError(f"negatives: expected auto, proposals, sampled or none, got {cfg.negatives!r}")
        if cfg.negatives == "proposals" and not cfg.data.proposals:
            raise ConfigError("negatives: proposals needs data.proposals (a person-detection file)")
        if cfg.human_per_image < 1 or not 0 <= cfg.pos_ratio <= 1:
            raise ConfigError(f"human_per_image / pos_ratio: expected >= 1 and in [0, 1], got "
                              f"{cfg.human_per_image} / {cfg.pos_ratio}")
        if not 0 < cfg.negative_max_iou <= 1:
            raise ConfigError(f"negative_max_iou: expected a value in (0, 1], got {cfg.negative_max_iou}")
        if cfg.loss_weight_k <= 0:
            raise ConfigError(f"loss_weight_k: expected a positive number, got {cfg.loss_weight_k}")
        if cfg.train_backbone and cfg.stage == "verb":
            raise ConfigError("train_backbone: the verb stage keeps the part features fixed; use stage parts or all")
        if cfg.loss_weights not in ("frequency", "none") and not Path(cfg.loss_weights).is_file():
            raise ConfigError(f"loss_weights: expected frequency, none or a loss_weights.npy file, got {cfg.loss_weights!r}")

    def trained_modules(self) -> list[str]:
        stage = self.cfg.stage
        return (list(self.cfg.parts) if stage != "verb" else []) + (["verb"] if stage != "parts" else [])

    def negative_source(self) -> str:
        if self.cfg.negatives == "auto":
            return "proposals" if self.cfg.data.proposals else "sampled"
        return self.cfg.negatives

    def build_net(self):
        from partwise.models.activity2vec import Activity2Vec

        net = Activity2Vec(self.model_config())
        net.requires_grad_(False)
        if self.cfg.stage != "verb":
            for p in (self.PARTS.index(name) for name in self.cfg.parts):
                for module in (net.pool2_flat_pose_maps[p], net.fc7_parts[p], net.part_cls_scores[p]):
                    module.requires_grad_(True)
        if self.cfg.stage != "parts":
            net.verb_cls_scores.requires_grad_(True)
        if self.cfg.train_backbone:
            net.backbone.requires_grad_(True)
        return net

    def wrap(self, net):
        frozen = ("backbone",) if self.cfg.stage != "verb" else ("backbone", "pool2_flat_pose_maps", "fc7_parts")
        return TrainModel(net, False, () if self.cfg.train_backbone else frozen)

    def datasets(self):
        from partwise.train.data import ImageRecordsDataset, group_images, load_records

        data = self.cfg.data
        size = self.model_config().skeleton_size
        built = []
        for split, train in ((data.train_split, True), (data.val_split, False)):
            items = group_images(load_records(data, split))
            if data.proposals:
                from partwise.data.ava import read_proposals

                props = read_proposals(Path(data.root) / data.proposals.format(split=split))
                for it in items:
                    key = f"{it.video},{int(round(it.time_s)):04d}" if it.time_s is not None else it.video
                    found = props.get(key)
                    it.proposals = np.zeros((0, 4)) if found is None else np.asarray(found, np.float64)[:, :4]
            built.append(ImageRecordsDataset(data, items, train=train, seed=self.cfg.run.seed if train else 0,
                                             extra=self.extra_fields, keypoint_inputs=self.cfg.keypoints,
                                             skeleton_size=size))
        self._class_weights = self.class_weights(built[0].items)
        return built[0], built[1]

    def class_weights(self, train_items) -> dict[str, torch.Tensor] | None:
        """Per-module class weights (see :class:`Activity2VecTask`), or None for plain BCE."""
        from partwise.train.data import pasta93_targets, verb_targets

        cfg = self.cfg
        if cfg.loss_weights == "none":
            return None
        if cfg.loss_weights == "frequency":
            pasta, verbs = [], []
            for it in train_items:
                p, v = a2v_target_fill(pasta93_targets(it.pasta), verb_targets(it.actions, it.action_vocab),
                                       cfg.fill_no_interaction)
                pasta.append(p)
                verbs.append(v)
            weights = frequency_loss_weights(np.concatenate(pasta), np.concatenate(verbs), cfg.loss_weight_k)
        else:
            weights = load_loss_weights(cfg.loss_weights, cfg.loss_weight_k)
        return {name: torch.from_numpy(w) for name, w in weights.items()}

    def extra_fields(self, item, sample: dict, rng) -> dict:
        """Training samples: the positives (indices into the GT persons, resampled up to ``human_per_image *
        pos_ratio``) and the negative boxes ``neg_boxes`` (K, 4) pixels of the transformed image."""
        from partwise.train.data import proposal_negative_boxes, sample_negative_boxes

        cfg = self.cfg
        out = {"has_verbs": item.action_vocab == "verbs157"}
        if rng is None:
            return out
        gt = sample["boxes"].numpy().astype(np.float64)
        positives = np.arange(len(gt))
        minimum = int(cfg.human_per_image * cfg.pos_ratio)
        if 0 < len(gt) < minimum:
            positives = np.concatenate([positives, rng.choice(len(gt), size=minimum - len(gt))])
        room = max(cfg.human_per_image - len(positives), 0)
        h, w = sample["image"].shape[-2:]
        source = self.negative_source()
        negatives = np.zeros((0, 4))
        if room and source == "sampled":
            negatives = sample_negative_boxes(gt, (w, h), room, rng, cfg.negative_max_iou)
        elif room and source == "proposals" and item.proposals is not None and len(item.proposals):
            props = item.proposals * np.array([w, h, w, h], np.float64)
            if sample["flipped"]:
                props = np.stack([w - props[:, 2], props[:, 1], w - props[:, 0], props[:, 3]], -1)
            negatives = proposal_negative_boxes(props, gt, room, rng, cfg.negative_max_iou)
        out.update(positives=torch.from_numpy(positives.astype(np.int64)),
                   neg_boxes=torch.from_numpy(negatives.astype(np.float32)))
        return out

    def inputs(self, batch, with_negatives: bool = False):
        """(images, human RoIs (N, 5), part RoIs (N, 10, 5), skeletons (N, 1, S, S)) of the batch's persons; with
        ``with_negatives`` (training batches) the resampled positives then each image's negatives (part boxes = the
        box itself, zero skeleton map)."""
        from partwise.models.activity2vec import PIXEL_MEANS_BGR

        device = batch["image"].device
        images = batch["image"].flip(1) - torch.tensor(PIXEL_MEANS_BGR, device=device).view(1, 3, 1, 1)
        size = self.model_config().skeleton_size
        boxes, parts, maps = [], [], []
        for i, gt in enumerate(batch["boxes"]):
            gt_parts = batch["part_boxes"][i]
            gt_maps = batch["skeletons"][i] if "skeletons" in batch else torch.zeros(len(gt), 1, size, size, device=device)
            if with_negatives and "positives" in batch:
                pos = batch["positives"][i]
                neg = batch["neg_boxes"][i]
                boxes.append(torch.cat([gt[pos], neg]))
                parts.append(torch.cat([gt_parts[pos], neg[:, None, :].expand(-1, 10, -1)]))
                maps.append(torch.cat([gt_maps[pos], torch.zeros(len(neg), 1, size, size, device=device)]))
            else:
                boxes.append(gt)
                parts.append(gt_parts)
                maps.append(gt_maps)
        human = rois_from_boxes(boxes).to(device)
        part_rois = torch.cat([torch.cat([torch.full((len(p), 10, 1), float(i), device=device), p], -1)
                               for i, p in enumerate(parts)])
        return images, human, part_rois, torch.cat(maps)

    def targets(self, batch, with_negatives: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per image ``(pasta93 (n, 93), verbs (n, 157))`` aligned with :meth:`inputs`."""
        out = []
        for i, pasta in enumerate(batch["pasta93"]):
            p, v = a2v_target_fill(pasta.cpu().numpy(), batch["verbs"][i].cpu().numpy(), self.cfg.fill_no_interaction)
            if with_negatives and "positives" in batch:
                pos = batch["positives"][i].cpu().numpy()
                neg_p, neg_v = negative_targets(len(batch["neg_boxes"][i]))
                p, v = np.concatenate([p[pos], neg_p]), np.concatenate([v[pos], neg_v])
            device = pasta.device
            out.append((torch.from_numpy(p).to(device), torch.from_numpy(v).to(device)))
        return out

    def predict_instances(self, model, batch):
        out = model(*self.inputs(batch))
        with_verbs = self.cfg.stage != "parts" and any(batch["has_verbs"])
        return (torch.sigmoid(out["pasta_logits"]).float().cpu().numpy(),
                torch.sigmoid(out["verb_logits"]).float().cpu().numpy() if with_verbs else None)

    def loss_fn(self, model, batch):
        import torch.nn.functional as F

        with_negatives = model.training
        out = model(*self.inputs(batch, with_negatives))
        targets = self.targets(batch, with_negatives)
        weights = getattr(self, "_class_weights", None)
        v = _pasta93()
        counts = [len(t[0]) for t in targets]
        per_image = []
        for s, (pasta, verbs) in zip(_slices(counts), targets):
            if s.stop == s.start:
                continue
            total = 0
            for name in self.trained_modules():
                if name == "verb":
                    logits, labels = out["verb_logits"][s], verbs
                else:
                    span = v.part_slice(name)
                    logits, labels = out["pasta_logits"][s, span], pasta[:, span]
                weight = None if weights is None else weights[name].to(logits.device).expand_as(logits)
                total = total + F.binary_cross_entropy_with_logits(logits, labels, weight=weight)
            per_image.append(total)
        if not per_image:
            return out["pasta_logits"].sum() * 0, {}
        return torch.stack(per_image).sum() / len(counts), {}

    def model_extra(self) -> dict:
        """Extra fields saved with ``model.pt``: whether ``partwise run`` must feed skeleton maps."""
        return {"skeletons": bool(self.cfg.keypoints)}
