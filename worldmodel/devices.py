"""The device a command runs on, resolved in one place: ``device=auto|cpu|cuda|cuda:N``.

``auto`` (every command's default) is CUDA when a GPU is visible, else the CPU. A process started by torchrun
(``local_rank`` given) takes GPU ``LOCAL_RANK`` for ``auto`` and ``cuda``, one GPU per process; without GPUs it
runs on the CPU. Bad values raise a one-line ``ValueError`` that names the fix.
"""

from __future__ import annotations

import re

import torch

DEVICE_CHOICES = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"
_CUDA = re.compile(r"cuda(?::(\d+))?")


def resolve_device(spec: str | torch.device, local_rank: int | None = None) -> torch.device:
    """The ``torch.device`` that ``spec`` names here; CUDA devices always carry their index.

    ``local_rank``: this process's ``LOCAL_RANK`` under torchrun (None for a single process).
    """
    text = str(spec).strip().lower()
    if text == "cpu":
        return torch.device("cpu")
    if text == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        text = "cuda"
    match = _CUDA.fullmatch(text)
    if match is None:
        raise ValueError(f"unknown device {str(spec)!r}; use device={DEVICE_CHOICES}")
    if not torch.cuda.is_available():
        raise ValueError(f"device={spec} but no CUDA device is visible (torch.cuda.is_available() is False); "
                         "use device=auto or device=cpu")
    count = torch.cuda.device_count()
    index = match.group(1)
    if index is None:
        index = local_rank if local_rank is not None else torch.cuda.current_device()
    elif local_rank is not None and int(index) != local_rank:
        raise ValueError(f"device={spec} under torchrun would put every process on GPU {index}; use device=cuda "
                         f"or device=auto (each process takes GPU LOCAL_RANK, here {local_rank})")
    if local_rank is not None and not 0 <= int(index) < count:
        raise ValueError(f"torchrun process LOCAL_RANK={local_rank} has no GPU of its own ({count} visible); "
                         f"start at most {count} processes per node (--nproc_per_node) or use device=cpu")
    if not 0 <= int(index) < count:
        raise ValueError(f"device={spec} asks for GPU {index} but {count} CUDA device(s) are visible; "
                         f"use device=cuda:0 to cuda:{count - 1} or device=auto")
    return torch.device("cuda", int(index))
