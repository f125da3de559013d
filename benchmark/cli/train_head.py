"""`dfbench train head` (formerly `train-head`): fit a linear head on frozen features of a training split."""

from __future__ import annotations

import time
from pathlib import Path

import click


def training_clips(dataset: str, root: str | None, frame_size: int, limit: int | None):
    """Training clips (or single labelled frames) of a data set, as Clips, from its spec's lister."""
    from dfbench.data.train_frames import head_training_clips

    return head_training_clips(dataset, root, frame_size, limit)


@click.command("head")
@click.option("--feature-space", required=True, help="Feature space whose frozen features the head reads.")
@click.option("--feature-space-path", default=None, help="Local folder of the feature-space weights.")
@click.option("--dataset", required=True, help="Data set whose training split labels the head.")
@click.option("--data-root", default=None)
@click.option("--task", default=None, help="seg or depth (default: every task of the data set).")
@click.option("--limit", type=int, default=None, help="Use only the first N training clips/frames.")
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--lr", type=float, default=1e-2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--out-dir", default="heads-out", show_default=True, help="Where to write <dataset>-<task>.safetensors.")
def train_head_command(**kw) -> None:
    """Train a segmentation or depth head and save it as safetensors."""
    from dfbench.features import load_feature_space
    from dfbench.heads.catalog import save_head
    from dfbench.heads.train import head_examples, train_head
    from dfbench.registry import get_dataset_class
    from dfbench.results import check_writable

    out_dir = Path(kw["out_dir"])
    check_writable(out_dir)
    cls = get_dataset_class(kw["dataset"])
    tasks = {t: n for t, n in cls.tasks.items() if kw["task"] in (None, t)}
    space = load_feature_space(kw["feature_space"], kw["feature_space_path"], device=kw["device"])
    started = time.perf_counter()
    clips = training_clips(kw["dataset"], kw["data_root"], space.frame_size, kw["limit"])
    grid_side = space.frame_size // space.patch_size
    for task, num_classes in tasks.items():
        examples = head_examples(clips, space, task)
        head = train_head(
            examples, task, num_classes, space.dim, (grid_side, grid_side), kw["epochs"], lr=kw["lr"], seed=kw["seed"]
        )
        path = out_dir / f"{kw['dataset']}-{task}.safetensors"
        meta = {"feature_space": kw["feature_space"], "dataset": kw["dataset"], "task": task, "classes": str(num_classes)}
        save_head(head, path, meta)
        click.echo(f"wrote {path} ({len(examples)} crops, {time.perf_counter() - started:.1f}s)")


# `dfbench train-head` keeps working for existing scripts; --help no longer lists it.
train_head_alias = click.Command(
    "train-head",
    params=train_head_command.params,
    callback=train_head_command.callback,
    help=train_head_command.help,
    hidden=True,
    deprecated=True,
)
