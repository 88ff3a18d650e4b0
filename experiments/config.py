"""Typed schemas for the Hydra configs: a misspelt key or a wrong type fails before anything runs.

The YAML files under ``configs/`` hold the defaults; these dataclasses say what keys exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from worldmodel.training.dynamics_stage import DynamicsStageConfig
from worldmodel.training.high_level_stage import HighLevelStageConfig
from worldmodel.training.metric_stage import MetricStageConfig
from worldmodel.training.task_metric_stage import TaskMetricStageConfig
from worldmodel.training.video_stage import VideoStageConfig


@dataclass
class EnvConfig:
    """An env and what is specific to it: the planning cost its world model uses, and agent settings."""

    name: str = MISSING  # Hydra name, e.g. pointmass_tworooms (see envs.ENV_IDS)
    image_size: int = 64
    # The cost the world model pretrained for this env plans with: metric (the learned temporal distance: paths
    # round walls) | task (the learned task distance: which part of the picture counts) | latent
    planning_cost: str = "metric"
    # Agent parameters for this env, {agent name: {param: value}}; `agent.params.*` on the command line wins.
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Pretrain settings for this env, {dotted key: value} (e.g. data.episodes: 800); the command line wins.
    pretrain: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """A preset from ``worldmodel.models.MODEL_PRESETS``; any field left None keeps the preset's value."""

    name: str = MISSING
    image_size: Optional[int] = None
    frames: Optional[int] = None
    tubelet: Optional[int] = None
    patch: Optional[int] = None
    width: Optional[int] = None
    depth: Optional[int] = None
    heads: Optional[int] = None
    mlp_ratio: Optional[float] = None
    pred_width: Optional[int] = None
    pred_depth: Optional[int] = None
    pred_heads: Optional[int] = None


@dataclass
class DataConfig:
    source: str = MISSING  # sim | videos | sim+videos
    root: Optional[str] = None  # videos: a folder (searched recursively) or a .csv/.txt list of paths
    frame_step: int = 2
    video_fraction: float = 0.5  # sim+videos: share of the clips drawn from the videos, the rest from the env
    video_frame_step: Optional[int] = None  # sim+videos: the videos' frame step (null: frame_step)
    episodes: int = 200  # sim: exploration episodes rendered from the env
    episode_steps: int = 64  # sim: steps per exploration episode
    num_workers: int = 1
    render_workers: int = 2  # sim: processes that render the exploration episodes on a cache miss
    probe_workers: int = 4


@dataclass
class LatentSettings:
    """The compact state latent levels 1 and 2 work in (``worldmodel.models.latent_head``)."""

    # Encoder tokens average-pooled to a pool x pool grid; null keeps the whole token grid (8 x 8 for the tiny
    # preset). Pooling it to 4 x 4 blurs where the ball is to about the pointmass success radius (README).
    pool: Optional[int] = None
    dim: int = 64  # PCA-projected latent size Dz
    # What level 1 predicts in: pca (z) | metric (the temporal metric's embedding of z) | task (the task cost's
    # embedding of z, then the body state) | null: the space of the env's planning cost (metric or task)
    space: Optional[str] = None
    high_space: Optional[str] = None  # what level 2 predicts in: pca | metric | task | null (as ``space``)
    batch_size: int = 256  # frames per encoder call
    holdout_fraction: float = 0.1  # episodes held out for the horizon evaluation


@dataclass
class PretrainConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    video: VideoStageConfig = field(default_factory=VideoStageConfig)
    latent: LatentSettings = field(default_factory=LatentSettings)
    dynamics: DynamicsStageConfig = field(default_factory=DynamicsStageConfig)
    hierarchy: HighLevelStageConfig = field(default_factory=HighLevelStageConfig)
    metric: MetricStageConfig = field(default_factory=MetricStageConfig)
    task: TaskMetricStageConfig = field(default_factory=TaskMetricStageConfig)
    stages: list[str] = field(default_factory=lambda: ["video", "dynamics", "hierarchy", "metric", "task"])
    seed: int = 0
    device: str = "auto"  # auto (CUDA when available, else CPU) | cpu | cuda | cuda:N
    resume: bool = False
    encoder: Optional[str] = None  # an exported encoder.safetensors for runs without the video stage
    cache_dir: str = MISSING  # rendered trajectories are cached here


def register_schemas() -> None:
    store = ConfigStore.instance()
    store.store(name="pretrain_schema", node=PretrainConfig)
