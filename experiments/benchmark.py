"""Measure the whole system in one run: ``python -m experiments.benchmark [quick=true] [env=NAME] [checkpoint=DIR]``.

``sections=[render,pretrain]`` picks sections; the pretrain and agents sections run on ``device=auto`` (CUDA when
available; ``cpu``, ``cuda`` or ``cuda:N`` to choose), the pretrain step in bf16 autocast on GPUs that have it
(``precision=fp32`` to turn it off; the peak is then the bf16 matmul rate).

Sections (each a median over repeats, all measured in this process, on this machine, now):
  render     MuJoCo frames/s of env.step with rendering, per env, at the default resolution; and of rendering
             the exploration data in 1 and more processes (data.render_workers)
  loader     clips/s the training loader delivers, against the clips/s one training step consumes
  pretrain   step time, clips/s, model FLOP/s and its fraction of the matmul peak measured in the same run
  planning   ms per action per agent (agents needing a world model only with a checkpoint)
  episodes   success rate and final distance per env and agent
Prints a table per section and writes ``benchmark.json`` (and ``summary.json``) in the run directory.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from experiments.benchmark_config import BenchmarkConfig, register_benchmark_schema
from experiments.common import check_settings, hydra_cli, newest_run, run_dir
from experiments.env_option import register_env_option
from worldmodel.devices import resolve_device

log = logging.getLogger("worldmodel.benchmark")
WORLD_MODEL_AGENTS = ("mpc", "hierarchical")


def _median_rate(work: float, seconds: list[float]) -> float:
    return work / statistics.median(seconds)


def bench_render(env_names: list[str], steps: int, image_size: int) -> dict[str, float]:
    from experiments.env_benchmark import render_fps

    return {name: render_fps(name, steps, image_size=image_size) for name in env_names}


def bench_exploration(env_name: str, episodes: int, image_size: int, workers: list[int]) -> dict[str, float]:
    """Frames/s of rendering the exploration data (what a cache miss of the video stage costs), per process count."""
    from envs.exploration import render_trajectories

    rates = {}
    for count in workers:
        start = time.perf_counter()
        data = render_trajectories(env_name, episodes, steps=64, seed=0, image_size=image_size, workers=count)
        rates[f"workers={count}"] = len(data) / (time.perf_counter() - start)
    return rates


def _video_batch_source(cfg: DictConfig, model_cfg):
    from envs.exploration import collect_trajectories
    from worldmodel.data.sim_clips import SimClipDataset

    trajectories = collect_trajectories(cfg.env.name, episodes=cfg.loader.episodes, steps=64, seed=0,
                                        image_size=model_cfg.image_size,
                                        cache_dir=Path(cfg.cache_dir) / "trajectories")
    return SimClipDataset(trajectories.frames, trajectories.episode_starts, frames=model_cfg.frames,
                          frame_step=1, size=model_cfg.image_size)


def bench_pretrain(cfg: DictConfig) -> dict[str, Any]:
    """Loader throughput and the cost of one V-JEPA training step (forward, backward, AdamW, EMA)."""
    from experiments.pretrain import build_model_config
    from worldmodel.data.sampling import make_loader
    from worldmodel.models.jepa import VJEPA
    from worldmodel.models.masks import MultiBlockMaskCollator
    from worldmodel.training.flops import mask_sizes, training_matmul_peak, vjepa_train_flops_per_clip
    from worldmodel.training.video_stage import autocast_for, compiled, compiles, to_device, uses_bf16

    device = resolve_device(cfg.device)
    bf16 = uses_bf16(cfg.precision, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    model_cfg = build_model_config(cfg.model)
    batch_size = cfg.pretrain.batch_size
    collate = MultiBlockMaskCollator(model_cfg.grid, seed=0)
    loader = make_loader(_video_batch_source(cfg, model_cfg), batch_size=batch_size, seed=0, start_position=0,
                         collate_fn=collate, num_workers=cfg.loader.workers)
    batches = iter(loader)
    next(batches)  # worker start-up
    load_times = []
    for _ in range(cfg.loader.batches):
        start = time.perf_counter()
        batch = next(batches)
        load_times.append(time.perf_counter() - start)
    del batches, loader

    peak_before = training_matmul_peak(device, bf16)
    torch.manual_seed(0)
    model = VJEPA(model_cfg).to(device)
    compile_model = compiles(cfg.pretrain.compile, device)
    trainable = compiled(model) if compile_model else model  # compiles in the first warm-up step
    batch = to_device(batch, device)
    optimizer = torch.optim.AdamW(model.param_groups(0.04), lr=1e-4)
    step_times, warmup_times = [], []
    for i in range(cfg.pretrain.warmup + cfg.pretrain.steps):
        start = time.perf_counter()
        with autocast_for(cfg.precision, device):
            loss, _ = trainable(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.ema_update(0.996)
        sync()
        (step_times if i >= cfg.pretrain.warmup else warmup_times).append(time.perf_counter() - start)

    peak = max(peak_before, training_matmul_peak(device, bf16))  # a busy machine can only lower a reading
    context, target = mask_sizes(collate.counts)
    flops_per_clip = vjepa_train_flops_per_clip(model_cfg, context, target)
    clips_per_s = _median_rate(batch_size, step_times)
    loader_clips_per_s = _median_rate(batch_size, load_times)
    return {
        "model": cfg.model.name, "batch_size": batch_size, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": "bf16" if bf16 else "fp32", "threads": torch.get_num_threads(), "compiled": compile_model,
        "first_step_s": warmup_times[0] if warmup_times else None,
        "loader_workers": cfg.loader.workers, "loader_clips_per_s": loader_clips_per_s,
        "step_time_s": statistics.median(step_times), "train_clips_per_s": clips_per_s,
        "loader_to_step_ratio": loader_clips_per_s / clips_per_s,
        "flops_per_clip": flops_per_clip, "achieved_flops_per_s": flops_per_clip * clips_per_s,
        "matmul_peak_flops_per_s": peak, "mfu": flops_per_clip * clips_per_s / peak,
    }


def bench_agents(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """Per env and agent: episodes through the fault-isolating loop; success, distance and ms per action."""
    import envs
    from agents import make_agent, run_episode
    from agents.runner import load_world_model

    device = resolve_device(cfg.device)  # where the world model and the latent agents' plans live
    results: dict[str, dict[str, Any]] = {}
    for env_name in cfg.agents.envs:
        checkpoint = cfg.checkpoint if cfg.checkpoint is not None else _newest_checkpoint(env_name)
        needs_model = any(name in WORLD_MODEL_AGENTS for name in cfg.agents.names)
        world_model = None
        if needs_model and checkpoint is not None:
            world_model = load_world_model(checkpoint, str(device), envs.make(env_name))
        for agent_name in cfg.agents.names:
            if agent_name in WORLD_MODEL_AGENTS and world_model is None:
                log.info("skipping %s on %s: no checkpoint (pass checkpoint=RUN_DIR)", agent_name, env_name)
                continue
            env = envs.make(env_name)
            context = {"world_model": world_model} if agent_name in WORLD_MODEL_AGENTS else {}
            agent = make_agent(agent_name, env, **context)
            records = [run_episode(env, agent, seed=1000 + e, max_steps=cfg.agents.max_steps, agent_name=agent_name)
                       for e in range(cfg.agents.episodes)]
            env.close()
            ms = [r.ms_per_step for r in records if np.isfinite(r.ms_per_step)]
            results[f"{env_name}/{agent_name}"] = {
                "env": env_name, "agent": agent_name, "episodes": len(records),
                "success_rate": float(np.mean([r.success for r in records])),
                "mean_final_distance": float(np.nanmean([r.final_distance for r in records])),
                "ms_per_step": statistics.median(ms) if ms else float("nan"),
                "failed_episodes": sum(r.failure is not None for r in records),
                "checkpoint": checkpoint if agent_name in WORLD_MODEL_AGENTS else None,
            }
    return results


def _newest_checkpoint(env_name: str) -> str | None:
    """The newest pretrain run for ``env_name`` with a world model, or None (those agents are skipped)."""
    from worldmodel.world_model import WORLD_MODEL_FILE

    try:
        return str(newest_run(Path("runs/pretrain") / env_name, WORLD_MODEL_FILE))
    except FileNotFoundError:
        return None


def print_tables(results: dict[str, Any]) -> None:
    if "render" in results:
        print("\nrender (frames/s, env.step with rendering)")
        for name, fps in results["render"].items():
            print(f"  {name:<22} {fps:8.0f}")
        print(f"exploration data ({results['config']['env']['name']}, frames/s of render_trajectories)")
        for workers, fps in results["exploration"].items():
            print(f"  {workers:<22} {fps:8.0f}")
    if "pretrain" in results:
        p = results["pretrain"]
        compiled = f", compiled (first step {p['first_step_s']:.1f} s)" if p["compiled"] else ""
        print(f"\npretrain step (model={p['model']}, batch {p['batch_size']}, {p['device_name']}, {p['precision']}, "
              f"{p['threads']} threads{compiled})")
        print(f"  step time {p['step_time_s'] * 1e3:.1f} ms, {p['train_clips_per_s']:.1f} clips/s, "
              f"{p['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s = {p['mfu']:.1%} of the measured matmul peak "
              f"({p['matmul_peak_flops_per_s'] / 1e9:.1f} GFLOP/s)")
        print(f"  loader ({p['loader_workers']} workers) {p['loader_clips_per_s']:.0f} clips/s = "
              f"{p['loader_to_step_ratio']:.1f}x what the step consumes")
    if "agents" not in results:
        return
    print(f"\n{'env/agent':<34} {'success':>8} {'final dist':>10} {'ms/action':>10} {'failed':>7}")
    for key, r in results["agents"].items():
        print(f"  {key:<32} {r['success_rate']:>8.0%} {r['mean_final_distance']:>10.3f} "
              f"{r['ms_per_step']:>10.1f} {r['failed_episodes']:>7d}")


def main(cfg: DictConfig) -> None:
    if cfg.quick:
        cfg = OmegaConf.merge(cfg, cfg.quick_overrides)
    check_settings(cfg, BenchmarkConfig)
    resolve_device(cfg.device)  # a bad device fails before any section runs
    import envs

    for name in {cfg.env.name, *cfg.render.envs, *cfg.agents.envs}:  # ours or a plug-in's; an unknown one fails here
        envs.gym_id(name)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = run_dir()
    results = {"quick": bool(cfg.quick), "config": OmegaConf.to_container(cfg, resolve=True)}
    if "render" in cfg.sections:
        results["render"] = bench_render(list(cfg.render.envs), cfg.render.steps, cfg.render.image_size)
        results["exploration"] = bench_exploration(cfg.env.name, cfg.render.exploration_episodes, cfg.render.image_size,
                                                   list(cfg.render.exploration_workers))
    if "pretrain" in cfg.sections:
        results["pretrain"] = bench_pretrain(cfg)
    if "agents" in cfg.sections:
        results["agents"] = bench_agents(cfg)
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
