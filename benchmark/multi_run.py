"""Many (model, data set) results in one pass over the clips, in one process or several.

Runs that share a data set and a feature space (the same feature-cache key) form a
group: each clip of the group is decoded and encoded by the backbone once, then every
model that still lacks it evaluates it. Each result keeps its own identity, lock and
records, and is written as soon as its last clip is in, so a group is the same as its
runs one after another, only cheaper. Under torchrun the clips are sharded over the
ranks (see :mod:`dfbench.distributed`); rank 0 alone reads and writes result files.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from dfbench.distributed import Ranks
from dfbench.clip_batch import encode_clips
from dfbench.evaluate import Evaluator, finalize_stats, frames_read_by
from dfbench.feature_cache import FeatureCache
from dfbench.files import CreatedFolders
from dfbench.gpu import clip_to, compile_networks
from dfbench.record_log import RecordLog
from dfbench.registry import get_dataset_spec
from dfbench.result_store import result_folder, update_latest
from dfbench.run import RunOptions, RunOutcome, finished, write
from dfbench.run_checks import parse_device
from dfbench.run_lock import RunLock
from dfbench.run_prepare import Prepared, frame_size_hint, prepare, shared_dataset

# Only for checking the tree of a data set whose feature space is not a built-in.
UNKNOWN_FRAME_SIZE = 512


@dataclass
class Pair:
    """One (model, data set) result of a group; ``log`` and ``lock`` exist on rank 0 only."""

    prep: Prepared
    folder: Path
    path: Path
    todo: list[str] | None = None  # None: nothing to compute (reported as it was)
    evaluator: Evaluator | None = None
    log: RecordLog | None = None
    lock: RunLock | None = None
    outcome: RunOutcome | None = None
    row: Any = None  # its progress bar
    todo_set: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, prep: Prepared) -> Pair:
        options = prep.options
        folder = result_folder(options.output_dir, options.dataset, options.model)
        return cls(prep, folder, folder / f"{prep.identity.slug()}.json")

    @property
    def name(self) -> str:
        return f"{self.prep.options.model} on {self.prep.options.dataset}"


def _by_dataset(options: list[RunOptions]) -> list[list[RunOptions]]:
    """Runs grouped by data set, in the order first named: a data set's runs are prepared together."""
    groups: dict[str, list[RunOptions]] = {}
    for option in options:
        groups.setdefault(option.dataset, []).append(option)
    return list(groups.values())


def _by_features(preps: list[Prepared]) -> list[list[Prepared]]:
    """Runs that read the same backbone features (the feature-cache key) share one pass."""
    groups: dict[tuple[str, ...], list[Prepared]] = {}
    for prep in preps:
        groups.setdefault(prep.cache_key, []).append(prep)
    return list(groups.values())


def _open(pairs: list[Pair], locks: ExitStack, folders: CreatedFolders) -> list[list[str] | None]:
    """Rank 0: takes each unfinished result's lock and reads its records; returns the clips each lacks."""
    todos: list[list[str] | None] = []
    for pair in pairs:
        done = finished(pair.path, pair.prep)
        if done is None:
            folders.make(pair.folder)
            pair.lock = RunLock(pair.folder / f"{pair.prep.identity.slug()}.lock", f"the result {pair.path}")
            pair.lock.acquire()
            locks.callback(pair.lock.release)
            done = finished(pair.path, pair.prep)  # finished by another process while this one loaded
        if done is not None:
            if pair.lock is not None:
                pair.lock.release()
            pair.outcome = RunOutcome(pair.path, done, reused=True, resumed=done.num_clips,
                                      latest=update_latest(pair.path, done))
            todos.append(None)
            continue
        pair.log = RecordLog(pair.path.with_name(f"{pair.prep.identity.slug()}.records.jsonl"), pair.prep.identity)
        todos.append([sid for sid in pair.prep.sample_ids if not pair.log.done(sid)])
    return todos


