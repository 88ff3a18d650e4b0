"""Clip datasets for V-JEPA pretraining: real encoded videos, corrupt files, resumable sampling, transforms."""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("decord")
av = pytest.importorskip("av")

from tests.video_utils import av1_encoder, write_test_video
from worldmodel.data.sampling import PositionSampler, ResumableClips, make_loader
from worldmodel.data.sim_clips import SimClipDataset
from worldmodel.data.transforms import (
    center_resize,
    denormalize,
    normalize,
    random_resized_crop_flip,
    sample_crop_box,
)
from worldmodel.data.videos import (
    NoReadableVideosError,
    VideoClipDataset,
    find_videos,
)

FRAMES, STEP = 8, 4  # a clip spans 29 frames


def _truncate(src: str, dst: str, fraction: float) -> None:
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data[: int(len(data) * fraction)])


def _write_audio_only(path: str) -> None:
    with av.open(path, "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in list(stream.encode(frame)) + list(stream.encode()):
            container.mux(packet)


@pytest.fixture(scope="module")
def video_tree(tmp_path_factory):
    """A nested folder of good and bad files; returns (root, {name: path}, good names, {reason: bad names})."""
    root = tmp_path_factory.mktemp("videos")
    p = {
        "h264": str(root / "a" / "clip_h264.mp4"),
        "faststart": str(root / "a" / "b" / "clip_faststart.MP4"),
        "shortish": str(root / "c" / "shortish.mkv"),  # 20 frames: usable with a reduced step
        "empty": str(root / "bad" / "empty.mp4"),
        "text": str(root / "bad" / "notes.mp4"),
        "trunc_moov_end": str(root / "bad" / "deep" / "cut.mp4"),
        "trunc_faststart": str(root / "bad" / "cut_faststart.mp4"),
        "trunc_mkv": str(root / "bad" / "cut.mkv"),
        "tiny": str(root / "c" / "tiny.mp4"),  # 3 frames
        "audio": str(root / "bad" / "audio_only.mp4"),
    }
    for path in p.values():
        os.makedirs(os.path.dirname(path), exist_ok=True)
    write_test_video(p["h264"], frames=40, seed=1)
    write_test_video(p["faststart"], frames=40, seed=2, faststart=True)
    write_test_video(p["shortish"], frames=20, seed=3)
    write_test_video(p["tiny"], frames=3, seed=4)
    open(p["empty"], "wb").close()
    with open(p["text"], "w") as f:
        f.write("this is not a video\n" * 20)
    _truncate(p["h264"], p["trunc_moov_end"], 0.4)
    _truncate(p["faststart"], p["trunc_faststart"], 0.7)
    _truncate(p["shortish"], p["trunc_mkv"], 0.7)
    _write_audio_only(p["audio"])
    good = ["h264", "faststart", "shortish"]
    if av1_encoder():
        p["av1"] = write_test_video(str(root / "a" / "clip_av1.mp4"), frames=40, codec=av1_encoder(), seed=5)
        good.append("av1")
    (root / "readme.txt").write_text("not listed: wrong extension")
    bad = {
        "empty": ["empty"],
        "not_a_video": ["text"],
        "truncated": ["trunc_moov_end", "trunc_faststart", "trunc_mkv"],
        "too_short": ["tiny"],
        "unreadable": ["audio"],
        "missing": [],
    }
    return str(root), p, good, bad


@pytest.fixture(scope="module")
def dataset(video_tree):
    root, *_ = video_tree
    return VideoClipDataset.from_root(root, frames=FRAMES, frame_step=STEP, size=32, num_check_workers=2)


def test_check_keeps_exactly_the_good_files_and_buckets_each_bad_one(video_tree, dataset):
    _, p, good, bad = video_tree
    assert sorted(dataset.paths) == sorted(p[name] for name in good)
    for reason, names in bad.items():
        assert sorted(dataset.skipped[reason]) == sorted(p[n] for n in names), reason
    assert dataset.skipped_counts() == {reason: len(names) for reason, names in bad.items()}
    assert dataset.summary()["runtime_failures"] == 0


def test_short_video_uses_the_largest_step_that_fits(video_tree, dataset):
    _, p, _, _ = video_tree
    info = {v.path: v for v in dataset.videos}
    assert info[p["shortish"]].num_frames == 20 and info[p["shortish"]].frame_step == 2  # 7 * 2 + 1 <= 20
    assert info[p["h264"]].frame_step == STEP
    assert dataset.reduced_step == 1


def test_each_bad_file_is_logged_once(video_tree, caplog):
    root, p, _, bad = video_tree
    with caplog.at_level(logging.WARNING, logger="worldmodel.data.videos"):
        VideoClipDataset.from_root(root, frames=FRAMES, frame_step=STEP, num_check_workers=1)
    messages = [r.getMessage() for r in caplog.records]
    for names in bad.values():
        for name in names:
            assert sum(p[name] in m for m in messages) == 1, name


def test_clip_shape_dtype_and_normalisation(dataset):
    raw = dataset.load_clip(0, np.random.default_rng(0))  # a 64x64 video decoded at the model's 32 px
    assert raw.dtype == np.uint8 and raw.shape[:2] == (FRAMES, 32) and 32 <= raw.shape[2] <= 36
    item = ResumableClips(dataset, seed=0)[3]
    clip = item["clip"]
    assert item["position"] == 3 and item["load_failures"] == 0
    assert clip.dtype == torch.float32 and clip.shape == (3, FRAMES, 32, 32)
    pixels = denormalize(clip)
    assert pixels.min() >= 0 and pixels.max() <= 1
    assert torch.allclose(normalize(pixels), clip, atol=1e-5)  # clip values lie inside the normalised range
    assert clip.mean().abs() < 3  # normalised, not raw 0..255


def test_same_seed_and_position_give_the_same_clip_and_other_positions_differ(video_tree, dataset):
    root, *_ = video_tree
    again = VideoClipDataset.from_root(root, frames=FRAMES, frame_step=STEP, size=32)
    a, b = ResumableClips(dataset, seed=7), ResumableClips(again, seed=7)
    for position in (0, 5, 11):
        assert torch.equal(a[position]["clip"], b[position]["clip"])
    assert not torch.equal(a[5]["clip"], a[6]["clip"])
    assert not torch.equal(a[5]["clip"], ResumableClips(dataset, seed=8)[5]["clip"])


def test_each_epoch_visits_every_video_once(dataset):
    clips = ResumableClips(dataset, seed=3)
    n = len(dataset)
    for epoch in range(3):
        assert sorted(clips.index_at(epoch * n + i) for i in range(n)) == list(range(n))


def test_av1_file_decodes(video_tree, dataset):
    _, p, _, _ = video_tree
    if "av1" not in p:
        pytest.skip("this PyAV build has no AV1 encoder")
    index = dataset.paths.index(p["av1"])
    clip = dataset.load_clip(index, np.random.default_rng(0))
    assert clip.shape[:2] == (FRAMES, 32) and clip.std() > 10  # real content, not a blank frame


def test_folder_with_only_bad_files_raises_value_error_naming_the_problem(video_tree, tmp_path):
    _, p, _, bad = video_tree
    for names in bad.values():
        for name in names:
            shutil.copy(p[name], tmp_path / os.path.basename(p[name]))
    with pytest.raises(ValueError) as excinfo:
        VideoClipDataset.from_root(str(tmp_path), frames=FRAMES, frame_step=STEP)
    message = str(excinfo.value)
    assert isinstance(excinfo.value, NoReadableVideosError)
    assert "\n" not in message and "no readable video" in message and str(tmp_path) in message
    assert "tried 7 file(s)" in message and "1 empty" in message and "3 truncated" in message


def test_folder_without_videos_and_missing_root_raise(tmp_path):
    with pytest.raises(ValueError, match="no video files found"):
        VideoClipDataset.from_root(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_videos(str(tmp_path / "nope"))


def test_find_videos_reads_csv_and_txt_lists_with_relative_paths(video_tree, tmp_path):
    _, p, _, _ = video_tree
    lists = tmp_path / "lists"
    lists.mkdir()
    rel = os.path.relpath(p["h264"], lists)
    (lists / "train.csv").write_text(f"path,label\n# a comment\n{rel},3\n\n{p['faststart']},1\n")
    (lists / "train.txt").write_text(f"{rel} 0\n{p['tiny']}\nmissing.mp4\n")
    assert find_videos(str(lists / "train.csv")) == [p["h264"], p["faststart"]]
    listed = find_videos(str(lists / "train.txt"))
    assert listed == [p["h264"], p["tiny"], str(lists / "missing.mp4")]
    ds = VideoClipDataset.from_root(str(lists / "train.txt"), frames=FRAMES, frame_step=STEP)
    assert ds.paths == [p["h264"]]
    assert ds.skipped_counts()["too_short"] == 1 and ds.skipped_counts()["missing"] == 1


def test_runtime_decode_failure_falls_back_to_another_video_deterministically(video_tree, tmp_path):
    _, p, _, _ = video_tree
    for name in ("h264", "faststart"):
        shutil.copy(p[name], tmp_path / f"{name}.mp4")
    ds = VideoClipDataset.from_root(str(tmp_path), frames=FRAMES, frame_step=STEP)
    broken = ds.paths.index(str(tmp_path / "faststart.mp4"))
    with open(ds.paths[broken], "r+b") as f:  # corrupt the file after probing
        f.write(b"\0" * os.path.getsize(ds.paths[broken]))
    first = ds.load_clip(broken, np.random.default_rng([0, 4]))
    failures = ds.runtime_failures  # each draw of the broken file counts one
    assert failures >= 1 and first.shape[:2] == (FRAMES, 64)
    second = ds.load_clip(broken, np.random.default_rng([0, 4]))  # known bad: skipped without decoding
    assert ds.runtime_failures == 2 * failures and np.array_equal(first, second)


def test_dataset_pickles_without_its_open_readers(dataset):
    dataset.load_clip(0, np.random.default_rng(0))
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy.paths == dataset.paths and len(copy._readers) == 0
    assert np.array_equal(
        copy.load_clip(1, np.random.default_rng(2)), dataset.load_clip(1, np.random.default_rng(2))
    )


def test_probing_bad_files_prints_nothing_to_stderr_but_our_warnings(video_tree):
    root, *_ = video_tree
    code = (
        "import logging, sys; logging.basicConfig(stream=sys.stdout, level=logging.WARNING)\n"
        "from worldmodel.data.videos import VideoClipDataset\n"
        f"ds = VideoClipDataset.from_root({root!r}, frames=8, frame_step=4)\n"
        "print(sum(ds.skipped_counts().values()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.count("skipping video") == int(result.stdout.split()[-1]) == 7


def test_position_sampler_splits_the_stream_between_ranks():
    take = lambda s, k: [p for p, _ in zip(s, range(k))]
    assert take(PositionSampler(start=4), 3) == [4, 5, 6]
    assert take(PositionSampler(start=4, rank=0, world_size=2), 3) == [4, 6, 8]
    assert take(PositionSampler(start=4, rank=1, world_size=2), 3) == [5, 7, 9]
    with pytest.raises(ValueError):
        PositionSampler(rank=2, world_size=2)


def _collate(items):
    return torch.stack([i["clip"] for i in items]), [i["position"] for i in items]


def test_loader_with_two_fork_workers_reads_the_positions_in_order(dataset):
    # Decode in the parent first: forked workers inherit its open readers and must not free them (a decord
    # reader's destructor joins a decoder thread that only exists in the parent: the worker would hang).
    dataset.load_clip(0, np.random.default_rng(0))
    loader = make_loader(dataset, batch_size=2, seed=5, start_position=6, collate_fn=_collate, num_workers=2)
    batches = [b for b, _ in zip(loader, range(3))]
    del loader
    reference = ResumableClips(dataset, seed=5)
    assert [positions for _, positions in batches] == [[6, 7], [8, 9], [10, 11]]
    for clips, positions in batches:
        assert clips.shape == (2, 3, FRAMES, 32, 32)
        for clip, position in zip(clips, positions):
            assert torch.equal(clip, reference[position]["clip"])


# ---------------------------------------------------------------------------------------------------------
# Simulator clips


def _numbered_frames(n: int) -> np.ndarray:
    """Frame i is filled with the value i, so a clip's pixels name its frame indices."""
    return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 8, 8, 3)).copy()


def test_sim_clips_never_cross_an_episode_boundary():
    starts = np.array([0, 10, 13, 25])  # episodes of 10, 3 (too short) and 12 frames
    ds = SimClipDataset(_numbered_frames(25), starts, frames=4, frame_step=2, size=8)  # span 7
    assert len(ds) == 4 + 6
    for i in range(len(ds)):
        ids = ds.load_clip(i, np.random.default_rng(i))[:, 0, 0, 0].astype(int)
        assert np.array_equal(np.diff(ids), [2, 2, 2])
        episode = np.searchsorted(starts, ids[0], side="right") - 1
        assert starts[episode] <= ids[0] and ids[-1] < starts[episode + 1]
    clips = ResumableClips(ds, seed=0)
    assert clips[12]["clip"].shape == (3, 4, 8, 8)
    assert torch.equal(clips[12]["clip"], ResumableClips(ds, seed=0)[12]["clip"])


def test_sim_clips_reject_episodes_all_shorter_than_a_clip():
    with pytest.raises(ValueError, match="no episode is long enough"):
        SimClipDataset(_numbered_frames(10), np.array([0, 5, 10]), frames=4, frame_step=2)
    with pytest.raises(ValueError, match="episode_starts"):
        SimClipDataset(_numbered_frames(10), np.array([0, 5, 9]))
    ds = SimClipDataset.from_arrays(torch.from_numpy(_numbered_frames(10)), torch.tensor([0, 10]), frames=4)
    assert len(ds) == 7


# ---------------------------------------------------------------------------------------------------------
# Transforms


def test_crop_is_the_same_for_every_frame_and_flip_mirrors_it():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    frames = np.stack([image] * 5)
    out = random_resized_crop_flip(frames, 16, np.random.default_rng(1), hflip_p=0.0)
    assert out.shape == (3, 5, 16, 16)
    for t in range(1, 5):
        assert torch.equal(out[:, t], out[:, 0])
    flipped = random_resized_crop_flip(frames, 16, np.random.default_rng(1), hflip_p=1.0)
    assert torch.equal(flipped, out.flip(-1))


def test_crop_boxes_respect_scale_and_ratio():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = sample_crop_box(90, 120, rng)
        assert 0 <= top and top + h <= 90 and 0 <= left and left + w <= 120
        assert 0.3 * 0.9 <= h * w / (90 * 120) <= 1.0
        assert 0.75 * 0.95 <= w / h <= 1.35 * 1.05


def test_center_resize_and_denormalize_round_trip():
    frames = np.full((2, 30, 40, 3), 128, dtype=np.uint8)
    frames[:, :, :5] = 0  # outside the centred 30x30 square
    out = center_resize(frames, 15)
    assert out.shape == (3, 2, 15, 15)
    assert torch.allclose(denormalize(out), torch.full_like(out, 128 / 255), atol=1e-5)
    batch = out.unsqueeze(0)
    assert torch.allclose(normalize(denormalize(batch)), batch, atol=1e-5)


def test_small_frame_sizes_decord_cannot_copy_at_full_size_are_checked_with_their_own_size(tmp_path):
    from worldmodel.data.video_check import check_video

    path = write_test_video(str(tmp_path / "small48.mp4"), frames=20, size=48)
    result = check_video(path, frames=4, frame_step=2)
    assert result.reason is None and result.info is not None
    assert (result.info.height, result.info.width, result.info.num_frames) == (48, 48, 20)
