"""Flat latent MPC: CEM/MPPI over level-1 rollouts toward the encoded goal image, re-planned every step
(or every ``replan_every`` steps, acting on the plan's next actions in between).

    cost(actions) = d(z_H, z_goal) + running_weight * mean_t d(z_t, z_goal)      d: WorldModel.distance

``d`` is the world model's planning cost ``cost``: ``metric`` (the learned temporal distance, the default when
the checkpoint has one) or ``latent`` (mean L1 in z).

The agent tracks the latent velocity ``d_t = z_t - z_{t-1}`` between its own observations (zero at the
first step), which level 1 reads as its one-step history. The plan is warm-started from the previous
one shifted by one step (``shift_plan``). After each ``act`` the attribute ``diagnostics`` holds
``predicted_cost`` (float), ``predicted_steps`` (the env steps that cost looks ahead: ``H``), ``imagined``
``(H, Dz)`` (the planned latent trajectory) and ``goal`` ``(Dz,)``; on the steps that act on an earlier plan
(``replan_every`` > 1), that plan's.

Default budget (horizon 10 x 256 samples x 3 iterations, Dz = 32): see tests/test_latent_agents.py.
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.registry import register_agent
from worldmodel.planning import PLANNERS, Plan, shift_plan


class LatentAgentBase:
    """What both latent agents share: the world model, the goal latent, the latent state (z, d), RNG."""

    def __init__(self, env: gym.Env, world_model, seed: int, check_env: bool, cost: str | None = None,
                 shaping_weight: float = 1.0):
        if world_model is None:
            raise ValueError(f"agent {type(self).__name__} plans with a world model: give the plan command "
                             "checkpoint=RUN_DIR (made by `python -m experiments.pretrain env=<name>`)")
        if not float(shaping_weight) >= 0.0:
            raise ValueError(f"shaping_weight must be >= 0 (0 leaves out the reach term), got {shaping_weight}")
        self.cost = world_model.default_cost if cost is None else str(cost)
        self.shaping_weight = float(shaping_weight)
        self.device = world_model.device  # every tensor the agent builds lives here; actions leave as numpy
        # ``(..., Dz), (Dz,) -> (...)``; a bad name or a missing metric fails here, with the fix in the message
        self.distance = partial(world_model.distance, cost=self.cost, shaping_weight=self.shaping_weight)
        self.distance(torch.zeros(1, world_model.latent_dim, device=self.device),
                      torch.zeros(world_model.latent_dim, device=self.device))
        if check_env:
            world_model.check_compatible(env)
        space = env.action_space
        if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
            raise TypeError(f"latent agents need a 1-D Box action space, got {space}")
        self.wm = world_model.eval()
        self.action_space = space
        self.action_dim = space.shape[0]
        self.seed = int(seed)
        self.episode = -1
        self.goal: torch.Tensor | None = None
        self._z_prev: torch.Tensor | None = None
        self._generator = torch.Generator().manual_seed(self.seed)
        self.diagnostics: dict[str, Any] = {}

    def reset(self, observation: np.ndarray, info: dict[str, Any]) -> None:
        if "goal_image" not in info:
            raise KeyError(f"{type(self).__name__} reads info['goal_image'] at reset; this env's info has none")
        self.goal = self.wm.encode_goal(info)
        self.episode += 1
        self._generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.episode)
        self._z_prev = None
        self.diagnostics = {}
        self._reset_plans()

    def _reset_plans(self) -> None:
        raise NotImplementedError

    def _observe(self, observation: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent ``z (Dz,)`` of the observation and latent velocity ``d (Dz,)`` since the last one."""
        if self.goal is None:
            raise RuntimeError(f"{type(self).__name__}.act called before reset")
        z = self.wm.encode_observation(observation)
        d = torch.zeros_like(z) if self._z_prev is None else z - self._z_prev
        self._z_prev = z
        return z, d

    def _to_action(self, action: torch.Tensor) -> np.ndarray:
        action = action.cpu().numpy()
        return np.clip(action, self.action_space.low, self.action_space.high).astype(self.action_space.dtype)


def planner_options(planner: str, **options) -> tuple[Any, dict[str, Any]]:
    """The planner function and the subset of ``options`` its signature accepts."""
    if planner not in PLANNERS:
        raise ValueError(f"unknown planner {planner!r}; choose one of: {', '.join(PLANNERS)}")
    accepted = inspect.signature(PLANNERS[planner]).parameters
    return PLANNERS[planner], {k: v for k, v in options.items() if k in accepted}


def fit_length(plan: torch.Tensor, horizon: int) -> torch.Tensor:
    """``plan (H, A)`` cut or zero-padded to ``horizon`` steps: a warm start for a plan of another length."""
    if len(plan) >= horizon:
        return plan[:horizon]
    return torch.cat([plan, plan.new_zeros(horizon - len(plan), plan.shape[1])])


