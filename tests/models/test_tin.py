import math

import numpy as np
import pytest
import torch

from partwise.models.tin import (
    TIN,
    TINConfig,
    crop_and_resize,
    final_hoi_scores,
    hoi_class_weights,
    interaction_pattern,
    lis,
    nis_keep,
    pattern_boxes,
    tin_loss,
)


def test_pattern_boxes_square_union():
    # union 20x20: scale 64/20; the object reaches the far x edge; no centring shift
    h, o = pattern_boxes([0, 0, 9, 19], [10, 5, 19, 14])
    assert h.tolist() == [0, 0, 31, 63] and o.tolist() == [32, 16, 63, 47]


def test_pattern_boxes_tall_union_is_centred():
    # union 30 wide x 40 tall: scale 1.6; human x2 = (64*30/40 - 1) - 64*(30-1-9)/40 = 15, object x 32..47,
    # then the short axis is shifted by 64/2 - (47+1)/2 = 8
    h, o = pattern_boxes([0, 0, 9, 39], [20, 10, 29, 19])
    assert h.tolist() == [8, 0, 23, 63] and o.tolist() == [40, 16, 55, 31]


def test_pattern_channels_and_missing_pose():
    p = interaction_pattern([0, 0, 9, 39], [20, 10, 29, 19])
    assert p.shape == (3, 64, 64) and p.dtype == np.float32
    assert p[0].sum() == 16 * 64 and p[1].sum() == 16 * 16
    assert p[0, 0, 8] == 1 and p[0, 63, 23] == 1 and p[0, 0, 7] == 0 and p[0, 0, 24] == 0
    assert np.allclose(p[2][p[0] == 1], 0.05) and p[2][p[0] == 0].max() == 0


def test_pose_channel_places_keypoints_relative_to_the_human_box():
    k = np.zeros((17, 3))
    k[:, :2] = (5, 5)
    k[13, :2] = (5, 30)   # left knee
    k[15, :2] = (9, 39)   # left ankle -> x round(0.9*16 + 8) = 22, y round(0.975*64) = 62
    p = interaction_pattern([0, 0, 9, 39], [20, 10, 29, 19], k)
    assert p[2, 62, 22] == pytest.approx(0.15 + 0.05 * 15)  # limb (13, 15) is number 15
    # keypoint scores are ignored: zero scores draw the same map
    k2 = k.copy()
    k2[:, 2] = 0
    assert np.array_equal(interaction_pattern([0, 0, 9, 39], [20, 10, 29, 19], k2), p)


def test_nis_rule_and_object_overrides():
    keep = nis_keep([0.05, 0.05, 0.2, 0.05, 0.07], [0.95, 0.9, 0.95, 0.95, 0.95], [5, 5, 5, 63, 1])
    # dropped: non-int > 0.9 and int < 0.1; 0.9 is not > 0.9; 0.2 is not < 0.1;
    # tv (63): tau_no 0.95 -> 0.95 not > 0.95 kept; person (1): tau_int 0.05 -> 0.07 kept
    assert keep.tolist() == [False, True, True, True, True]


def test_lis_constants():
    assert lis(np.array([1.0]))[0] == pytest.approx(6 / (1 + 2.718281828459 ** (10 - 1.4)))
    assert float(lis(torch.tensor([0.5], dtype=torch.float64))[0]) == pytest.approx(6 / (1 + 2.718281828459 ** 9.3))
    s = final_hoi_scores(np.full((1, 600), 1.5), np.array([1.0]), np.array([0.5]))
    assert s[0, 0] == pytest.approx(1.5 * lis(1.0) * lis(0.5))


def test_class_weights_formula():
    w = hoi_class_weights([1, 2, 997])
    assert w[0] == pytest.approx(math.log(1000)) and w[0] - w[1] == pytest.approx(math.log(2))


def test_crop_and_resize_samples_box_edges_inclusive():
    ramp = torch.arange(10, dtype=torch.float64).expand(1, 1, 10, 10).clone()
    crop = crop_and_resize(ramp, torch.tensor([[0, 16.0, 32.0, 112.0, 128.0]], dtype=torch.float64), 7)
    assert torch.allclose(crop[0, 0, 0], torch.arange(1, 8, dtype=torch.float64))


