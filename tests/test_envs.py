"""The MuJoCo goal envs: gymnasium compliance, determinism, oracle rollouts, failure handling."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.exploration import render_trajectories
from worldmodel.observations import PIXELS, PROPRIO, pixels_of

NAMES = [name for name in envs.ENV_IDS if name != "pusht"]  # Push-T (pymunk, optional): tests/test_pusht.py


@pytest.fixture(scope="module", params=NAMES)
def env(request):
    env = envs.make(request.param)
    yield env
    env.close()


def _rollout(name: str, seed: int, actions: np.ndarray):
    env = envs.make(name).unwrapped
    obs, info = env.reset(seed=seed)
    frames, states = [pixels_of(obs)], [info["state"]]
    for a in actions:
        obs, _, _, _, info = env.step(a)
        frames.append(pixels_of(obs))
        states.append(info["state"])
    env.close()
    return np.stack(frames), np.stack(states)


@pytest.mark.parametrize("name", NAMES)
def test_check_env_passes_without_warnings(name):
    env = envs.make(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=True)
    assert [str(w.message) for w in caught] == []
    env.close()


def test_registered_ids_and_time_limits():
    expected = {
        "pointmass_open": 100,
        "pointmass_tworooms": 200,
        "pointmass_maze": 200,
        "pointmass_serpentine": 400,
        "reacher": 100,
        "pusher": 200,
    }
    for name, steps in expected.items():
        assert gym.spec(envs.ENV_IDS[name]).max_episode_steps == steps
    assert envs.ENV_IDS["pointmass_tworooms"] == "worldmodel/PointMassTwoRooms-v0"


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_and_actions_give_identical_frames_and_states(name):
    actions = np.random.default_rng(1).uniform(-1, 1, (15, 2)).astype(np.float32)
    frames_a, states_a = _rollout(name, 7, actions)
    frames_b, states_b = _rollout(name, 7, actions)
    np.testing.assert_array_equal(frames_a, frames_b)
    np.testing.assert_array_equal(states_a, states_b)
    assert not np.array_equal(frames_a[0], frames_a[-1])  # the actions changed the picture


def test_reset_info_has_keys_shapes_and_dtypes(env):
    obs, info = env.reset(seed=3)
    u = env.unwrapped
    shape = (u.image_size, u.image_size, 3)
    assert env.observation_space.contains(obs)
    obs = pixels_of(obs)
    assert obs.shape == shape and obs.dtype == np.uint8
    assert info["goal_image"].shape == shape and info["goal_image"].dtype == np.uint8
    assert info["state"].dtype == np.float32 and info["state"].shape == (u.state_dim,)
    assert info["goal_state"].dtype == np.float32 and info["goal_state"].shape == (u.state_dim,)
    assert isinstance(info["distance"], float) and info["distance"] > u.success_threshold
    assert info["is_success"] is False
    assert not np.array_equal(info["goal_image"], obs)
    np.testing.assert_allclose(
        u.task_distance(info["state"], info["goal_state"]), info["distance"], rtol=1e-6
    )


def test_render_returns_the_current_observation(env):
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(env.unwrapped.render(), pixels_of(obs))
    obs, *_ = env.step(env.action_space.sample())
    np.testing.assert_array_equal(env.unwrapped.render(), pixels_of(obs))


def test_pointmass_render_at_draws_the_ball_there_and_leaves_the_episode_alone():
    env = envs.make("pointmass_tworooms").unwrapped
    obs, info = env.reset(seed=3)
    np.testing.assert_array_equal(env.render_at(info["state"][:2]), obs)  # the ball starts at rest
    elsewhere = env.render_at(np.array([-0.5, -0.5]))
    assert not np.array_equal(elsewhere, obs)
    np.testing.assert_array_equal(env.state, info["state"])
    after, *_ = env.step(np.zeros(2, np.float32))
    np.testing.assert_array_equal(after, obs)  # still the same episode: zero force on a ball at rest
    env.close()


def test_pointmass_reach_at_full_force_matches_the_figures_the_basin_is_read_with():
    import mujoco

    env = envs.make("pointmass_open").unwrapped
    env.reset(seed=0)
    mujoco.mj_resetData(env.model, env.data)
    env.data.qpos[:2] = [-0.9, 0.0]  # at rest at the left wall, 1.8 m of free run ahead
    mujoco.mj_forward(env.model, env.data)
    push = np.zeros((1, 32, 2))
    push[..., 0] = 1.0
    x = env.simulate(env.get_sim_state(), push)[0, :, 0] + 0.9
    assert 0.6 < x[9] < 0.7  # 10 steps: 0.64 m
    assert x[31] > 1.75  # 32 steps: the full run to the far wall
    env.close()


def test_image_size_is_configurable():
    env = envs.make("reacher", image_size=32)
    obs, info = env.reset(seed=0)
    assert obs[PIXELS].shape == (32, 32, 3) and info["goal_image"].shape == (32, 32, 3)
    env.close()


def test_actions_outside_the_box_are_clipped(env):
    u = env.unwrapped
    env.reset(seed=0)
    state = u.get_sim_state()
    big = np.full(u.action_space.shape, 5.0, np.float32)
    _, _, _, _, info_big = env.step(big)
    u.set_sim_state(state)
    _, _, _, _, info_one = env.step(np.ones(u.action_space.shape, np.float32))
    np.testing.assert_array_equal(info_big["state"], info_one["state"])


def test_non_finite_action_raises(env):
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.unwrapped.step(np.array([np.nan, 0.0], np.float32))
    with pytest.raises(ValueError, match="shape"):
        env.unwrapped.step(np.zeros(3, np.float32))


def test_simulate_matches_stepping_the_env(env):
    u = env.unwrapped
    env.reset(seed=5)
    for _ in range(3):
        u.step(u.action_space.sample())
    state = u.get_sim_state()
    actions = np.random.default_rng(0).uniform(-1.2, 1.2, (4, 6, 2))
    predicted = u.simulate(state, actions)
    assert predicted.shape == (4, 6, u.state_dim)
    for i in (0, 3):
        u.set_sim_state(state)
        stepped = np.stack([u.step(a.astype(np.float32))[4]["state"] for a in actions[i]])
        np.testing.assert_allclose(predicted[i], stepped, atol=1e-6)
    distances = u.task_distance(predicted, u.goal_state)
    assert distances.shape == (4, 6)


def test_simulator_instability_ends_the_episode_with_a_failure(env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # mujoco appends its warning to ./MUJOCO_LOG.TXT
    env.reset(seed=0)
    env.unwrapped.data.qvel[0] = np.nan
    obs, reward, terminated, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
    assert terminated is True
    assert info["failure"].startswith("simulator instability")
    assert info["is_success"] is False
    assert pixels_of(obs).dtype == np.uint8 and np.isfinite(reward)


@pytest.mark.parametrize(("name", "dim"), [("reacher", 6), ("pusher", 4), ("pointmass_tworooms", 0)])
def test_proprioception_is_the_agents_body_state_and_never_the_objects(name, dim):
    env = envs.make(name)
    u = env.unwrapped
    obs, info = env.reset(seed=2)
    if not dim:
        assert isinstance(obs, np.ndarray) and "goal_proprio" not in info
        return
    assert set(obs) == {PIXELS, PROPRIO} and obs[PROPRIO].shape == (dim,) and obs[PROPRIO].dtype == np.float32
    np.testing.assert_allclose(obs[PROPRIO], u.proprio(u.data.qpos, u.data.qvel), atol=1e-6)
    np.testing.assert_allclose(info["goal_proprio"], u.proprio(u.goal_qpos, np.zeros(u.model.nv)), atol=1e-6)
    if name == "pusher":  # the pusher's position and velocity: moving the block changes nothing in it
        before = obs[PROPRIO].copy()
        u.data.qpos[2:4] += 0.3
        np.testing.assert_array_equal(u.proprio(u.data.qpos, u.data.qvel), before)
    else:  # the cosines and sines of both joint angles, then their velocities
        np.testing.assert_allclose(obs[PROPRIO][:2] ** 2 + obs[PROPRIO][2:4] ** 2, [1.0, 1.0], atol=1e-5)
    env.close()


def test_pusher_shaping_is_a_reach_term_until_contact():
    u = envs.make("pusher").unwrapped
    _, info = u.reset(seed=0)
    state = info["state"].copy()
    far = state.copy()
    far[:2] = state[2:4] + np.array([0.6, 0.0])
    touching = state.copy()
    touching[:2] = state[2:4] + np.array([u.contact_gap, 0.0])
    assert u.shaping(touching) == pytest.approx(0.0, abs=1e-6) and u.shaping(np.stack([far, far])).shape == (2,)
    assert u.shaping(far) == pytest.approx(0.5 * (0.6 - u.contact_gap))
    assert envs.make("reacher").unwrapped.shaping(np.zeros((3, 6))).tolist() == [0.0, 0.0, 0.0]


def test_reset_from_two_simulator_states_starts_at_one_and_shows_the_other_at_rest(env):
    u = env.unwrapped
    env.reset(seed=4)
    for _ in range(5):
        u.step(u.action_space.sample())
    start, start_task = u.get_sim_state(), u.state.copy()
    for _ in range(10):
        u.step(np.ones(u.action_space.shape, np.float32))
    goal, goal_qpos = u.get_sim_state(), u.data.qpos.copy()
    obs, info = env.reset(seed=0, options={"start": start, "goal": goal})
    np.testing.assert_array_equal(info["state"], start_task)  # the start keeps its velocities
    np.testing.assert_allclose(info["goal_state"], u.task_states(goal_qpos, np.zeros(u.model.nv)), atol=1e-6)
    again, _ = env.reset(seed=1, options={"start": start, "goal": goal})
    np.testing.assert_array_equal(pixels_of(again), pixels_of(obs))
    with pytest.raises(ValueError, match="both 'start' and 'goal'"):
        env.reset(seed=0, options={"goal": goal})


def test_unknown_env_name_lists_known_names():
    with pytest.raises(ValueError) as err:
        envs.make("foo")
    message = str(err.value)
    assert "unknown env 'foo'" in message and "\n" not in message
    assert all(name in message for name in NAMES)


def test_plugin_entry_points_register_envs(monkeypatch):
    def register():
        if "plugin/Open-v0" not in gym.registry:
            gym.register("plugin/Open-v0", entry_point="envs.pointmass:PointMassEnv", max_episode_steps=5)
        return {"plugin_open": "plugin/Open-v0"}

    def broken():
        raise ImportError("missing dependency")

    class FakeEntryPoint:
        def __init__(self, name, fn):
            self.name, self.value, self._fn = name, f"fake:{name}", fn

        def load(self):
            return self._fn

    monkeypatch.setattr(envs, "ENV_IDS", dict(envs.ENV_IDS))
    monkeypatch.setattr(
        envs, "entry_points", lambda group: [FakeEntryPoint("good", register), FakeEntryPoint("bad", broken)]
    )
    assert envs.load_plugins() == ["good"]
    env = envs.make("plugin_open")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3)
    env.close()


def test_tworooms_goals_are_mostly_in_the_other_room():
    env = envs.make("pointmass_tworooms").unwrapped
    crossings = []
    for seed in range(40):
        _, info = env.reset(seed=seed)
        crossings.append((info["state"][0] > 0) != (info["goal_state"][0] > 0))
    assert 0.75 <= np.mean(crossings) <= 1.0
    env.close()


def test_serpentine_chains_five_corridors_through_alternate_gaps_and_goals_are_mostly_elsewhere():
    env = envs.make("pointmass_serpentine").unwrapped
    for wall_y, gap_x in ((-0.6, 0.85), (-0.2, -0.85), (0.2, 0.85), (0.6, -0.85)):
        assert env.is_free(np.array([gap_x, wall_y]), margin=0.0)
        assert not env.is_free(np.array([-gap_x, wall_y]), margin=0.0)
        assert not env.is_free(np.array([0.0, wall_y]), margin=0.0)
    region = env.layout.region
    gaps = []
    for seed in range(40):
        _, info = env.reset(seed=seed)
        gaps.append(abs(region(info["state"][:2]) - region(info["goal_state"][:2])))
    assert 0.75 <= np.mean(np.array(gaps) > 0) <= 1.0 and np.mean(np.array(gaps) >= 2) >= 0.3
    env.close()


def test_pusher_exploration_moves_the_block_often_and_says_how_often():
    data = render_trajectories("pusher", episodes=10, steps=60, seed=0, image_size=32)
    moved = [
        np.linalg.norm(data.episode(e).states[-1, 2:4] - data.episode(e).states[0, 2:4]) > 0.05
        for e in range(data.num_episodes)
    ]
    assert np.mean(moved) >= 0.6
    record = data.metadata["exploration"]
    step = np.linalg.norm(np.diff(data.states[:, 2:4], axis=0), axis=-1)
    inside = np.ones(len(step), bool)
    inside[data.episode_starts[1:-1] - 1] = False  # no transition across an episode boundary
    assert record["object_moving_fraction"] == pytest.approx(np.mean(step[inside] > 0.005))
    assert record["object_moving_fraction"] >= 0.3 and 0.1 < record["object_coverage"] <= 1.0
    assert data.proprio.shape == (len(data), 4)
    np.testing.assert_array_equal(data.proprio[:, :2], data.states[:, :2])


@pytest.mark.slow
def test_greedy_planner_solves_open_but_not_long_horizon_layouts():
    from envs.benchmark import greedy_success

    rates = {
        name: greedy_success(name, episodes=10)["success_rate"]
        for name in ("pointmass_open", "pointmass_tworooms", "pointmass_maze")
    }
    assert rates["pointmass_open"] >= 0.8
    assert rates["pointmass_tworooms"] <= 0.4 and rates["pointmass_maze"] <= 0.4
