"""Labelled still clips of Push-T for frozen evaluation: which way is the T turned?

``t_angle``: 8 classes, the T's angle in 45-degree sectors (class c: angles in ``[-pi + c * pi/4, -pi + (c+1) *
pi/4)``, pymunk's angle of the block). Each clip shows one table drawn by ``envs.pusht`` (the frames planning
encodes) and repeated over the clip's frames: the T at a position from gym-pusht's start range and an angle
uniform within its class's sector, the agent at rest somewhere clear of it. Labels take turns (``index %
classes``), so every split is balanced. A clip is a pure function of ``(seed, index)``.

The T's position is what the levels plan with most of the way; its angle is what coverage and pose success turn
on at the end (``docs/pusht.md``, "What the latents show of the T"). Needs ``gym-pusht`` (``pip install -e
'.[pusht]'``).
"""

from __future__ import annotations

import numpy as np

from envs.pusht import PushTGoalEnv

ANGLE_CLASSES = 8
START_PX = (100, 400)  # gym-pusht's start range of the T's centre, px


def angle_clip_state(seed: int, index: int, env: PushTGoalEnv) -> tuple[np.ndarray, int]:
    """(simulator state ``(10,)``, label) of clip ``index`` of split ``seed``."""
    rng = np.random.default_rng([seed, index])
    label = index % ANGLE_CLASSES
    angle = -np.pi + (label + rng.uniform()) * 2.0 * np.pi / ANGLE_CLASSES
    pose = np.array([*rng.integers(*START_PX, size=2), angle], np.float64)
    agent = env.free_agent_position(pose, rng)
    return np.array([agent[0], agent[1], 0.0, 0.0, *pose, 0.0, 0.0, 0.0], np.float64), label


def make_angle_clips(count: int, seed: int, image_size: int = 64, frames: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``count`` clips of split ``seed``: frames ``(count, frames, H, W, 3)`` uint8 and labels ``(count,)`` int64."""
    env = PushTGoalEnv(image_size=image_size)
    try:
        clips, labels = [], []
        for index in range(count):
            state, label = angle_clip_state(seed, index, env)
            env.set_sim_state(state)
            clips.append(np.repeat(env.render()[None], frames, axis=0))
            labels.append(label)
    finally:
        env.close()
    return np.stack(clips), np.asarray(labels, np.int64)
