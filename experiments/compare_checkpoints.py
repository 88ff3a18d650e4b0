"""Compare two pretrain runs tensor for tensor: ``python -m experiments.compare_checkpoints RUN_A RUN_B``.

For the world model (``world_model.pt``) and the encoder (``encoder.safetensors``) of each run, prints how many
tensors are identical, how many differ, and the names only one run has; exits 1 when a shared tensor differs. This
is how a refactor shows that the default pipeline still trains the same model at a fixed thread count.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from worldmodel.io.checkpoint import compare_state_dicts
from worldmodel.training.levels import ENCODER_FILE
from worldmodel.world_model import WORLD_MODEL_FILE


def _tensors(run: Path, name: str) -> dict[str, torch.Tensor] | None:
    path = run / name
    if not path.is_file():
        return None
    if name == ENCODER_FILE:
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    args = parser.parse_args(argv)
    differ = False
    for name in (WORLD_MODEL_FILE, ENCODER_FILE):
        a, b = _tensors(args.run_a, name), _tensors(args.run_b, name)
        if a is None or b is None:
            print(f"{name}: not in both runs")
            continue
        result = compare_state_dicts(a, b)
        differ |= bool(result["different"])
        print(f"{name}: {len(result['identical'])} identical, {len(result['different'])} different"
              + "".join(f"; {k.replace('_', ' ')} {', '.join(result[k])}" for k in ("different", "only_a", "only_b")
                        if result[k]))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
