import pytest
import torch

from partwise.models.resnet3d import SlowFast, SlowFastConfig
from partwise.models.st_activity2vec import (
    PASTA_PATH_ACTIONS,
    STActivity2Vec,
    STActivity2VecConfig,
    pool_person_features,
    st_a2v_loss,
    st_a2v_slowfast_r101_config,
)
from partwise.ops.roi_align import roi_align


def small_config():
    backbone = SlowFastConfig(depth=50, resample_rate=4, speed_ratio=4, channel_ratio=8, fusion_kernel=7, base_channels=16)
    return STActivity2VecConfig(backbone=backbone, pasta_hidden=(8, 16, 8, 8, 8, 8))


def test_forward_shapes_and_pasta_path_mask():
    torch.manual_seed(0)
    model = STActivity2Vec(small_config()).eval()
    clips = torch.randn(2, 3, 16, 64, 64)
    rois = torch.tensor([[0, 4.0, 4.0, 40.0, 60.0], [1, 10.0, 0.0, 60.0, 50.0], [1, 0.0, 0.0, 63.0, 63.0]])
    with torch.no_grad():
        out = model(clips, rois)
    assert out["pasta_logits"].shape == (3, 87) and out["actions"].shape == (3, 80)
    assert out["features"].shape == (3, sum(model.backbone.out_channels))
    via, direct = torch.sigmoid(out["action_pasta_logits"]), torch.sigmoid(out["action_direct_logits"])
    for a in range(1, 81):
        expected = via[:, a - 1] if a in PASTA_PATH_ACTIONS else direct[:, a - 1]
        assert torch.allclose(out["actions"][:, a - 1], expected)
    assert int(model.pasta_path_mask.sum()) == 12


def test_person_pooling_is_temporal_mean_roialign_spatial_max():
    torch.manual_seed(1)
    slow, fast = torch.randn(1, 6, 4, 8, 8), torch.randn(1, 3, 16, 8, 8)
    rois = torch.tensor([[0, 8.0, 8.0, 100.0, 90.0]])
    pooled = pool_person_features((slow, fast), rois, 7, 1 / 16)
    expected = torch.cat([roi_align(slow.mean(2), rois, 7, 1 / 16, 0, True).amax(dim=(2, 3)),
                          roi_align(fast.mean(2), rois, 7, 1 / 16, 0, True).amax(dim=(2, 3))], dim=1)
    assert torch.allclose(pooled, expected)


def test_stages_freeze_the_right_parts():
    model = STActivity2Vec(small_config()).train()
    clips = torch.randn(2, 3, 16, 64, 64)
    rois = torch.tensor([[0, 4.0, 4.0, 40.0, 60.0], [1, 10.0, 0.0, 60.0, 50.0]])
    model.set_stage(1)
    loss = st_a2v_loss(model(clips, rois), torch.zeros(2, 87), torch.zeros(2, 80), stage=1)
    loss.backward()
    assert model.pasta_heads[0].fc1.weight.grad is not None
    assert model.action_direct.weight.grad is None and all(p.grad is None for p in model.backbone.parameters())
    model.zero_grad(set_to_none=True)
    model.set_stage(2)
    loss = st_a2v_loss(model(clips, rois), torch.zeros(2, 87), torch.ones(2, 80), stage=2)
    loss.backward()
    assert model.action_direct.weight.grad is not None and model.action_from_pasta.weight.grad is not None
    assert model.pasta_heads[3].fc2.weight.grad is None


def test_head_parameter_count_of_the_original():
    # PaSta heads: sum over parts of 2304*d + d (fc1) + 2d (BN) + d*n + n (fc2); action layers 6656*80+80, 2304*80+80.
    dims, classes = (512, 2048, 1024, 1024, 1024, 1024), (15, 14, 5, 33, 7, 13)
    heads = sum(2304 * d + d + 2 * d + d * n + n for d, n in zip(dims, classes)) + 6656 * 80 + 80 + 2304 * 80 + 80
    backbone = SlowFast(st_a2v_slowfast_r101_config())
    model = STActivity2Vec(backbone=backbone)
    total = sum(p.numel() for p in model.parameters())
    assert total - sum(p.numel() for p in backbone.parameters()) == heads
    assert sum(backbone.out_channels) == 2304
    assert sum(1 for m in backbone.modules() if type(m).__name__ == "NonLocal3d") == 3


def test_partwise_checkpoint_round_trip(tmp_path):
    from partwise.models.checkpoint import load_model, save_model

    torch.manual_seed(0)
    model = STActivity2Vec(small_config()).eval()
    save_model(model, tmp_path / "st.pt")
    again = load_model(tmp_path / "st.pt")
    clips, rois = torch.randn(1, 3, 16, 64, 64), torch.tensor([[0, 4.0, 4.0, 40.0, 60.0]])
    with torch.no_grad():
        a, b = model(clips, rois), again(clips, rois)
    assert all(torch.equal(a[k], b[k]) for k in a)
