"""Whether a planning cost leads to the goal: greedy descent on the cost over the free space.

A planner that looks ``reach`` metres ahead and trusts its cost moves, at best, to the cheapest place it
can get to within ``reach``. ``descent_success`` plays that with a perfect model on a grid of free
positions: from every start, jump to the cheapest cell within ``reach`` (path length round the walls)
while that lowers the cost, and count the starts whose descent ends at the goal. 1.0 means no local
minimum traps such a planner anywhere; a cost that rises with the straight-line distance is trapped
behind walls; a bumpy cost is trapped everywhere at short reach. Comparing reaches says what a longer
look-ahead (level 2's) could add over a short one (level 1's), before any model error.
"""

from __future__ import annotations

import numpy as np


def descent_success(cost: np.ndarray, path: np.ndarray, goals: np.ndarray, reach: float,
                    tolerance: float) -> float:
    """Fraction of (start, goal) pairs whose descent on the cost ends within ``tolerance`` of the goal.

    ``cost (G, F)``: the cost of each of F free cells toward each of G goals; ``path (F, F)``: shortest
    path lengths between cells (inf where unreachable); ``goals (G,)``: each goal's cell index.
    """
    cost, path = np.asarray(cost, np.float64), np.asarray(path, np.float64)
    cells = np.arange(path.shape[0])
    within = path <= reach
    reached = []
    for f, goal in zip(cost, goals):
        best = np.where(within, f[None, :], np.inf).argmin(axis=1)
        step = np.where(f[best] < f, best, cells)  # stay where nothing within reach is cheaper
        while True:  # pointer jumping: the cost falls strictly along a chain, so chains end at fixed points
            jumped = step[step]
            if np.array_equal(jumped, step):
                break
            step = jumped
        reached.append(path[step, goal] <= tolerance)
    return float(np.mean(reached))
