"""Encode tiny synthetic videos (a coloured square moving over a tinted background) with PyAV, for tests.

Used by the data tests and by end-to-end tests of ``python -m experiments.pretrain data=videos``.
"""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np


def synthetic_frames(frames: int = 40, size: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 (T, size, size, 3): a square of a seed-dependent colour moving diagonally, bouncing off walls."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 80, size=3, dtype=np.uint8)
    colour = rng.integers(128, 256, size=3, dtype=np.uint8)
    side = max(2, size // 4)
    x, y = rng.integers(0, size - side, size=2)
    vx, vy = rng.choice([-3, -2, 2, 3], size=2)
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for t in range(frames):
        out[t] = background
        out[t, y : y + side, x : x + side] = colour
        if not 0 <= x + vx <= size - side:
            vx = -vx
        if not 0 <= y + vy <= size - side:
            vy = -vy
        x, y = x + vx, y + vy
    return out


def write_test_video(
    path: str,
    frames: int = 40,
    size: int = 64,
    codec: str = "libx264",
    fps: int = 10,
    seed: int = 0,
    faststart: bool = False,
) -> str:
    """Encode ``synthetic_frames`` to ``path`` (container from the extension); returns ``path``.

    ``codec``: any PyAV encoder, e.g. ``libx264`` (H.264), ``libsvtav1``/``libaom-av1`` (AV1), ``libvpx-vp9``.
    ``faststart`` puts the MP4 index (``moov``) before the data, as web videos usually do.
    """
    import av

    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints a banner to stderr otherwise (1 = errors only)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(path, "w", options=options) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for image in synthetic_frames(frames, size, seed):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def av1_encoder() -> str | None:
    """The first AV1 encoder this PyAV build has, or None."""
    import av

    return next((c for c in ("libsvtav1", "libaom-av1", "librav1e") if c in av.codecs_available), None)
