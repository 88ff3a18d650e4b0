"""Pictures of what the video stage sees and learns, for TensorBoard; each row is labelled on its left."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from einops import rearrange, repeat

from worldmodel.data.transforms import denormalize
from worldmodel.io.tb import TensorBoardLogger, caption, pca_rgb

LABEL_WIDTH = 64  # pixels of the label column: "short-range" fits


def _clip_to_uint8(clip: torch.Tensor) -> np.ndarray:
    """(C, T, H, W) normalised -> (T, H, W, 3) uint8."""
    frames = denormalize(clip.detach().float().cpu()).clamp(0, 1)
    return (rearrange(frames, "c t h w -> t h w c") * 255).round().to(torch.uint8).numpy()


def _film_strip(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) -> (H, T*W, 3): the frames of a clip side by side."""
    return rearrange(frames, "t h w c -> h (t w) c")


def labelled_rows(rows: Sequence[np.ndarray], labels: Sequence[str], width: int = LABEL_WIDTH) -> np.ndarray:
    """(H_i, W, 3) rows stacked top to bottom, each with its label in a ``width``-pixel column on its left."""
    return np.concatenate([np.concatenate([caption(label, width, row.shape[0]), row], axis=1)
                           for row, label in zip(rows, labels, strict=True)], axis=0)


def masked_clip_image(clip: torch.Tensor, target_indices: list[torch.Tensor], grid: tuple[int, int, int],
                      names: Sequence[str]) -> np.ndarray:
    """One row for the original clip, then one row per mask type (labelled with its name in ``names``) with its
    target tokens greyed out.

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
    return labelled_rows(rows, ["clip", *names])


def log_masked_clip(logger: TensorBoardLogger, batch: dict, grid: tuple[int, int, int], names: Sequence[str],
                    step: int) -> None:
    """The first clip of ``batch`` and its masks, one row per mask type (``names``, in the collator's order)."""
    image = masked_clip_image(batch["clips"][0], [m[0] for m in batch["masks_pred"]], grid, names)
    logger.image("video/masked_clip", image, step)


@torch.no_grad()
def feature_pca_image(encoder: torch.nn.Module, clips: torch.Tensor) -> np.ndarray:
    """Per clip, two rows: its frames (one per tubelet), then the PCA of the patch features as RGB."""
    t, h, w = encoder.grid
    features = encoder(clips.float())  # (B, N, D)
    rows, labels = [], []
    for clip, tokens in zip(clips, features):
        frames = _clip_to_uint8(clip)[:: frames_per_token(clip, t)]
        colours = pca_rgb(rearrange(tokens.float().cpu(), "(t h w) d -> t h w d", t=t, h=h, w=w))
        scale = frames.shape[1] // h
        colours = colours.repeat(scale, axis=1).repeat(scale, axis=2)
        rows += [_film_strip(frames), _film_strip(colours)]
        labels += ["frames", "features"]
    return labelled_rows(rows, labels)


def frames_per_token(clip: torch.Tensor, temporal_tokens: int) -> int:
    return clip.shape[1] // temporal_tokens


def log_feature_pca(logger: TensorBoardLogger, model: torch.nn.Module, clips: torch.Tensor, step: int) -> None:
    was_training = model.training
    model.eval()
    logger.image("video/feature_pca", feature_pca_image(model.target_encoder, clips), step)
    model.train(was_training)
