"""Agents: protocol conformance, the registry's errors and parameter filtering, fault isolation, oracle > random."""

from __future__ import annotations

import math
import statistics
import time
from importlib.metadata import EntryPoint
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest

from agents import (
    AGENTS,
    Agent,
    OracleAgent,
    RandomAgent,
    available_agents,
    make_agent,
    make_agent_from_target,
    register_agent,
    registry,
    run_episode,
)


class FakePointEnv(gym.Env):
    """A 2-D point moved by ``0.1 * action`` per step, with the unwrapped simulator API of our envs."""

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self, fail_at_step: int | None = None):
        self.observation_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.fail_at_step = fail_at_step
        self.pos = np.zeros(2)
        self.goal_state = np.zeros(2, np.float32)
        self.t = 0

    def _obs(self):
        return np.full((8, 8, 3), int(self.t) % 256, np.uint8)

    def _info(self):
        distance = float(self.task_distance(self.pos, self.goal_state))
        info = {
            "goal_image": np.zeros((8, 8, 3), np.uint8),
            "state": self.pos.astype(np.float32),
            "goal_state": self.goal_state.copy(),
            "distance": distance,
            "is_success": distance < 0.1,
        }
        if self.fail_at_step is not None and self.t >= self.fail_at_step:
            info["failure"] = "simulator instability: fake"
            info["is_success"] = False
        return info

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 2)
        self.goal_state = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.t = 0
        return self._obs(), self._info()

    def step(self, action):
        self.pos = self.pos + 0.1 * np.clip(np.asarray(action, np.float64), -1, 1)
        self.t += 1
        info = self._info()
        return (
            self._obs(),
            -info["distance"],
            bool(info["is_success"]) or "failure" in info,
            self.t >= 60,
            info,
        )

    def get_sim_state(self):
        return self.pos.copy()

    def simulate(self, sim_state, actions):
        return sim_state + 0.1 * np.cumsum(np.clip(actions, -1, 1), axis=1)  # (N, H, 2)

    def task_distance(self, states, goal_state):
        return np.linalg.norm(np.asarray(states)[..., :2] - np.asarray(goal_state)[:2], axis=-1)


class _Scripted:
    """An agent whose ``act`` returns ``make_action(step)``, to exercise the fault handling."""

    def __init__(self, env, make_action):
        self.make_action, self.t = make_action, 0

    def reset(self, observation, info):
        self.t = 0

    def act(self, observation):
        self.t += 1
        return self.make_action(self.t)


def _raise(t):
    raise RuntimeError("boom\nsecond line")


# ---- protocol and registry -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["random", "oracle"])
def test_our_agents_follow_the_protocol_and_return_actions_in_the_space(name):
    env = FakePointEnv()
    agent = make_agent(name, env)
    assert isinstance(agent, Agent)
    obs, info = env.reset(seed=0)
    agent.reset(obs, info)
    for _ in range(3):
        action = agent.act(obs)
        assert isinstance(action, np.ndarray) and action.dtype == np.float32 and action.shape == (2,)
        assert env.action_space.contains(action)
        obs, *_ = env.step(action)


def test_unknown_agent_name_lists_the_choices_in_one_line():
    with pytest.raises(ValueError) as err:
        make_agent("nope", FakePointEnv())
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("unknown agent 'nope'; choose one of: ")
    assert "oracle" in message and "random" in message and "'worldmodel.agents'" in message


def test_register_agent_makes_a_class_available_by_name(monkeypatch):
    monkeypatch.setattr(registry, "AGENTS", dict(AGENTS))

    @register_agent("scripted_zero")
    class Zero(_Scripted):
        def __init__(self, env):
            super().__init__(env, lambda t: np.zeros(2, np.float32))

    assert "scripted_zero" in available_agents()
    assert isinstance(make_agent("scripted_zero", FakePointEnv()), Zero)
    with pytest.raises(ValueError, match="already registered"):
        register_agent("scripted_zero")(RandomAgent)


def test_make_agent_passes_only_accepted_context_and_rejects_misspelt_params():
    env = FakePointEnv()
    agent = make_agent("random", env, seed=7, world_model=object())  # world_model: context, dropped
    assert isinstance(agent, RandomAgent) and agent.seed == 7
    with pytest.raises(ValueError) as err:
        make_agent("random", env, sed=3)
    assert str(err.value) == "agent 'random' does not accept parameter(s) sed; it accepts: seed"
    oracle = make_agent("oracle", env, horizon=4, samples=16, iterations=1, elites=4)
    assert (oracle.horizon, oracle.samples) == (4, 16)


def test_dotted_target_and_entry_point_plugins_resolve(monkeypatch):
    env = FakePointEnv()
    assert isinstance(make_agent_from_target("agents.random_agent:RandomAgent", env, seed=1), RandomAgent)
    assert isinstance(make_agent("agents.random_agent.RandomAgent", env), RandomAgent)
    fake = {
        "good": EntryPoint("good", "agents.random_agent:RandomAgent", registry.ENTRY_POINT_GROUP),
        "broken": EntryPoint("broken", "no_such_module_xyz:Agent", registry.ENTRY_POINT_GROUP),
    }
    monkeypatch.setattr(registry, "_plugin_entry_points", lambda: fake)
    assert available_agents() == sorted({"broken", "good", *registry.AGENTS})
    assert isinstance(make_agent("good", env), RandomAgent)  # the broken plug-in does not affect it
    with pytest.raises(ValueError) as err:
        make_agent("broken", env)
    assert "\n" not in str(err.value)
    assert "'broken'" in str(err.value) and "no_such_module_xyz:Agent" in str(err.value)
    assert "ModuleNotFoundError" in str(err.value)


