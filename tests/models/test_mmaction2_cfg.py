"""mmaction2 AVA checkpoints: options from the config text in ``meta['cfg']``, else the file name's recipe.

Fixture ``mmaction2_slowonly_tricks_w8`` (see its README.md): a SlowOnly R50 "tricks" detector (context +
temporal max + MLP head + focal, 16x4 clips) at base width 8, built and run by mmaction2 1.2.0's own modules, saved
as mmengine saves checkpoints (``state_dict`` + ``meta['cfg']`` config text), with mmaction2's ``cls_score``.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from partwise.errors import InputError
from partwise.infer.pipeline import load_run_model
from partwise.models import weights
from partwise.models.ava_detector import AVADetector, AVADetectorConfig
from partwise.models.checkpoint import (load_mmaction2_detector, mmaction2_options_from_config,
                                        mmaction2_options_from_name, parse_config_text, read_checkpoint)
from partwise.models.resnet3d import SlowFastConfig

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mmaction2_slowonly_tricks_w8"
TRICKS_NAME = "slowonly_k700-pre-r50_8xb8-16x4x1-10e-tricks_ava-kinetics-rgb_20230112-0123abcd.pth"
SLOWFAST_MAX = "slowfast_r50-k400-pre-temporal-max-focal-alpha3-gamma1_8xb6-8x8x1-cosine-10e_ava22-rgb.cfg.txt"
SLOWFAST_CONTEXT = "slowfast_kinetics400-pretrained-r50-context_8xb16-4x16x1-20e_ava21-rgb.cfg.txt"


@pytest.fixture(scope="module")
def ref():
    return np.load(FIXTURE / "reference_io.npz")


@pytest.fixture(scope="module")
def checkpoint():
    return read_checkpoint(FIXTURE / "checkpoint.pth")


@pytest.fixture(autouse=True)
def fresh_notes(monkeypatch):
    monkeypatch.setattr(weights, "_NOTED", set())


def forward(model, ref) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        clip = model.normalize(torch.from_numpy(ref["frames"]).unsqueeze(0))
        return model(clip, torch.from_numpy(ref["rois"]))


def assert_matches(out: torch.Tensor, want: np.ndarray) -> None:
    want = torch.from_numpy(want)
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def rel_diff(out: torch.Tensor, want: np.ndarray) -> float:
    want = torch.from_numpy(want)
    return float((out - want).norm() / want.norm())


def save_without_meta(checkpoint: dict, path: Path) -> Path:
    torch.save({"state_dict": checkpoint["state_dict"]}, path)
    return path


def test_fixture_discriminates_temporal_pool(ref):
    # mmaction2's own scores with the temporal max (the config's) and avg (the old default) are ~30% apart
    assert rel_diff(torch.from_numpy(ref["cls_score"]), ref["cls_score_temporal_avg"]) > 0.1


def test_run_load_path_reads_meta_cfg_and_equals_mmaction2(ref, capsys):
    loaded = weights.load(FIXTURE / "checkpoint.pth", ("ava_detector",))  # what `partwise run --model CKPT` calls
    model = loaded.model
    options = model.mmaction2_options
    assert loaded.loader == "mmaction2" and options.config == "meta['cfg']"
    assert (model.cfg.temporal_pool, model.cfg.context, model.cfg.mlp_head) == ("max", True, True)
    assert (model.cfg.clip_len, model.cfg.frame_interval, model.cfg.focal_gamma) == (16, 4, 1.0)
    for key in ("temporal_pool", "clip_len", "frame_interval", "short_side", "context", "mlp_head", "focal_gamma"):
        assert options.sources[key] == "meta cfg", key
    assert loaded.extra["clip"]["clip_len"] == 16 and loaded.extra["clip"]["frame_interval"] == 4
    assert loaded.extra["clip"]["short_side"] == 256
    assert loaded.extra["mmaction2_assumed"] == [] and "from meta['cfg']: temporal_pool=max" in options.line
    assert "partwise: note:" not in capsys.readouterr().err  # nothing assumed, nothing to say
    out = forward(model, ref)
    assert_matches(out, ref["cls_score"])
    # partwise run's clip spec follows the config's test pipeline
    spec = load_run_model(str(FIXTURE / "checkpoint.pth")).clip
    assert (spec.clip_len, spec.frame_interval, spec.short_side) == (16, 4, 256)
    assert spec.mean == pytest.approx((123.675, 116.28, 103.53)) and spec.std == pytest.approx((58.395, 57.12, 57.375))


def test_without_meta_and_without_recipe_defaults_are_assumed_and_wrong(checkpoint, ref, tmp_path, capsys):
    path = save_without_meta(checkpoint, tmp_path / "checkpoint.pth")
    loaded = weights.load(path, ("ava_detector",))
    options = loaded.model.mmaction2_options
    assert options.config is None and options.sources["temporal_pool"] == "default"
    assert (loaded.model.cfg.temporal_pool, loaded.extra["clip"]["clip_len"]) == ("avg", 8)
    assert set(options.assumed) >= {"temporal_pool", "clip_len", "frame_interval"}
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("partwise: note:")]
    assert len(err) == 1 and "no meta['cfg'] in the checkpoint" in err[0] and "assumed (defaults)" in err[0]
    out = forward(loaded.model, ref)
    assert rel_diff(out, ref["cls_score"]) > 0.1  # what reading meta['cfg'] fixes
    assert_matches(out, ref["cls_score_temporal_avg"])


def test_recipe_file_name_without_meta(checkpoint, ref, tmp_path, capsys):
    path = save_without_meta(checkpoint, tmp_path / TRICKS_NAME)
    loaded = weights.load(path, ("ava_detector",))
    model, options = loaded.model, loaded.model.mmaction2_options
    assert options.config is None
    assert (model.cfg.temporal_pool, model.cfg.clip_len, model.cfg.frame_interval) == ("max", 16, 4)
    assert model.cfg.focal_gamma == 1.0 and model.cfg.context and model.cfg.mlp_head
    assert {options.sources[k] for k in ("temporal_pool", "clip_len", "frame_interval")} == {"file name"}
    assert options.sources["context"] == "weights" and options.sources["short_side"] == "default"
    assert loaded.extra["clip"]["clip_len"] == 16
    weights.load(path, ("ava_detector",))  # said once only
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("partwise: note:")]
    assert len(err) == 1 and "\n" not in options.line
    assert err[0] == f"partwise: note: {options.line}" == f"partwise: note: {loaded.extra['mmaction2_options']}"
    assert "assumed from the file name's recipe: temporal_pool=max, clip_len=16, frame_interval=4" in err[0]
    assert "from the weights: context=True, mlp_head=True" in err[0]
    assert_matches(forward(model, ref), ref["cls_score"])


def test_meta_cfg_wins_over_the_model_table(checkpoint, ref, tmp_path, monkeypatch):
    entry = weights.KNOWN_WEIGHTS["mmaction2-slowonly-r50-4x16-ava21"]
    target = tmp_path / entry.file
    target.parent.mkdir(parents=True)
    target.write_bytes((FIXTURE / "checkpoint.pth").read_bytes())
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    loaded = weights.load(entry.name, ("ava_detector",))
    assert loaded.name == entry.name and loaded.extra["clip"]["clip_len"] == 16  # the table (and name) say 4x16
    assert_matches(forward(loaded.model, ref), ref["cls_score"])
    # the same file without its config: the table's / file name's 4x16 are assumed
    save_without_meta(checkpoint, target)
    loaded = weights.load(entry.name, ("ava_detector",))
    assert (loaded.extra["clip"]["clip_len"], loaded.extra["clip"]["frame_interval"]) == (4, 16)
    assert loaded.model.mmaction2_options.sources["clip_len"] == "model table"


def test_flags_win(tmp_path, checkpoint):
    model, _ = load_mmaction2_detector(FIXTURE / "checkpoint.pth", temporal_pool="avg", clip_len=8)
    assert model.cfg.temporal_pool == "avg" and model.cfg.clip_len == 8
    assert model.mmaction2_options.sources["temporal_pool"] == "flag"
    assert "given: temporal_pool=avg, clip_len=8" in model.mmaction2_options.line
    with pytest.raises(TypeError, match="unknown option 'no_such_option'"):
        load_mmaction2_detector(FIXTURE / "checkpoint.pth", no_such_option=1)


def test_slowfast_config_texts():
    env, notes = parse_config_text((FIXTURE / SLOWFAST_MAX).read_text())
    options, more = mmaction2_options_from_config(env)
    assert notes == [] and more == []
    assert options["backbone_type"] == "slowfast"
    assert (options["clip_len"], options["frame_interval"], options["short_side"]) == (32, 2, 256)
    assert (options["temporal_pool"], options["context"], options["mlp_head"]) == ("max", False, False)
    assert (options["focal_gamma"], options["focal_alpha"]) == (1.0, 3.0)
    assert (options["backbone.resample_rate"], options["backbone.speed_ratio"]) == (4, 4)
    assert (options["backbone.fusion_kernel"], options["backbone.channel_ratio"]) == (7, 8)
    env, _ = parse_config_text((FIXTURE / SLOWFAST_CONTEXT).read_text())
    options, _ = mmaction2_options_from_config(env)
    assert (options["clip_len"], options["frame_interval"]) == (32, 2)
    assert (options["temporal_pool"], options["context"], options["backbone.resample_rate"]) == ("avg", True, 8)
    # the names agree with the configs
    name = mmaction2_options_from_name(SLOWFAST_MAX, "slowfast")
    assert name == {"clip_len": 32, "frame_interval": 2, "backbone.resample_rate": 4, "backbone.speed_ratio": 4,
                    "temporal_pool": "max", "focal_gamma": 1.0, "focal_alpha": 3.0}
    assert mmaction2_options_from_name(
        "slowonly_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb", "slowonly") == {
        "clip_len": 4, "frame_interval": 16}
    assert mmaction2_options_from_name("checkpoint.pth", "slowonly") == {}


def slowfast_checkpoint(path: Path, cfg_text: str, context: bool) -> Path:
    """A partwise SlowFast detector (random weights, reduced width) saved in mmaction2's key layout with
    ``cfg_text`` as its ``meta['cfg']``."""
    torch.manual_seed(0)
    model = AVADetector(AVADetectorConfig(backbone_type="slowfast", backbone=SlowFastConfig(base_channels=16),
                                          context=context))
    state = {("roi_head.bbox_head." + k[len("head."):] if k.startswith("head.") else k): v
             for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "meta": {"cfg": cfg_text}}, path)
    return path


def test_slowfast_checkpoint_gets_32x2_and_rates_from_cfg(tmp_path):
    path = slowfast_checkpoint(tmp_path / "sf.pth", (FIXTURE / SLOWFAST_CONTEXT).read_text(), context=True)
    loaded = weights.load(path, ("ava_detector",))
    cfg = loaded.model.cfg
    assert (loaded.extra["clip"]["clip_len"], loaded.extra["clip"]["frame_interval"]) == (32, 2)
    assert (cfg.backbone.resample_rate, cfg.backbone.speed_ratio, cfg.context) == (8, 8, True)
    spec = load_run_model(str(path)).clip
    assert (spec.clip_len, spec.frame_interval) == (32, 2)
    # the config and the weights disagree (no context in the weights): refused, naming the option
    bad = slowfast_checkpoint(tmp_path / "bad.pth", (FIXTURE / SLOWFAST_CONTEXT).read_text(), context=False)
    with pytest.raises(InputError, match=r"bad\.pth.*sets context=True but the weights"):
        weights.load(bad, ("ava_detector",))


def test_parse_config_text_evaluates_without_executing(tmp_path):
    marker = tmp_path / "executed"
    text = "\n".join([
        "import os",
        f"evil = __import__('os').system('touch {marker}')",
        f"also = open('{marker}', 'w')",
        "base = dict(a=1, b=[1, 2], c=(3, -4))",
        "merged = dict(**base, d='x' + 'y', e=2 * 8, f=f'{base}')",
        "root = 'data/ava'",
        "path = f'{root}/train.csv'",
        "d = {'k': base['a'], **base}",
        "size = (-1, 256)",
    ])
    env, notes = parse_config_text(text)
    assert not marker.exists()
    assert env["merged"]["d"] == "xy" and env["merged"]["e"] == 16 and env["merged"]["c"] == (3, -4)
    assert env["path"] == "data/ava/train.csv" and env["size"] == (-1, 256)
    assert repr(env["evil"]).startswith("<not evaluated") and repr(env["also"]).startswith("<not evaluated")
    assert env["d"]["a"] == 1 and repr(env["d"]["k"]).startswith("<not evaluated")
    env, notes = parse_config_text("_base_ = ['../base.py']\nmodel = dict(backbone=dict(depth=50))")
    assert env["model"] == {"backbone": {"depth": 50}} and "cannot be resolved offline" in notes[0]
    _, notes = parse_config_text("from mmengine.config import read_base\nwith read_base():\n    from .base import *\n")
    assert any("lazy import" in n for n in notes)
    with pytest.raises(ValueError, match="not Python"):
        parse_config_text("model = dict(")


def test_base_only_config_and_recipe(checkpoint, ref, tmp_path, capsys):
    """The tricks config file itself (inheriting its 8x8 base): the extractor and head options come from the
    text, the clip (set only in the base) from the file name's recipe, or is assumed."""
    text = ("_base_ = ['slowonly_k700-pre-r50_8xb8-8x8x1-10e_ava-kinetics-rgb.py']\n"
            "model = dict(roi_head=dict(bbox_roi_extractor=dict(with_global=True, temporal_pool_mode='max'),\n"
            "    bbox_head=dict(in_channels=512, mlp_head=True, focal_gamma=1.0)))\n")
    for name, clip in ((TRICKS_NAME, (16, 4)), ("plain.pth", (8, 8))):
        torch.save({"state_dict": checkpoint["state_dict"], "meta": {"cfg": text}}, tmp_path / name)
        loaded = weights.load(tmp_path / name, ("ava_detector",))
        options = loaded.model.mmaction2_options
        assert options.sources["temporal_pool"] == "meta cfg" and loaded.model.cfg.temporal_pool == "max"
        assert (loaded.model.cfg.clip_len, loaded.model.cfg.frame_interval) == clip
        assert options.sources["clip_len"] == ("file name" if name == TRICKS_NAME else "default")
        assert "_base_" in options.line and "cannot be resolved offline" in options.line
        assert_matches(forward(loaded.model, ref), ref["cls_score"])
    assert len([ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("partwise: note:")]) == 2


