"""Frozen evaluation: probe scenes, the attentive probe, surprise, and the ``experiments.probe`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch

from envs.probe_scenes import (
    SPEED,
    VIOLATIONS,
    glide,
    in_free_space,
    make_physics_pairs,
    make_probe_clips,
    physics_pair,
    probe_trajectory,
)
from worldmodel.evaluation.probe import AttentiveProbe, ProbeSweepConfig, train_probes, tubelet_pixels
from worldmodel.evaluation.surprise import future_split, pairwise_accuracy, pairwise_outcomes, surprise
from worldmodel.models import get_preset
from worldmodel.models.jepa import VJEPA

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids oversubscribing a shared CPU (10x slower otherwise)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_probe_clips_are_deterministic_balanced_and_differ_between_splits():
    frames, labels = make_probe_clips("direction", 8, seed=3)
    again, labels_again = make_probe_clips("direction", 8, seed=3)
    other, _ = make_probe_clips("direction", 8, seed=4)
    assert frames.shape == (8, 8, 64, 64, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames, again)
    np.testing.assert_array_equal(labels, labels_again)
    assert not np.array_equal(frames, other)
    assert np.bincount(labels, minlength=4).tolist() == [2, 2, 2, 2]
    _, contact = make_probe_clips("contact", 6, seed=3)
    assert np.bincount(contact, minlength=2).tolist() == [3, 3]


def test_probe_labels_match_the_motion():
    for index in range(40):
        positions, label = probe_trajectory("direction", 0, index)
        step = positions[-1] - positions[0]
        heading = int(np.round(np.arctan2(step[1], step[0]) / (np.pi / 2))) % 4
        assert heading == label
        assert all(in_free_space(p) for p in positions)
        positions, label = probe_trajectory("contact", 0, index)
        _, hits = glide(positions[0], positions[1] - positions[0])
        assert bool(hits) == bool(label)
        assert all(in_free_space(p) for p in positions)


def test_walls_stop_the_normal_motion_and_keep_the_tangential_one():
    positions, hits = glide(np.array([0.8, 0.0]), np.array([0.1, 0.05]), frames=6)
    assert hits == [2]
    np.testing.assert_allclose(positions[2:, 0], 1.0 - 0.08)  # pressed against the east wall
    np.testing.assert_allclose(np.diff(positions[2:, 1]), 0.05)  # still sliding north


def test_violation_pairs_share_the_first_frames_and_differ_from_the_violation_on():
    for kind in VIOLATIONS:
        for index in range(5):
            pairs, k = physics_pair(kind, 0, index)
            assert 4 <= k <= 6 and len(pairs) == (2 if kind == "permanence" else 1)
            for plausible, implausible in pairs:
                np.testing.assert_array_equal(plausible[:k], implausible[:k])
                assert not np.allclose(plausible[k], implausible[k], equal_nan=True)
    pairs = make_physics_pairs(2, seed=0)
    assert pairs["plausible"].shape == pairs["implausible"].shape == (8, 8, 64, 64, 3)
    assert pairs["group"].tolist() == [0, 0, 1, 1, 2, 3, 4, 5]
    for p, q, k in zip(pairs["plausible"], pairs["implausible"], pairs["violation_frame"]):
        np.testing.assert_array_equal(p[:k], q[:k])
        assert (p[k:] != q[k:]).any()
    # permanence is content-matched: the implausible futures are the plausible ones, swapped
    np.testing.assert_array_equal(pairs["implausible"][0, 6:], pairs["plausible"][1, 6:])
    np.testing.assert_array_equal(pairs["implausible"][1, 6:], pairs["plausible"][0, 6:])


def test_probe_speeds_match_what_the_video_stage_sees(tmp_path):
    """The video stage reads consecutive env frames (configs/data/sim.yaml frame_step: 1), so the probe's
    ball must move per frame as the exploration data moves per env step, not 2-4x faster."""
    from envs.exploration import collect_trajectories

    data = collect_trajectories("pointmass_tworooms", episodes=8, steps=64, seed=0, image_size=16,
                                cache_dir=tmp_path)
    starts, xy = np.asarray(data.episode_starts), np.asarray(data.states)[:, :2]
    steps = np.concatenate([np.linalg.norm(np.diff(xy[a:b], axis=0), axis=1) for a, b in zip(starts, starts[1:])])
    median, p90 = np.percentile(steps, [50, 90])
    assert 0.5 * median <= SPEED[0] <= 1.5 * median
    assert p90 <= SPEED[1] <= 2 * p90


def test_factored_attentive_probe_equals_the_direct_cross_attention():
    torch.manual_seed(0)
    probe = AttentiveProbe(48, 3, queries=2, heads=4)
    for param in probe.parameters():
        torch.nn.init.normal_(param, std=0.3)
    tokens = torch.randn(5, 20, 48) * 2 + 1
    assert probe(tokens).shape == (5, 3)
    assert probe.pool(tokens).shape == (5, 2, 48)
    torch.testing.assert_close(probe.pool(tokens), probe.reference_pool(tokens), atol=1e-4, rtol=1e-4)


def test_tubelet_pixels_shape_and_order():
    clips = torch.arange(2 * 3 * 4 * 8 * 8, dtype=torch.float32).reshape(2, 3, 4, 8, 8)
    tokens = tubelet_pixels(clips, tubelet=2, patch=4)
    assert tokens.shape == (2, 2 * 2 * 2, 3 * 2 * 4 * 4)
    assert tokens[0, 1, 0] == clips[0, 0, 0, 0, 4]  # token 1 = (t 0, h 0, w 1)


def _needle_task(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One token of 32 carries the class (one-hot) and a marker; the rest is noise."""
    x = torch.randn(n, 32, 16, generator=generator)
    y = torch.randint(0, 4, (n,), generator=generator)
    where = torch.randint(0, 32, (n,), generator=generator)
    x[torch.arange(n), where, :4] += 4 * torch.nn.functional.one_hot(y, 4).float()
    x[torch.arange(n), where, 4] += 6
    return x, y


