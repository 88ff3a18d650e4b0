"""The real ``python -m experiments.plan`` command with tiny budgets, and its TensorBoard inspection.

The agents defined here are used by the command through ``agent._target_=tests.test_plan_command:...``.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from PIL import Image

import envs
from agents import EpisodeRecord, available_agents, run_episode
from agents.rollout_inspection import FrameBank, RolloutInspector
from agents.runner import EpisodeJob, EpisodeResult, run_one, summarize
from tests.model_configs import tiny_world_model
from worldmodel.io.tb import CAPTION_HEIGHT, read_event_images, read_event_scalars, read_event_tags

ROOT = Path(__file__).resolve().parents[1]
HERE = "tests.test_plan_command"


class FaultyAgent:
    """Fine in the episode with seed 0; raises (seed 1), returns NaN (seed 2) or a wrong shape (seed 3)."""

    def __init__(self, env, seed=0):
        self.space, self.seed = env.action_space, seed

    def reset(self, observation, info):
        self.t = 0

    def act(self, observation):
        self.t += 1
        if self.t == 2 and self.seed == 1:
            raise RuntimeError("planner exploded")
        if self.t == 2 and self.seed == 2:
            return np.full(self.space.shape, np.nan, np.float32)
        if self.t == 2 and self.seed == 3:
            return np.zeros(self.space.shape[0] + 1, np.float32)
        return np.zeros(self.space.shape, np.float32)


class NeedsWorldModel:
    """An agent whose signature names ``world_model``: the command must find a checkpoint for it."""

    def __init__(self, env, world_model=None):
        self.space = env.action_space

    def reset(self, observation, info):
        pass

    def act(self, observation):
        return np.zeros(self.space.shape, np.float32)


def plan(run_dir: Path | None, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "experiments.plan", "env=pointmass_open", "tb.fps=20", *overrides]
    if run_dir is not None:
        cmd.append(f"hydra.run.dir={run_dir}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    env.pop("WORLDMODEL_DEBUG", None)
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"plan failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def gif_frames(data: bytes) -> tuple[int, tuple[int, int]]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "GIF"
    return image.n_frames, image.size


def test_random_agent_run_writes_summary_video_and_scalars(tmp_path):
    run = tmp_path / "run"
    result = plan(run, "agent=random", "episodes=2", "seed=7", "max_steps=5")
    assert f"run directory: {run}" in result.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["command"] == "plan" and summary["agent"] == "random" and summary["env"] == "pointmass_open"
    assert [e["seed"] for e in summary["episodes"]] == [7, 8]
    assert [e["steps"] for e in summary["episodes"]] == [5, 5]
    assert summary["success_rate"] == 0.0  # 5 random steps never reach a goal sampled away from the start
    finals = [e["final_distance"] for e in summary["episodes"]]
    assert summary["mean_final_distance"] == pytest.approx(sum(finals) / 2)
    assert summary["ms_per_step"]["steps"] == 10
    assert 0 < summary["ms_per_step"]["median"] < 50 and summary["ms_per_step"]["mean"] > 0
    assert summary["failed_episodes"] == {"count": 0, "reasons": {}}
    assert all(e["failure"] is None and e["agent"] is None for e in summary["episodes"])
    assert summary["cost_calibration"] is None  # random predicts no cost

    tb = run / "tb"
    tags = read_event_tags(tb)
    assert {"episode_000/video", "episode_001/video"} <= set(tags["images"])
    n_frames, (width, height) = gif_frames(read_event_images(tb, "episode_001/video")[0][1])
    assert n_frames == 6 and (width, height) == (64 + 2 + 64, CAPTION_HEIGHT + 64)  # reset + 5 steps; frame | goal
    distance = read_event_scalars(tb, "episode_000/distance")
    assert [s for s, _ in distance] == list(range(6))
    assert distance[-1][1] == pytest.approx(summary["episodes"][0]["final_distance"], rel=1e-5)
    assert [v for _, v in read_event_scalars(tb, "episodes/success")] == [0.0, 0.0]
    assert read_event_scalars(tb, "plan/success_rate")[0][1] == 0.0
    assert read_event_scalars(tb, "plan/ms_per_step_median")[0][1] == pytest.approx(
        summary["ms_per_step"]["median"], rel=1e-5)


def test_oracle_in_worker_processes_plays_the_same_episodes_as_in_process(tmp_path):
    params = {"horizon": 4, "samples": 16, "iterations": 1}
    run = tmp_path / "run"
    plan(run, "agent=oracle", *[f"agent.params.{k}={v}" for k, v in params.items()], "episodes=2",
         "max_steps=4", "seed=3", "workers=2", "tb.videos=0")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["params"] == params and summary["workers"] == 2
    job = EpisodeJob(env="pointmass_open", image_size=64, agent="oracle", params=params, seed=3, max_steps=4,
                     checkpoint=None, device="cpu", record_frames=False)
    here = [run_one(job, i).record.to_dict() for i in range(2)]
    for ours, theirs in zip(here, summary["episodes"]):
        assert theirs["seed"] == ours["seed"] and theirs["distances"] == pytest.approx(ours["distances"], rel=1e-6)
    assert here[0]["distances"][-1] < here[0]["distances"][0]  # the oracle approaches its goal
    assert "episode_000/video" not in read_event_tags(run / "tb")["images"]


def test_goal_steps_starts_and_ends_on_held_out_trajectories_within_twice_their_distance(tmp_path):
    from envs.trajectory_goals import trajectory_goals

    run = tmp_path / "run"
    result = plan(run, "agent=random", "env=pusher", "episodes=3", "goal_steps=20", "tb.enabled=false")
    assert "(goals 20 steps ahead on held-out trajectories)" in result.stdout
    summary = json.loads((run / "summary.json").read_text())
    goals = trajectory_goals(envs.make("pusher"), 3, 20, seed=0)
    assert summary["goal_steps"] == 20 and summary["goal_distance"] == pytest.approx(
        float(np.mean([g.distance for g in goals])))
    assert [e["distances"][0] for e in summary["episodes"]] == pytest.approx([g.distance for g in goals], rel=1e-5)
    assert all(g.distance >= envs.make("pusher").unwrapped.success_threshold for g in goals)
    assert [e["steps"] for e in summary["episodes"] if not e["success"]] == [40] * 3  # the anchors' budget: 2 x 20
    capped = plan(tmp_path / "capped", "agent=random", "env=pusher", "episodes=1", "goal_steps=20", "max_steps=2",
                  "tb.enabled=false")
    assert capped.returncode == 0
    assert json.loads((tmp_path / "capped" / "summary.json").read_text())["episodes"][0]["steps"] == 2


@pytest.mark.parametrize(("override", "expected"), [
    ("goal_steps=0", "error: goal_steps=0 is outside the held-out trajectories of PointMassEnv (1 to 100 env steps"),
    ("goal_steps=101", "error: goal_steps=101 is outside the held-out trajectories of PointMassEnv (1 to 100"),
])
def test_goal_steps_outside_the_trajectories_fails_in_one_line(tmp_path, override, expected):
    result = plan(tmp_path / "run", "agent=random", override, "episodes=1", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr[-2000:]


def test_faulty_agent_fails_only_its_own_episodes(tmp_path):
    run = tmp_path / "run"
    plan(run, f"agent={HERE}:FaultyAgent", "episodes=4", "max_steps=3", "tb.enabled=false")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["agent"] == "FaultyAgent"
    episodes = summary["episodes"]
    assert episodes[0]["failure"] is None and episodes[0]["steps"] == 3 and episodes[0]["agent"] is None
    target = f"{HERE}:FaultyAgent"
    assert episodes[1]["failure"] == (
        f"agent {target!r} raised in act at step 1: RuntimeError: planner exploded")
    assert episodes[2]["failure"].startswith(f"agent {target!r} returned an invalid action at step 1: "
                                             "action is not finite")
    assert episodes[3]["failure"] == (
        f"agent {target!r} returned an invalid action at step 1: action has shape (3,), expected (2,)")
    assert [e["steps"] for e in episodes] == [3, 1, 1, 1]
    assert all(e["agent"] == "FaultyAgent" and not e["success"] for e in episodes[1:])
    assert summary["failed_episodes"]["count"] == 3
    assert sum(summary["failed_episodes"]["reasons"].values()) == 3
    assert summary["target"] == target and not (run / "tb").exists()
    assert summary["cost_calibration"] is None  # realised costs are read off the TensorBoard encoding


@pytest.mark.parametrize(("override", "expected"), [
    ("agent=nosuchagent", f"error: unknown agent 'nosuchagent'; choose one of: {', '.join(available_agents())} "),
    ("env=nosuchenv", f"error: unknown env 'nosuchenv'; choose one of: {', '.join(sorted(envs.ENV_IDS))} "),
    ("device=gpu", "error: unknown device 'gpu'; use device=auto (CUDA when available, else CPU), cpu, cuda"),
])
def test_unknown_names_give_one_line_errors(tmp_path, override, expected):
    result = plan(tmp_path / "run", "agent=random", override, "episodes=1", "max_steps=1", check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr[-2000:]


def test_world_model_agent_without_checkpoint_names_the_path_and_the_command(tmp_path):
    root = tmp_path / "pretrain"
    result = plan(tmp_path / "run", f"agent._target_={HERE}:NeedsWorldModel", f"pretrain_root={root}",
                  "episodes=1", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"no pretrain run under {root}/pointmass_open/ (the default checkpoint)" in result.stderr
    assert "`python -m experiments.pretrain env=pointmass_open`" in result.stderr


def test_explicit_checkpoint_that_is_not_a_run_names_it_and_the_command(tmp_path):
    missing = tmp_path / "nope"
    result = plan(tmp_path / "run", "env=reacher", "agent=mpc", f"checkpoint={missing}", "episodes=1", check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert (f"checkpoint={missing} is not a pretrain run directory (no world_model.pt in it); pass one made by "
            "`python -m experiments.pretrain env=reacher`") in result.stderr


# ---- in-process: summary and the world-model views, with a tiny stand-in world model -----------------
def _record(seed, success, final, steps, ms, failure=None):
    return EpisodeRecord(seed=seed, success=success, final_distance=final, steps=steps, ms_per_step=ms,
                         distances=[1.0, final], failure=failure)


def test_summary_counts_failures_by_reason_and_pools_step_times():
    results = [
        EpisodeResult(0, _record(0, True, 0.1, 2, 2.0), act_ms=[1.0, 3.0]),
        EpisodeResult(1, _record(1, False, 0.5, 1, 5.0, "agent 'x' raised in act at step 1: E"), act_ms=[5.0]),
        EpisodeResult(2, _record(2, False, math.nan, 0, math.nan, "agent 'x' raised in act at step 0: E")),
    ]
    summary = summarize(results, "x")
    assert summary["success_rate"] == pytest.approx(1 / 3)
    assert summary["mean_final_distance"] == pytest.approx(0.3)
    assert summary["ms_per_step"] == {"median": 3.0, "mean": 3.0, "steps": 3}
    assert summary["failed_episodes"] == {"count": 2, "reasons": {"agent 'x' raised in act: E": 2}}
    assert [e["agent"] for e in summary["episodes"]] == [None, "x", "x"]
    assert summary["episodes"][2]["final_distance"] is None
    assert summary["criteria_success_rates"] == {} and summary["steps_per_level"] == {}


def test_summary_counts_the_steps_each_level_planned():
    levels = [{"level": 1}, {"level": 2}, {"level": 2}], [{"level": 1}, {"other": 0.5}]
    results = [EpisodeResult(i, _record(i, False, 0.5, len(d), 1.0), act_ms=[1.0] * len(d), diagnostics=list(d))
               for i, d in enumerate(levels)]
    assert summarize(results, "hierarchical")["steps_per_level"] == {"1": 2, "2": 2}


def test_the_envs_other_success_criteria_are_recorded_per_episode_and_summarised():
    """An env's ``info["<name>_success"]`` at the last step: a rate beside ``success_rate`` (a failed episode's
    counts as not met)."""
    class Env(gym.Env):
        observation_space, action_space = gym.spaces.Box(0, 1, (2,)), gym.spaces.Box(-1, 1, (1,))

        def reset(self, seed=None, options=None):
            self.t = 0
            return np.zeros(2, np.float32), {"pose_success": False, "is_success": False}

        def step(self, action):
            self.t += 1
            return np.zeros(2, np.float32), 0.0, False, self.t == 2, {"pose_success": True, "is_success": False}

    class Agent:
        def reset(self, observation, info):
            pass

        def act(self, observation):
            return np.zeros(1, np.float32)

    records = [run_episode(Env(), Agent(), seed=s, max_steps=5) for s in range(3)]
    assert [r.criteria for r in records] == [{"pose_success": True}] * 3 and not any(r.success for r in records)
    failed = _record(3, False, 1.0, 1, 1.0, "agent 'x' raised in act at step 1: E")
    results = [EpisodeResult(i, r, [1.0]) for i, r in enumerate([*records, failed])]
    summary = summarize(results, "x")
    assert summary["criteria_success_rates"] == {"pose_success": 0.75} and summary["success_rate"] == 0.0
    assert summary["episodes"][0]["criteria"] == {"pose_success": True}


class PixelWorldModel:
    """Latent = mean colour of each image (Dz = 3); distance = Euclidean."""

    def encode(self, frames):
        return torch.as_tensor(np.asarray(frames), dtype=torch.float32).mean(dim=(1, 2)) / 255.0

    def distance(self, z, goal):
        return (z - goal).norm(dim=-1)


class HighPixelWorldModel(PixelWorldModel):
    """Level 2's state: the mean colour doubled, on a level-1 state space of its own."""

    def high_state(self, z):
        return 2 * z

    def high_distance(self, z, goal):
        return (z - goal).norm(dim=-1)


