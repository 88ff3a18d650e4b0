"""Play the episodes of one agent in one env, in this process or in spawned worker processes, and summarise them.

Episode i plays from ``env.reset(seed=seed + i)`` with a freshly built agent (its ``seed`` parameter, when it has
one and the params do not set it, is ``seed + i`` too), so an episode's result does not depend on the number of
workers or on the order episodes ran in. World-model agents (classes whose signature names ``world_model``) get
the checkpoint loaded once per process; other agents never load it. A misbehaving agent fails its episode
(``agents.episodes.run_episode``), not the run.
"""

from __future__ import annotations

import inspect
import math
import multiprocessing
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import envs
from agents.episodes import EpisodeRecord, criteria_rates, run_episode
from agents.registry import make_agent, resolve_agent
from worldmodel.errors import UserError
from worldmodel.world_model import WorldModel


@dataclass
class EpisodeResult:
    """One played episode with what the TensorBoard views need (``agents.rollout_inspection``)."""

    index: int
    record: EpisodeRecord
    act_ms: list[float] = field(default_factory=list)  # wall time of each act call
    goal_image: np.ndarray | None = None  # (H, W, 3) uint8
    goal_proprio: np.ndarray | None = None  # (P,) for envs with proprioception
    diagnostics: list[dict[str, Any]] = field(default_factory=list)  # agent.diagnostics after each act


@dataclass(frozen=True)
class EpisodeJob:
    """What every episode of a run needs; picklable, for worker processes."""

    env: str
    image_size: int
    agent: str  # a registered name or a dotted path
    params: dict[str, Any]
    seed: int  # episode i uses seed + i
    max_steps: int | None
    checkpoint: str | None  # set iff the agent takes a world model
    device: str  # a torch device, already resolved (not "auto")
    record_frames: bool = True


@dataclass
class _Process:
    """What a process builds once and reuses for all its episodes."""

    job: EpisodeJob
    env: Any
    world_model: Any = None
    takes_seed: bool = False


_PROCESS: _Process | None = None  # this process's env, world model, ...: built for the first job, kept for the next


def agent_class(label: str) -> type:
    """The agent class of a registered name or a dotted path."""
    return resolve_agent(label)


def needs_world_model(cls: type) -> bool:
    """True for agents whose constructor names ``world_model`` (only those get a checkpoint loaded)."""
    try:
        return "world_model" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def load_world_model(checkpoint: str, device: str, env: Any = None) -> Any:
    """The ``WorldModel`` of a pretrain run on ``device``, checked against ``env`` when given."""
    model = WorldModel.load(checkpoint, device)
    if env is not None:
        model.check_compatible(env)
    return model


def process_state(job: EpisodeJob) -> _Process:
    """This process's env and world model for ``job``, built on first use (once per process and job)."""
    global _PROCESS
    if _PROCESS is None or _PROCESS.job != job:
        env = envs.make(job.env, image_size=job.image_size)
        world_model = load_world_model(job.checkpoint, job.device, env) if job.checkpoint else None
        try:
            takes_seed = "seed" in inspect.signature(agent_class(job.agent)).parameters
        except (TypeError, ValueError):
            takes_seed = False
        _PROCESS = _Process(job, env, world_model, takes_seed)
    return _PROCESS


class _Recorder:
    """Wraps an agent: times its ``act`` alone and keeps the goal image and per-step ``diagnostics``."""

    def __init__(self, agent: Any):
        self.agent = agent
        self.goal_image: np.ndarray | None = None
        self.goal_proprio: np.ndarray | None = None
        self.act_ms: list[float] = []
        self.diagnostics: list[dict[str, Any]] = []

    def reset(self, observation: np.ndarray, info: dict[str, Any]) -> None:
        goal, goal_proprio = info.get("goal_image"), info.get("goal_proprio")
        self.goal_image = None if goal is None else np.array(goal, copy=True)
        self.goal_proprio = None if goal_proprio is None else np.array(goal_proprio, copy=True)
        self.agent.reset(observation, info)

    def act(self, observation: np.ndarray) -> Any:
        start = time.perf_counter()
        action = self.agent.act(observation)
        self.act_ms.append((time.perf_counter() - start) * 1000.0)
        diagnostics = getattr(self.agent, "diagnostics", None)
        if isinstance(diagnostics, dict):
            self.diagnostics.append(_plain_diagnostics(diagnostics))
        return action


