"""The frozen evaluations of a pretrained encoder that ``experiments.probe`` runs.

``run_probe_task``: attentive probes (``worldmodel.evaluation.probe``) over each encoder's frozen features of one
labelled task, picked on a validation split and scored on a test split. ``run_physics``: the predictor's surprise on
violation-of-expectation pairs (``worldmodel.evaluation.surprise``), scored pairwise with an exact sign test.
Both log TensorBoard scalars through ``logger`` and return plain data for ``summary.json``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from worldmodel.data.transforms import center_resize
from worldmodel.evaluation.paired import sign_test_p
from worldmodel.evaluation.probe import AttentiveProbe, ProbeSweepConfig, encode, train_probes, tubelet_pixels
from worldmodel.evaluation.surprise import accuracy_of, batched_surprise, pairwise_outcomes
from worldmodel.io.checkpoint import latest_checkpoint, load_checkpoint
from worldmodel.io.tb import TensorBoardLogger
from worldmodel.models.encoder import VideoEncoder, VideoViTConfig, load_exported_encoder
from worldmodel.models.jepa import VJEPA
from worldmodel.models.vit import sincos_3d

log = logging.getLogger("worldmodel.evaluation.probe")
# Split seeds: train, test and physics clips never share a (seed, index).
TRAIN_SEED, TEST_SEED, PHYSICS_SEED = 1000, 2000, 3000
# (count, seed) -> clips (count, T, H, W, 3) uint8 and labels (count,)
MakeClips = Callable[[int, int], tuple[np.ndarray, np.ndarray]]


def load_pretrained(run: Path) -> tuple[VideoViTConfig, VideoEncoder, VJEPA | None]:
    """(VideoViTConfig, target encoder, full VJEPA or None) from a pretrain run directory."""
    encoder, _ = load_exported_encoder(run / "encoder.safetensors")
    cfg = encoder.cfg
    full = None
    last = latest_checkpoint(run / "checkpoints" / "video")
    if last is not None:
        state = load_checkpoint(last)["model"]
        full = VJEPA(cfg, num_mask_types=state["predictor.mask_tokens"].shape[0])  # runs from before FUTURE: 2
        full.load_state_dict(state)
    return cfg, encoder, full


def to_clips(frames: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (M, T, H, W, 3) -> normalised float (M, C, T, size, size)."""
    return torch.stack([center_resize(clip, size) for clip in frames])


