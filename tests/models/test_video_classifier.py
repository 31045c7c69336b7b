"""Video classifier (mmaction2 Recognizer3D): shapes, head, clip sampling, multi-clip prediction, mmaction2
checkpoint keys, partwise save/load."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from partwise.models import MODELS, create_model
from partwise.models.checkpoint import (detect_source, load_model, load_state_dict, parameter_count, save_model)
from partwise.models.resnet3d import ResNet3dConfig, SlowFastConfig
from partwise.models.video_classifier import (VideoClassifier, VideoClassifierConfig, eval_clip_indices,
                                              predict_video, train_clip_indices)

SHAPES = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "mmaction2_ava_state_dict_shapes.json")
                    .read_text())


def tiny(**overrides) -> VideoClassifier:
    torch.manual_seed(0)
    cfg = VideoClassifierConfig(backbone=ResNet3dConfig(base_channels=4, spatial_strides=(2, 2), inflate=(0, 1)),
                                num_classes=3, class_names=["a", "b", "c"], clip_len=4, frame_interval=2,
                                num_clips=3, test_short_side=32, **overrides)
    return VideoClassifier(cfg).eval()


def test_forward_shapes_and_head_is_pool_then_fc():
    model = tiny()
    clips = torch.randn(2, 3, 4, 32, 48)
    logits = model(clips)
    assert logits.shape == (2, 3)
    features = model.backbone(clips)
    assert features.shape == (2, 32, 4, 2, 3)  # 2 stages: planes 4 * 2, expansion 4; T kept; stride 16
    want = features.mean(dim=(2, 3, 4)) @ model.head.fc_cls.weight.T + model.head.fc_cls.bias
    torch.testing.assert_close(logits, want)


def test_slowfast_head_concatenates_both_pathways():
    torch.manual_seed(0)
    backbone = SlowFastConfig(base_channels=8, channel_ratio=4, resample_rate=4, speed_ratio=4,
                              spatial_strides=(1, 2, 2, 2))
    model = VideoClassifier(VideoClassifierConfig(backbone_type="slowfast", backbone=backbone, num_classes=5)).eval()
    assert model.cfg.feature_channels() == 256 + 64
    assert model.cfg.class_names == [f"class_{i}" for i in range(5)]
    clips = torch.randn(1, 3, 16, 64, 64)
    slow, fast = model.backbone(clips)
    pooled = torch.cat([slow.mean(dim=(2, 3, 4)), fast.mean(dim=(2, 3, 4))], 1)
    torch.testing.assert_close(model(clips), model.head.fc_cls(pooled))


def test_kinetics_constructor_matches_mmaction2_slowonly_r50():
    model = create_model("slowonly_r50_8x8_kinetics")
    # mmaction2 reports 32.45M parameters for SlowOnly R50 8x8x1 Kinetics-400
    assert parameter_count(model) == 32_454_096
    assert model.cfg.backbone.spatial_strides == (1, 2, 2, 2) and model.cfg.num_clips == 10
    assert model.cfg.mean == (123.675, 116.28, 103.53) and model.cfg.std == (58.395, 57.12, 57.375)
    assert len(create_model("slowonly_r50_8x8_kinetics", num_classes=24).cfg.class_names) == 24
    assert "video_classifier_synth" in MODELS


def test_config_rejects_inconsistent_class_names():
    with pytest.raises(ValueError, match="class_names has 2 names for 3 classes"):
        VideoClassifierConfig(num_classes=3, class_names=["a", "b"])
    with pytest.raises(ValueError, match="distinct"):
        VideoClassifierConfig(num_classes=2, class_names=["a", "a"])


def test_eval_clip_indices_hand_checked():
    # span 32, (300 - 32 + 1) / 3 = 89.67: starts int(44.83), int(134.5), int(224.17)
    got = eval_clip_indices(300, 4, 8, 3)
    np.testing.assert_array_equal(got, [[44, 52, 60, 68], [134, 142, 150, 158], [224, 232, 240, 248]])
    # exactly one span: one start at int(0.5) = 0
    np.testing.assert_array_equal(eval_clip_indices(32, 4, 8, 1), [[0, 8, 16, 24]])
    # shorter than a span: every clip starts at 0, indices loop
    np.testing.assert_array_equal(eval_clip_indices(20, 4, 8, 2), [[0, 8, 16, 4], [0, 8, 16, 4]])


def test_train_clip_indices_cover_every_start_and_stay_inside():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(3000):
        idx = train_clip_indices(40, 4, 3, rng)
        np.testing.assert_array_equal(np.diff(idx), [3, 3, 3])
        starts.add(int(idx[0]))
    assert starts == set(range(40 - 12 + 1))
    np.testing.assert_array_equal(train_clip_indices(5, 4, 2, rng), [0, 2, 4, 1])


def test_predict_video_averages_clip_probabilities():
    model = tiny()
    rng = np.random.default_rng(1)
    video = rng.integers(0, 256, size=(50, 40, 60, 3), dtype=np.uint8)
    calls = []

    def read_frames(indices):
        calls.append(np.array(indices))
        return video[indices]

    probs = predict_video(model, read_frames, len(video))
    expected_idx = eval_clip_indices(50, 4, 2, 3)
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], np.unique(expected_idx))
    # by hand: each clip resized to short side 32 (40x60 -> 32x48), normalized, softmax, mean
    per_clip = []
    for row in expected_idx:
        clip = torch.from_numpy(video[row]).permute(0, 3, 1, 2).float()
        clip = F.interpolate(clip, size=(32, 48), mode="bilinear", align_corners=False, antialias=True)
        clip = clip.permute(1, 0, 2, 3)[None]
        mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1, 1)
        std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1, 1)
        with torch.no_grad():
            per_clip.append(F.softmax(model((clip - mean) / std), 1)[0])
    np.testing.assert_allclose(probs, torch.stack(per_clip).mean(0).numpy(), rtol=1e-5, atol=1e-6)
    assert probs.shape == (3,) and abs(probs.sum() - 1) < 1e-5
    with pytest.raises(ValueError, match="expected \\(K, H, W, 3\\)"):
        predict_video(model, lambda idx: video[idx][..., 0], len(video))


def _mmaction2_state(config_name: str, fc_shape: tuple[int, int]) -> dict:
    """A Recognizer3D state dict built from mmaction2's own backbone key names and shapes (the AVA checkpoints'
    backbones are the Kinetics recognizers') plus ``cls_head.fc_cls``."""
    torch.manual_seed(0)
    state = {k: torch.randn(v) if v else torch.tensor(3) for k, v in SHAPES[config_name].items()
             if k.startswith("backbone.")}
    state["cls_head.fc_cls.weight"] = torch.randn(fc_shape)
    state["cls_head.fc_cls.bias"] = torch.randn(fc_shape[0])
    return state


