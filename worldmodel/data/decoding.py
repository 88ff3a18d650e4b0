"""Decoding video frames with decord at a chosen size, around decord's RGB copy quirk.

decord converts each decoded frame to RGB with FFmpeg's scale filter, then copies it into an array.
FFmpeg pads every row of the frame to its SIMD alignment; when the padded row length happens to be a
multiple of the width but longer than ``3 * width`` bytes, decord's copy takes its no-copy path with the
wrong channel count and fails with ``DECORDArrayCopyFromTo: The size must exactly match``. Which widths
do this depends on FFmpeg's alignment on the machine (with 64-byte alignment: 2-48 px in a few steps,
96 and 144 px; never a width above a few hundred pixels), for every codec and container alike.

Two consequences, handled here:

- frames are decoded at a width decord can copy: a width that fails once is remembered for the process
  (``_BAD_WIDTHS``) and the next wider one is used (one pixel wider changes the aspect ratio by less than the
  crop transform's own range). Every process arrives at the same width, so a clip stays a pure function of
  its seed;
- a video whose own width is such a width cannot be decoded at full size at all; its size is still known:
  the height from a decode at a copyable width, the width from the copy error, which states the bytes one
  full frame needs (``height * width * 3``, :func:`width_from_quirk`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

QUIRK_MARKER = "DECORDArrayCopyFromTo"
_BAD_WIDTHS: set[int] = set()  # output widths decord failed to copy in this process
_MAX_WIDTH_TRIES = 32
_SIZES = re.compile(r"\((\d+) vs\. (\d+)\)")


def is_width_quirk(error: BaseException) -> bool:
    """True when ``error`` is decord's RGB copy failure (a property of the output width, not of the file)."""
    return QUIRK_MARKER in str(error)


def copyable_width(width: int) -> int:
    """The smallest width >= ``width`` not known to trigger the copy quirk in this process."""
    while width in _BAD_WIDTHS:
        width += 1
    return width


def decode_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(h, w) with the shorter side ``short_side`` and the aspect ratio of ``height x width`` (rounded)."""
    if height <= width:
        return short_side, max(short_side, round(width * short_side / height))
    return max(short_side, round(height * short_side / width)), short_side


class SizedReader:
    """A decord reader whose frames come out ``height`` rows high and (about) ``width`` columns wide.

    ``width`` is the requested width; ``self.width`` the one decoded (wider by a few pixels when decord
    cannot copy the requested one). ``height=-1`` keeps the video's own height. Not picklable (decord).
    """

    def __init__(self, path: str, height: int, width: int, num_threads: int = 1):
        if width < 1:
            raise ValueError(f"SizedReader needs a width >= 1, got {width}")
        self.path, self.height, self.requested_width = path, int(height), int(width)
        self.num_threads = int(num_threads)
        self._timestamps: np.ndarray | None = None
        self._open()

    def _open(self) -> None:
        import decord

        self.width = copyable_width(self.requested_width)
        self.reader: Any = decord.VideoReader(
            self.path, width=self.width, height=self.height, num_threads=self.num_threads, ctx=decord.cpu(0)
        )

    def __len__(self) -> int:
        return len(self.reader)

    def timestamps(self) -> np.ndarray:
        """(N,) presentation time in seconds of every frame, in display order."""
        if self._timestamps is None:
            self._timestamps = np.asarray(self.reader.get_frame_timestamp(np.arange(len(self.reader))))[:, 0]
        return self._timestamps

    def get_batch(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 ``(len(indices), H, W, 3)``; rewinds the reader afterwards (decord's memory growth, #157)."""
        for _ in range(_MAX_WIDTH_TRIES):
            try:
                frames = self.reader.get_batch([int(i) for i in indices]).asnumpy()
                self.reader.seek(0)
                return frames
            except Exception as e:  # noqa: BLE001 (decord raises DECORDError or RuntimeError)
                if not is_width_quirk(e):
                    raise
                _BAD_WIDTHS.add(self.width)
                self._open()
        raise RuntimeError(
            f"decord could not copy frames of {self.path} at any width from {self.requested_width} to {self.width}"
        )


def width_from_quirk(error: BaseException, height: int) -> int | None:
    """The full-size width of a video whose full-size decode failed with the copy quirk ``error``.

    The quirk's message reads ``(padded bytes vs. needed bytes)``, needed = ``height * width * 3`` for one
    frame of ``height`` rows (the video's own height, read from a decode at a copyable width). None when the
    message does not have that form.
    """
    match = _SIZES.search(str(error))
    if match is None or height < 1:
        return None
    width, remainder = divmod(int(match.group(2)), 3 * height)
    return width if remainder == 0 and width > 0 else None
