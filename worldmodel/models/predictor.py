"""The V-JEPA predictor: a narrow ViT that fills in target tokens from the context tokens."""

from __future__ import annotations

import torch
from torch import nn

from worldmodel.models.encoder import VideoViTConfig
from worldmodel.models.masks import apply_masks
from worldmodel.models.vit import Block, init_weights, rescale_residual_weights, sincos_3d


class VideoPredictor(nn.Module):
    """Predict encoder features at ``target_idx`` from context features at ``context_idx``.

    context (B, Nc, D), context_idx (B, Nc), target_idx (B, Nt) -> (B, Nt, D). The sequence
    [embedded context ; mask token + position at each target] runs through ``pred_depth`` blocks of width
    ``pred_width``; only the target outputs are projected back to D. One learned, zero-initialised mask
    token per mask type (``mask_type`` picks it).
    """

    def __init__(self, cfg: VideoViTConfig, num_mask_types: int = 2):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.width, cfg.pred_width)
        self.mask_tokens = nn.Parameter(torch.zeros(num_mask_types, 1, 1, cfg.pred_width))
        device = self.embed.weight.device  # follows a `with torch.device(...)` context
        self.register_buffer("pos_embed", sincos_3d(cfg.pred_width, cfg.grid).to(device), persistent=False)
        self.blocks = nn.ModuleList(Block(cfg.pred_width, cfg.pred_heads, cfg.mlp_ratio)
                                    for _ in range(cfg.pred_depth))
        self.norm = nn.LayerNorm(cfg.pred_width, eps=1e-6)
        self.proj = nn.Linear(cfg.pred_width, cfg.width)
        self.apply(init_weights)
        rescale_residual_weights(self.blocks)

    def forward(self, context: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor,
                mask_type: int = 0) -> torch.Tensor:
        if not 0 <= mask_type < len(self.mask_tokens):
            raise ValueError(f"mask_type {mask_type} out of range: this predictor has "
                             f"{len(self.mask_tokens)} mask tokens")
        batch = context.shape[0]
        pos = self.pos_embed.to(context.dtype).expand(batch, -1, -1)
        ctx = self.embed(context) + apply_masks(pos, context_idx)
        tgt = self.mask_tokens[mask_type].to(context.dtype) + apply_masks(pos, target_idx)
        x = torch.cat([ctx, tgt], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x[:, context.shape[1]:])
        return self.proj(x)
