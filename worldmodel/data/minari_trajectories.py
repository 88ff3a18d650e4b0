"""Recorded trajectories as Minari datasets, the Farama offline-data format for gymnasium (``pip install -e
'.[minari]'``): ``load_minari`` reads one into a ``TrajectoryDataset`` for the latent stages, checked against the
env the world model will plan in; ``export_minari`` writes a ``TrajectoryDataset`` (our exploration data) as one.

An episode holds T + 1 observations and T actions. An observation is an image (H, W, 3) uint8, or a dict with
the image under ``pixels`` (or as its only image) and, for an env with proprioception, ``proprio``. True
states, where the recording kept them (``infos["state"]``, as our envs report it), feed the task cost and the
ground-truth evaluations; without them those are skipped and the planning cost must be the metric.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.data.trajectories import TrajectoryDataset
from worldmodel.errors import UserError
from worldmodel.observations import PIXELS, PROPRIO, pixel_shape, proprio_dim

INSTALL = "install it with: pip install -e '.[minari]'"
DATASET_ID = "worldmodel/exported-v0"  # the id inside an exported folder (Minari requires one)


class MinariDataError(UserError, ValueError):
    """A Minari dataset that cannot train world models for this env."""


def _minari() -> Any:
    try:
        import minari
    except ImportError:
        raise UserError("recorded trajectories need the optional package minari, which is not installed; "
                        f"{INSTALL}") from None
    return minari


def _data_folder(path: Path) -> Path:
    """The folder holding ``metadata.json``: ``path`` itself or its ``data/`` (as Minari lays datasets out)."""
    for folder in (path, path / "data"):
        if (folder / "metadata.json").is_file():
            return folder
    raise MinariDataError(f"trajectories={path}: no Minari dataset there (no metadata.json in it or in its data/ "
                          "folder); give the folder a Minari dataset was written to")


def _split(observations: Any, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(images (T+1, H, W, 3), proprio (T+1, P) or None) of one episode's observations."""
    if not isinstance(observations, dict):
        return np.asarray(observations), None
    images = [k for k, v in observations.items() if np.ndim(v) == 4 and np.shape(v)[-1] == 3]
    key = PIXELS if PIXELS in observations else (images[0] if len(images) == 1 else None)
    if key is None:
        raise MinariDataError(f"{where}: the observations hold no single image (keys {sorted(observations)}); "
                              f"store the camera image under {PIXELS!r}")
    proprio = observations.get(PROPRIO)
    return np.asarray(observations[key]), None if proprio is None else np.asarray(proprio, np.float32)


def _check(where: str, images: np.ndarray, proprio: np.ndarray | None, actions: np.ndarray, env: Any) -> None:
    want_image, want_proprio = pixel_shape(env.observation_space), proprio_dim(env.observation_space)
    space = env.action_space
    if images.dtype != np.uint8 or images.shape[1:] != tuple(want_image):
        raise MinariDataError(f"{where}: images are {images.dtype} {images.shape[1:]}, the env gives uint8 "
                              f"{tuple(want_image)}; record at the env's size or set env.image_size to the data's")
    given = 0 if proprio is None else proprio.shape[-1]
    if given != want_proprio:
        raise MinariDataError(f"{where}: observations hold {given} proprioception values, the env {want_proprio}; "
                              f"record the env's observation dict ({PIXELS!r} and {PROPRIO!r})")
    if actions.ndim != 2 or actions.shape[1:] != space.shape or len(actions) != len(images) - 1:
        raise MinariDataError(f"{where}: actions are {actions.shape} for {len(images)} observations; the env's "
                              f"action space wants (T, {', '.join(map(str, space.shape))}) for T + 1 observations")
    outside = ~np.isfinite(actions) | (actions < space.low - 1e-6) | (actions > space.high + 1e-6)
    if outside.any():
        raise MinariDataError(f"{where}: {int(outside.any(axis=1).sum())} actions are outside the env's action "
                              f"space [{space.low.min():g}, {space.high.max():g}] or not finite; record the "
                              "actions the env was given")


def load_minari(path: str | os.PathLike, env: Any) -> TrajectoryDataset:
    """Every episode of the Minari dataset at ``path``, checked against ``env`` (image size, proprioception,
    action space), as a ``TrajectoryDataset`` (last action of each episode zero, as in our own data)."""
    path = Path(path).expanduser()
    dataset = _minari().MinariDataset(_data_folder(path))
    if dataset.total_episodes == 0:
        raise MinariDataError(f"trajectories={path} holds no episodes; record some first")
    frames, actions, states, proprio, starts = [], [], [], [], [0]
    for episode in dataset.iterate_episodes():
        where = f"trajectories={path}, episode {episode.id}"
        images, body = _split(episode.observations, where)
        moves = np.asarray(episode.actions, np.float32)
        _check(where, images, body, moves, env)
        infos = episode.infos if isinstance(episode.infos, dict) else {}
        frames.append(images)
        actions.append(np.concatenate([moves, np.zeros((1, moves.shape[1]), np.float32)]))
        states.append(np.asarray(infos["state"], np.float32).reshape(len(images), -1) if "state" in infos
                      else np.zeros((len(images), 0), np.float32))
        proprio.append(body)
        starts.append(starts[-1] + len(images))
    if len({s.shape[1] for s in states}) > 1:  # some episodes kept their states, others did not
        states = [np.zeros((len(s), 0), np.float32) for s in states]
    return TrajectoryDataset(
        frames=np.concatenate(frames), actions=np.concatenate(actions), states=np.concatenate(states),
        episode_starts=np.asarray(starts, np.int64), proprio=None if proprio[0] is None else np.concatenate(proprio),
        metadata={"source": "minari", "path": str(path), "dataset_id": dataset.spec.dataset_id,
                  "episodes": int(dataset.total_episodes)})


def export_minari(trajectories: TrajectoryDataset, env: Any, out: str | os.PathLike) -> Path:
    """Write ``trajectories`` (recorded in ``env``) to the folder ``out`` as a Minari dataset, images lossless
    and true states under ``infos["state"]``. Written beside ``out`` and moved into place: never half-written."""
    minari = _minari()
    out = Path(out).expanduser().resolve()
    if out.exists():
        raise UserError(f"out={out} exists; choose a new folder (nothing is overwritten)")
    buffers = []
    for e in range(trajectories.num_episodes):
        lo, hi = int(trajectories.episode_starts[e]), int(trajectories.episode_starts[e + 1])
        images = np.asarray(trajectories.frames[lo:hi])
        body = None if trajectories.proprio is None else np.asarray(trajectories.proprio[lo:hi])
        observations = images if body is None else {PIXELS: images, PROPRIO: body}
        steps = hi - lo - 1
        buffers.append(minari.data_collector.EpisodeBuffer(
            id=e, observations=observations, actions=np.asarray(trajectories.actions[lo:hi - 1]),
            rewards=np.zeros(steps), terminations=np.zeros(steps, bool), truncations=np.arange(steps) == steps - 1,
            infos={"state": np.asarray(trajectories.states[lo:hi])}))
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    previous = os.environ.get("MINARI_DATASETS_PATH")
    try:
        os.environ["MINARI_DATASETS_PATH"] = str(scratch)  # where Minari writes: its only way to choose
        minari.create_dataset_from_buffers(DATASET_ID, buffers, env=env.spec, action_space=env.action_space,
                                           observation_space=env.observation_space, jpeg_encoding=False)
        os.replace(scratch / DATASET_ID, out)
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous
        shutil.rmtree(scratch, ignore_errors=True)
    return out