def test_dict_cfg_preprocessor_keys_and_unsupported(checkpoint, ref, tmp_path):
    env, _ = parse_config_text(checkpoint["meta"]["cfg"])
    plain = {k: v for k, v in env.items() if k in ("model", "test_dataloader", "val_dataloader")}
    state = dict(checkpoint["state_dict"])
    state["data_preprocessor.mean"] = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1, 1)
    torch.save({"state_dict": state, "meta": {"config": plain}}, tmp_path / "old.pth")  # mmcv-style meta dict
    model, report = load_mmaction2_detector(tmp_path / "old.pth")
    assert report.ok and model.mmaction2_options.config == "meta['config']"
    assert (model.cfg.temporal_pool, model.cfg.clip_len) == ("max", 16)
    assert_matches(forward(model, ref), ref["cls_score"])
    text = checkpoint["meta"]["cfg"].replace("roi_layer_type='RoIAlign'", "roi_layer_type='RoIPool'")
    assert text != checkpoint["meta"]["cfg"]
    torch.save({"state_dict": checkpoint["state_dict"], "meta": {"cfg": text}}, tmp_path / "pool.pth")
    with pytest.raises(InputError, match="roi_layer_type='RoIPool'"):
        load_mmaction2_detector(tmp_path / "pool.pth")
    torch.save({"state_dict": checkpoint["state_dict"], "meta": {"cfg": "model = dict("}}, tmp_path / "broken.pth")
    model, _ = load_mmaction2_detector(tmp_path / "broken.pth")
    assert model.mmaction2_options.line.startswith("broken.pth: meta['cfg'] not read: config text is not Python")
