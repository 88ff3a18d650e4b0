"""The policies that collect exploration data: smooth random actions, and a noisy scripted pusher.

``OrnsteinUhlenbeck``: OU noise clipped to the action box, smooth enough to travel across an arena, random
enough to cover it. The point mass and the reacher explore with it alone.

``ScriptedPusher``: in ``pusher`` random actions rarely touch the block, and a world model (and the planning
cost) then learns how the pusher moves but not how the block does. In most episodes this policy pushes the
block toward a sequence of random targets: it goes to the point behind the block (seen from the target),
round the block when it is on the wrong side, then pushes along the line to the target; OU noise on top
keeps the data varied (the "noisy expert" data of DINO-WM's Push-T). The other episodes are OU noise alone.

``ScriptedTPusher`` (``envs.pusht_policy``): the same idea for ``pusht``, pushing the T through random points of
its edge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from envs.base import GoalEnv
from envs.pusher import BLOCK, PUSHER, PusherEnv

if TYPE_CHECKING:
    from envs.pusht_policy import ScriptedTPusher


class OrnsteinUhlenbeck:
    """OU noise in ``[-1, 1]^A`` (state-blind)."""

    def __init__(self, action_dim: int, seed: int | list[int], theta: float = 0.15, sigma: float = 0.4):
        self.action_dim, self.theta, self.sigma = action_dim, theta, sigma
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        self.noise = self.rng.uniform(-1.0, 1.0, self.action_dim)
        self.rng.uniform()  # kept so that the episodes recorded before the scripted pusher stay the same

    def step_noise(self) -> np.ndarray:
        self.noise += -self.theta * self.noise + self.sigma * self.rng.standard_normal(self.action_dim)
        self.noise = np.clip(self.noise, -1.5, 1.5)
        return self.noise

    def act(self, state: np.ndarray) -> np.ndarray:
        return np.clip(self.step_noise(), -1.0, 1.0).astype(np.float32)


class ScriptedPusher:
    """Pushes the block toward random targets in ``push_prob`` of the episodes (OU noise alone otherwise).

    ``contact_gap``: pusher-to-block centre distance at contact; ``arena``: targets lie in
    ``[-arena, arena]^2``; ``gain``: proportional gain toward the current waypoint; ``noise``: weight of the OU
    noise added to the scripted action.
    """

    def __init__(self, seed: int | list[int], contact_gap: float, push_prob: float = 0.8, arena: float = 0.7,
                 gain: float = 5.0, noise: float = 0.35, target_steps: int = 60):
        self.ou = OrnsteinUhlenbeck(2, seed)
        self.rng = self.ou.rng
        self.contact_gap, self.push_prob, self.arena = contact_gap, push_prob, arena
        self.gain, self.noise, self.target_steps = gain, noise, target_steps
        self.reset()

    def reset(self) -> None:
        self.ou.reset()
        self.pushing = bool(self.rng.uniform() < self.push_prob)
        self.target: np.ndarray | None = None
        self.age = 0

    def _new_target(self, block: np.ndarray) -> np.ndarray:
        for _ in range(100):
            target = self.rng.uniform(-self.arena, self.arena, 2)
            if 0.2 < np.linalg.norm(target - block) < 0.9:
                return target
        return -block * 0.5  # toward the centre

    def waypoint(self, pusher: np.ndarray, block: np.ndarray) -> np.ndarray:
        """Where the pusher heads now: through the block toward the target when behind it, else behind it
        (round its side when it is in front)."""
        to_target = self.target - block
        u = to_target / max(np.linalg.norm(to_target), 1e-6)
        rel = pusher - block
        along = float(rel @ u)
        side = rel - along * u
        lateral = float(np.linalg.norm(side))
        if along < -0.6 * self.contact_gap and lateral < 0.07:  # behind and lined up: push
            return block + 0.3 * u - 0.5 * side
        if along < -0.3 * self.contact_gap:  # behind but off the line: line up
            return block - u * (self.contact_gap + 0.03)
        perp = side / lateral if lateral > 1e-3 else np.array([-u[1], u[0]])
        return block + perp * (self.contact_gap + 0.12) - u * 0.5 * self.contact_gap  # round the side

    def act(self, state: np.ndarray) -> np.ndarray:
        noise = self.ou.step_noise()
        if not self.pushing:
            return np.clip(noise, -1.0, 1.0).astype(np.float32)
        pusher, block = state[PUSHER], state[BLOCK]
        if self.target is None or np.linalg.norm(self.target - block) < 0.08 or self.age >= self.target_steps:
            self.target, self.age = self._new_target(block), 0
        self.age += 1
        action = self.gain * (self.waypoint(pusher, block) - pusher) + self.noise * noise
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def exploration_policy(env: GoalEnv, seed: int | list[int]) -> OrnsteinUhlenbeck | ScriptedPusher | ScriptedTPusher:
    """The exploration policy for ``env``: the scripted pushers for ``pusher`` and ``pusht``, OU noise for the
    others."""
    from envs.pusht import PushTGoalEnv
    from envs.pusht_policy import ScriptedTPusher  # imports this module's OrnsteinUhlenbeck: not at the top

    if isinstance(env, PusherEnv):
        return ScriptedPusher(seed, contact_gap=env.contact_gap)
    if isinstance(env, PushTGoalEnv):
        return ScriptedTPusher(seed, env.outline, env.agent_radius, env.action_scale)
    return OrnsteinUhlenbeck(env.action_space.shape[0], seed)
