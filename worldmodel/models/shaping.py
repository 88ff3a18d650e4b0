"""The learned shaping term of the task cost: a non-negative cost of a level-1 state alone.

Where the task distance gives a planner no direction (a pusher far from the block: no move changes the block
distance until the two touch), the env defines a shaping cost of the state (``GoalEnv.shaping``: the pusher's
distance to the block). ``Shaping`` learns it from the exploration data's task states, on level-1 states in the
task space (``[task embedding, body state]``: where the block is and where the pusher is), so a planner can add
it to the learned task distance: ``cost = task distance + shaping`` (``WorldModel.distance(cost="task")``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from worldmodel.models.dynamics import mlp


@dataclass(frozen=True)
class ShapingConfig:
    state_dim: int
    hidden: int  # width of the MLP
    layers: int = 2  # hidden layers of the MLP


class Shaping(nn.Module):
    """``psi(z (..., Dz)) -> (...)``, non-negative (softplus)."""

    def __init__(self, cfg: ShapingConfig):
        super().__init__()
        self.cfg = cfg
        self.net = mlp(cfg.state_dim, cfg.hidden, 1, cfg.layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(self.net(z)).squeeze(-1)
