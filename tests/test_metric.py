"""The planning metric: learnt temporal distance on a synthetic chain, save/load, agents with cost=metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import make_agent
from tests.model_configs import dynamics_config, high_level_config, latent_config, metric_config, tiny_world_model
from worldmodel.data.latents import LatentTrajectories
from worldmodel.errors import IncompatibleCheckpointError
from worldmodel.evaluation.metric_eval import correlations, distance_field, metric_of_steps
from worldmodel.models import get_preset
from worldmodel.training.metric_stage import MetricStageConfig, train_metric_stage
from worldmodel.world_model import WorldModel

torch.set_num_threads(1)
STATES = 16


def chain_latents(episodes=40, length=40, dz=8, seed=0):
    """Random walks (steps -1, 0, +1) on a chain of ``STATES`` cells; each cell has a fixed random latent.

    Returns the trajectories and the cell index of every frame ``(N,)``.
    """
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(STATES, dz)).astype(np.float32)
    cells, starts = [], [0]
    for _ in range(episodes):
        c = [int(rng.integers(STATES))]
        for _ in range(length - 1):
            c.append(int(np.clip(c[-1] + rng.integers(-1, 2), 0, STATES - 1)))
        cells += c
        starts.append(len(cells))
    cells = np.array(cells)
    actions = np.zeros((len(cells), 1), np.float32)
    return LatentTrajectories.build(torch.from_numpy(table[cells]), actions, starts, 0.1), cells, table


@pytest.fixture(scope="module")
def trained_chain(tmp_path_factory):
    data, _cells, table = chain_latents()
    cfg = MetricStageConfig(steps=600, batch_size=256, hidden=64, dim=8, cap=32.0, penalty=3.0, lr=3e-3,
                            warmup=20, checkpoint_every=1000)
    model, summary = train_metric_stage(data, cfg, run_dir=tmp_path_factory.mktemp("metric"), seed=0,
                                        resume=False, record={})
    return model, summary, table


def test_one_step_constraint_holds_on_training_pairs(trained_chain):
    model, _, table = trained_chain
    z = torch.from_numpy(table)
    with torch.no_grad():
        steps = model.distance(z[:-1], z[1:])  # neighbouring cells: one env step apart
    assert float(steps.max()) <= 1.1, steps


def test_learnt_distance_ranks_far_pairs_above_near_pairs_and_spreads_beyond_near_pairs(trained_chain):
    model, _, table = trained_chain
    z = torch.from_numpy(table)
    i, j = np.triu_indices(STATES, k=1)
    with torch.no_grad():
        learnt = model.distance(z[i], z[j]).numpy()
    true = (j - i).astype(float)
    assert correlations(learnt, true)["spearman"] > 0.9
    assert learnt[true >= 10].min() > learnt[true <= 2].max()
    with torch.no_grad():
        end_to_end = float(model.distance(z[0], z[-1]))
    # at this small budget the spread is still growing: well beyond a few steps, never beyond the 15 true steps
    assert 4.0 < end_to_end <= (STATES - 1) * 1.1


def test_grid_geodesic_goes_round_walls():
    free = np.ones((5, 5), bool)
    free[2, :4] = False  # a wall across x = 2 with a gap at y = 4
    field = distance_field(free, (0, 0), cell=1.0)
    assert field[4, 0] == pytest.approx(4 + 4 * np.sqrt(2))  # two legs of (2, 4) through the gap (2, 4)
    assert field[1, 0] == pytest.approx(1.0) and np.isinf(field[2, 0])


def make_world_model(metric: bool):
    return tiny_world_model(metric_cfg=metric_config(32, dim=8, hidden=32) if metric else None)


def test_world_model_save_load_round_trip_keeps_the_metric(tmp_path):
    wm = make_world_model(metric=True)
    with torch.no_grad():
        for p in wm.metric.parameters():
            p.add_(torch.randn_like(p))
    z, goal = torch.randn(5, 32), torch.randn(32)
    wm.save(tmp_path / "world_model.pt")
    loaded = WorldModel.load(tmp_path)
    assert loaded.default_cost == "metric"
    torch.testing.assert_close(loaded.distance(z, goal), wm.distance(z, goal))
    torch.testing.assert_close(loaded.distance(z, goal, cost="latent"), (z - goal).abs().mean(-1))


def make_embedded_world_model(space: str = "metric", high_space: str | None = None) -> WorldModel:
    """Level 1 in ``space`` and level 2 in ``high_space`` (None: the same): the 32-d PCA latent or the metric's
    8-d embedding of it, the metric's weights and scale perturbed."""
    torch.manual_seed(0)
    dims = [8 if name == "metric" else 32 for name in (space, high_space or space)]
    wm = WorldModel(get_preset("tiny"), latent_config(space=space, high_space=high_space), dynamics_config(dims[0], 2),
                    high_level_config(dims[1], 2), env_name="pointmass_tworooms",
                    env_id="worldmodel/PointMassTwoRooms-v0", image_size=64, action_low=-1.0, action_high=1.0,
                    metric_cfg=metric_config(32, dim=8, hidden=32))
    with torch.no_grad():
        for p in wm.metric.parameters():
            p.add_(torch.randn_like(p))
    wm.metric.fit_state_scale(torch.randn(64, 32))
    return wm


