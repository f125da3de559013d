"""The embedded synthetic world: determinism, the Clip contract, and a benchmark worth running.

Run as a script to look at a clip: ``python tests/data/test_synthetic.py /tmp/strip.png [sample_id]``
writes frames, segmentation and depth of every frame side by side.
"""

from __future__ import annotations

import hashlib
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassJaccardIndex

from dfbench.data.base import SEG_IGNORE, Clip
from dfbench.data.synthetic import SyntheticDataset, generate, load_config
from dfbench.data.synthetic_render import MATERIAL_SKY
from dfbench.errors import DfbenchError

CONFIG = load_config()
NUM_CLASSES = len(CONFIG.classes)
HEIGHT, WIDTH = CONFIG.native_size
VAL_CLIPS = 48  # enough clips for the statistics below, fast enough for the default run


@pytest.fixture(scope="module")
def val_worlds():
    return [generate("val", i, CONFIG.clip_length) for i in range(VAL_CLIPS)]


def test_the_same_id_gives_the_same_clip_and_different_ids_differ():
    first, again = SyntheticDataset().load("val-00017"), SyntheticDataset().load("val-00017")
    assert torch.equal(first.frames, again.frames)
    assert torch.equal(first.timestamps, again.timestamps)
    for task in ("seg", "depth"):
        assert torch.equal(first.labels[task], again.labels[task])
    for other_id in ("val-00018", "train-00017"):
        other = SyntheticDataset().load(other_id)
        assert not torch.equal(first.frames, other.frames)
        assert not torch.equal(first.labels["seg"], other.labels["seg"])


def test_clips_do_not_depend_on_the_python_process():
    # Guards the hash-based seeding (Python's hash() is salted per process) and the
    # generator: if this changes, every published synthetic number changes, so bump
    # `version` in configs/datasets/synthetic.yaml (the data set's version) and update the digest.
    world = generate("val", 0, CONFIG.clip_length)
    digests = {name: hashlib.sha256(getattr(world, name).tobytes()).hexdigest()[:16] for name in ("frames", "seg", "depth")}
    # Version 3 changed only the buildings' depth: frames and segmentation are version 2's.
    assert digests == {"frames": "b27519ba80c19fb6", "seg": "14fae5763ae2f9a0", "depth": "9fd9a7ce91dc30a5"}


def test_a_buildings_depth_follows_its_window_pitch(val_worlds):
    """Facades share one window spacing, so the pitch in pixels gives the depth up to the setback."""
    from dfbench.data.synthetic import SETBACK_JITTER, WINDOW_SPACING

    for world in val_worlds:
        scene = world.scene
        pitch = np.sqrt(scene.window_pitch.prod(axis=1).astype(np.float64))
        expected = WINDOW_SPACING * scene.focal / pitch
        assert (np.abs(scene.building_depth - expected) <= SETBACK_JITTER + 1e-4).all()
    depths = np.concatenate([w.scene.building_depth for w in val_worlds])
    pitches = np.concatenate([np.sqrt(w.scene.window_pitch.prod(axis=1)) for w in val_worlds])
    # Denser windows are farther: the cue a depth head can read from appearance.
    assert np.corrcoef(depths, pitches)[0, 1] < -0.8
    building = CONFIG.classes.index("building")
    seen = np.concatenate([w.depth[(w.seg == building) & (w.depth > 0)] for w in val_worlds])
    assert 25.0 < seen.min() and seen.max() < 65.0


def test_clip_shapes_dtypes_and_wide_frames():
    dataset = SyntheticDataset()
    clip = dataset.load(dataset.sample_ids()[3])
    assert isinstance(clip, Clip) and clip.sample_id == "val-00003"
    # 72x142 -> short side 64, width round(142 * 64 / 72) = 126: two overlapping square crops.
    assert clip.frames.shape == (7, 3, 64, 126) and clip.frames.dtype == torch.uint8
    assert clip.labels["seg"].shape == (7, HEIGHT, WIDTH) and clip.labels["seg"].dtype == torch.int64
    assert clip.labels["depth"].shape == (7, HEIGHT, WIDTH) and clip.labels["depth"].dtype == torch.float32
    assert SyntheticDataset(frame_size=32).load("val-00003").frames.shape == (7, 3, 32, 63)


def test_timestamps_are_frame_index_over_fps():
    dataset = SyntheticDataset()
    expected = torch.arange(7, dtype=torch.float32) / CONFIG.fps
    assert dataset.load("val-00001").timestamps.dtype == torch.float32
    torch.testing.assert_close(dataset.load("val-00001").timestamps, expected, rtol=0, atol=1e-7)
    torch.testing.assert_close(dataset.clip(5, 4, stride=3).timestamps, torch.tensor([0.0, 0.3, 0.6, 0.9]), rtol=0, atol=1e-6)


