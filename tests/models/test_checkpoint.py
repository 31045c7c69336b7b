"""Checkpoint adapter: mmaction2 seed-config layouts, strict reports, partwise save/load, the models CLI."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from partwise.cli import main
from partwise.errors import InputError, MissingFileError
from partwise.models import create_model
from partwise.models.checkpoint import (LoadReport, detect_source, load_mmaction2_detector, load_model,
                                        load_state_dict, map_keys, mmaction2_detector_config, parameter_count,
                                        read_checkpoint, save_model)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mmaction2_slowonly_r50_w16"
SHAPES = json.loads((FIXTURE.parent / "mmaction2_ava_state_dict_shapes.json").read_text())

#: every AVA seed config -> (partwise constructor, options), with the key and parameter counts of
#: ava_mmaction2.md §7 (measured from mmaction2 1.2.0's own modules).
SEED_CONFIGS = {
    "slowfast_kinetics400-pretrained-r50-context_8xb16-4x16x1-20e_ava21-rgb.py":
        ("slowfast_r50_4x16", {"context": True}, 642, 33_930_617),
    "slowfast_kinetics400-pretrained-r50-temporal-max_8xb6-8x8x1-cosine-10e_ava22-rgb.py":
        ("slowfast_r50_8x8", {"temporal_pool": "max"}, 642, 33_830_265),
    "slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py":
        ("slowfast_r50_4x16", {}, 642, 33_743_993),
    "slowfast_kinetics400-pretrained-r50_8xb6-8x8x1-cosine-10e_ava22-rgb.py":
        ("slowfast_r50_8x8", {}, 642, 33_830_265),
    "slowfast_kinetics400-pretrained-r50_8xb8-8x8x1-20e_ava21-rgb.py":
        ("slowfast_r50_8x8", {}, 642, 33_830_265),
    "slowfast_r50-k400-pre-temporal-max-focal-alpha3-gamma1_8xb6-8x8x1-cosine-10e_ava22-rgb.py":
        ("slowfast_r50_8x8", {"temporal_pool": "max", "focal_alpha": 3.0, "focal_gamma": 1.0}, 642, 33_830_265),
    "slowonly_k400-pre-r50_8xb8-4x16x1-10e_ava-kinetics-rgb.py": ("slowonly_r50_4x16", {}, 320, 31_800_465),
    "slowonly_k400-pre-r50_8xb8-8x8x1-10e_ava-kinetics-rgb.py": ("slowonly_r50_8x8", {}, 320, 31_800_465),
    "slowonly_k700-pre-r50-context-temporal-max-nl-head_8xb8-8x8x1-10e_ava-kinetics-rgb.py":
        ("slowonly_r50_8x8", {"context": True, "temporal_pool": "max", "mlp_head": True}, 322, 48_747_665),
    "slowonly_k700-pre-r50-context-temporal-max-nl-head_8xb8-8x8x1-focal-10e_ava-kinetics-rgb.py":
        ("slowonly_r50_8x8", {"context": True, "temporal_pool": "max", "mlp_head": True, "focal_gamma": 1.0},
         322, 48_747_665),
    "slowonly_k700-pre-r50-context-temporal-max_8xb8-8x8x1-10e_ava-kinetics-rgb.py":
        ("slowonly_r50_8x8", {"context": True, "temporal_pool": "max"}, 320, 31_966_353),
    "slowonly_k700-pre-r50-context_8xb8-8x8x1-10e_ava-kinetics-rgb.py":
        ("slowonly_r50_8x8", {"context": True}, 320, 31_966_353),
    "slowonly_k700-pre-r50_8xb8-16x4x1-10e-tricks_ava-kinetics-rgb.py":
        ("slowonly_r50_16x4", {"context": True, "temporal_pool": "max", "mlp_head": True, "focal_gamma": 1.0},
         322, 48_747_665),
    "slowonly_k700-pre-r50_8xb8-4x16x1-10e_ava-kinetics-rgb.py": ("slowonly_r50_4x16", {}, 320, 31_800_465),
    "slowonly_k700-pre-r50_8xb8-8x8x1-10e_ava-kinetics-rgb.py": ("slowonly_r50_8x8", {}, 320, 31_800_465),
    "slowonly_kinetics400-pretrained-r101_8xb16-8x8x1-20e_ava21-rgb.py": ("slowonly_r101_8x8", {}, 626, 59_705_489),
    "slowonly_kinetics400-pretrained-r50-nl_8xb16-4x16x1-20e_ava21-rgb.py":
        ("slowonly_r50_nl_4x16", {}, 380, 39_154_833),
    "slowonly_kinetics400-pretrained-r50-nl_8xb16-8x8x1-20e_ava21-rgb.py":
        ("slowonly_r50_nl_8x8", {}, 380, 39_154_833),
    "slowonly_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py": ("slowonly_r50_4x16", {}, 320, 31_800_465),
    "slowonly_kinetics700-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py": ("slowonly_r50_4x16", {}, 320, 31_800_465),
}


def synthetic_state_dict(shapes: dict, seed: int) -> dict:
    """Tensors with exactly the given keys and shapes; BN statistics valid (positive variance)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.05
    return state


