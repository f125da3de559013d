"""`dfbench train tokenizer|predictor|head`: train a tokenizer or a predictor from a
configs/train/*.yaml recipe, or a task head on frozen features."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from dfbench.cli.train_head import train_head_command


def _train(config_path: str, out: str | None, steps: int | None, resume: bool, export: str | None, **model) -> None:
    from dfbench.train.loop import TrainConfig, Trainer

    config = TrainConfig.load(config_path)
    trainer = Trainer(config, out_dir=out, log=click.echo, **model)
    result = trainer.run(steps=steps, resume=resume)
    click.echo(f"trained {result.steps} steps in {result.seconds:.0f}s, last loss {result.last_loss:.5f}: {result.weights}")
    if export:
        Path(export).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.weights, export)
        click.echo(f"exported {export}")


def _common(command):
    command = click.option("--export", type=click.Path(dir_okay=False), help="Also copy the final weights here.")(command)
    command = click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --out.")(command)
    command = click.option("--steps", type=click.IntRange(min=1), help="Total optimiser steps (overrides the config).")(command)
    command = click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: the config's `output`).")(command)
    command = click.option(
        "--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False), help="A configs/train/*.yaml file."
    )(command)
    return command


@click.group("train")
def train_group() -> None:
    """Train tokenizers, predictors and task heads.

    Tokenizers and predictors follow the paper's recipes (configs/train/*.yaml); heads
    fit on frozen features of a data set's training split.
    """


@train_group.command("tokenizer")
@_common
def tokenizer_command(config_path, out, steps, resume, export) -> None:
    """Train a DeltaTok tokenizer (delta or frame tokens, per the config)."""
    _train(config_path, out, steps, resume, export)


@train_group.command("predictor")
@_common
@click.option("--model", help="Predictor variant, e.g. deltaworld or dino-world-bom (default: the config's `model`).")
@click.option("--tokenizer", help="Tokenizer weights for a DeltaWorld variant (default: the config's `tokenizer`).")
def predictor_command(config_path, out, steps, resume, export, model, tokenizer) -> None:
    """Train a DeltaWorld or DINO-world predictor on a frozen feature space."""
    _train(config_path, out, steps, resume, export, model=model, tokenizer=tokenizer)


train_group.add_command(train_head_command)
