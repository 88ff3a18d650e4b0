"""Our exploration data as a Minari dataset: ``python -m experiments.export_trajectories env=NAME out=PATH``.

Writes the episodes ``python -m experiments.pretrain env=NAME`` trains its levels on (the same ``data.*`` settings,
``seed`` and cache), so ``pretrain trajectories=PATH`` reads them back: the round trip of users' own recordings
(``worldmodel.data.minari_trajectories``; ``minari`` is an optional extra).
"""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

import envs
from experiments.common import check_settings, hydra_cli
from experiments.config import PretrainConfig
from experiments.env_option import register_env_option
from experiments.pretrain import apply_env_settings, exploration_data
from worldmodel.data.minari_trajectories import export_minari


@dataclass
class ExportConfig(PretrainConfig):
    """Pretrain's settings (the export reads its env, data.*, seed and cache_dir), and where to write."""

    out: str = MISSING  # a new folder for the Minari dataset


def main(cfg: DictConfig) -> None:
    apply_env_settings(cfg)
    check_settings(cfg, ExportConfig)
    trajectories = exploration_data(cfg)
    out = export_minari(trajectories, envs.make(cfg.env.name, image_size=cfg.env.image_size), cfg.out)
    print(f"wrote {trajectories.num_episodes} episodes ({len(trajectories)} frames) of {cfg.env.name} to {out}")


def cli() -> None:
    ConfigStore.instance().store(name="export_schema", node=ExportConfig)
    hydra_cli("export_trajectories", main, register_env_option)


if __name__ == "__main__":
    cli()
