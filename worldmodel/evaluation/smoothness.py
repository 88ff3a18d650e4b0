"""How smooth a planning cost is at the scale of a frame: its reading between frames a small move apart.

Render the scene at many free positions and again after a small move (1 cm by default: about a sixth of a
full-speed point-mass step), and read the cost between the two frames. A temporal metric should read well
under one env step there. Where it reads many, the representation has a glitch: a frame the cost maps far from
its neighbours. A goal on such a frame looks close from places that are far from it, so a planner can settle
where the cost has a false minimum.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def nearby_pairs(is_free: Callable[[np.ndarray], bool], count: int, move: float, seed: int,
                 arena: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` free positions ``(count, 2)`` and, for each, a free position ``move`` away in a random direction."""
    if count < 1 or move <= 0:
        raise ValueError(f"need count >= 1 and move > 0, got count={count}, move={move}")
    rng = np.random.default_rng(seed)
    starts, ends = [], []
    for _ in range(1000 * count):
        start = rng.uniform(-arena, arena, 2)
        angle = rng.uniform(0.0, 2.0 * np.pi)
        end = start + move * np.array([np.cos(angle), np.sin(angle)])
        if is_free(start) and is_free(end):
            starts.append(start)
            ends.append(end)
            if len(starts) == count:
                return np.array(starts), np.array(ends)
    raise RuntimeError(f"found only {len(starts)} of {count} free pairs {move} apart")


def jump_summary(readings: np.ndarray, thresholds: tuple[float, ...] = (1.0, 3.0)) -> dict[str, float]:
    """Median, 99th percentile and maximum of the cost's ``readings (N,)`` between nearby frames, and the share
    of pairs reading more than each threshold (``over_1``, ``over_3``: env steps for the temporal metric)."""
    readings = np.asarray(readings, np.float64)
    summary = {"median": float(np.median(readings)), "p99": float(np.quantile(readings, 0.99)),
               "max": float(readings.max())}
    summary.update({f"over_{t:g}": float((readings > t).mean()) for t in thresholds})
    return summary
