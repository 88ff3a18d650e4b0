"""The example plug-in package (examples/plugin_package) installs and works through ``experiments.plan``.

The package is copied to a temporary folder (the build leaves files next to its sources) and
pip-installed with ``--target`` into another one, put on ``PYTHONPATH`` of the commands: the shared
venv is never modified, and entry points are found because ``importlib.metadata`` scans ``sys.path``.
(tests/test_agent_plugins.py covers the registry API with the docs/plugins.md example.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from worldmodel.io.tb import read_event_images, read_event_tags

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "examples" / "plugin_package"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    source = tmp_path_factory.mktemp("src") / "plugin_package"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("site")
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-deps",
           "--no-build-isolation", "--no-index", "--target", str(target), str(source)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"pip install of examples/plugin_package failed:\n{result.stderr[-2000:]}"
    assert (target / "wm_plugin_example" / "agent.py").is_file()
    return target


def command(site: Path, name: str, run: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``python -m experiments.<name> ... hydra.run.dir=run`` with the installed plug-in package on the path."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    env.pop("WORLDMODEL_DEBUG", None)
    cmd = [sys.executable, "-m", f"experiments.{name}", *overrides, f"hydra.run.dir={run}"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def plan(site: Path, run: Path, *overrides: str) -> subprocess.CompletedProcess:
    return command(site, "plan", run, *overrides)


def test_plugin_agent_runs_in_our_env_with_its_params(site, tmp_path):
    result = plan(site, tmp_path / "run", "env=pointmass_open", "agent=sine", "agent.params.period=8",
                  "episodes=1", "max_steps=4")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["agent"] == "sine" and summary["params"] == {"period": 8}
    episode = summary["episodes"][0]
    assert episode["steps"] == 4 and episode["failure"] is None
    assert len(set(episode["distances"])) > 1  # the agent moved the point mass


def test_plugin_env_runs_the_plugin_agent(site, tmp_path):
    run = tmp_path / "run"
    result = plan(site, run, "env=dot", "agent=sine", "episodes=2", "max_steps=5")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env"] == "dot" and summary["failed_episodes"]["count"] == 0
    assert [e["steps"] for e in summary["episodes"]] == [5, 5]
    assert {"episode_000/video", "episode_001/video"} <= set(read_event_tags(run / "tb")["images"])
    assert read_event_images(run / "tb", "episode_000/video")[0][1][:6] == b"GIF89a"


def test_plugin_errors_are_one_line(site, tmp_path):
    result = plan(site, tmp_path / "a", "env=dot", "agent=sine", "agent.params.periode=3", "episodes=1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert ("agent 'sine' does not accept parameter(s) periode; it accepts: amplitude, period, seed"
            in result.stderr)
    result = plan(site, tmp_path / "b", "env=dot", "agent=oracle", "episodes=1")  # no simulator to plan over
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: agent 'oracle' could not be built for env 'dot': the oracle needs an env whose" in result.stderr


TINY_PRETRAIN = [
    "model.image_size=32", "model.frames=4", "model.width=32", "model.depth=1", "model.heads=2",
    "model.pred_width=16", "model.pred_depth=1", "model.pred_heads=2", "env.image_size=32",
    "data.episodes=4", "data.episode_steps=16", "data.num_workers=0", "video.batch_size=4", "video.steps=2",
    "dynamics.steps=5", "hierarchy.steps=5", "metric.steps=5", "task.steps=5", "dynamics.batch_size=8",
    "hierarchy.batch_size=8",
]


def test_plugin_env_pretrains_through_every_stage_and_world_model_agents_plan_in_it(site, tmp_path):
    """The documented path: pretrain the example env ``dot`` (all stages; exploration rendered by 2 worker
    processes, which load the plug-in themselves), then plan with the world-model agents."""
    run, cache = tmp_path / "pretrain", f"cache_dir={tmp_path / 'cache'}"
    result = command(site, "pretrain", run, "env=dot", cache, *TINY_PRETRAIN)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert {"video", "metric", "dynamics", "hierarchy", "horizon", "world_model"} <= set(summary)
    no_task = "env dot has no task_distance(states, goal_state) (envs.contract)"
    assert summary["skipped"]["task"] == no_task and summary["skipped"]["cost_correlation"] == no_task
    assert "render_at" in summary["skipped"]["position_resolution"]
    assert "env dot has no render_at(position); it would give:" in result.stdout  # the contract, logged
    for agent, extra in (("mpc", ()), ("hierarchical", ("workers=2", "episodes=2"))):
        out = tmp_path / agent
        result = plan(site, out, "env=dot", "env.image_size=32", f"agent={agent}", f"checkpoint={run}", cache,
                      "episodes=1", "max_steps=3", *extra)
        assert result.returncode == 0, result.stderr[-3000:]
        plan_summary = json.loads((out / "summary.json").read_text())
        assert plan_summary["failed_episodes"]["count"] == 0
        assert all(e["steps"] == 3 or e["success"] for e in plan_summary["episodes"])


def test_pretrain_errors_on_plugin_envs_are_one_line(site, tmp_path):
    result = command(site, "pretrain", tmp_path / "run", "env=dott")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: unknown env 'dott'; choose one of: dot, pointmass_maze,")
    result = command(site, "pretrain", tmp_path / "task", "env=dot", "env.planning_cost=task")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "error: env.planning_cost=task needs an env with task_distance(states, goal_state) and info state, "
        "goal_state; env dot lacks one (python -m envs.contract dot): use env.planning_cost=metric")


def test_benchmark_times_a_plugin_env(site, tmp_path):
    run = tmp_path / "run"
    result = command(site, "benchmark", run, "sections=[render]", "env=dot", "render.envs=[dot]", "render.steps=5",
                     "render.exploration_episodes=2", "render.exploration_workers=[2]", f"cache_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((run / "benchmark.json").read_text())
    assert results["render"]["dot"] > 0 and results["exploration"]["workers=2"] > 0
