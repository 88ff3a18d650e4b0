"""Environment benchmark: rendering speed, physics speed and a greedy true-dynamics planner.

    python -m experiments.env_benchmark [--quick] [--envs pointmass_open reacher] [--out result.json]

Per env: frames/s of ``step`` with rendering at 64x64 (median of 3 repeats), env steps/s and mj_step/s
of the batched physics alone (``simulate``), and the success rate of a greedy planner: CEM over a short
horizon (3 env steps) on the true simulator, cost = task distance at the end. Greedy descent solves the
open arena but gets stuck on the walls of tworooms and maze: the gap is what long-horizon planning is for.
In pusher it rarely succeeds: 3 steps ahead, no action sequence that does not already touch the block
changes the block's distance, so the cost gives no direction (expected; the oracle needs a longer horizon).
By default it runs the MuJoCo envs; ``--envs pusht`` adds Push-T (optional gym-pusht, Python physics: slow).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import envs
from worldmodel.planning import cem


def render_fps(name: str, steps: int, repeats: int = 3, image_size: int = 64) -> float:
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


def greedy_action(env, horizon: int, samples: int, iterations: int, generator: torch.Generator) -> np.ndarray:
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer steps and episodes")
    default_envs = [name for name in envs.ENV_IDS if name != "pusht"]
    parser.add_argument("--envs", nargs="+", default=default_envs, choices=list(envs.ENV_IDS))
    parser.add_argument(
        "--episodes", type=int, default=None, help="greedy episodes per env (default 20, quick 6)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    steps = 50 if args.quick else 200
    episodes = args.episodes or (6 if args.quick else 20)
    results = {}
    header = (f"{'env':<20} {'render fps@64':>13} {'env steps/s':>12} {'mj_step/s':>10} "
              f"{'greedy success':>15} {'final dist':>10}")
    print(header)
    print("-" * len(header))
    for name in args.envs:
        fps = render_fps(name, steps)
        sps = physics_steps_per_s(name, samples=64 if args.quick else 256)
        frame_skip = envs.make(name).unwrapped.frame_skip
        greedy = greedy_success(name, episodes)
        results[name] = {
            "render_fps_64": fps,
            "env_steps_per_s": sps,
            "mj_steps_per_s": sps * frame_skip,
            "greedy_episodes": episodes,
            **{f"greedy_{k}": v for k, v in greedy.items()},
        }
        print(
            f"{name:<20} {fps:>13.0f} {sps:>12.0f} {sps * frame_skip:>10.0f} "
            f"{greedy['success_rate']:>14.0%} {greedy['mean_final_distance']:>10.3f}",
            flush=True,
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"quick": args.quick, "envs": results}, indent=2))
        print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
