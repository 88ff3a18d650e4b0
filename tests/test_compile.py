"""``video.compile``: the V-JEPA training model compiles once, since every batch of the collator has the same shapes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import einops
import numpy as np
import pytest
import torch

from worldmodel.models import get_preset
from worldmodel.models.jepa import VJEPA
from worldmodel.models.masks import MultiBlockMaskCollator
from worldmodel.training.video_stage import compiled, compiles

ROOT = Path(__file__).resolve().parents[1]
# the tiny preset's token grid (4 x 8 x 8: the default masks' sizes) with a one-block encoder and predictor
ONE_BLOCK = {"width": 32, "depth": 1, "heads": 2, "pred_width": 16, "pred_depth": 1, "pred_heads": 2}


def test_compile_is_on_for_long_cuda_runs_and_off_for_the_cpu_unless_set():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert compiles(None, cuda) and compiles(None, cuda, steps=4000) and not compiles(None, cpu, steps=4000)
    assert not compiles(None, cuda, steps=600)  # the default run: compiling would cost more than it saves
    assert compiles(True, cpu, steps=10) and not compiles(False, cuda)


def test_the_training_model_is_traced_once_for_every_batch():
    """A new mask size, like any failed guard, would trace again and hand the backend a second graph. The loop's
    images use einops on numpy arrays between steps, which must not invalidate the graph either."""
    graphs = []

    def backend(graph, example_inputs):
        graphs.append(graph)
        return graph.forward

    torch._dynamo.reset()
    torch.manual_seed(0)
    cfg = get_preset("tiny", **ONE_BLOCK)
    model = VJEPA(cfg)
    step = compiled(model, backend=backend)
    collate = MultiBlockMaskCollator(cfg.grid, seed=0)
    for position in range(0, 16, 4):
        batch = collate([{"clip": torch.randn(3, cfg.frames, cfg.image_size, cfg.image_size), "position": position + i}
                         for i in range(4)])
        loss, _ = step(batch)
        loss.backward()
        einops.rearrange(np.zeros((2, 3)), "a b -> b a")  # as log_masked_clip does
    assert len(graphs) == 1  # one graph: no recompilation and no graph break
    torch._dynamo.reset()


@pytest.mark.slow
def test_pretrain_with_video_compile_compiles_once(tmp_path):
    """The real command with inductor on the CPU (over a minute to compile): no "Recompiling" in its log."""
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("torch.compile on the CPU needs a C++ compiler (g++ or $CXX); none is on PATH")
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "experiments.pretrain", f"hydra.run.dir={run}", f"cache_dir={tmp_path / 'cache'}",
           *(f"model.{key}={value}" for key, value in ONE_BLOCK.items()), "data.episodes=3", "data.episode_steps=12",
           "data.num_workers=0", "video.batch_size=4", "video.steps=4", "stages=[video]", "video.compile=true"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl", "TORCH_LOGS": "recompiles"}
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Recompiling" not in result.stderr, result.stderr[-3000:]
    assert json.loads((run / "summary.json").read_text())["video"]["compiled"] is True
