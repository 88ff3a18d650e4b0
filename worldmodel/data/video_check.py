"""Checking video files: is this file a usable video, and if not, why not.

Checking has two halves. :func:`inspect_video` reads what depends on the file alone (cached per file by
``worldmodel.data.video_index``): its size and mtime, then either the video's frame count, frame rate,
full-size frame shape and whether its frame rate varies, or why it cannot be used. :func:`usable` then
decides, for a clip length and frame step, whether the video is long enough and which step its clips use.

Reasons a file is skipped (``SKIP_REASONS``):

- ``missing``: listed in a .csv/.txt but not on disk;
- ``empty``: 0 bytes;
- ``not_a_video``: decord cannot open it and its first bytes match no known container (e.g. a text file
  renamed ``.mp4``);
- ``truncated``: the container says it is longer than the file (an MP4 box or a Matroska segment runs past
  the end of the file: with the ``moov`` index at the end, decord cannot even open it), or a frame the
  index promises fails to decode;
- ``unreadable``: a known container that decord cannot open (no video stream, unsupported codec, corrupt
  header);
- ``too_short``: fewer than ``frames`` frames.

decord reports all open failures alike ("Invalid data found when processing input"), so the reasons come
from the file itself: its size, its first bytes, and its top-level box/segment sizes. A video whose width
decord cannot copy to RGB at full size (``worldmodel.data.decoding``) is checked at a copyable width instead:
it is a good video.

Variable frame rate: a video is marked ``vfr`` when an interval between consecutive presentation timestamps
differs from the median interval by more than ``VFR_TOLERANCE``; its clips are then spaced in time, not in
frames (``worldmodel.data.videos``).
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from worldmodel.data.decoding import SizedReader, is_width_quirk, width_from_quirk

SKIP_REASONS = ("missing", "empty", "not_a_video", "unreadable", "truncated", "too_short")
VFR_TOLERANCE = 0.25  # relative deviation from the median frame interval that makes a video variable-rate
_CHECK_WIDTH = 64  # columns of the check decode of a video decord cannot copy at its own width


@dataclass(frozen=True)
class VideoFacts:
    """What probing one file found, whatever the clip length: the file's size and mtime (``size=-1`` when
    missing), then either the video's frame count, rate and full-size shape, or the ``reason`` it is skipped."""

    path: str
    size: int = -1
    mtime_ns: int = 0
    num_frames: int = 0
    fps: float = 0.0
    height: int = 0
    width: int = 0
    vfr: bool = False  # presentation timestamps unevenly spaced: clips are spaced in time
    reason: str | None = None  # one of SKIP_REASONS except too_short (that depends on the clip length)
    detail: str = ""


@dataclass(frozen=True)
class VideoInfo:
    """A usable video: where it is, how many frames it has, its full-size shape, the frame step its clips use."""

    path: str
    num_frames: int
    fps: float
    height: int
    width: int
    frame_step: int
    vfr: bool = False


@dataclass(frozen=True)
class CheckResult:
    path: str
    info: VideoInfo | None = None
    reason: str | None = None  # one of SKIP_REASONS when the file is skipped
    detail: str = ""


def _container(head: bytes) -> str | None:
    """Container family from the first bytes of a file, or None when nothing matches."""
    if len(head) >= 8 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"):
        return "isobmff"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"FLV":
        return "flv"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "asf"
    if head[:1] == b"\x47" and len(head) > 188 and head[188:189] == b"\x47":
        return "mpegts"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"
    return None


def _isobmff_overrun(path: str, file_size: int) -> str | None:
    """Walk the top-level MP4/MOV boxes; describe the first one that runs past the end of the file."""
    offset, boxes, has_moov = 0, 0, False
    with open(path, "rb") as f:
        while offset < file_size and boxes < 100_000:
            f.seek(offset)
            header = f.read(16)
            if len(header) < 8:
                return f"file ends inside a box header at byte {offset}"
            size, kind = struct.unpack(">I4s", header[:8])
            if size == 1:
                if len(header) < 16:
                    return f"file ends inside a box header at byte {offset}"
                size = struct.unpack(">Q", header[8:16])[0]
            elif size == 0:  # box runs to the end of the file
                size = file_size - offset
            if size < 8:
                return None  # not a box structure we understand: let the decoder decide
            name = kind.decode("latin-1")
            if offset + size > file_size:
                return f"box {name!r} at byte {offset} needs {size} bytes, only {file_size - offset} remain"
            has_moov |= kind == b"moov"
            offset += size
            boxes += 1
    return None if has_moov else "no 'moov' index box"


