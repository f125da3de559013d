"""Heads, upsampling and statistics of one window: labelled steps only, one head call.

Most of a window's head work used to go to steps without labels (Cityscapes labels one
frame of a clip, so two of the mid window's three steps have none) and to a second
pass for "mean" when it was the same sample as "best". Here the (crop row, step)
entries with a valid pixel are picked first; the head runs once on just those, and
upsampling and statistics run on all of a clip's entries at once.

What stays as it was, so records do not change:

* an entry without a valid pixel has no statistics, as ``Task.statistics`` returning
  None meant before; one that returns None anyway is still skipped by the caller;
* the head sees each entry's features unchanged: the linear heads give the same bits
  whatever the batch (tests/test_head_stats.py checks it). A DPT head differs in the
  last bits between a batch of one and larger ones (up to ~1e-6 measured), so it runs
  once per clip, on what that clip alone would hand it (tests/test_batch_invariance.py);
* upsampling and statistics never mix clips, so a clip's numbers do not depend on
  the clips batched with it. (Multi-threaded float sums over large label maps depend
  on how many steps are summed at once; one thread gives the same bits either way.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dfbench.heads.linear import features_to_map
from dfbench.protocol import align_to_labels, crops_overlap
from dfbench.tasks import Task

# Upsampled outputs per statistics call, in elements: 512 MB of float32 (Cityscapes' 19
# classes at 1024 x 1024 are 20 M per entry, VSPW's 124 classes fewer pixels).
MAX_ELEMENTS = 1 << 27


@dataclass(frozen=True)
class RowLabels:
    """One crop row's side of a window: its labels at the target steps and where it was cut."""

    clip: int  # index of the clip in the batch
    crop: int  # 0 or 1, as square_crops cut it
    labels: torch.Tensor  # [K, lh, lw] (or [K, C', lh, lw]) label half at the window's targets
    frame_size: tuple[int, int]


def labelled_entries(task: Task, rows: Sequence[RowLabels]) -> list[tuple[int, int]]:
    """(row, step) of every entry whose labels have a valid pixel, row-major."""
    return [
        (row, step)
        for row, item in enumerate(rows)
        for step, has in enumerate(task.has_labels(item.labels).tolist())
        if has
    ]


@torch.no_grad()
def window_statistics(
    head: nn.Module, task: Task, chosen: torch.Tensor, grid: tuple[int, int], rows: Sequence[RowLabels],
    whole_frames: bool = False,
) -> list[list[Any | None]]:
    """Per crop row, per step: the task's statistics of the head on ``chosen`` [rows, K, N, D].

    None where the step's labels have no valid pixel (the head never ran there).
    ``whole_frames`` (a protocol without crops): the head's outputs go to the task as they
    are, and the task upsamples them to its full-size labels.
    """
    out: list[list[Any | None]] = [[None] * chosen.shape[1] for _ in rows]
    entries = labelled_entries(task, rows)
    if not entries:
        return out
    outputs = _head_outputs(head, chosen, grid, entries, rows)
    for members in _groups(entries, rows):
        first = rows[entries[members[0]][0]]
        for chunk in _chunks(members, _entry_elements(outputs, first)):
            label_size = tuple(first.labels.shape[-2:])
            aligned = outputs[chunk] if whole_frames else align_to_labels(outputs[chunk], first.crop, label_size,
                                                                           *first.frame_size)
            labels = torch.stack([rows[entries[e][0]].labels[entries[e][1]] for e in chunk]).to(aligned.device)
            for e, step_stats in zip(chunk, task.statistics(aligned, labels, aligned.shape[1])):
                row, step = entries[e]
                out[row][step] = step_stats
    return out


def _head_outputs(
    head: nn.Module, chosen: torch.Tensor, grid: tuple[int, int], entries: list[tuple[int, int]],
    rows: Sequence[RowLabels],
) -> torch.Tensor:
    """The head's outputs [E, C, h', w'] on ``entries``, in their order.

    One call for all, unless the head declares ``batch_dependent_bits`` (a DPT head): then
    one call per clip, on exactly what a batch of that clip alone would hand it, so a
    clip's numbers do not depend on the clips batched with it.
    """
    if not getattr(head, "batch_dependent_bits", False):
        return head(features_to_map(_selected(chosen, entries), grid)).float()
    parts = []
    for first_row, stop_row in _clip_row_ranges(rows):
        own = [(row - first_row, step) for row, step in entries if first_row <= row < stop_row]
        if own:
            parts.append(head(features_to_map(_selected(chosen[first_row:stop_row], own), grid)).float())
    return torch.cat(parts)


def _clip_row_ranges(rows: Sequence[RowLabels]) -> list[tuple[int, int]]:
    """[first, stop) row ranges of each clip; a batch's rows are clip-major (``crop_rows``)."""
    ranges: list[tuple[int, int]] = []
    for row, item in enumerate(rows):
        if ranges and rows[ranges[-1][0]].clip == item.clip:
            ranges[-1] = (ranges[-1][0], row + 1)
        else:
            ranges.append((row, row + 1))
    return ranges


def _selected(chosen: torch.Tensor, entries: list[tuple[int, int]]) -> torch.Tensor:
    """The features [E, N, D] of ``entries``; ``chosen`` itself when that is all of them.

    Not a copy then: a head's bits can depend on its input's memory layout (a depth head
    on copy-last's strided features differs from one on a dense copy), and the numbers
    must stay those of a head on ``chosen``.
    """
    if len(entries) == chosen.shape[0] * chosen.shape[1]:
        return chosen
    row_index = torch.tensor([row for row, _ in entries], device=chosen.device)
    step_index = torch.tensor([step for _, step in entries], device=chosen.device)
    return chosen[row_index, step_index]


def _groups(entries: list[tuple[int, int]], rows: Sequence[RowLabels]) -> list[list[int]]:
    """Entry indices that share one upsampling: a clip's crops, split by crop when they overlap."""
    groups: dict[tuple[int, int], list[int]] = {}
    for e, (row, _) in enumerate(entries):
        item = rows[row]
        cut = item.crop if crops_overlap(*item.frame_size) else -1
        groups.setdefault((item.clip, cut), []).append(e)
    return list(groups.values())


def _entry_elements(outputs: torch.Tensor, item: RowLabels) -> int:
    """Elements of one entry once upsampled (overlapping crops go through a square first)."""
    lh, lw = item.labels.shape[-2:]
    side = max(lh, lw) if crops_overlap(*item.frame_size) else None
    return outputs.shape[1] * (side * side if side else lh * lw)


def _chunks(members: list[int], per_entry: int) -> list[list[int]]:
    size = max(1, MAX_ELEMENTS // max(per_entry, 1))
    return [members[i : i + size] for i in range(0, len(members), size)]


__all__ = ["MAX_ELEMENTS", "RowLabels", "labelled_entries", "window_statistics"]
