"""The agent registry: our agents by name, third-party agents by entry point or dotted path.

Resolution order for ``make_agent(name, env, **params)``:

1. our agents, registered with ``@register_agent("name")`` (``AGENTS``);
2. entry points in the group ``worldmodel.agents`` of installed packages (the entry point's name is the
   agent name, it loads to the agent class), loaded lazily: only the requested one is imported, so a
   broken plug-in cannot break the others;
3. a dotted path ``"pkg.module:Class"`` or ``"pkg.module.Class"`` (a Hydra-style ``_target_``), also
   available directly as ``make_agent_from_target``.

Every agent is constructed as ``AgentClass(env=env, **params)`` (see ``agents.base``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import gymnasium as gym

from agents.base import Agent

ENTRY_POINT_GROUP = "worldmodel.agents"

# Keywords the framework may offer to every agent; passed only to classes whose signature names them.
CONTEXT_KEYWORDS = frozenset({"world_model", "device"})

AGENTS: dict[str, type] = {}


def register_agent(name: str) -> Callable[[type], type]:
    """Class decorator: make ``cls`` available as ``make_agent(name, env, ...)``."""

    def decorator(cls: type) -> type:
        if name in AGENTS and AGENTS[name] is not cls:
            raise ValueError(f"agent name {name!r} is already registered to {AGENTS[name].__qualname__}")
        AGENTS[name] = cls
        return cls

    return decorator


def _plugin_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_agents() -> list[str]:
    """Names usable with ``make_agent``: ours and those of installed plug-ins (not imported)."""
    return sorted(set(AGENTS) | set(_plugin_entry_points()))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _looks_like_target(name: str) -> bool:
    return ":" in name or "." in name


def resolve_agent(name: str) -> type:
    """The agent class for ``name`` (see the module docstring for the order); ``ValueError`` if none."""
    if name in AGENTS:
        return AGENTS[name]
    plugins = _plugin_entry_points()
    if name in plugins:
        ep = plugins[name]
        try:
            return ep.load()
        except Exception as exc:
            dist = f" (package {ep.dist.name})" if getattr(ep, "dist", None) is not None else ""
            raise ValueError(
                f"agent {name!r} from plug-in entry point {ep.value!r}{dist} failed to load: {_one_line(exc)}"
            ) from exc
    if _looks_like_target(name):
        return _import_target(name)
    raise ValueError(
        f"unknown agent {name!r}; choose one of: {', '.join(available_agents())} "
        f"(or install a package that registers one in the {ENTRY_POINT_GROUP!r} entry-point group)"
    )


def _import_target(target: str) -> type:
    """Import ``"pkg.module:Class"`` or ``"pkg.module.Class"`` (attributes may be nested: ``mod:A.B``)."""
    if ":" in target:
        module_name, _, attr_path = target.partition(":")
    else:
        module_name, _, attr_path = target.rpartition(".")
    if not module_name or not attr_path:
        raise ValueError(f"agent target {target!r} must look like 'pkg.module:Class' or 'pkg.module.Class'")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr_path.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise ValueError(f"agent target {target!r} could not be imported: {_one_line(exc)}") from exc
    return obj


def _construct(label: str, cls: Any, env: gym.Env, params: dict[str, Any]) -> Agent:
    if not callable(cls):
        raise TypeError(f"agent {label!r} resolved to {cls!r}, which is not a class")
    qualname = getattr(cls, "__qualname__", repr(cls))
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # builtins without a signature: pass everything
        signature = None
    kwargs = {"env": env, **params}
    if signature is not None:
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
        accepted = {
            n
            for n, p in signature.parameters.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }
        if not accepts_any:
            if "env" not in accepted:
                raise TypeError(f"agent {label!r} ({qualname}) must accept an 'env' keyword argument")
            kwargs = {k: v for k, v in kwargs.items() if k in accepted or k not in CONTEXT_KEYWORDS}
            unknown = sorted(set(kwargs) - accepted)
            if unknown:
                choices = ", ".join(sorted(accepted - {"env"} - CONTEXT_KEYWORDS)) or "(none)"
                raise ValueError(
                    f"agent {label!r} does not accept parameter(s) {', '.join(unknown)}; it accepts: {choices}"
                )
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            raise ValueError(f"agent {label!r} cannot be constructed: {_one_line(exc)}") from exc
    agent = cls(**kwargs)
    if not isinstance(agent, Agent):
        raise TypeError(
            f"agent {label!r} ({type(agent).__qualname__}) does not follow the Agent protocol: "
            "it needs reset(observation, info) and act(observation)"
        )
    return agent


def make_agent(name: str, env: gym.Env, **params: Any) -> Agent:
    """Construct agent ``name`` as ``AgentClass(env=env, **params)``.

    ``params`` the class does not accept raise a one-line ``ValueError`` listing the accepted ones,
    except the framework's ``CONTEXT_KEYWORDS`` (e.g. ``world_model``), which are silently dropped.
    """
    return _construct(name, resolve_agent(name), env, params)


def make_agent_from_target(target: str, env: gym.Env, **params: Any) -> Agent:
    """Construct the class at the dotted path ``target`` (``"pkg.module:Class"`` or ``"pkg.module.Class"``)."""
    return _construct(target, _import_target(target), env, params)
