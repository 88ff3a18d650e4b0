"""The oracle: the same sampling planner as our latent agents, run over the TRUE simulator.

At every step it reads the simulator's state (``env.unwrapped.get_sim_state()``), rolls every candidate
action sequence out with the true physics (``env.unwrapped.simulate``, no rendering) and scores it by
the env's task distance to the goal state read at ``reset`` (``info["goal_state"]``) plus its shaping:

    cost = d(final step) + running_weight * mean_t d(step t)
    d = env.unwrapped.task_distance + env.unwrapped.shaping (when it has one; pusher: a reach term)

It is the reference ceiling *for a given budget* (horizon x samples x iterations): with a short
horizon it is exactly as greedy as its horizon, so it can stall behind the wall in ``pointmass_tworooms``
or ``pointmass_maze``; that gap is what the hierarchical agent is measured against.

Default budget: ~30 ms per ``act`` on ``pointmass_open`` on the 2-core CPU (see tests/test_agents.py).
"""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.registry import register_agent
from worldmodel.planning import PLANNERS, Plan, shift_plan

_SIMULATOR_API = ("get_sim_state", "simulate", "task_distance")


@register_agent("oracle")
class OracleAgent:
    """Model-predictive control over the true simulator with ``worldmodel.planning`` (CEM or MPPI).

    Args:
        env: an env whose ``unwrapped`` offers ``get_sim_state``, ``simulate`` and ``task_distance``.
        planner: a name in ``worldmodel.planning.PLANNERS`` (``cem``, ``mppi``).
        horizon, samples, iterations: the planning budget (env steps, candidates, refinement rounds).
        elites, momentum: CEM only. temperature: MPPI only.
        min_std: floor of the sampling std (in action units).
        warm_std: sampling std around the warm-started mean (the previous plan shifted by one step);
            ``None`` restarts from the full action range each step (only the mean is warm).
        running_weight: weight of the mean distance over the horizon added to the final distance.
        seed: the planner's generator is reseeded from ``(seed, episode index)`` at each ``reset``.
    """

    def __init__(
        self,
        env: gym.Env,
        planner: str = "cem",
        horizon: int = 12,
        samples: int = 128,
        iterations: int = 3,
        elites: int = 16,
        momentum: float = 0.0,
        temperature: float = 0.1,
        min_std: float = 0.05,
        warm_std: float | None = 0.5,
        running_weight: float = 0.1,
        seed: int = 0,
    ):
        if planner not in PLANNERS:
            raise ValueError(f"unknown planner {planner!r}; choose one of: {', '.join(PLANNERS)}")
        for label, value in (("horizon", horizon), ("samples", samples), ("iterations", iterations)):
            if int(value) < 1:
                raise ValueError(f"oracle {label} must be >= 1, got {value}")
        sim = env.unwrapped
        missing = [m for m in _SIMULATOR_API if not callable(getattr(sim, m, None))]
        if missing:
            raise TypeError(
                f"the oracle needs an env whose unwrapped simulator offers {', '.join(_SIMULATOR_API)}; "
                f"{type(sim).__name__} lacks {', '.join(missing)}"
            )
        space = env.action_space
        if not (isinstance(space, gym.spaces.Box) and space.is_bounded("both") and len(space.shape) == 1):
            raise TypeError(f"the oracle needs a bounded 1-D Box action space, got {space}")
        self.sim = sim
        self.action_space = space
        self.action_dim = space.shape[0]
        self.horizon, self.samples, self.iterations = int(horizon), int(samples), int(iterations)
        self.running_weight = float(running_weight)
        self.warm_std = warm_std
        self.seed = int(seed)
        self.planner_name = planner
        self._planner = PLANNERS[planner]
        options = {
            "elites": int(elites),
            "momentum": momentum,
            "temperature": temperature,
            "min_std": min_std,
        }
        accepted = inspect.signature(self._planner).parameters
        self._planner_options = {k: v for k, v in options.items() if k in accepted}
        self.episode = -1
        self.goal_state: np.ndarray | None = None
        self._mean: torch.Tensor | None = None
        self._generator = torch.Generator().manual_seed(self.seed)
        self.last_plan: Plan | None = None

    def reset(self, observation: np.ndarray, info: dict[str, Any]) -> None:
        if "goal_state" not in info:
            raise KeyError("the oracle reads info['goal_state'] at reset; this env's reset info has none")
        self.goal_state = np.asarray(info["goal_state"]).copy()
        self.episode += 1
        self._generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.episode)
        self._mean = None
        self.last_plan = None

    def cost(self, sim_state: np.ndarray, candidates: torch.Tensor) -> torch.Tensor:
        """Costs ``(N,)`` of action sequences ``(N, horizon, A)`` from ``sim_state`` (NaN if the sim diverged)."""
        states = self.sim.simulate(sim_state, candidates.numpy())  # (N, H, S)
        distance = np.asarray(self.sim.task_distance(states, self.goal_state))
        if callable(getattr(self.sim, "shaping", None)):
            distance = distance + np.asarray(self.sim.shaping(states))
        distance = torch.as_tensor(distance, dtype=torch.float32)
        return distance[:, -1] + self.running_weight * distance.mean(dim=1)

    def act(self, observation: np.ndarray) -> np.ndarray:
        if self.goal_state is None:
            raise RuntimeError("OracleAgent.act called before reset")
        sim_state = self.sim.get_sim_state()
        warm = self._mean is not None
        plan = self._planner(
            lambda candidates: self.cost(sim_state, candidates),
            self.action_space.low,
            self.action_space.high,
            horizon=self.horizon,
            action_dim=self.action_dim,
            samples=self.samples,
            iterations=self.iterations,
            init_mean=shift_plan(self._mean) if warm else None,
            init_std=self.warm_std if warm else None,
            generator=self._generator,
            **self._planner_options,
        )
        self.last_plan = plan
        self._mean = plan.mean
        action = plan.actions[0].numpy()
        return np.clip(action, self.action_space.low, self.action_space.high).astype(self.action_space.dtype)
