"""Training clips: temporal offsets, shared random resized crops, flips, and a feature cache.

A training clip follows the reference recipe (paper appendix A, ARCHITECTURE_FACTS.md
section 8):

* the gap between consecutive frames is drawn uniformly from ``[min_gap, max_gap]``
  seconds; each sampled time snaps to the nearest video frame and that frame's actual
  timestamp is used, relative to the first frame;
* one random resized crop (area 0.6-1.0, aspect 3:4-4:3) is drawn per clip and applied to
  every frame, then resized to a square with cv2 bilinear, so the frames stay aligned;
* the whole clip is flipped horizontally with probability 0.5.

With ``augment: false`` (the tiny configs) a clip is instead seen as the evaluation sees
it: the protocol resize followed by the two square crops, each crop one training view.

With ``full_frame: true`` (DINO-Foresight, whose protocol has no square crops) a clip is one
view of whole frames resized to ``frame_size`` x ``frame_width``; its augmentation is the
official one (``src/data.py``, ``process_trainmode``): one box of s*H x s*W with
s ~ U(0.5, 1) at a random position, shared by the clip, and a flip of the whole clip.

Sources: the embedded synthetic world renders any clip from its index. Paper-scale
training reads a folder of videos, which dfbench does not decode; :func:`open_source`
says so instead of failing later.

:class:`ClipFeatureCache` encodes a fixed pool of clips with the frozen feature space once and
keeps the features in memory. Training then samples batches from the pool; this trades
fresh augmentations every step for speed, which is what makes the tiny models trainable
on a laptop CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import cv2
import numpy as np
import torch

from dfbench.errors import DfbenchError
from dfbench.models.config_io import DictConfig
from dfbench.protocol import resize_frames, square_crops


@dataclass
class ClipSampling(DictConfig):
    """How training clips are cut from videos.

    Attributes:
        num_frames: frames per clip (2 for the tokenizer, 8 for the predictors).
        min_gap: shortest gap between consecutive frames, seconds.
        max_gap: longest gap, seconds (the reference draws U(1/25, 1/3) s).
        frame_size: side of the square training crops, pixels.
        augment: random resized crop + flip; False for the evaluation's square crops.
        crop_scale: crop area as a fraction of the largest square in the frame.
        crop_ratio: crop aspect ratio (width / height) range around the square target.
        flip_p: probability of a horizontal flip of the whole clip.
        full_frame: whole frames resized to ``frame_size`` x ``frame_width`` instead of square crops.
        frame_width: output width of whole-frame views (``frame_size`` is their height).
    """

    num_frames: int
    min_gap: float
    max_gap: float
    frame_size: int
    augment: bool = True
    crop_scale: tuple[float, float] = (0.6, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    full_frame: bool = False
    frame_width: int | None = None

    _strict_keys: ClassVar[str] = "clip"

    def __post_init__(self) -> None:
        self.crop_scale = tuple(float(s) for s in self.crop_scale)
        self.crop_ratio = tuple(float(r) for r in self.crop_ratio)
        if self.num_frames < 2:
            raise ValueError(f"a training clip needs at least 2 frames, got {self.num_frames}")
        if not 0 < self.min_gap <= self.max_gap:
            raise ValueError(f"need 0 < min_gap <= max_gap, got {self.min_gap}, {self.max_gap}")
        if self.full_frame and not self.frame_width:
            raise ValueError("full_frame views need frame_width (their height is frame_size)")

    @property
    def view_size(self) -> tuple[int, int]:
        """(H, W) of every training view."""
        return (self.frame_size, int(self.frame_width)) if self.full_frame else (self.frame_size, self.frame_size)


def sample_frame_indices(
    rng: np.random.Generator, num_frames: int, fps: float, min_gap: float, max_gap: float
) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices and timestamps of one clip with uniformly drawn gaps.

    Sampled times accumulate uniform gaps; each snaps to the nearest frame of a video at
    ``fps``. Two times that snap to one frame take the next frame instead, so indices
    strictly increase.

    Returns:
        (int64 indices [T] starting at 0, float32 timestamps [T] = index / fps, first 0).
    """
    gaps = rng.uniform(min_gap, max_gap, num_frames - 1)
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    indices = np.rint(times * fps).astype(np.int64)
    for i in range(1, num_frames):
        indices[i] = max(indices[i], indices[i - 1] + 1)
    timestamps = indices.astype(np.float32) / np.float32(fps)
    return indices, timestamps - timestamps[0]


