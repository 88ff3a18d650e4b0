"""The planning cost's smoothness at the scale of a frame (worldmodel.evaluation.smoothness)."""

import numpy as np
import pytest

from worldmodel.evaluation.smoothness import jump_summary, nearby_pairs


def left_half_free(p: np.ndarray) -> bool:
    return bool(np.all(np.abs(p) <= 1.0) and p[0] < 0.0)


def test_pairs_are_free_and_the_move_apart():
    starts, ends = nearby_pairs(left_half_free, count=200, move=0.01, seed=0)
    assert starts.shape == ends.shape == (200, 2)
    assert all(left_half_free(p) for p in np.concatenate([starts, ends]))
    np.testing.assert_allclose(np.linalg.norm(ends - starts, axis=1), 0.01)
    again, _ = nearby_pairs(left_half_free, count=200, move=0.01, seed=0)
    np.testing.assert_array_equal(starts, again)


def test_a_smooth_cost_reads_small_and_a_glitch_shows_in_the_tail():
    starts, ends = nearby_pairs(left_half_free, count=1000, move=0.01, seed=1)
    steps_per_metre = 15.0  # a distance in env steps: about 0.07 m per full-speed step
    smooth = jump_summary(steps_per_metre * np.linalg.norm(ends - starts, axis=1))
    assert smooth["max"] < 0.2 and smooth["over_1"] == 0.0 and smooth["over_3"] == 0.0

    # one frame in fifty lands far from its neighbours: the median does not see it, the tail does
    glitched = steps_per_metre * np.linalg.norm(ends - starts, axis=1)
    glitched[::50] = 40.0
    result = jump_summary(glitched)
    assert result["median"] < 0.2 and result["max"] == 40.0
    assert result["over_1"] == pytest.approx(0.02) and result["over_3"] == pytest.approx(0.02)


def test_bad_arguments_and_a_space_too_tight_fail_clearly():
    with pytest.raises(ValueError, match="count"):
        nearby_pairs(left_half_free, count=0, move=0.01, seed=0)
    with pytest.raises(RuntimeError, match="free pairs"):
        nearby_pairs(lambda p: abs(p[0]) < 1e-3 and abs(p[1]) < 1e-3, count=5, move=0.5, seed=0)
