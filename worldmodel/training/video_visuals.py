"""Pictures of what the video stage sees and learns, for TensorBoard."""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange, repeat

from worldmodel.data.transforms import denormalize
from worldmodel.io.tb import TensorBoardLogger, pca_rgb


def _clip_to_uint8(clip: torch.Tensor) -> np.ndarray:
    """(C, T, H, W) normalised -> (T, H, W, 3) uint8."""
    frames = denormalize(clip.detach().float().cpu()).clamp(0, 1)
    return (rearrange(frames, "c t h w -> t h w c") * 255).round().to(torch.uint8).numpy()


def _film_strip(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) -> (H, T*W, 3): the frames of a clip side by side."""
    return rearrange(frames, "t h w c -> h (t w) c")


def masked_clip_image(clip: torch.Tensor, target_indices: list[torch.Tensor],
                      grid: tuple[int, int, int]) -> np.ndarray:
    """One row for the original clip, then one row per mask type with its target tokens greyed out.

    clip: (C, T, H, W); target_indices: per mask type, (Nt,) token indices of this clip.
    """
    frames = _clip_to_uint8(clip)
    t, h, w = grid
    T, H, W, _ = frames.shape
    rows = [_film_strip(frames)]
    for targets in target_indices:
        hidden = torch.zeros(t * h * w, dtype=torch.bool)
        hidden[targets.cpu()] = True
        hidden = repeat(hidden.view(t, h, w), "t h w -> (t a) (h b) (w c)", a=T // t, b=H // h, c=W // w)
        masked = frames.copy()
        masked[hidden.numpy()] = 127
        rows.append(_film_strip(masked))
    return np.concatenate(rows, axis=0)


def log_masked_clip(logger: TensorBoardLogger, batch: dict, grid: tuple[int, int, int], step: int) -> None:
    image = masked_clip_image(batch["clips"][0], [m[0] for m in batch["masks_pred"]], grid)
    logger.image("video/masked_clip", image, step)


@torch.no_grad()
def feature_pca_image(encoder: torch.nn.Module, clips: torch.Tensor) -> np.ndarray:
    """Per clip, one row: its frames (one per tubelet) above the PCA of the patch features as RGB."""
    t, h, w = encoder.grid
    features = encoder(clips.float())  # (B, N, D)
    rows = []
    for clip, tokens in zip(clips, features):
        frames = _clip_to_uint8(clip)[:: frames_per_token(clip, t)]
        colours = pca_rgb(rearrange(tokens.float().cpu(), "(t h w) d -> t h w d", t=t, h=h, w=w))
        scale = frames.shape[1] // h
        colours = colours.repeat(scale, axis=1).repeat(scale, axis=2)
        rows.append(np.concatenate([_film_strip(frames), _film_strip(colours)], axis=0))
    return np.concatenate(rows, axis=0)


def frames_per_token(clip: torch.Tensor, temporal_tokens: int) -> int:
    return clip.shape[1] // temporal_tokens


def log_feature_pca(logger: TensorBoardLogger, model: torch.nn.Module, clips: torch.Tensor, step: int) -> None:
    was_training = model.training
    model.eval()
    logger.image("video/feature_pca", feature_pca_image(model.target_encoder, clips), step)
    model.train(was_training)