def test_probe_sweep_learns_a_separable_token_task():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    train, val, test = _needle_task(384, g), _needle_task(128, g), _needle_task(256, g)
    result = train_probes(lambda: AttentiveProbe(16, 4, heads=4), train, val, test,
                          ProbeSweepConfig(lrs=[1e-3, 1e-2], epochs=12, batch_size=32))
    assert result.test_accuracy > 0.9
    assert len(result.sweep) == 2 and result.lr in (1e-3, 1e-2)
    assert result.val_accuracy == max(r["val_accuracy"] for r in result.sweep)


def test_future_split_and_pairwise_accuracy():
    context, future = future_split((4, 2, 2), 2)
    assert context.tolist() == list(range(8)) and future.tolist() == list(range(8, 16))
    with pytest.raises(ValueError):
        future_split((4, 2, 2), 4)
    assert pairwise_accuracy(torch.tensor([1.0, 2.0, 3.0, 1.0]), torch.tensor([2.0, 1.0, 4.0, 1.0])) == 0.625
    # grouped: (1 + 2 < 2 + 1.5) wins, (3 + 1 = 4 + 0) ties
    groups = torch.tensor([0, 0, 1, 1])
    assert pairwise_accuracy(torch.tensor([1.0, 2.0, 3.0, 1.0]), torch.tensor([2.0, 1.5, 4.0, 0.0]), groups) == 0.75
    plausible = torch.tensor([1.0, 2.0, 3.0, 1.0])
    assert pairwise_outcomes(plausible, torch.tensor([2.0, 1.0, 4.0, 1.0])) == (2, 1, 1)  # (wins, losses, ties)
    assert pairwise_outcomes(plausible, torch.tensor([2.0, 1.5, 4.0, 0.0]), groups) == (1, 0, 1)


def test_surprise_ranks_a_clip_that_breaks_from_its_past_higher():
    """A model whose predictor always says "the future looks like the past" (here: a copy of the target
    features of the context, built by hand) finds a clip whose future changes more surprising."""
    cfg = get_preset("tiny", image_size=16, frames=4, width=24, depth=1, heads=2, pred_width=12, pred_depth=1,
                     pred_heads=2, patch=8)
    torch.manual_seed(0)
    model = VJEPA(cfg)

    class CopyPast(torch.nn.Module):
        def forward(self, context, context_idx, target_idx, mask_type=0):
            normed = torch.nn.functional.layer_norm(context, context.shape[-1:])
            return normed[:, : target_idx.shape[1]]  # tubelet 0 predicts tubelet 1 token by token

    model.predictor = CopyPast()
    model.encoder = model.target_encoder
    still = torch.randn(1, 3, 1, 16, 16).expand(2, 3, 4, 16, 16).clone()
    broken = still.clone()
    broken[1, :, 2:] = torch.randn(3, 2, 16, 16) * 3  # the second clip's future is unrelated to its past
    scores = surprise(model, broken, context_tubelets=1)
    assert scores.shape == (2,)
    assert scores[1] > scores[0] + 0.1


