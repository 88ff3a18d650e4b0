"""The latent stages of a pretrain run: ``metric`` (the learned temporal distance, ``worldmodel.models.metric``),
``task`` (the learned task distance and its shaping, ``worldmodel.training.task_metric_stage``), ``dynamics``
(level 1) and ``hierarchy`` (level 2), then their evaluations and the saved ``world_model.pt``.

They read the frozen encoder and the env's exploration trajectories, encoded into compact latents. The two costs
are trained first, on the PCA latents; the levels predict in the space ``latent.space`` / ``latent.high_space``
names (by default the embedding of the env's planning cost). A stage not in ``stages`` is read from its latest
checkpoint in the run directory. Then: open-loop error vs horizon on held-out episodes, the costs against the
env's true distances (``worldmodel.evaluation.ground_truth``), how much of the true state the visual latent carries
(``worldmodel.evaluation.state_readout``) and ``WorldModel.save``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worldmodel.data.latents import LatentTrajectories, prepare_latents
from worldmodel.data.trajectories import TrajectoryDataset
from worldmodel.evaluation.ground_truth import (
    evaluate_basin,
    evaluate_costs,
    evaluate_resolution,
    evaluate_smoothness,
    position_evaluations_unavailable,
)
from worldmodel.evaluation.horizon import format_table, horizon_table, plot_horizon
from worldmodel.evaluation.metric_eval import metric_of_steps
from worldmodel.evaluation.state_readout import evaluate_state_readout
from worldmodel.io.checkpoint import latest_checkpoint, load_checkpoint, state_dict_hash
from worldmodel.io.summary import write_summary
from worldmodel.io.tb import TensorBoardLogger, stage_log_dir
from worldmodel.models.dynamics import DynamicsConfig, LatentDynamics
from worldmodel.models.encoder import load_exported_encoder
from worldmodel.models.high_level import HighLevel, HighLevelConfig
from worldmodel.models.latent_head import LatentHead, LatentSettings
from worldmodel.models.metric import MetricConfig, TemporalMetric
from worldmodel.models.shaping import Shaping, ShapingConfig
from worldmodel.state_spaces import embed_state, state_spaces
from worldmodel.training.dynamics_stage import DynamicsStageConfig, train_dynamics_stage
from worldmodel.training.high_level_stage import HighLevelStageConfig, train_high_level_stage
from worldmodel.training.metric_stage import MetricStageConfig, train_frames, train_metric_stage
from worldmodel.training.task_metric_stage import (
    TaskMetricStageConfig,
    train_shaping_stage,
    train_task_metric_stage,
)
from worldmodel.world_model import WORLD_MODEL_FILE, WorldModel

log = logging.getLogger("worldmodel.pretrain")
ENCODER_FILE = "encoder.safetensors"
NO_TRUE_STATES = "the trajectories carry no true states (info['state']; a recording may lack them)"


@dataclass
class LevelsConfig:
    """What the latent stages train and read: the pretrain command's ``stages``, ``latent``, ``metric``, ``task``,
    ``dynamics``, ``hierarchy``, ``seed`` and ``resume``, and the env's name, gym id, image size and planning cost."""

    env_name: str
    env_id: str
    image_size: int
    planning_cost: str
    stages: list[str]
    latent: LatentSettings
    metric: MetricStageConfig
    task: TaskMetricStageConfig
    dynamics: DynamicsStageConfig
    hierarchy: HighLevelStageConfig
    seed: int
    resume: bool


def find_encoder(encoder: str | None, out: Path, stages: list[str]) -> Path:
    """The encoder the latent stages use: ``encoder`` (a file or a run directory) if given, else this run's export."""
    if encoder is not None:
        path = Path(encoder)
        path = path / ENCODER_FILE if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"encoder={encoder}: no {ENCODER_FILE} at {path}; pass an exported "
                                    f"encoder or a pretrain run directory that holds one")
        return path
    path = out / ENCODER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"stages {list(stages)} need an encoder but {path} does not exist: add the "
                                "video stage (stages=[video,dynamics,hierarchy]) or pass encoder=PATH")
    return path


