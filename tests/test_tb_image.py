"""``tools/tb_image.py`` saves a logged GIF byte for byte, and names the image tags it has when asked for another."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from worldmodel.io.tb import TensorBoardLogger, read_event_images

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "tb_image.py"


def _tool():
    spec = importlib.util.spec_from_file_location("tb_image", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_saves_the_last_logged_gif_and_names_the_tags_otherwise(tmp_path, capsys):
    frames = np.random.default_rng(0).integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    with TensorBoardLogger(tmp_path / "tb") as logger:
        logger.video("episode_000/video", frames, 0)
        logger.video("episode_000/video", frames[::-1], 1)
    tool = _tool()
    assert tool.main([str(tmp_path / "tb"), "episode_000/video", str(tmp_path / "out.gif")]) == 0
    last = read_event_images(tmp_path / "tb", "episode_000/video")[-1][1]
    assert (tmp_path / "out.gif").read_bytes() == last and last[:3] == b"GIF"
    assert tool.main([str(tmp_path / "tb"), "episode_001/video", str(tmp_path / "none.gif")]) == 2
    assert "its image tags: episode_000/video" in capsys.readouterr().err
