"""Typed schema of ``python -m experiments.plan`` (registered as ``plan_schema``): every default lives here.

``configs/plan.yaml`` only selects the default env and agent; a misspelt key, a wrong type or a value outside
what a setting declares (``worldmodel.settings``) fails before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from experiments.config import CACHE_DIR, EnvConfig
from worldmodel.settings import setting


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

    max_frames: int = setting(2000, minimum=1)
    episodes: int = setting(200, minimum=1)  # used when the checkpoint's config does not say (e.g. data=videos)
    steps: int = setting(64, minimum=1)


@dataclass
class TensorBoardConfig:
    enabled: bool = True
    videos: int = setting(8, minimum=0)  # episodes with a video/diagnostic images (the first N); scalars for all
    fps: float = 10.0
    inspect_steps: int = setting(4, minimum=1)  # mpc: steps whose imagined trajectory is shown (evenly spread)


@dataclass
class PlanConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    bank: BankConfig = field(default_factory=BankConfig)
    tb: TensorBoardConfig = field(default_factory=TensorBoardConfig)
    checkpoint: str | None = None  # a pretrain run dir; default: the newest under pretrain_root/<env>
    pretrain_root: str = "runs/pretrain"
    episodes: int = setting(10, minimum=1)
    seed: int = 0
    max_steps: int | None = setting(None, minimum=1)  # null: twice goal_steps when set, else the env's time limit
    # goals: the state reached goal_steps env steps later along held-out trajectories (DINO-WM / HWM's protocol;
    # envs.trajectory_goals); null: the env's own goal sampling
    goal_steps: int | None = None
    # episodes in parallel processes (spawned; each loads the env and the world model); 1 was faster on the shared
    # 2-core CPU (spawning costs ~4 s)
    workers: int = setting(1, minimum=1)
    # torch threads per process: small planning batches run fastest on one (and no oversubscription when cores
    # are shared): 24 vs 204 ms/action for hierarchical
    threads: int = setting(1, minimum=1)
    device: str = "auto"  # auto (CUDA when available, else CPU) | cpu | cuda | cuda:N; agents follow the model
    cache_dir: str = CACHE_DIR


def register_plan_schema() -> None:
    ConfigStore.instance().store(name="plan_schema", node=PlanConfig)
