"""Shared training utilities: schedules, checkpoints, TensorBoard logging, DDP helpers, guards, summary."""

from __future__ import annotations

import io
import json
import math
import pickle
import random

import numpy as np
import pytest
import torch

from worldmodel.io import checkpoint as ckpt
from worldmodel.io.checkpoint import (
    CheckpointError,
    export_safetensors,
    latest_checkpoint,
    load_checkpoint,
    load_safetensors,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from worldmodel.io.summary import read_summary, write_summary
from worldmodel.io.tb import (
    CAPTION_HEIGHT,
    TensorBoardLogger,
    caption,
    pca_rgb,
    read_event_images,
    read_event_scalars,
    read_event_tags,
    side_by_side,
    tile,
)
from worldmodel.training.distributed import all_reduce_mean, cleanup, init_distributed
from worldmodel.training.guards import NonFiniteLossError, StepTimer, Throughput, check_finite
from worldmodel.training.schedules import Schedules, cosine, linear, warmup_cosine

# ---------------------------------------------------------------- schedules

def test_schedules_hit_exact_values_at_start_end_of_warmup_and_end():
    assert warmup_cosine(0, 100, 10, 2e-4, 6e-4, 1e-6) == pytest.approx(2e-4)
    assert warmup_cosine(5, 100, 10, 2e-4, 6e-4, 1e-6) == pytest.approx(4e-4)
    assert warmup_cosine(10, 100, 10, 2e-4, 6e-4, 1e-6) == pytest.approx(6e-4)
    assert warmup_cosine(55, 100, 10, 2e-4, 6e-4, 1e-6) == pytest.approx((6e-4 + 1e-6) / 2)
    assert warmup_cosine(100, 100, 10, 2e-4, 6e-4, 1e-6) == pytest.approx(1e-6)
    assert warmup_cosine(150, 100, 10, 2e-4, 6e-4, 1e-6) == pytest.approx(1e-6)
    assert warmup_cosine(0, 100, 0, 2e-4, 6e-4, 1e-6) == pytest.approx(6e-4)
    assert cosine(0, 100, 0.04, 0.4) == pytest.approx(0.04)
    assert cosine(50, 100, 0.04, 0.4) == pytest.approx(0.22)
    assert cosine(100, 100, 0.04, 0.4) == pytest.approx(0.4)
    assert linear(0, 100, 0.998, 1.0) == pytest.approx(0.998)
    assert linear(50, 100, 0.998, 1.0) == pytest.approx(0.999)
    assert linear(100, 100, 0.998, 1.0) == pytest.approx(1.0)


def test_schedules_apply_keeps_no_decay_groups_at_zero():
    decay, bias = torch.nn.Parameter(torch.ones(2, 2)), torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.AdamW([{"params": [decay], "weight_decay": 0.04},
                             {"params": [bias], "weight_decay": 0.0}], lr=1.0)
    s = Schedules(total=100, warmup=10, start_lr=2e-4, lr=6e-4, final_lr=1e-6, weight_decay=0.04,
                  final_weight_decay=0.4, ema_start=0.998, ema_end=1.0)
    assert s.apply(opt, 10) == pytest.approx((6e-4, s.weight_decay_at(10), s.momentum_at(10)))
    lr, wd, momentum = s.apply(opt, 100)
    assert (lr, wd, momentum) == pytest.approx((1e-6, 0.4, 1.0))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-6, 1e-6])
    assert [g["weight_decay"] for g in opt.param_groups] == pytest.approx([0.4, 0.0])
    assert [g["no_decay"] for g in opt.param_groups] == [False, True]
    with pytest.raises(ValueError, match="warmup"):
        Schedules(10, 20, 0, 1, 0, 0, 0, 0, 1)


# ---------------------------------------------------------------- checkpoints

def _trained_adamw():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(5, 4)).square().mean().backward()
    opt.step()
    return model, opt


