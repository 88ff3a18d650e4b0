"""Goals from held-out trajectories: the protocol of DINO-WM and HWM (``experiments.plan goal_steps=K``).

Instead of the env's own goal sampling, episode ``i`` starts where a held-out exploration trajectory starts and
its goal is the state that trajectory reached ``K`` env steps later (shown at rest in the goal image). The
trajectories are fresh rollouts of the env's exploration policy (``envs.exploration_policies``) from resets
seeded apart from any pretraining data; a pair whose goal is already met at the start (task distance below the
success threshold, e.g. a block the policy did not touch) is skipped, so every episode asks for something.

An env may set ``goal_pace`` (default 1): the held-out rollouts then scale the exploration policy's actions by it,
so that the object moves per step about as fast as in the data the anchors took their goals from (Push-T's
expert replays: ``docs/pusht.md``; ``tools/goal_motion.py`` measures the motion).

An episode toward a goal ``K`` steps ahead may take ``goal_step_budget(K)`` = 2K env steps, the anchors'
evaluation budget (LeWM and stable-worldmodel: 50 steps toward Push-T goals 25 steps ahead), unless
``max_steps`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from envs.exploration_policies import exploration_policy
from worldmodel.errors import UserError

HOLDOUT_SEED = 7_351_001  # mixed into every held-out rollout's seed: disjoint from the pretraining data's
MAX_TRIES_PER_GOAL = 20
STEPS_PER_GOAL_STEP = 2  # the anchors' evaluation budget: twice the goal's distance in env steps


class GoalStepsError(UserError, ValueError):
    """``goal_steps`` cannot be served by this env's held-out trajectories."""


@dataclass(frozen=True)
class TrajectoryGoal:
    start: np.ndarray  # full simulator state (``get_sim_state``) where the episode starts
    goal: np.ndarray  # the simulator state ``goal_steps`` later
    distance: float  # task distance from start to goal


def check_goal_steps(env: gym.Env, goal_steps: int) -> None:
    """One-line ``GoalStepsError`` when ``goal_steps`` is not in [1, the held-out trajectories' length]."""
    limit = getattr(getattr(env, "spec", None), "max_episode_steps", None)
    name = type(env.unwrapped).__name__
    if not callable(getattr(env.unwrapped, "get_sim_state", None)):
        raise GoalStepsError(f"goal_steps needs an env whose simulator state can be saved and restored "
                             f"(get_sim_state/set_sim_state); {name} has none: leave goal_steps unset")
    if limit is None:
        raise GoalStepsError(f"goal_steps needs the env's time limit (the held-out trajectories' length); {name} "
                             "is registered without max_episode_steps")
    if not 1 <= int(goal_steps) <= limit:
        raise GoalStepsError(f"goal_steps={goal_steps} is outside the held-out trajectories of {name} (1 to {limit} "
                             f"env steps, its time limit); choose goal_steps between 1 and {limit}")


def goal_step_budget(goal_steps: int | None, max_steps: int | None = None) -> int | None:
    """The step limit of an episode: ``max_steps`` when given, else ``STEPS_PER_GOAL_STEP * goal_steps`` toward
    goals ``goal_steps`` ahead, else None (the env's time limit, which also caps the budget)."""
    if max_steps is not None or goal_steps is None:
        return max_steps
    return STEPS_PER_GOAL_STEP * int(goal_steps)


def trajectory_goals(env: gym.Env, count: int, goal_steps: int, seed: int) -> list[TrajectoryGoal]:
    """``count`` (start, goal) pairs ``goal_steps`` apart on held-out exploration rollouts of ``env``; pair ``i``
    depends only on ``(seed, goal_steps, i)`` and the rollouts before it."""
    check_goal_steps(env, goal_steps)
    sim = env.unwrapped
    pace = float(getattr(sim, "goal_pace", 1.0))
    goals: list[TrajectoryGoal] = []
    rollout = 0
    while len(goals) < count:
        if rollout >= MAX_TRIES_PER_GOAL * count:
            raise GoalStepsError(f"only {len(goals)} of {count} held-out rollouts of {type(sim).__name__} moved the "
                                 f"task state by the success threshold within goal_steps={goal_steps}; use more "
                                 "goal_steps")
        rollout_seed = [HOLDOUT_SEED, int(seed), int(goal_steps), rollout]
        rollout += 1
        _, info = sim.reset(seed=int(np.random.SeedSequence(rollout_seed).generate_state(1)[0]))
        policy = exploration_policy(sim, rollout_seed)
        start, start_state = sim.get_sim_state(), info["state"]
        for _ in range(goal_steps):
            _, _, _, _, info = sim.step(policy.act(info["state"]) * pace)
            if "failure" in info:
                break
        if "failure" in info:
            continue
        distance = float(sim.task_distance(start_state, info["state"]))
        if distance >= sim.success_threshold:
            goals.append(TrajectoryGoal(start, sim.get_sim_state(), distance))
    return goals
