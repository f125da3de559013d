"""Several processes on one evaluation (``torchrun``), with numbers identical to one process.

Clips are sharded by position in the data set's order (process r takes clips
r, r + W, r + 2W, ...); every clip's numbers depend only on the clip, its crop and the
seed (see :func:`dfbench.evaluate.row_generator`), so how the clips are split never
changes a record. Rank 0 alone touches the result files: it takes the locks, reads
the records done so far, appends what every rank computed and writes the result.

Every step is collective: each rank reports either its value or its error, so one
failing rank makes all of them stop with an error at the same point, before anything
is written for that step, instead of leaving the others waiting on it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch

from dfbench.errors import DfbenchError

T = TypeVar("T")

# How long a rank waits for the others at one step before giving up (a clip of a big
# model on a slow machine takes minutes, so generous).
STEP_TIMEOUT = timedelta(minutes=60)


def _error_line(err: BaseException) -> str:
    if isinstance(err, DfbenchError):
        return str(err)
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


class RankFailed(DfbenchError):
    """Another rank failed: this one stops too, writing nothing."""


@dataclass
class Ranks:
    """This process's place among the processes of one evaluation.

    Attributes:
        rank: this process's index, 0 to ``world - 1``; rank 0 writes the results.
        world: number of processes.
        local_rank: index among the processes of this machine (its GPU with CUDA).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    group: Any = None  # the process group object collectives go through (gloo)
    started: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Ranks:
        """Reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (set by torchrun); one process without them."""
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError as err:
            raise DfbenchError(f"WORLD_SIZE, RANK and LOCAL_RANK must be integers ({err}); launch with torchrun.") from None
        if world < 1 or not 0 <= rank < world:
            raise DfbenchError(f"RANK {rank} is not in 0..WORLD_SIZE-1 (WORLD_SIZE {world}); launch with torchrun.")
        return cls(rank=rank, world=world, local_rank=local)

    def device_name(self, device: str) -> str:
        """``cuda`` without an index means this rank's own GPU (``cuda:LOCAL_RANK``)."""
        if self.world > 1 and device == "cuda":
            return f"cuda:{self.local_rank}"
        return device

    def start(self, device: torch.device) -> None:
        """Joins the process group: nccl for CUDA devices, gloo otherwise.

        Records are Python objects exchanged once per batch, so they always go through
        a gloo group on the CPU; with nccl that is a second group beside the default one.
        """
        if self.world == 1 or self.started:
            return
        import torch.distributed as dist

        if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
            raise DfbenchError("WORLD_SIZE is set but MASTER_ADDR/MASTER_PORT are not; launch with torchrun.")
        cuda = device.type == "cuda"
        if cuda:
            torch.cuda.set_device(device)
        backend = "nccl" if cuda else "gloo"
        dist.init_process_group(backend, init_method="env://", rank=self.rank, world_size=self.world,
                                timeout=STEP_TIMEOUT)
        self.group = dist.new_group(backend="gloo", timeout=STEP_TIMEOUT) if cuda else dist.group.WORLD
        self.started = True

    def stop(self) -> None:
        """Leaves the process group and joins its worker threads while Python still runs.

        ``destroy_process_group`` leaves a group object alive for as long as anything
        references it, and so its worker threads. A worker that frees its last
        collective's tensors after the interpreter has begun to finalize needs the GIL
        and aborts the process (SIGABRT, "terminate called without an active
        exception") after a complete run. Dropping the last reference here runs the
        group's destructor, which waits for its workers and joins them.
        """
        if self.started:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.group = None
            self.started = False

    def shard(self, items: list[T]) -> list[T]:
        """This rank's part of ``items``: positions r, r + W, r + 2W, ..."""
        return items[self.rank :: self.world]

    def steps(self, count: int, batch_size: int) -> int:
        """Batches of the largest shard of ``count`` items: every rank runs this many steps."""
        largest = -(-count // self.world)
        return -(-largest // batch_size)

    def _exchange(self, payload: tuple[str | None, Any]) -> list[tuple[str | None, Any]]:
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, payload, group=self.group)
        return gathered

    def _raise_failed(self, gathered: list[tuple[str | None, Any]], own: BaseException | None) -> None:
        failed = [(r, err) for r, (err, _) in enumerate(gathered) if err is not None]
        if not failed:
            return
        if own is not None:
            raise own
        rank, line = failed[0]
        raise RankFailed(f"rank {rank} of {self.world} failed ({line}); nothing was written for the clips "
                         "under way: fix it and run the same command again to resume.")

    def all(self, fn: Callable[[], T], share: bool = True) -> list[T | None]:
        """Runs ``fn`` on every rank; every rank's value in rank order, or an error on all ranks.

        With ``share=False`` only the errors travel (for values that stay in their
        process, such as loaded models): the list holds this rank's value, None for the others.
        """
        if self.world == 1:
            return [fn()]
        value = None
        try:
            value, payload, own = fn(), None, None
        except Exception as err:  # reported to the others; KeyboardInterrupt ends the launcher's job anyway
            payload, own = _error_line(err), err
        gathered = self._exchange((payload, value if share else None))
        self._raise_failed(gathered, own)
        if not share:
            return [value if r == self.rank else None for r in range(self.world)]
        return [v for _, v in gathered]

    def each(self, fn: Callable[[], T]) -> T:
        """Runs ``fn`` on every rank and returns this rank's value, or an error on all ranks."""
        return self.all(fn, share=False)[self.rank]

    def main(self, fn: Callable[[], T]) -> T:
        """Runs ``fn`` on rank 0 only; its value on every rank, or its error on all ranks."""
        if self.world == 1:
            return fn()
        import torch.distributed as dist

        own = None
        payload: list[Any] = [(None, None)]
        if self.is_main:
            try:
                payload = [(None, fn())]
            except Exception as err:
                payload, own = [(_error_line(err), None)], err
        dist.broadcast_object_list(payload, src=0, group=self.group)
        self._raise_failed([payload[0]], own)
        return payload[0][1]


__all__ = ["RankFailed", "Ranks"]
