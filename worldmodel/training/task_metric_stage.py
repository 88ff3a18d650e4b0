"""The task cost: an embedding of level-1 states whose distances regress the env's task distance.

The temporal metric (``metric_stage``) learns how many steps apart two frames are under the exploration data.
That is the right cost where the whole picture is the task (a ball in a maze), and the wrong one where only
part of it is: a reacher's goal image shows the whole arm, but only the fingertip counts (the distance between
joint configurations ranks fingertip distances with Spearman 0.35 on random pairs); a pusher's goal image
shows the pusher too, but only the block counts. What counts is the task's definition, which pixels alone do
not carry, so this cost is supervised: on pairs of training frames ``(a, b)`` it fits

    || g(z_a) - g(z_b) ||_2  ~  task_distance(state_a, state_b)          (L1 loss, metres)

with ``state`` the simulator's task state recorded with each frame (``TrajectoryDataset.states``) and
``task_distance`` the env's own (fingertip or block distance). Half of each batch pairs random frames, half
pairs frames at most ``near_steps`` apart in one episode, so the cost is also precise near a goal. At planning
time only the images (and proprioception) are needed: ``g`` reads the predicted states.

Where the env defines a shaping cost (``GoalEnv.shaping``, e.g. pusher's reach term), ``train_shaping_stage``
then fits ``worldmodel.models.shaping.Shaping`` to it (L1) on level-1 states of the task space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worldmodel.data.latents import LatentTrajectories
from worldmodel.models.metric import MetricConfig, TemporalMetric
from worldmodel.models.shaping import Shaping, ShapingConfig
from worldmodel.training.dynamics_stage import LatentStageConfig, train_latent_model
from worldmodel.training.metric_stage import train_frames

TaskDistance = Callable[[np.ndarray, np.ndarray], np.ndarray]  # states (B, S), (B, S) -> (B,)


@dataclass
class TaskMetricStageConfig(LatentStageConfig):
    steps: int = 3000
    batch_size: int = 512
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    checkpoint_every: int = 500
    dim: int = 16
    hidden: int = 256
    layers: int = 2
    near_steps: int = 16  # the near half of each batch pairs frames at most this many env steps apart
    shaping_steps: int = 1500  # the shaping head's steps (only for envs whose shaping is not zero)
    shaping_hidden: int = 128

    def model_config(self, latent_dim: int) -> MetricConfig:
        """The cost's architecture for states of ``latent_dim`` dims."""
        return MetricConfig(latent_dim, dim=self.dim, hidden=self.hidden, layers=self.layers)

    def shaping_config(self, state_dim: int) -> ShapingConfig:
        """The shaping head's architecture for task-space states of ``state_dim`` dims."""
        return ShapingConfig(state_dim, hidden=self.shaping_hidden)


def task_metric_loss(model: TemporalMetric, z: torch.Tensor, states: np.ndarray, task_distance: TaskDistance,
                     frames: torch.Tensor, near: torch.Tensor, cfg: TaskMetricStageConfig,
                     generator: torch.Generator):
    """``z (N, Dz)`` all states; ``frames (M,)`` training frames; ``near (W, 2)`` near pairs of training frames."""
    half = cfg.batch_size // 2
    random_pairs = frames[torch.randint(len(frames), (2, half), generator=generator)]
    near_pairs = near[torch.randint(len(near), (cfg.batch_size - half,), generator=generator)].T
    a, b = torch.cat([random_pairs, near_pairs], dim=1)
    target = torch.as_tensor(np.asarray(task_distance(states[a.numpy()], states[b.numpy()]), np.float32))
    e = model.embed(torch.cat([z[a], z[b]]))
    predicted = (e[: len(a)] - e[len(a):]).norm(dim=-1)
    error = (predicted - target).abs()
    stats = {"l1_m": float(error.detach().mean()), "near_l1_m": float(error.detach()[half:].mean()),
             "target_mean_m": float(target.mean())}
    return error.mean(), stats


def near_pairs(data: LatentTrajectories, near_steps: int) -> torch.Tensor:
    """``(W, 2)`` pairs of training frames 1 to ``near_steps`` env steps apart within one episode."""
    pairs = []
    for h in range(1, near_steps + 1):
        starts = data.windows(h + 1)
        pairs.append(np.stack([starts, starts + h], axis=1))
    return torch.as_tensor(np.concatenate(pairs))


def train_task_metric_stage(data: LatentTrajectories, states: np.ndarray, task_distance: TaskDistance,
                            cfg: TaskMetricStageConfig, *, run_dir: Path, seed: int, resume: bool,
                            record: dict[str, Any], callback: Callable[[int], None] | None = None
                            ) -> tuple[TemporalMetric, dict]:
    """Fit the task cost on level-1 states ``data.z`` with the task states ``states (N, S)`` of the same frames."""
    torch.manual_seed(seed + 3)
    model = TemporalMetric(cfg.model_config(data.z.shape[1]))
    frames = train_frames(data)
    model.fit_input(data.z[frames])
    near = near_pairs(data, cfg.near_steps)
    states = np.asarray(states, np.float32)

    def loss_fn(m, generator):
        return task_metric_loss(m, data.z, states, task_distance, frames, near, cfg, generator)

    summary = train_latent_model("task_metric", model, loss_fn, cfg, run_dir=run_dir, seed=seed, resume=resume,
                                 record={**record, "stage_config": asdict(cfg)}, callback=callback)
    return model, {**summary, "model": asdict(model.cfg)}


def train_shaping_stage(data: LatentTrajectories, shaping: np.ndarray, cfg: TaskMetricStageConfig, *,
                        run_dir: Path, seed: int, resume: bool, record: dict[str, Any],
                        callback: Callable[[int], None] | None = None) -> tuple[Shaping, dict]:
    """Fit the shaping head on level-1 states ``data.z (N, Dz)`` to the env's shaping ``(N,)`` of each frame."""
    torch.manual_seed(seed + 4)
    model = Shaping(cfg.shaping_config(data.z.shape[1]))
    frames = train_frames(data)
    target = torch.as_tensor(np.asarray(shaping, np.float32))
    stage_cfg = replace(cfg, steps=cfg.shaping_steps)

    def loss_fn(m, generator):
        pick = frames[torch.randint(len(frames), (cfg.batch_size,), generator=generator)]
        error = (m(data.z[pick]) - target[pick]).abs()
        return error.mean(), {"l1": float(error.detach().mean()), "target_mean": float(target[pick].mean())}

    summary = train_latent_model("shaping", model, loss_fn, stage_cfg, run_dir=run_dir, seed=seed, resume=resume,
                                 record={**record, "stage_config": asdict(stage_cfg)}, callback=callback)
    return model, {**summary, "model": asdict(model.cfg)}
