"""Frozen evaluation of a pretrained encoder: ``python -m experiments.probe [checkpoint=RUN_DIR] ...``

Probe tasks (``direction``, ``contact``; clips from ``envs.probe_scenes``): an attentive probe over the frozen
features, swept over learning rates, picked on a validation split, scored on a held-out test split, for
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

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig, OmegaConf

from experiments.common import check_settings, newest_run, run_dir, user_errors_as_one_line
from experiments.probe_config import ProbeConfig, register_probe_schema

if TYPE_CHECKING:
    import torch

log = logging.getLogger("worldmodel.evaluation.probe")
# Split seeds: train, test and physics clips never share a (seed, index).
TRAIN_SEED, TEST_SEED, PHYSICS_SEED = 1000, 2000, 3000


def resolve_checkpoint(checkpoint: str | None, runs_root: str) -> Path:
    """The pretrain run directory to evaluate; one-line errors that say what to run."""
    if checkpoint is None:
        root = Path(runs_root)
        if not any(root.glob("*/*/encoder.safetensors")):
            raise FileNotFoundError(
                f"no pretrain run with encoder.safetensors under {root}/<env>/<time>/; run "
                "`python -m experiments.pretrain` first, or `python -m experiments.probe checkpoint=RUN_DIR`")
        return newest_run(root, "*/encoder.safetensors")
    path = Path(checkpoint)
    if not (path / "encoder.safetensors").is_file():
        raise FileNotFoundError(
            f"checkpoint={checkpoint} is not a pretrain run directory (no {path / 'encoder.safetensors'}); "
            "pass the directory `python -m experiments.pretrain` printed: "
            "`python -m experiments.probe checkpoint=runs/pretrain/<env>/<time>`")
    return path


def load_pretrained(run: Path):
    """(VideoViTConfig, target encoder, full VJEPA or None) from a pretrain run directory."""
    from worldmodel.io.checkpoint import latest_checkpoint, load_checkpoint
    from worldmodel.models.encoder import load_exported_encoder
    from worldmodel.models.jepa import VJEPA

    encoder, _ = load_exported_encoder(run / "encoder.safetensors")
    cfg = encoder.cfg
    full = None
    last = latest_checkpoint(run / "checkpoints" / "video")
    if last is not None:
        state = load_checkpoint(last)["model"]
        full = VJEPA(cfg, num_mask_types=state["predictor.mask_tokens"].shape[0])  # runs from before FUTURE: 2
        full.load_state_dict(state)
    return cfg, encoder, full


def to_clips(frames, size: int):
    """uint8 (M, T, H, W, 3) -> normalised float (M, C, T, size, size)."""
    import torch

    from worldmodel.data.transforms import center_resize

    return torch.stack([center_resize(clip, size) for clip in frames])


def run_probe_task(task: str, cfg: DictConfig, model_cfg, encoders: dict, logger, device: torch.device) -> dict:
    import torch

    from envs.probe_scenes import PROBE_TASKS, make_probe_clips
    from worldmodel.evaluation.probe import AttentiveProbe, ProbeSweepConfig, encode, train_probes, tubelet_pixels
    from worldmodel.models.vit import sincos_3d

    t0 = time.perf_counter()
    size, frames = model_cfg.image_size, model_cfg.frames
    x_train, y_train = make_probe_clips(task, cfg.train_clips, TRAIN_SEED + cfg.seed, size, frames)
    x_test, y_test = make_probe_clips(task, cfg.test_clips, TEST_SEED + cfg.seed, size, frames)
    render_s = time.perf_counter() - t0
    clips_train, clips_test = to_clips(x_train, size), to_clips(x_test, size)
    y_train, y_test = torch.from_numpy(y_train).to(device), torch.from_numpy(y_test).to(device)
    n_val = max(1, round(cfg.val_fraction * len(y_train)))
    sweep = ProbeSweepConfig(lrs=list(cfg.probe.lrs), weight_decays=list(cfg.probe.weight_decays),
                             epochs=cfg.probe.epochs, batch_size=cfg.probe.batch_size,
                             warmup_epochs=cfg.probe.warmup_epochs)
    results = {"classes": PROBE_TASKS[task], "train_clips": len(y_train) - n_val, "val_clips": n_val,
               "test_clips": len(y_test), "render_s": render_s}
    for name, featurize in encoders.items():
        t1 = time.perf_counter()
        if featurize == "pixels":
            pos = sincos_3d(model_cfg.channels * model_cfg.tubelet * model_cfg.patch ** 2, model_cfg.grid)
            f_train = (tubelet_pixels(clips_train, model_cfg.tubelet, model_cfg.patch) + pos).to(device)
            f_test = (tubelet_pixels(clips_test, model_cfg.tubelet, model_cfg.patch) + pos).to(device)
        else:  # features on the encoder's device, where the probes then train
            f_train, f_test = encode(featurize, clips_train), encode(featurize, clips_test)
        encode_s = time.perf_counter() - t1
        dim = f_train.shape[-1]

        def make_probe(dim=dim):
            return AttentiveProbe(dim, PROBE_TASKS[task], queries=cfg.probe.queries, heads=cfg.probe.heads)

        def on_epoch(epoch, val_accs, name=name):
            logger.scalar(f"{task}/{name}/best_val_accuracy", max(val_accs), epoch)

        result = train_probes(make_probe, (f_train[n_val:], y_train[n_val:]), (f_train[:n_val], y_train[:n_val]),
                              (f_test, y_test), sweep, seed=cfg.seed, on_epoch=on_epoch)
        logger.scalar(f"{task}/test_accuracy/{name}", result.test_accuracy, 0)
        results[name] = {**asdict(result), "encode_s": encode_s, "train_s": time.perf_counter() - t1 - encode_s}
        log.info("%s %-10s test accuracy %.3f (val %.3f, lr %g)", task, name, result.test_accuracy,
                 result.val_accuracy, result.lr)
        del f_train, f_test
    for name in encoders:
        if name != "pretrained" and "pretrained" in results:
            results[f"margin_vs_{name}"] = results["pretrained"]["test_accuracy"] - results[name]["test_accuracy"]
    return results


def scored_pairs(plausible, implausible, groups, suffix: str) -> dict[str, float | int]:
    """Pairwise accuracy, the groups won and lost, and the sign test's p against chance (1/2), keyed by suffix."""
    from worldmodel.evaluation.paired import sign_test_p
    from worldmodel.evaluation.surprise import accuracy_of, pairwise_outcomes

    wins, losses, ties = pairwise_outcomes(plausible, implausible, groups)
    return {f"pairwise_accuracy{suffix}": accuracy_of(wins, losses, ties),
            f"groups_won{suffix}": wins, f"groups_lost{suffix}": losses, f"groups_tied{suffix}": ties,
            f"sign_test_p{suffix}": sign_test_p(wins, losses)}


