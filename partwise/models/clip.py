"""CLIP ViT image and text towers (OpenAI layout) and CLIP-Activity2Vec.

Module and parameter names follow the OpenAI CLIP state dict exactly (``visual.conv1.weight``,
``visual.transformer.resblocks.N.attn.in_proj_weight``, ``token_embedding.weight``, ...), so an OpenAI checkpoint
loads with no key mapping; :func:`load_openai_state_dict` still reports missing, unexpected and mis-shaped keys.

CLIP-Activity2Vec (HAKE-Action-Torch, branch CLIP-Activity2Vec; ``hake.md`` §4): a frozen CLIP ViT-B/16 visual tower
and eight independent 3-layer MLP heads (512 -> 512 -> 512 -> C, ReLU) for the 157 verbs, the six PaSta parts of
the 93 list (16/15/6/34/8/14) and a 6-way "part is active" head. The original is image-level (whole image resized to
224x224); :meth:`ClipActivity2Vec.forward_instances` adds the instance level: person crops from boxes.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

#: CLIP's input normalization (RGB, [0, 1] scale).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class VisionConfig:
    image_size: int = 224
    patch_size: int = 16
    width: int = 768
    layers: int = 12
    head_width: int = 64


@dataclass
class TextConfig:
    context_length: int = 77
    vocab_size: int = 49408
    width: int = 512
    heads: int = 8
    layers: int = 12


@dataclass
class ClipConfig:
    embed_dim: int = 512
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig | None = field(default_factory=TextConfig)

    @classmethod
    def from_dict(cls, values: dict) -> "ClipConfig":
        text = values.get("text")
        return cls(
            embed_dim=values.get("embed_dim", 512),
            vision=VisionConfig(**values.get("vision", {})),
            text=None if text is None else TextConfig(**text),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def clip_vit_b16_config() -> ClipConfig:
    return ClipConfig(512, VisionConfig(224, 16, 768, 12, 64), TextConfig())


def clip_vit_b32_config() -> ClipConfig:
    return ClipConfig(512, VisionConfig(224, 32, 768, 12, 64), TextConfig())


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``: the activation the OpenAI weights were trained with (not exact GELU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class LayerNormFP32(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype (half-precision inputs stay stable)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a packed input projection (``in_proj_weight`` (3W, W)), as in the OpenAI
    checkpoints. Input and output (B, L, W); ``mask`` is an additive (L, L) mask."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.view(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, width))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = LayerNormFP32(width)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = LayerNormFP32(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, 4 * width)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(4 * width, width)),
        ]))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, mask)
        return x


class VisionTransformer(nn.Module):
    """CLIP image tower. ``forward(images (B, 3, S, S) normalized) -> (B, embed_dim)`` (unnormalized features)."""

    def __init__(self, config: VisionConfig, embed_dim: int):
        super().__init__()
        width, grid = config.width, config.image_size // config.patch_size
        self.image_size, self.patch_size = config.image_size, config.patch_size
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=config.patch_size, stride=config.patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = LayerNormFP32(width)
        self.transformer = Transformer(width, config.layers, width // config.head_width)
        self.ln_post = LayerNormFP32(width)
        self.proj = nn.Parameter(scale * torch.randn(width, embed_dim))

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """All output tokens after the transformer, (B, 1 + grid^2, width), class token first."""
        x = self.conv1(images).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        return self.transformer(self.ln_pre(x))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.ln_post(self.tokens(images)[:, 0]) @ self.proj


class TextTransformer(nn.Module):
    """CLIP text tower. ``forward(tokens (B, 77) int64 BPE ids) -> (B, embed_dim)``: features at the end-of-text
    token (the largest id in each row, as in CLIP)."""

    def __init__(self, config: TextConfig, embed_dim: int):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, config.width))
        self.transformer = Transformer(config.width, config.layers, config.heads)
        self.ln_final = LayerNormFP32(config.width)
        self.text_projection = nn.Parameter(torch.empty(config.width, embed_dim))
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=config.width ** -0.5)
        causal = torch.full((config.context_length, config.context_length), float("-inf")).triu_(1)
        self.register_buffer("causal_mask", causal, persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.ln_final(self.transformer(x, self.causal_mask.to(x.dtype)))
        eot = tokens.argmax(dim=-1)
        return x[torch.arange(x.shape[0]), eot] @ self.text_projection


class CLIP(nn.Module):
    """CLIP with the OpenAI state-dict layout: ``visual.*`` is the image tower; the text tower's parameters sit at the
    top level (``token_embedding``, ``positional_embedding``, ``transformer``, ``ln_final``, ``text_projection``)."""

    def __init__(self, config: ClipConfig):
        super().__init__()
        self.config = config
        self.visual = VisionTransformer(config.vision, config.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(4.6052))  # log(100)
        self.has_text = config.text is not None
        if self.has_text:
            text = TextTransformer(config.text, config.embed_dim)
            # Registered at the top level so parameter names match OpenAI's.
            self.token_embedding = text.token_embedding
            self.positional_embedding = text.positional_embedding
            self.transformer = text.transformer
            self.ln_final = text.ln_final
            self.text_projection = text.text_projection
            self.register_buffer("causal_mask", text.causal_mask, persistent=False)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.visual(images)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        if not self.has_text:
            raise RuntimeError("this CLIP was built without a text tower")
        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.ln_final(self.transformer(x, self.causal_mask.to(x.dtype)))
        return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ self.text_projection

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Image-text logits (B_img, B_txt), scaled by exp(logit_scale) as in CLIP."""
        image = F.normalize(self.encode_image(images), dim=-1)
        text = F.normalize(self.encode_text(tokens), dim=-1)
        return self.logit_scale.exp() * image @ text.t()


