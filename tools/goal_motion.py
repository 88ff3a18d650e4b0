"""How far the object moves between the start and the goal of held-out goal pairs (``plan goal_steps=K``).

    python tools/goal_motion.py pusht 25 50 75 100 [--pairs 50] [--pace 1.0]

Prints, per K, the median and quartiles of the object's shift (task-state units, and pymunk px for pusht) and
turn (degrees, for envs with ``object_angle``) over the pairs the plan command would use (seed 1000, as the
benchmark's goals section). ``--pace`` overrides the env's ``goal_pace`` (1: the exploration policy's own speed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import envs  # noqa: E402
from envs.trajectory_goals import trajectory_goals  # noqa: E402

PUSHT_PX_PER_UNIT = 256.0  # envs.pusht: positions are (px - 256) / 256


def goal_motion(env_name: str, goal_steps: int, pairs: int, pace: float | None) -> dict[str, np.ndarray]:
    """Per pair: ``shift`` of the object (task-state units) and ``turn`` (degrees; empty without an angle)."""
    env = envs.make(env_name, image_size=16)
    sim = env.unwrapped
    if pace is not None:
        sim.goal_pace = pace
    position = getattr(sim, "object_position", None)
    if position is None:
        raise SystemExit(f"error: {env_name} declares no object_position; this tool measures object motion")
    angle = getattr(sim, "object_angle", None)
    shifts, turns = [], []
    for pair in trajectory_goals(env, pairs, goal_steps, seed=1000):
        states = []
        for sim_state in (pair.start, pair.goal):
            _, info = env.reset(seed=0, options={"start": sim_state, "goal": sim_state})
            states.append(info["state"])
        start, goal = states
        shifts.append(np.linalg.norm(goal[position] - start[position]))
        if angle is not None:
            (c0, s0), (c1, s1) = start[angle], goal[angle]
            turns.append(abs(np.degrees(np.arctan2(s0 * c1 - c0 * s1, c0 * c1 + s0 * s1))))
    return {"shift": np.array(shifts), "turn": np.array(turns)}


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
        line = f"K={k}: object shift median {q[1]:.3f} (quartiles {q[0]:.3f}-{q[2]:.3f})"
        if args.env == "pusht":
            px = q * PUSHT_PX_PER_UNIT
            line += f" = {px[1]:.0f} px ({px[0]:.0f}-{px[2]:.0f})"
        if len(motion["turn"]):
            t = np.percentile(motion["turn"], [25, 50, 75])
            line += f"; turn median {t[1]:.0f} deg ({t[0]:.0f}-{t[2]:.0f})"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
