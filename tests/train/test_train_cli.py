"""``partwise train``: config errors are one line and exit 2 before any work; shipped configs build and step."""
from pathlib import Path

import pytest
import torch

from partwise.cli import main
from partwise.errors import ConfigError
from partwise.train.engine import build_optimizer
from partwise.train.tasks import load_task, run_task

CONFIGS = Path(__file__).parents[2] / "configs"
SYNTH = CONFIGS / "synth_ava_slowonly.yaml"
TINY = ["run.max_steps=1", "run.batch_size=2", "data.scale_range=[64,72]", "data.test_short_side=64",
        "data.crop=0"]


def _cli(capsys, *argv):
    code = main(["train", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=0.1", "optim.lrr: unknown key"),
    ("optim.lr=fast", "optim.lr: expected a number, got 'fast'"),
    ("model.backbone.base_channel=8", "model.backbone.base_channel: unknown key"),
    ("model.context=maybe", "model.context: expected true or false"),
    ("data.root=/nonexistent/synth", "data.root: /nonexistent/synth is not a folder"),
    ("task=ava", "task: unknown task 'ava'"),
    ("run.max_steps=[1]", "run.max_steps: expected an integer"),
    ("eval.action_profile=ava", "eval.action_profile: expected one of"),
    ("data.source=tape", "data.source: expected auto, frames or video"),
    ("data.scale_range=[100,50]", "data.scale_range: expected [low, high]"),
])
def test_bad_config_is_one_line_exit_2_before_any_work(capsys, tmp_path, synth_root, override, message):
    out_dir = tmp_path / "run"
    code, err = _cli(capsys, SYNTH, f"data.root={synth_root}", f"run.out_dir={out_dir}", override)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("partwise: error: ") and "Traceback" not in err
    assert message in err and str(SYNTH) in err
    assert not out_dir.exists()


def test_missing_required_key_and_missing_annotations(capsys, tmp_path, synth_root):
    config = tmp_path / "c.yaml"
    config.write_text("task: ava_detector\nrun:\n  max_steps: 1\n")
    code, err = _cli(capsys, config)
    assert code == 2 and "data: required key is missing" in err and err.count("\n") == 1
    code, err = _cli(capsys, SYNTH, f"data.root={synth_root}", "data.annotations=nothing.parquet")
    assert code == 2 and "data.annotations:" in err and "does not exist" in err
    config.write_text("task: ava_detector\n  bad: [\n")
    code, err = _cli(capsys, config)
    assert code == 2 and "invalid YAML" in err


def _recipe_overrides(synth_root, out_dir):
    return [f"data.root={synth_root}", "data.annotations=truth.parquet", "data.format=records",
            "data.proposals=ava/ava_dense_proposals_{split}.FAIR.recall_93.9.pkl", f"run.out_dir={out_dir}",
            'init=""', "run.num_workers=0"]


RECIPES = ["ava_kinetics_slowonly_r50.yaml", "st_activity2vec_stage1.yaml", "st_activity2vec_stage2.yaml"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_configs_build_model_and_optimizer_and_take_a_step_at_reduced_size(tmp_path, synth_root, name):
    base = _recipe_overrides(synth_root, tmp_path / "run")
    runner = load_task(CONFIGS / name, base)
    model = runner.build_model()
    optimizer = build_optimizer(model.parameters(), runner.cfg.optim)
    assert sum(p.numel() for p in model.parameters()) > 20e6  # full-width R50 / R101 backbones
    assert optimizer.param_groups[0]["lr"] == runner.cfg.optim.lr
    # the same recipe at a width and input size a CPU test can afford: one optimisation step changes the weights
    small = ["model.backbone.base_channels=8", "model.backbone.spatial_strides=[2,2]", "data.clip_len=4",
             "data.frame_interval=4", "data.crop=0", "data.scale_range=[64,72]", "data.test_short_side=64",
             "run.batch_size=2", "run.max_steps=1", "run.num_workers=0"]
    if "st_activity2vec" in name:
        small += ["model.backbone.slow_non_local=[0,0,0,0]", "model.pasta_hidden=[16,16,16,16,16,16]",
                  "model.backbone.resample_rate=4", "model.backbone.speed_ratio=4"]
    runner = load_task(CONFIGS / name, base + small)
    before = {k: v.clone() for k, v in runner.build_model().state_dict().items()}
    summary = run_task(runner, progress=False, evaluate=False)
    assert summary["steps"] == 1 and torch.isfinite(torch.tensor(summary["final_loss"]))
    after = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model"]
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "one step must change some weights"
    if name == "st_activity2vec_stage1.yaml":  # PaSta heads only
        assert all(k.startswith("net.pasta_heads") or "running" in k or "num_batches" in k for k in changed)
        assert any(k.startswith("net.pasta_heads") for k in changed)
    if name == "st_activity2vec_stage2.yaml":  # action layers only
        assert all(k.startswith("net.action_") for k in changed)


def test_trick_switches_change_the_model(synth_root, tmp_path):
    base = _recipe_overrides(synth_root, tmp_path / "run") + ["model.backbone.base_channels=8"]
    plain = load_task(CONFIGS / "ava_kinetics_slowonly_r50.yaml", base).model_config()
    tricks = load_task(CONFIGS / "ava_kinetics_slowonly_r50.yaml",
                       base + ["model.context=true", "model.temporal_pool=max", "model.mlp_head=true",
                               "model.focal_gamma=1.0"]).model_config()
    assert (plain.context, plain.temporal_pool, plain.mlp_head, plain.focal_gamma) == (False, "avg", False, 0.0)
    assert (tricks.context, tricks.temporal_pool, tricks.mlp_head, tricks.focal_gamma) == (True, "max", True, 1.0)
    assert tricks.feature_channels() == 2 * plain.feature_channels()


def test_check_flag_and_config_error_type(capsys, synth_root):
    code = main(["train", str(SYNTH), f"data.root={synth_root}", "--check"])
    assert code == 0 and "ok (ava_detector" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="stage: expected 0, 1 or 2"):
        load_task(CONFIGS / "synth_st_activity2vec.yaml", [f"data.root={synth_root}", "stage=3"])


