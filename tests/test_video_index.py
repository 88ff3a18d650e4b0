"""A video folder is probed once: the index in the cache dir answers for unchanged files."""

from __future__ import annotations

import json
import logging
import os

import pytest

pytest.importorskip("decord")
pytest.importorskip("av")

from tests.video_utils import write_test_video
from worldmodel.data import video_index
from worldmodel.data.video_index import index_file, load_index
from worldmodel.data.videos import VideoClipDataset

FRAMES, STEP = 8, 2


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "videos"
    (root / "sub").mkdir(parents=True)
    for i, frames in enumerate((30, 30, 12)):
        write_test_video(str(root / "sub" / f"clip{i}.mp4"), frames=frames, size=48, seed=i)
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.mkv").write_text("not a video")
    return root


@pytest.fixture
def probes(monkeypatch):
    """Every path ``inspect_video`` is called on, in call order."""
    calls: list[str] = []
    real = video_index.inspect_video

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(video_index, "inspect_video", counting)
    return calls


def _build(root, cache, **kwargs):
    return VideoClipDataset.from_root(str(root), cache_dir=cache, frames=FRAMES, frame_step=STEP, **kwargs)


def test_second_build_probes_nothing_and_finds_the_same_videos(folder, tmp_path, probes):
    cache = tmp_path / "cache"
    first = _build(folder, cache)
    assert len(probes) == 5 and first.checked == 5
    second = _build(folder, cache)
    assert len(probes) == 5 and second.checked == 0
    assert second.videos == first.videos and second.skipped == first.skipped
    assert second.skipped_counts()["empty"] == 1 and second.skipped_counts()["not_a_video"] == 1


def test_a_touched_or_rewritten_file_is_probed_again_and_a_new_one_added(folder, tmp_path, probes):
    cache = tmp_path / "cache"
    _build(folder, cache)
    probes.clear()
    touched = folder / "sub" / "clip0.mp4"
    stat = os.stat(touched)
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    write_test_video(str(folder / "sub" / "clip2.mp4"), frames=40, size=48)  # was 12 frames
    write_test_video(str(folder / "new.webm"), frames=20, size=48, codec="libvpx-vp9")
    dataset = _build(folder, cache)
    assert sorted(probes) == sorted(str(folder / p) for p in ("sub/clip0.mp4", "sub/clip2.mp4", "new.webm"))
    frames = {os.path.basename(v.path): v.num_frames for v in dataset.videos}
    assert frames == {"clip0.mp4": 30, "clip1.mp4": 30, "clip2.mp4": 40, "new.webm": 20}


def test_a_deleted_file_leaves_the_index(folder, tmp_path, probes):
    cache = tmp_path / "cache"
    _build(folder, cache)
    os.remove(folder / "notes.mkv")
    _build(folder, cache)
    entries = load_index(index_file(cache, str(folder)))
    assert str(folder / "notes.mkv") not in entries and len(entries) == 4


def test_index_entries_hold_the_probe_facts_and_serve_any_clip_length(folder, tmp_path, probes):
    cache = tmp_path / "cache"
    _build(folder, cache)
    entry = load_index(index_file(cache, str(folder)))[str(folder / "sub" / "clip2.mp4")]
    assert (entry.num_frames, entry.height, entry.width, entry.fps, entry.reason) == (12, 48, 48, 10.0, None)
    assert entry.size == os.path.getsize(folder / "sub" / "clip2.mp4")
    # 12 frames: too short for 16-frame clips, decided from the index without probing again
    probes.clear()
    longer = VideoClipDataset.from_root(str(folder), cache_dir=cache, frames=16, frame_step=STEP)
    assert probes == [] and longer.skipped["too_short"] == [str(folder / "sub" / "clip2.mp4")]


def test_each_root_has_its_own_index(folder, tmp_path, probes):
    cache = tmp_path / "cache"
    listing = tmp_path / "list.txt"
    listing.write_text(f"{folder / 'sub' / 'clip0.mp4'}\n")
    _build(folder, cache)
    _build(listing, cache)
    assert index_file(cache, str(folder)) != index_file(cache, str(listing))
    assert len(list(cache.glob("*.json"))) == 2
    assert len(probes) == 6  # the list's one file is probed for its own index


def test_a_corrupt_index_is_ignored_with_a_warning_and_rewritten(folder, tmp_path, probes, caplog):
    cache = tmp_path / "cache"
    _build(folder, cache)
    path = index_file(cache, str(folder))
    path.write_text('{"version": 1, "files": [{"path": ')  # cut mid-write by something else
    probes.clear()
    with caplog.at_level(logging.WARNING, logger="worldmodel.data.video_index"):
        dataset = _build(folder, cache)
    assert len(dataset) == 3 and len(probes) == 5
    assert any("ignoring the unreadable video index" in r.getMessage() for r in caplog.records)
    assert len(json.loads(path.read_text())["files"]) == 5
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temporary file left behind


def test_an_index_from_another_decord_is_not_trusted(folder, tmp_path, probes):
    cache = tmp_path / "cache"
    _build(folder, cache)
    path = index_file(cache, str(folder))
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "decord": "0.0.1"}))
    probes.clear()
    _build(folder, cache)
    assert len(probes) == 5


def test_an_unwritable_cache_dir_is_only_a_warning(folder, tmp_path, caplog):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="worldmodel.data.video_index"):
        dataset = _build(folder, blocker)
    assert len(dataset) == 3
    assert any("could not write the video index" in r.getMessage() for r in caplog.records)
