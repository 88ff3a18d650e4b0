"""The latent agents build every tensor on the world model's device: the CUDA failure, reproduced on a CPU.

On a GPU, a tensor an agent or a planner builds without naming a device lands on the CPU while the world model
lives on CUDA, and the first call mixing the two fails ("Expected all tensors to be on the same device"). Here the
roles are mirrored: the world model stays on the CPU and the default device is ``meta``, so every such tensor lands
on ``meta``. The world model's methods the agents call check that their tensor arguments are on the model's device
and fail with torch's message otherwise (meta tensors alone would slip through some CPU kernels). Only
``WorldModel.encode`` runs with the CPU as default device: it turns host frames into tensors and moves them to the
model itself, as it does on a GPU.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from agents import make_agent
from tests.model_configs import tiny_world_model
from tests.test_latent_agents import ImageEnv

torch.set_num_threads(1)
SMALL = {"samples": 16, "iterations": 2, "elites": 4}
SMALL_HIGH = {"high_samples": 16, "high_iterations": 2, "high_elites": 4}


@pytest.fixture(scope="module")
def world_model():
    return tiny_world_model()


@contextlib.contextmanager
def tensors_default_to(device: str):
    """Tensors built without a ``device=`` land on ``device`` inside the block."""
    torch.set_default_device(device)
    try:
        yield
    finally:
        torch.set_default_device(None)


# what the latent agents call on their world model with tensors they built
CHECKED_METHODS = ("distance", "high_distance", "rollout", "high_rollout", "high_state", "step", "high_step",
                   "decode_chunk")


def check_input_devices(world_model, monkeypatch) -> None:
    """Make ``CHECKED_METHODS`` of ``world_model`` raise, as torch does on a GPU, for a tensor off its device."""
    device = next(world_model.parameters()).device  # where the weights are
    for method_name in CHECKED_METHODS:
        method = getattr(world_model, method_name)

        def checked(*args, _method=method, _name=method_name, **kwargs):
            for value in (*args, *kwargs.values()):
                if torch.is_tensor(value) and value.device != device:
                    raise RuntimeError(f"WorldModel.{_name}: Expected all tensors to be on the same device, but "
                                       f"found at least two devices, {device} and {value.device}!")
            return _method(*args, **kwargs)

        monkeypatch.setattr(world_model, method_name, checked)


def _play(name: str, world_model, planner: str, steps: int = 3, **params) -> tuple[list[np.ndarray], object]:
    env = ImageEnv()
    obs, info = env.reset()
    agent = make_agent(name, env, world_model=world_model, seed=5, planner=planner, **SMALL, **params)
    agent.reset(obs, info)
    return [agent.act(obs) for _ in range(steps)], agent


@pytest.mark.parametrize("planner", ["cem", "mppi"])
@pytest.mark.parametrize("name, params", [("mpc", {}), ("hierarchical", SMALL_HIGH),
                                          ("hierarchical", {**SMALL_HIGH, "reach": 1e9})],
                         ids=["mpc", "hierarchical", "hierarchical-goal-in-reach"])
def test_latent_agent_builds_every_tensor_on_the_world_models_device(world_model, monkeypatch, name, params,
                                                                     planner):
    expected, _ = _play(name, world_model, planner, **params)
    encode = world_model.encode

    def encode_on_host(*args, **kwargs):
        with torch.device("cpu"):
            return encode(*args, **kwargs)

    monkeypatch.setattr(world_model, "encode", encode_on_host)
    check_input_devices(world_model, monkeypatch)
    with tensors_default_to("meta"):
        actions, agent = _play(name, world_model, planner, **params)
    assert agent.device == world_model.device == torch.device("cpu")
    for action, reference in zip(actions, expected):
        assert isinstance(action, np.ndarray) and action.dtype == np.float32
        np.testing.assert_array_equal(action, reference)  # where tensors are built changes no action
    tensors = [v for v in agent.diagnostics.values() if torch.is_tensor(v)]
    assert tensors and all(t.device == world_model.device for t in tensors)
