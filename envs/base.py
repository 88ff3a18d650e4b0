"""Goal-conditioned MuJoCo environments observed from pixels: the shared base class.

A ``GoalEnv`` loads an MJCF model from ``envs/assets``, renders a fixed top-down camera at
``image_size x image_size`` and samples a start and a goal at every ``reset``. Subclasses define
three things: how to sample start and goal joint positions, the task state ``(..., S)`` computed
from ``qpos``/``qvel`` and the task distance between task states and a goal state.

Observation: the RGB image ``(H, W, 3) uint8``; an env whose subclass has ``proprio_dim > 0`` (the agent's
own body state: joint angles and velocities, never an object's state) observes the dict
``{"pixels": image, "proprio": (P,) float32}`` instead (``worldmodel.observations``). Action:
``Box(-1, 1, (A,), float32)``; finite actions outside the box are clipped (as MuJoCo's ``ctrlrange`` would),
non-finite ones raise. ``info``: ``goal_image``, ``goal_proprio`` (with proprioception), ``state``,
``goal_state``, ``distance``, ``is_success`` (and ``failure`` when the simulator became unstable). An episode
terminates on success or failure; the plan command counts an episode as solved when its last step reports
``is_success``.

Oracle support: ``get_sim_state``/``set_sim_state`` (the full integration state) and ``simulate``, a batched
true-dynamics rollout without rendering (``mujoco.rollout``, in C).

Shaping: ``shaping(states)`` is a cost of the state alone that a planner needs where the task distance gives no
direction (pusher: the pusher's distance to the block, which must shrink before the block can move); zero by
default. Planners minimise the task distance plus it: the oracle with the true terms, the world model's task
cost with learned ones.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # must precede `import mujoco`

from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

from worldmodel.observations import PIXELS, PROPRIO

ASSETS = Path(__file__).parent / "assets"
_INTEGRATION = mujoco.mjtState.mjSTATE_INTEGRATION
_FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS
_BAD_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQACC,
)


class GoalEnv(gym.Env):
    """Base class: one MJCF asset, a top-down camera named ``top``, start/goal sampling per reset."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}
    asset: ClassVar[str]  # file name in envs/assets
    frame_skip: ClassVar[int] = 5  # physics steps per env step (timestep 0.01 s -> 20 env steps/s)
    success_threshold: ClassVar[float]  # is_success = distance < success_threshold
    proprio_dim: ClassVar[int] = 0  # size of ``proprio``'s output; 0: the env observes pixels only
    proprio_bound: ClassVar[float] = 50.0  # every proprio value lies in [-bound, bound] (its observation space)
    object_position: ClassVar[slice | None] = None  # task-state indices of a manipulated object's (x, y)

    def __init__(self, image_size: int = 64, render_mode: str | None = None):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if not isinstance(image_size, (int, np.integer)) or not 8 <= image_size <= 480:
            raise ValueError(f"image_size must be an int in [8, 480], got {image_size!r}")
        self.render_mode = render_mode
        self.image_size = int(image_size)
        self.model = mujoco.MjModel.from_xml_path(str(ASSETS / self.asset))
        self.data = mujoco.MjData(self.model)
        self._scratch = mujoco.MjData(self.model)  # for simulate(): never disturbs self.data
        self.renderer = mujoco.Renderer(self.model, self.image_size, self.image_size)
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        self.dt = self.model.opt.timestep * self.frame_skip
        self.metadata = {**type(self).metadata, "render_fps": round(1.0 / self.dt)}
        pixels = gym.spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8)
        body = gym.spaces.Box(-self.proprio_bound, self.proprio_bound, (self.proprio_dim,), np.float32)
        self.observation_space = gym.spaces.Dict({PIXELS: pixels, PROPRIO: body}) if self.proprio_dim else pixels
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.model.nu,), np.float32)
        state_dim = self.task_states(np.zeros(self.model.nq), np.zeros(self.model.nv)).shape[-1]
        self.state_dim = state_dim
        self.goal_qpos = self.model.qpos0.copy()
        self.goal_state = np.zeros(self.state_dim, np.float32)
        self.goal_image = np.zeros(pixels.shape, np.uint8)
        self.goal_proprio = np.zeros(self.proprio_dim, np.float32)
        self._last_image: np.ndarray | None = None
        self._failure: str | None = None

    # ---- what a subclass defines -------------------------------------------------------------
    def sample_start_goal(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(start_qpos (nq,), goal_qpos (nq,))``, both collision-free and connected."""
        raise NotImplementedError

    def task_states(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Task states ``(..., S) float32`` from ``qpos (..., nq)`` and ``qvel (..., nv)``."""
        raise NotImplementedError

    def task_distance(self, states: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """Task distance ``(...)`` between ``states (..., S)`` and ``goal_state`` (``(S,)`` or ``(..., S)``)."""
        raise NotImplementedError

    def proprio(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """The agent's body state ``(..., proprio_dim) float32`` (only for subclasses with ``proprio_dim > 0``)."""
        raise NotImplementedError

    def shaping(self, states: np.ndarray) -> np.ndarray:
        """A non-negative cost ``(...)`` of task states ``(..., S)`` alone, added to the task distance by planners."""
        return np.zeros(np.shape(states)[:-1], np.float32)

    # ---- gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """A new episode from a sampled start and goal, or from ``options={"start": s, "goal": g}``: two full
        simulator states (``get_sim_state``), e.g. states ``k`` steps apart on a recorded trajectory. The goal
        is the configuration of ``g`` at rest."""
        super().reset(seed=seed)
        given = options or {}
        if set(given) & {"start", "goal"}:
            return self._reset_to(given)
        start_qpos, goal_qpos = self.sample_start_goal(self.np_random)
        self._set_goal(goal_qpos)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = start_qpos
        mujoco.mj_forward(self.model, self.data)
        self._failure = None
        return self._observation(), self._info()

    def _reset_to(self, options: dict) -> tuple:
        if not {"start", "goal"} <= set(options):
            raise ValueError(f"reset options need both 'start' and 'goal' simulator states, got {sorted(options)}")
        self.set_sim_state(options["goal"])
        self._set_goal(self.data.qpos.copy())
        self.set_sim_state(options["start"])
        self._failure = None
        return self._observation(), self._info()

    def _set_goal(self, goal_qpos: np.ndarray) -> None:
        """Goal state, proprioception and image of the configuration ``goal_qpos`` at rest."""
        self.goal_qpos = np.asarray(goal_qpos, np.float64).copy()
        self.goal_state = self.task_states(self.goal_qpos, np.zeros(self.model.nv))
        if self.proprio_dim:
            self.goal_proprio = self.proprio(self.goal_qpos, np.zeros(self.model.nv)).astype(np.float32)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = self.goal_qpos
        mujoco.mj_forward(self.model, self.data)
        self.goal_image = self._render_image()

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (self.model.nu,):
            raise ValueError(f"action must have shape ({self.model.nu},), got {np.shape(action)}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite, got {action.tolist()}")
        # Finite actions outside [-1, 1] are clipped (the gymnasium convention allows it; ctrlrange would too).
        self.data.ctrl[:] = np.clip(action, -1.0, 1.0)
        for w in _BAD_WARNINGS:  # mj_step counts these after its auto-reset; zero them to see new ones
            self.data.warning[w].number = 0
        for _ in range(self.frame_skip):
            mujoco.mj_step(self.model, self.data)
        self._failure = self._instability()
        mujoco.mj_forward(self.model, self.data)  # positions for rendering are those after the step
        observation = self._observation()
        info = self._info()
        terminated = bool(info["is_success"]) or self._failure is not None
        return observation, -info["distance"], terminated, False, info

    def render(self):
        if self._last_image is None:
            return self._render_image()
        return self._last_image.copy()

    def close(self):
        if getattr(self, "renderer", None) is not None:
            self.renderer.close()
            self.renderer = None

    # ---- oracle support ----------------------------------------------------------------------
    def get_sim_state(self) -> np.ndarray:
        """The full integration state (mjSTATE_INTEGRATION: time, qpos, qvel, act, warm start, ctrl, ...)."""
        size = mujoco.mj_stateSize(self.model, _INTEGRATION)
        state = np.empty(size, np.float64)
        mujoco.mj_getState(self.model, self.data, state, _INTEGRATION)
        return state

    def set_sim_state(self, state: np.ndarray) -> None:
        size = mujoco.mj_stateSize(self.model, _INTEGRATION)
        state = np.asarray(state, np.float64)
        if state.shape != (size,):
            raise ValueError(f"sim state must have shape ({size},) (from get_sim_state), got {state.shape}")
        mujoco.mj_setState(self.model, self.data, state, _INTEGRATION)
        mujoco.mj_forward(self.model, self.data)
        self._last_image = None

    @property
    def state(self) -> np.ndarray:
        return self.task_states(self.data.qpos, self.data.qvel)

    def simulate(self, sim_state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Roll the true physics out from ``sim_state`` for each action sequence, without rendering.

        actions ``(N, H, A)`` (clipped to [-1, 1]) -> task states ``(N, H, S)`` after each env step
        (``frame_skip`` physics steps each, exactly as ``step``). A sample whose physics diverged is NaN
        from that step on.
        """
        actions = np.asarray(actions, np.float64)
        if actions.ndim != 3 or actions.shape[-1] != self.model.nu:
            raise ValueError(f"actions must be (N, H, {self.model.nu}), got {actions.shape}")
        horizon = actions.shape[1]
        mujoco.mj_setState(self.model, self._scratch, np.asarray(sim_state, np.float64), _INTEGRATION)
        full = np.empty(mujoco.mj_stateSize(self.model, _FULLPHYSICS), np.float64)
        mujoco.mj_getState(self.model, self._scratch, full, _FULLPHYSICS)
        control = np.repeat(np.clip(np.nan_to_num(actions), -1.0, 1.0), self.frame_skip, axis=1)
        states, _ = mj_rollout.rollout(
            self.model,
            self._scratch,
            full[None],
            control,
            initial_warmstart=self._scratch.qacc_warmstart[None].copy(),
        )
        states = states[:, self.frame_skip - 1 :: self.frame_skip]  # (N, H, nstate): after each env step
        nq, nv = self.model.nq, self.model.nv
        qpos, qvel, time = states[..., 1 : 1 + nq], states[..., 1 + nq : 1 + nq + nv], states[..., 0]
        task = self.task_states(qpos, qvel)
        # mj_step resets the data when it diverges; time then jumps back.
        expected = full[0] + self.dt * np.arange(1, horizon + 1)
        bad = ~np.isclose(time, expected, atol=1e-6) | ~np.all(np.isfinite(task), axis=-1)
        bad = np.cumsum(bad, axis=1) > 0
        task[bad] = np.nan
        return task

    # ---- internals ---------------------------------------------------------------------------
    def _observation(self) -> np.ndarray | dict[str, np.ndarray]:
        image = self._render_image()
        if not self.proprio_dim:
            return image
        body = np.clip(self.proprio(self.data.qpos, self.data.qvel), -self.proprio_bound, self.proprio_bound)
        return {PIXELS: image, PROPRIO: body.astype(np.float32)}

    def _render_image(self) -> np.ndarray:
        self.renderer.update_scene(self.data, camera="top")
        self._last_image = self.renderer.render()
        return self._last_image.copy()

    def _instability(self) -> str | None:
        for w in _BAD_WARNINGS:
            if self.data.warning[w].number > 0:
                name = mujoco.mjtWarning(w).name.removeprefix("mjWARN_")
                return f"simulator instability: mujoco warning {name} (non-finite or huge state); the sim was reset"
        if not (np.all(np.isfinite(self.data.qpos)) and np.all(np.isfinite(self.data.qvel))):
            return "simulator instability: non-finite qpos/qvel"
        return None

    def _info(self) -> dict[str, Any]:
        state = self.state
        distance = float(self.task_distance(state, self.goal_state))
        info = {
            "goal_image": self.goal_image.copy(),
            **({"goal_proprio": self.goal_proprio.copy()} if self.proprio_dim else {}),
            "state": state,
            "goal_state": self.goal_state.copy(),
            "distance": distance,
            "is_success": bool(distance < self.success_threshold),
        }
        if self._failure is not None:
            info["failure"] = self._failure
            info["is_success"] = False
        return info
