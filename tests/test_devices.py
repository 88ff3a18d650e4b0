"""``device=auto|cpu|cuda|cuda:N``: one resolution for every command, torchrun included; one-line errors."""

from __future__ import annotations

import pytest
import torch

from worldmodel.devices import resolve_device
from worldmodel.training.distributed import init_distributed


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine that says it has two CUDA devices, the first current (nothing is allocated on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_is_the_cpu_without_a_gpu(no_gpu):
    assert resolve_device("auto") == resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto", local_rank=1) == torch.device("cpu")  # torchrun without GPUs: gloo on the CPU


def test_auto_and_cuda_take_the_current_gpu_or_the_local_rank(two_gpus):
    assert resolve_device("auto") == resolve_device("cuda") == resolve_device(" CUDA ") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("auto", local_rank=1) == resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda:1", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cpu", local_rank=1) == torch.device("cpu")


@pytest.mark.parametrize("spec, message", [
    ("gpu", "unknown device 'gpu'; use device=auto"),
    ("cuda:x", "unknown device 'cuda:x'; use device=auto"),
    ("", "unknown device ''; use device=auto"),
])
def test_unknown_devices_are_named_with_the_choices(spec, message):
    with pytest.raises(ValueError, match=message):
        resolve_device(spec)


def test_cuda_without_a_visible_gpu_names_the_fix(no_gpu):
    for spec in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match=f"device={spec} but no CUDA device is visible.*use device=auto or "
                                             "device=cpu"):
            resolve_device(spec)


def test_gpus_that_are_not_there_name_the_ones_that_are(two_gpus):
    with pytest.raises(ValueError, match="asks for GPU 2 but 2 CUDA device.*cuda:0 to cuda:1"):
        resolve_device("cuda:2")
    with pytest.raises(ValueError, match="would put every process on GPU 0; use device=cuda"):
        resolve_device("cuda:0", local_rank=1)
    with pytest.raises(ValueError, match="LOCAL_RANK=2 has no GPU of its own.*--nproc_per_node"):
        resolve_device("auto", local_rank=2)


def test_init_distributed_resolves_auto_for_a_single_process(monkeypatch, no_gpu):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert init_distributed().device == init_distributed("auto").device == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        init_distributed("tpu")
