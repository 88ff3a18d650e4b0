"""What one V-JEPA training step costs on this machine: the loader's clips/s against the clips/s one step (forward,
backward, AdamW, EMA) consumes, and the step's model FLOP/s as a fraction of the matmul peak measured in the same run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch.utils.data import Dataset

from worldmodel.data.sampling import make_loader
from worldmodel.models.encoder import VideoViTConfig
from worldmodel.models.jepa import VJEPA
from worldmodel.models.masks import MultiBlockMaskCollator
from worldmodel.training.flops import mask_sizes, training_matmul_peak, vjepa_train_flops_per_clip
from worldmodel.training.video_stage import autocast_for, compiled, compiles, to_device, uses_bf16


def _median_rate(work: float, seconds: list[float]) -> float:
    return work / statistics.median(seconds)


def measure_training_step(model_name: str, model_cfg: VideoViTConfig, clips: Dataset, *, batch_size: int,
                          loader_workers: int, loader_batches: int, warmup: int, steps: int, compile: bool | None,
                          precision: str, device: torch.device) -> dict[str, Any]:
    """Time ``loader_batches`` batches of ``clips`` through the training loader, then ``warmup`` + ``steps``
    training steps on one of them (``compile``: as ``video.compile``; ``precision``: as ``video.precision``)."""
    bf16 = uses_bf16(precision, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    collate = MultiBlockMaskCollator(model_cfg.grid, seed=0)
    loader = make_loader(clips, batch_size=batch_size, seed=0, start_position=0, collate_fn=collate,
                         num_workers=loader_workers)
    batches = iter(loader)
    next(batches)  # worker start-up
    load_times = []
    for _ in range(loader_batches):
        start = time.perf_counter()
        batch = next(batches)
        load_times.append(time.perf_counter() - start)
    del batches, loader

    peak_before = training_matmul_peak(device, bf16)
    torch.manual_seed(0)
    model = VJEPA(model_cfg).to(device)
    compile_model = compiles(compile, device)
    trainable = compiled(model) if compile_model else model  # compiles in the first warm-up step
    batch = to_device(batch, device)
    optimizer = torch.optim.AdamW(model.param_groups(0.04), lr=1e-4)
    step_times, warmup_times = [], []
    for i in range(warmup + steps):
        start = time.perf_counter()
        with autocast_for(precision, device):
            loss, _ = trainable(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.ema_update(0.996)
        sync()
        (step_times if i >= warmup else warmup_times).append(time.perf_counter() - start)

    peak = max(peak_before, training_matmul_peak(device, bf16))  # a busy machine can only lower a reading
    context, target = mask_sizes(collate.counts)
    flops_per_clip = vjepa_train_flops_per_clip(model_cfg, context, target)
    clips_per_s = _median_rate(batch_size, step_times)
    loader_clips_per_s = _median_rate(batch_size, load_times)
    return {
        "model": model_name, "batch_size": batch_size, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": "bf16" if bf16 else "fp32", "threads": torch.get_num_threads(), "compiled": compile_model,
        "first_step_s": warmup_times[0] if warmup_times else None,
        "loader_workers": loader_workers, "loader_clips_per_s": loader_clips_per_s,
        "step_time_s": statistics.median(step_times), "train_clips_per_s": clips_per_s,
        "loader_to_step_ratio": loader_clips_per_s / clips_per_s,
        "flops_per_clip": flops_per_clip, "achieved_flops_per_s": flops_per_clip * clips_per_s,
        "matmul_peak_flops_per_s": peak, "mfu": flops_per_clip * clips_per_s / peak,
    }


def format_step(p: dict[str, Any]) -> str:
    """``measure_training_step``'s result in three lines."""
    compiled = f", compiled (first step {p['first_step_s']:.1f} s)" if p["compiled"] else ""
    return "\n".join([
        f"pretrain step (model={p['model']}, batch {p['batch_size']}, {p['device_name']}, {p['precision']}, "
        f"{p['threads']} threads{compiled})",
        f"  step time {p['step_time_s'] * 1e3:.1f} ms, {p['train_clips_per_s']:.1f} clips/s, "
        f"{p['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s = {p['mfu']:.1%} of the measured matmul peak "
        f"({p['matmul_peak_flops_per_s'] / 1e9:.1f} GFLOP/s)",
        f"  loader ({p['loader_workers']} workers) {p['loader_clips_per_s']:.0f} clips/s = "
        f"{p['loader_to_step_ratio']:.1f}x what the step consumes"])
