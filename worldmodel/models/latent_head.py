"""The latent head: frozen encoder tokens -> the compact state latent levels 1 and 2 predict and plan in.

One observation ``(H, W, 3) uint8`` is resized to the encoder's resolution if needed, normalised, repeated to one
tubelet and encoded into ``(h*w, D)`` patch tokens (64 x 192 for the tiny preset); the tokens are average-pooled to
a ``pool x pool`` grid (``pool=None``: the whole token grid) and flattened (``pool*pool*D``), then a fixed linear
projection fitted once by PCA on the training frames maps them to ``Dz`` dims, scaled so the average dim has unit
variance. PCA keeps the directions that vary most across the data (for the point mass: where the ball is) and
makes planning cheap.

Proprioception: for envs that report the agent's body state ``(P,)``, the latent is the visual latent followed
by the standardised body state (each dim unit variance on the training frames, like the PCA dims):
``(B, Dz + P)``. The fusion is late on purpose: the frozen encoder never sees the body state, and every level
and cost downstream reads both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange
from torch import nn

from worldmodel.data.transforms import normalize
from worldmodel.settings import setting
from worldmodel.state_spaces import STATE_SPACES

EXACT_PCA_FEATURES = 4096  # above this many pooled features the PCA is fitted by a randomised low-rank SVD


@dataclass(frozen=True)
class LatentConfig:
    """The latent head and the levels' state spaces as ``world_model.pt`` keeps them (built from ``LatentSettings``)."""

    pool: int | None  # pooled grid side (tokens averaged into pool x pool cells); None: the whole token grid
    dim: int  # Dz after the PCA projection
    batch_size: int  # frames per encoder call when encoding a dataset
    space: str  # the state level 1 predicts and plans in: pca | metric | task (``worldmodel.state_spaces``)
    high_space: str | None  # the same for level 2; None: ``space``
    proprio_dim: int = 0  # P: body-state dims appended to the visual latent (0: pixels only)

    @property
    def out_dim(self) -> int:
        """The fused latent's size ``Dz + P``."""
        return self.dim + self.proprio_dim


# What a world_model.pt written before a LatentConfig field existed means by its absence.
LATENT_FIELDS_ADDED_LATER = {"space": "pca", "high_space": None, "proprio_dim": 0}


@dataclass
class LatentSettings:
    """``latent.*`` of ``python -m experiments.pretrain``: the compact state latent levels 1 and 2 work in."""

    # Encoder tokens average-pooled to a pool x pool grid; null keeps the whole token grid (8 x 8 for the tiny
    # preset). Pooling it to 4 x 4 blurs where the ball is to about the point-mass success radius.
    pool: int | None = setting(None, minimum=1)
    dim: int = setting(64, minimum=1)  # PCA-projected latent size Dz
    # What level 1 predicts in: pca (z) | metric (the temporal metric's embedding of z) | task (the task cost's
    # embedding of z, then the body state) | null: the space of the env's planning cost (metric or task)
    space: str | None = setting(None, choices=STATE_SPACES)
    high_space: str | None = setting(None, choices=STATE_SPACES)  # what level 2 predicts in; null: as ``space``
    batch_size: int = setting(256, minimum=1)  # frames per encoder call
    holdout_fraction: float = setting(0.1, between=(0.0, 1.0))  # episodes held out for the evaluations

    def head_config(self, space: str, high_space: str | None, proprio_dim: int) -> LatentConfig:
        """The ``LatentConfig`` of these settings, with the resolved state spaces and the data's body-state dims."""
        return LatentConfig(pool=self.pool, dim=self.dim, batch_size=self.batch_size, space=space,
                            high_space=high_space, proprio_dim=proprio_dim)


class ProprioMissingError(ValueError):
    """A latent head fused with proprioception was given none, or the reverse."""


