"""Level 1 training: teacher forcing plus a multi-step open-loop rollout loss, encoder frozen.

Also home of ``train_latent_model``, the loop both latent stages (dynamics, hierarchy) share: AdamW with
warmup + cosine LR, gradient clipping, NaN guard, TensorBoard scalars, atomic checkpoints. Batches are
drawn from a generator seeded by ``(seed, step)`` and the global RNG state is stored in every
checkpoint, so a resumed run reproduces an uninterrupted one exactly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from worldmodel.data.latents import LatentTrajectories
from worldmodel.errors import IncompatibleCheckpointError
from worldmodel.io.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from worldmodel.io.tb import TensorBoardLogger, stage_log_dir
from worldmodel.models.dynamics import DynamicsConfig, LatentDynamics
from worldmodel.training.guards import check_finite
from worldmodel.training.schedules import warmup_cosine

log = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, torch.Generator], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class LatentStageConfig:
    """What ``train_latent_model`` reads; each latent stage adds its own fields (and may change defaults)."""

    steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    final_lr: float = 1e-5
    warmup: int = 50
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    log_every: int = 25
    checkpoint_every: int = 250
    keep_checkpoints: int = 2


@dataclass
class DynamicsStageConfig(LatentStageConfig):
    rollout: int = 8  # open-loop steps of the rollout loss
    rollout_weight: float = 1.0
    hidden: int = 128  # small on purpose: CEM calls level 1 samples x horizon x iterations times per action
    layers: int = 2  # hidden layers of the residual MLP
    history: bool = True  # read the latent velocity d_t as well as z_t

    def model_config(self, latent_dim: int, action_dim: int) -> DynamicsConfig:
        """Level 1's architecture for states of ``latent_dim`` dims and actions of ``action_dim``."""
        return DynamicsConfig(latent_dim, action_dim, hidden=self.hidden, layers=self.layers, history=self.history)


SOURCE_KEYS = ("env", "encoder_hash", "dataset_hash", "state_space", "state_hash")


