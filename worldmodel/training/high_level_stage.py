"""Level 2 training: the high level jumps k steps from a code of the action chunk; the chunk code is a small VAE.

Loss per batch of windows of ``1 + k * jumps`` frames (targets are frozen-encoder latents, no gradient):

    one-jump L1 (z and d at every jump, teacher-forced from the true z, d)
  + rollout_weight * L1 of chaining all jumps open loop
  + kl_weight * KL(q(c | a_{t:t+k}) || N(0, I))          (so a planner can sample codes from N(0, I))
  + recon_weight * MSE(decode(c), a_{t:t+k})            (the decoder proposes action chunks to level 1)

Logged as collapse guards: the target latents' std and the predictions' std across the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange

from worldmodel.data.latents import LatentTrajectories
from worldmodel.models.high_level import HighLevel, HighLevelConfig
from worldmodel.training.dynamics_stage import LatentStageConfig, sample_windows, train_latent_model


@dataclass
class HighLevelStageConfig(LatentStageConfig):
    k: int = 8  # env steps per high-level step
    jumps: int = 3  # high-level steps per training window (rollout loss over all of them)
    code_dim: int = 6  # size of the high-level action (the code of a k-step action chunk)
    action_space: str = "chunk_code"
    rollout_weight: float = 1.0
    bank_size: int = 4096  # codes of training chunks kept for planners (HighLevel.code_bank); 0: none
    kl_weight: float = 0.01
    recon_weight: float = 0.5
    hidden: int = 256
    layers: int = 2

    def model_config(self, latent_dim: int, action_dim: int) -> HighLevelConfig:
        """Level 2's architecture for states of ``latent_dim`` dims and actions of ``action_dim``."""
        return HighLevelConfig(latent_dim, action_dim, k=self.k, code_dim=self.code_dim, hidden=self.hidden,
                               layers=self.layers)


def high_level_loss(model: HighLevel, batch: dict[str, torch.Tensor], cfg: HighLevelStageConfig):
    k = model.cfg.k
    z, d = batch["z"][:, ::k], batch["d"][:, ::k]  # (B, J+1, Dz): frames 0, k, 2k, ...
    chunks = rearrange(batch["actions"], "b (j k) a -> (b j) k a", k=k)
    codes, kl = model.code.encode(chunks)
    jumps = z.shape[1] - 1
    codes = rearrange(codes, "(b j) c -> b j c", j=jumps)
    z_next, d_next = model.predictor(z[:, :-1].flatten(0, 1), d[:, :-1].flatten(0, 1), codes.flatten(0, 1))
    one_jump = ((z_next - z[:, 1:].flatten(0, 1)).abs().mean()
                + (d_next - d[:, 1:].flatten(0, 1)).abs().mean())
    rolled = model.predictor.rollout(z[:, 0], d[:, 0], codes)
    rollout = (rolled - z[:, 1:]).abs().mean()
    recon = (model.code.decode(codes.flatten(0, 1)) - chunks).pow(2).mean()
    loss = one_jump + cfg.rollout_weight * rollout + cfg.kl_weight * kl.mean() + cfg.recon_weight * recon
    stats = {"one_jump_l1": one_jump.item(), "rollout_l1": rollout.item(), "kl": kl.mean().item(),
             "recon_mse": recon.item(), "no_change_l1": float((z[:, 1:] - z[:, :1]).abs().mean()),
             "code_std": float(codes.detach().std(dim=(0, 1)).mean()),
             "target_std": float(z.std(0).mean()), "prediction_std": float(rolled.detach().std(0).mean())}
    return loss, stats


def train_high_level_stage(data: LatentTrajectories, cfg: HighLevelStageConfig, *, run_dir: Path, seed: int,
                           resume: bool, record: dict[str, Any],
                           callback: Callable[[int], None] | None = None) -> tuple[HighLevel, dict]:
    """Train level 2 on latent trajectories; returns the model and the stage summary."""
    torch.manual_seed(seed + 1)
    model_cfg = cfg.model_config(data.z.shape[1], data.actions.shape[1])
    model = HighLevel(model_cfg, cfg.action_space)
    length = 1 + cfg.k * cfg.jumps

    def loss_fn(m, generator):
        return high_level_loss(m, sample_windows(data, length, cfg.batch_size, generator), cfg)

    summary = train_latent_model("hierarchy", model, loss_fn, cfg, run_dir=run_dir, seed=seed, resume=resume,
                                 record={**record, "stage_config": asdict(cfg)}, callback=callback)
    fill_code_bank(model, data, cfg.bank_size, seed)
    return model, {**summary, "model": asdict(model_cfg), "code_bank": len(model.code_bank)}


def fill_code_bank(model: HighLevel, data: LatentTrajectories, size: int, seed: int) -> None:
    """Store the codes of up to ``size`` action chunks of the training episodes, chosen at random (seeded)."""
    starts = data.windows(model.cfg.k + 1)
    if size <= 0 or len(starts) == 0:
        return
    pick = np.sort(np.random.default_rng(seed).choice(len(starts), min(size, len(starts)), replace=False))
    index = torch.as_tensor(starts[pick])[:, None] + torch.arange(model.cfg.k)[None]
    model.fill_code_bank(data.actions[index])