def test_frame_bank_shows_level_2_states_as_their_nearest_frames_from_the_first_call():
    bank = FrameBank(HighPixelWorldModel(), np.stack([_solid(v) for v in (0, 100, 200, 250)]))
    queries = np.stack([np.full(3, 2 * 190 / 255), np.full(3, 2 * 90 / 255)])  # level-2 states
    assert bank.nearest(queries, high=True).tolist() == [2, 1]
    assert bank.nearest(queries, high=True).tolist() == [2, 1]  # the cached level-2 bank gives the same


def _solid(value, size=8):
    return np.full((size, size, 3), value, np.uint8)


def test_inspector_logs_latent_distance_costs_subgoals_and_imagined_frames(tmp_path):
    wm = PixelWorldModel()
    cfg = SimpleNamespace(tb=SimpleNamespace(videos=1, fps=10.0, inspect_steps=2), max_steps=None)
    inspector = RolloutInspector(tmp_path / "tb", cfg, world_model=lambda: wm)
    bank = np.stack([_solid(v) for v in (0, 100, 200, 250)])
    inspector._bank = FrameBank(wm, bank)
    frames = [_solid(v) for v in (0, 50, 100, 150)]  # reset + 3 steps
    diagnostics = [
        {"predicted_cost": 0.9, "predicted_steps": 1, "subgoal": np.full(3, 90 / 255),
         "imagined": np.full((2, 3), 210 / 255)},
        {"predicted_cost": 0.5, "subgoal": np.full(3, 90 / 255), "imagined": np.full((2, 3), 240 / 255)},
        {"predicted_cost": 0.2, "subgoal": np.full(3, 190 / 255), "imagined": np.full((2, 3), 240 / 255)},
    ]
    record = EpisodeRecord(seed=0, success=False, final_distance=0.4, steps=3, ms_per_step=1.0,
                           distances=[1.0, 0.8, 0.6, 0.4], frames=frames)
    inspector.log_episode(EpisodeResult(0, record, [1.0] * 3, goal_image=_solid(255), diagnostics=diagnostics))
    inspector.close()
    tb = tmp_path / "tb"
    tags = read_event_tags(tb)
    assert {"episode_000/video", "episode_000/subgoals", "episode_000/imagined", "episode_000/cost"} <= set(
        tags["images"])
    latent = [v for _, v in read_event_scalars(tb, "episode_000/latent_distance")]
    np.testing.assert_allclose(latent, [math.sqrt(3) * (255 - v) / 255 for v in (0, 50, 100, 150)], rtol=1e-5)
    assert [v for _, v in read_event_scalars(tb, "episode_000/cost/predicted")] == pytest.approx([0.9, 0.5, 0.2])
    # realised: the latent distance predicted_steps (else the imagined horizon, 2) steps later, clipped to
    # the last frame
    realised = [latent[1], latent[3], latent[3]]
    assert [v for _, v in read_event_scalars(tb, "episode_000/cost/realised")] == pytest.approx(realised, rel=1e-5)
    calibration = inspector.cost_calibration()
    assert calibration["steps"] == 3 and calibration["predicted_median"] == pytest.approx(0.5)
    assert calibration["realised_median"] == pytest.approx(latent[3], rel=1e-5)
    assert calibration["optimistic_fraction"] == 1.0  # every prediction below what was realised
    n_frames, size = gif_frames(read_event_images(tb, "episode_000/video")[0][1])
    assert n_frames == 4 and size == (3 * 8 + 2 * 2, CAPTION_HEIGHT + 8)  # frame | subgoal | goal
    subgoals = np.asarray(Image.open(io.BytesIO(read_event_images(tb, "episode_000/subgoals")[0][1])))
    assert subgoals.shape[:2] == (8, 8 + 2 + 8)  # two distinct subgoals: nearest frames 100 and 200
    assert subgoals[0, 0, 0] == 100 and subgoals[0, -1, 0] == 200
    imagined = np.asarray(Image.open(io.BytesIO(read_event_images(tb, "episode_000/imagined")[0][1])))
    # inspected steps 0 and 2: imagined row (nearest 200 / 250), then the real frames that followed
    assert imagined.shape[:2] == (4 * 8 + 3 * 2, 2 * 8 + 2)
    assert [imagined[r * 10, 0, 0] for r in range(4)] == [200, 50, 250, 150]


