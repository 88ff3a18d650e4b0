"""``summary.json``: the machine-readable result of a run, one top-level section per stage or command."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from worldmodel.io.atomic import atomic_write

__all__ = ["SUMMARY_FILE", "read_summary", "write_summary"]

SUMMARY_FILE = "summary.json"


def _plain(value: Any) -> Any:
    """JSON-ready: tensors/arrays to lists, numpy/torch scalars to numbers, Paths to str, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays and scalars
        return _plain(value.tolist())
    raise TypeError(f"summary value {value!r} of type {type(value).__name__} is not JSON data; "
                    "convert it to numbers, strings, lists or dicts first")


def read_summary(run_dir: str | os.PathLike) -> dict:
    """The run's ``summary.json`` as a dict; ``FileNotFoundError`` naming the path when it is missing."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {SUMMARY_FILE} at {path}; is {run_dir} a finished run directory?")
    return json.loads(path.read_text())


def write_summary(run_dir: str | os.PathLike, summary: dict) -> Path:
    """Merge ``summary`` into ``run_dir/summary.json`` by top-level key and write it atomically.

    Stages and commands each add their own section; a key written again replaces the old section.
    Non-finite floats become ``null`` so the file is strict JSON.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / SUMMARY_FILE
    merged = json.loads(path.read_text()) if path.is_file() else {}
    merged.update(_plain(summary))
    text = json.dumps(merged, indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
    return path
