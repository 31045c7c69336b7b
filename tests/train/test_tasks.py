"""Real task runs on a tiny synthetic dataset: learning, exact resume after a kill, torchrun DDP == one process,
evaluation against the frequency prior."""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from partwise.models.checkpoint import load_model
from partwise.train.data import group_keyframes, load_records
from partwise.train.tasks import class_frequencies, load_task, run_task

ROOT = Path(__file__).parents[2]
SYNTH_AVA = ROOT / "configs" / "synth_ava_slowonly.yaml"
SYNTH_ST = ROOT / "configs" / "synth_st_activity2vec.yaml"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
SMALL = ["data.scale_range=[64,72]", "data.test_short_side=64", "run.batch_size=4", "run.num_workers=0"]


def test_short_run_improves_validation_loss_and_writes_a_loadable_model(tmp_path, synth_root):
    runner = load_task(SYNTH_AVA, [f"data.root={synth_root}", f"run.out_dir={tmp_path / 'run'}", "run.max_steps=25",
                                   "norm_eval=true", "optim.lr=0.01", *SMALL])
    train_ds, val_ds = runner.datasets()
    initial = runner.validation_loss(runner.build_model(), val_ds)
    summary = run_task(runner, progress=False, evaluate=True)
    model = load_model(tmp_path / "run" / "model.pt")
    from partwise.train.tasks import TrainModel

    trained = runner.validation_loss(TrainModel(model), val_ds)
    assert trained < 0.7 * initial, (initial, trained)
    report = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert set(report) == {"actions"} and 0 <= report["actions"]["mAP"] <= 1
    assert report["actions"]["prior_mAP"] == pytest.approx(summary["eval"]["actions"]["prior_mAP"])
    assert (tmp_path / "run" / "eval_actions.png").stat().st_size > 0
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 26


def test_training_clips_follow_the_per_sample_generator(synth_root):
    runner = load_task(SYNTH_AVA, [f"data.root={synth_root}", *SMALL, "data.flip=1.0"])
    train_ds, _ = runner.datasets()
    a, b = train_ds[3], train_ds[3]
    assert torch.equal(a["clip"], b["clip"]) and torch.equal(a["gt_boxes"], b["gt_boxes"])
    # epoch 1 of the same keyframe draws other augmentations; flip mirrors the boxes inside the clip width
    c = train_ds[3 + len(train_ds)]
    assert not torch.equal(a["clip"], c["clip"]) or not torch.equal(a["gt_boxes"], c["gt_boxes"])
    w = a["clip"].shape[-1]
    kf = train_ds.keyframes[3]
    w0 = kf.width
    scale = w / w0
    expected_x1 = w - kf.boxes[:, 2] * w0 * scale
    assert np.allclose(a["gt_boxes"][:, 0].numpy(), expected_x1, atol=1e-3)
    assert a["clip"].shape[:2] == (3, runner.cfg.data.clip_len) and min(a["clip"].shape[-2:]) >= 64


def test_keyframe_targets_and_frequency_prior(synth_root):
    runner = load_task(SYNTH_ST, [f"data.root={synth_root}"])
    table = load_records(runner.cfg.data, "train")
    kfs = group_keyframes(table)
    assert sum(len(k.boxes) for k in kfs) == table.num_rows
    first = table.slice(0, 1).to_pylist()[0]
    kf = kfs[0]
    assert kf.video == first["video_id"] and kf.frame_index == (first["time_s"] - 900) * 30
    assert sorted(np.flatnonzero(kf.actions[0]).tolist()) == sorted(first["actions"])
    from partwise import vocab

    names = vocab.load("pasta_ava87").names
    assert sorted(names[i] for i in np.flatnonzero(kf.pasta[0])) == sorted(first["pasta"])
    freq = class_frequencies(np.concatenate([k.actions for k in kfs]))
    counts = {}
    for row in table.column("actions").to_pylist():
        for a in row:
            counts[a] = counts.get(a, 0) + 1
    assert all(freq[a] == pytest.approx(c / table.num_rows) for a, c in counts.items())


def _train_cmd(out, root, *extra):
    return [sys.executable, "-m", "partwise", "train", str(SYNTH_AVA), f"data.root={root}", f"run.out_dir={out}",
            *SMALL, *extra, "--no-eval", "--no-progress"]


def _run_in_process(out, root, *extra):
    """The same run as :func:`_train_cmd`, in this process (saves an interpreter start on a busy machine)."""
    runner = load_task(SYNTH_AVA, [f"data.root={root}", f"run.out_dir={out}", *SMALL, *extra])
    run_task(runner, progress=False, evaluate=False)


