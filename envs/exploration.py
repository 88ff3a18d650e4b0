"""Seeded exploration data: smooth random actions, rendered episodes, cached on disk.

The policy is Ornstein-Uhlenbeck noise clipped to the action box: smooth enough to travel across the
arena, random enough to cover it. In ``pusher`` a random action would rarely touch the block, so with
probability ``steer_prob`` per episode the policy steers the pusher toward the block (using the true
state) with OU noise on top, which pushes the block around.

``collect_trajectories`` renders ``episodes`` episodes of ``steps`` actions (``steps + 1`` frames each;
success does not end an episode, an unstable simulator does) and caches the result under
``cache_dir/<env>-<hash>``, the hash covering every argument and the data version, so the same
request loads from disk instead of re-rendering. ``cache_dir=None`` means ``$WORLDMODEL_CACHE/trajectories``
(default ``~/.cache/worldmodel/trajectories``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import envs
from envs.base import GoalEnv
from envs.pusher import BLOCK, PUSHER, PusherEnv
from worldmodel.data.trajectories import TrajectoryDataset, TrajectoryFormatError

log = logging.getLogger(__name__)

DATA_VERSION = 1  # bump when the policy or the episode layout changes: old caches are then ignored


class ExplorationPolicy:
    """OU noise in ``[-1, 1]^A``; optionally steering the pusher toward the block in some episodes."""

    def __init__(
        self,
        action_dim: int,
        seed: int | list[int],
        theta: float = 0.15,
        sigma: float = 0.4,
        steer_prob: float = 0.0,
        steer_gain: float = 4.0,
    ):
        self.action_dim, self.theta, self.sigma = action_dim, theta, sigma
        self.steer_prob, self.steer_gain = steer_prob, steer_gain
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        self.noise = self.rng.uniform(-1.0, 1.0, self.action_dim)
        self.steering = bool(self.rng.uniform() < self.steer_prob)

    def act(self, state: np.ndarray) -> np.ndarray:
        self.noise += -self.theta * self.noise + self.sigma * self.rng.standard_normal(self.action_dim)
        self.noise = np.clip(self.noise, -1.5, 1.5)
        action = self.noise
        if self.steering:
            action = self.steer_gain * (state[BLOCK] - state[PUSHER]) + 0.5 * self.noise
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def exploration_policy(env: GoalEnv, seed: int | list[int]) -> ExplorationPolicy:
    steer = 0.6 if isinstance(env, PusherEnv) else 0.0
    return ExplorationPolicy(env.action_space.shape[0], seed, steer_prob=steer)


def _render_episodes(env_name: str, episode_ids: range, steps: int, seed: int, image_size: int) -> dict[str, Any]:
    """Frames, actions, states and lengths of the exploration episodes ``episode_ids`` (one process)."""
    env: GoalEnv = envs.make(env_name, image_size=image_size).unwrapped  # no TimeLimit: episodes run `steps`
    frames, actions, states, lengths, failures = [], [], [], [], 0
    for e in episode_ids:
        episode_seed = int(np.random.SeedSequence([seed, e]).generate_state(1)[0])
        obs, info = env.reset(seed=episode_seed)
        policy = exploration_policy(env, [seed, e])
        ep_frames, ep_actions, ep_states = [obs], [], [info["state"]]
        for _ in range(steps):
            action = policy.act(info["state"])
            obs, _, _, _, info = env.step(action)
            if "failure" in info:  # the sim was reset: keep the episode up to here
                failures += 1
                log.warning("%s episode %d ended early: %s", env_name, e, info["failure"])
                break
            ep_frames.append(obs)
            ep_actions.append(action)
            ep_states.append(info["state"])
        ep_actions.append(np.zeros(env.action_space.shape, np.float32))  # no action after the last frame
        frames += ep_frames
        actions += ep_actions
        states += ep_states
        lengths.append(len(ep_frames))
    env_facts = {"action_dim": int(env.action_space.shape[0]), "state_dim": env.state_dim,
                 "frame_skip": env.frame_skip, "dt": env.dt, "success_threshold": env.success_threshold,
                 "pusher": isinstance(env, PusherEnv)}
    env.close()
    return {"frames": np.stack(frames), "actions": np.stack(actions).astype(np.float32),
            "states": np.stack(states).astype(np.float32), "lengths": lengths, "failures": failures,
            "env": env_facts}


def render_trajectories(
    env_name: str, episodes: int, steps: int, seed: int, image_size: int = 64, workers: int = 1
) -> TrajectoryDataset:
    """Render ``episodes`` exploration episodes (no cache). Episode e depends only on ``(seed, e)``.

    ``workers > 1`` renders contiguous slices of the episodes in that many processes; the result is
    identical to ``workers=1``.
    """
    if episodes < 1 or steps < 1:
        raise ValueError(f"episodes and steps must be >= 1, got episodes={episodes}, steps={steps}")
    if workers < 1:
        raise ValueError(f"render workers must be >= 1, got {workers}")
    workers = min(workers, episodes)
    bounds = np.linspace(0, episodes, workers + 1).astype(int)
    slices = [range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    args = [(env_name, ids, steps, seed, image_size) for ids in slices]
    if workers == 1:
        parts = [_render_episodes(*args[0])]
    else:
        # spawn: a forked MuJoCo/EGL context is not safe to reuse, and spawn behaves the same everywhere
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(_render_episodes, *zip(*args)))
    lengths = [n for part in parts for n in part["lengths"]]
    facts = parts[0]["env"]
    metadata = {
        "env": env_name,
        "image_size": image_size,
        "action_dim": facts["action_dim"],
        "state_dim": facts["state_dim"],
        "episodes": episodes,
        "steps": steps,
        "seed": seed,
        "frame_skip": facts["frame_skip"],
        "dt": facts["dt"],
        "success_threshold": facts["success_threshold"],
        "policy": "ornstein-uhlenbeck" + (" + steer to block" if facts["pusher"] else ""),
        "data_version": DATA_VERSION,
        "failed_episodes": sum(part["failures"] for part in parts),
    }
    return TrajectoryDataset(
        np.concatenate([part["frames"] for part in parts]),
        np.concatenate([part["actions"] for part in parts]),
        np.concatenate([part["states"] for part in parts]),
        np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        metadata,
    )


def default_cache_dir() -> Path:
    return Path(os.environ.get("WORLDMODEL_CACHE", Path.home() / ".cache" / "worldmodel")) / "trajectories"


def cache_path(
    env_name: str, episodes: int, steps: int, seed: int, image_size: int, cache_dir: str | os.PathLike | None
) -> Path:
    request = {
        "env": env_name,
        "episodes": episodes,
        "steps": steps,
        "seed": seed,
        "image_size": image_size,
        "data_version": DATA_VERSION,
    }
    key = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"{env_name}-{key}"


def collect_trajectories(
    env_name: str,
    episodes: int,
    steps: int,
    seed: int,
    image_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
    workers: int = 1,
) -> TrajectoryDataset:
    """Exploration episodes of ``env_name``, loaded from the cache when this exact request was made before.

    ``workers``: processes that render a cache miss (the result does not depend on it).
    """
    if env_name not in envs.ENV_IDS:
        raise ValueError(f"unknown env {env_name!r}; choose one of: {', '.join(sorted(envs.ENV_IDS))}")
    path = cache_path(env_name, episodes, steps, seed, image_size, cache_dir)
    if path.is_dir():
        try:
            dataset = TrajectoryDataset.load(path)
            log.info("loaded %d %s episodes from cache %s", dataset.num_episodes, env_name, path)
            return dataset
        except TrajectoryFormatError as exc:
            log.warning("ignoring unusable trajectory cache: %s", exc)
    start = time.perf_counter()
    dataset = render_trajectories(env_name, episodes, steps, seed, image_size, workers)
    seconds = time.perf_counter() - start
    dataset.save(path)
    log.info(
        "rendered %d %s episodes (%d frames, %.0f frames/s, %d processes) and cached them in %s",
        episodes,
        env_name,
        len(dataset),
        len(dataset) / seconds,
        workers,
        path,
    )
    return dataset
