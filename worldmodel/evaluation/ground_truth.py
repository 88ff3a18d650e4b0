"""Evaluations of a pretrained world model against the env's ground truth, for ``summary.json``: the planning
costs against the true distances (``cost_correlation``) and, for envs that render the ball at a given position
(``render_at``, ``is_free``), greedy descent on each cost (``cost_basin``, ``cost_profile``), how finely the states
resolve position (``position_resolution``) and how smooth the planning cost is (``cost_smoothness``).

``env`` is always the unwrapped gym env; each result is logged and returned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch

from worldmodel.data.latents import LatentTrajectories
from worldmodel.data.trajectories import TrajectoryDataset
from worldmodel.evaluation.basin import cost_profile, descent_success
from worldmodel.evaluation.metric_eval import cost_table, distance_field, format_cost_table, free_grid
from worldmodel.evaluation.resolution import position_resolution
from worldmodel.evaluation.smoothness import jump_summary, nearby_pairs
from worldmodel.world_model import WorldModel

log = logging.getLogger("worldmodel.pretrain")


def position_evaluations_unavailable(env: Any, has_metric: bool, proprio_dim: int = 0) -> str | None:
    """Why the basin, resolution and smoothness evaluations cannot run on ``env`` (unwrapped), or None."""
    if not has_metric:
        return "no metric stage was trained (add metric to stages)"
    if proprio_dim:
        return "the world model reads proprioception, which frames rendered at a position (render_at) do not carry"
    missing = [name for name in ("render_at", "is_free") if not callable(getattr(env, name, None))]
    if missing:
        return f"the env has no {' or '.join(missing)}(position) (envs.contract)"
    return None


def evaluate_costs(world_model: WorldModel, states: LatentTrajectories, trajectories: TrajectoryDataset, env: Any,
                   seed: int) -> dict:
    """Spearman / Pearson of each planning cost the world model has (``latent``, ``metric``, ``task``) between
    level-1 states of random pairs of held-out frames, against their task distance (and geodesic distance, for
    envs with ``is_free``); logged and returned."""
    starts = states.episode_starts
    frames = np.concatenate([np.arange(starts[e], starts[e + 1]) for e in states.holdout_episodes])
    readable = {"metric": ("pca", "metric"), "task": ("pca", "task")}  # the state spaces each cost reads
    costs = ["latent"] + [name for name, model in (("metric", world_model.metric), ("task", world_model.task_metric))
                          if model is not None and world_model.state_space in readable[name]]
    table = cost_table(states.z[frames], np.asarray(trajectories.states[frames]),
                       {name: partial(world_model.distance, cost=name) for name in costs},
                       task_distance=env.task_distance, is_free=positions_free(env, trajectories.states.shape[1]),
                       seed=seed)
    log.info("planning costs vs true distances (held-out pairs):\n%s", format_cost_table(table))
    return table


def positions_free(env: Any, state_dim: int) -> Callable | None:
    """``env.is_free`` when the env has it and its task states start with a 2-D position, else None."""
    is_free = getattr(env, "is_free", None)
    return is_free if callable(is_free) and state_dim >= 2 else None


def evaluate_basin(world_model: WorldModel, env: Any, seed: int, cell: float = 0.1, goals: int = 32,
                   reaches: tuple[float, ...] = (0.5, 1.0, 2.0)) -> tuple[dict, dict]:
    """``worldmodel.evaluation.basin`` for the planning costs (``latent``, ``metric``) on a grid of rendered
    ball positions: per reach in metres, the fraction of (start, goal) pairs whose greedy descent ends at the goal;
    and each cost's profile (``cost_profile``) at 0.1, 0.5, 1 and 2 m, with the PCA latent's (``pca``) beside
    them (the same as ``latent`` when the levels work in it).

    For scale: 10 full-force steps from rest move the ball 0.6-0.7 m, 32 steps (level 2's look-ahead) over
    1.75 m (``tests/test_envs.py``).
    """
    axis, free = free_grid(env.is_free, cell=cell)
    cells = np.argwhere(free)
    pca = encode_positions(world_model, env, axis[cells])
    z = world_model.latent_state(pca)  # the levels' state, from the one encoding
    path = np.stack([distance_field(free, tuple(c), cell)[cells[:, 0], cells[:, 1]] for c in cells])
    picked = np.random.default_rng(seed).choice(len(cells), min(goals, len(cells)), replace=False)
    with torch.no_grad():
        costs = {name: np.stack([world_model.distance(z, z[g], cost=name).float().numpy() for g in picked])
                 for name in ("latent", "metric")}
        pca_cost = np.stack([(pca - pca[g]).abs().mean(-1).numpy() for g in picked])
    result = {f"{r:g} m": {name: descent_success(c, path, picked, r, tolerance=1.5 * cell) for name, c in costs.items()}
              for r in reaches}
    profile = {name: cost_profile(c, path[picked], (0.1, 0.5, 1.0, 2.0), width=cell / 2)
               for name, c in {**costs, "pca": pca_cost}.items()}
    log.info("greedy descent on the planning cost reaches the goal (perfect model), by reach: %s",
             "; ".join(f"{r}: " + ", ".join(f"{n} {v:.2f}" for n, v in row.items()) for r, row in result.items()))
    log.info("each cost at a path distance over its median (0.1 / 0.5 / 1 / 2 m): %s",
             "; ".join(f"{n} " + " / ".join("-" if v is None else f"{v:.2f}" for v in row.values())
                       for n, row in profile.items()))
    return result, profile


def encode_positions(world_model: WorldModel, env: Any, positions: np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """The PCA latents ``(N, Dz)`` of frames rendered with the ball at rest at each of ``positions (N, 2)``."""
    frames = np.stack([env.render_at(p) for p in positions])
    return torch.cat([world_model.head(frames[i:i + batch_size]) for i in range(0, len(frames), batch_size)])


def evaluate_resolution(world_model: WorldModel, env: Any, seed: int, cell: float = 0.04) -> dict:
    """``worldmodel.evaluation.resolution`` on frames rendered on a ``cell`` grid of free ball positions, a fifth
    held out as queries: the median / 90th-percentile nearest-neighbour position error of the PCA latent
    (``pca``) and of the level-1 state (``state``: the metric's embedding of it when ``latent.space=metric``)."""
    axis, free = free_grid(env.is_free, cell=cell)
    positions = axis[np.argwhere(free)]
    pca = encode_positions(world_model, env, positions)
    states = {"pca": pca, "state": world_model.latent_state(pca)}
    result = {name: position_resolution(z.numpy(), positions, queries=len(positions) // 5, seed=seed)
              for name, z in states.items()}
    log.info("nearest-neighbour position error of the states, median / p90 (m): %s",
             "; ".join(f"{n} {v['median']:.3f} / {v['p90']:.3f}" for n, v in result.items()))
    return result


def evaluate_smoothness(world_model: WorldModel, env: Any, seed: int, pairs: int = 1500, move: float = 0.01) -> dict:
    """``worldmodel.evaluation.smoothness`` for the planning cost: its reading between frames rendered with the
    ball at ``pairs`` free positions and ``move`` metres away from each."""
    starts, ends = nearby_pairs(lambda p: env.is_free(p, margin=0.0), pairs, move, seed=seed)
    states = [world_model.latent_state(encode_positions(world_model, env, p)) for p in (starts, ends)]
    result = jump_summary(world_model.distance(*states).numpy())
    log.info("planning cost between frames %.0f cm apart: median %.2f, p99 %.2f, max %.1f; over 1: %.1f%%, "
             "over 3: %.2f%%", 100 * move, result["median"], result["p99"], result["max"], 100 * result["over_1"],
             100 * result["over_3"])
    return result
