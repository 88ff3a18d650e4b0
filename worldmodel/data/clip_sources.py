"""The clips the video stage reads: ``data=sim`` (rendered from our env), ``data=videos`` (a folder or list of
the user's videos) or ``data=sim+videos`` (both, ``data.video_fraction`` of the clips from the videos).

Each builder returns the clip source, a record of where the clips came from (``summary.json`` ``video.data``)
and the skipped inputs per reason (``video.skipped_inputs``). The env's frames come from ``exploration`` (the
pretrain command's exploration data, rendered or cached by ``envs``), so this package does not depend on ``envs``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from worldmodel.data.mixed_clips import MixedClips
from worldmodel.data.sim_clips import SimClipDataset
from worldmodel.data.trajectories import TrajectoryDataset
from worldmodel.data.videos import VideoClipDataset
from worldmodel.models.encoder import VideoViTConfig
from worldmodel.training.distributed import DistInfo, barrier

SOURCES = ("sim", "videos", "sim+videos")
Exploration = Callable[[], TrajectoryDataset]  # the env's exploration episodes under cfg.data, cfg.seed


def _sim_clips(cfg: DictConfig, model_cfg: VideoViTConfig, dist: DistInfo,
               exploration: Exploration) -> tuple[Any, dict[str, Any]]:
    data = cfg.data
    # Rank 0 renders (or finds the cache) first; the others then read the cache.
    for rank_turn in (True, False):
        if dist.is_main == rank_turn:
            trajectories = exploration()
        barrier()
    dataset = SimClipDataset(trajectories.frames, trajectories.episode_starts, frames=model_cfg.frames,
                             frame_step=data.frame_step, size=model_cfg.image_size)
    return dataset, {"source": "sim", "env": cfg.env.name, "episodes": data.episodes}


def _video_clips(cfg: DictConfig, model_cfg: VideoViTConfig, frame_step: int) -> tuple[Any, dict[str, Any]]:
    data = cfg.data
    if data.root is None or OmegaConf.is_missing(data, "root"):
        raise ValueError(f"data={data.source} needs data.root=PATH (a folder of videos or a .csv/.txt list)")
    dataset = VideoClipDataset.from_root(
        data.root, cache_dir=Path(cfg.cache_dir) / "video_index", frames=model_cfg.frames,
        frame_step=frame_step, size=model_cfg.image_size, num_check_workers=data.probe_workers)
    record = {"source": "videos", "root": str(data.root), "videos": len(dataset.paths),
              "probed": dataset.checked,
              "skipped_files": {reason: paths for reason, paths in dataset.skipped.items() if paths}}
    return dataset, record


def build_clip_dataset(cfg: DictConfig, model_cfg: VideoViTConfig, dist: DistInfo,
                       exploration: Exploration) -> tuple[Any, dict[str, Any], dict[str, int]]:
    """(clip source, record of its origin, skipped inputs per reason) for ``cfg.data.source`` (a pretrain
    config); ``exploration()`` gives the env's exploration episodes for ``sim``."""
    data = cfg.data
    if data.source == "sim":
        dataset, record = _sim_clips(cfg, model_cfg, dist, exploration)
        return dataset, record, {}
    if data.source == "videos":
        dataset, record = _video_clips(cfg, model_cfg, data.frame_step)
        return dataset, record, dataset.skipped_counts()
    if data.source == "sim+videos":
        fraction = float(data.video_fraction)
        if not 0 < fraction < 1:
            raise ValueError(f"data.video_fraction must lie strictly between 0 and 1, got {fraction}; "
                             f"use data=sim or data=videos for one source alone")
        videos, video_record = _video_clips(cfg, model_cfg, data.video_frame_step or data.frame_step)
        sim, sim_record = _sim_clips(cfg, model_cfg, dist, exploration)
        mixed = MixedClips([sim, videos], [1 - fraction, fraction])
        record = {"source": "sim+videos", "video_fraction": fraction, "clips_per_epoch": len(mixed),
                  "sim": sim_record, "videos": video_record}
        return mixed, record, videos.skipped_counts()
    raise ValueError(f"unknown data.source {data.source!r}; choose one of {', '.join(SOURCES)}")
