"""TensorBoard views of planning episodes: what the agent saw, where it thought it was going, what happened.

Per episode ``i`` (tags ``episode_{i:03d}/...``; images only for the first ``tb.videos`` episodes):

- ``video``: the observed frames beside the goal image (for ``hierarchical`` also the current subgoal,
  shown as its nearest real frame), each panel captioned (observation, subgoal, goal), an animated GIF
  image summary (TensorBoard's IMAGES tab);
- ``distance``: the true distance to the goal after each step (scalars, step = env step);
  ``latent_distance``: for world-model agents, ``world_model.distance(encode(frame), encode(goal))``;
- ``cost/predicted`` and ``cost/realised`` (scalars) and the figure ``cost``, when the agent exposes
  ``diagnostics["predicted_cost"]``: what the planner predicted at step t against the distance to the
  goal actually reached when its plan would have ended (``diagnostics["predicted_steps"]`` steps later,
  else ``len(imagined)``, else 1; latent distance for world-model agents, true distance otherwise); over
  the whole run these pairs give ``summary.json``'s ``cost_calibration`` (``cost_calibration()``);
- ``subgoals`` (``diagnostics["subgoal"]``) and ``imagined`` (``diagnostics["imagined"]``): latents shown
  as the nearest frames of a bank of real frames (the env's exploration trajectories, encoded with
  ``world_model.encode``, nearest by ``world_model.distance``; subgoals are level-2 states, compared
  through ``high_state`` and ``high_distance``). ``imagined`` has two rows per inspected
  step: the imagined trajectory's nearest frames, then the frames that really followed.

Run-level: ``episodes/success``, ``episodes/final_distance``, ``episodes/ms_per_step``,
``episodes/steps`` (step = episode index) and hparams with the final metrics (``plan/...``).
Everything here runs after an episode, outside its timed ``act`` calls.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from agents.runner import EpisodeResult
from envs.exploration import cache_path, collect_trajectories
from worldmodel.io.tb import TensorBoardLogger, caption, side_by_side, tile

log = logging.getLogger("worldmodel.plan")
ENCODE_BATCH = 128


@torch.no_grad()
def encode_frames(world_model: Any, frames: np.ndarray, proprio: np.ndarray | None = None) -> torch.Tensor:
    """(N, H, W, 3) uint8 (and body states (N, P) for envs with proprioception) -> (N, Dz), in batches."""
    parts = []
    for i in range(0, len(frames), ENCODE_BATCH):
        batch = torch.from_numpy(np.ascontiguousarray(frames[i: i + ENCODE_BATCH]))
        body = None if proprio is None else np.asarray(proprio[i: i + ENCODE_BATCH])
        parts.append(torch.as_tensor(world_model.encode(batch) if body is None else world_model.encode(batch, body)))
    return torch.cat(parts).float().cpu()


@torch.no_grad()
def distances_to(world_model: Any, z: torch.Tensor, goal: torch.Tensor, high: bool = False) -> np.ndarray:
    """``world_model.distance`` (``high_distance`` for level-2 states) of each row of z (N, D) to one goal (D,),
    computed on the model's device."""
    z = z.to(getattr(world_model, "device", z.device))  # a stand-in world model may not say where it lives
    goal = torch.as_tensor(goal, dtype=z.dtype, device=z.device).reshape(1, -1).expand_as(z)
    distance = getattr(world_model, "high_distance", world_model.distance) if high else world_model.distance
    return torch.as_tensor(distance(z, goal)).float().reshape(-1).cpu().numpy()


class FrameBank:
    """Real frames ``(N, H, W, 3)`` and their latents ``(N, Dz)``: shows a latent as its nearest frame."""

    def __init__(self, world_model: Any, frames: np.ndarray, proprio: np.ndarray | None = None):
        self.world_model = world_model
        self.frames = frames
        self.latents = encode_frames(world_model, frames, proprio)
        self._high_latents: torch.Tensor | None = None

    def nearest(self, latents: np.ndarray | torch.Tensor, high: bool = False) -> np.ndarray:
        """(K, D) -> indices (K,) of the nearest bank frames; ``high``: the latents are level-2 states."""
        bank = self.latents
        if high and hasattr(self.world_model, "high_state"):  # a stand-in world model has one state space
            if self._high_latents is None:
                with torch.no_grad():
                    low = self.latents.to(getattr(self.world_model, "device", self.latents.device))
                    self._high_latents = torch.as_tensor(self.world_model.high_state(low)).float().cpu()
            bank = self._high_latents
        latents = torch.as_tensor(np.asarray(latents), dtype=torch.float32).reshape(-1, bank.shape[-1])
        return np.array([int(np.argmin(distances_to(self.world_model, bank, q, high))) for q in latents])

    def show(self, latents: np.ndarray | torch.Tensor, high: bool = False) -> np.ndarray:
        return self.frames[self.nearest(latents, high)]


