"""Loads the optional package ``gym-pusht`` (LeRobot's Push-T) or says, in one line, how to install it.

``gym-pusht`` imports ``pygame`` (drawing only: ``SDL_VIDEODRIVER=dummy`` keeps it off any display) and
``cv2``. Its ``opencv-python`` needs the system's ``libGL.so.1`` and GLib, which a bare headless machine lacks;
``opencv-python-headless`` needs neither (docs/pusht.md).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from worldmodel.errors import UserError

INSTALL = "pip install -e '.[pusht]'"
MODULE = "gym_pusht.envs.pusht"


class PushTUnavailableError(UserError, ImportError):
    """``env=pusht`` was asked for but ``gym-pusht`` (or one of its dependencies) cannot be imported."""


def missing_message(exc: ImportError) -> str:
    """The one-line problem and fix for an ``ImportError`` raised while importing ``gym-pusht``."""
    name = getattr(exc, "name", None) or ""
    if name == "gym_pusht" or name.startswith("gym_pusht."):
        return f"env=pusht needs the optional package gym-pusht, which is not installed; install it with: {INSTALL}"
    reason = " ".join(str(exc).split())
    if "libGL" in reason or "libglib" in reason or "libgthread" in reason:
        fix = ("opencv-python needs the system's OpenGL and GLib: apt-get install libgl1 libglib2.0-0, "
               "or replace it with: pip uninstall -y opencv-python && pip install 'opencv-python-headless<5'")
    else:
        fix = f"reinstall it with: {INSTALL}"
    return f"env=pusht needs gym-pusht, which is installed but failed to import ({reason}); {fix}"


def load_pusht() -> ModuleType:
    """The module ``gym_pusht.envs.pusht``; raises ``PushTUnavailableError`` (one line, with the fix) if absent."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        return importlib.import_module(MODULE)
    except ImportError as exc:
        raise PushTUnavailableError(missing_message(exc)) from None
