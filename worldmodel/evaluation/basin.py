"""Whether a planning cost leads to the goal: greedy descent on the cost over the free space.

A planner that looks ``reach`` metres ahead and trusts its cost moves, at best, to the cheapest place it
can get to within ``reach``. ``descent_success`` plays that with a perfect model on a grid of free
positions: from every start, jump to the cheapest cell within ``reach`` (path length round the walls)
while that lowers the cost, and count the starts whose descent ends at the goal. 1.0 means no local
minimum traps such a planner anywhere; a cost that rises with the straight-line distance is trapped
behind walls; a bumpy cost is trapped everywhere at short reach. Comparing reaches says what a longer
look-ahead (level 2's) could add over a short one (level 1's), before any model error.

``cost_profile`` says how the cost grows with the path distance to the goal: the median cost of cells at
about ``d`` metres, as a fraction of the median over all cells. A state whose distance is already near 1 at
0.1 m changes by most of its range for a small move: small errors in a prediction of it are as large as
big ones, and the levels cannot be judged or planned with it at the scale of a room.
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


def cost_profile(cost: np.ndarray, path_to_goal: np.ndarray, distances: tuple[float, ...],
                 width: float) -> dict[str, float | None]:
    """Median cost at path distance ``d`` (within ``width``) over the median cost at any distance, per ``d``.

    ``cost (G, F)`` and ``path_to_goal (G, F)``: each cell's cost toward, and path length to, each of G goals.
    A distance no cell pair has gives None.
    """
    cost, path_to_goal = np.asarray(cost, np.float64), np.asarray(path_to_goal, np.float64)
    reachable = np.isfinite(path_to_goal) & (path_to_goal > 0)
    overall = np.median(cost[reachable])
    profile = {}
    for d in distances:
        near = reachable & (np.abs(path_to_goal - d) <= width)
        profile[f"{d:g} m"] = float(np.median(cost[near]) / overall) if near.any() else None
    return profile
