"""Levels 1 and 2: shapes, learning on a synthetic latent system, exact resume, save/load, compatibility."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.model_configs import dynamics_config, high_level_config, latent_config
from worldmodel.data.latents import LatentTrajectories, cached_pooled
from worldmodel.errors import IncompatibleCheckpointError
from worldmodel.evaluation.horizon import format_table, horizon_table
from worldmodel.io.tb import read_event_tags
from worldmodel.models import VideoEncoder, get_preset
from worldmodel.models.latent_head import EXACT_PCA_FEATURES, LatentHead
from worldmodel.training.dynamics_stage import DynamicsStageConfig, train_dynamics_stage
from worldmodel.training.high_level_stage import HighLevelStageConfig, train_high_level_stage
from worldmodel.world_model import WorldModel

torch.set_num_threads(1)
ENC = {"width": 48, "depth": 1, "heads": 2, "image_size": 32, "pred_width": 32, "pred_depth": 1, "pred_heads": 2}


def tiny_world_model(env_name="pointmass_open", env_id="worldmodel/PointMassOpen-v0", action_dim=2, dz=8):
    torch.manual_seed(0)
    return WorldModel(get_preset("tiny", **ENC), latent_config(pool=2, dim=dz),
                      dynamics_config(dz, action_dim, hidden=32),
                      high_level_config(dz, action_dim, k=4, code_dim=3, hidden=32, code_hidden=32),
                      env_name=env_name, env_id=env_id, image_size=32, action_low=-1.0, action_high=1.0)


def synthetic_latents(episodes=24, length=33, dz=4, seed=0) -> LatentTrajectories:
    """A damped point in latent space: v' = 0.8 v + 0.1 B a, z' = z + v; smooth random actions."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(2, dz)).astype(np.float32)
    zs, acts, starts = [], [], [0]
    for _ in range(episodes):
        z, v = rng.normal(size=dz).astype(np.float32), np.zeros(dz, np.float32)
        a = rng.uniform(-1, 1, 2).astype(np.float32)
        for _ in range(length):
            a = np.clip(0.8 * a + 0.4 * rng.normal(size=2), -1, 1).astype(np.float32)
            zs.append(z.copy())
            acts.append(a.copy())
            v = 0.8 * v + 0.1 * a @ mixing
            z = z + v
        acts[-1] = np.zeros(2, np.float32)
        starts.append(starts[-1] + length)
    return LatentTrajectories.build(torch.tensor(np.stack(zs)), np.stack(acts), np.array(starts), 0.2)


def test_encoder_accepts_one_tubelet_and_rejects_odd_frame_counts():
    encoder = VideoEncoder(get_preset("tiny", **ENC)).eval()
    t, h, w = encoder.grid
    assert encoder(torch.randn(2, 3, 2, 32, 32)).shape == (2, h * w, 48)
    assert encoder(torch.randn(1, 3, 8, 32, 32)).shape == (1, t * h * w, 48)
    with pytest.raises(ValueError, match="multiple of 2"):
        encoder(torch.randn(1, 3, 3, 32, 32))


def test_world_model_shapes_and_bounds():
    wm = tiny_world_model()
    frames = np.random.default_rng(0).integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    z = wm.encode(frames)
    assert z.shape == (5, wm.latent_dim) and wm.encode(frames[0]).shape == (1, wm.latent_dim)
    assert wm.step(z, torch.zeros(5, 2)).shape == (5, 8)
    assert wm.rollout(z[0], torch.zeros(7, 6, 2)).shape == (7, 6, 8)
    assert wm.high_step(z, torch.zeros(5, 3)).shape == (5, 8)
    assert wm.high_rollout(z[0], torch.zeros(7, 3, 3)).shape == (7, 3, 8)
    chunk = wm.decode_chunk(torch.randn(7, 3) * 10)
    assert chunk.shape == (7, 4, 2) and chunk.abs().max() <= 1.0
    assert wm.distance(z, z[0]).shape == (5,) and wm.distance(z, z[0])[0] == 0
    with pytest.raises(IncompatibleCheckpointError, match="32x32"):
        wm.encode(np.zeros((1, 16, 16, 3), np.uint8))


def test_env_frames_are_resized_to_the_encoder_resolution():
    head = tiny_world_model().head  # a 32 px encoder
    colours = np.array([[10, 200, 30], [250, 0, 120]], np.uint8)
    frames = np.broadcast_to(colours[:, None, None], (2, 32, 32, 3)).copy()  # flat images: resizing is exact
    doubled = np.broadcast_to(colours[:, None, None], (2, 64, 64, 3)).copy()
    assert head(doubled).shape == (2, 8)
    torch.testing.assert_close(head(doubled), head(frames), atol=1e-4, rtol=0)


