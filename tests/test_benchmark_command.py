"""Smoke test: ``python -m experiments.benchmark quick=true`` measures every section and writes its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from experiments.env_option import env_agent_params

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_reports_every_section(tmp_path):
    run = tmp_path / "bench"
    cmd = [sys.executable, "-m", "experiments.benchmark", "quick=true", f"hydra.run.dir={run}",
           f"cache_dir={tmp_path / 'cache'}"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "MUJOCO_GL": "egl"})
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
    cmd = [sys.executable, "-m", "experiments.benchmark", "quick=true", "sections=[pretrain]", "precision=bf16",
           f"hydra.run.dir={run}", f"cache_dir={tmp_path / 'cache'}"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "MUJOCO_GL": "egl"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((run / "benchmark.json").read_text())
    assert "render" not in report and "agents" not in report
    assert report["pretrain"]["precision"] == "bf16" and report["pretrain"]["device"] == "cpu"
    assert report["pretrain"]["step_time_s"] > 0

    bad = subprocess.run([*cmd[:3], "sections=[render,gpu]", f"hydra.run.dir={tmp_path / 'bad'}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "unknown sections 'gpu'; choose from render, pretrain, agents" in bad.stderr


def test_agents_get_the_env_configs_agent_settings_as_in_plan():
    assert env_agent_params("reacher", "hierarchical") == {"subgoal_cost": "task"}
    assert env_agent_params("reacher", "mpc") == {}
    assert env_agent_params("not_an_env_config", "mpc") == {}
