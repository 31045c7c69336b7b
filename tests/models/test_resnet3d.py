"""ResNet3d (SlowOnly) and SlowFast backbones: the mmaction2 fixture, shapes, non-local block, training step."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from partwise.models.checkpoint import load_state_dict, parameter_count, read_checkpoint, state_dict_of
from partwise.models.resnet3d import (NonLocal3d, NonLocalConfig, ResNet3d, ResNet3dConfig, SlowFast,
                                      SlowFastConfig)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mmaction2_slowonly_r50_w16"


def fixture_backbone() -> ResNet3d:
    """The reduced-width SlowOnly, built from the constructor arguments recorded with the fixture."""
    kwargs = json.loads((FIXTURE / "README.json").read_text())["backbone_kwargs"]
    assert kwargs["lateral"] is False and kwargs["num_stages"] == 4 and kwargs["pretrained2d"] is False
    cfg = ResNet3dConfig(depth=kwargs["depth"], base_channels=kwargs["base_channels"],
                         conv1_kernel=tuple(kwargs["conv1_kernel"]), conv1_stride_t=kwargs["conv1_stride_t"],
                         pool1_stride_t=kwargs["pool1_stride_t"], spatial_strides=tuple(kwargs["spatial_strides"]))
    return ResNet3d(cfg)


def test_fixture_backbone_reproduces_mmaction2():
    model = fixture_backbone()
    state = state_dict_of(read_checkpoint(FIXTURE / "checkpoint.pth"))
    backbone_state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    report = load_state_dict(model, backbone_state, "partwise")
    assert report.ok and len(report.mapped) == len(model.state_dict()) == len(backbone_state)
    ref = np.load(FIXTURE / "reference_io.npz")
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(ref["clip"]))
    want = torch.from_numpy(ref["backbone_out"])
    assert out.shape == want.shape == (1, 512, 8, 4, 4)
    # float32 through 50 layers; values reach ~600, so compare relative to the scale of the output.
    scale = want.abs().max()
    assert float((out - want).abs().max() / scale) < 1e-5
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-4 * float(scale))


def test_slowonly_shapes_and_strides():
    model = ResNet3d(ResNet3dConfig(base_channels=8)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 4, 64, 96))
    # no temporal downsampling; output stride 16 (res5 not strided)
    assert out.shape == (2, 8 * 8 * 4, 4, 4, 6)
    assert model.layer3[0].conv1.conv.kernel_size == (3, 1, 1)
    assert model.layer2[0].conv1.conv.kernel_size == (1, 1, 1)
    assert model.layer4[0].conv2.conv.stride == (1, 1, 1)
    assert model.layer3[0].conv2.conv.stride == (1, 2, 2)


def test_slowonly_r50_parameter_count_is_resnet50_with_inflation():
    # 2D ResNet-50 without its fc has 23,508,032 parameters; inflating the first conv of the 6 + 3 res4/res5
    # blocks to kernel 3 adds 2x their weights, conv1 (1,7,7) is unchanged.
    with torch.device("meta"):
        model = ResNet3d(ResNet3dConfig())
    extra = 2 * (256 * 512 + 5 * 256 * 1024) + 2 * (512 * 1024 + 2 * 512 * 2048)
    assert parameter_count(model) == 23_508_032 + extra


def non_local_reference(block: NonLocal3d, x: torch.Tensor) -> torch.Tensor:
    """Embedded Gaussian non-local, position by position (independent of the module's reshapes)."""
    n, c, t, h, w = x.shape
    theta = block.theta(x)
    phi = block.phi(x)
    g = block.g(x)
    inter = theta.shape[1]
    y = torch.zeros((n, inter, t, h, w), dtype=x.dtype)
    phi_pos = [(a, b, d) for a in range(phi.shape[2]) for b in range(phi.shape[3]) for d in range(phi.shape[4])]
    for i in range(n):
        for a in range(t):
            for b in range(h):
                for d in range(w):
                    q = theta[i, :, a, b, d]
                    logits = torch.stack([q @ phi[i, :, p0, p1, p2] for p0, p1, p2 in phi_pos]) / inter ** 0.5
                    weights = logits.softmax(0)
                    y[i, :, a, b, d] = sum(wt * g[i, :, p0, p1, p2] for wt, (p0, p1, p2) in zip(weights, phi_pos))
    return x + block.conv_out(y)


def test_non_local_block_matches_definition():
    torch.manual_seed(0)
    block = NonLocal3d(8, NonLocalConfig()).eval()
    x = torch.randn(1, 8, 2, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)  # BN weight starts at 0: identity
        torch.nn.init.normal_(block.conv_out.bn.weight)
        block.conv_out.bn.running_var.uniform_(0.5, 2.0)
        torch.testing.assert_close(block(x), non_local_reference(block, x), atol=1e-5, rtol=1e-5)
    assert block.g[1].kernel_size == (1, 2, 2) and block.inter_channels == 4


def test_slowfast_shapes_laterals_and_backward():
    cfg = SlowFastConfig(base_channels=16, resample_rate=4, speed_ratio=4, fusion_kernel=7)
    model = SlowFast(cfg)
    x = torch.randn(2, 3, 16, 32, 32)
    slow, fast = model(x)
    assert slow.shape == (2, 16 * 32, 4, 2, 2)  # T 16/4
    assert fast.shape == (2, 2 * 32, 16, 2, 2)  # fast base 16/8 = 2 channels, T 16
    assert model.slow_path.conv1_lateral.conv.weight.shape == (4, 2, 7, 1, 1)
    assert model.slow_path.layer1_lateral.conv.stride == (4, 1, 1)
    assert model.slow_path.layer1[0].conv1.conv.in_channels == 16 + 4
    (slow.square().mean() + fast.square().mean()).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.fast_path.conv1.conv.weight.grad.abs().sum() > 0
    assert model.slow_path.layer3_lateral.conv.weight.grad.abs().sum() > 0


def test_slowfast_slow_path_sees_every_resample_rate_frame():
    # With the fast pathway silenced (zero lateral weights), the slow output depends on frames 0, 4, 8, 12 only.
    torch.manual_seed(1)
    model = SlowFast(SlowFastConfig(base_channels=16, resample_rate=4, speed_ratio=4, fusion_kernel=7)).eval()
    for name in model.lateral_names:
        torch.nn.init.zeros_(getattr(model.slow_path, name).conv.weight)
    x = torch.randn(1, 3, 16, 32, 32)
    y = x.clone()
    y[:, :, [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15]] = 0
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], model(y)[0])
        assert not torch.allclose(model(x)[1], model(y)[1])


def test_bad_depth_and_flags():
    with pytest.raises(ValueError, match="depth"):
        ResNet3d(ResNet3dConfig(depth=34))
    with pytest.raises(ValueError, match="per-block"):
        ResNet3d(ResNet3dConfig(base_channels=4, inflate=(0, (1, 0), 1, 1)))
