"""How far the object moves between the start and the goal of held-out goal pairs (``plan goal_steps=K``).

    python tools/goal_motion.py pusht 25 50 75 100 [--pairs 50] [--pace 1.0]

Prints, per K, the median and quartiles of the object's shift (pusht: px, from its ``pose_error``; else
task-state units of ``object_position``) and turn (degrees, pusht), and the share of pairs whose other success
criteria (pusht: ``pose_success``) already hold at the start, over the pairs the benchmark's goals section uses
(seed 1000). ``--pace`` overrides the env's ``goal_pace`` (1: the exploration policy's own speed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import envs  # noqa: E402
from envs.trajectory_goals import trajectory_goals  # noqa: E402


def goal_motion(env_name: str, goal_steps: int, pairs: int, pace: float | None) -> dict[str, np.ndarray]:
    """Per pair, read off a reset at the pair's start toward its goal: ``shift`` and ``turn`` from the env's
    ``pose_error`` (pusht: px, degrees) or else ``shift`` of ``object_position`` (task-state units), and
    ``met``: the env's other success criteria (``info[*_success]``, e.g. pusht's ``pose_success``) already true."""
    env = envs.make(env_name, image_size=16)
    sim = env.unwrapped
    if pace is not None:
        sim.goal_pace = pace
    pose_error = getattr(sim, "pose_error", None)
    position = getattr(sim, "object_position", None)
    if pose_error is None and position is None:
        raise SystemExit(f"error: {env_name} declares neither pose_error nor object_position; this tool measures "
                         "how far the object moves")
    shifts, turns, met = [], [], []
    for pair in trajectory_goals(env, pairs, goal_steps, seed=1000):
        _, info = env.reset(seed=0, options={"start": pair.start, "goal": pair.goal})
        state, goal = info["state"], info["goal_state"]
        if pose_error is not None:
            shift, turn = pose_error(state, goal)
            turns.append(turn)
        else:
            shift = np.linalg.norm(goal[position] - state[position])
        shifts.append(shift)
        met.append([bool(v) for k, v in sorted(info.items()) if k.endswith("_success") and k != "is_success"])
    return {"shift": np.array(shifts), "turn": np.array(turns), "met": np.array(met, bool)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env")
    parser.add_argument("goal_steps", type=int, nargs="+")
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--pace", type=float, default=None)
    args = parser.parse_args(argv)
    for k in args.goal_steps:
        motion = goal_motion(args.env, k, args.pairs, args.pace)
        q = np.percentile(motion["shift"], [25, 50, 75])
        line = f"K={k}: object shift median {q[1]:.3g} (quartiles {q[0]:.3g}-{q[2]:.3g})"
        if len(motion["turn"]):
            t = np.percentile(motion["turn"], [25, 50, 75])
            line += f"; turn median {t[1]:.0f} deg ({t[0]:.0f}-{t[2]:.0f})"
        if motion["met"].size:
            line += f"; other criteria already met at the start: {motion['met'].mean(axis=0).round(2).tolist()}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
