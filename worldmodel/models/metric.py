"""A learned temporal (geodesic) distance for planning: ``d(z_a, z_b) = ||f(z_a) - f(z_b)||_2``.

``f: z (.., Dz) -> e (.., De)`` is a small MLP trained without true states (``worldmodel.training.metric_stage``)
to spread random pairs apart while consecutive frames of an episode stay within 1:

    maximise  E_{a, b random}[min(||e_a - e_b||, cap)]   s.t.   ||e_t - e_{t+1}|| <= 1

Any such ``f`` is 1-Lipschitz per env step along the data, so ``||e_a - e_b||`` is a lower bound on the number
of steps between ``a`` and ``b`` (walls included: a path must go round them); maximising the spread pushes it up
to that bound (METRA / HILP-style temporal distance representations).

The embedding is also a state space levels 1 and 2 can predict in (``latent.space=metric``): ``state(z) =
f(z) / state_scale``, with ``state_scale`` the embedding's average per-dim std on the training frames (so the
levels see unit-scale targets, as with the PCA latent), and ``state_distance`` is the same temporal distance
read off two states. Unlike the PCA latent, which changes by most of its range when the ball moves 0.1 m, the
embedding changes at most 1 per env step, so long-horizon predictions in it stay meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class MetricConfig:
    latent_dim: int
    dim: int  # embedding size De
    hidden: int  # width of the embedding MLP
    layers: int  # hidden layers of the embedding MLP


class TemporalMetric(nn.Module):
    """``embed(z (.., Dz)) -> (.., De)``; ``distance(z (.., Dz), goal (.., Dz)) -> (..)`` in env steps."""

    def __init__(self, cfg: MetricConfig):
        super().__init__()
        self.cfg = cfg
        blocks, width = [], cfg.latent_dim
        for _ in range(cfg.layers):
            blocks += [nn.Linear(width, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.GELU()]
            width = cfg.hidden
        self.net = nn.Sequential(*blocks, nn.Linear(width, cfg.dim))
        # Input standardisation, fitted on the training latents (``fit_input``) and saved with the weights.
        self.register_buffer("z_mean", torch.zeros(cfg.latent_dim))
        self.register_buffer("z_std", torch.ones(cfg.latent_dim))
        self.register_buffer("state_scale", torch.ones(()))

    @torch.no_grad()
    def fit_input(self, z: torch.Tensor) -> None:
        """Set the input standardisation from latents ``(N, Dz)``."""
        self.z_mean.copy_(z.mean(0))
        self.z_std.copy_(z.std(0).clamp_min(1e-6))

    def embed(self, z: torch.Tensor) -> torch.Tensor:
        return self.net((z - self.z_mean) / self.z_std)

    def distance(self, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Broadcasting like ``z - goal`` over the leading axes; the last axis is ``Dz``."""
        return (self.embed(z) - self.embed(goal)).norm(dim=-1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # files written before the embedding could be a state space have no scale: 1, its initial value
        state_dict.setdefault(prefix + "state_scale", torch.ones(()))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def fit_state_scale(self, z: torch.Tensor) -> None:
        """Set ``state_scale`` from training latents ``(N, Dz)``: the embedding's average per-dim std."""
        self.state_scale.copy_(self.embed(z).std(0).mean().clamp_min(1e-6))

    def state(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``(.., Dz)`` -> states ``(.., De)`` in the embedding, unit scale."""
        return self.embed(z) / self.state_scale

    def state_distance(self, state: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """The temporal distance between states (``state``'s output): ``distance`` without re-embedding."""
        return (state - goal).norm(dim=-1) * self.state_scale
