"""Multiblock 3D masking (V-JEPA) as index tensors, sampled and seeded in the collate function.

A mask is a pair of index tensors into the ``(t h w)``-ordered token sequence: ``masks_enc`` (B, Nc), the
context tokens the encoder keeps, and ``masks_pred`` (B, Nt), the target tokens the predictor must fill in.
Each mask spec places ``num_blocks`` boxes of ``int(h * w * spatial_scale)`` patches (aspect ratio drawn in
``aspect``) spanning ``temporal_scale`` of the clip, starting anywhere in time (``temporal_anchor="random"``,
V-JEPA's multiblock) or ending at the last tubelet (``"end"``: the future given the past); target = union of
the boxes, context = complement.
The box size is drawn once per batch, the box positions per sample; every list is cut to the batch
minimum so the tensors are rectangular. The generator of a batch is seeded by (seed, first position), so
masks are identical on resume and do not depend on the number of loader workers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# Resampling a sample whose boxes cover every token; only reachable with huge scales on tiny grids.
_MAX_TRIES = 100


@dataclass(frozen=True)
class MaskSpec:
    """One mask type. ``spatial_scale``: area fraction of each box; ``temporal_scale``: fraction of the clip."""

    num_blocks: int
    spatial_scale: float
    temporal_scale: float = 1.0
    aspect: tuple[float, float] = (0.75, 1.5)
    temporal_anchor: str = "random"
    name: str = "custom"  # how logs and errors call this mask type

    def __post_init__(self):
        if self.num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {self.num_blocks}")
        if not 0 < self.spatial_scale <= 1 or not 0 < self.temporal_scale <= 1:
            raise ValueError(f"spatial_scale and temporal_scale must be in (0, 1], got "
                             f"{self.spatial_scale} and {self.temporal_scale}")
        if not 0 < self.aspect[0] <= self.aspect[1]:
            raise ValueError(f"aspect must be (low, high) with 0 < low <= high, got {self.aspect}")
        if self.temporal_anchor not in ("random", "end"):
            raise ValueError(f"temporal_anchor must be 'random' or 'end', got {self.temporal_anchor!r}")


SHORT_RANGE = MaskSpec(num_blocks=8, spatial_scale=0.15, name="short-range")
LONG_RANGE = MaskSpec(num_blocks=2, spatial_scale=0.7, name="long-range")
VJEPA_SPECS = (SHORT_RANGE, LONG_RANGE)
# The second half of the clip, whole frames: the predictor learns the future from the past, which the
# violation-of-expectation test asks of it (multiblock boxes span the whole clip, so they never do).
FUTURE = MaskSpec(num_blocks=1, spatial_scale=1.0, temporal_scale=0.5, aspect=(1.0, 1.0), temporal_anchor="end",
                  name="future")
DEFAULT_SPECS = (*VJEPA_SPECS, FUTURE)


def apply_masks(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Keep the tokens ``idx`` (B, K) of ``x`` (B, N, D) -> (B, K, D), with one gather."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def block_size(spec: MaskSpec, grid: tuple[int, int, int], rng: np.random.Generator) -> tuple[int, int, int]:
    """Draw the (t, h, w) extent of one box for ``spec`` on a ``(t, h, w)`` token grid."""
    duration, height, width = grid
    t = max(1, int(duration * spec.temporal_scale))
    if spec.spatial_scale == 1.0:  # whole frames, whatever the grid's aspect
        return t, height, width
    area = int(height * width * spec.spatial_scale)
    ratio = rng.uniform(*spec.aspect)
    h = min(max(1, round(math.sqrt(area * ratio))), height)
    w = min(max(1, round(math.sqrt(area / ratio))), width)
    return t, h, w


def sample_target_mask(size: tuple[int, int, int], num_blocks: int, grid: tuple[int, int, int],
                       rng: np.random.Generator, temporal_anchor: str = "random") -> np.ndarray:
    """Boolean (t, h, w) grid, True where a token is masked: the union of ``num_blocks`` boxes of ``size``."""
    duration, height, width = grid
    t, h, w = size
    masked = np.zeros(grid, dtype=bool)
    for _ in range(num_blocks):
        start = duration - t if temporal_anchor == "end" else rng.integers(0, duration - t + 1)
        top = rng.integers(0, height - h + 1)
        left = rng.integers(0, width - w + 1)
        masked[start:start + t, top:top + h, left:left + w] = True
    return masked


def sample_masks(spec: MaskSpec, grid: tuple[int, int, int], batch_size: int,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Context and target indices for one spec: (B, Nc) and (B, Nt) LongTensors, cut to the batch minimum."""
    size = block_size(spec, grid, rng)
    contexts, targets = [], []
    for _ in range(batch_size):
        for _ in range(_MAX_TRIES):
            masked = sample_target_mask(size, spec.num_blocks, grid, rng, spec.temporal_anchor).ravel()
            if not masked.all():
                break
        else:
            raise ValueError(f"mask {spec} covers every token of the {grid} grid; lower spatial_scale "
                             f"or num_blocks")
        contexts.append(np.flatnonzero(~masked))
        targets.append(np.flatnonzero(masked))
    keep_ctx = min(len(c) for c in contexts)
    keep_tgt = min(len(t) for t in targets)
    enc = torch.from_numpy(np.stack([c[:keep_ctx] for c in contexts])).long()
    pred = torch.from_numpy(np.stack([t[:keep_tgt] for t in targets])).long()
    return enc, pred


