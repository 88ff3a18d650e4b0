"""How well a planning cost ranks held-out frames by the true distance between them (Spearman and Pearson).

True distances: the env's task distance (the ball's, the fingertip's or the block's straight-line distance)
and, for envs with ``is_free(position)`` (the point-mass layouts), the shortest path on a free-space grid
(8-connected), i.e. the geodesic distance round the walls.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

SQRT2 = float(np.sqrt(2.0))


def free_grid(is_free: Callable[[np.ndarray], bool], arena: float = 1.0, cell: float = 0.05):
    """Cell centres ``(G,)`` along one axis and the free mask ``(G, G)`` indexed ``[ix, iy]``."""
    axis = np.arange(-arena, arena + 1e-9, cell)
    free = np.array([[is_free(np.array([x, y]), margin=0.0) for y in axis] for x in axis])
    return axis, free


def distance_field(free: np.ndarray, source: tuple[int, int], cell: float) -> np.ndarray:
    """Shortest 8-connected path length from ``source`` to every cell (inf where unreachable), ``(G, G)``."""
    dist = np.full(free.shape, np.inf)
    dist[source] = 0.0
    moves = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy]
    while True:
        best = dist.copy()
        for dx, dy in moves:
            shifted = np.full(free.shape, np.inf)
            xs, xd = slice(max(0, -dx), free.shape[0] - max(0, dx)), slice(max(0, dx), free.shape[0] - max(0, -dx))
            ys, yd = slice(max(0, -dy), free.shape[1] - max(0, dy)), slice(max(0, dy), free.shape[1] - max(0, -dy))
            shifted[xd, yd] = dist[xs, ys] + cell * (SQRT2 if dx and dy else 1.0)
            best = np.minimum(best, shifted)
        best[~free] = np.inf
        if np.array_equal(best, dist):
            return dist
        dist = best


def nearest_free_cell(positions: np.ndarray, axis: np.ndarray, free: np.ndarray) -> np.ndarray:
    """``positions (P, 2)`` -> grid indices ``(P, 2)`` of the nearest free cell."""
    cells = np.argwhere(free)
    centres = axis[cells]
    nearest = ((positions[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    return cells[nearest]


def rank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    return ranks


def correlations(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    keep = np.isfinite(true)
    pred, true = pred[keep], true[keep]
    return {"spearman": float(np.corrcoef(rank(pred), rank(true))[0, 1]),
            "pearson": float(np.corrcoef(pred, true)[0, 1])}


def cost_table(z: torch.Tensor, states: np.ndarray, distances: dict[str, Callable], *,
               task_distance: Callable[[np.ndarray, np.ndarray], np.ndarray], is_free=None, sources: int = 64,
               targets: int = 32, seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """Correlations of each ``distances[name](z_a, z_b) -> (P,)`` with the true distances on random pairs.

    ``z (N, Dz)`` and task ``states (N, S)`` of held-out frames; ``task_distance(states_a, states_b) -> (P,)``;
    with ``is_free`` the first two state dims are the position the geodesic is measured on. Returns
    ``{true_kind: {name: {spearman, pearson}}}`` with true kinds ``task`` (and ``geodesic``).
    """
    rng = np.random.default_rng(seed)
    a = np.repeat(rng.choice(len(z), sources, replace=len(z) < sources), targets)
    b = rng.choice(len(z), sources * targets)
    truth = {"task": np.asarray(task_distance(states[a], states[b]), np.float64)}
    if is_free is not None:
        cell = 0.05
        positions = states[:, :2]
        axis, free = free_grid(is_free, cell=cell)
        cells = nearest_free_cell(positions, axis, free)
        geodesic = np.empty(len(a))
        for i in range(sources):
            field = distance_field(free, tuple(cells[a[i * targets]]), cell)
            rows = slice(i * targets, (i + 1) * targets)
            geodesic[rows] = field[cells[b[rows], 0], cells[b[rows], 1]]
        truth["geodesic"] = geodesic
    with torch.no_grad():
        pred = {name: fn(z[a], z[b]).float().numpy() for name, fn in distances.items()}
    return {kind: {name: correlations(p, t) for name, p in pred.items()} for kind, t in truth.items()}


def format_cost_table(table: dict) -> str:
    names = list(next(iter(table.values())))
    lines = ["true distance | " + " | ".join(f"{n} spearman / pearson" for n in names)]
    for kind, row in table.items():
        lines.append(f"{kind} | " + " | ".join(f"{row[n]['spearman']:.3f} / {row[n]['pearson']:.3f}" for n in names))
    return "\n".join(lines)


@torch.no_grad()
def metric_of_steps(distance: Callable, data, steps: tuple[int, ...] = (1, 2, 4, 8, 10, 16, 32)) -> dict:
    """Median and upper quartile of ``distance`` between held-out frames ``h`` env steps apart, per ``h``.

    ``data``: a ``worldmodel.data.latents.LatentTrajectories``. The learned metric is only a lower bound on the
    steps between two frames; this table says how far below it sits (h with no such pair is left out).
    """
    table = {}
    for h in steps:
        starts = torch.as_tensor(data.windows(h + 1, split="holdout"))
        if len(starts) == 0:
            continue
        d = distance(data.z[starts], data.z[starts + h]).float()
        table[h] = {"median": float(d.median()), "p75": float(d.quantile(0.75))}
    return table
