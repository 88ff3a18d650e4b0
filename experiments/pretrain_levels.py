"""The latent stages of ``experiments.pretrain``: ``dynamics`` (level 1), ``hierarchy`` (level 2), ``metric``
(the learned temporal distance, ``worldmodel.models.metric``) and ``task`` (the learned task distance,
``worldmodel.training.task_metric_stage``); the env's ``planning_cost`` says which of the two the planners use.

Both read the frozen encoder (this run's ``encoder.safetensors``, or ``encoder=PATH``: a file or a run
directory), encode the env's exploration trajectories into compact latents (cached next to them), train,
measure open-loop error vs horizon (and the metric's correlation with the true distance) on held-out episodes,
and save ``world_model.pt`` in the run directory
(what ``WorldModel.load(run_dir)`` and ``experiments.plan`` read).

The metric is trained first, on the PCA latents. Both levels predict in the metric's embedding of them by
default (``latent.space=metric``, ``TemporalMetric.state``): there level 1 errs by half as much as doing
nothing at 8 steps, and level 2 by a quarter at 32 (``summary.json`` ``horizon``). ``latent.space=pca`` puts
level 1 in the PCA latent, with level 2 there too or, with ``latent.high_space=metric``, in the embedding.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("worldmodel.pretrain")
ENCODER_FILE = "encoder.safetensors"


def find_encoder(cfg: DictConfig, out: Path) -> Path:
    """The encoder the latent stages use: ``encoder=PATH`` if given, else this run's export."""
    if cfg.encoder is not None:
        path = Path(cfg.encoder)
        path = path / ENCODER_FILE if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"encoder={cfg.encoder}: no {ENCODER_FILE} at {path}; pass an exported "
                                    f"encoder or a pretrain run directory that holds one")
        return path
    path = out / ENCODER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"stages {list(cfg.stages)} need an encoder but {path} does not exist: add the "
                                "video stage (stages=[video,dynamics,hierarchy]) or pass encoder=PATH")
    return path


def _latest_model(run_dir: Path, stage: str, build, optional: bool = False):
    """A stage's trained model from its latest checkpoint in this run (when the stage is not re-run)."""
    from worldmodel.io.checkpoint import latest_checkpoint, load_checkpoint

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