def masked_fractions(masks_pred: Sequence[torch.Tensor], num_tokens: int) -> list[float]:
    """Fraction of the clip's tokens the predictor must fill in, per spec (after truncation)."""
    return [m.shape[1] / num_tokens for m in masks_pred]


def context_fractions(masks_enc: Sequence[torch.Tensor], num_tokens: int) -> list[float]:
    """Fraction of the clip's tokens the encoder sees, per spec (after truncation)."""
    return [m.shape[1] / num_tokens for m in masks_enc]


class MultiBlockMaskCollator:
    """Collate dataset items into a batch with V-JEPA multiblock masks.

    Items are dicts with ``"clip"`` (C, T, H, W) float and ``"position"`` int (the global sample position),
    optionally ``"load_failures"`` int. Returns ``{"clips": (B, C, T, H, W), "positions": (B,),
    "masks_enc": [ (B, Nc) per spec ], "masks_pred": [ (B, Nt) per spec ], "load_failures": int}``.
    """

    def __init__(self, grid: tuple[int, int, int], specs: Sequence[MaskSpec] = DEFAULT_SPECS, seed: int = 0):
        self.grid = tuple(int(g) for g in grid)
        self.specs = tuple(specs)
        self.seed = int(seed)
        if not self.specs:
            raise ValueError("MultiBlockMaskCollator needs at least one MaskSpec")

    def masks_for(self, position: int, batch_size: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The masks of a batch whose first sample sits at global ``position`` (a pure function of both)."""
        rng = np.random.default_rng([self.seed, int(position)])
        masks_enc, masks_pred = [], []
        for spec in self.specs:
            enc, pred = sample_masks(spec, self.grid, batch_size, rng)
            masks_enc.append(enc)
            masks_pred.append(pred)
        return masks_enc, masks_pred

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        if not batch:
            raise ValueError("cannot collate an empty batch")
        positions = torch.tensor([int(item["position"]) for item in batch], dtype=torch.long)
        masks_enc, masks_pred = self.masks_for(int(positions[0]), len(batch))
        return {
            "clips": torch.stack([torch.as_tensor(item["clip"]) for item in batch]),
            "positions": positions,
            "masks_enc": masks_enc,
            "masks_pred": masks_pred,
            "load_failures": sum(int(item.get("load_failures", 0)) for item in batch),
        }
