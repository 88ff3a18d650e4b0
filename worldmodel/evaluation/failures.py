"""What went wrong in the episodes a plan run did not solve, read from each episode's task-distance trace.

Every failed episode falls in one of three kinds:
- ``never_moved``: the task distance never changed (a pusher that never touched its block);
- ``ended_further``: it ended further from the goal than it started (the object pushed the wrong way);
- ``stopped_short``: it got closer and stopped there; ``closest_median`` is their median closest approach, to read
  beside ``solved_final_median``, where solved episodes end (the success threshold's side of it).
Episodes that failed by a fault (``failure`` set) or recorded no distances are counted as ``faults``.
"""

from __future__ import annotations

import math
from statistics import median
from typing import Any

# A distance that moves by less than this (in the env's units, relative to where it started) has not moved.
UNMOVED = 1e-3


def failure_kinds(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of the failure kinds among ``episodes`` (plan-summary records with ``distances``), with medians."""
    kinds = {"failed": 0, "never_moved": 0, "ended_further": 0, "stopped_short": 0, "faults": 0}
    closest, solved_final = [], []
    for episode in episodes:
        distances = [d for d in episode.get("distances") or [] if not math.isnan(d)]
        if episode.get("success"):
            if distances:
                solved_final.append(distances[-1])
            continue
        kinds["failed"] += 1
        if episode.get("failure") or not distances:
            kinds["faults"] += 1
        elif max(abs(d - distances[0]) for d in distances) <= UNMOVED * max(abs(distances[0]), 1.0):
            kinds["never_moved"] += 1
        elif distances[-1] > distances[0]:
            kinds["ended_further"] += 1
        else:
            kinds["stopped_short"] += 1
            closest.append(min(distances))
    kinds["closest_median"] = median(closest) if closest else None
    kinds["solved_final_median"] = median(solved_final) if solved_final else None
    return kinds


def describe(kinds: dict[str, Any]) -> str:
    """One line, e.g. ``failed 14: never moved 3, ended further 2, stopped short 9 (their closest approach, median
    0.12; solved episodes end at 0.097)``."""
    text = (f"failed {kinds['failed']}: never moved {kinds['never_moved']}, ended further {kinds['ended_further']}, "
            f"stopped short {kinds['stopped_short']}")
    if kinds["faults"]:
        text += f", faults {kinds['faults']}"
    medians = []
    if kinds["closest_median"] is not None:
        medians.append(f"their closest approach, median {kinds['closest_median']:.3g}")
    if kinds["solved_final_median"] is not None:
        medians.append(f"solved episodes end at {kinds['solved_final_median']:.3g}")
    return text + (f" ({'; '.join(medians)})" if medians else "")
