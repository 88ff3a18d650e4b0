"""Proprioception: fused after the visual latent, required exactly where the checkpoint was trained with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from tests.model_configs import dynamics_config, high_level_config, latent_config
from tests.test_world_model import ENC
from worldmodel.data.latents import prepare_latents
from worldmodel.data.trajectories import TrajectoryDataset
from worldmodel.errors import IncompatibleCheckpointError
from worldmodel.models import VideoEncoder, get_preset
from worldmodel.models.latent_head import LatentHead
from worldmodel.observations import ObservationError, split_observation
from worldmodel.world_model import WorldModel

torch.set_num_threads(1)


def proprio_world_model(proprio_dim: int, env_name="pusher", env_id="worldmodel/Pusher-v0") -> WorldModel:
    torch.manual_seed(0)
    latent = latent_config(pool=2, dim=8, proprio_dim=proprio_dim)
    return WorldModel(get_preset("tiny", **ENC), latent, dynamics_config(latent.out_dim, 2, hidden=32),
                      high_level_config(latent.out_dim, 2, k=4, code_dim=3, hidden=32, code_hidden=32),
                      env_name=env_name, env_id=env_id, image_size=32, action_low=-1.0, action_high=1.0)


def test_the_latent_is_the_visual_latent_followed_by_the_standardised_body_state():
    head = LatentHead(VideoEncoder(get_preset("tiny", **ENC)), latent_config(pool=2, dim=8, proprio_dim=3))
    rng = np.random.default_rng(0)
    body = torch.as_tensor(rng.normal([1.0, -2.0, 0.5], [0.1, 2.0, 3.0], size=(200, 3)), dtype=torch.float32)
    head.fit_proprio(body)
    frames = rng.integers(0, 255, (200, 32, 32, 3), dtype=np.uint8)
    z = head(frames, body)
    assert z.shape == (200, 11) and head.dim == 11
    torch.testing.assert_close(z[:, 8:].mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z[:, 8:].std(0), torch.ones(3), atol=1e-5, rtol=0)
    pixel_only = LatentHead(head.encoder, latent_config(pool=2, dim=8))
    pixel_only.load_state_dict({k: v for k, v in head.state_dict().items() if "proprio" not in k}, strict=False)
    torch.testing.assert_close(pixel_only(frames), z[:, :8])  # the body state does not touch the visual part


def test_prepare_latents_fits_the_body_state_on_training_frames_only():
    rng = np.random.default_rng(1)
    n, starts = 40, np.array([0, 10, 20, 30, 40])
    proprio = rng.normal(size=(n, 2)).astype(np.float32)
    proprio[30:] += 100.0  # the held-out episode: far away, and not in the fit
    data = TrajectoryDataset(rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8), np.zeros((n, 2), np.float32),
                             np.zeros((n, 4), np.float32), starts, {"env": "x"}, proprio)
    head = LatentHead(VideoEncoder(get_preset("tiny", **ENC)), latent_config(pool=2, dim=4, proprio_dim=2))
    latents, record = prepare_latents(head, data, cache_dir=None, holdout_fraction=0.25)
    assert record["proprio_dim"] == 2 and latents.z.shape == (n, 6)
    torch.testing.assert_close(head.proprio_mean, torch.as_tensor(proprio[:30].mean(0)))
    assert float(latents.z[30:, 4:].mean()) > 10.0


def test_world_model_reads_dict_observations_and_goals_with_proprioception():
    wm = proprio_world_model(4)
    image = np.zeros((32, 32, 3), np.uint8)
    z = wm.encode_observation({"pixels": image, "proprio": np.ones(4, np.float32)})
    assert z.shape == (wm.latent_dim,) == (12,)
    goal = wm.encode_goal({"goal_image": image, "goal_proprio": np.zeros(4, np.float32)})
    assert not torch.equal(z, goal) and torch.equal(z[:8], goal[:8])
    batch = wm.encode(np.zeros((3, 32, 32, 3), np.uint8), np.zeros((3, 4), np.float32))
    assert batch.shape == (3, 12)


def test_checkpoint_and_env_disagreeing_on_proprioception_fail_in_one_line_naming_both():
    with_body = proprio_world_model(4)
    with pytest.raises(IncompatibleCheckpointError, match="reads 4 proprioception dims, the observation has none"):
        with_body.encode_observation(np.zeros((32, 32, 3), np.uint8))
    pixels_only = proprio_world_model(0)
    with pytest.raises(IncompatibleCheckpointError, match="reads 0 proprioception dims, the observation has 4"):
        pixels_only.encode_observation({"pixels": np.zeros((32, 32, 3), np.uint8), "proprio": np.zeros(4)})
    with pytest.raises(IncompatibleCheckpointError) as err:
        pixels_only.check_compatible(envs.make("pusher", image_size=32))
    assert "proprioception: checkpoint 0 dims, env 4" in str(err.value) and "\n" not in str(err.value)
    with_body.check_compatible(envs.make("pusher", image_size=32))
    reacher = proprio_world_model(4, "pointmass_open", "worldmodel/PointMassOpen-v0")
    with pytest.raises(IncompatibleCheckpointError, match="proprioception: checkpoint 4 dims, env 0"):
        reacher.check_compatible(envs.make("pointmass_open", image_size=32))


def test_world_model_with_proprioception_saves_and_loads(tmp_path):
    wm = proprio_world_model(4)
    wm.head.proprio_mean.fill_(0.5)
    path = wm.save(tmp_path / "world_model.pt")
    loaded = WorldModel.load(path)
    assert loaded.proprio_dim == 4 and float(loaded.head.proprio_mean[0]) == 0.5


def test_split_observation_names_the_missing_image_key():
    pixels, body = split_observation(np.zeros((4, 4, 3), np.uint8))
    assert body is None and pixels.shape == (4, 4, 3)
    with pytest.raises(ObservationError, match="'pixels'"):
        split_observation({"image": np.zeros((4, 4, 3))})


def test_body_cost_reads_only_the_body_state_and_needs_one():
    wm = proprio_world_model(4)
    z = torch.zeros(3, 12)
    goal = torch.zeros(12)
    goal[:8] = 5.0  # the visual part differs, the body part agrees
    assert torch.equal(wm.distance(z, goal, cost="body"), torch.zeros(3))
    goal[8:] = 1.0
    torch.testing.assert_close(wm.distance(z, goal, cost="body"), torch.ones(3))
    # the latent cost weighs the 4 body dims as much as the 8 visual ones
    torch.testing.assert_close(wm.distance(z, goal, cost="latent"), torch.full((3,), 6.0))
    with pytest.raises(IncompatibleCheckpointError, match="body state"):
        proprio_world_model(0).distance(torch.zeros(3, 8), torch.zeros(8), cost="body")
