"""The level-0 video encoder (V-JEPA): tubelet embedding, fixed 3D sin-cos positions, ViT blocks, LayerNorm."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from worldmodel.io.checkpoint import load_safetensors
from worldmodel.models.masks import apply_masks
from worldmodel.models.vit import Block, TubeletEmbed, init_weights, rescale_residual_weights, sincos_3d


@dataclass(frozen=True)
class VideoViTConfig:
    """Encoder and predictor sizes. Clips are (C, frames, image_size, image_size)."""

    width: int
    depth: int
    heads: int
    pred_width: int
    pred_depth: int
    pred_heads: int
    image_size: int = 64
    frames: int = 8
    tubelet: int = 2
    patch: int = 8
    channels: int = 3
    mlp_ratio: float = 4.0

    def __post_init__(self):
        if self.image_size % self.patch or self.frames % self.tubelet:
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch {self.patch} and "
                             f"frames {self.frames} a multiple of tubelet {self.tubelet}")
        for name, width, heads in (("width", self.width, self.heads),
                                   ("pred_width", self.pred_width, self.pred_heads)):
            if width % heads:
                raise ValueError(f"{name} {width} must be divisible by its heads {heads}")

    @property
    def grid(self) -> tuple[int, int, int]:
        """(t, h, w): the token grid of one clip."""
        side = self.image_size // self.patch
        return self.frames // self.tubelet, side, side

    @property
    def num_tokens(self) -> int:
        t, h, w = self.grid
        return t * h * w


_VIDEO_224 = dict(image_size=224, frames=16, tubelet=2, patch=16, pred_width=384, pred_depth=12, pred_heads=12)

MODEL_PRESETS: dict[str, VideoViTConfig] = {
    # CPU default: 4 x 8 x 8 = 256 tokens per clip; ~2.7M encoder parameters, a batch of 16 clips trains
    # (forward + backward + EMA) in ~0.4 s on 2 CPU threads.
    "tiny": VideoViTConfig(width=192, depth=6, heads=4, pred_width=96, pred_depth=4, pred_heads=4),
    "small": VideoViTConfig(width=384, depth=12, heads=6, **_VIDEO_224),
    "base": VideoViTConfig(width=768, depth=12, heads=12, **_VIDEO_224),
    "large": VideoViTConfig(width=1024, depth=24, heads=16, **_VIDEO_224),
}


def get_preset(name: str, **overrides) -> VideoViTConfig:
    """The named preset, with optional field overrides (e.g. ``image_size=32``)."""
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known presets: {', '.join(MODEL_PRESETS)}")
    return replace(MODEL_PRESETS[name], **overrides)


class VideoEncoder(nn.Module):
    """(B, C, T, H, W) clips -> (B, N, D) token features, or (B, K, D) for the kept tokens ``keep`` (B, K)."""

    def __init__(self, cfg: VideoViTConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = TubeletEmbed(cfg.channels, cfg.width, cfg.tubelet, cfg.patch)
        device = self.patch_embed.proj.weight.device  # follows a `with torch.device(...)` context
        self.register_buffer("pos_embed", sincos_3d(cfg.width, cfg.grid).to(device), persistent=False)
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width, eps=1e-6)
        self.apply(init_weights)
        rescale_residual_weights(self.blocks)

    @property
    def grid(self) -> tuple[int, int, int]:
        return self.cfg.grid

    @property
    def num_tokens(self) -> int:
        return self.cfg.num_tokens

    @property
    def width(self) -> int:
        return self.cfg.width

    def embed(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, N, D): tubelet tokens with their positions added.

        ``T`` may be shorter than ``cfg.frames`` (a multiple of the tubelet): positions are the first
        ``T / tubelet`` time slices of the (t h w)-ordered table. One observation is encoded as its frame
        repeated to one tubelet (as V-JEPA 2-AC does).
        """
        frames = clips.shape[2]
        size = self.cfg.image_size
        if (clips.ndim != 5 or tuple(clips.shape[3:]) != (size, size) or not 0 < frames <= self.cfg.frames
                or frames % self.cfg.tubelet):
            raise ValueError(f"encoder expects clips (B, {self.cfg.channels}, T, {size}, {size}) with T a "
                             f"multiple of {self.cfg.tubelet} up to {self.cfg.frames}, got {tuple(clips.shape)}")
        _, h, w = self.cfg.grid
        pos = self.pos_embed[: frames // self.cfg.tubelet * h * w]
        return self.patch_embed(clips) + pos.to(clips.dtype)

    def forward(self, clips: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(clips)
        return self.encode_tokens(x if keep is None else apply_masks(x, keep))

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Embedded tokens ``(B, n, D)`` (``embed``'s output, or the kept subset of it) -> features ``(B, n, D)``."""
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)


def load_exported_encoder(path: str | Path) -> tuple[VideoEncoder, dict]:
    """The frozen encoder in ``encoder.safetensors`` (eval mode) and the record stored with it."""
    state, meta = load_safetensors(path)
    try:
        cfg = VideoViTConfig(**meta["record"]["model"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path} has no model config in its metadata ({error}); re-export it with "
                         "`python -m experiments.pretrain stages=[video]`") from None
    encoder = VideoEncoder(cfg)
    encoder.load_state_dict(state)
    return encoder.eval(), meta["record"]
