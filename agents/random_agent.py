"""The random agent: uniform actions from the action space, the floor every other agent must beat."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np

from agents.registry import register_agent


@register_agent("random")
class RandomAgent:
    """Samples actions uniformly from ``env.action_space``.

    Deterministic given ``seed`` and the episode index: the k-th ``reset`` (k = 0, 1, ...) reseeds its
    own generator from ``(seed, k)``, so episode k plays the same actions whatever ran before it in
    another process, and distinct episodes get distinct streams. The env's own RNG is never touched.
    """

    def __init__(self, env: gym.Env, seed: int = 0):
        self.action_space = env.action_space
        self.seed = int(seed)
        self.episode = -1
        self._box = isinstance(self.action_space, gym.spaces.Box) and self.action_space.is_bounded("both")
        self._space = copy.deepcopy(self.action_space)  # seeded per episode for non-Box spaces
        self._rng = np.random.default_rng([self.seed, 0])

    def reset(self, observation: np.ndarray, info: dict[str, Any]) -> None:
        self.episode += 1
        self._rng = np.random.default_rng([self.seed, self.episode])
        if not self._box:
            self._space.seed(int(self._rng.integers(2**31)))

    def act(self, observation: np.ndarray) -> np.ndarray:
        if not self._box:
            return self._space.sample()
        space = self.action_space
        return self._rng.uniform(space.low, space.high).astype(space.dtype, copy=False)
