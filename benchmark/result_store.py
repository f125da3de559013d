"""Where results live, which one is "latest", and reading them back for tables.

Layout under ``--output-dir`` (README, "What makes a result")::

    <dataset>/<model>/<slug>.json            one result per run identity
    <dataset>/<model>/<slug>.records.jsonl   its per-clip records (.partial while running)
    <dataset>/<model>/<slug>.lock            while a process computes it
    <dataset>/<model>/latest.json            what tables read (below)

``<slug>`` is readable plus a short identity hash (``seed0-n20-fp32-all-1a2b3c4d5e``), so
results of different identities coexist. ``latest.json`` keeps one pointer per evaluation
protocol, so a model scored under two protocols (DINO-world's and DINO-Foresight's on
Cityscapes) has a latest result under each and every table reads its own::

    {"result": "<slug>.json", "complete": true, "identity_hash": "...", "protocol": "<name>",
     "protocols": {"<name>": {"result": "<slug>.json", "complete": true, "identity_hash": "..."}, ...}}

The top-level fields repeat the pointer written last (what older readers and
``latest_result_path`` without a protocol read). A pointer of an older dfbench (top-level
fields only) stands for the protocol of the result it names. Per protocol, the pointer moves
to the newest complete result; a partial (``--limit``) result becomes latest only while no
complete one exists.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from dfbench.errors import DfbenchError
from dfbench.files import write_json_atomic
from dfbench.schema import RunResult

LATEST = "latest.json"
# Folders under the results dir that hold outputs, not results.
NOT_RESULTS = ("tables", "reference")


def result_folder(output_dir: Path | str, dataset: str, model: str) -> Path:
    return Path(output_dir) / dataset / model


def read_result(path: Path) -> RunResult:
    """A results file, checked against the schema; errors name the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DfbenchError(f"malformed results file {path}: {err}") from None
    return RunResult.load(data, str(path))


