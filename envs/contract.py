"""The env contract: what every env (ours or a plug-in's) must offer, and what each optional piece unlocks.

``check_env_contract(env)`` resets the env, takes one step and returns one ``Piece`` per item below, each marked
present or missing; ``require_env_contract(env)`` raises a one-line ``ValueError`` when a required piece is
missing, and ``check_named_env(name, image_size)`` does so for a registered env and logs what it lacks (the
pretrain command runs it first). ``python -m envs.contract NAME`` prints the list for an env (plug-ins included).

Required: pixel observations ``(S, S, 3) uint8`` (or a dict with them under ``pixels``), a 1-D ``Box`` action
space, and ``info`` after ``reset`` and ``step`` holding ``goal_image`` (the observation's shape), ``distance``
(float) and ``is_success`` (bool). Optional pieces live in ``info`` or on ``env.unwrapped``; ``OPTIONAL`` says
what each one unlocks (and so what its absence costs).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from worldmodel.observations import PIXELS, PROPRIO, pixel_shape, split_observation

log = logging.getLogger(__name__)
TASK_STATES = "info state, goal_state"
TASK_DISTANCE = "task_distance(states, goal_state)"

# name -> what the piece unlocks; the pipeline skips exactly that (with a logged reason) when it is missing
OPTIONAL: dict[str, str] = {
    TASK_STATES: "task states stored with the exploration data (else 0-dim states), which the "
                              "uses of task_distance below read",
    TASK_DISTANCE: "the task stage (env.planning_cost=task) and the evaluation of the "
                                         "planning costs against the true distance in pretrain",
    "get_sim_state, simulate": "agent=oracle (with task_distance) and, get_sim_state with "
                               "reset(options={'start', 'goal'}), plan goal_steps=",
    "proprio observation and info goal_proprio": "proprioception: the world model reads the body state "
                                                 "besides the pixels",
    "is_free(position, margin=)": "geodesic distances in pretrain's cost evaluation (position = state[:2])",
    "render_at(position)": "pretrain's cost-basin, position-resolution and smoothness evaluations (with "
                           "is_free and the metric stage)",
    "shaping(states)": "a state cost added to the task distance (the task stage learns it, the oracle uses it, the "
                       "latent agents weigh it by shaping_weight)",
    "object_off_table(states)": "the exploration record's share of frames and episodes that lose the object off "
                                "the table",
    "state_dim, frame_skip, dt, success_threshold": "these facts in the exploration metadata as the env states "
                                                    "them (else: from the data, from metadata['render_fps'], "
                                                    "or null)",
    "cache_version": "a cache key the plug-in controls (else the exploration cache key hashes the env class's "
                     "source file)",
}


@dataclass(frozen=True)
class Piece:
    """One item of the contract: ``name``, whether it is ``required``, whether the env has it (``present``) and
    what it unlocks or, for a required piece, what is wrong (``note``); ``problem``: why an optional piece the env
    has is unusable (it then counts as not present)."""

    name: str
    required: bool
    present: bool
    note: str
    problem: str = ""


def _methods(env: Any, *names: str) -> bool:
    return all(callable(getattr(env, name, None)) for name in names)


def _pixel_dtype(observation_space: Any) -> Any:
    spaces = getattr(observation_space, "spaces", None)
    space = spaces[PIXELS] if isinstance(spaces, dict) and PIXELS in spaces else observation_space
    return getattr(space, "dtype", None)


def _holds(check: Any, value: Any) -> bool:
    try:
        return bool(check(value))
    except (TypeError, ValueError):
        return False


def _required(env: Any) -> tuple[list[Piece], dict[str, Any]]:
    """The required pieces, and the ``info`` of a reset (empty when reset or step raised)."""
    shape = pixel_shape(env.observation_space)
    square_rgb = len(shape) == 3 and shape[0] == shape[1] and shape[2] == 3
    pixels_ok = square_rgb and _pixel_dtype(env.observation_space) == np.uint8
    action = env.action_space
    action_ok = isinstance(action, gym.spaces.Box) and len(action.shape) == 1
    pieces = [Piece("pixel observation (S, S, 3) uint8", True, pixels_ok,
                    f"observation space is {env.observation_space}"),
              Piece("1-D Box action space", True, action_ok, f"action space is {action}")]
    try:
        observation, reset_info = env.reset(seed=0)
        _, _, _, _, step_info = env.step(action.sample())
    except Exception as exc:  # noqa: BLE001 - reported as a missing piece, not raised
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        return pieces + [Piece("reset(seed=) and step(action)", True, False, f"raised {reason}")], {}
    infos = {"reset": reset_info, "step": step_info}
    pixels = split_observation(observation)[0]
    if pixels_ok and (np.asarray(pixels).dtype != np.uint8 or np.shape(pixels) != tuple(shape)):
        pieces[0] = Piece(pieces[0].name, True, False, f"reset returned pixels {np.asarray(pixels).dtype} "
                          f"{np.shape(pixels)}, not what the observation space {env.observation_space} says")
    for key, check in (("goal_image", lambda v: np.shape(v) == np.shape(pixels)),
                       ("distance", lambda v: np.ndim(v) == 0 and np.isfinite(float(v))),
                       ("is_success", lambda v: isinstance(v, (bool, np.bool_)))):
        bad = [when for when, info in infos.items() if key not in info or not _holds(check, info[key])]
        pieces.append(Piece(f"info {key}", True, not bad, f"absent or malformed after {' and '.join(bad)}"))
    return pieces, reset_info


def _optional(env: Any, info: dict[str, Any]) -> list[Piece]:
    unwrapped = env.unwrapped
    spaces = getattr(env.observation_space, "spaces", None)
    present = {
        TASK_STATES: "state" in info and "goal_state" in info,
        TASK_DISTANCE: _methods(unwrapped, "task_distance"),
        "get_sim_state, simulate": _methods(unwrapped, "get_sim_state", "simulate"),
        "proprio observation and info goal_proprio": isinstance(spaces, dict) and PROPRIO in spaces
                                                     and "goal_proprio" in info,
        "is_free(position, margin=)": _methods(unwrapped, "is_free"),
        "render_at(position)": _methods(unwrapped, "render_at"),
        "shaping(states)": _methods(unwrapped, "shaping"),
        "object_off_table(states)": _methods(unwrapped, "object_off_table"),
        "state_dim, frame_skip, dt, success_threshold": all(
            hasattr(unwrapped, a) for a in ("state_dim", "frame_skip", "dt", "success_threshold")),
        "cache_version": hasattr(unwrapped, "cache_version"),
    }
    problems = {"get_sim_state, simulate": _simulate_problem(unwrapped, env.action_space, info)
                if present["get_sim_state, simulate"] else ""}
    return [Piece(name, False, present[name] and not problems.get(name), unlocks, problems.get(name, ""))
            for name, unlocks in OPTIONAL.items()]


def _simulate_problem(env: Any, action_space: Any, info: dict[str, Any]) -> str:
    """Why ``simulate`` cannot serve the oracle (it must map ``(N, H, A)`` actions to ``(N, H, S)`` task states),
    or ``""``."""
    state_size = np.shape(info.get("state", ()))[-1:] if "state" in info else ()
    try:
        states = np.asarray(env.simulate(env.get_sim_state(), np.zeros((1, 2, *action_space.shape), np.float32)))
    except Exception as exc:  # noqa: BLE001 - reported as a problem of the piece
        return "simulate(get_sim_state(), actions (1, 2, A)) raised " + " ".join(f"{type(exc).__name__}: {exc}".split())
    if states.shape[:2] != (1, 2) or states.ndim != 3 or (state_size and states.shape[2:] != state_size):
        expected = f"(1, 2, {state_size[0]})" if state_size else "(1, 2, S)"
        return f"simulate(get_sim_state(), actions (1, 2, A)) returned shape {states.shape}, expected {expected}"
    return ""


def check_env_contract(env: Any) -> list[Piece]:
    """Every piece of the contract for ``env`` (a gymnasium env, wrapped or not), present or missing.

    Resets the env (``seed=0``) and takes one random step.
    """
    required, info = _required(env)
    return required + _optional(env, info)


def missing_required(pieces: list[Piece]) -> list[Piece]:
    return [p for p in pieces if p.required and not p.present]


def format_contract(pieces: list[Piece]) -> str:
    """One line per piece: ``ok``/``MISSING``/``absent``, its name, and what it unlocks or what is wrong."""
    lines = []
    for p in pieces:
        if p.required:
            lines.append(f"  required  {'ok     ' if p.present else 'MISSING'}  {p.name}"
                         + ("" if p.present else f": {p.note}"))
        elif p.problem:
            lines.append(f"  optional  WRONG    {p.name}: {p.problem}; it would give: {p.note}")
        else:
            lines.append(f"  optional  {'ok     ' if p.present else 'absent '}  {p.name}"
                         + ("" if p.present else f"; it would give: {p.note}"))
    return "\n".join(lines)


def require_env_contract(env: Any, name: str) -> list[Piece]:
    """``check_env_contract`` that raises a one-line ``ValueError`` naming the missing required pieces."""
    pieces = check_env_contract(env)
    bad = missing_required(pieces)
    if bad:
        raise ValueError(f"env {name!r} breaks the env contract: " + "; ".join(f"{p.name} ({p.note})" for p in bad)
                         + "; see docs/plugins.md, or `python -m envs.contract " + name + "`")
    return pieces


def check_named_env(name: str, image_size: int) -> list[Piece]:
    """Make the env ``name`` and check its contract: a missing required piece raises (one line), each missing
    optional piece is logged with what it would unlock."""
    import envs

    env = envs.make(name, image_size=image_size)
    try:
        pieces = require_env_contract(env, name)
    finally:
        env.close()
    for piece in pieces:
        if not piece.present:
            log.info("env %s has no %s; it would give: %s", name, piece.name, piece.note)
    return pieces


def main(argv: list[str]) -> int:
    """``python -m envs.contract NAME [image_size]``: print the contract list for an env; status 1 if broken."""
    import envs

    if not argv:
        print("usage: python -m envs.contract NAME [IMAGE_SIZE]", file=sys.stderr)
        return 2
    env = envs.make(argv[0], image_size=int(argv[1]) if len(argv) > 1 else 64)
    pieces = check_env_contract(env)
    env.close()
    print(f"env {argv[0]!r} ({envs.gym_id(argv[0])}):\n{format_contract(pieces)}")
    return 1 if missing_required(pieces) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
