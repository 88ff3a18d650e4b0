"""Probing video files: is this file a usable video, and if not, why not.

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
from the file itself: its size, its first bytes, and its top-level box/segment sizes.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SKIP_REASONS = ("missing", "empty", "not_a_video", "unreadable", "truncated", "too_short")


@dataclass(frozen=True)
class VideoInfo:
    """A usable video: where it is, how many frames it has, and the frame step its clips use."""

    path: str
    num_frames: int
    fps: float
    height: int
    width: int
    frame_step: int


@dataclass(frozen=True)
class ProbeResult:
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


def probe_video(path: str, frames: int, frame_step: int) -> ProbeResult:
    """Check one file: open it, read its length, decode the frames its clips will need at the extremes."""
    import decord

    if not os.path.exists(path):
        return ProbeResult(path, reason="missing", detail="no such file")
    file_size = os.path.getsize(path)
    if file_size == 0:
        return ProbeResult(path, reason="empty", detail="0 bytes")
    with open(path, "rb") as f:
        head = f.read(512)
    container = _container(head)
    overrun = None
    if container == "isobmff":
        overrun = _isobmff_overrun(path, file_size)
    elif container == "matroska":
        overrun = _matroska_overrun(path, file_size)
    if overrun:
        return ProbeResult(path, reason="truncated", detail=overrun)
    try:
        vr = decord.VideoReader(path, num_threads=1, ctx=decord.cpu(0))
        num_frames, fps = len(vr), float(vr.get_avg_fps())
    except Exception as e:  # noqa: BLE001 (decord raises RuntimeError or DECORDError)
        reason = "unreadable" if container else "not_a_video"
        return ProbeResult(path, reason=reason, detail=error_summary(e))
    if num_frames < frames:
        return ProbeResult(path, reason="too_short", detail=f"{num_frames} frames, a clip needs {frames}")
    step = clip_step(num_frames, frames, frame_step)
    needed = sorted({(frames - 1) * step, num_frames - 1})  # end of the first window, end of the video
    try:
        batch = vr.get_batch(needed).asnumpy()
        vr.seek(0)
    except Exception as e:  # noqa: BLE001 (any decode failure means the file is cut short or corrupt)
        if "DECORDArrayCopyFromTo" in str(e):
            # decord (0.6.0 and decord2 3.4) mis-sizes its RGB output for some small frames, e.g. 32x32,
            # 48x48 and 96x96 H.264: the file is fine, decord cannot convert it.
            return ProbeResult(path, reason="unreadable", detail=(
                "decord cannot convert frames of this size to RGB (a known decord quirk with some small "
                "frame sizes); re-encode the video at another resolution"))
        return ProbeResult(
            path, reason="truncated", detail=f"frame {needed[-1]} of {num_frames}: {error_summary(e)}"
        )
    if batch.ndim != 4 or batch.shape[0] != len(needed) or batch.shape[-1] != 3:
        return ProbeResult(path, reason="unreadable", detail=f"decoded frames have shape {batch.shape}")
    height, width = int(batch.shape[1]), int(batch.shape[2])
    return ProbeResult(path, info=VideoInfo(path, num_frames, fps, height, width, step))
