"""What every command shares: headless rendering, the user-error boundary, run directories."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # must precede any `import mujoco`

from worldmodel.errors import UserError  # noqa: E402

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


def run_dir() -> Path:
    """The Hydra run directory of the current command (``hydra.run.dir``)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def newest_run(root: Path, required: str) -> Path:
    """The most recent run directory under ``root`` that contains ``required``."""
    candidates = sorted((p.parent for p in root.glob(f"*/{required}")), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise FileNotFoundError(
            f"no run with {required} under {root}; run `python -m experiments.pretrain` first "
            f"or pass checkpoint=PATH")
    return candidates[-1]
