"""TensorBoard logging that works without moviepy, plus helpers to read event files back and make pictures.

Videos are encoded as animated GIFs with Pillow and written as image summaries (TensorBoard's IMAGES
tab plays them): ``SummaryWriter.add_video`` writes nothing at all with moviepy 2.x (pytorch#147317).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from PIL import Image, ImageDraw
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

__all__ = [
    "CAPTION_HEIGHT",
    "TensorBoardLogger",
    "caption",
    "encode_gif",
    "pca_rgb",
    "read_event_images",
    "read_event_scalars",
    "read_event_tags",
    "side_by_side",
    "stage_log_dir",
    "tile",
]

CAPTION_HEIGHT = 12  # pixels of a caption strip: Pillow's default font is about 10 high


def stage_log_dir(run_dir: str | os.PathLike, stage: str) -> Path:
    """Where one stage of a run writes its events, ``run_dir/tb/<stage>``: TensorBoard shows each stage as its own
    run (``tensorboard --logdir run_dir/tb``)."""
    return Path(run_dir) / "tb" / stage


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] -> uint8; uint8 unchanged."""
    if x.dtype == np.uint8:
        return x
    return (np.clip(x.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def encode_gif(frames: np.ndarray, fps: float = 8.0) -> bytes:
    """(T, H, W, 3) uint8 -> bytes of a looping animated GIF."""
    frames = _to_uint8(_numpy(frames))
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"video frames must be (T, H, W, 3), got shape {tuple(frames.shape)}")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    # optimize=False and disposal=1 keep every frame (Pillow merges identical frames otherwise).
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], loop=0, optimize=False,
                   duration=max(round(1000.0 / fps), 20), disposal=1)
    return buffer.getvalue()


class TensorBoardLogger:
    """A thin wrapper around ``SummaryWriter``; every method takes plain numpy/torch data.

    Image layouts: uint8 arrays are ``(H, W, 3)`` (or ``(H, W)``); float arrays/tensors are ``(3, H, W)``
    in [0, 1]. Batches add a leading ``N``.
    """

    def __init__(self, log_dir: str | os.PathLike, flush_secs: int = 30):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(str(self.log_dir), flush_secs=flush_secs)

    def scalar(self, tag: str, value: float | torch.Tensor, step: int) -> None:
        self.writer.add_scalar(tag, float(value), step)

    def scalars(self, values: dict[str, float | torch.Tensor], step: int, prefix: str = "") -> None:
        """One scalar per key, tagged ``prefix + key`` (e.g. ``prefix="video/"``); None values skipped."""
        for key, value in values.items():
            if value is not None:
                self.writer.add_scalar(prefix + key, float(value), step)

    @staticmethod
    def _layout(image: np.ndarray, batched: bool) -> str:
        n = "N" if batched else ""
        if image.ndim == (3 if batched else 2):
            return n + "HW"
        return n + ("HWC" if image.dtype == np.uint8 else "CHW")

    def image(self, tag: str, image: np.ndarray | torch.Tensor, step: int) -> None:
        """(H, W, 3) uint8, (H, W) uint8/float, or (3, H, W) float in [0, 1]."""
        image = _numpy(image)
        self.writer.add_image(tag, image, step, dataformats=self._layout(image, batched=False))

    def images(self, tag: str, images: np.ndarray | torch.Tensor, step: int) -> None:
        """(N, H, W, 3) uint8 or (N, 3, H, W) float in [0, 1], shown as one grid."""
        images = _numpy(images)
        self.writer.add_images(tag, images, step, dataformats=self._layout(images, batched=True))

    def figure(self, tag: str, figure: Any, step: int, close: bool = True) -> None:
        """A matplotlib figure (rendered with Agg); closed afterwards unless ``close=False``."""
        self.writer.add_figure(tag, figure, step, close=close)

    def video(self, tag: str, frames: np.ndarray | torch.Tensor, step: int, fps: float = 8.0) -> None:
        """(T, H, W, 3) or (N, T, H, W, 3) uint8 (or float in [0, 1]) as an animated GIF image summary.

        N videos are tiled side by side into one GIF.
        """
        frames = _to_uint8(_numpy(frames))
        if frames.ndim == 5:
            frames = rearrange(frames, "n t h w c -> t h (n w) c")
        gif = encode_gif(frames, fps)
        _, height, width, channels = frames.shape
        image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=gif)
        self.writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        self.writer.add_text(tag, text, step)

    def hparams(self, hparam_dict: dict[str, Any], metric_dict: dict[str, float], step: int = 0) -> None:
        """Hyperparameters and final metrics for the HPARAMS tab, written into this run's own event file.

        Values that are not numbers, strings or bools (None, lists) are shown as strings.
        """
        clean = {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in hparam_dict.items()}
        metrics = {k: float(v) for k, v in metric_dict.items() if v is not None}
        experiment, start, end = hparams_summary(clean, metrics)
        file_writer = self.writer._get_file_writer()
        for summary in (experiment, start, end):
            file_writer.add_summary(summary, step)
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> TensorBoardLogger:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _accumulator(log_dir: str | os.PathLike) -> EventAccumulator:
    if not Path(log_dir).is_dir():
        raise FileNotFoundError(f"no TensorBoard log folder at {log_dir}")
    # 0 = keep every event (the defaults sample images down to 4 and scalars to 10 000).
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def read_event_tags(log_dir: str | os.PathLike) -> dict[str, list[str]]:
    """Tags logged in the event files directly inside ``log_dir``, by kind (``scalars``, ``images``, ...)."""
    tags = _accumulator(log_dir).Tags()
    return {kind: sorted(names) if isinstance(names, list) else names for kind, names in tags.items()}


