"""Clips from an evaluation data set through a torch DataLoader, decoded in worker processes.

Decoding PNG/JPEG frames and the protocol resize take longer than a small model's
forward pass (a Cityscapes clip is seven 1024x2048 PNGs), so they run in DataLoader
workers and overlap with compute. The order is the data set's ``sample_ids()`` order
whatever the number of workers: the DataLoader hands out indices in sequence and
returns batches in that sequence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import torch
from torch.utils.data import DataLoader, Dataset

from dfbench.data.base import Clip, EvalDataset


class ClipSequence(Dataset):
    """A map-style view of an :class:`EvalDataset` over a fixed list of sample ids."""

    def __init__(self, dataset: EvalDataset, sample_ids: Sequence[str] | None = None):
        self.dataset = dataset
        self.sample_ids = list(dataset.sample_ids() if sample_ids is None else sample_ids)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def __getitem__(self, index: int) -> Clip:
        return self.dataset.load(self.sample_ids[index])


class ClipBatch(list):
    """A batch of clips: a list, since clips differ in size across data sets and label layouts.

    The DataLoader's pin-memory thread calls :meth:`pin_memory` on it; a plain list of
    dataclasses would pass through unpinned, and the copy to the GPU could not overlap.
    """

    def pin_memory(self, device: str | None = None) -> ClipBatch:
        return ClipBatch(pin_clip(clip) for clip in self)


def pin_clip(clip: Clip) -> Clip:
    """The clip with its frames, timestamps and labels in page-locked memory."""
    return dataclasses.replace(
        clip,
        frames=clip.frames.pin_memory(),
        timestamps=clip.timestamps.pin_memory(),
        labels={task: labels.pin_memory() for task, labels in clip.labels.items()},
    )


def collate_clips(clips: list[Clip]) -> ClipBatch:
    """Keeps a batch as a list (see :class:`ClipBatch`)."""
    return ClipBatch(clips)


def _single_threaded_worker(_worker_id: int) -> None:
    # Each worker decodes one clip at a time; letting OpenCV and torch spawn a thread
    # pool per worker only oversubscribes the cores the workers already share.
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def clip_loader(
    dataset: EvalDataset,
    *,
    batch_size: int = 1,
    num_workers: int = 2,
    prefetch_factor: int | None = 2,
    persistent_workers: bool = False,
    sample_ids: Sequence[str] | None = None,
    pin_memory: bool = False,
    multiprocessing_context: str | None = "spawn",
) -> DataLoader:
    """A DataLoader that yields lists of :class:`Clip` in the data set's order.

    Args:
        dataset: the evaluation data set; its sample list is built here, once, so the
            workers receive it instead of each listing the tree again.
        batch_size: clips per yielded list.
        num_workers: decoding processes (0 decodes in the calling process).
        prefetch_factor: batches each worker keeps ready (ignored with 0 workers).
        persistent_workers: keep workers alive between passes over the loader.
        sample_ids: a subset (or a shard) of the ids to load, in the order given.
        pin_memory: pin the clip tensors (in the loader's pinning thread, off the main
            one) so their copies to the GPU are asynchronous.
        multiprocessing_context: how workers start. "spawn" by default: a forked
            worker inherits OpenCV's and OpenMP's thread pools mid-state and can hang
            on its first resize once the parent has resized images itself.

    Returns:
        An iterable of ``list[Clip]``.
    """
    clips = ClipSequence(dataset, sample_ids)
    workers = max(0, num_workers)
    return DataLoader(
        clips,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_clips,
        prefetch_factor=prefetch_factor if workers > 0 else None,
        persistent_workers=persistent_workers and workers > 0,
        worker_init_fn=_single_threaded_worker if workers > 0 else None,
        pin_memory=pin_memory,
        multiprocessing_context=multiprocessing_context if workers > 0 else None,
    )
