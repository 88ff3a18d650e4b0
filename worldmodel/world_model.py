"""``WorldModel``: the frozen encoder + latent head (level 0), level 1 and level 2 in one object.

    wm = WorldModel.load("runs/pretrain/pointmass_tworooms/<date>")      # or the world_model.pt file
    wm.check_compatible(env)
    z = wm.encode(frames, proprio)               # uint8 (B, H, W, 3) [, (B, P)] -> states (B, Dz)
    z = wm.encode_observation(observation)       # one env observation (an image or {"pixels", "proprio"}) -> (Dz,)
    goal = wm.encode_goal(info)                  # info["goal_image"] [, info["goal_proprio"]] -> (Dz,)
    traj = wm.rollout(z, actions)                # (N, H, A) -> (N, H, Dz), one env step per entry
    e = wm.high_state(z)                         # level 2's state (B, Dh): z itself, or the metric's embedding
    jumps = wm.high_rollout(e, codes)            # (N, H2, C) -> (N, H2, Dh), k env steps per entry
    cost = wm.high_distance(jumps[:, -1], e_goal)  # (N,): the same costs between level-2 states
    cost = wm.distance(traj[:, -1], goal)        # (N,): the checkpoint's planning cost (default_cost)
    cost = wm.distance(traj[:, -1], goal, cost="latent")   # (N,): mean L1 in z

The state ``z`` level 1 works in is the planning metric's embedding of the PCA latent of the encoder tokens
(``latent_cfg.space="metric"``: ``TemporalMetric.state``, new pretrain runs) or that PCA latent itself
(``"pca"``); for envs with proprioception the PCA latent is followed by the standardised body state
(``worldmodel.models.latent_head``), so both spaces carry it. Level 2 works in ``high_state(z)``: the same, or the
embedding when level 1 is in the PCA latent and ``latent_cfg.high_space="metric"``.

Saved as one ``torch.save`` file of state dicts and plain-data configs, read back with
``torch.load(weights_only=True)``: loading never runs code from the file.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from worldmodel import observations
from worldmodel.errors import IncompatibleCheckpointError
from worldmodel.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.models.dynamics import DynamicsConfig, LatentDynamics
from worldmodel.models.encoder import VideoEncoder, VideoViTConfig
from worldmodel.models.high_level import HighLevel, HighLevelConfig
from worldmodel.models.latent_head import LATENT_FIELDS_ADDED_LATER, LatentConfig, LatentHead
from worldmodel.models.metric import MetricConfig, TemporalMetric
from worldmodel.models.shaping import Shaping, ShapingConfig
from worldmodel.state_spaces import COSTS, embed_state, state_spaces

WORLD_MODEL_FILE = "world_model.pt"
FORMAT_VERSION = 1


class WorldModel(nn.Module):
    def __init__(self, encoder_cfg: VideoViTConfig, latent_cfg: LatentConfig, dynamics_cfg: DynamicsConfig,
                 high_cfg: HighLevelConfig, *, env_name: str, image_size: int, action_low, action_high,
                 env_id: str | None = None, action_space: str = "chunk_code",
                 metric_cfg: MetricConfig | None = None, task_metric_cfg: MetricConfig | None = None,
                 shaping_cfg: ShapingConfig | None = None, planning_cost: str | None = None):
        super().__init__()
        spaces = state_spaces(latent_cfg.space, latent_cfg.high_space)
        if "metric" in spaces and metric_cfg is None:
            raise ValueError("latent space 'metric' needs a planning metric (metric_cfg)")
        if "task" in spaces and task_metric_cfg is None:
            raise ValueError("latent space 'task' needs a task cost (task_metric_cfg)")
        space_dims = {"pca": latent_cfg.out_dim, "metric": metric_cfg.dim if metric_cfg else None,
                      "task": task_metric_cfg.dim + latent_cfg.proprio_dim if task_metric_cfg else None}
        dims = [space_dims[space] for space in spaces]
        if [dynamics_cfg.latent_dim, high_cfg.latent_dim] != dims:
            raise ValueError(f"latent dims disagree: {spaces[0]} state {dims[0]}, dynamics {dynamics_cfg.latent_dim}; "
                             f"{spaces[1]} state {dims[1]}, level 2 {high_cfg.latent_dim}")
        self.encoder_cfg, self.latent_cfg = encoder_cfg, latent_cfg
        self.dynamics_cfg, self.high_cfg = dynamics_cfg, high_cfg
        self.env_name, self.env_id, self.image_size = env_name, env_id or env_name, int(image_size)
        shape = (dynamics_cfg.action_dim,)
        self.action_low = np.broadcast_to(np.asarray(action_low, np.float32), shape).copy()
        self.action_high = np.broadcast_to(np.asarray(action_high, np.float32), shape).copy()
        self.head = LatentHead(VideoEncoder(encoder_cfg), latent_cfg)
        self.dynamics = LatentDynamics(dynamics_cfg)
        self.high = HighLevel(high_cfg, action_space)
        if metric_cfg is not None and metric_cfg.latent_dim != latent_cfg.out_dim:
            raise ValueError(f"metric latent dim {metric_cfg.latent_dim} != latent dim {latent_cfg.out_dim}")
        self.metric_cfg = metric_cfg
        self.metric = TemporalMetric(metric_cfg) if metric_cfg is not None else None
        if task_metric_cfg is not None and task_metric_cfg.latent_dim != latent_cfg.out_dim:
            raise ValueError(f"task metric latent dim {task_metric_cfg.latent_dim} != latent dim {latent_cfg.out_dim}")
        self.task_metric_cfg = task_metric_cfg
        self.task_metric = TemporalMetric(task_metric_cfg) if task_metric_cfg is not None else None
        if shaping_cfg is not None and (task_metric_cfg is None or shaping_cfg.state_dim != space_dims["task"]):
            raise ValueError(f"the shaping head reads task-space states ({space_dims['task']} dims), "
                             f"got {shaping_cfg.state_dim}")
        self.shaping_cfg = shaping_cfg
        self.shaping = Shaping(shaping_cfg) if shaping_cfg is not None else None
        if planning_cost is not None and planning_cost not in COSTS:
            raise ValueError(f"unknown planning cost {planning_cost!r}; choose one of {COSTS}")
        self.planning_cost = planning_cost
        self.requires_grad_(False)
        self.eval()

    # ---- attributes the agents read ------------------------------------------------------------
    @property
    def action_dim(self) -> int:
        return self.dynamics_cfg.action_dim

    @property
    def k(self) -> int:
        return self.high_cfg.k

    @property
    def latent_dim(self) -> int:
        return self.dynamics_cfg.latent_dim

    @property
    def high_latent_dim(self) -> int:
        return self.high_cfg.latent_dim

    @property
    def proprio_dim(self) -> int:
        """Body-state dims the model reads with each frame (0: pixels only)."""
        return self.latent_cfg.proprio_dim

    @property
    def state_space(self) -> str:
        return self.latent_cfg.space

    @property
    def high_space(self) -> str:
        return self.latent_cfg.high_space or self.latent_cfg.space

    @property
    def code_dim(self) -> int:
        return self.high_cfg.code_dim

    @property
    def device(self) -> torch.device:
        """Where the model's weights live: its inputs must be there, and its outputs are."""
        return self.head.mean.device

    # ---- the model ------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, frames: np.ndarray | torch.Tensor, proprio: np.ndarray | torch.Tensor | None = None
               ) -> torch.Tensor:
        """uint8 ``(B, H, W, 3)`` (or one ``(H, W, 3)``) and body states ``(B, P)`` (or ``(P,)``; only for
        models with proprioception) -> states ``(B, Dz)``."""
        frames = torch.as_tensor(np.asarray(frames)) if not torch.is_tensor(frames) else frames
        if frames.ndim == 3:
            frames = frames[None]
        if tuple(frames.shape[1:3]) != (self.image_size, self.image_size):
            raise IncompatibleCheckpointError(
                f"world model for {self.env_name} expects {self.image_size}x{self.image_size} frames, "
                f"got {tuple(frames.shape[1:3])}")
        if (proprio is None) != (self.proprio_dim == 0):
            raise IncompatibleCheckpointError(
                f"world model for {self.env_name} reads {self.proprio_dim} proprioception dims, the observation "
                f"has {'none' if proprio is None else np.shape(proprio)[-1]}; pretrain on this env or pass a "
                "matching checkpoint")
        if proprio is not None:
            proprio = torch.as_tensor(np.asarray(proprio, np.float32)).to(self.head.mean.device)
            proprio = proprio[None] if proprio.ndim == 1 else proprio
        return self.latent_state(self.head(frames, proprio))

    def encode_observation(self, observation) -> torch.Tensor:
        """One env observation (an image, or ``{"pixels", "proprio"}``) -> its state ``(Dz,)``."""
        return self.encode(*observations.split_observation(observation))[0]

    def encode_goal(self, info: dict) -> torch.Tensor:
        """The goal of a reset ``info`` (``goal_image`` and, with proprioception, ``goal_proprio``) -> ``(Dz,)``."""
        return self.encode(*observations.goal_observation(info))[0]

    @torch.no_grad()
    def latent_state(self, pca: torch.Tensor) -> torch.Tensor:
        """PCA latents ``(..., latent_cfg.out_dim)`` (``head``'s output) -> level-1 states ``(..., Dz)``."""
        return self.embed_state(pca, self.state_space)

    @torch.no_grad()
    def embed_state(self, pca: torch.Tensor, space: str) -> torch.Tensor:
        """PCA latents -> states of ``space`` (module-level ``embed_state``)."""
        return embed_state(pca, space, metric=self.metric, task_metric=self.task_metric,
                           visual_dim=self.latent_cfg.dim)

    @torch.no_grad()
    def step(self, z: torch.Tensor, a: torch.Tensor, d: torch.Tensor | None = None) -> torch.Tensor:
        """One env step: ``z (N, Dz)``, ``a (N, A)`` -> ``(N, Dz)``; ``d`` = ``z_t - z_{t-1}`` if known."""
        return self.dynamics(z, d, a)

    @torch.no_grad()
    def rollout(self, z: torch.Tensor, actions: torch.Tensor, d: torch.Tensor | None = None) -> torch.Tensor:
        """``z (N, Dz)`` or ``(Dz,)``, ``actions (N, H, A)`` -> ``(N, H, Dz)``."""
        z, d = self._expand(z, d, actions.shape[0])
        return self.dynamics.rollout(z, d, actions)

    @torch.no_grad()
    def high_state(self, z: torch.Tensor) -> torch.Tensor:
        """Level-1 states ``(..., Dz)`` -> the level-2 states level 2 predicts in ``(..., Dh)`` (often the same)."""
        return z if self.high_space == self.state_space else self.embed_state(z, self.high_space)

    @torch.no_grad()
    def high_step(self, z: torch.Tensor, code: torch.Tensor, d: torch.Tensor | None = None) -> torch.Tensor:
        """k env steps: level-2 states ``z (N, Dh)``, ``code (N, C)`` -> ``(N, Dh)``."""
        z, d = self._expand(z, d, code.shape[0])
        return self.high.predictor(z, d, code)[0]

    @torch.no_grad()
    def high_rollout(self, z: torch.Tensor, codes: torch.Tensor, d: torch.Tensor | None = None) -> torch.Tensor:
        """Level-2 states ``z (N, Dh)`` or ``(Dh,)``, ``codes (N, H2, C)`` -> every k steps ``(N, H2, Dh)``."""
        z, d = self._expand(z, d, codes.shape[0])
        return self.high.predictor.rollout(z, d, codes)

    @torch.no_grad()
    def decode_chunk(self, code: torch.Tensor) -> torch.Tensor:
        """Code ``(..., C)`` -> the action chunk it stands for ``(..., k, A)``, inside the action box."""
        chunk = self.high.code.decode(code)
        low = torch.as_tensor(self.action_low, device=chunk.device)
        high = torch.as_tensor(self.action_high, device=chunk.device)
        return low + (chunk + 1.0) * 0.5 * (high - low)

    @torch.no_grad()
    def distance(self, z: torch.Tensor, goal: torch.Tensor, cost: str | None = None,
                 shaping_weight: float = 1.0) -> torch.Tensor:
        """``(..., Dz)`` vs ``(Dz,)`` or ``(..., Dz)`` -> ``(...)``.

        ``cost``: ``"metric"`` (learned temporal distance, in env steps), ``"task"`` (learned task distance,
        in the env's units, plus ``shaping_weight`` times the learned shaping of ``z`` when the model has one),
        ``"latent"`` (mean L1 in the state) or None (``default_cost``).
        """
        return self._distance(z, goal, cost, self.state_space, shaping_weight)

    @torch.no_grad()
    def high_distance(self, z: torch.Tensor, goal: torch.Tensor, cost: str | None = None,
                      shaping_weight: float = 1.0) -> torch.Tensor:
        """``distance`` between level-2 states (``high_state``'s output)."""
        return self._distance(z, goal, cost, self.high_space, shaping_weight)

    def _distance(self, z: torch.Tensor, goal: torch.Tensor, cost: str | None, space: str,
                  shaping_weight: float = 1.0) -> torch.Tensor:
        cost = self.default_cost if cost is None else cost
        if cost == "latent":
            return self._latent_distance(z, goal, space)
        if cost == "body":
            if not self.proprio_dim or space not in ("pca", "task"):
                raise IncompatibleCheckpointError(
                    f"cost='body' reads the body state, which {space} states of this model do not carry "
                    f"(proprioception: {self.proprio_dim} dims); use cost=latent")
            return (z[..., -self.proprio_dim:] - goal[..., -self.proprio_dim:]).abs().mean(-1)
        if cost == "metric":
            if self.metric is None:
                raise IncompatibleCheckpointError(
                    "cost='metric' but this world model has no planning metric; train one with "
                    "`python -m experiments.pretrain stages=[metric] hydra.run.dir=RUN` or use cost=latent")
            return self._embedded_distance(self.metric, "metric", z, goal, space)
        if cost == "task":
            if self.task_metric is None:
                raise IncompatibleCheckpointError(
                    "cost='task' but this world model has no task cost; train one with "
                    "`python -m experiments.pretrain stages=[task] hydra.run.dir=RUN` or use cost=metric")
            distance = self._embedded_distance(self.task_metric, "task", z, goal, space)
            if self.shaping is not None and shaping_weight:
                shaping = self.shaping(z if space == "task" else self.embed_state(z, "task"))
                distance = distance + shaping_weight * shaping
            return distance
        raise ValueError(f"unknown planning cost {cost!r}; choose one of {COSTS} (or None for the default)")

    def _latent_distance(self, z: torch.Tensor, goal: torch.Tensor, space: str) -> torch.Tensor:
        """Mean L1 over the state's dims; with a body state (the last ``proprio_dim`` dims of the PCA and task
        spaces) the mean L1 of the rest plus that of the body, so that a few body dims weigh as much as the
        many dims before them (DINO-WM's proprioceptive term)."""
        body = self.proprio_dim if space in ("pca", "task") else 0
        if not body:
            return (z - goal).abs().mean(-1)
        gap = (z - goal).abs()
        return gap[..., :-body].mean(-1) + gap[..., -body:].mean(-1)

    def _embedded_distance(self, model: TemporalMetric, own_space: str, z: torch.Tensor, goal: torch.Tensor,
                           space: str) -> torch.Tensor:
        """A learned distance read from ``space`` states: re-embedded from the PCA latent, or read off its own
        embedding (the first ``model.cfg.dim`` dims)."""
        if space == "pca":
            return model.distance(z, goal)
        if space == own_space:
            dim = model.cfg.dim
            return model.state_distance(z[..., :dim], goal[..., :dim])
        raise IncompatibleCheckpointError(
            f"the {own_space} cost cannot be read from {space} states (an embedding does not map back); plan with "
            f"cost={space if space != 'pca' else 'latent'} or pretrain with latent.space={own_space}")

    @property
    def default_cost(self) -> str:
        """The cost chosen at pretraining (the env's ``planning_cost``); else the metric when there is one."""
        if self.planning_cost is not None:
            return self.planning_cost
        return "metric" if self.metric is not None else "latent"

    @staticmethod
    def _expand(z, d, n):
        z = z[None] if z.ndim == 1 else z
        d = torch.zeros_like(z) if d is None else (d[None] if d.ndim == 1 else d)
        return z.expand(n, -1), d.expand(n, -1)

    # ---- compatibility --------------------------------------------------------------------------
    def check_compatible(self, env) -> None:
        """Raise ``IncompatibleCheckpointError`` naming both sides if ``env`` is not what this model learnt.

        Compares the env (its gymnasium id, or short name), the observation resolution and the action box.
        """
        space = env.action_space
        obs_shape = observations.pixel_shape(env.observation_space)
        env_proprio = observations.proprio_dim(env.observation_space)
        spec = getattr(env, "spec", None)
        env_id = getattr(spec, "id", None) or type(getattr(env, "unwrapped", env)).__name__
        problems = []
        if env_id not in (self.env_name, self.env_id):
            problems.append(f"env: checkpoint {self.env_name!r} ({self.env_id}), env {env_id!r}")
        if obs_shape[:2] != (self.image_size, self.image_size):
            problems.append(f"resolution: checkpoint {self.image_size}x{self.image_size}, env observation {obs_shape}")
        if env_proprio != self.proprio_dim:
            problems.append(f"proprioception: checkpoint {self.proprio_dim} dims, env {env_proprio}")
        same_box = (tuple(getattr(space, "shape", ())) == (self.action_dim,)
                    and np.allclose(space.low, self.action_low) and np.allclose(space.high, self.action_high))
        if not same_box:
            problems.append(f"action space: checkpoint Box({self.action_low.tolist()}, "
                            f"{self.action_high.tolist()}, ({self.action_dim},)), env {space}")
        if problems:
            raise IncompatibleCheckpointError(
                "world model does not fit this env (" + "; ".join(problems) + "); pretrain one for it with "
                "`python -m experiments.pretrain env=<name>` or pass a matching checkpoint")

    # ---- files ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        state = {"format_version": FORMAT_VERSION, "env_name": self.env_name, "env_id": self.env_id,
                 "image_size": self.image_size,
                 "action_low": self.action_low.tolist(), "action_high": self.action_high.tolist(),
                 "action_space": self.high.action_space_name,
                 "configs": {"encoder": asdict(self.encoder_cfg), "latent": asdict(self.latent_cfg),
                             "dynamics": asdict(self.dynamics_cfg), "hierarchy": asdict(self.high_cfg),
                             "metric": asdict(self.metric_cfg) if self.metric_cfg is not None else None,
                             "task_metric": (asdict(self.task_metric_cfg) if self.task_metric_cfg is not None
                                             else None),
                             "shaping": asdict(self.shaping_cfg) if self.shaping_cfg is not None else None},
                 "planning_cost": self.planning_cost,
                 "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()}}
        return save_checkpoint(path, state, update_last=False)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> WorldModel:
        """From a ``world_model.pt`` file or a pretrain run directory holding one."""
        path = Path(path)
        file = path / WORLD_MODEL_FILE if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(
                f"no world model at {file}; make one with `python -m experiments.pretrain env=<name>` "
                f"(it writes {WORLD_MODEL_FILE} into the run directory)")
        state = load_checkpoint(file, map_location="cpu")
        if state.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{file} has world-model format {state.get('format_version')}, "
                                  f"expected {FORMAT_VERSION}; re-run `python -m experiments.pretrain`")
        configs = state["configs"]
        latent = LatentConfig(**{**LATENT_FIELDS_ADDED_LATER, **configs["latent"]})
        model = cls(VideoViTConfig(**configs["encoder"]), latent,
                    DynamicsConfig(**configs["dynamics"]), HighLevelConfig(**configs["hierarchy"]),
                    env_name=state["env_name"], env_id=state["env_id"], image_size=state["image_size"],
                    action_low=state["action_low"], action_high=state["action_high"],
                    action_space=state["action_space"],
                    # files written before the planning metric existed have no "metric" entry: no metric
                    metric_cfg=MetricConfig(**configs["metric"]) if configs.get("metric") else None,
                    task_metric_cfg=MetricConfig(**configs["task_metric"]) if configs.get("task_metric") else None,
                    shaping_cfg=ShapingConfig(**configs["shaping"]) if configs.get("shaping") else None,
                    planning_cost=state.get("planning_cost"))
        model.load_state_dict(state["state_dict"])
        return model.to(device)

    def describe(self) -> dict[str, Any]:
        return {"env": self.env_name, "image_size": self.image_size, "action_dim": self.action_dim,
                "proprio_dim": self.proprio_dim,
                "latent_space": self.state_space, "latent_dim": self.latent_dim,
                "high_latent_space": self.high_space, "k": self.k, "code_dim": self.code_dim,
                "planning_cost": self.default_cost}
