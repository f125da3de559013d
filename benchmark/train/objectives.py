"""What a training run optimises: DeltaTok on frame pairs, or a predictor variant's own loss.

The predictor is built from its :class:`~dfbench.adapters.spec.ModelSpec`: the spec's
``architecture`` picks the network, ``tokens`` the tokenizer (delta or frame tokens) and
``best_of_many`` the noise queries, so a new variant needs no code here.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dfbench.errors import DfbenchError
from dfbench.train.clips import ClipFeatureCache
from dfbench.train.config import TrainConfig
from dfbench.train.recipes import delta_token_loss


def backbone_heads(feature_space: nn.Module) -> int | None:
    config = getattr(getattr(feature_space, "model", None), "config", None)
    return getattr(config, "num_attention_heads", None)


class TokenizerObjective:
    """DeltaTok on frame pairs: ``log_cosh(decode(encode(y_a, y_b), y_a), y_b)``."""

    def __init__(self, config: TrainConfig, feature_space: nn.Module, cache: ClipFeatureCache) -> None:
        from dfbench.models.deltatok import DeltaTok, DeltaTokConfig

        arch = dict(config.architecture)
        arch.setdefault("num_heads", backbone_heads(feature_space))
        tok_config = DeltaTokConfig(hidden_size=feature_space.dim, patch_size=feature_space.patch_size, **arch)
        self.model = DeltaTok(tok_config)
        self.cache = cache
        self.metadata = {"model": "deltatok" if tok_config.use_delta else "deltatok-frame", "config": tok_config.to_dict()}

    def loss(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from dfbench.models.deltatok import log_cosh

        y = self.cache.features[index]
        # In train mode the tokenizer's RoPE uses DINOv3's coordinate augmentation, as in the reference.
        prediction = self.model.reconstruct(y[:, 0], y[:, 1], self.cache.grid)
        return log_cosh(prediction, y[:, 1])


def load_tokenizer(source: str, use_delta: bool) -> nn.Module:
    """A trained DeltaTok from our safetensors (config in the metadata) or a released file."""
    from dfbench.checkpoints import load_checkpoint, read_safetensors_metadata
    from dfbench.models.deltatok import DeltaTok, DeltaTokConfig

    config = None
    if source.endswith(".safetensors") and Path(source).is_file():
        saved = read_safetensors_metadata(source).get("config")
        config = DeltaTokConfig.from_dict(saved) if saved else None
    config = config or DeltaTokConfig.vitb(use_delta=use_delta)
    if config.use_delta != use_delta:
        kind = "delta" if use_delta else "frame"
        raise DfbenchError(f"tokenizer '{source}' has use_delta={config.use_delta}; this model needs a {kind}-token tokenizer")
    tokenizer = DeltaTok(config)
    load_checkpoint(tokenizer, source, "deltatok")
    return tokenizer


class PredictorObjective:
    """A DeltaWorld or DINO-world predictor with its model's ``training_loss``.

    DeltaWorld's tokenizer is frozen and in eval mode, so the delta tokens of the cached
    clips never change: they are computed once and the loss runs from them
    (:func:`~dfbench.train.recipes.delta_token_loss`).
    """

    def __init__(
        self, config: TrainConfig, feature_space: nn.Module, cache: ClipFeatureCache, variant: str, tokenizer: str | None
    ) -> None:
        from dfbench.models.deltaworld import DeltaWorld, DeltaWorldConfig
        from dfbench.models.dinoworld import DINOWorld, DINOWorldConfig
        from dfbench.models.predictor import PredictorConfig

        spec = trainable_spec(variant)
        arch = dict(config.architecture)
        predictor = PredictorConfig(input_size=feature_space.dim, **arch.pop("predictor"))
        extra = {"use_bom": spec.best_of_many, "noise_std": feature_space.noise_std, **arch}
        self.cache, self.variant, self.tokens = cache, variant, None
        if spec.tokens is not None:
            use_delta = spec.tokens == "delta"
            source = tokenizer or config.tokenizer.get(spec.tokens)
            if source is None:
                raise DfbenchError(
                    f"{variant} needs a {spec.tokens}-token tokenizer: pass --tokenizer PATH or set tokenizer.{spec.tokens}"
                )
            model_config = DeltaWorldConfig(predictor=predictor, **extra)
            self.model = DeltaWorld(load_tokenizer(str(source), use_delta), model_config)
            grid = cache.grid
            side = grid[0] * feature_space.patch_size
            with torch.no_grad():
                self.x_black = feature_space.black_frame(side, side).float()
            self.tokens = torch.cat(
                [self.model.context_tokens(chunk, self.x_black, grid) for chunk in cache.features.split(64)]
            )
        else:
            if len(predictor.rope_axis_sizes) != 3:
                raise DfbenchError(f"{variant} needs three RoPE axes (t, w, h); this config has {predictor.rope_axis_sizes}")
            model_config = DINOWorldConfig(predictor=predictor, **extra)
            self.model = DINOWorld(model_config)
        self.metadata = {"model": variant, "config": model_config.to_dict()}

    def loss(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        timestamps = self.cache.timestamps[index]
        if self.tokens is not None:
            return delta_token_loss(self.model, self.tokens[index], timestamps, generator=generator)
        return self.model.training_loss(self.cache.features[index], timestamps, self.cache.grid, generator=generator)


def predictor_objective(
    config: TrainConfig, feature_space: nn.Module, cache: ClipFeatureCache, variant: str, tokenizer: str | None
):
    """The objective of a predictor variant, chosen by its spec's ``architecture``."""
    if trainable_spec(variant).architecture == "dino-foresight":
        from dfbench.train.foresight import ForesightObjective

        return ForesightObjective(config, feature_space, cache, variant)
    return PredictorObjective(config, feature_space, cache, variant, tokenizer)


def trainable_spec(variant: str):
    """The spec of a predictor variant ``dfbench train predictor`` can build."""
    from dfbench.registry import builtin_model_specs, get_model_spec

    spec = get_model_spec(variant)
    if spec.architecture is None:
        trainable = [s.name for s in builtin_model_specs() if s.architecture is not None]
        raise DfbenchError(f"model '{variant}' has no predictor dfbench can train; choose one of {', '.join(trainable)}.")
    return spec
