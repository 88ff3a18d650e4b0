"""Intuitive physics by violation of expectation (V-JEPA's protocol, Garrido et al. 2025), on one clip grid.

    context = encoder(clip, keep = tokens of the first ``context_tubelets`` tubelets)   the future is dropped
    pred    = predictor(context, context_idx, future_idx)                               (B, Nf, D)
    target  = layer_norm(target_encoder(clip))[future_idx]                              (B, Nf, D)
    surprise = mean |pred - target|  over the future tokens (optionally per future tubelet)

A model "understands" a violation when the implausible twin of a pair (same first frames) is more
surprising than the plausible clip; ``pairwise_accuracy`` is the fraction of pairs where it is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from worldmodel.models.masks import apply_masks


def future_split(grid: tuple[int, int, int], context_tubelets: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token indices of the first ``context_tubelets`` tubelets (Nc,) and of the rest (Nf,), (t h w) order."""
    t, h, w = grid
    if not 0 < context_tubelets < t:
        raise ValueError(f"context_tubelets must be in [1, {t - 1}] for a grid of {t} tubelets, "
                         f"got {context_tubelets}")
    split = context_tubelets * h * w
    return torch.arange(split), torch.arange(split, t * h * w)


@torch.no_grad()
def surprise(model: torch.nn.Module, clips: torch.Tensor, context_tubelets: int = 2, mask_type: int = 0,
             per_tubelet: bool = False) -> torch.Tensor:
    """Prediction error of the future from the past: (B, C, T, H, W) -> (B,), or (B, t - context) per tubelet.

    ``model`` is a ``worldmodel.models.jepa.VJEPA`` (``encoder``, ``predictor``, ``target_encoder``); the clips are
    moved to its device and the surprise stays there.
    """
    was_training = model.training
    model.eval()
    clips = clips.to(next(model.parameters()).device)
    grid = model.encoder.grid
    context_idx, future_idx = future_split(grid, context_tubelets)
    batch = clips.shape[0]
    context_idx = context_idx.to(clips.device).expand(batch, -1)
    future_idx = future_idx.to(clips.device).expand(batch, -1)
    targets = model.target_encoder(clips)
    targets = apply_masks(F.layer_norm(targets, targets.shape[-1:]), future_idx)
    context = model.encoder(clips, keep=context_idx)
    pred = model.predictor(context, context_idx, future_idx, mask_type=mask_type)
    error = (pred - targets).abs().mean(-1)  # (B, Nf)
    model.train(was_training)
    if per_tubelet:
        return rearrange(error, "b (t hw) -> b t hw", t=grid[0] - context_tubelets).mean(-1)
    return error.mean(-1)


def batched_surprise(model: torch.nn.Module, clips: torch.Tensor, batch_size: int = 32, **kwargs) -> torch.Tensor:
    """``surprise`` over (M, C, T, H, W) clips in batches, on the model's device -> (M,) (or (M, t - context)) on
    the CPU."""
    return torch.cat([surprise(model, clips[i:i + batch_size], **kwargs).cpu()
                      for i in range(0, len(clips), batch_size)])


def pairwise_outcomes(plausible: torch.Tensor, implausible: torch.Tensor,
                      groups: torch.Tensor | None = None) -> tuple[int, int, int]:
    """(wins, losses, ties) over the pairs: a win is an implausible clip more surprising than its twin.

    ``groups`` (P,) int: pairs with the same id are scored together (sums of their surprises), e.g. the
    content-matched quadruplets of IntPhys, where single pairs are confounded by how much there is to predict.
    """
    if plausible.shape != implausible.shape or plausible.ndim != 1:
        raise ValueError(f"expected two (P,) surprise vectors, got {tuple(plausible.shape)} and "
                         f"{tuple(implausible.shape)}")
    if groups is not None:
        ids, groups = torch.unique(groups, return_inverse=True)
        plausible = torch.zeros(len(ids), dtype=plausible.dtype).index_add_(0, groups, plausible)
        implausible = torch.zeros(len(ids), dtype=implausible.dtype).index_add_(0, groups, implausible)
    wins, ties = int((implausible > plausible).sum()), int((implausible == plausible).sum())
    return wins, len(plausible) - wins - ties, ties


def accuracy_of(wins: int, losses: int, ties: int) -> float:
    """Fraction won, a tie counting one half; NaN when there is nothing to score."""
    total = wins + losses + ties
    return (wins + 0.5 * ties) / total if total else float("nan")


def pairwise_accuracy(plausible: torch.Tensor, implausible: torch.Tensor,
                      groups: torch.Tensor | None = None) -> float:
    """Fraction of pairs (or groups) won, a tie counting one half (``pairwise_outcomes``). (P,), (P,) -> float."""
    return accuracy_of(*pairwise_outcomes(plausible, implausible, groups))