def test_mmaction2_slowonly_recognizer_keys_load_completely():
    state = _mmaction2_state("slowonly_k400-pre-r50_8xb8-8x8x1-10e_ava-kinetics-rgb.py", (400, 2048))
    assert detect_source({"state_dict": state, "meta": {}}) == "mmaction2" and detect_source(state) == "mmaction2"
    model = create_model("slowonly_r50_8x8_kinetics")
    report = load_state_dict(model, state, "mmaction2")
    assert report.ok and not report.missing and not report.unexpected and not report.mismatched
    torch.testing.assert_close(model.head.fc_cls.weight, state["cls_head.fc_cls.weight"])
    torch.testing.assert_close(model.backbone.layer4[2].conv3.bn.running_var,
                               state["backbone.layer4.2.conv3.bn.running_var"])


def test_mmaction2_slowfast_recognizer_keys_load_and_mismatches_are_reported():
    state = _mmaction2_state("slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py", (400, 2304))
    cfg = VideoClassifierConfig(backbone_type="slowfast", backbone=SlowFastConfig(spatial_strides=(1, 2, 2, 2)))
    model = VideoClassifier(cfg)
    report = load_state_dict(model, state, "mmaction2", dry_run=True)
    assert report.ok, report.format()
    state["cls_head.extra.weight"] = torch.zeros(1)
    del state["backbone.fast_path.conv1.bn.weight"]
    report = load_state_dict(model, state, "mmaction2", dry_run=True)
    assert report.unexpected == ["cls_head.extra.weight"]
    assert report.missing == ["backbone.fast_path.conv1.bn.weight"]


