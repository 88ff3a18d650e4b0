"""Smoke test: ``python -m experiments.benchmark quick=true`` measures every section and writes its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from agents.goal_curve import format_goal_curve
from experiments.env_option import env_agent_params
from tests.video_utils import write_test_video
from worldmodel.io.tb import read_event_scalars, read_event_tags

ROOT = Path(__file__).resolve().parents[1]


def benchmark(run: Path, *overrides: str, quick: bool = True) -> subprocess.CompletedProcess:
    """``python -m experiments.benchmark`` into ``run`` with its own cache beside it."""
    cmd = [sys.executable, "-m", "experiments.benchmark", *(["quick=true"] if quick else []), *overrides,
           f"hydra.run.dir={run}", f"cache_dir={run.parent / 'cache'}"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MUJOCO_GL": "egl"})


def test_quick_benchmark_reports_every_section(tmp_path):
    run = tmp_path / "bench"
    result = benchmark(run)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "of the measured matmul peak" in result.stdout
    report = json.loads((run / "benchmark.json").read_text())
    assert report["quick"] is True
    assert report["render"]["pointmass_open"] > 0
    assert set(report["exploration"]) == {"workers=1", "workers=2"}
    assert all(rate > 0 for rate in report["exploration"].values())
    pretrain = report["pretrain"]
    assert pretrain["step_time_s"] > 0 and pretrain["loader_clips_per_s"] > 0
    assert 0 < pretrain["mfu"] < 1 and pretrain["matmul_peak_flops_per_s"] > pretrain["achieved_flops_per_s"]
    agents = report["agents"]
    assert set(agents) == {"pointmass_open/random", "pointmass_open/oracle"}
    assert all(r["failed_episodes"] == 0 and r["episodes"] == 1 for r in agents.values())
    assert agents["pointmass_open/oracle"]["ms_per_step"] > agents["pointmass_open/random"]["ms_per_step"]


def test_benchmark_runs_chosen_sections_in_the_chosen_precision(tmp_path):
    run = tmp_path / "bench"
    result = benchmark(run, "sections=[pretrain,physics]", "precision=bf16")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((run / "benchmark.json").read_text())
    assert "render" not in report and "agents" not in report
    assert report["pretrain"]["precision"] == "bf16" and report["pretrain"]["device"] == "cpu"
    assert report["pretrain"]["step_time_s"] > 0
    physics = report["physics"]["pointmass_open"]  # the env of render.envs (quick: pointmass_open alone)
    assert physics["mj_steps_per_s"] == 5 * physics["env_steps_per_s"] > 0  # pointmass: 5 physics steps per env step
    assert physics["greedy_episodes"] == 1 and 0 <= physics["greedy_success_rate"] <= 1

    bad = benchmark(tmp_path / "bad", "sections=[render,gpu]", quick=False)
    assert bad.returncode != 0
    assert "unknown sections 'gpu'; choose from render, pretrain, agents, physics, goals" in bad.stderr


def test_agents_get_the_env_configs_agent_settings_as_in_plan():
    assert env_agent_params("reacher", "hierarchical") == {"subgoal_cost": "task"}
    assert env_agent_params("reacher", "mpc") == {}
    assert env_agent_params("not_an_env_config", "mpc") == {}


def test_goals_section_measures_success_against_goal_distance_and_plots_it(tmp_path):
    run = tmp_path / "bench"
    result = benchmark(run, "sections=[goals]", "env=pointmass_open")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "success vs goal distance on pointmass_open (2 episodes per cell" in result.stdout
    goals = json.loads((run / "benchmark.json").read_text())["goals"]
    assert goals["goal_steps"] == [5, 10] and set(goals["success"]) == {"random", "oracle"}
    assert all(set(by_k) == {"5", "10"} for by_k in goals["success"].values())  # JSON keys
    runs = goals["runs"]["5"]
    assert {r["goal_steps"] for r in runs.values()} == {5} and all(r["episodes"] == 2 for r in runs.values())
    tags = read_event_tags(run / "tb")
    assert "goal_curve/pointmass_open/figure" in tags["images"]
    oracle = read_event_scalars(run / "tb", "goal_curve/pointmass_open/oracle")
    assert [k for k, _ in oracle] == [5, 10]
    assert [v for _, v in oracle] == [goals["success"]["oracle"]["5"], goals["success"]["oracle"]["10"]]

    bad = benchmark(tmp_path / "bad", "sections=[goals]", "env=pointmass_open", "goals.goal_steps=[25,100000]",
                    quick=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "goal_steps=100000 is outside the held-out trajectories" in bad.stderr
    missing = benchmark(tmp_path / "missing", "sections=[goals]", "env=pointmass_open", f"checkpoint={tmp_path}")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert f"checkpoint={tmp_path} is not a pretrain run directory (no world_model.pt in it)" in missing.stderr


def test_goal_curve_tables_put_the_published_anchors_under_the_criterion_they_used():
    curve = {"env": "pusht", "goal_steps": [25, 50, 75, 100], "episodes": 50,
             "success": {"mpc": {25: 0.5, 50: 0.25, 75: 0.1, 100: 0.0}},
             "criteria": {"pose_success": {"mpc": {25: 0.75, 50: 0.5, 75: 0.25, 100: 0.0}}}}
    lines = format_goal_curve(curve).splitlines()
    assert lines[1] == "is_success:" and lines[2].split() == ["agent", "k=25", "k=50", "k=75", "k=100"]
    assert lines[3].split() == ["mpc", "50%", "25%", "10%", "0%"]
    assert lines[4] == "pose_success:" and lines[6].split() == ["mpc", "75%", "50%", "25%", "0%"]
    assert lines[7].split() == ["flat", "LeWM", "(published)", "94%", "53%", "18%"]
    assert any(line.split()[-1] == "61%" for line in lines[7:] if "HWM: hierarchical" in line)


def test_the_loader_and_step_are_measured_on_the_users_videos_with_data_videos(tmp_path):
    for i in range(3):
        write_test_video(str(tmp_path / "videos" / f"clip{i}.mp4"), frames=24, size=48, seed=i)
    run = tmp_path / "bench"
    result = benchmark(run, "sections=[pretrain]", "data=videos", f"data.root={tmp_path / 'videos'}",
                       "data.num_workers=0")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((run / "benchmark.json").read_text())
    assert report["config"]["data"]["source"] == "videos"
    assert report["pretrain"]["loader_clips_per_s"] > 0 and report["pretrain"]["loader_workers"] == 0
