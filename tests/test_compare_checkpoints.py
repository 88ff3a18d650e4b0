"""Two runs compared tensor for tensor."""

from __future__ import annotations

import torch
from safetensors.torch import save_file

from experiments.compare_checkpoints import main
from worldmodel.io.checkpoint import compare_state_dicts


def test_compare_names_identical_different_and_one_sided_tensors():
    a = {"w": torch.ones(2), "v": torch.zeros(3), "old": torch.ones(1)}
    b = {"w": torch.ones(2), "v": torch.tensor([0.0, 0.0, 1e-7]), "new": torch.ones(1)}
    assert compare_state_dicts(a, b) == {"identical": ["w"], "different": ["v"], "only_a": ["old"], "only_b": ["new"]}


def test_runs_that_differ_exit_1_and_say_which_tensor(tmp_path, capsys):
    for run, value in (("a", 1.0), ("b", 2.0)):
        (tmp_path / run).mkdir()
        save_file({"x": torch.full((2,), value), "y": torch.zeros(1)}, tmp_path / run / "encoder.safetensors")
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    out = capsys.readouterr().out
    assert "encoder.safetensors: 1 identical, 1 different; different x" in out
    assert "world_model.pt: not in both runs" in out
    assert main([str(tmp_path / "a"), str(tmp_path / "a")]) == 0
