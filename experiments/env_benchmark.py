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
from pathlib import Path

import envs
from envs.benchmark import greedy_success, physics_steps_per_s, render_fps


def main(argv: list[str] | None = None) -> dict:
    """Measure the envs named on the command line, print a table and return the results."""
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
