"""The env contract (``envs.contract``), exploration on an env with only the required pieces, and the exploration
cache key of plug-in envs (``envs.cache_identity``)."""

from __future__ import annotations

import importlib
import sys
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs import exploration
from envs.contract import check_env_contract, format_contract, missing_required, require_env_contract
from envs.exploration import cache_path, render_trajectories
from worldmodel.evaluation.ground_truth import position_evaluations_unavailable


class BareEnv(gym.Env):
    """Only the required pieces: pixels, goal image, distance, is_success; actions in a box other than [-1, 1]."""

    metadata: ClassVar[dict] = {"render_modes": [], "render_fps": 4}

    def __init__(self, image_size: int = 16, goal_image: bool = True):
        self.observation_space = gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
        self.action_space = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
        self.goal_image, self.x = goal_image, 0.0

    def _obs(self) -> np.ndarray:
        return np.full(self.observation_space.shape, int(abs(self.x) * 10) % 256, np.uint8)

    def _info(self) -> dict:
        info = {"distance": abs(self.x), "is_success": abs(self.x) < 0.1}
        return {**info, "goal_image": np.zeros_like(self._obs())} if self.goal_image else info

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-1, 1))
        return self._obs(), self._info()

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, np.float32)), action
        self.x += 0.1 * float(action[0])
        info = self._info()
        return self._obs(), -info["distance"], info["is_success"], False, info


@pytest.fixture
def bare(monkeypatch):
    """``bare`` (and ``bare_broken``, without goal_image) registered for this test only."""
    monkeypatch.setattr(envs, "ENV_IDS", dict(envs.ENV_IDS))
    for name, kwargs in (("bare", {}), ("bare_broken", {"goal_image": False})):
        gym_id = f"test/{name}-v0"
        if gym_id not in gym.registry:
            gym.register(id=gym_id, entry_point=BareEnv, max_episode_steps=20, kwargs=kwargs)
        envs.register_env(name, gym_id)
    return "bare"


def test_contract_of_our_env_lists_every_piece():
    env = envs.make("pointmass_open", image_size=16)
    pieces = check_env_contract(env)
    env.close()
    assert not missing_required(pieces)
    absent = {p.name for p in pieces if not p.present}
    assert absent == {"proprio observation and info goal_proprio", "object_off_table(states)", "cache_version"}


def test_bare_env_meets_the_required_part_and_lacks_every_optional_one(bare):
    pieces = require_env_contract(envs.make(bare, image_size=16), bare)
    assert all(p.present for p in pieces if p.required)
    assert not any(p.present for p in pieces if not p.required)
    text = format_contract(pieces)
    assert "optional  absent   render_at(position); it would give: pretrain's cost-basin" in text


def test_a_missing_required_piece_fails_in_one_line_naming_it(bare):
    with pytest.raises(ValueError) as error:
        require_env_contract(envs.make("bare_broken", image_size=16), "bare_broken")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("env 'bare_broken' breaks the env contract: info goal_image (absent or malformed "
                              "after reset and step)")


def test_exploration_runs_on_the_required_pieces_alone(bare):
    data = render_trajectories(bare, episodes=2, steps=5, seed=0, image_size=16)
    assert data.frames.shape == (12, 16, 16, 3) and data.states.shape == (12, 0)
    assert np.all(np.abs(data.actions) <= 2.0) and np.abs(data.actions).max() > 1.0  # scaled to the box
    meta = data.metadata
    assert (meta["state_dim"], meta["proprio_dim"], meta["frame_skip"], meta["dt"], meta["success_threshold"]) \
        == (0, 0, None, 0.25, None)


def test_cache_keys_of_our_envs_change_only_with_data_version(monkeypatch):
    assert cache_path("pusher", 4, 10, 0, 64, "/c").name == "pusher-ab67feab245b9990"  # DATA_VERSION 3
    monkeypatch.setattr(exploration, "DATA_VERSION", 2)
    assert cache_path("pusher", 4, 10, 0, 64, "/c").name == "pusher-33696b7858f86b67"  # the key of earlier renders


def test_cache_key_of_a_plugin_env_follows_its_source_and_its_cache_version(tmp_path, monkeypatch):
    monkeypatch.setattr(envs, "ENV_IDS", dict(envs.ENV_IDS))
    monkeypatch.syspath_prepend(str(tmp_path))
    source = tmp_path / "wm_test_cache_env.py"

    def key(text: str, name: str) -> str:
        source.write_text(f"from tests.test_env_contract import BareEnv\n\n\nclass Env(BareEnv):\n{text}\n")
        sys.modules.pop("wm_test_cache_env", None)
        importlib.invalidate_caches()
        module = importlib.import_module("wm_test_cache_env")
        gym.registry.pop(f"test/{name}-v0", None)  # re-registered with the edited class
        gym.register(id=f"test/{name}-v0", entry_point=module.Env)
        envs.register_env(name, f"test/{name}-v0")
        return cache_path(name, 4, 10, 0, 64, tmp_path).name

    first = key("    pass", "cache_a")
    assert key("    pass", "cache_a") == first  # same code, same data
    assert key("    speed = 2  # an edit", "cache_a") != first  # edited file: the old data is not reused
    versioned = key("    cache_version = 1", "cache_b")
    assert key("    cache_version = 1  # an edit the plug-in declares harmless", "cache_b") == versioned
    assert key("    cache_version = 2", "cache_b") != versioned


def test_position_evaluations_skip_models_that_read_proprioception():
    class Positions:  # an env with both position methods
        def render_at(self, position): ...
        def is_free(self, position, margin=0.0): ...

    assert position_evaluations_unavailable(Positions(), has_metric=True) is None
    assert "proprioception" in position_evaluations_unavailable(Positions(), has_metric=True, proprio_dim=4)


def test_an_env_whose_constructor_lacks_image_size_fails_in_one_line(monkeypatch):
    class NoImageSize(gym.Env):
        def __init__(self):
            pass

    monkeypatch.setitem(gym.registry, "worldmodel_test/NoImageSize-v0",
                        gym.envs.registration.EnvSpec("worldmodel_test/NoImageSize-v0", entry_point=NoImageSize))
    monkeypatch.setitem(envs.ENV_IDS, "no_image_size", "worldmodel_test/NoImageSize-v0")
    with pytest.raises(ValueError, match=r"^env 'no_image_size' does not take image_size=: .*docs/plugins.md"):
        envs.make("no_image_size", image_size=32)


def test_pixels_that_contradict_the_observation_space_break_the_contract(bare):
    class FloatPixels(gym.Wrapper):
        def reset(self, **kwargs):
            observation, info = self.env.reset(**kwargs)
            return observation.astype(np.float32), info

    pixels = check_env_contract(FloatPixels(envs.make(bare)))[0]
    assert not pixels.present and "float32" in pixels.note


def test_a_simulate_of_the_wrong_shape_is_named_not_counted(monkeypatch):
    env = envs.make("pointmass_open", image_size=16)
    pieces = {p.name: p for p in check_env_contract(env)}
    assert pieces["get_sim_state, simulate"].present
    monkeypatch.setattr(env.unwrapped, "simulate", lambda sim_state, actions: np.zeros(actions.shape[0]))
    piece = {p.name: p for p in check_env_contract(env)}["get_sim_state, simulate"]
    assert not piece.present and "returned shape (1,), expected (1, 2, " in piece.problem
    assert "WRONG    get_sim_state, simulate: simulate(" in format_contract([piece])
    env.close()
