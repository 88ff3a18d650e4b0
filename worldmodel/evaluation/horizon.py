"""Open-loop latent prediction error vs horizon on held-out trajectories.

For every held-out window of ``1 + max_horizon`` frames (``max_horizon`` a multiple of k, >= 4k):

- level 1: roll level 1 out step by step with the true actions; error at every horizon 1 .. max_horizon;
- level 2: chain level-2 jumps, each from the posterior-mean code of the true k-step action chunk;
  error at horizons k, 2k, ...;
- no change: predict the start latent forever.

Error = mean L1 over latent dims (the planners' distance) averaged over windows. ``horizon_table``
returns plain data for summary.json, ``format_table`` a text table, ``plot_horizon`` a matplotlib figure
for ``TensorBoardLogger.figure``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from einops import rearrange

from worldmodel.data.latents import LatentTrajectories
from worldmodel.models.dynamics import LatentDynamics
from worldmodel.models.high_level import HighLevel


@torch.no_grad()
def horizon_table(data: LatentTrajectories, dynamics: LatentDynamics, high: HighLevel, *,
                  multiples: int = 4, max_windows: int = 512, split: str = "holdout",
                  high_data: LatentTrajectories | None = None,
                  to_high: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, Any]:
    """Errors per horizon for level 1, level 2 and no change, plus the verdict of the DONE criterion.

    When level 2 predicts in another space than level 1, ``high_data`` holds the same frames in level 2's
    space and ``to_high`` maps level-1 states there: all errors are then measured in level 2's space.
    """
    k = high.cfg.k
    max_h = k * multiples
    starts = torch.as_tensor(data.windows(max_h + 1, split))
    if len(starts) == 0:
        raise ValueError(f"no {split} episode has {max_h + 1} frames for a horizon of {max_h} steps")
    stride = max(1, len(starts) // max_windows)  # evenly spaced windows: deterministic, covers all episodes
    picked = starts[::stride][:max_windows]
    batch = data.gather(picked, max_h + 1)
    z, d, actions = batch["z"], batch["d"], batch["actions"]
    level1 = dynamics.rollout(z[:, 0], d[:, 0], actions)
    if high_data is not None and to_high is not None:
        high_batch = high_data.gather(picked, max_h + 1)
        z, d, level1 = high_batch["z"], high_batch["d"], to_high(level1)
    target = z[:, 1:]  # (B, max_h, Dz)
    level1 = (level1 - target).abs().mean(dim=(0, 2))
    no_change = (z[:, :1] - target).abs().mean(dim=(0, 2))
    chunks = rearrange(actions, "b (j k) a -> (b j) k a", k=k)
    codes = rearrange(high.code.mean_code(chunks), "(b j) c -> b j c", j=multiples)
    level2 = (high.predictor.rollout(z[:, 0], d[:, 0], codes) - target[:, k - 1::k]).abs().mean(dim=(0, 2))
    horizons = list(range(1, max_h + 1))
    rows = []
    for h in horizons:
        row = {"horizon": h, "level1": float(level1[h - 1]), "no_change": float(no_change[h - 1])}
        if h % k == 0:
            row["level2"] = float(level2[h // k - 1])
        rows.append(row)
    both_beat_no_change = all(r["level1"] < r["no_change"] and r.get("level2", -1.0) < r["no_change"]
                              for r in rows)
    level2_wins_long = all(r["level2"] < r["level1"] for r in rows if r["horizon"] >= 2 * k and "level2" in r)
    return {"k": k, "windows": int(z.shape[0]), "split": split, "rows": rows,
            "both_beat_no_change": both_beat_no_change, "level2_beats_level1_from_2k": level2_wins_long,
            "done": both_beat_no_change and level2_wins_long}


def format_table(table: dict[str, Any], every: int | None = None) -> str:
    """Text table; ``every`` keeps horizons 1, 2, 4 and the multiples of ``every`` (default k/2)."""
    k = table["k"]
    every = every or max(1, k // 2)
    lines = [f"{'horizon':>7} {'level1':>8} {'level2':>8} {'no_change':>9}"]
    for r in table["rows"]:
        h = r["horizon"]
        if h in (1, 2, 4) or h % every == 0:
            level2 = f"{r['level2']:8.4f}" if "level2" in r else f"{'':>8}"
            lines.append(f"{h:7d} {r['level1']:8.4f} {level2} {r['no_change']:9.4f}")
    lines.append(f"both levels beat no-change: {table['both_beat_no_change']}; "
                 f"level 2 beats level 1 from 2k={2 * k}: {table['level2_beats_level1_from_2k']}")
    return "\n".join(lines)


def plot_horizon(table: dict[str, Any]):
    """A matplotlib figure of error vs horizon (caller closes it, e.g. via ``TensorBoardLogger.figure``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table["rows"]
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    ax.plot([r["horizon"] for r in rows], [r["no_change"] for r in rows], "k--", label="no change")
    ax.plot([r["horizon"] for r in rows], [r["level1"] for r in rows], "-", label="level 1 (step by step)")
    l2 = [r for r in rows if "level2" in r]
    ax.plot([r["horizon"] for r in l2], [r["level2"] for r in l2], "o-", label=f"level 2 (k={table['k']})")
    ax.set_xlabel("horizon (env steps)")
    ax.set_ylabel("latent L1 error")
    ax.set_title(f"open-loop error on {table['windows']} {table['split']} windows")
    ax.legend()
    fig.tight_layout()
    return fig
