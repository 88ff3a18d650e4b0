"""Frozen evaluation of a pretrained encoder: ``python -m experiments.probe [checkpoint=RUN_DIR] ...``

Probe tasks (``direction``, ``contact``, ``t_angle``; clips from ``envs.probe_tasks``): an attentive probe over
the frozen features, swept over learning rates, picked on a validation split, scored on a held-out test split, for
  ``pretrained``: the run's exported target encoder (``encoder.safetensors``),
  ``random``:     the same architecture, randomly initialised (seeded),
  ``pixels``:     raw tubelet patches (+ the same sin-cos positions) as tokens.
``physics``: violation-of-expectation pairs; pairwise accuracy of the predictor's surprise for the
pretrained model (the run's last full checkpoint) and the random-init one, with the groups won and lost
and an exact sign test against chance.
Encoders, surprise and probes run on ``device=auto|cpu|cuda|cuda:N`` (auto: CUDA when available).
Writes ``summary.json`` and TensorBoard scalars to the run directory (default ``runs/probe/<time>``).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from envs.probe_scenes import VIOLATIONS, make_physics_pairs
from envs.probe_tasks import CLIP_TASKS
from experiments.common import check_settings, pretrain_run, run_dir, user_errors_as_one_line
from experiments.probe_config import ProbeConfig, register_probe_schema
from worldmodel.devices import resolve_device
from worldmodel.evaluation.probe import ProbeSweepConfig
from worldmodel.evaluation.probe_tasks import PHYSICS_SEED, load_pretrained, run_physics, run_probe_task
from worldmodel.io.summary import write_summary
from worldmodel.io.tb import TensorBoardLogger
from worldmodel.models.jepa import VJEPA
from worldmodel.models.masks import DEFAULT_SPECS


@hydra.main(version_base="1.3", config_path="../configs", config_name="probe")
@user_errors_as_one_line
def main(cfg: DictConfig) -> None:
    check_settings(cfg, ProbeConfig)
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    checkpoint = pretrain_run(cfg.checkpoint, Path(cfg.runs_root), "*/encoder.safetensors",
                              "`python -m experiments.pretrain` (then `python -m experiments.probe checkpoint=RUN`)")
    model_cfg, encoder, full = load_pretrained(checkpoint)
    torch.manual_seed(cfg.seed)
    mask_types = len(full.predictor.mask_tokens) if full is not None else len(DEFAULT_SPECS)
    if not 0 <= cfg.mask_type < mask_types:
        raise ValueError(f"mask_type must be in [0, {mask_types - 1}] for this checkpoint's predictor "
                         f"({', '.join(spec.name for spec in DEFAULT_SPECS[:mask_types])}), got {cfg.mask_type}")
    random_model = VJEPA(model_cfg, mask_types).eval()  # its target encoder is a copy of its (random) encoder
    # initialised on the CPU, then moved: the same weights on every device
    encoder, random_model = encoder.to(device), random_model.to(device)
    full = full.to(device) if full is not None else None

    out = run_dir()
    summary: dict = {"command": "probe", "checkpoint": str(checkpoint), "device": str(device),
                     "model": asdict(model_cfg), "config": OmegaConf.to_container(cfg)}
    with TensorBoardLogger(out / "tb") as logger:
        encoders = {"pretrained": encoder}
        if "random" in cfg.baselines:
            encoders["random"] = random_model.target_encoder
        if "pixels" in cfg.baselines:
            encoders["pixels"] = "pixels"
        sweep = ProbeSweepConfig(lrs=list(cfg.probe.lrs), weight_decays=list(cfg.probe.weight_decays),
                                 epochs=cfg.probe.epochs, batch_size=cfg.probe.batch_size,
                                 warmup_epochs=cfg.probe.warmup_epochs)
        for task in cfg.tasks:
            if task != "physics":
                def make_clips(count: int, seed: int, task: str = task) -> tuple:
                    return CLIP_TASKS[task].make_clips(count, seed, model_cfg.image_size, model_cfg.frames)

                summary[task] = run_probe_task(
                    task, make_clips, CLIP_TASKS[task].classes, (cfg.train_clips, cfg.test_clips), cfg.val_fraction,
                    sweep, (cfg.probe.queries, cfg.probe.heads), model_cfg, encoders, logger, device, seed=cfg.seed)
        if "physics" in cfg.tasks:
            models = {"random": random_model}
            if full is not None:
                models = {"pretrained": full, **models}
            else:
                summary["physics_skipped"] = f"no checkpoints/video/step_*.pt in {checkpoint}: no predictor"
            first_violation = cfg.context_tubelets * model_cfg.tubelet
            pairs = make_physics_pairs(cfg.physics_pairs, PHYSICS_SEED + cfg.seed, image_size=model_cfg.image_size,
                                       frames=model_cfg.frames, first_violation=first_violation)
            settings = {"groups_per_kind": cfg.physics_pairs, "context_tubelets": cfg.context_tubelets,
                        "first_violation_frame": first_violation, "mask_type": cfg.mask_type}
            summary["physics"] = run_physics(pairs, VIOLATIONS, settings, model_cfg, models, logger)
    summary["runtime_s"] = time.perf_counter() - start
    write_summary(out, summary)
    for task in cfg.tasks:
        if task == "physics":
            line = ", ".join(f"{n} {r['pairwise_accuracy']:.3f} (p = {r['sign_test_p']:.2g})"
                             for n, r in summary["physics"].items()
                             if isinstance(r, dict))
            print(f"physics pairwise surprise accuracy: {line}")
        else:
            line = ", ".join(f"{n} {summary[task][n]['test_accuracy']:.3f}" for n in encoders)
            print(f"{task} test accuracy: {line}")
    print(f"run directory: {out}")


if __name__ == "__main__":
    register_probe_schema()
    main()
