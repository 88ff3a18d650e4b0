"""Success over pretraining seeds: ``python -m experiments.seed_sweep --env reacher --out DIR``.

For each pretraining seed it runs ``python -m experiments.pretrain env=ENV seed=S`` (into ``DIR/ENV_sS``; with
``--pretrain KEY=VALUE ...``, those overrides too), then ``python -m experiments.plan`` for each agent on the same
seeded episodes (into ``DIR/plan_ENV_sS_AGENT``; with ``--goal-steps K ...``, once per K toward goals K steps ahead
on held-out trajectories, into ``DIR/plan_ENV_sS_AGENT_kK``), skipping every run whose ``summary.json`` is already
there, so an interrupted sweep continues where it stopped. It prints, and writes to ``DIR/ENV_seed_sweep.json``
(``DIR/ENV_kK_seed_sweep.json`` per K), each agent's success rate per seed, their mean and standard deviation,
median ms per action, the pretraining time (from its log), each planning cost's Spearman correlation with the true
distance (``cost_correlation`` of the pretrain summaries) and paired comparisons (``worldmodel.evaluation.paired``)
with episodes pooled over the seeds, under the env's success test and each of its other criteria (Push-T's
``pose_success``). Agents that read no world model (random, oracle) play only on the first seed: their episodes
would be the same on every seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agents.runner import agent_class, needs_world_model
from worldmodel.evaluation.seed_sweep import format_table, run_sweep, sweep_table

AGENTS = ("random", "mpc", "hierarchical", "oracle")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--out", required=True, type=Path, help="folder for the runs (reused: finished runs are kept)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="pretraining seeds")
    parser.add_argument("--agents", nargs="+", default=list(AGENTS))
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--plan-seed", type=int, default=0, help="seed of the first episode (plan seed=)")
    parser.add_argument("--workers", type=int, default=2, help="plan workers")
    parser.add_argument("--goal-steps", type=int, nargs="+", default=None, metavar="K",
                        help="plan toward goals K env steps ahead on held-out trajectories (plan goal_steps=K), "
                             "one table per K; default: the env's own goals")
    parser.add_argument("--pretrain", nargs="+", default=[], metavar="KEY=VALUE",
                        help="overrides for every pretrain, e.g. a larger setting (give each setting its own --out)")
    parser.add_argument("--table-only", action="store_true", help="only tabulate the runs already in --out")
    args = parser.parse_args(argv)
    goal_steps = args.goal_steps or [None]
    try:
        if not args.table_only:
            once = frozenset(a for a in args.agents if not needs_world_model(agent_class(a)))
            run_sweep(args.env, args.seeds, args.agents, args.episodes, args.plan_seed, args.workers, args.out,
                      goal_steps, once, tuple(args.pretrain))
        tables = [sweep_table(args.env, args.seeds, args.agents, args.out, k) for k in goal_steps]
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not any(table["agents"] for table in tables):
        print(f"error: no plan runs of {args.env} under {args.out}; run without --table-only", file=sys.stderr)
        return 2
    for k, table in zip(goal_steps, tables):
        name = f"{args.env}_seed_sweep.json" if k is None else f"{args.env}_k{k}_seed_sweep.json"
        (args.out / name).write_text(json.dumps(table, indent=2))
    print("\n\n".join(format_table(table) for table in tables if table["agents"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
