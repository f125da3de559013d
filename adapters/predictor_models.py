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
PAPER_SPACE = "dinov3-vitb16"


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


def _metadata_config(source: str) -> dict[str, Any] | None:
    if source.endswith(".safetensors") and Path(source).is_file():
        from dfbench.checkpoints import read_safetensors_metadata

        return read_safetensors_metadata(source).get("config")
    return None


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
        self.net = self.build(feature_space, predictor_source, tokenizer).eval()

    @classmethod
    def runs_offline(cls, feature_space_name: str) -> bool:
        source = weight_source(cls.name, feature_space_name, "predictor")
        return source is not None and Path(source).is_file()

    def build(self, feature_space, predictor_source: str, tokenizer_source: str | None) -> torch.nn.Module:
        raise NotImplementedError

    def _load(self, module: torch.nn.Module, source: str, label: str) -> None:
        from dfbench.checkpoints import load_checkpoint

        loaded = load_checkpoint(module, source, label)
        self._files[label] = loaded.sha256

    def to(self, device):
        self.net.to(device)
        self._black = {}
        return self

    def _black_frame(self, size: int) -> torch.Tensor:
        """Features of an all-zero frame at the crop size, computed once per size."""
        cache = self.__dict__.setdefault("_black", {})
        if size not in cache:
            with torch.no_grad():
                cache[size] = self.feature_space.black_frame(size, size).float()
        return cache[size]

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
        black = self._black_frame(context.frames.shape[-1]) if self.family == "deltaworld" else None
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
        tok_cfg = _metadata_config(tok_source)
        tok_config = DeltaTokConfig.from_dict(tok_cfg) if tok_cfg else DeltaTokConfig.vitb(use_delta=use_delta)
        tokenizer = DeltaTok(tok_config)
        self._load(tokenizer, tok_source, "deltatok")
        pred_cfg = _metadata_config(predictor_source)
        config = DeltaWorldConfig.from_dict(pred_cfg) if pred_cfg else DeltaWorldConfig.vitb(use_bom=use_bom)
        config.noise_std = feature_space.noise_std
        net = DeltaWorld(tokenizer, config)
        self._load(net, predictor_source, self.name)
        return net


class DinoWorldFamily(PredictorWorldModel):
    family = "dino-world"

    def build(self, feature_space, predictor_source, tokenizer_source):
        from dfbench.models.dinoworld import DINOWorld, DINOWorldConfig

        use_bom = bool(self.spec["predictor"]["use_bom"])
        pred_cfg = _metadata_config(predictor_source)
        config = DINOWorldConfig.from_dict(pred_cfg) if pred_cfg else DINOWorldConfig.vitb(use_bom=use_bom)
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