def sample_crop_box(
    rng: np.random.Generator,
    height: int,
    width: int,
    scale: tuple[float, float] = (0.6, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> tuple[int, int, int, int]:
    """A random resized crop box ``(top, left, crop_height, crop_width)``.

    The area is a fraction in ``scale`` of the largest square that fits (the square output
    is the target, and the aspect jitter is around it; on wide frames a fraction of the
    whole frame would rarely leave room for a near-square crop). The aspect ratio is
    log-uniform in ``ratio``. As in torchvision, a draw that does not fit is retried and
    the fallback is the centred largest square.
    """
    base = min(height, width) ** 2
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(attempts):
        area = base * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        crop_w = int(round(math.sqrt(area * aspect)))
        crop_h = int(round(math.sqrt(area / aspect)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(rng.integers(0, height - crop_h + 1))
            left = int(rng.integers(0, width - crop_w + 1))
            return top, left, crop_h, crop_w
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def resized_crop(frames: np.ndarray, box: tuple[int, int, int, int], size: int, flip: bool = False) -> torch.Tensor:
    """Cuts one box from every frame and resizes it to ``size`` x ``size`` (cv2 bilinear).

    Args:
        frames: uint8 [T, H, W, 3].
        box: (top, left, height, width), shared by all frames.
        size: output side.
        flip: mirror every frame horizontally.

    Returns:
        uint8 [T, 3, size, size].
    """
    top, left, h, w = box
    out = []
    for frame in frames:
        crop = np.ascontiguousarray(frame[top : top + h, left : left + w])
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
        out.append(crop[:, ::-1] if flip else crop)
    return torch.from_numpy(np.ascontiguousarray(np.stack(out).transpose(0, 3, 1, 2)))


def scaled_crop_box(rng: np.random.Generator, height: int, width: int) -> tuple[int, int, int, int]:
    """DINO-Foresight's random crop: both sides scaled by s ~ U(0.5, 1), placed uniformly."""
    scale = rng.random() / 2 + 0.5
    crop_h, crop_w = int(height * scale), int(width * scale)
    return int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1)), crop_h, crop_w


def whole_frame_view(frames: np.ndarray, rng: np.random.Generator, sampling: ClipSampling) -> torch.Tensor:
    """One whole-frame view [1, T, 3, H, W]: optional scaled crop and flip, then PIL-style bilinear resize."""
    from dfbench.features.multilayer_pca import resize_frames as pil_resize

    if sampling.augment:
        top, left, h, w = scaled_crop_box(rng, frames.shape[1], frames.shape[2])
        frames = frames[:, top : top + h, left : left + w]
        if rng.random() < sampling.flip_p:
            frames = frames[:, :, ::-1]
    clip = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
    return pil_resize(clip, sampling.view_size)[None]


def clip_views(frames: np.ndarray, rng: np.random.Generator, sampling: ClipSampling) -> torch.Tensor:
    """The training views of one clip: [V, T, 3, S, S] uint8 ([1, T, 3, H, W] for whole frames).

    With augmentation: one view, a shared random resized crop, flipped with ``flip_p``.
    Without: the protocol's resize to short side S and its square crops (two for wide
    frames), exactly the crops the evaluation feeds the models.
    """
    if sampling.full_frame:
        return whole_frame_view(frames, rng, sampling)
    if sampling.augment:
        box = sample_crop_box(rng, frames.shape[1], frames.shape[2], sampling.crop_scale, sampling.crop_ratio)
        flip = bool(rng.random() < sampling.flip_p)
        return resized_crop(frames, box, sampling.frame_size, flip)[None]
    return square_crops(resize_frames(frames, sampling.frame_size))


class ClipSource(Protocol):
    """Where training frames come from."""

    fps: float

    def frames(self, index: int, frame_indices: np.ndarray) -> np.ndarray:
        """uint8 [T, H, W, 3] frames ``frame_indices`` of video ``index`` at native size."""


class SyntheticSource:
    """Videos of the embedded synthetic world; video ``index`` is clip ``(split, index)``.

    Any index renders, so the pool size is a config choice, and the "train" split never
    overlaps the evaluation clips ("val").
    """

    def __init__(self, split: str = "train") -> None:
        from dfbench.data.synthetic import load_config

        config = load_config()
        if split not in config.splits:
            raise DfbenchError(f"synthetic has no split {split!r}; choose one of {sorted(config.splits)}")
        self.split = split
        self.fps = config.fps

    def frames(self, index: int, frame_indices: np.ndarray) -> np.ndarray:
        from dfbench.data.synthetic import generate

        # Rendering every step up to the last keeps the world identical to `generate`'s;
        # the unused frames cost a few milliseconds.
        world = generate(self.split, index, int(frame_indices[-1]) + 1, stride=1)
        return world.frames[frame_indices]


def open_source(data: dict[str, Any]) -> ClipSource:
    """The clip source a training config's ``data`` section names.

    ``source: synthetic`` renders the embedded world. ``source: videos`` is the paper's
    setting (a folder of videos, e.g. Kinetics); decoding and indexing real videos for
    training is not part of dfbench, so this raises a :class:`DfbenchError` that says
    what is missing.
    """
    kind = data.get("source")
    if kind == "synthetic":
        return SyntheticSource(split=data.get("split", "train"))
    if kind == "videos":
        root = data.get("root")
        if not root or not Path(root).expanduser().is_dir():
            raise DfbenchError(
                f"this config trains on a folder of videos (data.root = {root!r}), which is not there; "
                "set data.root to your video folder, or train the tiny models with configs/train/tiny-*.yaml."
            )
        raise DfbenchError(
            f"training on real videos ({root}) needs a video decoder and clip index, which dfbench does not ship; "
            "the paper-scale configs document the recipe. Use a configs/train/tiny-*.yaml config for the synthetic world."
        )
    raise DfbenchError(f"unknown training data source {kind!r}; use 'synthetic' or 'videos'.")


def sample_clip(
    source: ClipSource, index: int, rng: np.random.Generator, sampling: ClipSampling
) -> tuple[torch.Tensor, torch.Tensor]:
    """Views [V, T, 3, S, S] uint8 and timestamps [T] (seconds from the first frame) of one clip."""
    indices, timestamps = sample_frame_indices(rng, sampling.num_frames, source.fps, sampling.min_gap, sampling.max_gap)
    views = clip_views(source.frames(index, indices), rng, sampling)
    return views, torch.from_numpy(timestamps)


def clip_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of clip ``index``: its offsets and crop depend on (seed, index) only."""
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


@dataclass
class ClipFeatureCache:
    """Frozen features of a fixed pool of training views, kept in memory.

    Attributes:
        features: float32 [M, T, N, D].
        timestamps: float32 [M, T] seconds, first frame 0.
        grid: (h, w) patch grid of a view.
    """

    features: torch.Tensor
    timestamps: torch.Tensor
    grid: tuple[int, int]

    def __len__(self) -> int:
        return self.features.shape[0]

    @classmethod
    def build(
        cls,
        source: ClipSource,
        sampling: ClipSampling,
        feature_space: torch.nn.Module,
        num_clips: int,
        seed: int,
        batch_clips: int = 32,
        progress: Any = None,
    ) -> ClipFeatureCache:
        """Encodes ``num_clips`` clips (every view of each) with the feature space.

        Args:
            source: where frames come from.
            sampling: offsets and crops.
            feature_space: the frozen encoder (``encode(uint8 [..., 3, H, W])``).
            num_clips: clips in the pool; videos 0 .. num_clips-1 of the source.
            seed: with the clip index, seeds each clip's offsets and crop.
            batch_clips: clips encoded per forward pass.
            progress: optional callable ``(done, total)``.
        """
        features, timestamps = [], []
        for start in range(0, num_clips, batch_clips):
            views, times = [], []
            for index in range(start, min(num_clips, start + batch_clips)):
                clip, ts = sample_clip(source, index, clip_rng(seed, index), sampling)
                views.append(clip)
                times += [ts] * clip.shape[0]
            frames = torch.cat(views)  # [V, T, 3, S, S]
            with torch.no_grad():
                features.append(feature_space.encode(frames).float().cpu())
            timestamps += times
            if progress is not None:
                progress(min(num_clips, start + batch_clips), num_clips)
        patch = int(feature_space.patch_size)
        grid = (sampling.view_size[0] // patch, sampling.view_size[1] // patch)
        return cls(torch.cat(features), torch.stack(timestamps), grid)
