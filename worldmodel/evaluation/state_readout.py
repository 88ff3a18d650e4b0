"""How much of the simulator's true state the visual latent carries: a linear read-out for ``summary.json``.

A ridge regression from the visual part of the latent (the PCA dims, never the appended body state) to each
true state dim is fitted on the training episodes' frames and scored on the held-out episodes' frames by R²
(1: the dim is read exactly, 0: no better than its held-out mean). Where planning fails on an object, this says
whether the encoder's latents show the object at all before any level or cost is blamed: on Push-T it is the T's
position and angle (``docs/pusht.md``). A linear read-out is a lower bound on what a nonlinear one could find.
"""

from __future__ import annotations

import logging

import numpy as np

from worldmodel.data.latents import LatentTrajectories

log = logging.getLogger("worldmodel.pretrain")

RIDGE = 1e-3  # on standardised features, per training frame
CONSTANT_STD = 1e-6  # a state dim with no more spread than this on the held-out frames gets no R² (None)


def linear_readout_r2(features: np.ndarray, targets: np.ndarray, train: np.ndarray, test: np.ndarray,
                      ridge: float = RIDGE) -> list[float | None]:
    """Held-out R² per target dim of a ridge regression ``features (N, F) -> targets (N, S)`` fitted on the rows
    ``train`` and scored on the rows ``test``; None for a dim that is constant on ``test``."""
    x = np.asarray(features, np.float64)
    y = np.asarray(targets, np.float64)
    mean, std = x[train].mean(0), x[train].std(0) + 1e-12
    x = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    gram = x[train].T @ x[train] + ridge * len(train) * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, x[train].T @ y[train])
    residual = y[test] - x[test] @ weights
    spread = y[test] - y[test].mean(0)
    scores: list[float | None] = []
    for dim in range(y.shape[1]):
        if spread[:, dim].std() <= CONSTANT_STD:
            scores.append(None)
        else:
            scores.append(float(1.0 - (residual[:, dim] ** 2).sum() / (spread[:, dim] ** 2).sum()))
    return scores


def evaluate_state_readout(data: LatentTrajectories, states: np.ndarray, visual_dim: int) -> dict:
    """R² on held-out frames of a linear read-out of each true state dim (``states (N, S)``) from the first
    ``visual_dim`` latent dims of ``data``; logged and returned."""
    train, test = data.windows(1, "train"), data.windows(1, "holdout")  # every frame of each split
    r2 = linear_readout_r2(data.z[:, :visual_dim].numpy(), states, train, test)
    result = {"features": f"visual latent ({visual_dim} dims)", "model": f"ridge {RIDGE}",
              "train_frames": int(len(train)), "holdout_frames": int(len(test)), "r2": r2}
    shown = ", ".join("-" if v is None else f"{v:.2f}" for v in r2)
    log.info("true state read linearly from the visual latent, held-out R2 per state dim: %s", shown)
    return result