class LatentHead(nn.Module):
    """Frozen encoder tokens -> ``(B, Dz)``: pool to a coarse grid, subtract the mean, project (PCA); then the
    standardised body state appended when the config has ``proprio_dim``: ``(B, Dz + P)``."""

    def __init__(self, encoder: nn.Module, cfg: LatentConfig):
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.cfg = cfg
        _, h, w = encoder.grid
        self.pool = h if cfg.pool is None else int(cfg.pool)  # the encoder's token grid is square
        if h % self.pool or w % self.pool:
            raise ValueError(f"latent pool {cfg.pool} must divide the encoder's token grid {h}x{w}; set latent.pool "
                             f"to a divisor of {h}, or to null for the whole grid")
        features = self.pool * self.pool * encoder.width
        if cfg.dim > features:
            raise ValueError(f"latent dim {cfg.dim} exceeds the pooled feature size {features}")
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("projection", torch.eye(features, cfg.dim))  # (F, Dz)
        self.register_buffer("proprio_mean", torch.zeros(cfg.proprio_dim))
        self.register_buffer("proprio_std", torch.ones(cfg.proprio_dim))

    @property
    def dim(self) -> int:
        """The fused latent's size (``Dz + P``)."""
        return self.cfg.out_dim

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # files written before proprioception have no body-state buffers: a pixel-only head
        for name in ("proprio_mean", "proprio_std"):
            state_dict.setdefault(prefix + name, getattr(self, name).clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def pooled(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 ``(B, H, W, 3)`` -> pooled features ``(B, pool*pool*D)`` float32."""
        frames = frames if torch.is_tensor(frames) else torch.from_numpy(np.array(frames))  # copy: may be read-only
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(f"expected uint8 frames (B, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
        device = self.mean.device
        tubelet = self.encoder.cfg.tubelet
        x = rearrange(frames.to(device), "b h w c -> b c h w").float() / 255.0
        size = self.encoder.cfg.image_size
        if x.shape[-2:] != (size, size):  # e.g. 64 px env frames for a 32 px encoder, as the video stage does
            x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        x = normalize(x, channel_dim=-3)
        clips = x.unsqueeze(2).expand(-1, -1, tubelet, -1, -1)  # (B, C, tubelet, H, W)
        tokens = self.encoder(clips)  # (B, h*w, D)
        _, h, w = self.encoder.grid
        grid = rearrange(tokens, "b (h w) d -> b d h w", h=h, w=w)
        cells = nn.functional.adaptive_avg_pool2d(grid, self.pool)
        return rearrange(cells, "b d p q -> b (p q d)")

    def project(self, pooled: torch.Tensor, proprio: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """Pooled features ``(..., F)`` (and body states ``(..., P)``) -> latents ``(..., Dz + P)``."""
        visual = (pooled.to(self.mean.dtype) - self.mean) @ self.projection
        expects = self.cfg.proprio_dim
        if proprio is None:
            if expects:
                raise ProprioMissingError(f"this latent head fuses {expects} proprioception dims, but the "
                                          "observation has none (a checkpoint trained with proprioception used "
                                          "on an env without it)")
            return visual
        if not expects:
            raise ProprioMissingError("the observation has proprioception but this latent head was fitted "
                                      "without it (a pixel-only checkpoint used on an env with proprioception)")
        proprio = torch.as_tensor(np.asarray(proprio) if not torch.is_tensor(proprio) else proprio,
                                  dtype=visual.dtype, device=visual.device)
        if proprio.shape[-1] != expects:
            raise ProprioMissingError(f"proprioception has {proprio.shape[-1]} dims, this latent head "
                                      f"expects {expects}")
        proprio = proprio.expand(*visual.shape[:-1], expects)
        return torch.cat([visual, (proprio - self.proprio_mean) / self.proprio_std], dim=-1)

    @torch.no_grad()
    def fit_proprio(self, proprio: torch.Tensor) -> None:
        """Set the body state's standardisation from the training frames' ``(N, P)``."""
        self.proprio_mean.copy_(proprio.mean(0))
        self.proprio_std.copy_(proprio.std(0).clamp_min(1e-6))

    @torch.no_grad()
    def forward(self, frames: torch.Tensor | np.ndarray,
                proprio: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """uint8 frames ``(B, H, W, 3)`` (and body states ``(B, P)``) -> latents ``(B, Dz + P)``."""
        return self.project(self.pooled(frames), proprio)

    @torch.no_grad()
    def fit(self, pooled: torch.Tensor) -> dict:
        """Fit mean and PCA projection on pooled features ``(N, F)``; returns explained-variance stats."""
        centred = pooled.to(torch.float64, copy=True)
        mean = centred.mean(0)
        centred -= mean  # in place: at 13k frames x 12288 features each copy is 1.3 GB
        rows = centred.shape[0]
        total = centred.pow(2).sum() / max(1, rows - 1)  # the trace of the covariance
        if centred.shape[1] <= EXACT_PCA_FEATURES:
            eigvals, eigvecs = torch.linalg.eigh(torch.cov(centred.T))  # ascending
            top, vectors = eigvals.flip(0).clamp_min(0)[: self.cfg.dim], eigvecs.flip(1)[:, : self.cfg.dim]
        else:  # an F x F eigendecomposition takes minutes here; the top dims' subspace converges in a few passes
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                _, singular, v = torch.svd_lowrank(centred, q=self.cfg.dim + 32, niter=6)
            top, vectors = singular[: self.cfg.dim].pow(2) / max(1, rows - 1), v[:, : self.cfg.dim]
        scale = top.mean().sqrt().clamp_min(1e-12)  # average latent dim gets unit variance
        self.mean.copy_(mean.float())
        self.projection.copy_((vectors / scale).float())
        return {"explained_variance": float(top.sum() / total.clamp_min(1e-12)),
                "latent_dim": self.cfg.dim, "pooled_dim": int(centred.shape[1])}
