"""The exploration policy of Push-T: a noisy scripted pusher that pushes the T through random points of its edge.

Random actions seldom touch the T, so a world model would learn how the agent moves but not how the T does. In
``push_prob`` of the episodes this policy repeats: pick a random point on the T's outline (uniform along it), go
to a point just outside it along the edge's outward normal, then push through the point, inward, for a random
number of steps; Ornstein-Uhlenbeck noise on top keeps the data varied. Approaches that take too long are given
up for a new point. The other episodes are OU noise alone. It reads the task state alone (``envs.pusht``).

It keeps the T on the table. The agent is a kinematic body that pushes with unbounded force, so a T squeezed
between it and a wall is driven through the wall, off the table, where it stays unseen and out of reach (the
exploration record's ``episodes_losing_object``; `docs/pusht.md`, "Exploration data"). Hence three rules: an
agent behind the T goes round it (``orbit`` from its centre) to reach a point on the far side, instead of
ploughing the T ahead of it; a new contact is one whose push keeps the T's centre within ``edge`` and whose
approach point lies within ``approach_edge`` of the table's middle; a push stops once it carries the T's centre
outward past ``edge``.
"""

from __future__ import annotations

import numpy as np

from envs.exploration_policies import OrnsteinUhlenbeck
from envs.pusht import AGENT, BLOCK, ROTATION, rotate

ORBIT_STEP = np.radians(50.0)  # how far round the T one waypoint of a detour goes


