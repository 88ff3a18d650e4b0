"""The latent agents (mpc, hierarchical) on a random-init world model: shapes, diagnostics, determinism, budget."""

from __future__ import annotations

import time
import types
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import AGENTS, make_agent
from tests.model_configs import tiny_world_model
from worldmodel.errors import IncompatibleCheckpointError

torch.set_num_threads(1)


class ImageEnv(gym.Env):
    """64x64 random images; the goal image in ``info`` like our envs."""

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self, size=64, action_dim=2):
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self.spec = gym.envs.registration.EnvSpec("worldmodel/PointMassTwoRooms-v0")
        self.rng = np.random.default_rng(0)

    def image(self):
        return self.rng.integers(0, 255, self.observation_space.shape, dtype=np.uint8)

    def reset(self, *, seed=None, options=None):
        return self.image(), {"goal_image": self.image()}


@pytest.fixture(scope="module")
def world_model():
    """Default sizes (tiny encoder at 64 px, Dz 32, default level-1/level-2 widths), random weights."""
    return tiny_world_model()


@pytest.mark.parametrize("name", ["mpc", "hierarchical"])
def test_latent_agent_acts_in_bounds_with_diagnostics_and_is_seeded(world_model, name):
    assert name in AGENTS
    env = ImageEnv()
    obs, info = env.reset()
    actions = []
    for _ in range(2):
        agent = make_agent(name, env, world_model=world_model, seed=5)
        agent.reset(obs, info)
        actions.append([agent.act(obs) for _ in range(3)])
    for action in actions[0]:
        assert action.shape == (2,) and action.dtype == np.float32 and np.all(np.abs(action) <= 1.0)
    np.testing.assert_array_equal(np.stack(actions[0]), np.stack(actions[1]))
    diag = agent.diagnostics
    assert isinstance(diag["predicted_cost"], float) and np.isfinite(diag["predicted_cost"])
    assert diag["imagined"].shape == ((10 if name == "mpc" else world_model.k), 32)
    if name == "hierarchical":
        assert diag["subgoal"].shape == (32,)
        assert torch.equal(diag["subgoal"], diag["imagined_high"][0])


@pytest.mark.parametrize("name", ["mpc", "hierarchical"])
def test_latent_agent_default_budget_under_100ms_per_action(world_model, name):
    env = ImageEnv()
    obs, info = env.reset()
    agent = make_agent(name, env, world_model=world_model)
    agent.reset(obs, info)
    agent.act(obs)  # warm-up
    times = []
    for _ in range(7):
        start = time.perf_counter()
        agent.act(obs)
        times.append(time.perf_counter() - start)
    # The fastest of 7 (as timeit does): the cost of the budget itself, not of other jobs sharing the CPU.
    assert min(times) < 0.100, f"{name}: {1000 * min(times):.0f} ms per action (median {1000 * np.median(times):.0f})"


def test_latent_agents_refuse_an_incompatible_env_and_a_missing_model(world_model):
    with pytest.raises(IncompatibleCheckpointError, match="action space"):
        make_agent("mpc", ImageEnv(action_dim=3), world_model=world_model)
    with pytest.raises(ValueError, match="checkpoint="):
        make_agent("hierarchical", ImageEnv())


