"""Fitting a multi-layer PCA the way DINO-Foresight's ``pca.py`` does, in plain torch.

The official fit (FACTS.md, section 3) standardises the concatenated features with their
per-channel mean and population std, then fits scikit-learn's PCA (centring again, no
whitening). Here the principal axes come from the SVD of the covariance matrix in float64,
which gives the same axes, and each axis's sign is fixed so that its largest-magnitude
coefficient is positive (scikit-learn's ``svd_flip`` on the components): the fit is a pure
function of the features, so refitting on the same data gives the same file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dfbench.errors import DfbenchError
from dfbench.features.multilayer_pca import PcaProjection


@dataclass
class PcaFit:
    """A fitted projection and how much of the standardised variance each component keeps.

    Attributes:
        projection: mean, std, pca_mean and components, ready for :class:`MultiLayerPcaSpace`.
        explained: float64 [K] fraction of the total variance of the standardised features per component.
        samples: rows (tokens) the fit saw.
    """

    projection: PcaProjection
    explained: torch.Tensor
    samples: int

    @property
    def explained_total(self) -> float:
        return float(self.explained.sum())


def identity_projection(width: int) -> PcaProjection:
    """A PCA that changes nothing: reads the raw concatenated features before a fit exists."""
    zeros = torch.zeros(width)
    return PcaProjection(zeros, torch.ones(width), zeros, torch.eye(width))


def fit_pca(features: torch.Tensor, components: int) -> PcaFit:
    """Fits standardisation and K principal axes on features [M, W] (rows are tokens).

    Raises:
        DfbenchError: fewer rows than components, more components than channels, or a
            channel with zero variance (its standardisation would divide by zero).
    """
    if features.dim() != 2:
        raise DfbenchError(f"a PCA fits features [tokens, channels], got {tuple(features.shape)}; flatten them first.")
    rows, width = features.shape
    if not 0 < components <= width or rows <= components:
        raise DfbenchError(
            f"cannot fit {components} components on {rows} tokens of width {width}; use 0 < K <= {width} and more tokens than K."
        )
    x = features.double()
    mean = x.mean(0)
    std = x.std(0, unbiased=False)
    if bool((std == 0).any()):
        raise DfbenchError(f"{int((std == 0).sum())} feature channels are constant on these frames; fit on more varied frames.")
    z = (x - mean) / std
    pca_mean = z.mean(0)
    centred = z - pca_mean
    covariance = centred.T @ centred / (rows - 1)
    _, variances, axes_t = torch.linalg.svd(covariance)
    axes = axes_t[:components]
    signs = torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
    axes = axes * signs
    explained = variances[:components] / variances.sum()
    projection = PcaProjection(mean.float(), std.float(), pca_mean.float(), axes.float())
    return PcaFit(projection=projection, explained=explained, samples=rows)


def reconstruction_r2(projection: PcaProjection, features: torch.Tensor) -> float:
    """1 - |x - inverse(forward(x))|^2 / |x - mean|^2 over standardised channels (1 = perfect)."""
    restored = projection.inverse(projection(features))
    error = ((restored - features) / projection.std).pow(2).sum()
    spread = ((features - projection.mean) / projection.std).pow(2).sum()
    return float(1 - error / spread)
