"""The linear read-out of the true state from the visual latent (``worldmodel.evaluation.state_readout``)."""

from __future__ import annotations

import numpy as np
import torch

from worldmodel.data.latents import LatentTrajectories
from worldmodel.evaluation.state_readout import evaluate_state_readout, linear_readout_r2


def test_a_linearly_encoded_dim_reads_near_one_an_absent_dim_near_zero_and_a_constant_one_none():
    rng = np.random.default_rng(0)
    frames = 2000
    shown, hidden = rng.normal(size=frames), rng.normal(size=frames)
    features = np.stack([shown + 0.05 * rng.normal(size=frames), rng.normal(size=frames), rng.normal(size=frames)], 1)
    targets = np.stack([3.0 * shown + 1.0, hidden, np.full(frames, 2.0)], 1)
    r2 = linear_readout_r2(features, targets, np.arange(1500), np.arange(1500, frames))
    assert r2[0] > 0.99
    assert abs(r2[1]) < 0.02
    assert r2[2] is None


def test_the_read_out_ignores_the_appended_body_state_and_scores_held_out_episodes_only():
    rng = np.random.default_rng(1)
    episodes, steps = 20, 50
    states = rng.normal(size=(episodes * steps, 2))
    visual = np.stack([states[:, 0], rng.normal(size=len(states))], 1)  # the pixels show state dim 0 only
    body = states[:, 1:2]  # the appended body state is state dim 1 itself
    z = torch.tensor(np.hstack([visual, body]), dtype=torch.float32)
    data = LatentTrajectories.build(z, np.zeros((len(z), 2)), np.arange(episodes + 1) * steps, holdout_fraction=0.2)
    result = evaluate_state_readout(data, states, visual_dim=2)
    assert result["train_frames"] == 16 * steps and result["holdout_frames"] == 4 * steps
    assert result["r2"][0] > 0.99
    assert result["r2"][1] < 0.05  # read from the visual dims alone it is not there
