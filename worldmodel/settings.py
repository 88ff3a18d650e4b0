"""Declaring what a setting accepts, next to its default: ``field(default=..., metadata=...)`` helpers.

    space: Optional[str] = setting(None, choices=("pca", "metric", "task"))
    episodes: int = setting(10, minimum=1)
    stages: list[str] = setting(["video", "dynamics"], choices=STAGES)   # every item must be a choice

The commands check a whole config against these declarations before they run (``experiments.common``), so a
bad value fails in one line that names the accepted ones. ``None`` is accepted wherever the default is ``None``
or ``nullable=True``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import field
from typing import Any


def setting(default: Any, *, choices: Sequence[Any] | None = None, minimum: float | None = None,
            between: tuple[float, float] | None = None, nullable: bool = False) -> Any:
    """A dataclass field with ``default`` and what it accepts: one of ``choices`` (for a list: every item),
    at least ``minimum``, or strictly ``between`` two bounds."""
    metadata = {"choices": None if choices is None else tuple(choices), "minimum": minimum, "between": between,
                "nullable": nullable or default is None}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def problem(key: str, value: Any, metadata: dict[str, Any]) -> str | None:
    """What is wrong with ``value`` for the setting ``key`` declared with ``metadata`` (None: nothing)."""
    if value is None:
        return None if metadata.get("nullable") else f"{key} must be set, got null"
    choices = metadata.get("choices")
    if choices is not None:
        items = value if isinstance(value, (list, tuple)) else [value]
        unknown = [item for item in items if item not in choices]
        if unknown:
            shown = ", ".join(str(c) for c in choices)
            return f"unknown {key} {', '.join(repr(u) for u in unknown)}; choose from {shown}"
    minimum = metadata.get("minimum")
    if minimum is not None and value < minimum:
        return f"{key} must be >= {minimum:g}, got {value}"
    between = metadata.get("between")
    if between is not None and not between[0] < value < between[1]:
        return f"{key} must lie strictly between {between[0]:g} and {between[1]:g}, got {value}"
    return None