def test_hand_renamed_state_dict_reproduces_outputs():
    model = tiny()
    # the mmaction2 layout written by hand: the head lives under cls_head
    foreign = {("cls_head." + k[len("head."):] if k.startswith("head.") else k): v.clone()
               for k, v in model.state_dict().items()}
    assert "cls_head.fc_cls.weight" in foreign
    other = VideoClassifier(tiny().cfg)
    torch.manual_seed(5)
    for p in other.parameters():
        torch.nn.init.normal_(p)
    report = load_state_dict(other, foreign, "mmaction2")
    assert report.ok
    clips = torch.randn(1, 3, 4, 32, 32)
    torch.testing.assert_close(other.eval()(clips), model(clips))


def test_save_load_round_trip(tmp_path):
    model = tiny(dropout=0.3)
    save_model(model, tmp_path / "vc.pt")
    loaded = load_model(tmp_path / "vc.pt")
    assert type(loaded) is VideoClassifier and loaded.cfg == model.cfg
    assert loaded.cfg.class_names == ["a", "b", "c"]
    clips = torch.randn(2, 3, 4, 32, 40)
    torch.testing.assert_close(loaded(clips), model(clips))


def test_load_mmaction2_recognizer_infers_the_config(tmp_path):
    from partwise.errors import InputError
    from partwise.models.video_classifier import load_mmaction2_recognizer

    torch.manual_seed(0)
    source = VideoClassifier(VideoClassifierConfig(backbone=ResNet3dConfig(base_channels=8,
                                                                           spatial_strides=(1, 2, 2, 2)),
                                                   num_classes=7)).eval()
    state = {("cls_head." + k[len("head."):] if k.startswith("head.") else k): v
             for k, v in source.state_dict().items()}
    torch.save({"meta": {"mmaction2_version": "1.2.0"}, "state_dict": state}, tmp_path / "rec.pth")
    names = [f"c{i}" for i in range(7)]
    model, report = load_mmaction2_recognizer(tmp_path / "rec.pth", class_names=names, num_clips=2)
    assert report.ok and model.cfg.backbone.depth == 50 and model.cfg.backbone.base_channels == 8
    assert model.cfg.num_classes == 7 and model.cfg.class_names == names and model.cfg.num_clips == 2
    clips = torch.randn(1, 3, 4, 64, 64)
    torch.testing.assert_close(model(clips), source(clips))
    del state["cls_head.fc_cls.weight"]
    torch.save({"state_dict": state}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match="bad.pth: not an mmaction2 recognizer checkpoint"):
        load_mmaction2_recognizer(tmp_path / "bad.pth")


def test_models_inspect_reads_an_mmaction2_recognizer(tmp_path):
    from partwise.models.cli import inspect_checkpoint

    source = VideoClassifier(VideoClassifierConfig(backbone=ResNet3dConfig(base_channels=8), num_classes=5))
    state = {("cls_head." + k[len("head."):] if k.startswith("head.") else k): v
             for k, v in source.state_dict().items()}
    torch.save({"meta": {"mmaction2_version": "1.2.0"}, "state_dict": state}, tmp_path / "rec.pth")
    info = inspect_checkpoint(str(tmp_path / "rec.pth"))
    assert info["source"] == "mmaction2" and info["ok"]
    assert info["model"] == {"family": "video_classifier", "num_classes": 5}