def test_metric_state_space_encodes_to_the_embedding_and_keeps_the_distance(tmp_path):
    wm = make_embedded_world_model()
    assert wm.state_space == "metric" and wm.latent_dim == 8 and wm.describe()["latent_space"] == "metric"
    assert float(wm.metric.state_scale) != 1.0
    frames = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    z = wm.head(frames)  # the PCA latent under the state
    states = wm.encode(frames)
    assert states.shape == (4, 8)
    torch.testing.assert_close(states, wm.metric.embed(z) / wm.metric.state_scale)
    # the planning cost between states is the metric between the latents they came from, in env steps
    torch.testing.assert_close(wm.distance(states, states[0]), wm.metric.distance(z, z[0]))
    assert wm.rollout(states[0], torch.zeros(3, 5, 2)).shape == (3, 5, 8)
    loaded = WorldModel.load(wm.save(tmp_path / "world_model.pt"))
    assert loaded.state_space == "metric"
    torch.testing.assert_close(loaded.encode(frames), states)
    torch.testing.assert_close(loaded.distance(states, states[0]), wm.distance(states, states[0]))


def test_metric_state_space_needs_a_metric_and_matching_level_dims():
    common = dict(env_name="pointmass_tworooms", image_size=64, action_low=-1.0, action_high=1.0)
    with pytest.raises(ValueError, match="needs a planning metric"):
        WorldModel(get_preset("tiny"), latent_config(space="metric"), dynamics_config(8, 2), high_level_config(8, 2),
                   **common)
    with pytest.raises(ValueError, match="metric state 8, dynamics 32"):
        WorldModel(get_preset("tiny"), latent_config(space="metric"), dynamics_config(32, 2),
                   high_level_config(32, 2), metric_cfg=metric_config(32, dim=8), **common)
    with pytest.raises(ValueError, match="unknown latent space 'tokens'"):
        WorldModel(get_preset("tiny"), latent_config(space="tokens"), dynamics_config(32, 2),
                   high_level_config(32, 2), **common)


def test_level_2_in_the_embedding_reads_level_1_latents_through_high_state(tmp_path):
    wm = make_embedded_world_model("pca", "metric")
    assert (wm.state_space, wm.high_space, wm.latent_dim, wm.high_latent_dim) == ("pca", "metric", 32, 8)
    z = torch.randn(5, 32)
    high = wm.high_state(z)
    torch.testing.assert_close(high, wm.metric.state(z))
    torch.testing.assert_close(wm.high_distance(high, high[0]), wm.distance(z, z[0]))  # same metric, either space
    assert wm.high_rollout(high[0], torch.zeros(3, 4, wm.code_dim)).shape == (3, 4, 8)
    loaded = WorldModel.load(wm.save(tmp_path / "world_model.pt"))
    assert (loaded.state_space, loaded.high_space) == ("pca", "metric")
    torch.testing.assert_close(loaded.high_state(z), high)
    same = make_world_model(metric=True)  # one space for both levels: high_state is the identity
    assert same.high_space == "pca" and same.high_state(z) is z
    with pytest.raises(ValueError, match="cannot predict in the pca space when level 1 predicts in the metric"):
        WorldModel(get_preset("tiny"), latent_config(space="metric", high_space="pca"), dynamics_config(8, 2),
                   high_level_config(32, 2), env_name="pointmass_tworooms", image_size=64, action_low=-1.0,
                   action_high=1.0, metric_cfg=metric_config(32, dim=8))


def test_hierarchical_agent_plans_level_2_in_its_own_space():
    from tests.test_latent_agents import ImageEnv

    env = ImageEnv()
    obs, info = env.reset()
    wm = make_embedded_world_model("pca", "metric")
    agent = make_agent("hierarchical", env, world_model=wm, seed=0, reach=-1.0, samples=16, iterations=1,
                       elites=4, high_samples=16, high_iterations=1, high_elites=4)
    agent.reset(obs, info)
    for _ in range(2):  # the second step reads a level-2 velocity
        action = agent.act(env.image())
    assert action.shape == (2,) and np.all(np.abs(action) <= 1.0)
    diagnostics = agent.diagnostics
    assert diagnostics["subgoal"].shape == (8,) and diagnostics["imagined_high"].shape == (agent.high_horizon, 8)
    assert diagnostics["imagined"].shape == (agent.horizon, 32) and diagnostics["predicted_steps"] == 4 * wm.k


