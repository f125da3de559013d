"""The protocol's geometry: resize sizes, crops, label halves, alignment, windows."""

import torch

from dfbench.protocol import (
    align_to_labels,
    crops_overlap,
    label_halves,
    resize_frames,
    resize_sizes,
    square_crops,
    windows,
)
from dfbench.tasks import get_task


def test_resize_sizes_match_the_reference_examples():
    assert resize_sizes(1024, 2048) == (512, 1024)
    assert resize_sizes(352, 1216) == (512, 1024)  # KITTI after the KB crop: squashed by the cap
    assert resize_sizes(720, 1280) == (512, 910)
    assert resize_sizes(480, 480) == (512, 512)
    assert resize_sizes(1280, 720) == (910, 512)  # portrait


def test_resize_frames_returns_channels_first_uint8():
    frames = torch.randint(0, 256, (2, 72, 142, 3), dtype=torch.uint8)
    out = resize_frames(frames, 64)
    assert out.shape == (2, 3, 64, 126) and out.dtype == torch.uint8


def test_square_crops_of_a_wide_frame_are_top_left_then_bottom_right():
    frames = torch.arange(4 * 6).reshape(1, 4, 6)
    crops = square_crops(frames)
    assert crops.shape == (2, 1, 4, 4)
    assert torch.equal(crops[0, 0], frames[0, :, :4])
    assert torch.equal(crops[1, 0], frames[0, :, 2:])


def test_square_crops_of_a_tall_frame_cut_rows():
    frames = torch.arange(6 * 4).reshape(6, 4)
    crops = square_crops(frames)
    assert torch.equal(crops[0], frames[:4]) and torch.equal(crops[1], frames[2:])


def test_square_frames_are_not_cropped():
    frames = torch.zeros(3, 5, 5)
    assert square_crops(frames).shape == (1, 3, 5, 5)
    assert not crops_overlap(5, 5)


def test_overlap_is_decided_by_the_aspect_ratio():
    assert crops_overlap(32, 48)
    assert not crops_overlap(512, 1024)
    assert crops_overlap(512, 910)


def test_odd_label_width_pads_the_first_half_on_the_right():
    labels = torch.arange(2 * 5).reshape(1, 2, 5)
    halves = label_halves(labels, 32, 64, get_task("seg").ignore_value)
    assert halves.shape == (2, 1, 2, 3)
    assert torch.equal(halves[0, 0, :, :2], labels[0, :, :2])
    assert (halves[0, 0, :, 2] == 255).all()
    assert torch.equal(halves[1, 0], labels[0, :, 2:])


def test_odd_depth_label_pads_with_invalid_zero():
    depth = torch.ones(1, 3, 7)
    halves = label_halves(depth, 4, 8, get_task("depth").ignore_value)
    assert halves.shape == (2, 1, 3, 4)
    assert (halves[0, 0, :, 3] == 0).all()
    assert not get_task("depth").valid(halves[0, 0, :, 3]).any()


def test_padding_uses_the_fill_it_is_given_whatever_the_dtype():
    # a task with float labels and a non-zero invalid value (-1 here)
    halves = label_halves(torch.ones(2, 5), 32, 64, -1.0)
    assert (halves[0, :, 2] == -1.0).all() and (halves[1] == 1.0).all()


def test_portrait_labels_split_rows():
    labels = torch.arange(5 * 2).reshape(5, 2)
    halves = label_halves(labels, 64, 32, get_task("seg").ignore_value)
    assert halves.shape == (2, 3, 2)
    assert (halves[0, 2] == 255).all() and torch.equal(halves[1], labels[2:])


def test_alignment_without_overlap_is_plain_interpolation():
    out = torch.arange(16.0).reshape(1, 1, 4, 4)
    aligned = align_to_labels(out, 1, (8, 8), 32, 64)
    expected = torch.nn.functional.interpolate(out, size=(8, 8), mode="bilinear", align_corners=False)
    assert torch.equal(aligned, expected)


def test_alignment_with_overlap_keeps_the_crops_own_columns():
    # A column ramp: after upsampling to the square, the first crop keeps the left
    # columns and the second crop the right ones.
    out = torch.linspace(0, 1, 4).repeat(4, 1)[None, None]
    first = align_to_labels(out, 0, (36, 28), 32, 48)
    second = align_to_labels(out, 1, (36, 28), 32, 48)
    square = torch.nn.functional.interpolate(out, size=(36, 36), mode="bilinear", align_corners=False)
    assert first.shape == second.shape == (1, 1, 36, 28)
    assert torch.equal(first, square[..., :28]) and torch.equal(second, square[..., 8:])


def test_alignment_with_overlap_for_tall_frames_keeps_rows():
    out = torch.linspace(0, 1, 4)[:, None].repeat(1, 4)[None, None]
    second = align_to_labels(out, 1, (20, 30), 48, 32)
    square = torch.nn.functional.interpolate(out, size=(30, 30), mode="bilinear", align_corners=False)
    assert torch.equal(second, square[..., 10:, :])


def test_windows_slice_a_seven_frame_clip_as_the_reference():
    short, mid = windows(7, 4, {"short": 1, "mid": 3})
    assert short.context == (2, 3, 4, 5) and short.targets == (6,)
    assert mid.context == (0, 1, 2, 3) and mid.targets == (4, 5, 6)


def test_windows_skip_horizons_that_do_not_fit():
    assert [w.horizon for w in windows(5, 4, {"short": 1, "mid": 3})] == [1]
