"""Compare two plan runs on their shared seeded episodes: ``python -m experiments.compare_plans RUN_A RUN_B``.

Prints each agent's success rate over the shared episodes, the episodes only one of them solved, the
exact McNemar p-value of that split (``worldmodel.evaluation.paired``) and each agent's median env steps to
the goal over the episodes it solved; then the same split for each other success criterion both runs report
(Push-T's ``pose_success``); then, for each run, what its failures were (``worldmodel.evaluation.failures``):
over all shared episodes, and over those only the other run solved.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from worldmodel.evaluation.failures import describe, failure_kinds
from worldmodel.evaluation.paired import criterion_as_success, pair_by_seed, paired_comparison, shared_criteria


def _load(run: str) -> dict:
    path = Path(run) / "summary.json" if Path(run).is_dir() else Path(run)
    if not path.is_file():
        raise FileNotFoundError(f"no plan summary at {path}; pass a run directory of `python -m experiments.plan`")
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    args = parser.parse_args(argv)
    try:
        a, b = _load(args.run_a), _load(args.run_b)
        if a.get("env") != b.get("env"):
            raise ValueError(f"the runs are on different envs ({a.get('env')} vs {b.get('env')}); "
                             "compare runs of one env")
        result = paired_comparison(a["episodes"], b["episodes"])
        others = {name: paired_comparison(criterion_as_success(a["episodes"], name),
                                          criterion_as_success(b["episodes"], name))
                  for name in shared_criteria([a, b])}
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    name_a, name_b = a.get("agent") or args.run_a, b.get("agent") or args.run_b
    if name_a == name_b:  # one agent, two settings: name the runs instead
        name_a, name_b = args.run_a, args.run_b
    print(f"{a['env']}, {result['episodes']} shared episodes: {name_a} {result['success_a']:.0%}, "
          f"{name_b} {result['success_b']:.0%}; both solved {result['both']}, only {name_a} {result['only_a']}, "
          f"only {name_b} {result['only_b']}; exact McNemar p = {result['p_value']:.4f}")
    if result["steps_a"] is not None and result["steps_b"] is not None:
        print(f"median env steps to the goal, solved episodes: {name_a} {result['steps_a']:g}, "
              f"{name_b} {result['steps_b']:g}")
    for name, other in others.items():
        print(f"{name}: {name_a} {other['success_a']:.0%}, {name_b} {other['success_b']:.0%}; both {other['both']}, "
              f"only {name_a} {other['only_a']}, only {name_b} {other['only_b']}; exact McNemar p = "
              f"{other['p_value']:.4f}")
    pairs = pair_by_seed(a["episodes"], b["episodes"])
    for name, side in ((name_a, 0), (name_b, 1)):
        mine = [pair[side] for pair in pairs]
        print(f"{name} {describe(failure_kinds(mine))}")
        only_other = [pair[side] for pair in pairs if pair[1 - side]["success"] and not pair[side]["success"]]
        if only_other:
            print(f"  of them solved by the other run only: {describe(failure_kinds(only_other))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