def _ebml_vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int] | None:
    """EBML variable-length integer at ``pos`` -> (value, length); None when it does not fit."""
    if pos >= len(data) or data[pos] == 0:
        return None
    length = 8 - data[pos].bit_length() + 1
    if pos + length > len(data):
        return None
    value = int.from_bytes(data[pos : pos + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    return value, length


def _matroska_overrun(path: str, file_size: int) -> str | None:
    """Compare the declared Segment size of a Matroska/WebM file with the bytes on disk."""
    with open(path, "rb") as f:
        head = f.read(4096)
    ebml_size = _ebml_vint(head, 4, keep_marker=False)
    if ebml_size is None:
        return None
    pos = 4 + ebml_size[1] + ebml_size[0]
    seg_id = _ebml_vint(head, pos, keep_marker=True)
    if seg_id is None or seg_id[0] != 0x18538067:
        return None
    seg_size = _ebml_vint(head, pos + seg_id[1], keep_marker=False)
    if seg_size is None:
        return None
    value, length = seg_size
    if value == (1 << (7 * length)) - 1:  # "unknown size" (live streams)
        return None
    data_start = pos + seg_id[1] + length
    if data_start + value > file_size:
        return f"segment needs {data_start + value} bytes, file has {file_size}"
    return None


def error_summary(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}"[:200]


@contextmanager
def stderr_silenced(enabled: bool = True) -> Iterator[None]:
    """Point file descriptor 2 at /dev/null: decord prints an "ERROR opening" line per bad file from C++,
    which ``decord.logging.set_level`` does not reach. Used only around probing, which logs its own line."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def clip_step(num_frames: int, frames: int, frame_step: int) -> int:
    """The frame step used for a video of ``num_frames``: ``frame_step``, or the largest that still fits."""
    return max(1, min(frame_step, (num_frames - 1) // max(frames - 1, 1)))


def is_variable_rate(timestamps: np.ndarray) -> bool:
    """True when the (N,) presentation times are not evenly spaced (within ``VFR_TOLERANCE``)."""
    if len(timestamps) < 3:
        return False
    intervals = np.diff(timestamps)
    median = float(np.median(intervals))
    return median <= 0 or float(np.abs(intervals - median).max()) > VFR_TOLERANCE * median


def inspect_video(path: str) -> VideoFacts:
    """Open one file, read its length, rate and timestamps, decode its first and last frames."""
    import decord

    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return VideoFacts(path, reason="missing", detail="no such file")
    found = {"path": path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if stat.st_size == 0:
        return VideoFacts(**found, reason="empty", detail="0 bytes")
    with open(path, "rb") as f:
        head = f.read(512)
    container = _container(head)
    overrun = None
    if container == "isobmff":
        overrun = _isobmff_overrun(path, stat.st_size)
    elif container == "matroska":
        overrun = _matroska_overrun(path, stat.st_size)
    if overrun:
        return VideoFacts(**found, reason="truncated", detail=overrun)
    try:
        vr = decord.VideoReader(path, num_threads=1, ctx=decord.cpu(0))
        num_frames, fps = len(vr), float(vr.get_avg_fps())
    except Exception as e:  # noqa: BLE001 (decord raises RuntimeError or DECORDError)
        reason = "unreadable" if container else "not_a_video"
        return VideoFacts(**found, reason=reason, detail=error_summary(e))
    try:
        vfr = is_variable_rate(np.asarray(vr.get_frame_timestamp(np.arange(num_frames)))[:, 0])
    except Exception:  # noqa: BLE001 (no timestamps: sample by frame index)
        vfr = False
    needed = sorted({0, num_frames - 1})  # the ends: a frame the index promises but the file lacks fails here
    try:
        try:
            batch = vr.get_batch(needed).asnumpy()
            vr.seek(0)
            height, width = int(batch.shape[1]), int(batch.shape[2])
        except Exception as e:  # noqa: BLE001
            if not is_width_quirk(e):
                raise
            batch = SizedReader(path, height=-1, width=_CHECK_WIDTH).get_batch(needed)
            height, width = int(batch.shape[1]), width_from_quirk(e, int(batch.shape[1])) or 0
            if width == 0:
                return VideoFacts(**found, reason="unreadable", detail=f"frame width unknown: {error_summary(e)}")
    except Exception as e:  # noqa: BLE001 (any decode failure means the file is cut short or corrupt)
        return VideoFacts(
            **found, reason="truncated", detail=f"frame {needed[-1]} of {num_frames}: {error_summary(e)}"
        )
    if batch.ndim != 4 or batch.shape[0] != len(needed) or batch.shape[-1] != 3:
        return VideoFacts(**found, reason="unreadable", detail=f"decoded frames have shape {batch.shape}")
    return VideoFacts(**found, num_frames=num_frames, fps=fps, height=height, width=width, vfr=vfr)


def usable(facts: VideoFacts, frames: int, frame_step: int) -> CheckResult:
    """Whether a checked video yields clips of ``frames`` frames, and the frame step they use."""
    if facts.reason is not None:
        return CheckResult(facts.path, reason=facts.reason, detail=facts.detail)
    if facts.num_frames < frames:
        return CheckResult(
            facts.path, reason="too_short", detail=f"{facts.num_frames} frames, a clip needs {frames}"
        )
    step = clip_step(facts.num_frames, frames, frame_step)
    info = VideoInfo(facts.path, facts.num_frames, facts.fps, facts.height, facts.width, step, facts.vfr)
    return CheckResult(facts.path, info=info)


def check_video(path: str, frames: int, frame_step: int) -> CheckResult:
    """:func:`inspect_video` then :func:`usable`: one file checked for clips of ``frames`` frames."""
    return usable(inspect_video(path), frames, frame_step)