class ScriptedTPusher:
    """Pushes the T through random points of its outline (``outline``: ``(M + 1, 2)``, counter-clockwise, closed,
    in the T's frame) in ``push_prob`` of the episodes.

    ``agent_radius``: the agent's radius; ``action_scale``: how far a full action moves the agent's target (both
    in task-state units); ``standoff``: gap between agent and edge before a push; ``depth``: range of how far past
    the edge point a push aims; ``push_steps``: range of a push's length; ``approach_steps``: steps before an
    approach is given up; ``noise``: weight of the OU noise added to the scripted action; ``edge`` and
    ``approach_edge``: how far from the table's middle (units, per axis; the walls are at 0.98) a push may carry
    the T's centre and an approach point may lie; ``tries``: contacts drawn before settling for the one that pushes
    the T most toward the middle.
    """

    def __init__(self, seed: int | list[int], outline: np.ndarray, agent_radius: float, action_scale: float,
                 push_prob: float = 0.85, standoff: float = 0.04, depth: tuple[float, float] = (0.1, 0.35),
                 push_steps: tuple[int, int] = (4, 16), approach_steps: int = 30, noise: float = 0.3,
                 edge: float = 0.6, approach_edge: float = 0.85, tries: int = 20):
        self.ou = OrnsteinUhlenbeck(2, seed)
        self.rng = self.ou.rng
        self.outline = np.asarray(outline, np.float64)
        edges = np.diff(self.outline, axis=0)
        self.lengths = np.linalg.norm(edges, axis=-1)
        self.normals = np.stack([edges[:, 1], -edges[:, 0]], axis=-1) / self.lengths[:, None]  # outward (CCW)
        self.agent_radius, self.action_scale, self.push_prob = agent_radius, action_scale, push_prob
        self.standoff, self.depth, self.push_steps = standoff, depth, push_steps
        self.approach_steps, self.noise = approach_steps, noise
        self.edge, self.approach_edge, self.tries = edge, approach_edge, tries
        self.centre = self.outline[:-1].mean(axis=0)
        self.orbit = float(np.max(np.linalg.norm(self.outline - self.centre, axis=-1))) + agent_radius + standoff
        self.reset()

    def reset(self) -> None:
        self.ou.reset()
        self.pushing = bool(self.rng.uniform() < self.push_prob)
        self._new_contact()
        self.push_left = 0  # the first act() draws a contact that suits the start state

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

    def _contact_on_table(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The current edge point and its outward normal ``(2,)`` each, on the table."""
        cos, sin = state[ROTATION]
        point, normal = rotate(np.stack([self.point, self.normal]), cos, sin)
        return point + state[BLOCK], normal

    def push_direction(self, state: np.ndarray) -> np.ndarray:
        """The unit direction ``(2,)`` in which the current push moves the T (the edge's inward normal)."""
        return -self._contact_on_table(state)[1]

    def t_centre(self, state: np.ndarray) -> np.ndarray:
        """The centre ``(2,)`` of the T's outline on the table (its body's origin is the top bar's edge)."""
        cos, sin = state[ROTATION]
        return rotate(self.centre[None], cos, sin)[0] + state[BLOCK]

    def heads_out(self, state: np.ndarray, reach: float) -> bool:
        """Whether the current push moves the T's centre outward along an axis on which, moved ``reach`` along the
        push, it is past ``edge``."""
        direction = self.push_direction(state)
        centre = self.t_centre(state) + reach * direction
        return bool(np.any((np.abs(centre) > self.edge) & (np.sign(centre) * direction > 0)))

    def squeezes(self, state: np.ndarray) -> bool:
        """Whether the current contact's approach point is too near the table's edge for the agent to get there
        without driving the T into a wall."""
        return bool(np.any(np.abs(self.approach_point(state)) > self.approach_edge))

    def _contact_for(self, state: np.ndarray) -> None:
        """A new contact whose push keeps the T's centre within ``edge`` and whose approach point is clear of the
        table's edge; failing that in ``tries`` draws, the drawn one that pushes the T most toward the middle."""
        best, inward = None, -np.inf
        for _ in range(self.tries):
            self._new_contact()
            squeezes = self.squeezes(state)
            if not squeezes and not self.heads_out(state, self.push_depth):
                return
            score = -float(self.t_centre(state) @ self.push_direction(state))
            if score > inward and not squeezes:
                best, inward = self._contact(), score
        if best is not None:
            self.point, self.normal, self.push_depth, self.push_left = best

    def _contact(self) -> tuple:
        return self.point, self.normal, self.push_depth, self.push_left

    def approach_point(self, state: np.ndarray) -> np.ndarray:
        """Where the agent waits before the current push: just outside the edge point, along its outward normal."""
        point, normal = self._contact_on_table(state)
        return point + normal * (self.agent_radius + self.standoff)

    def waypoint(self, state: np.ndarray) -> np.ndarray:
        """Where the agent heads now: just outside the edge point while approaching, through it while pushing."""
        point, normal = self._contact_on_table(state)
        outside = self.approach_point(state)
        if not self.in_contact:
            if np.linalg.norm(state[AGENT] - outside) < 0.5 * self.standoff + 0.01:
                self.in_contact = True
            else:
                self.approach_left -= 1
                if (state[AGENT] - point) @ normal < self.agent_radius:  # behind the edge: go round the T
                    return self._around(state, outside)
                return outside
        self.push_left -= 1
        return point - normal * self.push_depth

    def _around(self, state: np.ndarray, target: np.ndarray) -> np.ndarray:
        """A point ``orbit`` from the T's centre, a step of ``ORBIT_STEP`` round it from the agent toward ``target``:
        heading straight for a point on the far side would plough the T along ahead of the agent."""
        centre = self.t_centre(state)
        here, there = state[AGENT] - centre, target - centre
        turn = np.sign(here[0] * there[1] - here[1] * there[0]) or 1.0
        cos, sin = np.cos(turn * ORBIT_STEP), np.sin(turn * ORBIT_STEP)
        heading = rotate(here[None] / (np.linalg.norm(here) + 1e-9), np.array(cos), np.array(sin))[0]
        return centre + self.orbit * heading

    def act(self, state: np.ndarray) -> np.ndarray:
        noise = self.ou.step_noise()
        if not self.pushing:
            return np.clip(noise, -1.0, 1.0).astype(np.float32)
        state = np.asarray(state, np.float64)
        if self.push_left <= 0 or self.approach_left <= 0 or (self.in_contact and self.heads_out(state, 0.0)):
            self._contact_for(state)
        target = self.waypoint(state)
        action = (target - state[AGENT]) / self.action_scale + self.noise * noise
        return np.clip(action, -1.0, 1.0).astype(np.float32)
