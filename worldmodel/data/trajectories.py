"""Env-agnostic storage of (frame, action, state) trajectories; knows nothing of envs or MuJoCo.

All episodes are stored back to back: ``frames (N, H, W, 3) uint8``, ``actions (N, A) float32`` (the
action taken after observing frame i; the last frame of each episode has zeros), ``states (N, S)
float32`` (true simulator state, for probes and oracles), ``episode_starts (E + 1,) int64`` (episode e
spans frames ``[starts[e], starts[e + 1])``). On disk: one folder of ``.npy`` files plus
``metadata.json``, written atomically (temp folder, then ``os.replace``), loaded memory-mapped.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.errors import UserError

FORMAT_VERSION = 1
ARRAYS = ("frames", "actions", "states", "episode_starts")
OPTIONAL_ARRAYS = ("proprio",)


class TrajectoryFormatError(UserError, ValueError):
    """A trajectory folder is missing files or holds arrays that do not fit together."""


@dataclass
class TrajectoryDataset:
    frames: np.ndarray  # (N, H, W, 3) uint8
    actions: np.ndarray  # (N, A) float32; zeros on each episode's last frame
    states: np.ndarray  # (N, S) float32
    episode_starts: np.ndarray  # (E + 1,) int64, from 0 to N
    metadata: dict[str, Any] = field(default_factory=dict)
    proprio: np.ndarray | None = None  # (N, P) float32, or None for pixel-only data

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, where: str = "TrajectoryDataset") -> None:
        """Raise ``TrajectoryFormatError`` (one line) if shapes, dtypes or offsets do not fit together."""
        f, a, s, starts = self.frames, self.actions, self.states, self.episode_starts
        n = len(f)
        problems = []
        if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8:
            problems.append(f"frames must be uint8 (N, H, W, 3), got {f.dtype} {f.shape}")
        if a.ndim != 2 or a.dtype != np.float32 or len(a) != n:
            problems.append(f"actions must be float32 ({n}, A), got {a.dtype} {a.shape}")
        if s.ndim != 2 or s.dtype != np.float32 or len(s) != n:
            problems.append(f"states must be float32 ({n}, S), got {s.dtype} {s.shape}")
        if (
            starts.ndim != 1
            or starts.dtype != np.int64
            or len(starts) < 1
            or starts[0] != 0
            or starts[-1] != n
            or np.any(np.diff(starts) <= 0)
        ):
            problems.append(
                f"episode_starts must be int64 rising strictly from 0 to N={n}, "
                f"got {starts.dtype} {np.asarray(starts).tolist()[:6]}{'...' if len(starts) > 6 else ''}"
            )
        p = self.proprio
        if p is not None and (p.ndim != 2 or p.dtype != np.float32 or len(p) != n):
            problems.append(f"proprio must be float32 ({n}, P), got {p.dtype} {p.shape}")
        if problems:
            raise TrajectoryFormatError(f"{where}: " + "; ".join(problems))

    # ---- access --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frames)

    @property
    def num_episodes(self) -> int:
        return len(self.episode_starts) - 1

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(self.episode_starts)

    def episode(self, e: int) -> TrajectoryDataset:
        """Episode ``e`` as its own dataset (views, no copy)."""
        if not -self.num_episodes <= e < self.num_episodes:
            raise IndexError(f"episode {e} out of range for {self.num_episodes} episodes")
        e %= self.num_episodes
        lo, hi = int(self.episode_starts[e]), int(self.episode_starts[e + 1])
        return TrajectoryDataset(
            self.frames[lo:hi],
            self.actions[lo:hi],
            self.states[lo:hi],
            np.array([0, hi - lo], np.int64),
            dict(self.metadata, episode=e),
            None if self.proprio is None else self.proprio[lo:hi],
        )

    def windows(self, length: int) -> np.ndarray:
        """Start indices ``(W,) int64`` of every run of ``length`` consecutive frames inside one episode.

        Frames ``[i, i + length)`` of each returned ``i`` belong to a single episode; episodes shorter
        than ``length`` contribute nothing.
        """
        if length < 1:
            raise ValueError(f"window length must be >= 1, got {length}")
        starts, lengths = self.episode_starts[:-1], self.episode_lengths
        counts = np.maximum(lengths - length + 1, 0)
        if counts.sum() == 0:
            return np.zeros(0, np.int64)
        # Each episode e contributes starts[e] + 0 .. counts[e]-1.
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return (np.repeat(starts, counts) + offsets).astype(np.int64)

    # ---- disk ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the folder ``path`` atomically (replacing an existing one); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for name in ARRAYS + OPTIONAL_ARRAYS:
                if getattr(self, name) is not None:
                    np.save(tmp / f"{name}.npy", np.ascontiguousarray(getattr(self, name)))
            meta = {"format_version": FORMAT_VERSION, **self.metadata}
            (tmp / "metadata.json").write_text(
                json.dumps(meta, indent=2, sort_keys=True, default=_json_default)
            )
            old = None
            if path.exists():
                old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(path, old)
            os.replace(tmp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, mmap: bool = True) -> TrajectoryDataset:
        """Load a folder written by ``save``; arrays are memory-mapped read-only when ``mmap``."""
        path = Path(path)
        if not path.is_dir():
            raise TrajectoryFormatError(
                f"trajectory folder {str(path)!r} does not exist (write one with save())"
            )
        missing = [f"{n}.npy" for n in ARRAYS if not (path / f"{n}.npy").is_file()]
        missing += [] if (path / "metadata.json").is_file() else ["metadata.json"]
        if missing:
            raise TrajectoryFormatError(
                f"trajectory folder {str(path)!r} lacks {', '.join(missing)}; re-create it"
            )
        try:
            present = ARRAYS + tuple(n for n in OPTIONAL_ARRAYS if (path / f"{n}.npy").is_file())
            arrays = {
                n: np.load(path / f"{n}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
                for n in present
            }
            metadata = json.loads((path / "metadata.json").read_text())
        except (ValueError, OSError) as exc:
            raise TrajectoryFormatError(
                f"trajectory folder {str(path)!r} is unreadable ({exc}); re-create it"
            ) from exc
        version = metadata.pop("format_version", None)
        if version != FORMAT_VERSION:
            raise TrajectoryFormatError(
                f"trajectory folder {str(path)!r} has format version {version}, expected {FORMAT_VERSION}; re-create it"
            )
        dataset = cls.__new__(cls)
        dataset.frames, dataset.actions = arrays["frames"], arrays["actions"]
        dataset.states, dataset.episode_starts = arrays["states"], arrays["episode_starts"]
        dataset.proprio = arrays.get("proprio")
        dataset.metadata = metadata
        dataset.validate(where=f"trajectory folder {str(path)!r}")
        return dataset


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"metadata value {value!r} of type {type(value).__name__} is not JSON-serialisable")
