"""Labelled synthetic clips for frozen evaluation, rendered from the ``pointmass_tworooms`` arena.

The stage (``assets/probe_tworooms.xml``) looks exactly like the pretraining env: dark floor, white outer
walls, a divider at x = 0 with a doorway at its top end, a red ball, the same top camera. Nothing is
simulated: the ball glides at constant velocity and a wall stops its normal motion (inelastic, frictionless
contact, as in the pretraining env: it slides along the wall; the ball is a disc of radius ``BALL_RADIUS``,
the walls are boxes grown by that radius); its position is set per frame and rendered.
Speeds (0.04-0.09 m per frame) are the exploration data's median to 90th percentile per env step, the
rate the video stage sees (``frame_step: 1`` in ``configs/data/sim.yaml``).

Every clip is a pure function of ``(seed, index)``: splits differ by seed, and the clip count never
changes which clip an index gets.

Probe tasks (``make_probe_clips``):
  ``direction``: 4 classes, the heading of the motion (0 = +x/right, 1 = +y/up, 2 = -x/left, 3 = -y/down,
      each a 60-degree sector); the clip has no collision, so the heading is constant.
  ``contact``: 2 classes, whether the ball runs into a wall during the clip (first contact between
      frames 2 and 6, so it is visible on both sides), heading uniform.
  Labels take turns (``index % classes``), so every split is balanced.

Violation-of-expectation pairs (``make_physics_pairs``): a plausible clip and an implausible twin with
the same first k frames (k >= 4, i.e. at least the first two tubelets), different from frame k on:
  ``teleport``: the ball jumps >= 0.6 m at frame k and glides on;
  ``pass_through``: the plausible ball is stopped by the divider at frame k, the implausible one goes through;
  ``permanence``: IntPhys's content-matched quadruplet, two pairs in one group: (ball throughout vs ball
      vanishes at k) and (no ball vs ball appears at k). A vanished ball's future is simply easier to
      predict (less content), so only the group sum is a fair comparison: the two implausible clips have
      the same futures as the two plausible ones, swapped.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # must precede `import mujoco`

from pathlib import Path

import mujoco
import numpy as np

ASSET = Path(__file__).parent / "assets" / "probe_tworooms.xml"
BALL_RADIUS = 0.08
ARENA = 1.0  # inner faces of the outer walls at |x| = |y| = 1
# The divider box (x half-width 0.04, y from -1 to 0.72), grown by the ball radius: the ball's centre
# may not enter it.
DIVIDER = (-0.04 - BALL_RADIUS, 0.04 + BALL_RADIUS, -ARENA, 0.72 + BALL_RADIUS)
HIDDEN = (10.0, 10.0)  # a ball placed here is outside the camera's view
FRAMES = 8
SPEED = (0.04, 0.09)  # metres per frame
SUBSTEPS = 16
# Walls stop the ball (inelastic, frictionless contact), as they do in pointmass_tworooms.
RESTITUTION = 0.0
PROBE_TASKS = {"direction": 4, "contact": 2}
VIOLATIONS = ("permanence", "teleport", "pass_through")


def in_free_space(p: np.ndarray, divider: bool = True) -> bool:
    """Whether a ball centred at ``p`` (2,) overlaps no wall."""
    lim = ARENA - BALL_RADIUS
    if abs(p[0]) > lim or abs(p[1]) > lim:
        return False
    x0, x1, y0, y1 = DIVIDER
    return not (divider and x0 < p[0] < x1 and y0 < p[1] < y1)


def glide(start: np.ndarray, velocity: np.ndarray, frames: int = FRAMES, divider: bool = True,
          restitution: float = RESTITUTION) -> tuple[np.ndarray, list[int]]:
    """Constant-velocity motion with wall contacts -> (positions (frames, 2), frames at which it hit a wall).

    At a contact the normal velocity is multiplied by ``-restitution`` (0: the ball stops against the wall
    and slides along it, as in the pretraining env; 1: elastic bounce); the tangential velocity is kept.
    ``divider=False`` lets the ball pass through the divider (outer walls still stop it).
    A hit "at frame f" happened between frames f - 1 and f.
    """
    e = restitution
    pos, vel = np.array(start, float), np.array(velocity, float)
    lim = ARENA - BALL_RADIUS
    x0, x1, y0, y1 = DIVIDER
    positions, hits = [pos.copy()], []
    for frame in range(1, frames):
        hit = False
        for _ in range(SUBSTEPS):
            prev, pos = pos, pos + vel / SUBSTEPS
            for axis in (0, 1):
                if abs(pos[axis]) > lim:
                    edge = np.sign(pos[axis]) * lim
                    pos[axis], vel[axis] = edge - e * (pos[axis] - edge), -e * vel[axis]
                    hit = True
            if divider and x0 < pos[0] < x1 and y0 < pos[1] < y1:
                if prev[1] >= y1:  # came over the top end of the divider
                    pos[1], vel[1] = y1 - e * (pos[1] - y1), -e * vel[1]
                else:  # came from the side
                    edge = x0 if prev[0] <= x0 else x1
                    pos[0], vel[0] = edge - e * (pos[0] - edge), -e * vel[0]
                hit = True
        positions.append(pos.copy())
        if hit:
            hits.append(frame)
    return np.stack(positions), hits


def _random_start(rng: np.random.Generator) -> np.ndarray:
    while True:
        p = rng.uniform(-ARENA + BALL_RADIUS, ARENA - BALL_RADIUS, 2)
        if in_free_space(p):
            return p


def _velocity(rng: np.random.Generator, angle: float) -> np.ndarray:
    return rng.uniform(*SPEED) * np.array([np.cos(angle), np.sin(angle)])


class ProbeRenderer:
    """Renders ball positions in the tworooms arena: (T, 2) positions -> (T, H, W, 3) uint8 frames.

    A NaN position hides the ball. Shadows, reflections and multisampling are off.
    """

    def __init__(self, image_size: int = 64):
        self.model = mujoco.MjModel.from_xml_path(str(ASSET))
        self.model.vis.quality.offsamples = 0
        self.data = mujoco.MjData(self.model)
        self.renderer = mujoco.Renderer(self.model, image_size, image_size)
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        self.image_size = image_size

    def render(self, positions: np.ndarray) -> np.ndarray:
        frames = np.empty((len(positions), self.image_size, self.image_size, 3), np.uint8)
        for i, p in enumerate(positions):
            self.data.qpos[:] = HIDDEN if np.isnan(p).any() else p
            mujoco.mj_kinematics(self.model, self.data)
            mujoco.mj_camlight(self.model, self.data)  # camera and light poses for rendering
            self.renderer.update_scene(self.data, camera="top")
            frames[i] = self.renderer.render()
        return frames

    def close(self) -> None:
        self.renderer.close()


def probe_trajectory(task: str, seed: int, index: int, frames: int = FRAMES) -> tuple[np.ndarray, int]:
    """The ball positions (frames, 2) and label of clip ``index`` of split ``seed`` for ``task``."""
    if task not in PROBE_TASKS:
        raise ValueError(f"unknown probe task {task!r}; choose from {', '.join(PROBE_TASKS)}")
    rng = np.random.default_rng([seed, index, list(PROBE_TASKS).index(task)])
    label = index % PROBE_TASKS[task]  # classes take turns, so every split is balanced
    while True:
        start = _random_start(rng)
        if task == "direction":
            angle = label * np.pi / 2 + rng.uniform(-np.pi / 6, np.pi / 6)
        else:
            angle = rng.uniform(0, 2 * np.pi)
        positions, hits = glide(start, _velocity(rng, angle), frames)
        if task == "direction" and not hits:
            return positions, label
        if task == "contact" and (bool(hits) == bool(label)) and (not hits or 2 <= hits[0] <= frames - 2):
            return positions, label


def make_probe_clips(task: str, count: int, seed: int, image_size: int = 64, frames: int = FRAMES,
                     renderer: ProbeRenderer | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``count`` clips of split ``seed``: frames (count, T, H, W, 3) uint8 and labels (count,) int64."""
    own = renderer is None
    renderer = renderer or ProbeRenderer(image_size)
    try:
        clips, labels = [], []
        for index in range(count):
            positions, label = probe_trajectory(task, seed, index, frames)
            clips.append(renderer.render(positions))
            labels.append(label)
    finally:
        if own:
            renderer.close()
    return np.stack(clips), np.asarray(labels, np.int64)


