"""Multiblock 3D masks: index tensors, disjointness, coverage, seeding by position, masked fractions, fixed sizes."""

import numpy as np
import pytest
import torch

from worldmodel.models.masks import (
    DEFAULT_SPECS,
    FUTURE,
    LONG_RANGE,
    REFERENCE_BATCH,
    SHORT_RANGE,
    VJEPA_SPECS,
    MaskCounts,
    MaskSpec,
    MultiBlockMaskCollator,
    apply_masks,
    block_size,
    context_fractions,
    fit_union,
    mask_counts,
    masked_fractions,
    sample_fixed_masks,
    sample_masks,
    sample_target_mask,
)

torch.set_num_threads(1)
GRID = (4, 8, 8)
N = 4 * 8 * 8


def _items(start: int, batch: int = 6, frames: int = 8, size: int = 16):
    return [{"clip": torch.full((3, frames, size, size), float(start + i)), "position": start + i,
             "load_failures": i % 2} for i in range(batch)]


def test_collate_returns_clips_positions_and_rectangular_index_tensors():
    out = MultiBlockMaskCollator(GRID, seed=0)(_items(10))
    assert out["clips"].shape == (6, 3, 8, 16, 16)
    assert out["positions"].tolist() == list(range(10, 16))
    assert out["load_failures"] == 3
    assert len(out["masks_enc"]) == len(out["masks_pred"]) == len(DEFAULT_SPECS) == 3
    for enc, pred in zip(out["masks_enc"], out["masks_pred"]):
        assert enc.dtype == pred.dtype == torch.long
        assert enc.shape[0] == pred.shape[0] == 6
        assert enc.shape[1] >= 1 and pred.shape[1] >= 1
        assert enc.shape[1] + pred.shape[1] <= N
        for idx in (enc, pred):
            assert int(idx.min()) >= 0 and int(idx.max()) < N


def test_context_and_target_are_disjoint_in_every_sample():
    out = MultiBlockMaskCollator(GRID, seed=3)(_items(0, batch=8))
    for enc, pred in zip(out["masks_enc"], out["masks_pred"]):
        for e, p in zip(enc, pred):
            assert len(set(e.tolist())) == len(e) and len(set(p.tolist())) == len(p)
            assert not set(e.tolist()) & set(p.tolist())


@pytest.mark.parametrize("spec", VJEPA_SPECS)
def test_untruncated_context_and_target_partition_the_clip_and_span_all_time(spec):
    rng = np.random.default_rng(0)
    for _ in range(20):
        enc, pred = sample_masks(spec, GRID, batch_size=1, rng=rng)  # one sample: nothing is cut
        assert sorted(enc[0].tolist() + pred[0].tolist()) == list(range(N))
        masked = torch.zeros(N, dtype=torch.bool)
        masked[pred[0]] = True
        masked = masked.view(*GRID)
        assert (masked == masked[:1]).all(), "temporal_scale 1.0: every block spans the whole clip"


def test_future_mask_hides_the_second_half_of_the_clip_and_shows_the_first():
    enc, pred = sample_masks(FUTURE, GRID, batch_size=5, rng=np.random.default_rng(0))
    half = N // 2
    for e, p in zip(enc, pred):
        assert sorted(e.tolist()) == list(range(half)) and sorted(p.tolist()) == list(range(half, N))
    # whole frames on a non-square grid too
    enc, pred = sample_masks(FUTURE, (4, 6, 10), batch_size=2, rng=np.random.default_rng(0))
    assert enc.shape == pred.shape == (2, 120)


def test_end_anchor_places_every_box_at_the_last_tubelets():
    spec = MaskSpec(num_blocks=2, spatial_scale=0.2, temporal_scale=0.25, temporal_anchor="end")
    rng = np.random.default_rng(1)
    for _ in range(20):
        masked = sample_target_mask(block_size(spec, GRID, rng), 2, GRID, rng, spec.temporal_anchor)
        assert masked[-1].any() and not masked[:-1].any()


def test_block_size_follows_scale_and_aspect():
    rng = np.random.default_rng(0)
    for _ in range(50):
        t, h, w = block_size(SHORT_RANGE, GRID, rng)
        assert t == 4 and 1 <= h <= 8 and 1 <= w <= 8
        assert abs(h * w - int(64 * 0.15)) <= 4
        assert 0.5 <= h / w <= 2.0
    assert block_size(MaskSpec(1, 0.5, temporal_scale=0.5), GRID, rng)[0] == 2


