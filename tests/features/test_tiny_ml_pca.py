"""The tiny multi-layer PCA space: its shipped PCA reconstructs synthetic features, and the fit is reproducible."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from dfbench.checkpoints import read_safetensors_metadata
from dfbench.cli import cli
from dfbench.errors import DfbenchError
from dfbench.features import load_feature_space
from dfbench.features.pca_fit import fit_pca, identity_projection, reconstruction_r2
from dfbench.features.tiny_ml_pca import (
    ASSETS,
    FIT_COMMAND,
    TINY_RECIPES,
    fit_tiny_pca,
    layer_tokens,
    read_pca,
    synthetic_fit_frames,
)

# Measured on 64 validation clips with the shipped 64 components: 0.980 (0.957 with 48, 0.994 with 96).
MIN_VAL_R2 = 0.97


@pytest.fixture(scope="module")
def space():
    return load_feature_space("tiny-ml-pca")


@pytest.fixture(scope="module")
def val_tokens(space):
    frames = synthetic_fit_frames(TINY_RECIPES["tiny-ml-pca"], split="val", clips=12)
    return layer_tokens(space, frames)


def test_space_shape_follows_the_recipe(space):
    frames = torch.zeros(2, 3, 72, 142, dtype=torch.uint8)
    assert space.grid == (8, 16) and space.dim == 64 and space.pca.width == 384
    assert space.encode(frames).shape == (2, 128, 64)
    assert load_feature_space("tiny-ml-pca-lowres").grid == (4, 8)


def test_shipped_pca_reconstructs_held_out_synthetic_features(space, val_tokens):
    assert reconstruction_r2(space.pca, val_tokens) > MIN_VAL_R2
    # The layer split the heads read comes back from the PCA coordinates.
    restored = space.split_layers(space.decode(space.pca(val_tokens)))
    assert [t.shape[-1] for t in restored] == [96] * 4


def test_shipped_pca_documents_its_fit():
    meta = read_safetensors_metadata(ASSETS / "tiny-ml-pca.safetensors")
    assert meta["command"] == FIT_COMMAND and meta["dataset"] == "synthetic" and meta["split"] == "train"
    assert meta["components"] == 64 and meta["blocks"] == [0, 1, 2, 3] and meta["image_size"] == [64, 128]
    assert meta["explained_variance"] > 0.97


def test_fit_is_deterministic_and_ordered():
    first = fit_tiny_pca("tiny-ml-pca", clips=6, components=16)
    second = fit_tiny_pca("tiny-ml-pca", clips=6, components=16)
    for key in ("mean", "std", "pca_mean", "pca_components"):
        assert torch.equal(getattr(first.projection, key), getattr(second.projection, key))
    assert bool((first.explained[:-1] >= first.explained[1:]).all())
    axes = first.projection.pca_components
    assert torch.allclose(axes @ axes.T, torch.eye(16), atol=1e-5)


def test_fit_keeps_a_known_subspace():
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(12, 3, generator=g))[0].T  # three orthonormal axes in 12 channels
    x = torch.randn(4000, 3, generator=g) @ basis * 5 + 0.01 * torch.randn(4000, 12, generator=g) + 3
    fit = fit_pca(x, 3)
    assert fit.explained_total > 0.99
    assert reconstruction_r2(fit.projection, x) > 0.99
    assert reconstruction_r2(identity_projection(12), x) == pytest.approx(1.0)


def test_pca_of_another_width_is_refused(tmp_path):
    shipped = load_file(str(ASSETS / "tiny-ml-pca.safetensors"))
    narrow = {k: (v[:8] if k == "pca_components" else v) for k, v in shipped.items()}
    save_file(narrow, str(tmp_path / "narrow.safetensors"))
    with pytest.raises(DfbenchError, match="needs 64 x 384"):
        read_pca(tmp_path / "narrow.safetensors", 384, 64)
    with pytest.raises(DfbenchError, match="constant"):
        fit_pca(torch.ones(100, 4), 2)


def test_cli_fits_and_writes_the_file(tmp_path):
    out = tmp_path / "pca.safetensors"
    result = CliRunner().invoke(cli, ["train", "pca", "--feature-space", "tiny-ml-pca", "--clips", "4", "--components", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert read_pca(out, 384, 8).components == 8
    refused = CliRunner().invoke(cli, ["train", "pca", "--feature-space", "dinov2-vitb14-reg-pca1152", "--out", str(tmp_path / "x.safetensors")])
    # The group raises DfbenchError; `dfbench` (main) turns it into one stderr line and exit 2.
    assert isinstance(refused.exception, DfbenchError) and "no PCA recipe" in str(refused.exception)
    assert not (tmp_path / "x.safetensors").exists()