def test_checkpoint_round_trip_with_optimizer_and_rng_restores_the_next_random_numbers(tmp_path):
    model, opt = _trained_adamw()
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    state = {"step": 7, "model": model.state_dict(), "optimizer": opt.state_dict(), "rng": rng_state(),
             "config": {"lr": 1e-3, "sizes": [1, 2], "name": "x", "none": None}}
    expected = (random.random(), np.random.rand(3).tolist(), np.random.normal(), torch.rand(3))
    path = save_checkpoint(tmp_path / "step_0000007.pt", state)

    torch.load(path, weights_only=True)  # plain data only
    loaded = load_checkpoint(path)
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    set_rng_state(loaded["rng"])
    assert (random.random(), np.random.rand(3).tolist(), np.random.normal()) == expected[:3]
    assert torch.equal(torch.rand(3), expected[3])
    assert loaded["step"] == 7 and loaded["config"] == state["config"]
    model2, opt2 = torch.nn.Linear(4, 3), torch.optim.AdamW(torch.nn.Linear(4, 3).parameters())
    model2.load_state_dict(loaded["model"])
    opt2.load_state_dict(loaded["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert (tmp_path / "last.pt").is_file()


def test_save_refuses_state_that_weights_only_load_cannot_rebuild(tmp_path):
    with pytest.raises(CheckpointError, match=r"state\['cfg'\]\['mean'\] is a numpy.ndarray"):
        save_checkpoint(tmp_path / "a.pt", {"cfg": {"mean": np.zeros(3)}})
    with pytest.raises(CheckpointError, match="float64"):
        save_checkpoint(tmp_path / "a.pt", {"loss": np.float64(1.0)})
    from omegaconf import OmegaConf
    with pytest.raises(CheckpointError, match="OmegaConf.to_container"):
        save_checkpoint(tmp_path / "a.pt", {"cfg": OmegaConf.create({"a": 1})})
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_old_file_and_leaves_no_temp_files(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "step_0000001.pt", {"step": 1})

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "step_0000001.pt"]


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_loading_a_pickle_with_code_fails_with_a_clear_error(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"x": Payload()}, evil)
    with pytest.raises(CheckpointError, match=r"not plain data \(it references print\)") as info:
        load_checkpoint(evil)
    assert "\n" not in str(info.value) and "this must never run" not in capsys.readouterr().out
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}, protocol=2) + b"junk")  # not a torch zip file
    with pytest.raises(CheckpointError, match="corrupt, truncated or not a torch checkpoint"):
        load_checkpoint(plain)


def test_missing_truncated_and_empty_checkpoints_give_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found: .*nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    good = save_checkpoint(tmp_path / "good.pt", {"w": torch.ones(1000)})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:2000])
    (tmp_path / "empty.pt").write_bytes(b"")
    for bad in (truncated, tmp_path / "empty.pt"):
        with pytest.raises(CheckpointError, match="corrupt") as info:
            load_checkpoint(bad)
        assert "\n" not in str(info.value) and str(bad) in str(info.value)


def test_keep_prunes_old_step_files_and_latest_checkpoint_finds_the_newest(tmp_path):
    assert latest_checkpoint(tmp_path / "absent") is None and latest_checkpoint(tmp_path) is None
    (tmp_path / ".step_0000001.pt.x1y2.tmp").write_bytes(b"left by kill -9")
    for step in (2, 4, 6, 8):
        save_checkpoint(tmp_path / f"step_{step:07d}.pt", {"step": step}, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "step_0000006.pt", "step_0000008.pt"]
    assert latest_checkpoint(tmp_path).name == "step_0000008.pt"
    assert load_checkpoint(tmp_path / "last.pt") == {"step": 8}


def test_safetensors_export_round_trip_keeps_weights_and_metadata(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 4))
    model.register_buffer("tied", model[2].weight.data)  # shares memory: safetensors needs a copy
    config = {"width": 4, "depth": 1, "name": "tiny"}
    path = export_safetensors(model, tmp_path / "enc.safetensors", {"config": config, "note": "hello"})
    weights, meta = load_safetensors(path)
    assert meta == {"config": config, "note": "hello"}
    assert weights.keys() == model.state_dict().keys()
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        assert json.loads(f.metadata()["config"]) == config  # readable without our loader
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_safetensors(tmp_path / "missing.safetensors")


