"""Adapters for the paper's predictors: one class per family, DeltaWorld and DINO-world.

A variant is a :class:`~dfbench.adapters.spec.ModelSpec` (see
:mod:`dfbench.adapters.variants`): its token kind and best-of-many flag configure the
network, and its weights per feature space are released hub ids (DINOv3 ViT-B) or
safetensors shipped in ``adapters/assets`` (tiny). ``--checkpoint`` replaces the
predictor weights; the registry hands out the family class bound to the spec.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch

from dfbench.adapters.base import Context, Forecast, WorldModel, randn_rows
from dfbench.adapters.spec import ModelSpec
from dfbench.errors import DfbenchError

VITB_WIDTH = 768  # released checkpoints carry no config: they are the paper's ViT-B models
DEFAULT_HUB_FILE = "pytorch_model.bin"  # how the paper's release names its files
TOKENIZER_HOLDERS = {"delta": "deltatok", "frame": "deltatok-frame"}  # the metadata name training writes


def _metadata_config(source: str, accepts: Callable[[str], bool], wanted: str) -> dict[str, Any] | None:
    """The config stored in our own safetensors checkpoints, after checking whose it is."""
    if not (source.endswith(".safetensors") and Path(source).is_file()):
        return None
    from dfbench.checkpoints import read_safetensors_metadata

    metadata = read_safetensors_metadata(source)
    holder = metadata.get("model")
    if holder is not None and not accepts(holder):
        raise DfbenchError(f"checkpoint '{source}' holds a '{holder}' model, not {wanted}; pass a {wanted} checkpoint.")
    return metadata.get("config")


def same_architecture(spec: ModelSpec) -> Callable[[str], bool]:
    """Whether a checkpoint's holder is a model of the spec's architecture (any variant)."""

    def accepts(holder: str) -> bool:
        from dfbench.registry import get_model_spec, model_names

        return holder in model_names() and get_model_spec(holder).architecture == spec.architecture

    return accepts


def _config(config_cls, stored: dict[str, Any] | None, source: str, **preset):
    if stored is None:
        return config_cls.vitb(**preset)
    try:
        return config_cls.from_dict(stored)
    except (KeyError, TypeError, ValueError) as error:
        raise DfbenchError(f"checkpoint '{source}' has an unreadable model config ({error}); re-export it.") from error


def weight_location(spec: ModelSpec, feature_space: str, part: str) -> str | None:
    """A shipped file path or a hub id for one part ("tokenizer" or "predictor")."""
    source = spec.weight(feature_space, part)
    return None if source is None else source.location


class PredictorWorldModel(WorldModel):
    """Shared loading and sampling of DeltaWorld- and DINO-world-style adapters.

    The class is abstract over variants: the registry subclasses it with ``spec`` set
    (``get_model_class(name)``).
    """

    spec: ClassVar[ModelSpec]
    uses_black_frame: ClassVar[bool] = False

    def __init__(self, feature_space, checkpoint: str | None = None, tokenizer: str | None = None, **options) -> None:
        super().__init__(feature_space, checkpoint)
        if not isinstance(getattr(type(self), "spec", None), ModelSpec):
            raise DfbenchError(f"{type(self).__name__} needs a model spec; build it with dfbench.registry.get_model_class(NAME).")
        self._files: dict[str, str] = {}
        predictor_source = checkpoint or weight_location(self.spec, feature_space.name, "predictor")
        if predictor_source is None:
            raise DfbenchError(
                f"no {self.name} weights for feature space '{feature_space.name}'; pass --checkpoint PATH_OR_HUB_ID "
                f"(train one with 'dfbench train predictor --model {self.name}')."
            )
        self._preloaded: dict[str, dict] = {}
        if not predictor_source.endswith(".safetensors"):
            self._preload_released(feature_space, predictor_source)
        self.net = self.build(feature_space, predictor_source, tokenizer).eval()

    def _hub_filename(self, feature_space, source: str) -> str:
        """The file inside a hub repository the spec declares for ``source`` (default for others)."""
        for declared in self.spec.weights.get(feature_space.name, {}).values():
            if declared.hub_id == source:
                return declared.filename
        return DEFAULT_HUB_FILE

    def build(self, feature_space, predictor_source: str, tokenizer_source: str | None) -> torch.nn.Module:
        raise NotImplementedError

    def _preload_released(self, feature_space, source: str) -> None:
        """Reads a released (config-less, ViT-B) checkpoint first, so a bad file fails early."""
        from dfbench.checkpoints import load_state_dict, resolve_checkpoint, sha256_file

        path = resolve_checkpoint(source, self._hub_filename(feature_space, source))
        self._preloaded[source] = load_state_dict(str(path))
        self._files[self.name] = sha256_file(path)
        if feature_space.dim != VITB_WIDTH:
            raise DfbenchError(
                f"checkpoint '{source}' is a released ViT-B model (width {VITB_WIDTH}) but feature space "
                f"'{feature_space.name}' has width {feature_space.dim}; use --feature-space dinov3-vitb16."
            )

    def _load(self, module: torch.nn.Module, source: str, label: str) -> None:
        from dfbench.checkpoints import load_checkpoint, load_into

        if source in self._preloaded:
            load_into(module, self._preloaded.pop(source), label)
            return
        loaded = load_checkpoint(module, source, label, filename=self._hub_filename(self.feature_space, source))
        self._files[label] = loaded.sha256

    def to(self, device):
        self.net.to(device)
        return self

    def checkpoint_files(self) -> dict[str, str]:
        return dict(self._files)

    def predict(self, context: Context, target_timestamps: torch.Tensor, num_samples: int) -> Forecast:
        samples = num_samples if self.stochastic else 1
        width = self.net.config.predictor.hidden_size
        std = self.net.config.noise_std
        device = context.features.device
        # All K steps' noise drawn up front from each row's own generator: [B, K, S, 1, Dp].
        steps = target_timestamps.shape[1]
        noise = randn_rows(context.generators, (steps, samples, 1, width), device) * std if self.stochastic else None
        side = context.frames.shape[-1]  # square crops; the feature space caches their black frame
        black = self.feature_space.black_frame(side, side) if self.uses_black_frame else None
        preds = self.net.rollout(
            context.features.float(),
            context.timestamps.float(),
            target_timestamps.float(),
            context.grid,
            num_samples=samples,
            noise=None if noise is None else noise.transpose(0, 1),
            x_black=black,
        )
        return Forecast(preds)


class DeltaWorldFamily(PredictorWorldModel):
    """DeltaWorld and its variants: a DeltaTok tokenizer (delta or frame tokens) and a token predictor."""

    # DeltaWorld's first context token encodes "black frame -> first frame".
    uses_black_frame = True
    # Its tokenizer and predictor calls round differently with more rows (measured: rmse 1e-8
    # apart between batch sizes 1 and 2), and the pair memo reuses a clip's tokens across its windows.
    one_clip_per_call = True

    def build(self, feature_space, predictor_source, tokenizer_source):
        from dfbench.models.deltatok import DeltaTok, DeltaTokConfig
        from dfbench.models.deltaworld import DeltaWorld, DeltaWorldConfig

        tok_source = tokenizer_source or weight_location(self.spec, feature_space.name, "tokenizer")
        if tok_source is None:
            raise DfbenchError(f"no DeltaTok weights for feature space '{feature_space.name}'; pass tokenizer=PATH.")
        use_delta = self.spec.tokens == "delta"
        tok_cfg = _metadata_config(tok_source, lambda holder: holder in TOKENIZER_HOLDERS.values(), "DeltaTok tokenizer")
        tokenizer = DeltaTok(_config(DeltaTokConfig, tok_cfg, tok_source, use_delta=use_delta))
        self._load(tokenizer, tok_source, "deltatok")
        pred_cfg = _metadata_config(predictor_source, same_architecture(self.spec), "DeltaWorld predictor")
        config = _config(DeltaWorldConfig, pred_cfg, predictor_source, use_bom=self.spec.best_of_many)
        config.noise_std = feature_space.noise_std
        net = DeltaWorld(tokenizer, config)
        self._load(net, predictor_source, self.name)
        return net


class DinoWorldFamily(PredictorWorldModel):
    """DINO-world and its variants: whole feature maps predicted from a learned (or noise) query."""

    def build(self, feature_space, predictor_source, tokenizer_source):
        from dfbench.models.dinoworld import DINOWorld, DINOWorldConfig

        pred_cfg = _metadata_config(predictor_source, same_architecture(self.spec), "DINO-world predictor")
        config = _config(DINOWorldConfig, pred_cfg, predictor_source, use_bom=self.spec.best_of_many)
        config.noise_std = feature_space.noise_std
        net = DINOWorld(config)
        self._load(net, predictor_source, self.name)
        return net