def test_kill_and_resume_a_real_run_gives_bitwise_identical_weights(tmp_path, synth_root):
    extra = ["run.max_steps=14", "run.checkpoint_every=2", "run.num_workers=1", "model.dropout=0.5",
             "run.batch_size=2"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    _run_in_process(straight, synth_root, *extra)
    proc = subprocess.Popen(_train_cmd(killed, synth_root, *extra), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt = killed / "checkpoint.pt"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and torch.load(ckpt, weights_only=True)["step"] >= 4:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step_at_kill = torch.load(ckpt, weights_only=True)["step"]
    assert 4 <= step_at_kill < 14
    resumed = subprocess.run(_train_cmd(killed, synth_root, *extra, "--resume"), env=ENV, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(ckpt, weights_only=True)
    assert a["step"] == b["step"] == 14
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="torchrun missing")
def test_two_process_torchrun_matches_one_process(tmp_path, synth_root):
    # BatchNorm statistics frozen and no dropout: nothing depends on how the global batch is split
    extra = ["run.max_steps=6", "run.checkpoint_every=0", "norm_eval=true", "model.dropout=0.0", "data.crop=64",
             "optim.lr=0.01"]
    _run_in_process(tmp_path / "one", synth_root, *extra)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    cmd = _train_cmd(tmp_path / "two", synth_root, *extra)
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "--tee", "3", "-m", *cmd[2:]], env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-6000:]  # with --tee 3 each rank's own lines are in it
    h1 = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["history"]
    h2 = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["history"]
    assert len(h1) == len(h2) == 6
    assert h1[-1]["loss"] < h1[0]["loss"]
    for a, b in zip(h1, h2):
        assert math.isclose(a["loss"], b["loss"], rel_tol=1e-4, abs_tol=1e-6), (a, b)
    w1 = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["model"]
    w2 = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.allclose(w1[k], w2[k], rtol=1e-3, atol=1e-5) for k in w1)


def test_st_activity2vec_run_evaluates_pasta_and_actions(tmp_path, synth_root):
    runner = load_task(SYNTH_ST, [f"data.root={synth_root}", f"run.out_dir={tmp_path / 'st'}", "run.max_steps=2",
                                  *SMALL])
    summary = run_task(runner, progress=False)
    assert set(summary["eval"]) == {"actions", "pasta"}
    pasta = summary["eval"]["pasta"]["model"]
    assert "parts" in pasta and pasta["protocol"].startswith("ava-pasta-")
    model = load_model(tmp_path / "st" / "model.pt")
    clip = torch.zeros(1, 3, runner.cfg.data.clip_len, 64, 80)
    out = model(clip, torch.tensor([[0, 10.0, 10.0, 40.0, 60.0]]))
    assert out["pasta"].shape == (1, 87) and out["actions"].shape == (1, 80)


def test_real_layout_readers_give_the_same_keyframes_as_the_canonical_records(synth_root):
    """The AVA CSVs (format ava) and the HAKE-AVA CSV (format hake-ava) of the same data group into the same
    keyframes, boxes and targets as truth.parquet."""
    canonical = load_task(SYNTH_ST, [f"data.root={synth_root}"]).datasets()[1].keyframes
    for fmt, folder in (("ava", "ava"), ("hake-ava", "hake_ava")):
        runner = load_task(SYNTH_ST, [f"data.root={synth_root}", f"data.format={fmt}", f"data.annotations={folder}"])
        keyframes = runner.datasets()[1].keyframes
        assert [(k.video, k.time_s, k.frame_index) for k in keyframes] == \
            [(k.video, k.time_s, k.frame_index) for k in canonical]
        for a, b in zip(keyframes, canonical):
            order_a, order_b = np.lexsort(a.boxes.T[::-1]), np.lexsort(b.boxes.T[::-1])
            assert np.allclose(a.boxes[order_a], b.boxes[order_b], atol=1e-3)
            assert np.array_equal(a.actions[order_a], b.actions[order_b])
            if fmt == "hake-ava":
                assert np.array_equal(a.pasta[order_a], b.pasta[order_b])


def test_prepare_clip_matches_the_evaluation_input(synth_root):
    from partwise.train.data import prepare_clip

    runner = load_task(SYNTH_ST, [f"data.root={synth_root}", "data.test_short_side=64"])
    _, val_ds = runner.datasets()
    item = val_ds[0]
    kf = val_ds.keyframes[0]
    frames = val_ds.frames.read(kf.video, val_ds.clip_indices(kf, None))
    clip, scale = prepare_clip(frames, 64, runner.cfg.data.mean, runner.cfg.data.std)
    assert torch.allclose(clip[0], item["clip"], atol=1e-5)
    assert np.allclose(kf.boxes * np.array([kf.width, kf.height] * 2) * scale, item["gt_boxes"].numpy(), atol=0.02)


@pytest.mark.parametrize("config, extra", [(SYNTH_AVA, []), (SYNTH_ST, ["stage=0"]), (SYNTH_ST, ["stage=1"]),
                                           (SYNTH_ST, ["stage=2"])])
def test_every_trainable_parameter_gets_a_gradient(synth_root, config, extra):
    """DDP needs a gradient for every trainable parameter (the tiny SlowFast builds lateral convs it never calls)."""
    runner = load_task(config, [f"data.root={synth_root}", *SMALL, *extra])
    train_ds, _ = runner.datasets()
    model = runner.build_model()
    model.train()
    from partwise.train.data import collate_clips

    loss, _ = runner.loss_fn(model, collate_clips([train_ds[i] for i in range(4)]))
    loss.backward()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    if extra == ["stage=1"]:
        assert all(n.startswith("net.pasta_heads") for n in trainable)