# ---------------------------------------------------------------- TensorBoard

def test_tensorboard_logger_writes_scalars_images_figure_and_gif_video(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    frames = np.zeros((5, 8, 8, 3), np.uint8)
    for t in range(5):
        frames[t, :, t] = 255  # a moving bar: every frame differs
    with TensorBoardLogger(tmp_path / "tb") as tb:
        tb.scalars({"loss": 1.5, "lr": torch.tensor(0.1), "skip": None}, 3, prefix="video/")
        tb.scalar("other", 2.0, 4)
        tb.image("img_hwc", np.full((6, 7, 3), 200, np.uint8), 0)
        tb.image("img_chw", torch.rand(3, 6, 7), 0)
        tb.images("batch", np.zeros((2, 6, 7, 3), np.uint8), 0)
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        tb.figure("fig", fig, 0)
        tb.video("rollout", frames, 1, fps=4)
        tb.video("rollouts", np.stack([frames, frames]), 1)
        tb.text("notes", "hello", 0)
        tb.hparams({"lr": 0.1, "tags": [1, 2], "name": "x"}, {"final/loss": 0.5})
    tags = read_event_tags(tmp_path / "tb")
    assert {"video/loss", "video/lr", "other", "final/loss"} <= set(tags["scalars"])
    assert "video/skip" not in tags["scalars"]
    assert {"img_hwc", "img_chw", "batch", "fig", "rollout", "rollouts"} <= set(tags["images"])
    assert read_event_scalars(tmp_path / "tb", "video/loss") == [(3, 1.5)]
    [(step, gif)] = read_event_images(tmp_path / "tb", "rollout")
    video = Image.open(io.BytesIO(gif))
    assert step == 1 and video.format == "GIF" and video.n_frames == 5 and video.size == (8, 8)
    tiled = Image.open(io.BytesIO(read_event_images(tmp_path / "tb", "rollouts")[0][1]))
    assert tiled.size == (16, 8) and tiled.n_frames == 5


def test_pca_rgb_colours_features_by_principal_components():
    torch.manual_seed(0)
    image = pca_rgb(torch.randn(2, 4, 5, 16))
    assert image.shape == (2, 4, 5, 3) and image.dtype == np.uint8
    assert image.reshape(-1, 3).min(0).tolist() == [0, 0, 0]
    assert image.reshape(-1, 3).max(0).tolist() == [255, 255, 255]
    assert pca_rgb(np.random.rand(7, 2)).shape == (7, 3)  # fewer than 3 dims: the rest stays 0
    a, b = np.zeros((4, 3, 3), np.uint8), np.zeros((2, 5), np.uint8)
    assert side_by_side(a, b, gap=1).shape == (4, 9, 3)
    assert tile([a, a, a], columns=2, gap=0).shape == (8, 6, 3)


def test_captions_are_dark_text_on_a_light_strip_and_label_each_row_of_the_mask_view():
    from worldmodel.models.masks import DEFAULT_SPECS, MultiBlockMaskCollator
    from worldmodel.training.video_visuals import LABEL_WIDTH, masked_clip_image

    strip = caption("goal", 40)
    assert strip.shape == (CAPTION_HEIGHT, 40, 3) and strip.dtype == np.uint8
    assert strip.max() == 255 and strip.min() < 100  # the text is drawn
    assert caption("a very long caption cut at the edge", 10).shape == (CAPTION_HEIGHT, 10, 3)
    grid = (2, 4, 4)
    collate = MultiBlockMaskCollator(grid, seed=0)
    batch = collate([{"clip": torch.zeros(3, 4, 32, 32), "position": 0, "load_failures": 0}])
    names = [spec.name for spec in DEFAULT_SPECS]
    image = masked_clip_image(batch["clips"][0], [m[0] for m in batch["masks_pred"]], grid, names)
    assert image.shape == ((1 + len(names)) * 32, LABEL_WIDTH + 4 * 32, 3)
    labels = image[:, :LABEL_WIDTH]
    assert all(labels[r * 32: (r + 1) * 32].min() < 100 for r in range(1 + len(names)))  # every row labelled


# ---------------------------------------------------------------- distributed

def test_init_distributed_without_torchrun_env_is_a_single_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = init_distributed("cpu")
    assert (info.rank, info.local_rank, info.world_size, info.is_main) == (0, 0, 1, True)
    assert info.device == torch.device("cpu")
    x = torch.tensor([1.0, 2.0])
    assert all_reduce_mean(x) is x


def _all_reduce_worker(rank: int, store: str, results: str) -> None:
    info = init_distributed("cpu", rank=rank, world_size=2, init_method=f"file://{store}")
    mean = all_reduce_mean(torch.tensor([float(rank), 10.0 * rank]))
    with open(f"{results}.{rank}", "w") as f:
        json.dump({"world_size": info.world_size, "is_main": info.is_main, "mean": mean.tolist()}, f)
    cleanup()


def test_two_process_gloo_all_reduce_mean(tmp_path):
    torch.multiprocessing.spawn(_all_reduce_worker, args=(str(tmp_path / "store"), str(tmp_path / "out")),
                                nprocs=2, join=True)
    results = [json.loads((tmp_path / f"out.{r}").read_text()) for r in range(2)]
    assert [r["mean"] for r in results] == [[0.5, 5.0], [0.5, 5.0]]
    assert [r["is_main"] for r in results] == [True, False] and results[0]["world_size"] == 2


# ---------------------------------------------------------------- guards and summary

def test_check_finite_names_the_step_and_last_good_checkpoint(tmp_path):
    check_finite(torch.tensor(1.0), 5)
    with pytest.raises(NonFiniteLossError) as info:
        check_finite(torch.tensor(float("nan")), 123, tmp_path / "step_0000100.pt")
    message = str(info.value)
    assert message.startswith(f"loss became nan at step 123; the last good checkpoint is {tmp_path}")
    assert "lower the learning rate" in message and "\n" not in message
    with pytest.raises(NonFiniteLossError, match="loss became inf at step 0; no checkpoint"):
        check_finite(math.inf, 0)


def test_throughput_and_step_timer_report_medians():
    meter, timer = Throughput(window=3), StepTimer()
    assert math.isnan(meter.rate)
    for _ in range(4):
        with timer("step"):
            meter.update(10)
    assert meter.rate > 0 and timer.median("step") >= 0 and set(timer.summary()) == {"step"}
    assert math.isnan(timer.median("absent"))


def test_write_summary_merges_sections_atomically(tmp_path):
    write_summary(tmp_path, {"command": "pretrain", "video": {"final_loss": 0.5, "bad": float("nan")}})
    write_summary(tmp_path, {"dynamics": {"steps": np.int64(3), "loss": torch.tensor(0.25)}})
    write_summary(tmp_path, {"video": {"final_loss": 0.4}})
    assert read_summary(tmp_path) == {"command": "pretrain", "video": {"final_loss": 0.4},
                                      "dynamics": {"steps": 3, "loss": 0.25}}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    with pytest.raises(FileNotFoundError, match="summary.json"):
        read_summary(tmp_path / "nowhere")


def test_the_targets_spread_is_averaged_at_both_ends_and_a_narrowing_to_under_half_warns():
    from worldmodel.training.video_stage import narrowing_warning, spread_ends

    assert spread_ends([]) == (None, None) and narrowing_warning(None, None) is None
    assert spread_ends([0.3]) == (0.3, 0.3)
    initial, final = spread_ends([0.012, 0.010, 0.011, 0.008, 0.006, 0.004, 0.004, 0.004])
    assert initial == pytest.approx(0.011) and final == pytest.approx(0.004)
    warning = narrowing_warning(initial, final)  # Push-T's course: a third of where it started
    assert "fell from 0.011 to 0.004" in warning and "\n" not in warning and "experiments.probe" in warning
    assert narrowing_warning(0.137, 0.215) is None  # tworooms': it grew
    assert narrowing_warning(0.095, 0.074) is None  # pusher's seed 3: a dip, not a collapse
    assert narrowing_warning(0.1, 0.05) is None and narrowing_warning(0.1, 0.049) is not None
