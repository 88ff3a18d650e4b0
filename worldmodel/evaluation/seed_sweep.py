"""A seed sweep (``experiments.seed_sweep``): ``run_sweep`` runs the pretrain and plan commands it lacks, each in
its own process; ``sweep_table`` tabulates per agent plan success over pretraining seeds, with the
pretraining wall time, each planning cost's Spearman correlation with the true distance and paired comparisons
(``worldmodel.evaluation.paired``) with the episodes pooled over the seeds. The runs live in one folder:
``ENV_sS`` (pretrain) and ``plan_ENV_sS_AGENT`` (plan; ``plan_ENV_sS_AGENT_kK`` with goals K steps ahead).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from statistics import mean, median, pstdev
from typing import Any

from worldmodel.evaluation.paired import criterion_as_success, paired_comparison, shared_criteria

COMPARISONS = (("hierarchical", "mpc"),)
_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def pretrain_dir(out: Path, env: str, seed: int) -> Path:
    """The pretrain run of ``seed`` in the sweep folder ``out``."""
    return out / f"{env}_s{seed}"


def plan_dir(out: Path, env: str, seed: int, agent: str, goal_steps: int | None = None) -> Path:
    """The plan run of ``agent`` on the world model of ``seed`` in the sweep folder ``out`` (``goal_steps``: its
    goals that many env steps ahead on held-out trajectories)."""
    return out / (f"plan_{env}_s{seed}_{agent}" + ("" if goal_steps is None else f"_k{goal_steps}"))


def _run(command: list[str], log: Path, threads: int) -> None:
    """Run one of the repo's commands with ``threads`` OpenMP threads, its output to ``log``."""
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=environment, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed (exit {result.returncode}); see {log}")


def run_sweep(env: str, seeds: list[int], agents: list[str], episodes: int, plan_seed: int, workers: int,
              out: Path, goal_steps: list[int | None], once: frozenset[str] = frozenset(),
              pretrain_overrides: tuple[str, ...] = ()) -> None:
    """Run the pretrain and plan commands that have no ``summary.json`` yet (plans once per ``goal_steps``
    entry; None: the env's own goals). The agents in ``once`` read no world model, so they play their episodes
    only on the first seed's run: on the others they would replay them identically. ``pretrain_overrides``
    (``key=value``) go to every pretrain, e.g. a larger setting than the env's default."""
    out.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        run = pretrain_dir(out, env, seed)
        if not (run / "world_model.pt").is_file():
            _run([sys.executable, "-m", "experiments.pretrain", f"env={env}", f"seed={seed}", *pretrain_overrides,
                  f"hydra.run.dir={run}"], out / f"{run.name}.log", threads=2)
        for k in goal_steps:
            goals = [] if k is None else [f"goal_steps={k}"]
            for agent in agents:
                if agent in once and seed != seeds[0]:
                    continue
                plan = plan_dir(out, env, seed, agent, k)
                if not (plan / "summary.json").is_file():
                    _run([sys.executable, "-m", "experiments.plan", f"env={env}", f"agent={agent}",
                          f"episodes={episodes}", f"seed={plan_seed}", f"workers={workers}", f"checkpoint={run}",
                          *goals, f"hydra.run.dir={plan}", "tb.enabled=false"], out / f"{plan.name}.log", threads=1)


def logged_seconds(log: Path) -> float | None:
    """Seconds from the first to the last timestamped line of a run's log (``pretrain.log``), or None."""
    if not log.is_file():
        return None
    stamps = [m.group(1) for line in log.read_text().splitlines() if (m := _LOG_TIME.match(line))]
    if len(stamps) < 2:
        return None
    first, last = (datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in (stamps[0], stamps[-1]))
    return (last - first).total_seconds()