def test_probe_command_without_a_pretrain_run_says_what_to_run(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.probe", f"runs_root={tmp_path / 'none'}",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: no pretrain run") and "python -m experiments.pretrain" in lines[-1]
    assert "Traceback" not in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "experiments.probe", f"checkpoint={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and "python -m experiments.probe checkpoint=" in result.stderr


@pytest.mark.parametrize("mask_types", [2, 3])
def test_load_pretrained_reads_runs_with_two_or_three_mask_tokens(tmp_path, mask_types):
    # runs from before the FUTURE mask type have a 2-token predictor; both must load for the surprise test
    from dataclasses import asdict

    from worldmodel.evaluation.probe_tasks import load_pretrained
    from worldmodel.io.checkpoint import export_safetensors, save_checkpoint

    cfg = get_preset("tiny", width=32, depth=1, heads=2, pred_width=16, pred_depth=1, pred_heads=2)
    model = VJEPA(cfg, num_mask_types=mask_types)
    export_safetensors(model.target_encoder.state_dict(), tmp_path / "encoder.safetensors",
                       metadata={"record": {"model": asdict(cfg)}})
    save_checkpoint(tmp_path / "checkpoints" / "video" / "step_1.pt", {"model": model.state_dict()})
    loaded_cfg, encoder, full = load_pretrained(tmp_path)
    assert loaded_cfg == cfg and len(full.predictor.mask_tokens) == mask_types
    assert torch.equal(full.predictor.mask_tokens, model.predictor.mask_tokens)


def test_probe_command_end_to_end_on_a_tiny_run(tmp_path):
    """Every task and baseline on a (random-weight) run directory: summary.json holds each figure the README
    quotes, the surprise pairs scored with their sign test (Push-T's t_angle too where gym-pusht imports)."""
    import json
    from dataclasses import asdict

    from envs.pusht_dependency import PushTUnavailableError, load_pusht
    from worldmodel.io.checkpoint import export_safetensors, save_checkpoint

    try:
        load_pusht()
        clip_tasks = ["direction", "contact", "t_angle"]
    except PushTUnavailableError:
        clip_tasks = ["direction", "contact"]

    cfg = get_preset("tiny", image_size=32, width=32, depth=1, heads=2, pred_width=16, pred_depth=1, pred_heads=2)
    model = VJEPA(cfg, num_mask_types=3)
    run = tmp_path / "pretrain"
    export_safetensors(model.target_encoder.state_dict(), run / "encoder.safetensors",
                       metadata={"record": {"model": asdict(cfg)}})
    save_checkpoint(run / "checkpoints" / "video" / "step_1.pt", {"model": model.state_dict()})
    out = tmp_path / "probe"
    result = subprocess.run(
        [sys.executable, "-m", "experiments.probe", f"checkpoint={run}", f"hydra.run.dir={out}",
         f"tasks=[{','.join(clip_tasks)},physics]", "train_clips=10", "test_clips=8", "physics_pairs=2",
         "probe.epochs=1", "probe.lrs=[0.001]"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for task, classes in zip(clip_tasks, (4, 2, 8)):
        assert {"pretrained", "random", "pixels"} <= summary[task].keys()
        assert summary[task]["classes"] == classes
        assert 0.0 <= summary[task]["pretrained"]["test_accuracy"] <= 1.0
    physics = summary["physics"]
    assert physics["pairs"] == 2 * 4  # permanence gives two pairs per group, the other kinds one
    for name in ("pretrained", "random"):
        record = physics[name]
        groups = record["groups_won"] + record["groups_lost"] + record["groups_tied"]
        assert groups == 2 * len(VIOLATIONS)
        assert record["pairwise_accuracy"] == (record["groups_won"] + 0.5 * record["groups_tied"]) / groups
        assert 0.0 < record["sign_test_p"] <= 1.0 and "sign_test_p_teleport" in record
    assert "physics pairwise surprise accuracy: pretrained" in result.stdout
