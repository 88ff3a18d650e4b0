"""Optimisation schedules as pure functions of the step (V-JEPA: warmup + cosine LR, cosine WD, linear EMA).

Each function maps ``step`` in ``[0, total]`` to a value; past ``total`` it stays at the final value.
Because nothing here keeps state, resuming a run needs no schedule state: the step is enough.
The training loop runs steps ``0 .. total - 1``, so the final value is approached, reached at ``total``
(the same convention as V-JEPA's ``src/utils/schedulers.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Schedules", "cosine", "linear", "warmup_cosine"]


def _progress(step: int, total: int) -> float:
    """Fraction of ``total`` done, clamped to [0, 1]; an empty schedule is already done."""
    if total <= 0:
        return 1.0
    return min(max(step / total, 0.0), 1.0)


def linear(step: int, total: int, start: float, final: float) -> float:
    """Straight line from ``start`` (step 0) to ``final`` (step ``total``), e.g. EMA momentum 0.998 -> 1.0."""
    return start + (final - start) * _progress(step, total)


def cosine(step: int, total: int, start: float, final: float) -> float:
    """Half cosine from ``start`` (step 0) to ``final`` (step ``total``), e.g. weight decay 0.04 -> 0.4."""
    return final + (start - final) * 0.5 * (1.0 + math.cos(math.pi * _progress(step, total)))


def warmup_cosine(step: int, total: int, warmup: int, start: float, peak: float, final: float) -> float:
    """Linear warmup ``start -> peak`` over ``warmup`` steps, then cosine ``peak -> final`` at ``total``."""
    if step < warmup:
        return start + (peak - start) * step / warmup
    return cosine(step - warmup, total - warmup, peak, final)


@dataclass(frozen=True)
class Schedules:
    """The three V-JEPA schedules from config numbers; ``apply`` sets lr/wd on an optimizer.

    Param groups created with ``weight_decay == 0`` (biases, norms, 1-D params) are marked
    ``"no_decay": True`` on first sight and always keep weight decay 0.
    """

    total: int
    warmup: int
    start_lr: float
    lr: float
    final_lr: float
    weight_decay: float
    final_weight_decay: float
    ema_start: float
    ema_end: float

    def __post_init__(self) -> None:
        if self.total < 0 or not 0 <= self.warmup <= max(self.total, 0):
            raise ValueError(f"schedule needs 0 <= warmup <= total, got warmup={self.warmup}, "
                             f"total={self.total}")

    def lr_at(self, step: int) -> float:
        return warmup_cosine(step, self.total, self.warmup, self.start_lr, self.lr, self.final_lr)

    def weight_decay_at(self, step: int) -> float:
        return cosine(step, self.total, self.weight_decay, self.final_weight_decay)

    def momentum_at(self, step: int) -> float:
        return linear(step, self.total, self.ema_start, self.ema_end)

    def at(self, step: int) -> tuple[float, float, float]:
        """(lr, weight_decay, ema_momentum) for ``step``."""
        return self.lr_at(step), self.weight_decay_at(step), self.momentum_at(step)

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> tuple[float, float, float]:
        """Set every param group's lr and (unless ``no_decay``) weight decay; return ``at(step)``."""
        lr, weight_decay, momentum = self.at(step)
        for group in optimizer.param_groups:
            group.setdefault("no_decay", group.get("weight_decay", 0.0) == 0.0)
            group["lr"] = lr
            group["weight_decay"] = 0.0 if group["no_decay"] else weight_decay
        return lr, weight_decay, momentum
