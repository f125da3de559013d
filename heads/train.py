"""Training a linear head on frozen features of a training split (paper, appendix A).

The head sees exactly what it sees at evaluation: square crops of protocol-resized
frames, features at patch resolution, outputs upsampled onto the crop's label half.
The loss is the task's (``Task.training_loss``): cross-entropy over labelled pixels
for segmentation, the squared error over valid pixels (what RMSE measures) for depth.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from dfbench.data.base import Clip
from dfbench.features.base import FeatureSpace
from dfbench.heads.catalog import build_head
from dfbench.heads.linear import features_to_map
from dfbench.protocol import align_to_labels, label_halves, square_crops
from dfbench.tasks import get_task


@dataclass
class HeadExample:
    """One crop of one frame: features [N, D] and its label half [lh, lw]."""

    features: torch.Tensor
    label: torch.Tensor
    crop: int
    frame_size: tuple[int, int]


@torch.no_grad()
def head_examples(
    clips: Iterable[Clip], feature_space: FeatureSpace, task: str, frames_per_clip: int | None = None
) -> list[HeadExample]:
    """Encodes the labelled frames of training clips into (features, label half) pairs."""
    examples = []
    definition = get_task(task)
    for clip in clips:
        labels = clip.labels[task]
        height, width = clip.frames.shape[-2:]
        labelled = [t for t, has in enumerate(definition.has_labels(labels).tolist()) if has]
        if frames_per_clip is not None:
            labelled = labelled[-frames_per_clip:]
        if not labelled:
            continue
        crops = square_crops(clip.frames[labelled])
        feats = feature_space.encode(crops.reshape(-1, *crops.shape[-3:])).float().cpu()
        feats = feats.reshape(crops.shape[0], len(labelled), *feats.shape[-2:])
        halves = label_halves(labels[labelled], height, width, definition.ignore_value)
        for r in range(crops.shape[0]):
            for i in range(len(labelled)):
                examples.append(HeadExample(feats[r, i], halves[r, i], r, (height, width)))
    return examples


def head_loss(head: nn.Module, batch: list[HeadExample], grid: tuple[int, int], task: str) -> torch.Tensor:
    """Mean loss over the labelled pixels of a batch of crops.

    Crops that share a crop index, label size and frame size are aligned together.
    """
    feats = torch.stack([ex.features for ex in batch])
    outputs = head(features_to_map(feats, grid))
    groups: dict[tuple, list[int]] = {}
    for row, ex in enumerate(batch):
        groups.setdefault((ex.crop, tuple(ex.label.shape), ex.frame_size), []).append(row)
    total, pixels = outputs.new_zeros(()), 0
    definition = get_task(task)
    for (crop, label_size, frame_size), rows in groups.items():
        out = align_to_labels(outputs[rows], crop, label_size, *frame_size)
        labels = torch.stack([batch[r].label for r in rows])
        loss, count = definition.training_loss(out, labels)
        total, pixels = total + loss, pixels + count
    return total / max(pixels, 1)


def train_head(
    examples: list[HeadExample],
    task: str,
    num_classes: int,
    dim: int,
    grid: tuple[int, int],
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-2,
    seed: int = 0,
) -> nn.Module:
    """Fits BatchNorm + 1x1 linear head with AdamW; returns it in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = build_head(task, dim, num_classes)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * max(1, len(examples) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(examples), generator=generator).tolist()
        for start in range(0, len(order) - batch_size + 1 if len(order) >= batch_size else 1, batch_size):
            batch = [examples[i] for i in order[start : start + batch_size]]
            loss = head_loss(head, batch, grid, task)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return head.eval()
