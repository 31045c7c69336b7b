"""Inference rewrites (partwise.models.fuse): folded BatchNorm, fused oneDNN convolutions, channels-last weights and
the fused AVA RoI head give the unfused eval-mode outputs, and leave the original model (and training) alone."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from partwise.models import create_model, fuse
from partwise.models.checkpoint import load_state_dict, read_checkpoint, state_dict_of
from partwise.models.resnet import BasicResNet, ResNet, resnet18, set_stride_in_1x1
from partwise.models.resnet3d import ResNet3d, ResNet3dConfig, SlowFastConfig, pool_time
from partwise.models.st_activity2vec import STActivity2Vec, STActivity2VecConfig

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mmaction2_slowonly_r50_w16"
ROIS = torch.tensor([[0, 4.0, 4.0, 40.0, 44.0], [1, 0.0, 0.0, 64.0, 48.0], [1, 30.0, 10.0, 60.0, 40.0]])


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so that folding changes the weights."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_((torch.rand(c, generator=gen) - 0.5) * 0.6)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.3)
                if m.affine:
                    m.weight.copy_(torch.rand(c, generator=gen) * 0.8 + 0.4)
                    m.bias.copy_((torch.rand(c, generator=gen) - 0.5) * 0.4)
    return model


def batchnorms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def assert_close(got: torch.Tensor, want: torch.Tensor, tol: float = 1e-4) -> None:
    assert got.shape == want.shape
    assert float((got - want).abs().max()) <= tol * max(1.0, float(want.abs().max()))


@pytest.mark.parametrize("layer", [nn.Conv2d(4, 6, 3, padding=1), nn.Conv3d(4, 6, (3, 1, 1), bias=False),
                                   nn.Conv1d(4, 6, 1), nn.Linear(4, 6, bias=False)])
@pytest.mark.parametrize("affine", [True, False])
def test_fold_into_matches_batchnorm(layer, affine):
    torch.manual_seed(0)
    dims = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3, nn.Linear: 0}[type(layer)]
    bn = [nn.BatchNorm1d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d][dims](6, affine=affine)
    randomize_batchnorm(bn)
    pair = nn.Sequential(layer, bn).eval()
    x = torch.randn((3, 4) + (5,) * dims)
    with torch.no_grad():
        want = pair(x)
        folded = fuse.fold_batchnorm(pair)
        got = folded(x)
    assert folded.folded_batchnorms == 1 and isinstance(folded[1], nn.Identity) and folded[0].bias is not None
    assert not torch.allclose(want, layer(x))  # the BN did change the output
    assert_close(got, want, 1e-5)
    assert isinstance(pair[1], type(bn))  # the argument is untouched


def test_fold_refuses_what_it_cannot_fold():
    with pytest.raises(ValueError, match="running statistics"):
        fuse.fold_into(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3, track_running_stats=False))
    with pytest.raises(ValueError, match="channels"):
        fuse.fold_into(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(4))
    with pytest.raises(TypeError):
        fuse.fold_into(nn.ReLU(), nn.BatchNorm2d(3))


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("name, options", [
    ("slowonly_r50_8x8", {}),
    ("slowonly_r50_nl_8x8", {"context": True, "temporal_pool": "max", "mlp_head": True}),
    ("slowfast_r50_4x16", {"context": True}),
])
def test_ava_detector_inference_form_equals_unfused(name, options, channels_last):
    torch.manual_seed(0)
    model = randomize_batchnorm(create_model(name, base_channels=8, **options)).eval()
    if "nl" in name:  # non-local blocks start as the identity (BN weight 0); make them count
        randomize_batchnorm(model, seed=1)
    frames = torch.randint(0, 256, (2, 3, 8 if name.startswith("slowonly") else 16, 48, 64)).float()
    clips = model.normalize(frames)
    fused = fuse.to_inference(model, channels_last=channels_last)
    assert batchnorms(fused) == [] and fused.folded_batchnorms == len(batchnorms(model)) > 0
    assert fused.roi_head_fused and not model.roi_head_fused
    with torch.no_grad():
        want = model(clips, ROIS)
        got = fused(clips, ROIS)
        # the fused RoI head alone (on the same features) and the fused backbone alone
        features = model.backbone(clips)
        assert_close(fused.fused_roi_logits(features, ROIS), want)
        fused_features = fused.backbone(clips)
    assert_close(got, want)
    for a, b in zip(fused_features if isinstance(fused_features, tuple) else (fused_features,),
                    features if isinstance(features, tuple) else (features,)):
        assert_close(a, b)
        assert a.is_contiguous(memory_format=torch.channels_last_3d) == channels_last
    assert_close(fused.predict(clips, ROIS), model.predict(clips, ROIS))


def test_fixture_backbone_folded_reproduces_mmaction2():
    """The reduced-width mmaction2 SlowOnly fixture (weights and output recorded with mmaction2 itself)."""
    kwargs = json.loads((FIXTURE / "README.json").read_text())["backbone_kwargs"]
    cfg = ResNet3dConfig(depth=kwargs["depth"], base_channels=kwargs["base_channels"],
                         conv1_kernel=tuple(kwargs["conv1_kernel"]), conv1_stride_t=kwargs["conv1_stride_t"],
                         pool1_stride_t=kwargs["pool1_stride_t"], spatial_strides=tuple(kwargs["spatial_strides"]))
    model = ResNet3d(cfg)
    state = state_dict_of(read_checkpoint(FIXTURE / "checkpoint.pth"))
    assert load_state_dict(model, {k[9:]: v for k, v in state.items() if k.startswith("backbone.")}, "partwise").ok
    ref = np.load(FIXTURE / "reference_io.npz")
    with torch.no_grad():
        out = fuse.to_inference(model)(torch.from_numpy(ref["clip"]))
    want = torch.from_numpy(ref["backbone_out"])
    assert float((out - want).abs().max() / want.abs().max()) < 1e-5


def test_st_activity2vec_inference_form_equals_unfused():
    torch.manual_seed(0)
    backbone = SlowFastConfig(depth=50, resample_rate=4, speed_ratio=4, channel_ratio=8, fusion_kernel=7,
                              base_channels=8)
    model = randomize_batchnorm(STActivity2Vec(STActivity2VecConfig(backbone=backbone,
                                                                    pasta_hidden=(8, 16, 8, 8, 8, 8)))).eval()
    clips = torch.randn(2, 3, 16, 48, 64)
    fused = fuse.to_inference(model)
    assert batchnorms(fused) == []  # the PaSta heads' BatchNorm1d too
    with torch.no_grad():
        want, got = model(clips, ROIS), fused(clips, ROIS)
    assert want.keys() == got.keys()
    for key in want:
        assert_close(got[key], want[key])


@pytest.mark.parametrize("stride_in_1x1", [True, False])
def test_resnet2d_inference_form_equals_unfused(stride_in_1x1):
    torch.manual_seed(0)
    model = ResNet((1, 2, 1, 1), res5_stride=1)
    set_stride_in_1x1(model, stride_in_1x1)
    model = randomize_batchnorm(model).eval()
    x = torch.randn(2, 3, 64, 80)
    fused = fuse.to_inference(model)
    assert batchnorms(fused) == [] and all(b.fused for b in fused.modules() if hasattr(b, "fused"))
    with torch.no_grad():
        assert_close(fused.stem_and_trunk(x), model.stem_and_trunk(x))
        assert_close(fused(x), model(x))


def test_resnet18_inference_form_equals_unfused():
    torch.manual_seed(0)
    model = randomize_batchnorm(resnet18(width=8)).eval()
    assert isinstance(model, BasicResNet)
    x = torch.randn(1, 3, 64, 64)
    fused = fuse.to_inference(model)
    assert batchnorms(fused) == []
    with torch.no_grad():
        for got, want in zip(fused(x), model(x)):
            assert_close(got, want)


def test_training_is_not_affected():
    """to_inference copies: the original keeps its BNs, mode, state dict and training behaviour."""
    torch.manual_seed(0)
    model = randomize_batchnorm(create_model("slowonly_r50_8x8", base_channels=8)).train()
    twin = copy.deepcopy(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fuse.to_inference(model)
    assert model.training and not fused.training and not model.roi_head_fused
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert all(not getattr(m, "fused", False) for m in model.modules())
    clips = torch.randn(2, 3, 8, 48, 64)
    torch.manual_seed(1)
    out = model(clips, ROIS)  # batch statistics and dropout, as before
    torch.manual_seed(1)
    want = twin(clips, ROIS)
    assert torch.equal(out, want)
    out.sum().backward()
    assert model.backbone.conv1.conv.weight.grad is not None
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))


def test_fused_model_falls_back_when_autograd_needs_a_graph():
    torch.manual_seed(0)
    model = randomize_batchnorm(create_model("slowonly_r50_8x8", base_channels=8)).eval()
    fused = fuse.to_inference(model)
    clips = torch.randn(1, 3, 8, 48, 64, requires_grad=True)
    out = fused(clips, ROIS[:1])  # grad enabled: the plain convolutions run (the oneDNN fused op has no backward)
    out.sum().backward()
    assert clips.grad is not None and fused.backbone.conv1.conv.weight.grad is not None
    with torch.no_grad():
        assert_close(out.detach(), model(clips, ROIS[:1]))


def test_inplace_returns_the_same_module():
    model = randomize_batchnorm(ResNet3d(ResNet3dConfig(base_channels=8))).eval()
    assert fuse.to_inference(model, inplace=True) is model and batchnorms(model) == []


def test_pool_time_is_layout_independent():
    x = torch.randn(2, 6, 4, 5, 3)
    for mode in ("avg", "max"):
        want = x.mean(2) if mode == "avg" else x.amax(2)
        assert_close(pool_time(x.contiguous(memory_format=torch.channels_last_3d), mode), want, 1e-6)
        assert torch.equal(pool_time(x, mode), want)
    with pytest.raises(ValueError, match="temporal pool mode"):
        pool_time(x, "median")


def test_activity2vec_inference_form_equals_unfused():
    """HAKE's Activity2Vec (ResNet-50 trunk with the stride on the 1x1, affine RoI crops), a `partwise run` model."""
    torch.manual_seed(0)
    model = randomize_batchnorm(create_model("activity2vec_res50")).eval()
    image = torch.randn(1, 3, 96, 128) * 50
    human = torch.tensor([[0, 10.0, 5, 60, 90], [0, 50, 10, 120, 95]])
    parts = torch.cat([torch.zeros(2, 10, 1), human[:, None, 1:] + torch.randn(2, 10, 4) * 3], dim=2)
    skeletons = torch.rand(2, 1, 64, 64)
    fused = fuse.to_inference(model)
    assert batchnorms(fused) == [] and fused.folded_batchnorms == len(batchnorms(model))
    with torch.no_grad():
        want, got = model(image, human, parts, skeletons), fused(image, human, parts, skeletons)
    assert want.keys() == got.keys()
    for key in want:
        assert_close(got[key], want[key])
