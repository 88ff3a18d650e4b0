"""Nearest-neighbour position resolution of a state space."""

import numpy as np
import pytest

from worldmodel.evaluation.resolution import position_resolution


def grid_positions(step: float = 0.05) -> np.ndarray:
    axis = np.arange(-1.0, 1.0 + 1e-9, step)
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)


def test_states_that_carry_the_position_resolve_it_to_the_grid_spacing():
    positions = grid_positions()
    states = np.concatenate([3.0 * positions, np.zeros((len(positions), 5))], axis=1)  # scaled, extra dims
    result = position_resolution(states, positions, queries=300, seed=0)
    assert result["median"] < 0.05 and result["p90"] < 0.06


def test_states_blind_to_one_axis_or_quantised_resolve_it_coarsely():
    positions = grid_positions()
    blind = position_resolution(positions[:, :1], positions, queries=300, seed=0)
    assert blind["median"] > 0.3  # y is guessed from three neighbours anywhere on the same x line
    coarse = position_resolution(np.round(positions * 2) / 2, positions, queries=300, seed=0)  # 0.5 m cells
    fine = position_resolution(np.round(positions * 10) / 10, positions, queries=300, seed=0)  # 0.1 m cells
    assert fine["median"] < coarse["median"] and coarse["median"] > 0.1


def test_query_count_is_checked():
    positions = grid_positions(0.5)
    with pytest.raises(ValueError, match="queries must be in"):
        position_resolution(positions, positions, queries=len(positions), seed=0)
