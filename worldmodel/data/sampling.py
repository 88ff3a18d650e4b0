"""Exactly resumable clip streams: the sample at global position p is a pure function of (dataset, seed, p).

Training reads an infinite stream of positions p = 0, 1, 2, ... Position p belongs to epoch e = p // n
(n = number of clip sources, e.g. videos or simulator windows) and to item ``perm_e[p % n]``, where
``perm_e`` is a permutation seeded by (seed, e). Every random choice for that sample (temporal window, crop,
flip, the fallback when a file fails to decode) is drawn from ``numpy.random.default_rng([seed, p])``.

Consequences:
- resume: start the sampler at the saved position (the number of samples consumed so far, all ranks
  together); no sampler or RNG state needs saving;
- DDP: rank r of w reads positions start + r, start + r + w, ...; the union over ranks is the same stream;
- worker processes and prefetching change nothing, because no state is carried between samples.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from worldmodel.data.transforms import center_resize, random_resized_crop_flip

_PERMUTATION_TAG = 0x5045524D  # "PERM": keeps epoch permutations apart from per-sample generators


@runtime_checkable
class ClipSource(Protocol):
    """What :class:`ResumableClips` needs from a dataset (videos or simulator clips)."""

    size: int  # output side length in pixels

    def __len__(self) -> int: ...

    def load_clip(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """uint8 ``(T, H, W, 3)`` frames of item ``index``; randomness only from ``rng``."""
        ...


class PositionSampler(Sampler[int]):
    """Yields global positions forever: ``start + rank``, ``start + rank + world_size``, ...

    ``start`` is a global position (samples consumed by all ranks together), the same on every rank.
    """

    def __init__(self, start: int = 0, rank: int = 0, world_size: int = 1):
        if start < 0:
            raise ValueError(f"start position must be >= 0, got {start}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.start, self.rank, self.world_size = start, rank, world_size

    def __iter__(self) -> Iterator[int]:
        p = self.start + self.rank
        while True:
            yield p
            p += self.world_size


class ResumableClips(Dataset):
    """Map-style dataset over global positions: ``item[p] = {"clip": (C, T, H, W) float, "position": p}``.

    ``clip`` is ImageNet-normalised; with ``augment`` it is a random-resized crop with flip (same for every
    frame), otherwise a centred crop. ``load_failures`` counts the files that failed to decode while producing
    this sample (they are replaced by another item drawn from the sample's generator); sum it in the collate
    function to report runtime failures from worker processes.
    """

    def __init__(self, dataset: ClipSource, seed: int, augment: bool = True, size: int | None = None):
        if len(dataset) == 0:
            raise ValueError("ResumableClips needs a dataset with at least one item")
        self.dataset = dataset
        self.seed = int(seed)
        self.augment = augment
        self.size = int(size if size is not None else dataset.size)
        self._perm_cache: dict[int, np.ndarray] = {}

    @property
    def epoch_length(self) -> int:
        return len(self.dataset)

    def index_at(self, position: int) -> int:
        """The dataset item read at global ``position``."""
        n = len(self.dataset)
        epoch, offset = divmod(int(position), n)
        perm = self._perm_cache.get(epoch)
        if perm is None:
            perm = np.random.default_rng([self.seed, _PERMUTATION_TAG, epoch]).permutation(n)
            self._perm_cache = {epoch: perm}  # positions are read in order: one epoch cached is enough
        return int(perm[offset])

    def __getitem__(self, position: int) -> dict[str, Any]:
        position = int(position)
        if position < 0:
            raise IndexError(f"positions start at 0, got {position}")
        rng = np.random.default_rng([self.seed, position])
        failures_before = getattr(self.dataset, "runtime_failures", 0)
        frames = self.dataset.load_clip(self.index_at(position), rng)
        if self.augment:
            clip = random_resized_crop_flip(frames, self.size, rng)
        else:
            clip = center_resize(frames, self.size)
        failures = getattr(self.dataset, "runtime_failures", 0) - failures_before
        return {"clip": clip, "position": position, "load_failures": failures}


def _worker_init(_: int) -> None:
    # Workers share a few cores with the training process: one intra-op thread each.
    torch.set_num_threads(1)


def make_loader(
    dataset: ClipSource | ResumableClips,
    batch_size: int,
    seed: int,
    start_position: int,
    collate_fn: Callable[[list[dict[str, Any]]], Any],
    num_workers: int,
    rank: int = 0,
    world_size: int = 1,
    augment: bool = True,
    prefetch_factor: int = 2,
    pin_memory: bool = False,
) -> DataLoader:
    """An infinite DataLoader reading positions ``start_position + rank + i * world_size``.

    ``collate_fn`` receives the list of items (dicts with ``clip``, ``position``, ``load_failures``), so it can
    seed mask sampling by position. Resume by passing the number of samples consumed (all ranks) as
    ``start_position``. ``pin_memory``: batches in page-locked memory, so a GPU copy of them runs
    asynchronously instead of waiting for the work already queued on the device.
    """
    if isinstance(dataset, ResumableClips):
        if dataset.seed != int(seed):
            raise ValueError(
                f"make_loader got seed={seed} but the ResumableClips was built with {dataset.seed}"
            )
        clips = dataset
    else:
        clips = ResumableClips(dataset, seed, augment=augment)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs.update(
            persistent_workers=True,
            prefetch_factor=prefetch_factor,
            worker_init_fn=_worker_init,
            multiprocessing_context="fork" if sys.platform.startswith("linux") else None,
        )
    return DataLoader(
        clips,
        batch_size=batch_size,
        sampler=PositionSampler(start_position, rank, world_size),
        collate_fn=collate_fn,
        num_workers=num_workers,
        drop_last=True,
        pin_memory=pin_memory,
        **kwargs,
    )
