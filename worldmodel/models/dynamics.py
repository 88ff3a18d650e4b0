"""Level 1: the action-conditioned latent predictor ``z_{t+1} = f(z_t, a_t)`` (V-JEPA 2-AC in spirit).

A single frame shows where things are, not how fast they move, so the predictor also reads a one-step
history: the latent velocity ``d_t = z_t - z_{t-1}`` (zero at an episode's first frame). The state the
model carries through a rollout is therefore the pair ``(z, d)``; it predicts a residual:

    z_{t+1} = z_t + MLP([z_t, d_t, a_t])          d_{t+1} = z_{t+1} - z_t

Shapes: ``z, d (N, Dz)``, ``a (N, A)``, action sequences ``(N, H, A)`` -> latent sequences ``(N, H, Dz)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class DynamicsConfig:
    latent_dim: int
    action_dim: int
    hidden: int  # width of the residual MLP
    layers: int  # hidden layers of the residual MLP
    history: bool  # read the latent velocity d_t as well as z_t


def mlp(inputs: int, hidden: int, outputs: int, layers: int) -> nn.Sequential:
    """``layers`` hidden layers of LayerNorm-ed SiLU units; the output layer starts at zero (identity residual)."""
    modules, width = [], inputs
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        width = hidden
    out = nn.Linear(width, outputs)
    nn.init.zeros_(out.weight)
    nn.init.zeros_(out.bias)
    return nn.Sequential(*modules, out)


class LatentDynamics(nn.Module):
    """Level 1: one env step in latent space."""

    def __init__(self, cfg: DynamicsConfig):
        super().__init__()
        self.cfg = cfg
        inputs = cfg.latent_dim * (2 if cfg.history else 1) + cfg.action_dim
        self.net = mlp(inputs, cfg.hidden, cfg.latent_dim, cfg.layers)

    def forward(self, z: torch.Tensor, d: torch.Tensor | None, a: torch.Tensor) -> torch.Tensor:
        """``z, d (N, Dz)``, ``a (N, A)`` -> ``z_next (N, Dz)``."""
        parts = [z, torch.zeros_like(z) if d is None else d] if self.cfg.history else [z]
        return z + self.net(torch.cat([*parts, a], dim=-1))

    def rollout(self, z: torch.Tensor, d: torch.Tensor | None, actions: torch.Tensor) -> torch.Tensor:
        """Open loop: ``z, d (N, Dz)``, ``actions (N, H, A)`` -> predicted ``z_{1..H} (N, H, Dz)``."""
        d = torch.zeros_like(z) if d is None else d
        out = []
        for t in range(actions.shape[1]):
            z_next = self(z, d, actions[:, t])
            z, d = z_next, z_next - z
            out.append(z)
        return torch.stack(out, dim=1)


def velocities(z: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """Latent velocities ``d_t = z_t - z_{t-1}`` for a flat latent sequence ``(N, Dz)``; zero where ``first``."""
    d = torch.zeros_like(z)
    d[1:] = z[1:] - z[:-1]
    d[first] = 0.0
    return d
