"""Level 2: a JEPA over level-1 latents that jumps ``k`` env steps at a time from a high-level action.

High-level action = a learned code ``c (C,)`` of the k-step action chunk ``a_{t:t+k} (k, A)``:

- ``ChunkCode`` (the default ``HighActionSpace``): a chunk encoder ``q(c | a_{t:t+k})`` (diagonal Gaussian)
  regularised toward the prior ``N(0, I)`` by a KL term, so a planner samples codes from ``N(0, I)``;
  a decoder ``c -> a_{t:t+k}`` turns a planned code back into an action chunk (a proposal for level 1).
- ``HighPredictor``: ``(z_t, d_t, c) -> (z_{t+k}, d_{t+k})`` as a residual MLP, in the SAME latent
  space level 1 uses; the target is the frozen encoder's latent (stop-gradient), so a prediction is a
  subgoal that level 1 can be asked to reach. Predicting ``d_{t+k}`` (the latent velocity at the landing
  frame) lets level 2 chain jumps with the same one-step history level 1 reads.

Swapping the high-level action type means writing another class with ``code_dim``, ``encode(chunks)
-> (code, kl)``, ``mean_code(chunks)``, ``decode(code)`` and ``prior_sample``; ``HighPredictor`` only sees ``(N, C)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from worldmodel.models.dynamics import mlp


@dataclass(frozen=True)
class HighLevelConfig:
    latent_dim: int
    action_dim: int
    k: int  # env steps per high-level step
    code_dim: int  # size C of the high-level action (the code of a k-step action chunk)
    hidden: int  # width of the predictor's residual MLP
    layers: int  # hidden layers of the predictor's residual MLP
    code_hidden: int = 128  # width of the chunk code's encoder and decoder


class ChunkCode(nn.Module):
    """Action chunk ``(N, k, A)`` <-> code ``(N, C)`` with a ``N(0, I)`` prior (a small VAE)."""

    def __init__(self, cfg: HighLevelConfig):
        super().__init__()
        self.k, self.action_dim, self.code_dim = cfg.k, cfg.action_dim, cfg.code_dim
        self.encoder = mlp(cfg.k * cfg.action_dim, cfg.code_hidden, 2 * cfg.code_dim, 2)
        self.decoder = mlp(cfg.code_dim, cfg.code_hidden, cfg.k * cfg.action_dim, 2)

    def _stats(self, chunks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(rearrange(chunks, "n k a -> n (k a)")).chunk(2, dim=-1)
        return mu, logvar.clamp(-8.0, 4.0)

    def encode(self, chunks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled code ``(N, C)`` (reparameterised) and the KL to ``N(0, I)`` per sample ``(N,)``."""
        mu, logvar = self._stats(chunks)
        code = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
        return code, kl

    def mean_code(self, chunks: torch.Tensor) -> torch.Tensor:
        """The posterior mean ``(N, C)``: the code of a known chunk, for evaluation."""
        return self._stats(chunks)[0]

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Code ``(..., C)`` -> action chunk ``(..., k, A)`` in ``[-1, 1]``."""
        flat = torch.tanh(self.decoder(code))
        return rearrange(flat, "... (k a) -> ... k a", k=self.k)

    def prior_sample(self, shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(*shape, self.code_dim, generator=generator)


HIGH_ACTION_SPACES = {"chunk_code": ChunkCode}


class HighPredictor(nn.Module):
    """Level 2's predictor: ``(z_t, d_t, c)`` -> ``(z_{t+k}, d_{t+k})``, each ``(N, Dz)``."""

    def __init__(self, cfg: HighLevelConfig):
        super().__init__()
        self.cfg = cfg
        self.net = mlp(2 * cfg.latent_dim + cfg.code_dim, cfg.hidden, 2 * cfg.latent_dim, cfg.layers)

    def forward(self, z: torch.Tensor, d: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        delta, d_next = self.net(torch.cat([z, d, code], dim=-1)).chunk(2, dim=-1)
        return z + delta, d_next

    def rollout(self, z: torch.Tensor, d: torch.Tensor | None, codes: torch.Tensor) -> torch.Tensor:
        """``z, d (N, Dz)``, ``codes (N, H2, C)`` -> predicted latents every k steps ``(N, H2, Dz)``."""
        d = torch.zeros_like(z) if d is None else d
        out = []
        for j in range(codes.shape[1]):
            z, d = self(z, d, codes[:, j])
            out.append(z)
        return torch.stack(out, dim=1)


class HighLevel(nn.Module):
    """Level 2 as one module: the high-level action space, its predictor, and ``code_bank (M, C)``: the codes of action
    chunks seen in the training data (empty until ``fill_code_bank``), which a planner can keep its codes to."""

    def __init__(self, cfg: HighLevelConfig, action_space: str = "chunk_code"):
        super().__init__()
        if action_space not in HIGH_ACTION_SPACES:
            raise ValueError(f"unknown high-level action space {action_space!r}; "
                             f"choose one of: {', '.join(HIGH_ACTION_SPACES)}")
        self.cfg = cfg
        self.action_space_name = action_space
        self.code = HIGH_ACTION_SPACES[action_space](cfg)
        self.predictor = HighPredictor(cfg)
        self.register_buffer("code_bank", torch.zeros(0, cfg.code_dim))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # files written before the bank: none; a bank of another size replaces the empty one
        bank = state_dict.setdefault(prefix + "code_bank", torch.zeros(0, self.cfg.code_dim))
        self.code_bank = torch.zeros_like(bank)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def fill_code_bank(self, chunks: torch.Tensor) -> None:
        """Keep the codes ``(M, C)`` of the action chunks ``(M, k, A)`` (posterior means)."""
        self.code_bank = self.code.mean_code(chunks).detach().clone()

    @torch.no_grad()
    def nearest_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes (..., C)`` -> the nearest bank codes ``(..., C)`` (the codes themselves when the bank is empty)."""
        if len(self.code_bank) == 0:
            return codes
        flat = codes.reshape(-1, codes.shape[-1])
        nearest = torch.cdist(flat, self.code_bank).argmin(dim=1)
        return self.code_bank[nearest].reshape(codes.shape)
