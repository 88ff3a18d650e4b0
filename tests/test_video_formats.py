"""Every decodable video is read: each codec PyAV here encodes, at small, odd, 4:3 and 16:9 sizes, and
variable frame rates; frames come out at the model's resolution with the content that was encoded."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

pytest.importorskip("decord")
pytest.importorskip("av")

from tests.video_utils import (
    EXTENSIONS,
    PATTERN_LEFT,
    PATTERN_RIGHT,
    band_frame_indices,
    encoders_available,
    write_pattern_video,
    write_test_video,
)
from worldmodel.data import decoding
from worldmodel.data.decoding import SizedReader, decode_shape, width_from_quirk
from worldmodel.data.sampling import ResumableClips
from worldmodel.data.video_check import check_video, is_variable_rate
from worldmodel.data.videos import VideoClipDataset, window_indices

SIZES = [(32, 32), (48, 48), (96, 96), (100, 60), (320, 240), (1280, 720)]  # (width, height)
FRAMES, STEP, SIZE = 4, 2, 32
ENCODERS = encoders_available()
# A frame held on screen 40 ms five times, then 200 ms five times, and so on: a variable frame rate.
VFR_PTS_MS = np.concatenate([[0], np.cumsum([40 if (t // 5) % 2 == 0 else 200 for t in range(23)])]).tolist()


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    """A folder with every (codec, size) pattern video, one variable-rate video and four broken files."""
    root = tmp_path_factory.mktemp("formats")
    good = {}
    for codec, encoder in ENCODERS.items():
        for width, height in SIZES:
            frames = 8 if width >= 1280 else 24  # the 720p files stay short
            path = str(root / f"{codec}_{width}x{height}{EXTENSIONS[codec]}")
            good[(codec, width, height)] = write_pattern_video(path, width, height, encoder, frames)
    vfr = write_pattern_video(str(root / "vfr.mkv"), 64, 48, "libx264", len(VFR_PTS_MS), VFR_PTS_MS)
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.webm").write_text("not a video\n" * 20)
    data = open(good[("h264", 320, 240)], "rb").read()
    (root / "cut.mp4").write_bytes(data[: len(data) // 2])
    write_test_video(str(root / "short.mp4"), frames=3, size=64)
    bad = {"empty": ["empty.mp4"], "not_a_video": ["notes.webm"], "truncated": ["cut.mp4"], "too_short": ["short.mp4"]}
    return str(root), good, vfr, bad


@pytest.fixture(scope="module")
def dataset(formats):
    root, *_ = formats
    return VideoClipDataset.from_root(root, frames=FRAMES, frame_step=STEP, size=SIZE, num_check_workers=2)


def test_this_pyav_encodes_the_common_codecs():
    assert {"h264", "vp9", "mpeg4"} <= set(ENCODERS)  # hevc and av1 are tested too where PyAV has them


def test_every_codec_and_size_is_used_and_only_broken_files_are_skipped(formats, dataset):
    _, good, vfr, bad = formats
    assert sorted(dataset.paths) == sorted([*good.values(), vfr])
    for reason, names in bad.items():
        assert sorted(os.path.basename(p) for p in dataset.skipped[reason]) == names, reason
    assert sum(dataset.skipped_counts().values()) == 4


def test_check_reads_each_videos_own_size(formats, dataset):
    _, good, _, _ = formats
    info = {v.path: v for v in dataset.videos}
    for (codec, width, height), path in good.items():
        assert (info[path].width, info[path].height) == (width, height), (codec, width, height)
        assert not info[path].vfr


@pytest.mark.parametrize("width, height", SIZES)
def test_clips_decode_at_the_model_size_with_the_encoded_content(formats, dataset, width, height):
    _, good, _, _ = formats
    short = decode_shape(height, width, SIZE)
    for codec in ENCODERS:
        index = dataset.paths.index(good[(codec, width, height)])
        clip = dataset.load_clip(index, np.random.default_rng(3))
        where = f"{codec} {width}x{height}"
        assert clip.shape[:2] == (FRAMES, SIZE) and short[1] <= clip.shape[2] <= short[1] + 3, where
        assert abs(clip.shape[2] / SIZE - width / height) < 0.1, where  # aspect ratio kept
        middle = clip[:, 3 * SIZE // 4]  # (T, W, 3): a row below the band
        assert np.abs(middle[:, 2].astype(int) - PATTERN_LEFT).max() < 30, where
        assert np.abs(middle[:, -3].astype(int) - PATTERN_RIGHT).max() < 30, where
        assert np.array_equal(np.diff(band_frame_indices(clip)), [STEP] * (FRAMES - 1)), where


def test_variable_frame_rate_video_is_used_and_sampled_by_time(formats, dataset):
    _, _, vfr, _ = formats
    index = dataset.paths.index(vfr)
    assert dataset.videos[index].vfr
    times = np.array(VFR_PTS_MS) / 1000
    for seed in range(5):
        where = np.random.default_rng(seed).random()  # load_clip's first draw picks the window
        expected = window_indices(len(times), FRAMES, STEP, where, times)
        clip = dataset.load_clip(index, np.random.default_rng(seed))
        assert np.array_equal(band_frame_indices(clip), expected), seed
    assert dataset.runtime_failures == 0


def test_window_indices_space_frames_by_index_or_by_time():
    assert window_indices(20, 4, 2, 0.0).tolist() == [0, 2, 4, 6]
    assert window_indices(20, 4, 2, 0.999).tolist() == [13, 15, 17, 19]
    # Frames at 0, 0.1, 0.2 s then one every second: 3 s over 6 frames, 0.6 s average interval.
    times = np.array([0.0, 0.1, 0.2, 1.2, 2.2, 3.0])
    assert window_indices(6, 3, 1, 0.0, times).tolist() == [0, 2, 3]  # on screen at 0, 0.6, 1.2 s
    assert window_indices(6, 3, 1, 1.0, times).tolist() == [3, 4, 5]  # at 1.8, 2.4, 3.0 s
    assert is_variable_rate(times) and not is_variable_rate(np.arange(10) / 30)
    assert not is_variable_rate(np.array([0, 33, 67, 100, 133, 167]) / 1000)  # ms rounding of 30 frames/s


def test_a_width_decord_cannot_copy_is_replaced_by_the_next_one(formats):
    _, good, _, _ = formats
    reader = SizedReader(good[("h264", 96, 96)], height=32, width=32)
    frames = reader.get_batch([0, 1])
    assert frames.shape == (2, 32, reader.width, 3) and 32 <= reader.width <= 35
    assert all(w in decoding._BAD_WIDTHS for w in range(32, reader.width))  # every width skipped had failed


def test_width_is_read_from_the_copy_error():
    error = RuntimeError("Check failed: from_size == to_size (36864 vs. 27648) DECORDArrayCopyFromTo: ...")
    assert width_from_quirk(error, height=96) == 96
    assert width_from_quirk(error, height=97) is None
    assert width_from_quirk(RuntimeError("DECORDArrayCopyFromTo"), height=96) is None


def test_check_of_a_small_video_decord_cannot_copy_at_full_size(formats):
    _, good, _, _ = formats
    result = check_video(good[("vp9", 48, 48)], frames=FRAMES, frame_step=STEP)
    assert result.reason is None and (result.info.height, result.info.width) == (48, 48)


def test_center_crop_of_a_wide_video_is_its_middle_square(formats, dataset):
    _, good, _, _ = formats
    index = dataset.paths.index(good[("h264", 1280, 720)])
    clips = ResumableClips(dataset, seed=0, augment=False)
    position = next(p for p in range(200) if clips.index_at(p) == index)
    clip = clips[position]["clip"]  # (3, T, 32, 32), normalised: the middle of a red|blue frame
    red_minus_blue = (clip[0] - clip[2]).mean(dim=(0, 1))  # (32,) per column
    assert torch.all(red_minus_blue[:12] > 1) and torch.all(red_minus_blue[-12:] < -1)
