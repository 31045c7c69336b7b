"""AVA detector: RoI extractor, BBoxHeadAVA, loss, target assignment, tricks, forward/backward."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from partwise.models import MODELS, create_model
from partwise.models.ava_detector import (AVADetector, AVADetectorConfig, BBoxHeadAVA, action_loss,
                                          assign_targets, extract_roi_features)
from partwise.models.checkpoint import load_mmaction2_detector, parameter_count
from partwise.ops import roi_align

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mmaction2_slowonly_r50_w16"


def test_fixture_head_reproduces_mmaction2():
    model, report = load_mmaction2_detector(FIXTURE / "checkpoint.pth")
    assert report.ok and not report.missing and not report.unexpected
    assert model.cfg.backbone.base_channels == 16 and model.cfg.feature_channels() == 512
    ref = np.load(FIXTURE / "reference_io.npz")
    model.eval()
    with torch.no_grad():
        score = model.head(torch.from_numpy(ref["roi_feat"]))
    torch.testing.assert_close(score, torch.from_numpy(ref["cls_score"]), rtol=1e-5, atol=1e-5)


def test_fixture_full_detector_runs_end_to_end():
    model, _ = load_mmaction2_detector(FIXTURE / "checkpoint.pth")
    ref = np.load(FIXTURE / "reference_io.npz")
    rois = torch.tensor([[0, 0.0, 0.0, 64.0, 64.0], [0, 10.0, 5.0, 40.0, 60.0]])
    scores = model.predict(torch.from_numpy(ref["clip"]), rois)
    # the same as pooling the reference backbone output by hand and applying the head
    feat = torch.from_numpy(ref["backbone_out"]).mean(dim=2)
    roi_feat = roi_align(feat, rois, 8, 1 / 16, 0, True).unsqueeze(2)
    with torch.no_grad():
        want = torch.sigmoid(model.head.eval()(roi_feat))
    torch.testing.assert_close(scores, want, rtol=1e-4, atol=1e-5)


def test_extractor_pools_time_before_roi_align_and_adds_context():
    torch.manual_seed(0)
    feat = torch.randn(2, 4, 3, 6, 5)
    rois = torch.tensor([[1, 0.0, 0.0, 60.0, 80.0], [0, 16.0, 16.0, 48.0, 40.0]])
    out = extract_roi_features(feat, rois, 2, 1 / 16, 0, True, "max", context=False)
    assert out.shape == (2, 4, 1, 2, 2)
    torch.testing.assert_close(out[:, :, 0], roi_align(feat.amax(2), rois, 2, 1 / 16, 0, True))
    ctx = extract_roi_features(feat, rois, 2, 1 / 16, 0, True, "avg", context=True)
    assert ctx.shape == (2, 8, 1, 2, 2)
    frame = feat.mean(2)
    torch.testing.assert_close(ctx[:, :4, 0], roi_align(frame, rois, 2, 1 / 16, 0, True))
    # context for RoI 0 (image 1): the 2x2 average pool of image 1's whole frame, e.g. its top-left 3x3 mean
    torch.testing.assert_close(ctx[0, 4:, 0, 0, 0], frame[1, :, :3, :3].mean(dim=(1, 2)))
    torch.testing.assert_close(ctx[1, 4:, 0], F.adaptive_avg_pool2d(frame[0:1], 2)[0])


def test_extractor_slowfast_pair_resized_and_concatenated():
    torch.manual_seed(1)
    slow, fast = torch.randn(1, 4, 2, 4, 4), torch.randn(1, 2, 8, 4, 4)
    rois = torch.tensor([[0, 0.0, 0.0, 64.0, 64.0]])
    out = extract_roi_features((slow, fast), rois, 2, 1 / 16, 0, True, "avg")
    # slow nearest-upsampled to 8 steps keeps its mean; the concatenation is slow first, then fast
    want = torch.cat([roi_align(slow.mean(2), rois, 2, 1 / 16), roi_align(fast.mean(2), rois, 2, 1 / 16)], 1)
    torch.testing.assert_close(out[:, :, 0], want)
    out_max = extract_roi_features((slow, fast), rois, 2, 1 / 16, 0, True, "max")
    torch.testing.assert_close(out_max[:, :4, 0], roi_align(slow.amax(2), rois, 2, 1 / 16))


class FixedMask(torch.nn.Module):
    """A deterministic stand-in for dropout: multiplies by a given mask (shape checks where it is applied)."""

    def __init__(self, mask):
        super().__init__()
        self.mask = mask

    def forward(self, t):
        return t * self.mask


def test_head_pooling_order_and_mlp():
    torch.manual_seed(2)
    x = torch.randn(3, 6, 2, 4, 4)
    head = BBoxHeadAVA(6, 81).eval()
    pooled = x.mean(2).amax(dim=(2, 3))
    torch.testing.assert_close(head(x), pooled @ head.fc_cls.weight.T + head.fc_cls.bias)
    assert torch.all(head.fc_cls.bias == 0)
    mlp = BBoxHeadAVA(6, 81, mlp_head=True).eval()
    assert list(dict(mlp.named_parameters())) == ["fc_cls.0.weight", "fc_cls.0.bias", "fc_cls.2.weight",
                                                  "fc_cls.2.bias"]
    hidden = torch.relu(pooled @ mlp.fc_cls[0].weight.T + mlp.fc_cls[0].bias)
    torch.testing.assert_close(mlp(x), hidden @ mlp.fc_cls[2].weight.T + mlp.fc_cls[2].bias)
    # dropout acts on the (K, C, T, h, w) RoI features before pooling (mmaction2's default), or after it
    mask5 = (torch.rand_like(x) > 0.5).float()
    head.dropout = FixedMask(mask5)
    torch.testing.assert_close(head(x), (x * mask5).mean(2).amax(dim=(2, 3)) @ head.fc_cls.weight.T)
    late = BBoxHeadAVA(6, 81, dropout_before_pool=False).eval()
    mask2 = (torch.rand(3, 6) > 0.5).float()
    late.dropout = FixedMask(mask2)
    torch.testing.assert_close(late(x), (pooled * mask2) @ late.fc_cls.weight.T)


def test_action_loss_hand_computed():
    logits = torch.tensor([[9.0, 2.0, -1.0, 0.0], [9.0, 1.0, 1.0, 1.0], [9.0, -3.0, 0.5, 2.0]])
    labels = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    # RoI 1 has no positive label and is dropped; column 0 is dropped.
    terms = []
    for row in (0, 2):
        for col in (1, 2, 3):
            z, y = float(logits[row, col]), float(labels[row, col])
            p = 1 / (1 + np.exp(-z))
            terms.append(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
    terms = np.array(terms)
    assert float(action_loss(logits, labels)) == pytest.approx(terms.mean(), rel=1e-6)
    focal = 3.0 * (1 - np.exp(-terms)) ** 1.0 * terms
    assert float(action_loss(logits, labels, 3.0, 1.0)) == pytest.approx(focal.mean(), rel=1e-6)
    no_pos = action_loss(logits.requires_grad_(), torch.zeros_like(labels))
    assert float(no_pos.detach()) == 0.0 and no_pos.requires_grad


def test_assign_targets():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    gt_labels = torch.zeros(2, 81)
    gt_labels[0, [3, 5]] = 1
    gt_labels[1, 7] = 1
    proposals = torch.tensor([
        [0.0, 0.0, 10.0, 9.5],    # IoU 0.95 with gt 0 -> positive
        [0.0, 0.0, 10.0, 8.0],    # IoU 0.8 -> negative
        [20.0, 20.0, 30.0, 30.0],  # duplicate of gt 1 -> positive
        [50.0, 50.0, 60.0, 60.0],  # negative
    ])
    boxes, labels = assign_targets(proposals, gt, gt_labels, generator=torch.Generator().manual_seed(0))
    assert boxes.shape == (6, 4) and labels.shape == (6, 81)
    positives = {tuple(b.tolist()): tuple(torch.nonzero(l).flatten().tolist())
                 for b, l in zip(boxes, labels) if l.any()}
    assert positives == {(0.0, 0.0, 10.0, 10.0): (3, 5), (20.0, 20.0, 30.0, 30.0): (7,),
                         (0.0, 0.0, 10.0, 9.5): (3, 5)}
    assert int((labels.sum(1) == 0).sum()) == 2
    boxes, labels = assign_targets(proposals, gt, gt_labels, num_samples=2, generator=torch.Generator())
    assert boxes.shape == (2, 4) and bool(labels.any(1).all())  # positives are drawn first


@pytest.mark.parametrize("name", ["slowonly_r50_8x8", "slowfast_r50_4x16"])
def test_detector_forward_backward_small(name):
    torch.manual_seed(0)
    model = create_model(name, base_channels=8, context=True, temporal_pool="max", mlp_head=True,
                         focal_gamma=1.0).train()
    frames = torch.randint(0, 256, (2, 3, 8 if name.startswith("slowonly") else 16, 48, 64)).float()
    clips = model.normalize(frames)
    rois = torch.tensor([[0, 4.0, 4.0, 40.0, 44.0], [1, 0.0, 0.0, 64.0, 48.0], [1, 30.0, 10.0, 60.0, 40.0]])
    labels = torch.zeros(3, 81)
    labels[0, 12] = labels[2, 80] = 1
    logits = model(clips, rois)
    assert logits.shape == (3, 81)
    loss = model.loss(logits, labels)
    loss.backward()
    conv1 = model.backbone.conv1 if name.startswith("slowonly") else model.backbone.slow_path.conv1
    assert torch.isfinite(loss) and conv1.conv.weight.grad.abs().sum() > 0
    scores = model.predict(clips, rois)
    assert model.training and scores.min() >= 0 and scores.max() <= 1


def test_trick_switches_change_the_head():
    counts = {}
    for kwargs in ({}, {"context": True}, {"context": True, "mlp_head": True}):
        with torch.device("meta"):
            counts[tuple(kwargs)] = parameter_count(create_model("slowonly_r50_16x4", **kwargs))
    assert counts[("context",)] - counts[()] == 81 * 2048
    assert counts[("context", "mlp_head")] - counts[("context",)] == 4096 * 4096 + 4096
    with pytest.raises(TypeError, match="unknown detector option"):
        create_model("slowonly_r50_8x8", contxt=True)
    with pytest.raises(KeyError, match="known"):
        create_model("resnet9000")
    assert isinstance(MODELS, dict) and all(callable(v) for v in MODELS.values())


def test_config_round_trip():
    with torch.device("meta"):
        model = create_model("slowfast_r101_8x8", non_local=True, context=True)
    cfg = AVADetectorConfig.from_dict(model.cfg.to_dict())
    assert cfg == model.cfg
    with torch.device("meta"):
        again = AVADetector(cfg)
    assert sum(1 for n, _ in again.named_modules() if n.endswith("non_local_block")) == 3
