"""The harness's side of pixel models: whole frames in, crops re-encoded out.

The paper's Cosmos protocol (appendix B): frames are resized with their aspect ratio
kept (KITTI already squashed to 1:2 by its loader) and padded to the model's input
shape; after generation the padding is removed and the same left/right square crops
as for every model are taken, and each predicted crop is re-encoded with the feature
space. The crops' features are then scored like any forecast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from dfbench.adapters.pixel import PixelContext, PixelWorldModel
from dfbench.adapters.spec import PixelInput
from dfbench.errors import DfbenchError
from dfbench.protocol import Window, resize_frame, square_crops

if TYPE_CHECKING:
    from dfbench.evaluate import EncodedClip
    from dfbench.features.base import FeatureSpace

# Predicted crops per feature-space call: bounds memory at 20 samples x 3 steps x 2 crops.
ENCODE_BATCH = 64


def is_pixel_model(model: object) -> bool:
    """Whether the harness feeds a model whole frames (a capability of its class)."""
    return isinstance(model, PixelWorldModel)


def fit_size(height: int, width: int, pixel_input: PixelInput, protocol_short: int) -> tuple[int, int]:
    """(h, w) of a frame resized for the model: short side as declared, inside the input shape."""
    short = pixel_input.short_side or protocol_short
    scale = min(short / min(height, width), pixel_input.height / height, pixel_input.width / width)
    return min(round(height * scale), pixel_input.height), min(round(width * scale), pixel_input.width)


def _resize(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 [..., 3, h, w] -> [..., 3, H, W] with cv2 bilinear, as the protocol resizes."""
    if tuple(frames.shape[-2:]) == size:
        return frames
    flat = frames.reshape(-1, *frames.shape[-3:]).permute(0, 2, 3, 1).cpu().numpy()
    out = np.stack([resize_frame(np.ascontiguousarray(f), size) for f in flat])
    return torch.from_numpy(out).permute(0, 3, 1, 2).reshape(*frames.shape[:-2], *size)


def prepare_frames(frames: torch.Tensor, pixel_input: PixelInput, protocol_short: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Frames uint8 [T, 3, h, w] -> (padded [T, 3, H, W], valid (h', w')); black padding bottom and right."""
    valid = fit_size(*frames.shape[-2:], pixel_input, protocol_short)
    resized = _resize(frames, valid)
    pad = (0, pixel_input.width - valid[1], 0, pixel_input.height - valid[0])
    return F.pad(resized, pad), valid


def unpad(generated: torch.Tensor, valid: tuple[int, int], frame_size: tuple[int, int]) -> torch.Tensor:
    """Generated [..., 3, H, W] -> the real image, back at the clip's protocol frame size."""
    return _resize(generated[..., : valid[0], : valid[1]].contiguous(), frame_size)


def pixel_context(
    clips: list[EncodedClip], window: Window, pixel_input: PixelInput, protocol_short: int, generators, device
) -> PixelContext:
    """The model's view of a window: its input frames per clip, as declared."""
    if max(pixel_input.context_map) >= len(window.context):
        raise DfbenchError(
            f"the model's context_map {pixel_input.context_map} indexes past the protocol's {len(window.context)} context frames."
        )
    picked = [window.context[i] for i in pixel_input.context_map]
    prepared = [prepare_frames(c.clip.frames[picked], pixel_input, protocol_short) for c in clips]
    if len({valid for _, valid in prepared}) != 1:
        raise DfbenchError("clips of one batch have different frame sizes; use --batch-size 1 for this data set.")
    stamps = clips[0].clip.timestamps
    return PixelContext(
        frames=torch.stack([frames for frames, _ in prepared]).to(device),
        timestamps=torch.stack([c.clip.timestamps[picked] for c in clips]).float().to(device),
        valid_size=prepared[0][1],
        generators=generators,
        protocol_step=float(stamps[window.context[-1]] - stamps[window.context[-2]]) if len(window.context) > 1 else 1.0,
    )


def check_generated(name: str, frames: torch.Tensor, expected: tuple[int, ...]) -> torch.Tensor:
    """One line when a model returns frames of another count, shape or type."""
    if not isinstance(frames, torch.Tensor) or frames.dtype != torch.uint8 or tuple(frames.shape) != expected:
        got = f"{tuple(frames.shape)} {frames.dtype}" if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise DfbenchError(
            f"model '{name}' generated frames {got}, expected uint8 {expected} [clips, samples, steps, 3, H, W]; "
            "fix the adapter's generate() or its pipeline settings."
        )
    return frames


@torch.no_grad()
def encode_predicted(feature_space: FeatureSpace, frames: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 [B, S, K, 3, h, w] predicted frames -> features [B * R, S, K, N, D], crop rows clip-major.

    The same square crops and encoder as the context (:func:`dfbench.evaluate.encode_clip`),
    in batches of :data:`ENCODE_BATCH` crops.
    """
    crops = square_crops(frames)  # [R, B, S, K, 3, s, s]
    crops = crops.transpose(0, 1).reshape(-1, *crops.shape[2:])  # [B * R, S, K, 3, s, s]
    flat = crops.reshape(-1, *crops.shape[-3:])
    encoded = [feature_space.encode(flat[i : i + ENCODE_BATCH].to(device)).float() for i in range(0, len(flat), ENCODE_BATCH)]
    return torch.cat(encoded).reshape(*crops.shape[:3], *encoded[0].shape[-2:])


def forecast_pixels(
    model: PixelWorldModel,
    feature_space: FeatureSpace,
    clips: list[EncodedClip],
    window: Window,
    num_samples: int,
    generators,
    device: torch.device,
) -> torch.Tensor:
    """Predicted features [rows, S, K, N, D] of a pixel model, rows as :func:`dfbench.evaluate.crop_rows`."""
    pixel_input = model.input_format()
    context = pixel_context(clips, window, pixel_input, feature_space.frame_size, generators, device)
    targets = torch.stack([c.clip.timestamps[list(window.targets)] for c in clips]).float().to(device)
    samples = num_samples if model.stochastic else 1
    generated = model.generate(context, targets, samples)
    expected = (len(clips), samples, len(window.targets), 3, pixel_input.height, pixel_input.width)
    generated = check_generated(model.name, generated, expected)
    frames = unpad(generated.cpu(), context.valid_size, clips[0].frame_size)
    return encode_predicted(feature_space, frames, device)