# ---- world-model agents end to end, on a tiny random-init world model saved as a pretrain run --------
@pytest.fixture(scope="module")
def pretrain_root(tmp_path_factory):
    from worldmodel.world_model import WORLD_MODEL_FILE

    model = tiny_world_model("pointmass_open", "worldmodel/PointMassOpen-v0")
    root = tmp_path_factory.mktemp("pretrain")
    run = root / "pointmass_open" / "2026-01-01_00-00-00"
    run.mkdir(parents=True)
    model.save(run / WORLD_MODEL_FILE)
    return root


@pytest.mark.parametrize(("agent", "view"), [("mpc", "imagined"), ("hierarchical", "subgoals")])
def test_world_model_agents_plan_from_the_newest_pretrain_run_and_show_their_latents(
        tmp_path, pretrain_root, agent, view):
    run = tmp_path / "run"
    plan(run, f"agent={agent}", f"pretrain_root={pretrain_root}", f"cache_dir={tmp_path / 'cache'}",
         "episodes=1", "max_steps=3", "bank.steps=15", "bank.max_frames=16")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["checkpoint"] == str(pretrain_root / "pointmass_open" / "2026-01-01_00-00-00")
    assert summary["failed_episodes"]["count"] == 0 and summary["episodes"][0]["steps"] == 3
    assert summary["ms_per_step"]["median"] > 0
    calibration = summary["cost_calibration"]
    assert calibration["steps"] == 3 and 0.0 <= calibration["optimistic_fraction"] <= 1.0
    tb = run / "tb"
    tags = read_event_tags(tb)
    assert {"episode_000/video", f"episode_000/{view}", "episode_000/cost"} <= set(tags["images"])
    assert len(read_event_scalars(tb, "episode_000/latent_distance")) == 4
    assert len(read_event_scalars(tb, "episode_000/cost/predicted")) == 3
    n_frames, (width, _) = gif_frames(read_event_images(tb, "episode_000/video")[0][1])
    panels = 3 if agent == "hierarchical" else 2  # frame | subgoal | goal, or frame | goal
    assert n_frames == 4 and width == panels * 64 + (panels - 1) * 2