def test_all_seed_configs_are_covered():
    assert set(SEED_CONFIGS) == set(SHAPES)


@pytest.mark.parametrize("config", sorted(SEED_CONFIGS))
def test_seed_config_layout_matches_exactly(config):
    name, kwargs, n_keys, n_params = SEED_CONFIGS[config]
    shapes = SHAPES[config]
    assert len(shapes) == n_keys and parameter_count(shapes) == n_params
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    mapped, names, unmatched = map_keys({k: torch.empty(v, device="meta") for k, v in shapes.items()}, "mmaction2")
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert not unmatched
    assert {k: list(v.shape) for k, v in mapped.items()} == ours
    assert parameter_count(model) == n_params
    # and the architecture is recognised from the weights alone
    cfg = mmaction2_detector_config({k: torch.empty(v, device="meta") for k, v in shapes.items()})
    for field in ("backbone_type", "backbone", "context", "mlp_head", "num_classes"):
        assert getattr(cfg, field) == getattr(model.cfg, field), field


#: one seed config per distinct weight layout (options such as temporal max pooling do not change weights).
UNIQUE_LAYOUTS = sorted({json.dumps(shapes, sort_keys=True): cfg for cfg, shapes in sorted(SHAPES.items())}.values())
ROUND_TRIP = [
    "slowfast_kinetics400-pretrained-r50-context_8xb16-4x16x1-20e_ava21-rgb.py",
    "slowonly_k700-pre-r50_8xb8-16x4x1-10e-tricks_ava-kinetics-rgb.py",
    "slowonly_kinetics400-pretrained-r50-nl_8xb16-8x8x1-20e_ava21-rgb.py",
]


@pytest.mark.parametrize("config", UNIQUE_LAYOUTS)
def test_seed_config_weights_load_strictly(config, tmp_path):
    name, kwargs, _, _ = SEED_CONFIGS[config]
    shapes = SHAPES[config]
    state = synthetic_state_dict(shapes, seed=len(config))
    model = create_model(name, **kwargs)
    report = load_state_dict(model, state, "mmaction2")
    assert report.ok and len(report.mapped) == len(shapes)
    assert not report.missing and not report.unexpected and not report.mismatched
    ours = model.state_dict()
    for key, value in state.items():
        assert torch.equal(ours[names_key(key)], value)
    if config not in ROUND_TRIP:
        return
    model.eval()
    frames = 32 if name.startswith("slowfast") else 4
    clip = torch.randn(1, 3, frames, 32, 48, generator=torch.Generator().manual_seed(0))
    rois = torch.tensor([[0, 2.0, 3.0, 30.0, 31.0], [0, 0.0, 0.0, 48.0, 32.0]])
    with torch.no_grad():
        before = model(clip, rois)
    save_model(model, tmp_path / "m.pt")
    again = load_model(tmp_path / "m.pt")
    assert again.cfg == model.cfg and not again.training
    with torch.no_grad():
        after = again(clip, rois)
    assert torch.equal(before, after)


def test_round_trip_configs_have_distinct_layouts():
    assert set(ROUND_TRIP) <= set(UNIQUE_LAYOUTS) and len(UNIQUE_LAYOUTS) == 8


def names_key(mm_key: str) -> str:
    return mm_key.replace("roi_head.bbox_head.", "head.", 1)


