"""Agents measured in one process: per env and agent, seeded episodes through the fault-isolating loop
(``agents.episodes.run_episode``), with success, final distance and median ms per action."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

import envs
from agents import make_agent, run_episode
from agents.episodes import criteria_rates
from agents.runner import load_world_model
from envs.trajectory_goals import goal_step_budget, trajectory_goals

log = logging.getLogger("worldmodel.benchmark")
WORLD_MODEL_AGENTS = ("mpc", "hierarchical")


def measure_agents(env_names: list[str], agent_names: list[str], episodes: int, max_steps: int | None, device: str,
                   checkpoint_for: Callable[[str], str | None],
                   params_for: Callable[[str, str], dict[str, Any]] = lambda env, agent: {},
                   goal_steps: int | None = None) -> dict[str, dict[str, Any]]:
    """Per ``env/agent``: ``episodes`` episodes from seeds 1000, 1001, ...; the agent is built with
    ``params_for(env, agent)``; the world-model agents run on ``checkpoint_for(env)`` (on ``device``) and are
    skipped, with a log line, when it is None. ``goal_steps``: episode ``e`` starts and ends where held-out
    trajectory ``e`` is now and ``goal_steps`` steps later (``envs.trajectory_goals``, seed 1000), the same pairs
    for every agent; ``max_steps`` None: twice ``goal_steps`` (``goal_step_budget``), else the env's time limit."""
    results: dict[str, dict[str, Any]] = {}
    limit = goal_step_budget(goal_steps, max_steps)
    for env_name in env_names:
        checkpoint = checkpoint_for(env_name)
        options: list[dict[str, Any] | None] = [None] * episodes
        if goal_steps is not None:
            goals = trajectory_goals(envs.make(env_name), episodes, goal_steps, seed=1000)
            options = [{"start": g.start, "goal": g.goal} for g in goals]
        needs_model = any(name in WORLD_MODEL_AGENTS for name in agent_names)
        world_model = None
        if needs_model and checkpoint is not None:
            world_model = load_world_model(checkpoint, device, envs.make(env_name))
        for agent_name in agent_names:
            if agent_name in WORLD_MODEL_AGENTS and world_model is None:
                log.info("skipping %s on %s: no checkpoint (pass checkpoint=RUN_DIR)", agent_name, env_name)
                continue
            env = envs.make(env_name)
            context = {"world_model": world_model} if agent_name in WORLD_MODEL_AGENTS else {}
            agent = make_agent(agent_name, env, **params_for(env_name, agent_name), **context)
            records = [run_episode(env, agent, seed=1000 + e, max_steps=limit, agent_name=agent_name,
                                   options=options[e]) for e in range(episodes)]
            env.close()
            ms = [r.ms_per_step for r in records if np.isfinite(r.ms_per_step)]
            results[f"{env_name}/{agent_name}"] = {
                "env": env_name, "agent": agent_name, "episodes": len(records),
                "success_rate": float(np.mean([r.success for r in records])),
                "criteria_success_rates": criteria_rates(records),
                "mean_final_distance": float(np.nanmean([r.final_distance for r in records])),
                "ms_per_step": statistics.median(ms) if ms else float("nan"),
                "failed_episodes": sum(r.failure is not None for r in records),
                "checkpoint": checkpoint if agent_name in WORLD_MODEL_AGENTS else None, "goal_steps": goal_steps,
            }
    return results


def format_agents(results: dict[str, dict[str, Any]]) -> str:
    """``measure_agents``' results as a table: one row per env/agent."""
    lines = [f"{'env/agent':<34} {'success':>8} {'final dist':>10} {'ms/action':>10} {'failed':>7}"]
    lines += [f"  {key:<32} {r['success_rate']:>8.0%} {r['mean_final_distance']:>10.3f} {r['ms_per_step']:>10.1f} "
              f"{r['failed_episodes']:>7d}" for key, r in results.items()]
    return "\n".join(lines)
