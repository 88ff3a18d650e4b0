"""Success over pretraining seeds: ``python -m experiments.seed_sweep --env reacher --out DIR``.

For each pretraining seed it runs the default ``python -m experiments.pretrain env=ENV seed=S`` (into
``DIR/ENV_sS``), then ``python -m experiments.plan`` for each agent on the same seeded episodes (into
``DIR/plan_ENV_sS_AGENT``), skipping every run whose ``summary.json`` is already there, so an interrupted
sweep continues where it stopped. It prints, and writes to ``DIR/ENV_seed_sweep.json``, each agent's success
rate per seed, their mean and standard deviation, median ms per action, the pretraining wall time, each planning
cost's Spearman correlation with the true distance (``cost_correlation`` of the pretrain summaries) and paired
comparisons (``worldmodel.evaluation.paired``) with episodes pooled over the seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import mean, median, pstdev
from typing import Any

from worldmodel.evaluation.paired import paired_comparison

AGENTS = ("random", "mpc", "hierarchical", "oracle")
COMPARISONS = (("hierarchical", "mpc"),)


def pretrain_dir(out: Path, env: str, seed: int) -> Path:
    return out / f"{env}_s{seed}"


def plan_dir(out: Path, env: str, seed: int, agent: str) -> Path:
    return out / f"plan_{env}_s{seed}_{agent}"


def _run(command: list[str], log: Path, threads: int) -> float:
    """Run one of the repo's commands with ``threads`` OpenMP threads, its output to ``log``; wall seconds."""
    start = time.perf_counter()
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=environment, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed (exit {result.returncode}); see {log}")
    return time.perf_counter() - start


def run_sweep(env: str, seeds: list[int], agents: list[str], episodes: int, plan_seed: int, workers: int,
              out: Path) -> None:
    """Run the pretrain and plan commands that have no ``summary.json`` yet."""
    out.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        run = pretrain_dir(out, env, seed)
        if not (run / "world_model.pt").is_file():
            wall = _run([sys.executable, "-m", "experiments.pretrain", f"env={env}", f"seed={seed}",
                         f"hydra.run.dir={run}"], out / f"{run.name}.log", threads=2)
            (run / "wall_seconds.json").write_text(json.dumps({"pretrain_wall_s": wall}))
        for agent in agents:
            plan = plan_dir(out, env, seed, agent)
            if not (plan / "summary.json").is_file():
                _run([sys.executable, "-m", "experiments.plan", f"env={env}", f"agent={agent}",
                      f"episodes={episodes}", f"seed={plan_seed}", f"workers={workers}", f"checkpoint={run}",
                      f"hydra.run.dir={plan}", "tb.enabled=false"], out / f"{plan.name}.log", threads=1)


def _pooled(summaries: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Episode records of several pretraining seeds, keyed by (pretraining seed, episode seed)."""
    return [{**episode, "seed": f"{seed}:{episode['seed']}"} for seed, summary in summaries.items()
            for episode in summary["episodes"]]


def sweep_table(env: str, seeds: list[int], agents: list[str], out: Path) -> dict[str, Any]:
    """Per-agent success over the seeds found under ``out``, and the paired comparisons."""
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for agent in agents:
        found = {s: plan_dir(out, env, s, agent) / "summary.json" for s in seeds}
        runs[agent] = {s: json.loads(p.read_text()) for s, p in found.items() if p.is_file()}
    table: dict[str, Any] = {"env": env, "seeds": seeds, "agents": {}, "comparisons": [], "pretrain_wall_s": {},
                             "cost_spearman": {}}
    for seed in seeds:
        wall = pretrain_dir(out, env, seed) / "wall_seconds.json"
        if wall.is_file():
            table["pretrain_wall_s"][seed] = json.loads(wall.read_text())["pretrain_wall_s"]
        summary = pretrain_dir(out, env, seed) / "summary.json"
        correlations = json.loads(summary.read_text()).get("cost_correlation", {}) if summary.is_file() else {}
        for truth, costs in correlations.items():
            for cost, values in costs.items():
                table["cost_spearman"].setdefault(f"{cost} vs {truth} distance", {})[seed] = values["spearman"]
    for agent, summaries in runs.items():
        if not summaries:
            continue
        rates = {s: summary["success_rate"] for s, summary in summaries.items()}
        table["agents"][agent] = {
            "success_per_seed": rates, "success_mean": mean(rates.values()), "success_std": pstdev(rates.values()),
            "episodes_per_seed": [len(s["episodes"]) for s in summaries.values()],
            "ms_per_step_median": median(s["ms_per_step"]["median"] for s in summaries.values()),
            "final_distance_mean": mean(s["mean_final_distance"] for s in summaries.values())}
    for a, b in COMPARISONS:
        shared = sorted(runs.get(a, {}).keys() & runs.get(b, {}).keys())
        if shared:
            result = paired_comparison(_pooled({s: runs[a][s] for s in shared}),
                                       _pooled({s: runs[b][s] for s in shared}))
            table["comparisons"].append({"a": a, "b": b, "seeds": shared, **result})
    return table


def format_table(table: dict[str, Any]) -> str:
    lines = [f"{table['env']}: success over pretraining seeds {table['seeds']} (mean ± std; per seed)",
             "| agent | success | per seed | ms/action (median) | final distance |", "| --- | --- | --- | --- | --- |"]
    for agent, row in table["agents"].items():
        per_seed = ", ".join(f"s{seed} {r:.0%}" for seed, r in row["success_per_seed"].items())
        lines.append(f"| {agent} | {row['success_mean']:.0%} ± {row['success_std']:.0%} | {per_seed} | "
                     f"{row['ms_per_step_median']:.1f} | {row['final_distance_mean']:.3f} |")
    for c in table["comparisons"]:
        lines.append(f"paired, {c['episodes']} episodes pooled over seeds {c['seeds']}: {c['a']} {c['success_a']:.0%} "
                     f"vs {c['b']} {c['success_b']:.0%}; only {c['a']} {c['only_a']}, only {c['b']} {c['only_b']}; "
                     f"exact McNemar p = {c['p_value']:.4g}")
    for name, per_seed in table["cost_spearman"].items():
        values = ", ".join(f"s{seed} {v:.3f}" for seed, v in per_seed.items())
        lines.append(f"Spearman, {name} (held-out pairs), per seed: {values}")
    if table["pretrain_wall_s"]:
        walls = ", ".join(f"{w / 60:.1f}" for w in table["pretrain_wall_s"].values())
        lines.append(f"pretraining wall time per seed (min): {walls}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--out", required=True, type=Path, help="folder for the runs (reused: finished runs are kept)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="pretraining seeds")
    parser.add_argument("--agents", nargs="+", default=list(AGENTS))
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--plan-seed", type=int, default=0, help="seed of the first episode (plan seed=)")
    parser.add_argument("--workers", type=int, default=2, help="plan workers")
    parser.add_argument("--table-only", action="store_true", help="only tabulate the runs already in --out")
    args = parser.parse_args(argv)
    try:
        if not args.table_only:
            run_sweep(args.env, args.seeds, args.agents, args.episodes, args.plan_seed, args.workers, args.out)
        table = sweep_table(args.env, args.seeds, args.agents, args.out)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not table["agents"]:
        print(f"error: no plan runs of {args.env} under {args.out}; run without --table-only", file=sys.stderr)
        return 2
    (args.out / f"{args.env}_seed_sweep.json").write_text(json.dumps(table, indent=2))
    print(format_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
