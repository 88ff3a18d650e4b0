"""The one checkpoint module: atomic saves, code-free loads, RNG capture, safetensors export.

A checkpoint is a plain dict of tensors, numbers, strings, lists, tuples and dicts, written with
``torch.save`` and read with ``torch.load(weights_only=True)``: loading a file never runs code from it.
Configs go in as plain data (``dataclasses.asdict`` / ``OmegaConf.to_container``); ``save_checkpoint``
refuses anything else up front, naming where in the state it sits.

Layout of a checkpoint folder::

    step_0000200.pt   step_0000400.pt   last.pt  (a hard link to the newest step file)
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import pickle
import random
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from worldmodel.errors import UserError
from worldmodel.io.atomic import atomic_write

__all__ = [
    "CheckpointError",
    "export_safetensors",
    "latest_checkpoint",
    "load_checkpoint",
    "load_safetensors",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "state_dict_hash",
    "step_of",
]

LAST = "last.pt"
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")
# Types torch.load(weights_only=True) rebuilds (checked on torch 2.13); containers are walked.
# Exact types: numpy scalars subclass float/int but do not load.
_LEAVES = {bool, int, float, complex, str, bytes, type(None), torch.Size, torch.dtype, torch.device}


_HINTS = {"ndarray": "use torch.from_numpy(x) or x.tolist()", "DictConfig": "use OmegaConf.to_container(cfg)",
          "ListConfig": "use OmegaConf.to_container(cfg)"}


class CheckpointError(UserError):
    """A checkpoint cannot be written or read (not plain data, corrupt, truncated)."""


def _check_plain(value: Any, where: str = "state") -> None:
    if isinstance(value, torch.Tensor) or type(value) in _LEAVES:
        return
    if type(value) in (dict, collections.OrderedDict):
        for key, item in value.items():
            _check_plain(key, f"{where} key {key!r}")
            _check_plain(item, f"{where}[{key!r}]")
        return
    if type(value) in (list, tuple, set):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    hint = _HINTS.get(type(value).__name__, "use dataclasses.asdict or plain types")
    raise CheckpointError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which "
                          f"torch.load(weights_only=True) cannot rebuild; {hint}")


def step_of(path: str | os.PathLike) -> int | None:
    """The step number in a ``step_<N>.pt`` file name, else None."""
    match = _STEP_FILE.match(Path(path).name)
    return int(match.group(1)) if match else None


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _link_last(path: Path) -> None:
    """Point ``last.pt`` at ``path`` atomically (hard link; a copy where links are unsupported)."""
    tmp = path.parent / f".{LAST}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:
        shutil.copyfile(path, tmp)
    os.replace(tmp, path.parent / LAST)


def save_checkpoint(path: str | os.PathLike, state: dict, *, keep: int | None = None,
                    update_last: bool = True) -> Path:
    """Write ``state`` to ``path`` atomically and return the path.

    The bytes go to a temp file in the same folder, are fsynced, then ``os.replace``d over ``path``:
    a crash leaves either the old file or the new one, never half of one, and no temp file.
    ``update_last``: also make ``last.pt`` in that folder point at this file (unless it is last.pt).
    ``keep``: afterwards delete all but the newest ``keep`` ``step_<N>.pt`` files in that folder (and
    temp files a process killed mid-save left there; only one process may write checkpoints to a folder).
    """
    path = Path(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"a checkpoint state must be a dict, got {type(state).__name__}")
    _check_plain(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(state, f))
    if update_last and path.name != LAST:
        _link_last(path)
    _fsync_dir(path.parent)
    if keep is not None:
        for stale in path.parent.glob(".step_*.pt.*.tmp"):  # left by a process killed mid-save
            stale.unlink(missing_ok=True)
        steps = sorted((p for p in path.parent.iterdir() if step_of(p) is not None), key=step_of)
        for old in steps[: max(len(steps) - max(keep, 1), 0)]:
            if old != path:
                old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``; one-line errors when missing or bad."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        text = " ".join(str(error).split())
        if (found := re.search(r"GLOBAL ([\w.]+)", text)) is not None:
            raise CheckpointError(f"checkpoint {path} holds objects that are not plain data (it references "
                                  f"{found.group(1)}), so it was not loaded: loading never runs code from a "
                                  "file; re-save it as tensors and plain Python data") from None
        found = re.search(r"(Unsupported operand \d+)", text)
        detail = found.group(1) if found else _first_line(error)
        raise _corrupt(path, detail) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise _corrupt(path, _first_line(error)) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, expected a dict")
    return state


def _corrupt(path: Path, detail: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path} is corrupt, truncated or not a torch checkpoint ({detail}); "
                           "delete it and resume from an earlier one")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The ``step_<N>.pt`` with the largest N in ``directory``, else its ``last.pt``, else None."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    steps = [p for p in directory.iterdir() if step_of(p) is not None and p.is_file()]
    if steps:
        return max(steps, key=step_of)
    last = directory / LAST
    return last if last.is_file() else None


def rng_state() -> dict:
    """Python, numpy (global), torch CPU and CUDA RNG states as weights-only-loadable data."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` captured (tensors may have been mapped to another device)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    keys = np.asarray(torch.as_tensor(np_state["keys"]).cpu().numpy(), dtype=np.uint32)
    np.random.set_state((np_state["name"], keys, np_state["pos"], np_state["has_gauss"],
                         np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        saved = [s.cpu() for s in state["cuda"]][: torch.cuda.device_count()]
        for index, s in enumerate(saved):
            torch.cuda.set_rng_state(s, index)


_JSON_KEYS = "__json_keys__"


def export_safetensors(module_or_state_dict: torch.nn.Module | dict[str, torch.Tensor],
                       path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write weights to ``.safetensors`` (atomically) with string metadata.

    Metadata values that are not strings (e.g. a model config dict) are stored as JSON and decoded
    again by ``load_safetensors``, so a later process can rebuild the model from the file alone.
    Tensors are made contiguous and tied (shared-memory) tensors are cloned, as safetensors requires.
    """
    state = (module_or_state_dict.state_dict() if isinstance(module_or_state_dict, torch.nn.Module)
             else module_or_state_dict)
    tensors, seen = {}, set()
    for key, tensor in state.items():
        tensor = tensor.detach().cpu().contiguous()
        ptr = tensor.untyped_storage().data_ptr()
        tensors[key] = tensor.clone() if ptr in seen else tensor
        if tensor.numel():
            seen.add(ptr)
    meta, json_keys = {}, []
    for key, value in (metadata or {}).items():
        if isinstance(value, str):
            meta[str(key)] = value
        else:
            meta[str(key)] = json.dumps(value)
            json_keys.append(str(key))
    if json_keys:
        meta[_JSON_KEYS] = json.dumps(json_keys)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(save(tensors, metadata=meta)))
    return path


def load_safetensors(path: str | os.PathLike, device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """(state_dict, metadata) from a file written by ``export_safetensors``; JSON values decoded."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"safetensors file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            meta = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file ({_first_line(error)})") from None
    for key in json.loads(meta.pop(_JSON_KEYS, "[]")):
        meta[key] = json.loads(meta[key])
    return tensors, meta


def state_dict_hash(module_or_state: torch.nn.Module | dict) -> str:
    """sha256 (16 hex) over a state dict's names, shapes and bytes."""
    state = module_or_state.state_dict() if isinstance(module_or_state, torch.nn.Module) else module_or_state
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


def compare_state_dicts(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """The tensor names of two state dicts: ``identical``, ``different`` (shape, dtype or values), ``only_a``,
    ``only_b``."""
    shared = sorted(a.keys() & b.keys())
    same = [k for k in shared if a[k].shape == b[k].shape and a[k].dtype == b[k].dtype and torch.equal(a[k], b[k])]
    return {"identical": same, "different": [k for k in shared if k not in same],
            "only_a": sorted(a.keys() - b.keys()), "only_b": sorted(b.keys() - a.keys())}
