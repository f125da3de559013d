"""`dfbench run`: one model on one data set, resumable, written atomically."""

from __future__ import annotations

import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

import dfbench
from dfbench.config import load_protocol
from dfbench.errors import DfbenchError
from dfbench.evaluate import Evaluator, run_evaluation
from dfbench.feature_cache import FeatureCache
from dfbench.features import load_feature_space
from dfbench.heads.catalog import head_source, load_heads
from dfbench.registry import get_dataset_class, get_model_class
from dfbench.results import SCHEMA_VERSION, RecordLog, aggregate, check_writable, headline, write_json_atomic

# The feature space a data set is evaluated in unless --feature-space says otherwise.
DEFAULT_FEATURE_SPACE = {"synthetic": "tiny"}
PAPER_FEATURE_SPACE = "dinov3-vitb16"


@dataclass
class RunOptions:
    """Everything `dfbench run` takes; the defaults are the paper's protocol."""

    model: str
    dataset: str
    data_root: str | None = None
    feature_space: str | None = None
    feature_space_path: str | None = None
    checkpoint: str | None = None
    num_samples: int | None = None
    horizons: tuple[str, ...] = ("short", "mid")
    batch_size: int = 1
    device: str = "cpu"
    seed: int = 0
    limit: int | None = None
    output_dir: str = "results"
    heads: dict[str, str] = field(default_factory=dict)
    protocol: str = "dinoworld"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    precision: str = "auto"
    feature_cache_dir: str | None = None
    num_workers: int | None = None  # decoding processes; None: 0 for synthetic, 2 for files
    progress: bool = True


def quiet_weight_loading() -> None:
    """transformers' per-load progress bars would break the one-line error contract on stderr."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs (the reference evaluates with Lightning's "bf16-mixed"), fp32 elsewhere."""
    if precision not in ("auto", "fp32", "bf16"):
        raise DfbenchError(f"unknown precision '{precision}'; choose auto, fp32 or bf16.")
    if precision == "bf16" and device.type != "cuda":
        raise DfbenchError("bf16 needs a CUDA device; pass --precision fp32 (or auto) on the CPU.")
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DfbenchError(f"device '{name}' requested but CUDA is not available; pass --device cpu.")
    return torch.device(name)


def git_commit() -> str | None:
    """The commit of the dfbench checkout, if it is one (provenance only)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(dfbench.__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def sha256_of(source: str) -> str:
    """sha256 of a head's weight file: a local path, or ``repo::filename`` resolved in the hub cache."""
    from dfbench.checkpoints import resolve_checkpoint, sha256_file

    repo, _, filename = source.partition("::")
    return sha256_file(resolve_checkpoint(repo, filename or "pytorch_model.bin"))


def build_dataset(name: str, root: str | None, frame_size: int, options: dict[str, Any]):
    cls = get_dataset_class(name)
    dataset = cls(root=root, frame_size=frame_size, **options)
    problems = dataset.check()  # before any model runs: a broken tree fails now, not at clip 300
    if problems:
        from dfbench.data.checks import error_message

        raise DfbenchError(error_message(name, getattr(dataset, "root", root), problems))
    return dataset


