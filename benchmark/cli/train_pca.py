"""`dfbench train pca`: fit a tiny multi-layer PCA feature space on a data set's training frames."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("pca")
@click.option("--feature-space", required=True, help="A tiny multi-layer PCA space, e.g. tiny-ml-pca.")
@click.option("--dataset", default="synthetic", show_default=True, help="Data set whose training split the PCA sees.")
@click.option("--clips", type=click.IntRange(min=1), default=None, help="Training clips to read (default: the space's recipe).")
@click.option("--components", type=click.IntRange(min=1), default=None, help="K (default: the space's recipe).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The safetensors file to write.")
def train_pca_command(feature_space, dataset, clips, components, out) -> None:
    """Fit standardisation + PCA on the concatenated block features, as DINO-Foresight's pca.py does.

    Reads the space's blocks of every token of the training frames, standardises each channel
    (population std), and keeps the K leading principal axes of the covariance (float64 SVD,
    signs fixed). Writes mean, std, pca_mean and pca_components with the fit's metadata.
    """
    from dfbench.features.tiny_ml_pca import fit_tiny_pca, save_pca, tiny_recipe
    from dfbench.files import check_writable

    tiny_recipe(feature_space)
    check_writable(Path(out).parent, "--out")
    fit = fit_tiny_pca(feature_space, dataset, clips, components)
    extra = {"dataset": dataset, "split": "train", "clips": clips or tiny_recipe(feature_space).fit_clips}
    path = save_pca(fit, out, feature_space, extra)
    click.echo(f"fitted {fit.projection.components} components on {fit.samples} tokens, "
               f"explained variance {fit.explained_total:.4f}: {path}")