def _count(module):
    return sum(p.numel() for p in module.parameters())


def expected_tin_parameters():
    """Counted from tin_hoi.md §1.2-1.5: ResNet-50 trunk with res5 (human) and a res5 copy (object), iCAN attention,
    spatial and pose streams, three 1024-1024-600 classifiers, the interactiveness discriminator."""
    fc = lambda i, o: i * o + o  # noqa: E731
    resnet50_no_fc, res5 = 23_508_032, 14_964_736
    attention = 2 * fc(1024, 512) + fc(512, 1024) + 2 * fc(2048, 512)
    streams = (2 * 64 * 25 + 64 + 64 * 32 * 25 + 32) + (32 * 25 + 32 + 32 * 16 * 25 + 16)
    classifier = lambda i: fc(i, 1024) + fc(1024, 1024) + fc(1024, 600)  # noqa: E731
    binary = fc(2048 + 1024 + 5408 + 2704, 1024) + fc(3072, 1024) + fc(2048, 1024) + fc(1024, 2)
    return resnet50_no_fc + res5 + attention + streams + 2 * classifier(3072) + classifier(7456) + binary


def test_parameter_count_from_the_architecture():
    assert _count(TIN()) == expected_tin_parameters()


def test_forward_backward_and_loss():
    torch.manual_seed(0)
    model = TIN().train()
    image = torch.randn(1, 3, 96, 128)
    human = torch.tensor([[0, 4.0, 4.0, 60.0, 90.0], [0, 50.0, 10.0, 120.0, 80.0]])
    obj = torch.tensor([[0, 60.0, 30.0, 110.0, 70.0], [0, 0.0, 0.0, 40.0, 40.0]])
    patterns = torch.from_numpy(np.stack([interaction_pattern(h[1:].numpy(), o[1:].numpy()) for h, o in zip(human, obj)]))
    out = model(image, human, obj, patterns)
    assert out["hoi_scores"].shape == (2, 600) and out["binary"].shape == (2, 2)
    assert float(out["hoi_scores"].detach().min()) >= 0 and float(out["hoi_scores"].detach().max()) <= 2
    targets = torch.zeros(2, 600)
    targets[0, 10] = 1
    loss = tin_loss(out, targets, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), num_positive=1)
    loss.backward()
    assert model.binary_head[-1].weight.grad is not None and model.cls_sp[-1].weight.grad is not None


def test_part_level_variant():
    torch.manual_seed(0)
    model = TIN(TINConfig(part_level=True)).eval()
    image = torch.randn(1, 3, 64, 64)
    human = torch.tensor([[0, 4.0, 4.0, 60.0, 60.0]])
    obj = torch.tensor([[0, 30.0, 30.0, 60.0, 60.0]])
    patterns = torch.from_numpy(interaction_pattern([4, 4, 60, 60], [30, 30, 60, 60])[None])
    with torch.no_grad():
        out = model(image, human, obj, patterns)
    assert out["part_binary_logits"].shape == (1, 10, 2) and out["part_weights"].shape == (1, 10)
    assert torch.allclose(out["part_max_binary"], torch.sigmoid(out["part_binary_logits"].max(dim=1).values))
    loss = tin_loss(out, torch.zeros(1, 600), torch.tensor([[1.0, 0.0]]), num_positive=1)
    assert torch.isfinite(loss)


def test_partwise_checkpoint_round_trip(tmp_path):
    from partwise.models.checkpoint import load_model, save_model

    torch.manual_seed(0)
    model = TIN(TINConfig(part_level=True)).eval()
    save_model(model, tmp_path / "tin.pt")
    again = load_model(tmp_path / "tin.pt")
    assert again.config == model.config
    image = torch.randn(1, 3, 64, 64)
    human, obj = torch.tensor([[0, 4.0, 4.0, 60.0, 60.0]]), torch.tensor([[0, 30.0, 30.0, 60.0, 60.0]])
    patterns = torch.from_numpy(interaction_pattern([4, 4, 60, 60], [30, 30, 60, 60])[None])
    with torch.no_grad():
        a, b = model(image, human, obj, patterns), again(image, human, obj, patterns)
    assert all(torch.equal(a[k], b[k]) for k in a)
