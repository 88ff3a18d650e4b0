"""Push-T (``envs.pusht``, wrapping gym-pusht): gymnasium compliance, determinism, exact save/restore for the oracle,
coverage success, the scripted exploration, and the one-line error when gym-pusht is missing.

The tests that run the env skip, with the reason, where gym-pusht cannot be imported (``make setup`` installs it).
"""

from __future__ import annotations

import importlib
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.exploration import render_trajectories
from envs.exploration_policies import exploration_policy
from envs.pusht_dependency import INSTALL, PushTUnavailableError, load_pusht, missing_message
from worldmodel.observations import PIXELS, PROPRIO


def _unavailable() -> str | None:
    try:
        load_pusht()
    except PushTUnavailableError as exc:
        return str(exc)
    return None


UNAVAILABLE = _unavailable()
needs_pusht = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"gym-pusht is not importable: {UNAVAILABLE}")


def _pushing_rollout(env, seed: int, steps: int) -> tuple[np.ndarray, list]:
    """Actions of the scripted exploration policy from ``reset(seed)`` (they move the T), and the observations."""
    _, info = env.reset(seed=seed)
    policy = exploration_policy(env, [seed])
    actions, observations = [], []
    for _ in range(steps):
        action = policy.act(info["state"])
        obs, _, _, _, info = env.step(action)
        actions.append(action)
        observations.append(obs)
    return np.stack(actions), observations


def test_registered_with_gym_pushts_time_limit():
    assert envs.ENV_IDS["pusht"] == "worldmodel/PushT-v0"
    assert gym.spec("worldmodel/PushT-v0").max_episode_steps == 300


@needs_pusht
def test_check_env_passes_without_warnings():
    env = envs.make("pusht")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=True)
    assert [str(w.message) for w in caught] == []
    env.close()


@needs_pusht
def test_same_seed_and_actions_give_identical_observations():
    actions = np.random.default_rng(1).uniform(-1, 1, (12, 2)).astype(np.float32)
    runs = []
    for _ in range(2):
        env = envs.make("pusht").unwrapped
        obs, info = env.reset(seed=7)
        frames, states = [obs[PIXELS]], [info["state"]]
        for a in actions:
            obs, _, _, _, info = env.step(a)
            frames.append(obs[PIXELS])
            states.append(info["state"])
        runs.append((np.stack(frames), np.stack(states)))
        env.close()
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0][0], runs[0][0][-1])  # the actions changed the picture


