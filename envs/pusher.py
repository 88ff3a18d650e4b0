"""Pusher: a ball on two slide joints pushes a square block (free in x, y, yaw) to a goal position.

The goal is a block position; the goal image shows the block at the goal with the pusher just behind
it (on the side it would push from). Task state ``(10,)``:
``[pusher_x, pusher_y, block_x, block_y, block_yaw, and their 5 velocities]``; distance: block
position to goal block position. Proprioception ``(4,)``: the pusher's position and velocity.

The task is two-staged: the pusher must first get behind the block (seen from the goal), then push. Its
shaping is half the pusher's distance to the block beyond contact (the reach term of gymnasium's
``Pusher-v5`` reward): the block distance alone gives a planner no direction until the two touch.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from envs.base import GoalEnv

PUSHER = slice(0, 2)  # task-state indices of the pusher position
BLOCK = slice(2, 4)  # task-state indices of the block position
REACH_WEIGHT = 0.5  # the shaping's weight of the pusher-to-block distance


class PusherEnv(GoalEnv):
    """Push the blue block to where it is in the goal image (actions: force on the red pusher x, y)."""

    asset: ClassVar[str] = "pusher.xml"
    success_threshold: ClassVar[float] = 0.1
    block_range: ClassVar[float] = 0.7  # block start and goal in [-0.7, 0.7]^2
    goal_distance: ClassVar[tuple[float, float]] = (0.3, 0.8)
    pusher_range: ClassVar[float] = 0.9
    proprio_dim: ClassVar[int] = 4
    proprio_bound: ClassVar[float] = 5.0  # metres and metres per second (full force: about 2 m/s)
    object_position: ClassVar[slice] = BLOCK

    def __init__(self, image_size: int = 64, render_mode: str | None = None):
        super().__init__(image_size=image_size, render_mode=render_mode)
        block_half = float(self.model.geom("block").size[0])
        self.contact_gap = float(self.model.geom("pusher").size[0]) + block_half * np.sqrt(2) + 0.02

    def sample_start_goal(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        r = self.block_range
        block = rng.uniform(-r, r, size=2)
        for _ in range(1000):
            goal = rng.uniform(-r, r, size=2)
            if self.goal_distance[0] < np.linalg.norm(goal - block) < self.goal_distance[1]:
                break
        else:
            raise RuntimeError("could not sample a pusher goal")
        for _ in range(1000):
            pusher = rng.uniform(-self.pusher_range, self.pusher_range, size=2)
            if np.linalg.norm(pusher - block) > self.contact_gap + 0.05:
                break
        yaw = rng.uniform(-np.pi / 4, np.pi / 4)
        away = (block - goal) / np.linalg.norm(block - goal)
        goal_pusher = np.clip(goal + away * self.contact_gap, -self.pusher_range, self.pusher_range)
        start = np.array([*pusher, *block, yaw])
        goal_qpos = np.array([*goal_pusher, *goal, yaw])
        return start, goal_qpos

    def task_states(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        return np.concatenate([qpos, qvel], axis=-1).astype(np.float32)

    def proprio(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(qpos)[..., PUSHER], np.asarray(qvel)[..., PUSHER]], axis=-1).astype(
            np.float32)

    def task_distance(self, states: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        states, goal_state = np.asarray(states), np.asarray(goal_state)
        return np.linalg.norm(states[..., BLOCK] - goal_state[..., BLOCK], axis=-1)

    def shaping(self, states: np.ndarray) -> np.ndarray:
        states = np.asarray(states)
        reach = np.linalg.norm(states[..., PUSHER] - states[..., BLOCK], axis=-1) - self.contact_gap
        return (REACH_WEIGHT * np.maximum(reach, 0.0)).astype(np.float32)
