"""One home per default: the typed schemas hold every default, the YAML files under ``configs/`` only select.

Two checks:

- a YAML file that sets a key to the value its schema already defaults to (a second home for that default);
  for an env file, also its ``pretrain`` settings (against the pretrain schema) and its ``agents`` parameters
  (against the agent class's own defaults);
- two dataclasses that describe the same thing (they share most of their fields, e.g. the pretrain command's
  latent settings and the latent head's config stored in ``world_model.pt``) and both give a default to the same
  field: one of the two must be required (no default) or take the other's value when it is built.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import MISSING, OmegaConf

from experiments.benchmark_config import BenchmarkConfig
from experiments.config import DataConfig, EnvConfig, ModelConfig, PretrainConfig
from experiments.export_trajectories import ExportConfig
from experiments.plan_config import AgentConfig, PlanConfig
from experiments.probe_config import ProbeConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
COMMAND_SCHEMAS = {"pretrain": PretrainConfig, "plan": PlanConfig, "probe": ProbeConfig, "benchmark": BenchmarkConfig,
                   "export_trajectories": ExportConfig}
GROUP_SCHEMAS = {"env": EnvConfig, "data": DataConfig, "model": ModelConfig, "agent": AgentConfig}
PACKAGES = ("worldmodel", "agents", "envs", "experiments")
# Look-alike dataclasses that describe different things, {(class, class): why} (names in sorted order).
DIFFERENT_THINGS = {
    ("VideoFacts", "VideoInfo"): "records of a checked video file, not settings",
    ("CheckResult", "VideoFacts"): "records of a checked video file, not settings",
    ("ModelConfig", "VideoViTConfig"): "ModelConfig's null keeps the preset's value: the preset is the one home",
    ("AgentsBenchConfig", "GoalsBenchConfig"): "two benchmark sections with budgets of their own (10 episodes per "
                                               "agent against the goal curve's 50 per point)",
    ("GoalsBenchConfig", "PlanConfig"): "the goal curve's protocol (50 episodes, k = 25..100) against one plan run's",
}


def _trains(cls: type) -> bool:
    """A training stage's config, or the benchmark's timed pretrain section: each has its own optimiser and steps."""
    return cls.__name__.endswith("StageConfig") or cls.__name__ == "PretrainBenchConfig"


def _defaults(schema: type) -> Any:
    """The schema's defaults as plain data (MISSING stays ``???``), interpolations unresolved."""
    return OmegaConf.to_container(OmegaConf.structured(schema), resolve=False)


def _same_as_default(values: dict, defaults: Any, where: str) -> list[str]:
    found = []
    for key, value in values.items():
        if key in ("defaults", "hydra") or not isinstance(defaults, dict) or key not in defaults:
            continue
        default = defaults[key]
        if isinstance(value, dict) and isinstance(default, dict) and value:
            found += _same_as_default(value, default, f"{where}{key}.")
        elif value == default and default != "???":
            found.append(f"{where}{key}: {value!r}")
    return found


def _yaml_files() -> list[tuple[Path, type]]:
    files = [(CONFIGS / f"{name}.yaml", schema) for name, schema in COMMAND_SCHEMAS.items()]
    for group, schema in GROUP_SCHEMAS.items():
        files += [(path, schema) for path in sorted((CONFIGS / group).glob("*.yaml"))]
    return files


@pytest.mark.parametrize(("path", "schema"), _yaml_files(), ids=lambda x: getattr(x, "name", ""))
def test_yaml_files_do_not_repeat_schema_defaults(path, schema):
    assert path.is_file(), f"{path} is missing"
    values = yaml.safe_load(path.read_text()) or {}
    repeated = _same_as_default(values, _defaults(schema), "")
    assert not repeated, f"{path.relative_to(ROOT)} repeats schema defaults (remove them): {repeated}"


@pytest.mark.parametrize("path", sorted((CONFIGS / "env").glob("*.yaml")), ids=lambda p: p.name)
def test_env_settings_differ_from_the_defaults_they_replace(path):
    from agents import resolve_agent

    values = yaml.safe_load(path.read_text()) or {}
    pretrain = OmegaConf.structured(PretrainConfig)
    repeated = []
    for key, value in (values.get("pretrain") or {}).items():
        default = OmegaConf.select(pretrain, key, default="__absent__")
        assert default != "__absent__", f"{path.name}: pretrain setting {key} does not exist"
        if value == default:
            repeated.append(f"pretrain {key}: {value!r}")
    for agent, params in (values.get("agents") or {}).items():
        signature = inspect.signature(resolve_agent(agent))
        for name, value in params.items():
            assert name in signature.parameters, f"{path.name}: agent {agent} has no parameter {name}"
            if value == signature.parameters[name].default:
                repeated.append(f"agents {agent}.{name}: {value!r}")
    assert not repeated, f"{path.name} repeats defaults (remove them): {repeated}"


def _all_dataclasses() -> list[type]:
    found: dict[str, type] = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        names = [package] + [m.name for m in pkgutil.walk_packages(module.__path__, f"{package}.")]
        for name in names:
            try:
                module = importlib.import_module(name)
            except ImportError:  # optional extras
                continue
            for obj in vars(module).values():
                if dataclasses.is_dataclass(obj) and isinstance(obj, type) and obj.__module__ == module.__name__:
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def _default_of(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return MISSING


def _look_alikes(classes: list[type]) -> list[tuple[type, type, set[str]]]:
    """Pairs of unrelated dataclasses sharing at least 3 fields and half the fields of the smaller one."""
    pairs = []
    for i, a in enumerate(classes):
        for b in classes[i + 1:]:
            if issubclass(a, b) or issubclass(b, a):
                continue  # a stage config refining the shared latent-stage config
            if (_trains(a) and _trains(b)) or tuple(sorted((a.__name__, b.__name__))) in DIFFERENT_THINGS:
                continue
            fields_a = {f.name for f in dataclasses.fields(a)}
            fields_b = {f.name for f in dataclasses.fields(b)}
            shared = fields_a & fields_b
            if len(shared) >= 3 and len(shared) >= min(len(fields_a), len(fields_b)) / 2:
                pairs.append((a, b, shared))
    return pairs


def test_no_setting_has_two_defaults():
    classes = _all_dataclasses()
    assert len(classes) > 30, "the walk found too few dataclasses: is an import failing?"
    doubles = []
    for a, b, shared in _look_alikes(classes):
        fields_a, fields_b = ({f.name: f for f in dataclasses.fields(c)} for c in (a, b))
        for name in sorted(shared):
            default_a, default_b = _default_of(fields_a[name]), _default_of(fields_b[name])
            if default_a is not MISSING and default_b is not MISSING and default_a != MISSING != default_b:
                doubles.append(f"{a.__qualname__}.{name} = {default_a!r} and {b.__qualname__}.{name} = {default_b!r}")
    assert not doubles, "settings with two defaults (keep one home):\n" + "\n".join(doubles)


def test_the_check_catches_a_second_default():
    @dataclasses.dataclass
    class Settings:
        pool: int | None = None
        dim: int = 64
        batch_size: int = 256

    @dataclasses.dataclass
    class Stored:
        pool: int | None = 4
        dim: int = 32
        batch_size: int = 256
        proprio_dim: int = 0

    assert [(a.__name__, b.__name__) for a, b, _ in _look_alikes([Settings, Stored])] == [("Settings", "Stored")]
    assert _same_as_default({"data": {"frame_step": 1, "episodes": 200}}, {"data": {"frame_step": 1, "episodes": 9}},
                            "") == ["data.frame_step: 1"]
