"""Greedy descent on a planning cost (worldmodel.evaluation.basin) on hand-made cell graphs."""

from __future__ import annotations

import numpy as np
import pytest

from worldmodel.evaluation.basin import cost_profile, descent_success

LINE = np.abs(np.arange(5)[:, None] - np.arange(5)[None]).astype(float)  # five cells in a row, 1 apart


def test_a_cost_that_falls_toward_the_goal_leads_there_from_everywhere():
    assert descent_success(LINE[[0]], LINE, np.array([0]), reach=1.0, tolerance=0.0) == 1.0


def test_a_bump_traps_short_reach_but_not_a_longer_one():
    bumpy = np.array([[0.0, 1.0, 3.0, 2.0, 4.0]])  # cell 3 is a local minimum behind cell 2
    assert descent_success(bumpy, LINE, np.array([0]), reach=1.0, tolerance=0.0) == pytest.approx(3 / 5)
    assert descent_success(bumpy, LINE, np.array([0]), reach=2.0, tolerance=0.0) == 1.0
    assert descent_success(bumpy, LINE, np.array([0]), reach=1.0, tolerance=3.0) == 1.0  # stuck close enough


def test_walls_count_through_path_lengths_and_goals_are_averaged():
    path = LINE.copy()
    path[:2, 2:] = path[2:, :2] = np.inf  # a wall between cells 1 and 2: no path at all
    cost = np.array([[0.0, 1.0, 1.5, 2.0, 3.0],    # goal 0: the far side never gets there
                     [4.0, 3.0, 2.0, 1.0, 0.0]])   # goal 4: the near side never gets there
    assert descent_success(cost, path, np.array([0, 4]), reach=4.0, tolerance=0.0) == pytest.approx(
        np.mean([2 / 5, 3 / 5]))


def test_cost_profile_is_the_median_cost_at_each_distance_over_the_median_at_all():
    line = np.arange(5, dtype=float)[None]  # path lengths 0..4 to the goal in cell 0
    linear = line.copy()  # a cost that grows with the path: 1 at the median distance (2.5)
    saturated = np.array([[0.0, 1.0, 1.0, 1.0, 1.0]])  # a cost that jumps to its range in one cell
    assert cost_profile(linear, line, (1.0, 4.0), width=0.1) == {"1 m": pytest.approx(1 / 2.5),
                                                                "4 m": pytest.approx(4 / 2.5)}
    assert cost_profile(saturated, line, (1.0, 4.0, 9.0), width=0.1) == {"1 m": 1.0, "4 m": 1.0, "9 m": None}
