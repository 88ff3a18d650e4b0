"""Goal-conditioned environments from pixels (MuJoCo, and Push-T), registered with gymnasium under ``worldmodel/``.

``make(name)`` takes a Hydra name (``pointmass_open``, ``pointmass_tworooms``, ``pointmass_maze``,
``pointmass_serpentine``, ``reacher``, ``pusher``, ``pusht``) and returns ``gym.make`` of its id (with the
``TimeLimit`` of the registration). ``pusht`` wraps the optional package ``gym-pusht`` (``envs.pusht``): without
it, making it raises a one-line ``PushTUnavailableError`` with the install command.

Plug-ins: a third-party package declares an entry point in the group ``worldmodel.envs``::

    [project.entry-points."worldmodel.envs"]
    my_envs = "my_pkg.envs:register"

``load_plugins()`` loads and calls each such callable (no arguments). The callable registers its envs
with ``gymnasium.register(...)`` and makes them known by name in one of two ways: it calls
``envs.register_env(name, gym_id)`` for each, or it returns a ``dict[name, gym_id]``. Either way
``make(name)`` then works for them. ``make`` and ``gym_id`` load the plug-ins themselves when a name is not
known yet, so a spawned worker process finds a plug-in env without further setup.

What an env must offer, and what each optional piece unlocks: ``envs.contract`` (``check_env_contract``).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # read at `import mujoco`: set it before anything imports mujoco

import logging
from importlib.metadata import entry_points
from typing import Any

import gymnasium as gym

log = logging.getLogger(__name__)

PLUGIN_GROUP = "worldmodel.envs"

# Hydra name -> gymnasium id. Plug-ins extend it through register_env.
ENV_IDS: dict[str, str] = {
    "pointmass_open": "worldmodel/PointMassOpen-v0",
    "pointmass_tworooms": "worldmodel/PointMassTwoRooms-v0",
    "pointmass_maze": "worldmodel/PointMassMaze-v0",
    "pointmass_serpentine": "worldmodel/PointMassSerpentine-v0",
    "reacher": "worldmodel/Reacher-v0",
    "pusher": "worldmodel/Pusher-v0",
    "pusht": "worldmodel/PushT-v0",
}

_REGISTRATIONS: dict[str, tuple[str, int, dict[str, Any]]] = {
    "worldmodel/PointMassOpen-v0": ("envs.pointmass:PointMassEnv", 100, {"layout": "open"}),
    "worldmodel/PointMassTwoRooms-v0": ("envs.pointmass:PointMassEnv", 200, {"layout": "tworooms"}),
    "worldmodel/PointMassMaze-v0": ("envs.pointmass:PointMassEnv", 200, {"layout": "maze"}),
    "worldmodel/PointMassSerpentine-v0": ("envs.pointmass:PointMassEnv", 400, {"layout": "serpentine"}),
    "worldmodel/Reacher-v0": ("envs.reacher:ReacherEnv", 100, {}),
    "worldmodel/Pusher-v0": ("envs.pusher:PusherEnv", 200, {}),
    "worldmodel/PushT-v0": ("envs.pusht:PushTGoalEnv", 300, {}),  # gym-pusht's own time limit
}


def _register_builtin() -> None:
    for gym_id, (entry_point, max_steps, kwargs) in _REGISTRATIONS.items():
        if gym_id not in gym.registry:
            gym.register(id=gym_id, entry_point=entry_point, max_episode_steps=max_steps, kwargs=kwargs)


def register_env(name: str, gym_id: str) -> None:
    """Make the gymnasium id ``gym_id`` (already registered) available as ``make(name)``."""
    if name in ENV_IDS and ENV_IDS[name] != gym_id:
        raise ValueError(f"env name {name!r} is already taken by {ENV_IDS[name]!r}; pick another name")
    ENV_IDS[name] = gym_id


def load_plugins() -> list[str]:
    """Call every ``worldmodel.envs`` entry point; returns the names of the plug-ins loaded.

    A plug-in that fails to import or to register is logged and skipped, never fatal.
    """
    loaded = []
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            names = ep.load()()
            if isinstance(names, dict):
                for name, gym_id in names.items():
                    register_env(name, gym_id)
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not take the built-in envs down
            log.warning("env plug-in %r (%s) failed to load: %s", ep.name, ep.value, exc)
            continue
        loaded.append(ep.name)
    return loaded


def gym_id(name: str) -> str:
    """The gymnasium id of the env known as ``name``, loading the plug-ins first when ``name`` is not known yet."""
    if name not in ENV_IDS:
        load_plugins()
    if name not in ENV_IDS:
        raise ValueError(f"unknown env {name!r}; choose one of: {', '.join(sorted(ENV_IDS))} "
                         f"(or install a package with a {PLUGIN_GROUP!r} entry point)")
    return ENV_IDS[name]


def is_builtin(name: str) -> bool:
    """Whether ``name`` is one of this repository's envs (not a plug-in's)."""
    return ENV_IDS.get(name) in _REGISTRATIONS


def make(name: str, **kwargs: Any) -> gym.Env:
    """``gym.make`` the env known as ``name`` (kwargs go to the env, e.g. ``image_size=64``).

    Raises ValueError in one line when the env's constructor does not take one of ``kwargs``.
    """
    try:
        return gym.make(gym_id(name), **kwargs)
    except TypeError as error:
        unknown = [key for key in kwargs if f"argument '{key}'" in str(error)]
        if not unknown:
            raise
        raise ValueError(f"env {name!r} does not take {unknown[0]}=: its constructor must accept it "
                         "(docs/plugins.md, the env contract)") from None


_register_builtin()

__all__ = ["ENV_IDS", "PLUGIN_GROUP", "gym_id", "is_builtin", "load_plugins", "make", "register_env"]
