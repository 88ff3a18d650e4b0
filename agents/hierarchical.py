"""Hierarchical latent MPC: level 2 picks a subgoal k steps ahead, level 1 plans actions to reach it.

Every env step:

1. level 2: CEM over ``high_horizon`` codes of k-step action chunks (sampled around the ``N(0, I)`` prior, kept
   in ``[-code_bound, code_bound]``; with ``empirical_codes``, each replaced by the nearest code of a chunk seen in
   the data before it is rolled out) with ``WorldModel.high_rollout``, cost
   ``d(z_end, z_goal) + high_running_weight * mean_j d(z_j, z_goal)``: a look-ahead of ``high_horizon * k`` env
   steps at the price of a few jumps. Only the first jump is carried out, so progress along the plan weighs as
   much as where it ends. The subgoal is the predicted state at the end of level 1's horizon (the first one for
   the default horizon k). Once the goal is within ``reach`` (in planning-cost units; by default level 1's
   horizon when the cost is the temporal metric, never otherwise), the goal itself is the subgoal and level 2
   is skipped. With ``stall_progress``, level 2 plans only where level 1 alone has stalled (see ``Args``).
2. level 1: CEM over ``horizon`` (default k) actions with ``WorldModel.rollout`` toward the subgoal
   (``subgoal_cost``: for an agent with a body state, where level 2 puts the body) plus ``goal_weight`` times its
   planning cost to the final goal, seeded by ``decode_chunk`` of the first codes when ``use_decoder``; the
   first action is executed. The goal term keeps level 1 from trading task progress for a predicted subgoal
   that no real move reaches.

The cost to the goal (``cost``, ``high_cost``) is the checkpoint's planning cost unless set: the temporal metric
for the point mass, the task cost (with its shaping) for the arm and the pusher. Both plans are warm-started from
the previous step. After each ``act`` the attribute ``diagnostics`` holds ``predicted_cost`` (level 2's cost to
the goal, else level 1's), ``predicted_steps`` (the env steps it looks ahead), ``imagined`` ``(k, Dz)`` (level
1's planned trajectory), ``imagined_high`` ``(high_horizon, Dh)``, ``subgoal`` ``(Dh,)``, ``goal`` ``(Dz,)``,
``low_cost`` and ``level`` (2 when level 2 planned this step, else 1). Level 2 plans in its own state space
(``WorldModel.high_state``): usually level 1's.
The measurements behind the defaults are in ``docs/planning_history.md``.
"""

from __future__ import annotations

from collections import deque
from functools import partial

import gymnasium as gym
import numpy as np
import torch

from agents.mpc import LatentAgentBase, fit_length, planner_options, trajectory_cost
from agents.registry import register_agent
from worldmodel.planning import shift_plan


def default_subgoal_cost(world_model) -> str:
    """``body`` for models with proprioception: level 2 says where the agent's body should be in k steps and
    level 1 takes it there, while its goal term keeps the task cost falling (pusher, 40 episodes on tuning
    seeds: 38% against 23% for the whole-state L1). Otherwise a whole-state distance: the temporal metric
    where level 2's states can be read with it, else the mean L1."""
    if world_model.proprio_dim and world_model.high_space in ("pca", "task"):
        return "body"
    if world_model.metric is not None and world_model.high_space in ("pca", "metric"):
        return "metric"
    return "latent"