def check_same_source(name: str, checkpoint: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse to resume a latent stage on latents from another env, encoder or dataset (names both sides)."""
    for key in SOURCE_KEYS:
        if key in saved and key in current and saved[key] != current[key]:
            raise IncompatibleCheckpointError(
                f"cannot resume the {name} stage from {checkpoint}: it was trained with {key}={saved[key]!r}, "
                f"this run has {key}={current[key]!r}; use a new hydra.run.dir or resume=false")


def train_latent_model(name: str, model: nn.Module, loss_fn: LossFn, cfg: LatentStageConfig, *,
                       run_dir: Path, seed: int, resume: bool, record: dict[str, Any],
                       callback: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train ``model`` for ``cfg.steps`` steps of ``loss_fn(model, generator) -> (loss, stats)``.

    Checkpoints go to ``run_dir/checkpoints/<name>``; ``callback(step)`` runs after each finished step
    (progress hooks; tests use it to interrupt a run). Returns the stage summary.
    """
    ckpt_dir = run_dir / "checkpoints" / name
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    start_step, losses = 0, []
    if resume and (last := latest_checkpoint(ckpt_dir)) is not None:
        state = load_checkpoint(last)
        check_same_source(name, last, state.get("record", {}), record)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        start_step, losses = state["step"], list(state["losses"])
        log.info("resumed the %s stage from %s at step %d", name, last, start_step)
    last_good = latest_checkpoint(ckpt_dir)

    def save(step: int) -> Path:
        state = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "rng": rng_state(), "losses": losses, "record": record}
        return save_checkpoint(ckpt_dir / f"step_{step:07d}.pt", state, keep=cfg.keep_checkpoints)

    logger = TensorBoardLogger(stage_log_dir(run_dir, name))
    step_times, stats, started = [], {}, time.perf_counter()
    model.train()
    progress = tqdm(range(start_step, cfg.steps), initial=start_step, total=cfg.steps, desc=name, dynamic_ncols=True,
                    mininterval=2.0)
    for step in progress:
        t0 = time.perf_counter()
        lr = warmup_cosine(step, cfg.steps, min(cfg.warmup, cfg.steps // 2), cfg.lr * 0.1, cfg.lr, cfg.final_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
        loss, stats = loss_fn(model, generator)
        check_finite(loss, step, last_good)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
        optimizer.step()
        losses.append(float(loss.detach()))
        step_times.append(time.perf_counter() - t0)
        if step % cfg.log_every == 0 or step + 1 == cfg.steps:
            logger.scalars({"loss": losses[-1], "lr": lr, "grad_norm": grad_norm, **stats}, step,
                           prefix=f"{name}/")
            progress.set_postfix(loss=f"{losses[-1]:.4f}")
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            last_good = save(step + 1)
        if callback is not None:
            callback(step)
    model.eval()
    logger.close()
    window = max(1, min(50, len(losses) // 5))
    return {"steps": cfg.steps, "resumed_from_step": start_step,
            "initial_loss": sum(losses[:window]) / window if losses else None,
            "final_loss": sum(losses[-window:]) / window if losses else None,
            "step_time_s": median(step_times) if step_times else None,
            "train_seconds": time.perf_counter() - started, "final_stats": stats}


def sample_windows(data: LatentTrajectories, length: int, batch_size: int,
                   generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A batch of training windows of ``length`` frames, drawn with ``generator``."""
    starts = torch.as_tensor(data.windows(length))
    if len(starts) == 0:
        raise ValueError(f"no training episode has {length} frames; collect longer episodes "
                         f"(data.episode_steps) or shorten the rollout")
    pick = torch.randint(len(starts), (batch_size,), generator=generator)
    return data.gather(starts[pick], length)


def dynamics_loss(model: LatentDynamics, batch: dict[str, torch.Tensor],
                  rollout_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Teacher-forced one-step L1 over every window position, plus the L1 of the open-loop rollout."""
    z, d, actions = batch["z"], batch["d"], batch["actions"]  # (B, L+1, Dz), (B, L+1, Dz), (B, L, A)
    one_step = model(z[:, :-1].flatten(0, 1), d[:, :-1].flatten(0, 1), actions.flatten(0, 1))
    teacher = (one_step - z[:, 1:].flatten(0, 1)).abs().mean()
    rolled = model.rollout(z[:, 0], d[:, 0], actions)
    rollout = (rolled - z[:, 1:]).abs().mean()
    no_change = (z[:, 1:] - z[:, :1]).abs().mean()
    stats = {"teacher_forcing_l1": teacher.item(), "rollout_l1": rollout.item(),
             "no_change_l1": float(no_change), "target_std": float(z.std(0).mean()),
             "prediction_std": float(rolled.detach().std(0).mean())}
    return teacher + rollout_weight * rollout, stats


def train_dynamics_stage(data: LatentTrajectories, cfg: DynamicsStageConfig, *, run_dir: Path, seed: int,
                         resume: bool, record: dict[str, Any],
                         callback: Callable[[int], None] | None = None) -> tuple[LatentDynamics, dict]:
    """Train level 1 on latent trajectories; returns the model and the stage summary."""
    torch.manual_seed(seed)
    model_cfg = cfg.model_config(data.z.shape[1], data.actions.shape[1])
    model = LatentDynamics(model_cfg)

    def loss_fn(m, generator):
        return dynamics_loss(m, sample_windows(data, cfg.rollout + 1, cfg.batch_size, generator),
                             cfg.rollout_weight)

    summary = train_latent_model("dynamics", model, loss_fn, cfg, run_dir=run_dir, seed=seed, resume=resume,
                                 record={**record, "stage_config": asdict(cfg)}, callback=callback)
    return model, {**summary, "model": asdict(model_cfg)}
