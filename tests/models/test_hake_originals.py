"""partwise against HAKE-Action-Torch's own networks: Activity2Vec (``pasta_res50``), TIN-Torch (``TIN_ResNet50``)
and CLIP-Activity2Vec (``PaStaNet``), each run by the original code with seeded random weights
(``tests/fixtures/hake_originals``, see its README and :mod:`tests.models.hake_originals`).

Each test writes the weights as the original saves them (its checkpoint container and key layout, aliases
included), loads the file through partwise's load path for that source, and compares the outputs to 1e-4 (relative
where |value| > 1). Each also shows that the comparison can fail: HAKE's bottlenecks carry the stride on the 1x1
conv, and a network with the stride on the 3x3 (torchvision's layout) is far off with the same weights.
"""
from __future__ import annotations

import argparse

import pytest
import torch

from partwise.errors import InputError
from partwise.models import weights
from partwise.models.activity2vec import Activity2Vec, Activity2VecConfig, load_hake_checkpoint
from partwise.models.checkpoint import detect_source, load_state_dict, read_checkpoint
from partwise.models.clip_activity2vec import load_clip_activity2vec_checkpoint, read_checkpoint as read_clip_a2v
from partwise.models.resnet import set_stride_in_1x1
from partwise.models.tin import TIN, TINConfig, load_tin_torch_checkpoint, tin_torch_config

from tests.models import hake_originals as original

TOL = 1e-4
#: the smallest error the torchvision stride placement must produce on these fixtures (it is 0.1-2 in practice)
WRONG = 1e-2


@pytest.fixture(scope="module")
def a2v():
    manifest, arrays = original.load("activity2vec")
    return manifest, arrays, original.state_dict(manifest, arrays)


def _save(path, obj):
    torch.save(obj, path)
    return path


def test_activity2vec_checkpoint_through_the_run_load_path_equals_hake(a2v, tmp_path):
    manifest, arrays, state = a2v
    path = _save(tmp_path / "model_250000.pth", {
        "iters": 250000, "model_state_dict": state,
        "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 0.0025, "momentum": 0.9, "params": [0, 1]}]},
        "scheduler_state_dict": {"T_0": 2, "T_mult": 2, "last_epoch": 3}})
    try:
        loaded = weights.load(path, ("activity2vec",))  # what `partwise run --model PATH` does
    finally:
        path.unlink()
    model = loaded.model
    assert loaded.loader == "hake_activity2vec" and model.config.stride_in_1x1 and not model.training
    # HAKE's language half is its own (93, 1536) BERT matrix; the fixture's is random: f_pasta is then 4608-d
    model.language_matrix = torch.from_numpy(original.generated(manifest["language_matrix"]))
    inputs = [torch.from_numpy(arrays["in/" + k]) for k in ("image", "human_bboxes", "part_bboxes", "skeletons")]
    with torch.no_grad():
        out = model(*inputs)
    for key in ("f_pasta", "p_pasta", "p_verb", "pasta_logits", "verb_logits"):
        original.assert_close(key, out[key], arrays["out/" + key], TOL)
    # the same weights with the stride on the 3x3
    set_stride_in_1x1(model.backbone, False)
    with torch.no_grad():
        wrong = model(*inputs)
    for key in ("f_pasta", "p_pasta", "p_verb"):
        assert original.scaled_error(wrong[key], arrays["out/" + key]) > WRONG, key


