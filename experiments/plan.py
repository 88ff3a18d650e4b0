"""Run an agent in an env: ``python -m experiments.plan env=NAME agent=NAME [checkpoint=PATH] [episodes=N] ...``

``agents.runner`` plays the episodes: episode i from ``env.reset(seed=seed + i)`` with a freshly built agent,
so its result does not depend on ``workers``; world-model agents get the checkpoint (default: the newest
pretrain run for the env) loaded once per process.

The run directory (default ``runs/plan/<env>/<agent>/<timestamp>``) holds ``summary.json`` (success
rate, final distance, planning ms per action, failed episodes with reasons, one record per episode),
``tb/`` (see ``agents.rollout_inspection``) and ``.hydra/``. A misbehaving agent fails its
episode, not the run.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

import envs
from agents import available_agents
from agents.rollout_inspection import RolloutInspector
from agents.runner import EpisodeJob, agent_class, needs_world_model, process_state, run_episodes, summarize
from envs.trajectory_goals import goal_step_budget, trajectory_goals
from experiments.common import check_settings, hydra_cli, pretrain_run, run_dir
from experiments.env_option import CONFIGS, env_agent_params, register_env_option
from experiments.plan_config import PlanConfig, register_plan_schema
from worldmodel.devices import resolve_device
from worldmodel.io.summary import write_summary
from worldmodel.world_model import WORLD_MODEL_FILE

TARGET_OPTION = "target"  # the agent config-group option that `agent._target_=...` / `agent=pkg.mod:Class` use


def prepare_overrides(argv: list[str]) -> list[str]:
    """Check ``env=``/``agent=`` before Hydra sees them (one-line errors listing the known names) and make
    plug-in envs/agents (``experiments.env_option``) and dotted agent paths selectable as config-group options."""
    store = ConfigStore.instance()
    overrides = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in argv if "=" in a and not a.startswith("-")}
    # Agent params are an open dict: `agent.params.K=V` adds K or replaces it (the class checks the names).
    out = [f"++{a}" if a.startswith("agent.params.") else a for a in register_env_option(argv)]
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


def _main(cfg: DictConfig) -> None:
    check_settings(cfg, PlanConfig)
    torch.set_num_threads(cfg.threads)
    label = cfg.agent._target_ or cfg.agent.name
    env_params = env_agent_params(cfg.env.name, cfg.agent.name)  # as the benchmark reads them
    params = {**env_params, **OmegaConf.to_container(cfg.agent.params, resolve=True)}  # the command line wins
    cls = agent_class(label)
    checkpoint = None
    if needs_world_model(cls):
        checkpoint = str(pretrain_run(cfg.checkpoint, Path(cfg.pretrain_root) / cfg.env.name, WORLD_MODEL_FILE,
                                      f"`python -m experiments.pretrain env={cfg.env.name}`"))
    options, goals = None, None
    if cfg.goal_steps is not None:
        goals = trajectory_goals(envs.make(cfg.env.name, image_size=cfg.env.image_size), cfg.episodes,
                                 cfg.goal_steps, cfg.seed)
        options = [{"start": g.start, "goal": g.goal} for g in goals]
    out = run_dir()
    job = EpisodeJob(env=cfg.env.name, image_size=cfg.env.image_size, agent=label, params=params, seed=cfg.seed,
                     max_steps=goal_step_budget(cfg.goal_steps, cfg.max_steps), checkpoint=checkpoint,
                     device=str(resolve_device(cfg.device)), record_frames=cfg.tb.enabled)
    inspector = None
    if cfg.tb.enabled:
        wm = (lambda: process_state(job).world_model) if checkpoint else None
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
    others = "".join(f" ({name} {rate:.2f})" for name, rate in summary["criteria_success_rates"].items())
    print(f"{cfg.agent.name} on {cfg.env.name}{goal}: success {summary['success_rate']:.2f}{others}, "
          f"final distance {summary['mean_final_distance']:.3f}, {ms['median']:.1f} ms/step (median), "
          f"{summary['failed_episodes']['count']} failed episode(s)")
    levels = summary["steps_per_level"]
    if levels:
        shares = ", ".join(f"level {level} {n / sum(levels.values()):.0%}" for level, n in levels.items())
        print(f"steps planned by each level: {shares}")
    print(f"run directory: {out}")


def cli() -> None:
    register_plan_schema()
    hydra_cli("plan", _main, prepare_overrides)


if __name__ == "__main__":
    cli()