def _pooled(summaries: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Episode records of several pretraining seeds, keyed by (pretraining seed, episode seed)."""
    return [{**episode, "seed": f"{seed}:{episode['seed']}"} for seed, summary in summaries.items()
            for episode in summary["episodes"]]


def sweep_table(env: str, seeds: list[int], agents: list[str], out: Path,
                goal_steps: int | None = None) -> dict[str, Any]:
    """Per-agent success over the seeds found under ``out``, and the paired comparisons (``goal_steps``: of the
    plan runs with goals that many steps ahead)."""
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for agent in agents:
        found = {s: plan_dir(out, env, s, agent, goal_steps) / "summary.json" for s in seeds}
        runs[agent] = {s: json.loads(p.read_text()) for s, p in found.items() if p.is_file()}
    table: dict[str, Any] = {"env": env, "seeds": seeds, "goal_steps": goal_steps, "agents": {}, "comparisons": [],
                             "pretrain_wall_s": {}, "cost_spearman": {}}
    for seed in seeds:
        seconds = logged_seconds(pretrain_dir(out, env, seed) / "pretrain.log")
        if seconds is not None:
            table["pretrain_wall_s"][seed] = seconds
        summary = pretrain_dir(out, env, seed) / "summary.json"
        correlations = json.loads(summary.read_text()).get("cost_correlation", {}) if summary.is_file() else {}
        for truth, costs in correlations.items():
            for cost, values in costs.items():
                table["cost_spearman"].setdefault(f"{cost} vs {truth} distance", {})[seed] = values["spearman"]
    for agent, summaries in runs.items():
        if not summaries:
            continue
        rates = {s: summary["success_rate"] for s, summary in summaries.items()}
        criteria = {name: {s: summary["criteria_success_rates"][name] for s, summary in summaries.items()}
                    for name in shared_criteria(summaries.values())}
        table["agents"][agent] = {
            **_spread(rates),
            "criteria": {name: _spread(by_seed) for name, by_seed in criteria.items()},
            "episodes_per_seed": [len(s["episodes"]) for s in summaries.values()],
            "ms_per_step_median": median(s["ms_per_step"]["median"] for s in summaries.values()),
            "final_distance_mean": mean(s["mean_final_distance"] for s in summaries.values())}
        shares = {seed: _level_2_share(summary) for seed, summary in summaries.items()}
        if all(share is not None for share in shares.values()):
            table["agents"][agent]["level_2_share_per_seed"] = shares
    for a, b in COMPARISONS:
        shared = sorted(runs.get(a, {}).keys() & runs.get(b, {}).keys())
        if not shared:
            continue
        pooled_a, pooled_b = (_pooled({s: runs[agent][s] for s in shared}) for agent in (a, b))
        table["comparisons"].append({"a": a, "b": b, "seeds": shared, "criterion": "is_success",
                                     **paired_comparison(pooled_a, pooled_b)})
        for name in shared_criteria([runs[agent][s] for agent in (a, b) for s in shared]):
            pair = paired_comparison(criterion_as_success(pooled_a, name), criterion_as_success(pooled_b, name))
            table["comparisons"].append({"a": a, "b": b, "seeds": shared, "criterion": name, **pair})
    return table


def _level_2_share(summary: dict[str, Any]) -> float | None:
    """The share of steps level 2 planned (``steps_per_level``), None for an agent with no levels."""
    levels = summary.get("steps_per_level") or {}
    return levels.get("2", 0) / sum(levels.values()) if levels else None


def _spread(per_seed: dict[int, float]) -> dict[str, Any]:
    """A success rate per seed with its mean and standard deviation over the seeds."""
    return {"success_per_seed": per_seed, "success_mean": mean(per_seed.values()),
            "success_std": pstdev(per_seed.values())}


def format_table(table: dict[str, Any]) -> str:
    """``sweep_table``'s result as Markdown: a heading line, the table, then one bullet per further figure."""
    criteria = sorted({name for row in table["agents"].values() for name in row.get("criteria", {})})
    header = ["agent", "episodes", "success", "per seed",
              *(f"{name} {part}" for name in criteria for part in ("", "per seed")), "ms/action (median)",
              "final distance"]
    rows = ["| " + " | ".join(h.strip() for h in header) + " |", "|" + " --- |" * len(header)]
    for agent, row in table["agents"].items():
        others = [row.get("criteria", {}).get(name) for name in criteria]
        counts = ", ".join(map(str, sorted(set(row["episodes_per_seed"]))))
        cells = [agent, counts, *_rate_cells(row), *(c for o in others for c in (_rate_cells(o) if o else ["", ""])),
                 f"{row['ms_per_step_median']:.1f}", f"{row['final_distance_mean']:.3f}"]
        rows.append("| " + " | ".join(cells) + " |")
    lines = []
    for c in table["comparisons"]:
        criterion = "" if c.get("criterion", "is_success") == "is_success" else f" ({c['criterion']})"
        lines.append(f"- paired{criterion}, {c['episodes']} episodes pooled over seeds {c['seeds']}: "
                     f"{c['a']} {c['success_a']:.0%} vs {c['b']} {c['success_b']:.0%}; "
                     f"only {c['a']} {c['only_a']}, only {c['b']} {c['only_b']}; "
                     f"exact McNemar p = {c['p_value']:.4g}")
    for agent, row in table["agents"].items():
        if "level_2_share_per_seed" in row:
            shares = ", ".join(f"s{seed} {v:.0%}" for seed, v in row["level_2_share_per_seed"].items())
            lines.append(f"- {agent}: share of steps level 2 planned, per seed: {shares}")
    for name, per_seed in table["cost_spearman"].items():
        values = ", ".join(f"s{seed} {v:.3f}" for seed, v in per_seed.items())
        lines.append(f"- Spearman, {name} (held-out pairs), per seed: {values}")
    if table["pretrain_wall_s"]:
        walls = ", ".join(f"{w / 60:.1f}" for w in table["pretrain_wall_s"].values())
        lines.append(f"- pretraining time per seed, first to last line of its log (min): {walls}")
    goals = "" if table.get("goal_steps") is None else f", goals {table['goal_steps']} steps ahead"
    heading = f"{table['env']}{goals}: success over pretraining seeds {table['seeds']} (mean ± std; per seed)"
    return "\n\n".join(["\n".join(part) for part in ([heading], rows, lines) if part])


def _rate_cells(row: dict[str, Any]) -> list[str]:
    """A rate's mean ± std over seeds, then its value per seed."""
    per_seed = ", ".join(f"s{seed} {r:.0%}" for seed, r in row["success_per_seed"].items())
    if len(row["success_per_seed"]) == 1:
        return [f"{row['success_mean']:.0%} (one run)", per_seed]
    return [f"{row['success_mean']:.0%} ± {row['success_std']:.0%}", per_seed]
