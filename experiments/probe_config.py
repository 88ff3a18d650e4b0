"""Typed schema of ``python -m experiments.probe`` (registered as ``probe_schema``): every default lives here.

A misspelt key, a wrong type or a value outside what a setting declares fails before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from envs.probe_tasks import CLIP_TASKS
from worldmodel.evaluation.probe import ProbeSweepConfig
from worldmodel.settings import setting

TASKS = (*CLIP_TASKS, "physics")
# t_angle is opt-in: it needs gym-pusht (pip install -e '.[pusht]')
DEFAULT_TASKS = ("direction", "contact", "physics")
BASELINES = ("random", "pixels")


@dataclass
class ProbeHeadConfig(ProbeSweepConfig):
    """The attentive probe and its sweep (learning rates, weight decays, epochs: ``ProbeSweepConfig``)."""

    queries: int = setting(1, minimum=1)  # learned query tokens of the attentive probe
    heads: int = setting(16, minimum=1)  # as V-JEPA's probe; with 4 heads it rarely finds the ball within the budget


@dataclass
class ProbeConfig:
    checkpoint: str | None = None  # a pretrain run directory; null: the newest under runs_root
    runs_root: str = "runs/pretrain"
    tasks: list[str] = setting(list(DEFAULT_TASKS), choices=TASKS)
    baselines: list[str] = setting(list(BASELINES), choices=BASELINES)
    train_clips: int = setting(600, minimum=2)  # per probe task; the first val_fraction of them validate
    test_clips: int = setting(400, minimum=1)
    val_fraction: float = setting(0.2, between=(0.0, 1.0))
    physics_pairs: int = setting(64, minimum=1)  # per violation kind
    context_tubelets: int = setting(2, minimum=1)  # surprise: tubelets seen; the rest are predicted
    # the predictor's mask token for the surprise test, fixed a priori: 2 = FUTURE (trained to predict the
    # second half of a clip from the first; worldmodel.models.masks.DEFAULT_SPECS order)
    mask_type: int = setting(2, minimum=0)
    probe: ProbeHeadConfig = field(default_factory=ProbeHeadConfig)
    seed: int = 0
    device: str = "auto"  # auto (CUDA when available, else CPU) | cpu | cuda | cuda:N
    # torch threads; 1 by default: on the shared 2-core CPU, 2 threads made the probe sweep ~30x slower
    # (oversubscription). null keeps torch's default.
    threads: int | None = setting(1, minimum=1, nullable=True)


def register_probe_schema() -> None:
    ConfigStore.instance().store(name="probe_schema", node=ProbeConfig)
