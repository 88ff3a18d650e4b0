"""Paired comparison of two agents on the same seeded episodes: who solved what, and an exact McNemar test.

Two agents run on the same seeds see the same starts and goals, so the episodes only one of them solved
carry the whole difference; under "no difference" each such episode is a fair coin. The same sign test
scores the violation-of-expectation pairs of ``experiments.probe`` against chance.
"""

from __future__ import annotations

from collections.abc import Iterable
from math import comb
from statistics import median
from typing import Any


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test of ``wins`` vs ``losses`` (binomial, p = 1/2; ties left out before).

    On the discordant episodes of two agents this is McNemar's exact test.
    """
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(wins, losses) + 1)) / 2 ** n
    return min(1.0, 2.0 * tail)


def pair_by_seed(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The episode records of two runs paired on their shared seeds, in seed order."""
    by_seed_b = {e["seed"]: e for e in b}
    pairs = sorted(((e, by_seed_b[e["seed"]]) for e in a if e["seed"] in by_seed_b), key=lambda pair: pair[0]["seed"])
    if not pairs:
        raise ValueError("the two runs share no episode seed: run both with the same seed= and episodes=")
    return pairs


def paired_comparison(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """Episode records (``seed``, ``success``, optionally ``steps``) of two runs -> counts over the shared seeds,
    the p-value and each run's median steps over its solved shared episodes (``steps_a``, ``steps_b``; None
    where it solved none or its records carry no ``steps``)."""
    pairs = pair_by_seed(a, b)
    solved = [(bool(ea["success"]), bool(eb["success"])) for ea, eb in pairs]
    only_a = sum(sa and not sb for sa, sb in solved)
    only_b = sum(sb and not sa for sa, sb in solved)
    return {"episodes": len(pairs), "success_a": sum(sa for sa, _ in solved) / len(pairs),
            "success_b": sum(sb for _, sb in solved) / len(pairs), "both": sum(sa and sb for sa, sb in solved),
            "only_a": only_a, "only_b": only_b, "p_value": sign_test_p(only_a, only_b),
            "steps_a": _median_solved_steps(ea for ea, _ in pairs),
            "steps_b": _median_solved_steps(eb for _, eb in pairs)}


def _median_solved_steps(records: Iterable[dict[str, Any]]) -> float | None:
    steps = [e["steps"] for e in records if e["success"] and "steps" in e]
    return float(median(steps)) if steps else None


def shared_criteria(summaries: Any) -> list[str]:
    """The other success criteria (``criteria_success_rates``, e.g. Push-T's ``pose_success``) that every one of
    the plan ``summaries`` reports."""
    names = [set(s.get("criteria_success_rates") or {}) for s in summaries]
    return sorted(set.intersection(*names)) if names else []


def criterion_as_success(episodes: list[dict[str, Any]], criterion: str) -> list[dict[str, Any]]:
    """Episode records with ``success`` read from their ``criteria[criterion]``, for ``paired_comparison``."""
    return [{**e, "success": bool(e.get("criteria", {}).get(criterion, False))} for e in episodes]
