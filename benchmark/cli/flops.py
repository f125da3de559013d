"""``dfbench flops``: the paper's Table B (per-component GFLOPs) and Table 2's totals.

Writes three files to ``--out``:

- ``flops_components.csv``: one row per component and model: ``model, group, component,
  key, repeats, gflops, attention_gflops, paper_convention_gflops, reported_gflops`` plus
  the settings (``resolution, context, num_samples, steps``). ``gflops`` is one call on
  one square crop; ``repeats`` is how many calls a crop needs.
- ``flops.csv``: ``model, gflops`` per model (a whole clip: both square crops, every
  sample and step), the file ``dfbench table main --results-dir`` reads for its GFLOPs
  column; also ``counted_gflops``, ``paper_convention_gflops``, ``reported_gflops`` and
  the settings. ``gflops`` is ``counted_gflops``, or the paper convention with
  ``--paper-convention``.
- ``flops.tex``: the components and totals as a booktabs ``tabular``.

See :mod:`dfbench.flops` for how the counts are made and how the paper's differ,
:mod:`dfbench.flops_pixels` for the pixel models (Cosmos: whole frames at their own
input size, ``--resolution`` does not apply) and :mod:`dfbench.flops_foresight` for
DINO-Foresight (whole 448x896 frames; one predictor pass per step, so ``--steps 1`` is
the short horizon and the default 3 the mid one).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dfbench.cli.lazy_choice import LazyChoice
from dfbench.files import write_text_atomic
from dfbench.formatting import booktabs, format_number, tex_escape, tex_row

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table


def paper_settings() -> dict[str, int]:
    """The settings the paper's Tables 2 and B were measured at; reported numbers apply only there."""
    from dfbench.flops import MID_STEPS

    return {"resolution": 256, "context": 4, "num_samples": 20, "steps": MID_STEPS}


