"""Level 0: the V-JEPA video pretraining loop (one process, or DDP under torchrun).

Reads top to bottom: build optimiser and loader, maybe resume, then for each step
fetch a batch, compute the JEPA loss, step AdamW, update the EMA target, log, checkpoint.
Every source of randomness is a function of (seed, step or sample position), so a resumed
run reproduces an uninterrupted one exactly.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median
from typing import Any

import einops
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from worldmodel.data.sampling import make_loader
from worldmodel.io.checkpoint import (
    export_safetensors,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from worldmodel.io.tb import TensorBoardLogger, stage_log_dir
from worldmodel.models.jepa import stats_to_floats
from worldmodel.models.masks import MultiBlockMaskCollator
from worldmodel.settings import setting
from worldmodel.training.distributed import DistInfo, all_reduce_mean
from worldmodel.training.guards import check_finite
from worldmodel.training.schedules import Schedules
from worldmodel.training.video_visuals import log_feature_pca, log_masked_clip

log = logging.getLogger(__name__)
PRECISIONS = ("auto", "fp32", "bf16")
# On one H200 (docs/results.md) the default run's video stage took 117 s compiled, of which its 600 steps took 28 s
# (46.7 ms each) and compiling most of the rest; the eager tiny step is launch-bound too (61 ms at batch 64 on an
# H100), so 600 steps cannot win that back. For model=base compiling took 163 s and saved 135 ms a step (580 ->
# 445 ms at batch 64): it pays after about 1,200 steps.
COMPILE_MIN_STEPS = 2000
SPREAD_WINDOW = 3  # logged steps averaged at each end of the run for the targets' spread across clips
# Warn when that spread ends below this fraction of where it started: on Push-T's white table it falls to a third
# and the encoder loses the T's angle, while pusher's and tworooms' stay or grow (docs/pusht.md)
NARROWING = 0.5


@dataclass
class VideoStageConfig:
    steps: int = 600
    batch_size: int = 16
    start_lr: float = 1e-4
    lr: float = 5e-4
    final_lr: float = 1e-6
    warmup_fraction: float = 0.1
    weight_decay: float = 0.04
    final_weight_decay: float = 0.4
    ema_start: float = 0.996
    ema_end: float = 1.0
    grad_clip: float = 10.0
    precision: str = setting("auto", choices=PRECISIONS)  # auto: bf16 on CUDA devices that support it
    # torch.compile the model; null (auto): on CUDA for runs of COMPILE_MIN_STEPS steps or more, never on the CPU
    # (compiling the tiny model there takes over a minute). Each mask type keeps a fixed token count
    # (worldmodel.models.masks), so every step has the same shapes and it compiles once, with dynamic=False.
    compile: bool | None = None
    log_every: int = 10
    image_every: int = 200
    checkpoint_every: int = 100
    keep_checkpoints: int = 2


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether ``precision`` (auto | fp32 | bf16) means bf16 autocast on ``device``."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"video.precision must be auto, fp32 or bf16, got {precision!r}")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())


def autocast_for(precision: str, device: torch.device):
    """The autocast context of a training step in ``precision`` (a no-op for fp32)."""
    if not uses_bf16(precision, device):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def compiles(setting: bool | None, device: torch.device, steps: int | None = None) -> bool:
    """Whether ``video.compile`` (None: auto) compiles the training model on ``device`` for a run of ``steps``
    steps (None: a long run): auto means on CUDA, for at least ``COMPILE_MIN_STEPS`` steps."""
    if setting is not None:
        return bool(setting)
    return device.type == "cuda" and (steps is None or steps >= COMPILE_MIN_STEPS)


def compiled(model: torch.nn.Module, backend: str | Callable = "inductor") -> torch.nn.Module:
    """``model`` compiled for static shapes: one compilation for a run whose batches all have the same shapes.

    einops' functions enter the graph as calls, not traced: traced, they leave a guard on einops' cache of array
    backends, which the loop's first numpy ``rearrange`` (its TensorBoard images) grows, recompiling the step.
    """
    for function in (einops.rearrange, einops.repeat, einops.reduce, einops.einsum):
        torch.compiler.allow_in_graph(function)
    return torch.compile(model, dynamic=False, backend=backend)


def to_device(batch: dict, device: torch.device) -> dict:
    """A collated batch with every tensor (also inside lists of masks) moved to ``device``."""
    move = lambda x: x.to(device, non_blocking=True) if torch.is_tensor(x) else x  # noqa: E731
    return {k: [move(m) for m in v] if isinstance(v, list) else move(v) for k, v in batch.items()}


def train_video_stage(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    collate: MultiBlockMaskCollator,
    cfg: VideoStageConfig,
    *,
    run_dir: Path,
    dist: DistInfo,
    seed: int,
    resume: bool,
    num_workers: int,
    flops_per_clip: float,
    matmul_peak: Callable[[], float],
    record: dict[str, Any],
) -> dict[str, Any]:
    """Pretrain ``model`` (a ``worldmodel.models.jepa.VJEPA``) and return this stage's summary.

    ``record`` (plain data: config, env, data fingerprint) is stored in every checkpoint and
    in the exported encoder's metadata, so later stages can check they match.
    """
    device = dist.device
    peak_before = matmul_peak()
    ckpt_dir = run_dir / "checkpoints" / "video"
    model.to(device)
    optimizer = torch.optim.AdamW(model.param_groups(cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999))
    schedules = Schedules(
        total=cfg.steps, warmup=int(cfg.warmup_fraction * cfg.steps), start_lr=cfg.start_lr, lr=cfg.lr,
        final_lr=cfg.final_lr, weight_decay=cfg.weight_decay, final_weight_decay=cfg.final_weight_decay,
        ema_start=cfg.ema_start, ema_end=cfg.ema_end)

    start_step, losses, spreads = 0, [], []
    if resume and (last := latest_checkpoint(ckpt_dir)) is not None:
        state = load_checkpoint(last, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        start_step, losses = state["step"], list(state["losses"])
        spreads = list(state.get("target_spreads", []))  # absent in checkpoints written before it was kept
        log.info("resumed the video stage from %s at step %d", last, start_step)
    elif resume:
        log.info("resume=true but no video checkpoint in %s: starting from step 0", ckpt_dir)

    trainable = DistributedDataParallel(model) if dist.world_size > 1 else model
    if compiles(cfg.compile, device, cfg.steps):
        trainable = compiled(trainable)
    # The global sample position is the data cursor; each rank reads every world_size-th position.
    loader = make_loader(dataset, batch_size=cfg.batch_size, seed=seed,
                         start_position=start_step * cfg.batch_size * dist.world_size, collate_fn=collate,
                         num_workers=num_workers, rank=dist.rank, world_size=dist.world_size,
                         pin_memory=device.type == "cuda")
    logger = TensorBoardLogger(stage_log_dir(run_dir, "video")) if dist.is_main else None
    batches = iter(loader)
    step_times, data_times, stats, load_failures = [], [], {}, 0
    last_good = latest_checkpoint(ckpt_dir)

    def save(step: int) -> Path:
        state = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "rng": rng_state(), "losses": losses, "target_spreads": spreads, "record": record}
        return save_checkpoint(ckpt_dir / f"step_{step:07d}.pt", state, keep=cfg.keep_checkpoints)

    progress = tqdm(range(start_step, cfg.steps), initial=start_step, total=cfg.steps,
                    desc="video", disable=not dist.is_main, dynamic_ncols=True)
    for step in progress:
        t0 = time.perf_counter()
        batch = to_device(next(batches), device)
        load_failures += batch["load_failures"]
        t1 = time.perf_counter()
        lr, weight_decay, momentum = schedules.apply(optimizer, step)
        with autocast_for(cfg.precision, device):
            loss, stats = trainable(batch)
        mean_loss = all_reduce_mean(loss.detach())  # one collective per step, across ranks
        if logger and (step % cfg.image_every == 0 or step + 1 == cfg.steps):
            # Before the update, and only for weights that just gave a finite loss (finite features).
            check_finite(mean_loss, step, last_good)
            log_masked_clip(logger, batch, model.encoder.grid, [spec.name for spec in collate.specs], step)
            log_feature_pca(logger, model, batch["clips"][:4], step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        # The step's one wait for the device: after backward, so forward and backward are queued back to back,
        # and before the update, so a non-finite loss never reaches the weights.
        losses.append(check_finite(mean_loss, step, last_good))
        optimizer.step()
        model.ema_update(momentum)
        t2 = time.perf_counter()
        data_times.append(t1 - t0)
        step_times.append(t2 - t0)

        if logger and (step % cfg.log_every == 0 or step + 1 == cfg.steps):
            clips_per_s = cfg.batch_size * dist.world_size / median(step_times[-cfg.log_every:])
            logged = stats_to_floats({"grad_norm": grad_norm, **stats})
            if logged.get("target_std") is not None:
                spreads.append(logged["target_std"])
            logger.scalars({"loss": losses[-1], "lr": lr, "weight_decay": weight_decay,
                            "ema_momentum": momentum, "clips_per_s": clips_per_s, **logged}, step, prefix="video/")
            progress.set_postfix(loss=f"{losses[-1]:.4f}", clips_s=f"{clips_per_s:.1f}")
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            if dist.is_main:
                last_good = save(step + 1)

    # The peak is measured before and after training and the higher kept: a busy machine lowers a single
    # reading, and the step time is a median over the whole run.
    summary = _summarise(cfg, losses, stats_to_floats(stats), step_times, data_times, dist, flops_per_clip,
                         max(peak_before, matmul_peak()), start_step)
    # Files that probed fine but failed to decode mid-run were replaced by another clip; count them.
    summary["clip_load_failures"] = load_failures
    summary["target_spread_initial"], summary["target_spread_final"] = spread_ends(spreads)
    summary["narrowing_warning"] = narrowing_warning(summary["target_spread_initial"], summary["target_spread_final"])
    if summary["narrowing_warning"] and dist.is_main:
        log.warning(summary["narrowing_warning"])
    summary["compiled"] = compiles(cfg.compile, device, cfg.steps)
    if dist.is_main:
        export_safetensors(model.target_encoder.state_dict(), run_dir / "encoder.safetensors",
                           metadata={"record": record})
        logger.hparams({f"video/{k}": v for k, v in asdict(cfg).items()},
                       {"video/final_loss": summary["final_loss"]})
        logger.close()
    return summary


def spread_ends(spreads: list[float]) -> tuple[float | None, float | None]:
    """The targets' spread across clips (``target_std`` at each logged step) at the start and the end of the stage:
    the means of its first and of its last ``SPREAD_WINDOW`` values; None where nothing was logged."""
    if not spreads:
        return None, None
    n = min(SPREAD_WINDOW, len(spreads))
    return sum(spreads[:n]) / n, sum(spreads[-n:]) / n


def narrowing_warning(initial: float | None, final: float | None) -> str | None:
    """A one-line warning when the targets' spread across clips ended below ``NARROWING`` times its start, else None."""
    if initial is None or final is None or initial <= 0 or final >= NARROWING * initial:
        return None
    return (f"the video stage's targets tell clips apart less and less (their spread across clips fell from "
            f"{initial:.3g} to {final:.3g}): the clips may share most of their content (an empty background), so "
            "the encoder may not show the objects; check state_readout in summary.json and `python -m "
            "experiments.probe` before planning with it (docs/pusht.md)")


def _summarise(cfg, losses, stats, step_times, data_times, dist, flops_per_clip, matmul_peak, start_step):
    window = max(1, min(20, len(losses) // 5))
    timed = step_times[2:] or step_times  # the first steps pay for worker start-up
    step_time = median(timed) if timed else float("nan")
    clips_per_s = cfg.batch_size * dist.world_size / step_time
    achieved = flops_per_clip * clips_per_s
    return {
        "steps": cfg.steps,
        "resumed_from_step": start_step,
        "initial_loss": sum(losses[:window]) / window if losses else None,  # video.steps=0: the untrained encoder
        "final_loss": sum(losses[-window:]) / window if losses else None,
        "target_feature_std": stats.get("target_std"),
        "step_time_s": step_time,
        "clips_per_s": clips_per_s,
        "data_wait_fraction": (median(data_times[2:] or data_times) / step_time) if timed else None,
        "flops_per_clip": flops_per_clip,
        "achieved_flops_per_s": achieved,
        "matmul_peak_flops_per_s": matmul_peak,
        "mfu": achieved / matmul_peak if matmul_peak else None,
        "world_size": dist.world_size,
        "final_stats": stats,
    }
