"""The commands check a whole config against what its schema declares (``worldmodel.settings.setting``) before they
run: a bad value of each kind (one of the choices, a list of choices, a minimum, an open interval) fails in one line
that names the key, the value and what is accepted."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from experiments.benchmark_config import BenchmarkConfig, register_benchmark_schema
from experiments.common import check_settings
from experiments.config import PretrainConfig, register_schemas
from experiments.plan_config import PlanConfig, register_plan_schema
from experiments.probe_config import ProbeConfig, register_probe_schema
from worldmodel.settings import problem, setting

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = {"pretrain": PretrainConfig, "plan": PlanConfig, "probe": ProbeConfig, "benchmark": BenchmarkConfig}


def composed(command: str, *overrides: str):
    for register in (register_schemas, register_plan_schema, register_probe_schema, register_benchmark_schema):
        register()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "configs")):
        return compose(command, overrides=list(overrides))


@pytest.mark.parametrize(("command", "overrides"), [
    ("pretrain", ()), ("pretrain", ("env=reacher",)), ("pretrain", ("env=pusher",)),
    ("pretrain", ("data=videos", "data.root=x")), ("pretrain", ("data=sim+videos", "data.root=x")),
    ("plan", ()), ("plan", ("env=pusher", "agent=mpc")), ("probe", ()),
    ("benchmark", ()), ("benchmark", ("quick=true",)),
])
def test_the_defaults_pass(command, overrides):
    check_settings(composed(command, *overrides), SCHEMAS[command])


@pytest.mark.parametrize(("command", "override", "message"), [
    ("pretrain", "latent.space=tokens", "unknown latent.space 'tokens'; choose from pca, metric, task"),
    ("pretrain", "env.planning_cost=pixels", "unknown env.planning_cost 'pixels'; choose from metric, task, latent"),
    ("pretrain", "video.precision=fp16", "unknown video.precision 'fp16'; choose from auto, fp32, bf16"),
    ("pretrain", "stages=[video,dance]",
     "unknown stages 'dance'; choose from video, dynamics, hierarchy, metric, task"),
    ("pretrain", "data.episodes=0", "data.episodes must be >= 1, got 0"),
    ("pretrain", "latent.holdout_fraction=1.0", "latent.holdout_fraction must lie strictly between 0 and 1, got 1.0"),
    ("plan", "episodes=0", "episodes must be >= 1, got 0"),
    ("plan", "max_steps=0", "max_steps must be >= 1, got 0"),
    ("plan", "tb.inspect_steps=0", "tb.inspect_steps must be >= 1, got 0"),
    ("probe", "tasks=[direction,colour,smell]",
     "unknown tasks 'colour', 'smell'; choose from direction, contact, t_angle, physics"),
    ("probe", "val_fraction=0", "val_fraction must lie strictly between 0 and 1, got 0.0"),
    ("probe", "probe.heads=0", "probe.heads must be >= 1, got 0"),
    ("benchmark", "sections=[render,gpu]",
     "unknown sections 'gpu'; choose from render, pretrain, agents, physics, goals"),
    ("benchmark", "agents.episodes=0", "agents.episodes must be >= 1, got 0"),
])
def test_a_bad_value_names_the_key_the_value_and_what_is_accepted(command, override, message):
    with pytest.raises(ValueError) as error:
        check_settings(composed(command, override), SCHEMAS[command])
    assert str(error.value) == message


def test_null_passes_only_where_the_setting_allows_it():
    assert problem("max_steps", None, {"nullable": True, "minimum": 1}) is None
    assert problem("episodes", None, {"nullable": False, "minimum": 1}) == "episodes must be set, got null"
    assert problem("stages", [], {"choices": ("video",), "nullable": False}) is None


def test_a_setting_typed_optional_accepts_null_and_no_other_does():
    def walk(schema: type, prefix: str = "") -> list[str]:
        hints, wrong = typing.get_type_hints(schema), []
        for field in dataclasses.fields(schema):
            hint = hints[field.name]
            if dataclasses.is_dataclass(hint):
                wrong += walk(hint, f"{prefix}{field.name}.")
            elif "choices" in field.metadata and field.metadata["nullable"] != (type(None) in typing.get_args(hint)):
                wrong.append(f"{prefix}{field.name}: {hint}, nullable={field.metadata['nullable']}")
        return wrong

    assert not [w for schema in SCHEMAS.values() for w in walk(schema)]
    assert setting(None).metadata["nullable"] and not setting(1, minimum=1).metadata["nullable"]


@pytest.mark.parametrize(("command", "override", "expected"), [
    ("plan", "workers=0", "error: workers must be >= 1, got 0"),
    ("probe", "tasks=[colour]", "error: unknown tasks 'colour'; choose from direction, contact, t_angle, physics"),
])
def test_a_command_prints_the_bad_value_in_one_line(tmp_path, command, override, expected):
    env = {**os.environ, "MUJOCO_GL": "egl", "OMP_NUM_THREADS": "1"}
    env.pop("WORLDMODEL_DEBUG", None)
    result = subprocess.run([sys.executable, "-m", f"experiments.{command}", override,
                             f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == expected
