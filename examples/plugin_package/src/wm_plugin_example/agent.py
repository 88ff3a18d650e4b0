"""The ``sine`` agent: smooth periodic actions, one phase per action dimension."""

from __future__ import annotations

import numpy as np


class SineAgent:
    """``action_j(t) = amplitude * sin(2 pi t / period + phase_j)``, phases drawn from ``seed`` at reset.

    Parameters are explicit keywords with defaults: the registry rejects misspelt ones
    (``agent.params.amplitud=...``) with the list of accepted names.
    """

    def __init__(self, env, amplitude: float = 1.0, period: float = 20.0, seed: int = 0):
        if period <= 0:
            raise ValueError(f"period must be > 0, got {period}")
        self.space = env.action_space
        self.amplitude, self.period, self.seed = float(amplitude), float(period), int(seed)

    def reset(self, observation, info):
        rng = np.random.default_rng(self.seed)
        self.phase = rng.uniform(0.0, 2.0 * np.pi, self.space.shape)
        self.t = 0
        self.diagnostics = {}

    def act(self, observation):
        action = self.amplitude * np.sin(2.0 * np.pi * self.t / self.period + self.phase)
        self.t += 1
        return np.clip(action, self.space.low, self.space.high).astype(self.space.dtype)
