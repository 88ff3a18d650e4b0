"""How finely a state space tells positions apart: nearest-neighbour position error.

Render the scene at many known positions, encode each frame, and hold some out as queries. A query's
estimated position is the mean position of its ``neighbours`` nearest states (Euclidean) among the rest.
The median error of that estimate is the finest scale at which the states can place the object: a planner
whose cost reads these states cannot aim more precisely than that, however good its model is. For the point
mass it is compared with the success radius (0.1 m).
"""

from __future__ import annotations

import numpy as np


def position_resolution(states: np.ndarray, positions: np.ndarray, queries: int, seed: int,
                        neighbours: int = 3) -> dict[str, float]:
    """Median and 90th-percentile position error of ``queries`` held-out states' nearest-neighbour estimate.

    ``states (N, D)``: encoded frames; ``positions (N, P)``: where the object was in each.
    """
    states, positions = np.asarray(states, np.float64), np.asarray(positions, np.float64)
    if not 0 < queries < len(states) - neighbours + 1:
        raise ValueError(f"queries must be in [1, {len(states) - neighbours}], got {queries}")
    order = np.random.default_rng(seed).permutation(len(states))
    query, reference = order[:queries], order[queries:]
    q, r = states[query], states[reference]
    squared = (q * q).sum(1)[:, None] + (r * r).sum(1)[None, :] - 2.0 * q @ r.T
    nearest = np.argpartition(squared, neighbours - 1, axis=1)[:, :neighbours]
    estimate = positions[reference][nearest].mean(axis=1)
    error = np.linalg.norm(estimate - positions[query], axis=1)
    return {"median": float(np.median(error)), "p90": float(np.quantile(error, 0.9))}
