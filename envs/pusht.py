"""Push-T: LeRobot's ``gym-pusht`` (pymunk physics) as one of our goal envs, observed from pixels.

The blue disc (the agent) pushes a grey T on a 512 x 512 px table; the task is to bring the T to the goal pose.
The physics, the PD controller, the drawing and the success test are ``gym-pusht``'s own (an optional
dependency, ``pip install -e '.[pusht]'``); this wrapper adds what our pipeline needs:

- Units: positions ``(px - 256) / 256`` in ``[-1, 1]``, velocities in those units per second.
- Action ``Box(-1, 1, (2,))``: the PD target relative to the agent, ``agent + ACTION_PX * action`` (clipped to
  the table); a zero action holds the agent still. Finite actions outside the box are clipped, others raise.
- Observation ``{"pixels": (S, S, 3) uint8, "proprio": (4,) float32}``: the table drawn without the goal zone
  (so a frame depends on the simulated state alone), and the agent's position and velocity (never the T's).
- Task state ``(11,)``: ``[agent_x, agent_y, t_x, t_y, cos(t_angle), sin(t_angle), agent_vx, agent_vy, t_vx,
  t_vy, t_spin]``; task distance: the mean distance between the T's 8 corners and theirs at the goal.
- ``is_success``: ``gym-pusht``'s coverage criterion (the T covers over 95% of the goal zone); ``info`` also
  has the ``coverage``. ``success_threshold`` is the corner distance of about that coverage (a 3 px shift).
  ``info["pose_success"]`` is the looser criterion DINO-WM and the papers after it report Push-T with: the T's
  centre within 20 px of the goal's and its angle within 20 degrees (``POSE_SUCCESS``).
- Reset: ``gym-pusht``'s start distribution and its goal pose (the benchmark's), or ``options={"start": s,
  "goal": g}`` with two simulator states (the goal image shows ``g`` at rest).

Exact save/restore: the simulator state is ``[agent x, y, vx, vy, T x, y, angle, vx, vy, spin]`` in pymunk's
units, and every step starts from a fresh pymunk space holding that state. A restored state therefore continues
exactly as the original did (pymunk's own copy of a space loses the contact cache), at the price that contact
impulses are warm-started within an env step's 10 physics steps but not across env steps.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from envs.pusht_dependency import load_pusht
from worldmodel.observations import PIXELS, PROPRIO

TABLE_PX = 512.0
HALF_PX = 256.0  # px per unit: position units are (px - HALF_PX) / HALF_PX
WALL = 251.0 / 256.0  # gym-pusht's walls (segments at 5 and 506 px, 2 px thick), in units
ACTION_PX = 50.0  # a full action puts the PD target this far from the agent
GOAL_AGENT_CLEARANCE_PX = 10.0  # the goal image's agent keeps this far from the goal T
REACH_WEIGHT = 0.5  # the shaping's weight of the agent-to-T distance
AGENT = slice(0, 2)
BLOCK = slice(2, 4)
ROTATION = slice(4, 6)  # (cos, sin) of the T's angle
POSE_SUCCESS = (20.0, 20.0)  # px, degrees: DINO-WM's Push-T success (T position and angle), info["pose_success"]
AGENT_VELOCITY = slice(6, 8)
BLOCK_VELOCITY = slice(8, 10)
SPIN = 10
STATE_DIM = 11


def rotate(points: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Points ``(K, 2)`` rotated by angles given as ``cos``/``sin`` ``(...)`` -> ``(..., K, 2)``."""
    cos, sin = np.asarray(cos)[..., None], np.asarray(sin)[..., None]
    x, y = points[:, 0], points[:, 1]
    return np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1)