def latest_model(run_dir: Path, stage: str, build: Callable[[dict], torch.nn.Module],
                 optional: bool = False) -> Any:
    """A stage's trained model from its latest checkpoint in this run (when the stage is not re-run); None when
    there is none and ``optional``."""
    last = latest_checkpoint(run_dir / "checkpoints" / stage)
    if last is None and optional:
        return None
    if last is None:
        raise FileNotFoundError(f"stage {stage!r} is not in stages and {run_dir / 'checkpoints' / stage} holds no "
                                f"checkpoint; add it to stages (stages=[{stage},...])")
    state = load_checkpoint(last)
    model = build(state["record"]["stage_config"])
    model.load_state_dict(state["model"])
    return model.eval()


def _timed(summary: dict, key: str, train: Callable[[], tuple[Any, dict]]) -> Any:
    """Run one stage; its summary, with the seconds it took, goes to ``summary[key]``."""
    t0 = time.perf_counter()
    model, stage_summary = train()
    summary[key] = {**stage_summary, "seconds": time.perf_counter() - t0}
    return model


def _metric_builder(dim: int) -> Callable[[dict], TemporalMetric]:
    return lambda c: TemporalMetric(MetricConfig(dim, dim=c["dim"], hidden=c["hidden"], layers=c["layers"]))


