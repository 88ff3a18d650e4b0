"""Typed schema of ``configs/benchmark.yaml`` (registered as ``benchmark_schema``): typos fail before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from experiments.config import ModelConfig


@dataclass
class RenderBenchConfig:
    envs: list[str] = field(default_factory=list)
    steps: int = 300
    image_size: int = 64
    exploration_episodes: int = 200
    exploration_workers: list[int] = field(default_factory=lambda: [1, 2])


@dataclass
class LoaderBenchConfig:
    workers: int = 1
    batches: int = 20
    episodes: int = 50


@dataclass
class PretrainBenchConfig:
    batch_size: int = 16
    warmup: int = 2
    steps: int = 10


@dataclass
class AgentsBenchConfig:
    envs: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    episodes: int = 10
    max_steps: int = 200


@dataclass
class BenchmarkConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    quick: bool = False
    checkpoint: Optional[str] = None
    threads: int = 0  # 0: torch's default
    sections: list[str] = field(default_factory=list)
    device: str = "auto"  # the pretrain and agents sections: auto (CUDA when available) | cpu | cuda | cuda:N
    precision: str = "auto"
    env: str = MISSING
    cache_dir: str = MISSING
    render: RenderBenchConfig = field(default_factory=RenderBenchConfig)
    loader: LoaderBenchConfig = field(default_factory=LoaderBenchConfig)
    pretrain: PretrainBenchConfig = field(default_factory=PretrainBenchConfig)
    agents: AgentsBenchConfig = field(default_factory=AgentsBenchConfig)
    quick_overrides: dict[str, Any] = field(default_factory=dict)  # merged over the above with quick=true


def register_benchmark_schema() -> None:
    ConfigStore.instance().store(name="benchmark_schema", node=BenchmarkConfig)
