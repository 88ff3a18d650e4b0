"""Pretrain the world model: ``python -m experiments.pretrain [env=NAME] [model=NAME] [data=sim|videos|sim+videos] ...``

``env=NAME``: any registered env, ours or a plug-in's (``experiments.env_option``).

Stages run in order: ``video`` (V-JEPA encoder), ``dynamics`` (level 1), ``hierarchy`` (level 2) and ``metric`` (the
planning cost; see ``worldmodel.training.levels``). The run directory holds ``tb/`` (one folder per stage, so
TensorBoard shows each as its own run), ``checkpoints/``, ``encoder.safetensors``, ``world_model.pt`` and
``summary.json``; it is printed at the end.

Multi-process: ``torchrun --nproc_per_node=N -m experiments.pretrain hydra.run.dir=DIR ...``
(pass the run dir so every rank writes to the same place).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import envs
from envs.contract import TASK_DISTANCE, TASK_STATES, check_named_env
from envs.exploration import cache_path, collect_trajectories
from experiments.common import check_settings, hydra_cli, run_dir
from experiments.config import STAGES, PretrainConfig, register_schemas
from experiments.env_option import register_env_option
from worldmodel.data.clip_sources import build_clip_dataset
from worldmodel.data.minari_trajectories import load_minari
from worldmodel.data.sampling import ResumableClips
from worldmodel.data.trajectories import TrajectoryDataset
from worldmodel.io.summary import write_summary
from worldmodel.models import VideoViTConfig, get_preset
from worldmodel.models.jepa import VJEPA
from worldmodel.models.masks import MultiBlockMaskCollator
from worldmodel.state_spaces import state_spaces
from worldmodel.training.distributed import cleanup, init_distributed
from worldmodel.training.flops import mask_sizes, training_matmul_peak, vjepa_train_flops_per_clip
from worldmodel.training.levels import LevelsConfig, find_encoder, train_levels
from worldmodel.training.video_stage import VideoStageConfig, train_video_stage, uses_bf16


def build_model_config(model_cfg: DictConfig) -> VideoViTConfig:
    """The model preset ``model.name`` with the fields the config sets."""
    overrides = {k: v for k, v in OmegaConf.to_container(model_cfg).items() if k != "name" and v is not None}
    return get_preset(model_cfg.name, **overrides)


def apply_env_settings(cfg: DictConfig) -> None:
    """Set the env's own pretrain settings (``env.pretrain``: dotted keys) that the command line did not set, and
    rewrite the run's ``.hydra/config.yaml`` so that it shows what ran."""
    settings = OmegaConf.to_container(cfg.env.pretrain)
    if not settings:
        return
    given = {override.split("=", 1)[0].lstrip("+~") for override in HydraConfig.get().overrides.task}
    for key, value in settings.items():
        if OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
            raise ValueError(f"env {cfg.env.name} sets pretrain setting {key!r}, which does not exist; fix "
                             f"configs/env/{cfg.env.name}.yaml")
        if key not in given:
            OmegaConf.update(cfg, key, value, merge=False)
    OmegaConf.save(cfg, run_dir() / ".hydra" / "config.yaml")


