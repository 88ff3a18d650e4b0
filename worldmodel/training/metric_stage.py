"""The planning metric: a temporal-distance embedding of the latents (``worldmodel.models.metric``).

Loss per batch, from the training episodes only (no true states):

    - mean_{a, b random frames} min(||e_a - e_b||, cap) / cap                            (spread)
    + penalty * mean_{t, t+1 consecutive} relu(||e_t - e_{t+1}|| - 1)^2                  (one step <= 1)

The spread is divided by ``cap`` so that ``penalty`` reads as "how much more a violated step costs than the
whole spread gains": at the optimum the consecutive distances sit at (just about) 1, and the distance between
two frames approximates the number of env steps between them along the shortest explored path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worldmodel.data.latents import LatentTrajectories
from worldmodel.models.metric import MetricConfig, TemporalMetric
from worldmodel.training.dynamics_stage import LatentStageConfig, train_latent_model


@dataclass
class MetricStageConfig(LatentStageConfig):
    steps: int = 4000  # tworooms, 64-d whole-grid latents: 1000 steps gave geodesic Spearman 0.91, 4000 give 0.98
    batch_size: int = 512
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    checkpoint_every: int = 500
    dim: int = 32
    hidden: int = 256
    layers: int = 2
    cap: float = 64.0  # random pairs stop pushing apart beyond this many steps
    penalty: float = 1.0  # weight of the squared one-step violation (tworooms: 100 -> spearman 0.89, 1 -> 0.96)

    def model_config(self, latent_dim: int) -> MetricConfig:
        """The cost's architecture for states of ``latent_dim`` dims."""
        return MetricConfig(latent_dim, dim=self.dim, hidden=self.hidden, layers=self.layers)


def train_frames(data: LatentTrajectories) -> torch.Tensor:
    """Indices ``(M,)`` of all frames of the training episodes."""
    starts = data.episode_starts
    return torch.as_tensor(np.concatenate([np.arange(starts[e], starts[e + 1]) for e in data.train_episodes]))


def metric_loss(model: TemporalMetric, z: torch.Tensor, step_starts: torch.Tensor, frames: torch.Tensor,
                cfg: MetricStageConfig, generator: torch.Generator):
    """``z (N, Dz)`` all latents; ``step_starts (W,)`` frames whose successor is in the same episode."""
    b = cfg.batch_size
    t = step_starts[torch.randint(len(step_starts), (b,), generator=generator)]
    pair = frames[torch.randint(len(frames), (2, b), generator=generator)]
    e = model.embed(torch.cat([z[t], z[t + 1], z[pair[0]], z[pair[1]]]))
    e_t, e_next, e_a, e_b = e.split(b)
    step = (e_t - e_next).norm(dim=-1)
    far = (e_a - e_b).norm(dim=-1)
    spread = far.clamp(max=cfg.cap).mean() / cfg.cap
    violation = (step - 1.0).clamp(min=0.0)
    loss = -spread + cfg.penalty * violation.pow(2).mean()
    stats = {"spread_steps": float(far.detach().mean()), "step_mean": float(step.detach().mean()),
             "step_p95": float(step.detach().quantile(0.95)),
             "violation_frac": float((violation > 0.05).float().mean())}
    return loss, stats


def train_metric_stage(data: LatentTrajectories, cfg: MetricStageConfig, *, run_dir: Path, seed: int,
                       resume: bool, record: dict[str, Any],
                       callback: Callable[[int], None] | None = None) -> tuple[TemporalMetric, dict]:
    """Train the planning metric on latent trajectories; returns the model and the stage summary."""
    torch.manual_seed(seed + 2)
    model = TemporalMetric(cfg.model_config(data.z.shape[1]))
    frames = train_frames(data)
    model.fit_input(data.z[frames])
    step_starts = torch.as_tensor(data.windows(2))

    def loss_fn(m, generator):
        return metric_loss(m, data.z, step_starts, frames, cfg, generator)

    summary = train_latent_model("metric", model, loss_fn, cfg, run_dir=run_dir, seed=seed, resume=resume,
                                 record={**record, "stage_config": asdict(cfg)}, callback=callback)
    return model, {**summary, "model": asdict(model.cfg)}