@needs_pusht
def test_observation_info_goal_and_proprioception():
    env = envs.make("pusht", image_size=32)
    u = env.unwrapped
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert obs[PIXELS].shape == (32, 32, 3) and obs[PIXELS].dtype == np.uint8
    assert info["goal_image"].shape == (32, 32, 3) and not np.array_equal(info["goal_image"], obs[PIXELS])
    assert info["state"].shape == (11,) and info["state"].dtype == np.float32
    np.testing.assert_allclose(info["goal_state"][2:6], [0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6)
    assert info["is_success"] is False and 0.0 <= info["coverage"] < 0.95 and info["distance"] > 0
    # proprioception: the agent's position and velocity; moving the T changes nothing in it
    np.testing.assert_array_equal(obs[PROPRIO], info["state"][[0, 1, 6, 7]])
    np.testing.assert_array_equal(info["goal_proprio"], info["goal_state"][[0, 1, 6, 7]])
    moved = u.get_sim_state()
    moved[4:7] += [40.0, -30.0, 0.5]
    u.set_sim_state(moved)
    np.testing.assert_array_equal(u._observation()[PROPRIO], obs[PROPRIO])
    env.close()


@needs_pusht
def test_actions_outside_the_box_are_clipped_and_non_finite_ones_raise():
    u = envs.make("pusht").unwrapped
    u.reset(seed=0)
    start = u.get_sim_state()
    big = u.step(np.array([5.0, -7.0], np.float32))[4]["state"]
    u.set_sim_state(start)
    one = u.step(np.array([1.0, -1.0], np.float32))[4]["state"]
    np.testing.assert_array_equal(big, one)
    with pytest.raises(ValueError, match="finite"):
        u.step(np.array([np.nan, 0.0], np.float32))
    with pytest.raises(ValueError, match="shape"):
        u.step(np.zeros(3, np.float32))


@needs_pusht
def test_save_restore_and_simulate_reproduce_pushing_exactly():
    u = envs.make("pusht").unwrapped
    actions, _ = _pushing_rollout(u, seed=2, steps=25)  # gets the agent onto the T
    saved = u.get_sim_state()
    more = exploration_policy(u, [99])
    actions, frames, states = [], [], []
    info = {"state": u.state}
    for _ in range(20):
        actions.append(more.act(info["state"]))
        obs, _, _, _, info = u.step(actions[-1])
        frames.append(obs[PIXELS])
        states.append(info["state"])
    states = np.stack(states)
    assert np.ptp(states[:, 2:4], axis=0).max() > 0.01  # the T moved: contacts were replayed
    u.set_sim_state(saved)
    np.testing.assert_array_equal(u.get_sim_state(), saved)
    replay = [u.step(a) for a in actions]
    np.testing.assert_array_equal(np.stack([r[4]["state"] for r in replay]), states)
    np.testing.assert_array_equal(np.stack([r[0][PIXELS] for r in replay]), np.stack(frames))
    predicted = u.simulate(saved, np.stack(actions)[None].repeat(2, axis=0))
    assert predicted.shape == (2, 20, 11)
    np.testing.assert_array_equal(predicted[1], states)
    assert u.task_distance(predicted, u.goal_state).shape == (2, 20)


@needs_pusht
def test_success_is_gym_pushts_coverage_of_the_goal():
    env = envs.make("pusht")
    u = env.unwrapped
    env.reset(seed=4)
    goal = u.goal_sim_state.copy()
    start = goal.copy()
    start[0:2] = [450.0, 450.0]  # agent elsewhere: only the T counts
    _, info = env.reset(options={"start": start, "goal": goal})
    assert info["is_success"] is True and info["coverage"] == pytest.approx(1.0) and info["distance"] == 0.0
    start[4] += 20.0
    _, info = env.reset(options={"start": start, "goal": goal})
    assert info["is_success"] is False and info["coverage"] < 0.95
    assert info["distance"] == pytest.approx(20.0 / 256, rel=1e-5)
    with pytest.raises(ValueError, match="both 'start' and 'goal'"):
        env.reset(options={"goal": goal})


@needs_pusht
def test_pose_success_is_dino_wms_criterion_t_within_20_px_and_20_degrees():
    env = envs.make("pusht")
    u = env.unwrapped
    env.reset(seed=4)
    goal = u.goal_sim_state.copy()
    cases = [((15.0, 0.0, 0.0), True), ((12.0, 12.0, 0.0), True), ((0.0, 0.0, 19.0), True),
             ((21.0, 0.0, 0.0), False), ((0.0, 0.0, 21.0), False), ((0.0, 0.0, -21.0), False)]
    for (dx, dy, degrees), expected in cases:
        start = goal.copy()
        start[0:2] = [450.0, 450.0]
        start[4:7] += [dx, dy, np.radians(degrees)]
        _, info = env.reset(options={"start": start, "goal": goal})
        assert info["pose_success"] is expected, (dx, dy, degrees)
        assert u.pose_error(u.state, u.goal_state) == pytest.approx((np.hypot(dx, dy), abs(degrees)), abs=1e-3)
        assert info["is_success"] is (dx == dy == degrees == 0.0)  # the coverage criterion is far tighter


@needs_pusht
def test_shaping_is_a_reach_term_until_contact():
    u = envs.make("pusht").unwrapped
    _, info = u.reset(seed=0)
    state = info["state"].copy()
    touching, far = state.copy(), state.copy()
    touching[0:2] = state[2:4] + [0.0, -u.agent_radius]  # below the middle of the bar's bottom edge (angle 0)
    touching[4:6] = far[4:6] = [1.0, 0.0]
    far[0:2] = state[2:4] + [0.0, -u.agent_radius - 0.4]
    assert u.shaping(touching) == pytest.approx(0.0, abs=1e-6)
    assert u.shaping(far) == pytest.approx(0.5 * 0.4, abs=1e-5)
    assert u.shaping(np.stack([far, touching])).shape == (2,)


@needs_pusht
def test_oracle_plans_with_the_true_physics():
    from agents.oracle import OracleAgent

    env = envs.make("pusht")
    obs, info = env.reset(seed=1)
    agent = OracleAgent(env, horizon=3, samples=8, iterations=1, elites=4)
    agent.reset(obs, info)
    action = agent.act(obs)
    assert env.action_space.contains(action)
    env.close()


@needs_pusht
def test_held_out_goals_move_the_t_at_the_anchors_pace_not_the_explorations(monkeypatch):
    from envs import trajectory_goals as goals_module

    def t_shift_px(count: int = 12) -> float:
        pairs = goals_module.trajectory_goals(envs.make("pusht", image_size=16), count, 25, seed=0)
        return float(np.median([np.linalg.norm(p.goal[4:6] - p.start[4:6]) for p in pairs]))  # pymunk px

    paced = t_shift_px()
    monkeypatch.setattr(type(envs.make("pusht").unwrapped), "goal_pace", 1.0)
    full_speed = t_shift_px()
    assert paced < 60.0 < full_speed and full_speed > 2 * paced


@needs_pusht
def test_exploration_moves_the_t_often_and_says_how_often():
    data = render_trajectories("pusht", episodes=6, steps=40, seed=0, image_size=16)
    assert data.metadata["policy"] == "ScriptedTPusher"
    record = data.metadata["exploration"]
    step = np.linalg.norm(np.diff(data.states[:, 2:4], axis=0), axis=-1)
    inside = np.ones(len(step), bool)
    inside[data.episode_starts[1:-1] - 1] = False  # no transition across an episode boundary
    assert record["object_moving_fraction"] == pytest.approx(np.mean(step[inside] > 0.005))
    assert record["object_moving_fraction"] >= 0.3 and record["object_turning_fraction"] >= 0.2
    assert 0.05 < record["object_coverage"] <= 1.0 and 0.3 < record["object_angle_coverage"] <= 1.0
    np.testing.assert_array_equal(data.proprio, data.states[:, [0, 1, 6, 7]])


@needs_pusht
def test_exploration_keeps_the_t_on_the_table_and_says_how_often_it_lost_it():
    data = render_trajectories("pusht", episodes=20, steps=64, seed=1, image_size=16)
    env = envs.make("pusht", image_size=16).unwrapped
    off = env.object_off_table(data.states)
    record = data.metadata["exploration"]
    assert record["object_off_table_fraction"] == pytest.approx(np.mean(off))
    lost = [off[a:b].any() for a, b in zip(data.episode_starts[:-1], data.episode_starts[1:])]
    assert record["episodes_losing_object"] == pytest.approx(np.mean(lost))
    assert record["episodes_losing_object"] <= 0.1  # the policy without its wall rules lost it in 12 of these 20


@needs_pusht
def test_a_t_counts_as_off_the_table_once_its_centre_is_past_a_wall():
    env = envs.make("pusht", image_size=16).unwrapped
    states = np.zeros((3, 11), np.float32)
    states[:, 4] = 1.0  # cos: the T upright
    states[1, 2] = 0.9  # its origin near the right wall, its centre still inside
    states[2, 2] = 1.2  # through the right wall
    centres = env.corner_positions(states).mean(axis=-2)
    assert np.abs(centres[1, 0]) < 251 / 256 < np.abs(centres[2, 0])
    np.testing.assert_array_equal(env.object_off_table(states), [False, False, True])


def test_without_gym_pusht_making_the_env_fails_with_one_line_and_the_install_command(monkeypatch):
    for name in ("gym_pusht", "gym_pusht.envs", "gym_pusht.envs.pusht"):
        monkeypatch.setitem(sys.modules, name, None)  # an import of it now fails as if it were not installed
    with pytest.raises(PushTUnavailableError) as err:
        envs.make("pusht")
    message = str(err.value)
    assert "\n" not in message and "gym-pusht" in message and message.endswith(INSTALL)


def test_a_broken_opencv_names_the_system_libraries_or_the_headless_build(monkeypatch):
    def fail(name):
        raise ImportError("libGL.so.1: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(importlib, "import_module", fail)
    with pytest.raises(PushTUnavailableError) as err:
        load_pusht()
    message = str(err.value)
    assert "\n" not in message and "libGL.so.1" in message
    assert "apt-get install libgl1 libglib2.0-0" in message and "opencv-python-headless" in message
    assert missing_message(ModuleNotFoundError("No module named 'gym_pusht'", name="gym_pusht")).endswith(INSTALL)


@needs_pusht
def test_angle_probe_clips_are_seeded_balanced_still_and_labelled_by_the_ts_sector():
    from envs.pusht import PushTGoalEnv
    from envs.pusht_probe_scenes import ANGLE_CLASSES, angle_clip_state, make_angle_clips

    clips, labels = make_angle_clips(16, seed=3, image_size=32, frames=4)
    again, labels_again = make_angle_clips(16, seed=3, image_size=32, frames=4)
    other, _ = make_angle_clips(16, seed=4, image_size=32, frames=4)
    assert clips.shape == (16, 4, 32, 32, 3) and clips.dtype == np.uint8
    np.testing.assert_array_equal(clips, again)
    np.testing.assert_array_equal(labels, labels_again)
    assert not np.array_equal(clips, other)
    assert np.bincount(labels, minlength=ANGLE_CLASSES).tolist() == [2] * ANGLE_CLASSES
    assert (clips == clips[:, :1]).all()  # one table per clip, repeated
    env = PushTGoalEnv(image_size=32)
    try:
        for index, label in enumerate(labels):
            state, expected = angle_clip_state(3, index, env)
            assert expected == label == int((state[6] + np.pi) // (2 * np.pi / ANGLE_CLASSES))
            env.set_sim_state(state)
            np.testing.assert_array_equal(env.render(), clips[index, 0])
    finally:
        env.close()
