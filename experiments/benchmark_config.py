"""Typed schema of ``python -m experiments.benchmark`` (registered as ``benchmark_schema``): every default lives
here; ``configs/benchmark.yaml`` only selects the model preset and the env. Typos fail before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from experiments.config import CACHE_DIR, DataConfig, EnvConfig, ModelConfig
from worldmodel.settings import setting
from worldmodel.training.video_stage import PRECISIONS, VideoStageConfig

SECTIONS = ("render", "pretrain", "agents", "physics", "goals")
DEFAULT_SECTIONS = ["render", "pretrain", "agents"]  # physics and goals play many episodes: ask for them by name
AGENTS = ["random", "mpc", "hierarchical", "oracle"]
ENVS = ["pointmass_open", "pointmass_tworooms", "pointmass_maze", "pointmass_serpentine", "reacher", "pusher"]


@dataclass
class RenderBenchConfig:
    envs: list[str] = setting(ENVS)
    steps: int = setting(300, minimum=1)
    image_size: int = setting(64, minimum=8)
    exploration_episodes: int = setting(DataConfig.episodes, minimum=1)  # as many as the pretrain default renders
    exploration_workers: list[int] = setting([1, 2])


@dataclass
class PhysicsBenchConfig:
    """``sections=[physics]``, per env of ``render.envs``: the batched physics' speed and a greedy planner's success."""

    samples: int = setting(256, minimum=1)  # candidates simulated at once
    greedy_episodes: int = setting(20, minimum=1)


@dataclass
class LoaderBenchConfig:
    batches: int = setting(20, minimum=1)  # timed; the loader's processes: data.num_workers, as in pretrain


@dataclass
class PretrainBenchConfig:
    batch_size: int = setting(16, minimum=1)
    warmup: int = setting(2, minimum=0)
    steps: int = setting(10, minimum=1)
    compile: Optional[bool] = VideoStageConfig.compile  # as video.compile; null (auto): as a long run, on CUDA only


@dataclass
class AgentsBenchConfig:
    envs: list[str] = setting(["pointmass_tworooms"])
    names: list[str] = setting(AGENTS)
    episodes: int = setting(10, minimum=1)
    max_steps: int = setting(200, minimum=1)


@dataclass
class GoalsBenchConfig:
    """``sections=[goals]``: success against goal distance on ``env`` (goals ``goal_steps`` env steps ahead on
    held-out trajectories, DINO-WM / HWM's protocol), the same goals for every agent."""

    names: list[str] = setting(AGENTS)
    goal_steps: list[int] = setting([25, 50, 75, 100])
    episodes: int = setting(50, minimum=1)
    max_steps: Optional[int] = setting(None, minimum=1)  # null: twice each goal distance (envs.trajectory_goals)


def _quick() -> dict[str, Any]:
    """quick=true: a smoke run (CI) with the same code paths and small counts."""
    return {"render": {"envs": ["pointmass_open"], "steps": 30, "exploration_episodes": 2},
            "loader": {"batches": 3}, "data": {"episodes": 4},
            "pretrain": {"batch_size": 4, "warmup": 1, "steps": 2},
            "physics": {"samples": 16, "greedy_episodes": 1},
            "agents": {"envs": ["pointmass_open"], "names": ["random", "oracle"], "episodes": 1, "max_steps": 5},
            "goals": {"names": ["random", "oracle"], "goal_steps": [5, 10], "episodes": 2, "max_steps": 5}}


@dataclass
class BenchmarkConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    quick: bool = False
    # a pretrain run dir for mpc/hierarchical; null: the newest runs/pretrain/<env>/* with a world model
    checkpoint: Optional[str] = None
    threads: int = setting(0, minimum=0)  # 0: torch's default
    sections: list[str] = setting(DEFAULT_SECTIONS, choices=SECTIONS)
    device: str = "auto"  # pretrain and agents sections: auto (CUDA when available, else CPU) | cpu | cuda | cuda:N
    precision: str = setting("auto", choices=PRECISIONS)  # auto: bf16 on a GPU that has it
    # env=NAME (as in pretrain; any registered env): clips for the loader and pretrain sections, exploration timing
    env: EnvConfig = field(default_factory=EnvConfig)
    # the clips the loader and pretrain sections read, as pretrain's data=sim|videos|sim+videos (data.root=...)
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0
    cache_dir: str = CACHE_DIR
    render: RenderBenchConfig = field(default_factory=RenderBenchConfig)
    physics: PhysicsBenchConfig = field(default_factory=PhysicsBenchConfig)
    loader: LoaderBenchConfig = field(default_factory=LoaderBenchConfig)
    pretrain: PretrainBenchConfig = field(default_factory=PretrainBenchConfig)
    agents: AgentsBenchConfig = field(default_factory=AgentsBenchConfig)
    goals: GoalsBenchConfig = field(default_factory=GoalsBenchConfig)
    quick_overrides: dict[str, Any] = field(default_factory=_quick)  # merged over the above with quick=true


def register_benchmark_schema() -> None:
    ConfigStore.instance().store(name="benchmark_schema", node=BenchmarkConfig)
