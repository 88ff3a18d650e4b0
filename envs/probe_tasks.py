"""The labelled clip sets ``experiments.probe`` trains attentive probes on, by task name.

``direction`` and ``contact``: the point-mass arena (``envs.probe_scenes``); ``t_angle``: which way the T is
turned on the Push-T table (``envs.pusht_probe_scenes``, needs ``gym-pusht``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from envs.probe_scenes import PROBE_TASKS as ARENA_TASKS
from envs.probe_scenes import make_probe_clips
from envs.pusht_probe_scenes import ANGLE_CLASSES, make_angle_clips


@dataclass(frozen=True)
class ClipTask:
    classes: int
    # (count, seed, image_size, frames) -> clips (count, frames, H, W, 3) uint8 and labels (count,) int64
    make_clips: Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray]]


CLIP_TASKS: dict[str, ClipTask] = {
    **{name: ClipTask(classes, partial(make_probe_clips, name)) for name, classes in ARENA_TASKS.items()},
    "t_angle": ClipTask(ANGLE_CLASSES, make_angle_clips),
}