def test_fixture_checkpoint_loads_strictly_with_inferred_config():
    ckpt = read_checkpoint(FIXTURE / "checkpoint.pth")
    assert detect_source(ckpt) == "mmaction2"
    model, report = load_mmaction2_detector(FIXTURE / "checkpoint.pth")
    assert report.ok and len(report.mapped) == 320
    assert report.mapped["roi_head.bbox_head.fc_cls.weight"] == "head.fc_cls.weight"
    ref = np.load(FIXTURE / "reference_io.npz")
    model.eval()
    with torch.no_grad():
        out = model.backbone(torch.from_numpy(ref["clip"]))
        score = model.head(torch.from_numpy(ref["roi_feat"]))
    want = torch.from_numpy(ref["backbone_out"])
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    torch.testing.assert_close(score, torch.from_numpy(ref["cls_score"]), rtol=1e-5, atol=1e-5)


def test_strict_reports_and_refuses():
    state = read_checkpoint(FIXTURE / "checkpoint.pth")["state_dict"]
    model = create_model("slowonly_r50_8x8", base_channels=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    broken = dict(state)
    del broken["backbone.layer1.0.conv1.conv.weight"]
    broken["roi_head.bbox_head.extra.weight"] = torch.zeros(1)
    broken["backbone.conv1.conv.weight"] = torch.zeros(16, 3, 3, 7, 7)
    broken["something_else"] = torch.zeros(1)
    with pytest.raises(InputError, match=r"ckpt\.pth:backbone\.conv1\.conv\.weight: shape \[16, 3, 3, 7, 7\]"):
        load_state_dict(model, broken, "mmaction2", path="ckpt.pth")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded
    report = load_state_dict(model, broken, "mmaction2", strict=False)
    assert report.missing == ["backbone.layer1.0.conv1.conv.weight"]
    assert sorted(report.unexpected) == ["roi_head.bbox_head.extra.weight", "something_else"]
    assert report.mismatched == [("backbone.conv1.conv.weight", (16, 3, 3, 7, 7), (16, 3, 1, 7, 7))]
    assert torch.equal(model.state_dict()["head.fc_cls.weight"], state["roi_head.bbox_head.fc_cls.weight"])
    text = report.format()
    assert "unexpected: something_else" in text and "shape mismatch: backbone.conv1.conv.weight" in text
    assert isinstance(report, LoadReport) and not report.ok


def test_unsafe_and_bad_files(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {"a": torch.zeros(1)}, "x": Evil()}, evil)
    with pytest.raises(InputError, match=r"evil.pth: refused: the checkpoint.s pickle calls (builtins\.)?print") as info:
        read_checkpoint(evil)
    assert "weights_only" not in str(info.value) and "\n" not in str(info.value)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match="not a torch checkpoint"):
        read_checkpoint(text)
    with pytest.raises(MissingFileError):
        read_checkpoint(tmp_path / "absent.pth")
    plain = tmp_path / "plain.pth"
    torch.save({"state_dict": {"a": torch.zeros(1)}}, plain)
    with pytest.raises(InputError, match="not a partwise checkpoint"):
        load_model(plain)
    with pytest.raises(InputError, match="not an mmaction2 SlowOnly/SlowFast"):
        load_mmaction2_detector(plain)


def test_partwise_checkpoint_tampered_config(tmp_path):
    model = create_model("slowonly_r50_4x16", base_channels=4)
    path = tmp_path / "small.pt"
    save_model(model, path, extra={"epoch": 3})
    record = torch.load(path, weights_only=True)
    assert record["format"] == "partwise" and record["family"] == "ava_detector" and record["extra"] == {"epoch": 3}
    assert detect_source(record) == "partwise"
    record["config"]["backbone"]["base_channels"] = 8
    torch.save(record, path)
    with pytest.raises(InputError, match="small.pt:backbone.conv1.conv.weight: shape"):
        load_model(path)
    record["config"]["bogus"] = 1
    torch.save(record, path)
    with pytest.raises(InputError, match="small.pt:config: invalid AVADetectorConfig"):
        load_model(path)


def test_models_cli(capsys, tmp_path):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "slowonly_r50_8x8" in out and "31,800,465" in out and "59,705,489" in out and "33,830,265" in out
    assert main(["models", "inspect", str(FIXTURE / "checkpoint.pth"), "--keys"]) == 0
    out = capsys.readouterr().out
    assert "source: mmaction2" in out and "keys: 320  parameters: 2,030,433" in out
    assert "missing: 0; unexpected: 0; shape mismatches: 0" in out
    assert "backbone.layer3.0.conv1.conv.weight  [64, 128, 3, 1, 1]" in out
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    assert main(["models", "inspect", str(bad)]) == 2
    assert "partwise: error:" in capsys.readouterr().err
