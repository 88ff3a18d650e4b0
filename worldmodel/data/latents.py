"""Latent trajectories: a trajectory dataset encoded by the latent head, ready for levels 1 and 2.

Pooled features of a whole ``TrajectoryDataset`` are cached on disk next to the dataset, keyed by
``(encoder hash, dataset hash, pool)``; the PCA is fitted from the cache in seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from worldmodel.io.checkpoint import state_dict_hash
from worldmodel.models.latent_head import LatentHead

log = logging.getLogger(__name__)


def dataset_hash(dataset) -> str:
    """sha256 (16 hex) over a TrajectoryDataset's metadata, offsets, actions and a strided frame sample."""
    digest = hashlib.sha256(json.dumps(dataset.metadata, sort_keys=True, default=str).encode())
    digest.update(np.ascontiguousarray(dataset.episode_starts).tobytes())
    digest.update(np.ascontiguousarray(dataset.actions).tobytes())
    stride = max(1, len(dataset) // 64)
    digest.update(np.ascontiguousarray(dataset.frames[::stride]).tobytes())
    return digest.hexdigest()[:16]


@torch.no_grad()
def encode_pooled(head: LatentHead, frames: np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """Pooled features ``(N, F)`` float32 for uint8 frames ``(N, H, W, 3)``, encoded in batches."""
    out = [head.pooled(np.ascontiguousarray(frames[i:i + batch_size])).cpu()
           for i in range(0, len(frames), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, head.mean.numel())


def cached_pooled(head: LatentHead, dataset, cache_dir: str | os.PathLike | None) -> torch.Tensor:
    """Pooled features of every frame of ``dataset`` ``(N, F)``, cached as ``cache_dir/latents-<key>.npy``.

    The key covers the encoder weights, the dataset and the pooling, so a new encoder or new data
    never reads a stale cache. ``cache_dir=None`` computes without caching.
    """
    key = f"{state_dict_hash(head.encoder)}-{dataset_hash(dataset)}-p{head.pool}"
    path = Path(cache_dir) / f"latents-{key}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            array = np.load(path, allow_pickle=False)
            if array.shape[0] == len(dataset):
                log.info("loaded cached latents %s", path)
                return torch.from_numpy(array.astype(np.float32))
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable latent cache %s (%s)", path, exc)
    pooled = encode_pooled(head, dataset.frames, head.cfg.batch_size)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, pooled.half().numpy())  # float16 halves the file; PCA does not need more
        os.replace(tmp, path)
    return pooled.half().float()  # identical values whether computed or read back


def dataset_cache_dir(dataset) -> Path | None:
    """Where a dataset loaded from disk lives (latents are cached next to it), else None."""
    frames = dataset.frames
    filename = getattr(frames, "filename", None)  # np.memmap
    return Path(filename).parent if filename else None


@dataclass
class LatentTrajectories:
    """Latents of a trajectory dataset, ready for levels 1 and 2 (all tensors share the first axis N).

    ``z (N, Dz)`` latents, ``d (N, Dz)`` latent velocities (zero at episode starts), ``actions (N, A)``,
    ``episode_starts (E + 1,)``; ``train_episodes`` / ``holdout_episodes`` index episodes.
    """

    z: torch.Tensor
    d: torch.Tensor
    actions: torch.Tensor
    episode_starts: np.ndarray
    train_episodes: np.ndarray
    holdout_episodes: np.ndarray

    @classmethod
    def build(cls, z: torch.Tensor, actions, episode_starts, holdout_fraction: float = 0.1):
        starts = np.asarray(episode_starts, np.int64)
        first = torch.zeros(len(z), dtype=torch.bool)
        first[torch.from_numpy(starts[:-1].copy())] = True
        d = torch.zeros_like(z)
        d[1:] = z[1:] - z[:-1]
        d[first] = 0.0
        episodes = len(starts) - 1
        held = min(episodes - 1, max(1, round(holdout_fraction * episodes))) if episodes > 1 else 0
        order = np.arange(episodes)
        return cls(z.float(), d, torch.tensor(np.array(actions), dtype=torch.float32), starts,
                   order[: episodes - held], order[episodes - held:])

    def windows(self, length: int, split: str = "train") -> np.ndarray:
        """Start indices ``(W,)`` of runs of ``length`` frames inside one episode of ``split``."""
        episodes = self.train_episodes if split == "train" else self.holdout_episodes
        out = [np.arange(self.episode_starts[e], self.episode_starts[e + 1] - length + 1) for e in episodes]
        out = [w for w in out if len(w)]
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)

    def gather(self, starts: torch.Tensor, length: int) -> dict[str, torch.Tensor]:
        """Windows from ``starts (B,)``: ``z`` and ``d`` ``(B, length, Dz)``, ``actions (B, length - 1, A)``."""
        index = starts[:, None] + torch.arange(length)[None]
        return {"z": self.z[index], "d": self.d[index], "actions": self.actions[index[:, :-1]]}


def prepare_latents(head: LatentHead, dataset, *, cache_dir: str | os.PathLike | None = "auto",
                    holdout_fraction: float = 0.1) -> tuple[LatentTrajectories, dict]:
    """Fit ``head``'s PCA on the training episodes' pooled features and return the latent trajectories.

    ``cache_dir="auto"``: next to the dataset when it was loaded from disk (else no cache).
    Returns the trajectories and a record (hashes, explained variance, encode seconds).
    """
    started = time.perf_counter()
    where = dataset_cache_dir(dataset) if cache_dir == "auto" else cache_dir
    pooled = cached_pooled(head, dataset, where)
    encode_seconds = time.perf_counter() - started
    split = LatentTrajectories.build(torch.zeros(len(dataset), 1), dataset.actions, dataset.episode_starts,
                                     holdout_fraction)
    train_end = int(dataset.episode_starts[split.train_episodes[-1] + 1])  # train episodes come first
    stats = head.fit(pooled[:train_end])
    proprio = getattr(dataset, "proprio", None)
    if proprio is not None:
        proprio = torch.from_numpy(np.array(proprio, np.float32))
        head.fit_proprio(proprio[:train_end])
    z = head.project(pooled, proprio)
    data = LatentTrajectories.build(z, dataset.actions, dataset.episode_starts, holdout_fraction)
    record = {**stats, "proprio_dim": head.cfg.proprio_dim, "frames": len(dataset), "encode_seconds": encode_seconds,
              "encoder_hash": state_dict_hash(head.encoder), "dataset_hash": dataset_hash(dataset),
              "train_episodes": len(data.train_episodes), "holdout_episodes": len(data.holdout_episodes),
              "latent_std": float(z.std(0).mean())}
    return data, record
