"""Where does a depth error sit? Each true class's share of a model's squared depth error.

RMSE pools every valid pixel, so a class that covers much of the frame, or one every model
gets wrong, can hide where forecasts differ. This script runs models through the real
evaluation path (``Evaluator.forecast`` and the depth head's ``aligned_outputs``, the
features and maps the records are computed from) and splits the last target step's mean
squared error by the true segmentation class of each pixel: the rows sum to the MSE.
Stochastic models are read at their best sample, as the "best" column of the tables.

Usage: OMP_NUM_THREADS=1 python scripts/depth_error_by_class.py --models copy-last,deltaworld,present
"""

from __future__ import annotations

import click
import torch


def class_errors(models: list[str], dataset: str, horizon: str, limit: int | None) -> tuple[list[str], dict, torch.Tensor]:
    """Per model, each class's summed squared depth error; and each class's valid pixel count."""
    from dfbench.evaluate import frames_read_by
    from dfbench.multi_run import evaluator_for
    from dfbench.run import RunOptions
    from dfbench.run_prepare import prepare

    shared: dict = {}
    preps = {name: prepare(RunOptions(model=name, dataset=dataset, limit=limit, horizons=(horizon,)), shared)
             for name in models}
    first = next(iter(preps.values()))
    if not {"seg", "depth"} <= set(first.tasks):
        raise click.UsageError(f"{dataset} needs both segmentation and depth labels; it has {sorted(first.tasks)}.")
    evaluators = {name: evaluator_for(prep) for name, prep in preps.items()}
    (window,) = evaluators[models[0]].windows()
    step = window.targets[-1]
    classes = [*first.dataset.class_names, "void"]  # void: pixels with depth but no class (e.g. poles)
    errors = {name: torch.zeros(len(classes), dtype=torch.float64) for name in models}
    counts = torch.zeros(len(classes), dtype=torch.float64)
    frames = frames_read_by(evaluators.values())  # one encoding per clip serves every model
    for sample_id in first.sample_ids:
        encoded = evaluators[models[0]].encode(first.dataset.load(sample_id), frames)
        seg, depth = encoded.halves["seg"][:, step], encoded.halves["depth"][:, step]
        labelled = [seg == c for c in range(len(classes) - 1)]
        masks = [(depth > 0) & m for m in [*labelled, ~torch.stack(labelled).any(0)]]
        counts += torch.tensor([m.sum() for m in masks], dtype=torch.float64)
        for name, evaluator in evaluators.items():
            chosen = evaluator.forecast([encoded], window)
            features = chosen["best"] if "best" in chosen else chosen["single"]
            for row, output in enumerate(evaluator.aligned_outputs([encoded], window, "depth", features)):
                squared = (output[-1, 0] - depth[row]) ** 2
                errors[name] += torch.stack([squared[m[row]].double().sum() for m in masks])
    return classes, errors, counts


@click.command()
@click.option("--models", default="copy-last,deltaworld,present", show_default=True, help="Comma-separated model names.")
@click.option("--dataset", default="synthetic", show_default=True)
@click.option("--horizon", default="mid", show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N clips.")
def main(models: str, dataset: str, horizon: str, limit: int | None) -> None:
    from rich.console import Console
    from rich.table import Table

    names = [m for m in models.split(",") if m]
    classes, errors, counts = class_errors(names, dataset, horizon, limit)
    total = counts.sum()
    table = Table(title=f"Share of the squared depth error (m², summing to the MSE), {dataset}, {horizon}, last step")
    for column in ("class", "pixels", *names):
        table.add_column(column, justify="left" if column == "class" else "right")
    for c, name in enumerate(classes):
        table.add_row(name, f"{counts[c] / total:.1%}", *(f"{errors[n][c] / total:.2f}" for n in names))
    table.add_row("all (MSE)", "", *(f"{errors[n].sum() / total:.2f}" for n in names), end_section=True)
    table.add_row("RMSE", "", *(f"{(errors[n].sum() / total).sqrt():.3f}" for n in names))
    Console().print(table)


if __name__ == "__main__":
    main()
