import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from partwise.errors import ConfigError
from partwise.train.engine import EpochSampler, ScheduleConfig, lr_factor

TOY = str(Path(__file__).with_name("toy_run.py"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}


def test_schedules_by_hand():
    warm = ScheduleConfig(name="constant", warmup_steps=4, warmup_factor=0.2)
    assert [lr_factor(s, warm, 10) for s in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    step = ScheduleConfig(name="step", milestones=[3, 6], gamma=0.1)
    assert [lr_factor(s, step, 10) for s in (0, 2, 3, 5, 6, 9)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    cos = ScheduleConfig(name="cosine")
    assert lr_factor(0, cos, 10) == 1 and lr_factor(5, cos, 10) == pytest.approx(0.5)
    restarts = ScheduleConfig(name="cosine_restarts", restart_period=4, restart_mult=2)
    # cycles [0,4), [4,12), [12,28): restart at 4 and 12
    assert lr_factor(4, restarts, 100) == 1 and lr_factor(12, restarts, 100) == 1
    assert lr_factor(2, restarts, 100) == pytest.approx(0.5) and lr_factor(8, restarts, 100) == pytest.approx(0.5)
    with pytest.raises(ConfigError):
        lr_factor(0, ScheduleConfig(name="linear"), 10)


def test_sampler_resume_position_and_rank_split():
    full = EpochSampler(10, seed=1)
    it = iter(full)
    stream = [next(it) for _ in range(25)]
    assert sorted(i % 10 for i in stream[:10]) == list(range(10)) and all(i // 10 == 1 for i in stream[10:20])
    resumed = iter(EpochSampler(10, seed=1, start=13))
    assert [next(resumed) for _ in range(12)] == stream[13:25]
    r0, r1 = iter(EpochSampler(10, seed=1, rank=0, world_size=2)), iter(EpochSampler(10, seed=1, rank=1, world_size=2))
    first = [next(r0) for _ in range(5)] + [next(r1) for _ in range(5)]
    assert sorted(first) == sorted(stream[:10])


def _run(args, **kw):
    return subprocess.run([sys.executable, TOY, *args], env=ENV, capture_output=True, text=True, timeout=240, **kw)


def _weights(path):
    return torch.load(Path(path) / "checkpoint.pt", weights_only=True)["model"]


def test_kill_and_resume_gives_bitwise_identical_weights(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert _run([str(straight), "--steps", "16", "--every", "4", "--dropout", "--workers", "1"]).returncode == 0
    proc = subprocess.Popen([sys.executable, TOY, str(killed), "--steps", "16", "--every", "4", "--dropout",
                             "--workers", "1", "--delay", "0.03"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    ckpt = killed / "checkpoint.pt"
    while time.time() < deadline:
        if ckpt.exists() and torch.load(ckpt, weights_only=True)["step"] >= 8:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step_at_kill = torch.load(ckpt, weights_only=True)["step"]
    assert 8 <= step_at_kill < 16
    assert not any(p.name.endswith(".tmp") for p in killed.iterdir())
    done = _run([str(killed), "--steps", "16", "--every", "4", "--dropout", "--workers", "1", "--resume"])
    assert done.returncode == 0, done.stderr
    a, b = _weights(straight), _weights(killed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    hist_a = torch.load(straight / "checkpoint.pt", weights_only=True)["history"]
    hist_b = torch.load(killed / "checkpoint.pt", weights_only=True)["history"]
    assert [h["loss"] for h in hist_a] == [h["loss"] for h in hist_b]
    assert (killed / "metrics.csv").read_text().count("\n") == 17 and (killed / "loss.png").stat().st_size > 0


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="torchrun missing")
def test_two_process_ddp_matches_one_process(tmp_path):
    one = _run([str(tmp_path / "one"), "--steps", "10", "--every", "0"])
    assert one.returncode == 0, one.stderr
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "--tee", "3", TOY, str(tmp_path / "two"),
                          "--steps", "10", "--every", "0"], env=ENV, capture_output=True, text=True, timeout=240)
    assert two.returncode == 0, two.stderr[-6000:]  # with --tee 3 each rank's own lines are in it
    h1 = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["history"]
    h2 = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["history"]
    assert len(h1) == len(h2) == 10
    for a, b in zip(h1, h2):
        assert math.isclose(a["loss"], b["loss"], rel_tol=1e-5, abs_tol=1e-7)
    w1, w2 = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert all(torch.allclose(w1[k], w2[k], atol=1e-6) for k in w1)


def test_zero_steps_leaves_the_weights_and_writes_an_empty_history(tmp_path):
    """``run.max_steps=0`` is how a config evaluates its ``init`` weights: no step, no crash, weights untouched."""
    sys.path.insert(0, str(Path(TOY).parent))
    import toy_run

    from partwise.train.engine import OptimConfig, RunConfig, train

    model = toy_run.make_model(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run = RunConfig(max_steps=0, batch_size=4, out_dir=str(tmp_path), seed=0)
    result = train(model, toy_run.NoisyRegression(), toy_run.loss_fn, run, OptimConfig(lr=0.05), ScheduleConfig(), {})
    assert result.step == 0 and result.history == []
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert (tmp_path / "metrics.csv").read_text().strip() == ""