def test_activity2vec_built_with_torchvision_strides_is_switched_by_the_hake_loader(a2v):
    manifest, arrays, state = a2v
    inputs = [torch.from_numpy(arrays["in/" + k]) for k in ("image", "human_bboxes", "part_bboxes", "skeletons")]
    model = Activity2Vec(Activity2VecConfig(stride_in_1x1=False, language_dim=1536),
                         torch.from_numpy(original.generated(manifest["language_matrix"]))).eval()
    load_state_dict(model, state, "hake_activity2vec")  # keys alone: every one maps, the layout stays wrong
    with torch.no_grad():
        assert original.scaled_error(model(*inputs)["p_pasta"], arrays["out/p_pasta"]) > WRONG
    report = load_hake_checkpoint(model, {"model_state_dict": state})
    assert report.ok and model.config.stride_in_1x1
    assert model.backbone.layer2[0].conv1.stride == (2, 2) and model.backbone.layer2[0].conv2.stride == (1, 1)
    with torch.no_grad():
        original.assert_close("p_pasta", model(*inputs)["p_pasta"], arrays["out/p_pasta"], TOL)


def test_activity2vec_config_defaults_follow_hake():
    assert Activity2VecConfig().stride_in_1x1 is True
    assert Activity2VecConfig(trunk="resnet18").stride_in_1x1 is False
    assert Activity2VecConfig(stride_in_1x1=False).stride_in_1x1 is False  # torchvision's layout on request
    model = Activity2Vec()
    assert model.backbone.layer3[0].conv1.stride == (2, 2) and model.backbone.layer3[0].conv2.stride == (1, 1)
    assert model.backbone.layer4[0].conv1.stride == (1, 1)  # res5 at stride 1 (HAKE's cfg.FPN False)
    assert Activity2VecConfig.from_dict(Activity2VecConfig(stride_in_1x1=False).to_dict()).stride_in_1x1 is False


def test_tin_torch_checkpoint_equals_the_original(tmp_path):
    manifest, arrays = original.load("tin")
    state = original.state_dict(manifest, arrays)
    path = _save(tmp_path / "HICO_weight_lastEpoch_epoch_0.tar", {
        "epoch": 0, "model_state_dict": state, "optimizer_state_dict": {"state": {}, "param_groups": []},
        "loss": 1.25})
    try:
        assert detect_source(read_checkpoint(path)) == "tin_torch"
        model, report = load_tin_torch_checkpoint(path)
    finally:
        path.unlink()
    # 824 keys: 764 map (the trunk's aliases onto one tensor each), resnet50.layer5 (never run) is dropped
    assert report.ok and len(report.mapped) == 764 and not model.training
    assert len([k for k, *_ in manifest["state_dict"] if k.startswith("resnet50.layer5.")]) == 60
    assert model.config.stride_in_1x1 and model.config.fc_batchnorm and model.config.flatten_hwc
    # TIN-Torch's spatial blob is (P, 64, 64, 3); partwise's patterns are (P, 3, 64, 64)
    inputs = [torch.from_numpy(arrays["in/" + k]) for k in ("image", "H_boxes", "O_boxes")]
    inputs.append(torch.from_numpy(arrays["in/sp"]).permute(0, 3, 1, 2))
    pairs = (("hoi_scores", "cls_prob_HO"), ("binary", "cls_prob_binary"), ("s_h", "cls_score_H"),
             ("s_o", "cls_score_O"), ("s_sp", "cls_score_sp"), ("binary_logits", "cls_score_binary"))
    with torch.no_grad():
        out = model(*inputs)
    for ours, theirs in pairs:
        original.assert_close(ours, out[ours], arrays["out/" + theirs], TOL)
    for ours, theirs in (("s_h", "cls_prob_H"), ("s_o", "cls_prob_O"), ("s_sp", "cls_prob_sp")):
        original.assert_close(theirs, torch.sigmoid(out[ours]), arrays["out/" + theirs], TOL)
    # the same weights with the stride on the 3x3, or without the ReLU after head_phi / head_g, are far off
    set_stride_in_1x1(model, False)
    with torch.no_grad():
        wrong = model(*inputs)
    assert original.scaled_error(wrong["hoi_scores"], arrays["out/cls_prob_HO"]) > WRONG
    assert original.scaled_error(wrong["binary"], arrays["out/cls_prob_binary"]) > WRONG
    set_stride_in_1x1(model, True)
    model.config.attention_relu = False
    with torch.no_grad():
        wrong = model(*inputs)
    assert original.scaled_error(wrong["hoi_scores"], arrays["out/cls_prob_HO"]) > WRONG


