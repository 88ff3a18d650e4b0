"""Trajectory storage (env-agnostic) and the cached exploration data built on it."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from worldmodel.data.trajectories import TrajectoryDataset, TrajectoryFormatError


def _dataset(lengths=(5, 3, 7), size=8, action_dim=2, state_dim=4) -> TrajectoryDataset:
    n = sum(lengths)
    rng = np.random.default_rng(0)
    return TrajectoryDataset(
        frames=rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
        actions=rng.standard_normal((n, action_dim)).astype(np.float32),
        states=rng.standard_normal((n, state_dim)).astype(np.float32),
        episode_starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        metadata={"env": "toy", "image_size": size},
    )


def test_save_load_roundtrip_is_exact(tmp_path):
    data = _dataset()
    data.save(tmp_path / "traj")
    loaded = TrajectoryDataset.load(tmp_path / "traj")
    for name in ("frames", "actions", "states", "episode_starts"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(data, name))
        assert getattr(loaded, name).dtype == getattr(data, name).dtype
    assert isinstance(loaded.frames, np.memmap)
    assert loaded.metadata == {"env": "toy", "image_size": 8}
    assert not isinstance(TrajectoryDataset.load(tmp_path / "traj", mmap=False).frames, np.memmap)


def test_save_replaces_an_existing_folder_and_leaves_no_temp_dirs(tmp_path):
    _dataset(lengths=(4,)).save(tmp_path / "traj")
    _dataset(lengths=(2, 2, 2)).save(tmp_path / "traj")
    assert TrajectoryDataset.load(tmp_path / "traj").num_episodes == 3
    assert [p.name for p in tmp_path.iterdir()] == ["traj"]


def test_episode_and_lengths():
    data = _dataset()
    assert data.num_episodes == 3 and len(data) == 15
    np.testing.assert_array_equal(data.episode_lengths, [5, 3, 7])
    ep = data.episode(1)
    np.testing.assert_array_equal(ep.frames, data.frames[5:8])
    np.testing.assert_array_equal(ep.episode_starts, [0, 3])
    np.testing.assert_array_equal(data.episode(-1).states, data.states[8:])
    with pytest.raises(IndexError):
        data.episode(3)


@pytest.mark.parametrize("length", [1, 3, 4, 6, 7, 8])
def test_windows_never_cross_episode_boundaries(length):
    data = _dataset(lengths=(5, 3, 7, 1))
    starts = data.windows(length)
    expected = [
        s
        for e in range(data.num_episodes)
        for s in range(data.episode_starts[e], data.episode_starts[e + 1] - length + 1)
    ]
    np.testing.assert_array_equal(starts, expected)
    episode_of = np.searchsorted(data.episode_starts, np.arange(len(data)), side="right") - 1
    for s in starts:
        assert len(set(episode_of[s : s + length])) == 1 and s + length <= len(data)
    assert starts.dtype == np.int64


def test_windows_rejects_nonpositive_length():
    with pytest.raises(ValueError, match="length"):
        _dataset().windows(0)


def test_load_reports_missing_files(tmp_path):
    _dataset().save(tmp_path / "traj")
    (tmp_path / "traj" / "actions.npy").unlink()
    with pytest.raises(TrajectoryFormatError, match="lacks actions.npy"):
        TrajectoryDataset.load(tmp_path / "traj")
    with pytest.raises(TrajectoryFormatError, match="does not exist"):
        TrajectoryDataset.load(tmp_path / "nowhere")


def test_load_reports_mismatched_lengths(tmp_path):
    _dataset().save(tmp_path / "traj")
    np.save(tmp_path / "traj" / "states.npy", np.zeros((14, 4), np.float32))
    with pytest.raises(TrajectoryFormatError, match=r"states must be float32 \(15, S\)") as err:
        TrajectoryDataset.load(tmp_path / "traj")
    assert "\n" not in str(err.value)


def test_load_rejects_other_format_versions(tmp_path):
    _dataset().save(tmp_path / "traj")
    meta = tmp_path / "traj" / "metadata.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "format_version": 99}))
    with pytest.raises(TrajectoryFormatError, match="format version 99"):
        TrajectoryDataset.load(tmp_path / "traj")


def test_constructor_validates_offsets():
    data = _dataset()
    with pytest.raises(TrajectoryFormatError, match="episode_starts"):
        TrajectoryDataset(data.frames, data.actions, data.states, np.array([0, 5, 14], np.int64))


def test_library_module_does_not_import_envs_or_mujoco():
    import subprocess
    import sys

    code = "import sys, worldmodel.data.trajectories; print('envs' in sys.modules or 'mujoco' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_collect_trajectories_layout_and_cache_hit(tmp_path, monkeypatch, caplog):
    from envs import exploration

    calls = []
    real = exploration.render_trajectories
    monkeypatch.setattr(exploration, "render_trajectories", lambda *a, **k: calls.append(a) or real(*a, **k))
    with caplog.at_level(logging.INFO, logger="envs.exploration"):
        first = exploration.collect_trajectories(
            "pointmass_open", episodes=3, steps=6, seed=1, image_size=16, cache_dir=tmp_path
        )
        second = exploration.collect_trajectories(
            "pointmass_open", episodes=3, steps=6, seed=1, image_size=16, cache_dir=tmp_path
        )
    assert len(calls) == 1
    assert "rendered" in caplog.text and "from cache" in caplog.text
    np.testing.assert_array_equal(first.frames, second.frames)
    assert first.frames.shape == (21, 16, 16, 3)
    np.testing.assert_array_equal(first.episode_starts, [0, 7, 14, 21])
    last = first.episode_starts[1:] - 1
    assert np.all(first.actions[last] == 0) and np.all(np.abs(first.actions) <= 1)
    assert np.all(np.any(first.actions[np.setdiff1d(np.arange(21), last)] != 0, axis=1))
    assert second.metadata["env"] == "pointmass_open" and second.metadata["action_dim"] == 2
    # A different request (another seed) renders again.
    exploration.collect_trajectories(
        "pointmass_open", episodes=3, steps=6, seed=2, image_size=16, cache_dir=tmp_path
    )
    assert len(calls) == 2


def test_exploration_episodes_depend_only_on_seed_and_index(tmp_path):
    from envs.exploration import render_trajectories

    a = render_trajectories("reacher", episodes=2, steps=5, seed=3, image_size=16)
    b = render_trajectories("reacher", episodes=3, steps=5, seed=3, image_size=16)
    np.testing.assert_array_equal(a.frames, b.frames[:12])
    np.testing.assert_array_equal(a.actions, b.actions[:12])


def test_rendering_in_worker_processes_gives_the_same_episodes():
    from envs.exploration import render_trajectories

    one = render_trajectories("pointmass_tworooms", episodes=3, steps=4, seed=5, image_size=16)
    two = render_trajectories("pointmass_tworooms", episodes=3, steps=4, seed=5, image_size=16, workers=2)
    for name in ("frames", "actions", "states", "episode_starts"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    assert one.metadata == two.metadata