@register_agent("hierarchical")
class HierarchicalAgent(LatentAgentBase):
    """Two-level latent MPC.

    Args:
        env, world_model, seed, check_env, cost, shaping_weight: as for ``mpc`` (both used at both levels).
        planner: ``cem`` or ``mppi`` (both levels).
        high_horizon, high_samples, high_iterations, high_elites: level-2 budget (codes, each k env steps).
        code_bound: codes are clamped to ``[-code_bound, code_bound]`` (the prior is ``N(0, I)``).
        high_warm_std: sampling std around the previous code plan.
        horizon, samples, iterations, elites: level-1 budget (``horizon=None`` means k).
        warm_std: level-1 sampling std around its seed plan.
        running_weight: level 1's weight of the mean distance along its plan.
        high_running_weight: level 2's weight of the mean distance along its plan.
        goal_weight: level 1 also pays this times its final distance to the goal latent.
        high_cost: level 2's cost to the goal (None: ``cost``).
        empirical_codes: level 2 rolls out, for each code it samples, the nearest code of an action chunk seen in
            the data (``HighLevel.code_bank``): level 2 is then asked only about moves like those it learnt from,
            and a plan cannot win on what level 2 gets wrong about moves it never saw. Off by default, so the
            point-mass agent is the one measured there; the manipulation envs turn it on (``configs/env``).
        subgoal_cost: how level 1 measures its distance to the subgoal, ``metric`` | ``latent`` | ``body`` |
            ``task`` (None: ``default_subgoal_cost``).
        use_decoder: seed level 1 with the action chunk decoded from the first planned code.
        reach: hand over to level 1 alone when the planning distance to the goal is at most this; None: the
            level-1 horizon when ``cost`` is ``metric`` (in env steps), never for ``latent``.
        finish_horizon: level 1's horizon once the goal is within ``reach`` (None: ``horizon``), as mpc's
            ``finish_horizon``: a shorter look-ahead does the last push that a long one leaves loose.
        stall_progress: None (the default): level 2 plans every step. A number: level 1 plans alone toward the
            goal while the planning cost falls by at least this much every k steps; when it falls by less, level
            2 takes over, for k steps at least and until the cost is this much below where level 1 stalled.
            Where a flat plan already solves most of the task (pusher), level 2 is asked only where it is stuck.
        stall_patience: with ``stall_progress``, the steps level 2 keeps planning without that progress before
            level 1 plans alone again (and level 2 starts a fresh plan at the next stall); None: level 2's
            look-ahead, ``high_horizon * k`` steps. A level-2 plan that has not paid off within its own
            look-ahead is not going to, and level 1 alone may still finish from where it left the task.
    """

    def __init__(self, env: gym.Env, world_model=None, planner: str = "cem", high_horizon: int = 4,
                 high_samples: int = 128, high_iterations: int = 3, high_elites: int = 16,
                 code_bound: float = 3.0, high_warm_std: float = 0.7, horizon: int | None = None,
                 samples: int = 128, iterations: int = 3, elites: int = 16, warm_std: float = 0.5,
                 min_std: float = 0.05, temperature: float = 0.1, running_weight: float = 0.1,
                 high_running_weight: float = 1.0, goal_weight: float = 1.0, use_decoder: bool = True,
                 reach: float | None = None, subgoal_cost: str | None = None, high_cost: str | None = None,
                 empirical_codes: bool = False, stall_progress: float | None = None,
                 stall_patience: int | None = None, finish_horizon: int | None = None, cost: str | None = None,
                 shaping_weight: float = 1.0, seed: int = 0, check_env: bool = True):
        super().__init__(env, world_model, seed, check_env, cost, shaping_weight)
        self.high_distance = partial(world_model.high_distance, cost=self.cost if high_cost is None else high_cost,
                                     shaping_weight=self.shaping_weight)
        if subgoal_cost is None:
            subgoal_cost = default_subgoal_cost(world_model)
        self.subgoal_distance = partial(world_model.high_distance, cost=subgoal_cost,
                                        shaping_weight=self.shaping_weight)
        self.k = int(world_model.k)
        self.code_dim = int(world_model.code_dim)
        self.high_horizon, self.high_samples, self.high_iterations = int(high_horizon), int(high_samples), \
            int(high_iterations)
        self.horizon = self.k if horizon is None else int(horizon)
        self.samples, self.iterations = int(samples), int(iterations)
        for label, value in (("high_horizon", self.high_horizon), ("high_samples", self.high_samples),
                             ("high_iterations", self.high_iterations), ("horizon", self.horizon),
                             ("samples", self.samples), ("iterations", self.iterations)):
            if value < 1:
                raise ValueError(f"hierarchical {label} must be >= 1, got {value}")
        self.code_bound, self.high_warm_std, self.warm_std = float(code_bound), high_warm_std, warm_std
        self.running_weight, self.goal_weight = float(running_weight), float(goal_weight)
        self.high_running_weight = float(high_running_weight)
        self.use_decoder = bool(use_decoder)
        self.empirical_codes = bool(empirical_codes)
        self.stall_progress = None if stall_progress is None else float(stall_progress)
        self.stall_patience = self.high_horizon * self.k if stall_patience is None else int(stall_patience)
        if self.stall_patience < self.k:
            raise ValueError(f"hierarchical stall_patience must be at least k = {self.k} (level 2 plans k steps at "
                             f"least), got {stall_patience}")
        if finish_horizon is not None and not 1 <= int(finish_horizon) <= self.horizon:
            raise ValueError(f"hierarchical finish_horizon must be in [1, horizon={self.horizon}], "
                             f"got {finish_horizon}")
        self.finish_horizon = self.horizon if finish_horizon is None else int(finish_horizon)
        self._subgoal_jump = min(max(self.horizon // self.k, 1), self.high_horizon)  # at level 1's horizon
        self._seed_chunks = -(-self.horizon // self.k)  # decoded chunks that cover level 1's horizon
        if reach is None:
            reach = float(self.horizon) if self.cost == "metric" else 0.0
        self.reach = float(reach)
        self._high_planner, self._high_options = planner_options(
            planner, elites=int(high_elites), temperature=temperature, min_std=min_std)
        self._low_planner, self._low_options = planner_options(
            planner, elites=int(elites), temperature=temperature, min_std=min_std)
        self._codes: torch.Tensor | None = None
        self._actions: torch.Tensor | None = None
        self._high_prev: torch.Tensor | None = None
        self._recent_costs: deque[float] = deque(maxlen=self.k + 1)
        self._stalled_at: float | None = None
        self._level_2_steps = 0

    def _reset_plans(self) -> None:
        self._codes, self._actions, self._high_prev = None, None, None
        self._recent_costs.clear()
        self._stalled_at, self._level_2_steps = None, 0

    @torch.no_grad()
    def act(self, observation: np.ndarray) -> np.ndarray:
        z, d = self._observe(observation)
        goal, wm = self.goal, self.wm
        # level 2's state: the same as level 1's, or the metric's embedding of it (latent.high_space=metric)
        high_z = wm.high_state(z)
        high_d = torch.zeros_like(high_z) if self._high_prev is None else high_z - self._high_prev
        self._high_prev = high_z
        high_goal = wm.high_state(goal)

        now = float(self.distance(z, goal))
        horizon = self.finish_horizon if now <= self.reach else self.horizon
        if now <= self.reach or not self._level_2_needed(now):
            high, imagined_high, subgoal = None, high_goal[None], high_goal
        else:
            high, imagined_high = self._plan_high(high_z, high_d, high_goal)
            subgoal = imagined_high[self._subgoal_jump - 1]

        def low_cost(candidates: torch.Tensor) -> torch.Tensor:
            traj = wm.rollout(z, candidates, d)
            if high is None:  # the goal itself, read in level 1's space
                cost = trajectory_cost(traj, goal, self.running_weight, self.distance)
            else:
                cost = trajectory_cost(wm.high_state(traj), subgoal, self.running_weight, self.subgoal_distance)
            return cost + self.goal_weight * self.distance(traj[:, -1], goal) if self.goal_weight else cost

        seed_plan = None
        if self.use_decoder and high is not None:
            seed_plan = self._fit_horizon(wm.decode_chunk(high.actions[:self._seed_chunks]).flatten(0, 1))
        elif self._actions is not None:
            seed_plan = fit_length(shift_plan(self._actions), horizon)
        low = self._low_planner(
            low_cost, self.action_space.low, self.action_space.high, horizon=horizon,
            action_dim=self.action_dim, samples=self.samples, iterations=self.iterations, init_mean=seed_plan,
            init_std=self.warm_std if seed_plan is not None else None, generator=self._generator,
            device=self.device, **self._low_options)
        self._actions = low.mean
        predicted_cost = float(high.cost) if high is not None else float(low.cost)
        predicted_steps = self.high_horizon * self.k if high is not None else horizon
        self.diagnostics = {"predicted_cost": predicted_cost, "predicted_steps": predicted_steps,
                            "low_cost": float(low.cost), "level": 1 if high is None else 2,
                            "imagined": wm.rollout(z, low.actions[None], d)[0], "imagined_high": imagined_high,
                            "subgoal": subgoal, "goal": goal}
        return self._to_action(low.actions[0])

    def _level_2_needed(self, cost: float) -> bool:
        """Whether level 2 plans this step, given the planning cost to the goal now. Always, unless
        ``stall_progress`` is set: then only once the cost has fallen by less than that over the last k steps
        of level 1 alone, and from then on until it is that much below where level 1 stalled (k steps at least)
        or ``stall_patience`` steps have passed without that."""
        if self.stall_progress is None:
            return True
        if self._stalled_at is not None and self._level_2_steps >= self.k:
            if cost < self._stalled_at - self.stall_progress:  # level 2 got the task moving: level 1 alone again
                self._stalled_at = None
            elif self._level_2_steps >= self.stall_patience:  # level 2's plan has not paid off: level 1 again
                self._stalled_at, self._codes = None, None
            if self._stalled_at is None:
                self._recent_costs.clear()
        if self._stalled_at is None:
            self._recent_costs.append(cost)
            if len(self._recent_costs) <= self.k or self._recent_costs[0] - cost >= self.stall_progress:
                return False
            self._stalled_at, self._level_2_steps = cost, 0
        self._level_2_steps += 1
        return True

    def _plan_high(self, z: torch.Tensor, d: torch.Tensor, goal: torch.Tensor):
        """Level 2's CEM/MPPI over codes from its state ``z`` toward ``goal`` (both in its space): (the plan,
        its imagined states (H2, Dh))."""
        wm = self.wm

        def high_cost(codes: torch.Tensor) -> torch.Tensor:
            rolled = wm.high_rollout(z, self._codes_used(codes), d)
            return trajectory_cost(rolled, goal, self.high_running_weight, self.high_distance)

        high = self._high_planner(
            high_cost, -self.code_bound, self.code_bound, horizon=self.high_horizon, action_dim=self.code_dim,
            samples=self.high_samples, iterations=self.high_iterations,
            init_mean=self._codes if self._codes is not None else torch.zeros(self.high_horizon, self.code_dim,
                                                                              device=self.device),
            init_std=self.high_warm_std if self._codes is not None else 1.0,
            generator=self._generator, device=self.device, **self._high_options)
        self._codes = high.mean  # a code spans k env steps: the plan of one step ago is still current
        high.actions = self._codes_used(high.actions)
        return high, wm.high_rollout(z, high.actions[None], d)[0]

    def _codes_used(self, codes: torch.Tensor) -> torch.Tensor:
        """The codes level 2 rolls out: the nearest codes of chunks seen in the data when ``empirical_codes``."""
        return self.wm.high.nearest_codes(codes) if self.empirical_codes else codes

    def _fit_horizon(self, chunk: torch.Tensor) -> torch.Tensor:
        """Decoded actions ``(n, A)`` cut or padded (with its last action) to the level-1 horizon."""
        if self.horizon <= chunk.shape[0]:
            return chunk[: self.horizon]
        pad = chunk[-1:].expand(self.horizon - chunk.shape[0], -1)
        return torch.cat([chunk, pad], dim=0)
