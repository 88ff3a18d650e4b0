"""The exploration policy of Push-T: a noisy scripted pusher that pushes the T through random points of its edge.

Random actions seldom touch the T, so a world model would learn how the agent moves but not how the T does. In
``push_prob`` of the episodes this policy repeats: pick a random point on the T's outline (uniform along it), go
to a point just outside it along the edge's outward normal, then push through the point, inward, for a random
number of steps; Ornstein-Uhlenbeck noise on top keeps the data varied. Approaches that take too long are given
up for a new point. The other episodes are OU noise alone. It reads the task state alone (``envs.pusht``).
"""

from __future__ import annotations

import numpy as np

from envs.exploration_policies import OrnsteinUhlenbeck
from envs.pusht import AGENT, BLOCK, ROTATION, rotate


class ScriptedTPusher:
    """Pushes the T through random points of its outline (``outline``: ``(M + 1, 2)``, counter-clockwise, closed,
    in the T's frame) in ``push_prob`` of the episodes.

    ``agent_radius``: the agent's radius; ``action_scale``: how far a full action moves the agent's target (both
    in task-state units); ``standoff``: gap between agent and edge before a push; ``depth``: range of how far past
    the edge point a push aims; ``push_steps``: range of a push's length; ``approach_steps``: steps before an
    approach is given up; ``noise``: weight of the OU noise added to the scripted action.
    """

    def __init__(self, seed: int | list[int], outline: np.ndarray, agent_radius: float, action_scale: float,
                 push_prob: float = 0.85, standoff: float = 0.04, depth: tuple[float, float] = (0.1, 0.35),
                 push_steps: tuple[int, int] = (4, 16), approach_steps: int = 30, noise: float = 0.3):
        self.ou = OrnsteinUhlenbeck(2, seed)
        self.rng = self.ou.rng
        self.outline = np.asarray(outline, np.float64)
        edges = np.diff(self.outline, axis=0)
        self.lengths = np.linalg.norm(edges, axis=-1)
        self.normals = np.stack([edges[:, 1], -edges[:, 0]], axis=-1) / self.lengths[:, None]  # outward (CCW)
        self.agent_radius, self.action_scale, self.push_prob = agent_radius, action_scale, push_prob
        self.standoff, self.depth, self.push_steps = standoff, depth, push_steps
        self.approach_steps, self.noise = approach_steps, noise
        self.reset()

    def reset(self) -> None:
        self.ou.reset()
        self.pushing = bool(self.rng.uniform() < self.push_prob)
        self._new_contact()

    def _new_contact(self) -> None:
        """A new edge point (in the T's frame), its outward normal, a push depth and length."""
        edge = int(self.rng.choice(len(self.lengths), p=self.lengths / self.lengths.sum()))
        t = self.rng.uniform()
        self.point = self.outline[edge] + t * (self.outline[edge + 1] - self.outline[edge])
        self.normal = self.normals[edge]
        self.push_depth = self.rng.uniform(*self.depth)
        self.push_left = int(self.rng.integers(self.push_steps[0], self.push_steps[1] + 1))
        self.approach_left = self.approach_steps
        self.in_contact = False

    def waypoint(self, state: np.ndarray) -> np.ndarray:
        """Where the agent heads now: just outside the edge point while approaching, through it while pushing."""
        cos, sin = state[ROTATION]
        point, normal = rotate(np.stack([self.point, self.normal]), cos, sin)
        point = point + state[BLOCK]
        outside = point + normal * (self.agent_radius + self.standoff)
        if not self.in_contact:
            if np.linalg.norm(state[AGENT] - outside) < 0.5 * self.standoff + 0.01:
                self.in_contact = True
            else:
                self.approach_left -= 1
                return outside
        self.push_left -= 1
        return point - normal * self.push_depth

    def act(self, state: np.ndarray) -> np.ndarray:
        noise = self.ou.step_noise()
        if not self.pushing:
            return np.clip(noise, -1.0, 1.0).astype(np.float32)
        if self.push_left <= 0 or self.approach_left <= 0:
            self._new_contact()
        target = self.waypoint(np.asarray(state, np.float64))
        action = (target - state[AGENT]) / self.action_scale + self.noise * noise
        return np.clip(action, -1.0, 1.0).astype(np.float32)