def evaluator_for(prep: Prepared) -> Evaluator:
    """The evaluator of one prepared run (its model, space, heads, protocol and settings)."""
    return Evaluator(
        model=prep.model,
        feature_space=prep.feature_space,
        heads=prep.heads,
        protocol=prep.protocol,
        num_samples=prep.identity.num_samples,
        horizons=list(prep.options.horizons),
        seed=prep.options.seed,
        device=prep.device,
        autocast_dtype=prep.dtype,
    )


def _step(clips: list, pairs: list[Pair], feature_cache: FeatureCache | None) -> dict[int, list[dict]]:
    """One batch: each clip encoded once, then evaluated by every pair that lacks it."""
    first = pairs[0].prep
    # One backbone call for the batch's clips: the same features as one call per clip (see clip_batch),
    # for the frames that any of the pairs reads.
    frames = frames_read_by(pair.evaluator for pair in pairs)
    encoded = encode_clips([clip_to(clip, first.device) for clip in clips], first.feature_space, first.device,
                           feature_cache, first.cache_key, first.protocol.crops, frames)
    out: dict[int, list[dict]] = {}
    for index, pair in enumerate(pairs):
        wanted = [e for e in encoded if e.clip.sample_id in pair.todo_set]
        if wanted:
            out[index] = [finalize_stats(r) for r in pair.evaluator.evaluate(wanted)]
    return out


class Display:
    """One progress display for the whole invocation: a row per result and one over all of them."""

    def __init__(self, enabled: bool, console=None) -> None:
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn()]
        self.bar = Progress(*columns, console=console, disable=not enabled)
        self.total = None

    def __enter__(self) -> Display:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def add(self, pairs: list[Pair]) -> None:
        clips = sum(len(p.todo) for p in pairs if p.todo is not None)
        if self.total is None:
            self.total = self.bar.add_task("all results: clips to compute", total=0)
        self.bar.update(self.total, total=self.bar.tasks[self.total].total + clips)
        for pair in pairs:
            if pair.todo is not None:
                done = len(pair.prep.sample_ids) - len(pair.todo)
                pair.row = self.bar.add_task(pair.name, total=len(pair.prep.sample_ids), completed=done)

    def advance(self, pair: Pair, clips: int) -> None:
        self.bar.advance(pair.row, clips)
        self.bar.advance(self.total, clips)


def _finish(pairs: list[Pair], started: float, world: int) -> None:
    """Rank 0: writes every result whose records are complete, and frees its lock at once."""
    for pair in pairs:
        if pair.log is None or pair.outcome is not None:
            continue
        if not all(pair.log.done(sid) for sid in pair.prep.sample_ids):
            continue
        resumed = len(pair.prep.sample_ids) - len(pair.todo)
        result = write(pair.prep, pair.log, pair.path, started, resumed, {"processes": world})
        pair.lock.release()
        pair.outcome = RunOutcome(pair.path, result, resumed=resumed, latest=update_latest(pair.path, result),
                                  notes=pair.log.notes)


def _record(gathered: list[dict[int, list[dict]]], pairs: list[Pair], started: float, display: Display,
            world: int) -> None:
    """Rank 0: appends every rank's records of one step, then writes the results now complete."""
    for by_pair in gathered:
        for index, records in by_pair.items():
            pairs[index].log.append(records, time.perf_counter() - started)
            display.advance(pairs[index], len(records))
    _finish(pairs, started, world)


def _run_group(preps: list[Prepared], ranks: Ranks, feature_cache: FeatureCache | None,
               display: Display) -> list[Pair]:
    """Computes what the group's results lack, one pass over the clips, and writes each result."""
    started = time.perf_counter()
    pairs = [Pair.of(prep) for prep in preps]
    folders = CreatedFolders()
    try:
        with ExitStack() as locks:
            todos = ranks.main(lambda: _open(pairs, locks, folders))
            for pair, todo in zip(pairs, todos):
                pair.todo = todo
            active = [p for p in pairs if p.todo is not None]
            if ranks.is_main:
                display.add(active)
            for pair in active:
                pair.evaluator = evaluator_for(pair.prep)
                pair.todo_set = set(pair.todo)
            wanted = set().union(*(p.todo_set for p in active))
            order = dict.fromkeys(sid for p in active for sid in p.prep.sample_ids if sid in wanted)
            if active and order:
                _pass(list(order), active, ranks, feature_cache, display, started)
            ranks.main(lambda: _finish(active, started, ranks.world))
    except BaseException:
        folders.remove_empty()
        raise
    return pairs


