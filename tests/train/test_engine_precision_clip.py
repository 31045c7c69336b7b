"""Engine options: gradient clipping per tensor (TIN's TF ``clip_by_norm`` per variable) vs the global norm, on
hand-computed gradients; mixed precision on CPU: bf16 autocast trains and resumes exactly, and the fp16 path's
GradScaler state is checkpointed and restored."""
from __future__ import annotations

import math
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from partwise.errors import ConfigError  # noqa: E402
from partwise.train.config import load_config  # noqa: E402
from partwise.train.engine import (OptimConfig, RunConfig, ScheduleConfig, amp_settings, clip_gradients,  # noqa: E402
                                   train)
from tests.train.toy_run import NoisyRegression, make_model  # noqa: E402


def _params_with_grads(*grads):
    params = [nn.Parameter(torch.zeros(len(g))) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g, dtype=torch.float32)
    return params


def test_per_tensor_clipping_scales_each_tensor_by_its_own_norm():
    # |(3, 4)| = 5 -> (0.6, 0.8); |(0.3, 0.4)| = 0.5 stays; |(0, 0, 2)| = 2 -> (0, 0, 1)
    a, b, c = _params_with_grads([3.0, 4.0], [0.3, 0.4], [0.0, 0.0, 2.0])
    clip_gradients([a, b, c], 1.0, "per_tensor")
    assert torch.allclose(a.grad, torch.tensor([0.6, 0.8]), atol=1e-7)
    assert torch.equal(b.grad, torch.tensor([0.3, 0.4]))  # within the norm: bitwise unchanged
    assert torch.allclose(c.grad, torch.tensor([0.0, 0.0, 1.0]), atol=1e-7)


def test_global_clipping_scales_all_tensors_by_the_joint_norm():
    a, b, c = _params_with_grads([3.0, 4.0], [0.3, 0.4], [0.0, 0.0, 2.0])
    total = math.sqrt(9 + 16 + 0.09 + 0.16 + 4)  # 5.4083...
    clip_gradients([a, b, c], 1.0, "global")
    factor = 1.0 / (total + 1e-6)
    assert torch.allclose(a.grad, torch.tensor([3.0, 4.0]) * factor, atol=1e-6)
    assert torch.allclose(b.grad, torch.tensor([0.3, 0.4]) * factor, atol=1e-7)


class _Linear(nn.Module):
    """loss = <a, (3, 4)> + <b, (0.3, 0.4)>: the gradients are those constants."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))

    def forward(self):
        return (self.a * torch.tensor([3.0, 4.0])).sum() + (self.b * torch.tensor([0.3, 0.4])).sum()


class _Dummy(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.zeros(1)


@pytest.mark.parametrize("mode, step_a, step_b", [
    ("per_tensor", [0.6, 0.8], [0.3, 0.4]),
    ("global", [3 / 5.0249378, 4 / 5.0249378], [0.3 / 5.0249378, 0.4 / 5.0249378]),
])
def test_the_engine_applies_the_configured_clip_mode(tmp_path, mode, step_a, step_b):
    model = _Linear()
    run = RunConfig(max_steps=1, batch_size=1, seed=0, amp=False, grad_clip=1.0, clip_mode=mode,
                    out_dir=str(tmp_path / mode))
    train(model, _Dummy(), lambda m, batch: (m(), {}), run, OptimConfig(name="sgd", lr=1.0, momentum=0.0,
                                                                          weight_decay=0.0),
          ScheduleConfig(name="constant"), {}, progress=False)
    assert torch.allclose(model.a.detach(), 1 - torch.tensor(step_a), atol=1e-6)
    assert torch.allclose(model.b.detach(), 1 - torch.tensor(step_b), atol=1e-6)


def test_amp_and_clip_mode_values(tmp_path):
    assert amp_settings(True, "cuda") == (torch.float16, True) and amp_settings(True, "cpu") == (None, False)
    assert amp_settings("bf16", "cpu") == (torch.bfloat16, False)
    assert amp_settings("fp16", "cpu") == (torch.float16, True)
    assert amp_settings(False, "cuda") == (None, False) == amp_settings("off", "cuda")
    path = tmp_path / "c.yaml"
    path.write_text("max_steps: 3\namp: bf16\nclip_mode: per_tensor\n")
    cfg = load_config(RunConfig, path)
    assert cfg.amp == "bf16" and cfg.clip_mode == "per_tensor"
    for override, message in (("amp=fp8", "run.amp: expected true or false, or one of fp16, bf16, off, got 'fp8'"),
                              ("clip_mode=layer", "run.clip_mode: expected one of global, per_tensor")):
        with pytest.raises(ConfigError) as err:
            load_config(RunConfig, path, [override])
        assert message in str(err.value) and str(path) in str(err.value)


def _mixed_run(out, amp: str, steps: int, *, resume: bool = False, dtypes: list | None = None):
    def loss_fn(model, batch):
        x, y = batch
        pred = model(x)
        if dtypes is not None:
            dtypes.append(pred.dtype)
        return nn.functional.mse_loss(pred.float(), y), {}

    run = RunConfig(max_steps=steps, batch_size=8, seed=3, amp=amp, grad_clip=1.0, clip_mode="per_tensor",
                    checkpoint_every=4, out_dir=str(out))
    return train(make_model(dropout=True), NoisyRegression(), loss_fn, run, OptimConfig(lr=0.05),
                 ScheduleConfig(name="constant"), {"toy": True}, resume=resume, progress=False)


def _state(out):
    return torch.load(out / "checkpoint.pt", weights_only=True)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_on_cpu_trains_and_resumes_exactly(tmp_path, amp):
    dtypes: list = []
    straight = _mixed_run(tmp_path / "straight", amp, 24, dtypes=dtypes)
    assert set(dtypes) == {torch.bfloat16 if amp == "bf16" else torch.float16}  # autocast really ran
    losses = [h["loss"] for h in straight.history]
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-4:]) < 0.5 * sum(losses[:4])
    _mixed_run(tmp_path / "resumed", amp, 12)
    _mixed_run(tmp_path / "resumed", amp, 24, resume=True)
    a, b = _state(tmp_path / "straight"), _state(tmp_path / "resumed")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    if amp == "bf16":
        assert a["scaler"] == {} == b["scaler"]  # no GradScaler with bfloat16
    else:
        fresh = torch.amp.GradScaler("cpu").state_dict()
        # the scaler moved away from its initial state, so a resume that dropped it would diverge
        assert a["scaler"] != fresh and a["scaler"] == b["scaler"]
