"""Mixed clip sources: fixed shares per epoch, every item visited, deterministic and resumable by position."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from worldmodel.data.mixed_clips import MixedClips
from worldmodel.data.sampling import ResumableClips
from worldmodel.data.sim_clips import SimClipDataset


def _constant_source(value: int, episodes: int, length: int = 10, size: int = 8) -> SimClipDataset:
    """Clips whose every pixel is ``value``: the source of a clip can be read off its pixels."""
    frames = np.full((episodes * length, size, size, 3), value, dtype=np.uint8)
    starts = np.arange(episodes + 1) * length
    return SimClipDataset(frames, starts, frames=4, frame_step=1, size=size)  # 7 windows per episode


def test_each_epoch_holds_the_shares_and_visits_every_item():
    sim, videos = _constant_source(10, episodes=10), _constant_source(200, episodes=1)  # 70 and 7 windows
    mixed = MixedClips([sim, videos], [0.75, 0.25])
    assert mixed.counts == [70, 24] and len(mixed) == 94  # 94 = ceil(70 / 0.75)
    clips = ResumableClips(mixed, seed=0)
    for epoch in range(2):
        located = [mixed.locate(clips.index_at(epoch * len(mixed) + i)) for i in range(len(mixed))]
        per_source = Counter(source for source, _ in located)
        assert per_source == {0: 70, 1: 24}
        assert {item for source, item in located if source == 0} == set(range(70))
        assert {item for source, item in located if source == 1} == set(range(7))


def test_a_small_source_is_repeated_to_fill_its_share():
    sim, videos = _constant_source(10, episodes=1), _constant_source(200, episodes=1)  # 7 windows each
    mixed = MixedClips([sim, videos], [0.1, 0.9])
    assert mixed.counts == [7, 63]
    assert [mixed.locate(i)[1] for i in (7, 14, 69)] == [0, 0, 6]


def test_clips_are_a_function_of_seed_and_position_and_come_from_both_sources():
    mixed = MixedClips([_constant_source(10, episodes=4), _constant_source(200, episodes=2)], [0.5, 0.5])
    a, b = ResumableClips(mixed, seed=3, augment=False), ResumableClips(mixed, seed=3, augment=False)
    for position in (0, 17, 40):  # a fresh reader resumes at any position with the same clip
        assert torch.equal(a[position]["clip"], b[position]["clip"])
    order = [mixed.locate(a.index_at(p))[0] for p in range(len(mixed))]
    assert order != sorted(order)  # interleaved, not one source after the other
    other = [mixed.locate(ResumableClips(mixed, seed=4).index_at(p))[0] for p in range(len(mixed))]
    assert order != other
    pixels = {round(float(a[p]["clip"].mean()), 3) for p in range(8)}
    assert len(pixels) == 2  # the two constant sources, normalised


def test_bad_shares_and_sizes_are_refused():
    one, other = _constant_source(10, episodes=1), _constant_source(200, episodes=1, size=16)
    with pytest.raises(ValueError, match="sum to 1"):
        MixedClips([one, one], [0.5, 0.6])
    with pytest.raises(ValueError, match="strictly between"):
        MixedClips([one, one], [1.0, 0.0])
    with pytest.raises(ValueError, match="different sizes"):
        MixedClips([one, other], [0.5, 0.5])


def test_runtime_failures_are_summed_over_sources():
    one, two = _constant_source(10, episodes=1), _constant_source(200, episodes=1)
    one.runtime_failures, two.runtime_failures = 2, 3
    assert MixedClips([one, two], [0.5, 0.5]).runtime_failures == 5