def test_tin_config_defaults_and_legacy_configs():
    config = TINConfig()
    assert config.stride_in_1x1 and config.attention_relu and not config.fc_batchnorm and not config.flatten_hwc
    model = TIN()
    assert model.backbone.layer2[0].conv1.stride == (2, 2) and model.backbone.layer2[0].conv2.stride == (1, 1)
    # a partwise TIN saved before these options existed was built with the stride on the 3x3 and no ReLU there
    legacy = {k: v for k, v in config.to_dict().items() if k not in ("stride_in_1x1", "attention_relu")}
    old = TINConfig.from_dict(legacy)
    assert old.stride_in_1x1 is False and old.attention_relu is False
    assert TINConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="TIN-Torch"):
        tin_torch_config({"cls_score_H.weight": torch.zeros(600, 1024)})


def _clip_checkpoint(manifest, state):
    return {"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-6, "params": [0, 1]}]},
            "lr_scheduler": {"T_max": 5, "eta_min": 1e-6, "last_epoch": 5}, "epoch": manifest["checkpoint"]["epoch"],
            "args": argparse.Namespace(**manifest["checkpoint"]["args"])}


def test_clip_activity2vec_checkpoint_equals_the_original(tmp_path):
    manifest, arrays = original.load("clip_activity2vec")
    state = original.state_dict(manifest, arrays)
    path = _save(tmp_path / "ckpt_4.pth", _clip_checkpoint(manifest, state))
    try:
        with pytest.raises(InputError, match="weights-only"):
            read_checkpoint(path)  # the argparse.Namespace in 'args' needs the CLIP-A2V reader
        record = read_clip_a2v(path)
        assert detect_source(record) == "hake_clip_activity2vec" and record["args"].arch == "ViT-B/16"
        model, report = load_clip_activity2vec_checkpoint(path)
    finally:
        path.unlink()
    assert report.ok and len(report.mapped) == 200 and not model.training
    vision = model.config.clip.vision
    assert (vision.image_size, vision.patch_size, vision.width, vision.layers) == (224, 16, 768, 12)
    assert model.config.hidden == 512 and model.config.clip.embed_dim == 512
    images = torch.from_numpy(arrays["in/images"])
    with torch.no_grad():
        out = model(images)
        original.assert_close("features", model.features(images), arrays["out/features"], TOL)
    for name in manifest["heads"]:
        original.assert_close(name, out[name], arrays["out/logits_" + name], TOL)
        original.assert_close(name, torch.sigmoid(out[name]), arrays["out/prob_" + name], TOL)
    assert out["pasta"].shape == (2, 93)


def test_clip_activity2vec_adapter_reports_missing_and_unexpected_keys():
    # the key layout only (meta tensors): a head's last layer renamed, an unknown key added
    manifest, _ = original.load("clip_activity2vec")
    state = {key: torch.empty(shape, device="meta") for key, shape, _, _ in manifest["state_dict"]}
    state["head.verb_fc.layers.3.weight"] = state.pop("head.verb_fc.layers.2.weight")
    state["head.object_fc.layers.0.weight"] = torch.empty(512, 512, device="meta")
    with pytest.raises(InputError, match="missing|not a parameter"):
        load_clip_activity2vec_checkpoint({"model": state})
    from partwise.models.clip_activity2vec import clip_activity2vec_config
    from partwise.models.clip import ClipActivity2Vec

    with torch.device("meta"):
        model = ClipActivity2Vec(clip_activity2vec_config(state))
    report = load_state_dict(model, state, "hake_clip_activity2vec", dry_run=True)
    assert report.missing == ["heads.verb.4.weight"]
    assert sorted(report.unexpected) == ["head.object_fc.layers.0.weight", "head.verb_fc.layers.3.weight"]