def train_levels(config: LevelsConfig, encoder_path: Path, trajectories: TrajectoryDataset, env: Any, out: Path,
                 summary: dict, started: float) -> WorldModel:
    """Train the requested latent stages on ``trajectories`` (the exploration data of ``env``, a gym env), evaluate
    them, save the WorldModel in ``out`` and write ``summary`` (filled here) there; ``started`` is the
    ``time.perf_counter()`` the summary's ``latent_stages_seconds`` counts from."""
    encoder, encoder_record = load_exported_encoder(encoder_path)
    latent = config.latent
    space, high_space = state_spaces(latent.space, latent.high_space, config.planning_cost)
    proprio_dim = 0 if trajectories.proprio is None else int(trajectories.proprio.shape[1])
    head = LatentHead(encoder, latent.head_config(space, high_space, proprio_dim))
    data, latent_record = prepare_latents(head, trajectories, holdout_fraction=latent.holdout_fraction)
    latent_record["encoder"] = str(encoder_path)
    summary["latents"] = latent_record
    log.info("latents: %s", latent_record)
    record = {"env": config.env_name, "encoder_hash": latent_record["encoder_hash"],
              "dataset_hash": latent_record["dataset_hash"], "latent": asdict(head.cfg)}
    run = {"run_dir": out, "seed": config.seed, "resume": config.resume}

    # The two learned costs, both read from the PCA latent: optional, unless a level predicts in their embedding.
    if "metric" in config.stages:
        metric = _timed(summary, "metric", lambda: train_metric_stage(data, replace(config.metric), record=record,
                                                                      **run))
    else:
        metric = latest_model(out, "metric", _metric_builder(data.z.shape[1]), optional=True)
    skipped: dict[str, str] = {}  # evaluation or stage -> why the env does not allow it (envs.contract)
    task_distance = getattr(env.unwrapped, "task_distance", None)
    no_task = None
    if not callable(task_distance):
        no_task = f"env {config.env_name} has no task_distance(states, goal_state) (envs.contract)"
    elif not trajectories.states.shape[1]:
        no_task = NO_TRUE_STATES
    if "task" in config.stages and no_task is not None:  # planning_cost=task on such an env failed at the start
        skipped["task"] = no_task
    if "task" in config.stages and no_task is None:
        task_metric = _timed(summary, "task", lambda: train_task_metric_stage(
            data, trajectories.states, task_distance, replace(config.task), record=record, **run))
    else:
        task_metric = latest_model(out, "task_metric", _metric_builder(data.z.shape[1]), optional=True)
    if config.planning_cost == "task" and task_metric is None:
        raise FileNotFoundError(f"env {config.env_name} plans with the task cost (env.planning_cost=task) but no "
                                "task cost was trained; add task to stages")
    to_space = partial(embed_state, metric=metric, task_metric=task_metric, visual_dim=head.cfg.dim)
    spaces, records = _state_spaces(data, {"metric": metric, "task": task_metric}, {space, high_space}, to_space,
                                    record, out, latent.holdout_fraction)
    states, high_states = spaces[space], spaces[high_space]
    shaping = _shaping(config, env, trajectories, task_metric, spaces, records, run, summary)

    dyn_cfg = replace(config.dynamics)
    longest = int(max(trajectories.episode_lengths[data.train_episodes]))
    dyn_cfg.rollout = min(dyn_cfg.rollout, longest - 1)
    high_cfg = replace(config.hierarchy)
    high_cfg.jumps = max(1, min(high_cfg.jumps, (longest - 1) // high_cfg.k))
    if "dynamics" in config.stages:
        dynamics = _timed(summary, "dynamics", lambda: train_dynamics_stage(states, dyn_cfg, record=records[space],
                                                                           **run))
    else:
        dynamics = latest_model(out, "dynamics", lambda c: LatentDynamics(DynamicsConfig(
            states.z.shape[1], data.actions.shape[1], hidden=c["hidden"], layers=c["layers"], history=c["history"])))
    if "hierarchy" in config.stages:
        high = _timed(summary, "hierarchy", lambda: train_high_level_stage(
            high_states, high_cfg, record=records[high_space], **run))
    else:
        high = latest_model(out, "hierarchy", lambda c: HighLevel(HighLevelConfig(
            high_states.z.shape[1], data.actions.shape[1], k=c["k"], code_dim=c["code_dim"], hidden=c["hidden"],
            layers=c["layers"]), c["action_space"]))

    multiples = min(4, (int(max(trajectories.episode_lengths[data.holdout_episodes])) - 1) // high.cfg.k)
    # in level 2's space: level 1's rollouts are mapped there when the levels' spaces differ
    to_high = None if high_states is states else partial(to_space, space=high_space)
    summary["horizon"] = _horizon(states, high_states, dynamics, high, multiples, to_high, out)
    if metric is not None:
        summary["metric_steps"] = metric_of_steps(metric.distance, data)
        log.info("metric distance of held-out frames h steps apart (median / upper quartile): %s",
                 ", ".join(f"{h}: {v['median']:.2f} / {v['p75']:.2f}" for h, v in summary["metric_steps"].items()))
    world_model = _assemble(config, env, head, dynamics, high, metric, task_metric, shaping)
    if no_task is None:
        summary["cost_correlation"] = evaluate_costs(world_model, states, trajectories, env.unwrapped,
                                                     seed=config.seed)
    else:
        skipped["cost_correlation"] = no_task
    if trajectories.states.shape[1]:
        summary["state_readout"] = evaluate_state_readout(data, np.asarray(trajectories.states), head.cfg.dim)
    else:
        skipped["state_readout"] = NO_TRUE_STATES
    no_positions = position_evaluations_unavailable(env.unwrapped, metric is not None, world_model.proprio_dim)
    if no_positions is None:
        summary["cost_basin"], summary["cost_profile"] = evaluate_basin(world_model, env.unwrapped, seed=config.seed)
        summary["position_resolution"] = evaluate_resolution(world_model, env.unwrapped, seed=config.seed)
        summary["cost_smoothness"] = evaluate_smoothness(world_model, env.unwrapped, seed=config.seed)
    else:
        skipped |= dict.fromkeys(("cost_basin", "position_resolution", "cost_smoothness"), no_positions)
    for name, reason in skipped.items():
        log.info("skipped %s: %s", name, reason)
    summary["skipped"] = skipped
    path = world_model.save(out / WORLD_MODEL_FILE)
    summary["world_model"] = {"path": str(path), **world_model.describe(), "encoder_record": encoder_record,
                              "latent_stages_seconds": time.perf_counter() - started}
    write_summary(out, summary)
    return world_model


def _state_spaces(data: LatentTrajectories, embeddings: dict[str, TemporalMetric | None], wanted: set[str],
                  to_space: Callable, record: dict, out: Path,
                  holdout_fraction: float) -> tuple[dict[str, LatentTrajectories], dict]:
    """The latents in each state space the levels (and the shaping, in ``task``) use, and each space's checkpoint
    record: an embedding's scale is fitted on the training frames first."""
    spaces = {"pca": data}
    records = {"pca": {**record, "state_space": "pca"}}  # a level in an embedding also depends on its model
    wanted = wanted | ({"task"} if embeddings["task"] is not None else set())
    for name in sorted(wanted - {"pca"}):
        model = embeddings[name]
        if model is None:
            stage = "metric" if name == "metric" else "task"
            raise FileNotFoundError(f"the levels predict in the {name} embedding (latent.space or latent.high_space "
                                    f"= {name}), but no {stage} stage ran and {out / 'checkpoints'} holds none; add "
                                    f"{stage} to stages or use latent.space=pca latent.high_space=pca")
        model.fit_state_scale(data.z[train_frames(data)])
        with torch.no_grad():
            embedded = to_space(data.z, name)
        spaces[name] = LatentTrajectories.build(embedded, data.actions, data.episode_starts, holdout_fraction)
        records[name] = {**record, "state_space": name, "state_hash": state_dict_hash(model)}
    return spaces, records


def _shaping(config: LevelsConfig, env: Any, trajectories: TrajectoryDataset, task_metric: TemporalMetric | None,
             spaces: dict[str, LatentTrajectories], records: dict, run: dict, summary: dict) -> Shaping | None:
    """The task cost's shaping term, trained when the env has a ``shaping`` that is ever positive, else the latest
    checkpoint's (or None)."""
    shaping_of = getattr(env.unwrapped, "shaping", None)
    known = callable(shaping_of) and trajectories.states.shape[1] > 0  # recorded data may lack the true states
    target = np.asarray(shaping_of(np.asarray(trajectories.states)), np.float32) if known else None
    if "task" in config.stages and task_metric is not None and target is not None and np.any(target > 0):
        return _timed(summary, "shaping", lambda: train_shaping_stage(
            spaces["task"], target, replace(config.task), record=records["task"], **run))
    if task_metric is not None:
        return latest_model(run["run_dir"], "shaping", lambda c: Shaping(ShapingConfig(
            spaces["task"].z.shape[1], hidden=c["shaping_hidden"])), optional=True)
    return None


def _horizon(states: LatentTrajectories, high_states: LatentTrajectories, dynamics: LatentDynamics, high: HighLevel,
             multiples: int, to_high: Callable | None, out: Path) -> dict:
    """Open-loop latent error vs horizon on the held-out episodes, logged and drawn in TensorBoard (``horizon``)."""
    if multiples < 1:
        return {"skipped": f"held-out episodes are shorter than k + 1 = {high.cfg.k + 1} frames"}
    table = horizon_table(states, dynamics, high, multiples=multiples, high_data=high_states, to_high=to_high)
    log.info("open-loop latent error vs horizon (held-out episodes):\n%s", format_table(table))
    with TensorBoardLogger(stage_log_dir(out, "horizon")) as logger:
        logger.figure("horizon/error_vs_horizon", plot_horizon(table), 0)
        logger.text("horizon/table", "    " + format_table(table).replace("\n", "\n    "), 0)
    return table


def _assemble(config: LevelsConfig, env: Any, head: LatentHead, dynamics: LatentDynamics, high: HighLevel,
              metric: TemporalMetric | None, task_metric: TemporalMetric | None,
              shaping: Shaping | None) -> WorldModel:
    """The WorldModel of the trained parts."""
    action_space = env.action_space
    world_model = WorldModel(head.encoder.cfg, head.cfg, dynamics.cfg, high.cfg, env_name=config.env_name,
                             env_id=config.env_id, image_size=config.image_size,
                             action_low=action_space.low, action_high=action_space.high,
                             action_space=high.action_space_name,
                             metric_cfg=metric.cfg if metric is not None else None,
                             task_metric_cfg=task_metric.cfg if task_metric is not None else None,
                             shaping_cfg=shaping.cfg if shaping is not None else None,
                             planning_cost=config.planning_cost)
    world_model.head.load_state_dict(head.state_dict())
    world_model.dynamics.load_state_dict(dynamics.state_dict())
    world_model.high.load_state_dict(high.state_dict())
    for part, model in (("task_metric", task_metric), ("shaping", shaping), ("metric", metric)):
        if model is not None:
            getattr(world_model, part).load_state_dict(model.state_dict())
    return world_model
