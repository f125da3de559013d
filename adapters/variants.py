"""The built-in world models, one :class:`ModelSpec` per variant (importable without torch).

A new variant of a built-in family is one entry here plus its weights. The order is
the main table's row order and the demo's. The tiny weights in ``adapters/assets``
are trained by dfbench on the embedded synthetic world with the ``configs/train/tiny-*.yaml``
recipes (each file's ``commands`` say how); the DINOv3 ViT-B weights are the paper's
Kinetics release.
"""

from __future__ import annotations

from dfbench.adapters.spec import ModelSpec, TableRow, WeightSource

_RELEASE = "released with the paper (Amazon FAR), trained on Kinetics"
_LICENCE = "Apache-2.0"  # dfbench's own, for the weights it trains and ships


def _tiny(file: str, recipe: str) -> WeightSource:
    return WeightSource(shipped=file, origin=f"trained by dfbench: dfbench train, configs/train/{recipe}", licence=_LICENCE)


def _release(hub_id: str) -> WeightSource:
    # The release states no licence we could check offline: see the hub model card.
    return WeightSource(hub_id=hub_id, origin=_RELEASE)


_DELTATOK = _tiny("tiny-deltatok.safetensors", "tiny-deltatok.yaml")
_FRAMETOK = _tiny("tiny-frametok.safetensors", "tiny-frametok.yaml")
_DELTAWORLD_FAMILY = "dfbench.adapters.predictor_models:DeltaWorldFamily"
_DINOWORLD_FAMILY = "dfbench.adapters.predictor_models:DinoWorldFamily"

MODEL_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="copy-last",
        display="Copy last (lower bound)",
        family="dfbench.adapters.copy_last:CopyLast",
        table=TableRow(role="lower_bound", reference="copy_last", short="Copy last"),
        description="Repeats the last context frame's features: the lower bound.",
    ),
    ModelSpec(
        name="dino-world",
        display="DINO-world",
        family=_DINOWORLD_FAMILY,
        architecture="dino-world",
        requires_weights=True,
        weights={"tiny": {"predictor": _tiny("tiny-dino-world.safetensors", "tiny-dino-world.yaml")}},
        table=TableRow(reference="dino_world", flops_reference="step0_discriminative"),
        description="DINO-world (reimplementation): whole feature maps from a learned query; no released weights.",
    ),
    ModelSpec(
        name="dino-world-bom",
        display="DINO-world (BoM)",
        family=_DINOWORLD_FAMILY,
        stochastic=True,
        best_of_many=True,
        architecture="dino-world",
        requires_weights=True,
        weights={"tiny": {"predictor": _tiny("tiny-dino-world-bom.safetensors", "tiny-dino-world.yaml")}},
        table=TableRow(flops_reference="step1_bom"),
        description="DINO-world with best-of-many noise queries (Table 2, step 1).",
    ),
    ModelSpec(
        name="deltaworld",
        display="DeltaWorld",
        family=_DELTAWORLD_FAMILY,
        stochastic=True,
        tokens="delta",
        best_of_many=True,
        architecture="deltaworld",
        requires_weights=True,
        weights={
            "dinov3-vitb16": {
                "tokenizer": _release("Amazon-FAR/deltatok-kinetics"),
                "predictor": _release("Amazon-FAR/deltaworld-kinetics"),
            },
            "tiny": {"tokenizer": _DELTATOK, "predictor": _tiny("tiny-deltaworld.safetensors", "tiny-deltaworld.yaml")},
        },
        table=TableRow(reference="deltaworld", flops_reference="step3_delta_compress"),
        description="DeltaWorld (the paper's model): delta tokens, best-of-many noise queries.",
    ),
    ModelSpec(
        name="deltaworld-frame",
        display="DeltaWorld (frame tokens)",
        family=_DELTAWORLD_FAMILY,
        stochastic=True,
        tokens="frame",
        best_of_many=True,
        architecture="deltaworld",
        requires_weights=True,
        weights={"tiny": {"tokenizer": _FRAMETOK, "predictor": _tiny("tiny-deltaworld-frame.safetensors", "tiny-deltaworld.yaml")}},
        table=TableRow(flops_reference="step2_frame_compress"),
        description="Frame tokens (a tokenizer without the previous frame) and best-of-many (Table 2, step 2).",
    ),
    ModelSpec(
        name="deltaworld-nobom",
        display="DeltaWorld (no BoM)",
        family=_DELTAWORLD_FAMILY,
        tokens="delta",
        architecture="deltaworld",
        requires_weights=True,
        weights={"tiny": {"tokenizer": _DELTATOK, "predictor": _tiny("tiny-deltaworld-nobom.safetensors", "tiny-deltaworld.yaml")}},
        table=TableRow(),
        description="Delta tokens in a discriminative predictor: a learned query, no sampling (Table C).",
    ),
    ModelSpec(
        name="present",
        display="Present (upper bound)",
        family="dfbench.adapters.present:Present",
        oracle=True,
        table=TableRow(role="upper_bound", reference="present", short="Present"),
        description="Handed the feature space's encoding of the true future: the upper bound.",
    ),
)
