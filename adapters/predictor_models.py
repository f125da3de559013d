"""Adapters for the paper's predictors: DeltaWorld and DINO-world, with their variants.

Each variant is described by ``configs/models/<name>.yaml``: which tokenizer and
predictor flags it uses and where its weights come from for each feature space
(released hub ids for DINOv3 ViT-B, safetensors shipped in ``adapters/assets`` for the
tiny space). ``--checkpoint`` replaces the predictor weights.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar

import torch

from dfbench.adapters.base import Context, Forecast, WorldModel, randn_rows
from dfbench.config import load_yaml
from dfbench.errors import DfbenchError
from dfbench.registry import register_model

ASSETS = "assets"
DELTAWORLD_NAMES = {"deltaworld", "deltaworld-frame", "deltaworld-nobom"}
DINOWORLD_NAMES = {"dino-world", "dino-world-bom"}
VITB_WIDTH = 768  # released checkpoints carry no config: they are the paper's ViT-B models


def model_config(name: str) -> dict[str, Any]:
    return load_yaml("models", f"{name}.yaml")


def weight_source(name: str, feature_space: str, part: str) -> str | None:
    """A shipped file path or a hub id for one part ("tokenizer" or "predictor")."""
    entry = model_config(name).get("weights", {}).get(feature_space, {}).get(part)
    if entry is None:
        return None
    if entry.endswith(".safetensors"):
        return str(files("dfbench.adapters").joinpath(ASSETS, entry))
    return entry


def _metadata_config(source: str, allowed: set[str], wanted: str) -> dict[str, Any] | None:
    """The config stored in our own safetensors checkpoints, after checking whose it is."""
    if not (source.endswith(".safetensors") and Path(source).is_file()):
        return None
    from dfbench.checkpoints import read_safetensors_metadata

    metadata = read_safetensors_metadata(source)
    holder = metadata.get("model")
    if holder is not None and holder not in allowed:
        raise DfbenchError(f"checkpoint '{source}' holds a '{holder}' model, not {wanted}; pass a {wanted} checkpoint.")
    return metadata.get("config")


def _config(config_cls, stored: dict[str, Any] | None, source: str, **preset):
    if stored is None:
        return config_cls.vitb(**preset)
    try:
        return config_cls.from_dict(stored)
    except (KeyError, TypeError, ValueError) as error:
        raise DfbenchError(f"checkpoint '{source}' has an unreadable model config ({error}); re-export it.") from error


class PredictorWorldModel(WorldModel):
    """Shared loading and sampling of DeltaWorld- and DINO-world-style adapters."""

    family: ClassVar[str]

    def __init__(self, feature_space, checkpoint: str | None = None, tokenizer: str | None = None, **options) -> None:
        super().__init__(feature_space, checkpoint)
        self.spec = model_config(self.name)
        self._files: dict[str, str] = {}
        predictor_source = checkpoint or weight_source(self.name, feature_space.name, "predictor")
        if predictor_source is None:
            raise DfbenchError(
                f"no {self.name} weights for feature space '{feature_space.name}'; pass --checkpoint PATH_OR_HUB_ID "
                f"(train one with 'dfbench train predictor --model {self.name}')."
            )
        self._preloaded: dict[str, dict] = {}
        if not predictor_source.endswith(".safetensors"):
            self._preload_released(feature_space, predictor_source)
        self.net = self.build(feature_space, predictor_source, tokenizer).eval()

    @classmethod
    def runs_offline(cls, feature_space_name: str) -> bool:
        source = weight_source(cls.name, feature_space_name, "predictor")
        return source is not None and Path(source).is_file()

    def build(self, feature_space, predictor_source: str, tokenizer_source: str | None) -> torch.nn.Module:
        raise NotImplementedError

    def _preload_released(self, feature_space, source: str) -> None:
        """Reads a released (config-less, ViT-B) checkpoint first, so a bad file fails early."""
        from dfbench.checkpoints import load_state_dict, resolve_checkpoint, sha256_file

        path = resolve_checkpoint(source, "pytorch_model.bin")
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
        loaded = load_checkpoint(module, source, label)
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
        black = self.feature_space.black_frame(side, side) if self.family == "deltaworld" else None
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
    family = "deltaworld"

    def build(self, feature_space, predictor_source, tokenizer_source):
        from dfbench.models.deltatok import DeltaTok, DeltaTokConfig
        from dfbench.models.deltaworld import DeltaWorld, DeltaWorldConfig

        tok_source = tokenizer_source or weight_source(self.name, feature_space.name, "tokenizer")
        if tok_source is None:
            raise DfbenchError(f"no DeltaTok weights for feature space '{feature_space.name}'; pass tokenizer=PATH.")
        use_delta = bool(self.spec["tokenizer"]["use_delta"])
        use_bom = bool(self.spec["predictor"]["use_bom"])
        tok_cfg = _metadata_config(tok_source, {"deltatok", "deltatok-frame"}, "DeltaTok tokenizer")
        tokenizer = DeltaTok(_config(DeltaTokConfig, tok_cfg, tok_source, use_delta=use_delta))
        self._load(tokenizer, tok_source, "deltatok")
        pred_cfg = _metadata_config(predictor_source, DELTAWORLD_NAMES, "DeltaWorld predictor")
        config = _config(DeltaWorldConfig, pred_cfg, predictor_source, use_bom=use_bom)
        config.noise_std = feature_space.noise_std
        net = DeltaWorld(tokenizer, config)
        self._load(net, predictor_source, self.name)
        return net


class DinoWorldFamily(PredictorWorldModel):
    family = "dino-world"

    def build(self, feature_space, predictor_source, tokenizer_source):
        from dfbench.models.dinoworld import DINOWorld, DINOWorldConfig

        use_bom = bool(self.spec["predictor"]["use_bom"])
        pred_cfg = _metadata_config(predictor_source, DINOWORLD_NAMES, "DINO-world predictor")
        config = _config(DINOWorldConfig, pred_cfg, predictor_source, use_bom=use_bom)
        config.noise_std = feature_space.noise_std
        net = DINOWorld(config)
        self._load(net, predictor_source, self.name)
        return net


@register_model("deltaworld")
class DeltaWorldAdapter(DeltaWorldFamily):
    """DeltaWorld: delta tokens and best-of-many sampling (the paper's model)."""

    stochastic = True


@register_model("deltaworld-frame")
class DeltaWorldFrameAdapter(DeltaWorldFamily):
    """Frame tokens instead of delta tokens (Table 2, step 2)."""

    stochastic = True


@register_model("deltaworld-nobom")
class DeltaWorldNoBomAdapter(DeltaWorldFamily):
    """Delta tokens in a discriminative predictor (Table C)."""

    stochastic = False


@register_model("dino-world")
class DinoWorldAdapter(DinoWorldFamily):
    """DINO-world: whole feature maps from a learned query (discriminative)."""

    stochastic = False


@register_model("dino-world-bom")
class DinoWorldBomAdapter(DinoWorldFamily):
    """DINO-world with best-of-many noise queries (Table 2, step 1)."""

    stochastic = True
