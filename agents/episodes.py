"""Run one agent for one episode, with fault isolation: a misbehaving agent fails its episode, not the run.

``run_episode`` resets the env with a seed, calls ``agent.reset`` and loops ``act``/``step`` until the
env terminates (success or simulator failure), truncates (its time limit) or ``max_steps`` is reached.
It never raises because of the agent or the env: an exception, a non-finite action, or an action whose
shape or dtype does not fit the action space ends the episode with ``failure`` set to a one-line reason
(``"agent 'NAME' <what>: <why>"``); so does an env exception or an env ``info["failure"]`` (e.g. a
simulator instability). Pure Python: no Hydra, no torch.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from agents.base import Agent
from worldmodel.observations import split_observation

DEFAULT_MAX_STEPS = 1000  # used only when neither max_steps nor the env's spec gives a limit


@dataclass
class EpisodeRecord:
    seed: int
    success: bool
    final_distance: float  # info["distance"] after the last step (NaN if the env never reported one)
    steps: int  # env steps taken
    ms_per_step: float  # median wall time of agent.act in milliseconds (NaN if act never returned)
    distances: list[float] = field(default_factory=list)  # info["distance"] at reset and after each step
    failure: str | None = None  # one line: why the episode ended abnormally
    frames: list[np.ndarray] | None = None  # observed images (reset + each step) if record_frames
    proprio: list[np.ndarray] | None = None  # observed body states alongside, for envs that report them
    # other success criteria the env reports as info["<name>_success"] (e.g. pusht's pose_success), at the end
    criteria: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (no frames; NaN/inf become None)."""
        out = asdict(self)
        out.pop("frames")
        out.pop("proprio")
        clean = lambda x: None if isinstance(x, float) and not math.isfinite(x) else x
        out["final_distance"] = clean(out["final_distance"])
        out["ms_per_step"] = clean(out["ms_per_step"])
        out["distances"] = [clean(d) for d in out["distances"]]
        return out


def criteria_rates(records: list[EpisodeRecord]) -> dict[str, float]:
    """Per success criterion any of ``records`` reports (``EpisodeRecord.criteria``): the share of the records
    that met it (a record without it counts as not met)."""
    names = sorted({name for record in records for name in record.criteria})
    return {name: sum(record.criteria.get(name, False) for record in records) / len(records) for name in names}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_action(action: Any, space: gym.Space) -> np.ndarray:
    """Cast an agent's action to ``space``'s shape and dtype; ``ValueError`` with the reason if it cannot.

    For a ``Box``: the shape must match exactly, the values must be finite and castable to the dtype;
    finite values slightly outside the bounds are clipped.
    """
    if not isinstance(space, gym.spaces.Box):
        if not space.contains(action):
            raise ValueError(f"action {action!r} is not in the action space {space}")
        return action
    try:
        array = np.asarray(action)
    except Exception as exc:
        raise ValueError(
            f"action of type {type(action).__name__} is not array-like ({_one_line(exc)})"
        ) from exc
    if array.shape != space.shape:
        raise ValueError(f"action has shape {array.shape}, expected {space.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"action has dtype {array.dtype}, which cannot be cast to {space.dtype}")
    array = array.astype(space.dtype)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"action is not finite: {array.tolist()}")
    return np.clip(array, space.low, space.high)


def _step_limit(env: gym.Env, max_steps: int | None) -> int:
    if max_steps is not None:
        return int(max_steps)
    spec = getattr(env, "spec", None)
    limit = getattr(spec, "max_episode_steps", None) if spec is not None else None
    return int(limit) if limit else DEFAULT_MAX_STEPS


def run_episode(
    env: gym.Env,
    agent: Agent,
    seed: int,
    max_steps: int | None = None,
    record_frames: bool = False,
    agent_name: str | None = None,
    options: dict[str, Any] | None = None,
) -> EpisodeRecord:
    """Play one episode of ``agent`` in ``env`` from ``env.reset(seed=seed)``; never raises for faults.

    ``max_steps``: stop after this many steps (default: the env's ``spec.max_episode_steps``, which its
    ``TimeLimit`` enforces anyway). ``agent_name`` labels failures (default: the agent's class name).
    """
    name = agent_name or type(agent).__name__
    limit = _step_limit(env, max_steps)
    act_ms: list[float] = []
    distances: list[float] = []
    frames: list[np.ndarray] | None = [] if record_frames else None
    proprio: list[np.ndarray] = []
    info: dict[str, Any] = {}
    steps = 0
    failure: str | None = None

    def record(observation: Any, step_info: dict[str, Any]) -> None:
        distances.append(float(step_info.get("distance", math.nan)))
        if frames is not None:
            pixels, body = split_observation(observation)
            frames.append(np.array(pixels, copy=True))
            if body is not None:
                proprio.append(np.array(body, copy=True))

    def finish() -> EpisodeRecord:
        return EpisodeRecord(
            seed=int(seed),
            success=bool(info.get("is_success", False)) and failure is None,
            criteria={k: bool(v) and failure is None for k, v in info.items()
                      if k.endswith("_success") and k != "is_success"},
            final_distance=distances[-1] if distances else math.nan,
            steps=steps,
            ms_per_step=statistics.median(act_ms) if act_ms else math.nan,
            distances=distances,
            failure=failure,
            frames=frames,
            proprio=proprio if frames is not None and proprio else None,
        )

    try:
        observation, info = env.reset(seed=int(seed), options=options)
    except Exception as exc:  # noqa: BLE001
        failure = f"env reset(seed={seed}) raised {_one_line(exc)}"
        return finish()
    record(observation, info)
    try:
        agent.reset(observation, info)
    except Exception as exc:  # noqa: BLE001
        failure = f"agent {name!r} raised in reset: {_one_line(exc)}"
        return finish()

    while steps < limit:
        start = time.perf_counter()
        try:
            raw = agent.act(observation)
        except Exception as exc:  # noqa: BLE001
            failure = f"agent {name!r} raised in act at step {steps}: {_one_line(exc)}"
            break
        act_ms.append((time.perf_counter() - start) * 1000.0)
        try:
            action = check_action(raw, env.action_space)
        except ValueError as exc:
            failure = (
                f"agent {name!r} returned an invalid action at step {steps}: {' '.join(str(exc).split())}"
            )
            break
        try:
            observation, _, terminated, truncated, info = env.step(action)
        except Exception as exc:  # noqa: BLE001
            failure = f"env step raised at step {steps}: {_one_line(exc)}"
            break
        steps += 1
        record(observation, info)
        if info.get("failure"):
            failure = f"env failure at step {steps}: {' '.join(str(info['failure']).split())}"
            break
        if terminated or truncated:
            break
    return finish()
