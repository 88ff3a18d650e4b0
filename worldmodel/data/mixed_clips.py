"""Clips drawn from several sources at fixed shares, e.g. the simulator's rendered clips and the user's videos.

:class:`MixedClips` is itself a clip source (``load_clip(index, rng)``, ``size``, ``len``), so
``ResumableClips`` shuffles, seeds and resumes it exactly like a single source. Its items are laid out in
blocks: an epoch has ``L`` items, ``counts[s]`` of them from source ``s`` (``counts[s] / L`` is that source's
share, up to rounding), and block item ``j`` of source ``s`` is that source's item ``j mod len(s)``. ``L`` is the
smallest length at which every source fills its share with each of its items at least once. With the
per-epoch permutation of ``ResumableClips`` the sources are interleaved at random, every epoch holds the
shares exactly, and the clip at a position is a function of (sources, shares, seed, position) alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from worldmodel.data.sampling import ClipSource


class MixedClips:
    """Items of ``sources`` at the given ``shares`` (positive, summing to 1); all sources share one ``size``."""

    def __init__(self, sources: Sequence[ClipSource], shares: Sequence[float]):
        if len(sources) != len(shares) or len(sources) < 2:
            raise ValueError(f"need one share per source and at least two sources, got {len(sources)} "
                             f"source(s) and shares {list(shares)}")
        if any(not 0 < s < 1 for s in shares) or not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
            raise ValueError(f"shares must lie strictly between 0 and 1 and sum to 1, got {list(shares)}")
        sizes = {int(s.size) for s in sources}
        if len(sizes) != 1:
            raise ValueError(f"sources produce clips of different sizes {sorted(sizes)}; use one size")
        if any(len(s) == 0 for s in sources):
            raise ValueError("every source needs at least one item")
        self.sources, self.shares = list(sources), [float(s) for s in shares]
        self.size = sizes.pop()
        length = max(math.ceil(len(src) / share) for src, share in zip(self.sources, self.shares))
        counts = [max(len(src), round(length * share)) for src, share in zip(self.sources, self.shares)]
        self.counts = counts  # (S,) items of each source per epoch
        self.offsets = np.cumsum([0, *counts])  # (S + 1,) where each source's block starts

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(source number, item of that source) of mixed item ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} outside 0..{len(self) - 1}")
        source = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return source, int(index - self.offsets[source]) % len(self.sources[source])

    def load_clip(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """uint8 ``(T, H, W, 3)`` of the source item behind mixed item ``index``."""
        source, item = self.locate(index)
        return self.sources[source].load_clip(item, rng)

    @property
    def runtime_failures(self) -> int:
        """Files that failed to decode while training, summed over the sources."""
        return sum(getattr(s, "runtime_failures", 0) for s in self.sources)
