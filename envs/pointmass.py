"""Point mass: a ball on two damped slide joints in a walled arena ``[-1, 1]^2``, three layouts.

- ``open``: no inner walls; greedy motion toward the goal works.
- ``tworooms``: a wall at ``x = 0`` with one doorway at its top end (``y`` in [0.72, 1]); 90% of goals
  lie in the other room, so the straight line is usually blocked and greedy descent gets stuck on the wall.
- ``maze``: an S-shaped corridor (bottom, middle, top, joined by gaps 0.3 wide at alternate ends); 90% of
  goals lie in another corridor.
- ``serpentine``: five corridors 0.32 m wide chained the same way; 90% of goals lie in another corridor, up
  to about 10 m (150 full-speed steps) of path away.

Task state ``(4,)``: ``[x, y, vx, vy]``; distance: Euclidean distance of positions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import mujoco
import numpy as np

from envs.base import GoalEnv


@dataclass(frozen=True)
class Layout:
    asset: str
    region: Callable[[np.ndarray], int] | None = None  # which room/corridor a position lies in
    other_region_prob: float = 0.0  # probability that the goal is sampled outside the start's region


LAYOUTS: dict[str, Layout] = {
    "open": Layout("pointmass_open.xml"),
    "tworooms": Layout("pointmass_tworooms.xml", region=lambda p: int(p[0] > 0.0), other_region_prob=0.9),
    "maze": Layout(
        "pointmass_maze.xml", region=lambda p: int(p[1] > -0.33) + int(p[1] > 0.33), other_region_prob=0.9
    ),
    "serpentine": Layout(
        "pointmass_serpentine.xml", region=lambda p: int(np.sum(p[1] > np.array([-0.6, -0.2, 0.2, 0.6]))),
        other_region_prob=0.9,
    ),
}


class PointMassEnv(GoalEnv):
    """Move the red ball to the goal position shown in the goal image (actions: force on x, y)."""

    success_threshold: ClassVar[float] = 0.1
    arena: ClassVar[float] = 1.0  # free space is [-arena, arena]^2 minus inner walls
    min_goal_distance: ClassVar[float] = 0.3

    def __init__(self, layout: str = "open", image_size: int = 64, render_mode: str | None = None):
        if layout not in LAYOUTS:
            raise ValueError(f"unknown pointmass layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
        self.layout_name = layout
        self.layout = LAYOUTS[layout]
        self.asset = self.layout.asset
        super().__init__(image_size=image_size, render_mode=render_mode)
        self.agent_radius = float(self.model.geom("agent").size[0])
        # Axis-aligned wall boxes (center xy, half-size xy) read from the model: the sampler avoids them.
        boxes = [
            (self.model.geom_pos[g, :2].copy(), self.model.geom_size[g, :2].copy())
            for g in range(self.model.ngeom)
            if self.model.geom(g).name.startswith(("wall", "divider", "maze"))
        ]
        self._walls = boxes

    def is_free(self, position: np.ndarray, margin: float = 0.03) -> bool:
        """Whether the ball fits at ``position (2,)`` with ``margin`` to spare."""
        clearance = self.agent_radius + margin
        if np.any(np.abs(position) > self.arena - clearance):
            return False
        return all(np.any(np.abs(position - center) >= half + clearance) for center, half in self._walls)

    def render_at(self, position: np.ndarray) -> np.ndarray:
        """The observation with the ball at rest at ``position (2,)`` (the episode's state is left as it was)."""
        saved = self.get_sim_state()
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:2] = position
        mujoco.mj_forward(self.model, self.data)
        image = self._render_image()
        self.set_sim_state(saved)
        return image

    def _sample_free(self, rng: np.random.Generator, accept=lambda p: True) -> np.ndarray:
        for _ in range(10_000):
            p = rng.uniform(-self.arena, self.arena, size=2)
            if self.is_free(p) and accept(p):
                return p
        raise RuntimeError(f"could not sample a free position in layout {self.layout_name!r}")

    def sample_start_goal(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        start = self._sample_free(rng)
        far = lambda p: np.linalg.norm(p - start) > self.min_goal_distance
        region = self.layout.region
        if region is not None and rng.uniform() < self.layout.other_region_prob:
            goal = self._sample_free(rng, lambda p: far(p) and region(p) != region(start))
        else:
            goal = self._sample_free(rng, far)
        return start, goal

    def task_states(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        return np.concatenate([qpos, qvel], axis=-1).astype(np.float32)

    def task_distance(self, states: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        states, goal_state = np.asarray(states), np.asarray(goal_state)
        return np.linalg.norm(states[..., :2] - goal_state[..., :2], axis=-1)
