"""The V-JEPA objective: predict, from the visible tokens, the EMA target encoder's features of the masked ones.

    targets = layer_norm(target_encoder(clips))                    once per batch, no gradient
    for each mask spec i:
        context = encoder(clips, keep=masks_enc[i])                 the encoder drops the masked tokens
        pred    = predictor(context, masks_enc[i], masks_pred[i], mask_type=i)
        loss_i  = mean |pred - targets[masks_pred[i]]|              L1
    loss = mean_i loss_i;  after the optimiser step: target <- m * target + (1 - m) * encoder
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.models.encoder import VideoEncoder, VideoViTConfig
from worldmodel.models.masks import DEFAULT_SPECS, apply_masks, context_fractions, masked_fractions
from worldmodel.models.predictor import VideoPredictor


def stats_to_floats(stats: dict[str, Any]) -> dict[str, Any]:
    """``stats`` with every tensor read back as a float, in one device round trip (None and floats kept)."""
    keys = [k for k, v in stats.items() if torch.is_tensor(v)]
    if not keys:
        return dict(stats)
    values = torch.stack([stats[k].detach().float().reshape(()) for k in keys]).tolist()
    return {**stats, **dict(zip(keys, values))}


def batch_std(features: torch.Tensor) -> torch.Tensor:
    """Collapse monitor: (B, N, D) -> scalar, the channel-mean of the std across clips of the pooled features.

    Zero when every clip maps to the same representation, whatever the per-token spread.
    """
    return features.float().mean(dim=1).std(dim=0).mean()


class VJEPA(nn.Module):
    """Encoder, predictor and EMA target encoder. ``forward(batch)`` is ``loss(batch)``."""

    def __init__(self, cfg: VideoViTConfig, num_mask_types: int = len(DEFAULT_SPECS)):
        super().__init__()
        self.cfg = cfg
        self.encoder = VideoEncoder(cfg)
        self.predictor = VideoPredictor(cfg, num_mask_types)
        self.target_encoder = copy.deepcopy(self.encoder)
        self.target_encoder.requires_grad_(False)

    def loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """``batch`` as made by ``MultiBlockMaskCollator``: clips (B, C, T, H, W), masks_enc, masks_pred lists.

        Returns the scalar loss and stats: ``loss_mask{i}``, ``target_std`` (collapse monitor of the
        layer-normed targets), ``encoder_std`` (the same for the online encoder's context features, first
        mask), ``encoder_token_std`` (raw std of those features) as detached 0-d tensors, and the floats
        ``masked_fraction{i}`` (targets / N), ``context_fraction{i}`` (kept tokens / N). The tensors stay on
        the device: reading one waits for the step, so read them together when logging (``stats_to_floats``).
        """
        clips, masks_enc, masks_pred = batch["clips"], batch["masks_enc"], batch["masks_pred"]
        if len(masks_enc) != len(masks_pred) or len(masks_enc) > len(self.predictor.mask_tokens):
            raise ValueError(f"got {len(masks_enc)} context and {len(masks_pred)} target masks for a predictor "
                             f"with {len(self.predictor.mask_tokens)} mask tokens")
        with torch.no_grad():
            targets = self.target_encoder(clips)
            targets = F.layer_norm(targets, targets.shape[-1:])
        losses, stats = [], {}
        embedded = self.encoder.embed(clips)  # once for every mask type: each keeps its own subset of it
        for i, (enc_idx, pred_idx) in enumerate(zip(masks_enc, masks_pred)):
            context = self.encoder.encode_tokens(apply_masks(embedded, enc_idx))
            pred = self.predictor(context, enc_idx, pred_idx, mask_type=i)
            losses.append((pred - apply_masks(targets, pred_idx)).abs().mean())
            if i == 0:
                with torch.no_grad():
                    stats["encoder_std"] = batch_std(context)
                    stats["encoder_token_std"] = context.detach().float().std()
        loss = torch.stack(losses).mean()
        stats["target_std"] = batch_std(targets)
        masked = masked_fractions(masks_pred, self.cfg.num_tokens)
        visible = context_fractions(masks_enc, self.cfg.num_tokens)
        for i, value in enumerate(losses):
            stats[f"loss_mask{i}"] = value.detach()
            stats[f"masked_fraction{i}"] = masked[i]
            stats[f"context_fraction{i}"] = visible[i]
        return loss, stats

    forward = loss

    @torch.no_grad()
    def ema_update(self, momentum: float) -> None:
        """target <- momentum * target + (1 - momentum) * encoder, for every parameter."""
        target = list(self.target_encoder.parameters())
        online = [p.detach() for p in self.encoder.parameters()]
        torch._foreach_mul_(target, momentum)
        torch._foreach_add_(target, online, alpha=1.0 - momentum)

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW groups over the trainable parameters: matrices decay; biases and 1-D params (norms) do not."""
        decay, no_decay = [], []
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
        return [{"params": decay, "weight_decay": weight_decay, "no_decay": False},
                {"params": no_decay, "weight_decay": 0.0, "no_decay": True}]
