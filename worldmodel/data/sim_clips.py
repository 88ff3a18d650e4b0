"""Clips cut from rendered simulator episodes, never crossing an episode boundary.

Frames of all episodes are stored back to back in one uint8 array ``(N, H, W, 3)``; episode ``e`` spans
``frames[episode_starts[e]:episode_starts[e + 1]]``. Item ``i`` is the i-th valid window start, so an epoch
visits every window once. Same ``load_clip(index, rng)`` interface as ``VideoClipDataset``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


class SimClipDataset:
    """Windows of ``frames`` frames, ``frame_step`` apart, inside single episodes."""

    def __init__(
        self,
        frames_array: np.ndarray,
        episode_starts: np.ndarray,
        frames: int = 8,
        frame_step: int = 1,
        size: int = 64,
    ):
        frames_array = np.asarray(frames_array)
        starts = np.asarray(episode_starts, dtype=np.int64)
        if frames_array.ndim != 4 or frames_array.shape[-1] != 3 or frames_array.dtype != np.uint8:
            raise ValueError(
                f"frames_array must be uint8 (N, H, W, 3), got {frames_array.dtype} {frames_array.shape}"
            )
        n = len(frames_array)
        if (
            starts.ndim != 1
            or len(starts) < 2
            or starts[0] != 0
            or starts[-1] != n
            or np.any(np.diff(starts) < 0)
        ):
            raise ValueError(
                f"episode_starts must rise from 0 to len(frames_array)={n} (E + 1 entries), got {starts.tolist()[:8]}"
                + ("..." if len(starts) > 8 else "")
            )
        if frames < 1 or frame_step < 1:
            raise ValueError(
                f"frames and frame_step must be >= 1, got frames={frames}, frame_step={frame_step}"
            )
        self.frames_array = frames_array
        self.episode_starts = starts
        self.frames, self.frame_step, self.size = int(frames), int(frame_step), int(size)
        self.span = (self.frames - 1) * self.frame_step + 1  # frames covered by one clip
        # (W,) first frame of every window that fits inside its episode
        windows = [
            np.arange(s, e - self.span + 1) for s, e in itertools.pairwise(starts) if e - s >= self.span
        ]
        self.window_starts = np.concatenate(windows) if windows else np.zeros(0, dtype=np.int64)
        if len(self.window_starts) == 0:
            longest = int(np.diff(starts).max()) if len(starts) > 1 else 0
            raise ValueError(
                f"no episode is long enough for a clip of {self.frames} frames with step {self.frame_step} "
                f"({self.span} frames needed, longest episode has {longest}); record longer episodes or "
                f"lower frames/frame_step"
            )
        self.runtime_failures = 0  # interface parity with VideoClipDataset; arrays never fail

    @classmethod
    def from_arrays(cls, frames_array: Any, episode_starts: Any, **kwargs: Any) -> SimClipDataset:
        """Build from anything array-like (numpy, torch tensors, lists), e.g. a trajectory store's fields."""
        if hasattr(frames_array, "numpy"):
            frames_array = frames_array.numpy()
        if hasattr(episode_starts, "numpy"):
            episode_starts = episode_starts.numpy()
        return cls(np.asarray(frames_array), np.asarray(episode_starts), **kwargs)

    def __len__(self) -> int:
        return len(self.window_starts)

    def frame_indices(self, index: int) -> np.ndarray:
        """(T,) indices into ``frames_array`` of clip ``index``."""
        return self.window_starts[index] + np.arange(self.frames) * self.frame_step

    def load_clip(self, index: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """uint8 ``(T, H, W, 3)``; the window is fixed by ``index`` (``rng`` unused, kept for the interface)."""
        return self.frames_array[self.frame_indices(index)]

    def skipped_counts(self) -> dict[str, int]:
        return {}
