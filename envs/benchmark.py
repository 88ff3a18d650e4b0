"""Speed and difficulty of the envs, measured in this process: frames/s of ``step`` with rendering, env steps/s of
the batched physics (``simulate``), frames/s of rendering the exploration data, and the success of a greedy
true-dynamics planner (CEM over a short horizon, cost = task distance at the end). ``experiments.benchmark``
prints them (sections ``render`` and ``physics``).

The greedy planner looks 3 env steps ahead. It solves the open arena but gets stuck on the walls of tworooms and
maze: the gap is what long-horizon planning is for. In pusher it rarely succeeds: 3 steps ahead, no action
sequence that does not already touch the block changes the block's distance, so the cost gives no direction.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

import envs
from envs.base import GoalEnv
from envs.exploration import render_trajectories
from worldmodel.planning import cem


def render_fps(name: str, steps: int, repeats: int = 3, image_size: int = 64) -> float:
    """Median frames/s of ``env.step`` with rendering over ``repeats`` runs of ``steps`` random actions."""
    env = envs.make(name, image_size=image_size).unwrapped
    rng = np.random.default_rng(0)
    rates = []
    for r in range(repeats):
        env.reset(seed=r)
        actions = rng.uniform(-1, 1, (steps, env.action_space.shape[0])).astype(np.float32)
        start = time.perf_counter()
        for a in actions:
            env.step(a)  # physics + render; episodes are not ended here, only timed
        rates.append(steps / (time.perf_counter() - start))
    env.close()
    return statistics.median(rates)


def physics_steps_per_s(name: str, samples: int = 256, horizon: int = 10, repeats: int = 3) -> float:
    """Median env steps/s of ``simulate`` on ``samples`` random action sequences of ``horizon`` steps."""
    env = envs.make(name).unwrapped
    env.reset(seed=0)
    state = env.get_sim_state()
    actions = np.random.default_rng(0).uniform(-1, 1, (samples, horizon, env.action_space.shape[0]))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        env.simulate(state, actions)
        rates.append(samples * horizon / (time.perf_counter() - start))
    env.close()
    return statistics.median(rates)


def greedy_action(env: GoalEnv, horizon: int, samples: int, iterations: int, generator: torch.Generator) -> np.ndarray:
    """Best first action of a short-horizon CEM on the true dynamics (cost: distance at the end)."""
    state, goal = env.get_sim_state(), env.goal_state

    def cost_fn(candidates: torch.Tensor) -> torch.Tensor:  # (N, horizon, A) -> (N,)
        final = env.simulate(state, candidates.numpy())[:, -1]
        return torch.as_tensor(env.task_distance(final, goal), dtype=torch.float32)

    plan = cem(
        cost_fn,
        -1.0,
        1.0,
        horizon=horizon,
        action_dim=env.action_space.shape[0],
        samples=samples,
        iterations=iterations,
        elites=max(2, samples // 8),
        generator=generator,
    )
    return plan.actions[0].numpy()


def greedy_success(
    name: str, episodes: int, horizon: int = 3, samples: int = 64, iterations: int = 2, seed: int = 0
) -> dict:
    """Run the greedy planner for ``episodes`` seeded episodes (TimeLimit of the registration)."""
    env = envs.make(name)
    generator = torch.Generator().manual_seed(seed)
    successes, distances = [], []
    for e in range(episodes):
        _, info = env.reset(seed=seed + e)
        done = False
        while not done:
            action = greedy_action(env.unwrapped, horizon, samples, iterations, generator)
            _, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes.append(bool(info["is_success"]))
        distances.append(info["distance"])
    env.close()
    return {"success_rate": float(np.mean(successes)), "mean_final_distance": float(np.mean(distances))}


def exploration_fps(env_name: str, episodes: int, image_size: int, workers: list[int]) -> dict[str, float]:
    """Frames/s of rendering the exploration data (what a cache miss of the video stage costs), per process count."""
    rates = {}
    for count in workers:
        start = time.perf_counter()
        data = render_trajectories(env_name, episodes, steps=64, seed=0, image_size=image_size, workers=count)
        rates[f"workers={count}"] = len(data) / (time.perf_counter() - start)
    return rates


def physics_and_greedy(name: str, samples: int, greedy_episodes: int) -> dict[str, float]:
    """Env steps/s and mj_step/s of the batched physics alone (``simulate``, ``samples`` candidates), and the
    greedy true-dynamics planner's success over ``greedy_episodes`` seeded episodes."""
    steps_per_s = physics_steps_per_s(name, samples=samples)
    greedy = greedy_success(name, greedy_episodes)
    return {"env_steps_per_s": steps_per_s, "mj_steps_per_s": steps_per_s * envs.make(name).unwrapped.frame_skip,
            "greedy_episodes": greedy_episodes, **{f"greedy_{k}": v for k, v in greedy.items()}}


def format_render(render: dict[str, float], exploration: dict[str, float], env_name: str) -> str:
    """The render section's table: frames/s per env, then the exploration data's per process count."""
    lines = ["render (frames/s, env.step with rendering)", *(f"  {n:<22} {fps:8.0f}" for n, fps in render.items()),
             f"exploration data ({env_name}, frames/s of render_trajectories)"]
    return "\n".join(lines + [f"  {workers:<22} {fps:8.0f}" for workers, fps in exploration.items()])


def format_physics(physics: dict[str, dict[str, float]]) -> str:
    """The physics section's table: one row per env."""
    lines = [f"{'env':<22} {'env steps/s':>12} {'mj_step/s':>10} {'greedy success':>15} {'final dist':>10}"]
    lines += [f"  {name:<20} {r['env_steps_per_s']:>12.0f} {r['mj_steps_per_s']:>10.0f} "
              f"{r['greedy_success_rate']:>15.0%} {r['greedy_mean_final_distance']:>10.3f}"
              for name, r in physics.items()]
    return "\n".join(lines)
