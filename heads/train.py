"""Training a head on frozen features of a training split (paper, appendix A; DINO-Foresight's Downstream).

The head sees exactly what it sees at evaluation: square crops of protocol-resized
frames, features at patch resolution, outputs upsampled onto the crop's label half.
The loss is the task's (``Task.training_loss``): cross-entropy over labelled pixels
for segmentation, the squared error over valid pixels (what RMSE measures) for depth.
A depth head can instead train with the scale-invariant log loss (``loss="silog"``,
:mod:`dfbench.heads.depth_loss`), as DINOv2's depth probes train this head form.

On a multi-layer PCA space (DINO-Foresight's) the head is a DPT head behind the inverse
PCA, so it trains on PCA-reconstructed features, as the official heads were
(FACTS.md, section 7). Whole frames are encoded (the protocol has no square crops). The
losses are the tasks': cross-entropy with ignore 255 for ``seg-mo`` and 256-way
cross-entropy on the 8-bit relative disparity (0 invalid) for ``reldepth256``, on logits
upsampled bicubically to the label size, as the evaluation scores them. FACTS.md does not
record the official training loop (loss resolution, optimiser, schedule, augmentation):
upsampling before the loss and AdamW with a cosine schedule are this module's choices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from dfbench.data.base import Clip
from dfbench.errors import DfbenchError
from dfbench.features.base import FeatureSpace
from dfbench.heads.catalog import build_head, space_pca
from dfbench.heads.depth_loss import silog_loss
from dfbench.heads.linear import features_to_map
from dfbench.protocol import align_to_labels, label_halves, square_crops
from dfbench.tasks import get_task


def _relative_disparity(depth: torch.Tensor) -> torch.Tensor:
    from dfbench.data.relative_depth_labels import relative_disparity_uint8

    return relative_disparity_uint8(depth)


# Targets of DINO-Foresight's tasks on data sets that carry only dfbench's own labels:
# task -> (label it is made from, conversion, classes; None: the source's). Relative depth
# is the per-image 8-bit disparity the protocol's pseudo-labels are
# (dfbench.data.relative_depth_labels), classified into 256 levels.
DERIVED_TARGETS = {"seg-mo": ("seg", None, None), "reldepth256": ("depth", _relative_disparity, 256)}


def task_classes(dataset_tasks: dict[str, int], task: str) -> int | None:
    """Classes of ``task`` on a data set with ``dataset_tasks``; None when it cannot be trained there."""
    if task in dataset_tasks:
        return dataset_tasks[task]
    source, _, classes = DERIVED_TARGETS.get(task, (None, None, None))
    if source not in dataset_tasks:
        return None
    return dataset_tasks[source] if classes is None else classes


def task_labels(labels: dict[str, torch.Tensor], task: str) -> torch.Tensor:
    """A clip's targets for ``task``: its own labels, or those derived from the labels it carries."""
    if task in labels:
        return labels[task]
    source, convert, _ = DERIVED_TARGETS.get(task, (None, None, None))
    if source not in labels:
        raise DfbenchError(f"the training clips have no labels for task '{task}' (they carry {', '.join(labels)}); "
                           "choose a task of the data set with --task.")
    return labels[source] if convert is None else convert(labels[source])


# Training losses: the task's own, or SigLoss (metric depth only).
HEAD_LOSSES = ("task", "silog")


def check_loss(loss: str, task: str) -> None:
    """Refuses a loss the task cannot train with."""
    if loss not in HEAD_LOSSES:
        raise DfbenchError(f"unknown head loss '{loss}'; choose one of {', '.join(HEAD_LOSSES)}.")
    if loss == "silog" and task != "depth":
        raise DfbenchError(f"the silog loss trains metric depth heads only, not task '{task}'; "
                           "drop --loss silog or train --task depth.")


