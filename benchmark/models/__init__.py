"""World-model networks on frozen backbone features: DeltaTok, DeltaWorld and DINO-world.

The modules take backbone patch features [B, T, N, D]; the backbone itself is a feature
space (``dfbench.features``). Configs carry ``vitb()`` presets matching the released
checkpoints and ``to_dict`` / ``from_dict`` for our own safetensors metadata.
"""

from dfbench.models.deltatok import DeltaTok, DeltaTokConfig, log_cosh
from dfbench.models.deltaworld import DeltaWorld, DeltaWorldConfig
from dfbench.models.dinoworld import DINOWorld, DINOWorldConfig
from dfbench.models.predictor import Predictor, PredictorConfig

__all__ = [
    "DINOWorld",
    "DINOWorldConfig",
    "DeltaTok",
    "DeltaTokConfig",
    "DeltaWorld",
    "DeltaWorldConfig",
    "Predictor",
    "PredictorConfig",
    "log_cosh",
]
