"""Clip transforms for V-JEPA pretraining: one random-resized crop and flip per clip, ImageNet normalisation.

Frames come in as uint8 ``(T, H, W, 3)`` (numpy or torch, as decoders and simulators produce them) and leave
as float ``(C, T, size, size)``, the layout the 3D patch embedding reads. Every frame of a clip gets the same
crop and the same flip, so motion inside the clip is preserved (as in V-JEPA's ``app/vjepa/transforms.py``).
All randomness comes from the ``numpy.random.Generator`` the caller passes in, which makes a clip a pure
function of that generator's seed (see ``worldmodel.data.sampling``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _stats_shape(x: torch.Tensor, channel_dim: int) -> list[int]:
    shape = [1] * x.ndim
    shape[channel_dim] = 3
    return shape


def normalize(x: torch.Tensor, channel_dim: int = -4) -> torch.Tensor:
    """Map values in [0, 1] to ImageNet-normalised values.

    ``channel_dim=-4`` fits both a clip ``(C, T, H, W)`` and a batch ``(B, C, T, H, W)``; use ``-3`` for images.
    """
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(_stats_shape(x, channel_dim))
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(_stats_shape(x, channel_dim))
    return (x - mean) / std


def denormalize(x: torch.Tensor, channel_dim: int = -4) -> torch.Tensor:
    """Invert :func:`normalize` and clamp to [0, 1] (for TensorBoard images and videos)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(_stats_shape(x, channel_dim))
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(_stats_shape(x, channel_dim))
    return (x * std + mean).clamp(0.0, 1.0)


def _as_uint8_frames(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` numpy or torch -> uint8 torch tensor of the same shape (no copy for numpy)."""
    t = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected frames shaped (T, H, W, 3), got {tuple(t.shape)}")
    if t.dtype != torch.uint8:
        raise ValueError(f"expected uint8 frames, got {t.dtype}")
    return t


def _resize_normalize(crop: torch.Tensor, size: int, flip: bool) -> torch.Tensor:
    """uint8 ``(T, h, w, 3)`` -> normalised float ``(C, T, size, size)``."""
    x = rearrange(crop, "t h w c -> t c h w").float().div_(255.0)
    if x.shape[-2:] != (size, size):
        # antialias keeps downscaled real videos (e.g. 1080p -> 64 px) from aliasing.
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        x = x.clamp_(0.0, 1.0)
    if flip:
        x = x.flip(-1)
    x = rearrange(x, "t c h w -> c t h w")
    return normalize(x)


def sample_crop_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.3, 1.0),
    ratio: tuple[float, float] = (0.75, 1.35),
    attempts: int = 10,
) -> tuple[int, int, int, int]:
    """Random-resized-crop box ``(top, left, h, w)``: area fraction in ``scale``, aspect w/h in ``ratio``.

    Falls back to the largest centred box whose aspect lies in ``ratio`` when no attempt fits.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(attempts):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop_flip(
    frames: np.ndarray | torch.Tensor,
    size: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.3, 1.0),
    ratio: tuple[float, float] = (0.75, 1.35),
    hflip_p: float = 0.5,
) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` -> float ``(C, T, size, size)``: one crop and one flip for the whole clip.

    Draws from ``rng`` in a fixed order (crop box, then one number for the flip, drawn even when
    ``hflip_p`` is 0 or 1), so two calls with equally seeded generators pick the same crop.
    """
    t = _as_uint8_frames(frames)
    _, height, width, _ = t.shape
    top, left, h, w = sample_crop_box(height, width, rng, scale, ratio)
    flip = bool(rng.random() < hflip_p)
    return _resize_normalize(t[:, top : top + h, left : left + w], size, flip)


def center_resize(frames: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` -> float ``(C, T, size, size)``: centred square crop, resize, no augmentation."""
    t = _as_uint8_frames(frames)
    _, height, width, _ = t.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return _resize_normalize(t[:, top : top + side, left : left + side], size, flip=False)