@dataclass
class HeadExample:
    """One crop of one frame: features [N, D] and its label half [lh, lw] (crop None: the whole frame)."""

    features: torch.Tensor
    label: torch.Tensor
    crop: int | None
    frame_size: tuple[int, int]


@torch.no_grad()
def head_examples(
    clips: Iterable[Clip], feature_space: FeatureSpace, task: str, frames_per_clip: int | None = None
) -> list[HeadExample]:
    """Encodes the labelled frames of training clips into (features, label half) pairs.

    On a multi-layer PCA space each example is a whole frame and its full label map.
    """
    examples = []
    definition = get_task(task)
    whole = space_pca(feature_space) is not None
    for clip in clips:
        labels = task_labels(clip.labels, task)
        height, width = clip.frames.shape[-2:]
        labelled = [t for t, has in enumerate(definition.has_labels(labels).tolist()) if has]
        if frames_per_clip is not None:
            labelled = labelled[-frames_per_clip:]
        if not labelled:
            continue
        if whole:
            feats = feature_space.encode(clip.frames[labelled]).float().cpu()
            examples += [HeadExample(feats[i], labels[t], None, (height, width)) for i, t in enumerate(labelled)]
            continue
        crops = square_crops(clip.frames[labelled])
        feats = feature_space.encode(crops.reshape(-1, *crops.shape[-3:])).float().cpu()
        feats = feats.reshape(crops.shape[0], len(labelled), *feats.shape[-2:])
        halves = label_halves(labels[labelled], height, width, definition.ignore_value)
        for r in range(crops.shape[0]):
            for i in range(len(labelled)):
                examples.append(HeadExample(feats[r, i], halves[r, i], r, (height, width)))
    return examples


def head_loss(
    head: nn.Module, batch: list[HeadExample], grid: tuple[int, int], task: str, loss: str = "task"
) -> torch.Tensor:
    """Mean loss over the labelled pixels of a batch of crops (``silog``: SigLoss over them all).

    Crops that share a crop index, label size and frame size are aligned together.
    """
    feats = torch.stack([ex.features for ex in batch])
    outputs = head(features_to_map(feats, grid))
    groups: dict[tuple, list[int]] = {}
    for row, ex in enumerate(batch):
        groups.setdefault((ex.crop, tuple(ex.label.shape), ex.frame_size), []).append(row)
    total, pixels = outputs.new_zeros(()), 0
    definition = get_task(task)
    preds, targets = [], []
    for (crop, label_size, frame_size), rows in groups.items():
        # Whole frames: the task's loss brings the outputs to the label size itself.
        out = outputs[rows] if crop is None else align_to_labels(outputs[rows], crop, label_size, *frame_size)
        labels = torch.stack([batch[r].label for r in rows])
        if loss == "silog":
            valid = definition.valid(labels)
            preds.append(out[:, 0][valid])
            targets.append(labels[valid])
            continue
        part, count = definition.training_loss(out, labels)
        total, pixels = total + part, pixels + count
    if loss == "silog":
        return silog_loss(torch.cat(preds), torch.cat(targets))
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
    feature_space: FeatureSpace | None = None,
    dpt_config=None,
    loss: str = "task",
) -> nn.Module:
    """Fits the head with AdamW and a cosine schedule; returns it in eval mode.

    The head is the task's (BatchNorm + 1x1 linear for ``seg``/``depth``), or a DPT head
    of ``dpt_config``'s sizes behind the inverse PCA when ``feature_space`` is a
    multi-layer PCA space. ``loss`` is the task's own or ``silog`` (depth).
    """
    check_loss(loss, task)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = build_head(task, dim, num_classes, feature_space, dpt_config)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * max(1, len(examples) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(examples), generator=generator).tolist()
        for start in range(0, len(order) - batch_size + 1 if len(order) >= batch_size else 1, batch_size):
            batch = [examples[i] for i in order[start : start + batch_size]]
            value = head_loss(head, batch, grid, task, loss)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            schedule.step()
    return head.eval()
