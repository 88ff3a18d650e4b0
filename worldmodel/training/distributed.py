"""Process-group setup for one process or torchrun (DDP), on CPU (gloo) or CUDA (nccl).

Launch several processes with ``torchrun --standalone --nproc_per_node=N -m experiments.pretrain``;
``init_distributed`` reads the ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` variables torchrun sets.
Without them it runs as a single process (world_size 1) and creates no process group: the
collectives below then return their input unchanged.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from worldmodel.devices import resolve_device

__all__ = ["DistInfo", "all_reduce_mean", "barrier", "cleanup", "init_distributed", "is_distributed"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    is_main: bool
    device: torch.device


def is_distributed() -> bool:
    """True when a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init_distributed(device: str | torch.device = "auto", *, rank: int | None = None,
                     world_size: int | None = None, local_rank: int | None = None,
                     init_method: str = "env://") -> DistInfo:
    """Join the process group torchrun describes, or run as one process when it describes none.

    ``device``: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` (``worldmodel.devices.resolve_device``). Under
    torchrun, ``auto`` and ``cuda`` put each process on GPU ``LOCAL_RANK`` with the nccl backend; on the CPU
    (``cpu``, or ``auto`` without GPUs) the backend is gloo.
    ``rank``/``world_size``/``init_method`` override the environment (tests use a ``file://`` store).
    With no ``RANK``/``WORLD_SIZE`` in the environment and no overrides: no process group is created
    and ``DistInfo(rank=0, local_rank=0, world_size=1, is_main=True, device)`` is returned.
    """
    env = os.environ
    rank = int(env["RANK"]) if rank is None and "RANK" in env else rank
    world_size = int(env["WORLD_SIZE"]) if world_size is None and "WORLD_SIZE" in env else world_size
    if rank is None or world_size is None:
        device_obj = resolve_device(device)
        log.info("no RANK/WORLD_SIZE in the environment: running as a single process on %s", device_obj)
        return DistInfo(0, 0, 1, True, device_obj)
    local_rank = int(env.get("LOCAL_RANK", rank)) if local_rank is None else local_rank
    device_obj = resolve_device(device, local_rank=local_rank)
    on_cuda = device_obj.type == "cuda"
    if on_cuda:
        torch.cuda.set_device(device_obj)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if on_cuda else "gloo", init_method=init_method, rank=rank,
                                world_size=world_size)
    return DistInfo(rank, local_rank, world_size, rank == 0, device_obj)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all processes (a new tensor); the input itself when single-process."""
    if not is_distributed():
        return tensor
    out = tensor.detach().clone()
    if not out.is_floating_point():
        out = out.float()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def cleanup() -> None:
    """Leave the process group, if one was created."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