def _pass(sample_ids: list[str], pairs: list[Pair], ranks: Ranks, feature_cache: FeatureCache | None,
          display: Display, started: float) -> None:
    """Every rank evaluates its shard of ``sample_ids``; rank 0 records each step's records."""
    from dfbench.data.loader import clip_loader

    first = pairs[0].prep
    options = first.options
    workers = options.num_workers if options.num_workers is not None else get_dataset_spec(options.dataset).decode_workers
    loader = clip_loader(first.dataset, batch_size=options.batch_size, num_workers=workers,
                         sample_ids=ranks.shard(sample_ids), pin_memory=first.device.type == "cuda")
    batches = iter(loader)
    for _ in range(ranks.steps(len(sample_ids), options.batch_size)):
        gathered = ranks.all(lambda: _step(next(batches, []), pairs, feature_cache))
        ranks.main(lambda: _record(gathered, pairs, started, display, ranks.world))


def _check_data(groups: list[list[RunOptions]]) -> list[dict]:
    """Checks every named data set's tree before anything is loaded or computed.

    A bad root of the last data set fails now, not after the first ones' hours. Returns
    one dict per group holding the data set built here, which ``prepare`` then reuses.
    """
    shared: list[dict] = []
    for runs in groups:
        option, found = runs[0], {}
        # Runs of one data set share its root and options: several data sets refuse --data-root and --dataset-arg.
        if get_dataset_spec(option.dataset).env is not None:  # a data set without files has no tree to check
            space = option.feature_space or get_dataset_spec(option.dataset).default_feature_space
            # The tree does not depend on the frame size; an unknown feature space's data set is rebuilt later.
            shared_dataset(option, frame_size_hint(space) or UNKNOWN_FRAME_SIZE, found)
        shared.append(found)
    return shared


def _prepare_all(options: list[RunOptions], compile_: bool, shared: dict | None = None) -> list[Prepared]:
    """Prepares a data set's runs, loading its feature space and data set once."""
    shared = {} if shared is None else shared
    compiled: set[int] = set()
    preps = [prepare(option, shared) for option in options]
    if compile_:
        for prep in preps:
            compile_networks(prep, compiled)
    return preps


def execute_all(options: list[RunOptions], feature_cache: FeatureCache | None = None, console=None,
                ranks: Ranks | None = None) -> list[RunOutcome | None]:
    """Runs (or resumes, or reports) the result of each of ``options``, in their order.

    Returns:
        Each run's outcome on rank 0; None for each on the other ranks.
    """
    ranks = ranks or Ranks()
    for option in options:
        option.device = ranks.device_name(option.device)
    ranks.start(parse_device(options[0].device))
    ranks.each(lambda: [option.check() for option in options])
    if feature_cache is None and options and options[0].feature_cache_dir:
        feature_cache = FeatureCache(options[0].feature_cache_dir)
    outcomes: dict[int, RunOutcome | None] = {}
    with Display(options[0].progress and ranks.is_main, console) as display:
        groups = _by_dataset(options)
        checked = ranks.each(lambda: _check_data(groups))
        for runs, shared in zip(groups, checked):
            preps = ranks.each(lambda: _prepare_all(runs, runs[0].compile, shared))
            for group in _by_features(preps):
                for pair in _run_group(group, ranks, feature_cache, display):
                    outcomes[id(pair.prep.options)] = pair.outcome
    return [outcomes[id(option)] for option in options]


__all__ = ["Pair", "execute_all"]
