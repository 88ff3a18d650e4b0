"""The ``dot`` env: a goal-conditioned 2-D point drawn with numpy (no MuJoCo), following our env contract.

Observation: an ``(S, S, 3) uint8`` image with the dot in white; ``info`` carries ``goal_image`` (the
dot at the goal), ``state``/``goal_state`` (positions in ``[-1, 1]^2``), ``distance`` and ``is_success``.
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np

GYM_ID = "wm_plugin_example/Dot-v0"


class DotEnv(gym.Env):
    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, image_size: int = 64, speed: float = 0.1, success_threshold: float = 0.1,
                 render_mode: str | None = None):
        self.image_size, self.speed, self.success_threshold = int(image_size), speed, success_threshold
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.position = np.zeros(2, np.float32)
        self.goal = np.zeros(2, np.float32)

    def _draw(self, position: np.ndarray) -> np.ndarray:
        image = np.zeros(self.observation_space.shape, np.uint8)
        radius = max(1, self.image_size // 16)
        centre = ((position + 1.0) / 2.0 * (self.image_size - 1)).round().astype(int)
        rows, cols = np.ogrid[: self.image_size, : self.image_size]
        image[(rows - centre[1]) ** 2 + (cols - centre[0]) ** 2 <= radius**2] = 255
        return image

    def _info(self) -> dict:
        distance = float(np.linalg.norm(self.position - self.goal))
        return {"goal_image": self._draw(self.goal), "state": self.position.copy(), "goal_state": self.goal.copy(),
                "distance": distance, "is_success": distance < self.success_threshold}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-0.8, 0.8, 2).astype(np.float32)
        self.goal = self.np_random.uniform(-0.8, 0.8, 2).astype(np.float32)
        return self._draw(self.position), self._info()

    def step(self, action):
        action = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        self.position = np.clip(self.position + self.speed * action, -1.0, 1.0).astype(np.float32)
        info = self._info()
        return self._draw(self.position), -info["distance"], info["is_success"], False, info

    def render(self):
        return self._draw(self.position)


def register() -> dict[str, str]:
    """Entry point of the ``worldmodel.envs`` group: register with gymnasium, return {name: gym id}."""
    if GYM_ID not in gym.registry:
        gym.register(id=GYM_ID, entry_point=DotEnv, max_episode_steps=50)
    return {"dot": GYM_ID}
