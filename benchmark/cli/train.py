"""`dfbench train tokenizer|predictor|head|pca`: train a tokenizer or a predictor from a
configs/train/*.yaml recipe, a task head on frozen features, or a tiny feature space's PCA."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from dfbench.cli.train_head import train_head_command
from dfbench.cli.train_pca import train_pca_command


def check_train_inputs(config, out: str | None, export: str | None, model: str | None, tokenizer: str | None) -> None:
    """Everything a typo can break, checked before any clip is encoded (that takes minutes)."""
    from dfbench.hub import check_hub_cached
    from dfbench.errors import DfbenchError
    from dfbench.files import check_writable
    from dfbench.run_checks import check_local_file

    folder = out or config.output
    if folder is None:
        raise DfbenchError("no output folder: pass --out DIR or set `output` in the config")
    check_writable(Path(folder), "--out")
    if export:
        check_writable(Path(export).parent, "--export")
    if config.part != "predictor":
        return
    from dfbench.train.objectives import trainable_spec

    variant = model or getattr(config, "model", None)
    if variant is None:
        raise DfbenchError("choose the predictor variant: pass --model or set `model` in the config")
    spec = trainable_spec(variant)
    if spec.tokens is not None:
        source = tokenizer or config.tokenizer.get(spec.tokens)
        if source is None:
            raise DfbenchError(
                f"{variant} needs a {spec.tokens}-token tokenizer: pass --tokenizer PATH or set tokenizer.{spec.tokens}"
            )
        check_local_file(str(source), "--tokenizer")
        check_hub_cached(str(source))


def load_config(config_path: str):
    """The training config, or one line saying what is wrong with it."""
    import yaml

    from dfbench.errors import DfbenchError
    from dfbench.train.loop import TrainConfig

    try:
        return TrainConfig.load(config_path)
    except (yaml.YAMLError, TypeError, KeyError, ValueError, AttributeError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DfbenchError(f"training config '{config_path}' is not valid ({type(err).__name__}: {reason}); "
                           "fix it, starting from one in configs/train/.") from None


def _train(config_path: str, out: str | None, steps: int | None, resume: bool, export: str | None, stage: str | None = None,
           **model) -> None:
    from dfbench.errors import DfbenchError
    from dfbench.train.loop import Trainer

    config = load_config(config_path)
    check_train_inputs(config, out, export, model.get("model"), model.get("tokenizer"))
    if stage is not None and stage not in config.stages:
        raise DfbenchError(f"--stage {stage}: the config has {'stages ' + ', '.join(config.stages) if config.stages else 'no stages'}")
    root = Path(out or config.output)
    # A staged recipe runs its stages in order, each in OUT/<stage>, the next one starting from the last's weights.
    runs = [(config.stage(name, root), root / name) for name in config.stage_order() if stage in (None, name)] or [(config, root)]
    for run_config, run_out in runs:
        if len(runs) > 1 or stage:
            click.echo(f"stage {run_config.name} -> {run_out}")
        trainer = Trainer(run_config, out_dir=run_out, log=click.echo, **model)
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
@click.option("--model", help="Predictor variant, e.g. deltaworld, dino-world-bom or dino-foresight (default: the config's `model`).")
@click.option("--tokenizer", help="Tokenizer weights for a DeltaWorld variant (default: the config's `tokenizer`).")
@click.option("--stage", help="Run only this stage of a staged recipe (default: every stage, in order).")
def predictor_command(config_path, out, steps, resume, export, model, tokenizer, stage) -> None:
    """Train a DeltaWorld, DINO-world or DINO-Foresight predictor on a frozen feature space.

    DINO-Foresight's recipe has two stages (low resolution, then high-resolution fine-tuning);
    --steps then sets the steps of every stage run.
    """
    _train(config_path, out, steps, resume, export, stage=stage, model=model, tokenizer=tokenizer)


train_group.add_command(train_head_command)
train_group.add_command(train_pca_command)
