"""`dfbench demo`: the whole benchmark on the embedded synthetic world, offline.

Every built-in model whose weights ship with dfbench is evaluated on the synthetic
validation split with the tiny feature space (pixel models on its first clips only);
backbone features are computed once per clip and shared by all models. Then the main
table is printed (with a caption that explains its cells) and written, and one figure
(``dfbench.plots.forecast_figure``, the report's drawing) shows a clip's context, its
true future and each model's forecast as segmentation and depth maps.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from rich.console import Console

from dfbench.registry import builtin_model_specs

DEMO_DATASET = "synthetic"
SAMPLES_CAPTION = "S = {samples} samples per clip."  # render_main_table explains the cells
DEMO_FEATURE_SPACE = "tiny"
# DINO-Foresight's protocol (Table D): its models run in the data set's feature space for it.
FORESIGHT_PROTOCOL = "dinoforesight"
FORESIGHT_LAYOUT = "foresight"
# A video generator decodes every sample's frames (cosmos-tiny: about 30 s per clip at 20
# samples on one loaded CPU core), so the demo runs pixel models on the first clips only;
# their results say so (complete: false, num_clips).
PIXEL_DEMO_CLIPS = 8


def installed(spec) -> bool:
    """Whether the optional packages a model needs (``options["requires"]``, e.g. diffusers) are installed."""
    return all(importlib.util.find_spec(package) is not None for package in spec.options.get("requires", ()))


def demo_models() -> list[str]:
    """Built-in models with offline weights for the tiny feature space, in table order.

    Models whose optional packages are absent (cosmos-tiny without diffusers) are left out.
    """
    return [spec.name for spec in builtin_model_specs() if spec.runs_offline(DEMO_FEATURE_SPACE) and installed(spec)]


def foresight_demo_models() -> list[str]:
    """The Table D layout's models that run offline on the synthetic world under DINO-Foresight's protocol."""
    from dfbench.registry import get_dataset_spec, get_model_spec
    from dfbench.table_layout import load_layout

    space = get_dataset_spec(DEMO_DATASET).protocol_feature_spaces[FORESIGHT_PROTOCOL]
    return [model for model in load_layout(FORESIGHT_LAYOUT).models if get_model_spec(model).runs_offline(space)]


def demo_limit(model: str, limit: int | None) -> int | None:
    """Clips a model is evaluated on: all (or ``limit``), pixel models at most :data:`PIXEL_DEMO_CLIPS`."""
    from dfbench.registry import get_model_spec

    if get_model_spec(model).pixel_input is None:
        return limit
    return PIXEL_DEMO_CLIPS if limit is None else min(limit, PIXEL_DEMO_CLIPS)


def run_demo(
    output_dir: str, num_samples: int | None = None, limit: int | None = None, device: str = "cpu",
    batch_size: int = 8, console: Console | None = None,
) -> None:
    """Evaluates every demo model, prints and writes the main table, and draws the figure."""
    from dfbench.feature_cache import FeatureCache
    from dfbench.figure import save_demo_figure
    from dfbench.run import RunOptions, run
    from dfbench.table_render import render_main_table
    from dfbench.tables import build_main_table, save_main_table

    console = console or Console()
    started = time.perf_counter()
    cache = FeatureCache()
    for model in demo_models():
        options = RunOptions(
            model=model,
            dataset=DEMO_DATASET,
            num_samples=num_samples,
            batch_size=batch_size,
            device=device,
            limit=demo_limit(model, limit),
            output_dir=output_dir,
        )
        run(options, feature_cache=cache, console=console)
    results_dir = Path(output_dir)
    write_demo_flops(results_dir)
    table = build_main_table(results_dir)
    rendered = render_main_table(table)
    explained = SAMPLES_CAPTION.format(samples=num_samples or 20)
    rendered.caption = explained if rendered.caption is None else f"{explained}\n{rendered.caption}"
    console.print(rendered)
    csv_path, tex_path = save_main_table(table, results_dir / "tables")
    figure = save_demo_figure(Path(output_dir) / "demo.png", demo_models(), num_samples=num_samples or 20, device=device)
    foresight_csv, _ = run_foresight_demo(output_dir, limit, device, batch_size, console)
    console.print(f"wrote {csv_path}, {tex_path}, {foresight_csv} and {figure} in {time.perf_counter() - started:.1f}s")


def run_foresight_demo(output_dir: str, limit: int | None, device: str, batch_size: int,
                       console: Console) -> tuple[Path, Path]:
    """The Table D layout on the synthetic world: its models under DINO-Foresight's protocol, then the table."""
    from dfbench.run import RunOptions, run
    from dfbench.table_render import render_main_table
    from dfbench.tables import build_main_table, save_main_table

    for model in foresight_demo_models():
        run(RunOptions(model=model, dataset=DEMO_DATASET, protocol=FORESIGHT_PROTOCOL, batch_size=batch_size,
                       device=device, limit=limit, output_dir=output_dir), console=console)
    table = build_main_table(output_dir, layout=FORESIGHT_LAYOUT)
    console.print(render_main_table(table))
    return save_main_table(table, Path(output_dir) / "tables")


def write_demo_flops(results_dir: Path) -> Path | None:
    """``flops.csv`` for the demo models counted at the size they run at: the pixel models (cosmos-tiny).

    The predictor models' counts are at the paper's ViT-B sizes (``dfbench flops``), not at
    the tiny sizes the demo runs, so their GFLOPs column stays empty here.
    """
    from dfbench.cli.flops import flops_frames
    from dfbench.flops import MID_STEPS, MODELS, PIXEL_FAMILY

    counted = [name for name in demo_models() if name in MODELS and MODELS[name].family == PIXEL_FAMILY]
    if not counted:
        return None
    _, totals = flops_frames(counted, 256, 4, 20, MID_STEPS, paper_convention=False, device="meta")
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "flops.csv"
    totals.to_csv(path, index=False)
    return path
