"""Create the embedded ``tiny`` feature space: a small DINOv3 ViT whose weights ship with dfbench.

What it does, deterministically (numpy PCG64 and torch seeds, a fixed intra-op thread count):

1. Builds a DINOv3ViTModel (patch 8, width 96, 4 layers, 4 heads, 4 registers) with the
   transformers initialisation (``initializer_range`` 0.02, which is also the feature
   space's ``noise_std``).
2. Trains it briefly, label-free, so that its final-norm patch tokens carry what a linear
   head needs on flat-coloured, textured synthetic scenes: a linear read-out (thrown away
   afterwards) regresses, per patch, the mean colour of its four 4x4 quadrants, its colour
   spread, its edge energy, the mean colour of its 3x3-patch neighbourhood and its position
   in the frame. Random-init tokens lose brightness and position to the final LayerNorm
   (see ``--probe-random``), which is why the weights are trained. The training frames are
   random compositions of coloured, textured shapes, not the probe's scenes.
3. Saves ``config.json``, ``model.safetensors`` and ``preprocessor_config.json`` to ``--out``.
4. Probes the result: BatchNorm + 1x1 conv heads fitted on features of generated street
   scenes (sky, building, road, vegetation, car, person; depth from a ground plane) and
   scored on held-out scenes after bilinear upsampling to pixels.

Re-running with the same torch version and ``--threads`` writes identical files.

Usage: python scripts/make_tiny_feature_space.py --out benchmark/assets/tiny-dinov3
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import DINOv3ViTConfig, DINOv3ViTModel

from dfbench.features.dinov3 import Dinov3FeatureSpace
from dfbench.features.tiny import TINY_FRAME_SIZE, TINY_NAME

TINY_CONFIG = dict(
    patch_size=8,
    hidden_size=96,
    intermediate_size=384,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_register_tokens=4,
    initializer_range=0.02,
)
CLASSES = ("sky", "building", "road", "vegetation", "car", "person")
MAX_DEPTH = 80.0


# ----------------------------------------------------------------------------- frames


def textured_fill(rng: np.random.Generator, height: int, width: int, colour: np.ndarray) -> np.ndarray:
    """A float HxWx3 region of ``colour`` with one of: flat, noise, stripes, checks, gradient."""
    kind = rng.integers(5)
    base = np.broadcast_to(colour, (height, width, 3)).astype(np.float32)
    amp = rng.uniform(10, 60)
    if kind == 1:
        base = base + rng.normal(0, amp / 2, (height, width, 1))
    elif kind == 2:
        period = rng.uniform(2, 10)
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[:height, :width]
        wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        base = base + amp * wave[..., None]
    elif kind == 3:
        size = int(rng.integers(2, 8))
        yy, xx = np.mgrid[:height, :width]
        base = base + amp * (((yy // size + xx // size) % 2) * 2 - 1)[..., None]
    elif kind == 4:
        ramp = np.linspace(-1, 1, height)[:, None, None] * rng.uniform(-1, 1, 3)
        base = base + amp * ramp
    return base


def random_shapes(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A uint8 HxWx3 frame of 3-9 overlapping coloured, textured shapes on a textured background."""
    frame = textured_fill(rng, height, width, rng.uniform(0, 255, 3))
    for _ in range(rng.integers(3, 10)):
        mask = np.zeros((height, width), np.uint8)
        cx, cy = int(rng.integers(width)), int(rng.integers(height))
        sx, sy = int(rng.integers(3, width // 2)), int(rng.integers(3, height // 2))
        if rng.random() < 0.5:
            cv2.rectangle(mask, (cx - sx, cy - sy), (cx + sx, cy + sy), 1, -1)
        else:
            cv2.ellipse(mask, (cx, cy), (sx, sy), float(rng.uniform(0, 180)), 0, 360, 1, -1)
        fill = textured_fill(rng, height, width, rng.uniform(0, 255, 3))
        frame = np.where(mask[..., None] > 0, fill, frame)
    frame = frame + rng.normal(0, rng.uniform(0, 8), frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def jitter(rng: np.random.Generator, colour: tuple[float, float, float], spread: float = 20.0) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) + rng.normal(0, spread, 3), 0, 255)


def street_scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A street scene: uint8 HxWx3 frame, int64 HxW class map (CLASSES), float32 HxW depth in metres."""
    frame = np.zeros((height, width, 3), np.float32)
    seg = np.zeros((height, width), np.int64)
    horizon = int(rng.uniform(0.3, 0.55) * height)
    rows = np.arange(height, dtype=np.float32)[:, None]
    # Ground-plane depth: camera 1.5 m high, focal length ~ the frame height.
    ground_depth = np.minimum(MAX_DEPTH, 1.5 * height / np.maximum(rows - horizon + 0.5, 1e-3))
    depth = np.where(rows < horizon, MAX_DEPTH, ground_depth).repeat(width, 1).astype(np.float32)

    sky = jitter(rng, (120, 170, 230), 25)
    frame[:horizon] = sky + np.linspace(-30, 30, horizon)[:, None, None] * rng.uniform(0.5, 1.5)
    grass = textured_fill(rng, height, width, jitter(rng, (70, 140, 60), 20))
    frame[horizon:] = grass[horizon:]
    seg[horizon:] = CLASSES.index("vegetation")

    vanish = rng.uniform(0.3, 0.7) * width
    half_bottom = rng.uniform(0.3, 0.6) * width
    road = np.zeros((height, width), np.uint8)
    corners = np.array([[vanish - 1, horizon], [vanish + 1, horizon], [vanish + half_bottom, height], [vanish - half_bottom, height]])
    cv2.fillPoly(road, [corners.round().astype(np.int32)], 1)
    road_colour = jitter(rng, (110, 110, 115), 15)
    frame = np.where(road[..., None] > 0, road_colour + rng.normal(0, 6, frame.shape), frame)
    seg[road > 0] = CLASSES.index("road")

    for _ in range(rng.integers(1, 4)):
        left = int(rng.integers(-width // 4, width))
        right = left + int(rng.integers(width // 8, width // 2))
        top = int(rng.integers(0, max(1, horizon - 4)))
        wall = textured_fill(rng, horizon - top, max(1, right - left), jitter(rng, (150, 120, 100), 40))
        region = (slice(top, horizon), slice(max(0, left), max(0, min(width, right))))
        offset = max(0, -left)
        frame[region] = wall[:, offset : offset + region[1].stop - region[1].start]
        seg[region] = CLASSES.index("building")
        depth[region] = rng.uniform(25, 60)

    objects = [("car", (200, 40, 40), 0.28, 0.5), ("person", (230, 190, 150), 0.45, 0.12)]
    for _ in range(rng.integers(1, 5)):
        label, colour, tall, wide = objects[rng.integers(len(objects))]
        bottom = int(rng.integers(horizon + 2, height + 1))
        scale = (bottom - horizon) / (height - horizon)
        obj_h = max(2, int(tall * height * scale * rng.uniform(0.8, 1.2)))
        obj_w = max(2, int(wide * height * scale * rng.uniform(0.8, 1.2)))
        cx = int(rng.integers(0, width))
        mask = np.zeros((height, width), np.uint8)
        if label == "car":
            cv2.rectangle(mask, (cx - obj_w // 2, bottom - obj_h), (cx + obj_w // 2, bottom - 1), 1, -1)
            colour = rng.uniform(0, 255, 3)
        else:
            cv2.ellipse(mask, (cx, bottom - obj_h // 2), (max(1, obj_w // 2), obj_h // 2), 0, 0, 360, 1, -1)
        fill = textured_fill(rng, height, width, jitter(rng, colour, 25))
        frame = np.where(mask[..., None] > 0, fill, frame)
        seg[mask > 0] = CLASSES.index(label)
        depth[mask > 0] = ground_depth[min(bottom, height) - 1, 0]

    frame = frame + rng.normal(0, 4, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8), seg, depth


def to_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


# ----------------------------------------------------------------------------- training


def patch_targets(frames: torch.Tensor, patch: int) -> torch.Tensor:
    """Per-patch regression targets [B, N, 22] of uint8 frames [B, 3, H, W] (see the module docstring)."""
    x = frames.float() / 255
    batch, _, height, width = x.shape
    h, w = height // patch, width // patch
    quadrants = F.avg_pool2d(x, patch // 2)  # B,3,2h,2w
    quadrants = quadrants.view(batch, 3, h, 2, w, 2).permute(0, 2, 4, 1, 3, 5).reshape(batch, h * w, 12)
    mean = F.avg_pool2d(x, patch)
    spread = (F.avg_pool2d(x * x, patch) - mean * mean).clamp_min(0).sqrt()
    gray = x.mean(1, keepdim=True)
    edge_x = F.avg_pool2d(F.pad((gray[..., 1:] - gray[..., :-1]).abs(), (0, 1)), patch)
    edge_y = F.avg_pool2d(F.pad((gray[..., 1:, :] - gray[..., :-1, :]).abs(), (0, 0, 0, 1)), patch)
    neighbourhood = F.avg_pool2d(x, 3 * patch, stride=patch, padding=patch, count_include_pad=False)
    rows = (torch.arange(h) + 0.5) / h * 2 - 1
    cols = (torch.arange(w) + 0.5) / w * 2 - 1
    position = torch.stack(torch.meshgrid(rows, cols, indexing="ij")).expand(batch, 2, h, w)
    maps = torch.cat([spread, edge_x, edge_y, neighbourhood, position], 1).flatten(2).transpose(1, 2)
    return torch.cat([quadrants, maps], -1)


def train(model: DINOv3ViTModel, space: Dinov3FeatureSpace, steps: int, batch: int, seed: int) -> None:
    """Label-free training of ``model`` (through ``space``'s preprocessing) on random shape frames."""
    rng = np.random.default_rng(seed)
    readout = nn.Linear(model.config.hidden_size, 22)
    params = list(model.parameters()) + list(readout.parameters())
    optimiser = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=1e-3, total_steps=steps, pct_start=0.1)
    sizes = [(64, 64), (64, 128), (32, 64)]
    calibration = torch.cat([patch_targets(to_tensor([random_shapes(rng, 64, 64) for _ in range(64)]), 8)]).flatten(0, 1)
    centre, scale = calibration.mean(0), calibration.std(0) + 1e-3
    # Eval mode on purpose: the model has no dropout, and train mode would switch on the
    # RoPE coordinate rescaling, which blurs the position the read-out has to learn.
    model.eval().requires_grad_(True)
    start = time.time()
    for step in range(steps):
        height, width = sizes[step % len(sizes)]
        frames = to_tensor([random_shapes(rng, height, width) for _ in range(batch)])
        tokens = model(pixel_values=space.preprocess(frames)).last_hidden_state[:, space.num_prefix_tokens :]
        loss = F.mse_loss(readout(tokens), (patch_targets(frames, 8) - centre) / scale)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        schedule.step()
        if step % 100 == 0 or step == steps - 1:
            click.echo(f"step {step:5d}  loss {loss.item():.4f}  {time.time() - start:.0f}s")
    model.requires_grad_(False)


# ----------------------------------------------------------------------------- probe


def probe(space: Dinov3FeatureSpace, seed: int, train_frames: int = 256, test_frames: int = 128, steps: int = 300) -> dict[str, float]:
    """Fit BatchNorm + 1x1 conv segmentation and depth heads on scene features; score held-out scenes.

    Returns:
        pixel accuracy and mIoU (over classes present in the test set) of the segmentation head,
        and the depth head's RMSE in metres, all at pixel resolution.
    """
    rng = np.random.default_rng(seed)
    scenes = [street_scene(rng, 64, 64) for _ in range(train_frames + test_frames)]
    frames = to_tensor([s[0] for s in scenes])
    seg = torch.from_numpy(np.stack([s[1] for s in scenes]))
    depth = torch.from_numpy(np.stack([s[2] for s in scenes]))
    grid = 64 // space.patch_size
    feats = space.encode(frames).transpose(1, 2).reshape(len(scenes), space.dim, grid, grid)
    torch.manual_seed(seed)
    heads = {
        "seg": nn.Sequential(nn.BatchNorm2d(space.dim), nn.Conv2d(space.dim, len(CLASSES), 1)),
        "depth": nn.Sequential(nn.BatchNorm2d(space.dim), nn.Conv2d(space.dim, 1, 1)),
    }
    params = [p for head in heads.values() for p in head.parameters()]
    optimiser = torch.optim.Adam(params, lr=1e-2)
    train_x, test_x = feats[:train_frames], feats[train_frames:]
    for _ in range(steps):
        logits = F.interpolate(heads["seg"](train_x), size=(64, 64), mode="bilinear", align_corners=False)
        pred_depth = F.interpolate(heads["depth"](train_x), size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
        loss = F.cross_entropy(logits, seg[:train_frames]) + F.l1_loss(pred_depth, depth[:train_frames]) / 10
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    for head in heads.values():
        head.eval()
    with torch.no_grad():
        pred = F.interpolate(heads["seg"](test_x), size=(64, 64), mode="bilinear", align_corners=False).argmax(1)
        pred_depth = F.interpolate(heads["depth"](test_x), size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    truth = seg[train_frames:]
    ious = []
    for c in range(len(CLASSES)):
        union = ((pred == c) | (truth == c)).sum()
        if (truth == c).any():
            ious.append((((pred == c) & (truth == c)).sum() / union).item())
    rmse = (pred_depth - depth[train_frames:]).square().mean().sqrt().item()
    return {"pixel_accuracy": (pred == truth).float().mean().item(), "miou": float(np.mean(ious)), "depth_rmse": rmse}


# ----------------------------------------------------------------------------- main


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("benchmark/assets/tiny-dinov3"), show_default=True)
@click.option("--steps", default=1500, show_default=True, help="training steps (0 keeps the random init)")
@click.option("--batch", default=32, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True, help="intra-op threads; part of what makes re-runs identical")
@click.option("--probe-random", is_flag=True, help="also probe the untrained random-init model")
def main(out: Path, steps: int, batch: int, seed: int, threads: int, probe_random: bool) -> None:
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    model = DINOv3ViTModel(DINOv3ViTConfig(**TINY_CONFIG))
    space = Dinov3FeatureSpace(model, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1 / 255, name=TINY_NAME, frame_size=TINY_FRAME_SIZE)
    if probe_random:
        click.echo(f"probe, random init: {probe(space, seed + 1)}")
    if steps:
        train(model, space, steps, batch, seed)
    space.eval()
    space.save_pretrained(out)
    size = sum(f.stat().st_size for f in out.iterdir())
    click.echo(f"wrote {out} ({size / 1e6:.2f} MB)")
    click.echo(f"probe: {probe(Dinov3FeatureSpace.from_pretrained(out, name=TINY_NAME, frame_size=TINY_FRAME_SIZE), seed + 1)}")


if __name__ == "__main__":
    main()
