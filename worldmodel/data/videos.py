"""Video files for V-JEPA pretraining: find them, check them once, skip the bad ones, decode random windows.

Every file is checked when the dataset is built (or read from the folder's index when unchanged since the
last build: ``worldmodel.data.video_index``); a bad file is skipped, logged once and counted under one reason
(``missing``, ``empty``, ``not_a_video``, ``unreadable``, ``truncated``, ``too_short``: see
``worldmodel.data.video_check``).

Resolution and aspect ratio: frames are decoded near the model's resolution, not at full size. decord scales
each frame (FFmpeg's scaler, while converting to RGB) so that its shorter side is ``size`` pixels and its
aspect ratio is kept (``decoding.decode_shape``: a 1280x720 video comes out 57x32 for ``size=32``, a 32x32
one 32x32). The clip transform then makes it square as it does for every clip: a random-resized crop of
aspect 0.75-1.35 resized to ``size x size`` in training, the centred square otherwise
(``worldmodel.data.transforms``). So a wide video gives square crops from anywhere across its width, never a
squashed frame. Decoding small costs a fraction of a full-size decode for large videos, and sidesteps the
widths decord cannot copy (``worldmodel.data.decoding``). The price: a crop smaller than the frame is
upsampled from fewer pixels than a full-size decode would give it, as for the simulator's clips, which are
rendered at about the model size too.

Short videos: a clip needs ``frames`` distinct frames. A video with at least ``frames`` but fewer than
``(frames - 1) * frame_step + 1`` frames is sampled with the largest step that fits (counted in
``reduced_step``), rather than padded with its last frame as V-JEPA does (a frozen tail teaches "no motion").

Variable frame rate: a video whose timestamps are unevenly spaced (``VideoInfo.vfr``) is sampled in time: a
clip shows the frames on screen at ``frames`` instants spaced ``frame_step`` average frame intervals apart
(a frame held on screen for long appears in several of them, as a viewer sees it). Other videos are sampled
by frame index.

Decoding follows V-JEPA (``src/datasets/video_dataset.py``): one ``get_batch`` per clip, then ``seek(0)``
(works around decord's memory growth, dmlc/decord#157). Readers are not picklable, so each process opens
its own and keeps a few in a small cache keyed by process id. Works with decord2 (FFmpeg 8, AV1) and decord.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from typing import Any

import numpy as np

from worldmodel.data.decoding import SizedReader, decode_shape
from worldmodel.data.video_check import (
    SKIP_REASONS,
    VideoInfo,
    error_summary,
    usable,
)
from worldmodel.data.video_index import check_files, index_file
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
    checks them and reports missing ones).
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
# Windows


def window_indices(
    num_frames: int, frames: int, frame_step: int, where: float, timestamps: np.ndarray | None = None
) -> np.ndarray:
    """(T,) frame indices of the window of a video of ``num_frames`` frames that starts at ``where`` in [0, 1).

    Without ``timestamps``: ``frames`` indices ``frame_step`` apart; ``where`` picks the start among all
    that fit. With the (N,) presentation times of a variable-rate video: the frames on screen at ``frames``
    instants spaced ``frame_step`` average frame intervals apart (the duration a constant-rate video with
    the same length and frame count would span); ``where`` picks the start time among all that fit.
    """
    if timestamps is None:
        starts = num_frames - (frames - 1) * frame_step
        start = min(int(where * starts), starts - 1)
        return start + np.arange(frames) * frame_step
    times = np.asarray(timestamps, dtype=np.float64)
    interval = (times[-1] - times[0]) / max(len(times) - 1, 1)
    spacing = frame_step * interval
    slack = max(0.0, times[-1] - times[0] - (frames - 1) * spacing)
    instants = times[0] + where * slack + np.arange(frames) * spacing
    on_screen = np.searchsorted(times, instants + 1e-6, side="right") - 1  # last frame shown at or before
    return np.clip(on_screen, 0, len(times) - 1)


# ----------------------------------------------------------------------------------------------------------
# Dataset


class VideoClipDataset:
    """Checked videos; ``load_clip(i, rng)`` decodes a random window of video ``i`` as uint8 ``(T, h, w, 3)``.

    ``frames`` frames ``frame_step`` apart; ``size`` is the side length the transform produces (read by
    ``ResumableClips``) and the shorter side frames are decoded at (``decode_shapes``: ``(h, w)`` per video).
    ``num_threads`` is decord's decoder threads per reader. ``num_check_workers`` threads check files in
    parallel. ``index_path``: a JSON index of earlier check results to read and update (``video_index``);
    ``checked`` counts the files checked by this build, the others came from the index. ``quiet`` silences
    FFmpeg's and decord's own log lines (each bad file is logged once here instead): it sets decord's FFmpeg
    log level and points stderr at /dev/null while probing.
    """

    def __init__(
        self,
        paths: list[str],
        frames: int = 8,
        frame_step: int = 4,
        size: int = 64,
        num_threads: int = 1,
        num_check_workers: int = 4,
        source: str | None = None,
        reader_cache_size: int = 4,
        max_retries: int = 10,
        quiet: bool = True,
        index_path: str | os.PathLike | None = None,
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

        facts, self.checked = check_files(
            paths, index_path, root=self.source, workers=num_check_workers, quiet=quiet
        )
        results = [usable(f, self.frames, self.frame_step) for f in facts]

        self.videos: list[VideoInfo] = [r.info for r in results if r.info is not None]
        self.decode_shapes = [decode_shape(v.height, v.width, self.size) for v in self.videos]
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
            "video dataset: %d usable of %d files from %s (skipped: %s; %d use a reduced frame step, "
            "%d variable frame rate; checked %d, %d unchanged in the index)",
            len(self.videos),
            len(paths),
            self.source,
            self._counts_text() or "none",
            self.reduced_step,
            sum(v.vfr for v in self.videos),
            self.checked,
            len(paths) - self.checked,
        )
        self.runtime_failures = 0
        self._failed_paths: set[str] = set()
        self._readers: OrderedDict[str, Any] = OrderedDict()
        self._readers_pid = os.getpid()

    @classmethod
    def from_root(
        cls, root: str, cache_dir: str | os.PathLike | None = None, **kwargs: Any
    ) -> VideoClipDataset:
        """Find videos under ``root`` (folder or .csv/.txt list, see :func:`find_videos`) and check them.

        With ``cache_dir``, check results are kept in the root's index there and unchanged files are not
        checked again (``video_index.index_file``).
        """
        index_path = index_file(cache_dir, root) if cache_dir is not None else None
        return cls(find_videos(root), source=str(root), index_path=index_path, **kwargs)

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
            "variable_frame_rate": sum(v.vfr for v in self.videos),
            "probed": self.checked,
            "runtime_failures": self.runtime_failures,
        }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_readers"] = OrderedDict()  # decord readers cannot be pickled
        return state

    # -- decoding --------------------------------------------------------------------------------------------
    def _reader(self, index: int) -> SizedReader:
        """The reader of video ``index``, decoding at ``decode_shapes[index]`` (cached per process)."""
        if self._readers_pid != os.getpid():
            # Forked worker: the parent's readers are not ours. Never let them be collected here: their
            # destructor joins a decoder thread that does not exist in the child and hangs forever.
            _INHERITED_READERS.append(self._readers)
            self._readers, self._readers_pid = OrderedDict(), os.getpid()
        path = self.videos[index].path
        reader = self._readers.get(path)
        if reader is None:
            height, width = self.decode_shapes[index]
            reader = SizedReader(path, height, width, num_threads=self.num_threads)
            self._readers[path] = reader
            while len(self._readers) > self.reader_cache_size:
                self._readers.popitem(last=False)
        else:
            self._readers.move_to_end(path)
        return reader

    def load_clip(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """uint8 ``(T, h, w, 3)`` from a random window of video ``index``, ``(h, w)`` about ``decode_shapes[index]``.

        A file that fails to decode is replaced by another video drawn from ``rng`` (so the result stays a
        function of the generator's seed); each replacement adds one to ``runtime_failures``.
        """
        for _ in range(self.max_retries + 1):
            video = self.videos[index]
            where = float(rng.random())  # drawn whether or not the file is known to fail: same stream either way
            if video.path not in self._failed_paths:
                try:
                    reader = self._reader(index)
                    timestamps = reader.timestamps() if video.vfr else None
                    indices = window_indices(video.num_frames, self.frames, video.frame_step, where, timestamps)
                    clip = reader.get_batch(indices)
                    if clip.shape[0] != self.frames or clip.ndim != 4 or clip.shape[-1] != 3:
                        raise RuntimeError(f"decoded shape {clip.shape}, expected ({self.frames}, H, W, 3)")
                    return clip
                except Exception as e:  # noqa: BLE001 (any failure: fall back to another video)
                    self._failed_paths.add(video.path)
                    self._readers.pop(video.path, None)
                    log.warning(
                        "video %s failed to decode during training, using others: %s",
                        video.path,
                        error_summary(e),
                    )
            self.runtime_failures += 1
            index = int(rng.integers(len(self.videos)))
        raise RuntimeError(
            f"{self.max_retries + 1} videos in a row failed to decode (last: {video.path}); "
            f"{len(self._failed_paths)} of {len(self.videos)} have failed in this process"
        )