def test_label_ranges(val_worlds):
    seg = np.stack([w.seg for w in val_worlds])
    depth = np.stack([w.depth for w in val_worlds])
    valid_seg = seg[seg != SEG_IGNORE]
    assert valid_seg.min() == 0 and valid_seg.max() == NUM_CLASSES - 1
    assert (seg == SEG_IGNORE).any(), "void pixels exercise the ignore index"
    assert set(np.unique(seg[..., -1, :])) <= {CONFIG.classes.index("vegetation"), CONFIG.classes.index("person"), SEG_IGNORE}
    valid_depth = depth[depth > 0]
    assert valid_depth.min() > 1e-3 and valid_depth.max() < 80.0, "inside the metric's (1e-3, 80) m range"
    assert 0.05 < (depth == 0).mean() < 0.4, "sky and dropped pixels are invalid, most are not"
    assert (depth[seg == CONFIG.classes.index("sky")] == 0).all()
    # Nearer rows are nearer: the ground's depth falls towards the bottom of the frame.
    road = CONFIG.classes.index("road")
    world = val_worlds[0]
    ground = world.scene.ground_depth[world.scene.horizon :]
    assert (np.diff(ground) < 0).all() and ((world.depth[0] > 0) & (world.seg[0] == road)).any()


def test_every_frame_is_labelled():
    clip = SyntheticDataset().clip(2, num_frames=9, stride=2, split="val")
    assert ((clip.labels["seg"] != SEG_IGNORE).flatten(1).float().mean(1) > 0.9).all()
    assert ((clip.labels["depth"] > 0).flatten(1).float().mean(1) > 0.5).all()


@pytest.mark.parametrize("num_frames, stride", [(13, 1), (5, 3), (3, 6)])
def test_longer_and_strided_clips_show_the_same_world(num_frames, stride):
    base = SyntheticDataset().clip(11, num_frames=13, stride=1)
    clip = SyntheticDataset().clip(11, num_frames=num_frames, stride=stride)
    assert clip.frames.shape[0] == num_frames
    picked = torch.arange(num_frames) * stride
    assert torch.equal(clip.frames, base.frames[picked])
    assert torch.equal(clip.labels["seg"], base.labels["seg"][picked])
    assert torch.equal(clip.labels["depth"], base.labels["depth"][picked])


def test_sample_ids_and_errors():
    assert SyntheticDataset().sample_ids()[:2] == ["val-00000", "val-00001"]
    assert len(SyntheticDataset()) == CONFIG.splits["val"]
    assert len(SyntheticDataset(split="train", num_clips=10)) == 10
    assert SyntheticDataset(split="train").sample_ids()[123] == "train-00123"
    assert SyntheticDataset(root="/nowhere").check() == [] == SyntheticDataset().check(deep=True)
    assert SyntheticDataset.tasks == {"seg": NUM_CLASSES, "depth": 1}
    # The version written into results and the feature-cache key is the generator's.
    assert SyntheticDataset().version == str(CONFIG.version) == SyntheticDataset.spec.version
    assert (SyntheticDataset.spec.default_feature_space, SyntheticDataset.spec.decode_workers) == ("tiny", 0)
    with pytest.raises(DfbenchError, match="split_file"):
        SyntheticDataset(split_file="x.txt")
    assert SyntheticDataset.class_names == list(CONFIG.classes) and SyntheticDataset.name == "synthetic"
    for bad in ("val-17x", "test-00001", "00017"):
        with pytest.raises(DfbenchError):
            SyntheticDataset().load(bad)
    with pytest.raises(DfbenchError):
        SyntheticDataset(split="test")
    with pytest.raises(DfbenchError):
        SyntheticDataset().clip(0, num_frames=0)


def test_dynamics_are_stochastic_but_mostly_constant(val_worlds):
    last_context, future = slice(2, 3), slice(3, 6)  # velocity applied after frames 2 and 3..5
    changed, turned, stopped, started, agents = 0, 0, 0, 0, 0
    for world in val_worlds:
        v = world.agents.velocity
        before, after = v[last_context], v[future]
        changed += (after != before).any(0).sum()
        turned += ((before * after) < 0).any(0).sum()
        stopped += ((before != 0) & (after == 0)).any(0).sum()
        started += ((before == 0) & (after != 0)).any(0).sum()
        agents += v.shape[1]
    # Several futures per context: turns, stops and starts all happen...
    assert turned > 0 and stopped > 0 and started > 0
    # ...yet most agents keep their velocity, so motion is predictable from the context.
    assert 0.1 < changed / agents < 0.5


