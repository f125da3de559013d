"""`dfbench run`: evaluate models on data sets, in one process or several (torchrun)."""

from __future__ import annotations

import click

from dfbench.errors import DfbenchError


def parse_heads(values: tuple[str, ...]) -> dict[str, str]:
    from dfbench.tasks import get_task, task_names

    heads = {}
    for value in values:
        task, sep, source = value.partition("=")
        known = task.partition("[")[0] in task_names()  # seg-mo[5,6]: a data set's variant of seg-mo
        if not sep or not known:
            raise DfbenchError(f"--head takes TASK=PATH with TASK one of {', '.join(task_names())}, got '{value}'.")
        heads[get_task(task).name] = source
    return heads


def protocol_line(outcome) -> str:
    """Which protocol (and its options, e.g. the depth aggregation) a result was computed under."""
    identity = outcome.result.identity
    options = ", ".join(f"{k}={v}" for k, v in identity.protocol_options.items())
    return f"protocol {identity.protocol} {identity.protocol_version}" + (f" ({options})" if options else "")


@click.command("run")
@click.option("--model", required=True,
              help="Registered model name(s), comma-separated, or 'all' (see 'dfbench list').")
@click.option("--dataset", required=True, help="Data set name(s), comma-separated (see 'dfbench list').")
@click.option("--data-root", default=None, help="Root of the data set (else its environment variable or config).")
@click.option("--split-file", default=None, help="KITTI only: the Eigen test split list.")
@click.option("--feature-space", default=None, help="Feature space (default: tiny for synthetic, else dinov3-vitb16).")
@click.option("--feature-space-path", default=None, help="Local folder of the feature-space weights.")
@click.option("--checkpoint", default=None, help="Model checkpoint: a local file or a Hugging Face hub id.")
@click.option("--head", "heads", multiple=True, help="Override a task head: seg=PATH or depth=PATH.")
@click.option("--protocol", default=None,
              help="Evaluation protocol (configs/protocol/NAME.yaml); default: the model's (dinoworld for most).")
@click.option("--protocol-arg", "protocol_args", multiple=True, metavar="KEY=VALUE",
              help="Protocol option, e.g. depth_aggregation=official official_batch_size=2 official_devices=8 "
                   "under dinoforesight; part of the result's identity.")
@click.option("--num-samples", type=int, default=None, help="Samples per rollout for generative models (default 20).")
@click.option("--horizons", default="short,mid", show_default=True, help="Comma-separated horizons.")
@click.option("--batch-size", type=int, default=1, show_default=True, help="Clips per forward pass.")
@click.option("--num-workers", type=int, default=None,
              help="DataLoader processes decoding clips ahead of the model (default: 0 for synthetic, else 2).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="auto: bf16 autocast on CUDA as the reference evaluates, fp32 on the CPU.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--limit", type=int, default=None, help="Evaluate only the first N clips.")
@click.option("--output-dir", default="results", show_default=True)
@click.option("--feature-cache", default=None, help="Folder to keep backbone features in, shared across runs and models.")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE",
              help="Option passed to the model's constructor (e.g. tokenizer=PATH); part of the result's identity.")
@click.option("--dataset-arg", "dataset_args", multiple=True, metavar="KEY=VALUE",
              help="Option passed to the data set's constructor; part of the result's identity.")
@click.option("--compile", "compile_", is_flag=True,
              help="torch.compile the networks (pays on GPUs); recorded in the result's identity.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def run_command(**kw) -> None:
    """Evaluate models on data sets and write <output-dir>/<dataset>/<model>/<run>.json for each pair.

    Each run identity (weights, seed, samples, clips...) gets its own result file; the
    same command again resumes or reports it (see README, "What makes a result").
    Several models (--model a,b or all) share each clip's decoding and backbone features.
    Under torchrun the clips are split over the processes; rank 0 writes the results.
    """
    from dfbench.distributed import Ranks
    from dfbench.multi_run import execute_all
    from dfbench.run import RunOptions
    from dfbench.run_checks import parse_key_values
    from dfbench.run_pairs import check_single_pair_options, expand_pairs
    from dfbench.run_summary import print_summary

    pairs = expand_pairs(kw["model"], kw["dataset"], kw["feature_space"], kw["protocol"])
    check_single_pair_options(pairs, kw)
    dataset_options = parse_key_values(kw["dataset_args"], "--dataset-arg")
    if kw["split_file"]:
        dataset_options["split_file"] = kw["split_file"]
    heads = parse_heads(kw["heads"])
    model_options = parse_key_values(kw["model_args"], "--model-arg")
    # --protocol-arg a=1 b=2 and --protocol-arg a=1 --protocol-arg b=2 both work
    protocol_options = parse_key_values(tuple(p for arg in kw["protocol_args"] for p in arg.split()), "--protocol-arg")
    options = [
        RunOptions(
            model=model,
            dataset=dataset,
            data_root=kw["data_root"],
            feature_space=kw["feature_space"],
            feature_space_path=kw["feature_space_path"],
            checkpoint=kw["checkpoint"],
            num_samples=kw["num_samples"],
            horizons=tuple(h.strip() for h in kw["horizons"].split(",") if h.strip()),
            batch_size=kw["batch_size"],
            device=kw["device"],
            seed=kw["seed"],
            limit=kw["limit"],
            output_dir=kw["output_dir"],
            heads=dict(heads),
            dataset_options=dict(dataset_options),
            model_options=dict(model_options),
            protocol=kw["protocol"],
            protocol_options=dict(protocol_options),
            precision=kw["precision"],
            feature_cache_dir=kw["feature_cache"],
            num_workers=kw["num_workers"],
            progress=not kw["no_progress"],
            compile=kw["compile_"],
        )
        for model, dataset in pairs
    ]
    ranks = Ranks.from_env()
    try:
        outcomes = execute_all(options, ranks=ranks)
    finally:
        ranks.stop()
    for outcome in outcomes:
        if outcome is not None:  # rank 0 reports; the other ranks computed their shards
            print_summary(outcome)
            if outcome.result.identity.protocol_options:
                click.echo(protocol_line(outcome))
