"""Typed schema of ``configs/plan.yaml`` (registered as ``plan_schema``): typos fail before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from experiments.config import EnvConfig


@dataclass
class AgentConfig:
    """``name``: a registered agent (ours or a plug-in's entry point); ``_target_``: a dotted path
    ``pkg.mod:Class`` used instead of the name when set; ``params``: keyword arguments of its class."""

    name: str = MISSING
    _target_: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class BankConfig:
    """Real frames that world-model diagnostics (subgoals, imagined states) are shown as.

    The exploration trajectories of the checkpoint's own pretraining are reused (same cache), at most
    ``max_frames`` of them, taken evenly.
    """

    max_frames: int = 2000
    episodes: int = 200  # used when the checkpoint's config does not say (e.g. data=videos)
    steps: int = 64


@dataclass
class TensorBoardConfig:
    enabled: bool = True
    videos: int = 8  # episodes with a video/diagnostic images (the first N); scalars are logged for all
    fps: float = 10.0
    inspect_steps: int = 4  # mpc: steps whose imagined trajectory is shown (evenly over the episode)


@dataclass
class PlanConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    bank: BankConfig = field(default_factory=BankConfig)
    tb: TensorBoardConfig = field(default_factory=TensorBoardConfig)
    checkpoint: str | None = None  # a pretrain run dir; default: the newest under pretrain_root/<env>
    pretrain_root: str = "runs/pretrain"
    episodes: int = 10
    seed: int = 0
    max_steps: int | None = None  # default: the env's time limit
    # goals: the state reached goal_steps env steps later along held-out trajectories (DINO-WM / HWM's protocol;
    # envs.trajectory_goals); null: the env's own goal sampling
    goal_steps: int | None = None
    workers: int = 1  # episodes in parallel processes (spawned; each loads the env and the world model)
    threads: int = 1  # torch threads per process: small planning batches run fastest on one (and no
    #                   oversubscription when cores are shared): 24 vs 204 ms/action for hierarchical
    device: str = "auto"  # auto (CUDA when available, else CPU) | cpu | cuda | cuda:N; agents follow the model
    cache_dir: str = MISSING


def register_plan_schema() -> None:
    ConfigStore.instance().store(name="plan_schema", node=PlanConfig)