def run_latent_stages(cfg: DictConfig, out: Path, summary: dict) -> None:
    """Train the requested latent stages, evaluate them, save the WorldModel; fills ``summary``."""
    import numpy as np
    import torch

    import envs
    from envs.exploration import collect_trajectories
    from worldmodel.data.latents import LatentTrajectories, prepare_latents
    from worldmodel.evaluation.horizon import format_table, horizon_table, plot_horizon
    from worldmodel.evaluation.metric_eval import metric_of_steps
    from worldmodel.io.checkpoint import state_dict_hash
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

    started = time.perf_counter()
    encoder_path = find_encoder(cfg, out)
    encoder, encoder_record = load_exported_encoder(encoder_path)
    data_cfg = cfg.data
    trajectories = collect_trajectories(cfg.env.name, episodes=data_cfg.episodes, steps=data_cfg.episode_steps,
                                        seed=cfg.seed, image_size=cfg.env.image_size,
                                        cache_dir=Path(cfg.cache_dir) / "trajectories",
                                        workers=data_cfg.render_workers)
    latent = cfg.latent
    space, high_space = state_spaces(latent.space, latent.high_space, cfg.env.planning_cost)
    proprio_dim = 0 if trajectories.proprio is None else int(trajectories.proprio.shape[1])
    settings = LatentSettings(**OmegaConf.to_container(latent, resolve=True))
    head = LatentHead(encoder, settings.head_config(space, high_space, proprio_dim))
    data, latent_record = prepare_latents(head, trajectories, holdout_fraction=latent.holdout_fraction)
    latent_record["encoder"] = str(encoder_path)
    summary["latents"] = latent_record
    log.info("latents: %s", latent_record)
    record = {"env": cfg.env.name, "encoder_hash": latent_record["encoder_hash"],
              "dataset_hash": latent_record["dataset_hash"], "latent": asdict(head.cfg)}
    longest = int(max(trajectories.episode_lengths[data.train_episodes]))

    env = envs.make(cfg.env.name, image_size=cfg.env.image_size)
    # The two learned costs, both read from the PCA latent: optional, unless a level predicts in their embedding.
    metric = task_metric = None
    if "metric" in cfg.stages:
        t0 = time.perf_counter()
        metric, metric_summary = train_metric_stage(data, MetricStageConfig(**OmegaConf.to_container(cfg.metric)),
                                                    run_dir=out, seed=cfg.seed, resume=cfg.resume, record=record)
        summary["metric"] = {**metric_summary, "seconds": time.perf_counter() - t0}
    else:
        metric = _latest_model(out, "metric", lambda c: TemporalMetric(MetricConfig(
            data.z.shape[1], dim=c["dim"], hidden=c["hidden"], layers=c["layers"])), optional=True)
    skipped: dict[str, str] = {}  # evaluation or stage -> why the env does not allow it (envs.contract)
    task_distance = getattr(env.unwrapped, "task_distance", None)
    no_task = None if callable(task_distance) and trajectories.states.shape[1] else (
        f"env {cfg.env.name} has no task_distance(states, goal_state) or no info['state'] (envs.contract)")
    if "task" in cfg.stages and no_task is not None:  # planning_cost=task on such an env failed at the start
        skipped["task"] = no_task
    if "task" in cfg.stages and no_task is None:
        t0 = time.perf_counter()
        task_metric, task_summary = train_task_metric_stage(
            data, trajectories.states, task_distance,
            TaskMetricStageConfig(**OmegaConf.to_container(cfg.task)), run_dir=out, seed=cfg.seed,
            resume=cfg.resume, record=record)
        summary["task"] = {**task_summary, "seconds": time.perf_counter() - t0}
    else:
        task_metric = _latest_model(out, "task_metric", lambda c: TemporalMetric(MetricConfig(
            data.z.shape[1], dim=c["dim"], hidden=c["hidden"], layers=c["layers"])), optional=True)
    if cfg.env.planning_cost == "task" and task_metric is None:
        raise FileNotFoundError(f"env {cfg.env.name} plans with the task cost (env.planning_cost=task) but no task "
                                "cost was trained; add task to stages")
    embeddings = {"metric": metric, "task": task_metric}
    to_space = partial(embed_state, metric=metric, task_metric=task_metric, visual_dim=head.cfg.dim)
    spaces = {"pca": data}
    records = {"pca": {**record, "state_space": "pca"}}  # a level in an embedding also depends on its model
    wanted = {space, high_space} | ({"task"} if task_metric is not None else set())
    for name in sorted(wanted - {"pca"}):  # fit the embedding's scale, re-express the latents in it
        model = embeddings[name]
        if model is None:
            stage = "metric" if name == "metric" else "task"
            raise FileNotFoundError(f"the levels predict in the {name} embedding (latent.space or latent.high_space "
                                    f"= {name}), but no {stage} stage ran and {out / 'checkpoints'} holds none; add "
                                    f"{stage} to stages or use latent.space=pca latent.high_space=pca")
        model.fit_state_scale(data.z[train_frames(data)])
        with torch.no_grad():
            embedded = to_space(data.z, name)
        spaces[name] = LatentTrajectories.build(embedded, data.actions, data.episode_starts, latent.holdout_fraction)
        records[name] = {**record, "state_space": name, "state_hash": state_dict_hash(model)}
    states, high_states = spaces[space], spaces[high_space]
    shaping = None
    shaping_of = getattr(env.unwrapped, "shaping", None)
    target = np.asarray(shaping_of(np.asarray(trajectories.states)), np.float32) if callable(shaping_of) else None
    if "task" in cfg.stages and task_metric is not None and target is not None and np.any(target > 0):
        t0 = time.perf_counter()
        shaping, shaping_summary = train_shaping_stage(
            spaces["task"], target, TaskMetricStageConfig(**OmegaConf.to_container(cfg.task)), run_dir=out,
            seed=cfg.seed, resume=cfg.resume, record=records["task"])
        summary["shaping"] = {**shaping_summary, "seconds": time.perf_counter() - t0}
    elif task_metric is not None:
        shaping = _latest_model(out, "shaping", lambda c: Shaping(ShapingConfig(
            spaces["task"].z.shape[1], hidden=c["shaping_hidden"])), optional=True)

    dyn_cfg = DynamicsStageConfig(**OmegaConf.to_container(cfg.dynamics))
    dyn_cfg.rollout = min(dyn_cfg.rollout, longest - 1)
    high_cfg = HighLevelStageConfig(**OmegaConf.to_container(cfg.hierarchy))
    high_cfg.jumps = max(1, min(high_cfg.jumps, (longest - 1) // high_cfg.k))
    if "dynamics" in cfg.stages:
        t0 = time.perf_counter()
        dynamics, dyn_summary = train_dynamics_stage(states, dyn_cfg, run_dir=out, seed=cfg.seed,
                                                     resume=cfg.resume, record=records[space])
        summary["dynamics"] = {**dyn_summary, "seconds": time.perf_counter() - t0}
    else:
        dynamics = _latest_model(out, "dynamics", lambda c: LatentDynamics(DynamicsConfig(
            states.z.shape[1], data.actions.shape[1], hidden=c["hidden"], layers=c["layers"], history=c["history"])))
    if "hierarchy" in cfg.stages:
        t0 = time.perf_counter()
        high, high_summary = train_high_level_stage(high_states, high_cfg, run_dir=out, seed=cfg.seed,
                                                    resume=cfg.resume, record=records[high_space])
        summary["hierarchy"] = {**high_summary, "seconds": time.perf_counter() - t0}
    else:
        high = _latest_model(out, "hierarchy", lambda c: HighLevel(HighLevelConfig(
            high_states.z.shape[1], data.actions.shape[1], k=c["k"], code_dim=c["code_dim"], hidden=c["hidden"],
            layers=c["layers"]), c["action_space"]))

    multiples = min(4, (int(max(trajectories.episode_lengths[data.holdout_episodes])) - 1) // high.cfg.k)
    if multiples >= 1:
        # in level 2's space: level 1's rollouts are mapped there when the levels' spaces differ
        to_high = None if high_states is states else partial(to_space, space=high_space)
        table = horizon_table(states, dynamics, high, multiples=multiples, high_data=high_states, to_high=to_high)
        log.info("open-loop latent error vs horizon (held-out episodes):\n%s", format_table(table))
        with TensorBoardLogger(stage_log_dir(out, "horizon")) as logger:
            logger.figure("horizon/error_vs_horizon", plot_horizon(table), 0)
            logger.text("horizon/table", "    " + format_table(table).replace("\n", "\n    "), 0)
    else:
        table = {"skipped": f"held-out episodes are shorter than k + 1 = {high.cfg.k + 1} frames"}
    summary["horizon"] = table

    space = env.action_space
    if metric is not None:
        summary["metric_steps"] = metric_of_steps(metric.distance, data)
        log.info("metric distance of held-out frames h steps apart (median / upper quartile): %s",
                 ", ".join(f"{h}: {v['median']:.2f} / {v['p75']:.2f}" for h, v in summary["metric_steps"].items()))
    world_model = WorldModel(encoder.cfg, head.cfg, dynamics.cfg, high.cfg, env_name=cfg.env.name,
                             env_id=envs.ENV_IDS[cfg.env.name], image_size=cfg.env.image_size,
                             action_low=space.low, action_high=space.high, action_space=high.action_space_name,
                             metric_cfg=metric.cfg if metric is not None else None,
                             task_metric_cfg=task_metric.cfg if task_metric is not None else None,
                             shaping_cfg=shaping.cfg if shaping is not None else None,
                             planning_cost=cfg.env.planning_cost)
    world_model.head.load_state_dict(head.state_dict())
    world_model.dynamics.load_state_dict(dynamics.state_dict())
    world_model.high.load_state_dict(high.state_dict())
    if task_metric is not None:
        world_model.task_metric.load_state_dict(task_metric.state_dict())
    if shaping is not None:
        world_model.shaping.load_state_dict(shaping.state_dict())
    if metric is not None:
        world_model.metric.load_state_dict(metric.state_dict())
    if no_task is None:
        summary["cost_correlation"] = evaluate_costs(world_model, states, trajectories, env.unwrapped, seed=cfg.seed)
    else:
        skipped["cost_correlation"] = no_task
    no_positions = position_evaluations_unavailable(env.unwrapped, metric is not None)
    if no_positions is None:
        summary["cost_basin"], summary["cost_profile"] = evaluate_basin(world_model, env.unwrapped, seed=cfg.seed)
        summary["position_resolution"] = evaluate_resolution(world_model, env.unwrapped, seed=cfg.seed)
        summary["cost_smoothness"] = evaluate_smoothness(world_model, env.unwrapped, seed=cfg.seed)
    else:
        skipped |= dict.fromkeys(("cost_basin", "position_resolution", "cost_smoothness"), no_positions)
    for name, reason in skipped.items():
        log.info("skipped %s: %s", name, reason)
    summary["skipped"] = skipped
    path = world_model.save(out / WORLD_MODEL_FILE)
    summary["world_model"] = {"path": str(path), **world_model.describe(), "encoder_record": encoder_record,
                              "latent_stages_seconds": time.perf_counter() - started}
    write_summary(out, summary)


def position_evaluations_unavailable(env, has_metric: bool) -> str | None:
    """Why the basin, resolution and smoothness evaluations cannot run on ``env`` (unwrapped), or None."""
    if not has_metric:
        return "no metric stage was trained (add metric to stages)"
    missing = [name for name in ("render_at", "is_free") if not callable(getattr(env, name, None))]
    if missing:
        return f"the env has no {' or '.join(missing)}(position) (envs.contract)"
    return None


def evaluate_costs(world_model, states, trajectories, env, seed: int) -> dict:
    """Spearman / Pearson of each planning cost the world model has (``latent``, ``metric``, ``task``) between
    level-1 states of random pairs of held-out frames, against their task distance (and geodesic distance, for
    envs with ``is_free``); logged and returned."""
    import numpy as np

    from worldmodel.evaluation.metric_eval import cost_table, format_cost_table

    starts = states.episode_starts
    frames = np.concatenate([np.arange(starts[e], starts[e + 1]) for e in states.holdout_episodes])
    readable = {"metric": ("pca", "metric"), "task": ("pca", "task")}  # the state spaces each cost reads
    costs = ["latent"] + [name for name, model in (("metric", world_model.metric), ("task", world_model.task_metric))
                          if model is not None and world_model.state_space in readable[name]]
    table = cost_table(states.z[frames], np.asarray(trajectories.states[frames]),
                       {name: partial(world_model.distance, cost=name) for name in costs},
                       task_distance=env.task_distance, is_free=positions_free(env, trajectories.states.shape[1]),
                       seed=seed)
    log.info("planning costs vs true distances (held-out pairs):\n%s", format_cost_table(table))
    return table


def positions_free(env, state_dim: int):
    """``env.is_free`` when the env has it and its task states start with a 2-D position, else None."""
    is_free = getattr(env, "is_free", None)
    return is_free if callable(is_free) and state_dim >= 2 else None


def evaluate_basin(world_model, env, seed: int, cell: float = 0.1, goals: int = 32,
                   reaches: tuple[float, ...] = (0.5, 1.0, 2.0)) -> tuple[dict, dict]:
    """``worldmodel.evaluation.basin`` for the planning costs (``latent``, ``metric``) on a grid of rendered
    ball positions: per reach in metres, the fraction of (start, goal) pairs whose greedy descent ends at the goal;
    and each cost's profile (``cost_profile``) at 0.1, 0.5, 1 and 2 m, with the PCA latent's (``pca``) beside
    them (the same as ``latent`` when the levels work in it).

    For scale: 10 full-force steps from rest move the ball 0.6-0.7 m, 32 steps (level 2's look-ahead) over
    1.75 m (``tests/test_envs.py``).
    """
    import numpy as np
    import torch

    from worldmodel.evaluation.basin import cost_profile, descent_success
    from worldmodel.evaluation.metric_eval import distance_field, free_grid

    axis, free = free_grid(env.is_free, cell=cell)
    cells = np.argwhere(free)
    pca = encode_positions(world_model, env, axis[cells])
    z = world_model.latent_state(pca)  # the levels' state, from the one encoding
    path = np.stack([distance_field(free, tuple(c), cell)[cells[:, 0], cells[:, 1]] for c in cells])
    picked = np.random.default_rng(seed).choice(len(cells), min(goals, len(cells)), replace=False)
    with torch.no_grad():
        costs = {name: np.stack([world_model.distance(z, z[g], cost=name).float().numpy() for g in picked])
                 for name in ("latent", "metric")}
        pca_cost = np.stack([(pca - pca[g]).abs().mean(-1).numpy() for g in picked])
    result = {f"{r:g} m": {name: descent_success(c, path, picked, r, tolerance=1.5 * cell) for name, c in costs.items()}
              for r in reaches}
    profile = {name: cost_profile(c, path[picked], (0.1, 0.5, 1.0, 2.0), width=cell / 2)
               for name, c in {**costs, "pca": pca_cost}.items()}
    log.info("greedy descent on the planning cost reaches the goal (perfect model), by reach: %s",
             "; ".join(f"{r}: " + ", ".join(f"{n} {v:.2f}" for n, v in row.items()) for r, row in result.items()))
    log.info("each cost at a path distance over its median (0.1 / 0.5 / 1 / 2 m): %s",
             "; ".join(f"{n} " + " / ".join("-" if v is None else f"{v:.2f}" for v in row.values())
                       for n, row in profile.items()))
    return result, profile


def encode_positions(world_model, env, positions, batch_size: int = 256):
    """The PCA latents ``(N, Dz)`` of frames rendered with the ball at rest at each of ``positions (N, 2)``."""
    import numpy as np
    import torch

    frames = np.stack([env.render_at(p) for p in positions])
    return torch.cat([world_model.head(frames[i:i + batch_size]) for i in range(0, len(frames), batch_size)])


def evaluate_resolution(world_model, env, seed: int, cell: float = 0.04) -> dict:
    """``worldmodel.evaluation.resolution`` on frames rendered on a ``cell`` grid of free ball positions, a fifth
    held out as queries: the median / 90th-percentile nearest-neighbour position error of the PCA latent
    (``pca``) and of the level-1 state (``state``: the metric's embedding of it when ``latent.space=metric``)."""
    import numpy as np

    from worldmodel.evaluation.metric_eval import free_grid
    from worldmodel.evaluation.resolution import position_resolution

    axis, free = free_grid(env.is_free, cell=cell)
    positions = axis[np.argwhere(free)]
    pca = encode_positions(world_model, env, positions)
    states = {"pca": pca, "state": world_model.latent_state(pca)}
    result = {name: position_resolution(z.numpy(), positions, queries=len(positions) // 5, seed=seed)
              for name, z in states.items()}
    log.info("nearest-neighbour position error of the states, median / p90 (m): %s",
             "; ".join(f"{n} {v['median']:.3f} / {v['p90']:.3f}" for n, v in result.items()))
    return result


def evaluate_smoothness(world_model, env, seed: int, pairs: int = 1500, move: float = 0.01) -> dict:
    """``worldmodel.evaluation.smoothness`` for the planning cost: its reading between frames rendered with the
    ball at ``pairs`` free positions and ``move`` metres away from each."""
    from worldmodel.evaluation.smoothness import jump_summary, nearby_pairs

    starts, ends = nearby_pairs(lambda p: env.is_free(p, margin=0.0), pairs, move, seed=seed)
    states = [world_model.latent_state(encode_positions(world_model, env, p)) for p in (starts, ends)]
    result = jump_summary(world_model.distance(*states).numpy())
    log.info("planning cost between frames %.0f cm apart: median %.2f, p99 %.2f, max %.1f; over 1: %.1f%%, "
             "over 3: %.2f%%", 100 * move, result["median"], result["p99"], result["max"], 100 * result["over_1"],
             100 * result["over_3"])
    return result