def run_probe_task(task: str, make_clips: MakeClips, classes: int, counts: tuple[int, int], val_fraction: float,
                   sweep: ProbeSweepConfig, probe_shape: tuple[int, int], model_cfg: VideoViTConfig,
                   encoders: dict[str, nn.Module | str], logger: TensorBoardLogger, device: torch.device,
                   seed: int) -> dict[str, Any]:
    """Probe accuracy of each encoder (``"pixels"``: raw tubelet patches with sin-cos positions) on ``task``.

    ``counts``: (train, test) clips, the first ``val_fraction`` of the train clips validate; ``probe_shape``:
    the attentive probe's (queries, heads).
    """
    t0 = time.perf_counter()
    size = model_cfg.image_size
    x_train, y_train = make_clips(counts[0], TRAIN_SEED + seed)
    x_test, y_test = make_clips(counts[1], TEST_SEED + seed)
    render_s = time.perf_counter() - t0
    clips_train, clips_test = to_clips(x_train, size), to_clips(x_test, size)
    y_train, y_test = torch.from_numpy(y_train).to(device), torch.from_numpy(y_test).to(device)
    n_val = max(1, round(val_fraction * len(y_train)))
    queries, heads = probe_shape
    results = {"classes": classes, "train_clips": len(y_train) - n_val, "val_clips": n_val,
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
            return AttentiveProbe(dim, classes, queries=queries, heads=heads)

        def on_epoch(epoch, val_accs, name=name):
            logger.scalar(f"{task}/{name}/best_val_accuracy", max(val_accs), epoch)

        result = train_probes(make_probe, (f_train[n_val:], y_train[n_val:]), (f_train[:n_val], y_train[:n_val]),
                              (f_test, y_test), sweep, seed=seed, on_epoch=on_epoch)
        logger.scalar(f"{task}/test_accuracy/{name}", result.test_accuracy, 0)
        results[name] = {**asdict(result), "encode_s": encode_s, "train_s": time.perf_counter() - t1 - encode_s}
        log.info("%s %-10s test accuracy %.3f (val %.3f, lr %g)", task, name, result.test_accuracy,
                 result.val_accuracy, result.lr)
        del f_train, f_test
    for name in encoders:
        if name != "pretrained" and "pretrained" in results:
            results[f"margin_vs_{name}"] = results["pretrained"]["test_accuracy"] - results[name]["test_accuracy"]
    return results


def scored_pairs(plausible: torch.Tensor, implausible: torch.Tensor, groups: torch.Tensor,
                 suffix: str) -> dict[str, float | int]:
    """Pairwise accuracy, the groups won and lost, and the sign test's p against chance (1/2), keyed by suffix."""
    wins, losses, ties = pairwise_outcomes(plausible, implausible, groups)
    return {f"pairwise_accuracy{suffix}": accuracy_of(wins, losses, ties),
            f"groups_won{suffix}": wins, f"groups_lost{suffix}": losses, f"groups_tied{suffix}": ties,
            f"sign_test_p{suffix}": sign_test_p(wins, losses)}


def run_physics(pairs: dict[str, np.ndarray], violations: tuple[str, ...], settings: dict[str, int],
                model_cfg: VideoViTConfig, models: dict[str, VJEPA], logger: TensorBoardLogger) -> dict[str, Any]:
    """Surprise of each model on the plausible and implausible clips of ``pairs`` (``envs.probe_scenes``), scored
    per mask token, overall and per violation kind. ``settings``: ``groups_per_kind``, ``context_tubelets``,
    ``first_violation_frame`` and ``mask_type`` (the headline's mask token; the others get a ``_mask{i}`` suffix)."""
    plausible = to_clips(pairs["plausible"], model_cfg.image_size)
    implausible = to_clips(pairs["implausible"], model_cfg.image_size)
    results = {"groups_per_kind": settings["groups_per_kind"], "pairs": len(pairs["group"]),
               "context_tubelets": settings["context_tubelets"],
               "first_violation_frame": settings["first_violation_frame"], "mask_type": settings["mask_type"]}
    for name, model in models.items():
        record = {}
        # The headline uses mask_type (fixed before looking at results); the other mask tokens are
        # reported alongside, never used to pick.
        for mask_type in range(len(model.predictor.mask_tokens)):
            kwargs = {"context_tubelets": settings["context_tubelets"], "mask_type": mask_type}
            s_plaus = batched_surprise(model, plausible, **kwargs)
            s_implaus = batched_surprise(model, implausible, **kwargs)
            suffix = "" if mask_type == settings["mask_type"] else f"_mask{mask_type}"
            groups = torch.from_numpy(pairs["group"])
            record.update(scored_pairs(s_plaus, s_implaus, groups, suffix))
            record[f"mean_surprise_plausible{suffix}"] = float(s_plaus.mean())
            record[f"mean_surprise_implausible{suffix}"] = float(s_implaus.mean())
            for kind in violations:
                mask = torch.from_numpy(pairs["kind"] == kind)
                record.update(scored_pairs(s_plaus[mask], s_implaus[mask], groups[mask], f"_{kind}{suffix}"))
        for key, value in record.items():
            logger.scalar(f"physics/{name}/{key}", value, 0)
        results[name] = record
        log.info("physics %-10s pairwise accuracy %.3f, sign test p = %.2g (%s)", name, record["pairwise_accuracy"],
                 record["sign_test_p"],
                 ", ".join(f"{k}: {record[f'pairwise_accuracy_{k}']:.2f}" for k in violations))
    return results
