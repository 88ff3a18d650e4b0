"""Run an agent in an env: ``python -m experiments.plan env=NAME agent=NAME [checkpoint=PATH] [episodes=N] ...``

Episode i plays from ``env.reset(seed=seed + i)`` with a freshly built agent (its ``seed`` parameter,
when it has one and the config does not set it, is ``seed + i`` too), so an episode's result does not
depend on ``workers`` or on the order episodes ran in. World-model agents (classes whose signature
names ``world_model``) get the checkpoint loaded once per process; other agents never load it.

The run directory (default ``runs/plan/<env>/<agent>/<timestamp>``) holds ``summary.json`` (success
rate, final distance, planning ms per action, failed episodes with reasons, one record per episode),
``tb/`` (see ``experiments.rollout_inspection``) and ``.hydra/``. A misbehaving agent fails its
episode, not the run.
"""

from __future__ import annotations

import inspect
import logging
import math
import multiprocessing
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.common import check_settings, newest_run, user_errors_as_one_line
from worldmodel.errors import UserError

log = logging.getLogger("worldmodel.plan")
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TARGET_OPTION = "target"  # the agent config-group option that `agent._target_=...` / `agent=pkg.mod:Class` use


# ---- what one episode needs, picklable for worker processes -------------------------------------
@dataclass(frozen=True)
class EpisodeJob:
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


_PROCESS: _Process | None = None


def agent_class(label: str) -> type:
    from agents import resolve_agent

    return resolve_agent(label)


def needs_world_model(cls: type) -> bool:
    """True for agents whose constructor names ``world_model`` (only those get a checkpoint loaded)."""
    try:
        return "world_model" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def load_world_model(checkpoint: str, device: str, env: Any = None) -> Any:
    try:
        from worldmodel.world_model import WorldModel
    except ImportError as exc:
        raise UserError(f"this agent needs a world model, but worldmodel.world_model is unavailable: {exc}") from exc
    model = WorldModel.load(checkpoint, device)
    if env is not None:
        model.check_compatible(env)
    return model


def _process_state(job: EpisodeJob) -> _Process:
    global _PROCESS
    if _PROCESS is None or _PROCESS.job != job:
        import envs

        envs.load_plugins()
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


def run_one(job: EpisodeJob, index: int, options: dict | None = None):
    """Play episode ``index`` of ``job`` (fresh agent, seed ``job.seed + index``; ``options`` go to
    ``env.reset``, e.g. a start and goal from ``envs.trajectory_goals``): an ``EpisodeResult``."""
    from agents import make_agent, run_episode
    from experiments.rollout_inspection import EpisodeResult

    state = _process_state(job)
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
    import torch

    torch.set_num_threads(threads)  # workers share the cores: no oversubscription


def _run_in_worker(args: tuple[EpisodeJob, int, dict | None]):
    return run_one(*args)


def run_episodes(job: EpisodeJob, episodes: int, workers: int, on_result=None, progress: bool = True,
                 threads: int = 1, options: list[dict] | None = None) -> list:
    """All episodes, in index order; ``on_result(result)`` is called in this process as each one finishes
    (outside any timed section). ``workers > 1`` plays them in that many spawned processes, each with
    ``threads`` torch threads. ``options[i]``: reset options of episode ``i``."""
    options = options if options is not None else [None] * episodes
    from tqdm import tqdm

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


# ---- summary ---------------------------------------------------------------------------------------
def summarize(results: list, agent: str) -> dict[str, Any]:
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
        "episodes": episodes,
    }


def _reason_kind(failure: str) -> str:
    """A failure line without its step number, so equal faults group together."""
    import re

    return re.sub(r" at step \d+", "", failure)


# ---- checkpoint --------------------------------------------------------------------------------------
def resolve_checkpoint(checkpoint: str | None, pretrain_root: str, env: str) -> Path:
    make_it = f"`python -m experiments.pretrain env={env}`"
    if checkpoint:
        path = Path(checkpoint)
        if not path.is_dir():
            raise FileNotFoundError(f"checkpoint={checkpoint} is not a directory; pass a pretrain run directory "
                                    f"(made by {make_it}, under {pretrain_root}/{env}/)")
        return path
    from worldmodel.world_model import WORLD_MODEL_FILE

    root = Path(pretrain_root) / env
    try:
        return newest_run(root, WORLD_MODEL_FILE)
    except FileNotFoundError:
        raise FileNotFoundError(f"no pretrain run for env {env!r} under {root}/ (the default checkpoint); "
                                f"make one with {make_it} or pass checkpoint=PATH") from None


