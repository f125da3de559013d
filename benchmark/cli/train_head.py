"""`dfbench train head` (formerly `train-head`): fit a head on frozen features of a training split.

Linear heads on the DINOv3 spaces; DPT heads behind the inverse PCA on a multi-layer PCA
space (DINO-Foresight's tasks ``seg-mo`` and ``reldepth256``, see :mod:`dfbench.heads.train`).
"""

from __future__ import annotations

import time
from pathlib import Path

import click


def training_clips(dataset: str, root: str | None, frame_size: int, limit: int | None, task: str | None = None):
    """Training clips (or single labelled frames) of a data set, as Clips, from its spec's lister.

    ``task``: one of the lister's own tasks (its labels are read instead of the data set's).
    """
    from dfbench.data.train_frames import head_training_clips

    return head_training_clips(dataset, root, frame_size, limit, task)


@click.command("head")
@click.option("--feature-space", required=True, help="Feature space whose frozen features the head reads.")
@click.option("--feature-space-path", default=None, help="Local folder of the feature-space weights.")
@click.option("--dataset", required=True, help="Data set whose training split labels the head.")
@click.option("--data-root", default=None)
@click.option("--task", "tasks", multiple=True,
              help="Task to train (repeatable): seg, depth, or on a PCA space seg-mo, reldepth256 "
                   "[default: every task of the data set].")
@click.option("--limit", type=int, default=None, help="Use only the first N training clips/frames.")
@click.option("--frames-per-clip", type=click.IntRange(min=1), default=None,
              help="Use only the last N labelled frames of each training clip [default: all].")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--frame-size", type=click.IntRange(min=1), default=None,
              help="Short side the training frames are resized to [default: the feature space's]. A multi-layer "
                   "PCA space resizes whole frames itself: give the data set's native short side (72 for "
                   "synthetic) so they reach it unresized, as under the dinoforesight protocol.")
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--lr", type=float, default=1e-2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--loss", type=click.Choice(["task", "silog"]), default="task", show_default=True,
              help="Training loss: the task's own (cross-entropy; squared error for depth), or the "
                   "scale-invariant log loss (silog, depth only) that DINOv2's depth probes train with.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--out-dir", default="heads-out", show_default=True, help="Where to write <dataset>-<task>.safetensors.")
def train_head_command(**kw) -> None:
    """Train segmentation or depth heads and save them as safetensors."""
    import json
    from dataclasses import asdict

    from dfbench.data.train_frames import lister_tasks
    from dfbench.errors import DfbenchError
    from dfbench.features import load_feature_space
    from dfbench.heads.catalog import dpt_config, head_kind, save_head, space_pca
    from dfbench.heads.train import check_loss, head_examples, task_classes, train_head
    from dfbench.registry import get_dataset_class
    from dfbench.results import check_writable
    from dfbench.tasks import get_task

    out_dir = Path(kw["out_dir"])
    check_writable(out_dir)
    cls = get_dataset_class(kw["dataset"])
    own_labels = lister_tasks(kw["dataset"])  # tasks whose labels the training lister reads itself
    tasks = {}
    for task in kw["tasks"] or cls.tasks:
        get_task(task)  # an unknown name is one line with the nearest one
        check_loss(kw["loss"], task)
        tasks[task] = task_classes(cls.tasks, task)
        if tasks[task] is None:
            tasks[task] = own_labels.get(task)
        if tasks[task] is None:
            known = ", ".join([*cls.tasks, *own_labels])
            raise DfbenchError(f"data set '{kw['dataset']}' has no labels for task '{task}' (it has {known}); "
                               "choose one of those with --task.")
    space = load_feature_space(kw["feature_space"], kw["feature_space_path"], device=kw["device"])
    started = time.perf_counter()
    clips_by_labels: dict[str | None, list] = {}
    pca_dpt = space_pca(space) is not None
    grid = space.grid if pca_dpt else (space.frame_size // space.patch_size,) * 2
    sizes = dpt_config(kw["feature_space"]) if pca_dpt else None
    for task, num_classes in tasks.items():
        labels = task if task in own_labels and task not in cls.tasks else None  # None: the data set's labels
        if labels not in clips_by_labels:
            clips_by_labels[labels] = training_clips(kw["dataset"], kw["data_root"], kw["frame_size"] or space.frame_size,
                                                     kw["limit"], labels)
        examples = head_examples(clips_by_labels[labels], space, task, kw["frames_per_clip"])
        head = train_head(examples, task, num_classes, space.dim, grid, kw["epochs"], kw["batch_size"], lr=kw["lr"],
                          seed=kw["seed"], feature_space=space, dpt_config=sizes, loss=kw["loss"])
        path = out_dir / f"{kw['dataset']}-{task}.safetensors"
        meta = {"feature_space": kw["feature_space"], "dataset": kw["dataset"], "task": task, "classes": str(num_classes),
                "head": head_kind(kw["feature_space"])}
        if pca_dpt:
            meta["dpt"] = json.dumps({**asdict(head.config), "out_channels": list(head.config.out_channels)})
        save_head(head, path, meta)
        unit = "frames" if pca_dpt else "crops"
        click.echo(f"wrote {path} ({len(examples)} {unit}, {time.perf_counter() - started:.1f}s)")


# `dfbench train-head` keeps working for existing scripts; --help no longer lists it.
train_head_alias = click.Command(
    "train-head",
    params=train_head_command.params,
    callback=train_head_command.callback,
    help=train_head_command.help,
    hidden=True,
    deprecated=True,
)
