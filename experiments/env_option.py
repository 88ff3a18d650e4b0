"""``env=NAME`` for every registered env, ours or a plug-in's: the one mechanism ``pretrain``, ``plan`` and
``benchmark`` share.

An env with ``configs/env/NAME.yaml`` is selected by it. Any other registered env (``envs.ENV_IDS`` after the
``worldmodel.envs`` plug-ins are loaded) becomes a config-group option holding only its name, so it gets the
``EnvConfig`` schema's defaults (``env.KEY=VALUE`` on the command line sets the rest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

import envs

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def override_value(argv: list[str], key: str) -> str | None:
    """The value of ``key=VALUE`` in a Hydra command line (the last one wins), or None."""
    values = [a.split("=", 1)[1] for a in argv if a.split("=", 1)[0].lstrip("+~") == key and "=" in a]
    return values[-1] if values else None


def env_agent_params(env_name: str, agent_name: str) -> dict[str, Any]:
    """The agent settings ``configs/env/NAME.yaml`` gives ``agent_name`` (its ``agents`` section), or none."""
    path = CONFIGS / "env" / f"{env_name}.yaml"
    if not path.is_file():
        return {}
    agents = OmegaConf.load(path).get("agents") or {}
    return OmegaConf.to_container(agents.get(agent_name) or OmegaConf.create({}), resolve=True)


def register_env_option(argv: list[str]) -> list[str]:
    """Make the ``env=NAME`` of ``argv`` selectable (see the module docstring) and return ``argv`` unchanged.

    Raises ValueError listing the known envs when NAME is neither a config file nor a registered env.
    """
    name = override_value(argv, "env")
    if name is None or (CONFIGS / "env" / f"{name}.yaml").is_file():
        return argv
    envs.gym_id(name)  # loads the plug-ins; an unknown name fails in one line
    ConfigStore.instance().store(group="env", name=name, node={"name": name})
    return argv
