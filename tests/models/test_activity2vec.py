import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from partwise.errors import InputError
from partwise.models.checkpoint import detect_source, load_model, save_model
from partwise.models.activity2vec import (
    Activity2Vec,
    Activity2VecConfig,
    crop_rois_affine,
    load_hake_checkpoint,
    load_language_matrix,
    preprocess,
)

SHAPES = Path(__file__).parent.parent / "fixtures" / "activity2vec_state_dict_shapes.json"


def hake_state_dict(seed=0):
    """A state dict with the exact keys and shapes of HAKE's pasta_res50 checkpoint; the alias prefixes share the
    resnet50.* tensors as in the original (the same modules registered three times)."""
    shapes = json.loads(SHAPES.read_text())["keys"]
    items = shapes.items() if isinstance(shapes, dict) else shapes
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in items:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.02
    aliases = {"image_to_head.2.": "resnet50.conv1.", "image_to_head.3.": "resnet50.bn1.",
               "image_to_head.8.": "resnet50.layer1.", "image_to_head.9.": "resnet50.layer2.",
               "image_to_head.10.": "resnet50.layer3.", "resnet_layer4.": "resnet50.layer4."}
    for key in list(state):
        for alias, source in aliases.items():
            if key.startswith(alias):
                state[key] = state[source + key[len(alias):]]
    return state


def inputs(n_people=2, size=96):
    g = torch.Generator().manual_seed(1)
    image = torch.randn(1, 3, size, size, generator=g) * 50
    human = torch.tensor([[0, 10.0, 8.0, 60.0, 90.0], [0, 40.0, 5.0, 90.0, 80.0]])[:n_people]
    parts = torch.cat([torch.zeros(n_people, 10, 1), torch.rand(n_people, 10, 2, generator=g) * 40,
                       40 + torch.rand(n_people, 10, 2, generator=g) * 40], dim=2)
    skeletons = torch.rand(n_people, 1, 64, 64, generator=g)
    return image, human, parts, skeletons


def test_parameter_count_equals_original():
    # 48,685,850 = ResNet-50 without fc 23,508,032 + fc7_parts 24,565,760 + part classifiers 47,709
    # + verb classifier 482,461 + skeleton convs 81,888 (counted from the checkpoint's shapes; hake's note agrees).
    model = Activity2Vec()
    assert sum(p.numel() for p in model.parameters()) == 48_685_850
    shapes = json.loads(SHAPES.read_text())["keys"]
    items = dict(shapes.items() if isinstance(shapes, dict) else shapes)
    unique = sum(int(np.prod(s)) for k, s in items.items()
                 if not k.startswith(("image_to_head.", "resnet_layer4.")) and "running_" not in k and "num_batches" not in k)
    assert unique == 48_685_850


def test_hake_checkpoint_loads_exactly_and_round_trips(tmp_path):
    state = hake_state_dict()
    model = Activity2Vec().eval()
    checkpoint = {"model_state_dict": state, "iters": 5}
    assert detect_source(checkpoint) == "hake_activity2vec"
    report = load_hake_checkpoint(model, checkpoint)
    assert report.ok and len(report.mapped) == len(state)  # the 318 alias keys map onto the resnet50.* ones
    for key in ("backbone.layer3.5.conv2.weight", "backbone.bn1.running_var", "fc7_parts.2.0.weight", "verb_cls_scores.bias"):
        src = key.replace("backbone.", "resnet50.")
        assert torch.equal(model.state_dict()[key], state[src])
    image, human, parts, skeletons = inputs()
    with torch.no_grad():
        out = model(image, human, parts, skeletons)
    assert out["p_pasta"].shape == (2, 93) and out["p_verb"].shape == (2, 157) and out["f_pasta"].shape == (2, 3072 + 768)
    save_model(model, tmp_path / "a2v.pt")
    again = load_model(tmp_path / "a2v.pt")
    assert isinstance(again, Activity2Vec)
    with torch.no_grad():
        out2 = again(image, human, parts, skeletons)
    for key in out:
        assert torch.equal(out[key], out2[key])


def test_alias_conflict_and_unknown_keys_are_reported():
    state = hake_state_dict()
    state["resnet_layer4.0.conv1.weight"] = state["resnet_layer4.0.conv1.weight"] + 1
    state["object_branch.weight"] = torch.zeros(3)
    with pytest.raises(InputError):
        load_hake_checkpoint(Activity2Vec(), state)
    report = load_hake_checkpoint(Activity2Vec(), state, strict=False)
    assert sorted(report.unexpected) == ["object_branch.weight", "resnet_layer4.0.conv1.weight"]
    assert report.missing == [] and report.mismatched == []


