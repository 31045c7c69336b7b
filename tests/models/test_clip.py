import json

import numpy as np
import pytest
import torch

from partwise.errors import InputError
from partwise.models.checkpoint import detect_source, load_model, save_model
from partwise.models.clip import (
    CLIP,
    CLIP_A2V_HEADS,
    ClipActivity2Vec,
    ClipActivity2VecConfig,
    ClipConfig,
    TextConfig,
    VisionConfig,
    clip_vit_b16_config,
    clip_vit_b32_config,
    config_from_openai_state_dict,
    load_clip_backbone_into,
    load_openai_state_dict,
)


@pytest.fixture(scope="module")
def tiny(request):
    from pathlib import Path

    folder = Path(__file__).parent.parent / "fixtures" / "clip_vit_tiny"
    meta = json.loads((folder / "README.json").read_text())
    state = torch.load(folder / "openai_format_state_dict.pth", weights_only=True, map_location="cpu")
    io = np.load(folder / "reference_io.npz")
    config = ClipConfig(meta["embed_dim"], VisionConfig(**meta["vision"]), TextConfig(**meta["text"]))
    return meta, state, io, config


def test_tiny_clip_reproduces_open_clip(tiny):
    meta, state, io, config = tiny
    model = CLIP(config).eval()
    assert detect_source(state) == "openai_clip"
    report = load_openai_state_dict(model, state)
    assert report.ok and len(report.mapped) == len(meta["keys"])
    assert sorted(model.state_dict()) == sorted(meta["keys"])
    with torch.no_grad():
        image = model.encode_image(torch.from_numpy(io["image"]))
        text = model.encode_text(torch.from_numpy(io["tokens"]))
    np.testing.assert_allclose(image.numpy(), io["image_features"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(text.numpy(), io["text_features"], rtol=1e-4, atol=1e-5)
    assert float(model.logit_scale.detach()) == pytest.approx(float(io["logit_scale"]))


def test_inferred_config_matches_widths(tiny):
    meta, state, io, config = tiny
    inferred = config_from_openai_state_dict(state)
    assert (inferred.vision.image_size, inferred.vision.patch_size, inferred.vision.width, inferred.vision.layers) == (64, 16, 64, 2)
    assert inferred.text.context_length == 77 and inferred.text.layers == 2 and inferred.embed_dim == 32


def test_strict_load_reports_bad_keys(tiny):
    meta, state, io, config = tiny
    bad = dict(state)
    bad.pop("visual.proj")
    bad["visual.extra"] = torch.zeros(1)
    bad["ln_final.weight"] = torch.zeros(3)
    with pytest.raises(InputError):
        load_openai_state_dict(CLIP(config), bad)
    report = load_openai_state_dict(CLIP(config), bad, strict=False)
    assert report.missing == ["visual.proj"] and report.unexpected == ["visual.extra"]
    assert report.mismatched == [("ln_final.weight", (3,), (64,))]
    # OpenAI's non-parameter entries are dropped, not reported
    extra = dict(state, input_resolution=torch.tensor(64), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
    assert load_openai_state_dict(CLIP(config), extra).ok


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_of_published_architectures():
    # Counted from the architecture (conv1 without bias, class + positional embeddings, ln_pre, 12 blocks of
    # 12*W^2 + 13*W parameters, ln_post, proj W x 512). The same totals follow from OpenAI's released state dicts.
    w = 768
    block = 12 * w * w + 13 * w
    for config, patch in ((clip_vit_b16_config(), 16), (clip_vit_b32_config(), 32)):
        grid = 224 // patch
        expected = w * 3 * patch * patch + w + (grid * grid + 1) * w + 2 * w + 12 * block + 2 * w + w * 512
        visual = CLIP(ClipConfig(512, config.vision, None)).visual
        assert _count(visual) == expected
    tw = 512
    text_expected = 49408 * tw + 77 * tw + 12 * (12 * tw * tw + 13 * tw) + 2 * tw + tw * 512
    full = CLIP(clip_vit_b16_config())
    assert _count(full) == _count(full.visual) + text_expected + 1  # + logit_scale
    # Published totals (open_clip's model profile table): ViT-B/16 149.62M, ViT-B/32 151.28M parameters.
    assert round(_count(full) / 1e6, 2) == 149.62
    assert round(_count(CLIP(clip_vit_b32_config())) / 1e6, 2) == 151.28


def test_clip_a2v_heads_forward_backward(tiny):
    meta, state, io, config = tiny
    model = ClipActivity2Vec(ClipActivity2VecConfig(ClipConfig(config.embed_dim, config.vision, None), hidden=16))
    report = load_clip_backbone_into(model, {k: v for k, v in state.items()})
    assert report.missing == [] and report.mismatched == [] and report.unexpected == []
    out = model(torch.from_numpy(io["image"]))
    assert {k: tuple(v.shape) for k, v in out.items()} == {**{k: (2, n) for k, n in CLIP_A2V_HEADS.items()}, "pasta": (2, 93)}
    loss = sum(v.sum() for k, v in out.items() if k != "pasta")
    loss.backward()
    assert all(p.grad is None for p in model.visual.parameters())
    assert all(p.grad is not None for p in model.heads.parameters())
    # frozen tower gives the same features as the plain CLIP image tower
    plain = CLIP(config).eval()
    load_openai_state_dict(plain, state)
    with torch.no_grad():
        np.testing.assert_allclose(model.features(torch.from_numpy(io["image"])).numpy(), io["image_features"], rtol=1e-4, atol=1e-5)


def test_partwise_checkpoint_round_trip(tiny, tmp_path):
    meta, state, io, config = tiny
    for model in (CLIP(config), ClipActivity2Vec(ClipActivity2VecConfig(ClipConfig(32, config.vision, None), hidden=16))):
        model.eval()
        path = tmp_path / "m.pt"
        save_model(model, path)
        again = load_model(path)
        with torch.no_grad():
            a = model.encode_image(torch.from_numpy(io["image"])) if isinstance(model, CLIP) else model(torch.from_numpy(io["image"]))["pasta"]
            b = again.encode_image(torch.from_numpy(io["image"])) if isinstance(again, CLIP) else again(torch.from_numpy(io["image"]))["pasta"]
        assert type(again) is type(model) and torch.equal(a, b)


def test_clip_activity2vec_parameter_count():
    # ViT-B/16 image tower + 8 heads of 512-512-512-C (hake.md §4): 8 * (2 * (512*512 + 512)) + 513 * sum(C)
    heads = 8 * 2 * (512 * 512 + 512) + 513 * sum(CLIP_A2V_HEADS.values())
    with torch.device("meta"):
        model = ClipActivity2Vec()
        visual = CLIP(ClipConfig(512, clip_vit_b16_config().vision, None)).visual
    assert _count(model) == _count(visual) + heads == 90_526_464


def test_models_inspect_recognizes_openai_clip(capsys):
    from pathlib import Path

    from partwise.cli import main

    path = Path(__file__).parent.parent / "fixtures" / "clip_vit_tiny" / "openai_format_state_dict.pth"
    assert main(["models", "inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["source"] == "openai_clip" and info["ok"] is True
    assert info["model"]["patch_size"] == 16 and info["model"]["layers"] == 2


def test_instance_level_crops(tiny):
    meta, state, io, config = tiny
    model = ClipActivity2Vec(ClipActivity2VecConfig(ClipConfig(32, config.vision, None), hidden=16)).eval()
    load_clip_backbone_into(model, state)
    images = torch.from_numpy(io["image"])
    with torch.no_grad():
        whole = model(images)
        # a box covering the whole 64x64 image samples every pixel centre exactly once: the same as the image
        crops = model.forward_instances(images, torch.tensor([[1, 0.0, 0.0, 64.0, 64.0], [0, 0.0, 0.0, 64.0, 64.0]]))
        assert torch.allclose(crops["pasta"][0], whole["pasta"][1], atol=1e-5)
        assert torch.allclose(crops["verb"][1], whole["verb"][0], atol=1e-5)
        person = model.forward_instances(images, torch.tensor([[0, 10.0, 5.0, 40.0, 60.0]]))
        assert person["pasta"].shape == (1, 93) and not torch.allclose(person["pasta"][0], whole["pasta"][0])
