"""Success over pretraining seeds: ``python -m experiments.seed_sweep --env reacher --out DIR``.

For each pretraining seed it runs the default ``python -m experiments.pretrain env=ENV seed=S`` (into
``DIR/ENV_sS``), then ``python -m experiments.plan`` for each agent on the same seeded episodes (into
``DIR/plan_ENV_sS_AGENT``), skipping every run whose ``summary.json`` is already there, so an interrupted
sweep continues where it stopped. It prints, and writes to ``DIR/ENV_seed_sweep.json``, each agent's success
rate per seed, their mean and standard deviation, median ms per action, the pretraining time (from its log), each
planning cost's Spearman correlation with the true distance (``cost_correlation`` of the pretrain summaries) and paired
comparisons (``worldmodel.evaluation.paired``) with episodes pooled over the seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from worldmodel.evaluation.seed_sweep import format_table, plan_dir, pretrain_dir, sweep_table

AGENTS = ("random", "mpc", "hierarchical", "oracle")


def _run(command: list[str], log: Path, threads: int) -> None:
    """Run one of the repo's commands with ``threads`` OpenMP threads, its output to ``log``."""
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=environment, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed (exit {result.returncode}); see {log}")


def run_sweep(env: str, seeds: list[int], agents: list[str], episodes: int, plan_seed: int, workers: int,
              out: Path) -> None:
    """Run the pretrain and plan commands that have no ``summary.json`` yet."""
    out.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        run = pretrain_dir(out, env, seed)
        if not (run / "world_model.pt").is_file():
            _run([sys.executable, "-m", "experiments.pretrain", f"env={env}", f"seed={seed}",
                         f"hydra.run.dir={run}"], out / f"{run.name}.log", threads=2)
        for agent in agents:
            plan = plan_dir(out, env, seed, agent)
            if not (plan / "summary.json").is_file():
                _run([sys.executable, "-m", "experiments.plan", f"env={env}", f"agent={agent}",
                      f"episodes={episodes}", f"seed={plan_seed}", f"workers={workers}", f"checkpoint={run}",
                      f"hydra.run.dir={plan}", "tb.enabled=false"], out / f"{plan.name}.log", threads=1)


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