def main(cfg: DictConfig) -> None:
    apply_env_settings(cfg)
    check_settings(cfg, PretrainConfig)
    state_spaces(cfg.latent.space, cfg.latent.high_space, cfg.env.planning_cost)  # fail before the video stage
    # Rendering exploration and the later stages read the env; a video stage on cached exploration does not (a GPU
    # machine without the env's optional extras can train on episodes rendered elsewhere)
    renders = cfg.data.source != "videos" and not cache_path(**exploration_request(cfg)).is_dir()
    if renders or any(stage in cfg.stages for stage in STAGES[1:]):
        pieces = {piece.name: piece.present for piece in check_named_env(cfg.env.name, cfg.env.image_size)}
        if cfg.env.planning_cost == "task" and not (pieces[TASK_DISTANCE] and pieces[TASK_STATES]):
            raise ValueError(f"env.planning_cost=task needs an env with {TASK_DISTANCE} and {TASK_STATES}; env "
                             f"{cfg.env.name} lacks one (python -m envs.contract {cfg.env.name}): use "
                             "env.planning_cost=metric")

    dist = init_distributed(cfg.device)  # device=auto|cpu|cuda|cuda:N; a bad one fails here, in one line
    out = run_dir()
    torch.manual_seed(cfg.seed)
    model_cfg = build_model_config(cfg.model)
    summary: dict = {"command": "pretrain", "env": cfg.env.name, "model": cfg.model.name}

    if "video" in cfg.stages:
        dataset, data_record, skipped = build_clip_dataset(cfg, model_cfg, dist, lambda: exploration_data(cfg))
        stage_cfg = VideoStageConfig(**OmegaConf.to_container(cfg.video))
        model = VJEPA(model_cfg)
        collate = MultiBlockMaskCollator(model.encoder.grid, seed=cfg.seed)
        record = {"model": asdict(model_cfg), "data": data_record, "env": cfg.env.name,
                  "image_size": model_cfg.image_size, "frames": model_cfg.frames}
        context_sizes, target_sizes = mask_sizes(collate.counts)
        flops_per_clip = vjepa_train_flops_per_clip(model_cfg, context_sizes, target_sizes)
        video_summary = train_video_stage(
            model, ResumableClips(dataset, seed=cfg.seed), collate, stage_cfg, run_dir=out, dist=dist,
            seed=cfg.seed, resume=cfg.resume, num_workers=cfg.data.num_workers,
            flops_per_clip=flops_per_clip, record=record,
            matmul_peak=lambda: training_matmul_peak(dist.device, uses_bf16(stage_cfg.precision, dist.device)))
        summary["video"] = {**video_summary, "data": data_record, "skipped_inputs": skipped}

    if dist.is_main and any(stage in cfg.stages for stage in STAGES[1:]):
        run_latent_stages(cfg, out, summary)  # small models: rank 0 only
    if dist.is_main:
        write_summary(out, summary)
        print(f"run directory: {out}")
    cleanup()


def exploration_request(cfg: DictConfig) -> dict:
    """What identifies pretrain's exploration episodes in the cache: ``data.*``, ``seed``, ``env.*``, ``cache_dir``."""
    data = cfg.data
    return {"env_name": cfg.env.name, "episodes": data.episodes, "steps": data.episode_steps, "seed": cfg.seed,
            "image_size": cfg.env.image_size, "cache_dir": Path(cfg.cache_dir) / "trajectories"}


def exploration_data(cfg: DictConfig) -> TrajectoryDataset:
    """The env's exploration episodes under pretrain's ``data.*``, ``seed`` and ``cache_dir`` (rendered or cached)."""
    return collect_trajectories(**exploration_request(cfg), workers=cfg.data.render_workers)


def run_latent_stages(cfg: DictConfig, out: Path, summary: dict) -> None:
    """Train the latent stages of ``cfg.stages`` on the env's exploration trajectories (``worldmodel.training.levels``);
    fills ``summary`` and writes it with ``world_model.pt`` to ``out``."""
    started = time.perf_counter()
    encoder = find_encoder(cfg.encoder, out, list(cfg.stages))
    env = envs.make(cfg.env.name, image_size=cfg.env.image_size)
    trajectories = exploration_data(cfg) if cfg.trajectories is None else load_minari(cfg.trajectories, env)
    if cfg.trajectories is not None:
        summary["trajectories"] = {**trajectories.metadata, "frames": len(trajectories)}
        if cfg.env.planning_cost == "task" and trajectories.states.shape[1] == 0:
            raise ValueError(f"trajectories={cfg.trajectories} has no true states (infos['state']), which "
                             "env.planning_cost=task learns its distance from; record them, or use "
                             "env.planning_cost=metric")
    sections = {name: OmegaConf.to_object(cfg[name]) for name in ("latent", "metric", "task", "dynamics", "hierarchy")}
    config = LevelsConfig(env_name=cfg.env.name, env_id=envs.ENV_IDS[cfg.env.name], image_size=cfg.env.image_size,
                          planning_cost=cfg.env.planning_cost, stages=list(cfg.stages), seed=cfg.seed,
                          resume=cfg.resume, **sections)
    train_levels(config, encoder, trajectories, env, out, summary, started)


def cli() -> None:
    register_schemas()
    hydra_cli("pretrain", main, register_env_option)


if __name__ == "__main__":
    cli()