def test_forward_backward_training_mode():
    model = Activity2Vec(Activity2VecConfig(), load_language_matrix()).train()
    image, human, parts, skeletons = inputs()
    out = model(image, human, parts, skeletons)
    assert set(out) == {"pasta_logits", "verb_logits"}
    loss = F.binary_cross_entropy_with_logits(out["pasta_logits"], torch.zeros(2, 93)) + out["verb_logits"].mean()
    loss.backward()
    assert model.verb_cls_scores.weight.grad is not None and model.backbone.conv1.weight.grad is not None


def test_language_part_is_pasta_probabilities_times_matrix():
    matrix = load_language_matrix()
    assert matrix.shape == (93, 768)
    model = Activity2Vec(language_matrix=matrix).eval()
    image, human, parts, skeletons = inputs(1)
    with torch.no_grad():
        out = model(image, human, parts, skeletons)
    expected = torch.sigmoid(out["pasta_logits"]) @ matrix
    assert torch.allclose(out["f_pasta"][:, 3072:], expected, atol=1e-6)
    assert torch.equal(out["f_pasta"][:, :3072], out["f_visual"])


def test_affine_crop_samples_where_the_formula_says():
    height, width, size = 12, 20, 5
    ramp_x = torch.arange(width, dtype=torch.float64).expand(height, width)
    ramp_y = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
    features = torch.stack([ramp_x, ramp_y])[None]
    rois = torch.tensor([[0, 32.0, 48.0, 160.0, 112.0]], dtype=torch.float64)  # stride 16: x 2..10, y 3..7
    crop = crop_rois_affine(features, rois, size, 1 / 16)[0]
    u = (2 * torch.arange(size, dtype=torch.float64) + 1) / size - 1
    x1, y1, x2, y2 = 2.0, 3.0, 10.0, 7.0
    xn = ((x2 - x1) * u + x1 + x2 - width + 1) / (width - 1)
    yn = ((y2 - y1) * u + y1 + y2 - height + 1) / (height - 1)
    px = ((xn + 1) * width - 1) / 2
    py = ((yn + 1) * height - 1) / 2
    assert torch.allclose(crop[0], px.expand(size, size), atol=1e-9)
    assert torch.allclose(crop[1], py[:, None].expand(size, size), atol=1e-9)


def test_preprocess_is_bgr_minus_means():
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[..., 0] = 200  # red
    out = preprocess(image)
    assert out.shape == (1, 3, 2, 3)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([-102.9801, -115.9465, 200 - 122.7717]))


def test_grouped_sampling_equals_per_roi_grid_sample():
    from partwise.models.activity2vec import sample_grids

    torch.manual_seed(0)
    features = torch.randn(3, 5, 9, 11, dtype=torch.float64)
    batch_index = torch.tensor([2, 0, 2, 1, 0, 2])
    grid = torch.rand(6, 4, 3, 2, dtype=torch.float64) * 2.4 - 1.2
    for align in (False, True):
        expected = F.grid_sample(features[batch_index], grid, mode="bilinear", padding_mode="zeros", align_corners=align)
        assert torch.allclose(sample_grids(features, batch_index, grid, align), expected, atol=1e-12)


LIGHT = dict(trunk="resnet18", trunk_width=8, hidden=16, skeleton_size=32)


