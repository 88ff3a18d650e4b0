"""End-to-end: ``python -m experiments.pretrain`` with the latent stages, tiny budgets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from worldmodel.world_model import WorldModel

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "model.image_size=32", "model.frames=4", "model.width=32", "model.depth=1", "model.heads=2",
    "model.pred_width=16", "model.pred_depth=1", "model.pred_heads=2", "env.image_size=32",
    "data.episodes=5", "data.episode_steps=40", "data.num_workers=0", "video.batch_size=4", "video.steps=2",
    "dynamics.steps=12", "hierarchy.steps=12", "metric.steps=20", "dynamics.batch_size=16", "hierarchy.batch_size=16",
]


def pretrain(run_dir: Path, cache: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "experiments.pretrain", f"hydra.run.dir={run_dir}", f"cache_dir={cache}",
           *TINY, *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"pretrain failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


@pytest.mark.slow
def test_default_stages_write_world_model_and_encoder_reuse_trains_levels_only(tmp_path):
    import envs

    first = tmp_path / "first"
    pretrain(first, tmp_path / "cache")
    summary = json.loads((first / "summary.json").read_text())
    assert {"video", "latents", "dynamics", "hierarchy", "horizon", "world_model"} <= set(summary)
    assert summary["dynamics"]["steps"] == 12 and summary["hierarchy"]["steps"] == 12
    assert summary["dynamics"]["seconds"] > 0 and summary["world_model"]["latent_stages_seconds"] > 0
    rows = summary["horizon"]["rows"]
    assert [r["horizon"] for r in rows] == list(range(1, 33)) and "level2" in rows[7]
    readout = summary["state_readout"]  # one R2 per true state dim of the point mass
    assert readout["features"] == "visual latent (64 dims)" and len(readout["r2"]) == 4
    wm = WorldModel.load(first)
    assert (wm.env_name, wm.image_size, wm.action_dim, wm.k) == ("pointmass_tworooms", 32, 2, 8)
    # the default: both levels in the metric's embedding of the 64-d PCA latent of the whole 4 x 4 token grid
    assert (wm.state_space, wm.high_space, wm.latent_dim, wm.high_latent_dim) == ("metric", "metric", 32, 32)
    assert wm.head.pool == 4 and wm.head.dim == 64
    wm.check_compatible(envs.make("pointmass_tworooms", image_size=32))
    assert {"video", "metric", "task_metric", "dynamics", "hierarchy", "horizon"} <= {
        p.name for p in (first / "tb").iterdir()}

    second = tmp_path / "second"
    missing = pretrain(second, tmp_path / "cache", "stages=[dynamics,hierarchy]", f"encoder={first}", check=False)
    assert missing.returncode == 2
    assert "add metric to stages or use latent.space=pca latent.high_space=pca" in missing.stderr
    pretrain(second, tmp_path / "cache", "stages=[metric,dynamics,hierarchy]", f"encoder={first}",
             "metric.dim=16", "latent.pool=2")
    reused = json.loads((second / "summary.json").read_text())
    assert "video" not in reused and not (second / "checkpoints" / "video").exists()
    assert reused["latents"]["encoder_hash"] == summary["latents"]["encoder_hash"]
    embedded = WorldModel.load(second)
    assert embedded.state_space == "metric" and embedded.latent_dim == 16 and embedded.head.pool == 2
    assert float(embedded.metric.state_scale) != 1.0

    third = tmp_path / "third"  # both levels in the PCA latent
    pretrain(third, tmp_path / "cache", "stages=[metric,dynamics,hierarchy]", f"encoder={first}",
             "latent.space=pca", "latent.dim=16")
    pca = WorldModel.load(third)
    assert (pca.state_space, pca.high_space, pca.latent_dim, pca.high_latent_dim) == ("pca", "pca", 16, 16)
    assert "level2" in json.loads((third / "summary.json").read_text())["horizon"]["rows"][7]

    fourth = tmp_path / "fourth"  # level 1 in the PCA latent, level 2 in the embedding
    pretrain(fourth, tmp_path / "cache", "stages=[metric,dynamics,hierarchy]", f"encoder={first}",
             "latent.space=pca", "latent.high_space=metric", "latent.dim=16", "metric.dim=8")
    hybrid = WorldModel.load(fourth)
    assert (hybrid.state_space, hybrid.high_space) == ("pca", "metric")
    assert (hybrid.latent_dim, hybrid.high_latent_dim) == (16, 8)


def test_latent_stages_without_an_encoder_fail_in_one_line_naming_the_fix(tmp_path):
    result = pretrain(tmp_path / "run", tmp_path / "cache", "stages=[dynamics]", check=False)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "encoder=PATH" in last
