"""Preparing a run: names and data first, then weights, then the run identity they define."""

from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import dfbench
from dfbench.config import load_protocol
from dfbench.errors import DfbenchError
from dfbench.features import load_feature_space
from dfbench.heads.catalog import head_source, load_heads
from dfbench.pixels import is_pixel_model
from dfbench.registry import get_dataset_class, get_dataset_spec, get_model_class, get_model_spec
from dfbench.run_checks import check_constructor_options, parse_device
from dfbench.schema import RunIdentity


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


def frame_size_hint(feature_space: str) -> int | None:
    """The protocol's frame size of a built-in feature space, known without loading its weights."""
    from dfbench.features.dinov3 import DINOV3_WEIGHTS
    from dfbench.features.tiny import TINY_FRAME_SIZE, TINY_NAME

    if feature_space == TINY_NAME:
        return TINY_FRAME_SIZE
    weights = DINOV3_WEIGHTS.get(feature_space)
    return weights.frame_size if weights is not None else None


def build_dataset(name: str, root: str | None, frame_size: int, options: dict[str, Any],
                  protocol_options: dict[str, Any] | None = None):
    """The data set, checked; ``protocol_options``: the loader settings a protocol adds (labels, resize)."""
    cls = get_dataset_class(name)
    dataset = cls(root=root, frame_size=frame_size, **options, **(protocol_options or {}))
    problems = dataset.check()  # before any model runs: a broken tree fails now, not at clip 300
    if problems:
        from dfbench.data.checks import error_message

        raise DfbenchError(error_message(name, getattr(dataset, "root", root), problems))
    return dataset


def dataset_version(dataset) -> str:
    """The data set's declared version (its spec's; the synthetic generator's config version)."""
    return str(dataset.version)