def token_grid(seg: torch.Tensor) -> torch.Tensor:
    """The label as an oracle sees it through the 8x8-per-crop token grid (9x9 native pixels)."""
    one_hot = F.one_hot(torch.where(seg == SEG_IGNORE, NUM_CLASSES, seg), NUM_CLASSES + 1)
    one_hot = one_hot.permute(2, 0, 1).float()[None, :NUM_CLASSES]
    coarse = F.adaptive_avg_pool2d(one_hot, (HEIGHT // 9, WIDTH // 9))
    return F.interpolate(coarse, size=seg.shape, mode="bilinear", align_corners=False).argmax(1)


def test_motion_separates_present_from_copy_last(val_worlds):
    present, copy_last = MulticlassJaccardIndex(NUM_CLASSES, ignore_index=SEG_IGNORE), MulticlassJaccardIndex(NUM_CLASSES, ignore_index=SEG_IGNORE)
    changed = []
    for world in val_worlds:
        seg = torch.from_numpy(world.seg)
        valid = (seg[3] != SEG_IGNORE) & (seg[6] != SEG_IGNORE)
        changed.append((seg[3] != seg[6])[valid].float().mean())
        # Mid horizon: context ends at frame 3, the target is frame 6.
        present.update(token_grid(seg[6]), seg[6][None])
        copy_last.update(token_grid(seg[3]), seg[6][None])
    assert torch.stack(changed).mean() > 0.12
    gap = present.compute() - copy_last.compute()
    assert gap > 0.10, f"token-grid oracle beats copy-last by only {100 * gap:.1f} mIoU points"


def test_colour_is_a_strong_but_imperfect_cue():
    def pixels(split):
        worlds = [generate(split, i, 1) for i in range(16)]
        colours = np.concatenate([w.frames.reshape(-1, 3) for w in worlds]).astype(np.float32)
        labels = np.concatenate([w.seg.reshape(-1) for w in worlds])
        keep = labels != SEG_IGNORE
        return colours[keep], labels[keep]

    colours, labels = pixels("train")
    means = np.stack([colours[labels == c].mean(0) for c in range(NUM_CLASSES)])
    colours, labels = pixels("val")
    nearest = ((colours[:, None] - means[None]) ** 2).sum(-1).argmin(1)
    accuracy = (nearest == labels).mean()
    assert 1.5 / NUM_CLASSES < accuracy < 0.9


def test_sky_material_is_drawn_where_the_sky_label_is(val_worlds):
    world = val_worlds[1]
    sky = world.seg[0] == CONFIG.classes.index("sky")
    assert world.scene.materials.label[MATERIAL_SKY] == CONFIG.classes.index("sky")
    assert sky[: world.scene.horizon].mean() > 0.2 and not sky[world.scene.horizon :].any()


def preview(sample_id: str = "val-00000") -> np.ndarray:
    """One row per frame: the frame, its segmentation and its depth (black = invalid), 2x upscaled."""
    split, index = sample_id.split("-")
    world = generate(split, int(index), CONFIG.clip_length)
    palette = np.array([(70, 130, 180), (70, 70, 70), (128, 64, 128), (244, 35, 232), (107, 142, 35), (0, 0, 142), (220, 20, 60)], np.uint8)
    rows = []
    for frame, seg, depth in zip(world.frames, world.seg, world.depth):
        seg_rgb = np.full(seg.shape + (3,), 255, np.uint8)
        seg_rgb[seg != SEG_IGNORE] = palette[seg[seg != SEG_IGNORE] % len(palette)]
        depth_rgb = cv2.applyColorMap((np.clip(depth / 80.0, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_MAGMA)[..., ::-1].copy()
        depth_rgb[depth == 0] = 0
        rows.append(np.concatenate([frame, seg_rgb, depth_rgb], axis=1))
    strip = np.concatenate(rows, axis=0)
    return cv2.resize(strip, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)


def test_preview_writes_a_png(tmp_path):
    path = tmp_path / "strip.png"
    assert cv2.imwrite(str(path), preview("val-00002")[..., ::-1])
    assert cv2.imread(str(path)).shape == (2 * 7 * HEIGHT, 2 * 3 * WIDTH, 3)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/synthetic_strip.png"
    cv2.imwrite(out, preview(*sys.argv[2:3])[..., ::-1])
    print(out)


def test_heads_train_on_whole_synthetic_clips_from_the_lister_its_spec_names():
    from dfbench.data.train_frames import TrainFrames, head_training_clips

    clips = head_training_clips("synthetic", None, 64, limit=2)
    assert [c.sample_id for c in clips] == ["train-00000", "train-00001"]
    assert set(clips[0].labels) == {"seg", "depth"} and clips[0].frames.shape[0] == CONFIG.clip_length
    with pytest.raises(DfbenchError, match="no single training frames for 'synthetic'; use one of cityscapes, kitti, vspw"):
        TrainFrames("synthetic")