def test_random_agent_is_deterministic_per_episode_index():
    env = FakePointEnv()
    obs, info = env.reset(seed=0)

    def episode_actions(agent):
        agent.reset(obs, info)
        return np.stack([agent.act(obs) for _ in range(5)])

    a, b = RandomAgent(env, seed=3), RandomAgent(env, seed=3)
    first = episode_actions(a)
    np.testing.assert_array_equal(first, episode_actions(b))
    second = episode_actions(a)
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(second, episode_actions(b))


# ---- fault isolation -------------------------------------------------------------------------------

INVALID = "agent 'faulty' returned an invalid action"


@pytest.mark.parametrize(
    "make_action, reason",
    [
        (_raise, "agent 'faulty' raised in act at step 0: RuntimeError: boom second line"),
        (
            lambda t: np.array([np.nan, 0.0], np.float32),
            f"{INVALID} at step 0: action is not finite: [nan, 0.0]",
        ),
        (lambda t: np.zeros(3, np.float32), f"{INVALID} at step 0: action has shape (3,), expected (2,)"),
        (
            lambda t: np.array(["a", "b"]),
            f"{INVALID} at step 0: action has dtype <U1, which cannot be cast to float32",
        ),
        (
            lambda t: np.zeros(2) if t < 3 else None,
            f"{INVALID} at step 2: action has shape (), expected (2,)",
        ),
    ],
    ids=["raises", "nan", "wrong_shape", "wrong_dtype", "none_later"],
)
def test_faulty_agent_gives_a_failed_record_with_the_reason_not_an_exception(make_action, reason):
    env = FakePointEnv()
    record = run_episode(env, _Scripted(env, make_action), seed=0, agent_name="faulty")
    assert record.failure == reason
    assert record.success is False
    assert record.steps == len(record.distances) - 1
    record.to_dict()  # stays serialisable


def test_castable_actions_are_accepted():
    env = FakePointEnv()
    record = run_episode(env, _Scripted(env, lambda t: [0.0, 0.0]), seed=0, max_steps=5)  # a list of floats
    assert record.failure is None and record.steps == 5 and len(record.distances) == 6
    record = run_episode(env, _Scripted(env, lambda t: np.zeros(2, np.float64)), seed=0, max_steps=2)
    assert record.failure is None


def test_env_failure_ends_the_episode_with_its_reason():
    env = FakePointEnv(fail_at_step=3)
    record = run_episode(env, RandomAgent(env), seed=0, record_frames=True)
    assert record.failure == "env failure at step 3: simulator instability: fake"
    assert record.steps == 3 and len(record.frames) == 4 and record.success is False


def test_agent_reset_error_is_isolated():
    class NeedsGoal(_Scripted):
        def reset(self, observation, info):
            raise KeyError("goal_state")

    env = FakePointEnv()
    record = run_episode(env, NeedsGoal(env, lambda t: np.zeros(2)), seed=0)
    assert record.failure == "agent 'NeedsGoal' raised in reset: KeyError: 'goal_state'"
    assert record.steps == 0 and math.isnan(record.ms_per_step)


# ---- oracle ----------------------------------------------------------------------------------------


def test_oracle_requires_the_simulator_api():
    class NoSimulator(FakePointEnv):
        simulate = None

    with pytest.raises(TypeError, match="NoSimulator lacks simulate"):
        OracleAgent(NoSimulator())


@pytest.mark.parametrize("planner", ["cem", "mppi"])
def test_oracle_reaches_goals_in_the_fake_env(planner):
    env = FakePointEnv()
    agent = make_agent("oracle", env, planner=planner, horizon=6, samples=64, iterations=2)
    records = [run_episode(env, agent, seed=s, agent_name="oracle") for s in range(3)]
    assert all(r.success and r.failure is None for r in records), [r.to_dict() for r in records]


def test_oracle_beats_random_on_pointmass_open():
    envs = pytest.importorskip("envs")
    env = envs.make("pointmass_open")
    try:
        results = {}
        for name in ("random", "oracle"):
            agent = make_agent(name, env)
            results[name] = [run_episode(env, agent, seed=s, agent_name=name, max_steps=60) for s in range(3)]
    finally:
        env.close()
    oracle, random = results["oracle"], results["random"]
    assert all(r.failure is None for r in oracle + random)
    assert sum(r.success for r in oracle) == 3
    assert statistics.mean(r.final_distance for r in oracle) < statistics.mean(
        r.final_distance for r in random
    )
    ms = statistics.median(r.ms_per_step for r in oracle)
    print(f"\noracle (default budget) on pointmass_open: median {ms:.1f} ms per act")


def test_oracle_act_time_is_reported():
    """Not a timing assertion: prints the default budget's ms per act on the fake env (pure planner cost)."""
    env = FakePointEnv()
    agent = make_agent("oracle", env)
    obs, info = env.reset(seed=0)
    agent.reset(obs, info)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        action = agent.act(obs)
        times.append((time.perf_counter() - start) * 1000)
        obs, *_ = env.step(action)
    print(f"\noracle planner overhead (fake env): median {statistics.median(times):.1f} ms per act")