def run(options: RunOptions, feature_cache: FeatureCache | None = None, console=None) -> Path:
    """Runs the evaluation and writes ``<output_dir>/<dataset>/<model>.json``."""
    started = time.perf_counter()
    if feature_cache is None and options.feature_cache_dir:
        feature_cache = FeatureCache(options.feature_cache_dir)
    protocol = load_protocol(options.protocol)
    num_samples = options.num_samples or protocol.default_num_samples
    if num_samples < 1:
        raise DfbenchError(f"--num-samples must be at least 1, got {num_samples}.")
    unknown = [h for h in options.horizons if h not in protocol.horizons]
    if unknown:
        raise DfbenchError(f"unknown horizon(s) {unknown}; choose from {sorted(protocol.horizons)}.")
    model_cls = get_model_class(options.model)
    dataset_cls = get_dataset_class(options.dataset)
    out_dir = Path(options.output_dir) / options.dataset
    check_writable(out_dir)
    device = resolve_device(options.device)
    dtype = resolve_precision(options.precision, device)

    fs_name = options.feature_space or DEFAULT_FEATURE_SPACE.get(options.dataset, PAPER_FEATURE_SPACE)
    quiet_weight_loading()
    feature_space = load_feature_space(fs_name, options.feature_space_path, device=str(device), dtype=dtype)
    dataset = build_dataset(options.dataset, options.data_root, feature_space.frame_size, options.dataset_options)
    model = model_cls(feature_space, checkpoint=options.checkpoint).to(device)
    heads = load_heads(fs_name, feature_space.dim, dataset_cls.name, dataset_cls.tasks, options.heads)
    heads = {task: head.to(device) for task, head in heads.items()}
    head_sources = {t: options.heads.get(t) or head_source(fs_name, dataset_cls.name, t) for t in heads}

    # A generator's version (synthetic) keys caches and resumes: new clips, new features.
    data_version = str(getattr(getattr(dataset, "config", None), "version", ""))
    sample_ids = dataset.sample_ids()
    if options.limit is not None:
        sample_ids = sample_ids[: options.limit]
    stochastic = bool(model_cls.stochastic)
    header = {
        "model": options.model,
        "dataset": options.dataset,
        "dataset_version": data_version,
        "feature_space": fs_name,
        "protocol": protocol.as_dict(),
        "seed": options.seed,
        "num_samples": num_samples if stochastic else 1,
        "horizons": list(options.horizons),
        "checkpoint": options.checkpoint,
        "heads": head_sources,
        "precision": "bf16" if dtype is not None else "fp32",
    }
    log = RecordLog(out_dir / f"{options.model}.records.jsonl", header)
    todo = [sid for sid in sample_ids if not log.done(sid)]

    evaluator = Evaluator(
        model=model,
        feature_space=feature_space,
        heads=heads,
        protocol=protocol,
        num_samples=num_samples if stochastic else 1,
        horizons=list(options.horizons),
        seed=options.seed,
        device=device,
        feature_cache=feature_cache,
        cache_key=(options.dataset, data_version, fs_name, protocol.version, str(feature_space.frame_size), str(dtype)),
        autocast_dtype=dtype,
    )
    columns = [TextColumn(f"{options.model} on {options.dataset}"), BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not options.progress) as bar:
        task = bar.add_task("clips", total=len(sample_ids), completed=len(sample_ids) - len(todo))

        def on_batch(records):
            log.append(records)
            bar.advance(task, len(records))

        from dfbench.data.loader import clip_loader

        workers = options.num_workers if options.num_workers is not None else (0 if options.dataset == "synthetic" else 2)
        batches = clip_loader(
            dataset, batch_size=max(1, options.batch_size), num_workers=workers, sample_ids=todo,
            pin_memory=device.type == "cuda",
        )
        run_evaluation(evaluator, batches, on_batch)

    records = log.finalize(sample_ids)
    entries = aggregate(records, dataset_cls.tasks)
    chosen = {h: protocol.horizons[h] for h in options.horizons}
    payload = {
        "schema_version": SCHEMA_VERSION,
        "model": options.model,
        "dataset": options.dataset,
        "stochastic": stochastic,
        "num_samples": num_samples if stochastic else 1,
        "num_clips": len(sample_ids),
        "complete": len(sample_ids) == len(dataset.sample_ids()),
        "metrics": headline(entries, chosen),
        "metrics_all_steps": entries,
        "records": log.final_path.name,
        "provenance": {
            "feature_space": fs_name,
            "feature_space_path": options.feature_space_path,
            "protocol": {**protocol.as_dict(), "context_length": protocol.context_length, "horizons": chosen},
            "seed": options.seed,
            "checkpoints": {
                "model": model.checkpoint_files(),
                "heads": {t: {"source": s, "sha256": sha256_of(s)} for t, s in head_sources.items()},
            },
            "dfbench_version": dfbench.__version__,
            "git_commit": git_commit(),
            "torch_version": torch.__version__,
            "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
            "host": platform.node(),
            "batch_size": options.batch_size,
            "precision": "bf16" if dtype is not None else "fp32",
            "wall_time_s": round(time.perf_counter() - started, 3),
        },
    }
    path = out_dir / f"{options.model}.json"
    write_json_atomic(path, payload)
    return path
