"""The task cost: learns which part of the state counts, from the env's task distance on training pairs."""

from __future__ import annotations

import numpy as np
import torch

from worldmodel.data.latents import LatentTrajectories
from worldmodel.evaluation.metric_eval import cost_table
from worldmodel.training.task_metric_stage import TaskMetricStageConfig, near_pairs, train_task_metric_stage

torch.set_num_threads(1)


def object_and_distractor(episodes: int = 40, length: int = 30, seed: int = 0):
    """Latents that mix an object's position (what the task measures) with a larger distractor (an arm that
    moves a lot); the object moves in steps, the distractor every frame."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(4, 12)).astype(np.float32)
    states, starts = [], [0]
    for _ in range(episodes):
        obj, arm = rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 2)
        for _ in range(length):
            arm = np.clip(arm + rng.normal(0, 0.15, 2), -1, 1)
            obj = np.clip(obj + (rng.uniform() < 0.3) * rng.normal(0, 0.08, 2), -1, 1)
            states.append(np.concatenate([obj, 3.0 * arm]))
        starts.append(starts[-1] + length)
    states = np.stack(states).astype(np.float32)
    z = torch.as_tensor(np.tanh(states @ mixing) + 0.01 * rng.normal(size=(len(states), 12)), dtype=torch.float32)
    data = LatentTrajectories.build(z, np.zeros((len(z), 2), np.float32), np.array(starts), holdout_fraction=0.2)
    return data, states


def task_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a[..., :2] - b[..., :2], axis=-1)


def test_near_pairs_stay_inside_one_episode_and_within_the_step_limit():
    data, _ = object_and_distractor(episodes=4, length=10)
    pairs = near_pairs(data, near_steps=3).numpy()
    gaps = pairs[:, 1] - pairs[:, 0]
    assert set(gaps.tolist()) == {1, 2, 3}
    episode = np.searchsorted(data.episode_starts, pairs, side="right") - 1
    assert np.all(episode[:, 0] == episode[:, 1]) and set(episode[:, 0]) <= set(data.train_episodes.tolist())


def test_task_cost_ranks_held_out_pairs_by_the_task_distance_where_the_latent_distance_cannot(tmp_path):
    data, states = object_and_distractor()
    cfg = TaskMetricStageConfig(steps=400, batch_size=256, warmup=20, log_every=1000, checkpoint_every=1000,
                                hidden=64, dim=8, near_steps=4)
    model, summary = train_task_metric_stage(data, states, task_distance, cfg, run_dir=tmp_path, seed=0,
                                             resume=False, record={})
    assert summary["final_loss"] < 0.5 * summary["initial_loss"]
    held = np.concatenate([np.arange(data.episode_starts[e], data.episode_starts[e + 1])
                           for e in data.holdout_episodes])
    table = cost_table(data.z[held], states[held], {"task": model.distance,
                                                     "latent": lambda a, b: (a - b).abs().mean(-1)},
                       task_distance=task_distance, seed=0)
    assert table["task"]["task"]["spearman"] >= 0.9
    assert table["task"]["latent"]["spearman"] < 0.6


def test_shaping_head_learns_a_cost_of_the_state_alone(tmp_path):
    from worldmodel.training.task_metric_stage import train_shaping_stage

    data, states = object_and_distractor(episodes=20)
    reach = np.maximum(np.linalg.norm(states[:, :2] - states[:, 2:4] / 3.0, axis=-1) - 0.3, 0.0)  # arm to object
    cfg = TaskMetricStageConfig(shaping_steps=300, batch_size=256, warmup=20, log_every=1000, checkpoint_every=1000)
    model, summary = train_shaping_stage(data, 0.5 * reach, cfg, run_dir=tmp_path, seed=0, resume=False, record={})
    with torch.no_grad():
        predicted = model(data.z).numpy()
    assert summary["steps"] == 300 and np.all(predicted >= 0)
    assert np.mean(np.abs(predicted - 0.5 * reach)) < 0.5 * np.mean(np.abs(0.5 * reach - np.mean(0.5 * reach)))