# ---- command line ---------------------------------------------------------------------------------
def prepare_overrides(argv: list[str]) -> list[str]:
    """Check ``env=``/``agent=`` before Hydra sees them (one-line errors listing the known names) and make
    plug-in envs/agents and dotted agent paths selectable as config-group options."""
    from hydra.core.config_store import ConfigStore

    import envs
    from agents import available_agents

    store = ConfigStore.instance()
    overrides = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in argv if "=" in a and not a.startswith("-")}
    # Agent params are an open dict: `agent.params.K=V` adds K or replaces it (the class checks the names).
    out = [f"++{a}" if a.startswith("agent.params.") else a for a in argv]
    envs.load_plugins()
    env = overrides.get("env")
    if env is not None and not (CONFIGS / "env" / f"{env}.yaml").is_file():
        if env not in envs.ENV_IDS:
            raise ValueError(f"unknown env {env!r}; choose one of: {', '.join(sorted(envs.ENV_IDS))} "
                             "(or install a package with a 'worldmodel.envs' entry point)")
        store.store(group="env", name=env, node={"name": env})
    agent = overrides.get("agent")
    target = overrides.get("agent._target_")
    if agent is not None and (":" in agent or "." in agent):  # agent=pkg.mod:Class
        target = agent
        out[out.index(f"agent={agent}")] = f"agent.{'_target_'}={agent}"
        agent = None
        out.append(f"agent={TARGET_OPTION}")
    elif target is not None and agent is None:
        out.append(f"agent={TARGET_OPTION}")
    if target is not None:
        label = target.replace(":", ".").rsplit(".", 1)[-1]
        store.store(group="agent", name=TARGET_OPTION, node={"name": label, "_target_": target, "params": {}})
    if agent is not None and agent != TARGET_OPTION and not (CONFIGS / "agent" / f"{agent}.yaml").is_file():
        known = available_agents()
        if agent not in known:
            raise ValueError(f"unknown agent {agent!r}; choose one of: {', '.join(known)} "
                             "(or agent._target_=pkg.module:Class, or install a 'worldmodel.agents' plug-in)")
        store.store(group="agent", name=agent, node={"name": agent, "params": {}})
    return out


def _main(cfg) -> None:
    from omegaconf import OmegaConf

    from experiments.common import run_dir
    from experiments.plan_config import PlanConfig
    from experiments.rollout_inspection import RolloutInspector
    from worldmodel.devices import resolve_device
    from worldmodel.io.summary import write_summary

    check_settings(cfg, PlanConfig)
    import torch

    torch.set_num_threads(cfg.threads)
    label = cfg.agent._target_ or cfg.agent.name
    env_params = OmegaConf.to_container(cfg.env.agents, resolve=True).get(cfg.agent.name, {})
    params = {**env_params, **OmegaConf.to_container(cfg.agent.params, resolve=True)}  # the command line wins
    cls = agent_class(label)
    checkpoint = None
    if needs_world_model(cls):
        checkpoint = str(resolve_checkpoint(cfg.checkpoint, cfg.pretrain_root, cfg.env.name))
    options, goals = None, None
    if cfg.goal_steps is not None:
        import envs
        from envs.trajectory_goals import trajectory_goals

        envs.load_plugins()
        goals = trajectory_goals(envs.make(cfg.env.name, image_size=cfg.env.image_size), cfg.episodes,
                                 cfg.goal_steps, cfg.seed)
        options = [{"start": g.start, "goal": g.goal} for g in goals]
    out = run_dir()
    job = EpisodeJob(env=cfg.env.name, image_size=cfg.env.image_size, agent=label, params=params, seed=cfg.seed,
                     max_steps=cfg.max_steps, checkpoint=checkpoint, device=str(resolve_device(cfg.device)),
                     record_frames=cfg.tb.enabled)
    inspector = None
    if cfg.tb.enabled:
        wm = (lambda: _process_state(job).world_model) if checkpoint else None
        inspector = RolloutInspector(out / "tb", cfg, world_model=wm, checkpoint=checkpoint)
    start = time.perf_counter()
    try:
        results = run_episodes(job, cfg.episodes, cfg.workers, threads=cfg.threads,
                               on_result=inspector.log_episode if inspector else None, options=options)
    finally:
        if inspector is not None:
            inspector.flush()
    wall = time.perf_counter() - start
    summary = {"command": "plan", "env": cfg.env.name, "agent": cfg.agent.name, "target": cfg.agent._target_,
               "params": params, "checkpoint": checkpoint, "seed": cfg.seed, "workers": cfg.workers,
               "threads": cfg.threads, "device": job.device, "goal_steps": cfg.goal_steps,
               "goal_distance": None if goals is None else statistics.fmean(g.distance for g in goals),
               "wall_s": wall, **summarize(results, cfg.agent.name),
               "cost_calibration": inspector.cost_calibration() if inspector is not None else None}
    if inspector is not None:
        inspector.log_final(summary)
        inspector.close()
    write_summary(out, summary)
    ms = summary["ms_per_step"]
    goal = "" if cfg.goal_steps is None else f" (goals {cfg.goal_steps} steps ahead on held-out trajectories)"
    print(f"{cfg.agent.name} on {cfg.env.name}{goal}: success {summary['success_rate']:.2f}, "
          f"final distance {summary['mean_final_distance']:.3f}, {ms['median']:.1f} ms/step (median), "
          f"{summary['failed_episodes']['count']} failed episode(s)")
    print(f"run directory: {out}")


def cli() -> None:
    import hydra

    from experiments.plan_config import register_plan_schema

    register_plan_schema()
    try:
        sys.argv = [sys.argv[0], *prepare_overrides(sys.argv[1:])]
    except (UserError, ValueError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(2)
    hydra.main(version_base="1.3", config_path="../configs", config_name="plan")(user_errors_as_one_line(_main))()


if __name__ == "__main__":
    cli()