def test_same_seed_and_position_give_identical_masks():
    a = MultiBlockMaskCollator(GRID, seed=7)(_items(32))
    b = MultiBlockMaskCollator(GRID, seed=7)(_items(32))
    for x, y in zip(a["masks_enc"] + a["masks_pred"], b["masks_enc"] + b["masks_pred"]):
        assert torch.equal(x, y)


def test_masks_depend_on_first_position_and_seed_only():
    collate = MultiBlockMaskCollator(GRID, seed=7)
    base = collate(_items(32))
    other_position = collate(_items(38))
    other_seed = MultiBlockMaskCollator(GRID, seed=8)(_items(32))
    assert any(not torch.equal(x, y) for x, y in zip(base["masks_pred"], other_position["masks_pred"]))
    assert any(not torch.equal(x, y) for x, y in zip(base["masks_pred"], other_seed["masks_pred"]))
    # a worker collating the same positions later, or after other batches, gets the same masks
    collate(_items(100))
    again = collate(_items(32))
    assert all(torch.equal(x, y) for x, y in zip(base["masks_pred"], again["masks_pred"]))


def test_a_mask_covering_every_token_is_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="covers every token"):
        sample_masks(MaskSpec(num_blocks=1, spatial_scale=1.0, aspect=(1.0, 1.0)), GRID, 2, np.random.default_rng(0))


def test_large_masks_are_resampled_to_keep_context():
    enc, pred = sample_masks(MaskSpec(num_blocks=4, spatial_scale=0.9), GRID, 16, np.random.default_rng(0))
    assert enc.shape[1] >= 1


@pytest.mark.parametrize("kwargs", [dict(num_blocks=0, spatial_scale=0.1), dict(num_blocks=1, spatial_scale=0.0),
                                    dict(num_blocks=1, spatial_scale=0.1, aspect=(2.0, 1.0)),
                                    dict(num_blocks=1, spatial_scale=0.1, temporal_anchor="start")])
def test_invalid_mask_spec_raises(kwargs):
    with pytest.raises(ValueError):
        MaskSpec(**kwargs)


def test_apply_masks_is_a_per_sample_gather():
    x = torch.randn(3, 10, 5)
    idx = torch.tensor([[0, 9], [4, 4], [7, 1]])
    out = apply_masks(x, idx)
    assert out.shape == (3, 2, 5)
    for b in range(3):
        assert torch.equal(out[b], x[b, idx[b]])


def _mean_sample_fraction(spec, grid, samples=1500, seed=0):
    rng = np.random.default_rng(seed)
    return np.mean([sample_target_mask(block_size(spec, grid, rng), spec.num_blocks, grid, rng).mean()
                    for _ in range(samples)])


def test_per_sample_masked_fraction_matches_vjepa_reference_on_its_grid():
    # V-JEPA's sampler at 16 x 224^2 (8 x 14 x 14 tokens): ~62% (short-range), ~81% (long-range) masked.
    assert 0.59 <= _mean_sample_fraction(SHORT_RANGE, (8, 14, 14)) <= 0.66
    assert 0.78 <= _mean_sample_fraction(LONG_RANGE, (8, 14, 14)) <= 0.85


def test_per_sample_masked_fraction_on_the_tiny_grid():
    # measured: 0.641 (short-range), 0.823 (long-range) on 4 x 8 x 8
    assert 0.60 <= _mean_sample_fraction(SHORT_RANGE, GRID) <= 0.68
    assert 0.79 <= _mean_sample_fraction(LONG_RANGE, GRID) <= 0.86


def test_truncated_batch_fractions_on_the_tiny_grid():
    # after cutting to the batch minimum (batch 16), measured means: 0.50 / 0.70 predicted, p1-p99 given below
    collate = MultiBlockMaskCollator(GRID, seed=0)
    masked, visible = [], []
    for start in range(0, 16 * 60, 16):
        out = collate.masks_for(start, 16)
        masked.append(masked_fractions(out[1], N))
        visible.append(context_fractions(out[0], N))
    masked, visible = np.array(masked), np.array(visible)
    assert 0.45 <= masked[:, 0].mean() <= 0.55 and 0.66 <= masked[:, 1].mean() <= 0.74
    assert masked[:, 0].min() >= 0.30 and masked[:, 0].max() <= 0.70
    assert masked[:, 1].min() >= 0.60 and masked[:, 1].max() <= 0.85
    assert (visible > 0).all() and (masked + visible <= 1).all()


