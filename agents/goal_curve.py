"""Success against goal distance, the protocol of DINO-WM and HWM: goals ``k`` env steps ahead on held-out
trajectories (``envs.trajectory_goals``), for several agents and several ``k``.

``measure_goal_curve`` plays the same (start, goal) pairs for every agent at each ``k``; ``format_goal_curve``
prints the table, ``log_goal_curve`` writes it to TensorBoard: one scalar series per agent with ``k`` as the
step (the curve), and a figure of all agents beside the anchors' published points for the env (``ANCHORS``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.benchmark import measure_agents
from worldmodel.io.tb import TensorBoardLogger

# Published success rates by goal distance k (env steps), shown beside ours: ../shared/research notes the sources
# (flat LeWM from Hi-LeWM; DINO-WM's 25-step goals; HWM's flat and hierarchical DINO-WM at long distances).
ANCHORS: dict[str, dict[str, dict[int, float]]] = {
    "pusht": {
        "flat LeWM": {25: 0.94, 50: 0.527, 75: 0.18},
        "DINO-WM": {25: 0.90},
        "HWM: flat DINO-WM": {75: 0.17},
        "HWM: hierarchical": {75: 0.61},
    },
}


def measure_goal_curve(env_name: str, agent_names: list[str], goal_steps: list[int], episodes: int,
                       max_steps: int | None, device: str, checkpoint_for: Callable[[str], str | None],
                       params_for: Callable[[str, str], dict[str, Any]]) -> dict[str, Any]:
    """Per ``k`` in ``goal_steps``, ``episodes`` episodes of each agent toward goals ``k`` steps ahead
    (``agents.benchmark.measure_agents``). Returns ``success`` and ``ms_per_step`` as ``{agent: {k: value}}``
    and each ``k``'s full results under ``runs``; agents skipped for want of a checkpoint are left out."""
    success: dict[str, dict[int, float]] = {}
    ms: dict[str, dict[int, float]] = {}
    runs: dict[int, dict[str, Any]] = {}
    for k in goal_steps:
        runs[k] = measure_agents([env_name], agent_names, episodes, max_steps, device, checkpoint_for,
                                 params_for=params_for, goal_steps=k)
        for result in runs[k].values():
            success.setdefault(result["agent"], {})[k] = result["success_rate"]
            ms.setdefault(result["agent"], {})[k] = result["ms_per_step"]
    return {"env": env_name, "goal_steps": list(goal_steps), "episodes": episodes, "success": success,
            "ms_per_step": ms, "checkpoint": checkpoint_for(env_name), "runs": runs}


def format_goal_curve(curve: dict[str, Any]) -> str:
    """The success table: one row per agent, then the env's published anchors, one column per ``k``."""
    ks = curve["goal_steps"]
    rows = [(agent, by_k) for agent, by_k in curve["success"].items()]
    rows += [(f"{name} (published)", points) for name, points in ANCHORS.get(curve["env"], {}).items()]
    width = max(len(name) for name, _ in rows) + 2 if rows else 8
    lines = [f"success vs goal distance on {curve['env']} ({curve['episodes']} episodes per cell; goals k env "
             f"steps ahead on held-out trajectories)",
             f"  {'agent':<{width}}" + "".join(f"{f'k={k}':>8}" for k in ks)]
    for name, by_k in rows:
        lines.append(f"  {name:<{width}}" + "".join(f"{by_k[k]:>8.0%}" if k in by_k else f"{'':>8}" for k in ks))
    return "\n".join(lines)


def plot_goal_curve(curve: dict[str, Any]):
    """A matplotlib figure: success against ``k`` per agent, the env's anchors as open markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=100)
    for agent, by_k in curve["success"].items():
        ks = sorted(by_k)
        ax.plot(ks, [by_k[k] for k in ks], "o-", label=agent)
    for name, points in ANCHORS.get(curve["env"], {}).items():
        ks = sorted(points)
        ax.plot(ks, [points[k] for k in ks], "s--", mfc="none", alpha=0.6, label=f"{name} (published)")
    ax.set_xlabel("goal distance k (env steps along a held-out trajectory)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"{curve['env']}: success vs goal distance ({curve['episodes']} episodes per point)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def log_goal_curve(logger: TensorBoardLogger, curve: dict[str, Any]) -> None:
    """``goal_curve/<env>/<agent>``: success with ``k`` as the step; ``goal_curve/<env>/figure``: all of them."""
    for agent, by_k in curve["success"].items():
        for k, rate in sorted(by_k.items()):
            logger.scalar(f"goal_curve/{curve['env']}/{agent}", rate, k)
    logger.figure(f"goal_curve/{curve['env']}/figure", plot_goal_curve(curve), 0)
