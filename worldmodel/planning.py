"""Sampling-based model-predictive planners as pure, batched functions.

Both planners search action sequences ``(horizon, A)`` inside the box ``[low, high]`` and
see the world only through ``cost_fn``: a callable mapping a batch of candidate sequences
``(N, horizon, A)`` to costs ``(N,)`` (lower is better). The caller decides what a cost is:
latent distance to a goal under a learned predictor, or true distance under the simulator.

Warm start: pass the previous plan shifted by one step (``shift_plan``) as ``init_mean``.

Device: every tensor of the search (bounds, means, stds, candidates, the plan) lives on ``device``, else on
``init_mean``'s device, else on torch's default device (the CPU unless set); give the cost function's device
(e.g. the world model's). The sampling
noise is drawn by ``generator`` on the generator's own device (the CPU for ``torch.Generator()``) and then moved,
so a seed gives the same samples, and on the CPU the same plans, whatever device the search runs on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

CostFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Plan:
    actions: torch.Tensor  # (horizon, A): the sequence to execute; act with actions[0]
    cost: float  # cost_fn of `actions` as last evaluated (the best sample's cost)
    mean: torch.Tensor  # (horizon, A): final sampling mean, for warm starts
    std: torch.Tensor  # (horizon, A): final sampling std
    costs_per_iteration: list[float]  # best cost after each iteration


def _plan_device(device: torch.device | str | None, init_mean) -> torch.device | None:
    """Where the search lives: ``device``, else ``init_mean``'s device, else None (torch's default device)."""
    if device is not None:
        return torch.device(device)
    return init_mean.device if torch.is_tensor(init_mean) else None


def _as_bounds(low, high, action_dim: int, dtype: torch.dtype,
               device: torch.device | None) -> tuple[torch.Tensor, torch.Tensor]:
    low_t = torch.as_tensor(low, dtype=dtype, device=device).expand(action_dim).clone()
    high_t = torch.as_tensor(high, dtype=dtype, device=device).expand(action_dim).clone()
    if not torch.all(high_t > low_t):
        raise ValueError(f"action bounds must satisfy low < high, got low={low_t.tolist()} high={high_t.tolist()}")
    return low_t, high_t


def _check_costs(costs: torch.Tensor, samples: int) -> torch.Tensor:
    if costs.shape != (samples,):
        raise ValueError(f"cost_fn must return shape ({samples},), got {tuple(costs.shape)}")
    # A non-finite cost (a diverged rollout) must never be chosen.
    return torch.nan_to_num(costs, nan=float("inf"))


def _initial(init_mean, init_std, horizon, low, high, dtype):
    action_dim, device = low.shape[0], low.device
    mean = (low + high) / 2 if init_mean is None else torch.as_tensor(init_mean, dtype=dtype, device=device).clone()
    mean = mean.expand(horizon, action_dim).clone()
    half_range = (high - low) / 2
    std = half_range.expand(horizon, action_dim).clone() if init_std is None else (
        torch.as_tensor(init_std, dtype=dtype, device=device).expand(horizon, action_dim).clone())
    return mean, std


def _noise(shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype,
           device: torch.device) -> torch.Tensor:
    """Standard normal ``shape`` on ``device``, drawn on ``generator``'s device (``device`` without one)."""
    source = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, dtype=dtype, device=source).to(device)


@torch.no_grad()
def cem(
    cost_fn: CostFn,
    action_low,
    action_high,
    horizon: int,
    action_dim: int,
    samples: int = 256,
    iterations: int = 4,
    elites: int = 32,
    init_mean: torch.Tensor | None = None,
    init_std: torch.Tensor | float | None = None,
    min_std: float = 0.05,
    momentum: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Plan:
    """Cross-entropy method: refit a diagonal Gaussian to the ``elites`` cheapest samples."""
    if not 0 < elites <= samples:
        raise ValueError(f"elites must be in [1, samples={samples}], got {elites}")
    dtype = torch.float32
    low, high = _as_bounds(action_low, action_high, action_dim, dtype, _plan_device(device, init_mean))
    mean, std = _initial(init_mean, init_std, horizon, low, high, dtype)
    best_actions, best_cost, history = mean.clone(), float("inf"), []
    for _ in range(iterations):
        noise = _noise((samples, horizon, action_dim), generator, dtype, low.device)
        candidates = torch.clamp(mean + std * noise, low, high)
        candidates[0] = torch.clamp(mean, low, high)  # always evaluate the current mean
        costs = _check_costs(cost_fn(candidates), samples)
        elite_costs, elite_idx = torch.topk(costs, elites, largest=False)
        elite = candidates[elite_idx]
        mean = momentum * mean + (1 - momentum) * elite.mean(0)
        std = (momentum * std + (1 - momentum) * elite.std(0, unbiased=False)).clamp_min(min_std)
        if elite_costs[0].item() < best_cost:
            best_cost, best_actions = elite_costs[0].item(), elite[0].clone()
        history.append(best_cost)
    return Plan(best_actions, best_cost, mean, std, history)


@torch.no_grad()
def mppi(
    cost_fn: CostFn,
    action_low,
    action_high,
    horizon: int,
    action_dim: int,
    samples: int = 256,
    iterations: int = 4,
    temperature: float = 0.1,
    init_mean: torch.Tensor | None = None,
    init_std: torch.Tensor | float | None = None,
    min_std: float = 0.05,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Plan:
    """Model-predictive path integral: exponentially cost-weighted average of all samples.

    Costs are standardised per iteration before the softmax, so ``temperature`` is unitless.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    dtype = torch.float32
    low, high = _as_bounds(action_low, action_high, action_dim, dtype, _plan_device(device, init_mean))
    mean, std = _initial(init_mean, init_std, horizon, low, high, dtype)
    best_cost, history = float("inf"), []
    for _ in range(iterations):
        noise = _noise((samples, horizon, action_dim), generator, dtype, low.device)
        candidates = torch.clamp(mean + std * noise, low, high)
        candidates[0] = torch.clamp(mean, low, high)
        costs = _check_costs(cost_fn(candidates), samples)
        finite = torch.isfinite(costs)
        scale = costs[finite].std().clamp_min(1e-8) if finite.sum() > 1 else costs.new_tensor(1.0)
        weights = torch.softmax(-(costs - costs[finite].min()) / (scale * temperature), dim=0)
        mean = torch.einsum("n,nha->ha", weights, candidates)
        std = torch.sqrt(torch.einsum("n,nha->ha", weights, (candidates - mean) ** 2)).clamp_min(min_std)
        best_cost = min(best_cost, costs.min().item())
        history.append(best_cost)
    actions = torch.clamp(mean, low, high)
    final_cost = _check_costs(cost_fn(actions[None]), 1)[0].item()
    return Plan(actions, final_cost, mean, std, history)


def shift_plan(mean: torch.Tensor, fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Drop the executed first step and append ``fill``: the warm start for the next MPC step (on ``mean``'s device)."""
    tail = torch.as_tensor(fill, dtype=mean.dtype, device=mean.device).expand(1, mean.shape[1])
    return torch.cat([mean[1:], tail], dim=0)


PLANNERS = {"cem": cem, "mppi": mppi}