def read_event_scalars(log_dir: str | os.PathLike, tag: str) -> list[tuple[int, float]]:
    """[(step, value), ...] of one scalar tag."""
    return [(e.step, e.value) for e in _accumulator(log_dir).Scalars(tag)]


def read_event_images(log_dir: str | os.PathLike, tag: str) -> list[tuple[int, bytes]]:
    """[(step, encoded PNG/GIF bytes), ...] of one image tag (videos are GIF images)."""
    return [(e.step, e.encoded_image_string) for e in _accumulator(log_dir).Images(tag)]


@torch.no_grad()
def pca_rgb(features: torch.Tensor | np.ndarray) -> np.ndarray:
    """Colour features by their top-3 principal components: (..., D) -> (..., 3) uint8.

    E.g. patch features (T, h, w, D) -> (T, h, w, 3): similar features get similar colours.
    Each component is min-max normalised over all positions; fewer than 3 components leave zeros.
    """
    x = torch.as_tensor(_numpy(features) if not isinstance(features, torch.Tensor) else features)
    x = x.detach().float().cpu()
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    flat = flat - flat.mean(dim=0, keepdim=True)
    out = torch.zeros(flat.shape[0], 3)
    if flat.shape[0] > 1:
        _, _, vh = torch.linalg.svd(flat, full_matrices=False)
        k = min(3, vh.shape[0])
        projected = flat @ vh[:k].T  # (M, k)
        low, high = projected.amin(dim=0), projected.amax(dim=0)
        out[:, :k] = (projected - low) / (high - low).clamp_min(1e-8)
    return (out * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).reshape(*lead, 3).numpy()


def _hwc(image: Any) -> np.ndarray:
    image = _to_uint8(_numpy(image))
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) or (H, W) image, got shape {tuple(image.shape)}")
    return image


def side_by_side(*images: Any, gap: int = 2, fill: int = 255) -> np.ndarray:
    """Put (H, W, 3)/(H, W) images in one row, ``gap`` pixels apart, padding shorter ones at the bottom."""
    images = [_hwc(im) for im in images]
    if not images:
        raise ValueError("side_by_side needs at least one image")
    height = max(im.shape[0] for im in images)
    parts = []
    for i, im in enumerate(images):
        if im.shape[0] < height:
            im = np.concatenate([im, np.full((height - im.shape[0], *im.shape[1:]), fill, np.uint8)], axis=0)
        if i:
            parts.append(np.full((height, gap, 3), fill, np.uint8))
        parts.append(im)
    return np.concatenate(parts, axis=1)


def caption(text: str, width: int, height: int = CAPTION_HEIGHT, fill: int = 255) -> np.ndarray:
    """``(height, width, 3)`` uint8: ``text`` in black at the top left of a ``fill`` strip (cut at the right edge)."""
    strip = Image.new("RGB", (width, height), (fill, fill, fill))
    ImageDraw.Draw(strip).text((2, 0), text, fill=(0, 0, 0))
    return np.asarray(strip)


def tile(images: Sequence[Any] | np.ndarray, columns: int | None = None, gap: int = 2,
         fill: int = 255) -> np.ndarray:
    """Arrange images (a list, or an (N, H, W, 3) array) in a grid, ``columns`` wide (default ~square)."""
    images = [_hwc(im) for im in images]
    if not images:
        raise ValueError("tile needs at least one image")
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = [side_by_side(*images[i: i + columns], gap=gap, fill=fill) for i in range(0, len(images), columns)]
    width = max(r.shape[1] for r in rows)
    padded = []
    for i, row in enumerate(rows):
        if row.shape[1] < width:
            filler = np.full((row.shape[0], width - row.shape[1], 3), fill, np.uint8)
            row = np.concatenate([row, filler], axis=1)
        if i:
            padded.append(np.full((gap, width, 3), fill, np.uint8))
        padded.append(row)
    return np.concatenate(padded, axis=0)