def config_from_openai_state_dict(state_dict: dict) -> ClipConfig:
    """Infer the architecture from an OpenAI CLIP state dict (ViT variants)."""
    if "visual.conv1.weight" not in state_dict:
        raise KeyError("not an OpenAI CLIP ViT state dict: 'visual.conv1.weight' is missing")
    conv = state_dict["visual.conv1.weight"]
    width, patch = conv.shape[0], conv.shape[-1]
    grid = round((state_dict["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    layers = len({k.split(".")[3] for k in state_dict if k.startswith("visual.transformer.resblocks.")})
    embed_dim = state_dict["visual.proj"].shape[1]
    text = None
    if "token_embedding.weight" in state_dict:
        text_width = state_dict["ln_final.weight"].shape[0]
        text_layers = len({k.split(".")[2] for k in state_dict if k.startswith("transformer.resblocks.")})
        text = TextConfig(
            context_length=state_dict["positional_embedding"].shape[0],
            vocab_size=state_dict["token_embedding.weight"].shape[0],
            width=text_width,
            heads=max(1, text_width // 64),
            layers=text_layers,
        )
    # Head counts are not recorded in the weights; OpenAI's ViTs all use 64-wide heads.
    return ClipConfig(embed_dim, VisionConfig(grid * patch, patch, width, layers, 64), text)


def load_openai_state_dict(model: CLIP, state_dict: dict, strict: bool = True):
    """Load an OpenAI-layout CLIP state dict through the checkpoint adapter (source ``openai_clip``); returns its
    :class:`partwise.models.checkpoint.LoadReport` (strict: any missing/unexpected/mis-shaped key raises)."""
    from partwise.models.checkpoint import load_state_dict

    return load_state_dict(model, state_dict, "openai_clip", strict=strict)


#: CLIP-Activity2Vec heads and their output sizes (hake.md §4): verbs over 157, PaSta parts over the 93 list.
CLIP_A2V_HEADS: dict[str, int] = {
    "verb": 157, "foot": 16, "leg": 15, "hip": 6, "hand": 34, "arm": 8, "head": 14, "pasta_binary": 6,
}


def mlp_head(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, hidden),
                         nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))


@dataclass
class ClipActivity2VecConfig:
    clip: ClipConfig = field(default_factory=lambda: ClipConfig(512, VisionConfig(), None))
    hidden: int = 512
    freeze_backbone: bool = True

    @classmethod
    def from_dict(cls, values: dict) -> "ClipActivity2VecConfig":
        values = dict(values)
        if isinstance(values.get("clip"), dict):
            values["clip"] = ClipConfig.from_dict(values["clip"])
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


class ClipActivity2Vec(nn.Module):
    """Frozen CLIP image tower + eight MLP heads. ``forward(images (B,3,224,224) normalized)`` returns a dict of
    logits: ``verb`` (B,157), ``foot``..``head`` (B, n_part), ``pasta_binary`` (B,6), and ``pasta`` (B,93), the six part
    heads concatenated in the order of the 93 list."""

    def __init__(self, config: ClipActivity2VecConfig | None = None):
        super().__init__()
        self.config = config = config or ClipActivity2VecConfig()
        clip_config = config.clip
        self.visual = VisionTransformer(clip_config.vision, clip_config.embed_dim)
        self.heads = nn.ModuleDict({name: mlp_head(clip_config.embed_dim, config.hidden, size)
                                    for name, size in CLIP_A2V_HEADS.items()})
        self.freeze_backbone = config.freeze_backbone
        if self.freeze_backbone:
            self.visual.requires_grad_(False)

    def train(self, mode: bool = True) -> "ClipActivity2Vec":
        super().train(mode)
        if self.freeze_backbone:
            self.visual.eval()
        return self

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if self.freeze_backbone:
            with torch.no_grad():
                return self.visual(images)
        return self.visual(images)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.features(images).float()
        out = {name: head(feats) for name, head in self.heads.items()}
        out["pasta"] = torch.cat([out[p] for p in ("foot", "leg", "hip", "hand", "arm", "head")], dim=1)
        return out

    def forward_instances(self, images: torch.Tensor, boxes: torch.Tensor) -> dict[str, torch.Tensor]:
        """Instance level: ``boxes`` (K, 5) ``[batch_index, x1, y1, x2, y2]`` in pixels of ``images`` (B,3,H,W);
        each person crop is resized to the tower's input size (bilinear) and classified like an image."""
        from partwise.ops.roi_align import roi_align

        size = self.config.clip.vision.image_size
        crops = roi_align(images, boxes.to(images.dtype), output_size=(size, size), spatial_scale=1.0,
                          sampling_ratio=1, aligned=True)
        return self.forward(crops)


def load_clip_backbone_into(model: ClipActivity2Vec, openai_state_dict: dict, strict: bool = True):
    """Load the ``visual.*`` part of an OpenAI CLIP state dict into a CLIP-Activity2Vec (the text tower's keys are
    ignored, the heads stay as they are). Strict: every ``visual.*`` parameter must be present with its shape."""
    from partwise.models.checkpoint import load_state_dict

    visual = {k: v for k, v in openai_state_dict.items() if k.startswith("visual.")}
    report = load_state_dict(model, visual, "openai_clip", strict=False, dry_run=True)
    backbone_missing = [k for k in report.missing if k.startswith("visual.")]
    if strict and (backbone_missing or report.unexpected or report.mismatched):
        raise ValueError(f"CLIP visual weights do not match: missing {backbone_missing[:5]}, unexpected "
                         f"{report.unexpected[:5]}, mis-shaped {report.mismatched[:5]}")
    load_state_dict(model, visual, "openai_clip", strict=False)
    report.missing = backbone_missing
    return report