def bank_frames(cfg: Any, checkpoint: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Exploration frames of ``cfg.env`` and their body states (None without proprioception): the checkpoint's
    own pretraining data when it is cached, else a small fresh set (``cfg.bank``); at most
    ``cfg.bank.max_frames``, taken evenly."""
    env, size, bank = cfg.env.name, cfg.env.image_size, cfg.bank
    cache = Path(cfg.cache_dir) / "trajectories"
    episodes, steps, seed = None, bank.steps, cfg.seed
    saved = Path(checkpoint) / ".hydra" / "config.yaml" if checkpoint else None
    if saved is not None and saved.is_file():
        pre = OmegaConf.load(saved)
        same = OmegaConf.select(pre, "env.name") == env and OmegaConf.select(pre, "env.image_size") == size
        if same and OmegaConf.select(pre, "data.source") == "sim":
            request = (pre.data.episodes, pre.data.episode_steps, pre.seed)
            pre_cache = Path(OmegaConf.select(pre, "cache_dir", default=cfg.cache_dir)) / "trajectories"
            if cache_path(env, *request, size, pre_cache).is_dir():
                episodes, steps, seed = request
                cache = pre_cache
    if episodes is None:
        episodes = min(bank.episodes, max(1, math.ceil(bank.max_frames / (bank.steps + 1))))
    data = collect_trajectories(env, episodes=episodes, steps=steps, seed=seed, image_size=size, cache_dir=cache)
    keep = np.unique(np.linspace(0, len(data) - 1, min(len(data), bank.max_frames)).round().astype(int))
    return np.asarray(data.frames[keep]), None if data.proprio is None else np.asarray(data.proprio[keep])


class RolloutInspector:
    """Logs each ``EpisodeResult`` as it arrives (see the module docstring for the tags)."""

    def __init__(self, log_dir: str | Path, cfg: Any, world_model: Callable[[], Any] | None = None,
                 checkpoint: str | None = None):
        self.logger = TensorBoardLogger(log_dir)
        self.cfg = cfg
        self._world_model = world_model  # a callable: the model is loaded only if something needs it
        self.checkpoint = checkpoint
        self._bank: FrameBank | None = None
        self._costs: list[np.ndarray] = []  # per episode (T, 2): predicted cost, realised distance

    @property
    def world_model(self) -> Any:
        return self._world_model() if self._world_model is not None else None

    def bank(self) -> FrameBank:
        if self._bank is None:
            self._bank = FrameBank(self.world_model, *bank_frames(self.cfg, self.checkpoint))
        return self._bank

    def log_episode(self, result: EpisodeResult) -> None:
        rec, i = result.record, result.index
        prefix = f"episode_{i:03d}"
        log = self.logger
        log.scalars({"success": float(rec.success), "final_distance": _finite(rec.final_distance),
                     "ms_per_step": _finite(rec.ms_per_step), "steps": rec.steps}, step=i, prefix="episodes/")
        for t, d in enumerate(rec.distances):
            if math.isfinite(d):
                log.scalar(f"{prefix}/distance", d, t)
        frames = np.stack(rec.frames) if rec.frames else None
        proprio = np.stack(rec.proprio) if rec.proprio else None
        goal_proprio = None if result.goal_proprio is None else result.goal_proprio[None]
        distance = np.asarray(rec.distances, dtype=np.float64)
        if self.world_model is not None and frames is not None and result.goal_image is not None:
            z = encode_frames(self.world_model, frames, proprio)
            goal = encode_frames(self.world_model, result.goal_image[None], goal_proprio)[0]
            distance = distances_to(self.world_model, z, goal)
            for t, d in enumerate(distance):
                log.scalar(f"{prefix}/latent_distance", float(d), t)
        diagnostics = result.diagnostics
        self._log_costs(prefix, diagnostics, distance, with_figure=i < self.cfg.tb.videos)
        if i >= self.cfg.tb.videos or frames is None:
            return
        panels, names = [frames], ["observation"]
        subgoals = [d["subgoal"] for d in diagnostics if d.get("subgoal") is not None]
        if subgoals and self.world_model is not None and len(subgoals) == len(diagnostics):
            shown = self.bank().show(np.stack(subgoals), high=True)  # (T, H, W, 3): the subgoal at each step
            panels.append(np.concatenate([shown, shown[-1:]]))  # the last frame keeps the last subgoal
            names.append("subgoal")
            distinct = [k for k in range(len(subgoals)) if k == 0 or not np.array_equal(subgoals[k], subgoals[k - 1])]
            log.image(f"{prefix}/subgoals", tile(shown[distinct[:16]], columns=8), 0)
        if result.goal_image is not None:
            panels.append(np.repeat(result.goal_image[None], len(frames), axis=0))
            names.append("goal")
        header = side_by_side(*(caption(name, panel.shape[2]) for panel, name in zip(panels, names)))
        video = np.stack([np.concatenate([header, side_by_side(*(p[t] for p in panels))])
                          for t in range(len(frames))])
        log.video(f"{prefix}/video", video, 0, fps=self.cfg.tb.fps)
        imagined = [d.get("imagined") for d in diagnostics]
        if imagined and all(x is not None for x in imagined) and self.world_model is not None:
            log.image(f"{prefix}/imagined", self._imagined_grid(imagined, frames), 0)

    def _imagined_grid(self, imagined: list[np.ndarray], frames: np.ndarray) -> np.ndarray:
        """Rows: per inspected step t, the imagined trajectory's nearest frames, then frames t+1..t+h."""
        count = min(self.cfg.tb.inspect_steps, len(imagined))
        steps = np.unique(np.linspace(0, len(imagined) - 1, count).round().astype(int))
        rows, columns = [], 1
        for t in steps:
            plan = np.asarray(imagined[t]).reshape(-1, self.bank().latents.shape[-1])  # (h, Dz)
            real = frames[np.minimum(np.arange(t + 1, t + 1 + len(plan)), len(frames) - 1)]
            rows += [*self.bank().show(plan), *real]
            columns = max(columns, len(plan))
        return tile(rows, columns=columns)

    def _log_costs(self, prefix: str, diagnostics: list[dict], distance: np.ndarray, with_figure: bool) -> None:
        predicted = [d.get("predicted_cost") for d in diagnostics]
        if not predicted or any(p is None for p in predicted):
            return
        predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
        horizons = [_lookahead(d) for d in diagnostics]
        ends = np.minimum(np.arange(len(predicted)) + np.asarray(horizons), len(distance) - 1)
        realised = distance[ends]
        self._costs.append(np.stack([predicted, realised], axis=1))
        for t, (p, r) in enumerate(zip(predicted, realised)):
            self.logger.scalars({"predicted": _finite(p), "realised": _finite(r)}, t, prefix=f"{prefix}/cost/")
        if with_figure:  # pyplot takes ~0.4 s to import: only runs that draw a figure pay for it
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            figure, axis = plt.subplots(figsize=(5, 3))
            axis.plot(predicted, label="predicted cost")
            axis.plot(realised, label="realised distance at plan end")
            axis.set_xlabel("env step")
            axis.legend()
            figure.tight_layout()
            self.logger.figure(f"{prefix}/cost", figure, 0)

    def cost_calibration(self) -> dict[str, Any] | None:
        """Over every step of every logged episode: the planner's predicted cost against the distance
        realised at its plan's end (medians, and how often the prediction was the lower); None when the
        agent exposes no ``predicted_cost``."""
        if not self._costs:
            return None
        pairs = np.concatenate(self._costs)
        pairs = pairs[np.isfinite(pairs).all(axis=1)]
        if not len(pairs):
            return None
        return {"steps": int(len(pairs)), "predicted_median": float(np.median(pairs[:, 0])),
                "realised_median": float(np.median(pairs[:, 1])),
                "optimistic_fraction": float(np.mean(pairs[:, 0] < pairs[:, 1]))}

    def log_final(self, summary: dict[str, Any]) -> None:
        """The run's hparams (env, agent, episodes, seed, agent params) with its final metrics (``plan/...``)."""
        hparams = {"env": summary["env"], "agent": summary["agent"], "episodes": len(summary["episodes"]),
                   "seed": summary["seed"], "max_steps": OmegaConf.select(self.cfg, "max_steps"),
                   "checkpoint": summary.get("checkpoint")}
        hparams.update({f"params.{k}": v for k, v in (summary.get("params") or {}).items()})
        metrics = {"plan/success_rate": summary["success_rate"],
                   "plan/mean_final_distance": _finite(summary["mean_final_distance"]),
                   "plan/ms_per_step_median": _finite(summary["ms_per_step"]["median"]),
                   "plan/ms_per_step_mean": _finite(summary["ms_per_step"]["mean"]),
                   "plan/failed_episodes": summary["failed_episodes"]["count"]}
        self.logger.hparams(hparams, metrics)

    def flush(self) -> None:
        self.logger.flush()

    def close(self) -> None:
        self.logger.close()


def _lookahead(diagnostics: dict[str, Any]) -> int:
    """Env steps an agent's predicted cost looks ahead: ``predicted_steps``, else the imagined length, else 1."""
    if diagnostics.get("predicted_steps") is not None:
        return max(1, int(diagnostics["predicted_steps"]))
    imagined = diagnostics.get("imagined")
    return len(np.asarray(imagined)) if imagined is not None else 1


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None