def physics_pair(kind: str, seed: int, index: int, frames: int = FRAMES,
                 first_violation: int = 4) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """([(plausible (frames, 2), implausible (frames, 2)), ...], violation frame k): each pair is equal
    before k and not from k on; ``permanence`` gives two pairs (a group), the other kinds one.

    k is drawn in [first_violation, frames - 2]. NaN rows mean the ball is hidden.
    """
    if kind not in VIOLATIONS:
        raise ValueError(f"unknown violation {kind!r}; choose from {', '.join(VIOLATIONS)}")
    if not 1 <= first_violation <= frames - 2:
        raise ValueError(f"first_violation must be in [1, {frames - 2}] for {frames} frames, got {first_violation}")
    rng = np.random.default_rng([seed, index, 100 + VIOLATIONS.index(kind)])
    k = int(rng.integers(first_violation, frames - 1))
    while True:
        start = _random_start(rng)
        velocity = _velocity(rng, rng.uniform(0, 2 * np.pi))
        plausible, hits = glide(start, velocity, frames)
        if kind == "permanence":
            vanishes, absent, appears = plausible.copy(), np.full_like(plausible, np.nan), plausible.copy()
            vanishes[k:] = np.nan
            appears[:k] = np.nan
            return [(plausible, vanishes), (absent, appears)], k
        if kind == "teleport":
            jumped = _random_start(rng)
            if np.linalg.norm(jumped - plausible[k]) < 0.6:
                continue
            rest, _ = glide(jumped, velocity, frames - k)
            return [(plausible, np.concatenate([plausible[:k], rest]))], k
        # pass_through: the first hit is on the divider at frame k, and the ball would cross it.
        through, through_hits = glide(start, velocity, frames, divider=False)
        if not hits or hits[0] != k or (through_hits and through_hits[0] <= k):
            continue
        if np.sign(through[-1, 0]) == np.sign(start[0]):  # must end up on the far side of the divider
            continue
        return [(plausible, through)], k


def make_physics_pairs(count: int, seed: int, kinds: tuple[str, ...] = VIOLATIONS, image_size: int = 64,
                       frames: int = FRAMES, first_violation: int = 4,
                       renderer: ProbeRenderer | None = None) -> dict[str, np.ndarray]:
    """``count`` groups per kind -> ``plausible`` and ``implausible`` (P, T, H, W, 3) uint8, ``kind`` (P,) str,
    ``group`` (P,) int64 (pairs scored together), ``violation_frame`` (P,) int64."""
    own = renderer is None
    renderer = renderer or ProbeRenderer(image_size)
    out: dict[str, list] = {"plausible": [], "implausible": [], "kind": [], "group": [], "violation_frame": []}
    group = 0
    try:
        for kind in kinds:
            for index in range(count):
                pairs, k = physics_pair(kind, seed, index, frames, first_violation)
                for plausible, implausible in pairs:
                    out["plausible"].append(renderer.render(plausible))
                    out["implausible"].append(renderer.render(implausible))
                    out["kind"].append(kind)
                    out["group"].append(group)
                    out["violation_frame"].append(k)
                group += 1
    finally:
        if own:
            renderer.close()
    return {key: np.asarray(value) if key == "kind" else np.stack(value) for key, value in out.items()}
