"""Analytic model FLOPs of V-JEPA training and this machine's measured matmul peak, for MFU.

Counts 2 FLOPs per multiply-add of every matmul: patch embedding, attention (QKV, scores, attention x V,
output projection), MLP, the predictor's input/output projections. Norms, softmax, GELU and the loss are
left out (they are not matmuls). Training = 3 x forward (forward + backward) for the online encoder and
predictor, except the patch embedding, computed once for all mask types and whose input needs no gradient
(2 x), plus 1 x forward of the target encoder over the full clip.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from statistics import median

import torch

from worldmodel.models.encoder import VideoViTConfig
from worldmodel.models.masks import MaskCounts


def block_flops(tokens: int, width: int, mlp_ratio: float) -> float:
    """Forward FLOPs of one transformer block on ``tokens`` tokens."""
    n, d, hidden = tokens, width, int(width * mlp_ratio)
    qkv = 2 * n * d * 3 * d
    scores_and_values = 2 * (2 * n * n * d)
    proj = 2 * n * d * d
    mlp = 2 * (2 * n * d * hidden)
    return float(qkv + scores_and_values + proj + mlp)


def patch_embed_flops(cfg: VideoViTConfig) -> float:
    """Forward FLOPs of the tubelet embedding of one full clip."""
    return 2.0 * cfg.num_tokens * cfg.channels * cfg.tubelet * cfg.patch ** 2 * cfg.width


def encoder_forward_flops(cfg: VideoViTConfig, tokens: int | None = None) -> float:
    """Forward FLOPs of the encoder on one clip keeping ``tokens`` tokens (default: all), embedding excluded."""
    tokens = cfg.num_tokens if tokens is None else tokens
    return cfg.depth * block_flops(tokens, cfg.width, cfg.mlp_ratio)


def predictor_forward_flops(cfg: VideoViTConfig, context: int, targets: int) -> float:
    """Forward FLOPs of the predictor on one clip with ``context`` visible and ``targets`` predicted tokens."""
    embed = 2.0 * context * cfg.width * cfg.pred_width
    blocks = cfg.pred_depth * block_flops(context + targets, cfg.pred_width, cfg.mlp_ratio)
    proj = 2.0 * targets * cfg.pred_width * cfg.width
    return embed + blocks + proj


def vjepa_train_flops_per_clip(cfg: VideoViTConfig, context_sizes: Sequence[int],
                               target_sizes: Sequence[int]) -> float:
    """Model FLOPs of one training clip: the online embedding of the clip, forward + backward for each mask spec i
    (``context_sizes[i]`` kept tokens, ``target_sizes[i]`` predicted), plus one target-encoder forward over the
    full clip."""
    if len(context_sizes) != len(target_sizes):
        raise ValueError(f"need one context and one target size per mask, got {context_sizes} and {target_sizes}")
    embed = patch_embed_flops(cfg)
    target = embed + encoder_forward_flops(cfg)
    online = 2 * embed + sum(3 * (encoder_forward_flops(cfg, nc) + predictor_forward_flops(cfg, nc, nt))
                             for nc, nt in zip(context_sizes, target_sizes))
    return target + online


def mask_sizes(counts: Sequence[MaskCounts]) -> tuple[list[int], list[int]]:
    """(context sizes, target sizes) of the mask types ``counts`` (``MultiBlockMaskCollator.counts``): the same
    for every batch."""
    return [c.context for c in counts], [c.target for c in counts]


def measure_matmul_peak(dtype: torch.dtype = torch.float32, size: int = 1024, device: str | torch.device = "cpu",
                        seconds: float = 1.0, min_repeats: int = 5) -> float:
    """Achievable matmul FLOP/s here: the median over repeats of a ``size`` x ``size`` square matmul.

    Uses the current ``torch.get_num_threads()`` on CPU; synchronises on accelerators.
    """
    device = torch.device(device)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.matmul(a, b, out=out)  # warm-up
    sync()
    times, deadline = [], time.perf_counter() + seconds
    while len(times) < min_repeats or time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.matmul(a, b, out=out)
        sync()
        times.append(time.perf_counter() - start)
    return 2.0 * size ** 3 / median(times)


def training_matmul_peak(device: str | torch.device, bf16: bool) -> float:
    """The peak a training step's MFU is measured against: the matmul rate in the step's own precision.

    Accelerators need large products to reach their peak (8192 on a GPU; 1024 is already the plateau of a
    CPU core), and a bf16 step must be compared with the bf16 rate, not the float32 one.
    """
    device = torch.device(device)
    size = 8192 if device.type == "cuda" else 1024
    return measure_matmul_peak(torch.bfloat16 if bf16 else torch.float32, size=size, device=device)
