"""The state spaces levels 1 and 2 predict in, and the planning costs measured between states.

- ``pca``: the latent head's PCA latent (followed by the standardised body state for envs with proprioception);
- ``metric``: the learned temporal metric's embedding of it (``TemporalMetric.state``);
- ``task``: the learned task cost's embedding of it, followed by the body state.
"""

from __future__ import annotations

import torch

from worldmodel.models.metric import TemporalMetric

# planning costs: mean L1 in z | the learned temporal metric | the learned task distance (plus its shaping) |
# the body state alone
COSTS = ("latent", "metric", "task", "body")
# the spaces the levels predict in: the PCA latent (with the body state) | the temporal metric's embedding of it |
# the task cost's embedding of it followed by the body state
STATE_SPACES = ("pca", "metric", "task")
NATIVE_SPACE = {"latent": "pca", "metric": "metric", "task": "task"}  # a planning cost -> the space it reads best


def state_spaces(space: str | None, high_space: str | None, planning_cost: str = "metric") -> tuple[str, str]:
    """The (level 1, level 2) state spaces of ``latent.space`` (None: the planning cost's own space) and
    ``latent.high_space`` (None: as level 1); raises ValueError, naming the fix, for a space we do not know or a
    pair that cannot work."""
    if space is None:
        if planning_cost not in NATIVE_SPACE:
            raise ValueError(f"unknown planning cost {planning_cost!r} (env.planning_cost); choose one of {COSTS}")
        space = NATIVE_SPACE[planning_cost]
    spaces = (space, high_space or space)
    for name in spaces:
        if name not in STATE_SPACES:
            raise ValueError(f"unknown latent space {name!r} (latent.space, latent.high_space); "
                             f"choose one of {STATE_SPACES}")
    if spaces[0] != "pca" and spaces[1] != spaces[0]:
        raise ValueError(f"level 2 cannot predict in the {spaces[1]} space when level 1 predicts in the {spaces[0]} "
                         f"embedding (an embedding does not map back); leave latent.high_space unset")
    return spaces


def embed_state(pca: torch.Tensor, space: str, *, metric: TemporalMetric | None, task_metric: TemporalMetric | None,
                visual_dim: int) -> torch.Tensor:
    """PCA latents ``(..., visual_dim + P)`` -> states of ``space``: themselves (``pca``), the temporal metric's
    embedding (``metric``), or the task cost's embedding followed by the standardised body state (``task``: the
    task embedding keeps only what the task measures, the levels also need where the body is)."""
    if space == "pca":
        return pca
    if space == "metric":
        return metric.state(pca)
    return torch.cat([task_metric.state(pca), pca[..., visual_dim:]], dim=-1)
