"""Observations: an RGB image, or a dict of the image and the agent's proprioception.

An env that reports its agent's own body state (joint angles and velocities, a pusher's position and velocity;
never an object's state) observes ``{"pixels": (H, W, 3) uint8, "proprio": (P,) float32}``, the layout of
gymnasium's ``AddRenderObservation`` with the body state under ``"proprio"``. Pixel-only envs observe the image
itself. The goal comes in ``info`` the same way: ``goal_image`` and, with proprioception, ``goal_proprio``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PIXELS = "pixels"
PROPRIO = "proprio"
GOAL_IMAGE = "goal_image"
GOAL_PROPRIO = "goal_proprio"


class ObservationError(ValueError):
    """An observation is neither an image nor a dict with the image under ``pixels``."""


def split_observation(observation: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``(pixels (..., H, W, 3) uint8, proprio (..., P) float32 or None)`` of one observation (or a batch)."""
    if isinstance(observation, dict):
        if PIXELS not in observation:
            raise ObservationError(f"a dict observation needs the image under {PIXELS!r}; it has keys "
                                   f"{sorted(observation)}")
        proprio = observation.get(PROPRIO)
        return np.asarray(observation[PIXELS]), None if proprio is None else np.asarray(proprio, np.float32)
    return np.asarray(observation), None


def goal_observation(info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """``(goal image, goal proprio or None)`` from a reset ``info``."""
    if GOAL_IMAGE not in info:
        raise KeyError(f"info has no {GOAL_IMAGE!r}: this env does not say what its goal looks like")
    proprio = info.get(GOAL_PROPRIO)
    return np.asarray(info[GOAL_IMAGE]), None if proprio is None else np.asarray(proprio, np.float32)


def pixels_of(observation: Any) -> np.ndarray:
    """The image of an observation (itself, or its ``pixels``)."""
    return split_observation(observation)[0]


def proprio_dim(observation_space: Any) -> int:
    """The proprioception size an observation space offers (0 for pixels only)."""
    spaces = getattr(observation_space, "spaces", None)
    if isinstance(spaces, dict) and PROPRIO in spaces:
        return int(np.prod(spaces[PROPRIO].shape))
    return 0


def pixel_shape(observation_space: Any) -> tuple[int, ...]:
    """The image shape an observation space offers (``(H, W, 3)``)."""
    spaces = getattr(observation_space, "spaces", None)
    space = spaces[PIXELS] if isinstance(spaces, dict) and PIXELS in spaces else observation_space
    return tuple(getattr(space, "shape", ()) or ())
