"""Reacher: a planar 2-link arm (links of length 0.5, elbow limited to +-2.6 rad) reaching a target.

The goal is a fingertip position; the goal image shows the arm at a sampled goal configuration.
Task state ``(6,)``: ``[shoulder, elbow, d_shoulder, d_elbow, tip_x, tip_y]``; distance: fingertip to
the goal fingertip position. Proprioception ``(6,)``: ``[cos shoulder, cos elbow, sin shoulder, sin elbow,
d_shoulder, d_elbow]`` (the shoulder turns freely, so its angle is read on the circle).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from envs.base import GoalEnv


class ReacherEnv(GoalEnv):
    """Bring the yellow fingertip to where it is in the goal image (actions: shoulder, elbow torques)."""

    asset: ClassVar[str] = "reacher.xml"
    success_threshold: ClassVar[float] = 0.1
    link_lengths: ClassVar[tuple[float, float]] = (0.5, 0.5)
    elbow_limit: ClassVar[float] = 2.5  # sampling range, inside the joint range of 2.6
    min_goal_distance: ClassVar[float] = 0.3
    proprio_dim: ClassVar[int] = 6
    proprio_bound: ClassVar[float] = 50.0  # cos, sin and rad/s

    def _sample_qpos(self, rng: np.random.Generator) -> np.ndarray:
        return np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-self.elbow_limit, self.elbow_limit)])

    def sample_start_goal(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        start = self._sample_qpos(rng)
        tip = self.fingertip(start)
        for _ in range(1000):
            goal = self._sample_qpos(rng)
            if np.linalg.norm(self.fingertip(goal) - tip) > self.min_goal_distance:
                return start, goal
        raise RuntimeError("could not sample a reacher goal away from the start")

    def fingertip(self, qpos: np.ndarray) -> np.ndarray:
        """Fingertip position ``(..., 2)`` from joint angles ``(..., 2)`` (forward kinematics)."""
        l1, l2 = self.link_lengths
        q1, q12 = qpos[..., 0], qpos[..., 0] + qpos[..., 1]
        return np.stack([l1 * np.cos(q1) + l2 * np.cos(q12), l1 * np.sin(q1) + l2 * np.sin(q12)], axis=-1)

    def task_states(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        qpos, qvel = np.asarray(qpos), np.asarray(qvel)
        return np.concatenate([qpos, qvel, self.fingertip(qpos)], axis=-1).astype(np.float32)

    def proprio(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        qpos, qvel = np.asarray(qpos), np.asarray(qvel)
        return np.concatenate([np.cos(qpos), np.sin(qpos), qvel], axis=-1).astype(np.float32)

    def task_distance(self, states: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        states, goal_state = np.asarray(states), np.asarray(goal_state)
        return np.linalg.norm(states[..., 4:6] - goal_state[..., 4:6], axis=-1)
