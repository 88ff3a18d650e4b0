"""Record episodes of one of our envs with Minari's own ``DataCollector``, as a user records a robot's data.

    python examples/record_minari.py --env pointmass_tworooms --episodes 200 --steps 64 --out DIR
    python -m experiments.pretrain env=pointmass_tworooms stages=[metric,dynamics,hierarchy] \\
        encoder=RUN/encoder.safetensors trajectories=DIR

The actions come from our exploration policy (``envs.exploration_policies``), so the recording resembles the data
``experiments.pretrain`` renders itself, but Minari writes it (frames JPEG-encoded, its default, unless
``--lossless``). With
``--infos`` every step's ``info`` is kept too, including the true state that the task cost of reacher, pusher
and pusht learns from (and the goal image of every step: a larger file). Needs ``pip install -e '.[minari]'``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MUJOCO_GL", "egl")

import minari  # noqa: E402

import envs  # noqa: E402
from envs.exploration_policies import exploration_policy  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="pointmass_tworooms")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--steps", type=int, default=64, help="steps per episode (fewer if the env ends it)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--infos", action="store_true", help="keep every step's info (the true state among them)")
    parser.add_argument("--lossless", action="store_true", help="store frames as raw arrays, not JPEG")
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the dataset")
    args = parser.parse_args(argv)
    if args.out.exists():
        sys.exit(f"error: --out {args.out} exists; choose a new folder")
    os.environ["MINARI_DATASETS_PATH"] = str(args.out.resolve().parent)  # where Minari writes its datasets
    env = envs.make(args.env, image_size=args.image_size)
    collector = minari.DataCollector(env, record_infos=args.infos, jpeg_encoding=not args.lossless)
    for episode in range(args.episodes):
        _, info = collector.reset(seed=int(np.random.SeedSequence([args.seed, episode]).generate_state(1)[0]))
        policy = exploration_policy(env.unwrapped, [args.seed, episode])
        for _ in range(args.steps):
            action = np.clip(policy.act(info["state"]), env.action_space.low, env.action_space.high)
            _, _, terminated, truncated, info = collector.step(action.astype(np.float32))
            if terminated or truncated:
                break
    dataset = collector.create_dataset(dataset_id=f"{args.out.name}-v0", algorithm_name="exploration policy")
    os.replace(args.out.resolve().parent / f"{args.out.name}-v0", args.out)
    print(f"recorded {dataset.total_episodes} episodes ({dataset.total_steps} steps) of {args.env} to {args.out}")


if __name__ == "__main__":
    main()
