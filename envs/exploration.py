"""Seeded exploration data: rendered episodes of the exploration policies, cached on disk.

The policies (``envs.exploration_policies``): Ornstein-Uhlenbeck noise for the point mass and the reacher, a
noisy scripted pusher for ``pusher`` and for ``pusht``. For envs with a manipulated object the metadata's
``exploration`` record says how often the object moves (the fraction of transitions where it moves more than
``MOVING`` metres, or units for ``pusht``: 1.3 px) and how much of the arena it visits (the fraction of
``COVERAGE_CELL`` cells of ``[-1, 1]^2`` it enters); for an object whose angle the task state holds as (cos, sin)
(``object_angle``: Push-T's T), also how often it turns (by more than ``TURNING`` radians per step) and the
fraction of ``ANGLE_BINS`` angle bins it visits; for an env that can tell when the object has left the table
(``object_off_table(states)``: Push-T's T, driven through a wall), the fraction of frames it is off and of
episodes that lose it.

``collect_trajectories`` renders ``episodes`` episodes of ``steps`` actions (``steps + 1`` frames each;
success does not end an episode, an unstable simulator does) and caches the result under
``cache_dir/<env>-<hash>``, the hash covering every argument, the data version and, for a plug-in env, its code
(``envs.cache_identity``), so the same request loads from disk instead of re-rendering. It needs only the
required part of the env contract (``envs.contract``): an env without ``info["state"]`` yields 0-dim states,
and facts it does not state (``state_dim``, ``frame_skip``, ``dt``, ``success_threshold``) are taken from the
data and ``metadata["render_fps"]``, or recorded as null. Actions in ``[-1, 1]`` are scaled to the env's box.
``cache_dir=None`` means ``$WORLDMODEL_CACHE/trajectories``
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
from envs.cache_identity import env_identity
from envs.exploration_policies import exploration_policy
from worldmodel.data.trajectories import TrajectoryDataset, TrajectoryFormatError
from worldmodel.observations import proprio_dim, split_observation

log = logging.getLogger(__name__)

DATA_VERSION = 3  # bump when the policy or the episode layout changes: old caches are then ignored
MOVING = 0.005  # metres per env step above which the object counts as moving
COVERAGE_CELL = 0.1  # metres
TURNING = 0.01  # radians per env step above which the object counts as turning
ANGLE_BINS = 36  # 10 degrees each


def exploration_record(states: np.ndarray, episode_starts: np.ndarray, object_position: slice | None,
                       object_angle: slice | None = None, off_table: np.ndarray | None = None) -> dict:
    """How the data moves the env's object: moving fraction of transitions and arena coverage (or {}); with
    ``object_angle`` (the task-state indices of its angle's cos and sin) also turning fraction and angle coverage;
    with ``off_table`` (per frame: the object has left the table) the fractions of frames and episodes that lose
    it."""
    if object_position is None:
        return {}
    position = states[:, object_position]
    last = np.asarray(episode_starts[1:]) - 1
    inside = np.setdiff1d(np.arange(len(states) - 1), last)  # transitions within an episode
    step = np.linalg.norm(position[inside + 1] - position[inside], axis=-1)
    cells = int(round(2.0 / COVERAGE_CELL))
    index = np.clip(((position + 1.0) / COVERAGE_CELL).astype(int), 0, cells - 1)
    visited = len({(int(i), int(j)) for i, j in index})
    record = {"object_moving_fraction": float(np.mean(step > MOVING)), "moving_threshold_m": MOVING,
              "object_coverage": visited / cells**2, "coverage_cell_m": COVERAGE_CELL}
    if object_angle is not None:
        rotation = states[:, object_angle]
        angle = np.arctan2(rotation[:, 1], rotation[:, 0])
        turn = np.abs(np.angle(np.exp(1j * (angle[inside + 1] - angle[inside]))))
        bins = np.clip(((angle + np.pi) / (2 * np.pi) * ANGLE_BINS).astype(int), 0, ANGLE_BINS - 1)
        record |= {"object_turning_fraction": float(np.mean(turn > TURNING)), "turning_threshold_rad": TURNING,
                   "object_moving_or_turning_fraction": float(np.mean((step > MOVING) | (turn > TURNING))),
                   "object_angle_coverage": len(set(bins.tolist())) / ANGLE_BINS, "angle_bins": ANGLE_BINS}
    if off_table is not None:
        lost = np.logical_or.reduceat(np.asarray(off_table, bool), np.asarray(episode_starts[:-1]))
        record |= {"object_off_table_fraction": float(np.mean(off_table)), "episodes_losing_object": float(lost.mean())}
    return record


def _task_state(info: dict[str, Any]) -> np.ndarray:
    """``info["state"]``, or a 0-dim state for an env without one."""
    return info["state"] if "state" in info else np.zeros(0, np.float32)


def _to_box(action: np.ndarray, space: Any) -> np.ndarray:
    """A policy action in ``[-1, 1]^A`` mapped onto the env's action box (unchanged for ``[-1, 1]`` boxes)."""
    if np.all(space.low == -1.0) and np.all(space.high == 1.0):
        return action
    return (space.low + (action + 1.0) / 2.0 * (space.high - space.low)).astype(space.dtype)


def env_facts(env: Any, state_dim: int) -> dict[str, Any]:
    """What the exploration metadata records about ``env`` (unwrapped), with fallbacks for what it does not say."""
    fps = env.metadata.get("render_fps")
    return {"action_dim": int(env.action_space.shape[0]), "state_dim": getattr(env, "state_dim", state_dim),
            "proprio_dim": getattr(env, "proprio_dim", proprio_dim(env.observation_space)),
            "frame_skip": getattr(env, "frame_skip", None), "dt": getattr(env, "dt", 1.0 / fps if fps else None),
            "success_threshold": getattr(env, "success_threshold", None),
            "object_position": getattr(env, "object_position", None),
            "object_angle": getattr(env, "object_angle", None),
            "policy": type(exploration_policy(env, 0)).__name__}


def _render_episodes(env_name: str, episode_ids: range, steps: int, seed: int, image_size: int) -> dict[str, Any]:
    """Frames, actions, states and lengths of the exploration episodes ``episode_ids`` (one process)."""
    env = envs.make(env_name, image_size=image_size).unwrapped  # no TimeLimit: episodes run `steps`
    frames, proprio, actions, states, lengths, failures = [], [], [], [], [], 0
    for e in episode_ids:
        episode_seed = int(np.random.SeedSequence([seed, e]).generate_state(1)[0])
        obs, info = env.reset(seed=episode_seed)
        policy = exploration_policy(env, [seed, e])
        ep_obs, ep_actions, ep_states = [split_observation(obs)], [], [_task_state(info)]
        for _ in range(steps):
            action = _to_box(policy.act(_task_state(info)), env.action_space)
            obs, _, _, _, info = env.step(action)
            if "failure" in info:  # the sim was reset: keep the episode up to here
                failures += 1
                log.warning("%s episode %d ended early: %s", env_name, e, info["failure"])
                break
            ep_obs.append(split_observation(obs))
            ep_actions.append(action)
            ep_states.append(_task_state(info))
        ep_actions.append(np.zeros(env.action_space.shape, np.float32))  # no action after the last frame
        frames += [pixels for pixels, _ in ep_obs]
        proprio += [body for _, body in ep_obs]
        actions += ep_actions
        states += ep_states
        lengths.append(len(ep_obs))
    facts = env_facts(env, len(states[0]))
    states = np.stack(states).astype(np.float32)
    off_table = getattr(env, "object_off_table", None)
    off_table = off_table(states) if callable(off_table) else None
    env.close()
    return {"frames": np.stack(frames), "actions": np.stack(actions).astype(np.float32),
            "states": states, "lengths": lengths, "failures": failures, "off_table": off_table,
            "proprio": np.stack(proprio).astype(np.float32) if facts["proprio_dim"] else None,
            "env": facts}


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
    states = np.concatenate([part["states"] for part in parts])
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    metadata = {
        "env": env_name,
        "image_size": image_size,
        "action_dim": facts["action_dim"],
        "state_dim": facts["state_dim"],
        "proprio_dim": facts["proprio_dim"],
        "episodes": episodes,
        "steps": steps,
        "seed": seed,
        "frame_skip": facts["frame_skip"],
        "dt": facts["dt"],
        "success_threshold": facts["success_threshold"],
        "policy": facts["policy"],
        "data_version": DATA_VERSION,
        "failed_episodes": sum(part["failures"] for part in parts),
        "exploration": exploration_record(states, starts, facts["object_position"], facts["object_angle"],
                                          None if parts[0]["off_table"] is None else
                                          np.concatenate([part["off_table"] for part in parts])),
    }
    return TrajectoryDataset(
        np.concatenate([part["frames"] for part in parts]),
        np.concatenate([part["actions"] for part in parts]),
        states,
        starts,
        metadata,
        np.concatenate([part["proprio"] for part in parts]) if facts["proprio_dim"] else None,
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
    identity = env_identity(env_name)
    if identity is not None:  # our envs: DATA_VERSION alone, so their keys stay those of earlier renders
        request["env_code"] = identity
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
    envs.gym_id(env_name)  # an unknown name fails here, in one line
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
