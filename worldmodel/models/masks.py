"""Multiblock 3D masking (V-JEPA) as index tensors with a fixed token count per mask type, seeded in collate.

A mask is a pair of index tensors into the ``(t h w)``-ordered token sequence: ``masks_enc`` (B, Nc), the
context tokens the encoder keeps, and ``masks_pred`` (B, Nt), the target tokens the predictor must fill in.
Each mask spec places ``num_blocks`` boxes of ``int(h * w * spatial_scale)`` patches (aspect ratio drawn in
``aspect``) spanning ``temporal_scale`` of the clip, starting anywhere in time (``temporal_anchor="random"``,
V-JEPA's multiblock) or ending at the last tubelet (``"end"``: the future given the past); target = union of
the boxes, context = complement.

V-JEPA's collation (``sample_masks``, kept as the reference) draws the box size once per batch and the positions
per sample, then cuts every sample's lists to the batch minimum: Nc and Nt change from batch to batch, and each
new size recompiles a ``torch.compile``d training step. The collator keeps V-JEPA's numbers but fixes them:
- ``mask_counts``: Nc and Nt of a spec on a grid are the means of ``sample_masks``'s cut sizes at
  ``REFERENCE_BATCH`` clips (Monte Carlo with a fixed seed, computed once per process), i.e. what V-JEPA's
  collator gives the default batch of 16 on average (``tests/test_masks.py`` pins the fractions);
- ``sample_fixed_masks``: boxes drawn as V-JEPA does (size per batch, positions per sample); per sample the
  targets are Nt random tokens of the union and the context Nc random tokens of the rest. A union too small for
  Nt grows by random units next to it, one too large to leave Nc shrinks by random units on its edge. A unit is
  one (h, w) cell over the time span every box shares (``temporal_scale`` 1, or the ``"end"`` anchor), else one
  token: masked regions keep spanning the boxes' time, and no context token lies in a masked tube.
Random subsets, not V-JEPA's cut (which keeps the first indices: it drops the last rows of the last frames), so
context and targets spread over the whole clip. The shapes are static: ``torch.compile`` compiles once.
The generator of a batch is seeded by (seed, first position), so masks are identical on resume and do not
depend on the number of loader workers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# Resampling a sample whose boxes cover every token; only reachable with huge scales on tiny grids.
_MAX_TRIES = 100
# V-JEPA cuts its masks to the minimum of a batch; the fixed counts are the mean cut sizes at this batch size
# (the default video.batch_size), estimated over this many batches.
REFERENCE_BATCH = 16
_COUNT_BATCHES = 256


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
    """V-JEPA's collation, the reference ``mask_counts`` measures: context and target indices for one spec,
    (B, Nc) and (B, Nt) LongTensors, every sample's lists cut to the batch minimum (sizes vary by batch)."""
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


@dataclass(frozen=True)
class MaskCounts:
    """The fixed sizes of one mask type: ``context`` tokens kept (Nc), ``target`` tokens predicted (Nt)."""

    context: int
    target: int


@functools.lru_cache(maxsize=64)
def mask_counts(spec: MaskSpec, grid: tuple[int, int, int], reference_batch: int = REFERENCE_BATCH,
                batches: int = _COUNT_BATCHES, seed: int = 0) -> MaskCounts:
    """Nc and Nt of ``spec`` on ``grid``: the mean sizes of ``sample_masks`` at ``reference_batch`` clips,
    rounded (Monte Carlo over ``batches`` batches from a fixed ``seed``: the same counts on every run)."""
    rng = np.random.default_rng(seed)
    context = target = 0
    for _ in range(batches):
        enc, pred = sample_masks(spec, tuple(grid), reference_batch, rng)
        context += enc.shape[1]
        target += pred.shape[1]
    return MaskCounts(context=max(1, round(context / batches)), target=max(1, round(target / batches)))


def _time_span(spec: MaskSpec, grid: tuple[int, int, int]) -> tuple[int, int] | None:
    """The (start, stop) tubelets every box of ``spec`` covers, or None when boxes start at random times."""
    duration = grid[0]
    t = max(1, int(duration * spec.temporal_scale))
    if spec.temporal_anchor == "end" or t == duration:
        return duration - t, duration
    return None


def _touching(mask: np.ndarray) -> np.ndarray:
    """Cells next to a True cell of ``mask`` along any axis (itself excluded unless a neighbour is True)."""
    out = np.zeros_like(mask)
    for axis in range(mask.ndim):
        head, tail = [slice(None)] * mask.ndim, [slice(None)] * mask.ndim
        head[axis], tail[axis] = slice(1, None), slice(None, -1)
        out[tuple(head)] |= mask[tuple(tail)]
        out[tuple(tail)] |= mask[tuple(head)]
    return out


