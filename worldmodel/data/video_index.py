"""A folder's check results kept on disk, so a folder of thousands of videos is checked once.

The index of a video root is one JSON file, ``<cache_dir>/<hash of the root's absolute path>.json``, holding
one :class:`~worldmodel.data.video_check.VideoFacts` per file (path, size, mtime, frame count, fps, height,
width, variable rate, or the reason it is skipped). On the next build a file whose size and mtime are
unchanged takes its entry from the index; a new or changed file is checked again; missing files are always
looked at again. Entries stay valid across clip lengths and model sizes: ``too_short`` and the frame step
are decided from the cached frame count (``video_check.usable``).

The index also records its format version and the decord version: when either differs, every file is checked
again. Writes are atomic (a temporary file renamed over the index), so a killed run or two ranks writing at
once leave a whole index; a corrupt or unreadable index is logged and ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from worldmodel.data.video_check import VideoFacts, inspect_video, stderr_silenced

log = logging.getLogger(__name__)

INDEX_VERSION = 1


def index_file(cache_dir: str | os.PathLike, root: str) -> Path:
    """Where the index of video root ``root`` (a folder or a list file) lives under ``cache_dir``."""
    absolute = os.path.abspath(os.path.expanduser(str(root)))
    digest = hashlib.sha256(absolute.encode("utf-8")).hexdigest()[:16]
    return Path(cache_dir) / f"{digest}.json"


def _decord_version() -> str:
    import decord

    return str(getattr(decord, "__version__", "unknown"))


def load_index(path: str | os.PathLike) -> dict[str, VideoFacts]:
    """Entries of the index at ``path`` by file path; empty when absent, stale, or unreadable (logged)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != INDEX_VERSION or data.get("decord") != _decord_version():
            log.info("video index %s was written by another version: probing every file again", path)
            return {}
        return {entry["path"]: VideoFacts(**entry) for entry in data["files"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        log.warning("ignoring the unreadable video index %s (%s: %s); probing every file again",
                    path, type(e).__name__, e)
        return {}


def save_index(path: str | os.PathLike, root: str, facts: list[VideoFacts]) -> None:
    """Write ``facts`` as the index at ``path`` atomically; a failure to write is logged, never raised."""
    path = Path(path)
    data = {
        "version": INDEX_VERSION,
        "decord": _decord_version(),
        "root": os.path.abspath(os.path.expanduser(str(root))),
        "files": [asdict(f) for f in facts if f.reason != "missing"],
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        log.warning("could not write the video index %s (%s); the next run checks again", path, e)


def _unchanged(entry: VideoFacts | None, path: str) -> bool:
    if entry is None:
        return False
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return entry.size == stat.st_size and entry.mtime_ns == stat.st_mtime_ns


def check_files(
    paths: list[str],
    index_path: str | os.PathLike | None = None,
    root: str = "",
    workers: int = 4,
    quiet: bool = True,
) -> tuple[list[VideoFacts], int]:
    """Facts for every path (in order) and how many files were checked (the rest came from the index).

    Without ``index_path`` every file is checked. With it, unchanged files are read from the index and the
    index is rewritten when anything was checked or a file left the folder. ``quiet``: stderr points at
    /dev/null while files are checked (``stderr_silenced``), not while the index is read or written.
    """
    cached = load_index(index_path) if index_path is not None else {}
    facts: list[VideoFacts | None] = [entry if _unchanged(entry := cached.get(p), p) else None for p in paths]
    todo = [i for i, f in enumerate(facts) if f is None]
    workers = max(1, min(int(workers), len(todo)))
    with stderr_silenced(quiet):
        if workers == 1:
            checked = [inspect_video(paths[i]) for i in todo]
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="check") as pool:
                checked = list(pool.map(inspect_video, [paths[i] for i in todo]))
    for i, result in zip(todo, checked):
        facts[i] = result
    done: list[VideoFacts] = [f for f in facts if f is not None]
    changed = any(f.reason != "missing" for f in checked) or bool(set(cached) - set(paths))
    if index_path is not None and changed:
        save_index(index_path, root, done)
    return done, len(todo)
