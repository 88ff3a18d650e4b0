"""The documented plug-in example (docs/plugins.md) installs and is usable as ``make_agent("toy", ...)``.

The package files are read out of the ``title="..."`` code blocks of docs/plugins.md, so the docs
cannot rot. The package is pip-installed into the current venv (no network: ``--no-deps
--no-build-isolation --no-index``) and uninstalled afterwards; the check runs in a fresh interpreter
so that entry points are rescanned.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

PLUGINS_MD = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
REPO = PLUGINS_MD.parents[1]
_TITLED_BLOCK = re.compile(r'^```\w+ title="([^"]+)"\n(.*?)^```', re.MULTILINE | re.DOTALL)

CHECK = """
import json, sys
import numpy as np
from agents import available_agents, make_agent, run_episode
from tests.test_agents import FakePointEnv

env = FakePointEnv()
agent = make_agent("toy", env, push=0.3)
obs, info = env.reset(seed=0)
agent.reset(obs, info)
action = agent.act(obs)
record = run_episode(env, agent, seed=0, max_steps=5, agent_name="toy")
try:
    make_agent("toy", env, pus=0.3)
    typo = None
except ValueError as exc:
    typo = str(exc)
print(json.dumps({"agents": available_agents(), "action": action.tolist(), "dtype": str(action.dtype),
                  "cls": type(agent).__module__ + "." + type(agent).__name__,
                  "steps": record.steps, "failure": record.failure, "typo": typo}))
"""


def example_files() -> dict[str, str]:
    files = dict(_TITLED_BLOCK.findall(PLUGINS_MD.read_text()))
    assert set(files) == {"pyproject.toml", "toy_agent.py"}, (
        f"docs/plugins.md example files changed: {sorted(files)}"
    )
    return files


def _pip(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)


@pytest.fixture
def installed_toy_agent(tmp_path):
    package = tmp_path / "toy-agent"
    package.mkdir()
    for name, text in example_files().items():
        (package / name).write_text(text)
    result = _pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(package))
    if result.returncode != 0:
        pytest.fail(f"pip install of the docs/plugins.md example failed:\n{result.stderr[-2000:]}")
    yield package
    _pip("uninstall", "-y", "toy-agent")


def test_documented_plugin_installs_and_is_makeable_by_name(installed_toy_agent):
    result = subprocess.run(
        [sys.executable, "-c", CHECK], check=False, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["cls"] == "toy_agent.ToyAgent"
    assert "toy" in out["agents"] and "oracle" in out["agents"]
    assert out["dtype"] == "float32" and len(out["action"]) == 2
    assert all(-1.0 <= a <= 1.0 for a in out["action"])
    assert out["steps"] == 5 and out["failure"] is None
    assert out["typo"] == "agent 'toy' does not accept parameter(s) pus; it accepts: noise, push, seed"