IMAGE_RECIPES = {
    "activity2vec_parts.yaml": [],
    "activity2vec_verb.yaml": [],
    "clip_activity2vec.yaml": ["model.clip.vision.width=64", "model.clip.vision.layers=2",
                               "model.clip.vision.head_width=32", "model.clip.vision.image_size=32", "model.hidden=32"],
    "tin.yaml": ["pos_augment=2", "neg_per_image=4", "model.hidden=64"],
}


@pytest.mark.parametrize("name", list(IMAGE_RECIPES))
def test_image_recipe_configs_build_and_step_on_synthetic_keyframes(tmp_path, synth_root, name):
    base = [f"data.root={synth_root}", "data.annotations=truth.parquet", "data.format=records",
            "data.train_split=train", "data.val_split=val", 'init=""', "run.num_workers=0",
            f"run.out_dir={tmp_path / 'run'}"]
    runner = load_task(CONFIGS / name, base)
    model = runner.build_model()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert build_optimizer(model.parameters(), runner.cfg.optim).param_groups[0]["lr"] == runner.cfg.optim.lr
    assert 0 < sum(p.numel() for p in trainable) < sum(p.numel() for p in model.parameters()) or name == "tin.yaml"
    runner = load_task(CONFIGS / name, base + IMAGE_RECIPES[name] + ["run.max_steps=1", "run.batch_size=2",
                                                                    "data.scale_range=[64,64]", "data.test_short_side=64"])
    before = {k: v.clone() for k, v in runner.build_model().state_dict().items()}
    summary = run_task(runner, progress=False)
    after = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model"]
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and torch.isfinite(torch.tensor(summary["final_loss"]))
    assert summary["eval"]["val_loss"]["value"] > 0
    if name != "tin.yaml":  # Activity2Vec's instance AP, next to the frequency prior on the same boxes
        instance = summary["eval"]["instance"]
        assert 0 <= instance["mAP"] <= 1 and 0 <= instance["prior_mAP"] <= 1 and instance["classes"] > 0
        assert (tmp_path / "run" / "eval_instance.png").exists()
    if name == "activity2vec_parts.yaml":  # parts=[foot]: only the foot branch (index 0) moves
        assert all(k.split(".")[2] == "0" and k.split(".")[1] in {"fc7_parts", "part_cls_scores", "pool2_flat_pose_maps"}
                   for k in changed), sorted(changed)[:5]
    if name == "activity2vec_verb.yaml":
        assert all(k.startswith("net.verb_cls_scores") for k in changed)
    if name == "clip_activity2vec.yaml":  # frozen tower
        assert all(k.startswith("net.heads") for k in changed)


def test_overrides_may_follow_options(capsys, synth_root):
    config = str(Path(__file__).parents[2] / "configs" / "synth_st_activity2vec.yaml")
    assert main(["train", config, "--check", f"data.root={synth_root}", "run.max_steps=2"]) == 0
    assert main(["train", "--check", config, f"data.root={synth_root}", "--no-progress", "model.dropout=0.1"]) == 0
    with pytest.raises(SystemExit) as exit_info:
        main(["train", config, "--check", f"data.root={synth_root}", "--bogus"])
    assert exit_info.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err
