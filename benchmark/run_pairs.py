"""Which (model, data set) pairs one `dfbench run` names: lists, ``all``, and options for one pair only."""

from __future__ import annotations

from dfbench.errors import DfbenchError

ALL = "all"

# Options that name one model's or one data set's files: with several, which would they belong to?
PER_MODEL = {"checkpoint": "--checkpoint", "model_args": "--model-arg"}
PER_DATASET = {"data_root": "--data-root", "split_file": "--split-file", "dataset_args": "--dataset-arg",
               "heads": "--head"}


def split_names(value: str, flag: str) -> list[str]:
    """``a,b,c`` -> ``[a, b, c]`` without repeats, in the order given."""
    names = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise DfbenchError(f"{flag} names nothing; pass a name, several separated by commas, or 'all'.")
    return names


def _weights_reachable(spec, feature_space: str) -> bool:
    """Declared weights for ``feature_space`` that are shipped, or on the hub and reachable (cached when offline)."""
    from dfbench.hub import hub_offline

    sources = spec.weights.get(feature_space, {})
    if not sources:
        return False
    for source in sources.values():
        if source.shipped is not None:
            if not source.is_available_offline():
                return False
        elif hub_offline():
            from huggingface_hub import try_to_load_from_cache

            if not isinstance(try_to_load_from_cache(source.hub_id, source.filename), str):
                return False
    return True


def runnable_models(feature_space: str) -> list[str]:
    """Every registered model that runs in ``feature_space`` with weights at hand, in registry order."""
    from dfbench.registry import get_model_spec, model_names

    names = []
    for name in model_names():
        spec = get_model_spec(name)
        if not spec.requires_weights or _weights_reachable(spec, feature_space):
            names.append(name)
    return names


def expand_pairs(models: str, datasets: str, feature_space: str | None, protocol: str | None = None) -> list[tuple[str, str]]:
    """(model, data set) pairs, data set by data set; ``all`` is every model runnable in its feature space
    (under ``--protocol``: those evaluated under it, in the feature space it or the data set picks)."""
    from dfbench.registry import get_dataset_spec, get_model_class, get_model_spec

    pairs = []
    for dataset in split_names(datasets, "--dataset"):
        spec = get_dataset_spec(dataset)
        if models.strip() == ALL:
            space = feature_space or spec.default_feature_space
            if protocol is not None and feature_space is None:
                from dfbench.config import load_protocol

                loaded = load_protocol(protocol)
                space = spec.protocol_feature_spaces.get(loaded.name) or loaded.default_feature_space or space
            names = runnable_models(space)
            if protocol is not None:  # models with weights run under their own protocol only
                names = [n for n in names if not get_model_spec(n).requires_weights
                         or get_model_spec(n).default_protocol == protocol]
            if not names:
                raise DfbenchError(f"no registered model runs in feature space "
                                   f"'{space}'; see 'dfbench list'.")
        else:
            names = split_names(models, "--model")
            for name in names:
                get_model_class(name)  # an unknown name fails now, naming the nearest
        pairs.extend((name, dataset) for name in names)
    return pairs


def check_single_pair_options(pairs: list[tuple[str, str]], given: dict) -> None:
    """Refuses per-model options with several models, and per-data-set options with several data sets."""
    models = {m for m, _ in pairs}
    datasets = {d for _, d in pairs}
    for options, count, what in ((PER_MODEL, len(models), "model"), (PER_DATASET, len(datasets), "data set")):
        if count < 2:
            continue
        for key, flag in options.items():
            if given.get(key):
                raise DfbenchError(f"{flag} applies to one {what}, but this run names {count}; "
                                   f"run that {what} on its own with {flag}.")


__all__ = ["ALL", "check_single_pair_options", "expand_pairs", "runnable_models", "split_names"]