def _plain_diagnostics(diagnostics: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in diagnostics.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().float().numpy().copy()
        elif isinstance(value, np.ndarray):
            value = value.copy()
        elif isinstance(value, (np.floating, np.integer)):
            value = value.item()
        out[key] = value
    return out


def run_one(job: EpisodeJob, index: int, options: dict | None = None) -> EpisodeResult:
    """Play episode ``index`` of ``job`` (fresh agent, seed ``job.seed + index``; ``options`` go to
    ``env.reset``, e.g. a start and goal from ``envs.trajectory_goals``)."""
    state = process_state(job)
    seed = job.seed + index
    params = dict(job.params)
    if state.takes_seed and "seed" not in params:
        params["seed"] = seed
    context = {"world_model": state.world_model, "device": job.device} if state.world_model is not None else {}
    try:
        agent = make_agent(job.agent, state.env, **params, **context)
    except Exception as exc:  # a bad parameter or an agent unfit for this env: the user's to fix
        text = " ".join(str(exc).split())
        raise UserError(f"agent {job.agent!r} could not be built for env {job.env!r}: {text}") from exc
    recorder = _Recorder(agent)
    record = run_episode(state.env, recorder, seed=seed, max_steps=job.max_steps,
                         record_frames=job.record_frames, agent_name=job.agent, options=options)
    if recorder.act_ms:
        record.ms_per_step = statistics.median(recorder.act_ms)
    return EpisodeResult(index=index, record=record, act_ms=recorder.act_ms, goal_image=recorder.goal_image,
                         goal_proprio=recorder.goal_proprio, diagnostics=recorder.diagnostics)


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)  # workers share the cores: no oversubscription


def _run_in_worker(args: tuple[EpisodeJob, int, dict | None]) -> EpisodeResult:
    return run_one(*args)


def run_episodes(job: EpisodeJob, episodes: int, workers: int,
                 on_result: Callable[[EpisodeResult], None] | None = None, progress: bool = True, threads: int = 1,
                 options: list[dict] | None = None) -> list[EpisodeResult]:
    """All episodes, in index order; ``on_result(result)`` is called in this process as each one finishes
    (outside any timed section). ``workers > 1`` plays them in that many spawned processes, each with
    ``threads`` torch threads. ``options[i]``: reset options of episode ``i``."""
    options = options if options is not None else [None] * episodes
    results = []
    bar = tqdm(total=episodes, desc=f"{job.agent} on {job.env}", unit="episode", disable=not progress)
    if workers <= 1 or episodes <= 1:
        stream = (run_one(job, i, options[i]) for i in range(episodes))
        pool = None
    else:
        workers = min(workers, episodes)
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(threads,))
        stream = pool.imap_unordered(_run_in_worker, [(job, i, options[i]) for i in range(episodes)])
    try:
        for result in stream:
            if on_result is not None:
                on_result(result)
            result.record.frames = result.record.proprio = None  # logged already: do not keep them in memory
            results.append(result)
            bar.update(1)
            bar.set_postfix(success=f"{sum(r.record.success for r in results)}/{len(results)}")
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    return sorted(results, key=lambda r: r.index)


def summarize(results: list[EpisodeResult], agent: str) -> dict[str, Any]:
    """The plan section of ``summary.json`` from the episode results (in index order)."""
    records = [r.record for r in results]
    all_ms = [ms for r in results for ms in r.act_ms]
    finals = [rec.final_distance for rec in records if math.isfinite(rec.final_distance)]
    failed = [rec for rec in records if rec.failure]
    episodes = []
    for rec in records:
        entry = rec.to_dict()
        entry["agent"] = agent if rec.failure else None
        episodes.append(entry)
    return {
        "success_rate": sum(rec.success for rec in records) / len(records) if records else math.nan,
        # the env's other success criteria (info["<name>_success"]), over the same episodes
        "criteria_success_rates": criteria_rates(records),
        "mean_final_distance": statistics.fmean(finals) if finals else math.nan,
        "ms_per_step": {
            "median": statistics.median(all_ms) if all_ms else math.nan,
            "mean": statistics.fmean(all_ms) if all_ms else math.nan,
            "steps": len(all_ms),
        },
        "failed_episodes": {
            "count": len(failed),
            "reasons": dict(Counter(_reason_kind(rec.failure) for rec in failed)),
        },
        # steps planned by each level (diagnostics["level"] of the hierarchical agent); empty for flat agents
        "steps_per_level": dict(sorted(Counter(str(d["level"]) for r in results for d in r.diagnostics
                                               if d.get("level") is not None).items())),
        "episodes": episodes,
    }


def _reason_kind(failure: str) -> str:
    """A failure line without its step number, so equal faults group together."""
    return re.sub(r" at step \d+", "", failure)