class PushTGoalEnv(gym.Env):
    """Push the T to where it is in the goal image (actions: where the agent's PD target goes)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}
    frame_skip: ClassVar[int] = 10  # pymunk steps per env step (gym-pusht: 0.01 s each, 10 env steps/s)
    success_threshold: ClassVar[float] = 3.0 / HALF_PX
    proprio_dim: ClassVar[int] = 4
    proprio_bound: ClassVar[float] = 20.0  # units and units per second (a full action: about 0.7 units/s)
    object_position: ClassVar[slice] = BLOCK
    object_angle: ClassVar[slice] = ROTATION
    # held-out goal rollouts (plan goal_steps=K) at a quarter of the scripted pusher's speed, near the pace of the
    # expert replays the published Push-T goals come from (measured in docs/pusht.md)
    goal_pace: ClassVar[float] = 0.25
    state_dim: ClassVar[int] = STATE_DIM

    def __init__(self, image_size: int = 64, render_mode: str | None = None):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if not isinstance(image_size, (int, np.integer)) or not 8 <= image_size <= 480:
            raise ValueError(f"image_size must be an int in [8, 480], got {image_size!r}")
        self._pusht = load_pusht()
        self.render_mode = render_mode
        self.image_size = int(image_size)
        self.sim = self._pusht.PushTEnv(obs_type="state", render_mode="rgb_array")
        self._scratch = self._pusht.PushTEnv(obs_type="state", render_mode="rgb_array")
        self._scratch._get_coverage = lambda: 0.0  # simulate() needs no coverage: skip its shapely cost
        self.sim._setup()
        self.dt = self.sim.dt * self.frame_skip
        self.action_scale = ACTION_PX / HALF_PX  # how far a full action moves the agent's target, in units
        self.agent_radius = float(next(iter(self.sim.agent.shapes)).radius) / HALF_PX
        shapes = self.sim._block_shapes
        self.corners = np.array([tuple(v) for s in shapes for v in s.get_vertices()], np.float64) / HALF_PX
        self.outline = self._outline(shapes)
        pixels = gym.spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8)
        body = gym.spaces.Box(-self.proprio_bound, self.proprio_bound, (self.proprio_dim,), np.float32)
        self.observation_space = gym.spaces.Dict({PIXELS: pixels, PROPRIO: body})
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.goal_pose = np.array(self.sim.goal_pose, np.float64)  # gym-pusht's goal: (x px, y px, angle)
        self._sim_state = np.zeros(10, np.float64)
        self.goal_sim_state = np.zeros(10, np.float64)
        self.goal_state = np.zeros(STATE_DIM, np.float32)
        self.goal_image = np.zeros(pixels.shape, np.uint8)
        self.goal_proprio = np.zeros(self.proprio_dim, np.float32)
        self._last_image: np.ndarray | None = None

    def _outline(self, shapes: list) -> np.ndarray:
        """The T's outline in its own frame, counter-clockwise, closed: ``(M + 1, 2)`` in units."""
        geometry = self._pusht.sg
        polygon = geometry.Polygon([tuple(v) for v in shapes[0].get_vertices()])
        for shape in shapes[1:]:
            polygon = polygon.union(geometry.Polygon([tuple(v) for v in shape.get_vertices()]))
        polygon = geometry.polygon.orient(polygon.simplify(0.0), sign=1.0)
        return np.asarray(polygon.exterior.coords, np.float64) / HALF_PX

    # ---- gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """A new episode from gym-pusht's start distribution toward its goal pose, or from
        ``options={"start": s, "goal": g}``: two simulator states (``get_sim_state``)."""
        super().reset(seed=seed)
        given = options or {}
        if set(given) & {"start", "goal"}:
            if not {"start", "goal"} <= set(given):
                raise ValueError(f"reset options need both 'start' and 'goal' simulator states, got {sorted(given)}")
            goal = self._checked(given["goal"])
            self._set_goal(goal[4:7], goal[0:2])
            self.set_sim_state(given["start"])
        else:
            rng = self.np_random
            # gym-pusht's own start distribution (its reset draws the same, in this order)
            start = np.array([rng.integers(50, 450), rng.integers(50, 450), 0.0, 0.0, rng.integers(100, 400),
                              rng.integers(100, 400), rng.uniform(-np.pi, np.pi), 0.0, 0.0, 0.0], np.float64)
            pose = np.array(self.sim.goal_pose, np.float64)
            self._set_goal(pose, self.free_agent_position(pose, rng))
            self.set_sim_state(start)
        return self._observation(), self._info(self._coverage())

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (2,):
            raise ValueError(f"action must have shape (2,), got {np.shape(action)}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite, got {action.tolist()}")
        self._sim_state, _, info = self._advance(self.sim, self._sim_state, np.clip(action, -1.0, 1.0))
        self._last_image = None
        observation = self._observation()
        info = self._info(float(info["coverage"]))
        return observation, -info["distance"], bool(info["is_success"]), False, info

    def render(self):
        if self._last_image is None:
            self._last_image = self._draw(self.sim)
        return self._last_image.copy()

    def close(self):
        self.sim.close()
        self._scratch.close()

    # ---- our env contract --------------------------------------------------------------------
    def task_states(self, sim_states: np.ndarray) -> np.ndarray:
        """Task states ``(..., 11) float32`` from simulator states ``(..., 10)``."""
        s = np.asarray(sim_states, np.float64)
        angle = s[..., 6]
        parts = [(s[..., 0:2] - HALF_PX) / HALF_PX, (s[..., 4:6] - HALF_PX) / HALF_PX,
                 np.cos(angle)[..., None], np.sin(angle)[..., None], s[..., 2:4] / HALF_PX,
                 s[..., 7:9] / HALF_PX, s[..., 9:10]]
        return np.concatenate(parts, axis=-1).astype(np.float32)

    def corner_positions(self, states: np.ndarray) -> np.ndarray:
        """The T's 8 corners ``(..., 8, 2)`` (the keypoints of gym-pusht) in task states ``(..., S)``."""
        states = np.asarray(states)
        return rotate(self.corners, states[..., 4], states[..., 5]) + states[..., None, BLOCK]

    def task_distance(self, states: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """Mean distance ``(...)`` between the T's corners in ``states (..., S)`` and in ``goal_state``."""
        here, there = self.corner_positions(states), self.corner_positions(goal_state)
        return np.linalg.norm(here - there, axis=-1).mean(axis=-1)

    def object_off_table(self, states: np.ndarray) -> np.ndarray:
        """Whether the T's centre (of its corners) in ``states (..., S)`` lies beyond a wall ``(...)`` bool: the
        agent, a kinematic body, can drive a T it squeezes against a wall through it, and the T stays there."""
        return np.abs(self.corner_positions(states).mean(axis=-2)).max(axis=-1) > WALL

    def shaping(self, states: np.ndarray) -> np.ndarray:
        """Half the agent's distance to the T's outline (its vertices and edge midpoints) beyond contact."""
        states = np.asarray(states)
        marks = np.concatenate([self.outline[:-1], 0.5 * (self.outline[:-1] + self.outline[1:])])
        points = rotate(marks, states[..., 4], states[..., 5]) + states[..., None, BLOCK]
        reach = np.linalg.norm(points - states[..., None, AGENT], axis=-1).min(axis=-1) - self.agent_radius
        return (REACH_WEIGHT * np.maximum(reach, 0.0)).astype(np.float32)

    def proprio(self, states: np.ndarray) -> np.ndarray:
        """The agent's position and velocity ``(..., 4) float32`` from task states."""
        states = np.asarray(states)
        return np.concatenate([states[..., AGENT], states[..., AGENT_VELOCITY]], axis=-1).astype(np.float32)

    @property
    def state(self) -> np.ndarray:
        return self.task_states(self._sim_state)

    # ---- oracle support ----------------------------------------------------------------------
    def get_sim_state(self) -> np.ndarray:
        """The simulator state ``(10,) float64``: agent x, y, vx, vy, T x, y, angle, vx, vy, spin (pymunk units)."""
        return self._sim_state.copy()

    def set_sim_state(self, state: np.ndarray) -> None:
        self._sim_state = self._checked(state)
        self._load(self.sim, self._sim_state)
        self._last_image = None

    def simulate(self, sim_state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Roll the true physics out from ``sim_state`` for each action sequence, without drawing.

        actions ``(N, H, 2)`` (clipped to [-1, 1]) -> task states ``(N, H, 11)`` after each env step, exactly as
        ``step`` would give them.
        """
        actions = np.asarray(actions, np.float64)
        if actions.ndim != 3 or actions.shape[-1] != 2:
            raise ValueError(f"actions must be (N, H, 2), got {actions.shape}")
        start = self._checked(sim_state)
        actions = np.clip(np.nan_to_num(actions), -1.0, 1.0)
        out = np.empty(actions.shape[:2] + (10,), np.float64)
        for n, sequence in enumerate(actions):
            state = start
            for h, action in enumerate(sequence):
                state, _, _ = self._advance(self._scratch, state, action)
                out[n, h] = state
        return self.task_states(out)

    # ---- internals ---------------------------------------------------------------------------
    def _checked(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, np.float64)
        if state.shape != (10,):
            raise ValueError(f"sim state must have shape (10,) (from get_sim_state), got {state.shape}")
        return state.copy()

    def _load(self, sim: Any, state: np.ndarray) -> None:
        """A fresh pymunk space in ``sim`` holding ``state`` (no physics step, unlike gym-pusht's own reset)."""
        sim._setup()
        sim.goal_pose = self.goal_pose.copy()
        sim.agent.position = (state[0], state[1])
        sim.agent.velocity = (state[2], state[3])
        sim.block.angle = state[6]  # before the position: pymunk turns a body about its centre of gravity
        sim.block.position = (state[4], state[5])
        sim.block.velocity = (state[7], state[8])
        sim.block.angular_velocity = state[9]
        for body in (sim.agent, sim.block):  # the shapes' cached outlines (drawn, collided) follow the bodies now
            sim.space.reindex_shapes_for_body(body)

    @staticmethod
    def _read(sim: Any) -> np.ndarray:
        agent, block = sim.agent, sim.block
        return np.array([*agent.position, *agent.velocity, *block.position, block.angle, *block.velocity,
                         block.angular_velocity], np.float64)

    def _advance(self, sim: Any, state: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, Any, dict]:
        """One env step of gym-pusht's ``sim`` from ``state``: ``(next state, observation, info)``."""
        self._load(sim, state)
        target = np.clip(state[0:2] + ACTION_PX * action, 0.0, TABLE_PX)
        observation, _, _, _, info = sim.step(target)
        return self._read(sim), observation, info

    def _coverage(self) -> float:
        return float(self.sim._get_coverage())

    def free_agent_position(self, pose: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """An agent position (px, from gym-pusht's start range) clear of the T at ``pose``."""
        corners = rotate(self.outline[:-1] * HALF_PX, np.cos(pose[2]), np.sin(pose[2])) + pose[:2]
        t_shape = self._pusht.sg.Polygon(corners)
        reach = self.agent_radius * HALF_PX + GOAL_AGENT_CLEARANCE_PX
        for _ in range(1000):
            position = rng.integers(50, 450, size=2).astype(np.float64)
            if t_shape.distance(self._pusht.sg.Point(*position)) > reach:
                return position
        raise RuntimeError("could not place the goal image's agent clear of the goal T")

    def _set_goal(self, pose: np.ndarray, agent: np.ndarray) -> None:
        """The goal: the T at ``pose`` (x px, y px, angle) with the agent at rest at ``agent`` (px)."""
        self.goal_pose = np.asarray(pose, np.float64).copy()
        self.goal_sim_state = np.array([agent[0], agent[1], 0, 0, *self.goal_pose, 0, 0, 0], np.float64)
        self.goal_state = self.task_states(self.goal_sim_state)
        self.goal_proprio = self.proprio(self.goal_state)
        self._load(self._scratch, self.goal_sim_state)
        self.goal_image = self._draw(self._scratch)

    def _draw(self, sim: Any) -> np.ndarray:
        """``sim``'s table at ``image_size``, drawn by gym-pusht's pygame code without the goal zone."""
        pygame, cv2 = self._pusht.pygame, self._pusht.cv2
        screen = pygame.Surface((int(TABLE_PX), int(TABLE_PX)))
        screen.fill((255, 255, 255))
        sim.space.debug_draw(self._pusht.DrawOptions(screen))
        image = np.transpose(np.array(pygame.surfarray.pixels3d(screen)), axes=(1, 0, 2))
        # INTER_AREA averages the 8 x 8 px under each output pixel; gym-pusht's default (linear) would alias
        return cv2.resize(image, (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)

    def _observation(self) -> dict[str, np.ndarray]:
        image = self.render()
        body = np.clip(self.proprio(self.state), -self.proprio_bound, self.proprio_bound)
        return {PIXELS: image, PROPRIO: body.astype(np.float32)}

    def pose_error(self, state: np.ndarray, goal_state: np.ndarray) -> tuple[float, float]:
        """The T's position error in pixels and angle error in degrees between two task states."""
        shift = float(np.linalg.norm(state[BLOCK] - goal_state[BLOCK])) * HALF_PX
        turn = np.arctan2(state[ROTATION][1], state[ROTATION][0]) - np.arctan2(*goal_state[ROTATION][::-1])
        return shift, float(np.degrees(np.abs(np.angle(np.exp(1j * turn)))))

    def _info(self, coverage: float) -> dict[str, Any]:
        state = self.state
        shift, turn = self.pose_error(state, self.goal_state)
        return {
            "goal_image": self.goal_image.copy(),
            "goal_proprio": self.goal_proprio.copy(),
            "state": state,
            "goal_state": self.goal_state.copy(),
            "distance": float(self.task_distance(state, self.goal_state)),
            "coverage": coverage,
            "is_success": bool(coverage > self.sim.success_threshold),
            "pose_success": bool(shift < POSE_SUCCESS[0] and turn < POSE_SUCCESS[1]),
        }