def light_inputs(n_people=2):
    image, human, parts, _ = inputs(n_people)
    skeletons = torch.rand(n_people, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    return image, human, parts, skeletons


def test_light_trunk_shapes_dims_and_parameter_count():
    config = Activity2VecConfig(**LIGHT)
    assert (config.head_channels, config.human_channels, config.skeleton_dim) == (32, 64, 16 * 5 * 5)
    model = Activity2Vec(config, load_language_matrix()).eval()
    # stride-16 map = stage 3 of the ResNet-18: 130 px -> 65 (conv1) -> 33 (maxpool) -> 33 -> 17 -> 9; 96 -> 6
    assert model.backbone.stem_and_trunk(torch.zeros(1, 3, 96, 130)).shape == (1, 32, 6, 9)
    assert model.backbone.layer4(torch.zeros(3, 32, 7, 7)).shape == (3, 64, 7, 7)  # res5_stride 1 keeps 7x7
    # part head inputs: members x 32 (part crops) + 64 (human) + 32 (scene) + 400 (skeleton)
    assert [head[0].in_features for head in model.fc7_parts] == [560, 560, 528, 560, 560, 528]
    assert all(head[0].out_features == 16 and head[3].in_features == 16 for head in model.fc7_parts)
    assert [c.in_features for c in model.part_cls_scores] == [16] * 6
    assert (model.verb_cls_scores.in_features, model.verb_cls_scores.out_features) == (96, 157)
    # trunk 176,712 = conv1 1,176 + bn1 16 + stage1 2,368 + stage2 8,352 + stage3 33,088 + stage4 131,712;
    # pose nets 6 x 13,648; fc7 3,296 x 16 + 6 x 16 + 6 x 272; part classifiers 93 x 17; verbs 96 x 157 + 157
    assert sum(p.numel() for p in model.backbone.parameters()) == 176_712
    assert sum(p.numel() for p in model.parameters()) == 176_712 + 81_888 + 54_464 + 1_581 + 15_229
    image, human, parts, skeletons = light_inputs()
    with torch.no_grad():
        out = model(image, human, parts, skeletons)
    assert out["p_pasta"].shape == (2, 93) and out["p_verb"].shape == (2, 157)
    assert out["f_visual"].shape == (2, 96) and out["f_pasta"].shape == (2, 96 + 768)
    assert torch.allclose(out["f_pasta"][:, 96:], out["p_pasta"] @ load_language_matrix(), atol=1e-6)


def test_light_trunk_head_map_is_resnet18_stage3_and_wires_the_hip_head():
    torch.manual_seed(0)
    model = Activity2Vec(Activity2VecConfig(**LIGHT)).eval()
    image, human, parts, skeletons = light_inputs()
    body = model.backbone.body
    with torch.no_grad():
        x = body.maxpool(body.relu(body.bn1(body.conv1(image))))
        for stage in body.stages:
            x = stage(x)
        assert torch.equal(model.backbone.stem_and_trunk(image), x)
        # the hip head (body part 4) from its pieces: [hip crop, layer4(human crop), scene, skeleton]
        hip = crop_rois_affine(x, parts[:, 4], 7, 1 / 16).mean(dim=(2, 3))
        person = model.backbone.layer4(crop_rois_affine(x, human, 7, 1 / 16)).mean(dim=(2, 3))
        scene = x.mean(dim=(2, 3)).expand(2, -1)
        pose = model.pool2_flat_pose_maps[2](skeletons).flatten(1)
        expected = model.fc7_parts[2](torch.cat([hip, person, scene, pose], dim=1))
        assert torch.allclose(model.part_features(image, human, parts, skeletons)[:, 2], expected, atol=1e-6)


def test_light_trunk_trains_end_to_end_and_round_trips(tmp_path):
    model = Activity2Vec(Activity2VecConfig(**LIGHT)).train()
    image, human, parts, skeletons = light_inputs()
    out = model(image, human, parts, skeletons)
    F.binary_cross_entropy_with_logits(out["pasta_logits"], torch.zeros(2, 93)).backward()
    assert model.backbone.body.conv1.weight.grad.abs().sum() > 0
    assert model.backbone.layer4[1].conv2.weight.grad.abs().sum() > 0
    model.eval()
    save_model(model, tmp_path / "light.pt")
    again = load_model(tmp_path / "light.pt")
    assert isinstance(again, Activity2Vec) and again.config == model.config
    assert set(again.state_dict()) == set(model.state_dict())
    with torch.no_grad():
        expected, got = model(image, human, parts, skeletons), again(image, human, parts, skeletons)
    for key in expected:
        assert torch.equal(expected[key], got[key])


def test_trunk_settings_are_checked():
    with pytest.raises(ValueError, match="trunk"):
        Activity2VecConfig(trunk="vgg16")
    with pytest.raises(ValueError, match="trunk_width"):
        Activity2VecConfig(trunk="resnet18", trunk_width=0)
    with pytest.raises(ValueError, match="stride_in_1x1"):
        Activity2VecConfig(trunk="resnet18", stride_in_1x1=True)
    assert Activity2VecConfig().head_channels == 1024 and Activity2VecConfig().skeleton_dim == 2704


def test_shape_mismatch_through_the_run_load_path_names_the_file(tmp_path):
    """`partwise run --model hake.pth` with a mis-shaped tensor: one line naming the file and the key."""
    from partwise.models import weights

    state = hake_state_dict()
    state["verb_cls_scores.weight"] = torch.zeros(3, 3)
    path = tmp_path / "hake.pth"
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(InputError) as err:
        weights.load(path, ("activity2vec",))
    message = str(err.value)
    assert str(path) in message and "verb_cls_scores" in message and "\n" not in message
