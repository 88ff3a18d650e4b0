"""What identifies an env's code in the exploration cache key (``envs.exploration.cache_path``).

Our envs are covered by ``envs.exploration.DATA_VERSION``, bumped by hand, so their keys stay as they were. A
plug-in env is identified by its registration (gymnasium entry point and kwargs) and by a version: the env
class's ``cache_version`` attribute when it has one (the plug-in bumps it), else the SHA-256 of the source file
that defines the class, so editing that file never reuses data rendered by the old code.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any

import gymnasium as gym

import envs


def _entry_point_name(entry_point: Any) -> str:
    if isinstance(entry_point, str):
        return entry_point
    return f"{entry_point.__module__}:{entry_point.__qualname__}"


def _source_hash(creator: Any) -> str:
    try:
        path = inspect.getsourcefile(creator)
    except TypeError:
        path = None
    if path is None:
        raise ValueError(f"cannot hash the source of {creator!r} for the exploration cache key; give the env class "
                         "a `cache_version` attribute (bump it when the env changes)")
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def env_identity(name: str) -> dict[str, Any] | None:
    """None for our envs; for a plug-in env, its entry point, kwargs and ``cache_version`` or source hash."""
    if envs.is_builtin(name):
        return None
    spec = gym.spec(envs.gym_id(name))
    creator = gym.envs.registration.load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) \
        else spec.entry_point
    identity: dict[str, Any] = {"entry_point": _entry_point_name(spec.entry_point),
                                "kwargs": json.loads(json.dumps(spec.kwargs, sort_keys=True, default=repr))}
    version = getattr(creator, "cache_version", None)
    if version is not None:
        identity["cache_version"] = version
    else:
        identity["source_sha256"] = _source_hash(creator)
    return identity