def flops_frames(
    models: list[str], resolution: int, context: int, num_samples: int, steps: int, paper_convention: bool, device: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(components, totals) frames for the models, with the paper's numbers beside ours."""
    import pandas as pd

    from dfbench.flops import CROPS, MODELS, component_flops, reported_gflops, total_from_components

    settings = {"resolution": resolution, "context": context, "num_samples": num_samples, "steps": steps}
    table_b, table_2 = reported_gflops() if settings == paper_settings() else ({}, {})
    components, totals = [], []
    for model in models:
        rows = component_flops(model, resolution, context, num_samples, steps, device)
        for row in rows:
            components.append({**row, "reported_gflops": table_b.get((model, row["key"]), math.nan), **settings})
        counted = total_from_components(rows)
        paper = total_from_components(rows, paper_convention=True)
        totals.append(
            {
                "model": model,
                "gflops": paper if paper_convention else counted,
                "counted_gflops": counted,
                "paper_convention_gflops": paper,
                "reported_gflops": table_2.get(model, math.nan),
                **settings,
                "samples_per_clip": num_samples if MODELS[model].sampled else 1,
                "crops": rows[0].get("crops", CROPS),
            }
        )
    return pd.DataFrame(components), pd.DataFrame(totals)


def _number(value: float, decimals: int = 2, thousands: bool = False) -> str:
    return format_number(value, decimals, thousands=thousands)


def _total_label(total: pd.Series) -> str:
    samples = int(total["samples_per_clip"])
    crops = int(total["crops"])
    where = "whole frame" if crops == 1 else f"{crops} crops"  # pixel models see the whole frame once
    return f"Total ({where}" + (f" x {samples} samples)" if samples > 1 else ")")


def latex_table(components: pd.DataFrame, totals: pd.DataFrame) -> str:
    """Table B as a booktabs tabular, each model's block closed by its clip total."""
    # pandas' Styler.to_latex cannot put a spanning model header and a total row inside
    # one block, so the few lines are composed here.
    header = [tex_row(["Component", "Calls", "GFLOPs", "GFLOPs (paper conv.)", "Paper"])]
    blocks = []
    for model, block in components.groupby("model", sort=False):
        total = totals.set_index("model").loc[model]
        rows = [tex_row([rf"\multicolumn{{5}}{{l}}{{\textit{{{tex_escape(model)}}}}}"])]
        for row in block.itertuples():
            cells = [tex_escape(row.component), f"{row.repeats}", _number(row.gflops), _number(row.paper_convention_gflops)]
            rows.append(tex_row([*cells, _number(row.reported_gflops)]))
        label = tex_escape(_total_label(total)).replace(" x ", r" $\times$ ")
        cells = [label, "", _number(total["counted_gflops"], 0), _number(total["paper_convention_gflops"], 0)]
        rows.append(tex_row([*cells, _number(total["reported_gflops"], 0)]))
        blocks.append(rows)
    return booktabs("lrrrr", header, blocks, comments=[r"dfbench flops; needs \usepackage{booktabs}"])


def rich_table(components: pd.DataFrame, totals: pd.DataFrame) -> Table:
    """The same numbers for the terminal, one section per model."""
    from rich.table import Table

    out = Table(title="GFLOPs: components per square crop (Table B), totals per clip (Table 2)")
    out.add_column("Component")
    for name in ("Calls", "GFLOPs", "Paper conv.", "Paper"):
        out.add_column(name, justify="right", no_wrap=True)
    for model, block in components.groupby("model", sort=False):
        out.add_row(f"[bold]{model}[/bold]")
        for row in block.itertuples():
            out.add_row(f"  {row.component}", str(row.repeats), _number(row.gflops),
                        _number(row.paper_convention_gflops), _number(row.reported_gflops))
        total = totals.set_index("model").loc[model]
        numbers = (total["counted_gflops"], total["paper_convention_gflops"], total["reported_gflops"])
        out.add_row(f"  [bold]{_total_label(total)}[/bold]", "", *(_number(v, 0, thousands=True) for v in numbers),
                    end_section=True)
    return out


def default_models() -> list[str]:
    """Every countable model whose optional packages are installed (the Cosmos diffusers ones need diffusers)."""
    from dfbench.demo import installed
    from dfbench.errors import DfbenchError
    from dfbench.flops import MODELS
    from dfbench.registry import get_model_spec

    def ready(name: str) -> bool:
        try:
            return installed(get_model_spec(name))
        except DfbenchError:  # counted from its config alone (dino-foresight before its adapter is installed)
            return True

    return [name for name in MODELS if ready(name)]


@click.command(name="flops")
@click.option("--model", "models", multiple=True, type=LazyChoice("dfbench.flops:MODELS", "MODEL"),
              help="Model to count (repeatable) [default: all].")
@click.option("--resolution", type=LazyChoice("dfbench.flops:RESOLUTIONS", "PIXELS"), default="256", show_default=True,
              help="Side of the square crop in pixels (256: Tables 2 and B; 512: the main setting).")
@click.option("--context", type=click.IntRange(min=1), default=4, show_default=True, help="Context frames.")
@click.option("--num-samples", type=click.IntRange(min=1), default=20, show_default=True,
              help="Futures per clip for the sampling models.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Rollout steps [default: the mid horizon's, 3].")
@click.option("--paper-convention", is_flag=True,
              help="flops.csv's gflops counts the predictor's attention twice, as the paper's numbers do.")
@click.option("--device", default="meta", show_default=True,
              help="Where the modules run; 'meta' counts without computing anything.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Folder for flops.csv, flops_components.csv and flops.tex.")
def flops_command(
    models: tuple[str, ...], resolution: str, context: int, num_samples: int, steps: int | None,
    paper_convention: bool, device: str, out_dir: Path,
) -> None:
    """GFLOPs of each model component (Table B) and of a whole rollout (Table 2)."""
    from rich.console import Console

    from dfbench.flops import MID_STEPS

    components, totals = flops_frames(
        list(models or default_models()), int(resolution), context, num_samples, MID_STEPS if steps is None else steps,
        paper_convention, device,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    components.to_csv(out_dir / "flops_components.csv", index=False)
    totals.to_csv(out_dir / "flops.csv", index=False)
    write_text_atomic(out_dir / "flops.tex", latex_table(components, totals))
    console = Console()
    console.print(rich_table(components, totals))
    console.print(f"wrote {out_dir / 'flops.csv'}, {out_dir / 'flops_components.csv'} and {out_dir / 'flops.tex'}")