def _read_pointer(folder: Path) -> dict | None:
    try:
        pointer = json.loads((folder / LATEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return pointer if isinstance(pointer, dict) and isinstance(pointer.get("result"), str) else None


def _pointer_entries(folder: Path, pointer: dict) -> dict[str, dict]:
    """Protocol name -> pointer entry; an older single pointer stands for its result's protocol."""
    entries = pointer.get("protocols")
    if isinstance(entries, dict) and all(isinstance(e, dict) and isinstance(e.get("result"), str) for e in entries.values()):
        return dict(entries)
    protocol = pointer.get("protocol")
    if not isinstance(protocol, str):
        path = folder / pointer["result"]
        protocol = read_result(path).identity.protocol if path.is_file() else ""
    return {protocol: {k: pointer[k] for k in ("result", "complete", "identity_hash") if k in pointer}}


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Serialises pointer updates of one (data set, model) between processes."""
    try:
        import fcntl
    except ImportError:  # no flock: updates are still atomic, only their order is unchecked
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update_latest(path: Path, result: RunResult) -> bool:
    """Points ``latest.json`` at ``path`` for the result's protocol, unless that would put a
    partial result over a complete one of the same protocol.

    Returns:
        Whether the pointer of that protocol now names ``path``.
    """
    folder, protocol = path.parent, result.identity.protocol
    with _folder_lock(folder):
        current = _read_pointer(folder)
        entries = _pointer_entries(folder, current) if current is not None else {}
        same = entries.get(protocol)
        if same is not None and same.get("complete") and not result.complete and (folder / same["result"]).is_file():
            return same["result"] == path.name
        entry = {"result": path.name, "complete": result.complete, "identity_hash": result.identity.digest()}
        entries[protocol] = entry
        write_json_atomic(folder / LATEST, {**entry, "protocol": protocol, "protocols": entries})
    return True


def latest_result_path(output_dir: Path | str, dataset: str, model: str, protocol: str | None = None) -> Path | None:
    """The file ``latest.json`` names for one (data set, model), or None.

    Args:
        protocol: the protocol's name (``name`` in its YAML); None: the result written last.
    """
    folder = result_folder(output_dir, dataset, model)
    pointer = _read_pointer(folder)
    if pointer is None:
        return None
    if protocol is None:
        return folder / pointer["result"]
    entry = _pointer_entries(folder, pointer).get(protocol)
    return folder / entry["result"] if entry else None


def _dataset_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name not in NOT_RESULTS) if root.is_dir() else []


def _refuse_old_layout(root: Path) -> None:
    for folder in _dataset_folders(root):
        old = sorted(folder.glob("*.json"))
        if old:
            raise DfbenchError(
                f"{old[0]} is in the results layout of an older dfbench (<dataset>/<model>.json); "
                f"rerun 'dfbench run' for it, or move it out of {root}."
            )


def load_latest(results_dir: Path | str, protocol: str | None = None) -> list[tuple[Path, RunResult]]:
    """The latest result of every (data set, model) under ``results_dir``, sorted by path.

    Args:
        results_dir: the folder ``dfbench run`` writes to.
        protocol: only results of this protocol (its YAML ``name``); None: the latest
            result of every protocol.

    Raises:
        DfbenchError: no results (of that protocol), a results file in the old layout, a
            malformed file (named), or a ``latest.json`` that names a missing file.
    """
    root = Path(results_dir)
    _refuse_old_layout(root)
    found, others = [], set()
    for folder in _dataset_folders(root):
        for model_folder in sorted(p for p in folder.iterdir() if p.is_dir()):
            if not (model_folder / LATEST).is_file():
                continue
            pointer = _read_pointer(model_folder)
            if pointer is None:
                raise DfbenchError(f"malformed results file {model_folder / LATEST}: expected {{\"result\": NAME}}; "
                                   "rerun 'dfbench run' for this model")
            entries = _pointer_entries(model_folder, pointer)
            others.update(entries)
            # "": an older pointer whose file is gone; reading it reports the missing file.
            wanted = sorted(entries) if protocol is None else [n for n in (protocol, "") if n in entries]
            for name in wanted:
                path = model_folder / entries[name]["result"]
                result = read_result(path)
                if (result.dataset, result.model) != (folder.name, model_folder.name):
                    raise DfbenchError(f"malformed results file {path}: it holds {result.model} on {result.dataset}, "
                                       f"not {model_folder.name} on {folder.name}")
                if name and result.identity.protocol != name:
                    raise DfbenchError(f"malformed results file {model_folder / LATEST}: its {name} pointer names a "
                                       f"{result.identity.protocol} result; rerun 'dfbench run' for this model")
                if protocol in (None, result.identity.protocol):
                    found.append((path, result))
    if not found and others:
        raise DfbenchError(f"no results of protocol '{protocol}' under {root} (only {', '.join(sorted(others))}); "
                           "run 'dfbench run --model M --dataset D' for a model of that protocol first")
    if not found:
        raise DfbenchError(f"no results under {root}; run 'dfbench run --model M --dataset D' first")
    return found


def load_all(results_dir: Path | str) -> list[tuple[Path, RunResult]]:
    """Every result under ``results_dir`` (all seeds and settings), sorted by path."""
    paths = sorted(p for folder in _dataset_folders(Path(results_dir)) for p in folder.glob("*/*.json")
                   if p.name != LATEST)
    return [(p, read_result(p)) for p in paths]


# ---------------------------------------------------------------- mixing checks

# What must agree between the results of one data set in a table, and how to read it.
SETTINGS = {
    "feature space": lambda r: r.identity.feature_space,
    "protocol": lambda r: f"{r.identity.protocol} {r.identity.protocol_version}",
    "samples": lambda r: r.identity.num_samples if r.stochastic else None,
    "data set version": lambda r: r.identity.dataset_version,
}


def deviations(results: list[RunResult]) -> dict[tuple[str, str], str]:
    """(model, data set) -> how its settings differ from the rest of that data set's results.

    The reference value of each setting is the most common one (ties: the first result's).
    """
    out: dict[tuple[str, str], list[str]] = {}
    for dataset in dict.fromkeys(r.dataset for r in results):
        group = [r for r in results if r.dataset == dataset]
        for setting, read in SETTINGS.items():
            values = [read(r) for r in group]
            counts = Counter(v for v in values if v is not None)
            if len(counts) < 2:
                continue
            usual = max(counts, key=lambda v: (counts[v], -values.index(v)))
            for result, value in zip(group, values):
                if value is not None and value != usual:
                    out.setdefault((result.model, dataset), []).append(f"{setting} {value} (others {usual})")
    return {key: "; ".join(parts) for key, parts in out.items()}


def check_mixing(results: list[RunResult], allow_mixed: bool) -> dict[tuple[str, str], str]:
    """Refuses a table whose results differ in settings, unless ``allow_mixed`` marks them."""
    found = deviations(results)
    if found and not allow_mixed:
        (model, dataset), what = next(iter(found.items()))
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise DfbenchError(
            f"results on {dataset} mix settings: {model} has {what}{more}; rerun with matching settings, "
            "or pass --allow-mixed to mark the deviating cells."
        )
    return found
