"""The built-in world models, one :class:`ModelSpec` per variant (importable without torch).

A new variant of a built-in family is one entry here plus its weights. The order is
the main table's row order and the demo's. The tiny weights in ``adapters/assets``
are trained by dfbench on the embedded synthetic world with the ``configs/train/tiny-*.yaml``
recipes (each file's ``commands`` say how); the DINOv3 ViT-B weights are the paper's
Kinetics release. The Cosmos models are pixel-space generators (``pixel_input``): NVIDIA's
weights are downloaded by the user (``options["hub_id"]``, or cosmos-predict1's own
scripts) under NVIDIA's Open Model License, and ``cosmos-tiny`` is trained by dfbench.
"""

from __future__ import annotations

from dfbench.adapters.spec import ModelSpec, PixelInput, TableRow, WeightSource, spread_context

_RELEASE = "released with the paper (Amazon FAR), trained on Kinetics"
_LICENCE = "Apache-2.0"  # dfbench's own, for the weights it trains and ships


def _tiny(file: str, recipe: str) -> WeightSource:
    return WeightSource(shipped=file, origin=f"trained by dfbench: dfbench train, configs/train/{recipe}", licence=_LICENCE)


def _release(hub_id: str) -> WeightSource:
    # The release states no licence we could check offline: see the hub model card.
    return WeightSource(hub_id=hub_id, origin=_RELEASE)


_COSMOS_FAMILY = "dfbench.adapters.cosmos_diffusers:DiffusersVideoWorld"
_NVIDIA_LICENCE = "https://www.nvidia.com/en-us/agreements/enterprise-software/nvidia-open-model-license/"
# Cosmos' diffusers pipelines default to 704 x 1280; the short side follows, the aspect ratio is kept.
_COSMOS_INPUT_704 = {"height": 704, "width": 1280, "short_side": 704}


def _cosmos(name: str, display: str, pipeline: str, hub_id: str, temporal: int, steps: int, **options) -> ModelSpec:
    """A Cosmos video-to-world variant through diffusers (NVIDIA's weights, guardrail required)."""
    frames = temporal + 1  # every protocol context frame reaches the conditioning latents
    return ModelSpec(
        name=name,
        display=display,
        family=_COSMOS_FAMILY,
        stochastic=True,
        requires_weights=True,  # downloaded by the user from the hub (hub_id in options), never shipped
        pixel_input=PixelInput(num_frames=frames, context_map=spread_context(frames), **_COSMOS_INPUT_704),
        options={"pipeline": pipeline, "hub_id": hub_id, "temporal_factor": temporal, "num_inference_steps": steps,
                 "guidance_scale": 7.0, "guardrail": True, "licence_url": _NVIDIA_LICENCE, "requires": ("diffusers",),
                 **options},
        description=f"{display} ({pipeline} in diffusers), frames re-encoded by the feature space.",
    )


def _predict1(name: str, size: str, reference: str) -> ModelSpec:
    """The paper's Cosmos-Predict1 autoregressive base models (9 frames in, 24 out, 640 x 1024)."""
    return ModelSpec(
        name=name,
        display=f"Cosmos-{size}",
        family="dfbench.adapters.cosmos_predict1:Predict1WorldModel",
        stochastic=True,
        requires_weights=True,  # NVIDIA's package and weights, installed by the user
        # Two model frames per protocol step: the four context frames fill the nine inputs.
        pixel_input=PixelInput(height=640, width=1024, num_frames=9, context_map=spread_context(9, stride=2), stride=2,
                               short_side=640),
        options={"checkpoint_name": f"Cosmos-Predict1-{size}", "model_size": size, "generated_frames": 24,
                 "requires": ("cosmos_predict1",), "licence_url": _NVIDIA_LICENCE},
        table=TableRow(reference=reference),
        description=f"Cosmos-Predict1-{size} autoregressive (the paper's baseline) through NVIDIA's cosmos-predict1.",
    )


def _foresight_release(filename: str) -> WeightSource:
    return WeightSource(hub_id="Sta8is/DINO-Foresight", filename=filename, licence="MIT",
                        origin="released with DINO-Foresight (Karypidis et al., NeurIPS 2025), trained on Cityscapes")


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
    _predict1("cosmos-4b", "4B", "cosmos_4b"),
    _predict1("cosmos-12b", "12B", "cosmos_12b"),
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
        name="cosmos-tiny",
        display="Cosmos (tiny)",
        family=_COSMOS_FAMILY,
        stochastic=True,
        requires_weights=True,
        weights={"tiny": {"pipeline": _tiny("tiny-cosmos.safetensors", "pixel/tiny-cosmos.yaml")}},
        # The synthetic world's 64 x 126 frames padded to 64 x 128; Wan VAE: 4x in time, so 5 frames.
        pixel_input=PixelInput(height=64, width=128, num_frames=5, context_map=spread_context(5)),
        options={"pipeline": "Cosmos2VideoToWorldPipeline", "temporal_factor": 4, "num_inference_steps": 10,
                 "guidance_scale": 1.0, "guardrail": False, "requires": ("diffusers",), "flops_config": "shipped"},
        table=TableRow(),
        description="A tiny Cosmos-Predict2-architecture generator trained by dfbench on the synthetic world.",
    ),
    _cosmos("cosmos1-7b-v2w", "Cosmos-1.0 7B Video2World", "CosmosVideoToWorldPipeline",
            "nvidia/Cosmos-1.0-Diffusion-7B-Video2World", temporal=8, steps=36, vae="cosmos-cv8x8x8"),
    _cosmos("cosmos1-14b-v2w", "Cosmos-1.0 14B Video2World", "CosmosVideoToWorldPipeline",
            "nvidia/Cosmos-1.0-Diffusion-14B-Video2World", temporal=8, steps=36, vae="cosmos-cv8x8x8"),
    _cosmos("cosmos-predict2-2b", "Cosmos-Predict2 2B Video2World", "Cosmos2VideoToWorldPipeline",
            "nvidia/Cosmos-Predict2-2B-Video2World", temporal=4, steps=35),
    _cosmos("cosmos-predict2-14b", "Cosmos-Predict2 14B Video2World", "Cosmos2VideoToWorldPipeline",
            "nvidia/Cosmos-Predict2-14B-Video2World", temporal=4, steps=35),
    _cosmos("cosmos-predict2.5-2b", "Cosmos-Predict2.5 2B", "Cosmos2_5_PredictBasePipeline",
            "nvidia/Cosmos-Predict2.5-2B", temporal=4, steps=36, revision="diffusers/base/post-trained"),
    ModelSpec(
        name="dino-foresight",
        display="DINO-Foresight",
        family="dfbench.adapters.dino_foresight:DinoForesightModel",
        architecture="dino-foresight",
        requires_weights=True,
        default_protocol="dinoforesight",
        default_feature_space="dinov2-vitb14-reg-pca1152",
        weights={
            "dinov2-vitb14-reg-pca1152": {"predictor": _foresight_release("dinof_highres.ckpt")},
            "dinov2-vitb14-reg-pca1152-lowres": {"predictor": _foresight_release("dinof_lowres.ckpt")},
            "tiny-ml-pca": {"predictor": _tiny("tiny-dino-foresight.safetensors", "tiny-dino-foresight.yaml")},
        },
        table=TableRow(reference="dino_foresight"),
        description="DINO-Foresight: masked feature transformer on PCA-compressed multi-layer DINOv2 features.",
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