def test_mpc_with_replan_every_acts_on_each_plan_for_that_many_steps(world_model):
    env = ImageEnv()
    obs, info = env.reset()
    agent = make_agent("mpc", env, world_model=world_model, replan_every=3, horizon=5, samples=16, elites=4, seed=1)
    agent.reset(obs, info)
    plans, actions = [], []
    for _ in range(7):
        actions.append(agent.act(obs))
        if not plans or agent.last_plan is not plans[-1]:
            plans.append(agent.last_plan)
    assert len(plans) == 3  # planned at steps 0, 3 and 6
    for step, action in enumerate(actions):
        np.testing.assert_array_equal(action, plans[step // 3].actions[step % 3].numpy())
    for bad, match in (({"replan_every": 0}, "replan_every must be >= 1"),
                       ({"replan_every": 6, "horizon": 5}, "at most the horizon")):
        with pytest.raises(ValueError, match=match):
            make_agent("mpc", env, world_model=world_model, **bad)


def test_latent_agents_plan_over_the_finish_horizon_once_the_goal_is_near(world_model):
    env = ImageEnv()
    obs, info = env.reset()
    near = {"mpc": {"finish_within": 1e9, "finish_horizon": 4}, "hierarchical": {"reach": 1e9, "finish_horizon": 4}}
    far = {"mpc": {"finish_within": -1.0, "finish_horizon": 4}, "hierarchical": {"reach": -1.0, "finish_horizon": 4}}
    for name in ("mpc", "hierarchical"):
        for params, steps in ((near[name], 4), (far[name], 10 if name == "mpc" else world_model.k)):
            agent = make_agent(name, env, world_model=world_model, seed=2, **params)
            agent.reset(obs, info)
            for _ in range(2):  # the second plan is warm-started from the first
                agent.act(obs)
            assert agent.diagnostics["imagined"].shape[0] == steps
    with pytest.raises(ValueError, match="set both or neither"):
        make_agent("mpc", env, world_model=world_model, finish_horizon=4)
    with pytest.raises(ValueError, match="finish_horizon must be in"):
        make_agent("mpc", env, world_model=world_model, finish_within=0.1, finish_horizon=11)
    with pytest.raises(ValueError, match="finish_horizon must be in"):
        make_agent("hierarchical", env, world_model=world_model, finish_horizon=0)


def test_hierarchical_hands_over_to_level_1_when_the_goal_is_within_reach(world_model):
    env = ImageEnv()
    obs, info = env.reset()
    far = make_agent("hierarchical", env, world_model=world_model, reach=0.0)
    near = make_agent("hierarchical", env, world_model=world_model, reach=1e9)
    for agent in (far, near):
        agent.reset(obs, info)
        agent.act(obs)
    assert not torch.equal(far.diagnostics["subgoal"], far.diagnostics["goal"])
    assert far.diagnostics["imagined_high"].shape == (far.high_horizon, 32)
    assert torch.equal(near.diagnostics["subgoal"], near.diagnostics["goal"])
    # no metric in this model: the default reach is 0 in latent L1, so only the goal image itself hands over
    assert make_agent("hierarchical", env, world_model=world_model).reach == 0.0


def test_hierarchical_level_2_heads_for_the_goal_with_its_first_jump(world_model, monkeypatch):
    """On a level 2 whose codes add up (z_j = z + the first j codes summed, @ P), every order of the same codes
    ends on the goal. Only the running term (``high_running_weight``, default 1) asks the first jump, the one
    carried out, to head there; without it the plan may leave the progress to later jumps, forever."""
    env = ImageEnv()
    obs, info = env.reset()
    generator = torch.Generator().manual_seed(0)
    projection = torch.randn(world_model.code_dim, 32, generator=generator)
    monkeypatch.setattr(world_model, "high_rollout", lambda z, codes, d=None: z + codes.cumsum(dim=1) @ projection)
    step = 0.7 * torch.where(torch.rand(world_model.code_dim, generator=generator) < 0.5, -1.0, 1.0)
    gaps = {}
    for weight in (0.0, None):
        options = {} if weight is None else {"high_running_weight": weight}
        # a budget that lets CEM settle: the test is about what the cost prefers, not about the default budget
        agent = make_agent("hierarchical", env, world_model=world_model, seed=3, high_samples=256,
                           high_iterations=8, **options)
        agent.reset(obs, info)
        z = world_model.encode(obs)[0]
        agent.goal = z + (4 * step) @ projection  # four jumps of 0.7, or one of 2.8 inside code_bound 3
        agent.act(obs)
        start = (z - agent.goal).abs().mean()
        gaps[weight] = [float((s - agent.goal).abs().mean() / start) for s in agent.diagnostics["imagined_high"]]
    assert gaps[None][0] < 0.8 * gaps[0.0][0], gaps
    assert np.mean(gaps[None]) < 0.7 * np.mean(gaps[0.0]), gaps
    assert max(gaps[0.0][-1], gaps[None][-1]) < 0.1, gaps  # both plans end at the goal


def test_hierarchical_level_1_pays_its_distance_to_the_goal_by_goal_weight(world_model, monkeypatch):
    """Level 2's subgoal is a prediction, not a state level 1 can reach. ``goal_weight`` (default 1) keeps level 1
    paying its distance to the goal as well: here a larger weight carries its plan past the subgoal, toward the
    goal, where without the term it stops at the subgoal."""
    env = ImageEnv()
    obs, info = env.reset()
    z = world_model.encode(obs)[0]
    direction = torch.zeros(32)
    direction[:2] = 1.0
    lift = torch.zeros(2, 32)
    lift[0, 0] = lift[1, 1] = 0.5  # a toy level 1: each action moves the state along ``direction``, 8 steps reach 4
    monkeypatch.setattr(world_model, "rollout", lambda z0, actions, d=None: z0 + actions.cumsum(dim=1) @ lift)
    subgoal = z + 2.0 * direction
    subgoal[5] += 1.0  # off every state the toy level 1 can reach
    assert make_agent("hierarchical", env, world_model=world_model).goal_weight == 1.0
    reached = {}
    for weight in (0.0, 2.0):
        agent = make_agent("hierarchical", env, world_model=world_model, seed=4, use_decoder=False, reach=0.0,
                           goal_weight=weight, iterations=6)
        agent.reset(obs, info)
        agent.goal = z + 6.0 * direction
        monkeypatch.setattr(agent, "_plan_high", lambda *_: (types.SimpleNamespace(cost=0.0), subgoal[None]))
        agent.act(obs)
        reached[weight] = float(agent.diagnostics["imagined"][-1, 0] - z[0])
    assert abs(reached[0.0] - 2.0) < 0.5 and reached[2.0] > 2.8, reached


def test_hierarchical_with_stall_progress_plans_level_2_only_where_level_1_alone_stalls(world_model, monkeypatch):
    """Level 1 plans alone while the cost to the goal falls by ``stall_progress`` every k steps; once it does not,
    level 2 plans for k steps at least, until the cost is that much below where level 1 stalled or for
    ``stall_patience`` steps, after which level 1 plans alone again."""
    env = ImageEnv()
    obs, info = env.reset()
    k = world_model.k
    cheap = dict(samples=8, elites=2, iterations=1, high_samples=8, high_elites=2, high_iterations=1)

    def levels(costs: list[float], **options) -> list[int]:
        agent = make_agent("hierarchical", env, world_model=world_model, seed=0, **cheap, **options)
        agent.reset(obs, info)
        planning_distance, scripted = agent.distance, iter(costs)
        monkeypatch.setattr(agent, "distance", lambda z, goal: torch.tensor(next(scripted)) if z.ndim == 1
                            else planning_distance(z, goal))
        out = []
        for _ in costs:
            agent.act(obs)
            out.append(agent.diagnostics["level"])
        return out

    falling = [10.0 - 0.2 * i for i in range(3 * k)]
    assert levels(falling, stall_progress=0.1) == [1] * (3 * k)
    stuck_then_moving = [5.0] * (2 * k) + [4.0] * 3
    assert levels(stuck_then_moving, stall_progress=0.1) == [1] * k + [2] * k + [1] * 3
    assert levels(stuck_then_moving) == [2] * (2 * k + 3)  # the default: level 2 every step
    patience = k + 2
    stuck = [5.0] * (2 * k + 2 * patience)
    assert levels(stuck, stall_progress=0.1, stall_patience=patience) == ([1] * k + [2] * patience) * 2
    with pytest.raises(ValueError, match="stall_patience must be at least k"):
        make_agent("hierarchical", env, world_model=world_model, stall_progress=0.1, stall_patience=k - 1)


def test_hierarchical_level_1_alone_plans_as_mpc_does_until_level_2_first_plans(world_model, monkeypatch):
    """With mpc's budget and its cost (running weight doubled, since level 1 adds its final distance once more:
    twice mpc's cost), the hierarchical agent's level 1 draws the same samples and picks the same plans, so
    the two agents act alike until a stall hands a step to level 2: pusher's agents differ only there."""
    env = ImageEnv()
    obs, info = env.reset()
    observations = [env.image() for _ in range(world_model.k)]

    def rollout(z, actions, d):  # a point that the actions move: where the plan ends and its path both count
        path = torch.cumsum(actions, dim=1)
        return z + torch.nn.functional.pad(path, (0, z.shape[-1] - path.shape[-1]))

    monkeypatch.setattr(world_model, "rollout", rollout)
    budget = dict(horizon=6, samples=16, iterations=2, elites=4, seed=3)

    def actions(running_weight: float) -> list[np.ndarray]:
        mpc = make_agent("mpc", env, world_model=world_model, running_weight=0.1, **budget)
        hierarchical = make_agent("hierarchical", env, world_model=world_model, running_weight=running_weight,
                                  goal_weight=1.0, stall_progress=0.01, reach=0.0, **budget)
        pairs = []
        for agent in (mpc, hierarchical):
            agent.reset(obs, info)
            agent.goal = agent.goal + 2.0
        for observation in observations:  # level 2 cannot plan before k steps of level 1 alone
            pairs.append((mpc.act(observation), hierarchical.act(observation)))
            assert hierarchical.diagnostics["level"] == 1
        return pairs

    for a, b in actions(0.2):
        np.testing.assert_allclose(b, a, atol=1e-5)
    assert max(np.abs(b - a).max() for a, b in actions(1.0)) > 1e-2  # another cost, other plans


@pytest.mark.parametrize("jumps", [1, 2])
def test_hierarchical_subgoal_is_level_2s_state_at_the_end_of_level_1s_horizon(world_model, jumps):
    env = ImageEnv()
    obs, info = env.reset()
    agent = make_agent("hierarchical", env, world_model=world_model, horizon=jumps * world_model.k, samples=8, elites=2,
                       iterations=1)
    agent.reset(obs, info)
    agent.act(obs)
    assert agent.diagnostics["imagined"].shape[0] == jumps * world_model.k
    assert torch.equal(agent.diagnostics["subgoal"], agent.diagnostics["imagined_high"][jumps - 1])


def test_shaping_weight_scales_the_task_costs_reach_term_at_both_levels():
    from worldmodel.models.metric import MetricConfig
    from worldmodel.models.shaping import ShapingConfig

    wm = tiny_world_model(task_metric_cfg=MetricConfig(32, dim=8, hidden=16, layers=1),
                          shaping_cfg=ShapingConfig(8, hidden=16), planning_cost="task")
    z, goal = torch.randn(5, 32), torch.randn(32)
    reach = wm.shaping(wm.embed_state(z, "task"))
    bare = wm.distance(z, goal, shaping_weight=0.0)
    assert bool((reach > 0).all())
    torch.testing.assert_close(wm.distance(z, goal), bare + reach)
    torch.testing.assert_close(wm.distance(z, goal, shaping_weight=0.5), bare + 0.5 * reach)
    env = ImageEnv()
    for name in ("mpc", "hierarchical"):
        agent = make_agent(name, env, world_model=wm, shaping_weight=0.0)
        torch.testing.assert_close(agent.distance(z, goal), bare)
        if name == "hierarchical":
            torch.testing.assert_close(agent.high_distance(z, goal), bare)
        with pytest.raises(ValueError, match="shaping_weight"):
            make_agent(name, env, world_model=wm, shaping_weight=-1.0)
