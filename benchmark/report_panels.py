"""The report's prediction figures: a few clips per data set, forecast again by every model.

The results files hold statistics, not maps, so the report re-runs the forecast step
(:func:`dfbench.figure.clip_panels`) on a few clips with each result's model, data set,
feature space, samples and seed. What cannot be rebuilt here is reported as a note
instead of failing the report: a data set without a data root on this machine, or a
result whose weights differ from the ones this installation loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dfbench.errors import DfbenchError


@dataclass
class DatasetFigures:
    """One data set's prediction figures (PNG bytes with a caption) and what was left out."""

    dataset: str
    display: str
    figures: list[tuple[str, bytes]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _build_dataset(name: str, frame_size: int, options: dict):
    from dfbench.run_prepare import build_dataset

    return build_dataset(name, None, frame_size, dict(options))


def _panel_model(result: dict, space, device: str):
    """The result's model with this installation's weights, or a note saying why it is not drawn."""
    from dfbench.figure import PanelModel
    from dfbench.registry import get_model_class, get_model_spec

    identity = result["identity"]
    try:
        cls = get_model_class(identity["model"])
        model = cls(space, **identity.get("model_options", {})).to(device)
        display = get_model_spec(identity["model"]).display
    except (DfbenchError, TypeError, ValueError, RuntimeError, OSError) as err:
        return None, f"{identity['model']}: not drawn ({' '.join(str(err).split())})"
    expected = {role: sha for role, sha in identity.get("weights", {}).items()
                if not role.startswith("head/") and role != "feature_space"}
    if dict(model.checkpoint_files()) != expected:
        return None, (f"{display}: not drawn; its result was computed with other weights than this "
                      "installation loads (e.g. --checkpoint), which the report cannot find again")
    return PanelModel(display, model, int(identity["num_samples"]) if cls.stochastic else 1), None


def dataset_figures(dataset: str, results: list[dict], num_clips: int = 2, horizon: str = "mid",
                    device: str = "cpu") -> DatasetFigures:
    """Draws ``num_clips`` clips of one data set with every model that has a result on it."""
    from dfbench.features import load_feature_space
    from dfbench.figure import clip_panels
    from dfbench.heads.catalog import load_heads
    from dfbench.plots import forecast_figure, png_bytes
    from dfbench.registry import get_dataset_class, get_dataset_spec
    from dfbench.tables import load_layout

    display = load_layout().dataset_name(dataset)
    out = DatasetFigures(dataset, display)
    first = results[0]["identity"]
    provenance = results[0].get("provenance") or {}
    try:
        space = load_feature_space(first["feature_space"], provenance.get("feature_space_path"), device=device)
        data = _build_dataset(dataset, space.frame_size, first.get("dataset_options", {}))
        cls = get_dataset_class(dataset)
        heads = {t: h.to(device) for t, h in load_heads(first["feature_space"], space.dim, dataset, cls.tasks).items()}
    except DfbenchError as err:
        out.notes.append(f"No predictions drawn for {display}: {err}")
        return out
    if any(r["identity"].get("weights", {}).get(f"head/{t}") not in (None, _head_sha(first["feature_space"], dataset, t))
           for r in results for t in heads):
        out.notes.append("Some results used other task heads (--head) than the shipped ones; "
                         "the maps below are drawn with the shipped heads.")
    models = []
    for result in results:
        entry, note = _panel_model(result, space, device)
        if note:
            out.notes.append(note)
        if entry:
            models.append(entry)
    if not models:
        return out
    class_names = list(getattr(data, "class_names", []) or [])
    if "seg" in heads and len(class_names) != cls.tasks["seg"]:
        class_names = [f"class {i}" for i in range(cls.tasks["seg"])]
    seed = int(first.get("seed", 0))
    ids = data.sample_ids()
    for index in _spread(len(ids), num_clips):
        sample_id = ids[index]
        title = f"{get_dataset_spec(dataset).display} clip {sample_id} (first crop, {horizon} horizon)"
        panels = clip_panels(data.load(sample_id), space, heads, models, title, class_names, horizon=horizon,
                             seed=seed, device=device)
        out.figures.append((f"{display}, clip {sample_id}", png_bytes(forecast_figure(panels), dpi=90)))
    return out


def _head_sha(feature_space: str, dataset: str, task: str) -> str | None:
    from dfbench.heads.catalog import head_source
    from dfbench.run_prepare import sha256_of

    try:
        return sha256_of(head_source(feature_space, dataset, task))
    except (DfbenchError, OSError):
        return None


def _spread(count: int, wanted: int) -> list[int]:
    """``wanted`` clip indices spread over the data set (the first one always)."""
    wanted = max(0, min(wanted, count))
    return sorted({round(i * count / wanted) for i in range(wanted)}) if wanted else []