def run_physics(cfg: DictConfig, model_cfg, models: dict, logger) -> dict:
    import torch

    from envs.probe_scenes import VIOLATIONS, make_physics_pairs
    from worldmodel.evaluation.surprise import batched_surprise

    first_violation = cfg.context_tubelets * model_cfg.tubelet
    pairs = make_physics_pairs(cfg.physics_pairs, PHYSICS_SEED + cfg.seed, image_size=model_cfg.image_size,
                               frames=model_cfg.frames, first_violation=first_violation)
    plausible = to_clips(pairs["plausible"], model_cfg.image_size)
    implausible = to_clips(pairs["implausible"], model_cfg.image_size)
    results = {"groups_per_kind": cfg.physics_pairs, "pairs": len(pairs["group"]),
               "context_tubelets": cfg.context_tubelets,
               "first_violation_frame": first_violation, "mask_type": cfg.mask_type}
    for name, model in models.items():
        record = {}
        # The headline uses cfg.mask_type (fixed before looking at results); the other mask tokens are
        # reported alongside, never used to pick.
        for mask_type in range(len(model.predictor.mask_tokens)):
            kwargs = {"context_tubelets": cfg.context_tubelets, "mask_type": mask_type}
            s_plaus = batched_surprise(model, plausible, **kwargs)
            s_implaus = batched_surprise(model, implausible, **kwargs)
            suffix = "" if mask_type == cfg.mask_type else f"_mask{mask_type}"
            groups = torch.from_numpy(pairs["group"])
            record.update(scored_pairs(s_plaus, s_implaus, groups, suffix))
            record[f"mean_surprise_plausible{suffix}"] = float(s_plaus.mean())
            record[f"mean_surprise_implausible{suffix}"] = float(s_implaus.mean())
            for kind in VIOLATIONS:
                mask = torch.from_numpy(pairs["kind"] == kind)
                record.update(scored_pairs(s_plaus[mask], s_implaus[mask], groups[mask], f"_{kind}{suffix}"))
        for key, value in record.items():
            logger.scalar(f"physics/{name}/{key}", value, 0)
        results[name] = record
        log.info("physics %-10s pairwise accuracy %.3f, sign test p = %.2g (%s)", name, record["pairwise_accuracy"],
                 record["sign_test_p"],
                 ", ".join(f"{k}: {record[f'pairwise_accuracy_{k}']:.2f}" for k in VIOLATIONS))
    return results


@hydra.main(version_base="1.3", config_path="../configs", config_name="probe")
@user_errors_as_one_line
def main(cfg: DictConfig) -> None:
    import torch

    from worldmodel.devices import resolve_device
    from worldmodel.io.summary import write_summary
    from worldmodel.io.tb import TensorBoardLogger
    from worldmodel.models.jepa import VJEPA
    from worldmodel.models.masks import DEFAULT_SPECS

    check_settings(cfg, ProbeConfig)
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    checkpoint = resolve_checkpoint(cfg.checkpoint, cfg.runs_root)
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
        for task in cfg.tasks:
            if task != "physics":
                summary[task] = run_probe_task(task, cfg, model_cfg, encoders, logger, device)
        if "physics" in cfg.tasks:
            models = {"random": random_model}
            if full is not None:
                models = {"pretrained": full, **models}
            else:
                summary["physics_skipped"] = f"no checkpoints/video/step_*.pt in {checkpoint}: no predictor"
            summary["physics"] = run_physics(cfg, model_cfg, models, logger)
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