def _fit_units(mask: np.ndarray, low: int, high: int, rng: np.random.Generator) -> np.ndarray:
    """``mask`` with random units added next to it until it has ``low`` True units, or removed from its edge until
    it has at most ``high``."""
    mask = mask.copy()
    while mask.sum() < low:
        grow = _touching(mask) & ~mask
        mask.flat[rng.choice(np.flatnonzero(grow if grow.any() else ~mask))] = True
    while mask.sum() > high:
        shrink = mask & _touching(~mask)
        mask.flat[rng.choice(np.flatnonzero(shrink if shrink.any() else mask))] = False
    return mask


def fit_union(masked: np.ndarray, counts: MaskCounts, span: tuple[int, int] | None,
              rng: np.random.Generator) -> np.ndarray:
    """The union of boxes ``masked`` (t, h, w) grown or shrunk at its boundary until it holds at least
    ``counts.target`` tokens and leaves at least ``counts.context``; in whole tubes over ``span`` when given."""
    low, high = counts.target, masked.size - counts.context
    if span is not None:
        start, stop = span
        length = stop - start
        low_cells, high_cells = -(-low // length), high // length
        if low_cells <= high_cells:  # whole tubes can land in [low, high]
            out = np.zeros_like(masked)
            out[start:stop] = _fit_units(masked[start], low_cells, high_cells, rng)
            return out
    return _fit_units(masked, low, high, rng)


def sample_fixed_masks(spec: MaskSpec, grid: tuple[int, int, int], batch_size: int, rng: np.random.Generator,
                       counts: MaskCounts) -> tuple[torch.Tensor, torch.Tensor]:
    """Context and target indices with exactly ``counts`` tokens: (B, Nc) and (B, Nt) LongTensors, rows sorted.

    Boxes as in ``sample_masks``; per sample, the union is fitted (``fit_union``), then Nt of its tokens are
    drawn as targets and Nc of the rest as context, uniformly without replacement.
    """
    num_tokens = math.prod(grid)
    if min(counts.context, counts.target) < 1 or counts.context + counts.target > num_tokens:
        raise ValueError(f"mask counts {counts} do not fit a {grid} grid of {num_tokens} tokens")
    size = block_size(spec, grid, rng)
    span = _time_span(spec, grid)
    contexts, targets = [], []
    for _ in range(batch_size):
        masked = fit_union(sample_target_mask(size, spec.num_blocks, grid, rng, spec.temporal_anchor), counts,
                           span, rng).ravel()
        targets.append(np.sort(rng.choice(np.flatnonzero(masked), counts.target, replace=False)))
        contexts.append(np.sort(rng.choice(np.flatnonzero(~masked), counts.context, replace=False)))
    return torch.from_numpy(np.stack(contexts)).long(), torch.from_numpy(np.stack(targets)).long()


def masked_fractions(masks_pred: Sequence[torch.Tensor], num_tokens: int) -> list[float]:
    """Fraction of the clip's tokens the predictor must fill in, per spec."""
    return [m.shape[1] / num_tokens for m in masks_pred]


def context_fractions(masks_enc: Sequence[torch.Tensor], num_tokens: int) -> list[float]:
    """Fraction of the clip's tokens the encoder sees, per spec."""
    return [m.shape[1] / num_tokens for m in masks_enc]


class MultiBlockMaskCollator:
    """Collate dataset items into a batch with V-JEPA multiblock masks of fixed sizes (``counts``, one per spec).

    Items are dicts with ``"clip"`` (C, T, H, W) float and ``"position"`` int (the global sample position),
    optionally ``"load_failures"`` int. Returns ``{"clips": (B, C, T, H, W), "positions": (B,),
    "masks_enc": [ (B, Nc_i) per spec ], "masks_pred": [ (B, Nt_i) per spec ], "load_failures": int}`` with
    ``(Nc_i, Nt_i) = counts[i]`` for every batch.
    """

    def __init__(self, grid: tuple[int, int, int], specs: Sequence[MaskSpec] = DEFAULT_SPECS, seed: int = 0):
        self.grid = tuple(int(g) for g in grid)
        self.specs = tuple(specs)
        self.seed = int(seed)
        if not self.specs:
            raise ValueError("MultiBlockMaskCollator needs at least one MaskSpec")
        self.counts = tuple(mask_counts(spec, self.grid) for spec in self.specs)

    def masks_for(self, position: int, batch_size: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The masks of a batch whose first sample sits at global ``position`` (a pure function of both)."""
        rng = np.random.default_rng([self.seed, int(position)])
        masks_enc, masks_pred = [], []
        for spec, counts in zip(self.specs, self.counts):
            enc, pred = sample_fixed_masks(spec, self.grid, batch_size, rng, counts)
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