def build_model(model_cls: type, feature_space, options):
    """The adapter with its weights; a checkpoint it cannot be built from is one line naming what it holds."""
    try:
        return model_cls(feature_space, checkpoint=options.checkpoint, **options.model_options)
    except (ValueError, RuntimeError, KeyError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        held = ""
        if options.checkpoint and Path(options.checkpoint).is_file():
            from dfbench.checkpoints import describe_keys, read_safetensors_metadata

            if options.checkpoint.endswith(".safetensors") and not read_safetensors_metadata(options.checkpoint):
                held = f"; '{options.checkpoint}' has no dfbench metadata ({describe_keys(options.checkpoint)})"
        raise DfbenchError(
            f"cannot build model '{options.model}' ({reason}){held}; pass a checkpoint of that model "
            "(written by 'dfbench train', or a released one)."
        ) from err


def resolve_protocol(options):
    """The run's protocol: ``--protocol``, else the model's; a model with weights runs under its own only."""
    spec = get_model_spec(options.model)
    name = options.protocol or spec.default_protocol
    if spec.requires_weights and name != spec.default_protocol:
        raise DfbenchError(
            f"model '{options.model}' is evaluated under protocol '{spec.default_protocol}', not '{name}'; "
            f"drop --protocol (or pass --protocol {spec.default_protocol})."
        )
    return load_protocol(name)


def resolve_feature_space(options, protocol, dataset_spec) -> str:
    """``--feature-space``, else the data set's for this protocol, the protocol's, the data set's default."""
    return (options.feature_space or dataset_spec.protocol_feature_spaces.get(protocol.name)
            or protocol.default_feature_space or dataset_spec.default_feature_space)


def scored_tasks(protocol, dataset_spec) -> tuple[dict[str, int], dict[str, Any]]:
    """Task -> classes the run scores, and the loader options that produce their labels."""
    scored = protocol.scored_tasks(dataset_spec.tasks_under(protocol.name), dataset_spec)
    tasks = {task: classes for task, (_, classes) in scored.items()}
    labels = {task: source for task, (source, _) in scored.items()}
    loader: dict[str, Any] = {}
    if any(task != source for task, source in labels.items()) or set(labels) != set(dataset_spec.tasks):
        loader["labels"] = labels
    if not protocol.resize_frames:
        loader["resize"] = False
    if protocol.label_size is not None:
        loader["label_size"] = protocol.label_size
    if protocol.clip_order != "sorted":
        loader["clip_order"] = protocol.clip_order
    return tasks, loader


def result_tasks(dataset: str, protocol_name: str) -> dict[str, int]:
    """Task -> classes of the records of ``dataset`` results under the protocol named ``protocol_name``.

    What the records hold depends on the protocol (seg-mo and reldepth256 under dinoforesight),
    so tables and comparisons read class counts here, not from the data set's own tasks.
    """
    from dfbench.config import protocol_named
    from dfbench.registry import get_dataset_spec

    return scored_tasks(protocol_named(protocol_name), get_dataset_spec(dataset))[0]


@dataclass
class Prepared:
    """Everything loaded and checked for one run, and the identity it defines."""

    options: Any
    protocol: Any
    device: torch.device
    dtype: torch.dtype | None
    feature_space: Any
    dataset: Any
    dataset_cls: type
    model: Any
    model_cls: type
    heads: dict[str, Any]
    head_sources: dict[str, str]
    sample_ids: list[str]
    num_all_clips: int
    identity: RunIdentity
    cache_key: tuple[str, ...]
    tasks: dict[str, int]  # task -> classes, as the protocol scores the data set


def _shared(shared: dict | None, key: tuple, load):
    """``load()`` once per key when runs share what they load (one feature space for many models)."""
    if shared is None:
        return load()
    if key not in shared:
        shared[key] = load()
    return shared[key]


def shared_dataset(options, frame_size: int, shared: dict | None = None, loader_options: dict[str, Any] | None = None):
    """The checked data set of ``options`` at ``frame_size``, built once per ``shared`` dict.

    ``loader_options``: what the protocol adds (which labels, no resize; see :func:`scored_tasks`).
    """
    loader_options = loader_options or {}
    key = ("dataset", options.dataset, options.data_root, frame_size, repr(sorted(options.dataset_options.items())),
           repr(sorted(loader_options.items())))
    return _shared(shared, key, lambda: build_dataset(options.dataset, options.data_root, frame_size,
                                                      options.dataset_options, loader_options))


def prepare(options, shared: dict | None = None) -> Prepared:
    """Checks names and data, loads weights, and derives the run identity.

    ``shared`` (a dict kept by the caller) lets several runs use one loaded feature space
    and data set.

    Raises:
        DfbenchError: any bad input, named with its fix; nothing has been written.
    """
    protocol = resolve_protocol(options)
    protocol_options = protocol.resolve_options(options.protocol_options)
    num_samples = options.num_samples if options.num_samples is not None else protocol.default_num_samples
    unknown = [h for h in options.horizons if h not in protocol.horizons]
    if unknown or not options.horizons:
        raise DfbenchError(f"unknown horizon(s) {unknown}; choose from {sorted(protocol.horizons)}.")
    model_cls = get_model_class(options.model)
    dataset_cls = get_dataset_class(options.dataset)
    check_constructor_options(model_cls, options.model_options, f"model '{options.model}'", "--model-arg")
    check_constructor_options(dataset_cls, options.dataset_options, f"data set '{options.dataset}'", "--dataset-arg")
    device = parse_device(options.device)
    dtype = resolve_precision(options.precision, device)
    dataset_spec = get_dataset_spec(options.dataset)
    fs_name = resolve_feature_space(options, protocol, dataset_spec)
    tasks, loader_options = scored_tasks(protocol, dataset_spec)

    # The data tree before any weights: a wrong --data-root fails in a second, not after a download.
    hint = frame_size_hint(fs_name)

    def data(frame_size):
        return shared_dataset(options, frame_size, shared, loader_options)

    dataset = data(hint) if hint else None
    quiet_weight_loading()
    feature_space = _shared(shared, ("feature_space", fs_name, options.feature_space_path, str(device), str(dtype)),
                            lambda: load_feature_space(fs_name, options.feature_space_path, device=str(device), dtype=dtype))
    if dataset is None or feature_space.frame_size != hint:
        dataset = data(feature_space.frame_size)
    model = build_model(model_cls, feature_space, options).to(device)
    heads = load_heads(feature_space, feature_space.dim, dataset_cls.name, tasks, options.heads)
    heads = {task: head.to(device) for task, head in heads.items()}
    head_sources = {t: options.heads.get(t) or head_source(fs_name, dataset_cls.name, t) for t in heads}

    all_ids = dataset.sample_ids()
    sample_ids = all_ids[: options.limit] if options.limit is not None else all_ids
    limit = options.limit if options.limit is not None and options.limit < len(all_ids) else None
    weights = dict(model.checkpoint_files())
    weights.update({f"head/{t}": sha256_of(s) for t, s in head_sources.items()})
    fs_digest = getattr(feature_space, "weights_sha256", None)
    if fs_digest:
        weights["feature_space"] = fs_digest
    version = dataset_version(dataset)
    identity = RunIdentity(
        model=options.model,
        dataset=options.dataset,
        dataset_version=version,
        feature_space=fs_name,
        protocol=protocol.name,
        protocol_version=protocol.version,
        seed=options.seed,
        num_samples=num_samples if model_cls.stochastic else 1,
        horizons=tuple(options.horizons),
        precision="bf16" if dtype is not None else "fp32",
        limit=limit,
        numerics_version=dfbench.NUMERICS_VERSION,
        weights=weights,
        model_options=dict(options.model_options),
        dataset_options={k: str(v) if isinstance(v, Path) else v for k, v in options.dataset_options.items()},
        protocol_options=protocol_options,
    )
    # Features depend on the backbone's weights too: another --feature-space-path never reuses them.
    cache_key = (options.dataset, version, fs_name, str(fs_digest or ""), protocol.version,
                 str(feature_space.frame_size), str(dtype))
    if protocol.crops != "square" or not protocol.resize_frames:  # other crops, other features (dinoworld's key unchanged)
        cache_key += (protocol.name, protocol.crops, str(protocol.resize_frames))
    return Prepared(options, protocol, device, dtype, feature_space, dataset, dataset_cls, model, model_cls, heads,
                    head_sources, sample_ids, len(all_ids), identity, cache_key, tasks)


def provenance(prep: Prepared, horizons: dict[str, int], wall_time_s: float, invocations: int) -> dict[str, Any]:
    """Facts about how a result was computed that do not change its numbers."""
    options, device = prep.options, prep.device
    return {
        "feature_space": prep.identity.feature_space,
        "feature_space_path": options.feature_space_path,
        "protocol": {**prep.protocol.as_dict(), "context_length": prep.protocol.context_length, "horizons": horizons,
                     "options": prep.identity.protocol_options, "crops": prep.protocol.crops},
        "seed": options.seed,
        "checkpoints": {
            "model": prep.model.checkpoint_files(),
            "heads": {t: {"source": s, "sha256": prep.identity.weights[f"head/{t}"]} for t, s in prep.head_sources.items()},
        },
        "dfbench_version": dfbench.__version__,
        "numerics_version": dfbench.NUMERICS_VERSION,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "host": platform.node(),
        "batch_size": options.batch_size,
        "num_workers": options.num_workers,
        "precision": prep.identity.precision,
        "wall_time_s": round(wall_time_s, 3),
        "invocations": invocations,
        # A pixel model's frames in (size, frame count, how the four context frames fill them).
        "pixel_input": prep.model.describe_input() if is_pixel_model(prep.model) else None,
    }
