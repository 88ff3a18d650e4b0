"""Measure the whole system in one run: ``python -m experiments.benchmark [quick=true] [env=NAME] [checkpoint=DIR]``.

``sections=[render,pretrain]`` picks sections; the pretrain and agents sections run on ``device=auto`` (CUDA when
available; ``cpu``, ``cuda`` or ``cuda:N`` to choose), the pretrain step in bf16 autocast on GPUs that have it
(``precision=fp32`` to turn it off; the peak is then the bf16 matmul rate).

Sections (each a median over repeats, all measured in this process, on this machine, now):
  render     frames/s of env.step with rendering per env of render.envs, and of rendering the exploration data
             in 1 and more processes (data.render_workers)
  pretrain   the loader's clips/s on the clips pretrain reads (data=...) against what one training step consumes;
             the step's time, clips/s and model FLOP/s as a fraction of the matmul peak measured in the same run
  agents     per env and agent: success, final distance and ms per action (world-model agents need a checkpoint)
  physics    (only when named) per env of render.envs: batched physics steps/s, a greedy true-dynamics planner
  goals      (only when named) success against goal distance on env=NAME: every agent of goals.names on the same
             goals k steps ahead for each k of goals.goal_steps; the curve also in TensorBoard (run dir, tb/)
Prints a table per section and writes ``benchmark.json`` (and ``summary.json``) in the run directory.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

import envs
from agents.benchmark import format_agents, measure_agents
from agents.goal_curve import format_goal_curve, log_goal_curve, measure_goal_curve
from envs.benchmark import exploration_fps, format_physics, format_render, physics_and_greedy, render_fps
from envs.trajectory_goals import check_goal_steps
from experiments.benchmark_config import BenchmarkConfig, register_benchmark_schema
from experiments.common import check_settings, hydra_cli, pretrain_run, run_dir
from experiments.env_option import env_agent_params, register_env_option
from experiments.pretrain import build_model_config, exploration_data
from worldmodel.data.clip_sources import build_clip_dataset
from worldmodel.devices import resolve_device
from worldmodel.io.tb import TensorBoardLogger
from worldmodel.training.distributed import DistInfo
from worldmodel.training.step_benchmark import format_step, measure_training_step
from worldmodel.world_model import WORLD_MODEL_FILE


def bench_pretrain(cfg: DictConfig) -> dict[str, Any]:
    """Loader throughput and the cost of one V-JEPA training step on the clips pretrain would read (``data=``)."""
    model_cfg = build_model_config(cfg.model)
    single = DistInfo(rank=0, local_rank=0, world_size=1, is_main=True, device=resolve_device(cfg.device))
    clips, _, _ = build_clip_dataset(cfg, model_cfg, single, lambda: exploration_data(cfg))
    return measure_training_step(cfg.model.name, model_cfg, clips, batch_size=cfg.pretrain.batch_size,
                                 loader_workers=cfg.data.num_workers, loader_batches=cfg.loader.batches,
                                 warmup=cfg.pretrain.warmup, steps=cfg.pretrain.steps, compile=cfg.pretrain.compile,
                                 precision=cfg.precision, device=resolve_device(cfg.device))


def _checkpoint_for(cfg: DictConfig, env_name: str) -> str | None:
    """``checkpoint=RUN`` (one-line error when it is no pretrain run), else the newest pretrain run of
    ``env_name`` with a world model, or None (the world-model agents are then skipped)."""
    try:
        return str(pretrain_run(cfg.checkpoint, Path("runs/pretrain") / env_name, WORLD_MODEL_FILE,
                                "`python -m experiments.pretrain`"))
    except FileNotFoundError:
        if cfg.checkpoint is not None:
            raise
        return None


def bench_agents(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """Per env and agent: episodes through the fault-isolating loop; success, distance and ms per action."""
    device = resolve_device(cfg.device)  # where the world model and the latent agents' plans live
    return measure_agents(list(cfg.agents.envs), list(cfg.agents.names), cfg.agents.episodes, cfg.agents.max_steps,
                          str(device), partial(_checkpoint_for, cfg), params_for=env_agent_params)  # the env's, as plan


def bench_goals(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """Success against goal distance on ``cfg.env``; the curve goes to TensorBoard under ``out/tb``."""
    curve = measure_goal_curve(cfg.env.name, list(cfg.goals.names), list(cfg.goals.goal_steps), cfg.goals.episodes,
                               cfg.goals.max_steps, str(resolve_device(cfg.device)), partial(_checkpoint_for, cfg),
                               params_for=env_agent_params)
    with TensorBoardLogger(out / "tb") as logger:
        log_goal_curve(logger, curve)
    return curve


def print_tables(results: dict[str, Any]) -> None:
    """One table per measured section."""
    tables = {"render": lambda r: format_render(r["render"], r["exploration"], r["config"]["env"]["name"]),
              "physics": lambda r: format_physics(r["physics"]), "pretrain": lambda r: format_step(r["pretrain"]),
              "agents": lambda r: format_agents(r["agents"]), "goals": lambda r: format_goal_curve(r["goals"])}
    for section, table in tables.items():
        if section in results:
            print("\n" + table(results))


def main(cfg: DictConfig) -> None:
    if cfg.quick:
        cfg = OmegaConf.merge(cfg, cfg.quick_overrides)
    check_settings(cfg, BenchmarkConfig)
    resolve_device(cfg.device)  # a bad device fails before any section runs
    for name in {cfg.env.name, *cfg.render.envs, *cfg.agents.envs}:  # ours or a plug-in's; an unknown one fails here
        envs.gym_id(name)
    if "goals" in cfg.sections:  # a goal distance the env cannot serve fails before any section runs
        for k in cfg.goals.goal_steps:
            check_goal_steps(envs.make(cfg.env.name), k)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = run_dir()
    results = {"quick": bool(cfg.quick), "config": OmegaConf.to_container(cfg, resolve=True)}
    if "render" in cfg.sections:
        results["render"] = {name: render_fps(name, cfg.render.steps, image_size=cfg.render.image_size)
                             for name in cfg.render.envs}
        results["exploration"] = exploration_fps(cfg.env.name, cfg.render.exploration_episodes, cfg.render.image_size,
                                                 list(cfg.render.exploration_workers))
    if "physics" in cfg.sections:
        results["physics"] = {name: physics_and_greedy(name, cfg.physics.samples, cfg.physics.greedy_episodes)
                              for name in cfg.render.envs}
    if "pretrain" in cfg.sections:
        results["pretrain"] = bench_pretrain(cfg)
    if "agents" in cfg.sections:
        results["agents"] = bench_agents(cfg)
    if "goals" in cfg.sections:
        results["goals"] = bench_goals(cfg, out)
    print_tables(results)
    text = json.dumps(results, indent=2, default=float)
    (out / "benchmark.json").write_text(text)
    (out / "summary.json").write_text(text)
    print(f"\nrun directory: {out}")


def cli() -> None:
    register_benchmark_schema()
    hydra_cli("benchmark", main, register_env_option)


if __name__ == "__main__":
    cli()
