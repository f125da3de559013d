"""Feature spaces: frozen vision foundation models whose patch features world models predict."""

from __future__ import annotations

from dfbench.features.base import FeatureSpace


def load_feature_space(name: str, path: str | None = None, device: str = "cpu", dtype=None) -> FeatureSpace:
    """Load the feature space registered as ``name``.

    Args:
        name: a registry name, e.g. ``"tiny"`` or ``"dinov3-vitb16"``.
        path: a local model folder to load instead of the default weights.
        device: where the model runs.
        dtype: ``torch.bfloat16`` runs the backbone under bf16 autocast on CUDA.

    Raises:
        DfbenchError: unknown name, or weights that cannot be found.
    """
    from dfbench.registry import get_feature_space_loader

    return get_feature_space_loader(name)(path=path, device=device, dtype=dtype)


__all__ = ["FeatureSpace", "load_feature_space"]
