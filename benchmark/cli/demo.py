"""`dfbench demo`: the whole benchmark on the embedded synthetic world, offline (see dfbench.demo)."""

from __future__ import annotations

import click


@click.command("demo")
@click.option("--output-dir", default="results", show_default=True)
@click.option("--num-samples", type=int, default=None, help="Samples per rollout (default 20).")
@click.option("--limit", type=int, default=None, help="Evaluate only the first N clips.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--batch-size", type=int, default=8, show_default=True)
def demo_command(output_dir: str, num_samples: int | None, limit: int | None, device: str, batch_size: int) -> None:
    """Evaluate every built-in model on the synthetic benchmark and show the table."""
    from dfbench.demo import run_demo

    run_demo(output_dir, num_samples=num_samples, limit=limit, device=device, batch_size=batch_size)
