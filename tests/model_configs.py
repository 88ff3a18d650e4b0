"""Small model configs for tests, built the way pretrain builds them: from the stage configs' defaults.

The model configs (``DynamicsConfig`` ...) have no defaults of their own; a test names only what it shrinks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from worldmodel.models import get_preset
from worldmodel.models.dynamics import DynamicsConfig
from worldmodel.models.high_level import HighLevelConfig
from worldmodel.models.latent_head import LatentConfig, LatentSettings
from worldmodel.models.metric import MetricConfig
from worldmodel.training.dynamics_stage import DynamicsStageConfig
from worldmodel.training.high_level_stage import HighLevelStageConfig
from worldmodel.training.metric_stage import MetricStageConfig
from worldmodel.world_model import WorldModel


def latent_config(pool: int | None = 4, dim: int = 32, space: str = "pca", high_space: str | None = None,
                  proprio_dim: int = 0) -> LatentConfig:
    """A latent head of ``dim`` dims over a ``pool`` x ``pool`` grid (32 over 4 x 4 unless told)."""
    return LatentSettings(pool=pool, dim=dim).head_config(space, high_space, proprio_dim)


def dynamics_config(latent_dim: int, action_dim: int, **stage) -> DynamicsConfig:
    """Level 1 as ``DynamicsStageConfig(**stage)`` builds it."""
    return DynamicsStageConfig(**stage).model_config(latent_dim, action_dim)


def high_level_config(latent_dim: int, action_dim: int, code_hidden: int | None = None, **stage) -> HighLevelConfig:
    """Level 2 as ``HighLevelStageConfig(**stage)`` builds it; ``code_hidden`` shrinks the chunk code too."""
    cfg = HighLevelStageConfig(**stage).model_config(latent_dim, action_dim)
    return cfg if code_hidden is None else dataclasses.replace(cfg, code_hidden=code_hidden)


def metric_config(latent_dim: int, **stage) -> MetricConfig:
    """The planning metric as ``MetricStageConfig(**stage)`` builds it."""
    return MetricStageConfig(**stage).model_config(latent_dim)


def tiny_world_model(env_name: str = "pointmass_tworooms", env_id: str = "worldmodel/PointMassTwoRooms-v0",
                     **kwargs: Any) -> WorldModel:
    """A world model of default sizes (tiny encoder at 64 px, Dz 32, 2-d actions), random weights from seed 0."""
    torch.manual_seed(0)
    return WorldModel(get_preset("tiny"), latent_config(), dynamics_config(32, 2), high_level_config(32, 2),
                      env_name=env_name, env_id=env_id, image_size=64, action_low=-1.0, action_high=1.0, **kwargs)
