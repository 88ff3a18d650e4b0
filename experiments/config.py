"""Typed schema of ``python -m experiments.pretrain`` (registered as ``pretrain_schema``).

Every default lives here or in the library dataclass a section imports (``VideoStageConfig`` ...); the YAML
files under ``configs/`` only select (an env, a model preset, a data source). A misspelt key or a wrong type
fails before anything runs, and so does a value outside what a setting declares (``worldmodel.settings``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from worldmodel.data.clip_sources import SOURCES
from worldmodel.models.latent_head import LatentSettings
from worldmodel.settings import setting
from worldmodel.training.dynamics_stage import DynamicsStageConfig
from worldmodel.training.high_level_stage import HighLevelStageConfig
from worldmodel.training.metric_stage import MetricStageConfig
from worldmodel.training.task_metric_stage import TaskMetricStageConfig
from worldmodel.training.video_stage import VideoStageConfig

# Where rendered trajectories, latents and video indexes are cached (every command shares it).
CACHE_DIR = "${oc.env:WORLDMODEL_CACHE,${oc.env:HOME}/.cache/worldmodel}"
STAGES = ("video", "dynamics", "hierarchy", "metric", "task")
PLANNING_COSTS = ("metric", "task", "latent")


@dataclass
class EnvConfig:
    """An env and what is specific to it: the planning cost its world model uses, and agent settings."""

    name: str = MISSING  # Hydra name, e.g. pointmass_tworooms (see envs.ENV_IDS)
    image_size: int = setting(64, minimum=8)
    # The cost the world model pretrained for this env plans with: metric (the learned temporal distance: paths
    # round walls) | task (the learned task distance: which part of the picture counts) | latent
    planning_cost: str = setting("metric", choices=PLANNING_COSTS)
    # Agent parameters for this env, {agent name: {param: value}}, read from its yaml by plan and benchmark alike
    # (experiments.env_option.env_agent_params); on the command line, set them with `agent.params.*`.
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Pretrain settings for this env, {dotted key: value} (e.g. data.episodes: 800); the command line wins.
    pretrain: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """A preset from ``worldmodel.models.MODEL_PRESETS``; any field left null keeps the preset's value."""

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
    """Where the video stage's clips come from (``configs/data/*.yaml`` select a source)."""

    source: str = setting(MISSING, choices=SOURCES)
    root: Optional[str] = None  # videos: a folder (searched recursively) or a .csv/.txt list of paths
    frame_step: int = setting(1, minimum=1)  # frames between a clip's frames
    # sim+videos: share of the clips drawn from the videos, the rest from the env
    video_fraction: float = setting(0.5, between=(0.0, 1.0))
    video_frame_step: Optional[int] = setting(None, minimum=1)  # sim+videos: the videos' frame step (null: frame_step)
    episodes: int = setting(200, minimum=1)  # sim: exploration episodes rendered from the env
    episode_steps: int = setting(64, minimum=1)  # sim: steps per exploration episode
    num_workers: int = setting(1, minimum=0)  # loader processes
    render_workers: int = setting(2, minimum=1)  # sim: processes that render the exploration episodes on a cache miss
    probe_workers: int = setting(4, minimum=1)  # videos: threads that check video files


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
    stages: list[str] = setting(list(STAGES), choices=STAGES)  # any subset, run in this order
    seed: int = 0
    device: str = "auto"  # auto (CUDA when available, else CPU) | cpu | cuda | cuda:N
    resume: bool = False  # continue the run in hydra.run.dir from its last checkpoints
    encoder: Optional[str] = None  # an exported encoder.safetensors (or a run dir) for runs without the video stage
    # the latent stages' episodes from a recorded Minari dataset (worldmodel.data.minari_trajectories) instead of
    # the env's exploration data; null: the exploration data
    trajectories: Optional[str] = None
    cache_dir: str = CACHE_DIR


def register_schemas() -> None:
    store = ConfigStore.instance()
    store.store(name="pretrain_schema", node=PretrainConfig)
