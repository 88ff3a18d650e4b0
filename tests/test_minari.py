"""Recorded trajectories (Minari datasets) train the latent stages: a recording made with Minari's own
``DataCollector`` through ``pretrain trajectories=PATH``, our exploration data exported and read back exactly,
and bad recordings refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.exploration import render_trajectories
from tests.test_pretrain_levels import TINY
from worldmodel.data.minari_trajectories import DATASET_ID, MinariDataError, export_minari, load_minari
from worldmodel.errors import UserError
from worldmodel.world_model import WorldModel

minari = pytest.importorskip("minari")
ROOT = Path(__file__).resolve().parents[1]


def command(name: str, run: Path, cache: Path, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", f"experiments.{name}", f"hydra.run.dir={run}", f"cache_dir={cache}", *overrides]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    return subprocess.run(cmd, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300, check=False)


def record_with_data_collector(root: Path, name: str, episodes: int, steps: int, monkeypatch) -> Path:
    """``episodes`` random-action episodes of ``name`` at 32 px, written by Minari itself; the dataset's folder."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    env = envs.make(name, image_size=32)
    collector = minari.DataCollector(env)
    rng = np.random.default_rng(0)
    for episode in range(episodes):
        collector.reset(seed=episode)
        for _ in range(steps):
            _, _, terminated, truncated, _ = collector.step(rng.uniform(-1, 1, 2).astype(np.float32))
            if terminated or truncated:
                break
    collector.create_dataset(dataset_id=f"users/{name}-v0")
    return root / "users" / f"{name}-v0"


def test_a_data_collector_recording_trains_the_levels_through_pretrain(tmp_path, monkeypatch):
    recording = record_with_data_collector(tmp_path / "minari", "pointmass_tworooms", 5, 40, monkeypatch)
    encoder_run, cache = tmp_path / "encoder", tmp_path / "cache"
    result = command("pretrain", encoder_run, cache, *TINY, "stages=[video]")
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "levels"
    result = command("pretrain", run, cache, *TINY, "stages=[metric,dynamics,hierarchy]", f"encoder={encoder_run}",
                     f"trajectories={recording}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["trajectories"]["source"] == "minari" and summary["trajectories"]["episodes"] == 5
    assert summary["trajectories"]["frames"] == 5 * 41
    assert summary["dynamics"]["steps"] == 12
    assert summary["skipped"]["cost_correlation"].startswith("the trajectories carry no true states")
    assert summary["skipped"]["state_readout"] == summary["skipped"]["cost_correlation"]
    WorldModel.load(run).check_compatible(envs.make("pointmass_tworooms", image_size=32))

    wrong_size = command("pretrain", tmp_path / "bad", cache, *TINY, "env.image_size=64",
                         "stages=[metric,dynamics,hierarchy]", f"encoder={encoder_run}", f"trajectories={recording}")
    assert wrong_size.returncode == 2 and wrong_size.stderr.count("\n") == 1
    assert "images are uint8 (32, 32, 3), the env gives uint8 (64, 64, 3)" in wrong_size.stderr
    assert not (tmp_path / "bad" / "world_model.pt").exists()


def test_our_exploration_data_round_trips_exactly_through_the_export_command(tmp_path):
    out, cache = tmp_path / "exported", tmp_path / "cache"
    settings = ["env=reacher", "env.image_size=32", "data.episodes=3", "data.episode_steps=10", f"out={out}"]
    result = command("export_trajectories", tmp_path / "run", cache, *settings)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wrote 3 episodes (33 frames) of reacher to {out}" in result.stdout
    ours = render_trajectories("reacher", 3, steps=10, seed=0, image_size=32, workers=1)
    back = load_minari(out, envs.make("reacher", image_size=32))
    for name in ("frames", "actions", "states", "proprio", "episode_starts"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ours, name), err_msg=name)

    again = command("export_trajectories", tmp_path / "run2", cache, *settings)
    assert again.returncode == 2 and "exists; choose a new folder (nothing is overwritten)" in again.stderr
    np.testing.assert_array_equal(load_minari(out, envs.make("reacher", image_size=32)).frames, ours.frames)


def _buffers_dataset(root: Path, monkeypatch, episodes: int, action_dim: int) -> Path:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    buffers = [minari.data_collector.EpisodeBuffer(
        id=e, observations=np.zeros((4, 32, 32, 3), np.uint8), actions=np.zeros((3, action_dim), np.float32),
        rewards=np.zeros(3), terminations=np.zeros(3, bool), truncations=np.array([False, False, True]))
        for e in range(episodes)]
    name = f"users/bad{episodes}x{action_dim}-v0"
    minari.create_dataset_from_buffers(name, buffers, action_space=gym.spaces.Box(-1, 1, (action_dim,)),
                                       observation_space=gym.spaces.Box(0, 255, (32, 32, 3), np.uint8))
    return root / name


def test_bad_recordings_and_a_missing_minari_fail_in_one_line(tmp_path, monkeypatch):
    env = envs.make("pointmass_tworooms", image_size=32)
    with pytest.raises(MinariDataError, match=r"actions are \(3, 3\) for 4 observations; the env's action space "
                                              r"wants \(T, 2\)"):
        load_minari(_buffers_dataset(tmp_path, monkeypatch, 2, 3), env)
    with pytest.raises(MinariDataError, match="holds no episodes; record some first"):
        load_minari(_buffers_dataset(tmp_path, monkeypatch, 0, 2), env)
    with pytest.raises(MinariDataError, match="no Minari dataset there"):
        load_minari(tmp_path / "nothing", env)
    assert len(load_minari(_buffers_dataset(tmp_path, monkeypatch, 1, 2), env)) == 4  # the same, well formed

    data = render_trajectories("pointmass_tworooms", 1, steps=4, seed=0, image_size=32, workers=1)
    monkeypatch.setitem(sys.modules, "minari", None)  # as if not installed
    with pytest.raises(UserError, match=r"need the optional package minari, .*pip install -e '\.\[minari\]'"):
        export_minari(data, env, tmp_path / "out")
    assert not (tmp_path / "out").exists() and DATASET_ID.startswith("worldmodel/")
