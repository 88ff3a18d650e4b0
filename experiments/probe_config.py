"""Typed schema of ``configs/probe.yaml`` (``python -m experiments.probe``): a misspelt key fails at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore


@dataclass
class ProbeHeadConfig:
    queries: int = 1  # learned query tokens of the attentive probe
    heads: int = 16  # as V-JEPA's probe; with 4 heads the probe rarely finds the ball within the budget
    lrs: list[float] = field(default_factory=lambda: [1e-3, 3e-3, 1e-2, 3e-2])
    weight_decays: list[float] = field(default_factory=lambda: [0.01])
    epochs: int = 30
    batch_size: int = 16


@dataclass
class ProbeConfig:
    checkpoint: str | None = None  # a pretrain run directory; None: the newest under runs_root
    runs_root: str = "runs/pretrain"
    tasks: list[str] = field(default_factory=lambda: ["direction", "contact", "physics"])
    baselines: list[str] = field(default_factory=lambda: ["random", "pixels"])
    train_clips: int = 600  # per probe task; the first val_fraction of them validate
    test_clips: int = 400
    val_fraction: float = 0.2
    physics_pairs: int = 64  # per violation kind
    context_tubelets: int = 2  # surprise: tubelets seen; the rest are predicted
    # the predictor's mask token for the surprise test, fixed a priori: 2 = FUTURE (trained to predict the
    # second half of a clip from the first; worldmodel.models.masks.DEFAULT_SPECS order)
    mask_type: int = 2
    probe: ProbeHeadConfig = field(default_factory=ProbeHeadConfig)
    seed: int = 0
    device: str = "auto"  # auto (CUDA when available, else CPU) | cpu | cuda | cuda:N
    # torch threads; 1 by default: on the shared 2-core CPU, 2 threads made the probe-sweep test ~30x slower
    # (oversubscription). None keeps torch's default.
    threads: int | None = 1


def register_probe_schema() -> None:
    ConfigStore.instance().store(name="probe_schema", node=ProbeConfig)