def test_default_mask_types_are_named_in_predictor_token_order():
    from worldmodel.models.masks import DEFAULT_SPECS

    assert [spec.name for spec in DEFAULT_SPECS] == ["short-range", "long-range", "future"]


# ---------------------------------------------------------------- fixed sizes (static shapes for torch.compile)

def test_every_batch_of_a_mask_type_has_the_same_sizes_whatever_the_seed_position_or_batch_size():
    counts = MultiBlockMaskCollator(GRID).counts
    for seed in range(4):
        collate = MultiBlockMaskCollator(GRID, seed=seed)
        assert collate.counts == counts
        for position, batch in [(p, 16) for p in range(0, 16 * 40, 16)] + [(3, 1), (7, 5), (1000, 32)]:
            masks_enc, masks_pred = collate.masks_for(position, batch)
            assert [tuple(m.shape) for m in masks_enc] == [(batch, c.context) for c in counts]
            assert [tuple(m.shape) for m in masks_pred] == [(batch, c.target) for c in counts]
    assert counts[2] == MaskCounts(context=N // 2, target=N // 2)  # FUTURE: the two halves, always


@pytest.mark.parametrize("spec", VJEPA_SPECS)
def test_fixed_sizes_are_the_mean_sizes_of_v_jepas_cut_masks(spec):
    rng = np.random.default_rng(123)  # another stream than mask_counts' own
    sizes = np.array([[m.shape[1] for m in sample_masks(spec, GRID, REFERENCE_BATCH, rng)] for _ in range(200)])
    counts = mask_counts(spec, GRID)
    assert abs(counts.context - sizes[:, 0].mean()) <= 2 and abs(counts.target - sizes[:, 1].mean()) <= 2


@pytest.mark.parametrize("spec", VJEPA_SPECS)
def test_no_context_token_lies_in_a_masked_tube_and_both_spread_over_the_clip(spec):
    counts = mask_counts(spec, GRID)
    rng = np.random.default_rng(0)
    per_time = np.zeros((2, GRID[0]))
    for _ in range(30):
        enc, pred = sample_fixed_masks(spec, GRID, 16, rng, counts)
        for e, p in zip(enc, pred):
            cells_e, cells_p = set((e % 64).tolist()), set((p % 64).tolist())
            assert not cells_e & cells_p, "a context token shares its (h, w) cell with a target: blocks span time"
            per_time[0] += np.bincount(e // 64, minlength=GRID[0])
            per_time[1] += np.bincount(p // 64, minlength=GRID[0])
    shares = per_time / per_time.sum(axis=1, keepdims=True)
    # V-JEPA's cut keeps the first indices: its context gets ~3-6% of its tokens from the last tubelet
    assert np.all(np.abs(shares - 1 / GRID[0]) < 0.02), shares


def test_fit_union_grows_and_shrinks_the_union_at_its_edge_in_whole_tubes():
    rng = np.random.default_rng(0)
    small = np.zeros(GRID, dtype=bool)
    small[:, 2:4, 2:4] = True  # 4 cells = 16 tokens
    grown = fit_union(small, MaskCounts(context=100, target=40), (0, 4), rng)
    assert grown.sum() == 40 and (grown == grown[:1]).all() and grown[small].all()
    big = np.ones(GRID, dtype=bool)
    big[:, 0, 0] = False
    shrunk = fit_union(big, MaskCounts(context=30, target=100), (0, 4), rng)
    assert shrunk.sum() == N - 32 and (shrunk == shrunk[:1]).all() and not shrunk[~big].any()
    # boxes starting at random times: token by token
    tokens = fit_union(small, MaskCounts(context=100, target=21), None, rng)
    assert tokens.sum() == 21 and tokens[small].all()


def test_fixed_masks_of_an_end_anchored_spec_keep_to_its_last_tubelets():
    spec = MaskSpec(num_blocks=2, spatial_scale=0.2, temporal_scale=0.25, temporal_anchor="end")
    counts = mask_counts(spec, GRID)
    enc, pred = sample_fixed_masks(spec, GRID, 8, np.random.default_rng(0), counts)
    assert pred.shape == (8, counts.target) and enc.shape == (8, counts.context)
    assert int(pred.min()) >= 3 * 64  # the boxes cover the last of 4 tubelets only
    assert all(not set(e.tolist()) & set(p.tolist()) for e, p in zip(enc, pred))
