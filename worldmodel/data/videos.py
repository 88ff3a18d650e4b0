"""Video files for V-JEPA pretraining: find them, probe them once, skip the bad ones, decode random windows.

Every file is probed when the dataset is built; a bad file is skipped, logged once and counted under
one reason (``missing``, ``empty``, ``not_a_video``, ``unreadable``, ``truncated``, ``too_short``: see
``worldmodel.data.video_probe``).

Short videos: a clip needs ``frames`` distinct frames. A video with at least ``frames`` but fewer than
``(frames - 1) * frame_step + 1`` frames is sampled with the largest step that fits (counted in
``reduced_step``), rather than padded with its last frame as V-JEPA does (a frozen tail teaches "no motion").

Decoding follows V-JEPA (``src/datasets/video_dataset.py``): one ``get_batch`` per clip, then ``seek(0)``
(works around decord's memory growth, dmlc/decord#157). Readers are not picklable, so each process opens
its own and keeps a few in a small cache keyed by process id. Works with decord2 (FFmpeg 8, AV1) and decord.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from worldmodel.data.video_probe import (
    SKIP_REASONS,
    VideoInfo,
    error_summary,
    probe_video,
    stderr_silenced,
)
from worldmodel.errors import UserError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
_INHERITED_READERS: list[Any] = []  # readers a forked process inherited; deliberately never freed
_LIST_HEADERS = {"path", "paths", "file", "filename", "video", "videos"}


class VideoRootNotFoundError(UserError, FileNotFoundError):
    """The folder or list file given as the video root does not exist."""


class NoReadableVideosError(UserError, ValueError):
    """No file under the video root could be used for training."""


# ----------------------------------------------------------------------------------------------------------
# Finding files


def _read_list(list_path: str) -> list[str]:
    """One path per line (first column of a comma- or whitespace-separated line); '#' starts a comment line."""
    folder = os.path.dirname(os.path.abspath(list_path))
    paths: list[str] = []
    with open(list_path, encoding="utf-8") as f:
        for line_number, raw in enumerate(f):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if "," in line:
                entry = line.split(",", 1)[0].strip().strip('"')
            else:
                # "path label" (V-JEPA's csv) unless the whole line is a path containing spaces
                whole = line if os.path.isabs(line) else os.path.join(folder, line)
                entry = line if os.path.exists(whole) else line.split()[0]
            if line_number == 0 and entry.lower() in _LIST_HEADERS:
                continue
            paths.append(os.path.normpath(entry if os.path.isabs(entry) else os.path.join(folder, entry)))
    return paths


def find_videos(root: str) -> list[str]:
    """Video paths under ``root``: a folder (searched recursively), a .csv/.txt list, or one video file.

    Folders yield files with a video extension (case-insensitive), sorted. Lists are returned in file order,
    relative entries resolved against the list's own folder; entries are not checked here (the dataset
    probes them and reports missing ones).
    """
    root = os.path.expanduser(str(root))
    if not os.path.exists(root):
        raise VideoRootNotFoundError(
            f"video root {root!r} does not exist: give a folder of videos or a .csv/.txt file listing them"
        )
    if os.path.isdir(root):
        found = []
        for folder, dirs, files in os.walk(root, followlinks=True):
            dirs.sort()
            found += [os.path.join(folder, f) for f in files if f.lower().endswith(VIDEO_EXTENSIONS)]
        return sorted(found)
    lower = root.lower()
    if lower.endswith((".csv", ".txt")):
        return _read_list(root)
    if lower.endswith(VIDEO_EXTENSIONS):
        return [root]
    raise UserError(
        f"video root {root!r} is neither a folder, a .csv/.txt list, nor a video ({', '.join(VIDEO_EXTENSIONS)})"
    )


# ----------------------------------------------------------------------------------------------------------
# Dataset


class VideoClipDataset:
    """Probed videos; ``load_clip(i, rng)`` decodes a random window of video ``i`` as uint8 ``(T, H, W, 3)``.

    ``frames`` frames ``frame_step`` apart; ``size`` is the side length the transform produces (read by
    ``ResumableClips``). ``num_threads`` is decord's decoder threads per reader. ``num_probe_workers`` threads
    probe files in parallel. ``quiet`` silences FFmpeg's and decord's own log lines (each bad file is logged
    once here instead): it sets decord's FFmpeg log level and points stderr at /dev/null while probing.
    """

    def __init__(
        self,
        paths: list[str],
        frames: int = 8,
        frame_step: int = 4,
        size: int = 64,
        num_threads: int = 1,
        num_probe_workers: int = 4,
        source: str | None = None,
        reader_cache_size: int = 4,
        max_retries: int = 10,
        quiet: bool = True,
    ):
        import decord

        if frames < 1 or frame_step < 1:
            raise ValueError(
                f"frames and frame_step must be >= 1, got frames={frames}, frame_step={frame_step}"
            )
        self.frames, self.frame_step, self.size = int(frames), int(frame_step), int(size)
        self.num_threads = int(num_threads)
        self.reader_cache_size = max(1, int(reader_cache_size))
        self.max_retries = int(max_retries)
        self.source = source or f"a list of {len(paths)} path(s)"
        if quiet:
            decord.logging.set_level(decord.logging.QUIET)
        if not paths:
            raise NoReadableVideosError(
                f"no video files found in {self.source} (looked for {', '.join(VIDEO_EXTENSIONS)})"
            )

        workers = max(1, min(int(num_probe_workers), len(paths)))
        with stderr_silenced(quiet):
            if workers == 1:
                results = [probe_video(p, self.frames, self.frame_step) for p in paths]
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="probe") as pool:
                    results = list(pool.map(lambda p: probe_video(p, self.frames, self.frame_step), paths))

        self.videos: list[VideoInfo] = [r.info for r in results if r.info is not None]
        self.skipped: dict[str, list[str]] = {reason: [] for reason in SKIP_REASONS}
        for r in results:
            if r.reason is not None:
                self.skipped[r.reason].append(r.path)
                log.warning("skipping video %s: %s (%s)", r.path, r.reason, r.detail)
        self.reduced_step = sum(v.frame_step < self.frame_step for v in self.videos)
        if not self.videos:
            first = next(r for r in results if r.reason is not None)
            raise NoReadableVideosError(
                f"no readable video in {self.source}: tried {len(paths)} file(s), skipped "
                f"{self._counts_text()}; e.g. {first.path}: {first.reason} ({first.detail})"
            )
        log.info(
            "video dataset: %d usable of %d files from %s (skipped: %s; %d use a reduced frame step)",
            len(self.videos),
            len(paths),
            self.source,
            self._counts_text() or "none",
            self.reduced_step,
        )
        self.runtime_failures = 0
        self._failed_paths: set[str] = set()
        self._readers: OrderedDict[str, Any] = OrderedDict()
        self._readers_pid = os.getpid()

    @classmethod
    def from_root(cls, root: str, **kwargs: Any) -> VideoClipDataset:
        """Find videos under ``root`` (folder or .csv/.txt list, see :func:`find_videos`) and probe them."""
        return cls(find_videos(root), source=str(root), **kwargs)

    # -- bookkeeping -----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.videos)

    @property
    def paths(self) -> list[str]:
        return [v.path for v in self.videos]

    def skipped_counts(self) -> dict[str, int]:
        """Skipped files per reason (every reason present, zeros included), for ``summary.json``."""
        return {reason: len(paths) for reason, paths in self.skipped.items()}

    def _counts_text(self) -> str:
        return ", ".join(f"{n} {reason}" for reason, n in self.skipped_counts().items() if n)

    def summary(self) -> dict[str, Any]:
        return {
            "videos": len(self.videos),
            "skipped": self.skipped_counts(),
            "reduced_step": self.reduced_step,
            "runtime_failures": self.runtime_failures,
        }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_readers"] = OrderedDict()  # decord readers cannot be pickled
        return state

    # -- decoding --------------------------------------------------------------------------------------------
    def _reader(self, path: str) -> Any:
        import decord

        if self._readers_pid != os.getpid():
            # Forked worker: the parent's readers are not ours. Never let them be collected here: their
            # destructor joins a decoder thread that does not exist in the child and hangs forever.
            _INHERITED_READERS.append(self._readers)
            self._readers, self._readers_pid = OrderedDict(), os.getpid()
        vr = self._readers.get(path)
        if vr is None:
            vr = decord.VideoReader(path, num_threads=self.num_threads, ctx=decord.cpu(0))
            self._readers[path] = vr
            while len(self._readers) > self.reader_cache_size:
                self._readers.popitem(last=False)
        else:
            self._readers.move_to_end(path)
        return vr

    def frame_indices(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """(T,) frame indices of a random window of video ``index``."""
        video = self.videos[index]
        span = (self.frames - 1) * video.frame_step + 1
        start = int(rng.integers(0, video.num_frames - span + 1))
        return start + np.arange(self.frames) * video.frame_step

    def load_clip(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """uint8 ``(T, H, W, 3)`` from a random window of video ``index``.

        A file that fails to decode is replaced by another video drawn from ``rng`` (so the result stays a
        function of the generator's seed); each replacement adds one to ``runtime_failures``.
        """
        for _ in range(self.max_retries + 1):
            path = self.videos[index].path
            indices = self.frame_indices(index, rng)
            if path not in self._failed_paths:
                try:
                    vr = self._reader(path)
                    clip = vr.get_batch(indices.tolist()).asnumpy()
                    vr.seek(0)
                    if clip.shape[0] != self.frames or clip.ndim != 4 or clip.shape[-1] != 3:
                        raise RuntimeError(f"decoded shape {clip.shape}, expected ({self.frames}, H, W, 3)")
                    return clip
                except Exception as e:  # noqa: BLE001 (any failure: fall back to another video)
                    self._failed_paths.add(path)
                    self._readers.pop(path, None)
                    log.warning(
                        "video %s failed to decode during training, using others: %s", path, error_summary(e)
                    )
            self.runtime_failures += 1
            index = int(rng.integers(len(self.videos)))
        raise RuntimeError(
            f"{self.max_retries + 1} videos in a row failed to decode (last: {path}); "
            f"{len(self._failed_paths)} of {len(self.videos)} have failed in this process"
        )