def trajectory_cost(traj: torch.Tensor, target: torch.Tensor, running_weight: float, distance) -> torch.Tensor:
    """``traj (N, H, Dz)`` vs ``target (Dz,)`` -> ``(N,)``: final distance + weighted mean distance."""
    dist = distance(traj, target)  # (N, H)
    return dist[:, -1] + running_weight * dist.mean(dim=1)


@register_agent("mpc")
class LatentMPCAgent(LatentAgentBase):
    """Flat MPC in latent space with ``worldmodel.planning`` (``cem`` or ``mppi``).

    Args:
        env: the env to act in (checked against the world model unless ``check_env=False``).
        world_model: a ``worldmodel.world_model.WorldModel`` (context keyword passed by the framework).
        planner, horizon, samples, iterations, elites, temperature, min_std: the planning budget.
        warm_std: sampling std around the warm-started (shifted) plan; None restarts from the full range.
        running_weight: weight of the mean distance along the plan added to the final distance.
        cost: planning distance, ``metric`` | ``latent`` | ``task`` | ``body`` (None: the checkpoint's).
        shaping_weight: weight of the task cost's shaping (the learned reach term; 0 leaves it out).
        replan_every: act on this many steps of each plan before planning again (1: re-plan every step).
        finish_within, finish_horizon: once the planning cost to the goal is at most ``finish_within``, plan over
            ``finish_horizon`` steps instead of ``horizon`` (None: never). A long look-ahead finds the way round
            an object, but near the goal it leaves the first action loose and the last push undone.
        seed: the planner generator is reseeded from ``(seed, episode index)`` at each ``reset``.
    """

    def __init__(self, env: gym.Env, world_model=None, planner: str = "cem", horizon: int = 10,
                 samples: int = 256, iterations: int = 3, elites: int = 32, temperature: float = 0.1,
                 min_std: float = 0.05, warm_std: float | None = 0.5, running_weight: float = 0.1,
                 cost: str | None = None, shaping_weight: float = 1.0, replan_every: int = 1,
                 finish_within: float | None = None, finish_horizon: int | None = None, seed: int = 0,
                 check_env: bool = True):
        super().__init__(env, world_model, seed, check_env, cost, shaping_weight)
        for label, value in (("horizon", horizon), ("samples", samples), ("iterations", iterations),
                             ("replan_every", replan_every)):
            if int(value) < 1:
                raise ValueError(f"mpc {label} must be >= 1, got {value}")
        if int(replan_every) > int(horizon):
            raise ValueError(f"mpc replan_every ({replan_every}) must be at most the horizon ({horizon})")
        self.horizon, self.samples, self.iterations = int(horizon), int(samples), int(iterations)
        self.replan_every = int(replan_every)
        if (finish_within is None) != (finish_horizon is None):
            raise ValueError("mpc finish_within and finish_horizon go together: set both or neither")
        if finish_horizon is not None and not replan_every <= int(finish_horizon) <= self.horizon:
            raise ValueError(f"mpc finish_horizon must be in [replan_every, horizon] = [{replan_every}, "
                             f"{self.horizon}], got {finish_horizon}")
        self.finish_within = None if finish_within is None else float(finish_within)
        self.finish_horizon = None if finish_horizon is None else int(finish_horizon)
        self.running_weight, self.warm_std = float(running_weight), warm_std
        self._planner, self._options = planner_options(planner, elites=int(elites), temperature=temperature,
                                                       min_std=min_std)
        self._mean: torch.Tensor | None = None
        self.last_plan: Plan | None = None

    def _reset_plans(self) -> None:
        self._mean, self.last_plan, self._step_in_plan = None, None, 0

    @torch.no_grad()
    def act(self, observation: np.ndarray) -> np.ndarray:
        z, d = self._observe(observation)  # every step: the latent velocity needs each observation
        if self.last_plan is not None and self._step_in_plan < self.replan_every:
            action = self.last_plan.actions[self._step_in_plan]
            self._step_in_plan += 1
            self._mean = shift_plan(self._mean)
            return self._to_action(action)
        goal, wm = self.goal, self.wm
        horizon = self.horizon
        if self.finish_within is not None and float(self.distance(z, goal)) <= self.finish_within:
            horizon = self.finish_horizon
        warm = self._mean is not None

        def cost(candidates: torch.Tensor) -> torch.Tensor:
            return trajectory_cost(wm.rollout(z, candidates, d), goal, self.running_weight, self.distance)

        plan = self._planner(cost, self.action_space.low, self.action_space.high, horizon=horizon,
                             action_dim=self.action_dim, samples=self.samples, iterations=self.iterations,
                             init_mean=fit_length(shift_plan(self._mean), horizon) if warm else None,
                             init_std=self.warm_std if warm else None, generator=self._generator,
                             device=self.device, **self._options)
        self.last_plan, self._mean, self._step_in_plan = plan, plan.mean, 1
        self.diagnostics = {"predicted_cost": float(plan.cost), "predicted_steps": horizon,
                            "imagined": wm.rollout(z, plan.actions[None], d)[0], "goal": goal}
        return self._to_action(plan.actions[0])
