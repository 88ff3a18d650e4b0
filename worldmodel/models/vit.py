"""Vision-transformer building blocks for video: tubelet embedding, 3D sin-cos positions, pre-LN blocks.

Token order everywhere is ``(t h w)``: time-major, then rows, then columns.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

INIT_STD = 0.02


def sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """(N,) positions -> (N, dim) fixed embedding: [sin(p * w_k), cos(p * w_k)] with w_k = 1e4^(-k / (dim/2))."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even dimension, got {dim}")
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2))
    angles = np.outer(positions.astype(np.float64), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_3d(dim: int, grid: tuple[int, int, int]) -> torch.Tensor:
    """Fixed 3D sin-cos positions for a ``(t, h, w)`` token grid -> (t*h*w, dim) float32.

    V-JEPA's "uniform power" layout: each of T, H and W gets its own frequency band of
    ``2 * ceil(dim / 6)`` channels; the concatenation [T | H | W] is cut to ``dim`` channels.
    """
    t, h, w = grid
    band = 2 * math.ceil(dim / 6)
    tt, hh, ww = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    table = np.concatenate([sincos_1d(band, tt.ravel()), sincos_1d(band, hh.ravel()),
                            sincos_1d(band, ww.ravel())], axis=1)[:, :dim]
    return torch.from_numpy(table).float()


class TubeletEmbed(nn.Module):
    """(B, C, T, H, W) -> (B, t*h*w, D): a Conv3d with kernel = stride = (tubelet, patch, patch).

    Its weights are a ``Conv3d``'s, but it runs as one matrix product over the cut-out tubelets: with kernel equal
    to stride the two compute the same, and a GPU's convolution kernels for this shape skip its tensor cores.
    """

    def __init__(self, channels: int, width: int, tubelet: int, patch: int):
        super().__init__()
        self.tubelet, self.patch = tubelet, patch
        self.proj = nn.Conv3d(channels, width, kernel_size=(tubelet, patch, patch),
                              stride=(tubelet, patch, patch))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        tubelets = rearrange(clips, "b c (t pt) (h ph) (w pw) -> b (t h w) (c pt ph pw)",
                             pt=self.tubelet, ph=self.patch, pw=self.patch)
        return F.linear(tubelets, self.proj.weight.flatten(1), self.proj.bias)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D)."""
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


class MLP(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(LN(x)), then x + mlp(LN(x)). (B, N, D) -> (B, N, D)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = MLP(width, int(width * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def init_weights(module: nn.Module) -> None:
    """trunc_normal(0.02) for Linear/Conv weights, zero biases, unit LayerNorm (use with ``Module.apply``)."""
    if isinstance(module, (nn.Linear, nn.Conv3d)):
        nn.init.trunc_normal_(module.weight, std=INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


@torch.no_grad()
def rescale_residual_weights(blocks: nn.ModuleList) -> None:
    """Divide each block's residual output weights (attn.proj, mlp.fc2) by sqrt(2 * layer_id), 1-based."""
    for layer_id, block in enumerate(blocks, start=1):
        block.attn.proj.weight.div_(math.sqrt(2.0 * layer_id))
        block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer_id))