def test_latent_cache_is_reused_and_keyed_by_encoder(tmp_path):
    from worldmodel.data.trajectories import TrajectoryDataset

    rng = np.random.default_rng(0)
    ds = TrajectoryDataset(rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8), np.zeros((6, 2), np.float32),
                           np.zeros((6, 4), np.float32), np.array([0, 3, 6]), {"env": "x"})
    head = tiny_world_model().head
    first = cached_pooled(head, ds, tmp_path)
    assert len(list(tmp_path.glob("latents-*.npy"))) == 1
    assert torch.equal(cached_pooled(head, ds, tmp_path), first)
    other = LatentHead(VideoEncoder(get_preset("tiny", **ENC)), latent_config(pool=2, dim=8))
    cached_pooled(other, ds, tmp_path)
    assert len(list(tmp_path.glob("latents-*.npy"))) == 2


def test_whole_grid_latent_pca_matches_the_exact_one():
    """Above EXACT_PCA_FEATURES the PCA is a randomised low-rank SVD: same subspace and variance as exact."""
    head = LatentHead(VideoEncoder(get_preset("tiny", **{**ENC, "width": 320})), latent_config(pool=None, dim=8))
    assert head.pool == 4 and head.mean.numel() == 4 * 4 * 320 > EXACT_PCA_FEATURES
    rng = np.random.default_rng(0)
    scales = np.geomspace(10.0, 1.0, 12)[None, :]  # a clear spectrum over 12 directions, plus noise
    pooled = (rng.normal(size=(400, 12)) * scales) @ rng.normal(size=(12, 5120)) + 0.05 * rng.normal(size=(400, 5120))
    stats = head.fit(torch.as_tensor(pooled, dtype=torch.float32))
    centred = pooled - pooled.mean(0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    exact = vt[:8].T  # (F, 8)
    fitted = head.projection.double().numpy()
    fitted /= np.linalg.norm(fitted, axis=0, keepdims=True)
    overlap = np.linalg.svd(exact.T @ fitted, compute_uv=False)  # cosines of the principal angles
    assert overlap.min() > 0.999
    assert stats["explained_variance"] == pytest.approx((singular[:8] ** 2).sum() / (singular ** 2).sum(), rel=1e-3)
    assert stats["pooled_dim"] == 5120


def test_dynamics_rollout_loss_decreases_and_beats_no_change(tmp_path):
    data = synthetic_latents()
    cfg = DynamicsStageConfig(steps=150, batch_size=64, rollout=6, hidden=64, lr=3e-3, warmup=10,
                              log_every=50, checkpoint_every=1000)
    _, summary = train_dynamics_stage(data, cfg, run_dir=tmp_path, seed=0, resume=False, record={})
    stats = summary["final_stats"]
    assert summary["final_loss"] < 0.3 * summary["initial_loss"]
    assert stats["rollout_l1"] < 0.3 * stats["no_change_l1"]


def test_hierarchy_learns_k_step_jumps_and_horizon_table(tmp_path):
    data = synthetic_latents()
    dyn_cfg = DynamicsStageConfig(steps=150, batch_size=64, rollout=6, hidden=64, lr=3e-3, warmup=10,
                                  checkpoint_every=1000)
    dyn, _ = train_dynamics_stage(data, dyn_cfg, run_dir=tmp_path, seed=0, resume=False, record={})
    cfg = HighLevelStageConfig(steps=150, batch_size=64, k=4, jumps=2, code_dim=4, hidden=64, lr=3e-3,
                               warmup=10, checkpoint_every=1000)
    high, summary = train_high_level_stage(data, cfg, run_dir=tmp_path, seed=0, resume=False, record={})
    assert summary["final_stats"]["one_jump_l1"] < 0.5 * summary["final_stats"]["no_change_l1"]
    table = horizon_table(data, dyn, high, multiples=4)
    assert [r["horizon"] for r in table["rows"]] == list(range(1, 17))
    assert all(("level2" in r) == (r["horizon"] % 4 == 0) for r in table["rows"])
    assert table["both_beat_no_change"], format_table(table)
    # each stage is its own TensorBoard run
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["dynamics", "hierarchy"]
    assert "hierarchy/loss" in read_event_tags(tmp_path / "tb" / "hierarchy")["scalars"]
    assert not any(tag.startswith("dynamics/") for tag in read_event_tags(tmp_path / "tb" / "hierarchy")["scalars"])


@pytest.mark.parametrize("stage", ["dynamics", "hierarchy"])
def test_resume_after_interrupt_gives_identical_weights(tmp_path, stage):
    data = synthetic_latents(episodes=8)
    if stage == "dynamics":
        train, cfg = train_dynamics_stage, DynamicsStageConfig(steps=12, batch_size=16, rollout=4, hidden=16,
                                                               checkpoint_every=5)
    else:
        train, cfg = train_high_level_stage, HighLevelStageConfig(steps=12, batch_size=16, k=4, jumps=2,
                                                                 code_dim=2, hidden=16, checkpoint_every=5)
    full, _ = train(data, cfg, run_dir=tmp_path / "full", seed=3, resume=False, record={})

    def interrupt(step):
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(data, cfg, run_dir=tmp_path / "cut", seed=3, resume=False, record={}, callback=interrupt)
    torch.manual_seed(1234)  # the resumed process starts from unrelated RNG state
    resumed, summary = train(data, cfg, run_dir=tmp_path / "cut", seed=3, resume=True, record={})
    assert summary["resumed_from_step"] == 5
    for key, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_saved_world_model_loads_in_fresh_subprocess(tmp_path):
    wm = tiny_world_model()
    frames = np.random.default_rng(1).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "frames.npy", frames)
    wm.save(tmp_path / "world_model.pt")
    expected = wm.rollout(wm.encode(frames)[0], torch.ones(1, 3, 2))[0, -1].sum().item()
    script = textwrap.dedent(f"""
        import numpy as np, torch
        from worldmodel.world_model import WorldModel
        wm = WorldModel.load({str(tmp_path)!r})
        z = wm.encode(np.load({str(tmp_path / 'frames.npy')!r}))
        print(wm.env_name, wm.image_size, wm.action_dim, wm.k, wm.latent_dim, wm.code_dim)
        print(repr(wm.rollout(z[0], torch.ones(1, 3, 2))[0, -1].sum().item()))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "pointmass_open 32 2 4 8 3"
    assert float(out[1]) == pytest.approx(expected, abs=1e-5)


def test_load_missing_path_names_it_and_the_pretrain_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere.*python -m experiments.pretrain env="):
        WorldModel.load(tmp_path / "nowhere")


class BoxEnv(gym.Env):
    def __init__(self, size=32, action_dim=2, env_id="worldmodel/PointMassOpen-v0"):
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self.spec = gym.envs.registration.EnvSpec(env_id)


def test_incompatible_env_raises_naming_both_sides():
    wm = tiny_world_model()
    wm.check_compatible(BoxEnv())
    wm.check_compatible(BoxEnv(env_id="pointmass_open"))
    with pytest.raises(IncompatibleCheckpointError) as error:
        wm.check_compatible(BoxEnv(size=64, action_dim=3, env_id="worldmodel/Reacher-v0"))
    message = str(error.value)
    for part in ("pointmass_open", "worldmodel/Reacher-v0", "32x32", "(64, 64, 3)", "(2,)", "(3,)"):
        assert part in message, (part, message)


def test_resume_refuses_latents_from_another_env_naming_both(tmp_path):
    from worldmodel.errors import IncompatibleCheckpointError

    data = synthetic_latents(episodes=4)
    cfg = DynamicsStageConfig(steps=4, batch_size=8, rollout=2, hidden=8, checkpoint_every=2)
    train_dynamics_stage(data, cfg, run_dir=tmp_path, seed=0, resume=False,
                         record={"env": "pointmass_tworooms", "encoder_hash": "a"})
    with pytest.raises(IncompatibleCheckpointError, match="pointmass_tworooms.*pointmass_maze"):
        train_dynamics_stage(data, cfg, run_dir=tmp_path, seed=0, resume=True,
                             record={"env": "pointmass_maze", "encoder_hash": "a"})


def test_code_bank_keeps_codes_of_seen_chunks_and_planners_snap_to_them():
    from worldmodel.models.high_level import HighLevel
    from worldmodel.training.high_level_stage import fill_code_bank

    high = HighLevel(high_level_config(4, 2, k=4, code_dim=3, hidden=16, code_hidden=16))
    queries = torch.randn(5, 2, 3)
    assert torch.equal(high.nearest_codes(queries), queries)  # no bank yet: codes pass through
    fill_code_bank(high, synthetic_latents(episodes=6), size=50, seed=0)
    assert high.code_bank.shape == (50, 3)
    snapped = high.nearest_codes(queries)
    members = (snapped.reshape(-1, 1, 3) == high.code_bank[None]).all(-1).any(-1)
    assert snapped.shape == queries.shape and bool(members.all())
    loaded = HighLevel(high.cfg)
    loaded.load_state_dict(high.state_dict())
    assert torch.equal(loaded.code_bank, high.code_bank)
    old = {k: v for k, v in high.state_dict().items() if k != "code_bank"}  # a file from before the bank
    loaded.load_state_dict(old)
    assert len(loaded.code_bank) == 0
