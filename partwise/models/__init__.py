"""Model constructors: ``MODELS`` maps a name to a plain function returning an ``nn.Module``.

``create_model(name, **kwargs)`` calls it. AVA detectors (``ava_detector.py``) take the detector-config fields as
keyword overrides, e.g. ``create_model("slowonly_r50_8x8", context=True, temporal_pool="max", mlp_head=True,
focal_gamma=1.0)`` is the mmaction2 "tricks" setting.
"""
from __future__ import annotations

from dataclasses import fields, replace
from typing import Callable

from torch import nn

from partwise.models.ava_detector import AVADetector, AVADetectorConfig
from partwise.models.resnet3d import ResNet3dConfig, SlowFastConfig

#: mmaction2 ``non_local`` flags of the SlowOnly R50-NL AVA configs (res3 blocks 0, 2; res4 blocks 0, 2, 4).
R50_NON_LOCAL = ((0, 0, 0), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 0, 0))
#: ST-Activity2Vec (PySlowFast R101): non-local after res4 blocks 6, 13 and 20 of the slow pathway.
R101_RES4_NON_LOCAL = ((0,) * 3, (0,) * 4, tuple(int(i in (6, 13, 20)) for i in range(23)), (0,) * 3)


def _detector(backbone_type: str, backbone, clip_len: int, frame_interval: int, overrides: dict) -> AVADetector:
    known = {f.name for f in fields(AVADetectorConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown detector option(s): {', '.join(unknown)}")
    cfg = AVADetectorConfig(backbone_type=backbone_type, backbone=backbone, clip_len=clip_len,
                            frame_interval=frame_interval)
    return AVADetector(replace(cfg, **overrides))


def _slowonly(depth: int, clip_len: int, frame_interval: int, non_local=(0, 0, 0, 0)) -> Callable[..., nn.Module]:
    def build(base_channels: int = 64, **overrides) -> AVADetector:
        backbone = ResNet3dConfig(depth=depth, base_channels=base_channels, non_local=non_local)
        return _detector("slowonly", backbone, clip_len, frame_interval, overrides)

    build.__doc__ = (f"AVA detector on mmaction2 SlowOnly R{depth}{'-NL' if any(non_local) else ''} "
                     f"{clip_len}x{frame_interval} (output stride 16).")
    return build


def _slowfast(depth: int, rate: int, speed: int, fusion_kernel: int) -> Callable[..., nn.Module]:
    def build(base_channels: int = 64, non_local: bool = False, **overrides) -> AVADetector:
        backbone = SlowFastConfig(depth=depth, resample_rate=rate, speed_ratio=speed, fusion_kernel=fusion_kernel,
                                  base_channels=base_channels,
                                  slow_non_local=R101_RES4_NON_LOCAL if non_local else (0, 0, 0, 0))
        # Both SlowFast AVA configs sample 32 frames every 2nd frame; "4x16" / "8x8" name the slow path.
        return _detector("slowfast", backbone, 32, 2, overrides)

    build.__doc__ = f"AVA detector on mmaction2 SlowFast R{depth} (32 frames, slow T={32 // rate}, alpha={speed})."
    return build


def _activity2vec(**overrides) -> nn.Module:
    """Activity2Vec pasta_res50 (HAKE): 93 PaSta, 157 verbs, activity vector with the shipped MiniLM matrix."""
    from partwise.models.activity2vec import Activity2Vec, Activity2VecConfig, load_language_matrix

    return Activity2Vec(Activity2VecConfig(**overrides), load_language_matrix())


def _clip(patch: int) -> Callable[..., nn.Module]:
    def build() -> nn.Module:
        from partwise.models.clip import CLIP, clip_vit_b16_config, clip_vit_b32_config

        return CLIP(clip_vit_b16_config() if patch == 16 else clip_vit_b32_config())

    build.__doc__ = f"OpenAI CLIP ViT-B/{patch} (image and text towers, OpenAI state-dict layout)."
    return build


def _clip_activity2vec(hidden: int = 512, freeze_backbone: bool = True) -> nn.Module:
    """CLIP-Activity2Vec: frozen CLIP ViT-B/16 image tower + 8 MLP heads (157 verbs, 6 PaSta parts, part activity)."""
    from partwise.models.clip import ClipActivity2Vec, ClipActivity2VecConfig

    return ClipActivity2Vec(ClipActivity2VecConfig(hidden=hidden, freeze_backbone=freeze_backbone))


def _tin(part_level: bool) -> Callable[..., nn.Module]:
    def build(**overrides) -> nn.Module:
        from partwise.models.tin import TIN, TINConfig

        return TIN(TINConfig(part_level=part_level, **overrides))

    build.__doc__ = ("TIN++ with part-level interactiveness (10 HAKE parts)." if part_level else
                     "TIN (ResNet-50): iCAN-style HOI classifier + interactiveness discriminator, NIS/LIS.")
    return build


def _st_activity2vec(**overrides) -> nn.Module:
    """ST-Activity2Vec: SlowFast R101 8x8 + non-local, 87 HAKE-AVA PaSta heads, PaSta-gated 80 AVA actions."""
    from partwise.models.st_activity2vec import STActivity2Vec, STActivity2VecConfig

    return STActivity2Vec(STActivity2VecConfig(**overrides))


def _person_detector(**overrides) -> nn.Module:
    """Small CenterNet-style person detector: narrow ResNet-18 trunk, stride-4 heatmap + box size/offset heads."""
    from partwise.models.person_detector import PersonDetector, PersonDetectorConfig

    return PersonDetector(PersonDetectorConfig(**overrides))


def _video_classifier(kind: str) -> Callable[..., nn.Module]:
    def build(**overrides) -> nn.Module:
        from partwise.models.video_classifier import (VideoClassifier, kinetics_slowonly_r50_8x8_config,
                                                      synth_video_classifier_config)

        base = kinetics_slowonly_r50_8x8_config() if kind == "kinetics" else synth_video_classifier_config()
        if "num_classes" in overrides and "class_names" not in overrides:
            overrides["class_names"] = []  # placeholders for the new count
        return VideoClassifier(replace(base, **overrides))

    build.__doc__ = ("Video classifier: mmaction2 SlowOnly R50 8x8x1 Kinetics-400 recognizer (I3D head, 400 classes)."
                     if kind == "kinetics" else
                     "Video classifier: narrow SlowOnly (base width 8) for the 4 synthetic video classes.")
    return build


MODELS: dict[str, Callable[..., nn.Module]] = {
    "activity2vec_res50": _activity2vec,
    "clip_vit_b16": _clip(16),
    "clip_vit_b32": _clip(32),
    "clip_activity2vec_b16": _clip_activity2vec,
    "tin_res50": _tin(False),
    "tin_res50_part": _tin(True),
    "st_activity2vec_r101": _st_activity2vec,
    "person_detector": _person_detector,
    "slowonly_r50_4x16": _slowonly(50, 4, 16),
    "slowonly_r50_8x8": _slowonly(50, 8, 8),
    "slowonly_r50_16x4": _slowonly(50, 16, 4),
    "slowonly_r50_nl_4x16": _slowonly(50, 4, 16, R50_NON_LOCAL),
    "slowonly_r50_nl_8x8": _slowonly(50, 8, 8, R50_NON_LOCAL),
    "slowonly_r101_8x8": _slowonly(101, 8, 8),
    "slowfast_r50_4x16": _slowfast(50, 8, 8, 5),
    "slowfast_r50_8x8": _slowfast(50, 4, 4, 7),
    "slowfast_r101_8x8": _slowfast(101, 4, 4, 7),
    "slowonly_r50_8x8_kinetics": _video_classifier("kinetics"),
    "video_classifier_synth": _video_classifier("synth"),
}


def create_model(name: str, **kwargs) -> nn.Module:
    """Build ``MODELS[name](**kwargs)``; unknown names raise ``KeyError`` listing the known ones."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)