def test_files_from_before_the_state_space_load_as_pca_with_unit_scale(tmp_path):
    state = torch.load(make_world_model(metric=True).save(tmp_path / "world_model.pt"), weights_only=True)
    del state["configs"]["latent"]["space"], state["state_dict"]["metric.state_scale"]
    torch.save(state, tmp_path / "old.pt")
    old = WorldModel.load(tmp_path / "old.pt")
    assert old.state_space == "pca" and old.latent_dim == 32 and float(old.metric.state_scale) == 1.0


def test_metric_of_steps_reads_the_metric_off_held_out_pairs_h_steps_apart(trained_chain):
    model, _summary, _table = trained_chain
    data, _cells, _ = chain_latents()  # the metric's own data: the table reads its held-out episodes
    table = metric_of_steps(model.distance, data, steps=(1, 4, 16, 64))
    assert list(table) == [1, 4, 16]  # episodes of 40 frames hold no pair 64 steps apart
    # a random walk covers about sqrt(h) cells in h steps, and the metric counts cells: it grows, sub-linearly
    medians = [table[h]["median"] for h in (1, 4, 16)]
    assert 0 < medians[0] < medians[1] < medians[2] < 16
    assert all(table[h]["p75"] >= table[h]["median"] for h in table)
    starts = data.windows(5, split="holdout")
    with torch.no_grad():
        expected = model.distance(data.z[starts], data.z[starts + 4]).median()
    assert table[4]["median"] == pytest.approx(float(expected))


def test_world_model_without_metric_loads_plans_in_latent_and_refuses_cost_metric(tmp_path):
    wm = make_world_model(metric=False)
    state = torch.load(wm.save(tmp_path / "world_model.pt"), weights_only=True)
    del state["configs"]["metric"]  # as written before the metric existed
    torch.save(state, tmp_path / "old.pt")
    old = WorldModel.load(tmp_path / "old.pt")
    assert old.metric is None and old.default_cost == "latent"
    with pytest.raises(IncompatibleCheckpointError, match="no planning metric"):
        old.distance(torch.zeros(1, 32), torch.zeros(32), cost="metric")
    with pytest.raises(ValueError, match="unknown planning cost 'l2'"):
        old.distance(torch.zeros(1, 32), torch.zeros(32), cost="l2")


@pytest.mark.parametrize("name", ["mpc", "hierarchical"])
def test_agents_plan_with_cost_metric(name):
    from tests.test_latent_agents import ImageEnv

    env = ImageEnv()
    obs, info = env.reset()
    small = {"samples": 16, "iterations": 1, "elites": 4}
    if name == "hierarchical":
        small.update(high_samples=16, high_iterations=1, high_elites=4)
    agent = make_agent(name, env, world_model=make_world_model(metric=True), seed=0, cost="metric", **small)
    agent.reset(obs, info)
    action = agent.act(obs)
    assert action.shape == (2,) and np.all(np.abs(action) <= 1.0)
    wm = agent.wm
    expected = wm.metric.distance(agent.diagnostics["imagined"][-1], agent.goal)
    assert agent.distance(agent.diagnostics["imagined"][-1], agent.goal) == pytest.approx(float(expected))
    with pytest.raises(IncompatibleCheckpointError, match="no planning metric"):
        make_agent(name, env, world_model=make_world_model(metric=False), cost="metric")


@pytest.mark.slow
def test_pretrain_metric_stage_end_to_end_saves_the_metric_and_its_correlation(tmp_path):
    import json

    from tests.test_pretrain_levels import pretrain

    run = tmp_path / "run"
    pretrain(run, tmp_path / "cache", "metric.steps=20", "metric.batch_size=32")  # default stages end with metric
    summary = json.loads((run / "summary.json").read_text())
    assert summary["metric"]["steps"] == 20
    table = summary["cost_correlation"]
    assert set(table) == {"task", "geodesic"} and set(table["geodesic"]) == {"latent", "metric", "task"}
    assert summary["metric_steps"] and all(v["p75"] >= v["median"] for v in summary["metric_steps"].values())
    basin = summary["cost_basin"]
    assert set(basin) == {"0.5 m", "1 m", "2 m"}
    for row in basin.values():
        assert set(row) == {"latent", "metric"} and all(0.0 <= v <= 1.0 for v in row.values())
    profile = summary["cost_profile"]
    assert set(profile) == {"latent", "metric", "pca"}
    assert all(set(row) == {"0.1 m", "0.5 m", "1 m", "2 m"} for row in profile.values())
    assert all(v is None or v > 0 for row in profile.values() for v in row.values())
    jumps = summary["cost_smoothness"]
    assert set(jumps) == {"median", "p99", "max", "over_1", "over_3"}
    assert 0 <= jumps["median"] <= jumps["p99"] <= jumps["max"] and 0 <= jumps["over_3"] <= jumps["over_1"] <= 1
    wm = WorldModel.load(run)
    assert wm.metric is not None and wm.default_cost == "metric"
    # re-running the levels without the metric stage keeps the metric trained in this run
    pretrain(run, tmp_path / "cache", "stages=[dynamics]")
    assert WorldModel.load(run).metric is not None
