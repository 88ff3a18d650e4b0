"""End-to-end: the real ``python -m experiments.pretrain`` command with tiny budgets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from worldmodel.io.tb import read_event_tags

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "model.image_size=32", "model.frames=4", "model.width=32", "model.depth=1", "model.heads=2",
    "model.pred_width=16", "model.pred_depth=1", "model.pred_heads=2",
    "data.episodes=3", "data.episode_steps=12", "data.num_workers=0",
    "video.batch_size=4", "video.log_every=1", "video.image_every=2", "stages=[video]",
]


def pretrain(run_dir: Path, cache: Path, *overrides: str, check: bool = True,
             python_path: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "experiments.pretrain", f"hydra.run.dir={run_dir}", f"cache_dir={cache}",
           *TINY, *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    if python_path is not None:  # searched before the installed packages
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(python_path), env.get("PYTHONPATH")]))
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"pretrain failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def test_default_video_stage_writes_summary_tensorboard_checkpoint_and_encoder(tmp_path):
    run = tmp_path / "run"
    result = pretrain(run, tmp_path / "cache", "video.steps=4", "video.checkpoint_every=2")
    assert f"run directory: {run}" in result.stdout
    summary = json.loads((run / "summary.json").read_text())
    video = summary["video"]
    assert video["steps"] == 4 and video["resumed_from_step"] == 0
    assert video["clips_per_s"] > 0 and 0 < video["mfu"] < 1
    assert video["target_feature_std"] > 0
    assert video["target_spread_initial"] > 0 and video["target_spread_final"] > 0  # steps 0 and 3 were logged
    assert video["narrowing_warning"] is None or "tell clips apart less" in video["narrowing_warning"]
    assert video["skipped_inputs"] == {}
    tags = read_event_tags(run / "tb" / "video")
    for tag in ("video/loss", "video/lr", "video/ema_momentum", "video/grad_norm", "video/clips_per_s"):
        assert tag in tags["scalars"], tag
    assert {"video/masked_clip", "video/feature_pca"} <= set(tags["images"])
    assert (run / ".hydra" / "config.yaml").exists()
    assert sorted(p.name for p in (run / "checkpoints" / "video").glob("step_*.pt")) == [
        "step_0000002.pt", "step_0000004.pt"]
    encoder = load_file(run / "encoder.safetensors")
    assert encoder and all(torch.isfinite(t).all() for t in encoder.values())


def test_zero_video_steps_export_the_encoder_at_its_initialisation_with_no_loss(tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:  # the untrained-encoder control of docs/results.md
        pretrain(run, tmp_path / "cache", "video.steps=0")
    video = json.loads((runs[0] / "summary.json").read_text())["video"]
    assert video["steps"] == 0 and video["initial_loss"] is None and video["final_loss"] is None
    first, second = (load_file(run / "encoder.safetensors") for run in runs)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_a_video_stage_on_cached_exploration_runs_without_the_envs_optional_extras(tmp_path):
    """A GPU machine without gym-pusht trains Push-T's video stage on episodes rendered elsewhere; a run that
    would have to render them still says how to install it."""
    from envs.pusht_dependency import INSTALL, PushTUnavailableError, load_pusht

    try:
        load_pusht()
    except PushTUnavailableError as exc:
        pytest.skip(f"gym-pusht is not importable: {exc}")
    cache = tmp_path / "cache"
    pretrain(tmp_path / "render", cache, "env=pusht", "video.steps=1")  # renders and caches the episodes
    hidden = tmp_path / "without_extras"
    (hidden / "gym_pusht").mkdir(parents=True)
    (hidden / "gym_pusht" / "__init__.py").write_text('raise ImportError("hidden by the test")\n')
    result = pretrain(tmp_path / "cached", cache, "env=pusht", "video.steps=1", python_path=hidden)
    assert "loaded 3 pusht episodes from cache" in result.stdout + result.stderr
    assert (tmp_path / "cached" / "encoder.safetensors").is_file()
    result = pretrain(tmp_path / "uncached", cache, "env=pusht", "video.steps=1", "seed=5", check=False,
                      python_path=hidden)
    assert result.returncode != 0 and INSTALL in result.stdout + result.stderr


def test_resume_after_kill_gives_identical_weights(tmp_path):
    cache = tmp_path / "cache"
    steps = ["video.steps=12", "video.checkpoint_every=3", "video.keep_checkpoints=10"]
    pretrain(tmp_path / "full", cache, *steps)

    interrupted = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "experiments.pretrain", f"hydra.run.dir={interrupted}",
           f"cache_dir={cache}", *TINY, *steps]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = interrupted / "checkpoints" / "video" / "step_0000003.pt"
    deadline = time.time() + 240
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists(), "the run never wrote its first checkpoint"

    pretrain(interrupted, cache, *steps, "resume=true")
    summary = json.loads((interrupted / "summary.json").read_text())["video"]
    assert 0 < summary["resumed_from_step"] < 12, "the kill did not interrupt the run"
    whole = json.loads((tmp_path / "full" / "summary.json").read_text())["video"]
    # the targets' spread logged before the kill comes back from the checkpoint
    assert (summary["target_spread_initial"], summary["target_spread_final"]) == (
        whole["target_spread_initial"], whole["target_spread_final"])
    full, resumed = load_file(tmp_path / "full" / "encoder.safetensors"), load_file(
        interrupted / "encoder.safetensors")
    assert full.keys() == resumed.keys()
    for name in full:
        assert torch.equal(full[name], resumed[name]), name


def test_nan_loss_stops_with_step_number_and_keeps_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    result = pretrain(run, tmp_path / "cache", "video.steps=20", "video.checkpoint_every=1",
                      "video.start_lr=1e30", "video.lr=1e30", "video.grad_clip=1e30", check=False)
    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert "at step" in error and "Traceback" not in result.stderr
    last = sorted((run / "checkpoints" / "video").glob("step_*.pt"))[-1]
    state = torch.load(last, weights_only=True)
    assert state["step"] >= 1 and all(torch.isfinite(t).all() for t in state["model"].values()
                                      if t.is_floating_point())


@pytest.mark.parametrize("override, expected", [
    ("model=nope", "model"),
    ("env=nope", "env"),
    ("video.stepz=3", "stepz"),
    ("video.steps=abc", "steps"),
    ("stages=[video,dance]", "dance"),
    ("data=videos", "data.root"),
    ("device=gpu", "error: unknown device 'gpu'; use device=auto"),
])
def test_bad_overrides_fail_in_one_line_without_traceback(tmp_path, override, expected):
    result = pretrain(tmp_path / "run", tmp_path / "cache", override, check=False)
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_video_root_without_readable_videos_names_the_problem(tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.mp4").write_text("not a video")
    result = pretrain(tmp_path / "run", tmp_path / "cache", "data=videos", f"data.root={root}", check=False)
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3


def test_two_process_ddp_on_cpu(tmp_path):
    run = tmp_path / "ddp"
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "experiments.pretrain", f"hydra.run.dir={run}", f"cache_dir={cache}", *TINY,
           "video.steps=3", "video.checkpoint_every=3"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())["video"]
    assert summary["world_size"] == 2 and summary["steps"] == 3


def test_video_folder_with_bad_files_trains_and_counts_each_skip(tmp_path):
    from tests.video_utils import write_test_video

    root = tmp_path / "videos"
    (root / "nested").mkdir(parents=True)
    for i in range(2):
        write_test_video(root / "nested" / f"good{i}.mp4", frames=40, size=64, seed=i)
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mkv").write_text("not a video at all")
    write_test_video(root / "short.mp4", frames=3, size=64)
    good = (root / "nested" / "good0.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(good[: len(good) // 3])
    run = tmp_path / "run"
    pretrain(run, tmp_path / "cache", "data=videos", f"data.root={root}", "video.steps=2")
    video = json.loads((run / "summary.json").read_text())["video"]
    skipped = video["skipped_inputs"]
    assert video["data"]["videos"] == 2
    assert skipped["empty"] == 1 and skipped["too_short"] == 1 and sum(skipped.values()) == 4
    named = [path for paths in video["data"]["skipped_files"].values() for path in paths]
    assert sorted(Path(p).name for p in named) == ["empty.mp4", "short.mp4", "text.mkv", "truncated.mp4"]


def _issue_folder(root: Path) -> dict[str, list[str]]:
    """H.264 .mp4 and VP9 .webm videos at 96x96 (a width decord cannot copy at full size) and four broken
    files; returns {reason: [broken file name]}."""
    from tests.video_utils import write_test_video

    root.mkdir(parents=True)
    for i in range(2):
        write_test_video(root / f"clip{i}.mp4", frames=30, size=96, seed=i)
        write_test_video(root / f"clip{i}.webm", frames=30, size=96, codec="libvpx-vp9", seed=10 + i)
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.mp4").write_text("not a video\n" * 10)
    good = (root / "clip0.mp4").read_bytes()
    (root / "cut.mp4").write_bytes(good[: len(good) // 3])
    write_test_video(root / "short.mp4", frames=3, size=96)
    return {"empty": ["empty.mp4"], "not_a_video": ["notes.mp4"], "truncated": ["cut.mp4"],
            "too_short": ["short.mp4"]}


def test_small_h264_and_vp9_videos_all_train_and_every_broken_file_is_named(tmp_path):
    root = tmp_path / "videos"
    broken = _issue_folder(root)
    run, cache = tmp_path / "run", tmp_path / "cache"
    result = pretrain(run, cache, "data=videos", f"data.root={root}", "video.steps=3")
    video = json.loads((run / "summary.json").read_text())["video"]
    assert video["steps"] == 3 and video["data"]["videos"] == 4 and video["data"]["probed"] == 8
    named = {reason: sorted(Path(p).name for p in paths) for reason, paths in video["data"]["skipped_files"].items()}
    assert named == broken
    assert video["skipped_inputs"] == {"missing": 0, "unreadable": 0, **{r: 1 for r in broken}}
    for reason, (name,) in broken.items():
        assert f"skipping video {root / name}: {reason}" in result.stdout + result.stderr
    assert len(list((cache / "video_index").glob("*.json"))) == 1  # the next run probes nothing


def test_sim_plus_videos_trains_on_clips_of_both(tmp_path):
    root = tmp_path / "videos"
    _issue_folder(root)
    run = tmp_path / "run"
    pretrain(run, tmp_path / "cache", "data=sim+videos", f"data.root={root}", "data.video_fraction=0.25",
             "video.steps=2")
    video = json.loads((run / "summary.json").read_text())["video"]
    data = video["data"]
    assert video["steps"] == 2 and data["source"] == "sim+videos" and data["video_fraction"] == 0.25
    assert data["sim"]["env"] == "pointmass_tworooms" and data["videos"]["videos"] == 4
    assert video["skipped_inputs"]["empty"] == 1 and sum(video["skipped_inputs"].values()) == 4


def test_sim_plus_videos_rejects_a_fraction_outside_0_1(tmp_path):
    result = pretrain(tmp_path / "run", tmp_path / "cache", "data=sim+videos", f"data.root={tmp_path}",
                      "data.video_fraction=1.0", check=False)
    assert result.returncode == 2 and "video_fraction" in result.stderr and "Traceback" not in result.stderr


def test_env_pretrain_settings_apply_unless_the_command_line_sets_them(tmp_path):
    from omegaconf import OmegaConf

    run = tmp_path / "run"
    pretrain(run, tmp_path / "cache", "env=pusher", "env.image_size=32", "video.steps=1", "dynamics.steps=7")
    used = OmegaConf.load(run / ".hydra" / "config.yaml")
    env_settings = OmegaConf.load(ROOT / "configs" / "env" / "pusher.yaml").pretrain
    assert used.data.episodes == 3 and used.dynamics.steps == 7  # the command line wins
    assert used.hierarchy.steps == env_settings["hierarchy.steps"] != 1500  # the env's own setting
    summary = json.loads((run / "summary.json").read_text())
    assert summary["video"]["data"]["episodes"] == 3
