"""Typed schema of ``configs/benchmark.yaml`` (registered as ``benchmark_schema``): typos fail before anything runs.

The YAML holds the values; fields with a default here (``device``, ``pretrain.compile``) are not repeated there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from experiments.config import ModelConfig


@dataclass
class RenderBenchConfig:
    envs: list[str] = MISSING
    steps: int = MISSING
    image_size: int = MISSING
    exploration_episodes: int = MISSING
    exploration_workers: list[int] = MISSING


@dataclass
class LoaderBenchConfig:
    workers: int = MISSING
    batches: int = MISSING
    episodes: int = MISSING


@dataclass
class PretrainBenchConfig:
    batch_size: int = MISSING
    warmup: int = MISSING
    steps: int = MISSING
    compile: Optional[bool] = None  # as video.compile: null (auto) compiles on CUDA only


@dataclass
class AgentsBenchConfig:
    envs: list[str] = MISSING
    names: list[str] = MISSING
    episodes: int = MISSING
    max_steps: int = MISSING


@dataclass
class BenchmarkConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    quick: bool = MISSING
    checkpoint: Optional[str] = MISSING
    threads: int = MISSING
    sections: list[str] = MISSING
    device: str = "auto"  # pretrain and agents sections: auto (CUDA when available, else CPU) | cpu | cuda | cuda:N
    precision: str = MISSING
    env: str = MISSING
    cache_dir: str = MISSING
    render: RenderBenchConfig = field(default_factory=RenderBenchConfig)
    loader: LoaderBenchConfig = field(default_factory=LoaderBenchConfig)
    pretrain: PretrainBenchConfig = field(default_factory=PretrainBenchConfig)
    agents: AgentsBenchConfig = field(default_factory=AgentsBenchConfig)
    quick_overrides: dict[str, Any] = field(default_factory=dict)  # merged over the above with quick=true


def register_benchmark_schema() -> None:
    ConfigStore.instance().store(name="benchmark_schema", node=BenchmarkConfig)
