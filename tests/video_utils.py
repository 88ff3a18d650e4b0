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


# Pattern videos: content a test can check after decoding. Every frame is red on its left half and blue on
# its right half; its top quarter is a grey band whose level names the frame: 40 + 8 * frame index.
PATTERN_LEFT, PATTERN_RIGHT = (220, 40, 40), (40, 40, 220)
ENCODERS = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "av1": None, "mpeg4": "mpeg4"}
EXTENSIONS = {"h264": ".mp4", "hevc": ".mp4", "vp9": ".webm", "av1": ".mkv", "mpeg4": ".mp4"}


def pattern_frames(frames: int, width: int, height: int) -> np.ndarray:
    """uint8 (T, height, width, 3): red left half, blue right half, top band at grey level 40 + 8 t (t < 27)."""
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    out[:, :, : width // 2] = PATTERN_LEFT
    out[:, :, width // 2 :] = PATTERN_RIGHT
    out[:, : height // 4] = (40 + 8 * np.arange(frames, dtype=np.uint8))[:, None, None, None]
    return out


def band_frame_indices(clip: np.ndarray) -> np.ndarray:
    """(T,) frame indices read back from the grey band of decoded pattern frames ``(T, H, W, 3)``."""
    band = clip[:, : max(1, clip.shape[1] // 8)].astype(np.float64).mean(axis=(1, 2, 3))
    return np.rint((band - 40) / 8).astype(int)


def encoders_available() -> dict[str, str]:
    """{codec: PyAV encoder} for the codecs this PyAV build can encode (h264, hevc, vp9, av1, mpeg4)."""
    import av

    found = {}
    for codec, encoder in {**ENCODERS, "av1": av1_encoder()}.items():
        try:
            if encoder is not None and av.Codec(encoder, "w"):
                found[codec] = encoder
        except Exception:  # noqa: BLE001 (PyAV raises UnknownCodecError or ValueError)
            pass
    return found


def write_pattern_video(
    path: str, width: int, height: int, encoder: str = "libx264", frames: int = 24, pts_ms: list[int] | None = None
) -> str:
    """Encode ``pattern_frames`` to ``path``; ``pts_ms``: each frame's presentation time in milliseconds
    (a variable frame rate), else 10 frames/s. Returns ``path``."""
    import av

    os.environ.setdefault("SVT_LOG", "1")
    # x265's cutree corrupts the heap on frames 40 or 48 px wide (x265 4.2 in PyAV 18.1's wheel): off here.
    options = {"x265-params": "log-level=error:no-cutree=1"} if encoder == "libx265" else {}
    with av.open(path, "w") as container:
        stream = container.add_stream(encoder, rate=Fraction(10), options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if encoder == "mpeg4":
            stream.bit_rate = 4_000_000  # its default rate blurs the grey band of tiny frames by a level or two
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for t, image in enumerate(pattern_frames(frames, width, height)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[t], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
