"""Guards and meters for training loops: stop on a non-finite loss, measure throughput and step time."""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from statistics import median

import torch

from worldmodel.errors import UserError

__all__ = ["NonFiniteLossError", "StepTimer", "Throughput", "check_finite"]


class NonFiniteLossError(UserError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


def check_finite(loss: torch.Tensor | float, step: int,
                 last_checkpoint: str | os.PathLike | None = None) -> float:
    """``loss`` as a float; ``NonFiniteLossError`` (one line) if it is NaN or infinite. Syncs with the device once."""
    value = float(loss.detach().float().sum().item() if isinstance(loss, torch.Tensor) else loss)
    if math.isfinite(value):
        return value
    where = (f"the last good checkpoint is {last_checkpoint}" if last_checkpoint is not None
             else "no checkpoint was saved before it")
    raise NonFiniteLossError(
        f"loss became {value} at step {step}; {where} — lower the learning rate (or raise warmup, "
        "use fp32 precision, tighten grad clipping) and rerun with resume=true")


class Throughput:
    """Items per second, the median over the last ``window`` intervals between ``update`` calls.

    Call ``update(n)`` once per step after the step's ``n`` items are done; the first call only starts
    the clock. Call ``reset()`` after a pause (evaluation, checkpointing) you do not want counted.
    """

    def __init__(self, window: int = 50):
        self._rates: deque[float] = deque(maxlen=window)
        self._last: float | None = None

    def reset(self) -> None:
        self._last = None

    def update(self, items: float) -> None:
        now = time.perf_counter()
        if self._last is not None and now > self._last:
            self._rates.append(items / (now - self._last))
        self._last = now

    @property
    def rate(self) -> float:
        """Median items/s over the window; NaN before two updates."""
        return median(self._rates) if self._rates else float("nan")


class StepTimer:
    """Wall time per named section, e.g. ``with timer("data"): batch = next(it)``; medians over a window."""

    def __init__(self, window: int = 50):
        self._times: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))
        self.totals: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self._times[name].append(elapsed)
            self.totals[name] += elapsed

    def median(self, name: str) -> float:
        times = self._times.get(name)
        return median(times) if times else float("nan")

    def summary(self) -> dict[str, float]:
        """{section: median seconds} over the window."""
        return {name: median(times) for name, times in self._times.items() if times}
