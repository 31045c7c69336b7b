"""The video_classifier task: data listing and clips, a real short run through the engine (loss, eval.json,
model.pt, exact resume), the shipped synthetic checkpoint on fresh videos, one-line config errors."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from partwise.errors import ConfigError
from partwise.models.checkpoint import load_model
from partwise.models.resnet3d import ResNet3dConfig
from partwise.train.tasks import TASKS, TrainModel, load_task, run_task
from partwise.train.video_classifier import (VideoDataConfig, list_videos, mean_class_accuracy, topk_accuracy)

ROOT = Path(__file__).parents[2]
CONFIG = ROOT / "configs" / "synth_video_classifier.yaml"
SHIPPED = ROOT / "partwise" / "models" / "data" / "synth_video_classifier.pt"
# a narrow, fast variant of the synthetic config for the tiny 128x96 test videos
SMALL = ["data.scale_range=[64,72]", "data.crop=64", "model.test_short_side=64", "model.num_clips=2",
         "model.backbone.base_channels=4", "run.batch_size=4", "run.log_every=1"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """8 videos of 5 s at 128x96 (6 train, 2 val; the classes cycle, so train has all 4)."""
    from partwise.synth.generator import SynthConfig, generate

    root = tmp_path_factory.mktemp("vc") / "data"
    generate(root, SynthConfig(seed=3, videos=8, seconds=5, width=128, height=96, frames=True))
    return root


def test_task_is_registered_and_videos_are_listed_from_both_layouts(videos):
    assert "video_classifier" in TASKS
    truth = json.loads((videos / "synth.json").read_text())
    want = {(v["video_id"], v["class"]) for v in truth["videos"] if v["split"] == "train"}
    records = list_videos(VideoDataConfig(root=str(videos)), "train")
    tps = list_videos(VideoDataConfig(root=str(videos), annotations="kinetics_tps", format="kinetics-tps"), "train")
    assert {(v.video, v.label) for v in records} == want == {(v.video, v.label) for v in tps}
    assert len(want) == 6


def test_metrics_hand_checked():
    scores = np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]])
    labels = np.array([2, 0, 1, 1])
    assert topk_accuracy(scores, labels, 1) == 0.25  # only row 1
    assert topk_accuracy(scores, labels, 2) == 0.75  # rows 0, 1, 2 (row 3 ranks 2, then 0 before 1)
    # class 0: 1/1, class 1: 0/2, class 2: 0/1
    assert mean_class_accuracy(scores, labels) == pytest.approx(1 / 3)


def test_training_clips_follow_the_per_sample_generator(videos):
    runner = load_task(CONFIG, [f"data.root={videos}", "data.color_jitter=0.2", *SMALL])
    train_ds, val_ds = runner.datasets()
    a, b = train_ds[5], train_ds[5]
    torch.testing.assert_close(a["clip"], b["clip"])
    assert a["clip"].shape == (3, 4, 64, 64) and a["label"] == train_ds.labels[5]
    assert not torch.equal(train_ds[5 + len(train_ds)]["clip"], a["clip"])  # next epoch: new draws
    item = val_ds[0]
    assert item["clip"].shape == (3, 4, 64, 85) and item["index"] == 0  # 96x128 -> short side 64


def test_short_run_learns_writes_eval_and_a_loadable_model(tmp_path, videos):
    out = tmp_path / "run"
    runner = load_task(CONFIG, [f"data.root={videos}", f"run.out_dir={out}", "run.max_steps=150",
                                "optim.lr=0.01", *SMALL])
    train_ds, _ = runner.datasets()
    # the loss on the training videos' test clips: a short run must fit them (18 s of CPU)
    fit_ds = type(train_ds)(runner.cfg.data, runner.net_config, train_ds.videos, runner.class_names(), train=False)
    initial = runner.validation_loss(runner.build_model(), fit_ds)
    summary = run_task(runner, progress=False, evaluate=True)
    model = load_model(out / "model.pt")
    trained = runner.validation_loss(TrainModel(model), fit_ds)
    assert trained < 0.7 * initial, (initial, trained)
    assert summary["steps"] == 150 and model.cfg.class_names == sorted(model.cfg.class_names)
    report = json.loads((out / "eval.json").read_text())
    assert report["videos"] == 2 and set(report["predictions"]) == {v.video for v in runner.videos("val")}
    metrics = report["metrics"]
    assert {"top1", "top1_prior", "mean_class_acc", "mean_class_acc_prior", "log_loss"} <= set(metrics)
    # the 2 val videos' classes (cycling from the seed) vs the majority prior of 6 balanced-ish train videos
    assert metrics["top1"] in (0.0, 0.5, 1.0) and metrics["top1_prior"] in (0.0, 0.5, 1.0)
    assert (out / "eval_confusion.png").stat().st_size > 0


def test_resume_after_an_interruption_gives_identical_weights(tmp_path, videos):
    common = [f"data.root={videos}", "run.checkpoint_every=3", "data.color_jitter=0.2", *SMALL]
    whole = load_task(CONFIG, common + [f"run.out_dir={tmp_path / 'a'}", "run.max_steps=6"])
    run_task(whole, progress=False, evaluate=False)
    first = load_task(CONFIG, common + [f"run.out_dir={tmp_path / 'b'}", "run.max_steps=3"])
    run_task(first, progress=False, evaluate=False)
    second = load_task(CONFIG, common + [f"run.out_dir={tmp_path / 'b'}", "run.max_steps=6"])
    run_task(second, resume=True, progress=False, evaluate=False)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped synthetic video classifier")
def test_shipped_checkpoint_beats_the_prior_on_fresh_videos(tmp_path):
    """24 fresh videos (a seed the checkpoint never saw, 160x120, 6 s): balanced classes, so the majority prior
    is right on a quarter of them; 11 or more right has probability 0.01 under that prior."""
    from partwise.models.video_classifier import predict_video
    from partwise.synth.generator import SynthConfig, generate
    from partwise.train.video_classifier import VideoClipDataset

    root = tmp_path / "fresh"
    generate(root, SynthConfig(seed=9, videos=24, seconds=6, width=160, height=120, frames=True))
    model = load_model(SHIPPED)
    assert SHIPPED.stat().st_size <= 3 * 2**20
    data = VideoDataConfig(root=str(root))
    vids = list_videos(data, "train") + list_videos(data, "val")
    ds = VideoClipDataset(data, model.cfg, vids, model.cfg.class_names, train=False)
    probs = np.stack([predict_video(model, lambda idx, i=i: ds.read_frames(i, idx), ds.num_frames(i))
                      for i in range(len(ds))])
    accuracy = float(np.mean(probs.argmax(1) == ds.labels))
    prior = np.bincount(ds.labels).max() / len(ds.labels)
    assert prior == 0.25
    assert accuracy >= 11 / 24, accuracy


@pytest.mark.parametrize("override, message", [
    (["data.format=ava"], "data.format: expected records or kinetics-tps, got 'ava'"),
    (["data.root=/nonexistent"], "data.root: /nonexistent is not a folder"),
    (["model.num_classes=7"], "model.num_classes: 7 but the data has 4 classes"),
    (["model.depth=50"], "model.depth: unknown key"),
    (["data.classes=[walking_around]"], "data.classes: class"),
    (["data.color_jitter=1.5"], "data.color_jitter: expected a value in [0, 1), got 1.5"),
])
def test_config_errors_are_one_line(videos, override, message):
    with pytest.raises(ConfigError) as info:
        load_task(CONFIG, [f"data.root={videos}", *override])
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(CONFIG)) and message in text, text


def test_init_backbone_only_takes_the_backbone_and_leaves_a_fresh_head(tmp_path, videos):
    from partwise.models import create_model
    from partwise.models.checkpoint import save_model

    other = create_model("video_classifier_synth", num_classes=9,
                         backbone=ResNet3dConfig(base_channels=4, spatial_strides=(2, 2, 2), inflate=(0, 1, 1)))
    torch.manual_seed(3)
    for p in other.parameters():
        torch.nn.init.normal_(p)
    save_model(other, tmp_path / "k400.pt")
    common = [f"data.root={videos}", f"init={tmp_path / 'k400.pt'}", *SMALL]
    with pytest.raises(ConfigError, match="does not match the model \\(size mismatch for head.fc_cls.weight") as info:
        load_task(CONFIG, common).build_model()
    assert "\n" not in str(info.value)
    model = load_task(CONFIG, common + ["init_backbone_only=true"]).build_model()
    torch.testing.assert_close(model.net.backbone.conv1.conv.weight, other.backbone.conv1.conv.weight)
    assert model.net.head.fc_cls.weight.shape == (4, 64) and model.net.head.fc_cls.weight.std() < 0.05
