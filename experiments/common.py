"""What every command shares: headless rendering, the user-error boundary, the settings check, run directories."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # must precede any `import mujoco`

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from worldmodel.errors import UserError  # noqa: E402
from worldmodel.settings import problem  # noqa: E402

log = logging.getLogger("worldmodel")

# Errors the user can fix: printed as one line, no traceback. WORLDMODEL_DEBUG=1 re-raises them.
USER_ERRORS = (UserError, FileNotFoundError, ValueError)


def user_errors_as_one_line(main: Callable) -> Callable:
    """Wrap a Hydra task so a user-fixable error prints one line and exits with status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except USER_ERRORS as error:
            if os.environ.get("WORLDMODEL_DEBUG"):
                raise
            message = " ".join(str(error).split())
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def hydra_cli(config_name: str, task: Callable[[DictConfig], None],
              prepare: Callable[[list[str]], list[str]]) -> None:
    """Run ``task`` as the Hydra command ``configs/<config_name>.yaml`` once ``prepare`` has checked and rewritten
    the command line (e.g. to make plug-in options selectable); an error there prints one line and exits with 2."""
    try:
        sys.argv = [sys.argv[0], *prepare(sys.argv[1:])]
    except USER_ERRORS as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(2)
    hydra.main(version_base="1.3", config_path="../configs", config_name=config_name)(user_errors_as_one_line(task))()


def check_settings(cfg: DictConfig, schema: type) -> None:
    """Check ``cfg`` against what its schema (a dataclass, nested ones included) declares with
    ``worldmodel.settings.setting``; raises ValueError naming the first bad key, its value and what is accepted."""
    for key, value, metadata in _declared_settings(cfg, schema, ""):
        message = problem(key, value, metadata)
        if message is not None:
            raise ValueError(message)


def _declared_settings(cfg: DictConfig, schema: type, prefix: str) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(dotted key, value, metadata) of every field declared with ``setting``, walking into nested dataclasses."""
    hints = typing.get_type_hints(schema)
    for field in dataclasses.fields(schema):
        if field.name not in cfg or OmegaConf.is_missing(cfg, field.name):
            continue  # a missing mandatory value fails with its own message where it is read
        key = prefix + field.name
        if dataclasses.is_dataclass(hints[field.name]):
            yield from _declared_settings(cfg[field.name], hints[field.name], key + ".")
        elif "choices" in field.metadata:  # every ``setting`` field has the key, None when any value goes
            value = cfg[field.name]
            if OmegaConf.is_config(value):
                value = OmegaConf.to_container(value, resolve=True)
            yield key, value, field.metadata


def run_dir() -> Path:
    """The Hydra run directory of the current command (``hydra.run.dir``)."""
    return Path(HydraConfig.get().runtime.output_dir)


def pretrain_run(checkpoint: str | None, root: Path, required: str, make_it: str) -> Path:
    """``checkpoint`` when it is a run directory holding ``required`` (a file name), else the newest such run
    directory under ``root`` (``required`` may start with ``*/`` to look one level deeper); one-line errors
    naming the command that makes one (``make_it``)."""
    if checkpoint:
        if not (Path(checkpoint) / Path(required).name).is_file():
            raise FileNotFoundError(f"checkpoint={checkpoint} is not a pretrain run directory (no "
                                    f"{Path(required).name} in it); pass one made by {make_it}")
        return Path(checkpoint)
    runs = sorted((p.parent for p in root.glob(f"*/{required}")), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FileNotFoundError(f"no pretrain run under {root}/ (the default checkpoint); make one with {make_it} "
                                "or pass checkpoint=PATH")
    return runs[-1]
