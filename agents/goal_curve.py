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

# Published success rates by goal distance k (env steps), shown beside ours under the success criterion they
# used (an info["<name>"] the env reports): flat LeWM from Hi-LeWM; DINO-WM's 25-step goals; HWM's flat and
# hierarchical DINO-WM at long distances. All use DINO-WM's Push-T criterion, our pusht's pose_success.
ANCHORS: dict[str, tuple[str, dict[str, dict[int, float]]]] = {
    "pusht": ("pose_success", {
        "flat LeWM": {25: 0.94, 50: 0.527, 75: 0.18},
        "DINO-WM": {25: 0.90},
        "HWM: flat DINO-WM": {75: 0.17},
        "HWM: hierarchical": {75: 0.61},
    }),
}


def measure_goal_curve(env_name: str, agent_names: list[str], goal_steps: list[int], episodes: int,
                       max_steps: int | None, device: str, checkpoint_for: Callable[[str], str | None],
                       params_for: Callable[[str, str], dict[str, Any]]) -> dict[str, Any]:
    """Per ``k`` in ``goal_steps``, ``episodes`` episodes of each agent toward goals ``k`` steps ahead
    (``agents.benchmark.measure_agents``). Returns ``success`` and ``ms_per_step`` as ``{agent: {k: value}}``,
    the env's other success criteria as ``criteria`` ``{name: {agent: {k: rate}}}``, and each ``k``'s full
    results under ``runs``; agents skipped for want of a checkpoint are left out."""
    success: dict[str, dict[int, float]] = {}
    ms: dict[str, dict[int, float]] = {}
    criteria: dict[str, dict[str, dict[int, float]]] = {}
    runs: dict[int, dict[str, Any]] = {}
    for k in goal_steps:
        runs[k] = measure_agents([env_name], agent_names, episodes, max_steps, device, checkpoint_for,
                                 params_for=params_for, goal_steps=k)
        for result in runs[k].values():
            success.setdefault(result["agent"], {})[k] = result["success_rate"]
            ms.setdefault(result["agent"], {})[k] = result["ms_per_step"]
            for name, rate in result["criteria_success_rates"].items():
                criteria.setdefault(name, {}).setdefault(result["agent"], {})[k] = rate
    return {"env": env_name, "goal_steps": list(goal_steps), "episodes": episodes, "success": success,
            "criteria": criteria, "ms_per_step": ms, "checkpoint": checkpoint_for(env_name), "runs": runs}


def _table(title: str, ks: list[int], rows: list[tuple[str, dict[int, float]]]) -> list[str]:
    width = max(len(name) for name, _ in rows) + 2
    lines = [title, f"  {'agent':<{width}}" + "".join(f"{f'k={k}':>8}" for k in ks)]
    for name, by_k in rows:
        lines.append(f"  {name:<{width}}" + "".join(f"{by_k[k]:>8.0%}" if k in by_k else f"{'':>8}" for k in ks))
    return lines


def format_goal_curve(curve: dict[str, Any]) -> str:
    """One table per success criterion (the env's ``is_success``, then its others), one row per agent and one
    column per ``k``; the env's published anchors under the criterion they used."""
    ks, env = curve["goal_steps"], curve["env"]
    anchor_criterion, anchors = ANCHORS.get(env, (None, {}))
    lines = [f"success vs goal distance on {env} ({curve['episodes']} episodes per cell; goals k env steps ahead "
             "on held-out trajectories)"]
    tables = {"is_success": curve["success"], **curve.get("criteria", {})}
    for criterion, by_agent in tables.items():
        rows = list(by_agent.items())
        if criterion == anchor_criterion:
            rows += [(f"{name} (published)", points) for name, points in anchors.items()]
        if rows:
            lines += _table(f"{criterion}:", ks, rows)
    return "\n".join(lines)


def plot_goal_curve(curve: dict[str, Any]):
    """A matplotlib figure: success against ``k`` per agent (solid), under the anchors' criterion too (dotted)
    where the env reports it, and the anchors as open markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=100)
    criterion, anchors = ANCHORS.get(curve["env"], (None, {}))
    for agent, by_k in curve["success"].items():
        ks = sorted(by_k)
        line, = ax.plot(ks, [by_k[k] for k in ks], "o-", label=agent)
        loose = curve.get("criteria", {}).get(criterion, {}).get(agent)
        if loose:
            ax.plot(ks, [loose[k] for k in ks], "o:", color=line.get_color(), label=f"{agent}, {criterion}")
    for name, points in anchors.items():
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
    """``goal_curve/<env>/<agent>``: success with ``k`` as the step (``goal_curve/<env>/<criterion>/<agent>`` for
    the env's other criteria); ``goal_curve/<env>/figure``: all of them."""
    for agent, by_k in curve["success"].items():
        for k, rate in sorted(by_k.items()):
            logger.scalar(f"goal_curve/{curve['env']}/{agent}", rate, k)
    for criterion, by_agent in curve["criteria"].items():
        for agent, by_k in by_agent.items():
            for k, rate in sorted(by_k.items()):
                logger.scalar(f"goal_curve/{curve['env']}/{criterion}/{agent}", rate, k)
    logger.figure(f"goal_curve/{curve['env']}/figure", plot_goal_curve(curve), 0)
